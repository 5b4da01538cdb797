"""``lec-cosim interface``: the published interface of each kind of federation, as a run registers it."""

import json
import subprocess
import sys

import pytest
from harness import SCENARIOS

from lec_cosim.interface import federation_interface
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim.cli"]


def published(interface: dict) -> dict[str, dict]:
    return {p["key"]: p for fed in interface["federates"] for p in fed["publications"]}


@pytest.mark.parametrize("name", ["trondelag_arbitrage", "ieee_eu_lv_lem_plain", "ieee_eu_lv_three_lecs"])
def test_every_subscription_is_someone_s_publication_of_the_same_type(name):
    interface = federation_interface(load_scenario(SCENARIOS / f"{name}.yaml"))
    pubs = published(interface)
    assert interface["time_unit"] == "s" and len(interface["federates"]) >= 4
    names = [fed["name"] for fed in interface["federates"]]
    assert len(names) == len(set(names)) and not any("broker" in n for n in names)
    for fed in interface["federates"]:
        assert fed["period_s"] > 0 and all(0 <= o < fed["period_s"] for o in fed["offsets_s"])
        for sub in fed["subscriptions"]:
            assert sub["key"] in pubs, (fed["name"], sub["key"])
            assert sub["type"] == pubs[sub["key"]]["type"], sub["key"]


def test_the_community_battery_federation_declares_periods_units_and_no_endpoints():
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    interface = federation_interface(scenario)
    by_name = {fed["name"]: fed for fed in interface["federates"]}
    assert by_name["market"]["period_s"] == scenario.resolution.market_min * 60
    assert by_name["lec_ems"]["period_s"] == scenario.resolution.ems_min * 60
    assert by_name["dso"]["period_s"] == by_name["households"]["period_s"] == scenario.resolution.grid_min * 60
    offsets = [by_name[n]["offsets_s"][0] for n in ("market", "lec_ems", "households", "dso", "recorder")]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5  # the data flow within an instant
    pubs = published(interface)
    assert pubs["lec1/pcc/p_mw"]["unit"] == "MW" and pubs["lec1/battery/soc_mwh"]["unit"] == "MWh"
    assert all(not fed["endpoints"] for fed in interface["federates"])


def test_the_local_market_gives_every_player_an_endpoint_and_hourly_vectors():
    scenario = load_scenario(SCENARIOS / "ieee_eu_lv_lem_plain.yaml")
    interface = federation_interface(scenario)
    by_name = {fed["name"]: fed for fed in interface["federates"]}
    assert len(by_name["participants_1"]["endpoints"]) == 61
    assert by_name["market"]["endpoints"] == ["lem/market"] and by_name["recorder"]["endpoints"] == ["lem/recorder"]
    assert by_name["dso"]["period_s"] == 3600  # exchange: period, the hour's grid steps as vectors
    assert {p["type"] for p in by_name["dso"]["publications"]} == {"vector"}


def test_cli_writes_json_and_markdown(tmp_path):
    target = tmp_path / "interface.json"
    done = subprocess.run(CLI + ["interface", str(SCENARIOS / "trondelag_arbitrage.yaml"), "-o", str(target)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    interface = json.loads(target.read_text())
    assert interface["scenario"] == "trondelag_arbitrage"
    done = subprocess.run(CLI + ["interface", str(SCENARIOS / "trondelag_arbitrage.yaml"), "--format", "markdown"],
                          capture_output=True, text=True)
    assert done.returncode == 0
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == sum(len(fed["publications"]) for fed in interface["federates"])
    done = subprocess.run(CLI + ["interface", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert done.returncode == 2 and "missing.yaml" in done.stderr and "Traceback" not in done.stderr


def test_the_docs_list_every_federation_as_the_generator_does_today():
    """docs/reference/interface.md is its template with every listing written by docs/gen_reference.py (at each
    make docs); the template lists one federation of every study and every three-LEC framework."""
    import importlib.util
    import re
    import shlex

    from harness import ROOT

    from lec_cosim.cli import _load, build_parser
    from lec_cosim.interface import federation_interface, interface_markdown
    from lec_cosim.scenario import FRAMEWORKS, LemScenario, MultiLecScenario, Scenario

    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    page = gen.interface_page()
    blocks = re.findall(r"<!-- interface: (.+?) -->\n(.*?)\n<!-- /interface -->", page, flags=re.S)
    assert len(blocks) == len(gen.interface_blocks((ROOT / "docs" / gen.INTERFACE_TEMPLATE).read_text())) == 5
    studies, frameworks = set(), set()
    for args, listed in blocks:
        parsed = build_parser().parse_args(["interface", *shlex.split(args)])
        parsed.scenario = str(ROOT / parsed.scenario)
        scenario = _load(parsed)
        studies.add(type(scenario))
        if isinstance(scenario, MultiLecScenario):
            frameworks.add(scenario.framework)
        assert listed == interface_markdown(federation_interface(scenario)).strip(), args
    assert studies == {Scenario, LemScenario, MultiLecScenario} and frameworks == set(FRAMEWORKS)
