"""A run's folder, from the lock to the finished results: ``OUT.partial`` while it runs, then ``OUT`` or
``OUT.incomplete``; :func:`execute` does it for ``lec-cosim run`` and :func:`lec_cosim.run`.

The run happens in a staging folder that becomes ``OUT`` only when complete: an old result is replaced
(``force``) only by a whole new one, and a failed or interrupted run is kept apart, marked by
``INCOMPLETE.txt`` (written first, removed last). Nothing but a lec-cosim run folder is ever removed.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Callable

from lec_cosim.files import write_text_atomic
from lec_cosim.scenario import ScenarioError

EXIT_INPUT_ERROR = 2
EXIT_RUN_ERROR = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``): ends the run like Ctrl-C, with exit code 143."""


class RunFailed(Exception):
    """The federation failed, stalled, timed out or was interrupted; the run is kept (``kept``) and marked.

    Attributes
    ----------
    reason : str
        What happened, naming the federate (paths already point into ``kept``).
    kept : pathlib.Path
        Where the incomplete run is (``OUT.incomplete``, or ``OUT.partial`` if it could not be renamed).
    note : str
        What could not be done while keeping it (a full disk), or "".
    federate : str or None
        The federate that failed or holds the federation.
    input_error : tuple of str or None
        ``(field, reason)`` when a federate found the scenario infeasible (an input error).
    interrupted : str or None
        ``"SIGTERM"`` or ``"Ctrl-C"`` when the run was interrupted.
    """

    def __init__(self, reason: str, kept: Path, note: str = "", federate: str | None = None,
                 input_error: tuple[str, str] | None = None, interrupted: str | None = None):
        super().__init__(f"{reason} (incomplete run kept in {kept}{note})")
        self.reason, self.kept, self.note = reason, kept, note
        self.federate, self.input_error, self.interrupted = federate, input_error, interrupted


class OutputError(Exception):
    """The results folder cannot be written (read-only, full, a name too long): one line, and an exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


_NOT_THE_USERS_FAULT = {errno.ENOSPC, errno.EDQUOT, errno.EIO}
"""Disk errors that are no input error (a full disk, a failing one): exit code 1; others (read-only,
permission denied, a name too long) ask for another ``--out``: exit code 2."""


def output_error(path: Path, doing: str, exc: OSError) -> OutputError:
    code = EXIT_RUN_ERROR if exc.errno in _NOT_THE_USERS_FAULT else EXIT_INPUT_ERROR
    return OutputError(f"{path}: --out: cannot {doing}: {exc.strerror or exc}", code)


INCOMPLETE_SUFFIX = ".incomplete"


def _moved(node, old: str, new: str):
    """``node`` (parsed JSON) with every path under folder ``old`` now under ``new``; commands are split,
    mapped and joined again, so quoting (a blank, a quote in a name) and JSON's escapes cannot hide a path."""
    if isinstance(node, dict):
        return {key: (_moved_command(value, old, new) if key == "exec" and isinstance(value, str)
                      else _moved(value, old, new)) for key, value in node.items()}
    if isinstance(node, list):
        return [_moved(value, old, new) for value in node]
    if isinstance(node, str) and (node == old or node.startswith(old + "/")):
        return new + node[len(old):]
    if isinstance(node, str) and "=" in node:  # an option: --stop=..., -o=PATH
        key, _, value = node.partition("=")
        return f"{key}={_moved(value, old, new)}"
    return node


def _moved_command(command: str, old: str, new: str) -> str:
    return shlex.join(_moved(part, old, new) for part in shlex.split(command))


def relocate(staging: Path, out: Path) -> None:
    """Move a complete run into place; its runner and configs then name ``out`` (for ``helics run``).

    ``out`` is checked again just before it is removed (it was checked when the run started, which may
    have been hours ago). The files are rewritten only once the folder is in place, each atomically.
    """
    if out.exists():
        if not is_run_folder(out):
            raise OSError(errno.EEXIST, f"{out} is no longer a lec-cosim run folder; nothing was replaced")
        shutil.rmtree(out)
    (staging / "INCOMPLETE.txt").unlink(missing_ok=True)
    try:
        staging.rename(out)
    except OSError:
        (staging / "INCOMPLETE.txt").write_text("This run completed, but it could not be moved into place.\n",
                                                encoding="utf-8")
        raise
    for path in [out / "runner.json", *sorted((out / "configs").glob("*.json"))]:
        data = json.loads(path.read_text(encoding="utf-8"))
        write_text_atomic(path, json.dumps(_moved(data, str(staging), str(out)), indent=2))


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a folder lec-cosim wrote (its manifest names lec-cosim), or an empty folder.

    ``--force`` removes nothing else: a results path that names the user's own folder (a scenario
    ``outputs.directory: .``, a mistyped ``--out``) must never be replaced.
    """
    if not path.is_dir() or path.is_symlink():
        return False
    names = {p.name for p in path.iterdir()}
    if not names or names == {"INCOMPLETE.txt"} and (path / "INCOMPLETE.txt").read_text(
            encoding="utf-8", errors="replace").startswith("This run"):  # a run stopped while it was set up
        return True
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "lec-cosim" in manifest.get("versions", {}) and "scenario" in manifest


class RunLock:
    """One run at a time on an output folder: ``.OUT.lock`` beside it, locked (``flock``) while the run lasts.

    A second run on the same ``--out`` is refused at once, naming the first one's PID; the first is
    not disturbed. The kernel drops the lock when its process dies, so a killed run never blocks the
    next one.
    """

    def __init__(self, out: Path):
        self.path = out.with_name(f".{out.name}.lock")
        self.handle = None

    def __enter__(self) -> "RunLock":
        import fcntl

        while True:
            handle = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise ScenarioError(f"{self.path.with_name(self.path.name[1:-5])}: --out: another lec-cosim run "
                                    f"(PID {holder}) is writing this results folder; wait for it or choose another "
                                    "--out") from None
            # the file may have been removed by the run that held it, after we opened it: lock the one on disk
            try:
                if os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self.handle.close()


def replaceable(path: Path, what: str) -> None:
    """Refuse to remove ``path`` unless lec-cosim wrote it."""
    if path.exists() and not is_run_folder(path):
        raise ScenarioError(f"{path}: --out: {what} exists and is not a lec-cosim run folder (no lec-cosim "
                            "manifest.json in it); nothing was removed: move it away or choose another --out")


def mark_incomplete(staging: Path, incomplete: Path, reason: str) -> tuple[Path, str]:
    """Keep a failed run as ``incomplete``, with the reason in INCOMPLETE.txt; returns where it is, and a note
    on what could not be done (a full disk)."""
    note = ""
    try:
        (staging / "INCOMPLETE.txt").write_text(f"This run did not complete: {reason}\n"
                                                "Every federate's log is in logs/.\n", encoding="utf-8")
    except OSError as exc:
        note = f"; INCOMPLETE.txt could not be updated with this reason ({exc.strerror or exc})"
    try:
        if incomplete.exists():
            shutil.rmtree(incomplete)
        staging.rename(incomplete)
    except OSError as exc:
        return staging, f"{note}; it could not be renamed to {incomplete.name} ({exc.strerror or exc})"
    return incomplete, note



def output_dir(out: str | Path) -> Path:
    """The run's results folder, checked before anything is written."""
    out = Path(os.path.abspath(out))
    longest = os.pathconf("/", "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if len(out.name.encode()) + len(INCOMPLETE_SUFFIX) > longest:
        raise ScenarioError(f"{out.name[:40]}...: --out: a folder name of {len(out.name.encode())} bytes is too long "
                            f"(at most {longest - len(INCOMPLETE_SUFFIX)}: the run also writes "
                            f"{out.name[:8]}...{INCOMPLETE_SUFFIX})")
    if out.is_symlink():
        raise ScenarioError(f"{out}: --out: a symbolic link; name the folder itself")
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"{out}: --out: a file, not a folder; results go to a folder")
    here = Path.cwd()
    if out == Path(out.anchor) or out == here or out in here.parents or out == Path.home():
        raise ScenarioError(f"{out}: --out: the file system's root, your home folder, the current folder or one "
                            "above it is no results folder")
    return out


def execute(scenario, out: Path, *, force: bool = False, sub_brokers: int = 0,
            prepare: Callable[[Path], None] | None = None, timeout_s: float | None = None,
            stall_timeout_s: float | None = None, debug: bool = False,
            on_start: Callable[[Path], None] | None = None,
            on_progress: Callable[[str], None] | None = None) -> float:
    """Run ``scenario``'s federation into the folder ``out`` (checked with :func:`output_dir`); the wall seconds.

    ``prepare(staging)`` may change the written federation before it starts (stock HELICS apps);
    ``on_start(staging)`` is told where it runs; ``on_progress`` gets the recorder's progress lines.

    Raises
    ------
    ScenarioError
        ``out`` may not be written or replaced (another run holds it; not a run folder; no ``force``).
    OutputError
        The disk refused (read-only, full) or no broker ports could be reserved.
    RunFailed
        The federation failed, stalled, timed out; kept as ``OUT.incomplete``.
    RunInterrupted
        Ctrl-C or SIGTERM; kept as ``OUT.incomplete`` too.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out).__enter__()
    except OSError as exc:
        raise output_error(out.parent, "write there", exc) from None
    try:
        return _locked(scenario, out, force=force, sub_brokers=sub_brokers, prepare=prepare, timeout_s=timeout_s,
                       stall_timeout_s=stall_timeout_s, debug=debug, on_start=on_start, on_progress=on_progress)
    finally:
        lock.__exit__(None, None, None)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM ended the run; it is kept (``kept``) and marked, as for :class:`RunFailed`."""

    def __init__(self, failed: RunFailed):
        super().__init__(str(failed))
        self.failed = failed


def _locked(scenario, out: Path, *, force, sub_brokers, prepare, timeout_s, stall_timeout_s, debug, on_start,
            on_progress) -> float:
    """:func:`execute` once it holds the lock on ``out``."""
    from lec_cosim.federation import NoFreePorts, write_federation
    from lec_cosim.launch import FederationError, run_federation

    staging = out.with_name(out.name + ".partial")
    incomplete = out.with_name(out.name + INCOMPLETE_SUFFIX)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ScenarioError(f"{out}: output directory exists; pass --force to replace it")
        replaceable(out, "the folder")
    replaceable(staging, "the staging folder")
    replaceable(incomplete, "the folder for incomplete runs")
    try:
        if staging.exists():  # a run killed with SIGKILL left it: keep its logs as the incomplete run it was
            if incomplete.exists():
                shutil.rmtree(incomplete)
            staging.rename(incomplete)
        staging.mkdir()
        # written first and removed last: whatever stops the run (a full disk, SIGKILL), the folder says so
        (staging / "INCOMPLETE.txt").write_text("This run has not completed: it is running, or it was stopped "
                                                "before it could say why.\n", encoding="utf-8")
        write_federation(scenario, staging, sub_brokers=sub_brokers)
        if prepare is not None:
            prepare(staging)
    except BaseException as exc:  # nothing half set up stays behind, whatever stopped it
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise output_error(staging, "write the run folder", exc) from None
        if isinstance(exc, NoFreePorts):
            raise OutputError(f"{staging}: the federation's broker ports: {exc}", EXIT_RUN_ERROR) from None
        raise
    if on_start is not None:
        on_start(staging)
    try:
        wall = run_federation(staging, timeout_s=timeout_s, on_progress=on_progress, debug=debug,
                              stall_timeout_s=stall_timeout_s)
    except (FederationError, KeyboardInterrupt, OSError) as exc:
        interrupted = None
        if isinstance(exc, FederationError):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = f"the launcher could not write in {staging}: {exc.strerror or exc}"
        else:
            interrupted = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
            reason = f"interrupted ({interrupted})"
        reason = reason.replace(str(staging), str(incomplete))  # where its logs are about to be
        kept, note = mark_incomplete(staging, incomplete, reason)
        if kept != incomplete:
            reason = reason.replace(str(incomplete), str(kept))
        failed = RunFailed(reason, kept, note, federate=getattr(exc, "federate", None),
                           input_error=exc.input_error if isinstance(exc, FederationError) else None,
                           interrupted=interrupted)
        if interrupted:
            raise RunInterrupted(failed) from None
        raise failed from None
    try:
        relocate(staging, out)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if staging.exists():
            raise OutputError(f"{out}: --out: the run completed in {staging} but could not be moved into place: "
                              f"{why}", EXIT_RUN_ERROR) from None
        raise OutputError(f"{out}: --out: the run is complete, but its runner.json and configs still name "
                          f"{staging.name}: {why}", EXIT_RUN_ERROR) from None
    return wall
