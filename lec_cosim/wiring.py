"""What a federation is made of, before it is written anywhere: federates, their values and their messages.

A study's ``plan(scenario)`` returns a :class:`FederatePlan` per federate: the federate program (its
module), its time (period and phase offset, seconds), what it publishes and subscribes to
(:class:`Signal`: key, HELICS type, unit), its message endpoints and its own settings. The
generator (:mod:`lec_cosim.federation`) turns the plans into HELICS configs and ``runner.json``; the
interface listing (:mod:`lec_cosim.interface`) reads them directly.

Every federate is ``uninterruptible`` (granted exactly the times it requests), requests its real
last step (never MAXTIME), and sets ``terminate_on_error`` so that one failure ends them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

GRANT_TIMEOUT_S = 30.0
"""HELICS's grant timeout: a federate waiting this long for a grant logs HELICS's diagnostics."""


@dataclass(frozen=True)
class Signal:
    """A published value: HELICS key, type and unit."""

    key: str
    type: str = "double"
    unit: str | None = None
    port: str | None = None
    """What the federate calls this value (its config maps it to the key): a federate never spells a key."""

    def publication(self) -> dict:
        pub = {"key": self.key, "type": self.type, "global": True}
        if self.unit:
            pub["unit"] = self.unit
        return pub

    def subscription(self) -> dict:
        sub = {"key": self.key, "type": self.type}
        if self.unit:
            sub["unit"] = self.unit
        return sub


@dataclass(frozen=True)
class FederatePlan:
    """One federate of a federation: its program, time, values, messages and settings."""

    name: str
    module: str
    period_s: float
    offset_s: float
    publications: list[Signal] = field(default_factory=list)
    subscriptions: list[Signal] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    endpoint_ports: dict[str, str] = field(default_factory=dict)
    """Port name -> one of ``endpoints``: the federate sends from and receives at its endpoints by port."""
    targets: dict[str, str | dict[str, str]] = field(default_factory=dict)
    """Port name -> where the federate sends: one endpoint, or a map (member -> endpoint) for one-to-many."""
    acts_at: tuple[tuple[float, float], ...] | None = None
    """When it really acts, if not at every ``period_s`` from ``offset_s``: (period, offset) pairs, e.g. orders
    every hour at +1 ms and dispatch every grid step at +3 ms. Such a federate is given HELICS a finer
    ``period_s`` and requests only its slots; the interface listing shows this true schedule."""

    acts_note: str = ""
    """What ``acts_at`` cannot say (slots that depend on the run, such as negotiation iterations)."""

    def schedule(self) -> tuple[tuple[float, float], ...]:
        """(period, offset) pairs at which the federate acts: its true schedule."""
        return self.acts_at if self.acts_at is not None else ((self.period_s, self.offset_s),)


def federate_config(federate: FederatePlan, core_init_string: str, run_dir: Path, core_type: str = "zmq") -> dict:
    """HELICS JSON config of one federate; our own settings live under ``lec_cosim``.

    ``core_type`` is ``zmq`` for a federate in a process of its own, ``inproc`` for one of the threads of an
    in-process federation (:mod:`lec_cosim.inproc`)."""
    return {
        "name": federate.name,
        "coreType": core_type,
        "coreInitString": core_init_string,
        "period": federate.period_s,
        "offset": federate.offset_s,
        "uninterruptible": True,
        "terminate_on_error": True,
        "grant_timeout": GRANT_TIMEOUT_S,
        "ignore_time_mismatch_warnings": True,  # we request 100 ns before each slot on purpose
        "publications": [s.publication() for s in federate.publications],
        "subscriptions": [s.subscription() for s in federate.subscriptions],
        "endpoints": [endpoint_config(e, federate) for e in federate.endpoints],
        "lec_cosim": {
            "scenario": str(Path(run_dir) / "scenario.json"),
            "output_dir": str(run_dir),
            "module": federate.module,
            **({"ports": ports} if (ports := _ports(federate)) else {}),
            **federate.settings,
        },
    }


def destinations(federate: FederatePlan) -> list[str]:
    """Every endpoint the federate sends to: the endpoints its ``targets`` name, sorted."""
    named = set()
    for target in federate.targets.values():
        named.update(target.values() if isinstance(target, dict) else (target,))
    return sorted(named)


def endpoint_config(name: str, federate: FederatePlan) -> dict:
    """A targeted endpoint: it may send only to the federate's declared destinations (HELICS throws on any
    other), and HELICS makes only those receivers wait for it.

    Why: HELICS lets an untargeted endpoint send anywhere, so every federate with an endpoint waits for every
    other one's grants; the local market's DSO then worked in turn with the participants and the market
    although nobody reads it but the recorder. Targeted, the time dependencies are the declared links (as for
    values), and a federate nobody waits for works on the other core while the rest go on."""
    return {"name": name, "global": True, "targeted": True, "destination_targets": destinations(federate)}


def _ports(federate: FederatePlan) -> dict:
    """The federate's ports: what it publishes (``out``) and reads (``in``), by port name, with key and type."""
    ports = {}
    for side, signals in (("out", federate.publications), ("in", federate.subscriptions)):
        named = {s.port: {"key": s.key, "type": s.type} for s in signals if s.port}
        twice = sorted({s.port for s in signals if s.port and sum(t.port == s.port for t in signals) > 1})
        assert not twice, f"{federate.name}: {side} ports named twice: {twice}"
        if named:
            ports[side] = named
    if federate.endpoint_ports:
        unknown = set(federate.endpoint_ports.values()) - set(federate.endpoints)
        assert not unknown, f"{federate.name}: endpoint ports name endpoints it does not have: {unknown}"
        ports["endpoints"] = dict(federate.endpoint_ports)
    if federate.targets:
        ports["targets"] = dict(federate.targets)
    return ports


EPISODE_KEY = "lec_cosim/episode"


def with_episode_control(plans: list[FederatePlan], publisher: str,
                         without: tuple[str, ...] = ()) -> list[FederatePlan]:
    """The plans of a long-lived learning environment's federation (:mod:`lec_cosim.env`): ``publisher`` (its
    agent proxy) publishes the episode control, every other federate reads it at its port ``episode`` and plays
    episodes (settings ``episode_control``); the federates ``without`` are left out, with any target that
    sends to their endpoints (the recorder: episodes keep no results files)."""
    from dataclasses import replace

    gone = {e for p in plans if p.name in without for e in p.endpoints}
    # episodes start where every federate can be granted: at multiples of all periods (in whole microseconds)
    align_s = math.lcm(*(round(float(p.period_s) * 1e6) for p in plans if p.name not in without)) / 1e6
    out = []
    for p in plans:
        if p.name in without:
            continue
        targets = {port: t for port, t in p.targets.items()
                   if not (t in gone if isinstance(t, str) else set(t.values()) & gone)}
        if p.name == publisher:
            out.append(replace(p, publications=[*p.publications, Signal(EPISODE_KEY, "string", port="episode_control")],
                               targets=targets, settings={**p.settings, "episode_period_s": align_s}))
        else:
            out.append(replace(p, subscriptions=[*p.subscriptions, Signal(EPISODE_KEY, "string", port="episode")],
                               targets=targets, settings={**p.settings, "episode_control": True,
                                                          "episode_period_s": align_s}))
    return out
