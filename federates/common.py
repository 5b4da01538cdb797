"""What every federate program shares: read its config, join the federation, step, fail loudly.

A federate is a thin shell: it reads its HELICS config (generated from the scenario), builds its
model from the scenario, and at each granted time reads inputs, calls the model and publishes.

Command line of every federate program (:func:`main`)::

    python -m federates.KIND --config CONFIG.json [--local-interface tcp://ADDRESS]
                             [--broker-address tcp://HOST:PORT] [--debug]

``--local-interface`` and ``--broker-address`` replace the ``--local_interface`` and ``--broker_address``
of the config's ``coreInitString`` (the rest of it, the broker key too, is kept) before the federate joins:
where its core listens and announces itself to the broker, and where it finds the broker. They exist for
addresses known only when the process starts, as a pod's in Kubernetes (``tcp://$(POD_IP)`` in a
container's arguments; :mod:`lec_cosim.kubernetes`), where a mounted config cannot hold them. ADDRESS and
HOST are an IPv4 address (not 0.0.0.0: a core listening on every interface announces loopback) or a host
name, e.g. a Service's DNS name. A bad value is one line, ``error: NAME: --option: why``, and exit code 2,
before the federate joins.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

import helics as h
import numpy as np
from helics.capi import HelicsException, ffi, lib

from federates.topology import ExchangeLog, answer_queries, stop_answering
from lec_cosim import json_codec
from lec_cosim.components import read_settings
from lec_cosim.forkserver import DEBUG_ENVIRONMENT
from lec_cosim.launch import FINISHED
from lec_cosim.models.errors import InfeasibleInput
from lec_cosim.runs import EXIT_INPUT_ERROR
from lec_cosim.scenario import Scenario, load_scenario
from lec_cosim.schema.base import HostAddress
from lec_cosim.timing import TimingLog

REQUEST_MARGIN_S = 1e-7
CORE_LEAVE_MS = 2000
"""How long a federate's closing waits for its own core to leave the broker (then the process ends all the same)."""
_GRANTS = [0]
_GRANTS_LOCK = threading.Lock()


def grants_so_far() -> int:
    """Time requests this process's federates have made so far, all together: what bounds an in-process
    federation's use of HELICS's global time coordinator (lec_cosim.inproc)."""
    return _GRANTS[0]
INJECTED_HANGS_END = threading.Event()
"""Fault injection: an injected hang (``inject_hang_at_s``) waits for this, which nothing sets in a run; a
test of an in-process federation sets it to let the hung thread go once it has seen what the hang does."""
STAY_PAST_END_S = 86400.0
"""How far past the horizon a federate that stays for the recorder's query asks to be."""
QUERY_POLL_S = 0.05

_ERROR = ffi.typeof("HelicsError *")
_DOUBLES = ffi.typeof("double[]")
_CHARS = ffi.typeof("char[]")
_INT = ffi.typeof("int *")


def _raise_on(err) -> None:
    if err.error_code != 0:
        raise HelicsException(f"[{err.error_code}] {ffi.string(err.message).decode()}")


# Values are read and published through HELICS's C functions directly, as helics-python's own wrappers do but
# without their per-call costs that dominated a step of a small federation: the vector getter builds a list of
# its whole 1024-slot spare buffer before slicing it, and each wrapper looks its C function up and initialises a
# new error record. A zeroed record is an initialised one (error_code 0, no message). Same doubles, same order.
def _publish_vector(pub, values) -> None:
    err = ffi.new(_ERROR)
    lib.helicsPublicationPublishVector(pub.handle, ffi.from_buffer(_DOUBLES, values), len(values), err)
    _raise_on(err)


def _publish_double(pub, value: float) -> None:
    err = ffi.new(_ERROR)
    lib.helicsPublicationPublishDouble(pub.handle, value, err)
    _raise_on(err)


def _input_vector(ipt) -> list[float]:
    err = ffi.new(_ERROR)
    room = lib.helicsInputGetVectorSize(ipt.handle)
    data, size = ffi.new(_DOUBLES, room + 1), ffi.new(_INT)
    lib.helicsInputGetVector(ipt.handle, data, room + 1, size, err)
    _raise_on(err)
    if size[0] > room:  # more than HELICS said it holds: the vector may be cut short
        raise HelicsException(f"[-4] a vector input of {room} values gave {size[0]} or more")
    return ffi.unpack(data, size[0])


def _input_array(ipt) -> np.ndarray:
    """:func:`_input_vector` as a new float array, read into it: the same doubles, without the list (which numpy
    then converts element by element, four times the read itself for a vector of a few hundred)."""
    err = ffi.new(_ERROR)
    room = lib.helicsInputGetVectorSize(ipt.handle)
    values, size = np.empty(room + 1), ffi.new(_INT)
    lib.helicsInputGetVector(ipt.handle, ffi.from_buffer(_DOUBLES, values), room + 1, size, err)
    _raise_on(err)
    if size[0] > room:
        raise HelicsException(f"[-4] a vector input of {room} values gave {size[0]} or more")
    return values[:size[0]]


def _input_string(ipt) -> str:
    # helics-python's string getter asks cffi for a new array type "char[<size>]" for every size it meets, and cffi
    # parses each new type with pycparser: ~10 ms a read, every hour of a year (the JSON values' sizes differ).
    err = ffi.new(_ERROR)
    room = lib.helicsInputGetStringSize(ipt.handle) + 1024  # the wrapper's spare room
    text, size = ffi.new(_CHARS, room), ffi.new(_INT)
    lib.helicsInputGetString(ipt.handle, text, room, size, err)
    _raise_on(err)
    return ffi.string(text, maxlen=size[0]).decode()


def _input_double(ipt) -> float:
    err = ffi.new(_ERROR)
    value = lib.helicsInputGetDouble(ipt.handle, err)
    _raise_on(err)
    return value


_C_NAMES: dict[str, bytes] = {}


def _c_name(name: str) -> bytes:
    """An endpoint's name as the C string HELICS takes (encoded once per name)."""
    encoded = _C_NAMES.get(name)
    if encoded is None:
        encoded = _C_NAMES[name] = name.encode()
    return encoded


# Messages are sent and read through the C functions directly too: helics-python's wrappers make a cffi string
# of each argument, look each function up, and wrap every message received in an object with a finalizer
# (a weak reference and a closure a message). The message read is freed at once, as its finalizer would.
def _take_message(message) -> tuple[str, dict]:
    """``(source, payload)`` of a message HELICS handed over; the message is freed."""
    try:
        source = ffi.string(lib.helicsMessageGetSource(message)).decode()
        text = ffi.string(lib.helicsMessageGetString(message), lib.helicsMessageGetByteCount(message))
    finally:
        lib.helicsMessageFree(message)
    return source, json_codec.loads(text)


def free(handle) -> None:
    """Free a HELICS federate, core, broker, federate info or query once: through its Python wrapper's finalizer,
    which then never frees it again. (``helicsFederateFree`` and the finalizer would both free it: harmless at a
    process's exit, a segmentation fault when the garbage collector runs the second free while another federation
    of the process is starting, as in-process federations do.)"""
    finalizer = getattr(handle, "_finalizer", None)
    if finalizer is not None:
        finalizer()
    elif isinstance(handle, h.HelicsBroker):
        h.helicsBrokerFree(handle)
    elif isinstance(handle, h.HelicsFederateInfo):
        h.helicsFederateInfoFree(handle)
    elif isinstance(handle, h.HelicsQuery):
        h.helicsQueryFree(handle)
    else:
        h.helicsFederateFree(handle)


class ValueInterface:
    """Publish and read values by key; needs ``fed``, ``pubs`` and ``subs`` set by the subclass."""

    fed: object
    pubs: dict
    subs: dict
    endpoints: dict = {}
    exchange_log: ExchangeLog | None = None
    """Messages sent, counted for the ``exchanges`` query (federates of a run have one)."""
    answering = False
    """A query callback is registered (see ``Federate.stay_for_query``)."""
    values_published = 0
    """``publish*`` calls so far (``Federate.run`` records them per slot)."""
    messages_sent = 0
    """Messages sent so far through :meth:`send`."""

    def publish(self, key: str, value) -> None:
        pub = self.pubs[key]
        if getattr(value, "ndim", None) == 1:  # a numpy vector: its doubles as they are, without a float() each
            _publish_vector(pub, np.ascontiguousarray(value, dtype=float))
        elif isinstance(value, (list, tuple)) or hasattr(value, "__len__"):
            _publish_vector(pub, np.array([float(v) for v in value], dtype=float))
        else:
            _publish_double(pub, float(value))
        self.values_published += 1

    def publish_json(self, key: str, payload) -> None:
        # the standard library's text: a published value is read by other tools too (messages: json_codec)
        h.helicsPublicationPublishString(self.pubs[key], json.dumps(payload))
        self.values_published += 1

    def json_value(self, key: str):
        """The last JSON string published on a subscribed key (None if nothing arrived yet)."""
        text = _input_string(self.subs[key])
        return json_codec.loads(text) if text else None

    def publish_int(self, key: str, value: int) -> None:
        h.helicsPublicationPublishInteger(self.pubs[key], int(value))
        self.values_published += 1

    def integer(self, key: str) -> int:
        return h.helicsInputGetInteger(self.subs[key])

    def value(self, key: str) -> float:
        return _input_double(self.subs[key])

    def vector(self, key: str) -> list[float]:
        return _input_vector(self.subs[key])

    def vector_array(self, key: str) -> np.ndarray:
        """:meth:`vector` as a float array."""
        return _input_array(self.subs[key])

    def updated(self, key: str) -> bool:
        return h.helicsInputIsUpdated(self.subs[key])

    def send(self, endpoint: str, destination: str, payload: dict) -> None:
        """Send ``payload`` as a JSON message from one of our endpoints to ``destination``."""
        err = ffi.new(_ERROR)
        lib.helicsEndpointSendStringTo(self.endpoints[endpoint].handle, json_codec.dumps(payload),
                                       _c_name(destination), err)
        _raise_on(err)
        self.messages_sent += 1
        if self.exchange_log is not None:
            self.exchange_log.record(endpoint, destination)

    def receive(self, endpoint: str) -> list[tuple[str, dict]]:
        """All pending messages of an endpoint as ``(source, payload)``, in arrival order."""
        handle = self.endpoints[endpoint].handle
        messages = []
        while lib.helicsEndpointHasMessage(handle):
            messages.append(_take_message(lib.helicsEndpointGetMessage(handle)))
        return messages

    def discard_messages(self, before_s: float) -> int:
        """Drop every pending message, all sent before ``before_s``: what an episode cut short left undelivered
        (``run_episodes``). A message sent at or after ``before_s`` (the next episode's) is an error."""
        dropped = 0
        for name, ep in self.endpoints.items():
            while h.helicsEndpointHasMessage(ep):
                message = h.helicsEndpointGetMessage(ep)
                sent_s = h.helicsMessageGetTime(message)
                if sent_s >= before_s - REQUEST_MARGIN_S:
                    raise RuntimeError(f"{name}: a message of {sent_s:g} s, in the episode from {before_s:g} s, "
                                       "pending at the episode's announcement")
                dropped += 1
        return dropped

    def request_slot(self, wanted_s: float) -> float:
        """Request the grant slot at ``wanted_s`` (step start plus phase offset); returns the grant.

        Executing mode starts at time 0: a slot at 0 needs no request. Otherwise ask a hair
        below: HELICS rounds seconds to whole nanoseconds, and t + offset in floating point can
        land a nanosecond past the slot, which would skip a whole period. Uninterruptible with
        period and offset, HELICS grants exactly the next slot.
        """
        if wanted_s <= 0:
            return 0.0
        with _GRANTS_LOCK:
            _GRANTS[0] += 1
        return h.helicsFederateRequestTime(self.fed, wanted_s - REQUEST_MARGIN_S)

    own_core = False
    """The federate is its core's only one: :meth:`close` waits for the core to leave too. Read from its config's
    ``--federates=1``, which is what a core waits for before it starts, not a promise that it serves no other: it
    holds as the project writes its configs (a process per federate; in one process a core named for each federate,
    ``lec_cosim.federation.write_federation``, or one core for all with ``--federates`` their number)."""

    def close(self) -> None:
        # HELICS's own ending, run at the process's exit (helicsCloseLibrary), waits in steps of 100 ms for cores
        # still winding down; a core of this federate alone is waited for here, as long as it takes (~1 ms), and freed
        core = h.helicsFederateGetCore(self.fed) if self.own_core else None
        h.helicsFederateDisconnect(self.fed)
        if core is not None:
            h.helicsCoreWaitForDisconnect(core, CORE_LEAVE_MS)
            free(core)
        free(self.fed)
        if self.answering:
            stop_answering(self.fed)


class Inputs:
    """A federate's inputs by port name, for a study's adapter or record: no key, no HELICS in sight.

    ``read(port)`` is the value last received on an input port (``read_array(port)`` the same as a float
    array), ``updated(port)`` whether it changed since it was last read, ``receive(port)`` the messages waiting at an endpoint port as ``(source,
    payload)``; ``ports`` the input ports' names. Values are read only when asked for.
    """

    def __init__(self, fed: "Federate"):
        self._fed = fed
        self.ports: list[str] = list(fed.ports.get("in", {}))

    def read(self, port: str):
        return self._fed.read_port(port)

    def read_array(self, port: str) -> np.ndarray:
        """``read(port)`` as a float array: a vector's values (read straight into it), a number as one value."""
        return self._fed.read_port_array(port)

    def updated(self, port: str) -> bool:
        return self._fed.port_updated(port)

    def receive(self, port: str) -> list[tuple[str, dict]]:
        return self._fed.receive(self._fed.endpoint(port))


class FederationStopped(RuntimeError):
    """The federation was stopped under this federate (another one failed): not this federate's fault."""


class Progress:
    """A recorder's progress lines: simulated time, step, speed and ETA (the launcher shows the last one).

    Speed (simulated seconds per wall second) and ETA count from the first step, after start-up.
    """

    def __init__(self, start, n_steps: int, every_s: float = 2.0):
        self.start, self.n_steps, self.every_s = start, int(n_steps), float(every_s)
        self._first = self._last = time.perf_counter()

    def step(self, k: int, t_s: float) -> None:
        """Call at grid step ``k`` (from 0), simulated ``t_s`` seconds from the start."""
        now = time.perf_counter()
        if k == 0:
            self._first = now
        if now - self._last < self.every_s and k != self.n_steps - 1:
            return
        self._last = now
        stepping = max(now - self._first, 1e-9)
        speed = f"{t_s / stepping:.0f}x" if k else "?"
        eta = f"{stepping / k * (self.n_steps - k - 1):.0f} s" if k else "?"
        stamp = (self.start + dt.timedelta(seconds=t_s)).isoformat()
        print(f"progress {stamp} step {k + 1}/{self.n_steps} speed {speed} eta {eta}", flush=True)


class Federate(ValueInterface):
    """A HELICS combination federate created from a generated JSON config.

    Attributes
    ----------
    name : str
    scenario : Scenario
    output_dir : pathlib.Path
    offset_s, period_s : float
        Phase offset and period of this federate's grants.
    timing : lec_cosim.timing.TimingLog
        Where :meth:`run` records each slot's wall time (``output_dir/timing/<name>.csv`` and ``.json``).
    """

    def __init__(self, config_path: str | Path, core_options: dict[str, str] | None = None):
        """``core_options``: HELICS core options (``local_interface``, ``broker_address``) to put in place of the
        config's own in its ``coreInitString`` (:func:`checked_core_options`)."""
        created = time.time()
        config_path = Path(config_path)
        self.config = json.loads(config_path.read_text())
        if core_options:
            self.config["coreInitString"] = with_core_options(self.config["coreInitString"], core_options)
        settings = self.config.get("lec_cosim", {})
        self.options = read_settings(settings.get("module", ""), settings)
        """Its settings, typed: its kind's ``Settings`` (``lec_cosim/components/<kind>.py``) validated them (before
        it joins the federation: a bad config never holds the others back)."""
        self.scenario: Scenario = load_scenario(self.options.scenario)
        self.output_dir = Path(self.options.output_dir)
        self.name = self.config["name"]
        self.offset_s = float(self.config.get("offset", 0.0))
        self.period_s = float(self.config["period"])
        # the config's text, not its path: HELICS 3.6.1 takes a path with a blank or a quote for a configure
        # string ("invalid arguments in configure string")
        self.fed = h.helicsCreateCombinationFederateFromConfig(json.dumps(self.config))
        self.own_core = _federates_per_core(self.config.get("coreInitString", "")) == 1
        self.pubs = {
            h.helicsPublicationGetName(p): p
            for p in (h.helicsFederateGetPublicationByIndex(self.fed, i)
                      for i in range(h.helicsFederateGetPublicationCount(self.fed)))
        }
        self.subs = {
            h.helicsInputGetTarget(s): s
            for s in (h.helicsFederateGetInputByIndex(self.fed, i)
                      for i in range(h.helicsFederateGetInputCount(self.fed)))
        }
        self.endpoints = {
            h.helicsEndpointGetName(e): e
            for e in (h.helicsFederateGetEndpointByIndex(self.fed, i)
                      for i in range(h.helicsFederateGetEndpointCount(self.fed)))
        }
        self.settings = settings
        self.ports: dict[str, dict[str, dict]] = settings.get("ports", {})
        self.slot_s: float | None = None  # the slot being worked on (named in an error)
        # Every federate keeps the log of the messages it sent; with ``stay_for_query`` it answers
        # the query "exchanges" with it at the end of its run (see ``run``).
        self.exchange_log = ExchangeLog(self.name, endpoints=self.endpoints, publications=self.pubs,
                                        subscriptions=self.subs)
        self.timing = TimingLog(self.output_dir, self.name, created_unix_s=created)

    def key_of(self, port: str) -> str:
        """The HELICS key of one of this federate's ports (its config maps each port to a key)."""
        for side in ("out", "in"):
            if port in self.ports.get(side, {}):
                return self.ports[side][port]["key"]
        raise KeyError(f"federate {self.name} has no port {port!r} in its config "
                       f"(ports: {', '.join(sorted({**self.ports.get('out', {}), **self.ports.get('in', {})}))})")

    def endpoint(self, port: str) -> str:
        """The name of one of this federate's endpoints, by port."""
        return self._port("endpoints", port)

    def target(self, port: str, member: str | None = None) -> str:
        """Where a port sends: its one endpoint, or with ``member`` that member's endpoint."""
        target = self._port("targets", port)
        if member is None:
            if isinstance(target, dict):
                raise KeyError(f"federate {self.name}: port {port!r} sends to one of several members; name one")
            return target
        if not isinstance(target, dict) or member not in target:
            raise KeyError(f"federate {self.name}: port {port!r} has no member {member!r}")
        return target[member]

    def _port(self, side: str, port: str):
        if port not in self.ports.get(side, {}):
            raise KeyError(f"federate {self.name} has no {side} port {port!r} in its config "
                           f"({', '.join(sorted(self.ports.get(side, {}))) or 'none'})")
        return self.ports[side][port]

    def publish_port(self, port: str, value) -> None:
        """Publish on an output port as its HELICS type (double, integer, vector, string as JSON)."""
        signal = self.ports["out"][port]
        if signal["type"] == "integer":
            self.publish_int(signal["key"], value)
        elif signal["type"] == "string":
            self.publish_json(signal["key"], value)
        else:
            self.publish(signal["key"], value)

    def port_updated(self, port: str) -> bool:
        return self.updated(self.ports["in"][port]["key"])

    def read_port(self, port: str):
        """The value last received on an input port, read as its HELICS type (double, integer, vector)."""
        signal = self.ports["in"][port]
        if signal["type"] == "integer":
            return self.integer(signal["key"])
        if signal["type"] == "vector":
            return self.vector(signal["key"])
        if signal["type"] == "string":
            return self.json_value(signal["key"])
        return self.value(signal["key"])

    def read_port_array(self, port: str) -> np.ndarray:
        """:meth:`read_port` as a float array: a vector's values, a double or an integer as one value."""
        signal = self.ports["in"][port]
        if signal["type"] == "vector":
            return self.vector_array(signal["key"])
        return np.array([self.read_port(port)], dtype=float)

    def inputs(self) -> "Inputs":
        """What a model may see of this federate: its ports, read by name (see :class:`Inputs`)."""
        return Inputs(self)

    def step_times(self) -> list[float]:
        """Start of each of this federate's steps within the horizon, in seconds."""
        n = int(round(self.scenario.end_s / self.period_s))
        return [k * self.period_s for k in range(n)]

    def run(self, step: Callable[[int, float], None]) -> None:
        """Enter executing mode and call ``step(k, t)`` at each step start ``t`` (plus offset).

        An object with a ``slots`` attribute (a list of ``(time_s, callable)``) instead of a step
        function is run at those exact times: ``callable(k)`` with ``k`` the slot's index.

        Every slot's wall time waiting for its grant and working, and the messages and values it
        sent, go to :attr:`timing` as the run goes (:mod:`lec_cosim.timing`), also when it fails.
        """
        slots = getattr(step, "slots", None)
        if slots is None:
            slots = [(t + self.offset_s, (lambda k, t=t: step(k, t))) for t in self.step_times()]
        if self.options.episode_control:
            return self.run_episodes(list(slots), getattr(step, "reset", None))
        ready = time.time()
        self.timing.ready()
        h.helicsFederateEnterExecutingMode(self.fed)
        entered = time.perf_counter()
        timing = self.timing
        timing.start(ready_unix_s=ready, entered_perf_s=entered, period_s=self.period_s, offset_s=self.offset_s,
                     slots_planned=len(slots) if hasattr(slots, "__len__") else None)
        waiting_s = acting_s = 0.0
        n_slots = 0
        # fault injection for tests (tests/test_fault_injection.py): fail at the first slot from this time
        fail_at_s = self.options.inject_fault_at_s
        hang_at_s, quit_at_s = self.options.inject_hang_at_s, self.options.inject_exit_at_s
        failed = True
        try:
            for k, (wanted, action) in enumerate(slots):
                sent, published = self.messages_sent, self.values_published
                asked = time.perf_counter()
                timing.state = ("waiting", wanted, asked)
                granted = self.request_slot(wanted)
                started = time.perf_counter()
                if granted > self.scenario.end_s + STAY_PAST_END_S:
                    # HELICS grants its end of time when the federation is being torn down
                    raise FederationStopped(f"granted HELICS's end of time at the {wanted:g} s slot: another "
                                            "federate ended the federation")
                if abs(granted - wanted) > 1e-6:
                    raise RuntimeError(f"granted time {granted} s, requested {wanted} s")
                if fail_at_s is not None and granted >= fail_at_s:
                    raise RuntimeError(f"injected fault at {granted:g} s")
                if hang_at_s is not None and granted >= hang_at_s:  # a solver that never returns
                    INJECTED_HANGS_END.wait()
                    raise RuntimeError(f"injected hang at {granted:g} s, let go")
                if quit_at_s is not None and granted >= quit_at_s:  # sys.exit(0) deep in a model
                    raise SystemExit(0)
                self.slot_s = wanted
                timing.state = ("working", wanted, started)
                try:
                    action(k)
                finally:
                    done = time.perf_counter()
                    timing.add(k, wanted, started, started - asked, done - started, self.messages_sent - sent,
                               self.values_published - published)
                waiting_s += started - asked
                acting_s += done - started
                n_slots += 1
            failed = False
        finally:
            timing.close(failed=failed, stepping_s=time.perf_counter() - entered)
        # Where the wall time went, in the federate's log: the first thing to look at when a run is slow.
        print(f"{self.name}: {n_slots} slots, {acting_s:.1f} s working, {waiting_s:.1f} s waiting for grants, "
              f"{time.perf_counter() - entered:.1f} s stepping, {time.process_time():.1f} s CPU in all", flush=True)
        if self.options.stay_for_query:
            self.stay_for_query()

    def run_episodes(self, slots: list, reset: Callable[[], None] | None) -> None:
        """Play the episodes of a long-lived learning environment (:mod:`lec_cosim.env`) with these slots.

        The federation's time runs on from episode to episode; nothing is rebuilt. An episode plays a window of
        the scenario's slots: those from ``day_s`` (a day's start, seconds from the scenario's start) for
        ``length_s``, slot time t played at federation time ``start_s + t - day_s``. The agent proxy announces
        each episode on the input port ``episode`` (JSON ``{"episode", "start_s", "day_s", "length_s"}``, or
        ``{"stop": true}``), published before ``start_s``, which is a multiple of the federation's longest period
        (settings ``episode_period_s``). A federate reads it at every slot, so an episode cut short ends at
        once; until the new window's first slot it does nothing. When an episode is announced it drops the messages
        an episode cut short left pending, and ``reset()`` (the step's, if it has one: the DSO's record of
        violated buses, the battery's state of charge) rewinds its state. Between episodes a federate waits at its
        first slot time of every ``episode_period_s``.
        """
        import bisect

        times = [t for t, _ in slots]
        first_of_day = times[0] % 86400.0  # every day's first slot is at this time of day (slots repeat daily)
        period_s = float(self.options.episode_period_s)
        fail_at_s, hang_at_s = self.options.inject_fault_at_s, self.options.inject_hang_at_s  # in the episode's day
        self.timing.ready()
        h.helicsFederateEnterExecutingMode(self.fed)
        timing = self.timing
        timing.start(ready_unix_s=time.time(), entered_perf_s=time.perf_counter(), period_s=self.period_s,
                     offset_s=self.offset_s, slots_planned=None)
        failed = True
        start_s = day_s = length_s = i = None
        playing = False
        wanted = first_of_day
        try:
            while True:
                asked = time.perf_counter()
                granted = self.request_slot(wanted)
                started = time.perf_counter()
                if abs(granted - wanted) > 1e-6:
                    raise FederationStopped(f"granted {granted:g} s for the {wanted:g} s slot: the federation ended")
                if self.port_updated("episode"):
                    control = self.read_port("episode")
                    if control.get("stop"):
                        break
                    start_s, day_s, length_s = (float(control[k]) for k in ("start_s", "day_s", "length_s"))
                    i = bisect.bisect_left(times, day_s - 1e-9)
                    first = start_s + (times[i] - day_s if i < len(times) else 0.0)
                    if day_s + length_s > self.scenario.end_s + 1e-6:
                        raise RuntimeError(f"episode {control.get('episode')} from {day_s:g} s for {length_s:g} s "
                                           f"runs past the scenario's end ({self.scenario.end_s:g} s)")
                    if i == len(times) or granted > first + 1e-6:
                        raise RuntimeError(f"episode {control.get('episode')} from {day_s:g} s announced for "
                                           f"{start_s:g} s, too late for this federate (at {granted:g} s)")
                    self.discard_messages(before_s=start_s)  # an episode cut short leaves its messages
                    if reset is not None:
                        reset()
                    playing = True
                    if granted < first - 1e-6:  # the episode starts at the next episode_period_s
                        wanted = first
                        continue
                if not playing:  # between episodes: look again one episode_period_s on
                    wanted = granted + period_s
                    continue
                self.slot_s = times[i]
                if fail_at_s is not None and times[i] >= fail_at_s:  # fault injection, as in run()
                    raise RuntimeError(f"injected fault at {times[i]:g} s")
                if hang_at_s is not None and times[i] >= hang_at_s:
                    INJECTED_HANGS_END.wait()
                    raise RuntimeError(f"injected hang at {times[i]:g} s, let go")
                sent, published = self.messages_sent, self.values_published
                try:
                    slots[i][1](i)
                finally:
                    done = time.perf_counter()
                    timing.add(i, times[i], started, started - asked, done - started, self.messages_sent - sent,
                               self.values_published - published)
                i += 1
                if i < len(times) and times[i] < day_s + length_s:
                    wanted = start_s + times[i] - day_s
                else:  # the window is played: wait for the next episode
                    playing = False
                    wanted = start_s + length_s + first_of_day
            failed = False
        finally:
            timing.close(failed=failed, stepping_s=None)

    def stay_for_query(self, timeout_s: float = 60.0) -> None:
        """After the last slot: answer the query ``exchanges`` until someone has asked it once.

        The recorder asks every federate at its last step. A federate done with its slots first
        requests a time far past the horizon, so that it holds back no one (a federate between
        time requests could hold back the recorder's last grant for ever); once granted, it
        keeps processing HELICS communications (which answer queries) until asked. Granted and
        idle, a federate did not answer (measured: HELICS' 504 "query timeout"). The callback is
        registered only now: while one is registered, a federate waiting for a grant uses much
        more CPU (measured: the DSO's steps took 2.4 times as long with every federate
        answering from the start).
        """
        answer_queries(self.fed, self.exchange_log)
        self.answering = True
        h.helicsFederateRequestTime(self.fed, self.scenario.end_s + STAY_PAST_END_S)
        waited = 0.0
        while not self.exchange_log.answered.is_set() and waited < timeout_s:
            h.helicsFederateProcessCommunications(self.fed, QUERY_POLL_S)
            waited += QUERY_POLL_S


def run_federate(config_path: str | Path, build: Callable[[Federate], Callable[[int, float], None]], *,
                 debug: bool = False, core_options: dict[str, str] | None = None,
                 on_error: Callable[[str], None] | None = None) -> str | None:
    """Run one federate: create it from its config, ``build(fed)`` its step, run it to its end and close it.

    ``core_options`` replace the config's own in its ``coreInitString`` (:func:`checked_core_options`).
    ``on_error`` is called with the error line before the federation hears of it: a caller that keeps the
    errors of several federates (:mod:`lec_cosim.inproc`) so has the origin's before any federate it stops.

    Returns None when it finished, or its error as one line (already printed as ``error: ...`` and reported to
    the federation as a global error, so that every federate stops). It never exits the process: a process
    runs one federate through :func:`main`; :mod:`lec_cosim.inproc` runs several, as threads of one process.
    """
    fed = None
    try:
        fed = Federate(config_path, core_options)
        step = build(fed)
        fed.run(step)
        finish = getattr(step, "finish", None)
        if finish is not None:
            finish()
        fed.close()
        # the launcher takes an exit without this line for a federate that quit before its end
        print(f"{FINISHED} {fed.name}", flush=True)
        return None
    except Exception as exc:  # one line for the user, the whole federation stops
        name = fed.name if fed is not None else Path(config_path).stem
        # the launcher tells the user to change the scenario (exit code 2) on an "input:" error
        kind = f"input: {exc.field}" if isinstance(exc, InfeasibleInput) else type(exc).__name__
        message = f"{name}: {kind}: {exc}".replace("\n", " ")
        if fed is not None and fed.slot_s is not None and not isinstance(exc, FederationStopped):
            at = fed.scenario.start + dt.timedelta(seconds=round(fed.slot_s))
            message += f" [simulated time {at:%Y-%m-%d %H:%M}]"
        if debug or os.environ.get(DEBUG_ENVIRONMENT) == "1":
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr, flush=True)
        if on_error is not None:
            on_error(message)
        if fed is not None:
            try:
                h.helicsFederateGlobalError(fed.fed, 1, message)
            except Exception:
                pass
        return message


def _core_address(option: str, value: str, with_port: bool) -> str:
    """``value`` of a command-line ``option``, checked to be ``tcp://HOST`` (``tcp://HOST:PORT`` ``with_port``)."""
    from pydantic import TypeAdapter, ValidationError

    form = "tcp://HOST:PORT" if with_port else "tcp://ADDRESS"
    if not value.startswith("tcp://"):
        raise ValueError(f"{option}: {value!r} is not {form} (the federates' cores are ZMQ cores, over TCP)")
    host = value.removeprefix("tcp://")
    if with_port:
        host, _, port = host.rpartition(":")
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"{option}: {value!r} is not {form}: give the broker's port (1 to 65535)")
    elif ":" in host:
        raise ValueError(f"{option}: {value!r} is not {form}: no port (the broker hands the core its ports)")
    if host in ("0.0.0.0", "*"):
        raise ValueError(f"{option}: {value!r}: give the one address peers reach it at (on every interface a core "
                         "announces loopback)")
    try:
        TypeAdapter(HostAddress).validate_python(host)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        if "$(" in host:  # what Kubernetes leaves of $(VAR) when the container has no such variable
            why += "; a Kubernetes $(VARIABLE) left as it was: is it in the container's env?"
        raise ValueError(f"{option}: {why}") from None
    return value


def checked_core_options(local_interface: str | None = None, broker_address: str | None = None) -> dict[str, str]:
    """The HELICS core options of a federate's command line, checked: ``local_interface`` (``tcp://ADDRESS``,
    where its core listens and what it announces) and ``broker_address`` (``tcp://HOST:PORT``), those given.

    Raises
    ------
    ValueError
        A value that is not of that form, or an address no peer can reach (0.0.0.0), naming its option.
    """
    options = {}
    if local_interface is not None:
        options["local_interface"] = _core_address("--local-interface", local_interface, with_port=False)
    if broker_address is not None:
        options["broker_address"] = _core_address("--broker-address", broker_address, with_port=True)
    return options


def _federates_per_core(core_init_string: str) -> int:
    """The ``--federates=N`` of a ``coreInitString`` (HELICS's default: 1)."""
    counts = [part.split("=", 1)[1] for part in core_init_string.split() if part.startswith("--federates=")]
    try:
        return int(counts[-1]) if counts else 1
    except ValueError:
        return 0  # not ours to judge: HELICS refuses it


def with_core_options(core_init_string: str, options: dict[str, str]) -> str:
    """A ``coreInitString`` with each of ``options`` (name -> value) as ``--name=value`` in place of its own."""
    kept = [part for part in core_init_string.split() if part.removeprefix("--").split("=", 1)[0] not in options]
    return " ".join([*kept, *(f"--{name}={value}" for name, value in options.items())])


def main(build: Callable[[Federate], Callable[[int, float], None]], description: str) -> None:
    """Entry point of a federate program: ``build(fed)`` returns the per-step function.

    Any exception is reported to the federation as a global error (so all federates stop) and
    printed as one line; the process exits with 1. A bad ``--local-interface`` or ``--broker-address``
    is one line too, before the federate joins; the process exits with 2.
    """
    warnings.simplefilter("ignore")
    # a federate process draws nothing: pandapower's plotting and pyplot load only if used (half a second of CPU)
    from lec_cosim.deferred_imports import defer_plotting

    defer_plotting()
    # BLAS on one thread: a federate is one process among several on the machine's cores, and OpenBLAS's own
    # threads only compete with the other federates for them (measured on 2 cores: the fixed-point flow's small
    # products 15 x slower, its build 1.4 s instead of 0.06 s). The variables for the libraries loaded later
    # (scipy's own OpenBLAS reads its variable when pandapower or a solver first imports it), the limit for those
    # loaded already (numpy's).
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="generated HELICS JSON config")
    parser.add_argument("--local-interface", metavar="tcp://ADDRESS",
                        help="where the federate's core listens and what it announces to the broker, in place of "
                             "the config's --local_interface (e.g. a pod's tcp://$(POD_IP))")
    parser.add_argument("--broker-address", metavar="tcp://HOST:PORT",
                        help="where the broker is, in place of the config's --broker_address (e.g. a Service's "
                             "tcp://NAME:PORT)")
    parser.add_argument("--debug", action="store_true", help="print tracebacks")
    args = parser.parse_args()
    try:
        options = checked_core_options(args.local_interface, args.broker_address)
    except ValueError as exc:
        print(f"error: {Path(args.config).stem}: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_INPUT_ERROR)
    if run_federate(args.config, frozen_after(build), debug=args.debug, core_options=options) is not None:
        sys.exit(1)


def frozen_after(build: Callable[[Federate], Callable[[int, float], None]]):
    """``build``, then every object the process holds so far taken out of the garbage collector's passes
    (``gc.freeze``): the modules, the scenario and the model a federate process builds at its start live as long
    as it does, and a full pass over them (~90 k objects) each time the steps' short-lived lists and dicts (a day's
    orders: ~10 k at once) trigger one cost the local market's year ~2 s of CPU in each of its market and
    participants (~0.25 s after; measured 2026-12-07, the year's CPU of each 8.1-8.6 s before, 4.9-5.1 s after).
    The steps make almost no cyclic garbage (~400 objects the year), and what they make is still collected; the
    start-up's own (~10 objects found unreachable, 2026-12-07) stays frozen with it rather than costing every federate
    a full collection (~0.08 s) on the run's start-up. For a
    federate process only (:func:`main`): in-process federations (:mod:`lec_cosim.inproc`) leave their process's
    collector alone."""

    def built(fed: Federate):
        step = build(fed)
        gc.freeze()
        return step

    return built
