"""``resolution.exchange: day``: the participants send a day's hourly orders at once, the market clears each hour's
pool and answers them all, the DSO solves the day's grid steps in one block, the recorder reads the day at once.

Real federations in this process (``lec_cosim.inproc``, HELICS's in-process core; the same federate programs and
configs as ``lec-cosim run``): every results file must be byte for byte the hourly exchange's, with the players'
messages one per player and one per group, with and without the market, over two days (two exchanges).
"""

import json

import pandas as pd
import pytest
from harness import write_scenario

from lec_cosim.inproc import run_inproc
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.wiring import (
    block_steps,
    periods_per_exchange,
    plan,
)

CASES = {
    # Case 1, two participant federates, a message per player; the fixed-point flow solves a day's block at once
    "lem_per_player": ("ieee_eu_lv_lem_plain", {"horizon_h": 48, "participants.federates": 2,
                                                "grid.solver": "fixed-point"}),
    # the bihourly tariff, one message per group, truthful CHPs, power-grid-model step by step within the block
    "bihourly_per_group": ("ieee_eu_lv_lem_bihourly", {
        "horizon_h": 48, "participants.federates": 3, "participants.messages": "per_group",
        "market.chp_strategy": "truthful", "market.learned_bids_file": None}),
    # no market: the participants only settle with the grid
    "base": ("ieee_eu_lv_base_plain", {"horizon_h": 48}),
}


def test_a_day_exchange_plan_exchanges_once_a_day(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": 48, "participants.federates": 2, "resolution.exchange": "day"}))
    assert periods_per_exchange(scenario) == 24 and block_steps(scenario) == 96
    federates = {f.name: f for f in plan(scenario)}
    assert {f.period_s for f in federates.values() if f.name != "participants_1" and f.name != "participants_2"} \
        == {86400}
    market = federates["market"]
    assert market.settings["periods_per_step"] == 24
    assert {s.type for s in market.publications} == {"vector"}  # an hour's price and volume each
    group = federates["participants_1"]
    assert group.settings["periods_per_exchange"] == 24 and group.settings["block_steps"] == 96
    assert group.acts_at == ((86400, 0.001), (86400, 0.003))
    assert federates["recorder"].settings["periods_per_exchange"] == 24
    assert "periods_per_exchange" not in federates["dso"].settings  # the DSO sees only a block of grid steps


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", list(CASES))
def test_a_day_exchange_gives_the_hourly_exchanges_results_byte_for_byte(tmp_path, case):
    name, changes = CASES[case]
    runs = {}
    for exchange in ("period", "day"):
        scenario = load_scenario(write_scenario(tmp_path / exchange, name, {**changes,
                                                                            "resolution.exchange": exchange}))
        run_inproc(scenario, tmp_path / exchange / "run", timeout_s=300)
        runs[exchange] = tmp_path / exchange / "run"
    csvs = sorted(p.name for p in runs["period"].glob("*.csv"))
    assert {"households.csv", "settlement.csv", "grid.csv", "bus_voltage_extremes.csv"} <= set(csvs)
    assert csvs == sorted(p.name for p in runs["day"].glob("*.csv"))
    for csv in csvs:
        assert (runs["day"] / csv).read_bytes() == (runs["period"] / csv).read_bytes(), csv
    kpis = {e: json.loads((runs[e] / "summary.json").read_text())["kpis"] for e in runs}
    assert kpis["day"] == kpis["period"]
    grid = pd.read_csv(runs["day"] / "grid.csv")
    assert len(grid) == 48 * 4 and grid["p_loss_kw"].gt(0).all()  # every grid step solved
    # a day's exchange: two slots of the DSO, against 48 hourly ones
    slots = {e: len(pd.read_csv(runs[e] / "timing" / "dso.csv")) for e in runs}
    assert slots == {"period": 48, "day": 2}
