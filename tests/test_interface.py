"""``lec-cosim interface``: the published interface of each kind of federation, as a run registers it."""

import json
import subprocess
import sys

import pytest
from harness import SCENARIOS

from lec_cosim.interface import federation_interface
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim"]


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
        assert fed["schedule_s"] and all(period >= 1 and 0 <= offset < period for period, offset in fed["schedule_s"])
        for sub in fed["subscriptions"]:
            assert sub["key"] in pubs, (fed["name"], sub["key"])
            assert sub["type"] == pubs[sub["key"]]["type"], sub["key"]


def test_the_community_battery_federation_declares_periods_units_and_no_endpoints():
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    interface = federation_interface(scenario)
    by_name = {fed["name"]: fed for fed in interface["federates"]}
    period = {name: fed["schedule_s"][0][0] for name, fed in by_name.items()}
    assert period["market"] == scenario.resolution.market_min * 60
    assert period["lec_ems"] == scenario.resolution.ems_min * 60
    assert period["dso"] == period["households"] == scenario.resolution.grid_min * 60
    offsets = [by_name[n]["schedule_s"][0][1] for n in ("market", "lec_ems", "households", "dso", "recorder")]
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
    assert by_name["dso"]["schedule_s"] == [[3600, 0.004]]  # exchange: period, the hour's grid steps as vectors
    # the players order at +1 ms and dispatch at +3 ms of every hour (HELICS gives them 1 ms slots)
    assert by_name["participants_1"]["schedule_s"] == [[3600, 0.001], [3600, 0.003]]
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
