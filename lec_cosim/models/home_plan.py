"""A member's home energy management: the least-cost plan of its grid exchange and home battery (an LP).

Every member of a LEC in the "P2P inside the LEC" framework runs it over the remaining steps:
grid import and export at the given prices, a home battery, an import cap set by the LEC (import
above it pays a fee) and the fairness fee on all import. The plan's ``net_kw`` of the coming step
is the member's position in the LEC's P2P pool (:mod:`lec_cosim.models.lec_pool`). Separate
because it is the household's decision, run by the households' federate, not a market rule.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

try:  # scipy's own HiGHS build: the one linprog(method="highs") runs, so the same plans to the bit (_HomeLpSolver)
    from scipy.optimize._highspy import _core as _scipy_highs
except ImportError:  # pragma: no cover - a scipy that keeps it elsewhere: linprog itself
    _scipy_highs = None
# A private module: a scipy that keeps it but renames what _HomeLpSolver uses falls back to linprog too.
if _scipy_highs is not None and not all(hasattr(_scipy_highs, name) for name in (
        "HighsLp", "HighsModelStatus", "HighsOptions", "MatrixFormat", "_Highs", "kHighsInf")):
    _scipy_highs = None  # pragma: no cover

THROUGHPUT_PENALTY_EUR_PER_KWH = 1e-6
"""Cost per kWh charged or discharged in :func:`plan_home`: avoids needless cycling, not reported."""

_REL_TOL = 1e-9  # as in lec_cosim.models.auction


@dataclass(frozen=True, eq=False)
class HomePlan:
    """A member's optimal plan over the remaining steps (every array of length T, read-only).

    Attributes
    ----------
    import_kw, export_kw : numpy.ndarray
        Grid import and export (never both in one step), kW, >= 0.
    import_over_cap_kw : numpy.ndarray
        The part of ``import_kw`` above the import cap (pays the over-cap fee), kW.
    charge_kw, discharge_kw : numpy.ndarray
        Battery charge and discharge power on the home's side of the inverter, kW, >= 0.
    soc_kwh : numpy.ndarray
        State of charge at the end of every step, kWh.
    net_kw : numpy.ndarray
        ``import_kw - export_kw``: the member's position (positive: needs energy).
    cost_eur : float
        sum dt * (import price * import - export price * export + import fee * import
        + over-cap fee * import over cap), EUR; the throughput penalty is not included.
    """

    import_kw: np.ndarray
    export_kw: np.ndarray
    import_over_cap_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    net_kw: np.ndarray
    cost_eur: float


def _series(value, n: int, name: str, *, allow_inf: bool = False) -> np.ndarray:
    """A scalar or a 1-d array of length n as a float array of length n (finite unless allow_inf)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name} must be a scalar or an array of length {n} (the load's), got shape {arr.shape}")
    if np.isnan(arr).any() or (not allow_inf and not np.isfinite(arr).all()):
        raise ValueError(f"{name} must be finite")
    return arr


def _nonnegative(value: float, name: str, *, allow_inf: bool = False) -> float:
    number = float(value)
    if math.isnan(number) or number < 0 or (not allow_inf and math.isinf(number)):
        raise ValueError(f"{name} must be a {'' if allow_inf else 'finite '}number >= 0, got {value!r}")
    return number


def reachable_soc_final_kwh(soc_final_kwh: float, *, soc_kwh: float, battery_kw: float, battery_efficiency: float,
                            dt_h: float, steps: int) -> float:
    """The final state of charge a plan of ``steps`` steps can be held to: ``soc_final_kwh``, or the most the battery
    can reach from ``soc_kwh`` at full power if that is less (a battery an agent left emptier than its own plan
    would have)."""
    return min(float(soc_final_kwh), _most_reachable_kwh(soc_kwh, battery_kw, battery_efficiency, dt_h, steps))


def _most_reachable_kwh(soc_kwh: float, battery_kw: float, battery_efficiency: float, dt_h: float, steps: int):
    """The state of charge ``steps`` steps at full charging power lead to from ``soc_kwh`` (no capacity bound)."""
    return soc_kwh + math.sqrt(battery_efficiency) * battery_kw * dt_h * steps


def _check_battery(battery_kwh, battery_kw, battery_efficiency, soc_kwh, soc_final_kwh, dt_h, n):
    """Validate the battery and the state-of-charge targets; returns them as floats."""
    capacity = _nonnegative(battery_kwh, "battery_kwh")
    power = _nonnegative(battery_kw, "battery_kw")
    eta = float(battery_efficiency)
    if not 0.0 < eta <= 1.0:
        raise ValueError(f"battery_efficiency must be in (0, 1], got {battery_efficiency!r}")
    soc = _nonnegative(soc_kwh, "soc_kwh")
    final = soc if soc_final_kwh is None else _nonnegative(soc_final_kwh, "soc_final_kwh")
    tol = _REL_TOL * max(1.0, capacity)
    if soc > capacity + tol or final > capacity + tol:
        raise ValueError(f"soc_kwh ({soc}) and soc_final_kwh ({final}) must not exceed battery_kwh ({capacity})")
    reachable = _most_reachable_kwh(soc, power, eta, dt_h, n)
    if final > reachable + tol:
        raise ValueError(
            f"soc_final_kwh ({final}) cannot be reached from soc_kwh ({soc}) in {n} steps of {dt_h} h "
            f"at {power} kW (at most {reachable} kWh)"
        )
    return capacity, power, eta, min(soc, capacity), min(final, capacity)


def _home_lp_matrix(n: int, dt_h: float, eta: float):
    """The home LP's equality constraints over ``n`` steps as a CSC matrix (rows: balance, then storage; columns:
    in, over, exp, ch, dis, soc), built exactly as :func:`_home_lp_linprog` hands them to ``linprog``."""
    eye = sp.identity(n, format="csr")
    zero = sp.csr_matrix((n, n))
    shift = sp.eye(n, k=-1, format="csr")  # soc_{t-1} of row t
    root = math.sqrt(eta)
    # balance: in + over - exp - ch + dis = load - pv
    balance = sp.hstack([eye, eye, -eye, -eye, eye, zero])
    # storage: soc_t - soc_{t-1} - dt (sqrt(eta) ch_t - dis_t / sqrt(eta)) = 0 (soc_0 given)
    storage = sp.hstack([zero, zero, zero, -dt_h * root * eye, dt_h / root * eye, eye - shift])
    return sp.vstack([balance, storage], format="csr")


def _home_lp_data(net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, soc, final):
    """The home LP's costs, column bounds (inf: none) and right-hand sides."""
    n = len(net_load)
    penalty = np.full(n, dt_h * THROUGHPUT_PENALTY_EUR_PER_KWH)
    cost = np.concatenate([c_in, c_over, c_exp, penalty, penalty, np.zeros(n)])
    lower = np.zeros(6 * n)
    lower[-1] = final  # soc_T >= soc_final_kwh
    upper = np.concatenate([cap, np.full(2 * n, np.inf), np.full(2 * n, power), np.full(n, capacity)])
    rhs = np.concatenate([net_load, np.zeros(n)])
    rhs[n] = soc  # the first storage row: soc_1 - dt (...) = soc_0
    return cost, lower, upper, rhs


def _home_lp_linprog(net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, eta, soc, final):
    """The home LP through ``scipy.optimize.linprog(method="highs")``: the reference :class:`_HomeLpSolver` gives
    the same plans as, and the fallback where scipy's own HiGHS module is not where it is expected. Returns the
    LP's columns."""
    cost, lower, upper, rhs = _home_lp_data(net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, soc, final)
    bounds = [(lo, hi if math.isfinite(hi) else None) for lo, hi in zip(lower, upper)]
    res = linprog(cost, A_eq=_home_lp_matrix(len(net_load), dt_h, eta), b_eq=rhs, bounds=bounds, method="highs")
    if res.status != 0:  # pragma: no cover - the LP is feasible and bounded after validation
        raise RuntimeError(f"home LP not solved: {res.message}")
    return res.x


class _HomeLpSolver:
    """The home LP on scipy's own HiGHS build with ``linprog``'s options and model, without ``linprog``'s Python
    around it (checking and converting its inputs, building the sparse matrices, setting options one by one: four
    fifths of a 24-step home LP's time).

    The constraint matrix depends only on the window length, the step and the efficiency, so it is built once per
    such key; each solve passes the model with the hour's costs, bounds and right-hand sides to one HiGHS instance.
    Passing the model anew drops the last basis: HiGHS presolves and solves from scratch, as ``linprog`` does, so
    the plan is ``linprog``'s to the bit (tests/test_home_plan_solver.py). Keeping the basis (a warm start) halves
    the solve again but lands on other vertices of degenerate optima and differs in the last bits elsewhere.
    Not thread-safe: one per thread (:func:`_home_lp`).
    """

    _MAX_MODELS = 256  # window lengths x steps x efficiencies in one process: a handful in a run

    def __init__(self):
        self._highs = _scipy_highs._Highs()
        options = _scipy_highs.HighsOptions()
        # linprog(method="highs")'s options (scipy.optimize._linprog_highs), the others at HiGHS's defaults
        options.presolve = "on"
        options.highs_debug_level = 0
        options.log_to_console = False
        options.output_flag = False
        options.simplex_strategy = 1  # dual simplex
        self._highs.passOptions(options)
        self._models = {}

    def _model(self, n: int, dt_h: float, eta: float):
        key = (n, dt_h, eta)
        lp = self._models.get(key)
        if lp is None:
            if len(self._models) >= self._MAX_MODELS:
                self._models.clear()
            matrix = sp.csc_array(_home_lp_matrix(n, dt_h, eta))  # linprog's column-wise form of it
            lp = _scipy_highs.HighsLp()
            lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
            lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = matrix.shape[1], matrix.shape[0]
            lp.a_matrix_.format_ = _scipy_highs.MatrixFormat.kColwise
            lp.a_matrix_.start_ = matrix.indptr
            lp.a_matrix_.index_ = matrix.indices
            lp.a_matrix_.value_ = matrix.data
            self._models[key] = lp
        return lp

    def solve(self, net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, eta, soc, final) -> np.ndarray:
        """The LP's columns at its optimum."""
        lp = self._model(len(net_load), dt_h, eta)
        cost, lower, upper, rhs = _home_lp_data(net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, soc,
                                                final)
        lp.col_cost_ = cost
        lp.col_lower_ = lower
        lp.col_upper_ = np.where(np.isinf(upper), _scipy_highs.kHighsInf, upper)  # as linprog's _replace_inf
        lp.row_lower_ = rhs
        lp.row_upper_ = rhs
        self._highs.passModel(lp)
        self._highs.run()
        status = self._highs.getModelStatus()
        if status != _scipy_highs.HighsModelStatus.kOptimal:  # pragma: no cover - feasible and bounded
            raise RuntimeError(f"home LP not solved: {self._highs.modelStatusToString(status)}")
        return np.array(self._highs.getSolution().col_value)


_SOLVERS = threading.local()  # one _HomeLpSolver per thread: in-process federations run federates as threads


def _home_lp(net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, eta, soc, final):
    """Solve the home LP; returns charge and discharge (kW). Columns: in, over, exp, ch, dis, soc."""
    args = (net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, eta, soc, final)
    if _scipy_highs is None:  # pragma: no cover - a scipy without its HiGHS module where 1.15-1.17 have it
        x = _home_lp_linprog(*args)
    else:
        solver = getattr(_SOLVERS, "solver", None)
        if solver is None:
            solver = _SOLVERS.solver = _HomeLpSolver()
        x = solver.solve(*args)
    n = len(net_load)
    return np.clip(x[3 * n : 4 * n], 0.0, power) + 0.0, np.clip(x[4 * n : 5 * n], 0.0, power) + 0.0  # no -0.0


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=float)
    arr.setflags(write=False)
    return arr


def plan_home(
    load_kw,
    pv_kw,
    *,
    dt_h: float,
    import_price_eur_per_kwh,
    export_price_eur_per_kwh,
    battery_kwh: float = 0.0,
    battery_kw: float = 0.0,
    battery_efficiency: float = 1.0,
    soc_kwh: float = 0.0,
    soc_final_kwh: float | None = None,
    import_cap_kw=math.inf,
    over_cap_fee_eur_per_kwh=0.0,
    import_fee_eur_per_kwh=0.0,
) -> HomePlan:
    """Plan a home's grid exchange and battery over the remaining steps at least cost (an LP).

    ::

        min  sum_t dt * ((p_imp + f_imp) * (in_t + over_t) + f_over * over_t - p_exp * exp_t
                         + 1e-6 * (ch_t + dis_t))
        s.t. load_t - pv_t + ch_t - dis_t = in_t + over_t - exp_t
             soc_t = soc_{t-1} + dt * (sqrt(eta) * ch_t - dis_t / sqrt(eta)),  soc_0 = soc_kwh
             0 <= soc_t <= battery_kwh,  soc_T >= soc_final_kwh
             0 <= in_t <= import_cap,  over_t, exp_t >= 0,  0 <= ch_t, dis_t <= battery_kw

    Import above the cap (``over_t``) is allowed at the extra fee, so the LP is always feasible.
    Solved as ``scipy.optimize.linprog(method="highs")`` solves it, on its HiGHS, without its Python
    around it (:class:`_HomeLpSolver`: the same plans to the bit, a fifth of the time). The returned
    plan is rebuilt from the LP's battery powers so that the energy balance and the SoC recursion hold to rounding:
    import and export are the positive and negative parts of the net load, the over-cap part is
    what import exceeds the cap by (the cheapest split).

    Parameters
    ----------
    load_kw, pv_kw : array_like, shape (T,)
        Household load and PV output of every remaining step, kW, >= 0.
    dt_h : float
        Step length, h, > 0.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float or array_like, shape (T,)
        Grid prices. The export price must not exceed the import price in any step (otherwise
        importing to export would be an unbounded arbitrage).
    battery_kwh, battery_kw : float
        Usable energy and power rating of the home battery, >= 0 (0: no battery).
    battery_efficiency : float
        Round-trip efficiency in (0, 1]; sqrt of it on each leg.
    soc_kwh : float
        State of charge now, in [0, battery_kwh].
    soc_final_kwh : float, optional
        Least state of charge at the end of the horizon; default ``soc_kwh`` (the plan may not
        empty the battery at the horizon's end for free).
    import_cap_kw : float or array_like, shape (T,)
        Import cap set by the LEC EMS, kW, >= 0; ``inf`` (default): none.
    over_cap_fee_eur_per_kwh : float or array_like, shape (T,)
        Extra price of import above the cap, >= 0.
    import_fee_eur_per_kwh : float or array_like, shape (T,)
        Fee on all grid import (the fairness fee), >= 0.

    Returns
    -------
    HomePlan

    Raises
    ------
    ValueError
        Negative sizes, prices or fees, efficiency outside (0, 1], arrays of different lengths,
        an empty horizon, an export price above the import price, or an unreachable final SoC.
    """
    dt_h = float(dt_h)
    if not (math.isfinite(dt_h) and dt_h > 0):
        raise ValueError(f"dt_h must be a finite number > 0, got {dt_h!r}")
    load = np.asarray(load_kw, dtype=float)
    if load.ndim != 1 or len(load) == 0:
        raise ValueError(f"load_kw must be a non-empty 1-d array, got shape {load.shape}")
    n = len(load)
    load = _series(load, n, "load_kw")
    pv = _series(pv_kw, n, "pv_kw")
    p_imp = _series(import_price_eur_per_kwh, n, "import_price_eur_per_kwh")
    p_exp = _series(export_price_eur_per_kwh, n, "export_price_eur_per_kwh")
    cap = _series(import_cap_kw, n, "import_cap_kw", allow_inf=True)
    f_over = _series(over_cap_fee_eur_per_kwh, n, "over_cap_fee_eur_per_kwh")
    f_imp = _series(import_fee_eur_per_kwh, n, "import_fee_eur_per_kwh")
    for name, arr in (("load_kw", load), ("pv_kw", pv), ("import_cap_kw", cap),
                      ("over_cap_fee_eur_per_kwh", f_over), ("import_fee_eur_per_kwh", f_imp)):
        if (arr < 0).any():
            raise ValueError(f"{name} must be >= 0")
    if (p_exp > p_imp).any():
        raise ValueError("export_price_eur_per_kwh must not exceed import_price_eur_per_kwh in any step")
    capacity, power, eta, soc, final = _check_battery(
        battery_kwh, battery_kw, battery_efficiency, soc_kwh, soc_final_kwh, dt_h, n
    )

    net_load = load - pv
    if capacity > 0 and power > 0:
        charge, discharge = _home_lp(
            net_load, dt_h, dt_h * (p_imp + f_imp), dt_h * (p_imp + f_imp + f_over), -dt_h * p_exp,
            cap, capacity, power, eta, soc, final,
        )
    else:
        charge, discharge = np.zeros(n), np.zeros(n)
    root = math.sqrt(eta)
    soc_path = np.clip(soc + dt_h * np.cumsum(root * charge - discharge / root), 0.0, capacity)
    net = net_load + charge - discharge
    imp = np.maximum(net, 0.0)
    exp = np.maximum(-net, 0.0)
    over = np.maximum(imp - cap, 0.0)
    cost = float(np.sum(dt_h * ((p_imp + f_imp) * imp + f_over * over - p_exp * exp)))
    return HomePlan(
        import_kw=_frozen(imp),
        export_kw=_frozen(exp),
        import_over_cap_kw=_frozen(over),
        charge_kw=_frozen(charge),
        discharge_kw=_frozen(discharge),
        soc_kwh=_frozen(soc_path),
        net_kw=_frozen(imp - exp),
        cost_eur=cost,
    )
