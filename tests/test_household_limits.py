"""The DSO's limits per household (``dso.limits_per: household``): the envelope, its sharing rules, and the loop.

The envelope on hand-checkable numbers (a household's current through the head cable per kW; the rules' sums on a
three-household case; the limits' power flow at the rating within the linearisation), then the shipped scenario's
evening in process (hourly grid steps, 21 h: the head cables overload from 17:00): the LEC_EMSs plan within the sums
of their households' limits, the households curtail their PV to their own export limits, the balances hold, and
every overload that remains is listed with what the households behind it did.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from harness import check_refused_in_one_line, run_in_process
from mlec_checks import check_every_lec_hour_settles_its_metered_energy

from lec_cosim.models.household_envelope import HouseholdEnvelope, _loadings, jain_index, share_capacity

EVENING_STEP = 76
"""19:00 at 15-minute steps: the head cable at 156 % with the batteries idle."""


# --- the sharing rules ---------------------------------------------------------------------------------------
def test_equal_sharing_fills_each_bottleneck_with_one_limit_for_its_households():
    """A shared branch (6 units for three households) and a branch behind the third alone (2 units at 2 per kW):
    the third stops at 1 kW, the other two share what is left of the shared branch equally."""
    rows, capacity = [[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]], [6.0, 2.0]
    limits = share_capacity(rows, capacity, np.ones(3))
    np.testing.assert_allclose(limits, [2.5, 2.5, 1.0])
    np.testing.assert_allclose(np.array(rows) @ limits, capacity)  # both branches full


def test_proportional_sharing_gives_each_household_its_need_times_one_factor_per_bottleneck():
    """Needs 1, 2, 3 kW: the branch behind the third fills at a third of the needs; the shared branch then holds the
    first two in the proportion 1 : 2 of their needs."""
    rows, capacity = [[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]], [6.0, 2.0]
    limits = share_capacity(rows, capacity, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(limits, [5 / 3, 10 / 3, 1.0])
    np.testing.assert_allclose(np.array(rows) @ limits, capacity)


def test_a_branch_already_over_stops_its_households_at_zero_and_one_on_no_branch_has_no_limit():
    limits = share_capacity([[1.0, 1.0, 0.0]], [-3.0], np.ones(3))
    assert limits[0] == limits[1] == 0.0 and limits[2] == math.inf


def test_jain_index_is_one_for_equal_shares_and_k_over_n_for_k_equal_of_n():
    assert jain_index([2.0, 2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert jain_index([3.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain_index([1.0, 1.0, 0.0, 0.0]) == pytest.approx(0.5)
    assert jain_index([0.0, 0.0]) is None


# --- the envelope on the feeder -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def feeder():
    from lec_cosim.models.multi_lec import multi_lec_members
    from lec_cosim.models.multi_lec_grid import MultiLecGrid

    members = multi_lec_members("2016-05-26", 15, pv_file="data/pv/simbench_PV_profiles_2016_15min.csv",
                                load_peak_kw=140, pv_peak_kw=194)
    grid = MultiLecGrid(members, step_h=0.25)
    envelopes = {rule: HouseholdEnvelope.build(grid, rule=rule) for rule in ("equal", "proportional")}
    return grid, envelopes


def test_a_households_thermal_sensitivity_is_its_current_through_the_line_per_kw(feeder):
    """From the unloaded feeder 1 kW at a household is 1 kW / V through every line on its path, on its phase only:
    100 * 1 kW / (V x rating) of each, V its phase voltage there (240 V x the unloaded feeder's ~1.05 pu), within
    the voltage drop along the path (1 %)."""
    grid, envelopes = feeder
    env = envelopes["equal"]
    lem = grid.lem_grid
    j = 0
    phase = grid.members.table.set_index("member").at[grid.household_names[j], "phase"]
    on_path = [r for r in np.flatnonzero(env.thermal[:, j] > 0) if r < 3 * len(lem.line_names)]
    assert on_path and {env.thermal_rows[r][1] for r in on_path} == {phase}
    rating_a = 1000.0 * lem._line_max_i_ka[[r // 3 for r in on_path]]
    unloaded = grid.solve(np.zeros(grid.n_households), np.zeros(grid.n_households))
    volts = 416.0 / math.sqrt(3.0) * unloaded.lec_vm_max_pu.max()
    expected = 100.0 * 1000.0 / (volts * rating_a)
    np.testing.assert_allclose(env.thermal[on_path, j], expected, rtol=0.01)


@pytest.mark.parametrize("rule", ["equal", "proportional"])
def test_every_household_at_its_evening_import_limit_loads_the_head_cable_to_its_rating(feeder, rule):
    """At 19:00 the households' import limits, all taken at once, fill the bottleneck rows exactly in the linear
    model (sensitivities times limits = the active room) and, in a full power flow, load them to 100 % within the
    linearisation (3 %), where the state itself has the head cable at 156 %."""
    grid, envelopes = feeder
    env = envelopes[rule]
    state = grid.solve_step(EVENING_STEP)
    assert state.grid.max_line_loading_percent > 150
    limits = env.limits(state)
    assert np.isfinite(limits.import_kw).all() and (limits.import_kw >= 0).all()
    assert limits.import_kw.sum() < state.household_net_kw.sum()  # the batteries must cover the rest
    used = limits.import_rows @ limits.import_kw
    assert (used <= limits.import_capacity + 1e-6).all()
    n_points = env.v_import.shape[0]
    full = np.flatnonzero(limits.import_capacity[n_points:] - used[n_points:] < 1e-6)
    assert len(full) > 0  # thermal rows bind, voltages do not
    assert (limits.import_capacity[:n_points] - used[:n_points] > 1e-4).all()
    at_limits = grid.solve(limits.import_kw, state.household_kvar, state.community_battery_kw)
    loading = _loadings(at_limits)
    assert loading[full].max() == pytest.approx(100.0, abs=3.0)
    assert loading.max() < 103.0


def test_each_rules_limits_follow_its_weights_on_the_head_cable(feeder):
    """Behind the same bottleneck the equal rule gives one limit, the proportional one limits in proportion to the
    households' needs at the state (their net import)."""
    grid, envelopes = feeder
    state = grid.solve_step(EVENING_STEP)
    need = state.household_net_kw
    for rule, envelope in envelopes.items():
        limits = envelope.limits(state)
        used = limits.import_rows @ limits.import_kw
        n_points = envelope.v_import.shape[0]
        first = n_points + np.flatnonzero(limits.import_capacity[n_points:] - used[n_points:] < 1e-6)[0]
        behind = np.flatnonzero(limits.import_rows[first] > 0)
        values = limits.import_kw[behind] if rule == "equal" else limits.import_kw[behind] / need[behind]
        # households behind the first full row that no earlier row stopped share one value
        assert np.isclose(values, values.max(), rtol=1e-9).sum() >= 2, rule


# --- the scenario ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes,field,reason", [
    ({"dso.limits_per": "household"}, "dso", "set dso.limits: true as well"),
    ({"dso.sharing": "proportional", "dso.limits": True}, "dso", "set dso.limits_per: household"),
    ({"dso.limits": True, "dso.limits_per": "connection"}, "dso.limits_per", "'lec' or 'household'"),
])
def test_bad_household_limit_settings_are_one_line_naming_file_and_field_and_exit_2(tmp_path, capsys, changes,
                                                                                   field, reason):
    check_refused_in_one_line(tmp_path, capsys, "ieee_eu_lv_three_lecs", changes, field, reason)


EVENING = {"resolution.grid_min": 60, "horizon_h": 21, "dso.limits": True, "dso.limits_per": "household"}
"""The shipped day to 21:00 at hourly grid steps with the limits per household: the evening peak from 17:00."""


@pytest.fixture(scope="module")
def evening_runs(tmp_path_factory):
    """Decentralised with the equal rule, p2p with the proportional one."""
    runs = {}
    for name, changes in (("decentralised_equal", {"framework": "decentralised", "dso.sharing": "equal"}),
                          ("p2p_proportional", {"framework": "p2p", "dso.sharing": "proportional"})):
        runs[name] = run_in_process(tmp_path_factory.mktemp(name), "ieee_eu_lv_three_lecs", {**EVENING, **changes})
    return runs


def _read(run, name):
    return pd.read_csv(run / name)


@pytest.mark.parametrize("name", ["decentralised_equal", "p2p_proportional"])
def test_the_lec_emss_plan_within_the_sums_of_their_households_limits(evening_runs, name):
    """Every hour after the first each LEC_EMS planned with its households' import and export limits summed (those
    in force at the hour's start), and its plan keeps within them but for the excess it reports (soft limits)."""
    _, run = evening_runs[name]
    limits = _read(run, "household_limits.csv")
    records = [json.loads(line) for line in (run / "ems_records.jsonl").read_text().splitlines()]
    checked = 0
    for r in records:
        if r["import_limit_kw"] is None:
            assert r["hour"] == 0
            continue
        at_start = limits[(limits["step"] == r["hour"]) & (limits["lec"] == r["lec"])]
        assert r["import_limit_kw"] == pytest.approx(at_start["import_limit_kw"].sum(), rel=1e-9)
        assert r["export_limit_kw"] == pytest.approx(at_start["export_limit_kw"].sum(), rel=1e-9)
        assert r["planned_import_kw"] <= r["import_limit_kw"] + r["limit_excess_kw"] + 1e-6
        assert r["planned_export_kw"] <= r["export_limit_kw"] + r["limit_excess_kw"] + 1e-6
        checked += 1
    assert checked == 3 * 20


@pytest.mark.parametrize("name", ["decentralised_equal", "p2p_proportional"])
def test_the_households_curtail_their_pv_to_their_export_limits_and_the_balances_hold(evening_runs, name):
    """A household exports above its limit only with all its PV curtailed (a discharging home battery); the members'
    powers balance and every LEC-hour settles its metered energy; the summary's curtailment and Jain index are the
    households' table's."""
    scenario, run = evening_runs[name]
    members, limits, homes = _read(run, "members.csv"), _read(run, "household_limits.csv"), _read(run, "households.csv")
    np.testing.assert_allclose(members["net_kw"], members["load_kw"] - members["pv_kw"] + members["battery_kw"],
                               atol=5e-9)  # three values of 10 significant digits
    home_rows = members[members["kind"] == "household"].reset_index(drop=True)
    over = limits["over_export_limit_kw"] > 1e-6
    assert (home_rows.loc[over, "pv_kw"] < 1e-6).all()
    assert home_rows["curtailed_kw"].sum() > 0  # the export limits bind at noon
    check_every_lec_hour_settles_its_metered_energy(run, balance_atol_kwh=1e-7)
    kpis = json.loads((run / "summary.json").read_text())["kpis"]
    assert kpis["curtailed_kwh"] == pytest.approx(homes["curtailed_kwh"].sum(), abs=1e-6)
    assert kpis["curtailment_jain_index"] == pytest.approx(jain_index(homes.loc[homes["pv_kwh"] > 0,
                                                                                "curtailed_kwh"]))
    assert 0 < kpis["curtailment_jain_index"] <= 1
    over_import = np.maximum(home_rows["net_kw"] - limits["import_limit_kw"], 0.0)
    assert kpis["import_over_household_limits_kwh"] == pytest.approx(over_import.sum() * 1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["decentralised_equal", "p2p_proportional"])
def test_a_home_battery_keeps_its_household_within_its_import_limit_as_far_as_it_can(evening_runs, name):
    """A household with a home battery imports above its limit only with its battery discharging at full power or
    (nearly) empty: what is left is load that cannot be curtailed. Households without one are over their limits in
    the evening."""
    from lec_cosim.models.multi_lec_ems import members_from_scenario

    scenario, run = evening_runs[name]
    table = members_from_scenario(scenario).table.set_index("member")
    members, limits = _read(run, "members.csv"), _read(run, "household_limits.csv")
    homes = members[members["kind"] == "household"].reset_index(drop=True)
    power = homes["member"].map(table["battery_kw"]).to_numpy(dtype=float)
    with_battery = power > 0
    over = (limits["over_import_limit_kw"] > 1e-6).to_numpy()
    flat_out = (homes["battery_kw"] <= -power + 1e-6) | (homes["soc_kwh"] <= 0.05 * homes["member"].map(
        table["battery_kwh"]).to_numpy(dtype=float) + 1e-6)
    assert (flat_out[over & with_battery]).all()
    assert (over & ~with_battery & (limits["step"] >= 17).to_numpy()).any()


def test_p2p_members_get_their_own_import_limit_as_their_cap(evening_runs):
    _, run = evening_runs["p2p_proportional"]
    trades, limits = _read(run, "p2p_trades.csv"), _read(run, "household_limits.csv")
    at_start = limits.rename(columns={"step": "hour"})[["hour", "member", "import_limit_kw"]]
    caps = trades.merge(at_start, on=["hour", "member"])
    later = caps[caps["hour"] > 0]
    np.testing.assert_allclose(later["import_cap_kw"], later["import_limit_kw"], rtol=1e-9)
    assert later["import_cap_kw"].nunique() > 3  # its own, not an equal share of its LEC's


def test_the_overloads_that_remain_are_listed_with_why(evening_runs):
    """Every overloaded section-step of grid.csv is in line_overloads.csv. In the evening they are import overloads
    of the households behind the head cable, whose net import was above the sum of their limits (their load cannot
    be curtailed): the LEC met the sum of its households' limits, but its batteries did not discharge behind the
    cable on its phase. The file says how much less import behind it the rating needed and how much more the home
    batteries behind could have given, and its cause is the comparison of the two."""
    for name in ("decentralised_equal", "p2p_proportional"):
        _, run = evening_runs[name]
        grid, rows = _read(run, "grid.csv"), _read(run, "line_overloads.csv")
        listed = rows.groupby("step")["element"].nunique().reindex(grid["step"], fill_value=0)
        np.testing.assert_array_equal(listed.to_numpy(), grid["line_overloads"].to_numpy())
        evening = rows[rows["step"] >= 17]
        assert len(evening) > 0 and (evening["direction"] == "import").all(), name
        assert (evening["net_import_kw"] > evening["import_limit_kw"]).all()
        assert (evening["over_import_limit_kw"] > 0).all() and (evening["relief_needed_kw"] > 0).all()
        too_small = evening["relief_needed_kw"] > evening["battery_room_kw"]
        np.testing.assert_array_equal(evening["cause"] == "batteries behind too small", too_small)
        kpis = json.loads((run / "summary.json").read_text())["kpis"]
        assert kpis["overload_rows_import"] + kpis["overload_rows_export"] == len(rows)
        assert kpis["overloaded_elements"] == rows["element"].nunique()
