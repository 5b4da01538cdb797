"""Devices at the homes: components a scenario adds behind the households' meters (EV chargers today; heat
pumps or home batteries would be the next), written once and wired into every study that has homes.

A device kind is a scenario section, a subclass of :class:`HomeDevice` listed in
:class:`lec_cosim.schema.homes.HomeDevices` (the one line a new device kind adds outside its own files), that
plans its own federate (:meth:`HomeDevice.plan`). A study with homes says where devices plug in (a
:class:`HomeSite`: its key prefix, when devices step, how many homes it has, whether its grid takes each
home's load or the total, the prices its homes see) and calls :func:`attach`, which starts each device's
federate before the DSO, adds its load to the DSO's grid adapter and its values and KPIs to the recorder.
Neither the studies nor the grid adapters, the DSO or the recorder name a device kind.

A device kind may offer a role a learning agent takes (:attr:`HomeDevice.agent_role`, named in a study's
``agents:``): it hands its decisions over (:meth:`HomeDevice.decided_by_agent`: its federate reads the agent
proxy's action, the proxy reads what the role observes) and says what the agent sees, decides and earns
(:meth:`HomeDevice.role`, the object :mod:`lec_cosim.env` plays).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from lec_cosim.schema.base import _Strict
from lec_cosim.wiring import FederatePlan, Signal


@dataclass(frozen=True)
class HomeSite:
    """Where a study's homes take devices."""

    prefix: str
    """The first part of the devices' keys (``{prefix}/{device}/...``)."""
    period_s: float
    offset_s: float
    """After the households (their profiles are the step's), before the DSO that adds the devices' load."""
    market_step_s: float
    homes: int
    """At most one device of a kind per home."""
    per_home: bool
    """The grid takes each home's load (a vector, kW, one value per home: the three-phase feeder), not the
    devices' total (MW on one busbar: the balanced community grid)."""
    price: Signal | None = None
    """A day-ahead price vector the homes can follow (one value per market step, published every 24 h from
    the start)."""
    tariff_eur_per_mwh: tuple[float, ...] | None = None
    """Or a tariff the homes know in advance: one price per market step, from the start."""

    @property
    def load_setting(self) -> str:
        """The DSO's setting that lists the loads added to its grid (see the grid adapters)."""
        return "extra_loads_kw" if self.per_home else "extra_loads_mw"


@dataclass(frozen=True)
class DevicePlan:
    """A device's federate and what :func:`attach` connects of it."""

    federate: FederatePlan
    load: str
    """Its port of the power it draws: a vector in kW per home with a site ``per_home``, else the total in MW."""
    recorded: tuple[str, ...]
    """Its ports the recorder records, one column each."""
    kpis: str
    """``"module:function"``: the device's KPIs from the recorded columns (see
    :func:`lec_cosim.adapters.extension_kpis`)."""


@dataclass(frozen=True)
class Handover:
    """A device's decisions handed to an agent (:meth:`HomeDevice.decided_by_agent`)."""

    federate: FederatePlan
    """Its federate, reading the agent's decisions."""
    action: Signal
    """What the agent proxy publishes for it (port ``{role}.action``)."""
    observed: list[Signal]
    """What the agent proxy reads for the role, besides the device's load (ports ``{section}/...``)."""


class HomeDevice(_Strict):
    """A device kind's scenario section. ``noun`` names one device in messages (``"EV"``)."""

    noun: ClassVar[str] = "device"
    agent_role: ClassVar[str | None] = None
    """The role of ``agents:`` a learning agent can take of this kind's devices, if any."""
    count: int = Field(gt=0, le=100_000, description="devices in the community, at most one per home")

    def resolved(self, name: str, base: Path, source: Path) -> HomeDevice:
        """The section with its files taken relative to the scenario file's folder ``base``, and checked;
        errors name ``source`` and the field (the section is the scenario's ``name``)."""
        return self

    def plan(self, name: str, site: HomeSite) -> DevicePlan:
        raise NotImplementedError(f"{type(self).__name__} plans no federate")

    def decided_by_agent(self, name: str, site: HomeSite, federate: FederatePlan) -> Handover:
        """Its federate (``federate``, as :meth:`plan` planned it) with an agent deciding (:attr:`agent_role`)."""
        raise NotImplementedError(f"{type(self).__name__}: no agent can decide for it")

    def role(self, name: str, scenario, **options):
        """Its role as a learning environment plays it (see
        :class:`lec_cosim.studies.community_battery.agents.CommunityBatteryRoles` for the methods); the agent proxy
        reads its load at the port ``{name}/load`` and the rest at :meth:`decided_by_agent`'s ports."""
        raise NotImplementedError(f"{type(self).__name__}: no agent can decide for it")


@dataclass(frozen=True)
class Attached:
    """The federation with the devices: every plan, and what the study's recorder is to read and be told."""

    plans: list[FederatePlan]
    recorded: list[Signal]
    recorder_settings: dict
    devices: dict[str, DevicePlan] = dataclasses.field(default_factory=dict)
    """Each device's plan, by section name."""


def attach(devices: dict[str, HomeDevice], plans: list[FederatePlan], site: HomeSite,
           dso: str = "dso") -> Attached:
    """``plans`` with each device's federate started before the DSO (after everything before it), whose grid
    adds the devices' loads; the values the recorder is to record (``recorded``) and its settings for them
    (``added_columns``, ``added_kpis``). Without devices, ``plans`` unchanged and nothing to record."""
    if not devices:
        return Attached(plans, [], {})
    federates, loads, recorded, kpis, planned = [], [], [], [], {}
    for name, device in devices.items():
        device_plan = planned[name] = device.plan(name, site)
        published = {s.port: s for s in device_plan.federate.publications}
        federates.append(device_plan.federate)
        loads.append(published[device_plan.load])
        recorded += [published[port] for port in device_plan.recorded]
        kpis.append(device_plan.kpis)
    at = next(i for i, p in enumerate(plans) if p.name == dso)
    grid = plans[at]
    grid = dataclasses.replace(grid, subscriptions=grid.subscriptions + loads,
                               settings={**grid.settings, site.load_setting: [s.port for s in loads]})
    return Attached(plans[:at] + federates + [grid] + plans[at + 1:], recorded,
                    {"added_columns": [s.port for s in recorded], "added_kpis": kpis}, planned)
