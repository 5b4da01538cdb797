"""A continuous double auction (CDA): an order book with price-time priority, one market period.

The rule
--------
Orders arrive one by one (the *arrival order*). Each incoming order is matched at once against
the resting orders of the other side of the book:

* **Priority.** The best resting order trades first: the highest-priced bid or the lowest-priced
  offer; among resting orders at exactly the same price (compared as floats) the one that arrived
  first (price-time priority, first in first out).
* **Cross.** An incoming bid trades with a resting offer while bid price >= offer price; an
  incoming offer with a resting bid while offer price <= bid price. Prices that touch trade.
* **Quantity.** Each match trades min(what the incoming order has left, what the resting order has
  left), so both orders may be filled in part; the incoming order walks down the other side's
  price levels until it is filled or no longer crosses.
* **Price.** Every trade is at the resting (maker) order's limit price: the order already in the
  book set the price, the incoming (taker) order accepts it. So one incoming order may trade at
  several prices, and a taker that would have paid more pays only the maker's price.
* **Rest.** What is left of the incoming order rests in the book at its own price, behind the
  resting orders at that price. At the end of the period nothing more arrives and what rests is
  unmatched (in the LEC the LEC buys or sells it upstream: :mod:`lec_cosim.models.lec_pool`).
* **Zero-quantity orders** are valid, trade nothing and never rest. A participant's orders on
  both sides may match each other (as in the uniform-price pool, which has no self-trade rule
  either); the LEC's members post one order each, so this never happens there.

This is the matching of a continuous limit order book as exchanges define it; we follow Eurex's
published matching principles (T7): "Price/Time Priority" (the earliest order at a price level
executes first; an incoming order executable on entry generates one or more transactions,
possibly several partial executions at different prices, and its unexecuted rest is held in the
book; http://www.eurexchange.com/trading/market_model/matching_principles/priority_en.html) and
"Matching principles" (incoming orders against book orders;
https://www.eurex.com/ex-en/trade/order-book-trading/matching-principles). That trades print at
the maker's price is the usual order-book convention, stated for example by Nexus's order-book
documentation ("every trade prints at the maker's quoted price: a taker willing to pay more than
the best ask still pays only the ask"; https://docs.nexus.xyz/math-engine/order-book.md). The
P2P energy-market literature calls this mechanism a continuous double auction among prosumers
(the seed of issue 17).

Arrival order
-------------
The members of an LEC all submit their orders of an hour at once (the HEMSs bid at H + 2 ms), so
the order in which they reach the book is a modelling choice: :func:`arrival_order` draws a random
permutation, reproducible from a seed (the scenario's ``p2p.arrival_seed``), the period and a
stream number (the LEC's index, so that the LECs' draws are independent)::

    numpy.random.default_rng([seed, period, stream]).permutation(n_orders)

Welfare
-------
The welfare of a set of trades is sum over trades of (buyer's bid price - seller's offer price) x
kWh: the gain of trade at the orders' limit prices. It does not depend on the trade prices, which
only split it between buyer and seller. When every bid is priced at or above every offer, every
incoming order crosses every resting order of the other side and the CDA trades min(total demand,
total supply), the uniform-price pool's volume; but with several price levels on the short side's
opposite it may not pick the pool's best-priced orders, so its welfare can be lower. When in
addition each side has one price, as the LEC's members' orders (every need bid at the import
price, every surplus offered at the export price), the welfare is (bid - offer price) x volume
for both: the CDA's volume and welfare are the pool's and only the prices differ. With
overlapping prices an early pair that barely crosses can take the quantity a better-matched later
pair would have traded, so the CDA may trade more or less than the pool, and never more welfare
(the pool maximises it).

No HELICS here: plain Python and NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lec_cosim.models.auction import Order


@dataclass(frozen=True)
class Trade:
    """One trade of the book.

    Attributes
    ----------
    sequence : int
        Its place among the period's trades, 0 first.
    buyer, seller : str
        The participants of the bid and the offer.
    quantity_kwh : float
        Energy traded, kWh (> 0).
    price_eur_per_kwh : float
        The resting (maker) order's limit price.
    buy_order, sell_order : int
        Indices of the bid and the offer in the order list given to :func:`clear_continuous`.
    maker_side : {"buy", "sell"}
        The side of the resting order, whose price the trade took.
    """

    sequence: int
    buyer: str
    seller: str
    quantity_kwh: float
    price_eur_per_kwh: float
    buy_order: int
    sell_order: int
    maker_side: str

    def as_dict(self) -> dict:
        return {"sequence": self.sequence, "buyer": self.buyer, "seller": self.seller,
                "quantity_kwh": self.quantity_kwh, "price_eur_per_kwh": self.price_eur_per_kwh,
                "maker_side": self.maker_side}


@dataclass(frozen=True, eq=False)
class ContinuousResult:
    """Outcome of one period of the continuous double auction. Per-participant dicts are keyed by
    participant, in order of first appearance in the order list.

    Attributes
    ----------
    trades : tuple of Trade
        In the order they happened.
    arrival : tuple of int
        The order indices in the order they arrived.
    accepted_kwh : numpy.ndarray
        Traded kWh of every order, aligned with the order list.
    volume_kwh : float
        Energy traded, kWh (sum over trades).
    welfare_eur : float
        sum over trades of (bid price - offer price) x kWh, EUR (module docstring).
    bought_kwh, sold_kwh : dict of str to float
        Energy each participant bought / sold, kWh.
    paid_eur, received_eur : dict of str to float
        Money each participant paid for what it bought / received for what it sold, EUR (each
        trade at its own price; what all pay is what all receive).
    """

    trades: tuple[Trade, ...]
    arrival: tuple[int, ...]
    accepted_kwh: np.ndarray
    volume_kwh: float
    welfare_eur: float
    bought_kwh: dict[str, float]
    sold_kwh: dict[str, float]
    paid_eur: dict[str, float]
    received_eur: dict[str, float]

    def mean_price_eur_per_kwh(self, participant: str) -> float | None:
        """The volume-weighted mean price of a participant's trades (bought and sold), ``None`` without any."""
        kwh = self.bought_kwh.get(participant, 0.0) + self.sold_kwh.get(participant, 0.0)
        if kwh <= 0:
            return None
        return (self.paid_eur.get(participant, 0.0) + self.received_eur.get(participant, 0.0)) / kwh

    def price_stats(self) -> dict:
        """Trade prices weighted by kWh: ``mean``, ``std`` (population), ``min``, ``max`` in EUR/kWh (None when
        nothing traded), and the number of ``trades``."""
        return price_stats([t.price_eur_per_kwh for t in self.trades], [t.quantity_kwh for t in self.trades])


MIN_TRADE_KWH = 1e-9
"""Trades smaller than this are rounding, not trade: a member's net of an hour can be 1e-12 kWh off zero and still
post an order. They stay in the book and the tables (volume and welfare count them, as the pool does), but the
price statistics leave them out: one such trade would set the day's lowest or highest price."""


def price_stats(prices: Sequence[float], kwh: Sequence[float]) -> dict:
    """Volume-weighted ``mean_eur_per_kwh`` and ``std_eur_per_kwh`` (population), ``min_eur_per_kwh``,
    ``max_eur_per_kwh`` of trade prices, and the number of ``trades``, all over the trades of at least
    :data:`MIN_TRADE_KWH`; the prices ``None`` without such a trade."""
    p, q = np.asarray(prices, dtype=float), np.asarray(kwh, dtype=float)
    real = q >= MIN_TRADE_KWH
    p, q = p[real], q[real]
    if len(p) == 0 or q.sum() <= 0:
        return {"trades": int(len(p)), "mean_eur_per_kwh": None, "std_eur_per_kwh": None, "min_eur_per_kwh": None,
                "max_eur_per_kwh": None}
    mean = float(np.average(p, weights=q))
    return {"trades": int(len(p)), "mean_eur_per_kwh": mean,
            "std_eur_per_kwh": float(math.sqrt(max(0.0, float(np.average((p - mean) ** 2, weights=q))))),
            "min_eur_per_kwh": float(p.min()), "max_eur_per_kwh": float(p.max())}


def arrival_order(n_orders: int, *, seed: int, period: int, stream: int = 0) -> list[int]:
    """The order in which ``n_orders`` orders of one period reach the book: a random permutation of
    ``range(n_orders)``, the same for the same ``seed``, ``period`` and ``stream`` (module docstring)."""
    for name, value in (("n_orders", n_orders), ("seed", seed), ("period", period), ("stream", stream)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    rng = np.random.default_rng([int(seed), int(period), int(stream)])
    return [int(i) for i in rng.permutation(int(n_orders))]


def clear_continuous(orders: Iterable[Order], *, arrival: Sequence[int] | None = None) -> ContinuousResult:
    """Match one period's orders in a continuous double auction (module docstring for the rule).

    Parameters
    ----------
    orders : iterable of Order
        The period's orders.
    arrival : sequence of int, optional
        The order indices in the order they arrive, a permutation of ``range(len(orders))``
        (:func:`arrival_order`); default the list's order.

    Returns
    -------
    ContinuousResult

    Raises
    ------
    TypeError
        An order that is not an :class:`~lec_cosim.models.auction.Order` (whose constructor refuses
        a bad side, a non-finite price or quantity and a negative quantity).
    ValueError
        ``arrival`` is not a permutation of the orders' indices.
    """
    orders = list(orders)
    for order in orders:
        if not isinstance(order, Order):
            raise TypeError(f"orders must be Order instances, got {type(order).__name__}")
    n = len(orders)
    arrival = list(range(n)) if arrival is None else [int(i) for i in arrival]
    if sorted(arrival) != list(range(n)):
        raise ValueError(f"arrival must be a permutation of range({n}), got {arrival!r}")

    left = [o.quantity_kwh for o in orders]  # what each order has not traded yet
    # The resting orders of each side in priority order: price (best first), then arrival. Tens of
    # orders an hour: a sorted list is simpler than a heap and fast enough.
    resting = {"buy": [], "sell": []}
    trades: list[Trade] = []
    for when, i in enumerate(arrival):
        order = orders[i]
        if left[i] <= 0:
            continue
        other = resting["sell" if order.side == "buy" else "buy"]
        while other and left[i] > 0:
            j = other[0][2]
            maker = orders[j]
            crosses = (order.price_eur_per_kwh >= maker.price_eur_per_kwh if order.side == "buy"
                       else order.price_eur_per_kwh <= maker.price_eur_per_kwh)
            if not crosses:
                break
            kwh = min(left[i], left[j])
            left[i] -= kwh  # the smaller of the two becomes exactly 0
            left[j] -= kwh
            buy, sell = (i, j) if order.side == "buy" else (j, i)
            trades.append(Trade(len(trades), orders[buy].participant, orders[sell].participant, kwh,
                                maker.price_eur_per_kwh, buy, sell, maker.side))
            if left[j] <= 0:
                other.pop(0)
        if left[i] > 0:
            # sort key: best price first (bids descending, offers ascending), then the earlier arrival
            key = (-order.price_eur_per_kwh if order.side == "buy" else order.price_eur_per_kwh, when, i)
            side = resting[order.side]
            side.append(key)
            side.sort()

    names = list(dict.fromkeys(o.participant for o in orders))
    bought, sold, paid, received = ({name: 0.0 for name in names} for _ in range(4))
    accepted = np.zeros(n)
    welfare = 0.0
    for t in trades:
        bought[t.buyer] += t.quantity_kwh
        sold[t.seller] += t.quantity_kwh
        paid[t.buyer] += t.price_eur_per_kwh * t.quantity_kwh
        received[t.seller] += t.price_eur_per_kwh * t.quantity_kwh
        accepted[t.buy_order] += t.quantity_kwh
        accepted[t.sell_order] += t.quantity_kwh
        welfare += (orders[t.buy_order].price_eur_per_kwh - orders[t.sell_order].price_eur_per_kwh) * t.quantity_kwh
    accepted.setflags(write=False)
    return ContinuousResult(trades=tuple(trades), arrival=tuple(arrival), accepted_kwh=accepted,
                            volume_kwh=float(sum(t.quantity_kwh for t in trades)), welfare_eur=float(welfare),
                            bought_kwh=bought, sold_kwh=sold, paid_eur=paid, received_eur=received)
