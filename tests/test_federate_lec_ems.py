"""LEC_EMS federate over a real broker: a test market feeds prices, a test battery reads set-points."""

import math

import numpy as np
import pytest

from harness import SCENARIOS, TestFederate, enter_all, federate_under_test, offset
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.scenario import load_scenario

DAY_AHEAD = "market/day_ahead_price_eur_per_mwh"
DAY_AHEAD_EXPORT = "market/day_ahead_export_price_eur_per_mwh"
SETPOINT = "lec1/ems/battery_setpoint_mw"
PLANNED_SOC = "lec1/ems/planned_soc_mwh"

# Cheap night (hours 1-2), expensive evening (hours 18-19), flat in between.
PRICES = [30.0] * 24
PRICES[1] = PRICES[2] = 5.0
PRICES[18] = PRICES[19] = 90.0


def run_ems(tmp_path, scenario_name, prices, days=1):
    """Run the EMS for ``days``; ``prices`` is one day's 24 prices or a list of them per day."""
    daily = prices if isinstance(prices[0], list) else [prices] * days
    scenario = load_scenario(SCENARIOS / scenario_name).model_copy(update={"horizon_h": 24 * days})
    rows = []
    with federate_under_test("lec_ems", scenario, tmp_path, 2) as port:
        market = TestFederate("test_market", port, period=3600, offset=offset("market"),
                              publications=[(DAY_AHEAD, "vector"), (DAY_AHEAD_EXPORT, "vector")])
        battery = TestFederate("test_battery", port, period=3600, offset=offset("households"),
                               subscriptions=[(SETPOINT, "double"), (PLANNED_SOC, "double")])
        enter_all(market, battery)
        for hour in range(24 * days):
            market.arrive(hour * 3600)
            if hour % 24 == 0:
                market.publish(DAY_AHEAD, daily[hour // 24])
                market.publish(DAY_AHEAD_EXPORT, daily[hour // 24])
            # The battery is granted only once the market has moved on and the EMS has published.
            battery.request(hour * 3600)
            market.request((hour + 1) * 3600)  # the last request is the end time
            granted = battery.granted()
            assert abs(granted - (hour * 3600 + offset("households"))) < 1e-9
            rows.append((battery.value(SETPOINT), battery.value(PLANNED_SOC)))
        battery.close()
        market.granted()
        market.close()
    return scenario, np.array(rows)


def test_ems_arbitrage_schedule_follows_the_prices(tmp_path):
    scenario, rows = run_ems(tmp_path, "trondelag_arbitrage.yaml", PRICES)
    setpoint, soc = rows[:, 0], rows[:, 1]
    eta = math.sqrt(0.95)
    # Two cheap hours at full power store 1.2 * eta MWh, so hour 0 (price 30) first sells what the
    # battery would not have room for: SoC 0.6 -> 1.2 - 1.2 * eta.
    assert soc[0] == pytest.approx(1.2 - 1.2 * eta, abs=1e-9)
    assert setpoint[0] == pytest.approx(-(0.6 - soc[0]) * eta, abs=1e-9)
    assert setpoint[1] == pytest.approx(0.6, abs=1e-9) and setpoint[2] == pytest.approx(0.6, abs=1e-9)
    assert soc[2] == pytest.approx(1.2, abs=1e-9)
    # Everything is sold in the two dear hours: 0.6 MW, then what is left (1.2 - 0.6 / eta MWh).
    assert setpoint[18] == pytest.approx(-0.6, abs=1e-9)
    assert setpoint[19] == pytest.approx(-(1.2 - 0.6 / eta) * eta, abs=1e-9)
    # Then 0.6 MWh are bought back in the flat hours so the day ends where it began.
    assert np.all(setpoint[20:] >= -1e-12)
    assert setpoint[20:].sum() * eta == pytest.approx(0.6, abs=1e-9)
    assert soc[-1] == pytest.approx(0.6, abs=1e-9)
    # No trading in the flat hours between.
    np.testing.assert_allclose(setpoint[3:18], 0.0, atol=1e-9)
    # Planned SoC follows the published set-points hour by hour.
    previous = np.concatenate(([0.6], soc[:-1]))
    change = np.where(setpoint > 0, setpoint * eta, setpoint / eta)
    np.testing.assert_allclose(soc - previous, change, atol=1e-9)


def test_ems_self_consumption_stores_pv_surplus_and_returns_it(tmp_path):
    scenario, rows = run_ems(tmp_path, "trondelag_self_consumption.yaml", PRICES)
    setpoint, soc = rows[:, 0], rows[:, 1]
    forecast = HouseholdFleet.from_scenario(scenario).power(scenario.start, 3600, 24)
    surplus = (forecast.pv_p_mw - forecast.load_p_mw).clip(lower=0).to_numpy()
    # It charges only from surplus (never raises import) and never exports from the battery.
    assert np.all(setpoint <= surplus + 1e-9)
    net = forecast.load_p_mw.to_numpy() - forecast.pv_p_mw.to_numpy() + setpoint
    discharging = setpoint < -1e-9
    assert np.all(net[discharging] >= -1e-9)
    assert soc[-1] == pytest.approx(0.6, abs=1e-9)
    assert soc.max() == pytest.approx(1.2, abs=1e-9)  # the day's surplus exceeds the battery


def test_ems_solves_again_at_each_day_start(tmp_path):
    second_day = [30.0] * 24
    second_day[10] = 1.0
    second_day[11] = 100.0
    scenario, rows = run_ems(tmp_path, "trondelag_arbitrage.yaml", [PRICES, second_day], days=2)
    setpoint, soc = rows[:, 0], rows[:, 1]
    # Day 2 charges at 10:00 and sells at 11:00, both at full power, from a battery back at 0.6 MWh.
    assert soc[23] == pytest.approx(0.6, abs=1e-9) and soc[47] == pytest.approx(0.6, abs=1e-9)
    assert setpoint[34] == pytest.approx(0.6, abs=1e-9)
    assert setpoint[35] == pytest.approx(-0.6, abs=1e-9)
    assert setpoint[18] == pytest.approx(-0.6, abs=1e-9)  # day 1 still followed PRICES
