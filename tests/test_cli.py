"""The CLI as a user meets it: validation, one-line errors, a failing federate, runner files."""

import json
import re
import subprocess
import sys

import pytest
from harness import SCENARIOS, no_process_mentions

from lec_cosim.federation import (
    broker_port_span,
    free_broker_port,
    release_broker_ports,
    write_federation,
)
from lec_cosim.launch import FederationError, run_federation
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim"]


def cli(*args):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120)


def test_validate_accepts_the_shipped_scenarios():
    for name in ("trondelag_arbitrage", "trondelag_self_consumption", "trondelag_arbitrage_year"):
        result = cli("validate", str(SCENARIOS / f"{name}.yaml"))
        assert result.returncode == 0, result.stderr
        assert f"valid scenario '{name}'" in result.stdout


def test_bad_scenario_is_one_line_naming_file_and_field(tmp_path):
    text = (SCENARIOS / "trondelag_arbitrage.yaml").read_text().replace("efficiency: 0.95", "efficiency: 1.5")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("../data", str(SCENARIOS.parent / "data")))
    for command in (["validate", str(bad)], ["run", str(bad), "--out", str(tmp_path / "out")]):
        result = cli(*command)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert str(bad) in lines[0] and "battery.efficiency" in lines[0]
    assert not (tmp_path / "out").exists()


def test_horizon_beyond_the_data_is_an_input_error(tmp_path):
    text = (SCENARIOS / "trondelag_arbitrage.yaml").read_text().replace("start: 2019-05-26T00:00:00",
                                                                       "start: 2019-12-31T12:00:00")
    bad = tmp_path / "late.yaml"
    bad.write_text(text.replace("../data", str(SCENARIOS.parent / "data")))
    result = cli("run", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "data:" in result.stderr and "2020-01-01" in result.stderr


def test_existing_results_are_not_overwritten_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    result = cli("run", str(SCENARIOS / "trondelag_arbitrage.yaml"), "--out", str(out))
    assert result.returncode == 2 and "--force" in result.stderr
    assert (out / "summary.json").read_text() == "{}"



def test_a_federate_failing_mid_run_ends_the_federation_and_names_it(tmp_path):
    """A 100 kVA transformer: the DSO's power flow diverges at the 09:00 export peak (step 36 of 96)."""
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    write_federation(scenario, tmp_path)
    broken = scenario.model_copy(update={"grid": scenario.grid.model_copy(update={
        "transformer": scenario.grid.transformer.model_copy(update={"sn_mva": 0.1})})})
    (tmp_path / "dso_scenario.json").write_text(broken.to_json())
    config = json.loads((tmp_path / "configs" / "dso.json").read_text())
    config["lec_cosim"]["scenario"] = str(tmp_path / "dso_scenario.json")
    (tmp_path / "configs" / "dso.json").write_text(json.dumps(config))

    with pytest.raises(FederationError) as failure:
        run_federation(tmp_path, timeout_s=120)
    message = str(failure.value)
    assert message.startswith("federate dso failed: dso: input: grid: power flow did not converge")
    assert "[simulated time 2019-05-26 09:00]" in message
    assert failure.value.input_error[0] == "grid"
    # The step that failed is 09:00-09:15: its PV, as the households published it, is in the message.
    pv = HouseholdFleet.from_scenario(scenario).power(scenario.start, 900, 96).pv_p_mw
    assert f"PV {pv.iat[36]:.4f} MW" in message
    # The recorder never got step 36. (How far it got depends on scheduling: nothing waits for the
    # recorder, so the DSO may run ahead of it; it was at step 35, 08:45, in most runs, once at 04:15.)
    recorder = (tmp_path / "logs" / "recorder.log").read_text()
    last_slot = re.findall(r"^error: recorder: .*\[simulated time (\S+ \S+)\]$", recorder, flags=re.M)
    assert last_slot and "2019-05-26 00:00" <= last_slot[-1] <= "2019-05-26 08:45", recorder
    assert "[32400.004]" not in recorder
    assert no_process_mentions(str(tmp_path))
    assert not (tmp_path / "summary.json").exists()


def test_runner_file_is_what_helics_run_expects(tmp_path):
    result = cli("runner", str(SCENARIOS / "trondelag_arbitrage.yaml"), "-o", str(tmp_path / "runner.json"))
    assert result.returncode == 0, result.stderr
    runner = json.loads((tmp_path / "runner.json").read_text())
    names = [f["name"] for f in runner["federates"]]
    assert names == ["broker", "market", "lec_ems", "households", "dso", "recorder"]
    broker = runner["federates"][0]["exec"]
    port = int(broker.split("--port=")[1].split()[0])
    assert "-f5" in broker
    for name in names[1:]:
        config = json.loads((tmp_path / "configs" / f"{name}.json").read_text())
        assert config["coreInitString"].endswith(f"127.0.0.1:{port}")
        assert config["terminate_on_error"] is True and config["uninterruptible"] is True
        assert config["grant_timeout"] > 0
    # Every subscription is somebody's publication, with the same unit.
    configs = [json.loads((tmp_path / "configs" / f"{n}.json").read_text()) for n in names[1:]]
    published = {p["key"]: p.get("unit") for c in configs for p in c["publications"]}
    for c in configs:
        for sub in c["subscriptions"]:
            assert sub["key"] in published and sub.get("unit") == published[sub["key"]]


def test_each_run_gets_its_own_broker_port(tmp_path):
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    ports = set()
    for i in range(5):
        runner = write_federation(scenario, tmp_path / str(i), manifest=False)
        ports.add(int(runner["federates"][0]["exec"].split("--port=")[1].split()[0]))
    assert len(ports) == 5
    for port in ports:
        release_broker_ports(port)


def blocks_overlap(ports: list[int], span: int) -> bool:
    ends = sorted(ports)
    return any(b < a + span for a, b in zip(ends, ends[1:]))


def test_port_blocks_never_overlap_in_3000_repetitions():
    """The per-run draw used to collide in 1.4 % of five-run tries (random blocks, nothing reserved)."""
    span = broker_port_span(5)  # a federation of five federates
    for _ in range(3000):
        ports = [free_broker_port(span=span) for _ in range(5)]
        assert not blocks_overlap(ports, span), ports
        for port in ports:
            release_broker_ports(port)


def test_port_blocks_of_parallel_processes_never_overlap():
    """Two processes drawing at once (parallel runs) reserve disjoint blocks; a released block is drawn again."""
    span = broker_port_span(5)
    draw = ("import sys; from lec_cosim.federation import free_broker_port; "
            f"print(*[free_broker_port(span={span}) for _ in range(60)], flush=True); sys.stdin.read()")
    children = [subprocess.Popen([sys.executable, "-c", draw], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        drawn = [list(map(int, child.stdout.readline().split())) for child in children]  # both hold theirs now
    finally:
        for child in children:
            child.communicate("", timeout=30)
    assert all(len(ports) == 60 for ports in drawn)
    assert not blocks_overlap(drawn[0] + drawn[1], span)


def test_an_import_limit_binds_the_plan_and_the_summary_tells_where_the_import_went_above(tmp_path):
    """The plan and the summary, not the command line: the federation in this process (``harness.run_in_process``,
    the federate programs and configs of ``lec-cosim run`` as threads on HELICS's in-process core)."""
    import pandas as pd
    from harness import run_in_process

    run_in_process(tmp_path, "trondelag_arbitrage", {"grid.import_limit_mw": 0.3})
    ems = pd.read_csv(tmp_path / "out" / "ems.csv")
    signals = pd.read_csv(tmp_path / "out" / "signals.csv")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # the hourly plan stays at or below the limit, and meets it at the evening peak
    planned = ems.load_mw - ems.pv_mw + ems.charge_mw - ems.discharge_mw
    assert planned.max() == pytest.approx(0.3, abs=1e-6)
    # within the hour the realised import goes above it: counted per grid step
    realised = signals.load_p_mw - signals.pv_p_mw + signals.battery_p_mw
    assert summary["import_limit_mw"] == 0.3
    assert summary["kpis"]["steps_above_import_limit"] == int((realised > 0.3 + 1e-9).sum()) > 0
    assert summary["kpis"]["max_import_above_limit_mw"] == pytest.approx(realised.max() - 0.3)
