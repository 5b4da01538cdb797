"""Drive one federate program over a real helics_broker with small in-process test federates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import helics as h

from federates.common import REQUEST_MARGIN_S, ValueInterface
from lec_cosim.federation import (
    LOOPBACK,
    broker_command,
    core_init_string,
    federate_command,
    free_broker_port,
    plan,
    release_broker_ports,
)
from lec_cosim.scenario import write_scenario_variant
from lec_cosim.studies.community_battery.wiring import PHASE_OFFSET_S
from lec_cosim.wiring import FederatePlan, federate_config

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


class TestFederate(ValueInterface):
    """A combination federate in the test process, with the same time conventions as ours."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str, port: int, *, period: float, offset: float,
                 publications=(), subscriptions=(), endpoints=(), core_name: str | None = None):
        """``core_name``: a core of its own. Without one, HELICS gives a second federate of this
        process the first one's core, whatever broker address its config names."""
        if STRANDED and not core_name:  # it could join a stranded core and wait for ever
            raise RuntimeError("an earlier test's federate under test failed and left this process's HELICS "
                               "federates stranded; see that test's error")
        config = {
            "name": name,
            **({"coreName": core_name} if core_name else {}),
            "coreType": "zmq",
            "coreInitString": core_init_string(LOOPBACK, port),
            "period": period,
            "offset": offset,
            "uninterruptible": True,
            "terminate_on_error": True,
            "ignore_time_mismatch_warnings": True,
            "publications": [{"key": k, "type": t, "global": True} for k, t in publications],
            "subscriptions": [{"key": k, "type": t} for k, t in subscriptions],
            # targeted, as the federates' own (lec_cosim.wiring.endpoint_config): HELICS coordinates the time of a
            # targeted endpoint's receivers only with the senders that declare it a destination
            "endpoints": [{"name": e, "global": True, **({"targeted": True, "destination_targets": UNDER_TEST}
                                                          if UNDER_TEST else {})} for e in endpoints],
        }
        self.offset = offset
        self.fed = h.helicsCreateCombinationFederateFromConfig(json.dumps(config))
        LIVE.append(self.fed)
        self.pubs = {k: h.helicsFederateGetPublication(self.fed, k) for k, _ in publications}
        self.subs = {k: h.helicsFederateGetInputByTarget(self.fed, k) for k, _ in subscriptions}
        self.endpoints = {e: h.helicsFederateGetEndpoint(self.fed, e) for e in endpoints}

    def close(self) -> None:
        if self.fed in LIVE:
            LIVE.remove(self.fed)
        super().close()

    def enter(self) -> None:
        h.helicsFederateEnterExecutingModeAsync(self.fed)
        wait_for(self.fed)
        h.helicsFederateEnterExecutingModeComplete(self.fed)

    def advance(self, t: float) -> float:
        """Request step start ``t`` (plus this federate's offset); returns the granted time."""
        self.request(t)
        return self.granted()

    def request(self, t: float) -> None:
        """Start an asynchronous request for step ``t``; finish it with :meth:`granted`.

        Several test federates live in one thread: blocking on one would stall the others.
        """
        self._wanted = t + self.offset
        self._pending = self._wanted > 0
        if self._pending:
            h.helicsFederateRequestTimeAsync(self.fed, self._wanted - REQUEST_MARGIN_S)

    def granted(self) -> float:
        if self._pending:
            self._pending = False
            wait_for(self.fed)
            return h.helicsFederateRequestTimeComplete(self.fed)
        return 0.0

    def arrive(self, t: float) -> float:
        """Be at step ``t``: complete the pending request for it, or make one and wait."""
        if getattr(self, "_pending", False):
            granted = self.granted()
        else:
            granted = self.advance(t)
        assert abs(granted - (t + self.offset if t + self.offset > 0 else 0.0)) < 1e-9, granted
        return granted


LIVE: list = []
"""The HELICS federates of the test federates not closed yet."""
UNDER_TEST: list[str] = []
"""The endpoints of the federate under test (:func:`plan_under_test`): the test federates' destinations."""
STRANDED: list = []
"""Test federates left waiting for a federate under test that failed: HELICS would wait for them at exit."""
FAILED: dict[str, str] = {}
"""The federate under test that exited with an error, and its log (see :class:`Watch`)."""


class Watch:
    """The watch over one federate under test: when it exits with an error (a bad config, a crash at start),
    the test's own federates, waiting for it in HELICS, raise with its log (:func:`wait_for`) at once: blocked
    in a HELICS call they would wait for ever, and pytest's timeout signal cannot interrupt C code. :meth:`stop`
    it before the test kills the federate itself, so that its exit is not taken for a failure (nor one of an
    earlier test's)."""

    current: "Watch | None" = None

    def __init__(self, federate: subprocess.Popen, log: Path | None):
        FAILED.clear()
        Watch.current = self
        self.stopped = False

        def watch() -> None:
            code = federate.wait()
            if code != 0 and not self.stopped and Watch.current is self:
                text = log.read_text() if log is not None and log.is_file() else ""
                FAILED["error"] = f"the federate under test exited with {code}: {text.strip()[-2000:]}"

        threading.Thread(target=watch, daemon=True).start()

    def stop(self) -> None:
        self.stopped = True
        if Watch.current is self:
            Watch.current = None
            FAILED.clear()


def wait_for(fed, poll_s: float = 0.001, timeout_s: float = 300.0) -> None:
    """Until the federate's asynchronous HELICS call (enter executing mode, a time request) completes or the
    federate is in error (its ``...Complete`` call then raises HELICS's error); raises once the federate under
    test has failed, or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not h.helicsFederateIsAsyncOperationCompleted(fed):
        if h.helicsFederateGetState(fed) == h.HelicsFederateState.ERROR:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no HELICS grant in {timeout_s:g} s")
        if FAILED:
            STRANDED.extend(LIVE)  # HELICS cannot end them now: every call on them blocks (see tests/conftest.py)
            LIVE.clear()
            raise RuntimeError(FAILED["error"])
        time.sleep(poll_s)


def federate_under_test(name: str, scenario, run_dir: Path, n_test_federates: int, settings: dict | None = None):
    """Start a broker and the federate ``name`` of the scenario's federation; yields the broker port (see
    :func:`plan_under_test`)."""
    federate = next((f for f in plan(scenario) if f.name == name), None)
    if federate is None:
        raise KeyError(f"no federate {name!r} in scenario {scenario.name!r}")
    return plan_under_test(federate, scenario, run_dir, n_test_federates, settings)


@contextmanager
def plan_under_test(federate: FederatePlan, scenario, run_dir: Path, n_test_federates: int,
                    settings: dict | None = None):
    """Start a broker and the federate of ``federate`` (a study's plan, or a test's own); yields the broker port.

    ``settings`` update the federate's own settings (``lec_cosim`` in its config); three-LEC
    federates are told not to stay for the recorder's query (there is no recorder).
    On exit, waits for the federate to finish and asserts it exited cleanly; kills leftovers.
    """
    name = federate.name
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_broker_port()
    (run_dir / "scenario.json").write_text(scenario.to_json())
    config = run_dir / f"{name}.json"
    content = federate_config(federate, core_init_string(scenario.broker, port), run_dir)
    content["lec_cosim"].update({"stay_for_query": False, **(settings or {})})
    config.write_text(json.dumps(content))
    broker = subprocess.Popen(broker_command(port, 1 + n_test_federates),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (run_dir / f"{name}.log").open("w")
    process = subprocess.Popen(federate_command(name, config), stdout=log, stderr=subprocess.STDOUT)
    watch = Watch(process, run_dir / f"{name}.log")
    UNDER_TEST[:] = federate.endpoints
    try:
        yield port
        code = process.wait(timeout=60)
        assert code == 0, (run_dir / f"{name}.log").read_text()
        broker.wait(timeout=30)
    finally:
        UNDER_TEST.clear()
        watch.stop()
        for p in (process, broker):
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
        release_broker_ports(port)


def parent_pid(pid: int) -> int | None:
    """The parent of a running process (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def wait_until(condition, timeout_s: float = 30.0, every_s: float = 0.05) -> bool:
    """Poll ``condition()`` until it holds (True) or ``timeout_s`` passes (False): a bounded wait, never a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)


def no_process_mentions(*texts: str, timeout_s: float = 10.0) -> bool:
    """Wait (bounded) until no process mentions any of ``texts``: a run's processes may take a moment to exit."""
    return wait_until(lambda: not any(processes_mentioning(t) for t in texts), timeout_s)


@contextmanager
def small_disk(path: Path, size: str, read_only: bool = False):
    """A tmpfs of ``size`` mounted at ``path`` (a full disk, or a read-only one), unmounted afterwards, also on failure."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "lec_cosim_test", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def processes_mentioning(text: str) -> list[int]:
    """PIDs of the processes (other than this one) whose command line contains ``text``: leftovers of a run."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                continue
    return found


def enter_all(*feds: TestFederate) -> None:
    """Enter executing mode with several test federates of one thread."""
    for fed in feds:
        h.helicsFederateEnterExecutingModeAsync(fed.fed)
    for fed in feds:
        wait_for(fed.fed)
        h.helicsFederateEnterExecutingModeComplete(fed.fed)


def arrive_all(feds, t: float) -> None:
    """Bring several test federates of one thread to step ``t`` (asynchronous requests)."""
    for fed in feds:
        fed.request(t)
    for fed in feds:
        fed.arrive(t)


def offset(name: str) -> float:
    return PHASE_OFFSET_S[name]


def write_scenario(directory: Path, base: str, changes: dict) -> Path:
    """A copy of a shipped scenario with ``changes`` (dotted keys) applied, saved in ``directory``."""
    return write_scenario_variant(SCENARIOS / f"{base}.yaml", changes, directory)


SHARED_RUNS = {
    # name: (shipped scenario, changes, extra arguments of lec-cosim run)
    "trondelag_arbitrage": ("trondelag_arbitrage", {}, []),
    "trondelag_self_consumption": ("trondelag_self_consumption", {}, []),
    "lem_hourly_12h": ("ieee_eu_lv_lem_plain", {"resolution.grid_min": 60, "horizon_h": 12}, []),
    "three_lecs_decentralised": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60},
                                 ["--framework", "decentralised"]),
    "three_lecs_dso_limits": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60},
                              ["--framework", "decentralised", "--dso-limits"]),
    "three_lecs_p2p": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60}, ["--framework", "p2p"]),
    # to 14:00: the DSO's limits bind from late morning (lec2 curtails 27 kWh of PV by then), the day's rest is
    # not needed where three backends each run it (test_backend_kpis)
    "three_lecs_dso_limits_14h": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60, "horizon_h": 14},
                                  ["--framework", "decentralised", "--dso-limits"]),
}
"""Runs that tests of several files read: each is made once per test session, by whichever test process
needs it first (see :func:`shared_runs`). A federation costs seconds of CPU to start, whatever its horizon."""


def shared_runs(tmp_path_factory, *names: str, timeout_s: float = 400.0) -> dict[str, tuple[Path, Path]]:
    """The runs :data:`SHARED_RUNS` names, through ``lec-cosim run`` (a process of its own, as a user runs it);
    name -> (scenario file, results folder named ``name``). Read them, never write into them: other tests read
    them too.

    They are made once per session and kept in a folder the session's test processes (pytest-xdist workers)
    share: a process that finds one missing makes it, holding its lock (flock), and the other waits for it.
    The missing ones of one call run at the same time. A run that failed fails every test that asks for it."""
    import fcntl
    import hashlib

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared_runs"
    root.mkdir(exist_ok=True)
    folders = {}
    for name in names:
        spec = json.dumps(SHARED_RUNS[name], sort_keys=True)
        folders[name] = root / f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"
    locks = []
    try:
        for name in sorted(names, key=lambda n: folders[n].name):  # one order for every process: no deadlock
            handle = open(folders[name].with_suffix(".lock"), "a")
            fcntl.flock(handle, fcntl.LOCK_EX)
            locks.append(handle)
        started = {}
        for name in names:
            folder = folders[name]
            failed = folder / "failed.txt"
            if failed.is_file():
                raise AssertionError(f"shared run {name}: {failed.read_text()}")
            if (folder / name / "summary.json").is_file():
                continue
            shutil.rmtree(folder, ignore_errors=True)  # a process that died while making it
            folder.mkdir()
            shipped, changes, extra = SHARED_RUNS[name]
            path = write_scenario(folder, shipped, changes)
            started[name] = subprocess.Popen([sys.executable, "-m", "lec_cosim", "run", str(path), "--out",
                                              str(folder / name), "--quiet", *extra],
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for name, proc in started.items():
                output = proc.communicate(timeout=timeout_s)[0]
                if proc.returncode != 0:
                    (folders[name] / "failed.txt").write_text(f"exit code {proc.returncode}: {output}")
        except BaseException as exc:  # a timeout (ours or the test's): no run is left making a shared folder
            for name, proc in started.items():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    (folders[name] / "failed.txt").write_text(f"not finished: {exc!r}")
            raise
        for name in started:
            failed = folders[name] / "failed.txt"
            assert not failed.is_file(), f"shared run {name}: {failed.read_text()}"
    finally:
        for handle in locks:
            handle.close()  # releases its lock
    return {name: (next(folders[name].glob("*.yaml")), folders[name] / name) for name in names}


def shared_run(tmp_path_factory, name: str) -> tuple[Path, Path]:
    """One of :func:`shared_runs`: (scenario file, results folder)."""
    return shared_runs(tmp_path_factory, name)[name]


def run_in_process(directory: Path, base: str, changes: dict, timeout_s: float = 300.0):
    """The federation of a shipped scenario with ``changes``, run into ``directory/out`` in this process
    (:func:`lec_cosim.inproc.run_inproc`: the same federate programs and configs as ``lec-cosim run``, as threads
    on HELICS's in-process core; results byte-identical to a process run, ``tests/test_inproc.py``), for tests that
    read a run's results, not its processes: a process per federate costs seconds of imports each. Returns the
    scenario as loaded and the results folder."""
    from lec_cosim.inproc import run_inproc
    from lec_cosim.scenario import load_scenario

    path = write_scenario(directory, base, changes)
    scenario = load_scenario(path)
    run_inproc(scenario, directory / "out", timeout_s=timeout_s)
    return scenario, directory / "out"


def seeded_episode(env, hours: int) -> list:
    """A learning environment's episode from ``reset(seed=7)`` with actions drawn from seed 7 within its action
    space: the observations and rewards, as lists (JSON-ready: a pinned environment's subprocess prints them)."""
    import numpy as np

    observation, _ = env.reset(seed=7)
    rng = np.random.default_rng(7)
    trace = [observation.tolist()]
    for _ in range(hours):
        action = env.action_space.low + rng.random(2) * (env.action_space.high - env.action_space.low)
        observation, reward, _, _, _ = env.step(action)
        trace += [observation.tolist(), [reward]]
    return trace


def check_refused_in_one_line(directory: Path, capsys, base: str, changes: dict, where: str, reason: str) -> None:
    """A copy of a shipped scenario with ``changes`` is refused: loading raises ``ScenarioError``, and
    ``lec-cosim validate`` prints one line to stderr, nothing to stdout, starting ``error: <file>: <where>`` and
    holding ``reason``, and exits 2."""
    import pytest

    from lec_cosim.cli import main
    from lec_cosim.scenario import ScenarioError, load_scenario

    path = write_scenario(directory, base, changes)
    with pytest.raises(ScenarioError):
        load_scenario(path)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {path}: {where}") and reason in err, err


def start_year_run(tmp_path: Path) -> tuple[Path, subprocess.Popen]:
    """``lec-cosim run`` of a year, once its federation is stepping; its results would go to ``year`` (the run
    goes on in ``year.partial``)."""
    path = write_scenario(tmp_path, "trondelag_arbitrage_year", {})
    out = tmp_path / "year"
    proc = subprocess.Popen([sys.executable, "-m", "lec_cosim", "run", str(path), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    while not line.startswith("  "):  # a progress line: the federation is stepping
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    return out, proc


def cli_in_process(capsys, *args) -> subprocess.CompletedProcess:
    """``lec-cosim ARGS`` through the CLI's own ``main`` in this process, as a finished process: its exit code
    (argparse's too), stdout and stderr. For commands that end in an input error before anything runs: a
    ``python -m lec_cosim`` process costs a second of imports to print its one line. The CLI as a process
    (what reaches a user's terminal, the exit code through ``sys.exit``) stays with the tests that run it so."""
    import warnings

    from lec_cosim.cli import main

    argv = [str(arg) for arg in args]
    capsys.readouterr()  # what the test printed before is not the command's
    # every warning, as a fresh process would print it to the user's stderr (pytest's filters and its record of
    # the warnings already shown once in this process would hide them)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out, err = capsys.readouterr()
    err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown)
    return subprocess.CompletedProcess(["lec-cosim", *argv], code, out, err)
