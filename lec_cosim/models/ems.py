"""LEC_EMS optimiser: day-ahead schedule of the community battery as a Pyomo LP.

The parts live in modules by concept; every name of them (private ones included) is importable
from here too:

* :mod:`lec_cosim.models.battery_lp`: the LP (or MILP) itself, its formulation, the model built
  once and re-solved (:class:`BatteryLP`, :class:`BatteryScheduler`), :func:`schedule_battery`,
  :class:`BatterySchedule` and :class:`InfeasibleSchedule`.
* :mod:`lec_cosim.models.lp_solvers`: the solvers (GLPK's binary, persistent HiGHS) and
  :func:`solver_version`.
* :mod:`lec_cosim.models.day_ahead_planner`: the LEC_EMS's planning over the horizon from the
  forecast and the prices (:class:`DayAheadPlanner`, :class:`ImportLimitInfeasible`).
"""

from __future__ import annotations

from lec_cosim.models.battery_lp import (  # noqa: F401
    OBJECTIVES,
    SOLVERS,
    BatteryLP,
    BatterySchedule,
    BatteryScheduler,
    InfeasibleSchedule,
    _Battery,
    _battery,
    _inputs,
    _needs_direction,
    schedule_battery,
)
from lec_cosim.models.day_ahead_planner import (  # noqa: F401
    DayAheadPlanner,
    ImportLimitInfeasible,
)
from lec_cosim.models.lp_solvers import (  # noqa: F401
    _persistent_highs,
    _solver,
    glpk_executable,
    solver_version,
)
