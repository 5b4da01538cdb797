"""Copies of the IEEE feeder under one 11 kV bus (the scale scenarios): network, names, grid indicators."""

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.feeder_copies import (
    copy_bus,
    copy_name,
    feeder_of_bus,
    ieee_bus,
    replicate_feeder_net,
    replicate_participants,
)
from lec_cosim.models.ieee_eulv import build_ieee_eulv
from lec_cosim.models.lem_community import build_community
from lec_cosim.models.lem_grid import LemGrid
from lec_cosim.models.pgm_backend import PowerFlowNotConverged

from harness import ROOT

DATA = ROOT / "data" / "ieee_eulv"
PV_FILE = ROOT / "data" / "pv" / "simbench_PV_profiles_2016_15min.csv"
EVENING = 76


@pytest.fixture(scope="module")
def community():
    return build_community(DATA, "2016-05-26", PV_FILE, grid_min=15)


def _inject(grid: LemGrid, table: pd.DataFrame, community, step: int, copies: int) -> None:
    names = table["participant"].to_numpy()
    kinds = np.tile(community.kinds, copies)
    hh, pros = kinds != "chp", kinds == "prosumer"
    grid.set_injections(load_kw=pd.Series(np.tile(community.load_kw[:, step], copies)[hh], index=names[hh]),
                        load_kvar=pd.Series(np.tile(community.load_kvar[:, step], copies)[hh], index=names[hh]),
                        pv_kw=pd.Series(np.tile(community.pv_kw[:, step], copies)[pros], index=names[pros]),
                        chp_kw={name: 10.0 for name in grid.chp_names})


def test_replicated_net_has_one_transformer_and_feeder_per_copy():
    feeder = build_ieee_eulv(DATA, minute=None)
    net = replicate_feeder_net(feeder.net, 3)
    n_lv = int((feeder.net.bus["vn_kv"] < 1).sum())
    assert len(net.bus) == len(feeder.net.bus) + 2 * n_lv
    assert len(net.trafo) == 3 and set(net.trafo["hv_bus"]) == {0}
    assert net.trafo["lv_bus"].tolist() == [1, 1001, 2001]
    assert len(net.line) == len(feeder.net.line) + 2 * (len(feeder.net.line) - 1)  # one source impedance
    assert len(net.asymmetric_load) == 3 * 55 and net.asymmetric_load["name"].is_unique
    assert net.asymmetric_load["name"].iloc[55] == "F2_LOAD1"
    assert len(feeder.net.bus) == 908  # the feeder itself is not changed
    assert copy_name("LOAD7", 1) == "LOAD7" and copy_name("LOAD7", 3) == "F3_LOAD7"
    assert copy_bus(34, 3) == 2034 and feeder_of_bus(2034) == 3 and ieee_bus(2034) == 34
    with pytest.raises(ValueError, match="copies"):
        replicate_feeder_net(feeder.net, 0)


def test_copies_share_the_source_and_match_between_backends(community):
    copies = 3
    table = replicate_participants(community.table, copies)
    assert table["participant"].is_unique and table["feeder"].tolist().count(3) == 61
    results = {}
    for solver in ("power-grid-model", "pandapower"):
        grid = LemGrid(table=table, data_dir=DATA, step_h=0.25, solver=solver)
        _inject(grid, table, community, EVENING, copies)
        results[solver] = grid.solve()
    fast, ref = results["power-grid-model"], results["pandapower"]
    assert np.abs(fast.vm_pu.to_numpy() - ref.vm_pu.to_numpy()).max() < 1e-6
    assert fast.trafo_p_kw == pytest.approx(ref.trafo_p_kw, abs=1e-3)
    assert fast.p_loss_kw == pytest.approx(ref.p_loss_kw, rel=1e-6)
    # identical copies carry identical states: the voltages of every copy agree bus by bus
    vm = fast.vm_pu.to_numpy().reshape(copies, -1, 3)
    assert np.abs(vm - vm[0]).max() < 1e-12

    single = LemGrid(table=community.table, data_dir=DATA, step_h=0.25)
    _inject(single, community.table, community, EVENING, 1)
    one = single.solve()
    # three times the power through one source impedance: lower voltages, more than 3 x the losses
    assert fast.trafo_p_kw > 3 * one.trafo_p_kw
    assert fast.vm_max_pu < one.vm_max_pu and fast.vm_min_pu < one.vm_min_pu
    assert fast.p_loss_kw > 3 * one.p_loss_kw
    # counts add up per copy; the reduced model counts each copy's lines apart
    assert fast.bus_violations % copies == 0 and fast.line_overloads % copies == 0
    assert fast.line_overloads_reduced % copies == 0
    assert fast.line_overloads_reduced >= copies * one.line_overloads_reduced


def test_one_copy_is_the_feeder_itself(community):
    plain = LemGrid(table=community.table, data_dir=DATA, step_h=0.25)
    tagged = LemGrid(table=replicate_participants(community.table, 1), data_dir=DATA, step_h=0.25)
    for grid in (plain, tagged):
        _inject(grid, community.table, community, EVENING, 1)
    a, b = plain.solve(), tagged.solve()
    assert plain.n_feeders == tagged.n_feeders == 1
    assert np.array_equal(a.vm_pu.to_numpy(), b.vm_pu.to_numpy())
    assert a.dn_impact == b.dn_impact


def test_community_of_copies_repeats_the_players_and_their_bids():
    from lec_cosim.models.lem_community import read_learned_bids

    one = build_community(DATA, "2016-05-26", PV_FILE, grid_min=60)
    three = build_community(DATA, "2016-05-26", PV_FILE, grid_min=60, feeder_copies=3)
    assert len(three.table) == 3 * 61 and three.table["participant"].iloc[61] == "F2_LOAD1"
    assert three.table["feeder"].tolist() == [1] * 61 + [2] * 61 + [3] * 61
    assert np.array_equal(three.load_kw, np.tile(one.load_kw, (3, 1)))
    assert np.array_equal(three.pv_kw[122:], one.pv_kw)
    bids_file = ROOT / "scenarios" / "learned" / "ieee_eu_lv_lem_plain_bids.json"
    bids = read_learned_bids(bids_file, three, "plain")
    assert len(bids) == 18 and np.array_equal(bids["F3_CHP2"], read_learned_bids(bids_file, one, "plain")["CHP2"])


@pytest.mark.timeout(300)
def test_a_market_of_two_feeders_clears_like_one_at_twice_the_volume(tmp_path, tmp_path_factory):
    """Two identical feeders in one LEM: every order twice, so the same price at twice the volume, each
    copy's players settle like the originals, and the grid carries twice the power through one source.
    The one feeder: the local market's run other test files read too (12 h at hourly grid steps); the two feeders
    run in this process (``lec_cosim.inproc``: the federate programs and configs of ``lec-cosim run`` as threads on
    HELICS's in-process core, results byte-identical to a process run)."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from harness import SHARED_RUNS, shared_run, write_scenario

    from lec_cosim.inproc import run_inproc
    from lec_cosim.scenario import load_scenario

    base, changes, extra = SHARED_RUNS["lem_hourly_12h"]
    assert base == "ieee_eu_lv_lem_plain" and not extra
    (tmp_path / "in2").mkdir()
    path = write_scenario(tmp_path / "in2", base, {**changes, "name": "copies2", "feeder.copies": 2})
    with ThreadPoolExecutor(1) as pool:
        shared = pool.submit(shared_run, tmp_path_factory, "lem_hourly_12h")  # if not made yet: a process, meanwhile
        run_inproc(load_scenario(path), tmp_path / "out2", timeout_s=250)
        one_path, one_feeder = shared.result()
    assert load_scenario(one_path).feeder.copies == 1
    runs = {}
    for copies, out in ((1, one_feeder), (2, tmp_path / "out2")):
        runs[copies] = {name: pd.read_csv(out / f"{name}.csv") for name in ("clearing", "settlement", "grid")}
        runs[copies]["summary"] = json.loads((out / "summary.json").read_text())["kpis"]
    one, two = runs[1], runs[2]
    assert np.allclose(two["clearing"]["price"], one["clearing"]["price"], equal_nan=True)
    assert np.allclose(two["clearing"]["volume_kwh"], 2 * one["clearing"]["volume_kwh"], atol=1e-6)
    s1 = one["settlement"].set_index(["time", "participant"])
    s2 = two["settlement"].set_index(["time", "participant"])
    copy2 = s2[s2.index.get_level_values(1).str.startswith("F2_")].rename(index=lambda n: n[3:] if isinstance(n, str)
                                                                           and n.startswith("F2_") else n, level=1)
    assert len(copy2) == len(s1)
    assert np.allclose(copy2.loc[s1.index].to_numpy(), s1.to_numpy(), atol=1e-9)
    assert two["summary"]["total"]["cost_eur"] == pytest.approx(2 * one["summary"]["total"]["cost_eur"], rel=1e-9)
    # twice the power through the shared source impedance moves the 11 kV voltage (down under load, up
    # under reverse PV flow), so each feeder's losses shift a little from the single feeder's
    ratio = two["grid"]["p_loss_kw"] / (2 * one["grid"]["p_loss_kw"])
    assert np.all(np.abs(ratio - 1) < 0.02) and np.any(np.abs(ratio - 1) > 1e-4)
    balance = two["grid"]["trafo_p_kw"] - 2 * (one["grid"]["trafo_p_kw"] - one["grid"]["p_loss_kw"])
    assert np.allclose(balance, two["grid"]["p_loss_kw"], atol=1e-3)


@pytest.mark.timeout(300)
def test_the_shipped_thousand_household_scenario_runs(tmp_path):
    """scenarios/ieee_eu_lv_1045_households.yaml, its first two hours: 1,045 households and 114 CHPs trade (the
    federation in this process: ``harness.run_in_process``)."""
    import json

    from harness import run_in_process

    _, out = run_in_process(tmp_path, "ieee_eu_lv_1045_households", {"horizon_h": 2}, timeout_s=280)
    players = pd.read_csv(out / "participants.csv")
    assert len(players) == 19 * 61 and (players["kind"] != "chp").sum() == 1045
    assert len(pd.read_csv(out / "grid.csv")) == 8 and len(pd.read_csv(out / "clearing.csv")) == 2
    kpis = json.loads((out / "summary.json").read_text())["kpis"]
    assert kpis["lem_volume_kwh"] > 0


@pytest.mark.parametrize("step", [EVENING, 48])  # evening load; midday PV export
def test_copies_on_a_source_as_many_times_as_strong_are_each_the_one_feeder(community, step):
    """``source_strength`` k divides the 11 kV source impedance by k: k identical copies then draw k times the
    current through a k times smaller impedance, so every copy is the one feeder on the IEEE source (to the
    power flow's tolerance): the same voltages bus by bus, 1/k of the losses and transformer power each."""
    one = LemGrid(table=community.table, data_dir=DATA, step_h=0.25)
    _inject(one, community.table, community, step, 1)
    single = one.solve()
    copies = 3
    table = replicate_participants(community.table, copies)
    strong = LemGrid(table=table, data_dir=DATA, step_h=0.25, source_strength=copies)
    _inject(strong, table, community, step, copies)
    many = strong.solve()
    vm = many.vm_pu.to_numpy().reshape(copies, -1, 3)
    assert np.abs(vm - single.vm_pu.to_numpy()[None]).max() < 1e-8
    assert many.p_loss_kw == pytest.approx(copies * single.p_loss_kw, rel=1e-9)
    assert many.trafo_p_kw == pytest.approx(copies * single.trafo_p_kw, rel=1e-9)
    assert many.bus_violations == copies * single.bus_violations
    source = strong.net.line[strong.net.line["name"] == "Vsource_impedance"]
    original = one.net.line[one.net.line["name"] == "Vsource_impedance"]
    assert source["x_ohm_per_km"].iloc[0] == pytest.approx(original["x_ohm_per_km"].iloc[0] / copies, rel=1e-15)
    assert source["r0_ohm_per_km"].iloc[0] == pytest.approx(original["r0_ohm_per_km"].iloc[0] / copies, rel=1e-15)
    with pytest.raises(ValueError, match="source_strength"):
        replicate_feeder_net(one.net, 2, source_strength=0.0)


def test_sgens_added_at_once_are_pandapowers_one_by_one():
    """:func:`add_asymmetric_sgens` (one concat: 8,736 sgens of 182 copies in a second instead of two minutes)
    gives the rows ``pandapower.create_asymmetric_sgen`` gives one at a time: values, dtypes and indices."""
    import copy

    import pandapower as pp

    from lec_cosim.models.three_phase_feeder import add_asymmetric_sgens

    net = replicate_feeder_net(build_ieee_eulv(DATA, minute=None).net, 2)
    buses = np.array([34, 1034, 2, 1906, 34]), np.array([70, 1070])
    names = ["PV LOAD3", "PV F2_LOAD3", "PV LOAD1", "PV F2_LOAD55", "PV LOAD3b"], ["CHP1", "F2_CHP1"]
    one_by_one, at_once = copy.deepcopy(net), copy.deepcopy(net)
    rows = [[pp.create_asymmetric_sgen(one_by_one, int(b), name=n, type="wye") for b, n in zip(bs, ns)]
            for bs, ns in zip(buses, names)]
    assert [list(add_asymmetric_sgens(at_once, bs, ns)) for bs, ns in zip(buses, names)] == rows == [
        [0, 1, 2, 3, 4], [5, 6]]
    pd.testing.assert_frame_equal(at_once.asymmetric_sgen, one_by_one.asymmetric_sgen, check_exact=True)
    with pytest.raises(ValueError, match="not in the net"):
        add_asymmetric_sgens(at_once, [999_999], ["PV nowhere"])


def test_the_shipped_ten_thousand_household_scenario_is_planned_not_run():
    """scenarios/ieee_eu_lv_10k_households.yaml (a day takes minutes: docs/speed.md, not a test): 182 copies,
    10,010 households and 1,092 CHPs on a source ten times the IEEE one's, two participant federates sending one
    message each way an hour, and no allocation.csv (11,102 participants, above the 2,500 it is written up to)."""
    from lec_cosim.federation import plan
    from lec_cosim.scenario import load_scenario
    from lec_cosim.studies.local_market.results import writes_allocation
    from lec_cosim.studies.local_market.wiring import all_participants

    scenario = load_scenario(ROOT / "scenarios" / "ieee_eu_lv_10k_households.yaml")
    assert scenario.feeder.copies == 182 and scenario.feeder.source_strength == 10
    players = all_participants(scenario)
    assert len(players) == 182 * 61 and sum(not p.rsplit("_", 1)[-1].startswith("CHP") for p in players) == 10_010
    assert [f.name for f in plan(scenario)] == ["participants_1", "participants_2", "market", "dso", "recorder"]
    assert scenario.participants.messages == "per_group"
    assert not writes_allocation(scenario, len(players))
    thousand = load_scenario(ROOT / "scenarios" / "ieee_eu_lv_1045_households.yaml")
    assert writes_allocation(thousand, 19 * 61) and thousand.feeder.source_strength == 1.0


def test_flows_in_threads_are_the_flows_one_by_one(community):
    """``flow_threads``: the DSO's flows of an exchange run two at a time, each thread on its own engine; every
    indicator and per-bus array equals solving the steps one by one, to the last digit (two copies, five steps:
    the threads take steps 0, 2, 4 and 1, 3)."""
    copies, steps = 2, [EVENING, 48, 0, 30, 60]
    table = replicate_participants(community.table, copies)
    grids = {n: LemGrid(table=table, data_dir=DATA, step_h=0.25, source_strength=copies, flow_threads=n)
             for n in (1, 2)}
    one = grids[1]
    kinds = np.tile(community.kinds, copies)
    order = {name: i for i, name in enumerate(table["participant"])}
    columns = [[order[name] for name in names] for names in (one.household_names, one.prosumer_names, one.chp_names)]

    def rows(values):  # (steps, participants in the grid's order) of one kind
        return np.array([np.tile(values[:, k], copies) for k in steps])

    load, kvar, pv = rows(community.load_kw), rows(community.load_kvar), rows(community.pv_kw)
    chp = np.where(kinds == "chp", 10.0, 0.0)[None].repeat(len(steps), axis=0) * (np.arange(len(steps)) % 2)[:, None]
    args = (load[:, columns[0]], kvar[:, columns[0]], pv[:, columns[1]], chp[:, columns[2]])
    threaded = grids[2].solve_steps(*args)
    assert len(threaded) == len(steps)
    for j, result in enumerate(threaded):
        one.set_injections(load_kw=args[0][j], load_kvar=args[1][j], pv_kw=args[2][j], chp_kw=args[3][j])
        alone = one.solve()
        for field in ("vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "trafo_p_kw", "bus_violations",
                      "line_overloads", "dn_impact"):
            assert getattr(result, field) == getattr(alone, field), (j, field)
        assert np.array_equal(result.vm_pu_values, alone.vm_pu_values)
        assert np.array_equal(result.line_loading_values, alone.line_loading_values)
    assert grids[2].solve_steps(*(a[:1] for a in args))[0].vm_min_pu == threaded[0].vm_min_pu  # one step: no thread
    # a step without a solution (ten times the evening's load) fails the call once both threads are done, and the
    # engines serve the next call
    heavy = (args[0] * np.where(np.arange(len(steps)) == 3, 10.0, 1.0)[:, None], *args[1:])
    with pytest.raises(PowerFlowNotConverged):
        grids[2].solve_steps(*heavy)
    again = grids[2].solve_steps(*args)
    assert [r.vm_min_pu for r in again] == [r.vm_min_pu for r in threaded]
    with pytest.raises(ValueError, match="flow_threads"):
        LemGrid(table=table, data_dir=DATA, step_h=0.25, source_strength=copies, solver="opendss", flow_threads=2)
