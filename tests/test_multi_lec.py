"""Tests of the multi-LEC split, neighbour graph and members' assets (lec_cosim.models.multi_lec).

Real data throughout: the shipped IEEE European LV feeder (topology, loads, 1-minute profiles) and the
SimBench PV profiles of 2016-05-26, loads scaled to the LEM scenarios' 140 kW hourly peak unless said.
The topology checks rebuild the feeder graph from ``Lines.csv`` here, independently of the module.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models import lec_split
from lec_cosim.models import multi_lec as ml
from lec_cosim.models.ieee_eulv import (
    DEFAULT_DATA_DIR,
    _read_ieee_csv,
    read_load_profiles_kw,
)
from lec_cosim.models.lem_participants import (
    CONSUMER_LOADS,
    PV_PROFILE_FILE,
    path_length_m,
    reduced_bus_numbering,
)

LECS = ["lec1", "lec2", "lec3"]
MEMBERS = {
    "lec1": [f"LOAD{k}" for k in [*range(1, 18), 19, 21]],
    "lec2": [f"LOAD{k}" for k in (18, 20, 22, 23, 25, 29, 30, 31, 33, 34, 35, 36, 37)],
    "lec3": [f"LOAD{k}" for k in (24, 26, 27, 28, 32, *range(38, 56))],
}
PHASES = {"lec1": {"a": 7, "b": 7, "c": 5}, "lec2": {"a": 7, "b": 4, "c": 2}, "lec3": {"a": 7, "b": 8, "c": 8}}
# day energies, kWh (2016-05-26; loads unscaled and scaled to the 140 kW hourly peak)
LOAD_KWH_IEEE = {"lec1": 173.178, "lec2": 121.804, "lec3": 188.932}
LOAD_KWH = {"lec1": 622.650, "lec2": 437.940, "lec3": 679.295}
PV_KWH = {"lec1": 521.800, "lec2": 344.729, "lec3": 588.512}
HOME_BATTERIES = {
    "lec1": ["LOAD3", "LOAD6", "LOAD8", "LOAD10", "LOAD14", "LOAD17", "LOAD21"],
    "lec2": ["LOAD22", "LOAD31", "LOAD33", "LOAD34", "LOAD36"],
    "lec3": ["LOAD28", "LOAD39", "LOAD41", "LOAD44", "LOAD49", "LOAD50", "LOAD51", "LOAD55"],
}
COMMUNITY_BATTERY = {"lec1": (101, 52.0, 26.0), "lec2": (475, 36.0, 18.0), "lec3": (686, 57.0, 28.5)}


# --- an independent feeder graph ------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph():
    lines = _read_ieee_csv(DEFAULT_DATA_DIR / "csv" / "Lines.csv")
    adj: dict[int, set[int]] = {}
    for a, b in zip(lines["Bus1"].astype(int), lines["Bus2"].astype(int)):
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    return adj


@pytest.fixture(scope="module")
def parent(graph):
    """Upstream neighbour of every bus, the feeder rooted at bus 1 (breadth-first, so also an order)."""
    up, queue = {1: None}, deque([1])
    while queue:
        x = queue.popleft()
        for y in sorted(graph[x]):
            if y not in up:
                up[y] = x
                queue.append(y)
    return up


def components(adj, removed=frozenset()):
    """Connected components of the graph without the lines in ``removed`` (set of frozenset pairs)."""
    seen, out = set(), []
    for start in sorted(adj):
        if start in seen:
            continue
        comp, queue = {start}, deque([start])
        while queue:
            x = queue.popleft()
            for y in adj[x]:
                if y not in comp and frozenset((x, y)) not in removed:
                    comp.add(y)
                    queue.append(y)
        seen |= comp
        out.append(comp)
    return out


def is_connected(adj, buses) -> bool:
    buses = set(buses)
    sub = {b: adj[b] & buses for b in buses}
    return len(components(sub)) == 1


@pytest.fixture(scope="module")
def split():
    return ml.split_into_lecs()


@pytest.fixture(scope="module")
def members():
    return ml.multi_lec_members()


# --- split ----------------------------------------------------------------------------------------
def test_every_household_assigned_once(split):
    assert list(split["load"]) == [f"LOAD{k}" for k in range(1, 56)]
    assert split["load"].is_unique and split["lec"].notna().all()
    assert ml.lec_names(split) == LECS
    for lec in LECS:
        group = split[split["lec"] == lec]
        assert sorted(group["load"], key=lambda n: int(n[4:])) == MEMBERS[lec]
        assert group["phase"].value_counts().to_dict() == PHASES[lec]
    assert split.groupby("lec").size().to_dict() == {"lec1": 19, "lec2": 13, "lec3": 23}
    assert tuple(split.groupby("lec")["lec_root_bus"].first()) == ml.LEC_ROOT_BUSES == (1, 287, 288)
    loads = _read_ieee_csv(DEFAULT_DATA_DIR / "csv" / "Loads.csv")
    assert list(split["bus"]) == list(loads["Bus"].astype(int))
    # deterministic: a fresh computation gives the same table
    lec_split._tree_of.cache_clear()
    assert split.equals(ml.split_into_lecs())


def test_split_follows_the_branches_at_the_main_junction(graph, parent, split):
    # cutting the two lines that leave bus 280 towards 287 and 288 leaves exactly the three LECs
    cut = {frozenset((280, 287)), frozenset((280, 288))}
    comps = components(graph, cut)
    assert len(comps) == 3
    bus_lec = dict(zip(split["bus"], split["lec"]))
    for comp in comps:
        lecs = {bus_lec[b] for b in comp if b in bus_lec}
        assert len(lecs) == 1
        (lec,) = lecs
        assert {b for b in comp if b in bus_lec} == set(split.loc[split["lec"] == lec, "bus"])
        assert ml.LEC_ROOT_BUSES[LECS.index(lec)] in comp
    # bus 280 is where the load divides most evenly: its second branch has 13 households, no other > 6
    order = list(parent)
    count = {b: 0 for b in graph}
    for b in split["bus"]:
        count[b] += 1
    for b in reversed(order[1:]):
        count[parent[b]] += count[b]
    second = {}
    for b in graph:
        loaded = sorted((count[c] for c in graph[b] if parent.get(c) == b and count[c] > 0), reverse=True)
        if len(loaded) >= 2:
            second[b] = loaded[1]
    ranked = sorted(second.items(), key=lambda kv: -kv[1])
    assert ranked[0] == (ml.MAIN_JUNCTION_BUS, 13) and ranked[1][1] == 6


def test_each_lec_is_a_connected_part(graph, parent, split):
    parts = ml.lec_parts(split)
    assert list(parts) == LECS
    assert {lec: len(p) for lec, p in parts.items()} == {"lec1": 219, "lec2": 148, "lec3": 297}
    for lec, part in parts.items():
        own = set(split.loc[split["lec"] == lec, "bus"])
        others = set(split.loc[split["lec"] != lec, "bus"])
        assert own <= part and not (others & part)
        assert is_connected(graph, part)
        # with the trunk from its top bus up to the transformer it is still one connected piece
        top = min(part, key=lambda b: path_length_m()[b])
        trunk, bus = set(), top
        while bus is not None:
            trunk.add(bus)
            bus = parent[bus]
        assert 1 in trunk and is_connected(graph, part | trunk)
    for i, a in enumerate(LECS):
        for b in LECS[i + 1:]:
            assert not (parts[a] & parts[b])
    # lec1's part ends at bus 263; the junction 280 belongs to no part (shared trunk)
    assert 263 in parts["lec1"] and 272 not in parts["lec1"]
    assert all(ml.MAIN_JUNCTION_BUS not in p for p in parts.values())


def test_other_numbers_of_lecs():
    sizes = {n: ml.split_into_lecs(n).groupby("lec").size().tolist() for n in (1, 2, 4, 5)}
    assert sizes == {1: [55], 2: [32, 23], 4: [19, 13, 10, 13], 5: [19, 13, 7, 3, 13]}
    four = ml.split_into_lecs(4)
    assert tuple(four.groupby("lec")["lec_root_bus"].first()) == (1, 287, 288, 673)
    assert ml.lec_neighbours(four) == [("lec1", "lec2"), ("lec1", "lec3"), ("lec2", "lec3"), ("lec3", "lec4")]
    with pytest.raises(ValueError):
        ml.split_into_lecs(0)


# --- neighbours -------------------------------------------------------------------------------------
def test_neighbour_graph_is_a_triangle(split):
    assert ml.lec_neighbours(split) == [("lec1", "lec2"), ("lec1", "lec3"), ("lec2", "lec3")]
    table = ml.lec_distances(split).set_index(["lec_a", "lec_b"])
    assert table["distance_m"].to_dict() == pytest.approx(
        {("lec1", "lec2"): 13.2215, ("lec1", "lec3"): 12.2930, ("lec2", "lec3"): 15.5319}, abs=1e-3)
    assert (table["crosses"] == "").all()
    assert table.loc[("lec2", "lec3"), "via_bus"] == ml.MAIN_JUNCTION_BUS
    assert list(table[["from_bus", "to_bus"]].itertuples(index=False, name=None)) == [(263, 310), (263, 373),
                                                                                      (310, 373)]
    # the distance limit matters only below the joining paths' lengths
    assert ml.lec_neighbours(split, max_distance_m=14.0) == [("lec1", "lec2"), ("lec1", "lec3")]


def test_a_split_within_a_branch_gives_a_line(graph, split):
    # the min-max split (cuts above bus 280 and 594): 19/18/18 households, lec2 straddles both branches
    below = {}
    for root in (280, 594):
        comp = next(c for c in components(graph, {frozenset((root, p)) for p in graph[root] if p < root})
                    if root in c)
        below[root] = comp
    other = split.assign(lec=["lec3" if b in below[594] else "lec2" if b in below[280] else "lec1"
                              for b in split["bus"]])
    assert other.groupby("lec").size().tolist() == [19, 18, 18]
    assert ml.lec_neighbours(other) == [("lec1", "lec2"), ("lec2", "lec3")]
    row = ml.lec_distances(other).set_index(["lec_a", "lec_b"]).loc[("lec1", "lec3")]
    assert row["crosses"] == "lec2" and not row["neighbours"]


def test_overlapping_split_rejected(split):
    mixed = split.copy()
    mixed.loc[mixed["load"] == "LOAD55", "lec"] = "lec1"  # far end of the feeder into the head's LEC
    with pytest.raises(ValueError, match="overlap"):
        ml.lec_neighbours(mixed)


# --- members and assets -----------------------------------------------------------------------------
def test_asset_table(members, split):
    t = members.table
    assert len(t) == 58
    assert list(t.columns) == ["member", "lec", "kind", "bus", "reduced_bus", "phase", "pv_kwp", "pv_profile",
                               "load_profile", "battery_kwh", "battery_kw", "battery_efficiency"]
    homes = t[t["kind"] == "household"]
    assert list(homes["member"]) == list(split["load"]) and list(homes["lec"]) == list(split["lec"])
    assert list(homes["bus"]) == list(split["bus"]) and list(homes["phase"]) == list(split["phase"])
    # PV on the 42 prosumers of the LEM set-up, 8.525 kWp each
    pv = homes[homes["pv_kwp"] > 0]
    assert set(homes["member"]) - set(pv["member"]) == set(CONSUMER_LOADS)
    assert pv["pv_kwp"].to_numpy() == pytest.approx(8.525, abs=1e-3)
    assert pv.groupby("lec").size().to_dict() == {"lec1": 15, "lec2": 10, "lec3": 17}
    # home batteries: every second prosumer of each LEC along the feeder, 10 kWh / 5 kW
    bat = homes[homes["battery_kwh"] > 0]
    assert {lec: list(g["member"]) for lec, g in bat.groupby("lec")} == HOME_BATTERIES
    assert (bat["battery_kwh"] == 10.0).all() and (bat["battery_kw"] == 5.0).all()
    assert (bat["pv_kwp"] > 0).all() and (bat["battery_efficiency"] == 0.95).all()
    for lec in LECS:
        pros = split[split["load"].isin(pv["member"]) & (split["lec"] == lec)]
        pros = pros.assign(k=pros["load"].str[4:].astype(int)).sort_values(["path_length_m", "k"])
        assert set(pros["load"].iloc[1::2]) == set(HOME_BATTERIES[lec])
    # community batteries: 2 h of the LEC's mean load, power = mean load, at the LEC's load centre
    cb = t[t["kind"] == "community_battery"].set_index("lec")
    assert list(cb["member"]) == ["lec1_battery", "lec2_battery", "lec3_battery"]
    for lec, (bus, kwh, kw) in COMMUNITY_BATTERY.items():
        assert (cb.loc[lec, "bus"], cb.loc[lec, "battery_kwh"], cb.loc[lec, "battery_kw"]) == (bus, kwh, kw)
        assert cb.loc[lec, "battery_kwh"] == round(2.0 * LOAD_KWH[lec] / 24.0)
        assert bus in ml.lec_parts(split)[lec]
    assert (cb["phase"] == "abc").all() and (cb["pv_kwp"] == 0).all()
    numbering = reduced_bus_numbering()
    assert all(numbering.loc[r] == b for r, b in zip(t["reduced_bus"], t["bus"]))
    summary = members.lecs.set_index("lec")
    columns = ["households", "prosumers", "home_batteries", "phase_a", "phase_b", "phase_c"]
    assert summary[columns].to_numpy().tolist() == [[19, 15, 7, 7, 7, 5], [13, 10, 5, 7, 4, 2], [23, 17, 8, 7, 8, 8]]
    assert members.neighbours == ml.lec_neighbours(split)


def test_aggregates_are_member_sums(members):
    t = members.table
    assert members.load_kw.shape == members.pv_kw.shape == members.load_kvar.shape == (58, 96)
    cb = (t["kind"] == "community_battery").to_numpy()
    assert not members.load_kw[cb].any() and not members.pv_kw[cb].any()
    for i, lec in enumerate(LECS):
        rows = (t["lec"] == lec).to_numpy()
        np.testing.assert_allclose(members.lec_load_kw[i], members.load_kw[rows].sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(members.lec_pv_kw[i], members.pv_kw[rows].sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(members.lec_load_kvar[i], members.load_kvar[rows].sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(members.net_demand_kw, members.lec_load_kw - members.lec_pv_kw, rtol=1e-12)
    np.testing.assert_allclose(members.lec_load_kw.sum(axis=0), members.load_kw.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(members.load_kvar, members.load_kw * math.tan(math.acos(0.95)), rtol=1e-12)
    long = members.lec_aggregates()
    assert len(long) == 3 * 96 and list(long["start"].iloc[:2]) == [pd.Timestamp("2016-05-26 00:00"),
                                                                   pd.Timestamp("2016-05-26 00:15")]
    np.testing.assert_allclose(long.pivot(index="lec", columns="step", values="net_kw").loc[LECS].to_numpy(),
                               members.net_demand_kw, rtol=1e-12)
    assert members.community_battery_kwh.tolist() == [52.0, 36.0, 57.0]
    assert members.community_battery_kw.tolist() == [26.0, 18.0, 28.5]
    assert members.home_battery_kwh.tolist() == [70.0, 50.0, 80.0]
    assert members.home_battery_kw.tolist() == [35.0, 25.0, 40.0]


def test_day_energies_per_lec(members):
    summary = members.lec_table().set_index("lec")
    assert summary["load_kwh"].to_dict() == pytest.approx(LOAD_KWH, abs=1e-3)
    assert summary["pv_kwh"].to_dict() == pytest.approx(PV_KWH, abs=1e-3)
    assert summary["pv_kwp"].to_dict() == pytest.approx({"lec1": 127.875, "lec2": 85.250, "lec3": 144.924}, abs=1e-3)
    assert members.load_scale == pytest.approx(3.5954, abs=1e-4)
    hourly_total = members.lec_load_kw.sum(axis=0).reshape(24, 4).mean(axis=1)
    assert hourly_total.max() == pytest.approx(140.0, rel=1e-12)
    # unscaled IEEE profiles: the documented energies, checked against the raw profile table too
    raw = ml.multi_lec_members(load_peak_kw=None, grid_min=60)
    assert raw.load_scale == 1.0 and raw.n_steps == 24
    assert raw.lec_table().set_index("lec")["load_kwh"].to_dict() == pytest.approx(LOAD_KWH_IEEE, abs=1e-3)
    profiles = read_load_profiles_kw()
    for lec in LECS:
        kwh = profiles[[f"profile_{n[4:]}" for n in MEMBERS[lec]]].to_numpy().sum() / 60.0
        assert kwh == pytest.approx(LOAD_KWH_IEEE[lec], abs=1e-3)
    # hourly steps keep the energies; PV does not depend on the load scale
    np.testing.assert_allclose(raw.lec_pv_kw.sum(axis=1), members.lec_pv_kw.sum(axis=1) / 4, rtol=1e-12)


def test_profiles_match_the_lem_community(members):
    from lec_cosim.models.lem_community import build_community

    community = build_community(DEFAULT_DATA_DIR, "2016-05-26", PV_PROFILE_FILE, grid_min=15)
    homes = community.kinds != "chp"
    assert list(np.array(community.names)[homes]) == list(members.table["member"][:55])
    np.testing.assert_allclose(members.load_kw[:55], community.load_kw[homes], rtol=1e-12)
    np.testing.assert_allclose(members.load_kvar[:55], community.load_kvar[homes], rtol=1e-12)
    np.testing.assert_allclose(members.pv_kw[:55], community.pv_kw[homes], rtol=1e-12)


def test_horizon_and_validation():
    short = ml.multi_lec_members(grid_min=5, horizon_h=12)
    assert short.n_steps == 144 and short.dt_h == pytest.approx(5 / 60)
    full = ml.multi_lec_members(grid_min=15)
    np.testing.assert_allclose(short.lec_load_kw.reshape(3, 48, 3).mean(axis=2), full.lec_load_kw[:, :48], rtol=1e-12)
    np.testing.assert_allclose(short.lec_pv_kw.reshape(3, 48, 3).mean(axis=2), full.lec_pv_kw[:, :48], rtol=1e-12)
    # another PV day: the same installed kWp, another PV energy
    winter = ml.multi_lec_members(day="2016-01-15")
    assert winter.table["pv_kwp"].equals(full.table["pv_kwp"])
    assert winter.lec_pv_kw.sum() < full.lec_pv_kw.sum()
    with pytest.raises(ValueError):
        ml.multi_lec_members(grid_min=7)
    with pytest.raises(ValueError, match="ends at 2017-01-01"):
        ml.multi_lec_members(day="2016-12-31", horizon_h=25)  # past the PV data
    with pytest.raises(ValueError, match="whole number of hours"):
        ml.multi_lec_members(horizon_h=24.5)


def test_a_horizon_of_several_days_repeats_the_load_day_and_follows_the_pv_calendar():
    """Three days from 26 May: each day's load is the IEEE day again; each day's PV is that calendar day's, the same
    as a one-day horizon of that day."""
    three = ml.multi_lec_members(horizon_h=72)
    assert three.n_steps == 288
    for k, day in enumerate(["2016-05-26", "2016-05-27", "2016-05-28"]):
        one = ml.multi_lec_members(day=day)
        days = slice(96 * k, 96 * (k + 1))
        np.testing.assert_array_equal(three.load_kw[:, days], one.load_kw)
        np.testing.assert_array_equal(three.pv_kw[:, days], one.pv_kw)
    assert not np.array_equal(three.pv_kw[:, :96], three.pv_kw[:, 96:192])  # the PV days differ
