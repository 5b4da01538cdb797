"""DSO of the three-LEC scenario over a real broker, with the DSO loop on: the generic DSO component
(``federates/dso.py``) running the study's grid adapter (``lec_cosim.adapters.three_lec_grid.ThreeLecGrid``).

A test households federate publishes the members' powers of the first hour (lec3's community
battery charging at 20 kW in the third step); an observer reads what the DSO publishes. Checked
against the grid model solved in this process with the same powers, and against the power balance.
At the end the DSO's per-bus voltage extremes and per-line peak loadings must be those of the four
steps' flows.
"""

import numpy as np
import pytest
from harness import TestFederate, enter_all, federate_under_test, write_scenario

from lec_cosim.federation import federate_config
from lec_cosim.models.grid_extremes import read_grid_extremes
from lec_cosim.models.multi_lec_ems import members_from_scenario
from lec_cosim.models.multi_lec_grid import MultiLecGrid, OperatingEnvelope
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.three_lecs.wiring import (
    GRID_COUNTS,
    GRID_DOUBLES,
    GRID_VECTORS,
    HOUSEHOLD_VECTORS,
    HOUSEHOLDS_OFFSET_S,
    RECORDER_OFFSET_S,
)


@pytest.mark.timeout(180)
def test_dso_solves_every_step_and_publishes_indicators_and_limits(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_three_lecs", {"horizon_h": 1, "dso.limits": True}))
    members = members_from_scenario(scenario)
    kinds = members.table["kind"].to_numpy()
    battery = np.zeros((len(kinds), 4))
    battery[members.table["member"] == "lec3_battery", 2] = 20.0
    net = members.load_kw[:, :4] - members.pv_kw[:, :4] + battery
    published = []
    config = federate_config(scenario, "dso", 0, tmp_path)["lec_cosim"]
    assert (config["module"], config["grid_adapter"]) == ("federates.dso", "lec_cosim.adapters.three_lec_grid:ThreeLecGrid")
    with federate_under_test("dso", scenario, tmp_path / "run", 2) as port:
        households = TestFederate("households", port, period=900.0, offset=HOUSEHOLDS_OFFSET_S,
                                  publications=[(f"mlec/households/{v}", "vector") for v in HOUSEHOLD_VECTORS])
        subs = ([(f"mlec/grid/{v}", "double") for v in GRID_DOUBLES] + [(f"mlec/grid/{v}", "integer")
                for v in GRID_COUNTS] + [(f"mlec/grid/{v}", "vector") for v in GRID_VECTORS])
        observer = TestFederate("observer", port, period=900.0, offset=RECORDER_OFFSET_S, subscriptions=subs)
        enter_all(households, observer)
        for step in range(4):
            households.arrive(step * 900.0)
            values = {"load_kw": members.load_kw[:, step], "load_kvar": members.load_kvar[:, step],
                      "pv_kw": members.pv_kw[:, step], "curtailed_kw": np.zeros(len(kinds)),
                      "battery_kw": battery[:, step], "soc_kwh": np.zeros(len(kinds)), "net_kw": net[:, step]}
            for v in HOUSEHOLD_VECTORS:
                households.publish(f"mlec/households/{v}", values[v])
            households.request((step + 1) * 900.0 if step < 3 else 3600.0)
            observer.arrive(step * 900.0)
            published.append({**{v: observer.value(f"mlec/grid/{v}") for v in GRID_DOUBLES},
                              **{v: observer.integer(f"mlec/grid/{v}") for v in GRID_COUNTS},
                              **{v: np.array(observer.vector(f"mlec/grid/{v}")) for v in GRID_VECTORS}})
        households.granted()
        for fed in (households, observer):
            fed.close()

    grid = MultiLecGrid(members, step_h=0.25)
    envelope = OperatingEnvelope.build(grid, margin_pu=scenario.dso.margin_pu)
    homes = kinds == "household"
    results = []
    for step, got in enumerate(published):
        result = grid.solve(net[homes, step], members.load_kvar[homes, step], -net[kinds == "community_battery", step])
        results.append(result)
        assert got["vm_min_pu"] == pytest.approx(result.grid.vm_min_pu, abs=1e-6)
        assert got["vm_max_pu"] == pytest.approx(result.grid.vm_max_pu, abs=1e-6)
        assert got["p_loss_kw"] == pytest.approx(result.grid.p_loss_kw, abs=1e-4)
        assert got["bus_violations"] == result.grid.bus_violations
        np.testing.assert_allclose(got["lec_vm_min_pu"], result.lec_vm_min_pu, atol=1e-6)
        # The transformer carries the members' net power and the losses.
        assert got["trafo_p_kw"] == pytest.approx(net[:, step].sum() + got["p_loss_kw"], abs=0.05)
        np.testing.assert_allclose(got["lec_net_import_kw"], members.lec_sum(net[:, step:step + 1])[:, 0], atol=1e-9)
        imports, exports = envelope.period_limits(results)
        np.testing.assert_allclose(got["import_limit_kw"], imports, rtol=1e-6)
        np.testing.assert_allclose(got["export_limit_kw"], exports, rtol=1e-6)
        assert (got["import_limit_kw"] >= 0).all() and (got["export_limit_kw"] >= 0).all()
    # Charging lec3's battery at 20 kW draws 20 kW more through lec3.
    assert published[2]["lec_net_import_kw"][2] - published[1]["lec_net_import_kw"][2] == pytest.approx(
        20.0 + (net[members.table["lec"] == "lec3", 2] - battery[members.table["lec"] == "lec3", 2]).sum()
        - net[members.table["lec"] == "lec3", 1].sum(), abs=1e-9)

    # the run's extremes: of the four steps' flows
    buses, lines = read_grid_extremes(tmp_path / "run")
    vm = np.stack([r.grid.vm_pu.to_numpy() for r in results])
    np.testing.assert_allclose(buses["vm_min_pu"], vm.min(axis=(0, 2)), rtol=0, atol=1e-6)
    np.testing.assert_allclose(buses["vm_max_pu"], vm.max(axis=(0, 2)), rtol=0, atol=1e-6)
    assert buses["vm_min_pu"].min() == min(got["vm_min_pu"] for got in published)
    assert buses["vm_max_pu"].max() == max(got["vm_max_pu"] for got in published)
    assert buses["steps_out_of_band"].sum() == sum(got["bus_violations"] for got in published)
    assert lines["steps_overloaded"].sum() == sum(got["line_overloads"] for got in published)
    feeder_lines = lines[lines["kind"] == "line"]
    assert feeder_lines["loading_max_percent"].max() == max(got["max_line_loading_percent"] for got in published)
