"""Market operator federate: clears the hourly LEM pool as a uniform-price double auction.

At T + 2 ms of each hour it takes every order message that arrived (sent at T + 1 ms), clears
the book, sends each bidder its result (price, accepted quantities, its bilateral allocation
x_ij) and the recorder the whole book, and publishes price and volume. It never waits for
anyone: a bidder that sent nothing is simply not in the book.
"""

from __future__ import annotations

import math

import numpy as np

from federates.common import Federate, main
from lec_cosim.lem_federation import MARKET_ENDPOINT, RECORDER_ENDPOINT, participant_endpoint
from lec_cosim.models.auction import Order, clear_double_auction


def build(fed: Federate):
    s = fed.scenario

    def step(k: int, t: float) -> None:
        orders, senders = [], {}
        for source, payload in fed.receive(MARKET_ENDPOINT):
            name = payload.get("participant")
            if source != participant_endpoint(name) or payload.get("period") != k:
                raise ValueError(f"order message from {source} for hour {payload.get('period')} "
                                 f"(participant {name!r}) in hour {k}")
            if name in senders:
                raise ValueError(f"{name}: more than one order message in hour {k}")
            senders[name] = source
            orders += [Order(name, o["side"], o["price_eur_per_kwh"], o["quantity_kwh"]) for o in payload["orders"]]
        result = clear_double_auction(orders, solver=s.market.solver)
        book = [{"participant": o.participant, "side": o.side, "price_eur_per_kwh": o.price_eur_per_kwh,
                 "quantity_kwh": o.quantity_kwh, "accepted_kwh": float(a)}
                for o, a in zip(orders, result.accepted_kwh)]
        alloc = result.allocation
        sellers, buyers = [str(x) for x in alloc.index], [str(x) for x in alloc.columns]
        kwh = alloc.to_numpy(dtype=float)  # one array: .loc per participant costs more than the clearing
        pairs = np.argwhere(kwh > 0)
        mine: dict[str, list] = {}
        for entry in book:
            mine.setdefault(entry["participant"], []).append(entry)
        allocation: dict[str, dict[str, float]] = {name: {} for name in senders}
        for i, j in pairs:  # a seller's allocation is negative (energy out), a buyer's positive
            seller, buyer, energy = sellers[i], buyers[j], float(kwh[i, j])
            if seller in allocation:
                allocation[seller][buyer] = allocation[seller].get(buyer, 0.0) - energy
            if buyer in allocation:
                allocation[buyer][seller] = allocation[buyer].get(seller, 0.0) + energy
        for name, source in senders.items():
            fed.send(MARKET_ENDPOINT, source, {
                "period": k, "price_eur_per_kwh": result.price_eur_per_kwh,
                "orders": mine.get(name, []), "allocation_kwh": allocation[name]})
        fed.send(MARKET_ENDPOINT, RECORDER_ENDPOINT, {
            "period": k, "price_eur_per_kwh": result.price_eur_per_kwh, "volume_kwh": result.volume_kwh,
            "orders": book,
            "allocation_kwh": [[sellers[i], buyers[j], float(kwh[i, j])] for i, j in pairs]})
        price = result.price_eur_per_kwh
        fed.publish("lem/market/price_eur_per_kwh", math.nan if price is None else price)
        fed.publish("lem/market/volume_kwh", result.volume_kwh)

    return step


if __name__ == "__main__":
    main(build, __doc__)
