"""The fork server (``lec_cosim.forkserver``): a forked federate program behaves as a new process of it would.

First, programs forked by a server directly, each against the same program run as ``python -m`` in a new
process: the same output byte for byte (tracebacks included), the same exit code (a signal's negative). Then
federations through the launcher: results and logs equal to those of new processes (``LEC_COSIM_FORK_SERVER=0``),
a crashing federate's exit code and error line, a federate killed by a signal, a server that cannot start, and
nothing left running after a success or a failure (after ``lec-cosim run`` killed with SIGKILL: the server's five
federates are counted in ``tests/test_run_outcomes.py``, whose SIGKILL test checks that all end).
"""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harness import (
    no_process_mentions,
    parent_pid,
    processes_mentioning,
    start_year_run,
    wait_until,
    write_scenario,
)

from lec_cosim import forkserver, launch
from lec_cosim.forkserver import ForkServer
from lec_cosim.launch import FederationError, run_federation

CLI = [sys.executable, "-m", "lec_cosim"]

PROGRAMS = {
    "prints": """
        import os, sys
        print("argv", sys.argv[1:], os.path.basename(sys.argv[0]), sys.orig_argv[1:])
        print("path0", sys.path[0] == os.getcwd(), "cwd", os.path.basename(os.getcwd()), "name", __name__)
        print("env", os.environ.get("PROBE"), os.environ.get("PYTHONUNBUFFERED"))
        print("to stderr", file=sys.stderr)
        print("buffering", sys.stdout.write_through, sys.stdout.line_buffering, sys.stderr.line_buffering)
        import signal
        print("signals", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
              signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGPIPE))
    """,
    "exits_3": "import sys\nprint('bye')\nsys.exit(3)\n",
    "exits_with_text": "import sys\nsys.exit('it went wrong')\n",
    # negative codes are exit statuses (255, 247), not signals; the server must go on serving (tests after these)
    "exits_minus_1": "import sys\nsys.exit(-1)\n",
    "exits_minus_9": "import sys\nsys.exit(-9)\n",
    "raises": "def fail():\n    raise RuntimeError('boom')\n\nfail()\n",
    "interrupted": "raise KeyboardInterrupt\n",
    "terminates_itself": "import os, signal\nprint('going', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\n",
    "ends_late": """
        import atexit, threading, time
        atexit.register(print, "atexit ran")
        def late():
            time.sleep(0.2)
            print("thread done")
        threading.Thread(target=late).start()
        print("main done")
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A fork server of its own (as a run starts one), programs of :data:`PROGRAMS` in its folder."""
    folder = tmp_path_factory.mktemp("programs")
    for name, code in PROGRAMS.items():
        (folder / f"probe_{name}.py").write_text(textwrap.dedent(code))
    env = dict(os.environ, PYTHONUNBUFFERED="1", PROBE="set")
    started = ForkServer.start(folder, env, [[sys.executable, "-m", "probe_prints", "x" * 200]])
    assert started is not None
    yield started, folder, env
    started.close()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_forked_program_is_a_new_process_of_it(server, name):
    fork, folder, env = server
    argv = [sys.executable, "-m", f"probe_{name}", "--config", "c.json"]
    fresh = subprocess.run(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           check=False)
    log = folder / f"{name}.log"
    with log.open("w") as handle:
        child = fork.spawn(argv, folder, env, handle)
    assert child is not None and child.args == argv
    assert child.wait(timeout=60) == fresh.returncode
    assert log.read_bytes() == fresh.stdout
    expected = {"exits_3": 3, "exits_with_text": 1, "exits_minus_1": 255, "exits_minus_9": 247, "raises": 1,
                "interrupted": -signal.SIGINT,
                "terminates_itself": -signal.SIGTERM}
    assert child.returncode == expected.get(name, 0)


def test_a_forked_program_is_the_server_s_child_with_its_own_command_line(server):
    fork, folder, env = server
    (folder / "probe_sleeps.py").write_text("import time\ntime.sleep(30)\n")
    argv = [sys.executable, "-m", "probe_sleeps", "--config", str(folder / "x.json")]
    with (folder / "sleeps.log").open("w") as handle:
        child = fork.spawn(argv, folder, env, handle)
    try:
        assert parent_pid(child.pid) == fork.popen.pid
        # rewritten as the child starts (a new process too shows its parent's until its exec)
        assert wait_until(lambda: Path(f"/proc/{child.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
                          == [os.fsencode(a) for a in argv], timeout_s=10)
        assert child.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.2)
        assert os.getsid(child.pid) == child.pid  # a session of its own, as start_new_session gives
    finally:
        child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_a_missing_folder_raises_as_popen_does(server):
    fork, folder, env = server
    with (folder / "missing.log").open("w") as handle, pytest.raises(FileNotFoundError):
        fork.spawn([sys.executable, "-m", "probe_prints"], folder / "nowhere", env, handle)


def test_which_entries_are_forked():
    # without start-up variables of its own: an earlier test in this process (Dask's workers) may have set some
    env = {name: value for name, value in os.environ.items() if not name.startswith(forkserver.STARTUP_VARIABLES)}
    assert forkserver.servable([sys.executable, "-m", "federates.dso", "--config", "c.json"], {}, env)
    assert not forkserver.servable(["helics_broker", "-f4"], {}, env)
    assert not forkserver.servable(["/other/python", "-m", "federates.dso"], {}, env)
    assert not forkserver.servable([sys.executable, "-m", "lec_cosim.watchdog"], {}, env)
    assert not forkserver.servable([sys.executable, "-X", "importtime", "-m", "federates.dso"], {}, env)
    # an entry's own variable read at start-up: a new process
    assert not forkserver.servable([sys.executable, "-m", "federates.dso"], {"OPENBLAS_NUM_THREADS": "1"}, env)
    # the launcher's own value again: nothing changes, the fork serves it
    assert forkserver.servable([sys.executable, "-m", "federates.dso"], {"OMP_NUM_THREADS": "2"},
                               {**env, "OMP_NUM_THREADS": "2"})
    assert forkserver.servable([sys.executable, "-m", "federates.dso"], {"MY_SETTING": "1"}, env)
    assert not forkserver.enabled({**env, "LEC_COSIM_FORK_SERVER": "0"})
    assert not forkserver.enabled({**env, "PYTHONPROFILEIMPORTTIME": "1"})


# --------------------------------------------------------------------------------------------------- federations


def federation(tmp_path, scenario="trondelag_arbitrage", changes=None, fault=None) -> Path:
    """A federation written into ``tmp_path/run``, as ``lec-cosim run`` writes it; ``fault``: (federate, option,
    time) armed in that federate's config (see test_fault_injection.py)."""
    from lec_cosim.federation import write_federation
    from lec_cosim.scenario import load_scenario

    path = write_scenario(tmp_path, scenario, {"horizon_h": 3, **(changes or {})})
    run_dir = tmp_path / "run"
    write_federation(load_scenario(path), run_dir)
    if fault is not None:
        federate, option, at_s = fault
        config = run_dir / "configs" / f"{federate}.json"
        settings = json.loads(config.read_text())
        settings["lec_cosim"][option] = at_s
        config.write_text(json.dumps(settings))
    return run_dir


@pytest.fixture
def spawned(monkeypatch):
    """The commands the fork server forked during a test."""
    forked = []
    original = ForkServer.spawn

    def counting(self, argv, *args):
        child = original(self, argv, *args)
        if child is not None:
            forked.append(argv[2])
        return child

    monkeypatch.setattr(ForkServer, "spawn", counting)
    return forked


def without_timings(run_dir: Path, log: str) -> list[str]:
    """A log's lines but those giving seconds (of work, of CPU; the recorder's speed): each run's own; the run's
    folder as RUN."""
    return [line.replace(str(run_dir), "RUN") for line in (run_dir / "logs" / log).read_text().splitlines()
            if " slots, " not in line and " speed " not in line]


@pytest.mark.timeout(300)
def test_results_and_logs_equal_those_of_new_processes(tmp_path, monkeypatch, spawned):
    forked = federation(tmp_path / "forked", "ieee_eu_lv_lem_plain")
    run_federation(forked, timeout_s=120)
    assert sorted(spawned) == ["federates.dso", "federates.lem_market", "federates.lem_participants",
                               "federates.recorder", "lec_cosim.watchdog"]  # the watchdog too: HELICS imported
    monkeypatch.setenv("LEC_COSIM_FORK_SERVER", "0")
    fresh = federation(tmp_path / "fresh", "ieee_eu_lv_lem_plain")
    run_federation(fresh, timeout_s=120)
    assert len(spawned) == 5  # none forked: the documented way out
    tables = sorted(p.name for p in fresh.glob("*.csv"))
    assert tables and tables == sorted(p.name for p in forked.glob("*.csv"))
    for name in tables:
        assert (forked / name).read_bytes() == (fresh / name).read_bytes(), name
    for log in sorted((fresh / "logs").glob("*.log")):
        assert without_timings(forked, log.name) == without_timings(fresh, log.name), log.name
    assert no_process_mentions(str(tmp_path))


@pytest.mark.timeout(200)
def test_a_crashing_forked_federate_fails_the_run_with_its_error_line(tmp_path, spawned):
    run_dir = federation(tmp_path, fault=("lec_ems", "inject_fault_at_s", 3600.0))
    with pytest.raises(FederationError) as failure:
        run_federation(run_dir, timeout_s=60)
    assert "federates.lec_ems" in spawned
    assert failure.value.federate == "lec_ems"
    assert str(failure.value).startswith("federate lec_ems failed: lec_ems: RuntimeError: injected fault at")
    assert "error: lec_ems: RuntimeError: injected fault at" in (run_dir / "logs" / "lec_ems.log").read_text()
    assert no_process_mentions(str(run_dir))  # the server and every federate


@pytest.mark.timeout(200)
def test_a_forked_federate_s_exit_code_reaches_the_launcher(tmp_path, monkeypatch, spawned):
    """A federate given an address no peer reaches exits with code 2 before it joins: the handle reports it, as
    Popen's returncode would, and its error line names the run's failure."""
    codes = {}
    original = launch._stop

    def stop(processes):
        codes.update({p.name: p.popen.poll() for p in processes})
        original(processes)

    monkeypatch.setattr(launch, "_stop", stop)
    run_dir = federation(tmp_path)
    runner = json.loads((run_dir / "runner.json").read_text())
    market = next(entry for entry in runner["federates"] if entry["name"] == "market")
    market["exec"] += " --local-interface tcp://0.0.0.0"
    (run_dir / "runner.json").write_text(json.dumps(runner))
    with pytest.raises(FederationError) as failure:
        run_federation(run_dir, timeout_s=60)
    assert "federates.market" in spawned
    assert codes["market"] == 2, codes
    assert str(failure.value).startswith("federate market failed: market: --local-interface:"), str(failure.value)
    assert no_process_mentions(str(run_dir))


def server_of(proc) -> int:
    servers = [pid for pid in processes_mentioning("lec_cosim.forkserver") if parent_pid(pid) == proc.pid]
    assert len(servers) == 1
    return servers[0]


@pytest.mark.timeout(200)
def test_a_forked_federate_killed_by_a_signal_is_named_with_it(tmp_path):
    out, proc = start_year_run(tmp_path)
    staging = out.with_name(out.name + ".partial")
    server = server_of(proc)
    victim = [pid for pid in processes_mentioning(str(staging / "configs" / "dso.json")) if parent_pid(pid) == server]
    assert len(victim) == 1
    os.kill(victim[0], signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "federate dso failed: killed by SIGTERM" in err, err
    assert no_process_mentions(str(staging), str(tmp_path / "year.incomplete"))


# SIGKILL of lec-cosim run with its five federates forked by the server: the server and every federate end with it
# (tests/test_run_outcomes.py, test_sigkill_of_the_cli_takes_the_federation_with_it: one year run for both).


@pytest.mark.timeout(200)
def test_a_server_that_cannot_start_leaves_the_run_to_new_processes(tmp_path, monkeypatch, caplog, spawned):
    monkeypatch.setattr(forkserver, "SERVER_MODULE", "lec_cosim.no_such_module")
    run_dir = federation(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lec_cosim.forkserver"):
        run_federation(run_dir, timeout_s=120)
    assert spawned == []
    assert "fork server failed" in caplog.text and "started as new processes" in caplog.text
    assert (run_dir / "summary.json").is_file()
    assert no_process_mentions(str(run_dir))


# ------------------------------------------------------------------------------- the spare server (lec-cosim run's)


def test_a_spare_is_taken_by_a_run_of_its_environment_and_room(tmp_path):
    env = forkserver.run_environment()
    short = [[sys.executable, "-m", "federates.dso", "--config", str(tmp_path / "configs" / "dso.json")]]
    forkserver.start_spare(env)
    spare = forkserver._spare[0]
    forkserver.start_spare(env)  # one at most
    assert forkserver._spare == [spare]
    taken = ForkServer.start(tmp_path, env, short)
    try:
        assert taken is spare and forkserver._spare == []
        # from now on its command line names the run's folder, as a run's own server's does (ps, pgrep -f)
        assert wait_until(lambda: str(tmp_path).encode() in Path(f"/proc/{spare.popen.pid}/cmdline").read_bytes(),
                          timeout_s=60)
        assert Path(f"/proc/{spare.popen.pid}/cwd").resolve() == Path(forkserver.__file__).resolve().parents[1]
        (tmp_path / "probe_spare.py").write_text("import os\nprint('parent', os.getppid())\n")
        with (tmp_path / "spare.log").open("w") as handle:
            child = taken.spawn([sys.executable, "-m", "probe_spare"], tmp_path, env, handle)
        assert child.wait(timeout=60) == 0
        assert (tmp_path / "spare.log").read_text() == f"parent {spare.popen.pid}\n"
    finally:
        taken.close()
    assert spare.popen.poll() is not None


@pytest.mark.parametrize("mismatch", ["environment", "room"])
def test_a_spare_of_another_environment_or_too_little_room_is_ended_and_a_server_started(tmp_path, mismatch):
    env = forkserver.run_environment()
    forkserver.start_spare(env)
    spare = forkserver._spare[0]
    wanted_env = forkserver.run_environment(debug=True) if mismatch == "environment" else env
    long_path = tmp_path / ("x" * (forkserver.SPARE_ROOM_BYTES if mismatch == "room" else 10))
    server = ForkServer.start(tmp_path, wanted_env, [[sys.executable, "-m", "federates.dso", str(long_path)]])
    try:
        assert server is not None and server is not spare and forkserver._spare == []
        assert spare.gone and spare.popen.poll() is not None  # ended and waited for: no process left
        assert server.env == wanted_env
    finally:
        server.close()


def test_a_spare_no_run_takes_is_ended_by_the_launcher_at_once(tmp_path):
    """A federation without federate programs to fork (here one plain command) ends the spare, still importing or
    not (killed, not waited for), and leaves no process of it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "runner.json").write_text(json.dumps({"federates": [
        {"name": "plain", "exec": f"{sys.executable} -c pass", "directory": "."}]}))
    forkserver.start_spare(forkserver.run_environment())
    spare = forkserver._spare[0]
    run_federation(run_dir, timeout_s=120, stall_timeout_s=None)
    assert forkserver._spare == [] and spare.gone
    # still importing: killed; ready: ended by its closed socket (a spare left to finish its imports exits 1 or 0)
    assert spare.popen.poll() == (0 if spare.ready else -signal.SIGKILL)
    forkserver.discard_spare()  # none left: nothing to do


def test_lec_cosim_run_starts_its_spare_before_its_own_imports(tmp_path):
    """``python -m lec_cosim run`` (the ``lec-cosim`` script's entry) starts the server before the CLI's modules are
    imported (in a fresh process: here they are); another command and ``run --help`` start none; ``--debug`` before
    ``run`` is the run's environment."""
    probe = textwrap.dedent("""
        import sys
        from lec_cosim import forkserver
        seen = []
        forkserver.start_spare = lambda env: seen.append(
            ("lec_cosim.cli" in sys.modules, "pandas" in sys.modules, env.get(forkserver.DEBUG_ENVIRONMENT)))
        from lec_cosim.__main__ import main
        try:
            code = main(sys.argv[1:])
        except SystemExit as end:  # argparse's --help
            code = end.code
        print(seen, code)
    """)

    def entry(*args):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                              check=False, cwd=tmp_path)
        return done.stdout.strip()

    missing = str(tmp_path / "missing.yaml")
    assert entry("run", missing, "--out", str(tmp_path / "out")) == "[(False, False, None)] 2"
    assert entry("--debug", "run", missing) == "[(False, False, '1')] 2"
    assert entry("validate", missing) == "[] 2"
    assert entry("run", "--help").endswith("[] 0")
    assert not (tmp_path / "out").exists()


def test_the_launcher_notices_an_exit_when_it_happens(tmp_path):
    """The launcher's wait ends with a watched process's exit (a started one's pidfd, a forked one's report from
    the server), not at its timeout: here a timeout no test would survive."""
    started = subprocess.Popen([sys.executable, "-c", "pass"])
    exits = launch._Exits()
    exits.watch(started)
    try:
        exits.wait([started], None, timeout=3600)
        assert started.wait(timeout=60) == 0
        server = ForkServer.start(tmp_path, forkserver.run_environment(), [[sys.executable, "-m", "probe_quick"]])
        (tmp_path / "probe_quick.py").write_text("pass\n")
        try:
            with (tmp_path / "quick.log").open("w") as handle:
                child = server.spawn([sys.executable, "-m", "probe_quick"], tmp_path, server.env, handle)
            while child.returncode is None:
                exits.wait([child], server, timeout=3600)
                child.poll()
            assert child.returncode == 0
        finally:
            server.close()
    finally:
        exits.close()


def test_a_run_s_server_reads_its_scenario_and_settings_modules_once_for_the_federates_it_forks(tmp_path):
    """forkserver.warm: before it forks, the server reads each config's scenario and imports its kind's settings
    module; a forked federate takes the scenario read (its own copy) and imports nothing of it again."""
    from lec_cosim.federation import write_federation
    from lec_cosim.scenario import load_scenario

    write_federation(load_scenario(Path(__file__).parents[1] / "scenarios" / "ieee_eu_lv_lem_plain.yaml"), tmp_path)
    scenario_path = json.loads((tmp_path / "configs" / "market.json").read_text())["lec_cosim"]["scenario"]
    (tmp_path / "probe_warm.py").write_text(textwrap.dedent(f"""
        import sys
        import lec_cosim.scenario as s
        print("preloaded", list(s._PRELOADED) == [{scenario_path!r}])
        print("settings imported", "lec_cosim.components.lem_market" in sys.modules)
        kept = s._PRELOADED[{scenario_path!r}][1]
        print("taken", s.load_scenario({scenario_path!r}) is kept, "once", s.load_scenario({scenario_path!r}) is not kept)
    """))
    env = forkserver.run_environment()
    server = ForkServer.start(tmp_path, env, [[sys.executable, "-m", "probe_warm"]])
    try:
        with (tmp_path / "warm.log").open("w") as handle:
            child = server.spawn([sys.executable, "-m", "probe_warm"], tmp_path, env, handle)
        assert child.wait(timeout=60) == 0, (tmp_path / "warm.log").read_text()
    finally:
        server.close()
    assert (tmp_path / "warm.log").read_text() == "preloaded True\nsettings imported True\ntaken True once True\n"


def test_a_preloaded_scenario_is_taken_once_and_only_while_its_file_is_unchanged(tmp_path):
    import lec_cosim.scenario as s

    copy = s.write_scenario_variant(Path(__file__).parents[1] / "scenarios" / "ieee_eu_lv_lem_plain.yaml", {},
                                    tmp_path)
    try:
        s.preload_scenario(copy)
        kept = s._PRELOADED[str(copy)][1]
        assert s.load_scenario(copy) is kept
        again = s.load_scenario(copy)
        assert again is not kept and again == kept  # read anew: the entry was taken
        s.preload_scenario(copy)
        copy.write_text(copy.read_text().replace("name: ieee_eu_lv_lem_plain", "name: changed_since"))
        fresh = s.load_scenario(copy)
        assert fresh.name == "changed_since" and s._PRELOADED == {}
    finally:
        s._PRELOADED.clear()


def test_warm_leaves_what_it_cannot_read_to_the_federates(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "broken.json").write_text("{not json")
    forkserver.warm(tmp_path)  # no error: the federate reads its config and says what is wrong
    (tmp_path / "configs" / "broken.json").write_text(json.dumps(
        {"lec_cosim": {"scenario": str(tmp_path / "missing.yaml"), "module": "federates.nothing"}}))
    forkserver.warm(tmp_path)
    for text in ("[1, 2]", '{"lec_cosim": "a string"}', "[" * 100000 + "]" * 100000, '{"lec_cosim": {"module": 3}}'):
        (tmp_path / "configs" / "broken.json").write_text(text)
        forkserver.warm(tmp_path)
    forkserver.warm(tmp_path / "no_such_run")
    import lec_cosim.scenario as s

    assert s._PRELOADED == {}


def test_a_forked_watchdog_s_verdict_is_read_after_any_amount_of_output(tmp_path, monkeypatch):
    """launch._start_watchdog forks the watchdog where the run has a server; its stdout and stderr go to a file, not
    a pipe read only at its exit (which 64 kB of warnings would fill, holding it for ever), and its verdict is found
    after a line its stderr left unfinished."""
    from lec_cosim.launch import _start_watchdog
    from lec_cosim.watchdog import STALLED_EXIT_CODE, Stall, verdict

    (tmp_path / "probe_watchdog.py").write_text(textwrap.dedent(f"""
        import json, sys
        for k in range(5000):
            print("warning", k, "x" * 60, file=sys.stderr)
        sys.stderr.write("a line cut short")
        sys.stderr.flush()
        print("\\n" + json.dumps({{"federate": "dso", "granted_s": 3600.0, "reason": "stopped", "stalled_s": 6.5}}),
              flush=True)
        sys.exit({STALLED_EXIT_CODE})
    """))
    monkeypatch.chdir(tmp_path)
    env = forkserver.run_environment()
    argv = [sys.executable, "-m", "probe_watchdog"]
    server = ForkServer.start(tmp_path, env, [argv])
    try:
        watchdog, output = _start_watchdog(argv, env, server)
        assert isinstance(watchdog, forkserver.ForkedProcess)
        assert watchdog.wait(timeout=60) == STALLED_EXIT_CODE
        output.seek(0)
        assert verdict(output.read()) == Stall("dso", 3600.0, "stopped", 6.5)
        output.close()
    finally:
        server.close()
