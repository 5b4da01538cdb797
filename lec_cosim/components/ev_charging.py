"""The EV-charging federate kind: its scenario section, its ports, and its federate's plan.

The model is :mod:`lec_cosim.models.ev_charging`, the program ``federates/ev_charging.py``. It is a device at
the homes (:mod:`lec_cosim.home_devices`): a study with homes wires it in with
:func:`lec_cosim.home_devices.attach`, which connects its load (``ev_p_mw``, or each home's ``ev_home_kw``)
to the DSO's grid and its values to the recorder with its KPIs (:func:`lec_cosim.models.ev_charging.ev_kpis`);
in smart mode it follows the prices the study gives its homes. A learning agent can take its decisions (the role
``ev_charging`` of a study's ``agents:``): :meth:`EVChargingConfig.decided_by_agent` rewires its federate and
:class:`EVChargingRole` is what the agent sees, decides and earns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings
from lec_cosim.home_devices import DevicePlan, Handover, HomeDevice, HomeSite
from lec_cosim.schema.base import FilePath
from lec_cosim.wiring import FederatePlan, Signal

PROGRAM = "federates.ev_charging"
KPIS = "lec_cosim.models.ev_charging:ev_kpis"


class EVChargingConfig(HomeDevice):
    """Home EV charging in the community (see :mod:`lec_cosim.models.ev_charging`)."""

    noun: ClassVar[str] = "EV"
    agent_role: ClassVar[str] = "ev_charging"

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

    def decided_by_agent(self, name: str, site: HomeSite, federate: FederatePlan) -> Handover:
        """Its federate with an agent deciding each EV's power: it reads the agent proxy's vector (kW by EV number) at
        its port ``action`` and publishes the outlook of the next step, which the proxy reads with the energy
        missing at departures and the day-ahead prices (ports ``{name}/...``)."""
        from lec_cosim.models.ev_charging import OUTLOOK_FIELDS

        if site.price is None or site.per_home:  # the role reads day-ahead prices and the fleet's total in MW
            raise ValueError(f"agents: {self.agent_role}: its agent follows a day-ahead price vector, on a grid that "
                             "takes the devices' total; this study's homes have neither")
        action = Signal(f"{site.prefix}/agent/{self.agent_role}/charging_kw", "vector", "kW",
                        port=f"{self.agent_role}.action")
        outlook = [Signal(f"{site.prefix}/ev/next_{port}", "vector", OUTLOOK_UNITS[port], port=port)
                   for port in OUTLOOK_FIELDS]
        unmet = next(s for s in federate.publications if s.port == "ev_unmet_kwh")
        federate = dataclasses.replace(
            federate, publications=federate.publications + outlook,
            subscriptions=federate.subscriptions + [dataclasses.replace(action, port="action")],
            settings={**federate.settings, "agent_decides": True})
        observed = [dataclasses.replace(s, port=f"{name}/{s.port}") for s in [unmet, *outlook]]
        return Handover(federate, action, observed + [dataclasses.replace(site.price, port=f"{name}/price")])

    def role(self, name: str, scenario, **options) -> EVChargingRole:
        return EVChargingRole(self, name, scenario, **options)


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
    publishes what the agent knows of the next step (ports ``plugged_in``, ``energy_needed_kwh``,
    ``hours_to_departure``, ``max_charge_kwh``)."""


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

UNMET_PENALTY_EUR_PER_KWH = 0.5
"""The role's penalty per kWh still missing when an EV leaves: of the order of what a kWh costs at a public fast
charger, where a driver gets what home charging left missing, and more than four times the highest NO1 day-ahead
price of 2019 (109 EUR/MWh), so that meeting a need pays at any hour of the data. An environment's
``role_options={"ev_charging": {"unmet_penalty_eur_per_kwh": ...}}`` sets another."""

SESSION_MAX_H = 48.0
"""No session lasts two days: an EV comes home on one day and leaves on the next."""


class EVChargingRole:
    """The homes' EV charging as a learning agent's role (``agents: [ev_charging]``, :mod:`lec_cosim.env`).

    Before the EV federate's slot it decides each EV's average charging power for the coming grid step; the EV
    model keeps the physics (only while plugged in, never past what the session needs). It sees what the smart
    mode knows: the step's price and the prices known ahead (the day-ahead prices, past them the smart mode's own
    forecast), and per EV whether it is plugged in during the step, what its session still needs, when it
    leaves and the most it can take in the step (the EV federate publishes them for the next step; an episode's
    first step's are the model's state at the episode's start). Its reward: minus the EVs' charging cost at the
    day-ahead price the smart mode follows, minus a penalty per kWh missing at a departure. ``proxy``: the agent
    proxy's :class:`federates.common.Federate`, whose ports ``{name}/...`` the study connects
    (:meth:`EVChargingConfig.decided_by_agent`, the load at ``{name}/load``).
    """

    def __init__(self, ev: EVChargingConfig, name: str, scenario,
                 unmet_penalty_eur_per_kwh: float = UNMET_PENALTY_EUR_PER_KWH):
        from lec_cosim.models.ev_charging import OUTLOOK_FIELDS, MobilityStatistics

        self.ev, self.name, self.count, self.charger_kw = ev, name, ev.count, float(ev.charger_kw)
        self.start, self.horizon_s = scenario.start, scenario.end_s
        self.step_s, self.market_step_s = scenario.grid_step_s, scenario.market_step_s
        self.step_h = self.step_s / 3600.0
        self.ahead = int(round(86400 / self.market_step_s))  # a day of market steps, the current one first
        self.unmet_penalty_eur_per_kwh = float(unmet_penalty_eur_per_kwh)
        self.stats = MobilityStatistics.from_folder(ev.mobility_dir)
        self._drawn: dict = {}  # the sessions of each day played
        self.action_fields = tuple((f"ev{i}_kw", "kW", f"EV {i}'s average charging power over the step; the EV "
                                    "takes it only while plugged in, at most what its session still needs")
                                   for i in range(self.count))
        time = (("hour_sin", "1", "sin(2 pi h / 24) of the time of day h of the step being decided"),
                ("hour_cos", "1", "cos(2 pi h / 24) of that time"))
        price = (("price_eur_per_mwh", "EUR/MWh", "the step's day-ahead (spot) price: what its charging costs"),)
        ahead = tuple((f"price_ahead_{j}_eur_per_mwh", "EUR/MWh", f"the price known now of the market step {j} "
                       "after the current one: the day-ahead price, past the prices published the same time of "
                       "the last day known (the smart mode's forecast); of a time of day no price is known of (a "
                       "horizon under a day), the price before it") for j in range(1, self.ahead))
        per_ev = {"plugged_in": ("1", "1 if EV {i} is plugged in during any of the step (it may arrive or leave in "
                                 "it), else 0"),
                  "energy_needed_kwh": ("kWh", "what EV {i}'s session still needs (0 if away)"),
                  "hours_to_departure": ("h", "hours from the step's start to EV {i}'s departure (0 if away)"),
                  "max_charge_kwh": ("kWh", "the most EV {i} can charge in the step: the charger for the time it is "
                                     "plugged in, at most its need")}
        self.outlook_fields = OUTLOOK_FIELDS
        self.observation_fields = time + price + ahead + tuple(
            (f"ev{i}_{field}", per_ev[field][0], per_ev[field][1].format(i=i))
            for field in OUTLOOK_FIELDS for i in range(self.count))
        self.reward = ("minus the EVs' charging cost of the step (EUR: their energy at the step's day-ahead price, "
                       "the price the smart mode follows, as the study's ev_energy_cost counts it), minus "
                       f"{self.unmet_penalty_eur_per_kwh:g} EUR per kWh still missing when an EV leaves in the step "
                       "(of the order of a public fast charger's price, where the driver gets what is missing; more "
                       "than four times the highest NO1 day-ahead price of 2019, so meeting a need pays at any "
                       "hour; environment option role_options={'ev_charging': {'unmet_penalty_eur_per_kwh': ...}}); "
                       "at the episode's last step also minus what the sessions still plugged in then need, at the "
                       "episode's mean price (info terminal_eur: they leave after the episode, and would otherwise "
                       "look free to leave uncharged)")
        self.begin(scenario.start.date())

    def begin(self, day) -> None:
        """An episode of ``day``: the EVs as a run from that day starts them, no price known yet."""
        from lec_cosim.models.ev_charging import PriceForecast, fleet_of

        start = dt.datetime.combine(day, self.start.time())
        self.first_outlook = fleet_of(self.ev, start, self.horizon_s, self.step_s, self.stats,
                                      self._drawn).outlook(0.0)
        self.prices = PriceForecast(self.market_step_s)
        self._steps = 0  # played in the episode
        self._unmet_kwh = 0.0
        self._price = 0.0
        self._episode_prices: list[float] = []

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.count), np.full(self.count, self.charger_kw)

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        most = {"plugged_in": 1.0, "energy_needed_kwh": float(self.ev.battery_kwh),
                "hours_to_departure": SESSION_MAX_H, "max_charge_kwh": self.charger_kw * self.step_h}
        low = np.concatenate([[-1.0, -1.0], np.full(self.ahead, -np.inf),
                              np.zeros(self.count * len(self.outlook_fields))])
        high = np.concatenate([[1.0, 1.0], np.full(self.ahead, np.inf),
                               *(np.full(self.count, most[f]) for f in self.outlook_fields)])
        return low, high

    def default_action(self) -> np.ndarray:
        """What it decides when the agent plays another role: every charger at full power (uncontrolled)."""
        return np.full(self.count, self.charger_kw)

    def outputs(self) -> dict:
        return {}

    def _learn_prices(self, proxy, t_s: float) -> None:
        """The day-ahead prices as the EV federate learns them: a day's vector when it arrives, within the episode
        (a long-lived environment's market publishes whole days, a run's ends its vector at the horizon)."""
        if proxy.port_updated(f"{self.name}/price"):
            self.prices.add_day(t_s, proxy.read_port(f"{self.name}/price"), until_s=self.horizon_s)

    def observe(self, proxy, period: int, first: bool) -> np.ndarray:
        t = period * self.step_s  # from the episode's start
        hours = (self.start.hour + self.start.minute / 60 + t / 3600) % 24
        angle = 2 * math.pi * hours / 24
        self._learn_prices(proxy, t)
        now = int(t // self.market_step_s)
        prices = [self.prices(t)]
        for j in range(1, self.ahead):  # a time of day no price is known of (a horizon under a day): the one before
            known = self.prices((now + j) * self.market_step_s)
            prices.append(known if math.isfinite(known) else prices[-1])
        evs = (self.first_outlook.T.ravel() if first else
               np.concatenate([proxy.read_port(f"{self.name}/{port}") for port in self.outlook_fields]))
        return np.concatenate([[math.sin(angle), math.cos(angle)], prices, evs])

    def before_step(self, proxy) -> None:
        """The price of the step about to be played (for its reward)."""
        t = self._steps * self.step_s
        self._learn_prices(proxy, t)
        self._price = self.prices(t)
        self._episode_prices.append(self._price)
        self._steps += 1

    def money_eur(self, proxy) -> float:
        """The step's charging cost and the penalty of the energy missing at its departures (called once a step)."""
        unmet = proxy.read_port(f"{self.name}/ev_unmet_kwh")  # so far in the episode
        missing, self._unmet_kwh = unmet - self._unmet_kwh, unmet
        return (-proxy.read_port(f"{self.name}/load") * self._price * self.step_h
                - self.unmet_penalty_eur_per_kwh * missing)

    def terminal_eur(self, proxy) -> float:
        """At the episode's end: what the sessions still plugged in need, at the episode's mean price."""
        needed_kwh = float(np.sum(proxy.read_port(f"{self.name}/energy_needed_kwh")))
        return -needed_kwh / 1000.0 * float(np.mean(self._episode_prices))

    def info(self, proxy) -> dict:
        return {"ev_p_mw": float(proxy.read_port(f"{self.name}/load")), "ev_unmet_kwh": self._unmet_kwh}
