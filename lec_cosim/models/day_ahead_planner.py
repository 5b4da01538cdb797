"""The LEC_EMS's day-ahead planning of the community battery: each day's forecast and prices, scheduled.

Separate from the LP (:mod:`lec_cosim.models.battery_lp`): here the scenario's horizon is cut into
days, the households' forecast and the market's prices are brought to the EMS steps, and an
infeasible import limit is explained for that day (:class:`ImportLimitInfeasible`); the LP only
schedules the arrays it is given.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from lec_cosim.models.battery_lp import (
    BatterySchedule,
    BatteryScheduler,
    InfeasibleSchedule,
)
from lec_cosim.models.errors import InfeasibleInput
from lec_cosim.models.timeseries import step_means


class ImportLimitInfeasible(InfeasibleSchedule, InfeasibleInput):
    """No battery schedule keeps a day's grid import at or below the scenario's ``grid.import_limit_mw``."""

    field = "grid.import_limit_mw"


class DayAheadPlanner:
    """The LEC_EMS's day-ahead planning: forecast the day, take the market's prices, schedule.

    The forecaster is perfect foresight of the households' own profiles; the battery starts and
    ends every day at ``soc_initial`` of its capacity.
    """

    def __init__(self, scenario, forecaster=None):
        from lec_cosim.models.household import HouseholdFleet

        self.scenario = scenario
        self.forecaster = forecaster or HouseholdFleet.from_scenario(scenario)
        self.scheduler = BatteryScheduler()  # builds the LP once, re-solves it every day

    def plan_horizon(self, prices: pd.DataFrame) -> list[BatterySchedule]:
        """Plan every day of the scenario's horizon, as the LEC_EMS does in a run.

        Parameters
        ----------
        prices : pandas.DataFrame
            ``price`` and ``export_price`` of every market step of the horizon (currency/MWh), as
            :meth:`lec_cosim.models.prices.PriceFeed.prices` gives them.
        """
        s = self.scenario
        day_s, per_day = 86400, 86400 // s.market_step_s
        schedules = []
        for t in range(0, math.ceil(s.end_s), day_s):
            day = prices.iloc[t // s.market_step_s: t // s.market_step_s + per_day]
            schedules.append(self.plan(s.start + dt.timedelta(seconds=t), int(min(day_s, s.end_s - t) // s.ems_step_s),
                                       day["price"].to_numpy(), day["export_price"].to_numpy()))
        return schedules

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
        limit = s.grid.import_limit_mw
        try:
            return self.scheduler.schedule(
                forecast["load_p_mw"], forecast["pv_p_mw"], per_ems_step(prices), per_ems_step(export_prices),
                step_h=s.ems_step_s / 3600.0, capacity_mwh=b.capacity_mwh, power_mw=b.power_mw,
                efficiency=b.efficiency, soc_initial_mwh=b.soc_initial * b.capacity_mwh,
                objective=s.ems.objective, solver=s.ems.solver, throughput_penalty=s.ems.throughput_penalty,
                soc_min_mwh=b.soc_min * b.capacity_mwh, soc_max_mwh=b.soc_max * b.capacity_mwh,
                import_limit_mw=limit,
            )
        except InfeasibleSchedule:
            if limit is None:
                raise
            net = (forecast["load_p_mw"] - forecast["pv_p_mw"]).to_numpy()
            peak = int(np.argmax(net))
            above_mwh = float(np.clip(net - limit, 0.0, None).sum()) * s.ems_step_s / 3600.0
            raise ImportLimitInfeasible(
                f"no battery schedule keeps the import at or below {limit:g} MW on {day_start:%Y-%m-%d} (net load "
                f"peak {net[peak]:.3f} MW at {day_start + dt.timedelta(seconds=peak * s.ems_step_s):%H:%M}, "
                f"{above_mwh:.3f} MWh above the limit; battery {b.power_mw:g} MW, "
                f"{b.capacity_mwh * (b.soc_initial - b.soc_min):.3f} MWh above soc_min, back to its start SoC "
                f"by the day's end)") from None
