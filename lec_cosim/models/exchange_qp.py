"""The quadratic programmes of the LEC exchange, assembled and solved (HiGHS; DAQP for the ADMM agents).

One LEC's columns and rows (grid import and export, battery, curtailment, the DSO's limits), an
exchange's columns, a small builder of HiGHS models and the solve call with its errors. Both the
centralised optimum (:func:`lec_cosim.models.exchange.solve_centralised`) and every ADMM agent's
local step (:class:`lec_cosim.models.admm_agent.LecAgent`) are built from these pieces; they are
separate because they are about the solver, not the exchange.

Solvers: HiGHS through ``highspy`` (Pyomo's ``appsi_highs`` rejects quadratic objectives) for the one-off
problems (the centralised optimum, a LEC planned alone, the plan around agreed exchanges); an ADMM agent, which
solves its local QP once per iteration with only the linear costs of its exchange columns changed (and the Hessian
while rho adapts), holds a :class:`~lec_cosim.models.qp_model.QpModel` (``_QpBuilder.model``): DAQP's dual
active-set solver warm-started from the last working set, HiGHS as the fallback. HiGHS restarts its active-set QP
solver from scratch on every solve (measured with HiGHS 1.15 and 1.16: the same iteration counts with and without
``setBasis`` of the previous optimum; its QP hot start is off by default in later HiGHS for being unreliable,
ERGO-Code/HiGHS#2521 and #3089): a day's local QP takes about 200-340 active-set iterations, 2-5 ms, against 0.05 ms
for DAQP warm.

The problem is made strictly convex by a tiny quadratic tie-break on every grid and battery
power (``tie_break_eur_per_kwh2``, default 1e-6): the optimum is then unique, so the centralised
and the negotiated schedules can be compared step by step, and HiGHS' active-set solver does not
take the flat directions of the linear part for non-convex (it did: "QP solver model status:
Non-convex" on the three-LEC day without it). It changes the day's cost by about 1e-8 relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from lec_cosim.models.exchange_problem import ExchangeProblem
from lec_cosim.models.qp_model import QpArrays, QpModel

# HiGHS' QP solver adds this times the identity to the (scaled) Hessian. Against 1e-10, its
# default 1e-7 moved the three-LEC day's grid imports by 6e-5 kW, 1e-9 by 5e-7 kW.
_QP_REGULARISATION = 1e-10
_SOLVER_TOLERANCE = 1e-9
# HiGHS sees the objective in milli-EUR. Its active-set QP solver works with absolute
# tolerances; in EUR the Hessian entries (1e-6 to 1e-3) are so small that it cycled without end
# on some local problems (measured with highspy 1.15: 15 of 36 local QPs hit a time limit, with
# wheeling 3e-4 and tie-break 1e-6..1e-4 EUR/kWh^2); scaled by 1000 all 36 solve in <= 0.01 s.
_OBJECTIVE_SCALE = 1e3
_QP_ITERATION_LIMIT = 200_000
# The active-set solver still cycles at some points (measured with HiGHS 1.16: a three-LEC EMS's local problem
# planned on a persistence forecast, from one state of charge (0.6456) and not from 0.6 or 0.7, hit the iteration
# limit at objective scales 1e2 to 2e3 and under every regularisation, presolve and seed tried, and solved at 1e4
# in 0.03 s; an ADMM agent's local problem on that forecast ended in "Solve error" at 1e3, 3e3 and 1e4 and solved
# at 1e5 and 1e1). A problem that hits the
# limit or ends in that error is solved once more at these multiples of the scale before it fails; every other
# problem is solved as before, to the bit.
_RETRY_SCALE_FACTORS = (10.0, 100.0, 0.1, 0.01)


class InfeasibleExchange(RuntimeError):
    """The exchange problem (or one LEC's local problem) has no feasible schedule."""


class SolverFailure(RuntimeError):
    """HiGHS stopped without an optimum for another reason (e.g. its iteration limit)."""


# --------------------------------------------------------------------------------------------
# QP assembly (HiGHS minimises c'x + 1/2 x'Qx subject to row_lower <= Ax <= row_upper)
# --------------------------------------------------------------------------------------------


def _joined(parts: list, dtype=float) -> np.ndarray:
    """The builder's pieces of one array, joined (empty without pieces)."""
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


class _QpBuilder:
    def __init__(self):
        self.cost, self.col_lower, self.col_upper = [], [], []
        self.row_lower, self.row_upper = [], []
        self.a_entries = ([], [], [])
        self.q_entries = ([], [], [])
        self.n_cols = 0
        self.n_rows = 0

    def add_columns(self, cost, lower, upper) -> np.ndarray:
        cost, lower, upper = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (cost, lower, upper)))
        index = np.arange(self.n_cols, self.n_cols + cost.size)
        self.cost.append(cost.ravel())
        self.col_lower.append(lower.ravel())
        self.col_upper.append(upper.ravel())
        self.n_cols += cost.size
        return index

    def add_rows(self, lower, upper) -> np.ndarray:
        lower, upper = np.broadcast_arrays(np.asarray(lower, dtype=float), np.asarray(upper, dtype=float))
        index = np.arange(self.n_rows, self.n_rows + lower.size)
        self.row_lower.append(lower.ravel())
        self.row_upper.append(upper.ravel())
        self.n_rows += lower.size
        return index

    def add_coefficients(self, rows, cols, values):
        rows, cols, values = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(values, dtype=float))
        for store, part in zip(self.a_entries, (rows, cols, values)):
            store.append(part.ravel())

    def add_curvature(self, cols, curvature):
        """Add ``curvature / 2 * x[cols]**2`` to the objective (element-wise)."""
        cols, curvature = np.broadcast_arrays(np.asarray(cols), np.asarray(curvature, dtype=float))
        for store, part in zip(self.q_entries, (cols, cols, curvature)):
            store.append(part.ravel())

    def hessian(self) -> sp.csc_matrix:
        """Lower triangle of Q, column-wise (HiGHS' ``kTriangular``)."""
        rows, cols = _joined(self.q_entries[0], int), _joined(self.q_entries[1], int)
        q = sp.csc_matrix((_joined(self.q_entries[2]), (rows, cols)), shape=(self.n_cols, self.n_cols))
        q.sum_duplicates()
        return q

    def arrays(self) -> QpArrays:
        """The assembled problem (objective unscaled)."""
        a = sp.csc_matrix(
            (_joined(self.a_entries[2]), (_joined(self.a_entries[0], int), _joined(self.a_entries[1], int))),
            shape=(self.n_rows, self.n_cols),
        )
        a.sum_duplicates()
        return QpArrays(_joined(self.cost), _joined(self.col_lower), _joined(self.col_upper), a,
                        _joined(self.row_lower), _joined(self.row_upper), self.hessian())

    def build(self) -> highspy.Highs:
        """The problem as a HiGHS model."""
        return _highs_model(self.arrays())

    def model(self) -> QpModel:
        """The problem as a :class:`~lec_cosim.models.qp_model.QpModel`: DAQP, warm-started, where it applies;
        HiGHS otherwise."""
        return QpModel(self.arrays(), _OBJECTIVE_SCALE, _highs_model, _run)


def _highs_model(arrays: QpArrays) -> highspy.Highs:
    """A HiGHS model of ``arrays`` with the objective scaled by :data:`_OBJECTIVE_SCALE` and our options."""
    n_cols, n_rows = len(arrays.cost), len(arrays.row_lower)
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = _OBJECTIVE_SCALE * arrays.cost
    lp.col_lower_ = arrays.col_lower
    lp.col_upper_ = arrays.col_upper
    lp.row_lower_ = arrays.row_lower
    lp.row_upper_ = arrays.row_upper
    a = arrays.a
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n_cols
    lp.a_matrix_.num_row_ = n_rows
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data

    model = highspy.HighsModel()
    model.lp_ = lp
    q = arrays.hessian
    if q.nnz:
        hessian = highspy.HighsHessian()
        hessian.dim_ = n_cols
        hessian.format_ = highspy.HessianFormat.kTriangular
        hessian.start_ = q.indptr.astype(np.int32)
        hessian.index_ = q.indices.astype(np.int32)
        hessian.value_ = _OBJECTIVE_SCALE * q.data
        model.hessian_ = hessian

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("qp_regularization_value", _QP_REGULARISATION)
    # A day's local QP takes a few hundred active-set iterations; a federate must not hang
    # if HiGHS ever cycles.
    highs.setOptionValue("qp_iteration_limit", _QP_ITERATION_LIMIT)
    for option in ("primal_feasibility_tolerance", "dual_feasibility_tolerance", "optimality_tolerance"):
        highs.setOptionValue(option, _SOLVER_TOLERANCE)
    highs.passModel(model)
    return highs


def _run(highs: highspy.Highs, what: str):
    """Solve; return column values and row duals."""
    highs.run()
    status = highs.getModelStatus()
    if status in (highspy.HighsModelStatus.kIterationLimit, highspy.HighsModelStatus.kSolveError):
        retried = _run_rescaled(highs)
        if retried is not None:
            return retried
    if status != highspy.HighsModelStatus.kOptimal:
        infeasible = status == highspy.HighsModelStatus.kInfeasible
        error = InfeasibleExchange if infeasible else SolverFailure
        raise error(f"{what} not solved to optimality ({highs.modelStatusToString(status)})")
    solution = highs.getSolution()
    return np.asarray(solution.col_value), np.asarray(solution.row_dual) / _OBJECTIVE_SCALE


def _solve_once(qp: _QpBuilder, what: str):
    """A problem solved once: HiGHS (column values and row duals as :func:`_run`), and DAQP where HiGHS fails.

    HiGHS's active-set QP solver fails now and then where the problem is fine ("Solve error" at every retry scale,
    HiGHS 1.16): on lec3's window of 2016-03-30 01:00 planned alone in the decentralised year, and on lec2's plan
    around the exchanges agreed at the negotiation's cap at 2016-08-23 18:00 in the diverse scenario's distributed
    year (each stopped its run). DAQP solves the first (``tests/solver_cases/``; the second was not kept);
    :class:`~lec_cosim.models.qp_model.QpModel` tries HiGHS once more where DAQP cannot.
    """
    try:
        return _run(qp.build(), what)
    except SolverFailure:
        return qp.model().solve(what)


def _run_rescaled(highs: highspy.Highs):
    """Solve again with the objective (costs and Hessian) at each of :data:`_RETRY_SCALE_FACTORS` times the scale;
    the first optimum's column values and row duals, or None. The model's objective is restored either way (an
    ADMM agent changes its costs at the usual scale between solves)."""
    model = highs.getModel()
    n = model.lp_.num_col_
    index = np.arange(n, dtype=np.int32)
    costs = np.array(model.lp_.col_cost_, dtype=float)
    hessian = model.hessian_
    start, rows = np.array(hessian.start_, dtype=np.int32), np.array(hessian.index_, dtype=np.int32)
    values = np.array(hessian.value_, dtype=float)

    def scaled(factor: float) -> None:
        highs.changeColsCost(n, index, factor * costs)
        if len(values):
            highs.passHessian(hessian.dim_, len(values), hessian.format_, start, rows, factor * values)

    try:
        for factor in _RETRY_SCALE_FACTORS:
            scaled(factor)
            highs.run()
            if highs.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                solution = highs.getSolution()
                return (np.asarray(solution.col_value),
                        np.asarray(solution.row_dual) / (_OBJECTIVE_SCALE * factor))
        return None
    finally:
        scaled(1.0)


@dataclass(frozen=True)
class _LecColumns:
    """Where one LEC's variables and balance rows sit in a QP (``None``: the problem has no such columns)."""

    grid_import: np.ndarray
    grid_export: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    soc: np.ndarray
    balance_rows: np.ndarray
    import_excess: np.ndarray | None = None
    export_excess: np.ndarray | None = None
    curtail: np.ndarray | None = None

    def values(self, x: np.ndarray) -> dict:
        """The LEC's powers from a solution vector (``limit_excess_kw``: physical flow beyond the DSO's limits)."""
        t = len(self.grid_import)

        def part(cols):
            return x[cols] if cols is not None else np.zeros(t)

        import_excess, export_excess = part(self.import_excess), part(self.export_excess)
        return {
            "import_kw": x[self.grid_import],
            "export_kw": x[self.grid_export],
            "charge_kw": x[self.charge],
            "discharge_kw": x[self.discharge],
            "soc_kwh": x[self.soc],
            "curtailed_kw": part(self.curtail),
            "limit_excess_kw": import_excess + export_excess,
        }


def _add_lec(qp: _QpBuilder, problem: ExchangeProblem, lec: int, sent_kw=None) -> _LecColumns:
    """Columns, balance and SoC rows of one LEC; exchanges are added to the balance by the caller.

    ``sent_kw`` (shape (T,)): power the LEC sends to its neighbours, fixed (it joins the balance's
    right-hand side, not the DSO's limits); otherwise the caller adds exchange columns.

    Balance row (load convention rearranged with the data on the right)::

        import - export - charge + discharge - curtail - (power sent to neighbours) = net_demand

    The DSO's limits apply to the LEC's physical exchange with the feeder (net demand plus battery
    plus curtailment); with soft limits (finite ``limit_penalty_eur_per_kwh``) an excess column
    per direction and step relaxes them at the penalty.
    """
    t, dt = problem.n_steps, problem.dt_h
    penalty = problem.throughput_penalty_eur_per_kwh * dt
    energy = problem.battery_capacity_kwh[lec]
    power = problem.battery_power_kw[lec]
    soc_start = problem.soc_initial[lec] * energy
    leg = math.sqrt(problem.battery_efficiency[lec])
    buy, sell = problem.import_price_eur_per_kwh[lec], problem.export_price_eur_per_kwh[lec]
    import_limit, export_limit = problem.grid_import_limit_kw[lec], problem.grid_export_limit_kw[lec]

    grid_import = qp.add_columns(dt * buy, 0.0, np.inf)
    grid_export = qp.add_columns(-dt * sell, 0.0, np.inf)
    charge = qp.add_columns(np.full(t, penalty), 0.0, power)
    discharge = qp.add_columns(np.full(t, penalty), 0.0, power)
    soc_upper = np.full(t, energy)
    soc_lower = np.zeros(t)
    soc_lower[-1] = soc_upper[-1] = problem.soc_final[lec] * energy
    soc = qp.add_columns(np.zeros(t), soc_lower, soc_upper)
    powers = [grid_import, grid_export, charge, discharge]
    curtail = None
    if np.any(problem.curtailable_kw[lec] > 0):
        curtail = qp.add_columns(np.full(t, penalty), 0.0, problem.curtailable_kw[lec])
        powers.append(curtail)

    balance_rhs = problem.net_demand_kw[lec] + (0.0 if sent_kw is None else np.asarray(sent_kw, dtype=float))
    balance = qp.add_rows(balance_rhs, balance_rhs)
    qp.add_coefficients(balance, grid_import, 1.0)
    qp.add_coefficients(balance, grid_export, -1.0)
    qp.add_coefficients(balance, charge, -1.0)
    qp.add_coefficients(balance, discharge, 1.0)
    if curtail is not None:
        qp.add_coefficients(balance, curtail, -1.0)

    # The DSO's limits bound what physically crosses the LEC's boundary: its members' net demand
    # plus charge minus discharge plus curtailment (= import - export - power sent to neighbours).
    # Exchanges with neighbours are bookkeeping over the same feeder and cannot relieve it.
    import_excess = export_excess = None
    soft = math.isfinite(problem.limit_penalty_eur_per_kwh)
    net = problem.net_demand_kw[lec]
    for limit, sign in ((import_limit, 1.0), (export_limit, -1.0)):
        if not np.any(np.isfinite(limit)):
            continue
        # sign * (charge - discharge + curtail) - excess <= limit - sign * net
        row = qp.add_rows(-np.inf, np.where(np.isfinite(limit), limit - sign * net, np.inf))
        qp.add_coefficients(row, charge, sign)
        qp.add_coefficients(row, discharge, -sign)
        if curtail is not None:
            qp.add_coefficients(row, curtail, sign)
        if soft:
            excess = qp.add_columns(np.full(t, dt * problem.limit_penalty_eur_per_kwh), 0.0, np.inf)
            qp.add_coefficients(row, excess, -1.0)
            powers.append(excess)
            if sign > 0:
                import_excess = excess
            else:
                export_excess = excess
    for cols in powers:
        qp.add_curvature(cols, 2.0 * problem.tie_break_eur_per_kwh2 * dt)

    # soc[k] - soc[k-1] - sqrt(eta) * dt * charge[k] + dt / sqrt(eta) * discharge[k] = 0
    soc_rhs = np.zeros(t)
    soc_rhs[0] = soc_start
    soc_rows = qp.add_rows(soc_rhs, soc_rhs)
    qp.add_coefficients(soc_rows, soc, 1.0)
    qp.add_coefficients(soc_rows[1:], soc[:-1], -1.0)
    qp.add_coefficients(soc_rows, charge, -leg * dt)
    qp.add_coefficients(soc_rows, discharge, dt / leg)
    return _LecColumns(grid_import, grid_export, charge, discharge, soc, balance, import_excess, export_excess, curtail)


def _add_exchange(qp: _QpBuilder, capacity_kw: float, n_steps: int, fee_cost) -> np.ndarray:
    """Columns of one exchange (kW, free sign, within the capacity); returns their indices.

    A linear fee on ``|exchange|`` goes on an extra column ``size >= |exchange|`` (two rows)
    rather than on separate send and receive columns: with those, the wheeling cost
    ``(send - receive)**2`` has a singular Hessian, which HiGHS' QP solver can take for
    non-convex (measured with highspy 1.15).
    """
    fee_cost = np.broadcast_to(np.asarray(fee_cost, dtype=float), (n_steps,))
    exchange = qp.add_columns(np.zeros(n_steps), -capacity_kw, np.full(n_steps, capacity_kw))
    if np.any(fee_cost > 0):
        size = qp.add_columns(fee_cost, 0.0, np.full(n_steps, capacity_kw))
        above_plus = qp.add_rows(np.zeros(n_steps), np.inf)  # size - exchange >= 0
        qp.add_coefficients(above_plus, size, 1.0)
        qp.add_coefficients(above_plus, exchange, -1.0)
        above_minus = qp.add_rows(np.zeros(n_steps), np.inf)  # size + exchange >= 0
        qp.add_coefficients(above_minus, size, 1.0)
        qp.add_coefficients(above_minus, exchange, 1.0)
    return exchange
