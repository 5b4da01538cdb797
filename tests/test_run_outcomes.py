"""What a run leaves behind: a complete results folder, or a marked incomplete one; never a half-written result.

A run works in ``OUT.partial`` and becomes ``OUT`` only when complete. A failed or interrupted run
(here: a timeout, and a SIGTERM of ``lec-cosim run`` itself) becomes ``OUT.incomplete`` with
``INCOMPLETE.txt`` naming the reason and every federate's log; an existing ``OUT`` survives it, and
no federate or broker process is left, even when ``lec-cosim run`` is killed with SIGKILL.
"""

import json
import signal
import subprocess
import sys
import time

import pytest
from harness import parent_pid, processes_mentioning, write_scenario

CLI = [sys.executable, "-m", "lec_cosim.cli"]
FEDERATES = {"market", "lec_ems", "households", "dso", "recorder", "broker"}



@pytest.fixture
def finished(tmp_path):
    """A scenario and a complete earlier run of it in ``out``."""
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 24})
    out = tmp_path / "out"
    done = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--quiet"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return path, out


@pytest.mark.timeout(200)
def test_a_complete_run_replaces_the_old_one_only_with_force(finished):
    path, out = finished
    summary = (out / "summary.json").read_text()
    assert not out.with_name("out.partial").exists() and not out.with_name("out.incomplete").exists()
    runner = json.loads((out / "runner.json").read_text())
    assert ".partial" not in json.dumps(runner) and str(out) in json.dumps(runner)  # helics run --path works
    refused = subprocess.run(CLI + ["run", str(path), "--out", str(out)], capture_output=True, text=True)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (out / "summary.json").read_text() == summary
    again = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--quiet", "--force"], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["kpis"] == json.loads(summary)["kpis"]


@pytest.mark.timeout(200)
def test_a_failed_run_is_kept_apart_and_marked(finished):
    path, out = finished
    before = (out / "summary.json").read_text()
    failed = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--force", "--timeout", "1.5", "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "did not finish within 1.5 s" in failed.stderr
    assert "Traceback" not in failed.stderr
    incomplete = out.with_name("out.incomplete")
    assert "did not finish within" in (incomplete / "INCOMPLETE.txt").read_text()
    assert {p.stem for p in (incomplete / "logs").glob("*.log")} == FEDERATES
    assert not (incomplete / "summary.json").exists()
    assert (out / "summary.json").read_text() == before  # --force replaces only with a complete run
    time.sleep(0.5)
    assert processes_mentioning(str(incomplete.parent / "out.partial")) == []


def start_year_run(tmp_path):
    """``lec-cosim run`` of a year, once its federation is stepping; its results would go to ``year``."""
    path = write_scenario(tmp_path, "trondelag_arbitrage_year", {})
    out = tmp_path / "year"
    proc = subprocess.Popen(CLI + ["run", str(path), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("  "):  # a progress line: the federation is stepping
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    return out, proc


@pytest.mark.timeout(200)
def test_killing_the_cli_ends_the_federation_and_keeps_its_logs(tmp_path):
    out, proc = start_year_run(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    incomplete = tmp_path / "year.incomplete"
    assert "interrupted" in (incomplete / "INCOMPLETE.txt").read_text()
    assert {p.stem for p in (incomplete / "logs").glob("*.log")} == FEDERATES
    assert not out.exists() and not (tmp_path / "year.partial").exists()
    time.sleep(0.5)
    assert processes_mentioning(str(tmp_path / "year.partial")) == []


@pytest.mark.timeout(200)
def test_sigkill_of_the_cli_takes_the_federation_with_it(tmp_path):
    out, proc = start_year_run(tmp_path)
    staging = tmp_path / "year.partial"
    broker = json.loads((staging / "runner.json").read_text())["federates"][0]["exec"]
    port = next(part for part in broker.split() if part.startswith("--port="))

    def federation() -> list[int]:  # the federates name their configs; the broker, its port
        return processes_mentioning(str(staging)) + processes_mentioning(port)

    # the launcher's own children (a federate's passing fork, e.g. to start glpsol, shares its command line)
    assert len([pid for pid in federation() if parent_pid(pid) == proc.pid]) == len(FEDERATES)
    proc.kill()  # no handler runs: the kernel's parent-death signal must end the children
    proc.wait(timeout=10)
    for _ in range(50):
        if not federation():
            break
        time.sleep(0.1)
    assert federation() == []
    assert not out.exists()  # never moved into place: nothing looks complete
