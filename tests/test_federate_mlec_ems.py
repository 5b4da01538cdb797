"""LEC_EMS federate over a real broker: decentralised (plans, trades on the platform) and p2p (runs its LEC's market).

Test federates play the platform, the members' HEMS and an observer of the set-points and
records; the plans are checked against the same rest-of-day problems solved in this process.
"""

import math

import numpy as np
import pytest
from harness import TestFederate, enter_all, federate_under_test, write_scenario

from lec_cosim.models.exchange import solve_centralised
from lec_cosim.models.multi_lec_ems import (
    hourly_mean,
    hourly_tariffs,
    members_from_scenario,
    pooled_batteries,
    rest_of_day_problem,
)
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.three_lecs.wiring import (
    EMS_CLEAR_OFFSET_S,
    HEMS_BID_OFFSET_S,
    HOUSEHOLDS_METER_ENDPOINT,
    HOUSEHOLDS_OFFSET_S,
    MEASURE_OFFSET_S,
    MS_PERIOD_S,
    PLATFORM_ENDPOINT,
    PLATFORM_OFFSET_S,
    RECORDER_OFFSET_S,
    ems_endpoint,
    market_endpoint,
    member_endpoint,
    meter_endpoint,
)


def run_decentralised_ems(tmp_path, changes: dict, measure=None):
    """lec1's LEC_EMS (decentralised) over the horizon of the scenario variant ``changes``.

    Test federates play the platform (answering every position), the households (sending the measured energy
    of lec1's pooled batteries at each hour's start: ``measure(hour, planned_soc_kwh)`` of the plan's energy at
    that hour's start, by default that energy, as when no battery clips) and an observer of the set-points and
    records. Returns the scenario, the platform's answers and, per hour, the position received, the set-points
    (pooled charge, curtailment), the record and the energy measured at its start (the first hour's: the known
    initial state, which nobody sends).
    """
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_three_lecs", changes))
    initial_kwh = 0.5 * pooled_batteries(members_from_scenario(scenario), home_batteries=True).energy_kwh[0]
    hours = int(scenario.horizon_h)
    positions, answers_sent, setpoints, records, measured = {}, {}, {}, {}, {}
    with federate_under_test("lec_ems_1", scenario, tmp_path / "run", 3) as port:
        households = TestFederate("households", port, period=MS_PERIOD_S, offset=MEASURE_OFFSET_S,
                                  endpoints=[HOUSEHOLDS_METER_ENDPOINT])
        platform = TestFederate("platform", port, period=3600.0, offset=PLATFORM_OFFSET_S,
                                endpoints=[PLATFORM_ENDPOINT])
        observer = TestFederate("observer", port, period=3600.0, offset=RECORDER_OFFSET_S,
                                subscriptions=[("mlec/lec1/ems/pooled_charge_kw", "double"),
                                               ("mlec/lec1/ems/curtail_kw", "double"),
                                               ("mlec/lec1/ems/record", "string")])
        enter_all(households, platform, observer)
        for hour in range(hours):
            start = hour * 3600.0
            observer.request(start)
            households.arrive(start)
            if hour == 0:  # nothing measured in the first hour: the known initial state
                measured[hour] = initial_kwh
            else:
                planned = records[hour - 1]["planned_soc_kwh"]
                measured[hour] = planned if measure is None else measure(hour, planned)
                households.send(HOUSEHOLDS_METER_ENDPOINT, meter_endpoint("lec1"),
                                {"hour": hour, "lec": "lec1", "pooled_soc_kwh": measured[hour]})
            households.request(start + 3600.0)
            platform.arrive(start)
            [(source, position)] = platform.receive(PLATFORM_ENDPOINT)
            assert source == ems_endpoint("lec1") and position["hour"] == hour
            positions[hour] = position["position_kwh"]
            answers_sent[hour] = {"hour": hour, "lec": "lec1", "bought_kwh": 1.5, "sold_kwh": 0.0, "payment_eur": 0.15}
            platform.send(PLATFORM_ENDPOINT, ems_endpoint("lec1"), answers_sent[hour])
            platform.request(start + 3600.0)  # a test federate idle between requests would hold the EMS back
            observer.arrive(start)
            setpoints[hour] = (observer.value("mlec/lec1/ems/pooled_charge_kw"),
                               observer.value("mlec/lec1/ems/curtail_kw"))
            records[hour] = observer.json_value("mlec/lec1/ems/record")
        observer.close()
        households.granted()
        households.close()
        platform.granted()
        platform.close()
    return scenario, answers_sent, positions, setpoints, records, measured


def check_against_in_process_plans(scenario, answers_sent, positions, setpoints, records, measured):
    """Every hour's set-points, position and record are the first hour of lec1's rest-of-day plan from the energy
    measured at the hour's start (the initial state in the first hour)."""
    members = members_from_scenario(scenario)
    batteries = pooled_batteries(members, home_batteries=True)
    soc = 0.5 * batteries.energy_kwh  # the day starts at 50 %; then where the households measured it
    for hour in range(int(scenario.horizon_h)):
        plan = solve_centralised(rest_of_day_problem(members, scenario, first_hour=hour, soc_kwh=soc,
                                                     batteries=batteries, with_edges=False, only_lec=0))
        assert setpoints[hour][0] == pytest.approx(plan.charge_kw[0, 0] - plan.discharge_kw[0, 0], abs=1e-6)
        assert setpoints[hour][1] == pytest.approx(plan.curtailed_kw[0, 0], abs=1e-6)
        assert positions[hour] == pytest.approx(plan.import_kw[0, 0] - plan.export_kw[0, 0], abs=1e-6)
        r = records[hour]
        assert r["hour"] == hour and r["lec"] == "lec1" and r["soc_start_kwh"] == pytest.approx(soc[0], abs=1e-6)
        assert r["measured_soc_start_kwh"] == measured[hour]
        assert r["soc_start_gap_kwh"] == pytest.approx(r["measured_soc_start_kwh"] - r["planned_soc_start_kwh"],
                                                       abs=1e-12)
        assert r["planned_soc_kwh"] == pytest.approx(plan.soc_kwh[0, 0], abs=1e-6)
        assert r["platform"] == answers_sent[hour]
        soc = soc.copy()
        if hour + 1 in measured:
            soc[0] = measured[hour + 1]
    # No DSO loop in this scenario: the EMS planned without limits.
    assert records[0]["import_limit_kw"] is None


@pytest.mark.timeout(180)
def test_ems_plans_the_rest_of_the_day_every_hour_and_settles_on_the_platform(tmp_path):
    check_against_in_process_plans(*run_decentralised_ems(tmp_path, {"horizon_h": 3}))


@pytest.mark.timeout(180)
def test_ems_plans_from_the_measured_energy_not_its_own_plan(tmp_path):
    """The households measure lec1's pooled batteries 7 kWh below the plan at hour 1's start (a battery clipped its
    share of the pooled set-point) and 3 kWh above at hour 2's: each hour's plan starts from the measurement, and
    the record keeps the plan's energy, the measured one and their difference."""
    shift = {1: -7.0, 2: 3.0}
    observed = run_decentralised_ems(tmp_path, {"horizon_h": 3},
                                     measure=lambda hour, planned: planned + shift[hour])
    records, measured = observed[4], observed[5]
    assert records[0]["soc_start_kwh"] == 61.0 and records[0]["soc_start_gap_kwh"] == 0.0
    for hour in (1, 2):
        r = records[hour]
        assert r["planned_soc_start_kwh"] == records[hour - 1]["planned_soc_kwh"]
        assert r["soc_start_kwh"] == r["measured_soc_start_kwh"] == measured[hour]
        assert r["soc_start_gap_kwh"] == pytest.approx(shift[hour], abs=1e-9)
    check_against_in_process_plans(*observed)


@pytest.mark.timeout(180)
def test_ems_charges_off_peak_for_the_first_peak_hour(tmp_path):
    """A winter morning across the bi-hourly band change: 00:00-09:00 at 0.1023 EUR/kWh, 09:00 at 0.1924.

    lec1 (19 households, no PV to speak of on 15 January before 10:00) pools a 122 kWh / 61 kW
    battery (round trip 0.95, 0.9747 per leg) that starts and ends the 10-hour horizon at 61 kWh.
    A kWh bought off-peak and given back at 9 costs 0.1023 / 0.95 = 0.1077 < 0.1924, and more than
    the 0.045 of feeding the rest in: so the plan covers all of hour 9's net demand d9 = 20.933 kW
    (data: the members' load minus PV, hourly mean) from the battery, charged off-peak before.
    Hand-solved: the set-point at 9 is -d9; the set-points of hours 0-8 are >= 0 and sum to
    d9 / 0.95 = 22.035 kWh; 9:00 starts at 61 + d9 / sqrt(0.95) = 82.477 kWh; nothing is imported
    at 9. (Which off-peak hours charge is the tie-break's choice: it evens the imports out.)
    """
    observed = run_decentralised_ems(tmp_path, {"horizon_h": 10, "start": "2016-01-15T00:00:00"})
    scenario, _, positions, setpoints, records, _ = observed
    members = members_from_scenario(scenario)
    retail, _ = hourly_tariffs(members, scenario.tariff.scheme, scenario.tariff.feed_in_eur_per_kwh)
    assert retail == pytest.approx([0.1023] * 9 + [0.1924])
    d9 = float(hourly_mean(members, members.net_demand_kw)[0, 9])
    assert d9 == pytest.approx(20.933, abs=1e-3)
    assert pooled_batteries(members, home_batteries=True).energy_kwh[0] == 122.0
    charge = np.array([setpoints[hour][0] for hour in range(10)])
    assert charge[9] == pytest.approx(-d9, abs=1e-4)
    assert np.all(charge[:9] >= -1e-6)
    assert charge[:9].sum() == pytest.approx(d9 / 0.95, abs=1e-4)
    assert charge[:9].sum() == pytest.approx(22.035, abs=1e-3)
    assert records[9]["soc_start_kwh"] == pytest.approx(61.0 + d9 / math.sqrt(0.95), abs=1e-4)
    assert records[9]["soc_start_kwh"] == pytest.approx(82.477, abs=1e-3)
    assert records[9]["planned_soc_kwh"] == pytest.approx(61.0, abs=1e-6)
    assert positions[9] == pytest.approx(0.0, abs=1e-4)
    assert all(setpoints[hour][1] == pytest.approx(0.0, abs=1e-6) for hour in range(10))  # nothing curtailed
    check_against_in_process_plans(*observed)


@pytest.mark.timeout(180)
def test_p2p_ems_runs_its_lec_market_with_caps_and_the_fairness_fee(tmp_path):
    """lec2's LEC_EMS in p2p: caps and fees out at H + 1 ms, orders in at H + 2 ms, results out at H + 3 ms.

    Hour 0 (retail 0.1023): two members offer 2 kWh each, ten bid 1 kWh and one (the last) 3 kWh:
    demand 13 > supply 4, so the price is retail and every buyer gets 4/13 of its bid; the last
    member imports the most from the grid (3 - 12/13 kWh) and alone pays the fairness fee in hour 1.
    """
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_three_lecs", {"horizon_h": 2, "framework": "p2p"}))
    members = members_from_scenario(scenario)
    table = members.table
    homes = list(table.loc[(table["lec"] == "lec2") & (table["kind"] == "household"), "member"])
    assert len(homes) == 13
    orders = {0: {m: (-2.0 if i < 2 else (3.0 if i == 12 else 1.0)) for i, m in enumerate(homes)},
              1: {m: 0.5 for m in homes}}
    battery_kwh = float(table.loc[table["member"] == "lec2_battery", "battery_kwh"].iloc[0])
    caps, results, records, positions, measured = {}, {}, {}, {}, {}
    with federate_under_test("lec_ems_2", scenario, tmp_path / "run", 3) as port:
        hems = TestFederate("hems", port, period=MS_PERIOD_S, offset=0.0,
                            endpoints=[member_endpoint(m) for m in homes] + [HOUSEHOLDS_METER_ENDPOINT])
        platform = TestFederate("platform", port, period=3600.0, offset=PLATFORM_OFFSET_S,
                                endpoints=[PLATFORM_ENDPOINT])
        observer = TestFederate("observer", port, period=3600.0, offset=RECORDER_OFFSET_S,
                                subscriptions=[("mlec/lec2/ems/record", "string")])
        enter_all(hems, platform, observer)
        for hour in range(2):
            start = hour * 3600.0
            observer.request(start)
            if hour == 0:
                platform.request(start)
            hems.arrive(start + MEASURE_OFFSET_S)  # its community battery, 2 kWh off the plan at hour 1's start
            measured[hour] = 0.5 * battery_kwh if hour == 0 else records[0]["planned_soc_kwh"] - 2.0
            if hour > 0:  # the first hour: the known initial state, nothing measured
                hems.send(HOUSEHOLDS_METER_ENDPOINT, meter_endpoint("lec2"),
                          {"hour": hour, "lec": "lec2", "pooled_soc_kwh": measured[hour]})
            hems.arrive(start + HEMS_BID_OFFSET_S)
            for m in homes:
                [(source, cap)] = hems.receive(member_endpoint(m))
                assert source == market_endpoint("lec2")
                caps[hour, m] = cap
                hems.send(member_endpoint(m), market_endpoint("lec2"),
                          {"hour": hour, "member": m, "net_kwh": orders[hour][m], "plan_kw": [orders[hour][m]] * (2 - hour)})
            hems.request(start + HOUSEHOLDS_OFFSET_S)
            platform.arrive(start)
            [(_, position)] = platform.receive(PLATFORM_ENDPOINT)
            positions[hour] = position
            platform.send(PLATFORM_ENDPOINT, ems_endpoint("lec2"), {"hour": hour, "lec": "lec2", "bought_kwh": 0.0})
            platform.request(start + 3600.0)
            hems.arrive(start + HOUSEHOLDS_OFFSET_S)
            for m in homes:
                [(_, results[hour, m])] = hems.receive(member_endpoint(m))
            observer.arrive(start)
            records[hour] = observer.json_value("mlec/lec2/ems/record")
        observer.close()
        hems.close()
        platform.granted()
        platform.close()

    assert EMS_CLEAR_OFFSET_S < HOUSEHOLDS_OFFSET_S
    # Hour 0: no history, no fee; no DSO limit, no cap.
    assert all(caps[0, m]["import_fee_eur_per_kwh"] == 0 and caps[0, m]["import_cap_kw"] == float("inf") for m in homes)
    for m in homes:
        r = results[0, m]
        assert r["price_eur_per_kwh"] == pytest.approx(0.1023, abs=1e-12)
        if orders[0][m] < 0:
            assert (r["sold_kwh"], r["grid_export_kwh"]) == pytest.approx((2.0, 0.0), abs=1e-9)
        else:
            q = orders[0][m]
            assert (r["bought_kwh"], r["grid_import_kwh"]) == pytest.approx((4 * q / 13, q - 4 * q / 13), abs=1e-9)
    # Hour 1: the fee falls on the last member alone.
    fees = {m: caps[1, m]["import_fee_eur_per_kwh"] for m in homes}
    assert fees[homes[12]] == pytest.approx(0.02) and not any(fees[m] for m in homes[:12])
    assert results[1, homes[12]]["fee_eur"] == pytest.approx(0.02 * 0.5, abs=1e-12)  # all of its 0.5 kWh from the grid
    assert records[0]["pool_volume_kwh"] == pytest.approx(4.0) and len(records[0]["trades"]) == 13
    assert records[1]["platform"] == {"hour": 1, "lec": "lec2", "bought_kwh": 0.0}
    # The community battery's plan starts from its energy as measured (hour 1: 2 kWh below the plan of hour 0).
    assert records[0]["soc_start_kwh"] == records[0]["measured_soc_start_kwh"] == 0.5 * battery_kwh
    assert records[1]["soc_start_kwh"] == records[1]["measured_soc_start_kwh"] == measured[1]
    assert records[1]["soc_start_gap_kwh"] == pytest.approx(-2.0, abs=1e-9)
    # The LEC's position is its plan's import minus export in the hour, members and community battery.
    for hour in range(2):
        r = records[hour]
        assert positions[hour]["hour"] == hour and positions[hour]["lec"] == "lec2"
        assert positions[hour]["position_kwh"] == pytest.approx(r["planned_import_kw"] - r["planned_export_kw"])
