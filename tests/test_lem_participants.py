"""Tests of the LEM participant set-up on the IEEE European LV feeder (lec_cosim.models.lem_participants)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models import lem_participants as lp
from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, _read_ieee_csv, build_ieee_eulv


@pytest.fixture(scope="module")
def feeder():
    return build_ieee_eulv(minute=None)


@pytest.fixture(scope="module")
def table():
    return lp.participants()


def test_counts(table):
    counts = table["kind"].value_counts()
    assert len(table) == 61
    assert counts["consumer"] == 13 and counts["prosumer"] == 42 and counts["chp"] == 6
    assert table["participant"].is_unique
    assert list(table["participant"]) == [f"LOAD{k}" for k in range(1, 56)] + [f"CHP{i}" for i in range(1, 7)]
    assert list(table.columns[:6]) == ["participant", "kind", "bus", "phase", "pv_kwp", "chp_kw"]


def test_reduced_numbering_reproducible_and_size():
    numbering = lp.reduced_bus_numbering()
    assert len(numbering) == lp.REDUCED_BUS_COUNT == 110
    assert list(numbering.index) == list(range(1, 111))
    assert numbering.is_monotonic_increasing and numbering.is_unique
    assert numbering.loc[1] == lp.HEAD_BUS == 1
    lp._feeder_of.cache_clear()
    assert numbering.equals(lp.reduced_bus_numbering())
    # contents: head + 55 load buses + 54 junctions of the pruned tree; every load bus kept
    loads = _read_ieee_csv(DEFAULT_DATA_DIR / "csv" / "Loads.csv")
    load_buses = set(loads["Bus"].astype(int))
    assert load_buses <= set(numbering)
    adj, _ = lp._feeder(str(DEFAULT_DATA_DIR))
    pruned = lp._pruned_adjacency(adj, load_buses | {1})
    assert len(pruned) == 701
    leaves = {b for b, n in pruned.items() if len(n) == 1}
    assert leaves - {1} == load_buses  # bus 1 (the root) is a leaf too: one line leaves the transformer
    junctions = {b for b, n in pruned.items() if len(n) >= 3}
    assert len(junctions) == 54 and not (junctions & load_buses)
    assert set(numbering) == {1} | load_buses | junctions
    # every dropped bus of the pruned tree lies inside a series chain (degree 2): merging is exact
    assert all(len(pruned[b]) == 2 for b in set(pruned) - set(numbering))
    assert len(adj) - len(pruned) == 205


def test_chp_buses_on_feeder_and_mapping(table, feeder):
    assert lp.chp_bus_map() == lp.CHP_BUS_MAP
    assert tuple(lp.CHP_BUS_MAP) == lp.PAPER_CHP_REDUCED_BUSES == (18, 27, 28, 70, 79, 108)
    chp = table[table["kind"] == "chp"]
    assert list(chp["reduced_bus"]) == list(lp.PAPER_CHP_REDUCED_BUSES)
    assert list(chp["bus"]) == [lp.CHP_BUS_MAP[r] for r in lp.PAPER_CHP_REDUCED_BUSES]
    assert set(chp["bus"]) <= set(feeder.net.bus.index[(feeder.net.bus.index >= 1) & (feeder.net.bus.index <= 906)])
    assert (chp["chp_kw"] == 10.0).all() and (chp["phase"] == "abc").all() and (chp["pv_kwp"] == 0).all()
    numbering = lp.reduced_bus_numbering()
    for r, bus in lp.CHP_BUS_MAP.items():
        assert numbering.loc[r] == bus
    assert lp.reduced_bus_of()[899] == 108


def test_households_match_ieee_loads(table, feeder):
    homes = table[table["kind"] != "chp"].reset_index(drop=True)
    al = feeder.net.asymmetric_load
    assert list(homes["participant"]) == list(al["name"])
    assert list(homes["bus"]) == [int(b) for b in al["bus"]]
    assert list(homes["phase"]) == list(feeder.load_phase)
    assert list(homes["load_profile"]) == [f"profile_{k}" for k in range(1, 56)]
    reduced = lp.reduced_bus_numbering()
    assert all(reduced.loc[r] == b for r, b in zip(table["reduced_bus"], table["bus"]))
    assert set(homes.loc[homes["kind"] == "consumer", "participant"]) == set(lp.CONSUMER_LOADS)
    assert lp.consumer_loads() == list(lp.CONSUMER_LOADS)
    assert (homes.loc[homes["kind"] == "consumer", "pv_kwp"] == 0).all()
    assert (homes["chp_kw"] == 0).all()
    # consumers spread over phases in proportion to the loads per phase (a 21, b 19, c 15)
    per_phase = homes[homes["kind"] == "consumer"]["phase"].value_counts()
    assert per_phase.to_dict() == {"a": 5, "b": 4, "c": 4}


def test_pv_sizing_peak(table):
    pros = table[table["kind"] == "prosumer"]
    assert pros["pv_kwp"].nunique() == 1 and pros["pv_kwp"].iloc[0] > 0
    assert set(pros["pv_profile"]) == set(lp.PV_PROFILES)
    for resolution in (60, 15):
        energy = lp.participant_energy(resolution_min=resolution, sizing_resolution_min=resolution)
        pv_kw = energy.groupby("period")["pv_kwh"].sum() * 60 / resolution
        assert pv_kw.max() == pytest.approx(lp.PAPER_PV_PEAK_KW, rel=0.005)
    # default: hourly sizing; the 15-min peak of that sizing is slightly higher
    e15 = lp.participant_energy(resolution_min=15)
    assert 194.0 <= (e15.groupby("period")["pv_kwh"].sum() * 4).max() < 194.0 * 1.01
    assert pros["pv_kwp"].iloc[0] == pytest.approx(8.525, abs=0.001)


def test_energies_consistent_with_profiles(table, feeder):
    hourly = lp.participant_energy(60)
    quarter = lp.participant_energy(15)
    assert len(hourly) == 61 * 24 and len(quarter) == 61 * 96
    prof = feeder.profiles_kw  # LOADk follows profile_k
    for k in (1, 17, 32, 55):
        name = f"LOAD{k}"
        h = hourly[hourly["participant"] == name].sort_values("period")
        np.testing.assert_allclose(h["load_kwh"], prof[name].to_numpy().reshape(24, 60).sum(axis=1) / 60, rtol=1e-12)
        q = quarter[quarter["participant"] == name].sort_values("period")
        np.testing.assert_allclose(q["load_kwh"], prof[name].to_numpy().reshape(96, 15).sum(axis=1) / 60, rtol=1e-12)
    # 15-min sums to hourly
    for col in ("load_kwh", "pv_kwh"):
        a = quarter.assign(hour=quarter["period"] // 4).groupby(["participant", "hour"])[col].sum()
        b = hourly.set_index(["participant", "period"])[col]
        np.testing.assert_allclose(a.sort_index().to_numpy(), b.sort_index().to_numpy(), rtol=1e-12, atol=1e-12)
    # PV energy = kWp x relative profile of the day; none for consumers and CHP
    day = lp.pv_day_profiles()
    row = table.set_index("participant").loc["LOAD2"]
    q = quarter[quarter["participant"] == "LOAD2"].sort_values("period")
    np.testing.assert_allclose(q["pv_kwh"], day[row["pv_profile"]].to_numpy() * row["pv_kwp"] / 4, rtol=1e-12)
    no_pv = hourly[hourly["kind"] != "prosumer"]
    assert (no_pv["pv_kwh"] == 0).all()
    chp = hourly[hourly["kind"] == "chp"]
    assert (chp["load_kwh"] == 0).all() and (chp["chp_max_kwh"] == 10.0).all()
    assert hourly["load_kwh"].sum() == pytest.approx(prof.to_numpy().sum() / 60, rel=1e-12)
    assert list(hourly["start"].iloc[:2]) == [pd.Timestamp("2016-05-26 00:00"), pd.Timestamp("2016-05-26 01:00")]


def test_load_peak_reported():
    peak = lp.load_peak_kw()
    assert peak["1min"] == pytest.approx(57.358, abs=1e-3)
    assert peak["60min"] == pytest.approx(38.938, abs=1e-3)
    assert peak["15min"] == pytest.approx(40.410, abs=1e-3)
    assert peak["energy_kwh"] == pytest.approx(483.914, abs=1e-3)


def test_pv_day_validation():
    with pytest.raises(ValueError):
        lp.pv_day_profiles("2019-05-26")
    with pytest.raises(ValueError):
        lp.participant_energy(resolution_min=30)
