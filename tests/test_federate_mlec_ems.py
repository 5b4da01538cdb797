"""LEC_EMS federate over a real broker (decentralised): plans from measured SoC, trades on the platform.

A test households federate publishes the batteries' state of charge (30 % of capacity after hour
0), a test platform answers the LEC's positions, an observer reads the set-points and records.
Checked against the same rest-of-day problem solved in this process.
"""

import numpy as np
import pytest

from harness import TestFederate, enter_all, federate_under_test, write_scenario
from lec_cosim.models.exchange import solve_centralised
from lec_cosim.models.multi_lec_ems import members_from_scenario, pooled_batteries, rest_of_day_problem
from lec_cosim.multi_lec_federation import (
    EMS_SETTLE_OFFSET_S,
    HOUSEHOLDS_OFFSET_S,
    PLATFORM_ENDPOINT,
    PLATFORM_OFFSET_S,
    RECORDER_OFFSET_S,
    ems_endpoint,
)
from lec_cosim.scenario import load_scenario


@pytest.mark.timeout(180)
def test_ems_plans_from_measured_soc_and_settles_on_the_platform(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_three_lecs", {"horizon_h": 3}))
    members = members_from_scenario(scenario)
    table = members.table
    batteries = pooled_batteries(members, home_batteries=True)
    soc_fraction = {0: 0.5, 1: 0.3, 2: 0.3}
    positions, answers_sent, setpoints, records = {}, {}, {}, {}
    with federate_under_test("lec_ems_1", scenario, tmp_path / "run", 3) as port:
        households = TestFederate("households", port, period=900.0, offset=HOUSEHOLDS_OFFSET_S,
                                  publications=[("mlec/households/soc_kwh", "vector")])
        platform = TestFederate("platform", port, period=3600.0, offset=PLATFORM_OFFSET_S,
                                endpoints=[PLATFORM_ENDPOINT])
        observer = TestFederate("observer", port, period=3600.0, offset=RECORDER_OFFSET_S,
                                subscriptions=[("mlec/lec1/ems/pooled_charge_kw", "double"),
                                               ("mlec/lec1/ems/curtail_kw", "double"),
                                               ("mlec/lec1/ems/record", "string")])
        enter_all(households, platform, observer)
        for hour in range(3):
            start = hour * 3600.0
            observer.request(start)
            platform.request(start)
            for step in range(4):
                households.arrive(start + step * 900.0)
                households.publish("mlec/households/soc_kwh", soc_fraction[min(hour + 1, 2)] * table["battery_kwh"])
                if step == 0:
                    platform.arrive(start)
                    [(source, position)] = platform.receive(PLATFORM_ENDPOINT)
                    assert source == ems_endpoint("lec1") and position["hour"] == hour
                    positions[hour] = position["position_kwh"]
                    answers_sent[hour] = {"hour": hour, "lec": "lec1", "bought_kwh": 1.5, "sold_kwh": 0.0,
                                          "payment_eur": 0.15}
                    platform.send(PLATFORM_ENDPOINT, ems_endpoint("lec1"), answers_sent[hour])
                    platform.request(start + 3600.0)
            observer.arrive(start)
            setpoints[hour] = (observer.value("mlec/lec1/ems/pooled_charge_kw"), observer.value("mlec/lec1/ems/curtail_kw"))
            records[hour] = observer.json_value("mlec/lec1/ems/record")
        households.request(3 * 3600.0)
        households.granted()
        platform.granted()
        for fed in (households, platform, observer):
            fed.close()

    lec1 = (table["lec"] == "lec1").to_numpy()
    for hour in range(3):
        soc = soc_fraction[hour] * batteries.energy_kwh  # what the households published before the hour
        if hour:
            assert soc[0] == pytest.approx(float(np.sum((0.3 * table["battery_kwh"])[lec1 & (batteries.share > 0)])))
        plan = solve_centralised(rest_of_day_problem(members, scenario, first_hour=hour, soc_kwh=soc,
                                                     batteries=batteries, with_edges=False, only_lec=0))
        charge = plan.charge_kw[0, 0] - plan.discharge_kw[0, 0]
        assert setpoints[hour][0] == pytest.approx(charge, abs=1e-6)
        assert setpoints[hour][1] == pytest.approx(plan.curtailed_kw[0, 0], abs=1e-6)
        assert positions[hour] == pytest.approx(plan.import_kw[0, 0] - plan.export_kw[0, 0], abs=1e-6)
        r = records[hour]
        assert r["hour"] == hour and r["lec"] == "lec1" and r["soc_start_kwh"] == pytest.approx(soc[0])
        assert r["platform"] == answers_sent[hour]
    # Hour 0 starts the battery at 50 % (nothing measured yet), later hours at the measured 30 %.
    assert records[0]["soc_start_kwh"] == pytest.approx(0.5 * batteries.energy_kwh[0])
