"""The community battery's roles an agent can take: the battery's set-point (``agents: [lec_ems]``) and the roles
of its devices at the homes (the EVs' charging, named by the device kind: :class:`lec_cosim.home_devices.HomeDevice`
``agent_role``), alone or together.

What the agents see and decide, for :mod:`lec_cosim.env`. Every role decides at the LEC_EMS's slot (+1 ms after
the market, before the households and the devices at the homes) every grid step.

**lec_ems.** In the LEC_EMS's place it decides the battery's set-point for the coming grid step, knowing the
step's prices (the market has just published them) and what the last step gave (the households' load and PV,
the battery's state of charge; with devices at the homes, their load). Its reward is the community's energy
money in that step, as the study's ``energy_cost`` counts it: the import at the spot price, the export credited
at the export price (the households and the battery; the devices' energy is their own role's). The LP the
LEC_EMS solves knows the whole day's prices and profiles; the agent does not (no forecast is observed): the
regret against the LP is what a learner gives up.

**A device's role** is the device kind's (:meth:`lec_cosim.home_devices.HomeDevice.role`): for the EVs, each EV's
charging power, seeing what the smart mode knows, paying the day-ahead price and a penalty per kWh missing at a
departure.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from lec_cosim.models.battery import stored_energy_value_eur

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
DEVICES_LOAD_FIELD = ("last_devices_p_mw", "MW", "the load of the devices at the homes (the EVs' charging) in the "
                      "last step (a scenario with devices)")
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
        self.devices = list(scenario.home_devices)  # their loads at the proxy's ports {device}/load
        self.with_devices = bool(self.devices)
        self.observation_fields = OBSERVATION_FIELDS + ((DEVICES_LOAD_FIELD,) if self.with_devices else ())
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
        low = np.array([-1.0, -1.0, -np.inf, -np.inf, 0.0, 0.0, 0.0] + [0.0] * self.with_devices)
        high = np.array([1.0, 1.0, np.inf, np.inf, self.capacity_mwh, np.inf, np.inf] + [np.inf] * self.with_devices)
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
            devices = [0.0] if self.with_devices else []
            self._episode_prices = []
        else:
            soc, load, pv = (proxy.read_port(f"households/{p}") for p in ("soc_mwh", "load_p_mw", "pv_p_mw"))
            devices = [sum(proxy.read_port(f"{d}/load") for d in self.devices)] if self.with_devices else []
        return np.array([math.sin(angle), math.cos(angle), *prices, soc, load, pv, *devices])

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
        return stored_energy_value_eur(change, float(np.mean(self._episode_prices)), self.efficiency)

    def money_eur(self, proxy) -> float:
        net = sum(proxy.read_port(f"households/{p}") * sign
                  for p, sign in (("load_p_mw", 1), ("pv_p_mw", -1), ("battery_p_mw", 1)))
        price, export_price = self._prices
        return -(price * max(net, 0.0) - export_price * max(-net, 0.0)) * self.step_h


class CommunityBatteryRoles:
    """The roles of a community-battery scenario's ``agents:``, each read through the agent proxy's input ports
    (``proxy``: its :class:`federates.common.Federate`). ``options``: a role's own options by its name (a learning
    environment's ``role_options``), e.g. the EVs' penalty per kWh missing at a departure."""

    def __init__(self, scenario, **options):
        self.scenario = scenario
        self.roles = list(scenario.agents)
        unknown = sorted(set(options) - set(self.roles))
        if unknown:
            raise ValueError(f"role_options: {', '.join(unknown)}: not one of agents: {self.roles}")
        devices = {device.agent_role: (name, device) for name, device in scenario.home_devices.items()}
        if options.get("lec_ems"):
            raise ValueError(f"role_options: lec_ems: the LEC_EMS's role takes no options ({options['lec_ems']})")
        self.role = {role: LecEmsRole(scenario) if role == "lec_ems" else
                     devices[role][1].role(devices[role][0], scenario, **options.get(role, {}))
                     for role in self.roles}
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
