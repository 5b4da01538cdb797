"""Households federate over a real broker: a test EMS sends set-points, a test DSO reads powers."""

import math

import numpy as np
import pytest

from harness import SCENARIOS, TestFederate, enter_all, federate_under_test, offset
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.scenario import load_scenario

SETPOINT = "lec1/ems/battery_setpoint_mw"
OUTPUTS = ["lec1/households/p_mw", "lec1/households/q_mvar", "lec1/pv/p_mw",
           "lec1/battery/p_mw", "lec1/battery/soc_mwh"]


def test_households_play_profiles_and_battery_follows_setpoints_within_limits(tmp_path):
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml").model_copy(update={"horizon_h": 4})
    # Hourly set-points: charge at full power for 2 h (the battery fills after ~1.03 h),
    # then ask for more discharge than the rating allows, then idle.
    hourly_setpoints = [0.6, 0.6, -0.9, 0.0]
    rows = []
    with federate_under_test("households", scenario, tmp_path, 2) as port:
        ems = TestFederate("test_ems", port, period=3600, offset=offset("lec_ems"),
                           publications=[(SETPOINT, "double")])
        dso = TestFederate("test_dso", port, period=900, offset=offset("dso"),
                           subscriptions=[(key, "double") for key in OUTPUTS])
        enter_all(ems, dso)
        for k in range(16):
            t = k * 900
            if k % 4 == 0:
                ems.arrive(t)
                ems.publish(SETPOINT, hourly_setpoints[k // 4])
                ems.request(t + 3600)  # the EMS's next hour; the last request is the end time
            granted = dso.advance(t)
            assert abs(granted - (t + offset("dso"))) < 1e-9
            rows.append([dso.value(key) for key in OUTPUTS])
        dso.close()
        ems.granted()
        ems.close()

    rows = np.array(rows)
    load, q, pv, battery, soc = rows.T
    expected = HouseholdFleet.from_scenario(scenario).power(scenario.start, 900, 16)
    np.testing.assert_allclose(load, expected.load_p_mw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pv, expected.pv_p_mw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q, load * math.tan(math.acos(0.97)), rtol=1e-12)

    eta = math.sqrt(0.95)
    step_h = 0.25
    # Charging 0.6 MW stores 0.6 * eta * 0.25 MWh per step: four full steps, then the remainder.
    np.testing.assert_allclose(battery[:4], 0.6, atol=1e-12)
    np.testing.assert_allclose(soc[:4], 0.6 + 0.6 * eta * step_h * np.arange(1, 5), atol=1e-12)
    remainder = (1.2 - soc[3]) / (eta * step_h)
    assert battery[4] == pytest.approx(remainder, abs=1e-12)
    assert soc[4] == pytest.approx(1.2, abs=1e-12)
    np.testing.assert_allclose(battery[5:8], 0.0, atol=1e-12)
    # -0.9 MW asked, -0.6 MW (the rating) delivered, drawing 0.6 / eta * 0.25 MWh a step.
    np.testing.assert_allclose(battery[8:12], -0.6, atol=1e-12)
    np.testing.assert_allclose(soc[8:12], 1.2 - 0.6 / eta * step_h * np.arange(1, 5), atol=1e-12)
    np.testing.assert_allclose(battery[12:], 0.0, atol=1e-12)
    np.testing.assert_allclose(soc[12:], soc[11], atol=1e-12)
