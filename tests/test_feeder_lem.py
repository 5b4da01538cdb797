"""The local market on a SimBench grid (``feeder.source``): a real federation (its federate programs as threads on
HELICS's in-process core, ``harness.run_in_process``; results byte-identical to ``lec-cosim run``) whose
energies balance and equal the community's, whose DSO sees the grid the model solves, and whose bad feeder input
is one line, exit 2."""

import json

import pandas as pd
import pytest
from harness import run_in_process, write_scenario

from lec_cosim.models.feeder_source import load_feeder
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.models.three_phase_feeder import LemGrid

SCENARIO = "simbench_lv_semiurb4_lem_year"
CHANGES = {"start": "2016-05-26T00:00:00", "horizon_h": 6, "resolution.grid_min": 60,  # the morning PV ramp
           "resolution.exchange": "period"}  # hour by hour (the year exchanges whole days)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_in_process(tmp_path_factory.mktemp("simbench_lem"), SCENARIO, CHANGES)


def test_the_energies_balance_and_are_the_communitys(run):
    scenario, out = run
    kpis = json.loads((out / "summary.json").read_text())["kpis"]
    community = community_from_scenario(scenario)
    assert kpis["load_kwh"] == pytest.approx(community.load_kw.sum(), rel=1e-9)  # hourly steps: kW = kWh
    assert kpis["pv_kwh"] == pytest.approx(community.pv_kw.sum(), rel=1e-9)
    supply = kpis["pv_kwh"] + kpis["chp_kwh"] + kpis["grid_import_kwh"]
    assert kpis["load_kwh"] + kpis["grid_export_kwh"] == pytest.approx(supply, rel=1e-9)
    assert kpis["lem_volume_kwh"] > 0 and kpis["pv_kwh"] > 0
    assert len(community.names) == 41 + 6 and community.names[0] == "LV4_101_Load_1"


def test_the_dso_saw_the_grid_the_model_solves(run):
    """The recorded voltages of each hour are the generic LemGrid's, solved again from the community's powers and
    the CHPs' recorded output."""
    scenario, out = run
    community = community_from_scenario(scenario)
    grid = LemGrid(load_feeder(scenario.feeder.source), community.table, solver=scenario.grid.solver,
                   violation_model=scenario.grid.dn_impact_counts)
    table = pd.read_csv(out / "grid.csv")
    settled = pd.read_csv(out / "settlement.csv")
    chp = settled.pivot(index="time", columns="participant", values="chp_kwh")  # hourly: kWh = mean kW
    homes = community.table["kind"].to_numpy() != "chp"
    for k in range(len(table)):
        grid.set_injections(load_kw=community.load_kw[homes, k], load_kvar=community.load_kvar[homes, k],
                            pv_kw=community.pv_kw[community.table["kind"].to_numpy() == "prosumer", k],
                            chp_kw=chp.iloc[k][list(grid.chp_names)].to_numpy(dtype=float))
        result = grid.solve()
        assert table.filter(like="vm_min").iloc[k, 0] == pytest.approx(result.vm_min_pu, abs=1e-9)
        assert table.filter(like="vm_max").iloc[k, 0] == pytest.approx(result.vm_max_pu, abs=1e-9)


def unrated_net(path):
    """A small pandapower feeder whose second cable has no rating."""
    import pandapower as pp

    net = pp.create_empty_network()
    buses = [pp.create_bus(net, vn) for vn in (20.0, 0.4, 0.4, 0.4)]
    pp.create_ext_grid(net, buses[0])
    pp.create_transformer_from_parameters(net, buses[0], buses[1], sn_mva=0.25, vn_hv_kv=20.0, vn_lv_kv=0.4,
                                          vk_percent=6.0, vkr_percent=1.2, pfe_kw=0.0, i0_percent=0.0,
                                          shift_degree=150.0, vector_group="Dyn")
    for a, b, rating in ((1, 2, 0.27), (2, 3, float("nan"))):
        pp.create_line_from_parameters(net, buses[a], buses[b], 0.1, 0.2, 0.08, 0.0, rating, name=f"cable {b}")
    for bus in (2, 3):
        pp.create_load(net, buses[bus], p_mw=0.005, name=f"house {bus}")
    pp.to_json(net, str(path))


BAD = [
    ({"feeder.source": "pandapower: nowhere.json"}, "feeder.source", "nowhere.json: file not found"),
    ({"feeder.source": "simbench: 1-LV-nowhere--0-sw"}, "feeder.source", "not a SimBench code"),
    ({"feeder.data_dir": "../data/ieee_eulv"}, "feeder", "give data_dir (the IEEE European LV feeder) or source"),
    ({"feeder.households.pv_share": 1.5}, "feeder.households.pv_share", "less than or equal to 1"),
    ({"grid.solver": "pandapower"}, "grid.solver", "not set up for a feeder.source"),
    ({"feeder.source": "pandapower: {tmp}/unrated.json", "feeder.households.load_file": "{tmp}/houses.csv",
      "participants.chp.count": 1, "participants.pv.peak_kw": 5}, "feeder.source", "line cable 3: no rating"),
    ({"feeder.households.load_file": "{tmp}/meters.csv"}, "data", "meters.csv: column 'LV4.101 Load 1' missing"),
    ({"feeder.households.mapping_file": "{tmp}/nowhere.csv"}, "feeder.households.mapping_file", "file not found"),
    ({"participants.chp.count": 50}, "data", "count 50 is not between 0 and the 41 households"),
]
# every case through validate; through run and runner, what only the community (6) or the DSO's grid (5) finds
CASES = [("validate", *case) for case in BAD] + [(command, *BAD[i]) for command in ("run", "runner") for i in (5, 6)]


@pytest.mark.parametrize("command,changes,field,reason", CASES)
def test_a_bad_feeder_is_one_line_and_exit_2(tmp_path, capsys, command, changes, field, reason):
    """Before any process starts, whichever command: also what only the community or the DSO's grid finds. The
    command line in this process (``main``, as ``tests/test_bad_inputs.py``): a process per case cost seconds."""
    from lec_cosim.cli import main

    unrated_net(tmp_path / "unrated.json")
    (tmp_path / "meters.csv").write_text("time,somebody\n2016-05-26T00:00,1\n2016-05-26T00:15,1\n")
    times = pd.date_range("2016-05-26", periods=4 * 24, freq="15min").strftime("%Y-%m-%dT%H:%M")
    pd.DataFrame({"time": times, "house 2": 0.5, "house 3": 0.7}).to_csv(tmp_path / "houses.csv", index=False)
    changes = {key: value.format(tmp=tmp_path) if isinstance(value, str) else value for key, value in changes.items()}
    path = write_scenario(tmp_path, SCENARIO, {**CHANGES, **changes})
    extra = {"validate": [], "run": ["--out", str(tmp_path / "out")], "runner": ["-o", str(tmp_path / "r.json")]}
    code = main([command, str(path), *extra[command]])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: {field}") and reason in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.json").exists()
