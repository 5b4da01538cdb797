"""Who holds the federation up: a HELICS observer that watches every federate's granted time.

A federate that stops responding (SIGSTOP, a deadlocked solver, a stuck network read) holds every
other federate at its time for ever: they wait in their time requests, HELICS sees nothing wrong.
The launcher therefore starts, beside each federation, a watchdog process (``python -m
lec_cosim.watchdog``; see :func:`watch` for why a process) that joins it as an *observer* (HELICS's
``HELICS_FLAG_OBSERVER``: it takes no part in time coordination, so it holds no one back) and asks
each federate, twice a second, its ``current_time`` (granted and requested time). When no
federate's granted time has moved for the stall time, it tells which federate holds the others:

- one that does not answer queries at all: its process is stopped or frozen (a federate's HELICS
  core runs in its own thread, so a federate merely busy in Python or in a solver still answers);
- otherwise one that was granted its time and has not asked for the next: it is still working on
  that step (a solver that never returns, a read that never ends);
- before executing mode, one that has not joined the federation or is still initializing.

Measured with HELICS 3.6.1 (zmq cores): an observer counts towards the broker's ``-f`` federates, so
one that joined before the federation entered executing mode let the broker start it without the
last federate (which was then refused: "already in initialization mode"). The observer therefore
joins only once every federate program has entered executing mode, which each one tells in its
timing state file (``timing/<federate>.json``, :mod:`lec_cosim.timing`); before that, the files are
what the watchdog watches: a federate that has not written ``ready`` when the others stopped making
progress is still building its model. Once joined, the observer stays in its created state: it only
asks queries, which HELICS answers in any state, and takes no part in the time coordination. Under a
root broker with sub-brokers and ``--globaltime`` any observer stopped the federation's grants (in
executing mode or not), so a hierarchy is watched through the federates' timing state files and
their processes' states instead (``pids``). A query to a stopped federate's core is never answered
(no timeout for many seconds), so every query is asynchronous and one not answered within
``answer_s`` counts as "not answering"; it is left pending and not repeated.

The watchdog process imports HELICS and nothing of the scenario's schema or of numpy and pandas (its
launcher passes every parameter): a process run starts one, and those imports cost it about half a second
of CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import helics as h


def free(handle) -> None:
    """Free a HELICS handle once (:func:`federates.common.free`; imported here: that module imports the launcher,
    which imports this one)."""
    from federates.common import free as free_once

    free_once(handle)


STARTUP_ALLOWANCE_S = 60.0
"""Start-up (building models, joining) may take this long without progress, whatever the stall time."""
FINISH_ALLOWANCE_S = 600.0
"""Writing results after the last slot (a year's tables) may take this long, whatever the stall time."""
JOIN_ATTEMPTS = 10
"""Tries to join the running federation (each gives up after about two seconds)."""
HELICS_TIME_START = -1e9
"""A granted time below this is HELICS's "not yet granted" (-9.2e9 s before executing mode)."""
HELICS_TIME_END = 1e9
"""A requested time above this is HELICS's end of time (the observer's own request, or none yet)."""


@dataclass
class FederateTime:
    """What a federate last answered, and since when an unanswered query is pending."""

    granted_s: float | None = None
    requested_s: float | None = None
    joined: bool = False
    left: bool = False
    pending_since: float | None = None


@dataclass(frozen=True)
class Stall:
    """A stalled federation: who holds it, at which granted time, and why (in words).

    Attributes
    ----------
    federate : str or None
        The federate that holds the others (None: the watchdog could not tell).
    granted_s : float or None
        Its granted time in seconds of simulated time (None: before executing mode, or unknown).
    reason : str
        Why it holds them, for the user.
    stalled_s : float
        Wall seconds without a federate's time advancing.
    """

    federate: str | None
    granted_s: float | None
    reason: str
    stalled_s: float


@dataclass
class Watchdog:
    """Watch a running federation from an observer federate; see the module docstring.

    Parameters
    ----------
    broker_address, port, key
        Where the (root) broker listens, and its key (None: none).
    federates
        Names of the federates to watch.
    run_dir, programs
        The run folder and the federates in it that are lec-cosim federate programs (they write their
        timing state; stock HELICS apps do not).
    pids, brokers
        Process IDs of the federates and of the brokers: a stopped process is named as such, and a
        broker hierarchy (``queries=False``) is watched through the timing files and ``/proc``.
    stall_s
        Wall seconds without any federate's granted time advancing that make a stall (the launcher passes the
        scenario's ``federation.stall_timeout_s``); start-up and the
        end of a run (every federate program done with its slots, results being written) get at least
        :data:`STARTUP_ALLOWANCE_S` and :data:`FINISH_ALLOWANCE_S`.
    poll_s, answer_s
        How often the federates are asked, and how long an answer may take.
    on_stall
        Called with the verdict as soon as it is settled, before the observer leaves the federation (the
        watchdog process reports it at once: see :func:`watch`).
    """

    broker_address: str
    port: int
    federates: list[str]
    run_dir: Path
    programs: list[str]
    stall_s: float
    key: str | None = None
    poll_s: float = 0.5
    answer_s: float = 2.0
    pids: dict[str, int] = field(default_factory=dict)
    brokers: dict[str, int] = field(default_factory=dict)
    queries: bool = True
    times: dict[str, FederateTime] = field(default_factory=dict)
    stall: Stall | None = None
    error: str | None = None
    """Why the watchdog could not ask HELICS (it then watches the timing files instead)."""
    on_stall: Callable[[Stall], None] | None = None

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lec-cosim-watchdog", daemon=True)
        self.times = {name: FederateTime() for name in self.federates}

    def start(self) -> "Watchdog":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Leave the federation (the broker ends only once its observer has left too).

        Waits for the watchdog's thread, which frees its federate and core (a join under way gives up
        within about 3 s); a core left behind would linger in this process.
        """
        self._stop.set()
        self._thread.join(timeout_s)

    # -- the observer's thread ------------------------------------------------------------------
    def _join(self):
        info = h.helicsCreateFederateInfo()
        h.helicsFederateInfoSetCoreType(info, h.HELICS_CORE_TYPE_ZMQ)
        # a core of its own: without a name, HELICS gives a second observer of this process the first
        # one's core, connected to the first federation's broker
        h.helicsFederateInfoSetCoreName(info, f"lec_cosim_watchdog_{uuid.uuid4().hex}")
        # silent (a failed connection must not print into the user's terminal) and quick to give up: the
        # broker may be gone already when a short run ends as the watchdog joins
        # --maxfederates=1: HELICS hands a federate created later in this process without a core name any
        # open core of its type, whatever broker its config names; ours must never be that core (measured:
        # test federates joined a lingering observer's core, bound to a finished run's broker)
        options = ["--federates=1", "--maxfederates=1", f"--broker_address=tcp://{self.broker_address}:{self.port}",
                   "--loglevel=no_print", "--networktimeout=1s", "--timeout=2s", "--networkretries=1"]
        if self.key:
            options.append(f"--brokerkey={self.key}")
        h.helicsFederateInfoSetCoreInitString(info, " ".join(options))
        h.helicsFederateInfoSetFlagOption(info, h.HELICS_FLAG_OBSERVER, True)
        h.helicsFederateInfoSetFlagOption(info, h.HELICS_FLAG_TERMINATE_ON_ERROR, False)
        try:
            return h.helicsCreateValueFederate(f"lec_cosim_watchdog_{uuid.uuid4().hex[:12]}", info)
        finally:
            free(info)

    def _timing_states(self) -> dict[str, dict | None]:
        """Each federate program's timing state file (None: none yet, its model is being built)."""
        from lec_cosim.timing import TIMING_DIR

        states = {}
        for name in self.programs:
            try:
                states[name] = json.loads((Path(self.run_dir) / TIMING_DIR / f"{name}.json").read_text())
            except (OSError, ValueError):
                states[name] = None
        return states

    def _startup_states(self) -> dict[str, str | None]:
        return {name: (info or {}).get("state") for name, info in self._timing_states().items()}

    def _allowance(self) -> float:
        """The stall time now: longer while results are written (every federate program done with its slots)."""
        states = self._startup_states()
        if states and all(state in ("done", "failed") for state in states.values()):
            return max(self.stall_s, FINISH_ALLOWANCE_S)
        return self.stall_s

    def _stopped_process(self) -> Stall | None:
        """A broker or federate whose process the kernel has stopped (SIGSTOP, a debugger): that is the culprit."""
        for name, pid in {**self.brokers, **self.pids}.items():
            if _process_state(pid) in ("T", "t"):  # stopped, or stopped by a tracer
                return Stall(name, None, "its process is stopped (SIGSTOP or a debugger)", 0.0)
        return None

    def _declare(self, stall: Stall, stalled_s: float) -> None:
        """Settle the verdict: a process the kernel has stopped is the culprit, whatever the rest suggests."""
        stopped = self._stopped_process()
        if stopped is not None:
            granted = stall.granted_s if stopped.federate == stall.federate else None
            if granted is None and stopped.federate in self.times:
                # the verdict had named another federate (all waiting, say): the stopped one's own last answer,
                # else its last timing report (up to 2 s old)
                granted = _granted(self.times[stopped.federate])
                if granted is None:
                    granted = (self._timing_states().get(stopped.federate) or {}).get("state_slot_time_s")
            stall = Stall(stopped.federate, granted, stopped.reason, stalled_s)
        self.stall = Stall(stall.federate, stall.granted_s, stall.reason, stalled_s)
        if self.on_stall is not None:
            self.on_stall(self.stall)

    def _await_executing(self) -> bool:
        """Wait until every federate program is in executing mode; False on stop or a stall at start-up.

        Start-up gets :data:`STARTUP_ALLOWANCE_S` at least: models are built then, and a loaded machine
        builds slowly without anything being wrong.
        """
        last, progress_at = None, time.monotonic()
        allowance = max(self.stall_s, STARTUP_ALLOWANCE_S)
        while not self._stop.wait(0.25):
            states = self._startup_states()
            if all(state not in (None, "ready") for state in states.values()):
                return True
            if states != last:
                last, progress_at = states, time.monotonic()
            elif time.monotonic() - progress_at >= allowance:
                stalled_s = time.monotonic() - progress_at
                building = [name for name, state in states.items() if state is None]
                if building:
                    stall = Stall(building[0], None, "it has not finished starting: its model is still being "
                                  "built or read, so it has not asked for executing mode"
                                  + (f" (nor have {', '.join(building[1:])})" if building[1:] else ""), stalled_s)
                else:
                    others = [name for name in self.federates if name not in self.programs]
                    stall = Stall(others[0] if others else None, None, "every federate program asked for "
                                  "executing mode, but the federation did not start"
                                  + (": this one has not joined" if others else ""), stalled_s)
                self._declare(stall, stalled_s)
                return False
        return False

    def _run(self) -> None:
        if not self._await_executing() or self._stop.is_set():
            return
        fed = self._join_with_retries() if self.queries else None
        if fed is None:
            if not self._stop.is_set():
                self._watch_files()  # a hierarchy, or HELICS would not let us in: the files tell enough
            return
        try:
            self._watch(fed)
        except Exception as exc:  # the federation ended under us (an error elsewhere): nothing to watch
            self.error = f"stopped watching: {exc}"
        finally:
            try:
                h.helicsFederateDisconnect(fed)
            except Exception:
                pass
            free(fed)  # once, through the wrapper (its finalizer would free it again)

    def _join_with_retries(self):
        for _ in range(JOIN_ATTEMPTS):  # each gives up in about 2 s: the broker may be gone (a run just ended)
            try:
                fed = self._join()
                self.error = None
                if self._stop.is_set():  # joined as the run ended: leave at once
                    h.helicsFederateDisconnect(fed)
                    free(fed)
                    return None
                return fed
            except Exception as exc:  # the launcher sees a failed broker itself; a busy one gets another try
                self.error = f"could not join the federation: {exc}"
                if self._stop.wait(0.5):
                    return None
        return None

    def _watch(self, fed) -> None:
        queries: dict[str, object] = {}  # at most one pending query per federate
        last_seen: dict[str, float | None] = {}
        progress_at = time.monotonic()
        try:
            while not self._stop.wait(self.poll_s):
                for name in [n for n, q in queries.items() if h.helicsQueryIsCompleted(q)]:
                    query = queries.pop(name)
                    self._answered(name, h.helicsQueryExecuteComplete(query))
                    free(query)
                now = time.monotonic()
                for name, state in self.times.items():
                    if name not in queries:
                        query = queries[name] = h.helicsCreateQuery(name, "current_time")
                        h.helicsQueryExecuteAsync(query, fed)
                        if state.pending_since is None:
                            state.pending_since = now
                seen = {name: state.granted_s for name, state in self.times.items()}
                if seen != last_seen:
                    progress_at, last_seen = now, seen
                elif now - progress_at >= self._allowance():
                    self._declare(self.diagnose(now - progress_at), now - progress_at)
                    return
        finally:
            for query in queries.values():
                free(query)

    def _watch_files(self) -> None:
        """Without queries (a broker hierarchy): the federates' timing state files, and their processes' states.

        Each federate program rewrites its state file (what it does, at which slot) every couple of seconds
        while it steps; a process the kernel has stopped is seen in ``/proc``.
        """
        last, progress_at = None, time.monotonic()
        while not self._stop.wait(self.poll_s):
            infos = self._timing_states()
            seen = {name: (info or {}).get("state_slot_time_s") for name, info in infos.items()}
            now = time.monotonic()
            if seen != last:
                last, progress_at = seen, now
                continue
            if now - progress_at < self._allowance():
                continue
            active = {name: info for name, info in infos.items() if info and info.get("state") != "done"}
            working = sorted((info.get("state_slot_time_s") or 0.0, name) for name, info in active.items()
                             if info.get("state") == "working")
            if working:
                slot, name = working[0]
                stall = Stall(name, slot, "it has been working on this step since then (its timing state says "
                              "so; a broker hierarchy is watched through the timing files)", 0.0)
            else:
                slot, name = min(((info.get("state_slot_time_s") or 0.0, name) for name, info in active.items()),
                                 default=(None, None))
                stall = Stall(name, slot, "every federate is waiting for a grant; this one is the furthest behind",
                              0.0)
            stopped = self._stopped_process()
            if stopped is not None:  # its own timing state, at the slot it was stopped in
                stall = Stall(stopped.federate, (infos.get(stopped.federate) or {}).get("state_slot_time_s"),
                              stopped.reason, 0.0)
            self._declare(stall, now - progress_at)
            return

    def _answered(self, name: str, reply) -> None:
        state = self.times[name]
        state.pending_since = None
        if isinstance(reply, dict) and "granted_time" in reply:
            state.joined = True
            state.granted_s = float(reply["granted_time"])
            state.requested_s = float(reply["requested_time"])
        elif isinstance(reply, dict) and reply.get("error", {}).get("code") == 503:
            state.left = True  # disconnected: done with its run (a failure would have ended the federation)
        # else HELICS's error JSON 404: the federate has not registered yet

    # -- the verdict ----------------------------------------------------------------------------
    def diagnose(self, stalled_s: float) -> Stall:
        """Who holds the others, from the last answers (see the module docstring)."""
        now = time.monotonic()
        silent = [name for name, s in self.times.items()
                  if s.pending_since is not None and now - s.pending_since >= self.answer_s]
        answering = {name: s for name, s in self.times.items() if name not in silent and s.joined and not s.left}
        if silent and not answering and self.brokers:
            return Stall(next(iter(self.brokers)), None, "no federate answers HELICS queries: the broker does not "
                         "pass them on", stalled_s)
        if silent:
            name = min(silent, key=lambda n: self.times[n].granted_s if self.times[n].granted_s is not None else 0)
            granted = _granted(self.times[name])
            reason = "it does not answer HELICS queries: its process is stopped or frozen"
            if granted is None:  # silent before its first answer: its own last timing report (up to 2 s old)
                granted = ((self._timing_states().get(name) or {}).get("state_slot_time_s"))
                reason += " (the time is its last timing report's)"
            return Stall(name, granted, reason, stalled_s)
        absent = [name for name in self.federates if name not in answering and not self.times[name].left]
        if absent:
            return Stall(absent[0], None, "it has not joined the federation (still starting, or stuck before "
                         "it connected)", stalled_s)
        started = {name: s for name, s in answering.items() if s.granted_s > HELICS_TIME_START}
        if not started:
            return Stall(None, None, f"no federate entered executing mode (federates: {', '.join(self.federates)})",
                         stalled_s)
        if len(started) < len(answering):
            name = next(n for n in answering if n not in started)
            return Stall(name, None, "it has not entered executing mode (still building its model or "
                         "initializing)", stalled_s)
        # Granted and not asking for the next time: the federate works on its step (or is stuck in it).
        working = sorted((s.granted_s, name) for name, s in started.items() if s.requested_s <= s.granted_s + 1e-9)
        if working:
            granted, name = working[0]
            return Stall(name, granted, "it was granted this time and has not asked for its next one: it is "
                         "still working on that step", stalled_s)
        granted, name = min((s.granted_s, name) for name, s in started.items())
        return Stall(name, granted, "every federate is waiting for a grant (a time-coordination deadlock); this "
                     "one has the lowest granted time", stalled_s)


def _process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (``R``, ``S``, ``T`` for stopped, ...), None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _granted(state: FederateTime) -> float | None:
    granted = state.granted_s
    return granted if granted is not None and granted > HELICS_TIME_START else None


STALLED_EXIT_CODE = 3
"""The watchdog process's exit code when it found a stall (its verdict is the JSON line it printed)."""


def watch(argv: list[str] | None = None) -> int:
    """``python -m lec_cosim.watchdog``: watch one federation in a process of its own (see :func:`command`).

    A process, not a thread of the launcher: HELICS hands a federate that a process creates later without a
    core name any open core of that process, and an observer's core, still connecting or leaving a broken
    federation, was such a core (measured: two dozen test federates in the launching process failed to
    register on it); a process is also simply killed when the run fails. SIGTERM makes it leave the
    federation and exit 0. On a stall it prints its verdict as one JSON line and exits
    :data:`STALLED_EXIT_CODE` at once, without leaving the federation: the launcher ends a stalled federation
    and kills its processes anyway, and leaving it waits on HELICS (measured: with the broker stopped, the
    observer's disconnect and HELICS's clean-up at exit held the verdict back by 16-18 s, after a stall time of
    6 s).
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="watch a running federation for a stall")
    parser.add_argument("--spec", required=True, help="JSON: the Watchdog's parameters")
    spec = json.loads(parser.parse_args(argv).spec)

    def report(stall: Stall) -> None:
        # on a line of its own: forked by the run's server, its stderr shares the file (a line cut short before it)
        print("\n" + json.dumps(dataclasses.asdict(stall)), flush=True)
        os._exit(STALLED_EXIT_CODE)  # no clean-up: HELICS's would wait on the stalled federation

    watchdog = Watchdog(**{**spec, "run_dir": Path(spec["run_dir"])}, on_stall=report)
    signal.signal(signal.SIGTERM, lambda signum, frame: watchdog._stop.set())
    watchdog._run()
    return 0


def command(**spec) -> list[str]:
    """The command line of a watchdog process with :class:`Watchdog`'s parameters ``spec``."""
    import sys

    return [sys.executable, "-m", "lec_cosim.watchdog", "--spec", json.dumps(spec, default=str)]


def verdict(output: str) -> Stall | None:
    """The stall a watchdog process printed (None: it printed none)."""
    for line in reversed(output.splitlines()):
        try:
            return Stall(**json.loads(line))
        except (ValueError, TypeError):
            continue
    return None


if __name__ == "__main__":
    raise SystemExit(watch())
