"""Several runs at once on one machine: each its own broker port, all finish, none left behind.

Also: the generated broker listens on the loopback interface only, unless the scenario's
``broker.address`` opens it to a network, where its ``broker.key`` keeps other federates out.
"""

import ipaddress
import json
import subprocess
import sys
import time

import helics as h
import pytest
from harness import SHARED_RUNS, processes_mentioning, shared_run, write_scenario

from lec_cosim.federation import broker_command, free_broker_port
from lec_cosim.scenario import BrokerConfig

CLI = [sys.executable, "-m", "lec_cosim"]
RUNS = {  # four different scenarios, three kinds of federation
    "trondelag_arbitrage": {"horizon_h": 6},
    "trondelag_self_consumption": {"horizon_h": 6},
    "ieee_eu_lv_lem_plain": {"horizon_h": 6, "resolution.grid_min": 60},
    "ieee_eu_lv_three_lecs": {"horizon_h": 6, "resolution.grid_min": 60},
}



@pytest.mark.timeout(300)
def test_four_different_runs_at_once_finish_on_their_own_ports(tmp_path):
    procs = {}
    for name, changes in RUNS.items():
        (tmp_path / name).mkdir()
        path = write_scenario(tmp_path / name, name, changes)
        procs[name] = subprocess.Popen(CLI + ["run", str(path), "--out", str(tmp_path / name / "out"), "--quiet"],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, proc in procs.items():
        output = proc.communicate(timeout=280)[0]
        assert proc.returncode == 0, (name, output)
    ports = set()
    for name in RUNS:
        out = tmp_path / name / "out"
        assert (out / "summary.json").is_file(), name
        broker = json.loads((out / "runner.json").read_text())["federates"][0]["exec"]
        ports.add(next(part for part in broker.split() if part.startswith("--port=")))
    assert len(ports) == len(RUNS)  # no two runs shared a broker port
    assert processes_mentioning(str(tmp_path)) == []  # every federate of every run has ended


def _listening_addresses(port: int) -> list[str]:
    """The IPv4 addresses a process listens on at ``port`` (waits up to 5 s for the socket)."""
    for _ in range(50):
        with open("/proc/net/tcp") as table, open("/proc/net/tcp6") as table6:
            rows = [line.split() for line in list(table)[1:] + list(table6)[1:]]
        listening = [row[1].split(":")[0] for row in rows if row[3] == "0A"
                     and int(row[1].rsplit(":", 1)[1], 16) == port]
        if listening:  # /proc/net/tcp writes the address as little-endian hex
            return [str(ipaddress.IPv4Address(bytes.fromhex(a)[::-1])) if len(a) == 8 else a for a in listening]
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def _network_address() -> str:
    """An IPv4 address of this host on a network interface (not loopback)."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                           check=True).stdout.split()
    addresses = [shown[i + 1].split("/")[0] for i, word in enumerate(shown) if word == "inet"]
    assert addresses, "this host has no IPv4 address outside loopback"
    return addresses[0]


def test_the_broker_listens_on_loopback_only():
    port = free_broker_port()
    broker = subprocess.Popen(broker_command(port, 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _listening_addresses(port) == ["127.0.0.1"]  # never 0.0.0.0 (all interfaces)
    finally:
        broker.kill()
        broker.wait()


def _join(port: int, address: str, key: str | None) -> str:
    init = f"--federates=1 --broker_address=tcp://{address}:{port} --timeout=5s"
    config = {"name": f"probe_{key}", "coreType": "zmq", "coreInitString": init + (f" --brokerkey={key}" if key else "")}
    try:
        fed = h.helicsCreateValueFederateFromConfig(json.dumps(config))
    except h.HelicsException as exc:
        return str(exc)
    h.helicsFederateDisconnect(fed)
    h.helicsFederateFree(fed)
    return "joined"


def test_a_scenario_opens_the_broker_to_a_network_address_behind_its_key():
    network = BrokerConfig(address=_network_address(), key="lec_cosim_test")
    port = free_broker_port(network.address)
    broker = subprocess.Popen(broker_command(port, 3, network), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _listening_addresses(port) == [network.address]  # not loopback, not all interfaces
        assert "broker key does not match" in _join(port, network.address, None)
        assert "broker key does not match" in _join(port, network.address, "another_key")
        assert _join(port, network.address, network.key) == "joined"
    finally:
        broker.kill()
        broker.wait()


@pytest.mark.timeout(120)
def test_a_run_through_a_network_address_gives_the_loopback_results(tmp_path, tmp_path_factory):
    """The shipped day on a network address against its loopback run, the one other test files read too
    (``harness.shared_runs``)."""
    address = _network_address()
    kpis = {}
    for where, changes in (("loopback", {}), ("network", {"broker.address": address, "broker.key": "k_1"})):
        if where == "loopback":
            assert SHARED_RUNS["trondelag_arbitrage"] == ("trondelag_arbitrage", {}, [])
            out = shared_run(tmp_path_factory, "trondelag_arbitrage")[1]
        else:
            (tmp_path / where).mkdir()
            path = write_scenario(tmp_path / where, "trondelag_arbitrage", changes)
            out = tmp_path / where / "out"
            done = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--quiet"], capture_output=True,
                                  text=True, timeout=100)
            assert done.returncode == 0, done.stderr
        kpis[where] = json.loads((out / "summary.json").read_text())["kpis"]
        runner = json.loads((out / "runner.json").read_text())
        broker = runner["federates"][0]["exec"]
        dso = json.loads((out / "configs" / "dso.json").read_text())["coreInitString"]
        if where == "network":
            assert f"--local_interface=tcp://{address}" in broker and "--brokerkey=k_1" in broker
            assert f"tcp://{address}:" in dso and dso.endswith("--brokerkey=k_1")
        else:
            assert "--local_interface=tcp://127.0.0.1" in broker and "brokerkey" not in broker
    volatile = {"wall_time_s"}
    assert {k: v for k, v in kpis["network"].items() if k not in volatile} == \
        {k: v for k, v in kpis["loopback"].items() if k not in volatile}
    assert kpis["loopback"]["import_mwh"] > 0
