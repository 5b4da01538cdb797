"""A federation in one process: the same federate programs as threads on HELICS's in-process core.

A normal run (:mod:`lec_cosim.launch`) starts a ``helics_broker`` and one process per federate, talking
ZMQ over TCP: robust (a stuck federate can be killed), but each start costs seconds of imports and model
building. Here the broker is an ``inproc`` broker of this process (each federate on an ``inproc`` core
of its own, or with ``shared_core`` all on one) and each federate program (its ``build`` and
:func:`federates.common.run_federate`, unchanged) runs in a thread of its own. What stays
identical to a normal run: the configs (but for the core: ``coreType``, ``coreInitString``, ``coreName``, and
HELICS's ``loglevel``), every federate's
time requests, values and messages, and so the results (byte-identical CSVs; ``tests/test_inproc.py``).
What differs:

- the federates share one Python interpreter: no parallelism between them (those that read each other act in
  turn at their phase offsets anyway; a federate nobody waits for, such as the local market's DSO, would work on
  the other core in a process run), and models may keep what they built (the
  feeder, the community) for the next federation of the same scenario;
- a federate stuck inside a model (not in HELICS) cannot be killed: :meth:`InprocFederation.stop` ends
  the federation with a global error, which frees every federate waiting in HELICS, but a thread busy in
  a model finishes its work first. Use process runs for models that may hang;
- each federate's output goes to ``logs/<federate>.log`` as in a normal run, through a stream that sends
  each thread's writes to its own file (:class:`ThreadStreams`);
- the recorder's ``wall_time_s`` counts from when this process imported it;
- with ``global_time`` the broker coordinates time globally (``--globaltime``: one clock grants every
  federate), not among the cores: the same grants with far fewer thread wake-ups, for a bounded number of
  grants (see :meth:`InprocFederation.start`).

The caller may join federates of its own to the same broker (``outside``): a learning environment's
proxy (:mod:`lec_cosim.env`) is such a federate, created in the caller's thread from its generated config.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

import helics as h

from lec_cosim.launch import FederationError

START_TIMEOUT_S = 60.0
"""A federation whose federates have not all entered executing mode by then is ended (a start-up hang)."""
GLOBAL_TIME_GRANTS = 12_000
"""The most grants a ``global_time`` federation may make, all its federates together: HELICS 3.6.1's global
time coordinator stopped granting after about 32,700 in a learning environment (its sequence counter
overflows, GMLC-TDC/HELICS#2795)."""
_COUNTER = itertools.count(1)


class ThreadStreams:
    """``sys.stdout`` / ``sys.stderr`` that send the writes of registered threads to their own files.

    Installed once per process (:meth:`install`); writes of any other thread go to the stream it replaced.
    """

    def __init__(self, original):
        self.original = original
        self.files: dict[int, object] = {}

    def write(self, text: str) -> int:
        target = self.files.get(threading.get_ident(), self.original)
        return target.write(text)

    def flush(self) -> None:
        self.files.get(threading.get_ident(), self.original).flush()

    def __getattr__(self, name):  # encoding, isatty, fileno ...: the original stream's
        return getattr(self.original, name)

    _lock = threading.Lock()

    @classmethod
    def install(cls) -> tuple["ThreadStreams", "ThreadStreams"]:
        with cls._lock:
            if not isinstance(sys.stdout, ThreadStreams):
                sys.stdout = cls(sys.stdout)
            if not isinstance(sys.stderr, ThreadStreams):
                sys.stderr = cls(sys.stderr)
        return sys.stdout, sys.stderr


_CAPTURE_LOCK = threading.Lock()
_CAPTURE_USERS = [0, None]  # federations running, Pyomo's setting before the first


def pyomo_capture_off(off: bool) -> None:
    """Stop Pyomo from taking the process's ``sys.stdout``/``sys.stderr`` (and file descriptors 1 and 2) while it
    solves, while in-process federations run: ``off=True`` as one starts, ``off=False`` as it closes; the last to
    close restores Pyomo's setting, so a caller's own Pyomo solves afterwards behave as before.

    Pyomo's HiGHS interface wraps each solve in ``capture_output(capture_fd=True)``: it replaces both streams
    for the whole process and closes its replacement afterwards. With federates as threads, another federate
    printing meanwhile wrote into that capture, or into it once closed: a market federate failed with
    "I/O operation on closed file" (once in a test suite run; ``tests/test_inproc.py`` reproduces
    the race). Pyomo's own switch, ``OVERRIDE_CAPTURE_OUTPUT``, turns the capture off. HiGHS solves silently
    (``output_flag`` off, :mod:`lec_cosim.models.lp_solvers`), but its two-line banner, printed as an instance
    is built, now reaches the process's standard output. Capturing only the file descriptors (Pyomo's
    ``ENABLE_FD_CAPTURE``) would catch it but is no safer: two threads solving at once would each redirect
    descriptor 1 and could restore it to the other's pipe.
    """
    import pyomo.common.tee as tee
    from pyomo.common.enums import CaptureOutputMode

    with _CAPTURE_LOCK:
        if off:
            if _CAPTURE_USERS[0] == 0:
                _CAPTURE_USERS[1] = tee.OVERRIDE_CAPTURE_OUTPUT
                tee.OVERRIDE_CAPTURE_OUTPUT = CaptureOutputMode.DISABLE
            _CAPTURE_USERS[0] += 1
        elif _CAPTURE_USERS[0] > 0:
            _CAPTURE_USERS[0] -= 1
            if _CAPTURE_USERS[0] == 0:
                tee.OVERRIDE_CAPTURE_OUTPUT = _CAPTURE_USERS[1]


class InprocFederation:
    """The federation of ``scenario`` written into ``run_dir`` and run as threads of this process.

    ``outside`` names federates of the plan the caller runs itself (it creates them from
    ``configs/<name>.json`` once :meth:`start` returned); ``transform`` may change the plans before they are
    written and ``shared_core`` puts all federates on one core (:func:`lec_cosim.federation.write_federation`).
    ``global_time``: the broker coordinates time globally, for a federation of at most
    :data:`GLOBAL_TIME_GRANTS` grants (see :meth:`start`). Use as a context manager, or call :meth:`start`,
    :meth:`wait` and :meth:`close`.
    """

    def __init__(self, scenario, run_dir: str | Path, *, outside: tuple[str, ...] = (), debug: bool = False,
                 start_timeout_s: float = START_TIMEOUT_S, transform=None, shared_core: bool = False,
                 global_time: bool = False):
        from lec_cosim.federation import write_federation

        self.run_dir = Path(run_dir).resolve()
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise FileExistsError(f"{self.run_dir}: an in-process federation runs into a new or empty folder")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.name = f"lec_cosim_inproc_{os.getpid()}_{next(_COUNTER)}"
        self.global_time = global_time
        runner = write_federation(scenario, self.run_dir, manifest=False, inproc_broker=self.name, transform=transform,
                                  shared_core=shared_core)
        self.configs = {entry["name"]: Path(entry["config"]) for entry in runner["federates"]}
        unknown = set(outside) - set(self.configs)
        if unknown:
            raise KeyError(f"no federate {', '.join(sorted(unknown))} in the federation of {scenario.name}")
        self.outside = tuple(outside)
        self.debug = debug
        self.start_timeout_s = start_timeout_s
        self.errors: dict[str, str] = {}
        """Federate -> its error line, in the order they failed (see :meth:`failure` for the origin)."""
        self._lock = threading.Lock()  # errors, stop and close: the member threads, a watchdog and the caller
        self.finished: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._broker = None
        self._done = threading.Event()
        self._capture_off = False  # Pyomo's capture switched off by start(), on again by close()

    def config(self, name: str) -> Path:
        return self.configs[name]

    def __enter__(self) -> "InprocFederation":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Create the broker and start a thread per federate (but those ``outside``)."""
        for config in self.configs.values():  # imported here, once: not by several threads at a time
            importlib.import_module(json.loads(config.read_text())["lec_cosim"]["module"])
        # BLAS on one thread while the federation runs, as in a federate's own process (federates.common.main): set
        # per call, one thread's limit would be another's (the fixed point's products round by how BLAS splits them)
        from threadpoolctl import threadpool_limits

        self._blas_limits = threadpool_limits(limits=1, user_api="blas")
        # --globaltime: the broker grants every federate's time from one clock instead of the cores trading time
        # requests among the federates. In one process that traffic was the cost of a learning environment's
        # step: ~1,160 thread wake-ups (futex calls, a third of its CPU in the kernel) with the distributed
        # coordination, ~200 with the global one; two environments side by side went from 156-181 to 202-232
        # steps/s (benchmarks/env_throughput.py, runs on a noisy 2-core machine). Grants, values and messages
        # are the same (six runs of every kind gave byte-identical results). But HELICS 3.6.1's global
        # coordinator stops granting once its sequence counter overflows (GMLC-TDC/HELICS#2795, fixed by #2825
        # after that release): an environment hung after about 32,700 grants. So only a caller that keeps a
        # federation under GLOBAL_TIME_GRANTS grants asks for it (lec_cosim.env rebuilds its long-lived
        # federation in time). Over ZMQ between processes it is no gain anyway: each grant then waits on the
        # broker's round trips (a week's run went from 13 s to over 2 min).
        options = f"-f{len(self.configs)} --name={self.name} --consoleloglevel=no_print"
        self._broker = h.helicsCreateBroker("inproc", self.name, options + (" --globaltime" if self.global_time
                                                                            else ""))
        out, err = ThreadStreams.install()
        pyomo_capture_off(True)  # until close(): federate threads share the process's streams
        self._capture_off = True
        (self.run_dir / "logs").mkdir(exist_ok=True)
        for name, config in self.configs.items():
            if name in self.outside:
                continue
            thread = threading.Thread(target=self._member, args=(name, config, out, err), name=f"federate {name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        threading.Thread(target=self._start_deadline, name=f"{self.name} start-up", daemon=True).start()

    def _member(self, name: str, config: Path, out: ThreadStreams, err: ThreadStreams) -> None:
        from federates.common import run_federate

        ident = threading.get_ident()
        with open(self.run_dir / "logs" / f"{name}.log", "w", encoding="utf-8") as log:
            out.files[ident] = err.files[ident] = log
            try:
                module = json.loads(config.read_text())["lec_cosim"]["module"]
                # its error kept before the others hear of it: a federate it stops may fail with a line of its own
                # (not a relayed one) before this thread would get here, and would be blamed (seen under load)
                error = run_federate(config, importlib.import_module(module).build, debug=self.debug,
                                     on_error=lambda message: self._keep_error(name, message))
            except BaseException as exc:  # SystemExit deep in a model: the thread would end without a word
                error = f"{name}: {type(exc).__name__}: {exc} (the federate ended before its end)"
                self.stop(error)
            finally:
                out.files.pop(ident, None)
                err.files.pop(ident, None)
        if error is None:
            self.finished.add(name)
        else:
            self._keep_error(name, error)
            # a federate that failed before it joined sent no global error: the others would wait for it
            self.stop(error)

    def _keep_error(self, name: str, error: str) -> None:
        with self._lock:
            self.errors.setdefault(name, error)

    def _start_deadline(self) -> None:
        """End the federation if it has not started stepping within ``start_timeout_s`` (model building
        included). Start-up hung 1 in 3 before each core had a name of its own (``write_federation``); this is
        the guard should any other start-up hang remain."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline and not self._done.is_set():
            if self._stepping():
                return
            time.sleep(0.05)
        if not self._done.is_set() and not self._stepping():
            self.stop(f"the federation did not start within {self.start_timeout_s:g} s")

    def _stepping(self) -> bool:
        timing = self.run_dir / "timing"
        return all((timing / f"{name}.csv").exists() for name in self.configs if name not in self.outside)

    def stop(self, reason: str) -> None:
        """End the federation now: a global error that every federate's next HELICS call sees."""
        with self._lock:
            if self._broker is None or self._done.is_set():
                return
            try:
                # bytes: helics 3.6.1's wrapper hands the str to C unconverted (TypeError: ctype 'char *')
                h.helicsBrokerGlobalError(self._broker, 1, reason.encode())
            except h.HelicsException:
                pass

    def failure(self) -> FederationError | None:
        """The error of the federate that started it, as the launcher would report it; None while none failed.

        A federate that HELICS stopped because another failed reports a ``HelicsException`` or
        ``FederationStopped`` line, possibly before the origin's: like the launcher (``launch._is_origin``),
        those are blamed only when there is nothing else."""
        with self._lock:
            errors = list(self.errors.items())
        if not errors:
            return None
        relayed = ("HelicsException", "FederationStopped")
        name, error = next(((n, e) for n, e in errors if not any(r in e for r in relayed)), errors[0])
        return FederationError(f"federate {name} failed: {error} (log: {self.run_dir / 'logs' / name}.log)",
                               name, error)

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait for every thread; raise :class:`FederationError` on the first error or after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.1)
                if self.errors:
                    self.stop("a federate failed")
                if deadline is not None and time.monotonic() > deadline:
                    self.stop(f"the federation did not finish within {timeout_s:g} s")
                    self._join(5.0)
                    raise FederationError(f"federation did not finish within {timeout_s:g} s")
        failure = self.failure()
        if failure is not None:
            raise failure

    def _join(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(end - time.monotonic(), 0.0))

    def close(self) -> None:
        """End what still runs (a global error), wait for the threads a little, and free the broker."""
        if any(t.is_alive() for t in self._threads):
            self.stop("the federation was closed before its end")
            self._join(10.0)
        with self._lock:
            self._done.set()
            broker, self._broker = self._broker, None
            restore, self._capture_off = self._capture_off, False
        if restore:
            pyomo_capture_off(False)
        blas, self._blas_limits = getattr(self, "_blas_limits", None), None
        if blas is not None:  # the caller's own BLAS threads again
            blas.restore_original_limits()
        if broker is not None:
            from federates.common import free

            h.helicsBrokerWaitForDisconnect(broker, 2000)
            free(broker)


def run_inproc(scenario, run_dir: str | Path, *, timeout_s: float | None = None, debug: bool = False) -> float:
    """Run ``scenario``'s whole federation in this process into ``run_dir``; the wall seconds.

    Raises :class:`~lec_cosim.launch.FederationError` naming the federate that failed first.
    """
    started = time.perf_counter()
    with InprocFederation(scenario, run_dir, debug=debug) as federation:
        federation.wait(timeout_s)
    return time.perf_counter() - started
