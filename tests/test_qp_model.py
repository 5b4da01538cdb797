"""The warm-started QP model (DAQP, HiGHS as the fallback) against HiGHS solving the same problem from scratch.

Problems are an ADMM agent's local QP (one LEC with a battery, PV to curtail, DSO limits and two exchanges)
with random data; the optimum is unique (the tie-break makes it strictly convex in the powers), so both solvers
must agree on the objective to its last digits, on the powers to the flat directions' tolerance and on the duals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lec_cosim.models.qp_model as qp_model
from lec_cosim.models.exchange import ExchangeProblem, InfeasibleExchange
from lec_cosim.models.exchange_qp import SolverFailure, _add_exchange, _add_lec, _QpBuilder, _run

T = 24


def problem(seed: int, **changes) -> ExchangeProblem:
    rng = np.random.default_rng(seed)
    settings = dict(
        net_demand_kw=rng.normal(5.0, 15.0, (3, T)), dt_h=1.0,
        import_price_eur_per_kwh=rng.uniform(0.15, 0.30, T), export_price_eur_per_kwh=rng.uniform(0.02, 0.06, T),
        edges=((0, 1), (0, 2)), edge_capacity_kw=rng.uniform(5.0, 30.0), wheeling_eur_per_kwh2=1e-3,
        battery_capacity_kwh=rng.uniform(20.0, 80.0, 3), battery_power_kw=rng.uniform(5.0, 20.0, 3),
        battery_efficiency=0.95, soc_initial=rng.uniform(0.1, 0.9, 3),
        grid_export_limit_kw=rng.uniform(5.0, 20.0, (3, T)), limit_penalty_eur_per_kwh=0.5,
        curtailable_kw=rng.uniform(0.0, 10.0, (3, T)),
    )
    settings.update(changes)
    return ExchangeProblem(**settings)


def local_qp(p: ExchangeProblem, rho: float = 3e-3) -> tuple[_QpBuilder, np.ndarray]:
    """LEC 0's local QP as an ADMM agent builds it; returns the builder and its exchange columns."""
    qp = _QpBuilder()
    lec = _add_lec(qp, p, 0)
    columns = []
    for e, (_, n) in enumerate(p.edges):
        exchange = _add_exchange(qp, p.edge_capacity_kw[e], T, 0.5 * p.wheeling_fee_eur_per_kwh[e])
        qp.add_coefficients(lec.balance_rows, exchange, -1.0)
        qp.add_curvature(exchange, p.wheeling_eur_per_kwh2[e] + rho)
        columns.append(exchange)
    return qp, np.concatenate(columns)


def objective(arrays, x) -> float:
    q = arrays.hessian.toarray()
    q = q + q.T - np.diag(np.diag(q))
    return float(arrays.cost @ x + 0.5 * x @ q @ x)


def assert_kkt(arrays, x, duals, tol=1e-7):
    """``duals`` (HiGHS's convention) prove ``x`` optimal: each column's reduced cost ``c + Qx - A'y`` and each
    row's dual have the sign its active bound allows, and are zero off its bounds."""
    q = arrays.hessian.toarray()
    q = q + q.T - np.diag(np.diag(q))
    reduced = arrays.cost + q @ x - arrays.a.T @ duals
    for values, lower, upper, multipliers in ((x, arrays.col_lower, arrays.col_upper, reduced),
                                             (arrays.a @ x, arrays.row_lower, arrays.row_upper, duals)):
        at_lower, at_upper = values <= lower + 1e-7, values >= upper - 1e-7
        assert np.all(multipliers[~at_lower & ~at_upper] == pytest.approx(0.0, abs=tol))
        assert np.all(multipliers[at_lower & ~at_upper] >= -tol)
        assert np.all(multipliers[at_upper & ~at_lower] <= tol)


def assert_same_optimum(arrays, mine, reference, balance_rows=slice(0, T)):
    (x, duals), (x_ref, duals_ref) = mine, reference
    a = arrays.a @ x
    assert np.all(a >= arrays.row_lower - 1e-8) and np.all(a <= arrays.row_upper + 1e-8)
    assert np.all(x >= arrays.col_lower - 1e-8) and np.all(x <= arrays.col_upper + 1e-8)
    assert objective(arrays, x) == pytest.approx(objective(arrays, x_ref), rel=1e-10, abs=1e-9)
    # the tie-break's curvature is 2e-6 EUR/kWh^2: directions it alone fixes are flat to ~1e-9 EUR per kW^2
    assert np.max(np.abs(x - x_ref)) < 1e-3
    # the balance rows' duals are the local prices callers read; other rows' duals need not be unique (a
    # battery full and idle: its state's bound and its charge's bound share one price), both must prove optimality
    assert np.max(np.abs(duals[balance_rows] - duals_ref[balance_rows])) < 1e-6
    assert_kkt(arrays, x, duals)
    assert_kkt(arrays, x_ref, duals_ref)


def highs_solution(qp_builder_or_arrays):
    from lec_cosim.models.exchange_qp import _highs_model

    return _run(_highs_model(qp_builder_or_arrays), "reference")


@pytest.mark.parametrize("seed", range(6))
def test_daqp_reaches_highs_optimum_and_duals_warm_after_cost_and_rho_changes(seed):
    p = problem(seed)
    qp, exchange = local_qp(p)
    model = qp.model()
    rng = np.random.default_rng(100 + seed)
    iterations = []
    for k in range(8):
        if k:  # an ADMM iteration: new linear costs of the exchanges; twice, a new rho
            model.set_costs(exchange, rng.normal(0.0, 0.02, len(exchange)))
            if k in (3, 6):
                hessian = model.hessian.tolil()
                for c in exchange:
                    hessian[c, c] = 1e-3 + rng.uniform(1e-4, 1e-2)
                model.set_hessian(hessian.tocsc())
        solved = model.solve("test")
        assert model.solved_by == "daqp"
        iterations.append(model.iterations)
        arrays = model.current()
        try:
            reference = highs_solution(arrays)
        except SolverFailure:  # HiGHS fails on seed 5 ("Solve error", every k), DAQP solves it
            assert_kkt(arrays, *solved)  # optimality proved by the duals alone
            continue
        assert_same_optimum(arrays, solved, reference)
    # warm: the solves after small changes start at the last working set
    assert np.mean(iterations[1:]) < 0.5 * iterations[0]


def test_a_problem_with_a_fee_is_solved_by_highs():
    """A fee's size column has no curvature and no equality row of its own: not reduced, HiGHS solves."""
    p = problem(1, wheeling_fee_eur_per_kwh=0.01)
    qp, _ = local_qp(p)
    model = qp.model()
    solved = model.solve("test")
    assert model.solved_by == "highs"
    assert_same_optimum(model.arrays, solved, highs_solution(model.arrays))


def test_daqp_failing_falls_back_to_highs(monkeypatch):
    """DAQP stopping at its iteration limit: HiGHS solves, and the next solve tries DAQP again, cold."""
    qp, exchange = local_qp(problem(2))
    model = qp.model()
    monkeypatch.setattr(qp_model, "_ITERATION_LIMIT", 3)
    solved = model.solve("test")
    assert model.solved_by == "highs"
    assert_same_optimum(model.arrays, solved, highs_solution(model.arrays))
    monkeypatch.setattr(qp_model, "_ITERATION_LIMIT", 20_000)
    model.set_costs(exchange, np.full(len(exchange), 0.01))
    solved = model.solve("test")
    assert model.solved_by == "daqp"
    arrays = model.current()
    assert_same_optimum(arrays, solved, highs_solution(arrays))


def test_an_infeasible_problem_raises_as_before():
    """Hard DSO limits no schedule meets: DAQP finds no optimum, HiGHS says infeasible."""
    p = problem(3, grid_export_limit_kw=math.inf, grid_import_limit_kw=0.0, limit_penalty_eur_per_kwh=math.inf,
                net_demand_kw=np.full((3, T), 40.0), battery_power_kw=1.0)
    qp, _ = local_qp(p)
    model = qp.model()
    with pytest.raises(InfeasibleExchange):
        model.solve("test")


def test_a_hessian_of_another_pattern_is_reduced_anew_and_highs_gets_the_current_costs():
    """After DAQP solved, new costs and a Hessian where both exchanges have no curvature at the first step (two flat
    columns, one balance row to fix them: not reducible): HiGHS, built only now, solves with the current costs."""
    qp, exchange = local_qp(problem(4))
    model = qp.model()
    model.solve("test")
    assert model.solved_by == "daqp"
    model.set_costs(exchange, np.full(len(exchange), -0.01))
    hessian = model.hessian.tolil()
    for column in (exchange[0], exchange[T]):
        hessian[column, column] = 0.0
    model.set_hessian(hessian.tocsc())
    solved = model.solve("test")
    assert model.solved_by == "highs"
    arrays = model.current()
    assert_same_optimum(arrays, solved, highs_solution(arrays))


def test_a_hessian_with_off_diagonal_terms_is_solved_by_highs():
    """Only diagonal Hessians are reduced for DAQP: a coupling term between two exchanges goes to HiGHS, also when
    it arrives after DAQP solved."""
    qp, exchange = local_qp(problem(0))
    model = qp.model()
    model.solve("test")
    hessian = model.hessian.tolil()
    hessian[exchange[1], exchange[0]] = 1e-4  # lower triangle
    model.set_hessian(hessian.tocsc())
    solved = model.solve("test")
    assert model.solved_by == "highs"
    arrays = model.current()
    assert_kkt(arrays, *solved)
