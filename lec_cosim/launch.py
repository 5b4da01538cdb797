"""Start a generated federation (its broker or broker hierarchy, and federates) and supervise it.

The commands are those of ``runner.json``, so ``lec-cosim run`` and stock ``helics run`` start
the very same processes. Brokers are entries like the federates: a root broker and its
sub-brokers are started and stopped just as a single broker is. If any process fails, the
others are killed at once and the failure is reported with the last error line of its log: a
crashed federate never leaves the run hanging.
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h
DEBUG_ENVIRONMENT = "LEC_COSIM_DEBUG"
"""Set to 1 in a federate's environment (``lec-cosim --debug run``): it prints tracebacks into its log."""


class FederationError(RuntimeError):
    """A federate (or a broker) failed; the message names it and its error.

    Attributes
    ----------
    federate : str or None
        The process that failed first (None: the federation timed out).
    error : str or None
        Its error line, ``"<federate>: <kind>: <reason>"``.
    """

    def __init__(self, message: str, federate: str | None = None, error: str | None = None):
        super().__init__(message)
        self.federate, self.error = federate, error

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
    popen: subprocess.Popen
    log: Path


def _log_lines(log: Path) -> list[str] | None:
    try:
        return [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None


def _error_line(lines: list[str]) -> str | None:
    """The last ``error:`` line's message, if any."""
    return next((line.removeprefix("error:").strip() for line in reversed(lines) if line.startswith("error:")), None)


def _last_error(log: Path) -> str:
    lines = _log_lines(log)
    if lines is None:
        return "no log"
    return _error_line(lines) or (lines[-1] if lines else "no output")


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
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: Ctrl-C, SIGTERM and failures are still handled
        pass


def _stop(processes: list[Process]) -> None:
    for p in processes:
        if p.popen.poll() is None:
            p.popen.kill()
    for p in processes:
        try:
            p.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def run_federation(
    run_dir: Path,
    *,
    timeout_s: float | None = None,
    on_progress: Callable[[str], None] | None = None,
    poll_s: float = 0.1,
    debug: bool = False,
) -> float:
    """Run the federation written in ``run_dir/runner.json``; returns the wall time in seconds.

    Logs go to ``run_dir/logs/NAME.log``; with ``debug`` the federates print tracebacks into them.
    Raises :class:`FederationError` when a process fails or ``timeout_s`` passes.
    """
    run_dir = Path(run_dir)
    runner = json.loads((run_dir / "runner.json").read_text())
    log_dir = run_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    processes: list[Process] = []
    started = time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1", **({DEBUG_ENVIRONMENT: "1"} if debug else {}))
    try:
        for entry in runner["federates"]:
            log = log_dir / f"{entry['name']}.log"
            with log.open("w") as handle:
                popen = subprocess.Popen(
                    shlex.split(entry["exec"]), cwd=run_dir / entry.get("directory", "."),
                    stdout=handle, stderr=subprocess.STDOUT, env={**env, **entry.get("env", {})},
                    start_new_session=True, preexec_fn=_die_with_the_launcher,
                )
            processes.append(Process(entry["name"], popen, log))
        progress_log = log_dir / "recorder.log"
        last_shown = None
        while True:
            failed = [p for p in processes if p.popen.poll() not in (None, 0)]
            if failed:
                # Blame the federate whose own error started it (it may still be exiting),
                # not a peer that HELICS stopped with a relayed error.
                culprit = None
                deadline = time.perf_counter() + 3.0
                while culprit is None and time.perf_counter() < deadline:
                    culprit = next((p for p in processes if _is_origin(p)), None)
                    time.sleep(0.05)
                culprit = culprit or failed[0]
                error = _last_error(culprit.log)
                raise FederationError(f"federate {culprit.name} failed: {error} (log: {culprit.log})",
                                      culprit.name, error)
            if all(p.popen.poll() == 0 for p in processes):
                break
            if timeout_s is not None and time.perf_counter() - started > timeout_s:
                raise FederationError(f"federation did not finish within {timeout_s:g} s")
            if on_progress is not None:
                progress = _last_progress(progress_log)
                if progress and progress != last_shown:
                    on_progress(progress)
                    last_shown = progress
            time.sleep(poll_s)
    except BaseException:
        _stop(processes)
        raise
    return time.perf_counter() - started
