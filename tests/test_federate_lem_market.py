"""Market operator federate over a real broker: 64 bidders on 16 test federates send order messages.

The books are solved by hand; every hour the federate must answer every bidder (orders stamped
T + 1 ms, results read at T + 3 ms) without anyone waiting for a reply.
"""

import math

import pytest

from harness import TestFederate, arrive_all, enter_all, federate_under_test, write_scenario
from lec_cosim.lem_federation import (
    DISPATCH_OFFSET_S,
    MARKET_ENDPOINT,
    ORDER_OFFSET_S,
    RECORDER_ENDPOINT,
    SLOT_PERIOD_S,
    participant_endpoint,
)
from lec_cosim.scenario import load_scenario

N_FEDERATES, PER_FEDERATE = 16, 4
BIDDERS = [f"B{i:02d}" for i in range(N_FEDERATES * PER_FEDERATE)]
BUYERS, SELLERS = BIDDERS[:60], BIDDERS[60:]


def book(hour: int) -> dict[str, list[dict]]:
    """Orders of every bidder in ``hour`` (EUR/kWh, kWh)."""
    def order(side, price, qty):
        return {"side": side, "price_eur_per_kwh": price, "quantity_kwh": qty}

    orders = {name: [] for name in BIDDERS}
    if hour == 0:  # 60 kWh demand at retail; supply 20 @ 0.04, 20 @ 0.045, 2 x 15 @ 0.10 (a tie)
        for name in BUYERS:
            orders[name] = [order("buy", 0.158, 1.0)]
        for name, (price, qty) in zip(SELLERS, [(0.04, 20.0), (0.045, 20.0), (0.10, 15.0), (0.10, 15.0)]):
            orders[name] = [order("sell", price, qty)]
    elif hour == 1:  # no crossing: bids at 0.05, offers at 0.06
        for name in BUYERS[:10]:
            orders[name] = [order("buy", 0.05, 1.0)]
        orders[SELLERS[0]] = [order("sell", 0.06, 5.0)]
    elif hour == 3:  # demand only
        orders[BUYERS[0]] = [order("buy", 0.158, 2.0)]
    return orders  # hour 2: an empty book


EXPECTED = {  # hour -> (price, {bidder: accepted kWh})
    0: (0.10, {**{b: 1.0 for b in BUYERS}, **dict(zip(SELLERS, [20.0, 20.0, 10.0, 10.0]))}),
    1: (None, {}), 2: (None, {}), 3: (None, {}),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("solver", ["merit_order", "glpk"])
def test_market_clears_each_hour_and_answers_every_bidder(tmp_path, solver):
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": 4, "market.solver": solver, "market.chp_strategy": "truthful", "market.learned_bids_file": None})
    scenario = load_scenario(path)
    results, books, prices = {}, {}, {}
    with federate_under_test("market", scenario, tmp_path / "run", N_FEDERATES + 1) as port:
        bidders = []
        for f in range(N_FEDERATES):
            names = BIDDERS[f * PER_FEDERATE:(f + 1) * PER_FEDERATE]
            fed = TestFederate(f"bidders_{f}", port, period=SLOT_PERIOD_S, offset=ORDER_OFFSET_S,
                               endpoints=[participant_endpoint(n) for n in names])
            fed.names = names
            bidders.append(fed)
        observer = TestFederate("observer", port, period=SLOT_PERIOD_S, offset=DISPATCH_OFFSET_S,
                                endpoints=[RECORDER_ENDPOINT],
                                subscriptions=[("lem/market/price_eur_per_kwh", "double"),
                                               ("lem/market/volume_kwh", "double")])
        enter_all(*bidders, observer)
        for hour in range(4):
            T = hour * 3600.0
            # Every test federate must have a request outstanding, or the others cannot be granted.
            observer.request(T)  # T + 3 ms
            arrive_all(bidders, T)  # T + 1 ms
            orders = book(hour)
            for fed in bidders:
                for name in fed.names:
                    fed.send(participant_endpoint(name), MARKET_ENDPOINT,
                             {"period": hour, "participant": name, "orders": orders[name]})
            arrive_all(bidders, T + 0.002)  # results are read at T + 3 ms
            observer.arrive(T)
            for fed in bidders:
                for name in fed.names:
                    results[hour, name] = fed.receive(participant_endpoint(name))
            books[hour] = observer.receive(RECORDER_ENDPOINT)
            prices[hour] = (observer.value("lem/market/price_eur_per_kwh"), observer.value("lem/market/volume_kwh"))
        for fed in [*bidders, observer]:
            fed.close()

    for hour in range(4):
        price, accepted = EXPECTED[hour]
        assert len(books[hour]) == 1
        record = books[hour][0][1]
        assert record["period"] == hour
        volume = sum(v for name, v in accepted.items() if name in BUYERS)
        assert record["volume_kwh"] == pytest.approx(volume, abs=1e-9)
        if price is None:
            assert record["price_eur_per_kwh"] is None and math.isnan(prices[hour][0])
        else:
            assert record["price_eur_per_kwh"] == pytest.approx(price, abs=1e-12)
            assert prices[hour][0] == pytest.approx(price, abs=1e-12)
        assert prices[hour][1] == pytest.approx(volume, abs=1e-9)
        for name in BIDDERS:
            messages = results[hour, name]
            assert len(messages) == 1, (hour, name)  # everyone is answered, bids or not
            source, reply = messages[0]
            assert source == MARKET_ENDPOINT and reply["period"] == hour
            got = sum(o["accepted_kwh"] for o in reply["orders"])
            assert got == pytest.approx(accepted.get(name, 0.0), abs=1e-9)
            assert reply["price_eur_per_kwh"] == (None if price is None else pytest.approx(price, abs=1e-12))
    # Bilateral allocation of hour 0: each seller delivers to each buyer in proportion (x_ij = g_i d_j / V).
    _, reply = results[0, SELLERS[2]][0]
    assert reply["allocation_kwh"] == pytest.approx({b: -10.0 / 60.0 for b in BUYERS})
    _, reply = results[0, BUYERS[0]][0]
    assert reply["allocation_kwh"] == pytest.approx(dict(zip(SELLERS, [20 / 60, 20 / 60, 10 / 60, 10 / 60])))
    assert sum(e for _, _, e in books[0][0][1]["allocation_kwh"]) == pytest.approx(60.0)
