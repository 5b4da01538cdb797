"""The home LP's solver (lec_cosim.models.home_plan._HomeLpSolver) against scipy's linprog, the reference.

The solver runs scipy's own HiGHS with linprog's model and options, so its plans must be linprog's to the bit:
random homes (seeded), the window lengths of a rolling horizon cut at a run's end, empty and 0 kWh batteries,
infinite and binding caps, one solver reused over all of them and solvers in several threads.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from lec_cosim.models import home_plan
from lec_cosim.models.home_plan import _home_lp, _home_lp_data, _home_lp_linprog, _HomeLpSolver, plan_home

pytestmark = pytest.mark.skipif(home_plan._scipy_highs is None, reason="this scipy keeps its HiGHS elsewhere")


def random_home(rng: np.random.Generator, n: int, *, capacity: float | None = None, infinite_caps: bool = False):
    """The arguments of the home LP (as plan_home passes them) of a random home over ``n`` hourly steps."""
    net_load = rng.uniform(-4.0, 5.0, n)
    p_imp = rng.uniform(0.10, 0.40, n)
    p_exp = rng.uniform(0.0, 1.0, n) * p_imp
    f_imp, f_over = rng.uniform(0.0, 0.05, n), rng.uniform(0.0, 0.5, n)
    if infinite_caps:
        cap = np.full(n, np.inf)
    else:  # some steps uncapped, some capped below what the home needs
        cap = np.where(rng.random(n) < 0.3, np.inf, rng.uniform(0.0, 4.0, n))
    capacity = rng.uniform(0.5, 15.0) if capacity is None else capacity
    power = rng.uniform(0.5, 5.0)
    eta = rng.choice([1.0, 0.9, rng.uniform(0.7, 1.0)])
    soc = rng.uniform(0.0, capacity)
    reachable = soc + math.sqrt(eta) * power * n
    final = min(0.5 * capacity, reachable)
    return (net_load, 1.0, p_imp + f_imp, p_imp + f_imp + f_over, -p_exp, cap, capacity, power, eta, soc, final)


def lp_cost(args, x: np.ndarray) -> float:
    cost = _home_lp_data(*args[:8], *args[9:])[0]
    return float(cost @ x)


def assert_same_as_linprog(solver: _HomeLpSolver, args) -> None:
    expected = _home_lp_linprog(*args)
    got = solver.solve(*args)
    np.testing.assert_array_equal(got, expected)  # the same HiGHS, model and options: the same vertex, every bit
    assert lp_cost(args, got) == pytest.approx(lp_cost(args, expected), rel=1e-9, abs=1e-12)


def test_random_homes_over_a_rolling_window_cut_at_the_run_end():
    """One solver over 24-step windows, then the windows of a run's last 23 hours (23 steps down to 1), then 24
    again: every plan linprog's."""
    rng = np.random.default_rng(17)
    solver = _HomeLpSolver()
    for n in [24] * 20 + list(range(23, 0, -1)) + [24, 7, 24]:
        assert_same_as_linprog(solver, random_home(rng, n))


def test_infinite_caps_empty_and_full_batteries():
    rng = np.random.default_rng(3)
    solver = _HomeLpSolver()
    for n in (1, 2, 24):
        assert_same_as_linprog(solver, random_home(rng, n, infinite_caps=True))
        args = list(random_home(rng, n))
        args[9], args[10] = 0.0, 0.0  # empty, may stay empty
        assert_same_as_linprog(solver, tuple(args))
        args[9] = args[10] = args[6]  # full, must end full
        assert_same_as_linprog(solver, tuple(args))


def test_zero_kwh_battery():
    """A battery of 0 kWh: the LP can only pass the net load through (plan_home does not even ask the LP)."""
    rng = np.random.default_rng(5)
    solver = _HomeLpSolver()
    args = random_home(rng, 24, capacity=0.0)
    args = args[:9] + (0.0, 0.0)
    assert_same_as_linprog(solver, args)
    assert not solver.solve(*args)[3 * 24:5 * 24].any()  # nothing charged or discharged
    plan = plan_home([1.0, 2.0], [3.0, 0.0], dt_h=1.0, import_price_eur_per_kwh=0.2, export_price_eur_per_kwh=0.05,
                     battery_kwh=0.0, battery_kw=3.0)
    np.testing.assert_array_equal(plan.net_kw, [-2.0, 2.0])


def test_quarter_hour_steps_and_efficiencies_share_no_model():
    """The matrix depends on the step and the efficiency: models of one window length with others are not
    confused, also when the solver's model cache is cleared on the way."""
    rng = np.random.default_rng(11)
    solver = _HomeLpSolver()
    solver._MAX_MODELS = 2
    for dt_h, eta in [(1.0, 1.0), (0.25, 0.9), (1.0, 0.81), (0.25, 0.9), (1.0, 1.0)]:
        args = random_home(rng, 12)
        args = (args[0], dt_h, *(dt_h * a for a in args[2:5]), *args[5:8], eta, *args[9:])
        assert_same_as_linprog(solver, args)


def test_plan_home_on_the_solver_is_plan_home_on_linprog():
    """plan_home's battery powers are the solver's (the thread's own), equal to linprog's."""
    rng = np.random.default_rng(23)
    for n in (24, 5, 1):
        args = random_home(rng, n)
        x = _home_lp_linprog(*args)
        charge, discharge = _home_lp(*args)
        np.testing.assert_array_equal(charge, np.clip(x[3 * n:4 * n], 0.0, args[7]) + 0.0)
        np.testing.assert_array_equal(discharge, np.clip(x[4 * n:5 * n], 0.0, args[7]) + 0.0)


def test_threads_have_their_own_solver():
    """Federates run as threads in one process (in-process federations): each thread solves on its own HiGHS
    instance, the plans still linprog's."""
    rng = np.random.default_rng(29)
    homes = [random_home(rng, int(rng.integers(1, 25))) for _ in range(40)]
    expected = [_home_lp_linprog(*args) for args in homes]
    results, solvers = {}, {}

    def work(k: int) -> None:
        results[k] = [_home_lp(*args) for args in homes]
        solvers[k] = home_plan._SOLVERS.solver

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(solver) for solver in solvers.values()}) == 3
    for plans in results.values():
        for (charge, discharge), x, args in zip(plans, expected, homes):
            n = len(args[0])
            np.testing.assert_array_equal(charge, np.clip(x[3 * n:4 * n], 0.0, args[7]) + 0.0)
            np.testing.assert_array_equal(discharge, np.clip(x[4 * n:5 * n], 0.0, args[7]) + 0.0)
