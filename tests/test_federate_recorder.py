"""Recorder federate over a real broker: a test federate plays every other federate's part."""

import json

import pandas as pd
import pytest
from harness import SCENARIOS, TestFederate, federate_under_test, offset

from lec_cosim.scenario import load_scenario
from lec_cosim.studies.community_battery.wiring import subscriptions

# Four 15-minute steps: (load, pv, battery, soc, pcc_p, pcc_vm); prices 40 then export at spot.
STEPS = [
    (0.40, 0.00, 0.20, 0.65, 0.61, 0.990),
    (0.30, 0.10, 0.00, 0.65, 0.21, 0.995),
    (0.20, 0.60, -0.10, 0.62, -0.49, 1.010),
    (0.20, 0.80, 0.00, 0.62, -0.59, 1.012),
]


def test_recorder_writes_the_results_contract(tmp_path):
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml").model_copy(update={"horizon_h": 1})
    inputs = [(s.key, s.type) for s in subscriptions(scenario)["recorder"]]
    keys = [key for key, _ in inputs]
    with federate_under_test("recorder", scenario, tmp_path, 1) as port:
        source = TestFederate("test_source", port, period=900, offset=offset("dso"),
                              publications=inputs)
        source.enter()
        for k, (load, pv, battery, soc, pcc_p, pcc_vm) in enumerate(STEPS):
            source.advance(k * 900)
            values = {
                "market/price_eur_per_mwh": 40.0, "market/export_price_eur_per_mwh": 40.0,
                "lec1/ems/battery_setpoint_mw": battery, "lec1/ems/planned_soc_mwh": soc,
                "lec1/households/p_mw": load, "lec1/households/q_mvar": load * 0.25,
                "lec1/pv/p_mw": pv, "lec1/battery/p_mw": battery, "lec1/battery/soc_mwh": soc,
                "lec1/pcc/p_mw": pcc_p, "lec1/pcc/q_mvar": 0.1, "lec1/pcc/vm_pu": pcc_vm,
                "lec1/lv_busbar/vm_pu": pcc_vm, "lec1/transformer/loading_percent": 30.0,
                "lec1/grid/losses_mw": 0.01, "lec1/grid/losses_mvar": 0.004,
                "lec1/grid/vm_min_pu": min(pcc_vm, 0.98), "lec1/grid/vm_max_pu": 1.0,
                "lec1/grid/bus_violations": k % 2, "lec1/grid/line_overloads": 0,
            }
            for key in keys:
                source.publish(key, values[key])
        source.advance(3600)  # the end time: lets the recorder take its last step
        source.close()

    grid = pd.read_csv(tmp_path / "signals.csv")
    assert list(grid.time) == ["2019-05-26T00:00:00", "2019-05-26T00:15:00", "2019-05-26T00:30:00", "2019-05-26T00:45:00"]
    assert list(grid.load_p_mw) == [s[0] for s in STEPS]
    assert list(grid.pcc_vm_pu) == [s[5] for s in STEPS]
    dso_view = pd.read_csv(tmp_path / "grid.csv")
    assert list(dso_view.columns) == ["time", "vm_min_pu", "vm_max_pu", "bus_violations", "line_overloads",
                                      "p_loss_kw", "q_loss_kvar"]
    assert list(dso_view.bus_violations) == [0, 1, 0, 1]
    assert list(dso_view.vm_min_pu) == [0.98, 0.98, 0.98, 0.98]
    assert dso_view.p_loss_kw.tolist() == pytest.approx([10.0] * 4)
    assert dso_view.q_loss_kvar.tolist() == pytest.approx([4.0] * 4)
    ems = pd.read_csv(tmp_path / "ems.csv")
    assert len(ems) == 1
    row = ems.iloc[0]
    assert row.load_mw == pytest.approx(0.275) and row.pv_mw == pytest.approx(0.375)
    assert row.charge_mw == pytest.approx(0.05) and row.discharge_mw == pytest.approx(0.025)
    assert row.soc_mwh == pytest.approx(0.62)
    assert row.import_mw == pytest.approx(0.275 - 0.375 + 0.05 - 0.025)  # -0.075: net export
    k = json.loads((tmp_path / "summary.json").read_text())["kpis"]
    assert k["import_mwh"] == 0.0 and k["export_mwh"] == pytest.approx(0.075)
    assert k["energy_cost"] == pytest.approx(-0.075 * 40.0)
    assert k["peak_import_mw"] == pytest.approx(0.6)  # 0.40 load + 0.20 charging in the first step
    assert k["vm_min_pu"] == 0.990 and k["vm_max_pu"] == 1.012
    assert k["self_consumption_ratio"] == pytest.approx(1 - 0.075 / 0.375)
    assert k["pcc_peak_p_mw"] == 0.61 and k["losses_mwh"] == pytest.approx(0.01)
    assert k["losses_kwh"] == pytest.approx(10.0) and k["losses_kvarh"] == pytest.approx(4.0)
    assert k["bus_violations"] == 2 and k["line_overloads"] == 0
