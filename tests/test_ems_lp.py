"""Unit tests of the LEC_EMS battery-scheduling LP (lec_cosim.models.ems.schedule_battery).

Every hand-solved case uses round-trip efficiency 0.81, so the one-way efficiency is exactly
sqrt(0.81) = 0.9: charging c MW for h hours stores 0.9*c*h MWh, and drawing s MWh from the
battery delivers 0.9*s MWh to the bus.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lec_cosim.models.ems import InfeasibleSchedule, schedule_battery

SOLVERS = ["glpk", "highs"]
TOL = 1e-6


def columns(schedule):
    t = schedule.table
    return (
        t["charge_mw"].to_numpy(),
        t["discharge_mw"].to_numpy(),
        t["soc_mwh"].to_numpy(),
        t["import_mw"].to_numpy(),
        t["export_mw"].to_numpy(),
    )


def assert_schedule(schedule, *, charge, discharge, soc, imp, exp, objective):
    c, d, s, i, e = columns(schedule)
    np.testing.assert_allclose(c, charge, atol=TOL)
    np.testing.assert_allclose(d, discharge, atol=TOL)
    np.testing.assert_allclose(s, soc, atol=TOL)
    np.testing.assert_allclose(i, imp, atol=TOL)
    np.testing.assert_allclose(e, exp, atol=TOL)
    assert schedule.objective == pytest.approx(objective, abs=TOL)


def assert_feasible(schedule, load, pv, *, step_h, capacity_mwh, power_mw, efficiency, soc_initial_mwh,
                    soc_final_mwh=None):
    """Every LP constraint holds on the returned table."""
    c, d, s, i, e = columns(schedule)
    load, pv = np.asarray(load, float), np.asarray(pv, float)
    eta = math.sqrt(efficiency)
    # Energy balance at the bus in every step.
    np.testing.assert_allclose(i - e, load - pv + c - d, atol=TOL)
    # SoC update with one-way efficiency on each direction.
    previous = np.concatenate(([soc_initial_mwh], s[:-1]))
    np.testing.assert_allclose(s, previous + (eta * c - d / eta) * step_h, atol=TOL)
    # Back to the start (or the requested final SoC).
    final = soc_initial_mwh if soc_final_mwh is None else soc_final_mwh
    assert s[-1] == pytest.approx(final, abs=TOL)
    # Bounds.
    for x in (c, d, s, i, e):
        assert (x >= -1e-9).all()
    assert (c <= power_mw + 1e-9).all() and (d <= power_mw + 1e-9).all()
    assert (s <= capacity_mwh + 1e-9).all()
    np.testing.assert_allclose(schedule.setpoint_mw, c - d, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Hand-solved min_cost (arbitrage) cases
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_two_step_arbitrage_power_limited(solver):
    # Prices [10, 50], no load/PV, E = 1 MWh, P = 1 MW, eta = 0.81, SoC(0) = SoC(T) = 0, dt = 1 h.
    # 1 MWh bought at 10 returns 0.81 MWh at 50 (40.5 > 10), so charge at full power in step 0:
    # stored 0.9 MWh (< E, so power binds); discharge it all in step 1: 0.9 * 0.9 = 0.81 MW.
    # Cost = 10 * 1 - 50 * 0.81 = -30.5.
    s = schedule_battery([0, 0], [0, 0], [10, 50], [10, 50], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.0, objective="min_cost", solver=solver)
    assert_schedule(s, charge=[1, 0], discharge=[0, 0.81], soc=[0.9, 0], imp=[1, 0], exp=[0, 0.81],
                    objective=-30.5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_two_step_arbitrage_capacity_limited(solver):
    # As above but E = 0.36 MWh: the battery fills with c = 0.36 / 0.9 = 0.4 MW (< P = 1) and
    # returns 0.36 * 0.9 = 0.324 MW. Cost = 10 * 0.4 - 50 * 0.324 = 4 - 16.2 = -12.2.
    s = schedule_battery([0, 0], [0, 0], [10, 50], [10, 50], step_h=1.0, capacity_mwh=0.36, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.0, objective="min_cost", solver=solver)
    assert_schedule(s, charge=[0.4, 0], discharge=[0, 0.324], soc=[0.36, 0], imp=[0.4, 0], exp=[0, 0.324],
                    objective=-12.2)


@pytest.mark.parametrize("solver", SOLVERS)
def test_two_step_arbitrage_half_hour_steps(solver):
    # dt = 0.5 h, E = 1, P = 1: charging 1 MW for half an hour stores 0.45 MWh (power binds);
    # discharging d MW draws d / 0.9 * 0.5 = 0.45 -> d = 0.81 MW.
    # Cost = (10 * 1 - 50 * 0.81) * 0.5 = -15.25 (currency, energies are MW * dt).
    s = schedule_battery([0, 0], [0, 0], [10, 50], [10, 50], step_h=0.5, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.0, objective="min_cost", solver=solver)
    assert_schedule(s, charge=[1, 0], discharge=[0, 0.81], soc=[0.45, 0], imp=[1, 0], exp=[0, 0.81],
                    objective=-15.25)


@pytest.mark.parametrize("solver", SOLVERS)
def test_three_step_arbitrage_from_half_full(solver):
    # Prices [50, 10, 40], E = 1, P = 1, SoC(0) = SoC(T) = 0.5, eta = 0.81, dt = 1 h.
    # Step 0 (50, the dearest): empty the battery: 0.5 MWh delivers 0.45 MW.
    # Step 1 (10): charge at full power: 0.9 MWh stored (room 1, power binds).
    # Step 2 (40): return to 0.5: draw 0.4 MWh -> 0.36 MW. Charging at 10 is worth 0.81*40 = 32.4.
    # Cost = -50 * 0.45 + 10 * 1 - 40 * 0.36 = -22.5 + 10 - 14.4 = -26.9.
    s = schedule_battery([0, 0, 0], [0, 0, 0], [50, 10, 40], [50, 10, 40], step_h=1.0, capacity_mwh=1.0,
                         power_mw=1.0, efficiency=0.81, soc_initial_mwh=0.5, objective="min_cost", solver=solver)
    assert_schedule(s, charge=[0, 1, 0], discharge=[0.45, 0, 0.36], soc=[0, 0.9, 0.5], imp=[0, 1, 0],
                    exp=[0.45, 0, 0.36], objective=-26.9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_unprofitable_spread_leaves_battery_idle(solver):
    # Prices [10, 12]: 1 MWh bought at 10 returns 0.81 MWh worth 9.72 < 10, so the optimum is to do
    # nothing (objective 0), and the throughput tie-breaker rules out idle cycling.
    s = schedule_battery([0, 0], [0, 0], [10, 12], [10, 12], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.5, objective="min_cost", solver=solver)
    assert_schedule(s, charge=[0, 0], discharge=[0, 0], soc=[0.5, 0.5], imp=[0, 0], exp=[0, 0], objective=0.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_soc_final_differs_from_initial(solver):
    # One step, SoC 0 -> 0.45 MWh: charge 0.45 / 0.9 = 0.5 MW, cost 10 * 0.5 = 5.
    s = schedule_battery([0], [0], [10], [10], step_h=1.0, capacity_mwh=1.0, power_mw=1.0, efficiency=0.81,
                         soc_initial_mwh=0.0, soc_final_mwh=0.45, solver=solver)
    assert_schedule(s, charge=[0.5], discharge=[0], soc=[0.45], imp=[0.5], exp=[0], objective=5.0)


# ----------------------------------------------------------------------------------------------
# Hand-solved min_import (self-consumption) cases
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    "capacity, power, charge, delivered",
    [
        # Neither limit binds before the 1 MW surplus: store 0.9, deliver 0.81; import 1 - 0.81.
        (1.0, 1.0, 1.0, 0.81),
        # Power 0.5 MW: charge 0.5 (export the other 0.5), store 0.45, deliver 0.405.
        (1.0, 0.5, 0.5, 0.405),
        # Capacity 0.45 MWh: charge 0.45 / 0.9 = 0.5, deliver 0.405.
        (0.45, 1.0, 0.5, 0.405),
    ],
)
def test_min_import_shifts_pv_surplus(solver, capacity, power, charge, delivered):
    # Step 0: 1 MW PV surplus; step 1: 1 MW load; SoC(0) = SoC(T) = 0, eta = 0.81, dt = 1 h.
    # Import in step 1 is reduced by eta * charge; any surplus the battery cannot take is exported.
    load, pv = [0.0, 1.0], [1.0, 0.0]
    s = schedule_battery(load, pv, [30, 30], [30, 30], step_h=1.0, capacity_mwh=capacity, power_mw=power,
                         efficiency=0.81, soc_initial_mwh=0.0, objective="min_import", solver=solver)
    assert_schedule(s, charge=[charge, 0], discharge=[0, delivered], soc=[0.9 * charge, 0],
                    imp=[0, 1 - delivered], exp=[1 - charge, 0], objective=1 - delivered)
    assert_feasible(s, load, pv, step_h=1.0, capacity_mwh=capacity, power_mw=power, efficiency=0.81,
                    soc_initial_mwh=0.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_min_import_with_initial_charge(solver):
    # Load [1, 0, 1], PV [0, 1, 0], E = 1, P = 1, SoC(0) = SoC(T) = 0.5, eta = 0.81.
    # Whatever the split between steps 0 and 2, the battery's net delivery is 0.9 * (0.9 * 1) = 0.81
    # (1 MW surplus charged, SoC returns to 0.5), so Σ import = 2 - 0.81 = 1.19. The split is not
    # unique (any d0 in [0.36, 0.45]), so only the totals are asserted.
    load, pv = [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]
    s = schedule_battery(load, pv, [0, 0, 0], [0, 0, 0], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.5, objective="min_import", solver=solver)
    c, d, soc, imp, exp = columns(s)
    assert s.objective == pytest.approx(1.19, abs=TOL)
    assert c[1] == pytest.approx(1.0, abs=TOL)
    assert d[0] + d[2] == pytest.approx(0.81, abs=TOL)
    assert 0.36 - TOL <= d[0] <= 0.45 + TOL
    assert imp.sum() == pytest.approx(1.19, abs=TOL)
    np.testing.assert_allclose(exp, 0.0, atol=TOL)
    assert_feasible(s, load, pv, step_h=1.0, capacity_mwh=1.0, power_mw=1.0, efficiency=0.81,
                    soc_initial_mwh=0.5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_min_import_never_buys_to_charge(solver):
    # No PV: self-consumption cannot gain anything from the battery, however prices move.
    s = schedule_battery([0.2, 0.5], [0, 0], [10, 50], [10, 50], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.5, objective="min_import", solver=solver)
    assert_schedule(s, charge=[0, 0], discharge=[0, 0], soc=[0.5, 0.5], imp=[0.2, 0.5], exp=[0, 0],
                    objective=0.7)


# ----------------------------------------------------------------------------------------------
# Degenerate objective of the free-sign formulation (regression)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_separate_import_export_discriminates_where_free_sign_sum_cannot(solver):
    # Efficiency 1, PV surplus of 1 MW in step 0 then 1 MW load in step 1, E = P = 1, SoC 0 -> 0.
    # Our min_import optimum stores the surplus and covers the load: Σ import = 0, while doing
    # nothing imports 1 MWh in step 1. With one free-sign grid variable g = L - G + c - d, Σ g is
    # Σ(L - G) + (SoC(T) - SoC(0)) / dt = 0 for *both* schedules: that objective cannot choose.
    load, pv = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    dt = 1.0
    s = schedule_battery(load, pv, [0, 0], [0, 0], step_h=dt, capacity_mwh=1.0, power_mw=1.0, efficiency=1.0,
                         soc_initial_mwh=0.0, objective="min_import", solver=solver)
    c, d, soc, imp, exp = columns(s)
    np.testing.assert_allclose(c, [1, 0], atol=TOL)
    np.testing.assert_allclose(d, [0, 1], atol=TOL)
    assert_feasible(s, load, pv, step_h=dt, capacity_mwh=1.0, power_mw=1.0, efficiency=1.0, soc_initial_mwh=0.0)

    # Our objective: optimum 0 versus do-nothing Σ max(L - G, 0) * dt = 1, strictly lower.
    do_nothing_import = np.maximum(load - pv, 0.0).sum() * dt
    assert do_nothing_import == pytest.approx(1.0)
    assert s.objective == pytest.approx(0.0, abs=TOL)
    assert s.objective < do_nothing_import - 0.5

    # Flawed free-sign sum, computed from the returned table for both schedules: identical.
    free_sign_optimum = ((load - pv + c - d) * dt).sum()
    free_sign_do_nothing = ((load - pv + 0.0 - 0.0) * dt).sum()
    assert free_sign_optimum == pytest.approx(free_sign_do_nothing, abs=TOL)
    assert free_sign_optimum == pytest.approx(0.0, abs=TOL)
    # ... and it is also what import - export sums to for our optimum (the balance constraint).
    assert ((imp - exp) * dt).sum() == pytest.approx(free_sign_do_nothing, abs=TOL)


@pytest.mark.parametrize("solver", SOLVERS)
def test_free_sign_sum_is_flat_over_all_cyclic_schedules(solver):
    # With eta = 1, any schedule returning SoC to its start (here: min_import and min_cost optima
    # for the same load/PV with very different prices) has the same free-sign Σ(L - G + c - d).
    rng = np.random.default_rng(7)
    load = rng.uniform(0.1, 0.6, 12)
    pv = np.concatenate([np.zeros(3), rng.uniform(0.3, 1.0, 6), np.zeros(3)])
    price = rng.uniform(5, 80, 12)
    kwargs = dict(step_h=1.0, capacity_mwh=1.2, power_mw=0.6, efficiency=1.0, soc_initial_mwh=0.6, solver=solver)
    a = schedule_battery(load, pv, price, price, objective="min_import", **kwargs)
    b = schedule_battery(load, pv, price, price, objective="min_cost", **kwargs)
    sums = []
    for s in (a, b):
        c, d, *_ = columns(s)
        assert np.abs(c - d).sum() > 0.1  # the battery really moved
        sums.append((load - pv + c - d).sum())
    assert sums[0] == pytest.approx((load - pv).sum(), abs=TOL)
    assert sums[1] == pytest.approx((load - pv).sum(), abs=TOL)
    # The separate-variable objective does see the difference.
    assert a.objective < np.maximum(load - pv, 0).sum() - 0.1


# ----------------------------------------------------------------------------------------------
# min_cost with a feed-in tariff below the spot price
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    "tariff, expected",
    [
        # Storing 1 MWh of surplus forgoes 5 of export income and saves 0.81 * 30 = 24.3 of import:
        # store. Cost = 30 * (1 - 0.81) = 5.7.
        (5.0, dict(charge=[1, 0], discharge=[0, 0.81], soc=[0.9, 0], imp=[0, 0.19], exp=[0, 0], objective=5.7)),
        # A tariff of 25 > 24.3 makes exporting the better use: cost = -25 * 1 + 30 * 1 = 5.
        (25.0, dict(charge=[0, 0], discharge=[0, 0], soc=[0, 0], imp=[0, 1], exp=[1, 0], objective=5.0)),
    ],
)
def test_min_cost_with_feed_in_tariff(solver, tariff, expected):
    load, pv = [0.0, 1.0], [1.0, 0.0]
    s = schedule_battery(load, pv, [30, 30], [tariff, tariff], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.0, objective="min_cost", solver=solver)
    assert_schedule(s, **expected)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("objective", ["min_cost", "min_import"])
def test_invariants_and_objective_on_a_day(solver, objective):
    # A 15-minute day with random load, a PV bump, spot prices (5 to 38) and a lower flat feed-in
    # tariff (an export price above the import price would make the LP unbounded, see below).
    rng = np.random.default_rng(42)
    n, dt = 96, 0.25
    hours = np.arange(n) * dt
    load = 0.2 + 0.15 * rng.random(n)
    pv = np.clip(0.8 * np.sin((hours - 6) / 12 * np.pi), 0, None)
    price = 20 + 15 * np.sin(hours / 24 * 2 * np.pi) + 3 * rng.random(n)
    export_price = np.full(n, 3.0)
    params = dict(step_h=dt, capacity_mwh=1.2, power_mw=0.6, efficiency=0.9, soc_initial_mwh=0.6)
    s = schedule_battery(load, pv, price, export_price, objective=objective, solver=solver, **params)
    assert_feasible(s, load, pv, **params)
    c, d, soc, imp, exp = columns(s)

    cost = ((price * imp - export_price * exp) * dt).sum()
    energy_in = (imp * dt).sum()
    assert s.objective == pytest.approx(cost if objective == "min_cost" else energy_in, abs=1e-6)

    # Positive prices and losses: charging and discharging at once never pays; import and export
    # at once never pays when the feed-in tariff is below the price.
    assert np.minimum(c, d).max() < 1e-7
    assert np.minimum(imp, exp).max() < 1e-7

    # The optimum beats doing nothing.
    net = load - pv
    idle_imp, idle_exp = np.maximum(net, 0), np.maximum(-net, 0)
    idle = (((price * idle_imp - export_price * idle_exp) * dt).sum() if objective == "min_cost"
            else (idle_imp * dt).sum())
    assert s.objective < idle - 1e-3


@pytest.mark.parametrize("objective", ["min_cost", "min_import"])
def test_glpk_and_highs_agree(objective):
    rng = np.random.default_rng(3)
    n = 24
    load = rng.uniform(0.2, 0.5, n)
    pv = np.where((np.arange(n) >= 9) & (np.arange(n) <= 16), rng.uniform(0.5, 0.9, n), 0.0)
    price = rng.uniform(10, 60, n)
    args = (load, pv, price, 0.5 * price)
    kwargs = dict(step_h=1.0, capacity_mwh=1.2, power_mw=0.6, efficiency=0.95, soc_initial_mwh=0.6,
                  objective=objective)
    g = schedule_battery(*args, solver="glpk", **kwargs)
    h = schedule_battery(*args, solver="highs", **kwargs)
    assert g.objective == pytest.approx(h.objective, abs=1e-6)
    assert abs(g.objective) > 1e-3


# ----------------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------------

GOOD = dict(step_h=1.0, capacity_mwh=1.0, power_mw=1.0, efficiency=0.81, soc_initial_mwh=0.0)


@pytest.mark.parametrize(
    "load, pv, price, export",
    [
        ([0, 0], [0], [10, 50], [10, 50]),
        ([0, 0], [0, 0], [10, 50, 20], [10, 50]),
        ([0, 0], [0, 0], [10, 50], [10]),
        ([0], [0, 0], [10, 50], [10, 50]),
    ],
)
def test_length_mismatch_raises(load, pv, price, export):
    with pytest.raises(ValueError, match="same length"):
        schedule_battery(load, pv, price, export, **GOOD)


def test_unknown_objective_raises():
    with pytest.raises(ValueError, match="unknown objective 'max_profit'"):
        schedule_battery([0, 0], [0, 0], [10, 50], [10, 50], objective="max_profit", **GOOD)


def test_unknown_solver_raises():
    with pytest.raises(ValueError, match="unknown solver 'cplex'"):
        schedule_battery([0, 0], [0, 0], [10, 50], [10, 50], solver="cplex", **GOOD)


@pytest.mark.parametrize("solver", SOLVERS)
def test_unreachable_final_soc_is_infeasible(solver):
    # 0.1 MW for one hour stores at most 0.09 MWh; 0.9 MWh cannot be reached.
    with pytest.raises(InfeasibleSchedule, match="infeasible"):
        schedule_battery([0], [0], [10], [10], step_h=1.0, capacity_mwh=1.0, power_mw=0.1, efficiency=0.81,
                         soc_initial_mwh=0.0, soc_final_mwh=0.9, solver=solver)


@pytest.mark.parametrize("solver", SOLVERS)
def test_soc_window_bounds_the_arbitrage(solver):
    # As the power-limited two-step case (prices 10, 50; E = 1, P = 1, eta = 0.81), but the SoC must
    # stay within 0.2..0.6 MWh and start and end at 0.2: the battery can store 0.4 MWh, charged with
    # 0.4 / 0.9 = 0.4444 MW and returning 0.4 * 0.9 = 0.36 MW. Cost = 10 * 0.4444 - 50 * 0.36 = -13.5556.
    s = schedule_battery([0, 0], [0, 0], [10, 50], [10, 50], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.2, soc_min_mwh=0.2, soc_max_mwh=0.6, solver=solver)
    assert_schedule(s, charge=[0.4 / 0.9, 0], discharge=[0, 0.36], soc=[0.6, 0.2], imp=[0.4 / 0.9, 0],
                    exp=[0, 0.36], objective=10 * 0.4 / 0.9 - 50 * 0.36)


@pytest.mark.parametrize("solver", SOLVERS)
def test_import_limit_makes_the_battery_shave_the_peak(solver):
    # Loads 0.2 and 0.8 MW (min_import), limit 0.6 MW, E = 1, P = 1, eta = 0.81, from and back to
    # 0.5 MWh: step 1 needs at least 0.2 MW from the battery. Every MW discharged costs 1/0.81 MW
    # charged, so the least import discharges exactly 0.2 MW (draws 0.2 / 0.9 = 0.2222 MWh), put
    # back in step 0 with 0.2 / 0.81 = 0.2469 MW: imports 0.4469 and 0.6 MW.
    s = schedule_battery([0.2, 0.8], [0, 0], [10, 10], [10, 10], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.5, import_limit_mw=0.6, objective="min_import",
                         solver=solver)
    charged = 0.2 / 0.81
    assert_schedule(s, charge=[charged, 0], discharge=[0, 0.2], soc=[0.5 + 0.2 / 0.9, 0.5],
                    imp=[0.2 + charged, 0.6], exp=[0, 0], objective=0.2 + charged + 0.6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_import_limit_no_battery_can_keep_is_infeasible(solver):
    # Limit 0.5 MW: step 1 needs 0.3 MW from the battery, which must be put back in step 0 with at
    # least 0.3 / 0.81 = 0.3704 MW: step 0 then imports 0.5704 MW, above the limit.
    with pytest.raises(InfeasibleSchedule, match="not solved to optimality"):
        schedule_battery([0.2, 0.8], [0, 0], [10, 10], [10, 10], step_h=1.0, capacity_mwh=1.0, power_mw=1.0,
                         efficiency=0.81, soc_initial_mwh=0.5, import_limit_mw=0.5, objective="min_import",
                         solver=solver)


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_summary_s_solver_version_is_pyomo_s_read_without_pyomo(solver):
    """The run summary's solver version (``solver_version``, read without importing Pyomo: the recorder has no
    other use for it) is the version Pyomo's solver object reports."""
    from lec_cosim.models.lp_solvers import _solver, _version_without_pyomo, solver_version

    version = _solver(solver).version()
    assert _version_without_pyomo(solver) == version
    assert solver_version(solver) == ".".join(str(v) for v in version) and len(version) >= 3
