"""Federate kinds are declared once (``lec_cosim/components``): every study's wiring keeps to the declarations,
and every program uses only the ports and settings its kind declares."""

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from harness import SCENARIOS

from lec_cosim.components import (
    KINDS,
    Port,
    check_plan,
    declaration,
    declared_ports,
    read_settings,
    settings_model,
)
from lec_cosim.federation import plan
from lec_cosim.scenario import load_scenario
from lec_cosim.wiring import Signal

ROOT = Path(__file__).resolve().parents[1]


def every_federation():
    """Every shipped scenario, the three-LEC ones under each framework with and without the DSO loop."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = load_scenario(path)
        if scenario.kind != "three_lecs":
            yield path.stem, scenario
            continue
        for framework in ("decentralised", "distributed", "p2p"):
            for limits in (False, True):
                yield (f"{path.stem}-{framework}-{limits}",
                       scenario.model_copy(update={"framework": framework,
                                                   "dso": scenario.dso.model_copy(update={"limits": limits})}))


def test_every_shipped_federation_keeps_to_its_kinds_declarations():
    kinds_seen = set()
    for label, scenario in every_federation():
        for federate in plan(scenario):  # plan() holds each to its kind's declaration (raises naming the port)
            kinds_seen.add(federate.module.rpartition(".")[2])
    assert kinds_seen == set(KINDS)  # every declared kind is used by some shipped scenario


def _uses(program: Path) -> dict[str, set[str]]:
    """The port names a program spells: publish_port/read_port/port_updated ("out"/"in"), endpoint, target, and
    key_of ("value": out or in), also over a tuple of names (``{port: fed.key_of(port) for port in (...)}``)."""
    calls = {"publish_port": "out", "read_port": "in", "port_updated": "in", "endpoint": "endpoint",
             "target": "target", "key_of": "value"}
    found: dict[str, set[str]] = {side: set() for side in calls.values()}
    tree = ast.parse(program.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.DictComp, ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            for gen in node.generators:
                if isinstance(gen.iter, (ast.Tuple, ast.List)) and isinstance(gen.target, ast.Name) and any(
                        isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr in calls
                        and c.args and isinstance(c.args[0], ast.Name) and c.args[0].id == gen.target.id
                        for c in ast.walk(node)):
                    side = next(calls[c.func.attr] for c in ast.walk(node) if isinstance(c, ast.Call)
                                and isinstance(c.func, ast.Attribute) and c.func.attr in calls)
                    found[side] |= {e.value for e in gen.iter.elts if isinstance(e, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in calls:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found[calls[node.func.attr]].add(arg.value)
            elif isinstance(arg, ast.JoinedStr):  # f"{lec}.{value}": a pattern some declared port must fit
                found[calls[node.func.attr]].add(re.compile("".join(
                    re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in arg.values)))
    return found


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("dso", "recorder")])
def test_each_program_spells_only_ports_its_kind_declares(kind):
    """The DSO and the recorder spell none: their adapters and records read ports by the names the plan gives."""
    declared = declared_ports(f"federates.{kind}")
    # the agent proxy's program only refuses to run: a learning environment is the proxy, its ports spelled there
    programs = (["lec_cosim/env.py", "lec_cosim/studies/local_market/agents.py"] if kind == "agent"
                else [f"federates/{kind}.py"])
    uses: dict[str, set] = {}
    for program in programs:
        for side, names in _uses(ROOT / program).items():
            uses.setdefault(side, set()).update(names)
    assert any(uses.values()), kind
    for side, names in uses.items():
        for name in names:
            sides = ("out", "in") if side == "value" else (side,)
            if isinstance(name, re.Pattern):
                # a member stands for a family's {...}; a {...*} family takes any text, slashes too
                members = (re.sub(r"\{[^}]*\}", "x", re.sub(r"\{[^}]*\*\}", "x/x", p.name)) for p in declared)
                assert any(p.side in sides and name.fullmatch(m) for p, m in zip(declared, members)), (
                    kind, side, name.pattern)
            else:
                assert any(p.side in sides and p.matches(name) for p in declared), (kind, side, name)


def test_each_programs_settings_are_its_kinds():
    """Every ``fed.options.<name>`` a program reads is a field of its kind's Settings, and it reads its settings
    only so (the DSO and the recorder hand theirs to their adapter or record, whose settings their kind's are)."""
    for kind in KINDS:
        if kind not in ("dso", "recorder"):
            assert "fed.settings" not in (ROOT / "federates" / f"{kind}.py").read_text(), kind
        fields = set(settings_model(f"federates.{kind}").model_fields)
        tree = ast.parse((ROOT / "federates" / f"{kind}.py").read_text())
        read = {node.attr for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "options"}
        read |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                 and isinstance(node.value, ast.Name) and node.value.id == "options"}
        assert read <= fields, (kind, read - fields)


def _a_plan(name="trondelag_arbitrage", federate="lec_ems"):
    return next(f for f in plan(load_scenario(SCENARIOS / f"{name}.yaml")) if f.name == federate)


def test_a_port_its_kind_does_not_declare_is_refused():
    lec_ems = _a_plan()
    bad = dataclasses.replace(lec_ems, publications=lec_ems.publications + [Signal("x/soc", port="soc_pu")])
    with pytest.raises(ValueError, match=r"federate lec_ems \(federates.lec_ems\): out port 'soc_pu' is not one"):
        check_plan(bad)


def test_a_port_of_another_type_or_unit_is_refused():
    lec_ems = _a_plan()
    as_vector = [dataclasses.replace(s, type="vector") if s.port == "setpoint_mw" else s for s in lec_ems.publications]
    with pytest.raises(ValueError, match="out port 'setpoint_mw' is vector, its kind declares double"):
        check_plan(dataclasses.replace(lec_ems, publications=as_vector))
    in_kw = [dataclasses.replace(s, unit="kW") if s.port == "setpoint_mw" else s for s in lec_ems.publications]
    with pytest.raises(ValueError, match="out port 'setpoint_mw' is in kW, its kind declares MW"):
        check_plan(dataclasses.replace(lec_ems, publications=in_kw))


def test_a_port_its_kind_needs_left_unconnected_is_refused():
    households = _a_plan(federate="households")
    with pytest.raises(ValueError, match="federate households .*: its in port 'setpoint_mw' is not connected"):
        check_plan(dataclasses.replace(households, subscriptions=[]))


def test_unknown_or_mistyped_settings_are_refused_by_the_compiler_and_the_program():
    market = _a_plan("ieee_eu_lv_lem_plain", "market")
    assert market.settings["solver"] == "merit_order"
    with pytest.raises(ValueError,
                       match="federates.lem_market config: solver: Input should be 'merit_order', 'glpk' or 'highs'"):
        check_plan(dataclasses.replace(market, settings={**market.settings, "solver": "simplex"}))
    with pytest.raises(ValueError, match="federates.lem_market config: solvr: Extra inputs are not permitted"):
        check_plan(dataclasses.replace(market, settings={**market.settings, "solvr": "glpk"}))
    section = {"scenario": "s.json", "output_dir": ".", "module": "federates.lem_market", "solver": "highs"}
    assert read_settings("federates.lem_market", section).solver == "highs"
    with pytest.raises(ValueError, match="stay_for_query: Input should be a valid boolean"):
        read_settings("federates.lem_market", {**section, "stay_for_query": "yes"})
    with pytest.raises(KeyError, match="is no federate program of lec-cosim"):
        read_settings("federates.common", section)


def test_a_family_matches_its_members_only():
    family = Port("{lec}.curtail_kw", "in", "double", "kW")
    assert family.matches("lec2.curtail_kw")
    assert not family.matches("curtail_kw") and not family.matches("a/b.curtail_kw")
    anything = Port("{value*}", "in", "any")
    assert anything.matches("participants_1/load_kw") and anything.matches("price")


def test_the_dso_declares_its_adapters_ports():
    """The same DSO kind, three grids: its ports are the adapter's, with the types the grid gives."""
    community = declared_ports("federates.dso", {"grid_adapter": "lec_cosim.adapters.community_grid:CommunityGrid",
                                                 "extra_loads_mw": ["added_p_mw"]})
    by_name = {(p.side, p.name): p for p in community}
    assert by_name[("out", "pcc_p_mw")].unit == "MW" and by_name[("out", "bus_violations")].type == "integer"
    assert by_name[("in", "added_p_mw")].unit == "MW"
    feeder = {(p.side, p.name): p for p in declared_ports(
        "federates.dso", {"grid_adapter": "lec_cosim.adapters.ieee_feeder:IeeeFeederGrid", "block_steps": 4})}
    assert feeder[("out", "vm_min_pu")].type == "vector" and feeder[("in", "{group}/load_kw")].unit == "kW"


def test_each_kind_is_a_declaration_beside_its_program():
    helpers = {"__init__", "common", "topology"}  # federates/ modules that are no program
    assert set(KINDS) == {path.stem for path in (ROOT / "federates").glob("*.py")} - helpers
    for kind in KINDS:
        module = declaration(f"federates.{kind}")
        assert module.PROGRAM == f"federates.{kind}"
        assert (ROOT / "federates" / f"{kind}.py").is_file()
        assert hasattr(module, "PORTS") or hasattr(module, "ports")
