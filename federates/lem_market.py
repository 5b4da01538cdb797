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

With settings ``periods_per_step`` P > 1 (a day's hours) each step clears P pools, one per period: an order
message holds ``{"periods": [k, ...], ...}`` and, where one period's message has a list of orders, a list of P
such lists; each answer is ``{"periods": [...], "answers": [one period's answer without "period", ...]}``, the
book ``{"periods": [...], "books": [one period's book, ...]}``, and the price and volume are vectors of P values.
Each pool is cleared as if alone: the same numbers as P steps of one period.
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
                for h, hour_orders in enumerate(its_orders if bundled else [its_orders]):
                    if name in senders[h]:
                        raise ValueError(f"{name}: more than one order message in hour {hours[h]}")
                    senders[h][name] = source
                    books[h] += [Order(name, o["side"], o["price_eur_per_kwh"], o["quantity_kwh"])
                                 for o in hour_orders]
            answers.append((source, list(sent), shared, bundled))
        cleared = [clear_pool(h, books[h], senders[h]) for h in range(periods)]

        def answer(h: int, name: str) -> dict:
            mine, allocation = cleared[h]["mine"], cleared[h]["allocation"]
            if with_allocation:
                return {"orders": mine.get(name, []), "allocation_kwh": allocation[name]}
            return {"orders": mine.get(name, [])}

        for destination, names, shared, bundled in answers:  # each message answered in its form
            per_hour = [{"price_eur_per_kwh": cleared[h]["price"],
                         **({"results": {name: answer(h, name) for name in names}} if shared else answer(h, names[0]))}
                        for h in range(periods)]
            fed.send(inbox, destination, {"periods": hours, "answers": per_hour} if bundled
                     else {"period": k, **per_hour[0]})
        if book_to is not None:
            books_out = [{"period": hours[h], "price_eur_per_kwh": c["price"], "volume_kwh": c["volume"],
                          "orders": c["book"], "allocation": allocation_factors(c["bilateral"])}
                         for h, c in enumerate(cleared)]
            fed.send(inbox, book_to, {"periods": hours, "books": books_out} if periods > 1 else books_out[0])
        values = {"price_eur_per_kwh": [math.nan if c["price"] is None else c["price"] for c in cleared],
                  "volume_kwh": [c["volume"] for c in cleared]}
        for port in outputs:
            fed.publish_port(port, np.array(values[port]) if periods > 1 else values[port][0])

    def clear_pool(h: int, orders: list[Order], senders: dict) -> dict:
        """One period's pool cleared: its price, volume, book rows, each sender's rows and allocation."""
        # the book in participant-name order, however the orders travelled: HELICS hands over messages of the
        # same time sorted by source endpoint, so one message per player arrived in this order already, and
        # one message for a group (or several groups) clears the same book to the last digit
        orders.sort(key=lambda order: order.participant)
        result = clear_double_auction(orders, solver=solver)
        book = [{"participant": o.participant, "side": o.side, "price_eur_per_kwh": o.price_eur_per_kwh,
                 "quantity_kwh": o.quantity_kwh, "accepted_kwh": a}
                for o, a in zip(orders, result.accepted_kwh.tolist())]
        bilateral = result.bilateral  # the factors: the sellers x buyers pairs only where a bidder reads them
        mine: dict[str, list] = {}
        for entry in book:
            mine.setdefault(entry["participant"], []).append(entry)
        allocation: dict[str, dict[str, float]] = {name: {} for name in senders}
        if with_allocation:
            sellers, buyers = [str(x) for x in bilateral.sellers], [str(x) for x in bilateral.buyers]
            for i, j, energy in zip(*bilateral.pairs()):  # a seller's is negative (energy out), a buyer's positive
                seller, buyer, energy = sellers[i], buyers[j], float(energy)
                if seller in allocation:
                    allocation[seller][buyer] = allocation[seller].get(buyer, 0.0) - energy
                if buyer in allocation:
                    allocation[buyer][seller] = allocation[buyer].get(seller, 0.0) + energy
        return {"price": result.price_eur_per_kwh, "volume": result.volume_kwh, "book": book, "mine": mine,
                "allocation": allocation, "bilateral": bilateral}

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
