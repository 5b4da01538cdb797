"""A fork server for the federate programs of one run: their common imports paid once, not once per process.

Every federate program (``python -m federates.KIND --config CONFIG``) spends about 0.75 s of CPU importing the
same modules (HELICS, numpy, pandas, the scenario schema) before it does anything, four or more processes at
once on a machine of two cores. :func:`lec_cosim.launch.run_federation` therefore starts, for a run, one server
process (``python -m lec_cosim.forkserver``) which imports :data:`PRELOAD` once and then forks a child for each
federate program. The launcher itself is never forked: it may have threads (a sweep's workers, a learning
environment's), and a fork copies only the forking thread, with whatever locks the others held.

The launcher and its server talk over a socket pair (``SOCK_SEQPACKET``: one JSON message a datagram). The
launcher sends a request per federate, its command, folder and environment, with the log file it opened as
an attached file descriptor; the server answers with the child's pid and, when the child ends, its exit status
(``waitpid``: the child is the server's). :class:`ForkedProcess` is the launcher's side of one child: the pid,
``args``, ``poll``, ``wait``, ``kill``, ``terminate`` and ``returncode`` (negative: the signal that ended it)
of :class:`subprocess.Popen` that the launcher's supervision uses.

A child does what the interpreter would have done for ``python -m federates.KIND ...`` in a new process:
a session of its own, the kernel's parent-death signal (it dies with the server, which dies with the
launcher), its folder, fds 1 and 2 on its log, the request's environment (``PYTHONUNBUFFERED=1`` among it: the
server runs under it too, so the inherited ``sys.stdout``/``sys.stderr`` already write through), the signal
handlers of a fresh interpreter, ``sys.argv``, ``sys.orig_argv`` and ``sys.path[0]`` as ``-m`` sets them, and
then ``runpy._run_module_as_main`` in a new ``__main__`` module: the function the interpreter itself calls for
``-m``, so error messages and tracebacks read as a fresh process's. It ends as the interpreter would: non-daemon
threads joined, ``atexit`` functions run, streams flushed, the exit code of ``SystemExit`` (1 and the traceback
on stderr for an uncaught exception, SIGINT for an uncaught ``KeyboardInterrupt``). Its command line in
``/proc/PID/cmdline`` (``ps``, ``pgrep -f``) is rewritten in place to the federate's own: the server is started
with room for the longest (a padding argument of blanks), and the area keeps its trailing NUL bytes.

What a fork does not give a child, and why that does not change results: the interpreter's hash seed and
numpy's legacy global random state are the server's (numpy's is re-seeded from the OS in each child; results
never depended on either, or runs would differ from one another); the modules of :data:`PRELOAD` were imported
under the server's folder and environment: so only entries whose environment changes no variable read at start-up
(:data:`STARTUP_VARIABLES`) are forked; an environment asking for import reports (``PYTHONPROFILEIMPORTTIME``,
``PYTHONVERBOSE``: they belong in each federate's log) starts no server.

Only entries ``<sys.executable> -m federates.<module> ...`` are forked (:func:`servable`), and the run's watchdog
(``lec_cosim.watchdog``, where its command line fits the server's room); the brokers, stock HELICS apps and anything
else are started with :class:`subprocess.Popen` as before. Before it forks, a run's server reads what each federate
reads first (:func:`warm`: its scenario file, its kind's settings module), so that they are forked with it. ``LEC_COSIM_FORK_SERVER=0``
in the launcher's environment turns the server off (every entry by ``Popen``); a server that cannot start, or
dies before it forked anything, is logged (logger ``lec_cosim.forkserver``) and the entries are started by
``Popen`` instead.

The server ends when the launcher closes its end of the socket (after a run, on a failure or an interrupt), and
with the launcher's death (the parent-death signal, SIGKILL included); its children end with it. It ends without
the interpreter's teardown of what it imported (``os._exit``: 0.2 s that every run waited for).

``lec-cosim run`` starts its server before it even imports its own modules (:func:`start_spare`, called by
:mod:`lec_cosim.__main__`): the server imports on one core while the command imports, reads, checks and writes the
scenario on the other (0.7 s), and :meth:`ForkServer.start` takes that spare when the run's environment is the one
it was started with and its command lines fit the room it has (otherwise it ends it and starts a server as before).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h
DISABLE_ENVIRONMENT = "LEC_COSIM_FORK_SERVER"
"""Set to ``0`` in the launcher's environment: no fork server, every entry started by ``subprocess.Popen``."""
PRELOAD = ("federates.common", "lec_cosim.models.timeseries", "scipy.sparse")
"""What the server imports before it forks: what every federate program imports (``federates.common``: HELICS,
numpy, the scenario schema), what loading any scenario imports (``lec_cosim.models.timeseries``: pandas) and what
every study's grid imports (``scipy.sparse``: 0.08-0.12 s, on the DSO's start-up, the run's critical path)."""
PACKAGE = "federates."
IMPORT_REPORTS = ("PYTHONPROFILEIMPORTTIME", "PYTHONVERBOSE", "PYTHONINSPECT", "PYTHONTRACEMALLOC")
"""Variables under which a forked child would not behave as a fresh process (its imports happened in the server)."""
STARTUP_VARIABLES = ("PYTHON", "OPENBLAS_", "OMP_", "MKL_", "LD_")
"""Prefixes of variables read when the interpreter or a preloaded library starts: an entry changing one is not forked."""
READY_TIMEOUT_S = 120.0
"""How long the launcher waits for the server's imports (seconds of CPU on a loaded machine) before using Popen."""
MESSAGE_BYTES = 1 << 20
REPLY_BYTES = 1 << 16
"""The server's replies (a pid, an exit status, an error) are small; a launcher's request carries an environment."""
SPARE_LABEL = "spare"
"""The label of a server started before its run's folder is known (:func:`start_spare`)."""
SERVER_MODULE = __name__
"""What the server process runs (``python -m SERVER_MODULE``)."""
DEBUG_ENVIRONMENT = "LEC_COSIM_DEBUG"
"""Set to 1 in a federate's environment (``lec-cosim --debug run``): it prints tracebacks into its log."""
SPARE_ROOM_BYTES = 2048
"""Room for its children's command lines in a server started before its run is known (:func:`start_spare`), and at
least as much in a run's own: the run's watchdog (``lec_cosim.watchdog``, its parameters on its command line) is
forked too where its command line fits."""
_spare: list[ForkServer] = []
"""The server :func:`start_spare` started and no run took yet (at most one)."""

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """End the calling process with SIGKILL when its parent dies (Linux's ``prctl(PR_SET_PDEATHSIG)``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: Ctrl-C, SIGTERM and failures are still handled
        pass


def enabled(env: dict[str, str]) -> bool:
    """Whether a launcher with this environment starts a fork server."""
    return (env.get(DISABLE_ENVIRONMENT, "1") != "0" and sys.platform.startswith("linux")
            and not any(env.get(name) for name in IMPORT_REPORTS))


def servable(argv: list[str], entry_env: dict[str, str], env: dict[str, str]) -> bool:
    """Whether a runner entry (its command, its own environment over the launcher's ``env``) is forked."""
    return (len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m" and argv[2].startswith(PACKAGE)
            and not any(name.startswith(STARTUP_VARIABLES) and env.get(name) != value
                        for name, value in entry_env.items()))


def wait_readable(fds: list[int], timeout_s: float | None) -> None:
    """Wait until one of ``fds`` can be read, or ``timeout_s`` passes (None: no limit). Through ``poll``, not
    ``select``: a long-lived launcher (a learning environment, a notebook) may hold descriptors of 1024 and above."""
    watched = select.poll()
    for fd in fds:
        watched.register(fd, select.POLLIN)
    watched.poll(None if timeout_s is None else timeout_s * 1000.0)


def run_environment(debug: bool = False) -> dict[str, str]:
    """The environment a launcher gives a run's processes (and the server that forks them): its own, unbuffered."""
    return dict(os.environ, PYTHONUNBUFFERED="1", **({DEBUG_ENVIRONMENT: "1"} if debug else {}))


def start_spare(env: dict[str, str], *, wait: bool = False) -> None:
    """Start a server now for the run this process is about to launch with ``env``; :meth:`ForkServer.start` takes it.
    ``wait``: return once it has imported what it preloads (a benchmark's run with its libraries loaded before its
    clock).

    ``lec-cosim run`` (:mod:`lec_cosim.__main__`) calls this first: the server's imports (half a second) then happen
    while the command imports its own modules and reads, checks and writes the scenario, instead of after. A spare
    that no run takes (a bad scenario, a run without federate programs) ends with this process, or at
    :func:`discard_spare`. It runs in the folder that holds this package, whose modules it would import anyway."""
    if _spare or not enabled(env):
        return
    server = ForkServer.launch(Path(__file__).resolve().parents[1], env, SPARE_ROOM_BYTES, SPARE_LABEL)
    if server is not None:
        _spare.append(server)
        if wait:
            server._wait_until_ready()


def discard_spare() -> None:
    """End the server :func:`start_spare` started, if no run took it."""
    while _spare:
        _spare.pop().close()


def _command_bytes(argv: list[str]) -> bytes:
    """A command line as ``/proc/PID/cmdline`` holds it: each argument followed by a NUL byte."""
    return b"".join(os.fsencode(arg) + b"\0" for arg in argv)


# ---------------------------------------------------------------------------------------------- the launcher's side


class ForkedProcess:
    """A federate program forked by the server, as the launcher sees it: what it uses of :class:`subprocess.Popen`."""

    def __init__(self, server: ForkServer, pid: int, args: list[str]):
        self.server, self.pid, self.args = server, pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.read_messages(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.server.read_messages(left)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        # the server reaps the child: until it reported the exit, the pid is still the child's
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """The launcher's side of a run's fork server: start it (:meth:`start`), :meth:`spawn` programs, :meth:`close`."""

    def __init__(self, popen: subprocess.Popen, sock: socket.socket, env: dict[str, str], area_bytes: int):
        self.popen, self.sock = popen, sock
        self.env = env  # what its children's environment is built on (a request's variables are set over it)
        self.area_bytes = area_bytes  # the longest command line its children can show as theirs
        self.ready = False
        self.gone = False  # the server failed or was closed: nothing more is forked
        self.children: dict[int, ForkedProcess] = {}
        self.replies: list[dict] = []
        self.early_exits: dict[int, int] = {}  # exits read before the reply that named the child was taken

    @classmethod
    def start(cls, run_dir: Path, env: dict[str, str], commands: list[list[str]]) -> ForkServer | None:
        """Start the server of a run, in ``run_dir``, with the launcher's ``env``; room for ``commands``' titles.

        Returns at once (the server imports while the broker starts); None if it could not even be started.
        The spare server (:func:`start_spare`) is taken instead if it was started with ``env`` and has the room.
        """
        longest = max(len(_command_bytes(command)) for command in commands)
        while _spare:
            spare = _spare.pop()
            if spare.env == env and spare.area_bytes >= longest and not spare.gone and spare.popen.poll() is None:
                try:  # its command line names the run's folder from now on (ps, pgrep -f RUN_DIR find it)
                    spare.sock.send(json.dumps({"label": str(run_dir)}).encode())
                    return spare
                except OSError:
                    pass
            spare.close()
        return cls.launch(run_dir, env, max(longest, SPARE_ROOM_BYTES), str(run_dir))

    @classmethod
    def launch(cls, cwd: Path, env: dict[str, str], longest: int, label: str) -> ForkServer | None:
        """Start a server in ``cwd`` with room for command lines of ``longest`` bytes, ``label`` in its own."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-m", SERVER_MODULE, str(theirs.fileno()), label]
        room = longest - len(_command_bytes(argv))
        if room > 0:  # a blank argument: the area each child rewrites into its own command line
            argv.append(" " * room)
        try:
            popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=[theirs.fileno()], start_new_session=True,
                                     preexec_fn=die_with_parent)  # noqa: PLW1509 (as launch.py's processes)
        except OSError as exc:
            log.warning("fork server not started (%s): federate programs are started as new processes", exc)
            ours.close()
            return None
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(popen, ours, env, len(_command_bytes(argv)))

    def fits(self, argv: list[str]) -> bool:
        """Whether a child can show ``argv`` as its command line (the room the server was started with)."""
        return len(_command_bytes(argv)) <= self.area_bytes

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str], log_file) -> ForkedProcess | None:
        """Fork ``argv`` (a :func:`servable` command) in ``cwd`` with ``env``, its output into the open ``log_file``.

        Returns None when the server is not there (failed to start or died): the caller starts a process instead.
        Raises OSError as ``Popen`` would when ``cwd`` is not a folder.
        """
        if self.gone:
            return None
        if not self.ready and not self._wait_until_ready():
            return None
        request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env}).encode()
        try:
            socket.send_fds(self.sock, [request], [log_file.fileno()])
        except OSError as exc:
            self._fail(f"its socket failed: {exc}")
            return None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.replies and not self.gone and time.monotonic() < deadline:
            self.read_messages(deadline - time.monotonic())
        if not self.replies:
            self._fail("it did not answer a request")
            return None
        reply = self.replies.pop(0)
        if "error" in reply:
            raise OSError(*reply["error"])
        child = self.children[reply["pid"]] = ForkedProcess(self, reply["pid"], argv)
        child.returncode = self.early_exits.pop(child.pid, None)
        return child

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready and not self.gone and time.monotonic() < deadline:
            self.read_messages(deadline - time.monotonic())
        if not self.ready and not self.gone:
            self._fail(f"it was not ready within {READY_TIMEOUT_S:g} s")
        return self.ready

    def read_messages(self, timeout: float | None) -> None:
        """Take in what the server sent (waiting up to ``timeout`` seconds for the first message)."""
        if self.gone:
            return
        if timeout is None or timeout > 0:
            wait_readable([self.sock.fileno()], timeout)
        while True:
            try:
                data = self.sock.recv(REPLY_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail(f"its socket failed: {exc}")
                return
            if not data:
                self._fail(f"it exited (code {self.popen.wait()})")
                return
            message = json.loads(data)
            if "exited" in message:
                child = self.children.get(message["exited"])
                if child is None:
                    self.early_exits[message["exited"]] = message["returncode"]
                else:
                    child.returncode = message["returncode"]
            elif "ready" in message:
                self.ready = True
            elif "failed" in message:
                self._fail(message["failed"])
                return
            else:
                self.replies.append(message)

    def _fail(self, why: str) -> None:
        """The server is unusable: say so, end it; its children died with it (parent-death signal: SIGKILL)."""
        if not self.gone:
            log.warning("fork server failed: %s; federate programs not started yet are started as new processes", why)
        self._end()
        for child in self.children.values():
            if child.returncode is None:
                child.returncode = -signal.SIGKILL

    def _end(self) -> None:
        self.gone = True
        self.sock.close()
        if not self.ready:  # still importing (a spare no run took): no child yet, nothing to wait for
            self.popen.kill()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def close(self) -> None:
        """End the server (its socket closed: it kills any child left, then exits) and wait for it."""
        if not self.gone:
            self._end()


# ------------------------------------------------------------------------------------------------- the server's side


def _command_area() -> tuple[int, int] | None:
    """Where this process's command line is in its memory: ``arg_start`` and ``arg_end`` of ``/proc/self/stat``."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[45]), int(fields[46])  # fields 48 and 49 (the first after the name is field 3)
    except (OSError, IndexError, ValueError):
        return None


def _retitle(area: tuple[int, int] | None, argv: list[str]) -> None:
    """Write ``argv`` over this process's command line (``/proc/PID/cmdline``), NUL bytes after it."""
    if area is None:
        return
    start, end = area
    title = _command_bytes(argv)
    if len(title) <= end - start:
        ctypes.memmove(start, title.ljust(end - start, b"\0"), end - start)


def _fresh_signals(handlers: dict[int, object]) -> None:
    for number, handler in handlers.items():
        if signal.getsignal(number) is not handler:
            signal.signal(number, handler)


def _run_as_main(argv: list[str]) -> int:
    """Run ``argv`` (``python -m MODULE ARGS``) as the interpreter would in a new process; its exit code."""
    import builtins
    import runpy
    import types

    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.argv = ["-m", *argv[3:]]  # -m's first argv[0]; runpy replaces it with the module's file
    sys.orig_argv = list(argv)
    sys.path[0] = os.getcwd()  # -m puts the current folder first
    if "numpy.random" in sys.modules:  # a fresh process seeds numpy's global generator from the OS
        sys.modules["numpy.random"].seed()
    code = 0
    try:
        runpy._run_module_as_main(argv[2], alter_argv=True)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 (what the interpreter does with any uncaught exception)
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code is not runpy._run_module_as_main.__code__:
            tb = tb.tb_next  # from where a fresh process's traceback starts
        exc.__traceback__ = tb or exc.__traceback__  # what the hook prints, not the argument below
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code = 1
        if isinstance(exc, KeyboardInterrupt):  # as the interpreter does: end by the signal
            code = -signal.SIGINT
    return interpreter_ending(code)


def interpreter_ending(code: int) -> int:
    """What the interpreter does at its end (``Py_FinalizeEx``) that a process can observe, before ``os._exit``:
    non-daemon threads joined, ``atexit`` functions run, the standard streams flushed (stdout's flush failing makes
    the exit code 120). Not done: tearing down every module and object, which nobody observes (~0.15 s with
    pandas and HELICS loaded). For a process whose own files are all closed by then."""
    import atexit
    import threading

    try:
        threading._shutdown()
    except BaseException:  # noqa: BLE001, S110 (an interrupted join: the interpreter ends all the same)
        pass
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        code = 120 if code == 0 else code
    try:
        sys.stderr.flush()
    except Exception:  # noqa: BLE001, S110 (the interpreter ignores stderr's)
        pass
    return code


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF  # as the interpreter's exit: sys.exit(-1) is 255, never a signal
    print(exc.code, file=sys.stderr)
    return 1


def _child(request: dict, log_fd: int, server_pid: int, closing: list[int], area, handlers) -> None:
    """In a forked child: become the federate program of ``request``; never returns."""
    code = 1
    try:
        _retitle(area, request["argv"])  # first: from now on ps and pgrep -f see the federate
        for fd in closing:
            os.close(fd)
        os.setsid()
        die_with_parent()
        if os.getppid() != server_pid:  # the server died before the parent-death signal was set
            os._exit(1)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _fresh_signals(handlers)
        code = _run_as_main(request["argv"])
    except BaseException:  # noqa: BLE001 (setting up the child failed: say why in its log, exit 1)
        try:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001, S110 (no log to say it in: the exit code still tells)
            pass
    if code < 0:  # only a KeyboardInterrupt's -SIGINT: end by the signal, as the interpreter does
        try:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)


def warm(run_dir: Path) -> None:
    """Read once, before the run's federates are forked, what each of them reads first: its kind's settings module
    (``lec_cosim.components.<kind>``: a pydantic model built at import) and its scenario file
    (:func:`lec_cosim.scenario.preload_scenario`), from the configs in ``run_dir/configs``. Each federate did both
    at its start, four or more processes at once on the machine's cores (~0.1 s of CPU each, measured 2026-12-07).
    Whatever fails here is left for the federate to read and report itself."""
    try:
        from lec_cosim.components import declaration
        from lec_cosim.scenario import preload_scenario

        sections = []
        for path in sorted((run_dir / "configs").glob("*.json")):
            config = json.loads(path.read_text())
            section = config.get("lec_cosim") if isinstance(config, dict) else None
            if isinstance(section, dict):
                sections.append(section)
    except Exception:  # noqa: BLE001 (any of it: the federates read their configs and say what is wrong)
        return
    for path in dict.fromkeys(s["scenario"] for s in sections if isinstance(s.get("scenario"), str)):
        try:
            preload_scenario(path)
        except Exception:  # noqa: BLE001, S112 (the federates read it and say what is wrong)
            continue
    for module in dict.fromkeys(s["module"] for s in sections if isinstance(s.get("module"), str)):
        try:
            declaration(module)
        except Exception:  # noqa: BLE001, S112 (the federate imports it and says what is wrong)
            continue


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def serve(fd: int) -> int:
    """The server's loop on socket ``fd``: import :data:`PRELOAD`, then fork on request and report exits."""
    import importlib
    import traceback

    handlers = {number: signal.getsignal(number) for number in signal.valid_signals()
                if number not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(number) is not None}
    sock = socket.socket(fileno=fd)
    try:
        os.close(os.pidfd_open(os.getpid()))  # the children are watched through pidfds (Linux 5.3): none, no server
    except (OSError, AttributeError) as exc:
        _send(sock, {"failed": f"no pidfd_open here: {exc}"})
        return 1
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 (any failure: the launcher starts processes instead)
        _send(sock, {"failed": f"importing {name}: " + "".join(traceback.format_exception_only(exc)).strip()})
        return 1
    area = _command_area()
    try:
        _send(sock, {"ready": os.getpid()})
    except OSError:  # the launcher left while it imported
        return 0
    if len(sys.argv) > 2 and sys.argv[2] != SPARE_LABEL:  # a run's own server: its folder is its label
        warm(Path(sys.argv[2]))
    children: dict[int, int] = {}  # pidfd -> pid
    try:
        while True:
            readable, _, _ = select.select([sock, *children], [], [])
            for ready in readable:
                if ready is sock:
                    data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 1)
                    if not data:  # the launcher closed its end: done (or gone)
                        return 0
                    request = json.loads(data)
                    if "label" in request:  # a spare taken by a run: named by its folder, as a run's server is
                        _retitle(area, [*sys.orig_argv[:4], request["label"]])  # python -m MODULE FD
                        warm(Path(request["label"]))
                        continue
                    _send(sock, _fork(request, fds[0], sock, children, area, handlers))
                else:
                    pid = children.pop(ready)
                    _, status = os.waitpid(pid, 0)
                    os.close(ready)
                    _send(sock, {"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})
    except (BrokenPipeError, ConnectionResetError):  # the launcher is gone
        return 0
    finally:
        for pid in children.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _fork(request: dict, log_fd: int, sock: socket.socket, children: dict[int, int], area, handlers) -> dict:
    """Fork the child of ``request``; the reply for the launcher (its pid, or the error ``Popen`` would raise)."""
    try:
        if not os.path.isdir(request["cwd"]):
            return {"error": [2, os.strerror(2), request["cwd"]]}
        sys.stdout.flush()
        sys.stderr.flush()
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                _child(request, log_fd, server_pid, [sock.fileno(), *children], area, handlers)
            finally:  # a child never returns into the server's loop (whose end kills every other child)
                os._exit(1)
        try:
            children[os.pidfd_open(pid)] = pid
        except OSError:  # unsupervised it must not run: end it, and the launcher raises as Popen would
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        return {"pid": pid}
    except OSError as exc:  # no fork (out of memory, too many processes): the launcher raises it as Popen would
        return {"error": [exc.errno, exc.strerror, None]}
    finally:
        os.close(log_fd)


if __name__ == "__main__":
    # The launcher waits for the server's exit (nothing of a run may outlive it): the interpreter's teardown of the
    # preloaded modules (0.2 s) is skipped, as nothing is left to flush or close (its output goes to /dev/null).
    os._exit(serve(int(sys.argv[1])))
