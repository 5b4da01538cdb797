"""Market operator federate: clears the hourly LEM pool as a uniform-price double auction.

At T + 2 ms of each hour it takes every order message that arrived (sent at T + 1 ms), clears
the book, sends each bidder its result (price, accepted quantities, its bilateral allocation
x_ij) and the recorder the whole book, and publishes price and volume. It never waits for
anyone: a bidder that sent nothing is simply not in the book.
"""

from __future__ import annotations

import math

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
        for name, source in senders.items():
            row = alloc.loc[name] if name in alloc.index else None
            col = alloc[name] if name in alloc.columns else None
            allocation = {}
            for series, in_kwh in ((row, False), (col, True)):
                if series is not None:
                    for other, kwh in series.items():
                        if kwh > 0:
                            allocation[other] = allocation.get(other, 0.0) + (float(kwh) if in_kwh else -float(kwh))
            fed.send(MARKET_ENDPOINT, source, {
                "period": k, "price_eur_per_kwh": result.price_eur_per_kwh,
                "orders": [b for b in book if b["participant"] == name],
                "allocation_kwh": allocation})
        fed.send(MARKET_ENDPOINT, RECORDER_ENDPOINT, {
            "period": k, "price_eur_per_kwh": result.price_eur_per_kwh, "volume_kwh": result.volume_kwh,
            "orders": book,
            "allocation_kwh": [[str(seller), str(buyer), float(kwh)] for seller, r in alloc.iterrows()
                               for buyer, kwh in r.items() if kwh > 0]})
        price = result.price_eur_per_kwh
        fed.publish("lem/market/price_eur_per_kwh", math.nan if price is None else price)
        fed.publish("lem/market/volume_kwh", result.volume_kwh)

    return step


if __name__ == "__main__":
    main(build, __doc__)
