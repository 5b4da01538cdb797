"""Pool operator federate: clears a pool of orders as a uniform-price double auction, for any study.

A thin shell over :func:`lec_cosim.models.auction.clear_double_auction`; everything it talks to comes
from its config by port name. At each of its slots it takes every order message waiting at its
endpoint port ``orders`` (``{"period": k, "participant": name, "orders": [{side, price_eur_per_kwh,
quantity_kwh}, ...]}``, sent by the participant's endpoint, the member ``name`` of its target
``results``; or, from an endpoint several participants share, ``{"period": k, "participants": {name:
[orders], ...}}``), clears the book, answers each message: a participant's result (price, accepted
quantities, and unless settings ``bidder_allocation`` is false its bilateral allocation x_ij), or for a
shared endpoint ``{"period", "price_eur_per_kwh", "results": {name: {"orders", "allocation_kwh"}}}``;
sends the whole book to its target ``book`` (if it has one: ``{"period", "price_eur_per_kwh", "volume_kwh",
"orders": [...], "allocation": {"sellers", "sold_kwh", "buyers", "bought_kwh", "volume_kwh"}}``, the bilateral
allocation as its rank-one factors, those who traded: x_ij = sold_i bought_j / volume, O(sellers + buyers)
where the pairs are sellers x buyers) and publishes the price (NaN when nothing cleared) and the volume on its
output ports ``price_eur_per_kwh`` and ``volume_kwh`` (those it has).
Settings: ``solver``, the auction's solver. It never waits for anyone: a bidder that sent nothing is
simply not in the book.

With settings ``periods_per_step`` P > 1 (a day's hours) each step clears P pools, one per period, each as if
alone (the same numbers as P steps of one period), and the messages are lean (a day's book is ~2,500 orders): an
order message holds ``{"periods": [k, ...], "participant": name, "orders": [[[side, price, quantity], ...] per
period]}`` (or ``"participants": {name: [[[side, price, quantity], ...] per period]}``); the answer
``{"periods", "price_eur_per_kwh": [per period, null: none], "accepted_kwh": [[per order, in the order sent] per
period]}`` (``"allocation_kwh": [per period]`` with ``bidder_allocation``), for a shared endpoint
``{"periods", "price_eur_per_kwh", "results": {name: {"accepted_kwh", ...}}}``; the book ``{"periods",
"price_eur_per_kwh", "volume_kwh": [per period], "orders": {"period", "participant", "side",
"price_eur_per_kwh", "quantity_kwh", "accepted_kwh": [a column each, a row per order]}, "allocation": [per
period]}``; the price and volume are vectors of P values.
"""

from __future__ import annotations

import math

import numpy as np

from federates.common import Federate, main
from lec_cosim.models.auction import Order, clear_double_auction


def build(fed: Federate):
    solver = fed.options.solver
    with_allocation = fed.options.bidder_allocation
    periods = fed.options.periods_per_step  # market periods cleared at each step
    inbox = fed.endpoint("orders")
    targets = fed.ports.get("targets", {})
    bidders = targets.get("results")  # participant -> its endpoint: where its orders come from, its result goes
    if not isinstance(bidders, dict):
        raise KeyError(f"federate {fed.name}: its config names no bidders (a targets map 'results': member -> "
                       "endpoint)")
    book_to = fed.target("book") if "book" in targets else None
    outputs = [port for port in ("price_eur_per_kwh", "volume_kwh") if port in fed.ports.get("out", {})]

    def step(k: int, t: float) -> None:
        first = k * periods
        hours = list(range(first, first + periods))
        books: list[list[Order]] = [[] for _ in hours]
        senders: list[dict] = [{} for _ in hours]
        answers = []
        for source, payload in fed.receive(inbox):
            shared = "participants" in payload  # one message for the players of a shared endpoint
            bundled = "periods" in payload  # the orders of several periods (periods_per_step > 1)
            if (payload.get("periods") if bundled else [payload.get("period")]) != hours:
                raise ValueError(f"order message from {source} for hour(s) "
                                 f"{payload.get('periods') if bundled else payload.get('period')} in hour(s) {hours}")
            sent = payload["participants"] if shared else {payload.get("participant"): payload.get("orders")}
            for name, its_orders in sent.items():
                if source != bidders.get(name):
                    raise ValueError(f"order message from {source} for participant {name!r}, whose endpoint is "
                                     f"{bidders.get(name)}")
                if bundled and len(its_orders) != periods:
                    raise ValueError(f"{name}: orders for {len(its_orders)} hours in a message of {periods}")
                for h, hour_orders in enumerate(its_orders if bundled else [its_orders]):
                    if name in senders[h]:
                        raise ValueError(f"{name}: more than one order message in hour {hours[h]}")
                    senders[h][name] = source
                    books[h] += ([Order(name, side, price, quantity) for side, price, quantity in hour_orders]
                                 if bundled else [Order(name, o["side"], o["price_eur_per_kwh"], o["quantity_kwh"])
                                                  for o in hour_orders])
            answers.append((source, list(sent), shared, bundled))
        cleared = [clear_pool(books[h], senders[h]) for h in range(periods)]
        for destination, names, shared, bundled in answers:  # each message answered in its form
            fed.send(inbox, destination, bundled_answer(hours, cleared, names, shared) if bundled
                     else period_answer(k, cleared[0], names, shared))
        if book_to is not None:
            fed.send(inbox, book_to, bundled_book(hours, cleared) if periods > 1 else period_book(k, cleared[0]))
        values = {"price_eur_per_kwh": [math.nan if c["price"] is None else c["price"] for c in cleared],
                  "volume_kwh": [c["volume"] for c in cleared]}
        for port in outputs:
            fed.publish_port(port, np.array(values[port]) if periods > 1 else values[port][0])

    def clear_pool(orders: list[Order], senders: dict) -> dict:
        """One period's pool cleared: its price and volume, the book (orders in participant-name order) and each
        order's accepted kWh, each participant's accepted kWh in the order it sent them, the allocations."""
        # the book in participant-name order, however the orders travelled: HELICS hands over messages of the
        # same time sorted by source endpoint, so one message per player arrived in this order already, and
        # one message for a group (or several groups) clears the same book to the last digit
        orders.sort(key=lambda order: order.participant)  # stable: a participant's orders stay in its order
        result = clear_double_auction(orders, solver=solver)
        accepted = result.accepted_kwh.tolist()
        mine: dict[str, list[int]] = {}  # participant -> its rows of the book
        for row, order in enumerate(orders):
            mine.setdefault(order.participant, []).append(row)
        bilateral = result.bilateral  # the factors: the sellers x buyers pairs only where a bidder reads them
        allocation: dict[str, dict[str, float]] = {name: {} for name in senders}
        if with_allocation:
            sellers, buyers = [str(x) for x in bilateral.sellers], [str(x) for x in bilateral.buyers]
            for i, j, energy in zip(*bilateral.pairs()):  # a seller's is negative (energy out), a buyer's positive
                seller, buyer, energy = sellers[i], buyers[j], float(energy)
                if seller in allocation:
                    allocation[seller][buyer] = allocation[seller].get(buyer, 0.0) - energy
                if buyer in allocation:
                    allocation[buyer][seller] = allocation[buyer].get(seller, 0.0) + energy
        return {"price": result.price_eur_per_kwh, "volume": result.volume_kwh, "orders": orders,
                "accepted": accepted, "mine": mine, "allocation": allocation, "bilateral": bilateral}

    def book_rows(c: dict, rows) -> list[dict]:
        orders, accepted = c["orders"], c["accepted"]
        return [{"participant": orders[r].participant, "side": orders[r].side,
                 "price_eur_per_kwh": orders[r].price_eur_per_kwh, "quantity_kwh": orders[r].quantity_kwh,
                 "accepted_kwh": accepted[r]} for r in rows]

    def period_answer(k: int, c: dict, names: list[str], shared: bool) -> dict:
        """One period's answer: the price and each player's book rows (and allocation)."""
        def answer(name: str) -> dict:
            rows = {"orders": book_rows(c, c["mine"].get(name, ()))}
            return {**rows, "allocation_kwh": c["allocation"][name]} if with_allocation else rows

        head = {"period": k, "price_eur_per_kwh": c["price"]}
        return {**head, "results": {name: answer(name) for name in names}} if shared else {**head, **answer(names[0])}

    def bundled_answer(hours: list[int], cleared: list[dict], names: list[str], shared: bool) -> dict:
        """Several periods' answer: their prices and each player's accepted kWh per period, in the order of the
        orders it sent (and allocations): the player knows its orders."""
        def answer(name: str) -> dict:
            out = {"accepted_kwh": [[c["accepted"][r] for r in c["mine"].get(name, ())] for c in cleared]}
            if with_allocation:
                out["allocation_kwh"] = [c["allocation"][name] for c in cleared]
            return out

        head = {"periods": hours, "price_eur_per_kwh": [c["price"] for c in cleared]}
        return {**head, "results": {name: answer(name) for name in names}} if shared else {**head, **answer(names[0])}

    def period_book(k: int, c: dict) -> dict:
        return {"period": k, "price_eur_per_kwh": c["price"], "volume_kwh": c["volume"],
                "orders": book_rows(c, range(len(c["orders"]))), "allocation": allocation_factors(c["bilateral"])}

    def bundled_book(hours: list[int], cleared: list[dict]) -> dict:
        """Several periods' books as columns (a row per order, its period first) and their allocations."""
        rows = [(h, o, a) for h, c in zip(hours, cleared) for o, a in zip(c["orders"], c["accepted"])]
        return {"periods": hours, "price_eur_per_kwh": [c["price"] for c in cleared],
                "volume_kwh": [c["volume"] for c in cleared],
                "orders": {"period": [h for h, _, _ in rows], "participant": [o.participant for _, o, _ in rows],
                           "side": [o.side for _, o, _ in rows],
                           "price_eur_per_kwh": [o.price_eur_per_kwh for _, o, _ in rows],
                           "quantity_kwh": [o.quantity_kwh for _, o, _ in rows],
                           "accepted_kwh": [a for _, _, a in rows]},
                "allocation": [allocation_factors(c["bilateral"]) for c in cleared]}

    return step


def allocation_factors(bilateral) -> dict:
    """The book's allocation: the sellers and buyers who traded, their kWh and the volume (the factors of x_ij)."""
    sold, bought = bilateral.sold_kwh, bilateral.bought_kwh
    rows, cols = np.flatnonzero(sold > 0), np.flatnonzero(bought > 0)
    return {"sellers": [str(bilateral.sellers[i]) for i in rows], "sold_kwh": sold[rows].tolist(),
            "buyers": [str(bilateral.buyers[j]) for j in cols], "bought_kwh": bought[cols].tolist(),
            "volume_kwh": float(bilateral.volume_kwh)}


if __name__ == "__main__":
    main(build, __doc__)
