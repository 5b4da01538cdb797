"""The EV-charging federate kind: its scenario section, its ports, and its federate's plan.

The model is :mod:`lec_cosim.models.ev_charging`, the program ``federates/ev_charging.py``. It is a device at
the homes (:mod:`lec_cosim.home_devices`): a study with homes wires it in with
:func:`lec_cosim.home_devices.attach`, which connects its load (``ev_p_mw``, or each home's ``ev_home_kw``)
to the DSO's grid and its values to the recorder with its KPIs (:func:`lec_cosim.models.ev_charging.ev_kpis`);
in smart mode it follows the prices the study gives its homes. A study that hands the charging decisions to an
agent (``agents: [ev_charging]``) rewires it with :func:`decided_by_agent`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings
from lec_cosim.home_devices import DevicePlan, HomeDevice, HomeSite
from lec_cosim.schema.base import FilePath
from lec_cosim.wiring import FederatePlan, Signal

PROGRAM = "federates.ev_charging"
KPIS = "lec_cosim.models.ev_charging:ev_kpis"


class EVChargingConfig(HomeDevice):
    """Home EV charging in the community (see :mod:`lec_cosim.models.ev_charging`)."""

    noun: ClassVar[str] = "EV"

    count: int = Field(gt=0, le=100_000, description="EVs in the community, one per household that has one")
    mode: Literal["uncontrolled", "smart"] = Field(description=(
        "uncontrolled: charge from arrival until the need is met; smart: charge in the cheapest steps before "
        "departure that meet the need, re-planned every step over the prices known (the study's day-ahead "
        "prices or its tariff)"))
    charger_kw: float = Field(7.2, gt=0, le=50, description="home charger power (3.7 kW single-phase, 7.2 or 11 kW)")
    battery_kwh: float = Field(60.0, gt=0, le=250, description="usable battery: the most a session can need")
    consumption_kwh_per_km: float = Field(0.18, gt=0.05, le=0.5, description=(
        "energy per km driven, from the socket (a compact BEV: about 0.15-0.20 kWh/km)"))
    mobility_dir: FilePath = Field(description=(
        "folder of the trip statistics (data/ev: DepartureDestinationTrip_Worker.csv and DistanceDurationTrip.csv "
        "from emobpy, after Mobilität in Deutschland 2017)"))
    seed: int = Field(1, ge=0, description="seed of the sessions drawn (one stream per EV)")

    def resolved(self, name: str, base: Path, source: Path) -> EVChargingConfig:
        """The section with its folder taken from the scenario file's, and checked."""
        from lec_cosim.models.ev_charging import MobilityStatistics
        from lec_cosim.schema.base import ScenarioError

        folder = (base / self.mobility_dir).resolve()
        for file in ("DepartureDestinationTrip_Worker.csv", "DistanceDurationTrip.csv"):
            if not (folder / file).is_file():
                raise ScenarioError(f"{source}: {name}.mobility_dir: no {file} in {folder}")
        try:
            MobilityStatistics.from_folder(folder)
        except (ValueError, OSError) as exc:
            raise ScenarioError(f"{source}: {name}.mobility_dir: {exc}") from None
        return self.model_copy(update={"mobility_dir": folder})

    def plan(self, name: str, site: HomeSite) -> DevicePlan:
        """The EV federate at the study's homes, every grid step at the site's offset. In smart mode it follows
        the site's day-ahead price vector (its ``price`` port) or else its tariff. At a site whose grid takes
        each home's load it also publishes each home's EV power (EV ``i`` charges at home ``i * homes // count``)."""
        subscriptions, tariff = [], None
        if self.mode == "smart" and site.price is not None:
            subscriptions = [Signal(site.price.key, site.price.type, site.price.unit, port="price")]
        elif self.mode == "smart":
            if site.tariff_eur_per_mwh is None:
                raise ValueError(f"{name}: smart EV charging needs prices to follow: a day-ahead price vector "
                                 "or a tariff")
            tariff = list(site.tariff_eur_per_mwh)
        settings = {"ev": self.model_dump(mode="json"), "market_step_s": site.market_step_s,
                    **({"tariff_eur_per_mwh": tariff} if tariff is not None else {}),
                    **({"homes": site.homes} if site.per_home else {})}
        federate = FederatePlan("ev_charging", PROGRAM, site.period_s, site.offset_s,
                                signals(site.prefix, site.per_home), subscriptions, settings=settings)
        return DevicePlan(federate, "ev_home_kw" if site.per_home else "ev_p_mw",
                          ("ev_p_mw", "ev_unmet_kwh", "ev_sessions_ended"), KPIS)


class Settings(_Settings):
    """Its federate's config: the scenario's ``ev`` section and where its prices come from."""

    ev: EVChargingConfig
    market_step_s: float = Field(gt=0)
    tariff_eur_per_mwh: list[float] | None = None
    """Smart mode on a tariff known in advance: one price per market step of the horizon."""
    homes: int | None = Field(None, gt=0)
    """Publish each of this many homes' EV power (``ev_home_kw``; EV ``i`` charges at home
    ``i * homes // count``)."""
    agent_decides: bool = False
    """An agent decides each EV's power for every step (read at the port ``action``, in place of the mode); it
    publishes what the agent knows of the next step (the ``outlook`` ports)."""


PORTS = (
    Port("price", "in", "vector", "EUR/MWh", "smart mode: the day-ahead prices it follows", optional=True),
    Port("ev_p_mw", "out", "double", "MW", "the fleet's average charging power over the step"),
    Port("ev_unmet_kwh", "out", "double", "kWh", "energy still missing at the departures so far"),
    Port("ev_sessions_ended", "out", "integer", None, "charging sessions ended so far"),
    Port("ev_home_kw", "out", "vector", "kW", "with homes: each home's EV power", optional=True),
    Port("action", "in", "vector", "kW", "with agent_decides: each EV's average power over the step (by EV number), "
         "as an agent decided it; clipped to what the EV can take", optional=True),
    Port("plugged_in", "out", "vector", None, "with agent_decides: per EV, 1 if plugged in during any of the next "
         "step, else 0", optional=True),
    Port("energy_needed_kwh", "out", "vector", "kWh", "with agent_decides: per EV, what its session still needs at "
         "the next step's start (0 if away)", optional=True),
    Port("hours_to_departure", "out", "vector", "h", "with agent_decides: per EV, hours from the next step's start "
         "to its departure (0 if away)", optional=True),
    Port("max_charge_kwh", "out", "vector", "kWh", "with agent_decides: per EV, the most it can charge in the next "
         "step (the charger for the time plugged in, at most its need)", optional=True),
)


def signals(prefix: str, per_home: bool = False) -> list[Signal]:
    """What it publishes: the fleet's average power per step, the energy still missing at departures so far,
    the sessions ended so far, and with ``per_home`` each home's EV power (kW, one value per home)."""
    return [Signal(f"{prefix}/ev/p_mw", unit="MW", port="ev_p_mw"),
            Signal(f"{prefix}/ev/unmet_kwh", unit="kWh", port="ev_unmet_kwh"),
            Signal(f"{prefix}/ev/sessions_ended", "integer", port="ev_sessions_ended"),
            *([Signal(f"{prefix}/ev/home_kw", "vector", port="ev_home_kw")] if per_home else [])]



OUTLOOK_UNITS = {"plugged_in": None, "energy_needed_kwh": "kWh", "hours_to_departure": "h", "max_charge_kwh": "kWh"}
"""The unit of each outlook port (:data:`lec_cosim.models.ev_charging.OUTLOOK_FIELDS`)."""


def outlook_signals(prefix: str) -> list[Signal]:
    """What the federate publishes for an agent: per EV, what it will know of the next step."""
    from lec_cosim.models.ev_charging import OUTLOOK_FIELDS

    return [Signal(f"{prefix}/ev/next_{name}", "vector", OUTLOOK_UNITS[name], port=name) for name in OUTLOOK_FIELDS]


def decided_by_agent(federate: FederatePlan, prefix: str, action: Signal) -> FederatePlan:
    """The EV federate's plan with an agent deciding its EVs' power: it reads ``action`` (the agent proxy's
    vector, kW by EV number) at its port ``action`` and publishes the outlook of the next step."""
    import dataclasses

    return dataclasses.replace(
        federate, publications=federate.publications + outlook_signals(prefix),
        subscriptions=federate.subscriptions + [dataclasses.replace(action, port="action")],
        settings={**federate.settings, "agent_decides": True})
