"""The LEM's three-phase grid (``LemGrid``) on a feeder from any source: on the IEEE feeder read as a source it is the
IEEE feeder's grid exactly; on a SimBench grid it solves as pandapower solves the grid with the same powers."""

import copy

import numpy as np
import pandapower as pp
import pytest
from harness import ROOT

from lec_cosim.models.feeder_households import assign_devices, place_households
from lec_cosim.models.feeder_lines import read_line_ratings, reduced_model_buses
from lec_cosim.models.feeder_model import FeederSourceError
from lec_cosim.models.feeder_source import ieee_eu_lv_feeder, simbench_feeder, simbench_net
from lec_cosim.models.lem_participants import HEAD_BUS, participants, reduced_bus_numbering
from lec_cosim.models.opendss_feeder import opendss_feeder
from lec_cosim.models.three_phase_feeder import LemGrid

CODES = {code.upper(): code for code in read_line_ratings().index}
SIMBENCH_CODE = "1-LV-semiurb4--0-sw"  # 44 buses, 41 households: the grid the other tests read too


def states(grid, seed=3, n=3):
    rng = np.random.default_rng(seed)
    for scale in (1.0, 6.0, 0.3)[:n]:  # light, heavy (violations and overloads), very light
        load = rng.uniform(0, scale, len(grid.household_names))
        yield dict(load_kw=load, load_kvar=0.33 * load, pv_kw=rng.uniform(0, 8, len(grid.prosumer_names)),
                   chp_kw=rng.uniform(0, 10, len(grid.chp_names)))


def test_the_generic_reduction_rule_gives_the_ieee_feeders_110_buses():
    feeder = ieee_eu_lv_feeder()
    lines = feeder.net.line.drop(index=list(feeder.source_lines))
    loaded = set(feeder.connections["bus"])
    assert reduced_model_buses(lines["from_bus"], lines["to_bus"], HEAD_BUS, loaded) == list(reduced_bus_numbering())


@pytest.mark.parametrize("source", ["ieee_eu_lv", "opendss"])
def test_the_ieee_feeder_from_a_source_is_the_ieee_feeders_grid(source):
    """Voltages, losses, every violation count (full and reduced) and the DN impact equal the IEEE grid's, from the
    CSV source (identical to the last bit) and from the OpenDSS source (the same feeder read from OpenDSS files)."""
    table = participants()
    classic = LemGrid(table=table)
    if source == "opendss":
        feeder = opendss_feeder(ROOT / "data" / "ieee_eulv" / "opendss" / "Master.dss")
        index_of = {name: i for i, name in feeder.net.bus["name"].items()}
        table = table.assign(bus=[index_of[str(b)] for b in table["bus"]])
        # the OpenDSS files rate no line (OpenDSS's default 400 A): the IEEE grid's ratings, by the same line codes
        ratings = read_line_ratings()
        cables = feeder.net.line["linecode"].notna()
        feeder.net.line.loc[cables, "max_i_ka"] = ratings.loc[feeder.net.line.loc[cables, "linecode"].str.upper()
                                                              .map(CODES), "max_i_ka"].to_numpy()
    else:
        feeder = ieee_eu_lv_feeder()
    grid = LemGrid(feeder, table)
    assert grid.household_names == classic.household_names and grid.chp_names == classic.chp_names
    assert grid.bus_in_reduced.sum() == 110 and len(grid.line_names) == 905
    heavy = 0
    for state in states(classic):
        ours, theirs = (g.set_injections(**state) or g.solve() for g in (grid, classic))
        tolerance = 0.0 if source == "ieee_eu_lv" else 1e-9
        assert np.max(np.abs(ours.vm_pu.to_numpy() - theirs.vm_pu.to_numpy())) <= tolerance
        for field in ("bus_violations", "bus_violations_reduced", "angle_violations", "line_overloads",
                      "line_overloads_reduced"):
            assert getattr(ours, field) == getattr(theirs, field), field
        assert ours.dn_impact == pytest.approx(theirs.dn_impact, rel=1e-9, abs=tolerance)
        assert ours.p_loss_kw == pytest.approx(theirs.p_loss_kw, rel=1e-9)
        heavy += theirs.bus_violations > 0 and theirs.line_overloads > 0
    assert heavy >= 1  # the states cover violations and overloads


@pytest.fixture(scope="module")
def simbench():
    return simbench_feeder(SIMBENCH_CODE)


@pytest.mark.parametrize("solver", ["power-grid-model", "opendss"])
def test_a_simbench_grid_solves_as_pandapower_solves_it_with_the_households_powers(simbench, solver):
    """Balanced households (SimBench's connection points) with PV on half of them: the three-phase grid (with the
    placeholder zero-sequence data a balanced feeder gets) gives pandapower's balanced voltages and loadings, with
    either three-phase backend: the three backends agree on the local market's SimBench grid."""
    households = place_households(simbench)
    devices = assign_devices(simbench, households, pv={"share": 0.5, "kwp": 6.0})
    table = devices.reset_index().rename(columns={"household": "participant"})
    table = table.assign(kind=np.where(table["pv_kwp"] > 0, "prosumer", "consumer"), phase=table["phases"])
    grid = LemGrid(simbench, table[["participant", "kind", "bus", "phase"]], solver=solver)
    assert grid.reduced_model.endswith("junctions between them")
    original = simbench_net(SIMBENCH_CODE)
    original.sgen = original.sgen.iloc[0:0]
    for state in states(grid, n=2):
        grid.set_injections(load_kw=state["load_kw"], load_kvar=state["load_kvar"], pv_kw=state["pv_kw"])
        ours = grid.solve()
        net = copy.deepcopy(original)
        row = {name: i for i, name in net.load["name"].items()}
        for name, p, q in zip(grid.household_names, state["load_kw"], state["load_kvar"]):
            net.load.loc[row[name], ["p_mw", "q_mvar"]] = [p / 1000.0, q / 1000.0]
        for name, p in zip(grid.prosumer_names, state["pv_kw"]):
            pp.create_sgen(net, int(net.load.at[row[name], "bus"]), p_mw=p / 1000.0)
        pp.runpp(net, tolerance_mva=1e-10, numba=False)
        theirs = net.res_bus.loc[grid.lv_buses, "vm_pu"].to_numpy()
        assert np.max(np.abs(ours.vm_pu.to_numpy() - theirs[:, None])) < 1e-8
        lines = net.line.set_index("name").loc[list(grid.line_names)].index
        loading = net.res_line.set_axis(net.line["name"]).loc[lines, "loading_percent"].to_numpy()
        np.testing.assert_allclose(ours.line_loading_percent.to_numpy(), loading, rtol=1e-6)


def test_a_feeder_without_line_ratings_is_refused_naming_the_line(simbench):
    feeder = copy.deepcopy(simbench)
    feeder.net.line.loc[feeder.net.line.index[2], "max_i_ka"] = np.nan
    households = place_households(feeder)
    table = households.reset_index().rename(columns={"household": "participant"}).assign(
        kind="consumer", phase=lambda t: t["phases"])
    with pytest.raises(FeederSourceError, match=r"simbench: 1-LV-semiurb4--0-sw: line .*: no rating \(max_i_ka\)"):
        LemGrid(feeder, table[["participant", "kind", "bus", "phase"]])


def test_the_tutorials_feeder_solves_alike_with_both_three_phase_backends():
    """The tutorial's OpenDSS model (single-phase and three-phase houses, a Dyn11 transformer): power-grid-model and
    OpenDSS give the same voltages, loadings and losses with the households' powers, light and heavy. pandapower's
    three-phase flow is not set up for a source; OpenDSS's own solution of the model is the tutorial's check."""
    feeder = opendss_feeder(ROOT / "data" / "examples" / "own_feeder" / "Master.dss")
    households = place_households(feeder, ROOT / "data" / "examples" / "own_feeder" / "households.csv")
    devices = assign_devices(feeder, households, pv={"share": 0.5, "kwp": 6.0})
    table = devices.reset_index().rename(columns={"household": "participant"})
    table = table.assign(kind=np.where(table["pv_kwp"] > 0, "prosumer", "consumer"), phase=table["phases"])
    grids = [LemGrid(feeder, table[["participant", "kind", "bus", "phase"]], solver=solver)
             for solver in ("power-grid-model", "opendss")]
    assert {len(set(table["phase"]))} == {4}  # a, b, c and abc houses
    for state in states(grids[0], seed=5, n=2):
        ours, theirs = (g.set_injections(load_kw=state["load_kw"], load_kvar=state["load_kvar"],
                                         pv_kw=state["pv_kw"]) or g.solve() for g in grids)
        np.testing.assert_allclose(ours.vm_pu.to_numpy(), theirs.vm_pu.to_numpy(), atol=1e-6)
        np.testing.assert_allclose(ours.line_loading_percent.to_numpy(), theirs.line_loading_percent.to_numpy(),
                                   rtol=1e-5, atol=1e-6)
        assert ours.p_loss_kw == pytest.approx(theirs.p_loss_kw, rel=1e-5)
