"""LEC_EMS federate: schedules the community battery day-ahead and sends hourly set-points.

At each day's start it reads the day-ahead prices from the market, forecasts the community's load
and PV (perfect foresight from the households' profiles), solves the LP and then publishes one
battery set-point per EMS step.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from federates.common import Federate, main
from lec_cosim.models.ems import schedule_battery
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.models.timeseries import step_means

DAY_S = 86400


def build(fed: Federate):
    s = fed.scenario
    lec = s.lec_name
    forecaster = HouseholdFleet.from_scenario(s)
    step_h = fed.period_s / 3600.0
    soc_target = s.battery.soc_initial * s.battery.capacity_mwh
    plan = {"setpoint": np.zeros(0), "soc": np.zeros(0), "first": 0}

    def on_ems_grid(prices: list[float], day_start: dt.datetime, n_steps: int) -> np.ndarray:
        series = pd.Series(prices, index=pd.date_range(day_start, periods=len(prices), freq=f"{s.market_step_s}s"))
        return step_means(series, day_start, fed.period_s, n_steps, interval_s=s.market_step_s)

    def step(k: int, t: float) -> None:
        if t % DAY_S == 0:
            day_start = s.start + dt.timedelta(seconds=t)
            n_steps = int(min(DAY_S, s.end_s - t) // fed.period_s)
            price = on_ems_grid(fed.vector("market/day_ahead_price_eur_per_mwh"), day_start, n_steps)
            export_price = on_ems_grid(fed.vector("market/day_ahead_export_price_eur_per_mwh"), day_start, n_steps)
            forecast = forecaster.power(day_start, fed.period_s, n_steps)
            schedule = schedule_battery(
                forecast["load_p_mw"], forecast["pv_p_mw"], price, export_price, step_h=step_h,
                capacity_mwh=s.battery.capacity_mwh, power_mw=s.battery.power_mw,
                efficiency=s.battery.efficiency, soc_initial_mwh=soc_target,
                objective=s.ems.objective, solver=s.ems.solver,
                throughput_penalty=s.ems.throughput_penalty,
            )
            plan.update(setpoint=schedule.setpoint_mw, soc=schedule.table["soc_mwh"].to_numpy(), first=k)
        i = k - plan["first"]
        fed.publish(f"{lec}/ems/battery_setpoint_mw", plan["setpoint"][i])
        fed.publish(f"{lec}/ems/planned_soc_mwh", plan["soc"][i])

    return step


if __name__ == "__main__":
    main(build, __doc__)
