"""Participant federate over a real broker: a test market answers its orders, a test DSO reads it.

The test market accepts half of every order at a price it picks; the federate must bid what its
players need (consumers their load at retail, prosumers their deficit or surplus, CHPs their
capacity at its opportunity cost), then settle exactly that and inject the accepted CHP output.
"""

import numpy as np
import pytest
from harness import TestFederate, enter_all, federate_under_test, write_scenario

from lec_cosim.models.bidding import FEED_IN_EUR_PER_KWH, chp_production_cost_eur, retail_tariff_eur_per_kwh
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.wiring import (
    DSO_OFFSET_S,
    MARKET_ENDPOINT,
    MARKET_OFFSET_S,
    PARTICIPANT_VECTORS,
    SETTLEMENT_VECTORS,
    groups,
    participant_endpoint,
    plan,
)

HOURS = 13  # midnight to 13:00: night demand and the midday PV surplus
PRICES = [0.09 + 0.005 * h for h in range(HOURS)]  # the test market's price in each hour


@pytest.mark.timeout(180)
@pytest.mark.parametrize("exchange", ["step", "period"])
def test_participants_bid_settle_and_inject(tmp_path, exchange):
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_bihourly", {
        "horizon_h": HOURS, "participants.federates": 2,
        "market.chp_strategy": "truthful", "market.learned_bids_file": None,
        "resolution.exchange": exchange})
    block = 4 if exchange == "period" else 1  # grid steps per publication
    scenario = load_scenario(path)
    community = community_from_scenario(scenario)
    members = groups(scenario)["participants_1"]
    group = next(f for f in plan(scenario) if f.name == "participants_1")
    # every key, endpoint and destination comes from its config by port name
    assert group.endpoint_ports == {m: participant_endpoint(m) for m in members}
    assert group.targets == {"orders": MARKET_ENDPOINT}
    assert [s.port for s in group.publications] == list(PARTICIPANT_VECTORS + SETTLEMENT_VECTORS)
    idx = [community.names.index(m) for m in members]
    vectors = [f"lem/participants_1/{v}" for v in PARTICIPANT_VECTORS + SETTLEMENT_VECTORS]
    books, seen = {}, {}
    with federate_under_test("participants_1", scenario, tmp_path / "run", 2) as port:
        market = TestFederate("test_market", port, period=3600, offset=MARKET_OFFSET_S, endpoints=[MARKET_ENDPOINT])
        dso = TestFederate("test_dso", port, period=900 * block, offset=DSO_OFFSET_S,
                           subscriptions=[(key, "vector") for key in vectors])
        enter_all(market, dso)
        for step in range(0, 4 * HOURS, block):
            t = step * 900.0
            if step % 4 == 0:
                hour = step // 4
                dso.request(t)
                market.arrive(t)
                received = market.receive(MARKET_ENDPOINT)
                books[hour] = received
                for source, payload in received:
                    market.send(MARKET_ENDPOINT, source, {
                        "period": hour, "price_eur_per_kwh": PRICES[hour],
                        "orders": [{**o, "accepted_kwh": o["quantity_kwh"] / 2} for o in payload["orders"]],
                        "allocation_kwh": {}})
                market.request(t + 3600)
                dso.arrive(t)
            else:
                dso.arrive(t)
            got = {key.rsplit("/", 1)[1]: np.array(dso.vector(key)) for key in vectors}
            n = len(members)
            for j in range(block):  # physical vectors hold the block's steps, step-major
                seen[step + j] = {v: (x[j * n:(j + 1) * n] if v in PARTICIPANT_VECTORS else x)
                                  for v, x in got.items()}
                assert all(len(x) == (n * block if v in PARTICIPANT_VECTORS else n) for v, x in got.items())
        market.granted()
        market.close()
        dso.close()

    kinds = community.kinds[idx]
    for hour in range(HOURS):
        # one message per player, sent from its own endpoint
        assert sorted(src for src, _ in books[hour]) == sorted(f"lem/{m}" for m in members)
        by_name = {p["participant"]: p["orders"] for _, p in books[hour]}
        retail = retail_tariff_eur_per_kwh(hour, "bihourly")
        for j, name in enumerate(members):
            i = idx[j]
            load, pv = community.load_kwh[i, hour], community.pv_kwh[i, hour]
            orders = by_name[name]
            if kinds[j] == "chp":
                # truthful: the opportunity cost max(marginal cost 0.04, feed-in 0.045)
                assert orders == [{"side": "sell", "price_eur_per_kwh": pytest.approx(0.045), "quantity_kwh": 10.0}]
            elif load - pv > 0:
                assert orders == [{"side": "buy", "price_eur_per_kwh": retail, "quantity_kwh": pytest.approx(load - pv)}]
            else:
                assert orders == [{"side": "sell", "price_eur_per_kwh": FEED_IN_EUR_PER_KWH,
                                   "quantity_kwh": pytest.approx(pv - load)}]
        v = seen[4 * hour]
        half = {n: sum(o["quantity_kwh"] for o in by_name[n]) / 2 for n in members}
        for j, name in enumerate(members):
            i = idx[j]
            need = max(community.load_kwh[i, hour] - community.pv_kwh[i, hour], 0.0)
            surplus = max(community.pv_kwh[i, hour] - community.load_kwh[i, hour], 0.0)
            if kinds[j] == "chp":
                assert v["chp_kwh"][j] == pytest.approx(5.0)
                assert v["cost_eur"][j] == pytest.approx(chp_production_cost_eur(5.0))
                assert v["income_eur"][j] == pytest.approx(5.0 * PRICES[hour])
            else:
                cost = PRICES[hour] * (need / 2) + retail * (need / 2)
                income = PRICES[hour] * (surplus / 2) + FEED_IN_EUR_PER_KWH * (surplus / 2)
                assert v["cost_eur"][j] == pytest.approx(cost)
                assert v["income_eur"][j] == pytest.approx(income)
                assert v["lem_bought_kwh"][j] + v["lem_sold_kwh"][j] == pytest.approx(half[name])
        # physical injections every quarter hour: the profiles, plus the accepted CHP output
        for step in range(4 * hour, 4 * hour + 4):
            v = seen[step]
            np.testing.assert_allclose(v["load_kw"], community.load_kw[idx, step])
            np.testing.assert_allclose(v["pv_kw"], community.pv_kw[idx, step])
            np.testing.assert_allclose(v["chp_kw"], np.where(kinds == "chp", 5.0, 0.0))
            np.testing.assert_allclose(v["net_kw"], v["load_kw"] - v["pv_kw"] - v["chp_kw"])
    assert (kinds == "chp").sum() == 3 and len(members) == 31
    sellers = {n for _, p in books[11] for o in p["orders"] if o["side"] == "sell" for n in [p["participant"]]}
    assert len(sellers) > 10  # prosumers offer their surplus at noon
