"""Tests of the LEM grid (lec_cosim.models.lem_grid): line ratings, participant placement, grid indicators
of one three-phase power flow, and the linear DN-impact model of the bid learner against full power flows.

Real data throughout: the 2016-05-26 participants with the household loads scaled to the paper's 140 kW
hourly peak (PF 0.95 lagging). The linear model is built for three hours only (night, PV noon, evening
peak) to keep the runtime low; one build costs 21 power flows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.bidding import BiddingProblem, LemDay, day_profit, fitness
from lec_cosim.models.grid_extremes import BUS_EXTREMES_COLUMNS, LINE_PEAKS_COLUMNS, GridExtremes, read_grid_extremes
from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, _read_ieee_csv, build_ieee_eulv
from lec_cosim.models.lem_grid import (
    COMPONENTS,
    LINE_RATINGS_FILE,
    LemGrid,
    LinearDnImpactModel,
    dn_impact,
    hourly_injections,
    reactive_power_kvar,
    read_line_ratings,
)
from lec_cosim.models.lem_participants import participants

HOURS = (3, 12, 18)  # night, PV peak (reverse flow, high voltage), evening load peak
K = 6


@pytest.fixture(scope="module")
def feeder():
    return build_ieee_eulv(minute=None)


@pytest.fixture(scope="module")
def table():
    return participants()


@pytest.fixture(scope="module")
def grid(feeder, table):
    return LemGrid(feeder, table)


@pytest.fixture(scope="module")
def inj():
    return hourly_injections(load_peak_kw=140.0)


@pytest.fixture(scope="module")
def model(grid, inj):
    return LinearDnImpactModel.build(grid, inj, HOURS)


def schedules():
    mixed = np.array([[10, 0, 5], [0, 10, 10], [5, 5, 0], [10, 10, 10], [0, 0, 5], [10, 5, 0]], dtype=float)
    return {"off": np.zeros((K, 3)), "half": np.full((K, 3), 5.0), "full": np.full((K, 3), 10.0), "mixed": mixed,
            "random": np.random.default_rng(7).uniform(0.0, 10.0, (K, 3))}


def solve(grid, inj, hour, chp_kw):
    grid.set_injections(**inj.period(hour), chp_kw=dict(zip(grid.chp_names, chp_kw)))
    return grid.solve()


# --- data ----------------------------------------------------------------------------------------


def test_line_ratings_cover_every_line_code_and_are_checksummed():
    ratings = read_line_ratings()
    codes = _read_ieee_csv(DEFAULT_DATA_DIR / "csv" / "LineCodes.csv")["Name"]
    assert sorted(ratings.index) == sorted(codes)
    assert list(ratings.columns) == ["conductor", "cross_section_mm2", "max_i_ka", "source"]
    assert ratings["source"].str.contains("IEC 60364-5-52").all()
    # the feeder head, 4-core 70 mm2 Al XLPE: 138 A; the 16 mm2 Cu service cable: 95 A
    assert ratings.loc["4c_70", "max_i_ka"] == 0.138 and ratings.loc["2c_16", "max_i_ka"] == 0.095
    sums = (DEFAULT_DATA_DIR / "SHA256SUMS").read_text().splitlines()
    digest = hashlib.sha256(Path(LINE_RATINGS_FILE).read_bytes()).hexdigest()
    assert f"{digest}  line_ratings.csv" in sums


def test_hourly_injections_scaled_to_paper_peaks(inj):
    assert inj.load_kw.shape == (24, 55) and inj.pv_kw.shape == (24, 42)
    assert inj.load_kw.sum(axis=1).max() == pytest.approx(140.0)
    assert inj.load_scale == pytest.approx(140.0 / 38.9, rel=2e-3)
    assert inj.pv_kw.sum(axis=1).max() == pytest.approx(194.0)
    np.testing.assert_allclose(inj.load_kvar, inj.load_kw * np.tan(np.arccos(0.95)))
    assert inj.chp_capacity_kw.to_dict() == {f"CHP{i}": 10.0 for i in range(1, 7)}
    unscaled = hourly_injections(load_peak_kw=None)
    np.testing.assert_allclose(inj.load_kw, unscaled.load_kw * inj.load_scale)


def test_dn_impact_formula():
    assert dn_impact(2, 1, 3, 0.5, 0.25) == 6.75
    np.testing.assert_allclose(dn_impact(np.array([1, 0]), 0, np.array([0, 2]), np.array([1.0, 2.0]), 0.5), [2.5, 4.5])
    assert reactive_power_kvar(10.0) == pytest.approx(10.0 * np.tan(np.arccos(0.95)))


# --- LemGrid -------------------------------------------------------------------------------------


def test_participants_placed_on_their_bus_and_phase(grid, table):
    net = grid.net
    assert len(grid.household_names) == 55 and len(grid.prosumer_names) == 42 and grid.chp_names == tuple(
        f"CHP{i}" for i in range(1, 7))
    feeder_lines = net.line["name"] != "Vsource_impedance"
    assert net.line.loc[feeder_lines, "max_i_ka"].notna().all()
    assert net.line.loc[~feeder_lines, "max_i_ka"].isna().all()
    grid.set_injections(load_kw={"LOAD1": 2.0, "LOAD2": 3.0}, load_kvar={"LOAD1": 0.5}, pv_kw={"LOAD1": 4.0},
                        chp_kw={"CHP2": 9.0})
    grid._write()
    al, sg = net.asymmetric_load.set_index("name"), net.asymmetric_sgen.set_index("name")
    row = table.set_index("participant")
    ph1, ph2 = row.loc["LOAD1", "phase"], row.loc["LOAD2", "phase"]
    assert al.loc["LOAD1", f"p_{ph1}_mw"] == pytest.approx(0.002) and al.loc["LOAD1", f"q_{ph1}_mvar"] == 0.0005
    assert al.loc["LOAD2", f"p_{ph2}_mw"] == pytest.approx(0.003)
    assert al[[f"p_{p}_mw" for p in "abc"]].to_numpy().sum() == pytest.approx(0.005)
    assert sg.loc["PV LOAD1", "bus"] == row.loc["LOAD1", "bus"]
    assert sg.loc["PV LOAD1", f"p_{ph1}_mw"] == pytest.approx(0.004)
    assert sg.loc["PV LOAD1", [f"p_{p}_mw" for p in "abc"]].sum() == pytest.approx(0.004)
    assert sg.loc["CHP2", "bus"] == row.loc["CHP2", "bus"] == 248
    np.testing.assert_allclose(sg.loc["CHP2", [f"p_{p}_mw" for p in "abc"]].to_numpy(dtype=float), [0.003] * 3)
    assert sg.loc["CHP1", [f"p_{p}_mw" for p in "abc"]].sum() == 0.0
    with pytest.raises(KeyError):
        grid.set_injections(pv_kw={"LOAD4": 1.0})  # LOAD4 is a consumer: no PV
    with pytest.raises(KeyError):
        grid.set_injections(chp_kw={"CHP9": 1.0})
    with pytest.raises(ValueError):
        grid.set_injections(load_kw={"LOAD1": -1.0})


def test_power_balance_and_indicators_of_one_solve(grid, inj):
    hour = 18
    r = solve(grid, inj, hour, [10.0] * K)
    load, pv = inj.load_kw.iloc[hour].sum(), inj.pv_kw.iloc[hour].sum()
    # the transformer delivers load - PV - CHP + losses (feeder lines and transformer)
    # (to the power-flow tolerance, 1e-8 MVA per bus)
    assert r.trafo_p_kw == pytest.approx(load - pv - 60.0 + r.p_loss_kw, abs=1e-3)
    assert r.trafo_q_kvar == pytest.approx(inj.load_kvar.iloc[hour].sum() + r.q_loss_kvar, abs=1e-3)
    assert r.vm_pu.shape == (906, 3) and r.line_loading_percent.shape == (905,)
    assert r.vm_min_pu == r.vm_pu.to_numpy().min() and r.vm_max_pu == r.vm_pu.to_numpy().max()
    assert (r.va_deviation_degree.loc[1] == 0).all()
    # the evening peak overloads the 4-core 70 mm2 Al feeder head (138 A)
    assert r.line_overloads == int((r.line_loading_percent > 100).sum()) > 0
    assert r.line_loading_percent["LINE1"] > 100
    assert 0 < r.line_overloads_reduced < r.line_overloads
    assert r.trafo_loading_percent < 100
    assert r.dn_impact == pytest.approx(dn_impact(r.bus_violations, r.angle_violations, r.line_overloads,
                                                  r.p_loss_kw, r.q_loss_kvar))
    assert set(r.scalars()) >= {"vm_min_pu", "bus_violations_reduced", "dn_impact", "trafo_p_kw"}


def test_counts_with_tight_limits_and_reduced_model(feeder, table, inj):
    tight = LemGrid(feeder, table, vm_min_pu=0.99, vm_max_pu=1.05, va_max_deviation_degree=0.5,
                    max_loading_percent=60.0, step_h=0.25, violation_model="reduced")
    r = solve(tight, inj, 18, [10.0, 0.0, 10.0, 0.0, 10.0, 0.0])
    vm, dev = r.vm_pu.to_numpy(), r.va_deviation_degree.to_numpy()
    bus_viol = ((vm < 0.99) | (vm > 1.05)).any(axis=1)
    ang_viol = (np.abs(dev) > 0.5).any(axis=1)
    assert r.bus_violations == bus_viol.sum() > 0 and r.angle_violations == ang_viol.sum() > 0
    assert r.bus_violations_reduced == (bus_viol & tight.bus_in_reduced).sum() < r.bus_violations
    assert r.angle_violations_reduced == (ang_viol & tight.bus_in_reduced).sum() < r.angle_violations
    over = (r.line_loading_percent > 60.0).to_numpy()
    ids = tight.line_reduced_id[over]
    assert r.line_overloads_reduced == np.unique(ids[ids >= 0]).size  # transformer is at ~17 %
    # counts weighted by the 15-min step (a violation lasting an hour counts 1) plus loss energies
    assert r.dn_impact == pytest.approx(0.25 * (r.bus_violations_reduced + r.angle_violations_reduced
                                                + r.line_overloads_reduced) + 0.25 * (r.p_loss_kw + r.q_loss_kvar))
    assert r.dn_impact == pytest.approx(dn_impact(r.bus_violations_reduced, r.angle_violations_reduced,
                                                  r.line_overloads_reduced, 0.25 * r.p_loss_kw, 0.25 * r.q_loss_kvar,
                                                  0.25))


def test_grid_extremes_are_the_extremes_of_the_steps_added(feeder, table, inj, tmp_path):
    """Three real power flows (night, PV noon with the CHPs, evening peak) into GridExtremes, written and read
    back: every number is the extreme of the steps' own per-bus and per-line results."""
    band = (0.97, 1.06)
    tight = LemGrid(feeder, table, vm_min_pu=band[0], vm_max_pu=band[1], max_loading_percent=60.0)
    extremes = GridExtremes(tight)
    results = [solve(tight, inj, hour, chp) for hour, chp in ((3, [0.0] * K), (12, [10.0] * K), (18, [10.0] * K))]
    for r in results:
        extremes.add(r)
    written = extremes.write(tmp_path)
    assert [p.name for p in written] == ["bus_voltage_extremes.csv", "line_loading_peaks.csv"]
    buses, lines = read_grid_extremes(tmp_path)
    assert tuple(buses.columns) == BUS_EXTREMES_COLUMNS and tuple(lines.columns) == LINE_PEAKS_COLUMNS
    assert list(buses["bus"]) == list(range(1, 907)) and set(buses["feeder"]) == {1}

    # per bus: the lowest and highest phase voltage over the steps, exactly (the CSV round-trips)
    vm = np.stack([r.vm_pu.to_numpy() for r in results])  # (step, bus, phase)
    np.testing.assert_array_equal(buses["vm_min_pu"], vm.min(axis=(0, 2)))
    np.testing.assert_array_equal(buses["vm_max_pu"], vm.max(axis=(0, 2)))
    assert buses["vm_min_pu"].min() == min(r.vm_min_pu for r in results)
    assert buses["vm_max_pu"].max() == max(r.vm_max_pu for r in results)
    # out of band: exactly the buses some step counted, and their voltages really are outside the band
    out = buses[buses["out_of_band"]]
    assert set(out["bus"]) == set().union(*(r.violated_buses for r in results)) and len(out) > 0
    assert ((out["vm_min_pu"] < band[0]) | (out["vm_max_pu"] > band[1])).all()
    inside = buses[~buses["out_of_band"]]
    assert ((inside["vm_min_pu"] >= band[0]) & (inside["vm_max_pu"] <= band[1])).all()
    assert buses["steps_out_of_band"].sum() == sum(r.bus_violations for r in results)
    assert (buses["steps_out_of_band"] > 0).equals(buses["out_of_band"])

    # lines: the IEEE sections with their ends, then the transformer
    feeder_lines, trafo = lines[lines["kind"] == "line"], lines[lines["kind"] == "transformer"]
    ieee = _read_ieee_csv(DEFAULT_DATA_DIR / "csv" / "Lines.csv")
    assert list(feeder_lines["line"]) == [name.upper() for name in ieee["Name"]]
    assert list(feeder_lines["from_bus"]) == list(ieee["Bus1"]) and list(feeder_lines["to_bus"]) == list(ieee["Bus2"])
    peaks = np.max([r.line_loading_percent.to_numpy() for r in results], axis=0)
    np.testing.assert_array_equal(feeder_lines["loading_max_percent"], peaks)
    assert feeder_lines["loading_max_percent"].max() == max(r.max_line_loading_percent for r in results)
    assert list(trafo["line"]) == ["TR1"] and trafo["from_bus"].isna().all() and list(trafo["to_bus"]) == [1]
    assert trafo["loading_max_percent"].iat[0] == max(r.trafo_loading_percent for r in results)
    # overloaded: really above the limit in some step; the overload steps add up to the counts
    over = lines[lines["overloaded"]]
    assert len(over) > 0 and (over["loading_max_percent"] > 60.0).all()
    assert (lines.loc[~lines["overloaded"], "loading_max_percent"] <= 60.0).all()
    assert lines["steps_overloaded"].sum() == sum(r.line_overloads for r in results)
    assert extremes.steps == 3


def test_grid_extremes_need_a_step(grid, tmp_path):
    with pytest.raises(ValueError, match="no grid step"):
        GridExtremes(grid).write(tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert read_grid_extremes(tmp_path) is None


def test_reduced_line_ids(grid):
    ids = grid.line_reduced_id
    assert grid.bus_in_reduced.sum() == 110
    assert np.unique(ids[ids >= 0]).size == 109  # 110 buses, a tree: 109 equivalent lines
    assert (ids < 0).sum() == 205  # load-free spur sections (lem_participants: 205 pruned buses)
    assert ids[0] == ids[1]  # LINE1 and LINE2 are sections of the same chain from the head


# --- linear DN-impact model ----------------------------------------------------------------------


def test_linear_model_is_exact_at_the_operating_points_it_is_built_from(grid, inj, model):
    assert model.n_power_flows == 3 * (1 + K) and model.chp_names == grid.chp_names
    single = np.zeros((K, 3))
    single[2] = 10.0  # CHP3 alone at capacity
    for u in (np.zeros((K, 3)), single):
        comp = model.components_batch(u)
        for j, hour in enumerate(HOURS):
            r = solve(grid, inj, hour, u[:, j])
            # equal to the power-flow tolerance (1e-8 MVA mismatch; the start point differs)
            assert comp["p_loss_kw"][0, j] == pytest.approx(r.p_loss_kw, abs=1e-5)
            assert comp["q_loss_kvar"][0, j] == pytest.approx(r.q_loss_kvar, abs=1e-5)
            assert comp["vm_min_pu"][0, j] == pytest.approx(r.vm_min_pu, abs=1e-7)
            assert comp["vm_max_pu"][0, j] == pytest.approx(r.vm_max_pu, abs=1e-7)
            assert comp["trafo_p_kw"][0, j] == pytest.approx(r.trafo_p_kw, abs=1e-4)
            for name in ("bus_violations", "bus_violations_reduced", "line_overloads", "line_overloads_reduced"):
                assert comp[name][0, j] == getattr(r, name), name


@pytest.mark.parametrize("case", ["half", "full", "mixed", "random"])
def test_linear_model_matches_full_power_flow(grid, inj, model, case):
    u = schedules()[case]
    comp = model.components_batch(u)
    for j, hour in enumerate(HOURS):
        r = solve(grid, inj, hour, u[:, j])
        # measured: losses within 0.6 % (largest at night, when they are 0.1-0.4 kW), voltages 5e-5 pu
        assert comp["p_loss_kw"][0, j] == pytest.approx(r.p_loss_kw, rel=0.01)
        assert comp["q_loss_kvar"][0, j] == pytest.approx(r.q_loss_kvar, rel=0.015)
        assert comp["vm_min_pu"][0, j] == pytest.approx(r.vm_min_pu, abs=2e-4)
        assert comp["vm_max_pu"][0, j] == pytest.approx(r.vm_max_pu, abs=2e-4)
        assert comp["trafo_p_kw"][0, j] == pytest.approx(r.trafo_p_kw, abs=0.05)
        # counts: equal here (noon: ~100-230 buses above 1.1 pu; evening: the head cable overloaded)
        for name in ("bus_violations", "bus_violations_reduced", "angle_violations", "line_overloads",
                     "line_overloads_reduced"):
            assert comp[name][0, j] == getattr(r, name), (case, hour, name)
        assert comp["dn_impact"][0, j] == pytest.approx(r.dn_impact, rel=2e-3, abs=2e-3)


def test_penalty_batch_is_the_day_total_and_checks_its_input(model):
    rng = np.random.default_rng(3)
    u = rng.uniform(0.0, 10.0, (20, K, 3))
    u[0] = 0.0
    pen = model.penalty_batch(u)
    comp = model.components_batch(u)
    assert pen.shape == (20,) and set(comp) == set(COMPONENTS)
    assert all(v.shape == (20, 3) for v in comp.values())
    np.testing.assert_allclose(pen, comp["dn_impact"].sum(axis=1), rtol=1e-12)
    expected = dn_impact(comp["bus_violations"], comp["angle_violations"], comp["line_overloads"],
                         comp["p_loss_kw"], comp["q_loss_kvar"]).sum(axis=1)
    np.testing.assert_allclose(pen, expected, rtol=1e-12)
    np.testing.assert_allclose(model.penalty_batch(u[5]), pen[5:6], rtol=1e-12)
    table = model.hourly(u[5])
    assert list(table.index) == list(HOURS) and table["dn_impact"].sum() == pytest.approx(pen[5])
    with pytest.raises(ValueError, match="box"):
        model.penalty_batch(np.full((K, 3), 10.5))
    with pytest.raises(ValueError, match="shape"):
        model.penalty_batch(np.zeros((K, 4)))


def test_effective_outputs_reduce_only_with_other_chps_running(model):
    single = np.zeros((K, 3))
    single[1] = 10.0
    np.testing.assert_array_equal(model.effective_outputs(single)[0], single)
    ue = model.effective_outputs(np.full((K, 3), 10.0))[0]
    assert np.all(ue < 10.0) and np.all(ue > 9.5)


def test_bidding_problem_uses_the_batched_penalty(model, inj):
    hours = list(HOURS)
    consumers = [n for n in inj.load_kw.columns if n not in inj.pv_kw.columns]
    prosumers = list(inj.pv_kw.columns)
    day = LemDay(consumer_load_kwh=inj.load_kw.iloc[hours][consumers].to_numpy().T,
                 prosumer_load_kwh=inj.load_kw.iloc[hours][prosumers].to_numpy().T,
                 prosumer_pv_kwh=inj.pv_kw.iloc[hours].to_numpy().T, chp_capacity_kw=np.full(K, 10.0),
                 consumer_names=tuple(consumers), prosumer_names=tuple(prosumers), chp_names=model.chp_names)
    problem = BiddingProblem(day, dn_penalty=model)
    lower, upper = problem.bounds
    x = lower + (upper - lower) * np.random.default_rng(0).random((8, lower.size))
    x[0] = problem.truthful()
    batched = problem.evaluate(x)
    per_ant = [fitness(day_profit(day, problem.bids(xi)), lambda res: model(res)) for xi in x]
    np.testing.assert_allclose(batched, per_ant, rtol=1e-12, atol=1e-9)
    no_dn = BiddingProblem(day).evaluate(x)
    sold = np.stack([day_profit(day, problem.bids(xi)).chp_sold_kwh for xi in x])
    np.testing.assert_allclose(batched - no_dn, model.penalty_batch(sold), rtol=1e-9, atol=1e-9)
    assert isinstance(model.hourly(sold[0]), pd.DataFrame)
