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
"""

from __future__ import annotations

import math

import numpy as np

from federates.common import Federate, main
from lec_cosim.models.auction import Order, clear_double_auction


def build(fed: Federate):
    solver = fed.options.solver
    with_allocation = fed.options.bidder_allocation
    inbox = fed.endpoint("orders")
    targets = fed.ports.get("targets", {})
    bidders = targets.get("results")  # participant -> its endpoint: where its orders come from, its result goes
    if not isinstance(bidders, dict):
        raise KeyError(f"federate {fed.name}: its config names no bidders (a targets map 'results': member -> "
                       "endpoint)")
    book_to = fed.target("book") if "book" in targets else None
    outputs = [port for port in ("price_eur_per_kwh", "volume_kwh") if port in fed.ports.get("out", {})]

    def step(k: int, t: float) -> None:
        orders, senders, answers = [], {}, []
        for source, payload in fed.receive(inbox):
            shared = "participants" in payload  # one message for the players of a shared endpoint
            books = payload["participants"] if shared else {payload.get("participant"): payload.get("orders")}
            for name, its_orders in books.items():
                if source != bidders.get(name) or payload.get("period") != k:
                    raise ValueError(f"order message from {source} for hour {payload.get('period')} "
                                     f"(participant {name!r}) in hour {k}")
                if name in senders:
                    raise ValueError(f"{name}: more than one order message in hour {k}")
                senders[name] = source
                orders += [Order(name, o["side"], o["price_eur_per_kwh"], o["quantity_kwh"]) for o in its_orders]
            answers.append((source, list(books), shared))
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

        def answer(name: str) -> dict:
            if with_allocation:
                return {"orders": mine.get(name, []), "allocation_kwh": allocation[name]}
            return {"orders": mine.get(name, [])}

        head = {"period": k, "price_eur_per_kwh": result.price_eur_per_kwh}
        for destination, names, shared in answers:  # each message answered in its form
            fed.send(inbox, destination, {**head, "results": {name: answer(name) for name in names}} if shared
                     else {**head, **answer(names[0])})
        if book_to is not None:
            fed.send(inbox, book_to, {
                "period": k, "price_eur_per_kwh": result.price_eur_per_kwh, "volume_kwh": result.volume_kwh,
                "orders": book, "allocation": allocation_factors(bilateral)})
        price = result.price_eur_per_kwh
        values = {"price_eur_per_kwh": math.nan if price is None else price, "volume_kwh": result.volume_kwh}
        for port in outputs:
            fed.publish_port(port, values[port])

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
