"""Period mixes we ship: 1-minute grid steps under a 15-minute EMS and an hourly market, with HiGHS.

The federation runs in this process (``harness.run_in_process``: the federate programs and configs of ``lec-cosim
run`` as threads on HELICS's in-process core, the same grants and results).
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness import run_in_process
from lec_cosim.models.household import HouseholdFleet


def test_one_minute_grid_fifteen_minute_ems_hourly_market(tmp_path):
    scenario, out = run_in_process(tmp_path, "trondelag_arbitrage", {
        "name": "minute_steps", "horizon_h": 3, "start": "2019-05-26T12:00:00",
        "resolution": {"market_min": 60, "ems_min": 15, "grid_min": 1}, "ems.solver": "highs",
    })
    summary = json.loads((out / "summary.json").read_text())
    ems, pcc, grid = (pd.read_csv(out / f) for f in ("ems.csv", "pcc.csv", "signals.csv"))
    assert len(pcc) == 180 and len(ems) == 12 and summary["ems_step_h"] == 0.25
    assert summary["versions"]["solver"]["name"] == "highs"
    # Hourly prices hold over the four EMS steps of each hour (real NO1 prices, 12:00-14:00).
    np.testing.assert_allclose(ems.price, np.repeat([28.46, 26.98, 26.96], 4))
    # Households play the 15-minute profile back minute by minute, holding each value.
    quarter = HouseholdFleet.from_scenario(scenario).power(scenario.start, 900, 12)
    np.testing.assert_allclose(grid.load_p_mw.to_numpy().reshape(12, 15), np.repeat(quarter.load_p_mw.to_numpy()[:, None], 15, 1), atol=1e-12)
    # The set-point changes only at EMS steps; the battery's SoC integrates it minute by minute.
    setpoints = grid.setpoint_mw.to_numpy().reshape(12, 15)
    assert np.all(setpoints == setpoints[:, :1])
    eta = math.sqrt(0.95)
    soc_before = np.concatenate(([0.6], grid.soc_mwh.to_numpy()[:-1]))
    p = grid.battery_p_mw.to_numpy()
    np.testing.assert_allclose(grid.soc_mwh - soc_before, np.where(p > 0, p * eta, p / eta) / 60, atol=1e-9)
    assert ems.soc_mwh.iloc[-1] == pytest.approx(0.6, abs=1e-6)
