"""A block of grid steps at once (the fixed point's solve_block, LemGrid.solve_block, GridExtremes.add_block, the
IEEE feeder's DSO adapter) against the same steps one at a time: the same numbers to the last digit.

The steps are a real day of the 2016-05-26 community at 15 minutes, its powers scaled by 0.3, 1.0, 2.2 and 3.2 in
turn (the heaviest far outside the voltage band and the lines' ratings) with CHP outputs drawn once. The lone
flow of the reference is the per-state algorithm the fixed point had before its block path (one gemv per state,
``np.add.at`` for the powers), copied here: a block's states must give its numbers, wherever they sit in it.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_pgm_backend import DATA, community  # noqa: F401 (a fixture)

from lec_cosim.models import fixed_point_backend as fp
from lec_cosim.models.grid_extremes import GridExtremes
from lec_cosim.models.ieee_eulv import build_ieee_eulv
from lec_cosim.models.lem_grid import LemGrid
from lec_cosim.models.pgm_backend import PowerFlowArrays

LEVELS = (0.3, 1.0, 2.2, 3.2)
STEPS = 96
FIELDS = tuple(PowerFlowArrays.__dataclass_fields__)
SCALARS = ("vm_min_pu", "vm_max_pu", "bus_violations", "bus_violations_reduced", "angle_violations",
           "angle_violations_reduced", "line_overloads", "line_overloads_reduced", "max_line_loading_percent",
           "trafo_loading_percent", "p_loss_kw", "q_loss_kvar", "trafo_p_kw", "trafo_q_kvar", "step_h",
           "violation_model", "dn_impact")


@pytest.fixture(scope="module")
def feeder():
    return build_ieee_eulv(DATA, minute=None)


@pytest.fixture(scope="module")
def grids(feeder, community):  # noqa: F811
    """The fixed point with the default limits (counts of the full feeder), and with a 0.6 degree angle band
    (angle violations: the angles computed the lone step's way) counting the reduced model."""
    grids = {"full": LemGrid(feeder, community.table, data_dir=DATA, step_h=0.25, solver="fixed-point"),
             "reduced": LemGrid(feeder, community.table, data_dir=DATA, step_h=0.25, solver="fixed-point",
                                violation_model="reduced", va_max_deviation_degree=0.6)}
    for grid in grids.values():  # every block solved: the same steps again in other blocks are what is tested
        grid.recent_steps = 0
    return grids


@pytest.fixture(scope="module")
def day(grids, community):  # noqa: F811
    """(steps, players) arrays of the day in the grid's order: load_kw, load_kvar, pv_kw, chp_kw."""
    grid = grids["full"]
    names = list(community.names)
    rows = {kind: [names.index(n) for n in getattr(grid, f"{kind}_names")] for kind in ("household", "prosumer")}
    level = np.resize(LEVELS, STEPS)[:, None]
    chp = np.random.default_rng(7).uniform(0.0, 10.0, (STEPS, len(grid.chp_names)))
    return (community.load_kw[rows["household"], :STEPS].T * level,
            community.load_kvar[rows["household"], :STEPS].T * level,
            community.pv_kw[rows["prosumer"], :STEPS].T * level, chp)


@pytest.fixture(scope="module")
def alone(grids, day):
    """Each grid's LemGridResult of every step, solved one at a time."""
    out = {}
    for name, grid in grids.items():
        out[name] = []
        for j in range(STEPS):
            grid.set_injections(**dict(zip(("load_kw", "load_kvar", "pv_kw", "chp_kw"), (a[j] for a in day))))
            out[name].append(grid.solve())
    return out


def _lone_flow(engine: fp.FixedPointPowerFlow, powers: dict) -> PowerFlowArrays | None:
    """One state's flow as the fixed point computed it before its block path (a copy of that code): the powers
    summed by ``np.add.at``, ``Z @ I`` and ``z_all[k] @ i012[k]`` per state (gemv), the rest per state."""
    s = np.zeros((3, engine._n_loaded), dtype=complex)
    scales = engine._scales()
    for table_name in engine._tables:
        p, q = (np.asarray(v, dtype=float) for v in powers[table_name])
        power = (p + 1j * q) * scales[table_name][:, None]
        for phase in range(3):
            np.add.at(s[phase], engine._positions[table_name], power[:, phase])
    s = s.reshape(-1) / engine._base_mva
    z, v_nl, v, injected = engine._z, engine._v_noload, engine._v_noload, -s
    for _ in range(engine.max_iterations):
        v_next = v_nl + z @ np.conj(injected / v)
        change = np.abs(v_next - v).max()
        v = v_next
        if change < engine.tolerance_pu:
            break
    else:
        return None
    currents, n = np.conj(injected / v), engine._n_loaded
    i012 = fp._A_INV @ currents.reshape(3, n)
    v012 = engine._v_noload_012 + np.stack([engine._z_all[k] @ i012[k] for k in range(3)])
    v_abc = fp._A @ v012
    i_from = fp._A @ np.stack([engine._yf[k] @ v012[k] for k in range(3)])
    i_to = fp._A @ np.stack([engine._yt[k] @ v012[k] for k in range(3)])
    s_from = (v_abc[:, engine._from_bus] * np.conj(i_from)).T * engine._base_mva
    s_to = (v_abc[:, engine._to_bus] * np.conj(i_to)).T * engine._base_mva
    ka_from = np.abs(i_from).T * engine._ka_from[:, None]
    ka_to = np.abs(i_to).T * engine._ka_to[:, None]
    v = v_abc.T[engine._bus_rows]
    lines, trafos = engine._lines, engine._trafos
    return PowerFlowArrays(
        vm_pu=np.abs(v), va_degree=np.angle(v, deg=True),
        line_p_from_mw=s_from[lines].real, line_q_from_mvar=s_from[lines].imag,
        line_p_to_mw=s_to[lines].real, line_q_to_mvar=s_to[lines].imag,
        line_i_from_ka=ka_from[lines], line_i_to_ka=ka_to[lines],
        trafo_p_hv_mw=s_from[trafos].real, trafo_q_hv_mvar=s_from[trafos].imag,
        trafo_p_lv_mw=s_to[trafos].real, trafo_q_lv_mvar=s_to[trafos].imag,
        trafo_i_hv_ka=ka_from[trafos], trafo_i_lv_ka=ka_to[trafos])


def _powers(grid: LemGrid, day, j: int) -> dict:
    grid.set_injections(**dict(zip(("load_kw", "load_kvar", "pv_kw", "chp_kw"), (a[j] for a in day))))
    return grid._phase_powers()


def _blocks(order):
    """The steps ``order`` in blocks of 1, 2, 4 and the rest: each step alone, and inside blocks of other sizes
    at other positions."""
    return [order[:1], order[1:3], order[3:7], order[7:]]


def test_a_block_of_states_gives_each_the_lone_flow_to_the_last_digit(grids, day):
    grid = grids["full"]
    powers = [_powers(grid, day, j) for j in range(STEPS)]
    engine = grid._engine(powers[0])
    reference = [_lone_flow(engine, p) for p in powers]
    assert all(r is not None for r in reference)
    for order in (np.arange(STEPS), np.random.default_rng(3).permutation(STEPS)):
        for block in [order, *_blocks(order)]:
            for j, flow in zip(block, engine.solve_many([powers[j] for j in block])):
                for field in FIELDS:
                    mine, theirs = getattr(flow, field), getattr(reference[j], field)
                    assert np.array_equal(mine, theirs) and mine.strides == theirs.strides, (j, field)


def test_without_numpys_matvec_the_products_are_the_same(grids, day, monkeypatch):
    """numpy before 2.2 has no matvec: a loop of the same gemv products, the same numbers."""
    grid = grids["full"]
    powers = [_powers(grid, day, j) for j in range(0, STEPS, 9)]
    engine = grid._engine(powers[0])
    with_matvec = engine.solve_many(powers)
    monkeypatch.setattr(fp, "_NP_MATVEC", None)
    for mine, theirs in zip(engine.solve_many(powers), with_matvec):
        assert all(np.array_equal(getattr(mine, f), getattr(theirs, f)) for f in FIELDS)


def test_z_all_by_blocks_of_rows_is_the_whole_matrix_product(grids, day):
    """fixed_point_backend._ROW_BLOCK: OpenBLAS's gemv of a block of rows gives those rows' numbers of the whole."""
    grid = grids["full"]
    engine = grid._engine(_powers(grid, day, 0))  # built here, as its neighbours do: not left by another test
    i012 = np.random.default_rng(5).standard_normal((9, engine._n_loaded)) * (1 + 0.3j)
    for k in range(3):
        whole = np.matvec(engine._z_all[k], i012)
        rows = np.concatenate([np.matvec(engine._z_all[k][first:first + fp._ROW_BLOCK], i012)
                               for first in range(0, engine._z_all.shape[1], fp._ROW_BLOCK)], axis=1)
        assert np.array_equal(whole, rows)


@pytest.mark.parametrize("name", ("full", "reduced"))
def test_solve_block_gives_each_step_what_solve_gives_it(grids, day, alone, name):
    grid, results = grids[name], alone[name]
    assert sum(r.bus_violations > 0 for r in results) >= 20 and sum(r.line_overloads > 0 for r in results) >= 20
    assert max(r.trafo_loading_percent for r in results) > 90.0 and min(r.trafo_p_kw for r in results) < 0.0
    if name == "reduced":
        assert sum(r.angle_violations > 0 for r in results) >= 20
    order = np.arange(STEPS)
    for block in [order, *_blocks(order), order[5:9], order[50:]]:
        found = grid.solve_block(*(a[block] for a in day))
        assert len(found) == len(block)
        for k, j in enumerate(block):
            mine, theirs = found.scalars(k), results[j].scalars()
            assert mine == theirs and [type(v) for v in mine.values()] == [type(v) for v in theirs.values()]
            assert list(mine) == list(SCALARS)
            assert np.array_equal(found.vm_pu_values[k], results[j].vm_pu_values)
            assert np.array_equal(found.line_loading_values[k], results[j].line_loading_values)
            assert np.array_equal(found.trafo_loadings_percent[k], results[j].trafo_loadings_percent)
            assert tuple(int(b) for b in grid.lv_buses[found.bus_violated[k]]) == results[j].violated_buses
            assert np.array_equal(found.vm_bus_min_pu[k], results[j].vm_pu_values.min(axis=1))
            assert np.array_equal(found.vm_bus_max_pu[k], results[j].vm_pu_values.max(axis=1))
    # the grid keeps the last step's injections, as solve_steps does
    assert np.array_equal(grid.injections()["chp_kw"].to_numpy(), day[3][STEPS - 1])


def test_states_the_fixed_point_does_not_settle_in_a_block_go_to_power_grid_model(grids, day, alone):
    """With fewer iterations allowed than the heavier states need, those are power-grid-model's flows, in the
    block as alone; the others stay the fixed point's."""
    grid = grids["full"]
    engine = grid._pgm
    order = np.arange(0, STEPS, 3)
    s = engine.block_powers(grid._block_phase_powers(*(a[order] for a in day)))
    _, iterations = engine._iterate_block(s)
    limit = int(np.median(iterations))
    assert (iterations > limit).any() and (iterations <= limit).any()
    saved = engine.max_iterations
    try:
        engine.max_iterations = limit
        found = grid.solve_block(*(a[order] for a in day))
        for k, j in enumerate(order):
            grid.set_injections(**dict(zip(("load_kw", "load_kvar", "pv_kw", "chp_kw"), (a[j] for a in day))))
            theirs = grid.solve()
            assert found.scalars(k) == theirs.scalars()
            assert np.array_equal(found.vm_pu_values[k], theirs.vm_pu_values)
            assert tuple(int(b) for b in grid.lv_buses[found.bus_violated[k]]) == theirs.violated_buses
            if iterations[k] <= limit:  # the fixed point's own numbers
                assert found.scalars(k) == alone["full"][j].scalars()
        assert engine._fallback is not None
    finally:
        engine.max_iterations = saved


def test_grid_extremes_of_blocks_are_those_of_the_steps_one_by_one(grids, day, alone, tmp_path):
    grid = grids["reduced"]
    one_by_one, in_blocks = GridExtremes(grid), GridExtremes(grid)
    for result in alone["reduced"]:
        one_by_one.add(result)
    order = np.arange(STEPS)
    for block in _blocks(order):
        in_blocks.add_block(grid.solve_block(*(a[block] for a in day)))
    assert in_blocks.steps == one_by_one.steps == STEPS
    (tmp_path / "one").mkdir()
    (tmp_path / "blocks").mkdir()
    for a, b in zip(one_by_one.write(tmp_path / "one"), in_blocks.write(tmp_path / "blocks")):
        assert a.read_bytes() == b.read_bytes()
    assert one_by_one.bus_steps_out_of_band.sum() > 0 and one_by_one.line_steps_overloaded.sum() > 0


class _Inputs:
    def __init__(self, values):
        self.values = values

    def read(self, port):
        return self.values[port]


def test_the_dso_adapter_publishes_what_the_steps_one_by_one_give(community, tmp_path, monkeypatch):  # noqa: F811
    """IeeeFeederGrid.step over a day in exchanges of 1, 4 and 96 grid steps: the values of solving each step alone
    (floats and integers with one step per exchange, float vectors else) and the same extremes tables. The first
    adapter builds its grid and compiles it into the cache (lec_cosim.models.grid_cache), the others load it: the
    block path runs on a compiled grid too, without a net."""
    from lec_cosim.models.grid_cache import CompiledLemGrid

    monkeypatch.setenv("LEC_COSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LEC_COSIM_NO_CACHE", raising=False)
    from lec_cosim.adapters.ieee_feeder import (
        DOUBLES,
        INJECTIONS,
        OUTPUTS,
        IeeeFeederGrid,
    )
    from lec_cosim.models.lem_community import community_from_scenario
    from lec_cosim.scenario import load_scenario

    scenario = load_scenario(DATA.parents[1] / "scenarios" / "ieee_eu_lv_lem_plain_week.yaml")
    players = community_from_scenario(scenario)
    names = list(players.names)
    chp = players.chp_kw[:, None] * np.random.default_rng(11).uniform(0.0, 1.0, (len(names), STEPS))
    values = {"load_kw": players.load_kw[:, :STEPS] * 2.5, "load_kvar": players.load_kvar[:, :STEPS] * 2.5,
              "pv_kw": players.pv_kw[:, :STEPS] * 2.5, "chp_kw": chp}
    published, extremes = {}, {}
    for block in (1, 4, 96):
        (tmp_path / str(block)).mkdir()
        adapter = IeeeFeederGrid(scenario, {"groups": {"a": names[:30], "b": names[30:]}, "block_steps": block,
                                            "output_dir": str(tmp_path / str(block))})
        assert isinstance(adapter.grid, CompiledLemGrid) == (block != 1)
        adapter.last_slot = STEPS // block - 1  # the day's last exchange writes the tables
        rows = []
        for k in range(STEPS // block):
            steps = slice(k * block, (k + 1) * block)
            rows.append(adapter.step(k, 0.0, _Inputs(
                {f"{g}/{v}": values[v][rows_of, steps].T.reshape(-1)
                 for v in INJECTIONS for g, rows_of in (("a", slice(0, 30)), ("b", slice(30, None)))})))
        if block == 1:
            assert all(type(r[n]) is (float if n in DOUBLES else int) for r in rows for n in OUTPUTS)
        else:
            assert all(r[n].dtype == np.float64 and r[n].shape == (block,) for r in rows for n in OUTPUTS)
        published[block] = {n: np.concatenate([np.atleast_1d(np.asarray(r[n], dtype=float)) for r in rows])
                            for n in OUTPUTS}
        extremes[block] = [(tmp_path / str(block) / f).read_bytes()
                           for f in ("bus_voltage_extremes.csv", "line_loading_peaks.csv")]

    # the reference: each step solved alone, the running counts of distinct buses out of the band
    grid = adapter.grid
    column = {n: i for i, n in enumerate(names)}
    cols = [[column[n] for n in kind] for kind in (grid.household_names, grid.household_names,
                                                   grid.prosumer_names, grid.chp_names)]
    reduced = {int(b) for b in grid.lv_buses[grid.bus_in_reduced]}
    violated, expected = set(), {n: [] for n in OUTPUTS}
    for j in range(STEPS):
        grid.set_injections(**{v: values[v][c, j] for v, c in zip(INJECTIONS, cols)})
        result = grid.solve()
        violated.update(result.violated_buses)
        for n in OUTPUTS[:-2]:
            expected[n].append(getattr(result, n))
        expected["violated_buses_so_far"].append(len(violated))
        expected["violated_buses_so_far_reduced"].append(len(violated & reduced))
    assert expected["violated_buses_so_far"][-1] > 0 and max(expected["line_overloads"]) > 0
    assert adapter.grid._compiled_net is None  # the compiled grid never needed its net
    for block in (1, 4, 96):
        for n in OUTPUTS:
            assert np.array_equal(published[block][n], np.array(expected[n], dtype=float)), (block, n)
        assert extremes[block] == extremes[1]


def test_a_step_repeating_one_of_the_last_day_is_copied_not_solved_and_gives_its_numbers(grids, day, alone):
    """LemGrid.recent_steps: the steps of the last blocks (a day's worth) are kept by their injections; a step
    with the same injections, bit for bit, in a later block or twice in one block, is solved once."""
    grid = grids["full"]
    solved, solve = [], grid._solved_chunks

    def counted(engine, powers, s, steps=None):
        solved.append(len(s) if steps is None else len(steps))
        yield from solve(engine, powers, s, steps)

    grid._solved_chunks = counted
    grid.recent_steps = STEPS
    try:
        grid.solve_block(*(a[:48] for a in day))
        order = np.r_[np.arange(40, 60), np.arange(10, 20), [50, 50, 3, 95, 95]]
        found = grid.solve_block(*(a[order] for a in day))
        assert solved == [48, 13]  # 48..59 and 95: each new step once
        for k, j in enumerate(order):
            assert found.scalars(k) == alone["full"][j].scalars()
            assert np.array_equal(found.vm_pu_values[k], alone["full"][j].vm_pu_values)
            assert np.array_equal(found.line_loading_values[k], alone["full"][j].line_loading_values)
            assert tuple(int(b) for b in grid.lv_buses[found.bus_violated[k]]) == alone["full"][j].violated_buses
        assert np.array_equal(grid.injections()["chp_kw"].to_numpy(), day[3][95])  # the block's last step kept
        grid.solve_block(*(a[60:96] for a in day))  # 95 was kept
        grid.solve_block(*(a[60:96] * 1.001 for a in day))  # new steps: the first block leaves the window
        grid.solve_block(*(a[:10] for a in day))  # of 0..9 only 3 is kept (by the second block)
        assert solved == [48, 13, 35, 36, 9]
        # what else the numbers depend on: another limit, or another engine setting, and nothing kept is copied
        saved = grid.vm_min_pu
        grid.vm_min_pu = 0.97
        try:
            found = grid.solve_block(*(a[:10] for a in day))
            assert solved[-1] == 10
            for k in range(10):
                grid.set_injections(**dict(zip(("load_kw", "load_kvar", "pv_kw", "chp_kw"), (a[k] for a in day))))
                assert found.scalars(k) == grid.solve().scalars()
        finally:
            grid.vm_min_pu = saved
        grid.solve_block(*(a[:10] for a in day))
        assert solved[-1] == 10  # the block before was kept under the other limit
        tolerance = grid._pgm.tolerance_pu
        grid._pgm.tolerance_pu = tolerance * 1.5
        try:
            grid.solve_block(*(a[:10] for a in day))
            assert solved[-1] == 10
        finally:
            grid._pgm.tolerance_pu = tolerance
    finally:
        del grid._solved_chunks
        grid.recent_steps = 0
