"""A federation over hosts: network namespaces stand in for the hosts.

Each host is a network namespace of its own (its own interfaces, addresses and loopback), linked to the
others through a bridge in a further namespace, all made by this test and removed afterwards, also on
failure. The root broker runs on one host, each sub-broker with its federates on another, each host's part
started there by ``lec-cosim launch`` from the files ``lec-cosim runner`` wrote: processes in one namespace
reach the others only through the bridge, as on separate machines (a sub-broker could not even listen on
another host's address). Addresses are TEST-NET-1 (192.0.2.0/24, RFC 5737: never routed), and exist only
inside these namespaces; no traffic leaves them.

Creating namespaces needs root (CI runs as root).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from harness import cli_in_process, shared_run, wait_until, write_scenario

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="network namespaces need root and iproute2 (CI runs as root)")

CLI = [sys.executable, "-m", "lec_cosim"]
SUBNET = "192.0.2"
HOSTS = {"root": f"{SUBNET}.10", "h1": f"{SUBNET}.11", "h2": f"{SUBNET}.12"}


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=check)


class Hosts:
    """Three hosts (network namespaces) on one bridge; :meth:`remove` kills what runs in them and deletes them."""

    def __init__(self) -> None:
        self.prefix = f"lm{os.getpid() % 100000}"  # veth names must stay under 16 characters
        self.switch = f"{self.prefix}sw"
        self.namespaces = {name: f"{self.prefix}{name}" for name in HOSTS}
        self.links = {name: f"{self.prefix}{name}a" for name in HOSTS}

    def make(self) -> "Hosts":
        self.remove()  # what a killed earlier run of this process id left
        _ip("netns", "add", self.switch)
        _ip("link", "add", "br0", "type", "bridge", namespace=self.switch)
        _ip("link", "set", "br0", "up", namespace=self.switch)
        for name, address in HOSTS.items():
            namespace, link, peer = self.namespaces[name], self.links[name], f"{self.prefix}{name}b"
            _ip("netns", "add", namespace)
            # both ends made inside the namespaces: none is ever left in this machine's own
            _ip("link", "add", link, "netns", namespace, "type", "veth", "peer", "name", peer, "netns", self.switch)
            _ip("link", "set", peer, "master", "br0", "up", namespace=self.switch)
            _ip("addr", "add", f"{address}/24", "dev", link, namespace=namespace)
            _ip("link", "set", link, "up", namespace=namespace)
            _ip("link", "set", "lo", "up", namespace=namespace)  # a federate's core listens on its host's loopback
        return self

    def pids(self) -> list[int]:
        found = []
        for namespace in [*self.namespaces.values(), self.switch]:
            result = _ip("netns", "pids", namespace, check=False)
            found += [int(pid) for pid in result.stdout.split()]
        return found

    def remove(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for namespace in [*self.namespaces.values(), self.switch]:
            _ip("netns", "del", namespace, check=False)  # its veth ends go with it

    def unplug(self, name: str) -> None:
        """The host disappears from the network: its link down (its processes go on, unreachable)."""
        _ip("link", "set", self.links[name], "down", namespace=self.namespaces[name])

    def launch(self, name: str, run_dir: Path, *options: str) -> subprocess.Popen:
        """``lec-cosim launch`` of the host's part, in the host's namespace."""
        return subprocess.Popen(["ip", "netns", "exec", self.namespaces[name], *CLI, "launch", str(run_dir),
                                 "--host", HOSTS[name], "--quiet", *options],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def hosts():
    made = Hosts()
    try:
        yield made.make()
    finally:
        made.remove()
    assert all(_ip("netns", "pids", ns, check=False).returncode != 0 for ns in made.namespaces.values())


def _finish(launches: dict[str, subprocess.Popen], timeout_s: float) -> dict[str, tuple[int, str]]:
    results = {}
    for name, launch in launches.items():
        try:
            output, _ = launch.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            launch.kill()
            output, _ = launch.communicate()
            raise AssertionError(f"lec-cosim launch on {name} still running after {timeout_s} s:\n{output}")
        results[name] = (launch.returncode, output)
    return results


def _runner(capsys, scenario: Path, run_dir: Path, *options: str) -> list[str]:
    """``lec-cosim runner``, through the CLI's main in this process (it only writes files): what it printed."""
    result = cli_in_process(capsys, "runner", scenario, "-o", run_dir / "runner.json", *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_federation_over_three_hosts_gives_the_single_brokers_kpis(hosts, tmp_path, tmp_path_factory, capsys):
    """The shipped day, the federates placed on two hosts by the scenario, the root broker on a third."""
    _, single_run = shared_run(tmp_path_factory, "trondelag_arbitrage")
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"broker": {"address": HOSTS["root"], "hosts": [
        {"address": HOSTS["h1"], "federates": ["market", "households", "recorder"]},
        {"address": HOSTS["h2"], "federates": ["lec_ems", "dso"]}]}})
    run_dir = tmp_path / "run"
    printed = _runner(capsys, scenario, run_dir)
    assert f"  on {HOSTS['h2']}: lec-cosim launch {run_dir} --host {HOSTS['h2']}    (or helics run --path " \
        f"{run_dir / 'hosts' / (HOSTS['h2'] + '.json')})" in printed
    parts = {path.stem: [e["name"] for e in json.loads(path.read_text())["federates"]]
             for path in (run_dir / "hosts").glob("*.json")}
    assert parts == {HOSTS["root"]: ["broker"], HOSTS["h1"]: ["sub_broker_1", "market", "households", "recorder"],
                     HOSTS["h2"]: ["sub_broker_2", "lec_ems", "dso"]}
    runner = json.loads((run_dir / "runner.json").read_text())
    sub_broker_2 = next(e["exec"] for e in runner["federates"] if e["name"] == "sub_broker_2")
    assert f"--local_interface=tcp://{HOSTS['h2']}" in sub_broker_2
    assert f"--broker_address=tcp://{HOSTS['root']}:23500" in sub_broker_2

    # the root first, as a user would; each host's part in its own namespace
    launches = {name: hosts.launch(name, run_dir) for name in ("root", "h2", "h1")}
    results = _finish(launches, timeout_s=180)
    assert {name: code for name, (code, _) in results.items()} == {"root": 0, "h1": 0, "h2": 0}, results
    assert f"results: {run_dir}" in results["h1"][1]  # the recorder's host

    # both sub-brokers joined the root over the bridge, from their own hosts
    root_log = (run_dir / "logs" / "broker.log").read_text()
    assert "registering broker lec_cosim_sub_broker_1" in root_log
    assert "registering broker lec_cosim_sub_broker_2" in root_log
    ours = json.loads((run_dir / "summary.json").read_text())["kpis"]
    _same_kpis(ours, json.loads((single_run / "summary.json").read_text())["kpis"])
    assert ours["energy_cost"] > 0 and ours["import_mwh"] > 1.0  # a real day was run
    assert hosts.pids() == []


def test_the_hosts_compose_files_run_the_federation_over_three_hosts(hosts, tmp_path, tmp_path_factory, capsys):
    """``lec-cosim compose`` over hosts: a compose file per host, its services on the host's own network stack. Each
    host's services are run here in its namespace, as the containers would run them (the container paths mapped
    back to this machine's, as tests/test_compose.py does): the single broker's KPIs."""
    from test_compose import host_command, to_host

    _, single_run = shared_run(tmp_path_factory, "trondelag_arbitrage")
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {})
    out = tmp_path / "compose"
    result = cli_in_process(capsys, "compose", scenario, "-o", out, "--broker-address", HOSTS["root"],
                            "--hosts", f"{HOSTS['h1']},{HOSTS['h2']}")
    assert result.returncode == 0, result.stderr
    assert not (out / "docker-compose.yml").exists()
    files = {path.stem: yaml.safe_load(path.read_text()) for path in (out / "hosts").glob("*.yml")}
    assert {name: list(compose["services"]) for name, compose in files.items()} == {
        HOSTS["root"]: ["broker"], HOSTS["h1"]: ["sub_broker_1", "market", "households", "recorder"],
        HOSTS["h2"]: ["sub_broker_2", "lec_ems", "dso"]}
    assert all(service["network_mode"] == "host" and "networks" not in service
               for compose in files.values() for service in compose["services"].values())

    folders = {"federation": out / "federation", "results": out / "results", "inputs": out / "inputs"}
    for path in [out / "federation" / "scenario.json", *(out / "federation" / "configs").glob("*.json")]:
        path.write_text(to_host(path.read_text(), folders, {}))
    run_dir = tmp_path / "on_hosts"  # each host's services as a part lec-cosim launch starts
    (run_dir / "hosts").mkdir(parents=True)
    for address, compose in files.items():
        entries = [{"name": name, "directory": ".", "host": address,
                    "exec": shlex.join(host_command(service["command"], folders, {}))}
                   for name, service in compose["services"].items()]
        (run_dir / "hosts" / f"{address}.json").write_text(json.dumps({"name": address, "federates": entries}))
    results = _finish({name: hosts.launch(name, run_dir) for name in ("root", "h1", "h2")}, timeout_s=180)
    assert {name: code for name, (code, _) in results.items()} == {"root": 0, "h1": 0, "h2": 0}, results
    _same_kpis(json.loads((out / "results" / "summary.json").read_text())["kpis"],
               json.loads((single_run / "summary.json").read_text())["kpis"])
    assert hosts.pids() == []


def _same_kpis(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if key == "wall_time_s":  # of the run, not of the system
            continue
        assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-12) if isinstance(value, float) else \
            ours[key] == value, key


def test_messages_cross_hosts_on_time_three_lecs_trading_peer_to_peer(hosts, tmp_path, capsys):
    """Three LECs trading peer to peer (the platform's answers are messages sent at H + 4 ms, the case that needs the
    root's global clock) over three hosts, against the same scenario on one broker on this machine."""
    scenario = write_scenario(tmp_path, "ieee_eu_lv_three_lecs",
                              {"resolution.grid_min": 60, "horizon_h": 6, "framework": "p2p"})
    run_dir = tmp_path / "run"
    _runner(capsys, scenario, run_dir, "--broker-address", HOSTS["root"], "--hosts", f"{HOSTS['h1']},{HOSTS['h2']}")
    parts = {path.stem: [e["name"] for e in json.loads(path.read_text())["federates"]]
             for path in (run_dir / "hosts").glob("*.json")}
    assert parts[HOSTS["h1"]] == ["sub_broker_1", "lec_ems_1", "lec_ems_3", "households", "recorder"]
    assert parts[HOSTS["h2"]] == ["sub_broker_2", "lec_ems_2", "platform", "dso"]
    # the single broker's run on this machine at the same time (its own free ports): the two federations
    # know nothing of each other
    single = subprocess.Popen(CLI + ["run", str(scenario), "--out", str(tmp_path / "single"), "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = _finish({"single": single, **{name: hosts.launch(name, run_dir) for name in ("root", "h1", "h2")}},
                      timeout_s=300)
    assert {name: code for name, (code, _) in results.items()} == {"single": 0, "root": 0, "h1": 0, "h2": 0}, \
        results
    summary = json.loads((run_dir / "summary.json").read_text())
    _same_kpis(summary["kpis"], json.loads((tmp_path / "single" / "summary.json").read_text())["kpis"])
    assert summary["kpis"]["messages"] > 500  # platform and LEC_EMSs talked across the hosts all along
    assert hosts.pids() == []


def test_a_host_that_disappears_ends_every_hosts_part_with_an_error_and_no_process_left(hosts, tmp_path, capsys):
    """Hosts from the command line (federates dealt in turn); mid-run the second host's link goes down."""
    # a heartbeat of 1 s: the hosts' brokers notice the lost one within seconds (HELICS's 5 s: some 26 s)
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 168, "broker.heartbeat_s": 1.0})
    run_dir = tmp_path / "run"
    _runner(capsys, scenario, run_dir, "--broker-address", HOSTS["root"], "--hosts", f"{HOSTS['h1']},{HOSTS['h2']}")
    # the stall time bounds how long a host waits when HELICS's heartbeat has not told it (seen on h2 under load)
    launches = {name: hosts.launch(name, run_dir, "--stall-timeout", "20") for name in ("root", "h1", "h2")}

    def stepping() -> bool:  # the federation is past its start and steps (the recorder's timing state)
        try:
            state = json.loads((run_dir / "timing" / "recorder.json").read_text())
        except (OSError, ValueError):
            return False
        return (state.get("state_slot_time_s") or 0) > 3600

    assert wait_until(stepping, timeout_s=120), "the federation over hosts did not start"
    hosts.unplug("h2")
    cut_at = time.monotonic()
    results = _finish(launches, timeout_s=150)
    took = time.monotonic() - cut_at
    assert {name: code for name, (code, _) in results.items()} == {"root": 1, "h1": 1, "h2": 1}, results
    # one error line each, naming the host and what was lost
    root_error = [line for line in results["root"][1].splitlines() if line.startswith("error:")]
    assert len(root_error) == 1 and root_error[0].startswith(f"error: {HOSTS['root']}: broker lost the connection "
                                                             "to a peer (another host gone"), results["root"][1]
    for name in ("h1", "h2"):
        errors = [line for line in results[name][1].splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {HOSTS[name]}: "), results[name][1]
        # "lost comms" / "lost connection" (HELICS's heartbeat), or the part's own watchdog: its federates stopped
        assert "lost co" in errors[0] or "federation stalled" in errors[0] and "another host" in errors[0], errors[0]
    assert not (run_dir / "summary.json").exists()  # no half-written result
    assert hosts.pids() == [], "a process was left running on a host"
    print(f"every host's part ended {took:.0f} s after the link went down:",
          *(line for _, output in results.values() for line in output.splitlines() if line.startswith("error:")),
          sep="\n")
