"""The community battery on a pandapower net (``grid.source``): a real federation (its federate programs as threads on
HELICS's in-process core, ``harness.run_in_process``; results byte-identical to ``lec-cosim run``) whose
PCC power is the households', PV's and battery's plus the net's losses, whose voltages are those of an independent
pandapower ``runpp`` of Kerber's village grid, and whose bad grid inputs are one line, exit 2, nothing written."""

import hashlib
import json
import math
import random

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from harness import ROOT, run_in_process, write_scenario

from lec_cosim.models.battery_feeder import FeederLECGrid, community_of, households_on_points
from lec_cosim.models.feeder_source import load_feeder
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.scenario import load_scenario

SCENARIO = "kerber_dorfnetz_self_consumption"
NET = ROOT / "data" / "kerber" / "kerber_dorfnetz.json"
CHANGES = {"start": "2019-05-26T12:00:00", "horizon_h": 9}  # the battery takes the PV surplus and returns it at dusk


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_in_process(tmp_path_factory.mktemp("kerber"), SCENARIO, CHANGES)


def test_the_pcc_is_the_households_pv_and_battery_plus_the_losses(run):
    scenario, out = run
    signals = pd.read_csv(out / "signals.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(signals) == 36 and signals["time"].iloc[0] == "2019-05-26T12:00:00"
    # the households are the fleet's (the same aggregates as on the built-in grid)
    fleet = HouseholdFleet.from_scenario(scenario).power(scenario.start, 900, 36)
    np.testing.assert_allclose(signals["load_p_mw"], fleet["load_p_mw"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(signals["pv_p_mw"], fleet["pv_p_mw"], rtol=0, atol=1e-12)
    # every step: the external grid delivers the net load plus the lines' and the transformer's losses
    net_load = signals["load_p_mw"] - signals["pv_p_mw"] + signals["battery_p_mw"]
    np.testing.assert_allclose(signals["pcc_p_mw"], net_load + signals["losses_mw"], rtol=0, atol=1e-6)
    q = signals["load_q_mvar"] + signals["losses_mvar"]
    np.testing.assert_allclose(signals["pcc_q_mvar"], q, rtol=0, atol=1e-6)
    assert signals["battery_p_mw"].max() > 0.1 and signals["battery_p_mw"].min() < -0.01  # it charges, discharges
    assert signals["pcc_p_mw"].min() < -0.1  # and the LEC exports
    assert (signals["losses_mw"] > 0).all()
    k = summary["kpis"]
    assert summary["grid_source"] == f"pandapower: {NET}"
    assert k["grid_vm_max_pu"] == pytest.approx(signals["vm_max_pu"].max()) and k["grid_vm_max_pu"] > 1.02
    assert k["max_line_loading_percent"] == pytest.approx(signals["max_line_loading_percent"].max())
    assert k["max_trafo_loading_percent"] == pytest.approx(signals["trafo_loading_percent"].max())
    assert list(pd.read_csv(out / "pcc.csv").columns) == ["time", "p_mw", "q_mvar", "vm_pu", "lv_vm_pu",
                                                          "trafo_loading_percent", "losses_mw"]


def test_the_voltages_are_those_of_pandapower_on_kerbers_village_grid(run):
    """The step of the highest voltage solved again by pandapower's runpp on the net pandapower.networks builds (the
    shipped file's provenance: data/README.md), one household per house connection: household j plays load profile
    j mod 5."""
    scenario, out = run
    signals = pd.read_csv(out / "signals.csv")
    k = int(signals["vm_max_pu"].idxmax())
    step = signals.iloc[k]
    profiles = HouseholdFleet.from_scenario(scenario).profile_loads()
    start = pd.Timestamp(scenario.start) + pd.Timedelta(minutes=15 * k)
    per_profile = profiles.loc[start].to_numpy()  # 15-minute profiles: the step's mean is its row
    random.seed(2011)  # pandapower draws each service cable's type at random
    net = pn.create_kerber_dorfnetz()
    shipped = pp.from_json(str(NET))
    pd.testing.assert_frame_equal(net.line, shipped.line)
    assert len(net.load) == scenario.households.count == 57
    load = np.array([per_profile[j % 5] for j in range(57)])
    assert load.sum() == pytest.approx(step["load_p_mw"], abs=1e-12)
    net.load["p_mw"] = load
    net.load["q_mvar"] = load * math.tan(math.acos(0.97))
    for bus in net.load["bus"]:
        pp.create_sgen(net, bus, p_mw=step["pv_p_mw"] / 57)
    pp.create_storage(net, net.bus.index[net.bus["name"] == "main_busbar"][0], p_mw=step["battery_p_mw"],
                      max_e_mwh=0.5)
    pp.runpp(net, tolerance_mva=1e-10, numba=False)
    assert step["vm_max_pu"] == pytest.approx(net.res_bus["vm_pu"].max(), abs=1e-8)
    assert step["vm_min_pu"] == pytest.approx(net.res_bus["vm_pu"].min(), abs=1e-8)
    assert step["lv_vm_pu"] == pytest.approx(net.res_bus.at[1, "vm_pu"], abs=1e-8)
    assert step["pcc_p_mw"] == pytest.approx(net.res_ext_grid.at[0, "p_mw"], abs=1e-8)
    assert step["losses_mw"] == pytest.approx(net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum(), abs=1e-8)
    assert step["trafo_loading_percent"] == pytest.approx(net.res_trafo.at[0, "loading_percent"], abs=1e-5)
    assert step["max_line_loading_percent"] == pytest.approx(net.res_line["loading_percent"].max(), abs=1e-5)


def test_the_shipped_net_is_checksummed():
    digest = hashlib.sha256(NET.read_bytes()).hexdigest()
    assert f"{digest}  kerber/kerber_dorfnetz.json" in (ROOT / "data" / "SHA256SUMS").read_text().splitlines()


def test_households_are_spread_over_the_connection_points():
    """count // P each, the rest spread along the feeder (not bunched at its head)."""
    feeder = load_feeder(f"pandapower: {NET}")
    assert households_on_points(feeder, 57).eq(1).all()
    few = households_on_points(feeder, 5)
    assert few.sum() == 5 and few.max() == 1
    chosen = feeder.connections.loc[few.index[few > 0], "bus"]
    distance = pd.Series(pp.topology.calc_distance_to_bus(feeder.net, 0))
    assert distance[chosen].min() < distance.median() < distance[chosen].max()
    many = households_on_points(feeder, 120)
    assert many.sum() == 120 and set(many) == {2, 3} and (many == 3).sum() == 6


def no_source_net(path):
    net = pp.from_json(str(NET))
    net.ext_grid = net.ext_grid.iloc[0:0]
    pp.to_json(net, str(path))


BAD = [
    ({"grid.source": "pandapower: {tmp}/nowhere.json"}, "grid.source", "file not found"),
    ({"grid.source": "pandapower: {tmp}/no_source.json"}, "grid.source",
     "no_source.json: ext_grid: the grid model has exactly one source, found 0"),
    ({"grid.battery_bus": "bus_9_9"}, "grid.battery_bus", "'bus_9_9' is not a bus of pandapower: "),
    ({"grid.mv_line": {"length_km": 1, "r_ohm_per_km": 0.3, "x_ohm_per_km": 0.3, "max_i_ka": 0.3}}, "grid.mv_line",
     "the net of source has its own lines and transformer"),
]
CASES = [("validate", *case) for case in BAD] + [("run", *BAD[i]) for i in (1, 2)]


@pytest.mark.parametrize("command,changes,field,reason", CASES)
def test_a_bad_grid_is_one_line_and_exit_2(tmp_path, capsys, command, changes, field, reason):
    """Before any process starts: the command line in this process (as tests/test_bad_inputs.py)."""
    from lec_cosim.cli import main

    no_source_net(tmp_path / "no_source.json")
    changes = {key: value.format(tmp=tmp_path) if isinstance(value, str) else value for key, value in changes.items()}
    path = write_scenario(tmp_path, SCENARIO, {**CHANGES, **changes})
    extra = {"validate": [], "run": ["--out", str(tmp_path / "out")]}
    code = main([command, str(path), *extra[command]])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: {field}: ") and reason in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_the_three_backends_solve_the_same_feeder():
    """grid.solver on a source: pandapower's runpp, power-grid-model and OpenDSS give one result."""
    scenario = load_scenario(ROOT / "scenarios" / f"{SCENARIO}.yaml")
    results = {}
    for solver in ("pandapower", "power-grid-model", "opendss"):
        community = community_of(scenario)
        grid = FeederLECGrid(community, scenario.grid.model_copy(update={"solver": solver}))
        n = len(community.households)
        results[solver] = grid.solve(np.full(n, 0.004), np.full(n, 0.001), np.full(n, 0.006), 0.2)
    for solver in ("power-grid-model", "opendss"):
        for field in ("pcc_p_mw", "pcc_q_mvar", "lv_vm_pu", "vm_min_pu", "vm_max_pu", "losses_mw"):
            assert getattr(results[solver], field) == pytest.approx(getattr(results["pandapower"], field), abs=1e-8)
        assert results[solver].max_line_loading_percent == pytest.approx(
            results["pandapower"].max_line_loading_percent, abs=1e-5)
