"""The fixed-point backend (lec_cosim/models/fixed_point_backend.py) against power-grid-model on the IEEE feeder.

Both solve the same network (pandapower's model of the feeder), each to 1e-10 pu between iterations: every
result the grid model reads (voltages, angles, branch powers and currents, the transformer's) must agree far
inside the issue's 1e-5 pu, at light, nominal and heavy load, with reverse flow and violations."""

import copy

import numpy as np
import pandapower as pp
import pytest
from test_pgm_backend import DATA, LEVELS, STEPS, _balanced_feeder, _set, community  # noqa: F401 (a fixture)

from lec_cosim.models.fixed_point_backend import FixedPointPowerFlow
from lec_cosim.models.ieee_eulv import build_ieee_eulv
from lec_cosim.models.lem_grid import LemGrid
from lec_cosim.models.pgm_backend import (
    PgmPowerFlow,
    PowerFlowNotConverged,
    UnsupportedNetwork,
)

FIELDS_ABS = {  # each field's largest difference allowed: pu, degrees, MW/Mvar, kA
    "vm_pu": 1e-8, "va_degree": 1e-6,
    "line_p_from_mw": 1e-9, "line_q_from_mvar": 1e-9, "line_p_to_mw": 1e-9, "line_q_to_mvar": 1e-9,
    "line_i_from_ka": 1e-8, "line_i_to_ka": 1e-8,
    "trafo_p_hv_mw": 1e-9, "trafo_q_hv_mvar": 1e-9, "trafo_p_lv_mw": 1e-9, "trafo_q_lv_mvar": 1e-9,
    "trafo_i_hv_ka": 1e-9, "trafo_i_lv_ka": 1e-8,
}


@pytest.fixture(scope="module")
def grids(community):  # noqa: F811
    feeder = build_ieee_eulv(DATA, minute=None)
    return {solver: LemGrid(feeder, community.table, data_dir=DATA, step_h=0.25, solver=solver)
            for solver in ("power-grid-model", "fixed-point")}


def _agree(fast, ref) -> None:
    for field, tolerance in FIELDS_ABS.items():
        a, b = getattr(fast, field), getattr(ref, field)
        assert a.shape == b.shape, field
        assert np.abs(a - b).max() < tolerance, (field, np.abs(a - b).max())


HEAVY = 3.2  # the evening peak below 0.9 pu
"""Beyond test_pgm_backend's levels: buses outside the band too."""


@pytest.mark.parametrize("level", (*LEVELS, HEAVY))
@pytest.mark.parametrize("step", STEPS)
def test_the_fixed_point_agrees_with_power_grid_model_on_the_ieee_feeder(grids, community, step, level):  # noqa: F811
    results, flows = {}, {}
    for solver, grid in grids.items():
        _set(grid, community, step, level)
        results[solver] = grid.solve()
        flows[solver] = grid._pgm.solve(grid._phase_powers())
    _agree(flows["fixed-point"], flows["power-grid-model"])
    fast, ref = results["fixed-point"], results["power-grid-model"]
    for count in ("bus_violations", "bus_violations_reduced", "angle_violations", "line_overloads",
                  "line_overloads_reduced"):
        assert getattr(fast, count) == getattr(ref, count), count
    assert fast.p_loss_kw == pytest.approx(ref.p_loss_kw, rel=1e-8)
    assert fast.dn_impact == pytest.approx(ref.dn_impact, rel=1e-8)
    assert 4 <= grids["fixed-point"]._pgm.iterations <= 20  # it iterated, and it stopped on the tolerance


def test_the_states_above_include_violations_and_reverse_flow(grids, community):  # noqa: F811
    grid = grids["fixed-point"]
    _set(grid, community, 76, HEAVY)
    evening = grid.solve()
    _set(grid, community, 50, HEAVY)
    noon = grid.solve()
    assert evening.line_overloads > 0 and evening.bus_violations > 0 and evening.vm_min_pu < 0.9
    assert noon.trafo_p_kw < 0


def test_a_block_gives_each_step_what_it_gives_alone(grids, community):  # noqa: F811
    """solve_steps (one solve_many) and solve step by step: the same numbers to the last digit, for blocks of
    every size here (1 to 16 steps, light to heavy load: violations), a step at every position of its block.
    tests/test_grid_block.py compares blocks of up to 96 steps with the per-state products the fixed point had
    before it solved blocks, and LemGrid.solve_block with solve."""
    grid = grids["fixed-point"]
    names = list(community.names)
    rows = {kind: [names.index(n) for n in getattr(grid, f"{kind}_names")] for kind in ("household", "prosumer")}
    steps = [step for step in STEPS for _ in (*LEVELS, HEAVY)]
    level = np.array([lv for _ in STEPS for lv in (*LEVELS, HEAVY)])[:, None]
    load_kw = community.load_kw[rows["household"]][:, steps].T * level
    load_kvar = community.load_kvar[rows["household"]][:, steps].T * level
    pv_kw = community.pv_kw[rows["prosumer"]][:, steps].T * level
    chp_kw = np.tile([0.0, 5.0, 10.0, 2.5, 7.5, 1.0], (len(steps), 1))
    alone = []
    for j in range(len(steps)):
        grid.set_injections(load_kw=load_kw[j], load_kvar=load_kvar[j], pv_kw=pv_kw[j], chp_kw=chp_kw[j])
        alone.append(grid.solve())
    assert any(r.bus_violations for r in alone) and any(r.line_overloads for r in alone)
    order = np.random.default_rng(1).permutation(len(steps))
    for blocks in ([np.arange(len(steps))], [order[:1], order[1:3], order[3:7], order[7:]],
                   [order[k:k + 5] for k in range(0, len(steps), 5)]):
        for block in blocks:
            for j, together in zip(block, grid.solve_steps(load_kw[block], load_kvar[block], pv_kw[block],
                                                           chp_kw[block])):
                assert np.array_equal(together.vm_pu_values, alone[j].vm_pu_values)
                assert np.array_equal(together.va_deviation_values, alone[j].va_deviation_values)
                assert np.array_equal(together.line_loading_values, alone[j].line_loading_values)
                assert together.scalars() == alone[j].scalars()


def test_a_state_the_fixed_point_cannot_settle_goes_to_power_grid_model(grids, community):  # noqa: F811
    grid = grids["power-grid-model"]
    _set(grid, community, 76, 2.2)
    powers = grid._phase_powers()
    reference = grid._pgm.solve(powers)
    hurried = FixedPointPowerFlow(grid.net, max_iterations=2)  # too few for the heavy evening: no fixed point
    flow = hurried.solve(powers)
    assert hurried.iterations == 2 and hurried._fallback is not None
    for field in FIELDS_ABS:
        assert np.array_equal(getattr(flow, field), getattr(reference, field)), field


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_state_without_solution_raises_and_the_next_one_solves(grids, community):  # noqa: F811
    grid = grids["fixed-point"]
    _set(grid, community, 76, 40.0)  # >= 1.4 MW on an 800 kVA feeder: no solution
    with pytest.raises(PowerFlowNotConverged, match="fixed-point"):
        grid.solve()
    _set(grid, community, 76, 1.0)
    assert grid.solve().vm_min_pu > 0.9


def test_balanced_loads_and_generators_in_the_three_phase_flow(community):  # noqa: F811
    """``load`` and ``sgen`` rows are a third of their power per phase, as power-grid-model's sym_load."""
    net = _balanced_feeder(community, 76, 1.0)
    pp.create_asymmetric_load(net, int(net.load.bus.iloc[3]), p_a_mw=0.004, q_b_mvar=0.002, p_c_mw=0.001)
    net.load.loc[net.load.index[0], "scaling"] = 0.5
    net.sgen.loc[net.sgen.index[0], "in_service"] = False
    _agree(FixedPointPowerFlow(net).solve(), PgmPowerFlow(net, symmetric=False).solve())


def test_what_it_does_not_model_is_refused(community):  # noqa: F811
    net = _balanced_feeder(community, 50, 1.0)
    with pytest.raises(UnsupportedNetwork, match="three-phase"):
        FixedPointPowerFlow(net, symmetric=True)
    broken = copy.deepcopy(net)
    broken.line.loc[broken.line.index[10], "in_service"] = False
    with pytest.raises(UnsupportedNetwork, match="out of service"):
        FixedPointPowerFlow(broken)
    pp.create_shunt(net, 5, q_mvar=0.01)
    with pytest.raises(UnsupportedNetwork, match="shunt"):
        FixedPointPowerFlow(net)


def test_what_would_make_it_a_different_model_is_refused(community):  # noqa: F811
    """A source with a finite short-circuit power (pandapower's sequence networks hold it, the fallback not), a
    delta load (pandapower solves it as delta), a bus cut off from the source."""
    net = _balanced_feeder(community, 50, 1.0)
    weak = copy.deepcopy(net)
    weak.ext_grid["s_sc_max_mva"] = 5.0
    with pytest.raises(UnsupportedNetwork, match="short-circuit power"):
        FixedPointPowerFlow(weak)
    delta = copy.deepcopy(net)
    delta.load.loc[delta.load.index[0], "type"] = "delta"
    for backend in (FixedPointPowerFlow, PgmPowerFlow):
        with pytest.raises(UnsupportedNetwork, match="wye"):
            backend(delta, symmetric=False)
    island = copy.deepcopy(net)
    pp.create_bus(island, vn_kv=0.416)
    with pytest.raises(UnsupportedNetwork, match="not connected"):
        FixedPointPowerFlow(island)
