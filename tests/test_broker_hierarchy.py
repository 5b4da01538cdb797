"""A root broker with sub-brokers on loopback: values cross it on time, a run through it gives the
single broker's results, a failure in it stops every broker, and bad ``--sub-brokers`` are input errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import helics as h
import pytest
import yaml

from harness import SHARED_RUNS, TestFederate, cli_in_process, shared_run, write_scenario
from lec_cosim.federation import (
    broker_port_span,
    free_broker_port,
    root_broker_command,
    sub_broker_command,
    write_federation,
)
from lec_cosim.launch import FederationError, run_federation
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim"]
KEY = "hierarchy/test_value"


def _running_brokers(ports):
    """PIDs of ``helics_broker`` processes listening on any of ``ports`` (their ``--port``)."""
    wanted = {f"--port={port}" for port in ports}
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if args and args[0].endswith("helics_broker") and wanted & set(args):
                found.append(pid)
    return found


def _broker_ports(run_dir):
    runner = json.loads((run_dir / "runner.json").read_text())
    return {entry["name"]: int(entry["exec"].split("--port=")[1].split()[0])
            for entry in runner["federates"] if "broker" in entry["name"]}


def _query(fed: TestFederate, target: str, query: str):
    return h.helicsQueryExecute(h.helicsCreateQuery(target, query), fed.fed)


def test_a_value_crosses_the_root_between_sub_brokers_at_its_time():
    """Sender on sub-broker 1, receiver on sub-broker 2: a value arrives at the receiver's first grant after its send."""
    root = free_broker_port(span=broker_port_span(0) + 2 * broker_port_span(1))
    subs = [root + broker_port_span(0), root + broker_port_span(0) + broker_port_span(1)]
    brokers = [subprocess.Popen(root_broker_command(root, 2, 2), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    brokers += [subprocess.Popen(sub_broker_command(i, port, root, 1), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT) for i, port in enumerate(subs, start=1)]
    feds = []
    try:
        # each on a core of its own, so that each sits on its own sub-broker
        sender = TestFederate("sender", subs[0], period=1.0, offset=0.0, publications=[(KEY, "double")],
                              core_name="sender_core")
        receiver = TestFederate("receiver", subs[1], period=1.0, offset=0.5, subscriptions=[(KEY, "double")],
                                core_name="receiver_core")
        feds = [sender, receiver]
        for fed in feds:
            h.helicsFederateEnterExecutingModeAsync(fed.fed)
        for fed in feds:
            h.helicsFederateEnterExecutingModeComplete(fed.fed)
        assert _query(sender, "broker", "name") == "lec_cosim_sub_broker_1"
        assert _query(receiver, "broker", "name") == "lec_cosim_sub_broker_2"
        assert {"lec_cosim_sub_broker_1", "lec_cosim_sub_broker_2"} <= set(_query(receiver, "root", "brokers"))

        # Requests are asynchronous so that neither federate of this one thread waits on the other
        # (under the root's global clock a grant also waits for the other federate's next request).
        sender.request(1)
        receiver.request(1)
        for t, value in ((1, 42.5), (2, -7.25)):
            assert sender.arrive(t) == pytest.approx(t)
            sender.publish(KEY, value)
            sender.request(t + 1)
            assert receiver.arrive(t) == pytest.approx(t + 0.5)
            # HELICS stamps an input's update with the grant that delivered it: the first after the send.
            assert receiver.updated(KEY) and receiver.value(KEY) == value
            assert h.helicsInputLastUpdateTime(receiver.subs[KEY]) == pytest.approx(t + 0.5)
            if t < 2:
                receiver.request(t + 1)
        receiver.close()
        sender.arrive(3)
        sender.close()
        feds = []
        assert [broker.wait(timeout=30) for broker in brokers] == [0, 0, 0]
    finally:
        for fed in feds:
            h.helicsFederateDestroy(fed.fed)
        for broker in brokers:
            if broker.poll() is None:
                broker.kill()
                broker.wait()
    assert _running_brokers([root, *subs]) == []


def _kpis_match(ours: dict, theirs: dict) -> bool:
    if ours.keys() != theirs.keys():
        return False
    return all(abs(a - b) <= 1e-9 if isinstance(a, float) and isinstance(b, float) else a == b
               for a, b in ((ours[k], theirs[k]) for k in ours))


def test_a_run_through_two_sub_brokers_gives_the_single_brokers_results(tmp_path, tmp_path_factory):
    """The shipped day through two sub-brokers against its run through the single broker: the run other test
    files read too (``harness.shared_runs``; no ``--sub-brokers`` is 0 of them)."""
    scenario, single_run = shared_run(tmp_path_factory, "trondelag_arbitrage")
    assert SHARED_RUNS["trondelag_arbitrage"] == ("trondelag_arbitrage", {}, [])
    outs = {0: single_run, 2: tmp_path / "sub_brokers_2"}
    run = subprocess.run(CLI + ["run", str(scenario), "--out", str(outs[2]), "--quiet", "--sub-brokers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert run.returncode == 0, run.stdout
    assert [e["name"] for e in json.loads((outs[0] / "runner.json").read_text())["federates"]] == \
        ["broker", "market", "lec_ems", "households", "dso", "recorder"]  # one broker, no sub-broker

    runner = json.loads((outs[2] / "runner.json").read_text())
    assert [e["name"] for e in runner["federates"]] == ["broker", "sub_broker_1", "sub_broker_2", "market",
                                                        "lec_ems", "households", "dso", "recorder"]
    ports = _broker_ports(outs[2])
    assert "--subbrokers=2" in runner["federates"][0]["exec"]
    for entry in runner["federates"][1:3]:
        assert f"--broker_address=tcp://127.0.0.1:{ports['broker']}" in entry["exec"]
    # Dealt in turn: market, households, recorder to the first; lec_ems, dso to the second.
    for name, sub in (("market", 1), ("lec_ems", 2), ("households", 1), ("dso", 2), ("recorder", 1)):
        config = json.loads((outs[2] / "configs" / f"{name}.json").read_text())
        assert config["coreInitString"].endswith(f"tcp://127.0.0.1:{ports[f'sub_broker_{sub}']}")
    assert (outs[2] / "logs" / "sub_broker_2.log").exists()

    single = json.loads((outs[0] / "summary.json").read_text())["kpis"]
    hierarchy = json.loads((outs[2] / "summary.json").read_text())["kpis"]
    assert _kpis_match(hierarchy, single), (hierarchy, single)
    assert _running_brokers([*ports.values(), *_broker_ports(outs[0]).values()]) == []


def test_a_federate_failing_in_a_hierarchy_stops_every_broker(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 3}))
    run_dir = tmp_path / "run"
    write_federation(scenario, run_dir, sub_brokers=2)
    config = json.loads((run_dir / "configs" / "dso.json").read_text())
    config["lec_cosim"]["scenario"] = str(tmp_path / "missing_scenario.json")
    (run_dir / "configs" / "dso.json").write_text(json.dumps(config))

    with pytest.raises(FederationError, match=r"^federate dso failed: dso: ScenarioError: .*missing_scenario\.json"):
        run_federation(run_dir, timeout_s=60)
    assert _running_brokers(_broker_ports(run_dir).values()) == []


@pytest.mark.parametrize("k", ["-1", "6"])
def test_sub_brokers_out_of_range_is_a_one_line_input_error(tmp_path, k, capsys):
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 3})
    for command in (["run", str(scenario), "--out", str(tmp_path / "out")],
                    ["runner", str(scenario), "-o", str(tmp_path / "runner" / "runner.json")]):
        if k == "-1" and command[0] == "run":  # once as the process a user runs
            result = subprocess.run(CLI + command + ["--sub-brokers", k], capture_output=True, text=True, timeout=60,
                                    check=False)
        else:
            result = cli_in_process(capsys, *command, "--sub-brokers", k)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "--sub-brokers" in lines[0] and "from 0 to 5" in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "runner").exists()


def test_a_run_over_hosts_of_this_machine_gives_the_single_brokers_results(tmp_path, tmp_path_factory):
    """``--hosts`` with loopback addresses (all of 127.0.0.0/8 is this machine): ``lec-cosim run`` starts the root on
    127.0.0.1 and a sub-broker listening on each host's address, its federates pointed there."""
    scenario, single_run = shared_run(tmp_path_factory, "trondelag_arbitrage")
    out = tmp_path / "hosts"
    run = subprocess.run(CLI + ["run", str(scenario), "--out", str(out), "--quiet", "--hosts", "127.0.0.2,127.0.0.3"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert run.returncode == 0, run.stdout
    runner = json.loads((out / "runner.json").read_text())
    hosts = {e["name"]: e["host"] for e in runner["federates"]}
    assert hosts == {"broker": "127.0.0.1", "sub_broker_1": "127.0.0.2", "sub_broker_2": "127.0.0.3",
                     "market": "127.0.0.2", "lec_ems": "127.0.0.3", "households": "127.0.0.2", "dso": "127.0.0.3",
                     "recorder": "127.0.0.2"}
    ports = _broker_ports(out)
    assert "--local_interface=tcp://127.0.0.3" in runner["federates"][2]["exec"]
    config = json.loads((out / "configs" / "dso.json").read_text())
    assert config["coreInitString"].endswith(f"--broker_address=tcp://127.0.0.3:{ports['sub_broker_2']}")
    assert sorted(p.name for p in (out / "hosts").glob("*.json")) == ["127.0.0.1.json", "127.0.0.2.json",
                                                                      "127.0.0.3.json"]
    single = json.loads((single_run / "summary.json").read_text())["kpis"]
    assert _kpis_match(json.loads((out / "summary.json").read_text())["kpis"], single)
    assert _running_brokers(ports.values()) == []


@pytest.mark.parametrize("options, changes, where, reason", [
    (["--hosts", "127.0.0.2,0.0.0.0"], {}, "--hosts", "not 0.0.0.0"),
    (["--hosts", "127.0.0.2,127.0.0.2"], {}, "--hosts", "127.0.0.2 given twice"),
    (["--hosts", "127.0.0.2,127.0.0.3", "--sub-brokers", "3"], {}, "--sub-brokers", "2 hosts have a sub-broker each"),
    (["--hosts", "192.0.2.11,192.0.2.12"], {}, "--hosts", "must all be of this machine (127.x) or none"),
    (["--hosts", "127.0.0.2", "--broker-address", "0.0.0.0"], {}, "--broker-address", "not 0.0.0.0"),
    (["--hosts", "127.0.0.2", "--record", "all"], {}, "--record", "not a federation over hosts"),
    ([], {"broker": {"hosts": [{"address": "127.0.0.2", "federates": ["market", "households", "recorder"]},
                               {"address": "127.0.0.3", "federates": ["dso", "lec_ems", "battery"]}]}},
     "broker.hosts", "no federate battery in this federation"),
    ([], {"broker": {"hosts": [{"address": "127.0.0.2", "federates": ["market", "households", "recorder"]},
                               {"address": "127.0.0.3", "federates": ["dso"]}]}},
     "broker.hosts", "lec_ems placed on no host"),
    ([], {"broker": {"hosts": [{"address": "127.0.0.2", "federates": ["market"]}, "127.0.0.3"]}},
     "broker.hosts", "give federates on every host or on none"),
])
def test_bad_hosts_are_one_line_input_errors(tmp_path, options, changes, where, reason, capsys):
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 3})
    if changes:  # written as a user would, unchecked: the schema's errors are the CLI's to tell
        data = yaml.safe_load(scenario.read_text())
        data.update(changes)
        scenario.write_text(yaml.safe_dump(data))
    for command in (["run", str(scenario), "--out", str(tmp_path / "out")],
                    ["runner", str(scenario), "-o", str(tmp_path / "runner" / "runner.json")]):
        result = cli_in_process(capsys, *command, *options)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and where in lines[0] and reason in lines[0], lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "runner").exists()


def test_launch_of_a_host_the_federation_does_not_have_is_a_one_line_input_error(tmp_path, capsys):
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 3})
    run_dir = tmp_path / "run"
    made = cli_in_process(capsys, "runner", scenario, "-o", run_dir / "runner.json", "--hosts", "127.0.0.2,127.0.0.3")
    assert made.returncode == 0, made.stderr
    result = subprocess.run(CLI + ["launch", str(run_dir), "--host", "127.0.0.9"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host: no part for 127.0.0.9 (hosts of this federation: 127.0.0.1, 127.0.0.2, " \
        "127.0.0.3)" in lines[0], lines
    assert not (run_dir / "logs").exists()
