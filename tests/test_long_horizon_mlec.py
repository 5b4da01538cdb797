"""Three LECs over more than a day: rolling planning windows, the warm-started negotiation, calendar tables.

The shipped three-LEC scenario over HOURS hours from midnight (past the first day) at hourly grid steps, each EMS
and HEMS planning ``ems.lookahead_h`` = LOOKAHEAD hours ahead, as in-process federations (``lec_cosim.inproc``:
the same federate programs on HELICS's in-process core). So every window rolls: hours 0 .. HOURS - LOOKAHEAD plan
a full window that reaches past the hour's day, the last ones a window cut at the run's end. Checked on the
results, for each framework: every LEC's energy and money balance every hour; the distributed framework's
negotiated plans against the centralised optimum of the same window every hour; the decentralised EMSs' plans
(with the DSO's limits on) against their own window's optimum, and the DSO's limits in them; the calendar tables
against the hourly settlement.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlec_checks import (
    check_every_lec_hour_settles_its_metered_energy,
    check_negotiated_plans_equal_the_centralised_optimum,
)

from lec_cosim.inproc import run_inproc
from lec_cosim.models.exchange import solve_centralised
from lec_cosim.models.multi_lec_ems import members_from_scenario, planning_window, pooled_batteries, rest_of_day_problem
from lec_cosim.scenario import load_scenario, write_scenario_variant

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scenarios" / "ieee_eu_lv_three_lecs.yaml"
HOURS = 26
LOOKAHEAD = 6


@pytest.fixture(scope="module")
def scenario_path(tmp_path_factory) -> Path:
    return write_scenario_variant(SHIPPED, {"horizon_h": HOURS, "resolution.grid_min": 60,
                                            "ems.lookahead_h": LOOKAHEAD}, tmp_path_factory.mktemp("long"))


def _run(tmp_path_factory, scenario_path: Path, **changes) -> Path:
    scenario = load_scenario(scenario_path)
    if "dso_limits" in changes:
        scenario = scenario.model_copy(update={"dso": scenario.dso.model_copy(update={"limits": True})})
    out = tmp_path_factory.mktemp(changes["framework"]) / "run"
    run_inproc(scenario.model_copy(update={"framework": changes["framework"]}), out, timeout_s=600)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, scenario_path) -> dict[str, Path]:
    return {"distributed": _run(tmp_path_factory, scenario_path, framework="distributed"),
            "decentralised": _run(tmp_path_factory, scenario_path, framework="decentralised", dso_limits=True),
            "p2p": _run(tmp_path_factory, scenario_path, framework="p2p")}


def records(run: Path) -> dict:
    out = {}
    for line in (run / "ems_records.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[(record["hour"], record["lec"])] = record
    return out


def test_the_window_rolls_past_the_day_and_is_cut_at_the_run_end(scenario_path):
    scenario = load_scenario(scenario_path)
    members = members_from_scenario(scenario)
    assert members.n_steps == HOURS  # hourly grid steps
    assert planning_window(members, scenario, 0) == slice(0, LOOKAHEAD)
    assert planning_window(members, scenario, 19) == slice(19, 19 + LOOKAHEAD)  # into the second day
    assert planning_window(members, scenario, HOURS - 3) == slice(HOURS - 3, HOURS)
    assert rest_of_day_problem(members, scenario, first_hour=19, soc_kwh=[0.0] * 3,
                               batteries=pooled_batteries(members, home_batteries=True)).n_steps == LOOKAHEAD


@pytest.mark.parametrize("framework", ["distributed", "decentralised", "p2p"])
def test_every_lec_hour_settles_its_metered_energy(runs, framework):
    check_every_lec_hour_settles_its_metered_energy(runs[framework])


def test_the_warm_started_negotiation_reaches_the_centralised_optimum_of_every_window(runs):
    run = runs["distributed"]
    check_negotiated_plans_equal_the_centralised_optimum(run)
    negotiation = pd.read_csv(run / "negotiation.csv")
    assert len(negotiation) == HOURS and negotiation["converged"].all()
    # warm-started from the last hour's agreement: after the first hour a few iterations, not the cold start's tens
    first, later = int(negotiation["iterations"].iloc[0]), negotiation["iterations"].iloc[1:]
    assert later.median() < first / 2, (first, later.tolist())


def test_each_decentralised_plan_is_the_optimum_of_its_own_window_under_the_dso_limits(runs, scenario_path):
    run = runs["decentralised"]
    scenario = load_scenario(run / "scenario.json")
    assert scenario.dso.limits and scenario.ems.lookahead_h == LOOKAHEAD
    members = members_from_scenario(scenario)
    batteries = pooled_batteries(members, home_batteries=True)
    by_hour = records(run)
    for hour in range(HOURS):
        for i, lec in enumerate(scenario.lec_names):
            r = by_hour[(hour, lec)]
            limits = None if hour == 0 else (
                [by_hour[(hour, x)]["import_limit_kw"] for x in scenario.lec_names],
                [by_hour[(hour, x)]["export_limit_kw"] for x in scenario.lec_names])
            assert (r["import_limit_kw"] is None) == (hour == 0)  # nothing from the DSO before its first step
            soc = [by_hour[(hour, x)]["soc_start_kwh"] for x in scenario.lec_names]
            mine = solve_centralised(rest_of_day_problem(
                members, scenario, first_hour=hour, soc_kwh=soc, batteries=batteries, with_edges=False, only_lec=i,
                import_limit_kw=None if limits is None else limits[0],
                export_limit_kw=None if limits is None else limits[1])).of_lec(i)
            assert len(mine["import_kw"]) == min(LOOKAHEAD, HOURS - hour)
            assert r["planned_import_kw"] == pytest.approx(mine["import_kw"][0], abs=1e-6), (hour, lec)
            assert r["pooled_charge_kw"] == pytest.approx(mine["charge_kw"][0] - mine["discharge_kw"][0], abs=1e-6)
            if limits is not None:
                assert r["planned_import_kw"] <= r["import_limit_kw"] + r["limit_excess_kw"] + 1e-6


@pytest.mark.parametrize("framework", ["distributed", "decentralised", "p2p"])
def test_the_calendar_tables_add_up_to_the_hourly_settlement(runs, framework):
    run = runs[framework]
    settlement = pd.read_csv(run / "settlement.csv")
    days, months = pd.read_csv(run / "days.csv"), pd.read_csv(run / "months.csv")
    assert sorted(days["date"].unique()) == ["2016-05-26", "2016-05-27"]
    assert months["month"].unique().tolist() == ["2016-05"]
    first_day = settlement[settlement["hour"] < 24]
    for column in ("load_kwh", "pv_kwh", "grid_import_kwh", "grid_export_kwh", "exchange_out_kwh", "cost_eur"):
        np.testing.assert_allclose(days.groupby("lec")[column].sum(), settlement.groupby("lec")[column].sum(),
                                   rtol=1e-9, atol=1e-8)  # the CSVs keep 10 digits
        np.testing.assert_allclose(months.set_index("lec")[column], settlement.groupby("lec")[column].sum(),
                                   rtol=1e-9, atol=1e-8)  # the CSVs keep 10 digits
        np.testing.assert_allclose(days[days["date"] == "2016-05-26"].set_index("lec")[column],
                                   first_day.groupby("lec")[column].sum(), rtol=1e-9, atol=1e-8)
    outside = days["grid_import_kwh"] + days["exchange_in_kwh"]
    np.testing.assert_allclose(days["self_sufficiency"], 1 - outside / days["load_kwh"], rtol=1e-9)
    kpis = json.loads((run / "summary.json").read_text())["kpis"]
    grid, grid_days = pd.read_csv(run / "grid.csv"), pd.read_csv(run / "grid_days.csv")
    assert grid_days["bus_violations"].sum() == kpis["bus_violations"]
    assert grid_days["line_overloads"].sum() == kpis["line_overloads"]
    assert grid_days["vm_min_pu"].min() == pytest.approx(kpis["vm_min_pu"], abs=1e-9)
    assert grid_days["losses_kwh"].sum() == pytest.approx(grid["p_loss_kw"].sum() * 1.0, rel=1e-9)


def test_the_calendar_figure_draws_every_run(runs, tmp_path):
    from lec_cosim.studies.three_lecs.report import plot_mlec_calendar

    output = tmp_path / "calendar.png"
    plot_mlec_calendar(list(runs.values()), list(runs), output)
    assert output.stat().st_size > 20_000


def test_the_limits_over_a_window_are_the_latest_then_the_dsos_hourly_forecast():
    """``window_limits_kw``: the first hour takes the latest limits, the later hours of the window the DSO's forecast
    of those hours, whether the window rolls on (hours 3-8 of 10) or is cut at the run's end (hours 7-9)."""
    from lec_cosim.models.multi_lec_ems import window_limits_kw

    hourly = np.arange(30, dtype=float).reshape(3, 10)  # LEC i, hour h: 10 i + h
    latest = [-1.0, -2.0, -3.0]
    rolling = window_limits_kw(latest, hourly, slice(3, 9))
    assert rolling.shape == (3, 6)
    np.testing.assert_array_equal(rolling[:, 0], latest)
    np.testing.assert_array_equal(rolling[:, 1:], [[4, 5, 6, 7, 8], [14, 15, 16, 17, 18], [24, 25, 26, 27, 28]])
    cut = window_limits_kw(latest, hourly, slice(7, 10))
    np.testing.assert_array_equal(cut, [[-1, 8, 9], [-2, 18, 19], [-3, 28, 29]])
    np.testing.assert_array_equal(window_limits_kw(latest, hourly, slice(9, 10)), [[-1], [-2], [-3]])
