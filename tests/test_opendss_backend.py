"""OpenDSS backend against the power-grid-model backend (and pandapower where it is cheap), real numbers.

Measured 2026-12-06 (dss-python 0.15.7), both backends at tolerance 1e-10; the bounds asserted are a
little above these (and below the brief's 1e-6 pu, 1e-6 MW, relative 1e-5):

* IEEE European LV feeder, three-phase, minutes 1 and 566: bus voltages 1.7e-10 pu (bound 1e-9), angles
  1.9e-8 deg (bound 1e-6), transformer powers 1.2e-11 MW per phase (bound 1e-10), currents of the lines
  carrying more than 1 mA within a relative 4.1e-8 (bound 1e-7); against pandapower's ``runpp_3ph`` at
  minute 566: 6.3e-9 pu (bound 5e-8);
* the community-battery grid (balanced; 1.6 MVA transformer with iron losses; load, PV and battery), 20
  random states: 3.9e-12 pu, 9e-11 MW/Mvar/kA (bound 1e-9); against ``runpp`` 4.2e-10 pu (bound 1e-9);
* a 20/0.4 kV feeder with unbalanced loads and PV, Dyn5 / Dyn11 / Dyn1 / YNyn6: 9e-10 pu (bound 1e-8),
  4.6e-8 deg (bound 1e-6), 9e-10 MW (bound 5e-9); against ``runpp_3ph`` (Dyn5, without its balanced sgen
  and storage) 6.4e-7 pu (bound 2e-6).
"""

import copy
import functools

import numpy as np
import pandapower as pp
import pytest
from harness import SCENARIOS

from lec_cosim.models.feeder_net import build_ieee_eulv
from lec_cosim.models.opendss_backend import OpenDssPowerFlow
from lec_cosim.models.pgm_backend import (
    PgmPowerFlow,
    PowerFlowArrays,
    PowerFlowNotConverged,
    UnsupportedNetwork,
    pandapower_results,
)

FIELDS = list(PowerFlowArrays.__dataclass_fields__)


def _angle_gap(a, b) -> float:
    return float(np.abs((a - b + 180.0) % 360.0 - 180.0).max())


def _gaps(a: PowerFlowArrays, b: PowerFlowArrays) -> dict:
    """Largest absolute difference per result array (angles modulo 360 degrees)."""
    out = {}
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        out[name] = _angle_gap(x, y) if name == "va_degree" else float(np.abs(x - y).max(initial=0.0))
    return out


# --- IEEE European LV feeder, three-phase ------------------------------------------------------------
@pytest.fixture(scope="module")
def ieee():
    feeder = build_ieee_eulv(minute=566)
    return feeder, OpenDssPowerFlow(feeder.net, symmetric=False), PgmPowerFlow(feeder.net, symmetric=False)


def _phase_powers(feeder):
    al = feeder.net.asymmetric_load
    return (al[[f"p_{ph}_mw" for ph in "abc"]].to_numpy(dtype=float),
            al[[f"q_{ph}_mvar" for ph in "abc"]].to_numpy(dtype=float))


@pytest.mark.parametrize("minute", (1, 566))
def test_three_phase_ieee_feeder_agrees_with_power_grid_model(ieee, minute):
    feeder, dss, pgm = ieee
    feeder.set_minute(minute)
    a, b = dss.solve(), pgm.solve()
    gaps = _gaps(a, b)
    assert a.vm_pu.shape == (len(feeder.net.bus), 3)
    assert gaps["vm_pu"] < 1e-6  # the brief's tolerance
    assert gaps["vm_pu"] < 1e-9  # and what the two achieve (1.7e-10)
    assert gaps["va_degree"] < 1e-6
    for name in ("trafo_p_lv_mw", "trafo_q_lv_mvar", "trafo_p_hv_mw", "trafo_q_hv_mvar"):
        assert gaps[name] < 1e-10, name  # MW per phase
    for name in ("line_i_from_ka", "line_i_to_ka"):
        x, y = getattr(a, name), getattr(b, name)
        carrying = y > 1e-6  # kA: beyond the last load of a phase the current is ~0 in both
        assert (np.abs(x - y)[carrying] / y[carrying]).max() < 1e-7, name
        assert np.abs(x - y)[~carrying].max(initial=0.0) < 1e-9, name
    for name in ("line_p_from_mw", "line_q_from_mvar", "line_p_to_mw", "line_q_to_mvar"):
        assert gaps[name] < 1e-10, name
    # pandapower's sign convention: what flows in at both ends is the loss (per line; per phase the mutual
    # coupling moves power between the phases)
    assert (a.line_pl_mw.sum(axis=1) > -1e-15).all() and a.line_pl_mw.sum() > 0
    assert a.trafo_p_lv_mw.sum() < 0  # the feeder draws power out of the LV terminal


def test_three_phase_ieee_feeder_agrees_with_pandapower(ieee):
    feeder, dss, _ = ieee
    feeder.set_minute(566)
    net = copy.deepcopy(feeder.net)
    pp.runpp_3ph(net, init="flat", tolerance_mva=1e-10, numba=False)
    ref = pandapower_results(net, symmetric=False)
    gaps = _gaps(dss.solve(), ref)
    assert gaps["vm_pu"] < 1e-6  # the brief's tolerance
    assert gaps["vm_pu"] < 5e-8  # measured 6.3e-9 (pandapower's own convergence)
    assert gaps["trafo_p_lv_mw"] < 5e-8 and gaps["trafo_q_lv_mvar"] < 5e-8


def test_powers_override_equals_writing_them_into_the_net(ieee):
    feeder, dss, _ = ieee
    feeder.set_minute(700)
    p, q = _phase_powers(feeder)
    rng = np.random.default_rng(3)
    p2, q2 = p * rng.uniform(0.5, 1.5, p.shape), q * rng.uniform(0.5, 1.5, q.shape)
    given = dss.solve({"asymmetric_load": (p2, q2)})
    net = feeder.net
    for k, ph in enumerate("abc"):
        net.asymmetric_load[f"p_{ph}_mw"] = p2[:, k]
        net.asymmetric_load[f"q_{ph}_mvar"] = q2[:, k]
    written = dss.solve()
    assert max(_gaps(given, written).values()) < 1e-10
    # the net's own powers are used again when none are given
    feeder.set_minute(700)
    assert max(_gaps(dss.solve(), dss.solve({"asymmetric_load": (p, q)})).values()) < 1e-10
    batch = dss.solve_batch([{"asymmetric_load": (p2, q2)}, {}])
    assert max(_gaps(batch[0], given).values()) < 1e-10
    assert np.abs(batch[1].vm_pu - dss.solve().vm_pu).max() < 1e-10


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_flow_raises_and_the_next_one_is_right(ieee):
    """From a diverged state OpenDSS can converge to another solution (0.75 pu off, measured): after a
    failure the next solve starts from the no-load flow."""
    feeder, dss, pgm = ieee
    feeder.set_minute(566)
    p, q = _phase_powers(feeder)
    assert dss.solve({"asymmetric_load": (5 * p, 5 * q)}).vm_pu.min() < 0.6  # stressed, still solvable
    with pytest.raises(PowerFlowNotConverged):
        dss.solve({"asymmetric_load": (10 * p, 10 * q)})
    assert np.abs(dss.solve().vm_pu - pgm.solve().vm_pu).max() < 1e-9


# --- balanced: the community-battery grid ------------------------------------------------------------
@pytest.fixture(scope="module")
def community_grid():
    from lec_cosim.models.grid import LECGrid
    from lec_cosim.scenario import load_scenario

    return LECGrid(load_scenario(SCENARIOS / "trondelag_arbitrage.yaml").grid)


def _injections(rng) -> dict:
    return {"load": (np.array([rng.uniform(0, 1.5)]), np.array([rng.uniform(0, 0.4)])),
            "sgen": (np.array([rng.uniform(0, 1.0)]), np.zeros(1)),
            "storage": (np.array([rng.uniform(-0.6, 0.6)]), np.zeros(1))}


def test_balanced_community_grid_agrees_with_power_grid_model_and_pandapower(community_grid):
    net = copy.deepcopy(community_grid.net)
    dss, pgm = OpenDssPowerFlow(net, symmetric=True), PgmPowerFlow(net, symmetric=True)
    assert net.trafo["pfe_kw"].iloc[0] > 0 and net.trafo["i0_percent"].iloc[0] > 0  # the T-model's shunt
    rng = np.random.default_rng(7)
    worst = dict.fromkeys(FIELDS, 0.0)
    for _ in range(20):
        state = _injections(rng)
        a, b = dss.solve(state), pgm.solve(state)
        assert a.vm_pu.shape == (len(net.bus), 1) and a.trafo_p_hv_mw.shape == (1, 1)
        worst = {k: max(v, _gaps(a, b)[k]) for k, v in worst.items()}
    assert worst["vm_pu"] < 1e-9
    assert worst["va_degree"] < 1e-6
    for name in FIELDS[2:]:
        assert worst[name] < 1e-9, name  # MW, Mvar, kA
    # pandapower itself, on the last state
    for table, (p, q) in state.items():
        net[table]["p_mw"], net[table]["q_mvar"] = p, q
    pp.runpp(net, init="flat", tolerance_mva=1e-10, numba=False)
    gaps = _gaps(dss.solve(), pandapower_results(net, symmetric=True))
    assert gaps["vm_pu"] < 1e-9
    assert gaps["trafo_p_hv_mw"] < 1e-9 and gaps["trafo_q_hv_mvar"] < 1e-9


def test_scaling_and_in_service_are_respected(community_grid):
    net = copy.deepcopy(community_grid.net)
    dss = OpenDssPowerFlow(net, symmetric=True)
    state = _injections(np.random.default_rng(1))
    full = dss.solve(state)
    net.load["scaling"] = 0.5
    net.sgen["in_service"] = False
    changed = dss.solve(state)
    net.load["scaling"] = 1.0
    net.sgen["in_service"] = True
    expected = dss.solve({"load": (state["load"][0] * 0.5, state["load"][1] * 0.5),
                          "sgen": (np.zeros(1), np.zeros(1)), "storage": state["storage"]})
    assert max(_gaps(changed, expected).values()) < 1e-8  # the same state, from another start
    assert np.abs(changed.trafo_p_hv_mw - full.trafo_p_hv_mw).max() > 1e-3


# --- phase shifts ------------------------------------------------------------------------------------
def _shifted_feeder(group: str, shift: float):
    """20/0.4 kV with iron losses, two cable sections, unbalanced loads and PV, balanced load/sgen/storage."""
    net = copy.deepcopy(_feeder())  # pandapower's create functions take ~0.1 s a net on this machine
    net.trafo["vector_group"], net.trafo["shift_degree"] = group, shift
    return net


@functools.cache
def _feeder():
    net = pp.create_empty_network(f_hz=50.0)
    mv, lv, b2, b3 = (pp.create_bus(net, vn) for vn in (20.0, 0.4, 0.4, 0.4))
    pp.create_ext_grid(net, mv, vm_pu=1.02, va_degree=5.0)
    pp.create_transformer_from_parameters(
        net, mv, lv, sn_mva=0.4, vn_hv_kv=20.0, vn_lv_kv=0.4, vk_percent=6.0, vkr_percent=1.2, pfe_kw=1.0,
        i0_percent=0.5, shift_degree=150.0, vector_group="Dyn", vk0_percent=6.0, vkr0_percent=1.2,
        mag0_percent=1e9, mag0_rx=0.0, si0_hv_partial=0.9)
    for f, t, length in ((lv, b2, 0.2), (b2, b3, 0.15)):
        pp.create_line_from_parameters(net, f, t, length_km=length, r_ohm_per_km=0.2, x_ohm_per_km=0.08,
                                       c_nf_per_km=250.0, max_i_ka=0.3, r0_ohm_per_km=0.8, x0_ohm_per_km=0.3,
                                       c0_nf_per_km=100.0)
    pp.create_asymmetric_load(net, b2, p_a_mw=0.03, q_a_mvar=0.01, p_b_mw=0.005, p_c_mw=0.012, q_c_mvar=0.002)
    pp.create_asymmetric_load(net, b3, p_a_mw=0.01, p_b_mw=0.04, q_b_mvar=0.01)
    pp.create_asymmetric_sgen(net, b3, p_c_mw=0.02)
    pp.create_load(net, b3, p_mw=0.03, q_mvar=0.01)
    pp.create_sgen(net, b2, p_mw=0.02)
    pp.create_storage(net, b3, p_mw=0.01, max_e_mwh=1.0)
    return net


@pytest.mark.parametrize("group, shift", [("Dyn", 150.0), ("Dyn", 330.0), ("Dyn", 30.0), ("YNyn", 180.0)])
def test_phase_shifts_agree_with_power_grid_model(group, shift):
    """Dyn5 and Dyn11 are Dyn1 / Dyn-lead with the LV phases relabelled, YNyn6 is YNyn0 with the LV angles
    turned by 180 degrees: exact, also with unbalanced loads (the HV phase powers included)."""
    net = _shifted_feeder(group, shift)
    a, b = OpenDssPowerFlow(net, symmetric=False).solve(), PgmPowerFlow(net, symmetric=False).solve()
    gaps = _gaps(a, b)
    assert gaps["vm_pu"] < 1e-8
    assert gaps["va_degree"] < 1e-6
    for name in FIELDS[2:]:
        assert gaps[name] < 5e-9, name  # MW, Mvar, kA
    assert _angle_gap(a.va_degree[1, 0], 5.0 - shift) < 3.0  # LV phase a lags by the shift (plus the drop)
    if group == "Dyn" and shift == 150.0:  # and pandapower's runpp_3ph, without the balanced sgen/storage
        # (pandapower's three-phase flow disagrees with both backends by 3e-3 pu when they are present)
        net.sgen.drop(net.sgen.index, inplace=True)
        net.storage.drop(net.storage.index, inplace=True)
        net.ext_grid["s_sc_max_mva"], net.ext_grid["rx_max"] = 1e8, 0.1  # its zero-sequence source: ideal
        net.ext_grid["r0x0_max"], net.ext_grid["x0x_max"] = 0.1, 1.0
        pp.runpp_3ph(net, init="dc", tolerance_mva=1e-10, numba=False)  # flat: 150 deg off, no convergence
        gaps = _gaps(OpenDssPowerFlow(net, symmetric=False).solve(), pandapower_results(net, symmetric=False))
        assert gaps["vm_pu"] < 2e-6 and gaps["va_degree"] < 1e-4  # measured 6.4e-7 pu
        assert gaps["trafo_p_lv_mw"] < 1e-8


def test_phase_shift_in_a_balanced_flow_and_against_pandapower():
    net = _shifted_feeder("Dyn", 150.0)
    net.asymmetric_load.drop(net.asymmetric_load.index, inplace=True)
    net.asymmetric_sgen.drop(net.asymmetric_sgen.index, inplace=True)
    a, b = OpenDssPowerFlow(net, symmetric=True).solve(), PgmPowerFlow(net, symmetric=True).solve()
    gaps = _gaps(a, b)
    assert gaps["vm_pu"] < 1e-8 and gaps["va_degree"] < 1e-6
    pp.runpp(net, init="dc", tolerance_mva=1e-10, numba=False)  # a flat start ignores the shift: 150 deg off
    gaps = _gaps(a, pandapower_results(net, symmetric=True))
    assert gaps["vm_pu"] < 1e-8 and gaps["va_degree"] < 1e-6


def test_pandapowers_clock_suffix_is_read_and_checked():
    net = _shifted_feeder("Dyn5", 150.0)
    reference = _shifted_feeder("Dyn", 150.0)
    same = _gaps(OpenDssPowerFlow(net, symmetric=False).solve(), OpenDssPowerFlow(reference, symmetric=False).solve())
    assert max(same.values()) < 1e-12
    with pytest.raises(UnsupportedNetwork, match="shift_degree"):
        OpenDssPowerFlow(_shifted_feeder("Dyn5", 30.0), symmetric=False)


# --- what is refused, and instances do not share state -----------------------------------------------
def test_unsupported_networks_are_refused():
    net = _shifted_feeder("Dyn", 150.0)
    pp.create_switch(net, 1, 0, et="l")
    with pytest.raises(UnsupportedNetwork, match="switch"):
        OpenDssPowerFlow(net, symmetric=False)
    net = _shifted_feeder("Dyn", 150.0)
    pp.create_gen(net, 2, p_mw=0.01)
    with pytest.raises(UnsupportedNetwork, match="gen"):
        OpenDssPowerFlow(net, symmetric=False)
    with pytest.raises(UnsupportedNetwork, match="three-phase"):
        OpenDssPowerFlow(_shifted_feeder("Dyn", 150.0), symmetric=True)  # asymmetric loads
    with pytest.raises(UnsupportedNetwork, match="zigzag"):
        OpenDssPowerFlow(_shifted_feeder("Yzn", 30.0), symmetric=False)
    with pytest.raises(UnsupportedNetwork, match="grounded neutral"):
        OpenDssPowerFlow(_shifted_feeder("YNd", 30.0), symmetric=False)
    net = _shifted_feeder("Dyn", 150.0)
    net.trafo["mag0_percent"] = 100.0
    with pytest.raises(UnsupportedNetwork, match="mag0"):
        OpenDssPowerFlow(net, symmetric=False)
    net = _shifted_feeder("Dyn", 150.0)
    net.bus.loc[3, "in_service"] = False
    with pytest.raises(UnsupportedNetwork, match="out-of-service"):
        OpenDssPowerFlow(net, symmetric=False)
    net = _shifted_feeder("Dyn", 150.0)
    net.line.loc[1, "in_service"] = False  # bus 3 cut off
    with pytest.raises(UnsupportedNetwork, match="not connected"):
        OpenDssPowerFlow(net, symmetric=False)
    net = _shifted_feeder("Dyn", 150.0)
    net.line["g_us_per_km"] = 1.0
    with pytest.raises(UnsupportedNetwork, match="conductance"):
        OpenDssPowerFlow(net, symmetric=False)


def test_two_instances_keep_their_own_circuits():
    one, other = _shifted_feeder("Dyn", 150.0), _shifted_feeder("YNyn", 0.0)
    other.asymmetric_load["p_a_mw"] *= 2.0
    alone = OpenDssPowerFlow(one, symmetric=False).solve()
    first, second = OpenDssPowerFlow(one, symmetric=False), OpenDssPowerFlow(other, symmetric=False)
    second.solve()
    assert max(_gaps(first.solve(), alone).values()) < 1e-12
    assert first.describes(one) and not first.describes(other)
    pp.create_load(one, 2, p_mw=0.01)
    assert not first.describes(one)
