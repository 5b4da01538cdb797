"""A convex QP solved again and again with new linear costs: DAQP's dual active-set solver, warm-started from the
working set of the solve before, with HiGHS as the fallback.

Why: an ADMM agent solves its local QP once per iteration, and between iterations only the linear costs of its
exchange columns change (and the Hessian while rho adapts). HiGHS' active-set QP solver starts every solve from
a phase-one vertex (HiGHS 1.16 ignores a starting basis for QPs): about 340 iterations, 2-5 ms, each time. DAQP
(Arnström, Bemporad and Axehill, "A dual active-set solver for embedded quadratic programming using recursive
LDL' updates", IEEE TAC 2022) keeps its working set in its workspace, so a solve after a small change of the costs
starts at the last optimum's working set and usually ends after one or a few iterations (measured on the year
scenario's local QPs, 2026-12-07: 0.05 ms warm, 1-3 ms cold, against 2-5 ms for HiGHS every time; the optima agree
to the objective's last digits, 1e-15 relative, and to 5e-5 kW in the flat directions the tie-break alone fixes).

DAQP wants a positive definite Hessian. Our problems have columns without curvature (a battery's state of charge,
a fee's size column): where each such column is fixed by equality rows of its own (the state-of-charge rows: one
row per state, triangular in the states), :func:`_reduction` eliminates them (``x_Z = g + G x_P``) and their
bounds become general rows. A problem that cannot be reduced so, or that DAQP does not solve to optimality
(exit flag other than 1), is solved by HiGHS as before (:func:`lec_cosim.models.exchange_qp._run`, which raises
the errors callers expect, e.g. for an infeasible problem).

The objective is scaled by the caller's scale (milli-EUR) for both solvers; row duals come back in HiGHS's
convention and units (``c + Qx - A'y`` is the columns' reduced cost), divided by the scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

try:
    import daqp
except ImportError:  # pragma: no cover - declared in pyproject; HiGHS alone still solves everything
    daqp = None

DAQP_INFINITY = 1e30
"""DAQP reads bounds at or beyond this magnitude as absent."""
_EQUALITY = 1 | 4
"""DAQP's sense of an equality row: active and immutable."""
PRIMAL_TOLERANCE = 1e-9
"""As HiGHS's feasibility tolerance in :mod:`lec_cosim.models.exchange_qp`."""
_ITERATION_LIMIT = 20_000
_CONDITION_LIMIT = 1e10
"""The eliminated columns' square block must be this well conditioned, else HiGHS solves the problem."""


@dataclass(frozen=True)
class QpArrays:
    """``minimise c'x + 1/2 x'Qx`` s.t. ``row_lower <= A x <= row_upper``, ``col_lower <= x <= col_upper``
    (objective unscaled; ``hessian``: Q's lower triangle, column-wise)."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    a: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    hessian: sp.csc_matrix


@dataclass(frozen=True)
class _Reduction:
    """Columns ``Z`` without curvature, fixed by the equality rows ``R``: ``x_Z = g + G x_P``."""

    keep: np.ndarray  # P
    eliminated: np.ndarray  # Z
    fixing_rows: np.ndarray  # R
    other_rows: np.ndarray
    g: np.ndarray
    big_g: np.ndarray
    block: np.ndarray  # A[R, Z]
    a_other_z: np.ndarray  # A[other, Z]
    a_reduced: np.ndarray  # rows: the other rows, then the eliminated columns' bounds
    lower: np.ndarray  # simple bounds of P, then the reduced rows
    upper: np.ndarray
    sense: np.ndarray


def _diagonal(hessian: sp.spmatrix) -> bool:
    q = hessian.tocoo()
    return not np.any((q.row != q.col) & (q.data != 0))


def _reduction(arrays: QpArrays, diagonal: np.ndarray) -> _Reduction | None:
    """The elimination of the columns without curvature, or None where it does not apply (see module docstring)."""
    if not _diagonal(arrays.hessian):  # only diagonal Hessians are reduced (all of ours are)
        return None
    flat = np.flatnonzero(diagonal == 0)
    keep = np.flatnonzero(diagonal != 0)
    a = arrays.a.toarray()
    equality = arrays.row_lower == arrays.row_upper
    touches = np.abs(a[:, flat]).sum(axis=1) > 0 if len(flat) else np.zeros(len(a), dtype=bool)
    fixing = np.flatnonzero(equality & touches)
    if len(fixing) != len(flat) or not len(keep):
        return None
    other = np.flatnonzero(~np.isin(np.arange(len(a)), fixing))
    block = a[np.ix_(fixing, flat)]
    if len(flat):
        if np.linalg.cond(block) > _CONDITION_LIMIT:
            return None
        g = np.linalg.solve(block, arrays.row_lower[fixing])
        big_g = -np.linalg.solve(block, a[np.ix_(fixing, keep)])
    else:
        g, big_g = np.zeros(0), np.zeros((0, len(keep)))
    a_other_z = a[np.ix_(other, flat)]
    shift = a_other_z @ g
    a_reduced = np.vstack([a[np.ix_(other, keep)] + a_other_z @ big_g, big_g])
    lower = np.concatenate([arrays.col_lower[keep], arrays.row_lower[other] - shift, arrays.col_lower[flat] - g])
    upper = np.concatenate([arrays.col_upper[keep], arrays.row_upper[other] - shift, arrays.col_upper[flat] - g])
    lower, upper = np.maximum(lower, -DAQP_INFINITY), np.minimum(upper, DAQP_INFINITY)
    sense = np.zeros(len(lower), dtype=np.int32)
    sense[len(keep):][lower[len(keep):] == upper[len(keep):]] = _EQUALITY
    return _Reduction(keep, flat, fixing, other, g, big_g, block, a_other_z, a_reduced, lower, upper, sense)


class QpModel:
    """One QP, solved by DAQP (warm) where it applies and by HiGHS otherwise (module docstring).

    Parameters
    ----------
    arrays : QpArrays
    scale : float
        The objective's scale for the solvers (costs and Hessian times it).
    highs : callable
        Builds the HiGHS model of ``arrays`` (objective scaled) when HiGHS must solve.
    run_highs : callable
        ``run_highs(highs, what) -> (values, row_duals)``, row duals divided by ``scale``.
    """

    def __init__(self, arrays: QpArrays, scale: float, highs: Callable, run_highs: Callable):
        self.arrays = arrays
        self.scale = float(scale)
        self.cost = np.array(arrays.cost, dtype=float)
        self.hessian = arrays.hessian.tocsc()
        self._make_highs, self._run_highs = highs, run_highs
        self._highs = None
        self._daqp = None
        self._reduced: _Reduction | None = None
        self._reduced_for = None  # the Hessian's diagonal the reduction was made for
        self.solved_by = None
        """``"daqp"`` or ``"highs"``: who solved the last problem."""
        self.iterations = None
        """DAQP's iterations in the last problem it solved (None: HiGHS solved it)."""

    def current(self) -> QpArrays:
        """The problem as it stands: the costs and Hessian set since it was built."""
        return dataclasses.replace(self.arrays, cost=self.cost, hessian=self.hessian)

    def _same_flat_columns(self, diagonal: np.ndarray) -> bool:
        """Whether the Hessian's columns without curvature are those the reduction was made for."""
        return self._reduced_for is not None and np.array_equal(diagonal == 0, self._reduced_for == 0)

    # -- data -------------------------------------------------------------------------------
    def set_costs(self, index: np.ndarray, values: np.ndarray) -> None:
        """Linear costs (unscaled) of the columns ``index``."""
        self.cost[index] = values
        if self._highs is not None:
            self._highs.changeColsCost(len(index), np.asarray(index, dtype=np.int32), self.scale * np.asarray(values))

    def set_hessian(self, hessian: sp.csc_matrix) -> None:
        """A new Hessian (lower triangle, unscaled)."""
        self.hessian = hessian.tocsc()
        self.hessian.sort_indices()
        if self._highs is not None:
            import highspy

            q = self.hessian
            self._highs.passHessian(len(self.cost), q.nnz, highspy.HessianFormat.kTriangular.value,
                                    q.indptr.astype(np.int32), q.indices.astype(np.int32), self.scale * q.data)
        if self._daqp is not None:
            diagonal = self.hessian.diagonal()
            if _diagonal(self.hessian) and self._same_flat_columns(diagonal):
                if self._daqp.update(H=np.diag(self.scale * diagonal[self._reduced.keep])) < 0:
                    self._daqp = None  # DAQP refused it (e.g. not positive definite): reduced anew, else HiGHS
            else:  # another pattern: reduced anew at the next solve (off-diagonal terms: HiGHS)
                self._daqp = self._reduced_for = None

    # -- solving ----------------------------------------------------------------------------
    def solve(self, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Column values and row duals (HiGHS's convention, unscaled) of the optimum."""
        solved = self._solve_daqp()
        if solved is not None:
            self.solved_by = "daqp"
            return solved
        self.solved_by, self.iterations = "highs", None
        if self._highs is None:
            self._highs = self._make_highs(self.current())
        return self._run_highs(self._highs, what)

    def _solve_daqp(self):
        if daqp is None:
            return None
        r = self._reduced
        if self._daqp is None:
            diagonal = self.hessian.diagonal()
            if not self._same_flat_columns(diagonal):
                self._reduced = r = _reduction(self.current(), diagonal)
                self._reduced_for = diagonal
            if r is None:
                return None
            model = daqp.Model()
            status, _ = model.setup(np.diag(self.scale * diagonal[r.keep]), self._reduced_cost(), r.a_reduced,
                                    r.upper, r.lower, r.sense)
            if status < 0:  # e.g. dependent equality rows: HiGHS
                return None
            settings = model.settings
            settings.update(primal_tol=PRIMAL_TOLERANCE, iter_limit=_ITERATION_LIMIT)
            model.settings = settings
            self._daqp = model
        elif self._daqp.update(f=self._reduced_cost()) < 0:  # pragma: no cover - costs alone never fail
            self._daqp = None
            return None
        try:
            x_keep, _, flag, info = self._daqp.solve()
        except RuntimeError:  # pragma: no cover - a workspace DAQP could not set up: HiGHS
            flag = 0
        if flag != 1 or not np.all(np.isfinite(x_keep)):
            self._daqp = None  # its working set may be anything now: the next solve starts it cold
            return None
        self.iterations = int(info["iterations"])
        x_keep = np.asarray(x_keep, dtype=float)
        x = np.empty(len(self.cost))
        x[r.keep] = x_keep
        x[r.eliminated] = r.g + r.big_g @ x_keep
        return x, self._row_duals(r, x, np.asarray(info["lam"], dtype=float))

    def _reduced_cost(self) -> np.ndarray:
        r = self._reduced
        return self.scale * (self.cost[r.keep] + r.big_g.T @ self.cost[r.eliminated])

    def _row_duals(self, r: _Reduction, x: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Every row's dual of the full problem from DAQP's multipliers of the reduced one.

        DAQP's stationarity is ``Hx + f + A'lam = 0``: HiGHS's row dual is ``-lam``. The rows kept have the same
        multipliers in both problems; those of the eliminated columns' fixing rows follow from the eliminated
        columns' stationarity, ``c_Z + A[other, Z]' lam_other + A[R, Z]' lam_R + mu_Z = 0`` (``mu_Z``: the
        multipliers of their bounds, rows of the reduced problem).
        """
        n_keep, n_other = len(r.keep), len(r.other_rows)
        lam_other = lam[n_keep:n_keep + n_other]
        mu = lam[n_keep + n_other:]
        duals = np.empty(len(self.arrays.row_lower))
        duals[r.other_rows] = lam_other
        if len(r.eliminated):
            rhs = self.scale * self.cost[r.eliminated] + r.a_other_z.T @ lam_other + mu
            duals[r.fixing_rows] = -np.linalg.solve(r.block.T, rhs)
        return -duals / self.scale
