"""Start a generated federation (its broker or broker hierarchy, and federates) and supervise it.

The commands are those of ``runner.json``, so ``lec-cosim run`` and stock ``helics run`` start
the very same processes. Brokers are entries like the federates: a root broker and its
sub-brokers are started and stopped just as a single broker is. If any process fails, the
others are killed at once and the failure is reported with the last error line of its log: a
crashed federate never leaves the run hanging.

A federation spread over hosts is started host by host, each with its part of ``runner.json``
(``hosts/ADDRESS.json``, ``lec-cosim launch``). A host that disappears (its link down, its
machine off) is seen by HELICS's heartbeat: the brokers and cores that talked to it log "lost
comms" or "lost connection" some 20-60 s later (measured with the default 5 s tick, HELICS 3.6.1).
A federate process then fails with that error, but a broker stays up in its error state, and a
host with no federate, the root's, would wait for ever: the launcher reads its brokers' logs and
ends the part on such a line.

The federate programs of a run (``python -m federates.KIND``) are forked by a fork server
(:mod:`lec_cosim.forkserver`), which imported their common modules once, rather than started as new
processes that each import them: a federation's start-up was mostly these imports, every process at once.
The supervision below sees a forked federate as it sees a process (pid, poll, wait, kill, exit code).
``LEC_COSIM_FORK_SERVER=0`` starts every entry as a new process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lec_cosim.forkserver import (
    ForkedProcess,
    ForkServer,
    die_with_parent,
    discard_spare,
    enabled,
    run_environment,
    servable,
    wait_readable,
)
from lec_cosim.schema.base import STALL_TIMEOUT_S
from lec_cosim.watchdog import STALLED_EXIT_CODE, STARTUP_ALLOWANCE_S, command, verdict

FINISHED = "finished:"
"""The last line a federate program prints once it has done all its slots and left the federation; one
that exits without it quit before its end (``sys.exit`` in a model, say), whatever its exit code."""
FEDERATE_PROGRAM = " -m federates."
"""What the command of a lec-cosim federate program contains (brokers and stock HELICS apps do not print
:data:`FINISHED`)."""


class FederationError(RuntimeError):
    """A federate (or a broker) failed; the message names it and its error.

    Attributes
    ----------
    federate : str or None
        The process that failed first (None: the federation timed out).
    error : str or None
        Its error line, ``"<federate>: <kind>: <reason>"``.
    """

    def __init__(self, message: str, federate: str | None = None, error: str | None = None, stalled: bool = False):
        super().__init__(message)
        self.federate, self.error, self.stalled = federate, error, stalled

    @property
    def input_error(self) -> tuple[str, str] | None:
        """``(scenario field, reason)`` when the federate found the scenario infeasible, else None."""
        prefix = f"{self.federate}: input: "
        if self.error is None or not self.error.startswith(prefix):
            return None
        field, _, reason = self.error.removeprefix(prefix).partition(": ")
        return field, reason


@dataclass
class Process:
    name: str
    popen: subprocess.Popen | ForkedProcess
    log: Path


def _log_lines(log: Path) -> list[str] | None:
    try:
        return [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None


def _error_line(lines: list[str]) -> str | None:
    """The last ``error:`` line's message, if any."""
    return next((line.removeprefix("error:").strip() for line in reversed(lines) if line.startswith("error:")), None)


def _disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has (almost) no room left: a federate's log may then be empty."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def _last_error(log: Path) -> str:
    lines = _log_lines(log)
    error = "no log" if lines is None else _error_line(lines) or (lines[-1] if lines else "no output")
    if error in ("no log", "no output") and _disk_full(log.parent):
        error += f" (its log could not be written: No space left on device in {log.parent})"
    return error


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


LOST_CONNECTION = ("lost comms with", "lost connection with")
"""What a HELICS broker logs (at ``--loglevel=warning``) when a peer stops answering its heartbeat."""


def _lost_connection(process: Process) -> str | None:
    """A broker's log line saying it lost a peer (another host gone), or None."""
    for line in _log_lines(process.log) or []:
        if any(words in line for words in LOST_CONNECTION):
            return line.split("::", 1)[-1].strip() or line
    return None


SUB_BROKER_JOINED = "registering broker lec_cosim_sub_broker_"
"""What a root broker logs at ``--loglevel=connections`` (a federation over hosts) when a sub-broker joins it."""


def _missing_sub_brokers(root: Process) -> list[str] | None:
    """The sub-brokers that have not joined a root broker that logs its connections (None: it does not)."""
    args = root.popen.args
    expected = next((int(a.removeprefix("--subbrokers=")) for a in args if a.startswith("--subbrokers=")), 0)
    if not expected or "--loglevel=connections" not in args:
        return None
    lines = _log_lines(root.log) or []
    joined = {line.split(SUB_BROKER_JOINED, 1)[1].split("(", 1)[0] for line in lines if SUB_BROKER_JOINED in line}
    return [f"sub_broker_{i}" for i in range(1, expected + 1) if str(i) not in joined]


def _is_origin(process: Process) -> bool:
    """Whether a failed federate's error is its own, not one HELICS relayed from another.

    Only an ``error:`` line counts: a federate's other lines (its closing summary, say) also
    start with its name. A federate granted HELICS's end of time under a failing federation
    reports ``FederationStopped``: not its own error either.
    """
    error = _error_line(_log_lines(process.log) or [])
    return (error is not None and error.startswith(f"{process.name}: ") and "HelicsException" not in error
            and "FederationStopped" not in error)


def _last_progress(log: Path) -> str | None:
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 400))
            tail = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        if line.startswith("progress "):
            return line.removeprefix("progress ")
    return None


def _die_with_the_launcher() -> None:
    """In a started child, before it runs its program: end it when the launcher dies.

    A launcher killed with SIGKILL cannot stop anything itself; Linux's parent-death signal
    (``prctl(PR_SET_PDEATHSIG)``) has the kernel kill its broker and federates instead.
    """
    die_with_parent()


def _stop(processes: list[Process]) -> None:
    for p in processes:
        if p.popen.poll() is None:
            p.popen.kill()
    for p in processes:
        try:
            p.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


LEAVE_TIMEOUT_S = 10.0
"""How long a watchdog asked to leave (SIGTERM) may take before it is killed."""
ENDING_POLL_S = 0.01
"""The launcher's poll once every federate has finished: the watchdog's and the brokers' exits follow."""


class _Exits:
    """Wait until a process of the run exits, or a timeout: a poll that notices an exit at once, not at its next tick.

    A started process is watched through a pidfd (readable once it exited; Linux 5.3), a forked one through the fork
    server's socket (which reports each exit); elsewhere, or for a process whose pidfd could not be opened, the wait
    is a plain sleep of the timeout."""

    def __init__(self):
        self.pidfds: dict[int, int] = {}  # pid -> pidfd of a started (not forked) process

    def watch(self, popen) -> None:
        if isinstance(popen, subprocess.Popen) and hasattr(os, "pidfd_open"):
            try:
                self.pidfds[popen.pid] = os.pidfd_open(popen.pid)
            except OSError:  # gone already, or no pidfds here: its exit is noticed at the next timeout
                pass

    def wait(self, running: list, server: ForkServer | None, timeout: float) -> None:
        """Return when one of ``running`` (Popen or ForkedProcess, not yet seen ending) exits, or after ``timeout``."""
        fds = [self.pidfds[p.pid] for p in running if isinstance(p, subprocess.Popen) and p.pid in self.pidfds]
        if server is not None and not server.gone and any(isinstance(p, ForkedProcess) for p in running):
            fds.append(server.sock.fileno())
        began = time.monotonic()
        if fds:
            wait_readable(fds, timeout)
        else:
            time.sleep(timeout)
        if time.monotonic() - began < 1e-3:  # a descriptor that stays readable must not spin the launcher
            time.sleep(1e-3)

    def close(self) -> None:
        for fd in self.pidfds.values():
            os.close(fd)
        self.pidfds.clear()


def _finished(process: Process) -> bool:
    """Whether a process that exited 0 ended as it should: a federate program after its last slot."""
    if FEDERATE_PROGRAM not in " ".join(process.popen.args):
        return True
    return any(line.startswith(FINISHED) for line in (_log_lines(process.log) or []))


def _simulated(run_dir: Path, time_s: float | None) -> str:
    """A granted time as the scenario's calendar time (``2019-05-26 09:00``), or in seconds without a scenario."""
    if time_s is None:
        return "an unknown time"
    try:
        start = dt.datetime.fromisoformat(json.loads((run_dir / "scenario.json").read_text())["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"{time_s:g} s"
    return f"{start + dt.timedelta(seconds=round(time_s)):%Y-%m-%d %H:%M} ({time_s:g} s)"


def _broker_endpoint(run_dir: Path, runner: dict) -> tuple[str, int, str | None] | None:
    """Address, port and key of the federation's (root) broker, read from its command in ``runner.json``."""
    entry = next((e for e in runner["federates"] if e["name"] == "broker"), None)
    if entry is None:
        return None
    options = dict(part.split("=", 1) for part in shlex.split(entry["exec"]) if part.startswith("--") and "=" in part)
    try:
        address = options.get("--local_interface", "tcp://127.0.0.1").removeprefix("tcp://")
        return address, int(options["--port"]), options.get("--brokerkey")
    except (KeyError, ValueError):
        return None


def _start_watchdog(argv: list[str], env: dict[str, str], server: ForkServer | None):
    """The watchdog's process, and the file its output (a stall's verdict) goes to, read once it has exited.

    Forked by the run's server where there is one (it has imported HELICS already: a new process's import of it,
    ~0.5 s of CPU, came on the federates' start-up, and its interpreter's exit on the run's end; a week's run took
    0.3 s longer with the watchdog than without, measured 2026-12-07), else a new process. A file, not a pipe: a
    pipe read only at the watchdog's exit could fill and hold it for ever."""
    output = tempfile.TemporaryFile("w+")  # noqa: SIM115 (kept open until the run ends: closed in run_federation)
    if server is not None and not server.gone and server.fits(argv):  # (else ps would not show it as itself)
        try:
            forked = server.spawn(argv, Path.cwd(), env, output)  # its stdout and stderr
        except OSError:
            forked = None
        if forked is not None:
            return forked, output
    popen = subprocess.Popen(argv, stdout=output, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                             preexec_fn=_die_with_the_launcher)
    return popen, output


def run_federation(
    run_dir: Path,
    *,
    runner_file: Path | None = None,
    timeout_s: float | None = None,
    on_progress: Callable[[str], None] | None = None,
    poll_s: float = 0.1,
    debug: bool = False,
    stall_timeout_s: float | None = STALL_TIMEOUT_S,
) -> float:
    """Run the federation written in ``run_dir/runner.json``; returns the wall time in seconds.

    ``runner_file``: run these entries instead, one host's part of a federation spread over hosts
    (``run_dir/hosts/ADDRESS.json``); the other hosts run theirs. A part is supervised as a whole run is,
    and a broker of it that lost a peer (another host gone) fails it.
    Logs go to ``run_dir/logs/NAME.log``; with ``debug`` the federates print tracebacks into them.
    A :class:`~lec_cosim.watchdog.Watchdog`, in a process of its own, joins the federation as an observer
    and ends it when no federate's time advances for ``stall_timeout_s`` (None: no watchdog).
    Raises :class:`FederationError` when a process fails, a federate program exits before its end
    (whatever its exit code), the federation stalls, or ``timeout_s`` passes.
    """
    run_dir = Path(run_dir)
    runner = json.loads(Path(runner_file or run_dir / "runner.json").read_text())
    log_dir = run_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    processes: list[Process] = []
    watchdog = endpoint = server = watchdog_output = None
    exits = _Exits()
    started = time.perf_counter()
    env = run_environment(debug)
    forked = [shlex.split(entry["exec"]) for entry in runner["federates"]
              if servable(shlex.split(entry["exec"]), entry.get("env", {}), env)]
    try:
        if forked and enabled(env):  # started first: it imports while the broker starts (or took the spare's)
            server = ForkServer.start(run_dir, env, forked)
        discard_spare()  # not taken: nothing to fork, or not this environment
        for entry in runner["federates"]:
            log = log_dir / f"{entry['name']}.log"
            argv, cwd = shlex.split(entry["exec"]), run_dir / entry.get("directory", ".")
            with log.open("w") as handle:
                popen = None
                if server is not None and servable(argv, entry.get("env", {}), env):
                    popen = server.spawn(argv, cwd, {**env, **entry.get("env", {})}, handle)
                if popen is None:
                    popen = subprocess.Popen(
                        argv, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env={**env, **entry.get("env", {})},
                        start_new_session=True, preexec_fn=_die_with_the_launcher,
                    )
            processes.append(Process(entry["name"], popen, log))
            exits.watch(popen)
        brokers = [p for p in processes if "broker" in p.name]
        members = [p for p in processes if p not in brokers]
        endpoint = _broker_endpoint(run_dir, runner)
        # observers stop a root broker's --globaltime grants: a hierarchy is watched through the files (its part
        # on a host without the root too)
        hierarchy = any(p.name.startswith("sub_broker") or any(a.startswith("--subbrokers=") for a in p.popen.args)
                        for p in brokers)
        programs = [p.name for p in members if FEDERATE_PROGRAM in " ".join(p.popen.args)]
        if stall_timeout_s is not None and (endpoint is not None or hierarchy) and (programs or not hierarchy):
            address, port, key = endpoint or ("", 0, None)
            watch = command(broker_address=address, port=port, key=key, federates=[p.name for p in members],
                            run_dir=str(run_dir), programs=programs, stall_s=stall_timeout_s,
                            pids={p.name: p.popen.pid for p in members}, brokers={p.name: p.popen.pid for p in brokers},
                            queries=not hierarchy)
            watchdog, watchdog_output = _start_watchdog(watch, env, server)
            exits.watch(watchdog)
        progress_log = log_dir / "recorder.log"
        last_shown = None
        leaving_since = None  # when the watchdog was asked to leave (all federates done)
        finished: set[str] = set()  # federates that exited after their last slot
        brokers_read_at = time.perf_counter()
        # a root broker over hosts waits for its sub-brokers to join: for at most the start-up allowance
        root_waits = next((p for p in brokers if p.name == "broker" and _missing_sub_brokers(p) is not None), None)
        join_s = max(STARTUP_ALLOWANCE_S, stall_timeout_s or 0.0)
        # a federation over hosts (a host's part, or entries on several hosts): its brokers' logs tell of a lost host
        over_hosts = runner_file is not None or len({entry.get("host") for entry in runner["federates"]}) > 1
        while True:
            failed = [p for p in processes if p.popen.poll() not in (None, 0)]
            if failed:
                # Blame the federate whose own error started it (it may still be exiting),
                # not a peer that HELICS stopped with a relayed error.
                # A process a signal ended (SIGKILL, a segfault) wrote no error line to wait for: it is the
                # origin unless another federate's own error is already there.
                culprit = None
                killed = next((p for p in failed if p.popen.returncode < 0), None)
                deadline = time.perf_counter() + 3.0
                while culprit is None and time.perf_counter() < deadline:
                    culprit = next((p for p in processes if _is_origin(p)), None) or killed
                    time.sleep(0.05)
                culprit = culprit or failed[0]
                error = _last_error(culprit.log)
                if culprit.popen.returncode is not None and culprit.popen.returncode < 0 and not _is_origin(culprit):
                    error = f"killed by {_signal_name(-culprit.popen.returncode)} ({error})"
                raise FederationError(f"federate {culprit.name} failed: {error} (log: {culprit.log})",
                                      culprit.name, error)
            if over_hosts and time.perf_counter() - brokers_read_at >= 1.0:
                brokers_read_at = time.perf_counter()
                lost = next(((p, line) for p in brokers if p.popen.poll() is None
                             for line in [_lost_connection(p)] if line), None)
                missing = _missing_sub_brokers(root_waits) if root_waits else None
                if not missing:
                    root_waits = None  # all joined: from now on, a lost host shows as a lost connection
                elif time.perf_counter() - started > join_s:
                    raise FederationError(f"broker: {', '.join(missing)} did not join the root broker within "
                                          f"{join_s:.0f} s: their hosts' parts not started, or their hosts cannot "
                                          f"reach this one (log: {root_waits.log})", "broker")
                if lost is not None:
                    raise FederationError(f"{lost[0].name} lost the connection to a peer (another host gone or "
                                          f"unreachable?): {lost[1]} (log: {lost[0].log})", lost[0].name,
                                          f"{lost[0].name}: {lost[1]}")
            quit_early = None
            for p in members:  # read each finished federate's log once, not at every poll
                # one poll per member and pass: an exit seen by a second poll, after the log was read, looked early
                if p.name not in finished and p.popen.poll() == 0:
                    if _finished(p):
                        finished.add(p.name)
                    elif quit_early is None:
                        quit_early = p
            if quit_early is not None:
                raise FederationError(f"federate {quit_early.name} exited (code 0) before the end of its run, without "
                                      f"an error; the federation cannot go on without it (log: {quit_early.log})",
                                      quit_early.name)
            if all(p.popen.poll() == 0 for p in members):
                if leaving_since is None:
                    leaving_since = time.perf_counter()
                    if watchdog is not None:  # the broker ends once its observer has left too: asked, not awaited
                        watchdog.terminate()
                if watchdog is not None:
                    if watchdog.poll() is not None:
                        watchdog = None
                    elif time.perf_counter() - leaving_since > LEAVE_TIMEOUT_S:
                        watchdog.kill()
                        watchdog.wait()
                        watchdog = None
                if all(p.popen.poll() == 0 for p in brokers):
                    break
            stall = None
            if watchdog is not None and watchdog.poll() == STALLED_EXIT_CODE:
                watchdog_output.seek(0)
                stall = verdict(watchdog_output.read())
                watchdog = None
            if stall is not None:
                where = f" at simulated time {_simulated(run_dir, stall.granted_s)}" if stall.granted_s is not None \
                    else ""
                subject = stall.federate if "broker" in (stall.federate or "") else f"federate {stall.federate}"
                who = f"{subject} holds it{where}: {stall.reason}" if stall.federate else stall.reason
                log = f" (log: {log_dir / stall.federate}.log)" if stall.federate else ""
                # a host's part sees only its own federates: all waiting may mean another host is gone
                hint = " (its federates all wait: another host gone or stalled?)" if runner_file is not None and \
                    "waiting for a grant" in stall.reason else ""
                raise FederationError(f"federation stalled: no federate's time advanced for {stall.stalled_s:.0f} s; "
                                      f"{who}{hint}{log}", stall.federate, stalled=True)
            if timeout_s is not None and time.perf_counter() - started > timeout_s:
                raise FederationError(f"federation did not finish within {timeout_s:g} s")
            if on_progress is not None:
                progress = _last_progress(progress_log)
                if progress and progress != last_shown:
                    on_progress(progress)
                    last_shown = progress
            # once every federate has finished, the watchdog's and the brokers' exits follow within moments: noticed
            # sooner (a tenth of a second a poll was up to a fifth of a week's run in waiting for exits made)
            running = [p.popen for p in processes if p.popen.returncode is None]
            exits.wait(running + [watchdog] * (watchdog is not None and watchdog.returncode is None), server,
                       min(poll_s, ENDING_POLL_S) if leaving_since is not None else poll_s)
    except BaseException:
        _stop(processes)
        raise
    finally:
        exits.close()
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        if watchdog_output is not None:
            watchdog_output.close()
        if server is not None:  # after _stop: its children have exited; nothing is left of it
            server.close()
        if endpoint is not None:  # the run's ports are free again (if this process reserved them)
            from lec_cosim.federation import release_broker_ports

            release_broker_ports(endpoint[1])
    return time.perf_counter() - started
