"""The three-LEC study on a feeder from any source: the split into LECs by topology, the members and their
batteries, the grid the DSO solves (three backends), and bad input. The federations themselves run on the
SimBench grid in ``tests/test_end_to_end_mlec.py``."""

import copy
import datetime as dt

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from harness import ROOT, write_scenario

from lec_cosim.models.feeder_community import build_feeder_community
from lec_cosim.models.feeder_households import place_households
from lec_cosim.models.feeder_model import Feeder
from lec_cosim.models.feeder_source import ieee_eu_lv_feeder, load_feeder
from lec_cosim.models.lec_split import feeder_tree, lec_parts, split_into_lecs
from lec_cosim.models.multi_lec import multi_lec_members_on_feeder
from lec_cosim.models.multi_lec_feeder import MultiLecGrid

SCENARIO = "simbench_lv_urban6_three_lecs"
SIMBENCH = "simbench: 1-LV-urban6--0-sw"
PV_FILE = ROOT / "data" / "pv" / "simbench_PV_profiles_2016_15min.csv"
DAY = dt.datetime(2016, 5, 26)


@pytest.fixture(scope="module")
def feeder():
    return load_feeder(SIMBENCH)


def members_on(feeder):
    """The shipped scenario's members: its households (no CHPs) with 194 kW of PV sized on 26 May, one day."""
    community = build_feeder_community(feeder, DAY, PV_FILE, pv_peak_kw=194.0, pv_sizing_day="2016-05-26", chp_count=0)
    return multi_lec_members_on_feeder(feeder, community, DAY)


@pytest.fixture(scope="module")
def members(feeder):
    return members_on(feeder)


def test_the_ieee_feeder_read_as_a_source_splits_as_the_ieee_feeder():
    """The generic tree (depth-first ranks, pandapower buses) gives the IEEE feeder's own split for 2 to 5 LECs:
    the same households in the same LECs, numbered alike."""
    feeder = ieee_eu_lv_feeder()
    tree = feeder_tree(feeder, place_households(feeder))
    for n in (2, 3, 4, 5):
        ours, theirs = split_into_lecs(n, tree), split_into_lecs(n)
        assert dict(zip(ours["load"], ours["lec"])) == dict(zip(theirs["load"], theirs["lec"])), n
    counts = split_into_lecs(3, tree)["lec"].value_counts().sort_index()
    assert list(counts) == [19, 13, 23]


def test_the_simbench_grid_splits_into_connected_disjoint_lecs(feeder, members):
    split = members.table[members.table["kind"] == "household"]
    assert list(split["lec"].value_counts().sort_index()) == [45, 28, 38]
    households = place_households(feeder)
    tree = feeder_tree(feeder, households.set_axis(households.index.str.replace(r"[^A-Za-z0-9_-]+", "_",
                                                                                regex=True)))
    parts = lec_parts(split.rename(columns={"member": "load"}), tree)
    names = list(parts)
    assert all(not (parts[a] & parts[b]) for i, a in enumerate(names) for b in names[i + 1:])
    for lec, buses in parts.items():
        # a connected piece: every bus but the part's top has its parent inside the part
        tops = [b for b in buses if tree.parent[b] not in buses]
        assert len(tops) == 1, lec
        assert set(split.loc[split["lec"] == lec, "bus"]) <= buses
    # the neighbour graph follows the feeder: lec2 and lec3 meet only through lec1
    assert members.neighbours == [("lec1", "lec2"), ("lec1", "lec3")]


def test_the_members_are_the_sources_households_with_the_ieee_rules_for_batteries(feeder, members):
    table = members.table
    homes = table[table["kind"] == "household"]
    assert len(homes) == len(feeder.connections) == 111
    # the day's load is the source's own for the day (15-minute profiles, no scaling)
    day = feeder.load_p_kw.loc["2016-05-26"]
    assert members.load_kw.sum() / 4 == pytest.approx(day.to_numpy().sum() / 4, rel=1e-12)
    # PV on 76 % of the households with one common kWp
    pv = homes[homes["pv_kwp"] > 0]
    assert len(pv) == round(0.76 * 111) and pv["pv_kwp"].nunique() == 1
    for lec in members.lec_names:
        mine = homes[homes["lec"] == lec]
        prosumers = mine[mine["pv_kwp"] > 0]
        # every second prosumer along the feeder has a home battery
        assert (mine["battery_kwh"] > 0).sum() == len(prosumers) // 2
        assert set(mine.loc[mine["battery_kwh"] > 0, "member"]) <= set(prosumers["member"])
        # the community battery stores two hours of the LEC's mean load (whole kWh)
        rows = table["lec"].to_numpy() == lec
        mean_kw = members.load_kw[rows].sum(axis=0).mean()
        battery = table[(table["kind"] == "community_battery") & (table["lec"] == lec)].iloc[0]
        assert battery["battery_kwh"] == round(2 * mean_kw) and battery["battery_kw"] == battery["battery_kwh"] / 2


def test_the_three_backends_solve_the_lecs_grid_alike(feeder, members):
    """power-grid-model and OpenDSS on the three-phase model, and pandapower's own balanced power flow on the
    SimBench net with the same (balanced) powers: the same voltages within 1e-6 pu."""
    battery_kw = np.array([6.0, -4.0, 3.0])
    results = {}
    for solver in ("power-grid-model", "opendss"):
        grid = MultiLecGrid(members, feeder=feeder, solver=solver)
        results[solver] = grid.solve_step(50, community_battery_kw=battery_kw)
    a, b = results["power-grid-model"], results["opendss"]
    np.testing.assert_allclose(a.grid.vm_pu.to_numpy(), b.grid.vm_pu.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(a.lec_net_import_kw, b.lec_net_import_kw, atol=1e-9)
    assert a.p_loss_kw == pytest.approx(b.p_loss_kw, abs=1e-3)

    net = copy.deepcopy(feeder.net)
    net.load = net.load.iloc[0:0]
    net.sgen = net.sgen.iloc[0:0]
    for bus, p_kw, q_kvar in zip(grid.members.table["bus"][grid._household_rows], a.household_net_kw,
                                 a.household_kvar):
        pp.create_load(net, int(bus), p_mw=p_kw / 1000.0, q_mvar=q_kvar / 1000.0)
    for bus, p_kw in zip(grid.battery_bus, battery_kw):
        pp.create_load(net, int(bus), p_mw=-p_kw / 1000.0)
    pp.runpp(net, tolerance_mva=1e-10)
    lv = a.grid.vm_pu.index
    for phase in a.grid.vm_pu.columns:
        np.testing.assert_allclose(a.grid.vm_pu[phase].to_numpy(), net.res_bus.loc[lv, "vm_pu"].to_numpy(), atol=1e-6)
    assert a.trafo_p_kw == pytest.approx(1000 * net.res_trafo["p_hv_mw"].iloc[0], abs=1e-2)


def test_a_meshed_feeder_is_refused_by_the_split():
    net = pp.create_empty_network()
    buses = [pp.create_bus(net, vn) for vn in (20.0, 0.4, 0.4, 0.4)]
    pp.create_ext_grid(net, buses[0])
    pp.create_transformer(net, buses[0], buses[1], "0.25 MVA 20/0.4 kV")
    for a, b in ((1, 2), (2, 3), (3, 1)):
        pp.create_line(net, buses[a], buses[b], 0.1, "NAYY 4x150 SE")
    connections = pd.DataFrame({"bus": [2, 3], "phases": "abc", "table": "load", "row": [0, 1]},
                               index=["house 2", "house 3"])
    meshed = Feeder(name="ring", source="pandapower: ring.json", net=net, connections=connections)
    with pytest.raises(ValueError, match="pandapower: ring.json: the split into LECs follows a radial feeder; this "
                       r"one is meshed \(3 lines between 3 buses\)"):
        feeder_tree(meshed, place_households(meshed))


BAD = [
    ({"dso.solver": "pandapower"}, "dso.solver", "not set up for a feeder.source"),
    ({"feeder.households.mapping_file": "{tmp}/mapping.csv"}, "feeder.households.mapping_file",
     "mapping.csv: row 3: connection 'LV6.nowhere' is not a connection point of the feeder"),
    ({"ev": {"count": 200, "mode": "smart", "mobility_dir": str(ROOT / "data" / "ev")}}, "ev.count",
     "200 EVs for 111 homes"),
    ({"lecs.count": 5, "feeder.households.mapping_file": "{tmp}/two.csv"}, "data",
     "the feeder cannot be split into 5 LECs along its branches"),
]


@pytest.mark.parametrize("changes,field,reason", BAD)
def test_bad_three_lec_input_on_a_source_is_one_line_and_exit_2(tmp_path, capsys, changes, field, reason):
    from lec_cosim.cli import main

    (tmp_path / "mapping.csv").write_text("household,connection\nhome 1,LV6.201 Load 16\nhome 2,LV6.nowhere\n")
    (tmp_path / "two.csv").write_text("household,connection\nhome 1,LV6.201 Load 16\nhome 2,LV6.201 Load 24\n")
    changes = {key: value.format(tmp=tmp_path) if isinstance(value, str) else value for key, value in changes.items()}
    options = [part for key in list(changes) if key.startswith("--") for part in (key, changes.pop(key))]
    path = write_scenario(tmp_path, SCENARIO, changes)
    code = main(["validate", str(path), *options])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: {field}") and reason in err, err


def test_the_source_households_hold_through_the_command_lines_overrides(tmp_path):
    """The homes a device may take are the households counted when the file was read, also once --framework
    has made the scenario anew: the EV federate is planned for the 111 homes."""
    import json

    from lec_cosim.cli import main

    ev = {"count": 20, "mode": "smart", "mobility_dir": str(ROOT / "data" / "ev")}
    path = write_scenario(tmp_path, SCENARIO, {"ev": ev})
    assert main(["runner", str(path), "--framework", "distributed", "-o", str(tmp_path / "r" / "runner.json")]) == 0
    config = json.loads((tmp_path / "r" / "configs" / "ev_charging.json").read_text())
    assert config["lec_cosim"]["homes"] == 111


@pytest.mark.parametrize("name,fields", [("ieee_eu_lv_three_lecs", ["data_dir", "load_peak_kw"]),
                                         ("ieee_eu_lv_lem_plain", ["data_dir", "load_peak_kw", "copies"])])
def test_a_scenario_on_the_ieee_feeder_is_written_as_before_sources_existed(name, fields):
    """A feeder section without a source writes no source fields: scenario.json and its hash in the manifest stay
    those of the runs before feeder sources."""
    from lec_cosim.scenario import load_scenario

    assert list(load_scenario(ROOT / "scenarios" / f"{name}.yaml").model_dump(mode="json")["feeder"]) == fields


@pytest.mark.parametrize("pool", ["ems", "pool_operator"])
def test_p2p_on_a_source_gives_every_household_its_endpoint_and_its_own_lecs_market(tmp_path, pool):
    """The p2p federation on the SimBench grid, as planned: each of the 111 households has a member endpoint
    named safely (``LV6.201 Load 16`` -> ``mlec/member/LV6_201_Load_16``) that every LEC_EMS can answer (as on
    the IEEE feeder: it answers those who bid in its market), and each pool operator exactly its own LEC's
    households."""
    import re

    from lec_cosim.scenario import load_scenario
    from lec_cosim.studies.three_lecs.wiring import plan

    scenario = load_scenario(write_scenario(tmp_path, SCENARIO, {"framework": "p2p", "p2p.market": pool}))
    plans = {p.name: p for p in plan(scenario)}
    homes = dict(plans["households"].endpoint_ports)
    assert homes.pop("meter") == "mlec/households/meter"  # where it measures the LEC_EMSs' batteries from
    assert len(homes) == 111 and all(re.fullmatch(r"mlec/member/[A-Za-z0-9_-]+", e) for e in homes.values())
    assert "LV6_201_Load_16" in homes
    table = members_on(load_feeder(SIMBENCH)).table
    lec_of = table[table["kind"] == "household"].set_index("member")["lec"]
    assert set(homes) == set(lec_of.index)
    for lec in ("lec1", "lec2", "lec3"):
        assert plans[f"lec_ems_{lec[3:]}"].targets["members"] == homes
        if pool == "pool_operator":
            assert set(plans[f"pool_operator_{lec[3:]}"].targets["results"]) == set(lec_of[lec_of == lec].index)
    assert plans["households"].targets["market"] == {lec: f"mlec/{lec}/market" for lec in ("lec1", "lec2", "lec3")}
