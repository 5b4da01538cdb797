"""Unit tests of the LEC feeder model (lec_cosim.models.grid.LECGrid) on the shipped grid."""

from __future__ import annotations

from pathlib import Path

import pandapower as pp
import pytest

from lec_cosim.models.grid import LECGrid, PowerFlowError
from lec_cosim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    # load P, load Q, PV, battery (load convention: + charges)
    (0.0, 0.0, 0.0, 0.0),
    (0.5, 0.125, 0.0, 0.0),        # evening peak, import
    (0.1, 0.025, 0.6, 0.0),        # midday surplus, export
    (0.3, 0.075, 0.1, 0.2),        # import while charging
    (0.2, 0.05, 0.0, -0.6),        # discharging more than the load: export
    (0.45, 0.11, 0.55, 0.6),       # everything at once
]


@pytest.fixture(scope="module")
def config():
    return load_scenario(ROOT / "scenarios" / "trondelag_arbitrage.yaml").grid


@pytest.fixture(scope="module")
def grid(config):
    return LECGrid(config)


def reference_pcc(config, p_mw, q_mvar):
    """The same feeder built from scratch, with one equivalent PQ load at the LV busbar."""
    line, trafo = config.mv_line, config.transformer
    net = pp.create_empty_network()
    source = pp.create_bus(net, vn_kv=22.0)
    pcc = pp.create_bus(net, vn_kv=22.0)
    lv = pp.create_bus(net, vn_kv=0.4)
    pp.create_ext_grid(net, source, vm_pu=1.0)
    pp.create_line_from_parameters(net, source, pcc, length_km=10, r_ohm_per_km=0.306, x_ohm_per_km=0.35,
                                   c_nf_per_km=10, max_i_ka=0.3)
    pp.create_transformer_from_parameters(net, pcc, lv, sn_mva=1.6, vn_hv_kv=22, vn_lv_kv=0.4, vk_percent=6.0,
                                          vkr_percent=1.0, pfe_kw=2.6, i0_percent=0.3)
    pp.create_load(net, lv, p_mw=p_mw, q_mvar=q_mvar)
    pp.runpp(net, tolerance_mva=1e-11, numba=False)
    # Guard: the hard-coded values above are those of the shipped scenario.
    assert (line.length_km, line.r_ohm_per_km, line.x_ohm_per_km, line.c_nf_per_km, line.max_i_ka) == (
        10, 0.306, 0.35, 10, 0.3)
    assert (trafo.sn_mva, trafo.vn_hv_kv, trafo.vn_lv_kv, trafo.vk_percent, trafo.vkr_percent, trafo.pfe_kw,
            trafo.i0_percent) == (1.6, 22, 0.4, 6.0, 1.0, 2.6, 0.3)
    assert config.ext_grid_vm_pu == 1.0
    return net, pcc, lv


def test_zero_injections_give_near_nominal_voltages(grid):
    r = grid.solve(0.0, 0.0, 0.0, 0.0)
    # Only the line's charging and the transformer's magnetising branch are left.
    assert abs(r.pcc_vm_pu - 1.0) < 1e-4
    assert abs(r.lv_vm_pu - 1.0) < 1e-3
    # The PCC feeds just the iron losses: pfe = 2.6 kW at (nearly) rated voltage.
    assert r.pcc_p_mw == pytest.approx(0.0026, rel=1e-3)
    assert r.pcc_q_mvar > 0  # magnetising
    assert r.trafo_loading_percent < 1.0 and r.line_loading_percent < 1.0


def test_import_lowers_and_export_raises_pcc_voltage(grid):
    idle = grid.solve(0.0, 0.0, 0.0, 0.0)
    imports = [grid.solve(p, 0.25 * p, 0.0, 0.0) for p in (0.2, 0.4, 0.6)]
    exports = [grid.solve(0.0, 0.0, p, 0.0) for p in (0.2, 0.4, 0.6)]
    assert idle.pcc_vm_pu > imports[0].pcc_vm_pu > imports[1].pcc_vm_pu > imports[2].pcc_vm_pu
    assert idle.pcc_vm_pu < exports[0].pcc_vm_pu < exports[1].pcc_vm_pu < exports[2].pcc_vm_pu
    assert imports[2].lv_vm_pu < imports[2].pcc_vm_pu  # voltage drops across the transformer
    assert exports[2].lv_vm_pu > exports[2].pcc_vm_pu
    assert all(r.pcc_p_mw > 0 for r in imports) and all(r.pcc_p_mw < 0 for r in exports)


def test_battery_sign_convention(grid):
    charging = grid.solve(0.2, 0.05, 0.0, 0.3)
    discharging = grid.solve(0.2, 0.05, 0.0, -0.3)
    assert charging.pcc_p_mw > 0.49
    assert discharging.pcc_p_mw < -0.09
    assert charging.pcc_vm_pu < discharging.pcc_vm_pu


@pytest.mark.parametrize("load_p, load_q, pv, battery", CASES)
def test_pcc_power_is_net_load_plus_transformer_losses(grid, load_p, load_q, pv, battery):
    r = grid.solve(load_p, load_q, pv, battery)
    net = grid.net
    trafo_pl = float(net.res_trafo.pl_mw.iloc[0])
    trafo_ql = float(net.res_trafo.ql_mvar.iloc[0])
    line_pl = float(net.res_line.pl_mw.iloc[0])
    assert trafo_pl > 0.0025  # at least the iron losses
    assert r.pcc_p_mw == pytest.approx(load_p - pv + battery + trafo_pl, abs=1e-9)
    assert r.pcc_q_mvar == pytest.approx(load_q + trafo_ql, abs=1e-9)
    assert r.losses_mw == pytest.approx(trafo_pl + line_pl, abs=1e-12)
    # The external grid supplies the PCC flow plus the line losses.
    assert float(net.res_ext_grid.p_mw.iloc[0]) == pytest.approx(r.pcc_p_mw + line_pl, abs=1e-9)


@pytest.mark.parametrize("load_p, load_q, pv, battery", CASES)
def test_matches_an_independently_built_net(grid, config, load_p, load_q, pv, battery):
    r = grid.solve(load_p, load_q, pv, battery)
    net, pcc, lv = reference_pcc(config, load_p - pv + battery, load_q)
    assert r.pcc_vm_pu == pytest.approx(float(net.res_bus.vm_pu[pcc]), abs=1e-9)
    assert r.lv_vm_pu == pytest.approx(float(net.res_bus.vm_pu[lv]), abs=1e-9)
    assert r.pcc_p_mw == pytest.approx(float(net.res_trafo.p_hv_mw.iloc[0]), abs=1e-9)
    assert r.pcc_q_mvar == pytest.approx(float(net.res_trafo.q_hv_mvar.iloc[0]), abs=1e-9)
    assert r.trafo_loading_percent == pytest.approx(float(net.res_trafo.loading_percent.iloc[0]), abs=1e-7)
    assert r.line_loading_percent == pytest.approx(float(net.res_line.loading_percent.iloc[0]), abs=1e-7)


def test_solve_has_no_memory(config):
    g = LECGrid(config)
    first = g.solve(0.4, 0.1, 0.0, 0.2)
    g.solve(0.0, 0.0, 0.6, -0.6)
    again = g.solve(0.4, 0.1, 0.0, 0.2)
    assert again.pcc_vm_pu == pytest.approx(first.pcc_vm_pu, abs=1e-12)
    assert again.pcc_p_mw == pytest.approx(first.pcc_p_mw, abs=1e-12)


def test_divergence_raises_power_flow_error(config):
    g = LECGrid(config)
    with pytest.raises(PowerFlowError, match="load 1000.0000 MW, PV 0.0000 MW, battery 0.0000 MW"):
        g.solve(1000.0, 0.0, 0.0, 0.0)
    # The net is still usable afterwards.
    assert abs(g.solve(0.0, 0.0, 0.0, 0.0).pcc_vm_pu - 1.0) < 1e-4


def test_violations_and_overloads_against_the_scenario_limits(config):
    """A narrow band (0.99-1.01 pu) and a 50 % rating: a heavy import breaks both."""
    strict = LECGrid(config.model_copy(update={"vm_min_pu": 0.99, "vm_max_pu": 1.01, "max_loading_percent": 50.0}))
    heavy = strict.solve(0.5, 0.125, 0.0, 0.6)
    net = strict.net
    below = int((net.res_bus.vm_pu < 0.99).sum())
    assert below >= 1 and heavy.bus_violations == below
    assert heavy.vm_min_pu == pytest.approx(net.res_bus.vm_pu.min(), abs=1e-12)
    assert heavy.vm_max_pu == pytest.approx(net.res_bus.vm_pu.max(), abs=1e-12)
    assert heavy.trafo_loading_percent > 50 > heavy.line_loading_percent
    assert heavy.line_overloads == 1
    assert heavy.losses_mvar == pytest.approx(net.res_line.ql_mvar.sum() + net.res_trafo.ql_mvar.sum(), abs=1e-12)
    light = strict.solve(0.1, 0.025, 0.0, 0.0)
    assert light.bus_violations == 0 and light.line_overloads == 0
    # The shipped limits (EN 50160, 0.9-1.1 pu; 100 %) hold even for the heavy case.
    assert LECGrid(config).solve(0.5, 0.125, 0.0, 0.6).bus_violations == 0


def test_a_federate_process_loads_pandapower_s_plotting_pyplot_and_estimation_only_when_used():
    """``lec_cosim.deferred_imports`` (a federate process's start): the grid model imports pandapower without its
    plotting package, matplotlib or its state estimation (and so scipy.stats), solves as ever, and each loads in
    full at its first use."""
    import subprocess
    import sys

    code = """
import sys
from lec_cosim.deferred_imports import defer_plotting
defer_plotting()
from lec_cosim.models.grid import LECGrid
from lec_cosim.scenario import load_scenario
grid = LECGrid(load_scenario("scenarios/trondelag_arbitrage.yaml").grid)
result = grid.solve(0.3, 0.05, 0.1, 0.0)
print(result.pcc_p_mw > 0.19, "matplotlib.figure" in sys.modules, "pandapower.plotting.collections" in sys.modules,
      "matplotlib.colors" in sys.modules, "scipy.stats" in sys.modules)
import pandapower.plotting
import matplotlib.pyplot as plt
import pandapower.estimation
print(callable(pandapower.plotting.simple_plot), callable(plt.figure), "matplotlib.figure" in sys.modules,
      callable(pandapower.estimation.estimate), "scipy.stats" in sys.modules)
"""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False", "False", "False", "True", "True", "True", "True",
                                   "True"], done.stdout
