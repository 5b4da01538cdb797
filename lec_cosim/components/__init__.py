"""Federate kinds, each declared once: its program, its typed config and its ports.

A federate kind is a model (``lec_cosim/models``), a thin program (``federates/<kind>.py``) and, here,
its declaration (``lec_cosim/components/<kind>.py``, the same name as its program):

- ``PROGRAM``: the program's module;
- ``Settings``: a pydantic model of what its config may hold besides its ports (unknown or mistyped
  settings are errors, in the compiler and again when the program starts); a kind without settings of its
  own (its model reads the scenario) leaves it out and takes :class:`Settings`;
- ``PORTS`` (or ``ports(settings)`` where they depend on the settings, as the DSO's depend on its
  grid adapter): what it publishes (``out``), reads (``in``), receives at (``endpoint``) and sends to
  (``target``), each with its HELICS type and unit. A name with ``{...}`` is a family (one port per
  member, LEC or group).

A study's wiring (``lec_cosim/studies/<kind>/wiring.py``) connects declared ports and gives each
federate its period and phase offset; :func:`check_plan` holds every plan to its kind's declaration
when the compiler writes its config. The reference page ``docs/reference/components.md`` is generated
from these declarations.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

KINDS = tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))
"""Every federate kind: each module of this package (``lec_cosim.components.<kind>``, program
``federates.<kind>``); a new kind is a new module here, no list to edit."""

SIDES = ("out", "in", "endpoint", "target")


@dataclass(frozen=True)
class Port:
    """One declared port of a federate kind."""

    name: str
    """What the program calls it; with ``{...}`` a family, e.g. ``{lec}.curtail_kw`` (``{...*}``: any text,
    slashes and dots included)."""
    side: Literal["out", "in", "endpoint", "target"]
    type: str = "double"
    """HELICS type (double, integer, vector, string as JSON); ``message`` for endpoints and targets; ``any``
    for a port that takes a value of any type (the recorder's)."""
    unit: str | None = None
    doc: str = ""
    optional: bool = False
    """A study may leave it unconnected (families always may)."""

    def matches(self, name: str) -> bool:
        if "{" not in self.name:
            return name == self.name
        pattern = re.sub(r"\\\{[^}]*\\\}", lambda m: ".+" if m.group(0).endswith("*\\}") else "[^/.]+",
                         re.escape(self.name))
        return re.fullmatch(pattern, name) is not None


UNIT_SUFFIXES = {"_pu": "pu", "_kw": "kW", "_kvar": "kvar", "_kwh": "kWh", "_mw": "MW", "_mvar": "MVAR",
                 "_mwh": "MWh", "_percent": "%", "_eur": "EUR"}
"""The units our value names end in (pandapower's convention)."""


def unit_of(name: str) -> str | None:
    """The unit a value's name states (``p_loss_kw``: kW), or None (a count, an index)."""
    return next((unit for suffix, unit in UNIT_SUFFIXES.items() if name.endswith(suffix)), None)


class Settings(BaseModel):
    """What every federate's config holds besides its kind's own settings."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)

    scenario: str
    output_dir: str
    module: str
    ports: dict = {}
    stay_for_query: bool = False
    """Answer the recorder's ``exchanges`` query after the last slot (see ``Federate.stay_for_query``)."""
    episode_control: bool = False
    """Play episodes of a learning environment (:mod:`lec_cosim.env`): windows of the scenario's slots, each
    announced on the input port ``episode`` (see ``Federate.run_episodes``)."""
    episode_period_s: float | None = None
    """With ``episode_control``: episodes start at multiples of this (the agent proxy's decision period)."""
    inject_fault_at_s: float | None = None
    inject_hang_at_s: float | None = None
    inject_exit_at_s: float | None = None
    """Fault injection for tests (``tests/test_fault_injection.py``): raise, hang or exit at the first slot from
    this time."""


def declaration(program: str) -> ModuleType:
    """The declaration of the federate kind whose program is ``program`` (``federates.<kind>``)."""
    package, _, kind = program.rpartition(".")
    if package != "federates" or kind not in KINDS:
        raise KeyError(f"{program!r} is no federate program of lec-cosim (federates.<kind>, kind one of "
                       f"{', '.join(KINDS)})")
    return importlib.import_module(f"{__name__}.{kind}")


def settings_model(program: str) -> type[BaseModel]:
    """The ``Settings`` of a kind, or the shared :class:`Settings` for a kind with none of its own."""
    return getattr(declaration(program), "Settings", Settings)


EPISODE = Port("episode", "in", "string", None, "a long-lived learning environment's episode control (JSON: "
               "episode, start_s, day_s, length_s, or stop), read at every slot", optional=True)
"""The port every kind has for a learning environment's episodes (``Federate.run``, :mod:`lec_cosim.env`)."""


def declared_ports(program: str, settings: dict | None = None) -> tuple[Port, ...]:
    kind = declaration(program)
    own = tuple(kind.ports(settings or {})) if hasattr(kind, "ports") else tuple(kind.PORTS)
    return own + (EPISODE,) if not any(p.side == "in" and p.name == EPISODE.name for p in own) else own


def read_settings(program: str, section: dict) -> BaseModel:
    """A federate's ``lec_cosim`` config section, validated by its kind's ``Settings`` (ValueError naming
    the program and the field when it does not hold)."""
    try:
        return settings_model(program).model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(settings)"
        raise ValueError(f"{program} config: {where}: {first['msg']}") from None


def check_plan(plan) -> None:
    """Hold a federate's plan (:class:`lec_cosim.wiring.FederatePlan`) to its kind's declaration: its settings
    validate, every port it connects is declared with the same type (and unit, where both give one), and
    every port its kind needs is connected. Raises ValueError naming the federate and the port.

    Not checked: units where the plan's signal gives none (most vector signals carry their unit in their
    name only), and whether a family (``{lec}.curtail_kw``) has a port for every member."""
    where = f"federate {plan.name} ({plan.module})"
    read_settings(plan.module, {"scenario": "", "output_dir": "", "module": plan.module, **plan.settings})
    declared = declared_ports(plan.module, plan.settings)
    used = {"out": {s.port: (s.type, s.unit) for s in plan.publications if s.port},
            "in": {s.port: (s.type, s.unit) for s in plan.subscriptions if s.port},
            "endpoint": {p: ("message", None) for p in plan.endpoint_ports},
            "target": {p: ("message", None) for p in plan.targets}}
    for side, ports in used.items():
        for name, (type_, unit) in ports.items():
            port = next((p for p in declared if p.side == side and p.matches(name)), None)
            if port is None:
                raise ValueError(f"{where}: {side} port {name!r} is not one its kind declares "
                                 f"(lec_cosim/components/{plan.module.rpartition('.')[2]}.py)")
            if port.type not in (type_, "any"):
                raise ValueError(f"{where}: {side} port {name!r} is {type_}, its kind declares {port.type}")
            if unit and port.unit and unit != port.unit:
                raise ValueError(f"{where}: {side} port {name!r} is in {unit}, its kind declares {port.unit}")
    for port in declared:
        if not port.optional and "{" not in port.name and port.name not in used[port.side]:
            raise ValueError(f"{where}: its {port.side} port {port.name!r} is not connected")
