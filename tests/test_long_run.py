"""A 100-day federation: every grant lands on its slot deep into the year, and each day closes.

HELICS counts time in whole nanoseconds; a step start plus a millisecond phase offset in floating
point once rounded past its slot on day 48 (households) and day 97 (recorder), which skipped a
whole period. This run crosses both days. It runs in this process (``harness.run_in_process``: the same federate
programs, configs and time requests on HELICS's in-process core, results byte-identical to ``lec-cosim run``,
``tests/test_inproc.py``): what it checks is HELICS's grants and the federates' slots, not processes.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from harness import run_in_process

from lec_cosim.models.ems import schedule_battery
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.models.prices import PriceFeed


def test_hundred_days_at_fifteen_minutes(tmp_path):
    scenario, out = run_in_process(tmp_path, "trondelag_arbitrage_year", {"name": "hundred_days", "horizon_h": 2400},
                                   timeout_s=500)
    grid = pd.read_csv(out / "signals.csv")
    ems = pd.read_csv(out / "ems.csv")
    assert len(grid) == 9600 and len(ems) == 2400
    assert grid.time.iloc[-1] == "2019-04-10T23:45:00"
    steps = pd.to_datetime(grid.time).diff().dropna().unique()
    assert len(steps) == 1 and steps[0] == np.timedelta64(15, "m")
    # Each day's schedule returns the battery to 50 % at midnight.
    np.testing.assert_allclose(ems.soc_mwh.to_numpy()[23::24], 0.6, atol=1e-6)
    # The battery followed its set-point wherever it was feasible: realised = planned SoC.
    np.testing.assert_allclose(grid.soc_mwh, grid.planned_soc_mwh.where(grid.index % 4 == 3, grid.soc_mwh), atol=1e-6)
    # The realised cost is the sum of the 100 day-ahead optima.
    fleet, feed = HouseholdFleet.from_scenario(scenario), PriceFeed.from_scenario(scenario)
    optima = 0.0
    for day in range(100):
        start = scenario.start + dt.timedelta(days=day)
        forecast, prices = fleet.power(start, 3600, 24), feed.prices(start, 3600, 24)
        optima += schedule_battery(forecast.load_p_mw, forecast.pv_p_mw, prices.price, prices.export_price,
                                   step_h=1.0, capacity_mwh=1.2, power_mw=0.6, efficiency=0.95,
                                   soc_initial_mwh=0.6).objective
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kpis"]["energy_cost"] == pytest.approx(optima, abs=1e-6)
