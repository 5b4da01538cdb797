"""Market operator federate over a real broker, observed by a test federate in the EMS's slot."""

import numpy as np

from harness import SCENARIOS, TestFederate, federate_under_test, offset
from lec_cosim.models.prices import PriceFeed
from lec_cosim.scenario import load_scenario

DAY_AHEAD = "market/day_ahead_price_eur_per_mwh"
DAY_AHEAD_EXPORT = "market/day_ahead_export_price_eur_per_mwh"
PRICE = "market/price_eur_per_mwh"
EXPORT = "market/export_price_eur_per_mwh"


def test_market_publishes_day_ahead_vectors_at_day_start_and_price_every_hour(tmp_path):
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml").model_copy(update={"horizon_h": 48})
    expected = PriceFeed.from_scenario(scenario).prices(scenario.start, 3600, 48)
    seen = []
    with federate_under_test("market", scenario, tmp_path, 1) as port:
        probe = TestFederate("probe", port, period=3600, offset=offset("lec_ems"),
                             subscriptions=[(DAY_AHEAD, "vector"), (DAY_AHEAD_EXPORT, "vector"),
                                            (PRICE, "double"), (EXPORT, "double")])
        probe.enter()
        for hour in range(48):
            granted = probe.advance(hour * 3600)
            assert abs(granted - (hour * 3600 + offset("lec_ems"))) < 1e-9
            vector_new = probe.updated(DAY_AHEAD)
            seen.append((hour, vector_new, probe.vector(DAY_AHEAD), probe.value(PRICE), probe.value(EXPORT)))
        probe.close()

    day_starts = [hour for hour, new, *_ in seen if new]
    assert day_starts == [0, 24]
    for hour, _, vector, price, export in seen:
        day = hour // 24
        np.testing.assert_allclose(vector, expected.price[day * 24 : day * 24 + 24], rtol=0, atol=1e-12)
        assert price == expected.price[hour]
        assert export == expected.price[hour]  # no feed-in tariff: exports earn the spot price
    # Real NO1 prices of 26 May 2019, 05:00 (the day's minimum) and 19:00 (its maximum).
    assert seen[5][3] == 15.12 and seen[19][3] == 37.16


def test_market_feed_in_tariff_replaces_export_price(tmp_path):
    base = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    scenario = base.model_copy(update={"horizon_h": 3,
                                       "market": base.market.model_copy(update={"feed_in_tariff": 12.5})})
    with federate_under_test("market", scenario, tmp_path, 1) as port:
        probe = TestFederate("probe", port, period=3600, offset=offset("lec_ems"),
                             subscriptions=[(DAY_AHEAD_EXPORT, "vector"), (EXPORT, "double"), (PRICE, "double")])
        probe.enter()
        rows = []
        for hour in range(3):
            probe.advance(hour * 3600)
            rows.append((probe.vector(DAY_AHEAD_EXPORT), probe.value(EXPORT), probe.value(PRICE)))
        probe.close()
    assert rows[0][0] == [12.5, 12.5, 12.5]
    assert [r[1] for r in rows] == [12.5, 12.5, 12.5]
    assert [r[2] for r in rows] == [32.75, 29.44, 28.59]
