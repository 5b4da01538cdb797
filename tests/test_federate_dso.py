"""DSO federate over a real broker: a test LEC sends injections, a test observer reads the PCC."""

import numpy as np
import pandapower as pp
import pytest
from harness import SCENARIOS, TestFederate, enter_all, federate_under_test, offset

from lec_cosim.scenario import load_scenario
from lec_cosim.studies.community_battery.wiring import signals

INPUTS = ["lec1/households/p_mw", "lec1/households/q_mvar", "lec1/pv/p_mw", "lec1/battery/p_mw"]
# In the order of lec_cosim.studies.community_battery.wiring.signals(...)["dso"].
OUTPUTS = ["lec1/pcc/p_mw", "lec1/pcc/q_mvar", "lec1/pcc/vm_pu", "lec1/lv_busbar/vm_pu",
           "lec1/transformer/loading_percent", "lec1/grid/losses_mw", "lec1/grid/losses_mvar",
           "lec1/grid/vm_min_pu", "lec1/grid/vm_max_pu", "lec1/grid/bus_violations", "lec1/grid/line_overloads"]

# (load MW, load Mvar, PV MW, battery MW): night import, midday export, battery peak, idle.
CASES = [(0.30, 0.075, 0.0, 0.0), (0.20, 0.05, 0.90, 0.0), (0.45, 0.11, 0.0, 0.6), (0.0, 0.0, 0.0, 0.0)]


def reference_pcc(scenario, load_p, load_q, pv_p, battery_p):
    """The same feeder built directly with pandapower and solved with runpp."""
    g = scenario.grid
    net = pp.create_empty_network()
    src = pp.create_bus(net, vn_kv=g.transformer.vn_hv_kv)
    pcc = pp.create_bus(net, vn_kv=g.transformer.vn_hv_kv)
    lv = pp.create_bus(net, vn_kv=g.transformer.vn_lv_kv)
    pp.create_ext_grid(net, src, vm_pu=g.ext_grid_vm_pu)
    pp.create_line_from_parameters(net, src, pcc, **g.mv_line.model_dump())
    pp.create_transformer_from_parameters(net, pcc, lv, **g.transformer.model_dump())
    pp.create_load(net, lv, p_mw=load_p + battery_p - pv_p, q_mvar=load_q)
    pp.runpp(net, tolerance_mva=1e-10)
    losses_q = net.res_line.ql_mvar.sum() + net.res_trafo.ql_mvar.sum()
    return net.res_trafo.p_hv_mw.iat[0], net.res_trafo.q_hv_mvar.iat[0], net.res_bus.vm_pu.iat[pcc], losses_q


def test_dso_solves_a_power_flow_each_grid_step_and_publishes_the_pcc(tmp_path):
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml").model_copy(update={"horizon_h": 1})
    assert [s.key for s in signals(scenario)["dso"]] == OUTPUTS
    rows = []
    with federate_under_test("dso", scenario, tmp_path, 2) as port:
        lec = TestFederate("test_lec", port, period=900, offset=offset("households"),
                           publications=[(key, "double") for key in INPUTS])
        observer = TestFederate("test_observer", port, period=900, offset=offset("recorder"),
                                subscriptions=[(s.key, s.type) for s in signals(scenario)["dso"]])
        enter_all(lec, observer)
        for k, case in enumerate(CASES):
            t = k * 900
            lec.arrive(t)
            for key, value in zip(INPUTS, case):
                lec.publish(key, value)
            lec.request(t + 900)
            granted = observer.advance(t)
            assert abs(granted - (t + offset("recorder"))) < 1e-9
            rows.append([observer.value(key) for key in OUTPUTS])
        observer.close()
        lec.granted()
        lec.close()

    rows = np.array(rows)
    for case, (p, q, vm, _, _, losses, losses_q, vm_min, vm_max, violations, overloads) in zip(CASES, rows):
        ref_p, ref_q, ref_vm, ref_losses_q = reference_pcc(scenario, *case)
        assert p == pytest.approx(ref_p, abs=1e-9)
        assert q == pytest.approx(ref_q, abs=1e-9)
        assert vm == pytest.approx(ref_vm, abs=1e-9)
        assert losses > 0.0025  # the transformer's 2.6 kW iron losses at least
        # Reactive losses: series and magnetising reactance less the MV line's charging.
        assert losses_q == pytest.approx(ref_losses_q, abs=1e-9)
        assert vm_min <= vm <= vm_max and vm_min <= 1.0 <= vm_max  # the source bus is at 1.0 pu
        assert violations == 0 and overloads == 0  # within EN 50160's band and the ratings
    # Import pulls both voltages down, export pushes them up; the LV side swings more.
    vm_pcc, vm_lv = rows[:, 2], rows[:, 3]
    assert vm_pcc[1] > vm_pcc[3] > vm_pcc[0] > vm_pcc[2]
    assert vm_lv[1] - vm_lv[2] > vm_pcc[1] - vm_pcc[2]
    # Net 1.05 MW through a 1.6 MVA transformer: loading about 67 %.
    assert 60 < rows[2, 4] < 75
