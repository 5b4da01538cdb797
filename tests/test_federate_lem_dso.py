"""DSO federate of a local-market run over a real broker: two test participant groups publish injections.

Eight quarter-hour steps (2 h) with injections chosen by the test: the community's real noon profile,
only the six CHPs at 10 kW, nothing at all, a single 30 kW PV unit at two places of the feeder
(overvoltage on two disjoint sets of buses), every household at 8 kW (undervoltage), the noon profile
with the CHPs at 10 kW, and nothing again. A test observer reads every DSO publication (doubles and integers); each
value must equal :meth:`LemGrid.solve` run here in the same order on the same injections, and make
physical sense. The distinct-bus counters must be the union of the violated buses so far. Both
exchange modes: every grid step its own time step, or the hour's four steps as vectors. At the end,
the run's per-bus voltage extremes and per-line peak loadings the DSO wrote must be those of the
same power flows, and its timing file must hold one row per slot with what it published.
"""

import numpy as np
import pandas as pd
import pytest
from harness import TestFederate, enter_all, federate_under_test, write_scenario

from lec_cosim.adapters.ieee_feeder import OUTPUTS
from lec_cosim.models.grid_extremes import read_grid_extremes
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.models.lem_grid import LemGrid
from lec_cosim.models.lem_participants import reduced_bus_numbering
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.wiring import (
    DISPATCH_OFFSET_S,
    DSO_COUNTS,
    DSO_DAY_COUNTS,
    DSO_DOUBLES,
    DSO_OFFSET_S,
    PARTICIPANT_VECTORS,
    RECORDER_OFFSET_S,
    groups,
    plan,
)
from lec_cosim.timing import read_timing

HORIZON_H = 2
NOON = 48  # 12:00-12:15 of the day
PV_SPOTS = ("LOAD29", "LOAD41")  # 30 kW each: overvoltage on two disjoint sets of buses


def injections(community, names: list[str]) -> list[dict[str, np.ndarray]]:
    """Per step: load_kw, load_kvar, pv_kw, chp_kw of every participant, in the order of ``names``."""
    idx = [community.names.index(n) for n in names]
    kinds = community.kinds[idx]
    zero = np.zeros(len(names))
    noon = {"load_kw": community.load_kw[idx, NOON], "load_kvar": community.load_kvar[idx, NOON],
            "pv_kw": community.pv_kw[idx, NOON], "chp_kw": zero}
    nothing = {v: zero for v in noon}

    def pv_at(name):
        return {**nothing, "pv_kw": np.where(np.array(names) == name, 30.0, 0.0)}

    households = kinds != "chp"
    heavy = np.where(households, 8.0, 0.0)
    chp = np.where(kinds == "chp", 10.0, 0.0)
    return [
        noon,
        {**nothing, "chp_kw": chp},
        nothing,
        pv_at(PV_SPOTS[0]),
        pv_at(PV_SPOTS[1]),
        {**nothing, "load_kw": heavy, "load_kvar": heavy * 0.33},
        {**noon, "chp_kw": chp},
        nothing,
    ]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("exchange", ["step", "period"])
def test_dso_runs_a_power_flow_per_step_and_publishes_what_lem_grid_computes(tmp_path, exchange):
    path = write_scenario(tmp_path, "ieee_eu_lv_base_plain", {"horizon_h": HORIZON_H, "participants.federates": 2,
                                                              "resolution.exchange": exchange})
    scenario = load_scenario(path)
    members = groups(scenario)
    assert list(members) == ["participants_1", "participants_2"]
    dso_plan = next(f for f in plan(scenario) if f.name == "dso")
    # the generic DSO program running the feeder's adapter, which returns exactly the DSO's output ports
    assert dso_plan.module == "federates.dso"
    assert dso_plan.settings["grid_adapter"] == "lec_cosim.adapters.ieee_feeder:IeeeFeederGrid"
    assert [s.port for s in dso_plan.publications] == list(OUTPUTS)
    assert dso_plan.settings["groups"] == members
    assert [s.port for s in dso_plan.subscriptions] == [f"{g}/{v}" for g in members for v in PARTICIPANT_VECTORS]
    block = dso_plan.settings["block_steps"]
    assert block == (1 if exchange == "step" else 4) and dso_plan.period_s == block * scenario.grid_step_s
    pub_types = {s.key: s.type for s in dso_plan.publications}
    doubles = [f"lem/grid/{v}" for v in DSO_DOUBLES]
    integers = [f"lem/grid/{v}" for v in DSO_COUNTS + DSO_DAY_COUNTS]
    assert sorted(pub_types) == sorted(doubles + integers)
    if block == 1:
        assert {pub_types[k] for k in doubles} == {"double"} and {pub_types[k] for k in integers} == {"integer"}
    else:  # a value per grid step of the hour
        assert set(pub_types.values()) == {"vector"}

    day = community_from_scenario(scenario.model_copy(update={"horizon_h": 24.0}))
    per_group = {g: injections(day, names) for g, names in members.items()}
    n_steps = len(per_group["participants_1"])
    assert n_steps == HORIZON_H * 3600 // scenario.grid_step_s

    seen = []
    period_s = dso_plan.period_s
    with federate_under_test("dso", scenario, tmp_path / "run", len(members) + 1) as port:
        stand_ins = [TestFederate(f"test_{g}", port, period=period_s, offset=DISPATCH_OFFSET_S,
                                  publications=[(f"lem/{g}/{v}", "vector") for v in PARTICIPANT_VECTORS])
                     for g in members]
        observer = TestFederate("test_observer", port, period=period_s, offset=RECORDER_OFFSET_S,
                                subscriptions=[(k, pub_types[k]) for k in doubles + integers])
        enter_all(*stand_ins, observer)
        for fed in stand_ins:
            fed.request(0.0)
        for b in range(n_steps // block):
            t = b * float(period_s)
            steps = range(b * block, (b + 1) * block)
            observer.request(t)  # t + 5 ms
            for fed, g in zip(stand_ins, members):
                fed.arrive(t)  # t + 3 ms
                inj = {v: np.concatenate([per_group[g][k][v] for k in steps])  # step-major
                       for v in ("load_kw", "load_kvar", "pv_kw", "chp_kw")}
                for v in ("load_kw", "load_kvar", "pv_kw", "chp_kw"):
                    fed.publish(f"lem/{g}/{v}", inj[v])
                fed.publish(f"lem/{g}/net_kw", inj["load_kw"] - inj["pv_kw"] - inj["chp_kw"])
                fed.request(t + period_s)
            observer.arrive(t)
            assert all(observer.updated(key) for key in doubles + integers), b
            if block == 1:
                row = {key: observer.value(key) for key in doubles}
                row.update({key: observer.integer(key) for key in integers})
                seen.append({key.rsplit("/", 1)[1]: value for key, value in row.items()})
            else:
                vectors = {key: observer.vector(key) for key in doubles + integers}
                assert all(len(v) == block for v in vectors.values()), b
                seen += [{key.rsplit("/", 1)[1]: (int(v[j]) if key in integers else v[j])
                          for key, v in vectors.items()} for j in range(block)]
        observer.close()
        for fed in stand_ins:
            fed.granted()
            fed.close()

    # The same power flows in this process, in the same order (each warm-started from the last).
    community = community_from_scenario(scenario)
    g = scenario.grid
    grid = LemGrid(table=community.table, data_dir=scenario.feeder.data_dir, vm_min_pu=g.vm_min_pu,
                   vm_max_pu=g.vm_max_pu, max_loading_percent=g.max_loading_percent,
                   va_max_deviation_degree=g.va_max_deviation_degree, violation_model=g.dn_impact_counts,
                   step_h=scenario.grid_step_s / 3600.0)
    kind = community.table.set_index("participant")["kind"]
    reduced = {int(b) for b in reduced_bus_numbering(scenario.feeder.data_dir)}
    source_vm = float(grid.net.ext_grid["vm_pu"].iat[0])
    violated_sets, totals, results = [], [], []
    violated = set()
    for k in range(n_steps):
        frames = {v: pd.concat([pd.Series(per_group[grp][k][v], index=names) for grp, names in members.items()])
                  for v in ("load_kw", "load_kvar", "pv_kw", "chp_kw")}
        households = [n for n in frames["load_kw"].index if kind[n] != "chp"]
        prosumers = [n for n in households if kind[n] == "prosumer"]
        chps = [n for n in frames["load_kw"].index if kind[n] == "chp"]
        grid.set_injections(load_kw=frames["load_kw"][households], load_kvar=frames["load_kvar"][households],
                            pv_kw=frames["pv_kw"][prosumers], chp_kw=frames["chp_kw"][chps])
        r = grid.solve()
        results.append(r)
        vm = r.vm_pu
        out = {int(b) for b in vm.index[((vm < g.vm_min_pu) | (vm > g.vm_max_pu)).any(axis=1).to_numpy()]}
        assert len(out) == r.bus_violations
        violated |= out
        violated_sets.append(out)
        totals.append({key: float(frames[key].sum()) for key in frames})

        got = seen[k]
        for name in DSO_DOUBLES:
            assert got[name] == pytest.approx(getattr(r, name), abs=1e-9), (k, name)
        for name in DSO_COUNTS:
            assert got[name] == getattr(r, name), (k, name)
        assert got["violated_buses_so_far"] == len(violated), k
        assert got["violated_buses_so_far_reduced"] == len(violated & reduced), k

    # --- physical sense --------------------------------------------------------------------------------
    for k, (got, tot) in enumerate(zip(seen, totals)):
        # power balance at the transformer: consumption - generation + losses
        assert got["trafo_p_kw"] == pytest.approx(tot["load_kw"] - tot["pv_kw"] - tot["chp_kw"] + got["p_loss_kw"],
                                                  abs=1e-3), k
        assert got["p_loss_kw"] > -1e-6 and got["vm_min_pu"] <= got["vm_max_pu"]
    noon, chp_only, zero, pv_a, pv_b, heavy, noon_chp, zero_again = seen
    for z in (zero, zero_again):
        assert abs(z["p_loss_kw"]) < 1e-6 and abs(z["q_loss_kvar"]) < 1e-6 and abs(z["dn_impact"]) < 1e-6
        assert abs(z["trafo_p_kw"]) < 1e-4
        assert z["vm_min_pu"] == pytest.approx(source_vm, abs=1e-6)
        assert z["vm_max_pu"] == pytest.approx(source_vm, abs=1e-6)
        assert all(z[name] == 0 for name in DSO_COUNTS)
    # CHPs at 10 kW: 60 kW less through the transformer, higher voltages
    assert chp_only["vm_max_pu"] > zero["vm_max_pu"] + 0.01 and -60.0 < chp_only["trafo_p_kw"] < -55.0
    assert chp_only["trafo_p_kw"] == pytest.approx(-60.0 + chp_only["p_loss_kw"], abs=1e-3)
    assert chp_only["p_loss_kw"] > 0.1 and chp_only["dn_impact"] > 0
    assert noon_chp["vm_max_pu"] > noon["vm_max_pu"] and noon_chp["vm_min_pu"] > noon["vm_min_pu"]
    assert noon_chp["trafo_p_kw"] - noon["trafo_p_kw"] == pytest.approx(
        -60.0 + noon_chp["p_loss_kw"] - noon["p_loss_kw"], abs=1e-3)
    assert noon["trafo_p_kw"] < 0  # the noon PV surplus flows back to the 11 kV side
    # one 30 kW PV unit: overvoltage on its feeder path; the two places violate disjoint sets of buses
    for step, hot in ((3, pv_a), (4, pv_b)):
        assert hot["vm_max_pu"] > g.vm_max_pu and hot["bus_violations"] > 0 and hot["vm_min_pu"] > g.vm_min_pu
    assert not violated_sets[3] & violated_sets[4]
    assert pv_b["violated_buses_so_far"] == len(set().union(*violated_sets[:5]))
    assert zero["violated_buses_so_far"] == 0  # noon and the CHPs alone stay in the band
    assert pv_a["violated_buses_so_far"] == pv_a["bus_violations"]
    assert pv_b["violated_buses_so_far"] == pv_a["bus_violations"] + pv_b["bus_violations"]
    # every household at 8 kW: undervoltage
    assert heavy["vm_min_pu"] < g.vm_min_pu and heavy["vm_max_pu"] < g.vm_max_pu and heavy["bus_violations"] > 0
    # the distinct-bus counters never decrease, and end at the union of all steps
    for name in DSO_DAY_COUNTS:
        counts = [row[name] for row in seen]
        assert counts == sorted(counts), name
    assert seen[-1]["violated_buses_so_far"] == len(set().union(*violated_sets)) == len(violated)
    assert seen[-1]["violated_buses_so_far_reduced"] == len(violated & reduced) > 0
    assert heavy["violated_buses_so_far"] >= heavy["bus_violations"] >= heavy["bus_violations_reduced"] > 0

    # --- the run's extremes (written by the DSO in its last slot) --------------------------------------
    buses, lines = read_grid_extremes(tmp_path / "run")
    vm = np.stack([r.vm_pu.to_numpy() for r in results])  # (step, bus, phase), solved here
    np.testing.assert_allclose(buses["vm_min_pu"], vm.min(axis=(0, 2)), rtol=0, atol=1e-9)
    np.testing.assert_allclose(buses["vm_max_pu"], vm.max(axis=(0, 2)), rtol=0, atol=1e-9)
    # the same flows the DSO published: its extremes over buses are its published extremes over steps, exactly
    assert buses["vm_min_pu"].min() == min(row["vm_min_pu"] for row in seen)
    assert buses["vm_max_pu"].max() == max(row["vm_max_pu"] for row in seen)
    assert set(buses.loc[buses["out_of_band"], "bus"]) == violated
    assert buses["steps_out_of_band"].sum() == sum(row["bus_violations"] for row in seen)
    assert lines["steps_overloaded"].sum() == sum(row["line_overloads"] for row in seen)
    feeder_lines = lines[lines["kind"] == "line"]
    np.testing.assert_allclose(feeder_lines["loading_max_percent"],
                               np.max([r.line_loading_percent.to_numpy() for r in results], axis=0), rtol=1e-9)
    trafo = lines[lines["kind"] == "transformer"]["loading_max_percent"]
    assert trafo.iat[0] == pytest.approx(max(r.trafo_loading_percent for r in results), rel=1e-9)
    assert 0 < trafo.iat[0] < 100

    # --- its timing: one row per slot, with what it published -------------------------------------------
    timing = read_timing(tmp_path / "run").slots
    n_slots = n_steps // block
    assert list(timing["slot"]) == list(range(n_slots))
    np.testing.assert_allclose(timing["slot_time_s"], np.arange(n_slots) * period_s + DSO_OFFSET_S, rtol=0, atol=1e-9)
    assert (timing["values_published"] == len(doubles) + len(integers)).all()
    assert (timing["messages_sent"] == 0).all() and (timing["work_s"] > 0).all()
