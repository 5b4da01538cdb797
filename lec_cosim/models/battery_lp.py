"""The community battery's day-ahead LP: the Pyomo model, built once and re-solved, and its schedule.

Separate from the planner (:mod:`lec_cosim.models.day_ahead_planner`), which forecasts each day of
the horizon and takes the market's prices: the LP here knows nothing of scenarios, forecasts or
days, only the per-step arrays it is given.

For each step t of length dt (h), with load L_t and PV G_t forecast (MW) and prices c_t, x_t
(currency/MWh)::

    import_t - export_t = L_t - G_t + charge_t - discharge_t
    soc_t = soc_{t-1} + (sqrt(eta) * charge_t - discharge_t / sqrt(eta)) * dt
    soc_0 = soc_T = soc_initial
    0 <= charge_t, discharge_t <= P;  S_min <= soc_t <= S_max;  0 <= import_t <= I_max;  export_t >= 0

    min_cost:   min  sum (c_t * import_t - x_t * export_t) * dt
    min_import: min  sum import_t * dt

S_min and S_max are the SoC window (default 0 and the capacity E); I_max is a limit on the
LEC's import (default none; the scenario's ``grid.import_limit_mw``, at the LV busbar). Only
I_max can make the LP infeasible: the battery cannot shave the net load enough on some day
(:class:`lec_cosim.models.day_ahead_planner.ImportLimitInfeasible`).

Import and export are separate non-negative variables. With one free-sign grid variable, as in
Rana et al. (2022, eq. 1), sum(import) = sum(L - G) + sum(charge - discharge) is the same for
every schedule that returns the battery to its start, so "maximise self-consumption" would not
choose anything. If an export price exceeds the import price of the same step, a binary
direction per step makes the problem a MILP (otherwise buying to sell at once is unbounded).
Both objectives carry a tiny ``throughput_penalty`` per MWh moved through the
battery so that among equally good schedules the one without needless cycling is returned.

Model reuse: :class:`BatteryLP` holds the model of one horizon length, objective, LP/MILP kind and
battery, with the day's data (net load, prices, initial and final SoC, big-M) as mutable Pyomo
parameters; :class:`BatteryScheduler` keeps these models, and
:class:`lec_cosim.models.day_ahead_planner.DayAheadPlanner` plans every day through one, so the
model is built once per run. :func:`schedule_battery` builds a fresh one
for every call. Both give the same schedules (``tests/test_ems_reuse.py``). Measured per solve of a
96-step ``min_cost`` LP (2-core machine shared with other work, so only indicative): GLPK
~21 ms rebuilt, ~18 ms reused (it writes an LP file and starts ``glpsol`` every time: the build
saved is a few ms); HiGHS ~21 ms rebuilt, ~6 ms reused (persistent appsi HiGHS: only the changed
bounds and costs are passed on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from lec_cosim.models.lp_solvers import _persistent_highs, _solver

OBJECTIVES = ("min_cost", "min_import")
SOLVERS = ("glpk", "highs")


class InfeasibleSchedule(RuntimeError):
    """The LP has no feasible schedule (e.g. an export the grid cannot take)."""



@dataclass(frozen=True)
class BatterySchedule:
    """Result of one optimisation.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per step: ``charge_mw``, ``discharge_mw``, ``soc_mwh`` (end of step),
        ``import_mw``, ``export_mw``.
    objective : float
        Optimal objective without the throughput tie-breaker (currency or MWh).
    """

    table: pd.DataFrame
    objective: float

    @property
    def setpoint_mw(self) -> np.ndarray:
        """Battery set-points in load convention (positive charges)."""
        return (self.table["charge_mw"] - self.table["discharge_mw"]).to_numpy()



def _inputs(load_mw, pv_mw, price, export_price, objective):
    """Checked arrays of the per-step inputs."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    load = np.asarray(load_mw, dtype=float)
    pv = np.asarray(pv_mw, dtype=float)
    buy = np.asarray(price, dtype=float)
    sell = np.asarray(export_price, dtype=float)
    n = len(load)
    if not (len(pv) == len(buy) == len(sell) == n):
        raise ValueError("load, pv, price and export_price must have the same length")
    if n == 0:
        raise ValueError("empty horizon: no steps to schedule")
    return load, pv, buy, sell


def _needs_direction(objective: str, buy: np.ndarray, sell: np.ndarray) -> bool:
    """Whether the problem needs the binary import/export direction (a MILP): an export price above
    the import price of some step under ``min_cost``."""
    return objective == "min_cost" and bool(np.any(sell > buy))


@dataclass(frozen=True)
class _Battery:
    """The constants of a battery model (the cache key of :class:`BatteryScheduler`, with n and kind)."""

    step_h: float
    capacity_mwh: float
    power_mw: float
    efficiency: float
    throughput_penalty: float
    soc_min_mwh: float = 0.0
    soc_max_mwh: float | None = None  # None: the capacity
    import_limit_mw: float | None = None  # None: unlimited


def _battery(step_h, capacity_mwh, power_mw, efficiency, throughput_penalty, soc_min_mwh, soc_max_mwh,
             import_limit_mw) -> _Battery:
    return _Battery(float(step_h), float(capacity_mwh), float(power_mw), float(efficiency), float(throughput_penalty),
                    float(soc_min_mwh), float(capacity_mwh if soc_max_mwh is None else soc_max_mwh),
                    None if import_limit_mw is None else float(import_limit_mw))


class BatteryLP:
    """The battery LP (or MILP) of one horizon length, objective and battery, built once, re-solved.

    What changes from day to day - net load, prices, initial and final SoC (and the big-M of the
    MILP) - are mutable Pyomo ``Param``; the battery's ratings, the step length and the
    tie-breaker are numbers of the model, as in a freshly built one. A new day then only rewrites
    parameter values and Pyomo does not rebuild anything. With GLPK (a subprocess) each solve
    still writes an LP file; with HiGHS the model stays loaded in one persistent
    ``pyomo.contrib.appsi`` HiGHS instance, which only receives the changed row bounds and
    objective coefficients. Before a HiGHS re-solve the previous basis is discarded
    (``clearSolver``): the solve then follows the path of a freshly built model and returns the
    same schedule, also where the optimum is not unique (a warm start, barely faster, returns
    another of the equally good schedules).

    Parameters
    ----------
    n_steps : int
    step_h, capacity_mwh, power_mw, efficiency, throughput_penalty : float
        As :func:`schedule_battery`.
    soc_min_mwh, soc_max_mwh, import_limit_mw : float, optional
        As :func:`schedule_battery`.
    objective : {"min_cost", "min_import"}
    solver : {"glpk", "highs"}
    direction : bool
        Include the binary import/export direction per step (the MILP of the module docstring).
    """

    def __init__(self, n_steps: int, *, step_h: float, capacity_mwh: float, power_mw: float, efficiency: float,
                 throughput_penalty: float = 1e-6, objective: str = "min_cost", solver: str = "glpk",
                 direction: bool = False, soc_min_mwh: float = 0.0, soc_max_mwh: float | None = None,
                 import_limit_mw: float | None = None):
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose glpk or highs")
        if n_steps < 1:
            raise ValueError("empty horizon: no steps to schedule")
        self.n_steps, self.objective, self.solver, self.direction = int(n_steps), objective, solver, bool(direction)
        self.battery = _battery(step_h, capacity_mwh, power_mw, efficiency, throughput_penalty, soc_min_mwh,
                                soc_max_mwh, import_limit_mw)
        self.model = self._build()
        self._opt = None
        self._cold_start = True  # HiGHS: discard the previous basis before a re-solve

    # --- model ---------------------------------------------------------------------------------
    def _build(self) -> pyo.ConcreteModel:
        n, b = self.n_steps, self.battery
        step_h, power_mw = b.step_h, b.power_mw
        eta = math.sqrt(b.efficiency)
        m = pyo.ConcreteModel("lec_ems")
        m.T = pyo.RangeSet(0, n - 1)
        data = dict(mutable=True, initialize=0.0, within=pyo.Reals)
        m.net_load = pyo.Param(m.T, **data)  # L_t - G_t
        m.soc_initial = pyo.Param(**data)
        m.soc_final = pyo.Param(**data)

        m.charge = pyo.Var(m.T, bounds=(0, power_mw))
        m.discharge = pyo.Var(m.T, bounds=(0, power_mw))
        m.grid_import = pyo.Var(m.T, bounds=(0, b.import_limit_mw))
        m.grid_export = pyo.Var(m.T, within=pyo.NonNegativeReals)
        m.soc = pyo.Var(m.T, bounds=(b.soc_min_mwh, b.soc_max_mwh))

        m.balance = pyo.Constraint(
            m.T, rule=lambda m, t: m.grid_import[t] - m.grid_export[t]
            == m.net_load[t] + m.charge[t] - m.discharge[t]
        )

        def soc_rule(m, t):
            previous = m.soc_initial if t == 0 else m.soc[t - 1]
            return m.soc[t] == previous + (eta * m.charge[t] - m.discharge[t] / eta) * step_h

        m.soc_update = pyo.Constraint(m.T, rule=soc_rule)
        m.soc_end = pyo.Constraint(expr=m.soc[n - 1] == m.soc_final)

        if self.direction:
            # Where exports earn more than imports cost, buying to sell at once would be unbounded;
            # a binary direction per step (a MILP) forbids importing and exporting together.
            m.big_m = pyo.Param(**data)
            m.importing = pyo.Var(m.T, within=pyo.Binary)
            m.import_only = pyo.Constraint(m.T, rule=lambda m, t: m.grid_import[t] <= m.big_m * m.importing[t])
            m.export_only = pyo.Constraint(m.T, rule=lambda m, t: m.grid_export[t] <= m.big_m * (1 - m.importing[t]))

        if self.objective == "min_cost":
            m.buy = pyo.Param(m.T, **data)
            m.sell = pyo.Param(m.T, **data)
            core = sum((m.buy[t] * m.grid_import[t] - m.sell[t] * m.grid_export[t]) * step_h for t in m.T)
        else:
            core = sum(m.grid_import[t] * step_h for t in m.T)
        tie_break = b.throughput_penalty * sum((m.charge[t] + m.discharge[t]) * step_h for t in m.T)
        m.core = pyo.Expression(expr=core)
        m.obj = pyo.Objective(expr=core + tie_break, sense=pyo.minimize)
        return m

    def _set(self, load, pv, buy, sell, soc_initial_mwh, soc_final_mwh) -> None:
        m = self.model
        net = load - pv
        m.net_load.store_values(dict(enumerate(net.tolist())), check=False)
        m.soc_initial.set_value(float(soc_initial_mwh))
        m.soc_final.set_value(float(soc_final_mwh))
        if self.objective == "min_cost":
            m.buy.store_values(dict(enumerate(buy.tolist())), check=False)
            m.sell.store_values(dict(enumerate(sell.tolist())), check=False)
        if self.direction:
            m.big_m.set_value(float(np.max(np.abs(net))) + self.battery.power_mw)

    # --- solve ---------------------------------------------------------------------------------
    def _solve(self) -> None:
        m = self.model
        if self.solver == "glpk":
            if self._opt is None:
                self._opt = _solver("glpk")
            result = self._opt.solve(m, load_solutions=False)
            condition = result.solver.termination_condition
            if condition != pyo.TerminationCondition.optimal:
                smap_id = getattr(result, "_smap_id", None)
                if smap_id is not None and smap_id in m.solutions.symbol_map:
                    m.solutions.delete_symbol_map(smap_id)  # the model lives on: do not keep it
                raise InfeasibleSchedule(f"LEC_EMS LP not solved to optimality ({condition})")
            m.solutions.load_from(result)
            return
        from pyomo.contrib.appsi.base import TerminationCondition, legacy_termination_condition_map

        opt = self._opt
        if opt is None:
            opt = self._opt = _persistent_highs()
        elif self._cold_start:
            opt._solver_model.clearSolver()  # forget the previous basis (class docstring)
        result = opt.solve(m)
        condition = result.termination_condition
        if condition != TerminationCondition.optimal:
            raise InfeasibleSchedule(
                f"LEC_EMS LP not solved to optimality ({legacy_termination_condition_map.get(condition, condition)})")
        result.solution_loader.load_vars()

    def solve(self, load_mw, pv_mw, price, export_price, *, soc_initial_mwh: float,
              soc_final_mwh: float | None = None) -> BatterySchedule:
        """Set the day's data and solve; arguments as :func:`schedule_battery`."""
        load, pv, buy, sell = _inputs(load_mw, pv_mw, price, export_price, self.objective)
        if len(load) != self.n_steps:
            raise ValueError(f"this model has {self.n_steps} steps, got {len(load)}")
        if _needs_direction(self.objective, buy, sell) and not self.direction:
            raise ValueError("an export price above the import price needs the model with direction=True")
        self._set(load, pv, buy, sell, soc_initial_mwh, soc_initial_mwh if soc_final_mwh is None else soc_final_mwh)
        self._solve()
        m, n = self.model, self.n_steps

        def values(var):
            return np.fromiter((var[t].value for t in range(n)), dtype=float, count=n)

        table = pd.DataFrame(
            {
                "charge_mw": values(m.charge),
                "discharge_mw": values(m.discharge),
                "soc_mwh": values(m.soc),
                "import_mw": values(m.grid_import),
                "export_mw": values(m.grid_export),
            }
        )
        # The objective without the tie-breaker, m.core, from the arrays (evaluating the Pyomo
        # expression costs more than the HiGHS solve; the two differ by rounding, ~1e-15).
        imp, exp = table["import_mw"].to_numpy(), table["export_mw"].to_numpy()
        step_h = self.battery.step_h
        core = (buy * imp - sell * exp) * step_h if self.objective == "min_cost" else imp * step_h
        return BatterySchedule(table=table, objective=float(core.sum()))


class BatteryScheduler:
    """:func:`schedule_battery` that keeps its models: one :class:`BatteryLP` per horizon length,
    objective, solver, LP/MILP kind and battery, built on first use and re-solved with the new
    day's data after that.

    Results equal those of :func:`schedule_battery` (a freshly built model) for the same inputs.

    Attributes
    ----------
    models_built, solves : int
        Models built and solves run so far.
    """

    max_models = 8  # a planner needs one or two (a shorter last day, the MILP); bound the cache anyway

    def __init__(self):
        self._models: dict[tuple, BatteryLP] = {}
        self.models_built = 0
        self.solves = 0

    def schedule(self, load_mw, pv_mw, price, export_price, *, step_h: float, capacity_mwh: float,
                 power_mw: float, efficiency: float, soc_initial_mwh: float, soc_final_mwh: float | None = None,
                 objective: str = "min_cost", solver: str = "glpk", throughput_penalty: float = 1e-6,
                 soc_min_mwh: float = 0.0, soc_max_mwh: float | None = None,
                 import_limit_mw: float | None = None) -> BatterySchedule:
        """Optimal battery schedule; parameters as :func:`schedule_battery`."""
        load, pv, buy, sell = _inputs(load_mw, pv_mw, price, export_price, objective)
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose glpk or highs")
        battery = _battery(step_h, capacity_mwh, power_mw, efficiency, throughput_penalty, soc_min_mwh, soc_max_mwh,
                           import_limit_mw)
        key = (len(load), objective, solver, _needs_direction(objective, buy, sell), battery)
        lp = self._models.pop(key, None)
        if lp is None:
            lp = BatteryLP(len(load), step_h=step_h, capacity_mwh=capacity_mwh, power_mw=power_mw,
                           efficiency=efficiency, throughput_penalty=throughput_penalty, objective=objective,
                           solver=solver, direction=key[3], soc_min_mwh=soc_min_mwh, soc_max_mwh=soc_max_mwh,
                           import_limit_mw=import_limit_mw)
            self.models_built += 1
            while len(self._models) >= self.max_models:
                self._models.pop(next(iter(self._models)))  # least recently used
        self._models[key] = lp
        self.solves += 1
        return lp.solve(load, pv, buy, sell, soc_initial_mwh=soc_initial_mwh, soc_final_mwh=soc_final_mwh)


def schedule_battery(
    load_mw,
    pv_mw,
    price,
    export_price,
    *,
    step_h: float,
    capacity_mwh: float,
    power_mw: float,
    efficiency: float,
    soc_initial_mwh: float,
    soc_final_mwh: float | None = None,
    objective: str = "min_cost",
    solver: str = "glpk",
    throughput_penalty: float = 1e-6,
    soc_min_mwh: float = 0.0,
    soc_max_mwh: float | None = None,
    import_limit_mw: float | None = None,
) -> BatterySchedule:
    """Optimal battery schedule over the given steps, from a freshly built model.

    To solve many days, :class:`BatteryScheduler` (used by :class:`DayAheadPlanner`) keeps the
    model and only updates its parameters; the results are the same.

    Parameters
    ----------
    load_mw, pv_mw : array_like
        Forecast mean load and PV of each step, MW.
    price, export_price : array_like
        Import and export price of each step, currency/MWh (unused by ``min_import``).
    step_h : float
        Step length in hours.
    capacity_mwh, power_mw, efficiency : float
        Battery energy, power rating and round-trip efficiency.
    soc_initial_mwh, soc_final_mwh : float
        State of charge before the first and after the last step (final defaults to initial).
    objective : {"min_cost", "min_import"}
    solver : {"glpk", "highs"}
    throughput_penalty : float
        Tie-breaker per MWh charged plus discharged.
    soc_min_mwh, soc_max_mwh : float, optional
        The window the state of charge stays in (default: empty to ``capacity_mwh``).
    import_limit_mw : float, optional
        Hard limit on the grid import of every step (the LEC's net import). Where the battery
        cannot keep the import below it, :class:`InfeasibleSchedule` is raised.
    """
    load, pv, buy, sell = _inputs(load_mw, pv_mw, price, export_price, objective)
    lp = BatteryLP(len(load), step_h=step_h, capacity_mwh=capacity_mwh, power_mw=power_mw, efficiency=efficiency,
                   throughput_penalty=throughput_penalty, objective=objective, solver=solver,
                   direction=_needs_direction(objective, buy, sell), soc_min_mwh=soc_min_mwh,
                   soc_max_mwh=soc_max_mwh, import_limit_mw=import_limit_mw)
    return lp.solve(load, pv, buy, sell, soc_initial_mwh=soc_initial_mwh, soc_final_mwh=soc_final_mwh)
