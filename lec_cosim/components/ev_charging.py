"""The EV-charging federate kind: its scenario section, its ports, and how a study wires it in.

The model is :mod:`lec_cosim.models.ev_charging`, the program ``federates/ev_charging.py``. A study adds it
with :func:`plan` and connects its ports: ``ev_p_mw`` to the grid (the DSO's grid adapter adds it to the
load) and to the recorder with ``ev_unmet_kwh`` and ``ev_sessions_ended``; in smart mode its ``price`` input
to a day-ahead price vector. Its KPIs come through the recorder's ``kpi_extensions``
(:func:`lec_cosim.models.ev_charging.ev_kpis`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings
from lec_cosim.schema.base import FilePath, _Strict
from lec_cosim.wiring import FederatePlan, Signal

PROGRAM = "federates.ev_charging"
KPIS = "lec_cosim.models.ev_charging:ev_kpis"


class EVChargingConfig(_Strict):
    """Home EV charging in the community (see :mod:`lec_cosim.models.ev_charging`)."""

    count: int = Field(gt=0, le=100_000, description="EVs in the community, one per household that has one")
    mode: Literal["uncontrolled", "smart"] = Field(description=(
        "uncontrolled: charge from arrival until the need is met; smart: charge in the cheapest steps before "
        "departure that meet the need, re-planned every step over the day-ahead prices known"))
    charger_kw: float = Field(7.2, gt=0, le=50, description="home charger power (3.7 kW single-phase, 7.2 or 11 kW)")
    battery_kwh: float = Field(60.0, gt=0, le=250, description="usable battery: the most a session can need")
    consumption_kwh_per_km: float = Field(0.18, gt=0.05, le=0.5, description=(
        "energy per km driven, from the socket (a compact BEV: about 0.15-0.20 kWh/km)"))
    mobility_dir: FilePath = Field(description=(
        "folder of the trip statistics (data/ev: DepartureDestinationTrip_Worker.csv and DistanceDurationTrip.csv "
        "from emobpy, after Mobilität in Deutschland 2017)"))
    seed: int = Field(1, ge=0, description="seed of the sessions drawn (one stream per EV)")


class Settings(_Settings):
    """Its federate's config: the scenario's ``ev`` section and where its prices come from."""

    ev: EVChargingConfig
    market_step_s: float = Field(gt=0)
    tariff_eur_per_mwh: list[float] | None = None
    """Smart mode on a tariff known in advance: one price per market step of the horizon."""
    homes: int | None = Field(None, gt=0)
    """Publish each of this many homes' EV power (``ev_home_kw``; EV ``i`` charges at home
    ``i * homes // count``)."""


PORTS = (
    Port("price", "in", "vector", "EUR/MWh", "smart mode: the day-ahead prices it follows", optional=True),
    Port("ev_p_mw", "out", "double", "MW", "the fleet's average charging power over the step"),
    Port("ev_unmet_kwh", "out", "double", "kWh", "energy still missing at the departures so far"),
    Port("ev_sessions_ended", "out", "integer", None, "charging sessions ended so far"),
    Port("ev_home_kw", "out", "vector", "kW", "with homes: each home's EV power", optional=True),
)


def resolve(config: EVChargingConfig, base, source) -> EVChargingConfig:
    """The section with its folder taken from the scenario file's, and checked."""
    from lec_cosim.models.ev_charging import MobilityStatistics
    from lec_cosim.schema.base import ScenarioError

    folder = (base / config.mobility_dir).resolve()
    for name in ("DepartureDestinationTrip_Worker.csv", "DistanceDurationTrip.csv"):
        if not (folder / name).is_file():
            raise ScenarioError(f"{source}: ev.mobility_dir: no {name} in {folder}")
    try:
        MobilityStatistics.from_folder(folder)
    except (ValueError, OSError) as exc:
        raise ScenarioError(f"{source}: ev.mobility_dir: {exc}") from None
    return config.model_copy(update={"mobility_dir": folder})


def signals(prefix: str, per_home: bool = False) -> list[Signal]:
    """What it publishes: the fleet's average power per step, the energy still missing at departures so far,
    the sessions ended so far, and with ``per_home`` each home's EV power (kW, one value per home)."""
    return [Signal(f"{prefix}/ev/p_mw", unit="MW", port="ev_p_mw"),
            Signal(f"{prefix}/ev/unmet_kwh", unit="kWh", port="ev_unmet_kwh"),
            Signal(f"{prefix}/ev/sessions_ended", "integer", port="ev_sessions_ended"),
            *([Signal(f"{prefix}/ev/home_kw", "vector", port="ev_home_kw")] if per_home else [])]


def plan(config: EVChargingConfig, period_s: float, offset_s: float, prefix: str, market_step_s: float,
         price: Signal | None = None, tariff_eur_per_mwh: list[float] | None = None,
         homes: int | None = None) -> FederatePlan:
    """The EV federate: every grid step at ``offset_s``. In smart mode it follows ``price`` (a day-ahead price
    vector, one value per market step, published every 24 h from the start, read as its ``price`` port) or a tariff
    known in advance (``tariff_eur_per_mwh``, one value per market step of the horizon). With ``homes`` it
    also publishes each of that many homes' EV power (EV ``i`` charges at home ``i * homes // count``)."""
    subscriptions = []
    if config.mode == "smart" and price is not None:
        subscriptions = [Signal(price.key, price.type, price.unit, port="price")]
    elif config.mode == "smart" and tariff_eur_per_mwh is None:
        raise ValueError("smart EV charging needs prices to follow: a day-ahead price vector or a tariff")
    if homes is not None and config.count > homes:
        raise ValueError(f"ev.count: {config.count} EVs for {homes} homes; at most one EV per home")
    settings = {"ev": config.model_dump(mode="json"), "market_step_s": market_step_s,
                **({"tariff_eur_per_mwh": list(tariff_eur_per_mwh)} if tariff_eur_per_mwh is not None else {}),
                **({"homes": homes} if homes is not None else {})}
    return FederatePlan("ev_charging", PROGRAM, period_s, offset_s, signals(prefix, homes is not None),
                        subscriptions, settings=settings)
