"""Households federate over a real broker: a test LEC_EMS federate sends pooled set-points.

Decentralised framework, two hours, 15-minute steps. Hour 0: lec1's pooled batteries charge at
20 kW, lec2's discharge at 10 kW, lec3's idle; hour 1: lec1 discharges 12 kW and curtails 3 kW of
PV (there is none at 01:00, so nothing is curtailed). Each battery takes the LEC's set-point in
proportion to its power rating; members' net power is load - PV + battery.
"""

import math

import numpy as np
import pytest
from harness import TestFederate, enter_all, federate_under_test, write_scenario

from lec_cosim.models.multi_lec_ems import members_from_scenario
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.three_lecs.wiring import EMS_PLAN_OFFSET_S, HOUSEHOLD_VECTORS, MS_PERIOD_S, RECORDER_OFFSET_S

SETPOINTS = {0: {"lec1": (20.0, 0.0), "lec2": (-10.0, 0.0), "lec3": (0.0, 0.0)},
             1: {"lec1": (-12.0, 3.0), "lec2": (0.0, 0.0), "lec3": (0.0, 0.0)}}


@pytest.mark.timeout(120)
def test_households_follow_the_pooled_setpoints_and_publish_members_powers(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_three_lecs", {"horizon_h": 2}))
    members = members_from_scenario(scenario)
    published = {}
    with federate_under_test("households", scenario, tmp_path / "run", 2) as port:
        pubs = [(f"mlec/{lec}/ems/{v}", "double") for lec in members.lec_names
                for v in ("pooled_charge_kw", "curtail_kw")]
        # the LEC_EMSs' meter endpoints, where the households send each hour's metered energy (not read here)
        ems = TestFederate("ems", port, period=MS_PERIOD_S, offset=EMS_PLAN_OFFSET_S, publications=pubs,
                           endpoints=[f"mlec/{lec}/meter" for lec in members.lec_names])
        observer = TestFederate("observer", port, period=900.0, offset=RECORDER_OFFSET_S,
                                subscriptions=[(f"mlec/households/{v}", "vector") for v in HOUSEHOLD_VECTORS])
        enter_all(ems, observer)
        for hour in range(2):
            ems.arrive(hour * 3600.0)
            for lec, (charge, curtail) in SETPOINTS[hour].items():
                ems.publish(f"mlec/{lec}/ems/pooled_charge_kw", charge)
                ems.publish(f"mlec/{lec}/ems/curtail_kw", curtail)
            ems.request((hour + 1) * 3600.0)  # hold the next set-points back until the observer has this hour
            for step in range(4 * hour, 4 * hour + 4):
                observer.arrive(step * 900.0)
                published[step] = {v: np.array(observer.vector(f"mlec/households/{v}")) for v in HOUSEHOLD_VECTORS}
        observer.close()
        ems.granted()
        for fed in (ems,):
            fed.close()

    table = members.table
    rating = table["battery_kw"].to_numpy()
    leg = math.sqrt(0.95)
    soc = 0.5 * table["battery_kwh"].to_numpy()
    for step in range(8):
        hour = step // 4
        p = published[step]
        wanted = np.array([SETPOINTS[hour][lec][0] for lec in table["lec"]])
        lec_rating = table.groupby("lec")["battery_kw"].transform("sum").to_numpy()
        expected = wanted * rating / lec_rating
        np.testing.assert_allclose(p["battery_kw"], expected, atol=1e-9)
        for lec in members.lec_names:
            assert p["battery_kw"][table["lec"] == lec].sum() == pytest.approx(SETPOINTS[hour][lec][0], abs=1e-9)
        soc = soc + np.where(expected > 0, expected * leg, expected / leg) * 0.25
        np.testing.assert_allclose(p["soc_kwh"], soc, atol=1e-9)
        np.testing.assert_allclose(p["load_kw"], members.load_kw[:, step], atol=1e-12)
        np.testing.assert_allclose(p["pv_kw"], members.pv_kw[:, step], atol=1e-12)  # no PV at night: nothing curtailed
        assert not p["curtailed_kw"].any()
        np.testing.assert_allclose(p["net_kw"], p["load_kw"] - p["pv_kw"] + p["battery_kw"], atol=1e-12)
