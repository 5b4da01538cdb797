"""A failing federate never hangs the federation: every federate kind crashed, killed, stopped or hung mid-run.

Each case runs a real federation through ``lec-cosim run`` (or its launcher): a federate raises at a
random simulated time (a fault injected through its config), is killed with SIGKILL or stopped with
SIGSTOP while the federation steps, hangs in a step as a deadlocked solver would, or quits with exit
code 0 before its end. The run must end (every wait here is bounded, so a hang fails the test instead of
blocking it), the CLI must exit 1 naming that federate (and the injected error, for a crash; the
simulated time it holds the federation at, for a stall), the run must be kept as ``OUT.incomplete``,
and no broker or federate process may be left. The random times come from a fixed seed, printed in the
test ids.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import (
    no_process_mentions,
    parent_pid,
    processes_mentioning,
    wait_until,
    write_scenario,
)

from lec_cosim.schema.base import MIN_STALL_TIMEOUT_S

CLI = [sys.executable, "-m", "lec_cosim"]
SEED = 20261130
KINDS = {  # federation -> its scenario and changes, the federates to fail, and the horizon to run
    # Every federate program fails once: the DSO and the recorder are one program each for all studies (the
    # study's grid adapter and record inside), so they fail in one study, a grid adapter's error in another.
    "trondelag_arbitrage": ("trondelag_arbitrage", {}, ["market", "lec_ems", "households", "recorder"], 24),
    "ieee_eu_lv_lem_plain": ("ieee_eu_lv_lem_plain", {}, ["participants_1", "market", "dso"], 24),
    # three LECs at hourly grid steps: the platform's market, and the EMSs' ADMM negotiation over messages; half
    # a day (the negotiation of every hour costs a second; a whole day made these the slowest tests of the file)
    "three_lecs_decentralised": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60},
                                 ["lec_ems_2", "platform", "households"], 12),
    "three_lecs_distributed": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60, "framework": "distributed"},
                               ["lec_ems_1"], 12),
}
rng = random.Random(SEED)


def launchers(proc) -> set[int]:
    """``lec-cosim run`` (``proc``) and its fork server (:mod:`lec_cosim.forkserver`): the parents of a run's brokers
    and federates."""
    return {proc.pid, *(pid for pid in processes_mentioning("lec_cosim.forkserver") if parent_pid(pid) == proc.pid)}
CRASHES = [(kind, name, rng.randrange(1, horizon) * 3600.0 + rng.choice([0, 900, 1800]))
           for kind, (_, _, names, horizon) in KINDS.items() for name in names]



def armed(tmp_path, scenario: str, changes: dict, federate: str, fault: str, at_s: float) -> Path:
    """A federation of ``scenario`` written into ``tmp_path/run`` with a fault armed in one federate's config
    (``inject_fault_at_s``: it raises; ``inject_hang_at_s``: it hangs in its step; ``inject_exit_at_s``:
    it exits 0), as ``run`` would write it; run it with the launcher."""
    from lec_cosim.federation import write_federation
    from lec_cosim.scenario import load_scenario

    path = write_scenario(tmp_path, scenario, changes)
    run_dir = tmp_path / "run"
    write_federation(load_scenario(path), run_dir)
    config_path = run_dir / "configs" / f"{federate}.json"
    config = json.loads(config_path.read_text())
    config["lec_cosim"][fault] = at_s
    config_path.write_text(json.dumps(config))
    return run_dir


def start(tmp_path, scenario: str, horizon_h: float, extra=()):
    path = write_scenario(tmp_path, scenario, {"horizon_h": horizon_h})
    out = tmp_path / "out"
    return out, subprocess.Popen(CLI + ["run", str(path), "--out", str(out), *extra], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind,federate,at_s", CRASHES, ids=[f"{k}-{f}-{t:g}s" for k, f, t in CRASHES])
def test_a_crash_ends_the_federation_and_names_the_federate(tmp_path, kind, federate, at_s):
    from lec_cosim.launch import FederationError, run_federation

    scenario, changes, _, horizon_h = KINDS[kind]
    run_dir = armed(tmp_path, scenario, {"horizon_h": horizon_h, **changes}, federate, "inject_fault_at_s", at_s)
    with pytest.raises(FederationError) as failure:
        run_federation(run_dir, timeout_s=60)  # the bound: a hang would end as a timeout, failing the test
    assert str(failure.value).startswith(f"federate {federate} failed: {federate}: RuntimeError: injected fault at"), \
        str(failure.value)
    assert no_process_mentions(str(run_dir))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("federate", ["lec_ems"])  # the launcher sees any child's death the same way; lec_ems forks
def test_a_killed_federate_ends_the_run(tmp_path, federate):  # glpsol, so its pid is told from its fork's
    out, proc = start(tmp_path, "trondelag_arbitrage_year", 24 * 60)
    line = ""
    while not line.startswith("  "):  # a progress line: stepping
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    staging = out.with_name("out.partial")
    # the federate itself: a child of the launcher's fork server (a fork it makes, e.g. to start glpsol, shares its
    # command line)
    victim = [pid for pid in processes_mentioning(str(staging / "configs" / f"{federate}.json"))
              if parent_pid(pid) in launchers(proc)]
    assert len(victim) == 1
    os.kill(victim[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=30)  # bounded: the launcher sees the exit at once
    assert proc.returncode == 1 and f"federate {federate} failed: killed by SIGKILL" in err, err
    reason = (out.with_name("out.incomplete") / "INCOMPLETE.txt").read_text()
    assert "did not complete" in reason
    assert f"(log: {out.with_name('out.incomplete') / 'logs' / federate}.log)" in reason  # where the log now is
    assert no_process_mentions(str(staging), str(out))


def stepping(tmp_path, scenario: str, changes: dict, extra=()):
    """``lec-cosim run`` of ``scenario``, once its federation is stepping; its output goes to ``out``."""
    path = write_scenario(tmp_path, scenario, changes)
    out = tmp_path / "out"
    proc = subprocess.Popen(CLI + ["run", str(path), "--out", str(out), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(2):  # the second progress line: stepping for two seconds, the watchdog has asked a few times
        line = ""
        while not line.startswith("  "):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
    return out, proc


STALL_S = MIN_STALL_TIMEOUT_S  # the shortest stall time lec-cosim takes (5 s): each stall test waits all of it


def _slot_in(state: Path) -> bool:
    """Whether a federate's timing state file names the slot it waits for or works on."""
    try:
        return json.loads(state.read_text()).get("state_slot_time_s") is not None
    except (OSError, ValueError):
        return False
STALL_REPORT = re.compile(r"federation stalled: no federate's time advanced for (\d+) s; (?:federate )?(\w+) holds it")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("federate,sub_brokers", [("lec_ems", 0), ("dso", 2), ("broker", 0)])
def test_a_stopped_federate_is_named_within_the_stall_time(tmp_path, federate, sub_brokers):
    """SIGSTOP: the process is alive and silent; HELICS waits for it for ever. The watchdog ends the run.

    lec_ems holds everyone (the households, the DSO and the recorder need its values); the market, which
    needs nobody, may first run ahead to the end. The DSO holds the recorder. With sub-brokers the
    watchdog reads the timing files. A stopped broker holds every federate: it is named, not one of them."""
    # the stall time from the command line, or (under sub-brokers) from the scenario
    by_scenario = sub_brokers > 0
    out, proc = stepping(tmp_path, "trondelag_arbitrage_year",  # a year: stepping for 15 s and more
                         {"federation.stall_timeout_s": STALL_S} if by_scenario else {},
                         ["--sub-brokers", str(sub_brokers)] + ([] if by_scenario else ["--stall-timeout", str(STALL_S)]))
    staging = out.with_name("out.partial")
    mark = "--name=lec_cosim_broker" if federate == "broker" else str(staging / "configs" / f"{federate}.json")
    victim = [pid for pid in processes_mentioning(mark) if parent_pid(pid) in launchers(proc)]
    assert len(victim) == 1
    if federate != "broker":
        # stopped only once its timing state names a slot: stopped earlier (on a loaded machine, before the watchdog
        # had an answer from it or its state file a slot), no time is known to anyone and none can be reported
        state = staging / "timing" / f"{federate}.json"
        assert wait_until(lambda: _slot_in(state), timeout_s=30), "the federate never reported a slot"
    os.kill(victim[0], signal.SIGSTOP)
    # bounded: the stall time, the market running ahead (about a second) and the launcher's clean-up
    _, err = proc.communicate(timeout=STALL_S + 30)
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err
    found = STALL_REPORT.search(lines[0])
    assert found and found.group(2) == federate, lines[0]
    assert STALL_S <= int(found.group(1)) <= STALL_S + 3  # measured by the watchdog from the last advance
    if federate != "broker":  # a federate's granted time (a broker has none)
        assert re.search(r"at simulated time 2019-\d\d-\d\d \d\d:\d\d", lines[0]), lines[0]
    assert "process is stopped" in lines[0]
    incomplete = out.with_name("out.incomplete")
    assert "federation stalled" in (incomplete / "INCOMPLETE.txt").read_text()
    assert no_process_mentions(str(staging), str(incomplete))  # the stopped process was killed too


@pytest.fixture(scope="module")
def two_watchdogs(tmp_path_factory):
    """Two runs at once in one process, each with its watchdog: a healthy one, and one whose households hang in
    their 09:00 step; the next two tests read how they ended."""
    import threading

    from lec_cosim.launch import FederationError, run_federation

    tmp_path = tmp_path_factory.mktemp("watchdogs")
    healthy = armed(tmp_path / "a", "trondelag_arbitrage", {"horizon_h": 24}, "dso", "inject_fault_at_s", 1e9)
    hung = armed(tmp_path / "b", "trondelag_arbitrage", {"horizon_h": 24}, "households", "inject_hang_at_s", 9 * 3600.0)
    outcome = {}

    def run(name, run_dir):
        try:
            outcome[name] = run_federation(run_dir, timeout_s=90, stall_timeout_s=STALL_S)
        except FederationError as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=run, args=args) for args in (("healthy", healthy), ("hung", hung))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(100)
    return healthy, hung, outcome, no_process_mentions(str(healthy), str(hung))


@pytest.mark.timeout(120)
def test_two_watchdogs_in_one_process_each_watch_their_own_federation(two_watchdogs):
    """Two runs at once in one process (as an API user may start them): HELICS gives a second federate of a
    process the first one's core unless it names its own, and then the second watchdog watched the first run."""
    from lec_cosim.launch import FederationError

    healthy, hung, outcome, all_gone = two_watchdogs
    assert isinstance(outcome["healthy"], float), outcome["healthy"]
    assert json.loads((healthy / "summary.json").read_text())["kpis"]
    assert isinstance(outcome["hung"], FederationError) and outcome["hung"].stalled, outcome["hung"]
    assert outcome["hung"].federate == "households" and "2019-05-26 09:00" in str(outcome["hung"])
    assert all_gone


@pytest.mark.timeout(120)
def test_a_federate_stuck_in_a_step_is_named_as_still_working(two_watchdogs):
    """A deadlocked solver: the process answers HELICS (its core has its own thread) but never asks for
    its next time. The watchdog finds it by its granted time and the time it has not requested. (The hung run
    of the test above: one run for both.)"""
    from lec_cosim.launch import FederationError

    _, hung, outcome, all_gone = two_watchdogs
    failure = outcome["hung"]
    assert isinstance(failure, FederationError), failure
    message = str(failure)
    assert failure.stalled and failure.federate == "households", message
    # its slot: 09:00 plus its phase offset (2 ms), and why
    assert "holds it at simulated time 2019-05-26 09:00 (32400 s)" in message
    assert "has not asked for its next one: it is still working on that step" in message
    assert all_gone  # no process of either run left (the hung one's included)


@pytest.mark.timeout(120)
def test_a_federate_that_exits_0_before_its_end_ends_the_federation(tmp_path):
    from lec_cosim.launch import FederationError, run_federation

    run_dir = armed(tmp_path, "trondelag_arbitrage", {"horizon_h": 24}, "dso", "inject_exit_at_s", 6 * 3600.0)
    with pytest.raises(FederationError) as failure:
        run_federation(run_dir, timeout_s=90)
    assert str(failure.value).startswith("federate dso exited (code 0) before the end of its run"), str(failure.value)
    assert no_process_mentions(str(run_dir))


@pytest.mark.parametrize("scenario,framework", [("trondelag_arbitrage", None), ("ieee_eu_lv_lem_plain", None),
                                                ("ieee_eu_lv_three_lecs", "decentralised"),
                                                ("ieee_eu_lv_three_lecs", "distributed"),
                                                ("ieee_eu_lv_three_lecs", "p2p")])
def test_every_federate_of_every_federation_ends_with_the_federation(tmp_path, scenario, framework):
    """What the tests above rely on, in every generated config: an error anywhere stops everyone, and a
    federate never waits for a grant for ever."""
    from harness import SCENARIOS

    from lec_cosim.federation import federate_names, write_federation
    from lec_cosim.scenario import load_scenario

    loaded = load_scenario(SCENARIOS / f"{scenario}.yaml")
    if framework:
        loaded = loaded.model_copy(update={"framework": framework})
    write_federation(loaded, tmp_path, manifest=False)
    names = federate_names(loaded)
    assert len(names) >= 4
    for name in names:
        config = json.loads((tmp_path / "configs" / f"{name}.json").read_text())
        assert config["terminate_on_error"] is True, name
        assert 0 < config["grant_timeout"] <= 60, name
        assert config["uninterruptible"] is True, name  # see broker_config/README.md: --globaltime


def test_a_stopped_federate_is_named_at_its_own_time_when_the_verdict_named_another(tmp_path):
    """All waiting, the lowest granted time another's: the kernel says lec_ems is stopped, so lec_ems is the culprit,
    at its own last granted time (not the other's, and not none)."""
    from lec_cosim.watchdog import FederateTime, Stall, Watchdog

    victim = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(victim.pid, signal.SIGSTOP)
        assert wait_until(lambda: Path(f"/proc/{victim.pid}/stat").read_text().split()[2] == "T", timeout_s=10)
        watchdog = Watchdog(broker_address="127.0.0.1", port=0, federates=["market", "lec_ems"], run_dir=tmp_path,
                            programs=["market", "lec_ems"], stall_s=6.0, pids={"lec_ems": victim.pid})
        watchdog.times = {"market": FederateTime(granted_s=1800.0, requested_s=3600.0, joined=True),
                          "lec_ems": FederateTime(granted_s=7200.0, requested_s=7200.0, joined=True)}
        watchdog._declare(Stall("market", 1800.0, "every federate is waiting for a grant", 0.0), 6.5)
        assert watchdog.stall == Stall("lec_ems", 7200.0, "its process is stopped (SIGSTOP or a debugger)", 6.5)
    finally:
        victim.kill()
        victim.wait()
