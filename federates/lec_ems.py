"""LEC_EMS federate: schedules the community battery day-ahead and sends hourly set-points.

At each day's start it reads the day-ahead prices from the market, plans the day (forecast and
LP: ``lec_cosim.models.ems.DayAheadPlanner``) and then publishes one battery set-point per EMS
step.
"""

from __future__ import annotations

import datetime as dt

from federates.common import Federate, main
from lec_cosim.models.ems import DayAheadPlanner

DAY_S = 86400


def build(fed: Federate):
    s = fed.scenario
    setpoint, planned_soc = fed.key_of("setpoint_mw"), fed.key_of("planned_soc_mwh")
    planner = DayAheadPlanner(s)
    plan = {"schedule": None, "first": 0, "end_s": s.end_s}  # end_s: the run's, or a learning episode's

    def step(k: int, t: float) -> None:
        if t % DAY_S == 0:
            n_steps = int(min(DAY_S, plan["end_s"] - t) // fed.period_s)
            plan["schedule"] = planner.plan(s.start + dt.timedelta(seconds=t), n_steps,
                                            fed.read_port("day_ahead_price"), fed.read_port("day_ahead_export_price"))
            plan["first"] = k
        schedule, i = plan["schedule"], k - plan["first"]
        fed.publish(setpoint, schedule.setpoint_mw[i])
        fed.publish(planned_soc, schedule.table["soc_mwh"].iat[i])

    def reset() -> None:
        """A learning environment's next episode (the port ``episode``): it plans up to the episode's end, as a run
        of that length does, not up to the end of the long-lived federation's days."""
        control = fed.read_port("episode")
        plan["end_s"] = float(control["day_s"]) + float(control["length_s"])

    step.reset = reset
    return step


if __name__ == "__main__":
    main(build, __doc__)
