"""The three-LEC federations planning on forecasts (``ems.forecast``), end to end, in process.

Ten hours of the shipped day at hourly grid steps (00:00-10:00: night, then the morning's PV), real broker and
federates (``harness.run_in_process``). The EMSs and HEMSs plan on forecasts while the households' true profiles
drive the grid: the energy and money balances hold, the negotiated plans equal the centralised optimum of the
forecast problem every hour, the recorded forecasts are the forecasters' (persistence: the last metered hour), the
errors in ``forecast_errors.csv`` are those of the records against the metered profiles and show up as the LECs'
deviations from their planned grid exchange; the default (perfect foresight) writes no forecast results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness import run_in_process
from mlec_checks import (
    check_every_lec_hour_settles_its_metered_energy,
    check_negotiated_plans_equal_the_centralised_optimum,
)

from lec_cosim.models.multi_lec import multi_lec_members
from lec_cosim.models.multi_lec_ems import hourly_mean
from lec_cosim.studies.three_lecs.report import mlec_compare_cells

HOURS = 10
LECS = ["lec1", "lec2", "lec3"]


def _run(tmp_path_factory, framework: str, forecast: str | None) -> Path:
    changes = {"resolution.grid_min": 60, "horizon_h": HOURS, "framework": framework}
    if forecast is not None:
        changes["ems.forecast"] = forecast
    directory = tmp_path_factory.mktemp(f"{framework}_{forecast}")
    return run_in_process(directory, "ieee_eu_lv_three_lecs", changes)[1]


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    return _run(tmp_path_factory, "decentralised", None)


@pytest.fixture(scope="module")
def persistence(tmp_path_factory):
    return _run(tmp_path_factory, "decentralised", "persistence")


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    return _run(tmp_path_factory, "distributed", "learned")


@pytest.fixture(scope="module")
def seasonal_p2p(tmp_path_factory):
    return _run(tmp_path_factory, "p2p", "seasonal_naive")


def records(run: Path) -> dict:
    out = {}
    for line in (run / "ems_records.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[(r["hour"], r["lec"])] = r
    return out


def hourly_lec(run: Path, column: str) -> pd.DataFrame:
    """Per hour (rows) and LEC (columns) the members' metered ``column`` (hourly steps: kW = kWh)."""
    m = pd.read_csv(run / "members.csv")
    return m.groupby(["step", "lec"])[column].sum().unstack()[LECS]


def test_perfect_foresight_writes_no_forecast_results(default):
    assert not (default / "forecast_errors.csv").exists()
    assert "forecast" not in json.loads((default / "summary.json").read_text())


@pytest.mark.parametrize("name", ["persistence", "learned", "seasonal_p2p"])
def test_balances_hold_with_forecasts(request, name):
    check_every_lec_hour_settles_its_metered_energy(request.getfixturevalue(name))


def test_negotiated_plans_equal_the_centralised_optimum_of_the_forecast_problem(learned):
    check_negotiated_plans_equal_the_centralised_optimum(learned)
    assert json.loads((learned / "summary.json").read_text())["forecast"] == "learned"


def test_persistence_plans_on_the_last_metered_hour(persistence):
    """Each record's forecast holds the LEC's metered load and PV of the hour before over the window (at 00:00:
    23:00 of 25 May, the IEEE typical day's last hour, and no sun)."""
    r = records(persistence)
    load, pv = hourly_lec(persistence, "load_kw"), hourly_lec(persistence, "pv_kw")
    day_before = multi_lec_members("2016-05-25", 60)  # the shipped scenario's data and sizes
    last_load = hourly_mean(day_before, day_before.lec_load_kw)[:, 23]
    for i, lec in enumerate(LECS):
        assert r[(0, lec)]["forecast_load_kw"] == pytest.approx([last_load[i]] * HOURS, rel=1e-12)
        assert r[(0, lec)]["forecast_pv_kw"] == [0.0] * HOURS
        for hour in range(1, HOURS):
            assert r[(hour, lec)]["forecast_load_kw"] == pytest.approx([load.at[hour - 1, lec]] * (HOURS - hour),
                                                                       rel=1e-9)
            assert r[(hour, lec)]["forecast_pv_kw"] == pytest.approx([pv.at[hour - 1, lec]] * (HOURS - hour),
                                                                     rel=1e-9, abs=1e-9)


def test_forecast_errors_are_the_records_against_the_metered_profiles(persistence):
    """Next hour: persistence's error is the change from one hour to the next; window: every hour of every
    window. The errors show up as the LECs' deviations from their planned grid exchange."""
    errors = pd.read_csv(persistence / "forecast_errors.csv").set_index(["lec", "signal", "lead"])
    load = hourly_lec(persistence, "load_kw")
    pv = hourly_lec(persistence, "pv_kw") + hourly_lec(persistence, "curtailed_kw")
    r = records(persistence)
    for lec in LECS:
        step = load[lec].diff().iloc[1:].to_numpy()
        first = r[(0, lec)]["forecast_load_kw"][0] - load.at[0, lec]
        expected = np.abs(np.concatenate([[first], -step]))
        assert errors.at[(lec, "load", "next_hour"), "mae_kw"] == pytest.approx(expected.mean(), rel=1e-9)
        assert errors.at[(lec, "load", "next_hour"), "forecasts"] == HOURS
        window = np.concatenate([np.asarray(r[(h, lec)]["forecast_pv_kw"]) - pv[lec].iloc[h:].to_numpy()
                                 for h in range(HOURS)])
        assert errors.at[(lec, "pv", "window"), "rmse_kw"] == pytest.approx(np.sqrt((window ** 2).mean()), rel=1e-9)
        assert errors.at[(lec, "pv", "window"), "forecasts"] == HOURS * (HOURS + 1) // 2
    assert errors.at[("all", "pv", "window"), "bias_kw"] < -10  # it never sees the morning's sun rise
    kpis = json.loads((persistence / "summary.json").read_text())["kpis"]["forecast_errors"]
    lec_rows = errors.loc[LECS].xs(("load", "window"), level=("signal", "lead"))
    assert kpis["load"]["mae_kw"] == pytest.approx(lec_rows["mae_kw"].mean(), rel=1e-9)  # equal counts per LEC
    # planned grid exchange of the hour against the metered one: they differ by the forecast's errors
    s = pd.read_csv(persistence / "settlement.csv").set_index(["hour", "lec"])
    deviation = [abs(r[key]["planned_import_kw"] - r[key]["planned_export_kw"]
                     - (s.at[key, "net_kwh"])) for key in r]
    assert max(deviation) > 5.0


def test_perfect_foresight_meets_its_plan(default):
    """Without forecast errors each LEC's metered net energy is its planned grid exchange (no platform trades on
    this day: the LECs are all short or all long at once)."""
    r, s = records(default), pd.read_csv(default / "settlement.csv").set_index(["hour", "lec"])
    assert max(abs(r[key]["planned_import_kw"] - r[key]["planned_export_kw"] - s.at[key, "net_kwh"])
               for key in r) < 1e-6


def test_p2p_hems_plan_on_their_forecasts(seasonal_p2p):
    """A prosumer without a home battery bids its metered load less the PV of the same hour of 25 May (the
    IEEE loads are the same every day, so the load forecast is exact)."""
    trades = pd.read_csv(seasonal_p2p / "p2p_trades.csv")
    members = pd.read_csv(seasonal_p2p / "members.csv")
    day_before = multi_lec_members("2016-05-25", 60, horizon_h=HOURS)
    table = day_before.table
    prosumer = table[(table["pv_kwp"] > 0) & (table["battery_kwh"] == 0)].index[0]
    name = table.at[prosumer, "member"]
    bid = trades[trades["member"] == name].sort_values("hour")["net_kwh"].to_numpy()
    metered = members[members["member"] == name].sort_values("step")
    expected = metered["load_kw"].to_numpy() - day_before.pv_kw[prosumer]
    np.testing.assert_allclose(bid, expected, atol=1e-9)
    assert np.abs(bid - metered["net_kw"].to_numpy()).max() > 0.01  # 25 May's PV is not quite 26 May's (0.017 kW)


def test_compare_table_prices_the_forecast_errors(default, persistence):
    header, rows = mlec_compare_cells([default, persistence])
    assert header[1:] == ["decentralised", "decentralised, persistence forecast"]
    cells = {row[0]: row[1:] for row in rows}
    cost = [json.loads((run / "summary.json").read_text())["kpis"]["total_cost_eur"] for run in (default, persistence)]
    assert cells["forecast"] == ["perfect", "persistence"]
    assert cells["cost of forecast error (EUR)"] == ["-", f"{cost[1] - cost[0]:.2f}"]
    assert float(cells["cost of forecast error (EUR)"][1]) > 0.1
