"""Several runs at once on one machine: each its own broker port, all finish, none left behind.

Also: the generated broker listens on the loopback interface only.
"""

import json
import subprocess
import sys
import time

import pytest
from harness import processes_mentioning, write_scenario

from lec_cosim.federation import broker_command, free_broker_port

CLI = [sys.executable, "-m", "lec_cosim.cli"]
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


def test_the_broker_listens_on_loopback_only():
    port = free_broker_port()
    broker = subprocess.Popen(broker_command(port, 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listening = []
        for _ in range(50):  # up to 5 s for the broker to open its sockets
            with open("/proc/net/tcp") as table, open("/proc/net/tcp6") as table6:
                rows = [line.split() for line in list(table)[1:] + list(table6)[1:]]
            listening = [row[1] for row in rows if row[3] == "0A" and int(row[1].rsplit(":", 1)[1], 16) == port]
            if listening:
                break
            time.sleep(0.1)
        assert listening, "the broker did not open its port"
        # 127.0.0.1 in /proc/net/tcp's little-endian hex; never 0.0.0.0 (all interfaces)
        assert all(address.split(":")[0] == "0100007F" for address in listening), listening
    finally:
        broker.kill()
        broker.wait()
