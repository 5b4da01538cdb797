"""The three-LEC federations are wired by port: no federate program spells a key or an endpoint.

Each federate's config (``lec_cosim.ports``) maps its ports to HELICS keys and endpoints and names
where each sending port goes (``targets``); the programs read, publish, send and receive by port
only, and know nothing of the plan. Checked on the source of the programs, and on the configs of
every framework: every target is an endpoint of the federation, every port a program uses is in its
config, and the DSO and the recorder are the generic components running the study's grid and record.
"""

import ast
import re

import pytest
from harness import ROOT, SCENARIOS

from lec_cosim.federation import plan
from lec_cosim.scenario import FRAMEWORKS, load_scenario
from lec_cosim.wiring import federate_config

PROGRAMS = ["federates/mlec_ems.py", "federates/mlec_households.py", "federates/mlec_platform.py",
            "federates/dso.py", "federates/recorder.py"]


def configs(framework: str, **changes) -> dict[str, dict]:
    scenario = load_scenario(SCENARIOS / "ieee_eu_lv_three_lecs.yaml").model_copy(update={"framework": framework})
    if changes:
        scenario = scenario.model_copy(update={"dso": scenario.dso.model_copy(update=changes)})
    return {p.name: federate_config(p, "", ROOT) for p in plan(scenario)}


@pytest.mark.parametrize("program", PROGRAMS)
def test_no_program_spells_a_key_or_imports_the_plan(program):
    source = (ROOT / program).read_text()
    assert "mlec/" not in source and "ENDPOINT" not in source and "_endpoint(" not in source
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert "lec_cosim.studies.three_lecs.wiring" not in imported


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_port_a_program_uses_is_in_its_config_and_every_target_is_an_endpoint(framework):
    feds = configs(framework, limits=True)
    endpoints = {e["name"] for c in feds.values() for e in c["endpoints"]}
    for name, config in feds.items():
        ports = config["lec_cosim"].get("ports", {})
        for side in ("out", "in"):
            keys = {s["key"] for s in config["publications" if side == "out" else "subscriptions"]}
            assert {p["key"] for p in ports.get(side, {}).values()} == keys, (name, side)  # every value has a port
        assert set(ports.get("endpoints", {}).values()) == {e["name"] for e in config["endpoints"]}, name
        for port, target in ports.get("targets", {}).items():
            assert set(target.values() if isinstance(target, dict) else [target]) <= endpoints, (name, port)
    # the ports the programs name, by framework
    ems = feds["lec_ems_2"]["lec_cosim"]
    assert set(ems["ports"]["out"]) == {"pooled_charge_kw", "curtail_kw", "record"}
    assert set(ems["ports"]["in"]) == {"import_limit_kw", "export_limit_kw"}
    assert {"plan_offset_s", "clear_offset_s", "settle_offset_s", "admm_slot_s"} <= set(ems)
    # the framework's design, the one place the frameworks differ: the strategy and who bids
    strategy = {"decentralised": "plan_alone", "distributed": "negotiate", "p2p": "run_market"}[framework]
    assert ems["ems"] == strategy and ems["members_bid"] == feds["households"]["lec_cosim"]["members_bid"]
    assert ems["members_bid"] == (framework == "p2p")
    assert feds["recorder"]["lec_cosim"]["tables"] == {"decentralised": [], "distributed": ["negotiation"],
                                                       "p2p": ["p2p_trades"]}[framework]
    expected_targets = {"decentralised": {"platform"}, "distributed": {"lecs"}, "p2p": {"platform", "members"}}
    assert set(ems["ports"].get("targets", {})) == expected_targets[framework]
    assert set(ems["ports"]["endpoints"]) == ({"ems", "meter", "market"} if framework == "p2p" else {"ems", "meter"})
    if framework == "distributed":
        assert ems["ports"]["targets"]["lecs"] == {"lec1": "mlec/lec1/ems", "lec3": "mlec/lec3/ems"}
        assert "platform" not in feds
    else:
        platform = feds["platform"]["lec_cosim"]["ports"]
        assert platform["endpoints"] == {"platform": "mlec/platform"}
        assert platform["targets"]["lecs"] == {lec: f"mlec/{lec}/ems" for lec in ("lec1", "lec2", "lec3")}
    households = feds["households"]["lec_cosim"]
    assert set(households["ports"]["in"]) == {f"{lec}.{v}" for lec in ("lec1", "lec2", "lec3")
                                             for v in ("pooled_charge_kw", "curtail_kw")}
    # every framework: the households measure each LEC_EMS's batteries at H + 0 ms, to its meter endpoint
    assert households["ports"]["endpoints"]["meter"] == "mlec/households/meter"
    assert households["ports"]["targets"]["lec_ems"] == {lec: f"mlec/{lec}/meter" for lec in ("lec1", "lec2", "lec3")}
    assert ems["ports"]["endpoints"]["meter"] == "mlec/lec2/meter"
    assert households["measure_offset_s"] == 0.0 < ems["plan_offset_s"]
    if framework == "p2p":
        assert len(households["ports"]["endpoints"]) == 55 + 1
        assert households["ports"]["endpoints"]["LOAD7"] == "mlec/member/LOAD7"
        assert households["ports"]["targets"]["market"]["lec2"] == "mlec/lec2/market"
        assert ems["ports"]["targets"]["members"]["LOAD7"] == "mlec/member/LOAD7"
    else:
        assert set(households["ports"]["endpoints"]) == {"meter"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_dso_and_the_recorder_are_the_generic_components(framework):
    feds = configs(framework)
    dso, recorder = feds["dso"]["lec_cosim"], feds["recorder"]["lec_cosim"]
    assert dso["module"] == "federates.dso" and dso["grid_adapter"] == "lec_cosim.adapters.three_lec_grid:ThreeLecGrid"
    assert recorder["module"] == "federates.recorder"
    assert recorder["record"] == "lec_cosim.studies.three_lecs.results:MultiLecRecord" and recorder["query_exchanges"] is True
    assert recorder["federates"] == [n for n in feds if n != "recorder"]
    assert all(feds[n]["lec_cosim"]["stay_for_query"] for n in recorder["federates"])
    # what the record reads, by port: every column is an input port, and every LEC's record
    inputs = set(recorder["ports"]["in"])
    assert {c for cols in recorder["columns"].values() for c in cols} <= inputs
    assert {"lec1.record", "lec2.record", "lec3.record"} <= inputs
    assert ("platform.record" in inputs) == (framework != "distributed")
    # the adapter returns exactly the DSO's output ports
    from lec_cosim.adapters.three_lec_grid import INDICATORS, LIMITS, PER_LEC

    assert list(dso["ports"]["out"]) == [*INDICATORS, *PER_LEC, *LIMITS]
    assert set(dso["ports"]["in"]) >= {"net_kw", "load_kvar"}


def test_programs_use_only_ports_their_configs_have():
    """Every literal port name a program passes to read_port, publish_port, endpoint or target exists."""
    feds = {fw: configs(fw) for fw in FRAMEWORKS}
    agents = load_scenario(SCENARIOS / "ieee_eu_lv_three_lecs_hems_agents.yaml")  # p2p with the agent proxy
    pool = agents.model_copy(update={"p2p": agents.p2p.model_copy(update={"market": "pool_operator"})})
    shipped = load_scenario(SCENARIOS / "ieee_eu_lv_three_lecs.yaml")
    per_home = shipped.model_copy(update={"framework": "p2p", "dso": shipped.dso.model_copy(
        update={"limits": True, "limits_per": "household"})})  # the p2p LEC_EMSs read each household's limit
    for name, scenario in (("agents", agents), ("pool_operators", pool), ("household_limits", per_home)):
        feds[name] = {p.name: federate_config(p, "", ROOT) for p in plan(scenario)}
    for program, federate in (("federates/mlec_ems.py", "lec_ems_1"), ("federates/mlec_platform.py", "platform"),
                              ("federates/mlec_households.py", "households")):
        source = (ROOT / program).read_text()
        used = set(re.findall(r'(?:read_port|publish_port|endpoint|target)\("([^"]+)"', source))
        assert used, program
        known = set()
        for c in feds.values():
            if federate in c:
                for side in ("out", "in", "endpoints", "targets"):
                    known |= set(c[federate]["lec_cosim"]["ports"].get(side, {}))
        known |= {"import_limit_kw", "export_limit_kw"}  # in ports with the DSO loop on
        assert used <= known, (program, used - known)


def test_every_design_names_a_strategy_of_the_ems_program():
    from federates.mlec_ems import STRATEGIES
    from lec_cosim.studies.three_lecs.wiring import DESIGNS

    assert set(DESIGNS) == set(FRAMEWORKS)
    assert {d.ems for d in DESIGNS.values()} == set(STRATEGIES)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_household_limits_add_their_ports_only_where_they_are_read(framework):
    """With ``dso.limits_per: household`` the DSO publishes each household's limits and each LEC's for every hour
    after the per-LEC ones; the households read their limits, the recorder everything, the LEC_EMSs the hourly ones
    and, only in p2p (their members' caps), the households' import limits; without it no federate has them (the
    default federation is the one it always was)."""
    from lec_cosim.adapters.three_lec_grid import HOUSEHOLD_LIMITS, INDICATORS, LIMITS, PER_LEC

    feds = configs(framework, limits=True, limits_per="household")
    ports = {name: f["lec_cosim"]["ports"] for name, f in feds.items()}
    assert list(ports["dso"]["out"]) == [*INDICATORS, *PER_LEC, *LIMITS, *HOUSEHOLD_LIMITS]
    assert set(HOUSEHOLD_LIMITS[:2]) <= set(ports["households"]["in"])
    assert set(HOUSEHOLD_LIMITS) <= set(ports["recorder"]["in"])
    assert set(HOUSEHOLD_LIMITS[2:]) <= set(ports["lec_ems_1"]["in"])
    assert ("household_import_limit_kw" in ports["lec_ems_1"]["in"]) == (framework == "p2p")
    default = configs(framework, limits=True)
    assert not any(set(HOUSEHOLD_LIMITS) & set(f["lec_cosim"]["ports"].get(side, {}))
                   for f in default.values() for side in ("in", "out"))
