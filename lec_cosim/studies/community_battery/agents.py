"""The community battery's roles an agent can take: the battery's set-point (``agents: [lec_ems]``) and the homes'
EV charging (``agents: [ev_charging]``), alone or together.

What the agents see and decide, for :mod:`lec_cosim.env`.

**lec_ems.** In the LEC_EMS's place (its slot, +1 ms after the market) it decides the battery's set-point for
the coming grid step, knowing the step's prices (the market has just published them) and what the last step
gave (the households' load and PV, the battery's state of charge; with EVs, their load). Its reward is the
community's energy money in that step, as the study's ``energy_cost`` counts it: the import at the spot price,
the export credited at the export price (the households and the battery; the EVs' cost is theirs). The LP the
LEC_EMS solves knows the whole day's prices and profiles; the agent does not (no forecast is observed): the
regret against the LP is what a learner gives up.

**ev_charging.** At the same slot (before the EV federate, +2.5 ms) it decides each EV's average charging power
for the coming grid step; the EV model keeps the physics (only while plugged in, never past what the session
needs: :mod:`lec_cosim.models.ev_charging`). It sees what the smart mode knows: the step's price and the prices
known ahead (the day-ahead prices, past them the same forecast the smart mode makes), and per EV whether it is
plugged in during the step, what its session still needs, when it leaves and the most it can take in the step
(the EV federate publishes these for the next step; for an episode's first step they are the model's state at
the episode's start). Its reward is minus the EVs' charging cost at the spot price the smart mode follows, minus
a penalty per kWh missing at a departure.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from lec_cosim.models.ev_charging import OUTLOOK_FIELDS, MobilityStatistics, PriceForecast, fleet_of

ACTION_FIELDS = (
    ("setpoint_mw", "MW", "the battery's power for the step (+ charges, - discharges), within its rating; the "
     "battery's own controller keeps the state of charge in its window"),
)
OBSERVATION_FIELDS = (
    ("hour_sin", "1", "sin(2 pi h / 24) of the time of day h of the step being decided"),
    ("hour_cos", "1", "cos(2 pi h / 24) of that time"),
    ("price_eur_per_mwh", "EUR/MWh", "the step's import (spot) price"),
    ("export_price_eur_per_mwh", "EUR/MWh", "the step's export price"),
    ("soc_mwh", "MWh", "the battery's state of charge"),
    ("last_load_mw", "MW", "the households' load in the last step"),
    ("last_pv_mw", "MW", "their PV output in the last step"),
)
EV_LOAD_FIELD = ("last_ev_p_mw", "MW", "the EVs' charging load in the last step (a scenario with EVs)")
REWARD = ("minus the community's energy cost of the step (EUR): import at the spot price, export credited at the "
          "export price, as the study's energy_cost; at the episode's last step also the battery's change of state "
          "of charge over the episode at the episode's mean import price, a gain times the one-way efficiency, a "
          "loss divided by it (info terminal_eur; the LEC_EMS's LP must end the day where it began, so a battery "
          "drained by the end would otherwise look like free energy). This study has no DN impact: dn_penalty_eur "
          "does not apply")


class LecEmsRole:
    """The LEC_EMS role, read through the agent proxy's input ports (``proxy``: its
    :class:`federates.common.Federate`)."""

    reward = REWARD
    action_fields = ACTION_FIELDS

    def __init__(self, scenario):
        self.scenario = scenario
        self.with_evs = scenario.ev is not None
        self.observation_fields = OBSERVATION_FIELDS + ((EV_LOAD_FIELD,) if self.with_evs else ())
        b = scenario.battery
        self.power_mw, self.capacity_mwh = float(b.power_mw), float(b.capacity_mwh)
        self.efficiency = float(b.efficiency)  # round trip
        self.soc_initial_mwh = float(b.soc_initial * b.capacity_mwh)
        self.step_h = scenario.ems_step_s / 3600.0
        self._prices = (0.0, 0.0)  # the step being played: its prices, for its reward
        self._episode_prices: list[float] = []

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-self.power_mw]), np.array([self.power_mw])

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([-1.0, -1.0, -np.inf, -np.inf, 0.0, 0.0, 0.0] + [0.0] * self.with_evs)
        high = np.array([1.0, 1.0, np.inf, np.inf, self.capacity_mwh, np.inf, np.inf] + [np.inf] * self.with_evs)
        return low, high

    def default_action(self) -> np.ndarray:
        """What it decides when the agent plays another role: the battery idle."""
        return np.zeros(1)

    def outputs(self) -> dict:
        """What the LEC_EMS publishes besides its set-point: its planned state of charge (an agent has no plan)."""
        return {"planned_soc_mwh": math.nan}

    def observe(self, proxy, period: int, first: bool) -> np.ndarray:
        start = self.scenario.start
        hours = (start.hour + start.minute / 60 + period * self.step_h) % 24
        angle = 2 * math.pi * hours / 24
        prices = (proxy.read_port("market/price"), proxy.read_port("market/export_price"))
        if first:
            soc, load, pv = self.soc_initial_mwh, 0.0, 0.0
            ev = [0.0] * self.with_evs
            self._episode_prices = []
        else:
            soc, load, pv = (proxy.read_port(f"households/{p}") for p in ("soc_mwh", "load_p_mw", "pv_p_mw"))
            ev = [proxy.read_port("ev/ev_p_mw")] * self.with_evs
        return np.array([math.sin(angle), math.cos(angle), *prices, soc, load, pv, *ev])

    def before_step(self, proxy) -> None:
        """The prices of the step about to be played (the market publishes the next step's before the reward)."""
        self._prices = (proxy.read_port("market/price"), proxy.read_port("market/export_price"))
        self._episode_prices.append(self._prices[0])

    def terminal_eur(self, proxy) -> float:
        """At the episode's end: the state of charge gained (or lost) since its start, at its mean import price
        and through the battery's one-way efficiency: energy gained can deliver only its share, energy lost
        costs more to put back. So ending anywhere but the start is never worth more than what the LP (which
        must end there) could also have done."""
        change = proxy.read_port("households/soc_mwh") - self.soc_initial_mwh
        one_way = math.sqrt(self.efficiency)
        price = float(np.mean(self._episode_prices))
        return change * price * one_way if change > 0 else change * price / one_way

    def money_eur(self, proxy) -> float:
        net = sum(proxy.read_port(f"households/{p}") * sign
                  for p, sign in (("load_p_mw", 1), ("pv_p_mw", -1), ("battery_p_mw", 1)))
        price, export_price = self._prices
        return -(price * max(net, 0.0) - export_price * max(-net, 0.0)) * self.step_h


UNMET_PENALTY_EUR_PER_KWH = 0.5
"""The EV role's penalty per kWh still missing when an EV leaves: of the order of what a kWh costs at a public fast
charger, where a driver gets what home charging left missing, and more than four times the highest NO1 day-ahead
price of 2019 (109 EUR/MWh), so that meeting a need pays at any hour of the data. An environment's
``role_options={"ev_unmet_penalty_eur_per_kwh": ...}`` sets another."""


class EVChargingRole:
    """The homes' EV charging as one role: a power per EV, read through the agent proxy's input ports."""

    def __init__(self, scenario, unmet_penalty_eur_per_kwh: float = UNMET_PENALTY_EUR_PER_KWH):
        ev = scenario.ev
        self.ev, self.count, self.charger_kw = ev, ev.count, float(ev.charger_kw)
        self.start, self.horizon_s = scenario.start, scenario.end_s
        self.step_s, self.market_step_s = scenario.grid_step_s, scenario.market_step_s
        self.step_h = self.step_s / 3600.0
        self.ahead = int(round(86400 / self.market_step_s))  # a day of market steps, the current one first
        self.unmet_penalty_eur_per_kwh = float(unmet_penalty_eur_per_kwh)
        self.stats = MobilityStatistics.from_folder(ev.mobility_dir)
        self.action_fields = tuple((f"ev{i}_kw", "kW", f"EV {i}'s average charging power over the step; the EV "
                                    "takes it only while plugged in, at most what its session still needs")
                                   for i in range(self.count))
        price = (("price_eur_per_mwh", "EUR/MWh", "the step's spot price (what its charging costs)"),)
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
        fields = tuple((f"ev{i}_{name}", unit, doc.format(i=i)) for name in OUTLOOK_FIELDS
                       for i in range(self.count) for unit, doc in (per_ev[name],))
        self.observation_fields = TIME_FIELDS + price + ahead + fields
        self.reward = ("minus the EVs' charging cost of the step (EUR: their energy at the step's spot price, the "
                       "price the smart mode follows, as the study's ev_energy_cost counts it), minus "
                       f"{self.unmet_penalty_eur_per_kwh:g} EUR per kWh still missing when an EV leaves in the step "
                       "(of the order of a public fast charger's price, where the driver gets what is missing; more "
                       "than four times the highest NO1 day-ahead price of 2019: meeting a need pays at any hour; "
                       "environment option role_options ev_unmet_penalty_eur_per_kwh); at the episode's last step "
                       "also minus what the sessions still plugged in then need, at the episode's mean spot price "
                       "(info terminal_eur: they leave after the episode, and would otherwise look free to leave "
                       "uncharged)")
        self.begin(scenario.start.date())

    def begin(self, day) -> None:
        """An episode of ``day``: the EVs as a run from that day starts them, no price known yet."""
        start = dt.datetime.combine(day, self.start.time())
        self.first_outlook = fleet_of(self.ev, start, self.horizon_s, self.step_s, self.stats).outlook(0.0)
        self.prices = PriceForecast(self.market_step_s)
        self._unmet_kwh = 0.0
        self._price = 0.0
        self._episode_prices: list[float] = []

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.count), np.full(self.count, self.charger_kw)

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        n, prices = self.count, self.ahead
        most = {"plugged_in": 1.0, "energy_needed_kwh": float(self.ev.battery_kwh),
                "hours_to_departure": SESSION_MAX_H, "max_charge_kwh": self.charger_kw * self.step_h}
        low = np.concatenate([[-1.0, -1.0], np.full(prices, -np.inf), np.zeros(n * len(OUTLOOK_FIELDS))])
        high = np.concatenate([[1.0, 1.0], np.full(prices, np.inf), *(np.full(n, most[f]) for f in OUTLOOK_FIELDS)])
        return low, high

    def default_action(self) -> np.ndarray:
        """What it decides when the agent plays another role: every charger at full power (uncontrolled)."""
        return np.full(self.count, self.charger_kw)

    def outputs(self) -> dict:
        return {}

    def observe(self, proxy, period: int, first: bool) -> np.ndarray:
        t = period * self.step_s  # from the episode's start
        hours = (self.start.hour + self.start.minute / 60 + t / 3600) % 24
        angle = 2 * math.pi * hours / 24
        if proxy.port_updated("market/day_ahead_price"):  # as the EV federate learns them
            self.prices.add_day(t, proxy.read_port("market/day_ahead_price"))
        now, price = int(t // self.market_step_s), proxy.read_port("market/price")
        ahead = [price]
        for j in range(1, self.ahead):  # a time of day no price is known of (a horizon under a day): the one before
            known = self.prices((now + j) * self.market_step_s)
            ahead.append(known if math.isfinite(known) else ahead[-1])
        evs = (self.first_outlook.T.ravel() if first else
               np.concatenate([proxy.read_port(f"ev/{name}") for name in OUTLOOK_FIELDS]))
        return np.concatenate([[math.sin(angle), math.cos(angle)], ahead, evs])

    def before_step(self, proxy) -> None:
        self._price = proxy.read_port("market/price")
        self._episode_prices.append(self._price)

    def money_eur(self, proxy) -> float:
        """The step's charging cost and the penalty of the energy missing at its departures (called once a step)."""
        unmet = proxy.read_port("ev/ev_unmet_kwh")  # so far in the episode
        missing, self._unmet_kwh = unmet - self._unmet_kwh, unmet
        return -proxy.read_port("ev/ev_p_mw") * self._price * self.step_h - self.unmet_penalty_eur_per_kwh * missing

    def terminal_eur(self, proxy) -> float:
        """At the episode's end: what the sessions still plugged in need, at the episode's mean spot price."""
        needed_kwh = float(np.sum(proxy.read_port("ev/energy_needed_kwh")))
        return -needed_kwh / 1000.0 * float(np.mean(self._episode_prices))

    def info(self, proxy) -> dict:
        return {"ev_p_mw": float(proxy.read_port("ev/ev_p_mw")), "ev_unmet_kwh": self._unmet_kwh}


TIME_FIELDS = OBSERVATION_FIELDS[:2]
SESSION_MAX_H = 48.0
"""No session lasts two days: an EV comes home on one day and leaves on the next."""


class CommunityBatteryRoles:
    """The roles of a community-battery scenario's ``agents:``, each read through the agent proxy's input ports
    (``proxy``: its :class:`federates.common.Federate`). ``ev_unmet_penalty_eur_per_kwh``: the EV role's penalty
    (:data:`UNMET_PENALTY_EUR_PER_KWH`)."""

    def __init__(self, scenario, ev_unmet_penalty_eur_per_kwh: float = UNMET_PENALTY_EUR_PER_KWH):
        self.scenario = scenario
        self.roles = list(scenario.agents)
        made = {"lec_ems": lambda: LecEmsRole(scenario),
                "ev_charging": lambda: EVChargingRole(scenario, ev_unmet_penalty_eur_per_kwh)}
        self.role = {name: made[name]() for name in self.roles}
        self.periods = int(round(scenario.end_s / scenario.grid_step_s))  # lec_ems: its EMS step is the grid's

    def action_fields_of(self, role: str) -> tuple:
        return self.role[role].action_fields

    def observation_fields_of(self, role: str) -> tuple:
        return self.role[role].observation_fields

    def reward_of(self, role: str) -> str:
        return self.role[role].reward

    def begin(self, day) -> None:
        """An episode of ``day`` begins."""
        for role in self.role.values():
            if hasattr(role, "begin"):
                role.begin(day)

    def action_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        return self.role[role].action_bounds()

    def observation_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        return self.role[role].observation_bounds()

    def default_action(self, role: str, observation) -> np.ndarray:
        return self.role[role].default_action()

    def outputs(self, role: str) -> dict:
        return self.role[role].outputs()

    def observe(self, proxy, role: str, period: int, first: bool) -> np.ndarray:
        return self.role[role].observe(proxy, period, first)

    def before_step(self, proxy) -> None:
        for role in self.role.values():
            role.before_step(proxy)

    def money_eur(self, proxy, role: str) -> float:
        return self.role[role].money_eur(proxy)

    def terminal_eur(self, proxy, role: str) -> float:
        return self.role[role].terminal_eur(proxy)

    def dn_impact(self, proxy) -> float:
        return 0.0

    def info(self, proxy) -> dict:
        out = {"pcc_p_mw": float(proxy.read_port("dso/pcc_p_mw"))}
        for role in self.role.values():
            out.update(role.info(proxy) if hasattr(role, "info") else {})
        return out


def scenario_for_day(scenario, day: dt.date):
    """The scenario played from ``day`` for its horizon (the same households, battery and grid)."""
    return scenario.model_copy(update={"start": dt.datetime.combine(day, scenario.start.time())})


def scenario_for_days(scenario, first: dt.date, days: int):
    """The scenario spanning ``days`` days' episodes from ``first`` (a long-lived learning environment's)."""
    return scenario_for_day(scenario, first).model_copy(update={"horizon_h": (days - 1) * 24 + scenario.horizon_h})
