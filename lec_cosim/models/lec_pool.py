"""The LEC's P2P pool: the members' orders for one period and their uniform-price clearing.

A member with a positive net energy bids for it at the import (retail) price, a member with a
surplus offers it at the export (feed-in) price: the prices at which the grid would otherwise
serve them. The pool is a uniform-price double auction
(:func:`lec_cosim.models.auction.clear_double_auction`, merit-order path). What it does not match
the LEC buys or sells upstream for the member; the LEC's residual is ``lec_net_kwh``. Separate from
the home plan (the members' decisions) and the inter-LEC platform (which reuses these orders).

Prices of the two auctions
--------------------------
With every bid at the import price and every offer at the export price the book has one step on
each side, and the midpoint rule of :mod:`lec_cosim.models.auction` gives

* demand > supply: the import price (every offer is accepted, the first bid not fully accepted
  sets the lower end of the price interval, so the interval is the single point [import, import]);
* supply > demand: the export price (symmetrically);
* demand = supply (to the auction's relative tolerance 1e-9): the midpoint
  (import + export) / 2, e.g. (0.158 + 0.045) / 2 = 0.1015 EUR/kWh.

So the pool shares the gain of local trade equally only when it is exactly balanced; otherwise the
short side keeps the whole gain (buyers pay what the grid would charge them, or sellers receive
what the grid would pay them). On the platform the offers are at export + wheeling fee, so the
same holds with that price in place of the export price.

Who clears the pool
-------------------
The LEC_EMS clears its members' orders itself (:func:`clear_lec_pool`), or, with ``p2p.market:
pool_operator``, the local market's pool operator (``federates/lem_market.py``, one per LEC) clears
them: each member sends it :func:`pool_order_message` (the same order in the operator's format),
and the LEC_EMS settles the book the operator returns (:func:`pool_from_book`). Both clear the same
book by the same rule (:func:`lec_cosim.models.auction.clear_double_auction`, merit order), and both
settle it here (:func:`settle_pool`), so the two give the same pool.

The continuous double auction instead of the pool
-------------------------------------------------
With ``p2p.market: continuous`` the LEC_EMS matches the same orders in a continuous double auction
(:func:`clear_lec_continuous`, rule in :mod:`lec_cosim.models.continuous_auction`): they reach an
order book one by one and trade by price-time priority, each trade at the resting order's price,
so a member's bill is at its own trades' prices (:class:`ContinuousPoolResult`); the uniform-price
pool of the same orders is cleared beside it every hour as the counterfactual. With the members'
orders (one price a side) both trade the same volume with the same welfare; the prices differ, and
so does who is left to the grid when one side is short: the pool shares the short side pro rata
among the long side's members, the auction gives it to the orders that meet it first.

The market period is one hour, so kW and kWh per period are the same numbers in the pool and on
the platform. No HELICS here: plain Python, NumPy and SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lec_cosim.models.auction import ClearingResult, Order, clear_double_auction
from lec_cosim.models.continuous_auction import ContinuousResult, clear_continuous


def _price(value, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def member_orders(
    net_kwh: Mapping[str, float],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> list[Order]:
    """The members' orders to the LEC's P2P pool for one period.

    Parameters
    ----------
    net_kwh : mapping of str to float
        Every member's net energy of the period, kWh (positive: needs energy, negative: surplus).
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        A member with a need bids for all of it at the import price (the most it would pay: the
        grid serves it at that price); a member with a surplus offers all of it at the export
        price (the least it would accept: the grid buys it at that price).

    Returns
    -------
    list of Order
        One order per member with a non-zero net, in the mapping's order; none for a zero net.
    """
    p_imp = _price(import_price_eur_per_kwh, "import_price_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    orders = []
    for member, net in net_kwh.items():
        net = _price(net, f"net_kwh[{member!r}]")
        if net > 0:
            orders.append(Order(member, "buy", p_imp, net))
        elif net < 0:
            orders.append(Order(member, "sell", p_exp, -net))
    return orders


def _split(orders: Sequence[Order], result: ClearingResult):
    """Per participant: matched bought and sold kWh, unmatched buy and sell kWh (order of appearance)."""
    return _split_accepted(orders, result.accepted_kwh)


def _split_accepted(orders: Sequence[Order], accepted_kwh: Iterable[float]):
    """:func:`_split` from each order's accepted kWh (aligned with ``orders``)."""
    names = list(dict.fromkeys(o.participant for o in orders))
    bought, sold, short, long_ = ({name: 0.0 for name in names} for _ in range(4))
    for order, accepted in zip(orders, accepted_kwh, strict=True):
        accepted = min(float(accepted), order.quantity_kwh)
        rest = order.quantity_kwh - accepted
        if order.side == "buy":
            bought[order.participant] += accepted
            short[order.participant] += rest
        else:
            sold[order.participant] += accepted
            long_[order.participant] += rest
    return bought, sold, short, long_


@dataclass(frozen=True, eq=False)
class PoolResult:
    """Outcome of the LEC's P2P pool for one period. Per-member dicts are keyed by member name.

    Attributes
    ----------
    price_eur_per_kwh : float or None
        The pool's uniform price, ``None`` when nothing trades (module docstring for its value).
    volume_kwh : float
        Energy traded between members, kWh.
    bought_kwh, sold_kwh : dict of str to float
        Energy each member bought from / sold to the other members in the pool, kWh.
    grid_import_kwh, grid_export_kwh : dict of str to float
        The unmatched rest of each member's bid / offer, which the LEC buys / sells upstream for
        the member, kWh.
    cost_eur : dict of str to float
        Each member's bill for the period: pool price x (bought - sold) + import price x grid
        import - export price x grid export, EUR (negative: income).
    lec_net_kwh : float
        The LEC's residual: total unmatched buy - total unmatched sell, kWh (one of the two is 0
        when every bid is priced above every offer).
    """

    price_eur_per_kwh: float | None
    volume_kwh: float
    bought_kwh: dict[str, float]
    sold_kwh: dict[str, float]
    grid_import_kwh: dict[str, float]
    grid_export_kwh: dict[str, float]
    cost_eur: dict[str, float]
    lec_net_kwh: float

    def member_price_eur_per_kwh(self, member: str) -> float | None:
        """The price a member traded at: the pool's uniform price, the same for every member."""
        return self.price_eur_per_kwh

    def market_record(self) -> dict:
        """What the LEC_EMS adds to its hour's record besides the pool's price and volume: nothing for the pool."""
        return {}


@dataclass(frozen=True, eq=False)
class ContinuousPoolResult(PoolResult):
    """The LEC's P2P market of one period cleared as a continuous double auction (:func:`clear_lec_continuous`).

    The fields of :class:`PoolResult` mean the same, but for the prices: every trade is at its own price,
    ``price_eur_per_kwh`` is the volume-weighted mean trade price (``None`` when nothing trades), each
    member's bill is what it paid for its trades - what it received for them + its grid import and export
    at the tariffs.

    Attributes
    ----------
    book : ContinuousResult
        The auction: trades, arrival order, per-member kWh and money.
    pool : PoolResult
        The counterfactual: the uniform-price pool of the same orders (:func:`clear_lec_pool`).
    pool_welfare_eur : float
        The pool's welfare, EUR (sum of bid price x accepted - offer price x accepted).
    arrival_members : tuple of str
        The members whose orders reached the book, in the order they arrived.
    """

    book: ContinuousResult
    pool: PoolResult
    pool_welfare_eur: float
    arrival_members: tuple[str, ...]

    def member_price_eur_per_kwh(self, member: str) -> float | None:
        """The volume-weighted mean price of the member's trades, ``None`` when it traded nothing."""
        return self.book.mean_price_eur_per_kwh(member)

    def market_record(self) -> dict:
        """The auction's trades and its comparison with the pool of the same orders, for the LEC_EMS's record."""
        return {"market": "continuous", "cda_arrival": list(self.arrival_members),
                "cda_trades": [t.as_dict() for t in self.book.trades], "cda_welfare_eur": self.book.welfare_eur,
                "pool_counterfactual": {"price_eur_per_kwh": self.pool.price_eur_per_kwh,
                                        "volume_kwh": self.pool.volume_kwh, "welfare_eur": self.pool_welfare_eur}}


def clear_lec_pool(
    orders: Sequence[Order],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> PoolResult:
    """Clear the LEC's P2P pool for one period (merit-order double auction).

    Parameters
    ----------
    orders : sequence of Order
        The members' orders, usually from :func:`member_orders`.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        Prices at which the LEC buys the unmatched need and sells the unmatched surplus upstream
        for the members (they enter the members' bills, not the clearing).

    Returns
    -------
    PoolResult
        With buyers at the import and sellers at the export price the pool price is the import
        price when demand exceeds supply, the export price when supply exceeds demand, and their
        midpoint when the two are equal (module docstring).
    """
    orders = list(orders)
    _price(import_price_eur_per_kwh, "import_price_eur_per_kwh")
    _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    result = clear_double_auction(orders, solver="merit_order")
    return settle_pool(orders, result.accepted_kwh, price_eur_per_kwh=result.price_eur_per_kwh,
                       volume_kwh=result.volume_kwh, import_price_eur_per_kwh=import_price_eur_per_kwh,
                       export_price_eur_per_kwh=export_price_eur_per_kwh)


def settle_pool(
    orders: Sequence[Order],
    accepted_kwh: Iterable[float],
    *,
    price_eur_per_kwh: float | None,
    volume_kwh: float,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> PoolResult:
    """The members' side of a cleared pool: what each bought and sold in it and from the grid, and its bill.

    Parameters
    ----------
    orders : sequence of Order
        The cleared book.
    accepted_kwh : iterable of float
        Accepted kWh of every order, aligned with ``orders``.
    price_eur_per_kwh : float or None
        The pool's uniform price (``None``: nothing traded).
    volume_kwh : float
        Energy traded in the pool, kWh.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        Prices at which the LEC buys the unmatched need and sells the unmatched surplus upstream
        for the members.

    Returns
    -------
    PoolResult
    """
    orders = list(orders)
    p_imp = _price(import_price_eur_per_kwh, "import_price_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    bought, sold, grid_import, grid_export = _split_accepted(orders, accepted_kwh)
    price = price_eur_per_kwh
    pool_price = 0.0 if price is None else price
    cost = {
        m: pool_price * (bought[m] - sold[m]) + p_imp * grid_import[m] - p_exp * grid_export[m] for m in bought
    }
    return PoolResult(
        price_eur_per_kwh=price,
        volume_kwh=float(volume_kwh),
        bought_kwh=bought,
        sold_kwh=sold,
        grid_import_kwh=grid_import,
        grid_export_kwh=grid_export,
        cost_eur=cost,
        lec_net_kwh=float(sum(grid_import.values()) - sum(grid_export.values())),
    )


def clear_lec_continuous(
    orders: Sequence[Order],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
    arrival: Sequence[int] | None = None,
) -> ContinuousPoolResult:
    """The LEC's P2P market of one period as a continuous double auction, with the pool of the same orders.

    The members' orders reach the book in ``arrival`` order (indices into ``orders``:
    :func:`lec_cosim.models.continuous_auction.arrival_order`; default the list's order) and trade
    by price-time priority at the resting order's price
    (:func:`lec_cosim.models.continuous_auction.clear_continuous`); what does not trade the LEC buys or
    sells upstream for the member at the import and export prices, as in the pool. The uniform-price
    pool of the same orders (:func:`clear_lec_pool`) is cleared too, as the counterfactual.

    Returns
    -------
    ContinuousPoolResult
        Each member's bill: what it paid for its trades - what it received + import price x grid import
        - export price x grid export. The trades' money sums to zero within the LEC.
    """
    orders = list(orders)
    p_imp = _price(import_price_eur_per_kwh, "import_price_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    book = clear_continuous(orders, arrival=arrival)
    bought, sold, grid_import, grid_export = _split_accepted(orders, book.accepted_kwh)
    cost = {m: book.paid_eur[m] - book.received_eur[m] + p_imp * grid_import[m] - p_exp * grid_export[m]
            for m in bought}
    uniform = clear_double_auction(orders, solver="merit_order")
    pool = settle_pool(orders, uniform.accepted_kwh, price_eur_per_kwh=uniform.price_eur_per_kwh,
                       volume_kwh=uniform.volume_kwh, import_price_eur_per_kwh=p_imp, export_price_eur_per_kwh=p_exp)
    mean_price = book.price_stats()["mean_eur_per_kwh"]
    return ContinuousPoolResult(
        price_eur_per_kwh=mean_price, volume_kwh=book.volume_kwh, bought_kwh=bought, sold_kwh=sold,
        grid_import_kwh=grid_import, grid_export_kwh=grid_export, cost_eur=cost,
        lec_net_kwh=float(sum(grid_import.values()) - sum(grid_export.values())),
        book=book, pool=pool, pool_welfare_eur=uniform.welfare_eur,
        arrival_members=tuple(orders[i].participant for i in book.arrival))


def pool_order_message(
    member: str,
    net_kwh: float,
    *,
    period: int,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> dict:
    """A member's order of one period as the pool operator (``federates/lem_market.py``) takes it.

    The order is :func:`member_orders`'s: a need bid at the import price, a surplus offered at the
    export price, nothing for a zero net (the message is still sent: the member is in the pool).

    Returns
    -------
    dict
        ``{"period": period, "participant": member, "orders": [{"side", "price_eur_per_kwh",
        "quantity_kwh"}]}``.
    """
    orders = member_orders({member: net_kwh}, import_price_eur_per_kwh=import_price_eur_per_kwh,
                           export_price_eur_per_kwh=export_price_eur_per_kwh)
    return {"period": int(period), "participant": member,
            "orders": [{"side": o.side, "price_eur_per_kwh": o.price_eur_per_kwh, "quantity_kwh": o.quantity_kwh}
                       for o in orders]}


def pool_from_book(
    book: Mapping,
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> PoolResult:
    """The pool of a book the pool operator cleared (its ``book`` message), settled by :func:`settle_pool`.

    Parameters
    ----------
    book : mapping
        ``{"price_eur_per_kwh": float or None, "volume_kwh": float, "orders": [{"participant", "side",
        "price_eur_per_kwh", "quantity_kwh", "accepted_kwh"}, ...], ...}``.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        As in :func:`clear_lec_pool`.
    """
    entries = list(book["orders"])
    orders = [Order(e["participant"], e["side"], e["price_eur_per_kwh"], e["quantity_kwh"]) for e in entries]
    return settle_pool(orders, [float(e["accepted_kwh"]) for e in entries], price_eur_per_kwh=book["price_eur_per_kwh"],
                       volume_kwh=book["volume_kwh"], import_price_eur_per_kwh=import_price_eur_per_kwh,
                       export_price_eur_per_kwh=export_price_eur_per_kwh)
