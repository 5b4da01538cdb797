"""The LEC_EMS LP built once and re-solved (lec_cosim.models.ems.BatteryScheduler / BatteryLP).

A reused model only gets the new day's parameter values (net load, prices, SoC, big-M); the
schedule and objective must be exactly those of a freshly built model (``schedule_battery``) for
every day, with both solvers, including days whose optimum is not unique (HiGHS re-solves
without the previous basis), the MILP branch and a day after an infeasible one.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from harness import write_scenario
from lec_cosim.models.ems import (
    BatteryLP,
    BatteryScheduler,
    DayAheadPlanner,
    InfeasibleSchedule,
    schedule_battery,
)
from lec_cosim.scenario import load_scenario

SOLVERS = ["glpk", "highs"]
BATTERY = dict(step_h=0.25, capacity_mwh=1.2, power_mw=0.6, efficiency=0.9)


def random_days(n_days, n=96, seed=0, export_price=None):
    """Days of 15-minute load, PV, spot price and feed-in tariff, different every day."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n) * 24.0 / n
    days = []
    for _ in range(n_days):
        load = 0.2 + 0.15 * rng.random(n)
        pv = np.clip((0.3 + 0.7 * rng.random()) * np.sin((hours - 6) / 12 * np.pi), 0, None)
        price = 20 + 15 * np.sin(hours / 24 * 2 * np.pi + rng.random()) + 5 * rng.random(n)
        sell = np.full(n, 3.0) if export_price is None else export_price(rng, price)
        days.append((load, pv, price, sell))
    return days


def assert_same(reused, fresh):
    """Exactly the same schedule and objective."""
    assert list(reused.table.columns) == list(fresh.table.columns)
    np.testing.assert_array_equal(reused.table.to_numpy(), fresh.table.to_numpy())
    assert reused.objective == fresh.objective


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("objective", ["min_cost", "min_import"])
def test_reused_model_equals_fresh_model_day_after_day(solver, objective):
    scheduler = BatteryScheduler()
    soc = [0.6, 0.3, 0.9, 0.0, 1.2, 0.6]  # a different initial SoC every day too
    for day, soc0 in zip(random_days(6, seed=11), soc):
        kwargs = dict(BATTERY, soc_initial_mwh=soc0, objective=objective, solver=solver)
        reused = scheduler.schedule(*day, **kwargs)
        fresh = schedule_battery(*day, **kwargs)
        assert_same(reused, fresh)
        assert abs(reused.objective) > 1e-3
    assert scheduler.models_built == 1 and scheduler.solves == 6


@pytest.mark.parametrize("solver", SOLVERS)
def test_reused_model_equals_fresh_model_where_the_optimum_is_not_unique(solver):
    # Load [1, 0, 1], PV [0, 1, 0], SoC 0.5 -> 0.5: every split of the discharge between steps 0
    # and 2 with d0 in [0.36, 0.45] is optimal (tests/test_ems_lp.py). A re-solve that kept the
    # previous day's basis could return another split; the reused model must return the fresh one.
    kwargs = dict(step_h=1.0, capacity_mwh=1.0, power_mw=1.0, efficiency=0.81, objective="min_import",
                  solver=solver)
    degenerate = ([1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0, 0, 0], [0, 0, 0])
    others = [([0.2, 0.9, 0.4], [0.8, 0.0, 0.1], [0, 0, 0], [0, 0, 0]),
              ([0.0, 0.3, 1.0], [1.0, 0.9, 0.0], [0, 0, 0], [0, 0, 0])]
    scheduler = BatteryScheduler()
    fresh = schedule_battery(*degenerate, soc_initial_mwh=0.5, **kwargs)
    for other in others:
        scheduler.schedule(*other, soc_initial_mwh=0.2, **kwargs)
        assert_same(scheduler.schedule(*degenerate, soc_initial_mwh=0.5, **kwargs), fresh)
    assert scheduler.models_built == 1


@pytest.mark.parametrize("solver", SOLVERS)
def test_milp_branch_after_reuse(solver):
    # Two steps, no load/PV, E = P = 1, eta = 0.81, SoC 0 -> 0, dt = 1 h.
    # LP day: prices [10, 50] (export = import): charge 1 at 10, deliver 0.81 at 50: -30.5.
    # MILP day: export prices [20, 60] above the import prices [10, 50]: without the binary
    # direction buying to sell at once is unbounded. Optimum: import 1 at 10 into the battery,
    # export 0.81 at 60: 10 - 48.6 = -38.6.
    kwargs = dict(step_h=1.0, capacity_mwh=1.0, power_mw=1.0, efficiency=0.81, soc_initial_mwh=0.0,
                  objective="min_cost", solver=solver)
    lp_day = ([0, 0], [0, 0], [10, 50], [10, 50])
    milp_day = ([0, 0], [0, 0], [10, 50], [20, 60])
    scheduler = BatteryScheduler()
    first = scheduler.schedule(*lp_day, **kwargs)
    assert first.objective == pytest.approx(-30.5, abs=1e-6)
    for _ in range(2):  # the MILP model is built once, then reused
        milp = scheduler.schedule(*milp_day, **kwargs)
        assert milp.objective == pytest.approx(-38.6, abs=1e-6)
        np.testing.assert_allclose(milp.table["import_mw"], [1, 0], atol=1e-6)
        np.testing.assert_allclose(milp.table["export_mw"], [0, 0.81], atol=1e-6)
        assert_same(milp, schedule_battery(*milp_day, **kwargs))
        again = scheduler.schedule(*lp_day, **kwargs)  # and the LP model still works after it
        assert_same(again, first)
    assert scheduler.models_built == 2 and scheduler.solves == 5


@pytest.mark.parametrize("solver", SOLVERS)
def test_milp_days_of_a_day_length_equal_fresh_models(solver):
    # 96-step days whose export price exceeds the import price in some steps, mixed with LP days.
    def export_price(rng, price):
        sell = np.full(price.shape, 3.0)
        sell[rng.choice(price.size, 8, replace=False)] = price.max() + 5.0
        return sell

    milp_days = random_days(3, seed=5, export_price=export_price)
    lp_days = random_days(3, seed=6)
    scheduler = BatteryScheduler()
    kwargs = dict(BATTERY, soc_initial_mwh=0.6, objective="min_cost", solver=solver)
    for milp_day, lp_day in zip(milp_days, lp_days):
        for day in (milp_day, lp_day):
            reused = scheduler.schedule(*day, **kwargs)
            assert_same(reused, schedule_battery(*day, **kwargs))
        table = scheduler.schedule(*milp_day, **kwargs).table
        assert np.minimum(table["import_mw"], table["export_mw"]).max() < 1e-7  # never both in one step
    assert scheduler.models_built == 2


@pytest.mark.parametrize("solver", SOLVERS)
def test_models_per_horizon_and_battery(solver):
    # A shorter (last) day and another battery need their own models; each equals a fresh one.
    scheduler = BatteryScheduler()
    day96, day40 = random_days(1, seed=2)[0], tuple(a[:40] for a in random_days(1, seed=3)[0])
    other = dict(BATTERY, power_mw=0.3, efficiency=0.81)
    cases = [(day96, BATTERY), (day40, BATTERY), (day96, other), (day96, BATTERY), (day40, BATTERY)]
    for day, battery in cases:
        kwargs = dict(battery, soc_initial_mwh=0.6, objective="min_cost", solver=solver)
        assert_same(scheduler.schedule(*day, **kwargs), schedule_battery(*day, **kwargs))
    assert scheduler.models_built == 3 and scheduler.solves == 5


@pytest.mark.parametrize("solver", SOLVERS)
def test_reused_model_survives_an_infeasible_day(solver):
    lp = BatteryLP(1, step_h=1.0, capacity_mwh=1.0, power_mw=0.1, efficiency=0.81, solver=solver)
    good = lp.solve([0], [0], [10], [10], soc_initial_mwh=0.0, soc_final_mwh=0.045)
    with pytest.raises(InfeasibleSchedule, match="infeasible"):
        lp.solve([0], [0], [10], [10], soc_initial_mwh=0.0, soc_final_mwh=0.9)  # 0.09 MWh at most
    again = lp.solve([0], [0], [10], [10], soc_initial_mwh=0.0, soc_final_mwh=0.045)
    assert_same(again, good)
    assert good.objective == pytest.approx(0.5, abs=1e-6)  # 0.045 / 0.9 = 0.05 MW for an hour at 10


def test_battery_lp_refuses_what_it_was_not_built_for():
    lp = BatteryLP(2, step_h=1.0, capacity_mwh=1.0, power_mw=1.0, efficiency=0.81)
    with pytest.raises(ValueError, match="this model has 2 steps"):
        lp.solve([0, 0, 0], [0, 0, 0], [1, 2, 3], [1, 2, 3], soc_initial_mwh=0.0)
    with pytest.raises(ValueError, match="direction=True"):
        lp.solve([0, 0], [0, 0], [10, 50], [20, 60], soc_initial_mwh=0.0)
    with pytest.raises(ValueError, match="unknown solver 'cplex'"):
        BatteryScheduler().schedule([0], [0], [1], [1], solver="cplex", **BATTERY, soc_initial_mwh=0.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_day_ahead_planner_builds_once_and_plans_as_a_fresh_planner(tmp_path, solver):
    path = write_scenario(tmp_path, "trondelag_arbitrage",
                          {"horizon_h": 96, "ems.solver": solver, "resolution.ems_min": 15})
    scenario = load_scenario(path)
    planner = DayAheadPlanner(scenario)
    rng = np.random.default_rng(4)
    for day in range(4):
        start = scenario.start + dt.timedelta(days=day)
        prices = rng.uniform(10, 60, 24)
        args = (start, 96, prices, 0.3 * prices)
        assert_same(planner.plan(*args), DayAheadPlanner(scenario, planner.forecaster).plan(*args))
    assert planner.scheduler.models_built == 1 and planner.scheduler.solves == 4
