"""The roles an agent can take in the three-LEC study: a household's HEMS in the p2p framework (``agents: [LOAD3,
...]``, households with a home battery).

What the agents see and decide, for :mod:`lec_cosim.env`. Every role decides at H + 1.5 ms of each hour: after its
LEC_EMS has sent the hour's import caps and fees (+1 ms), before the HEMSs bid in their LECs' pools (+2 ms).

**A household's HEMS.** In its HEMS's place it decides the home battery's set-point for the hour. The household
then bids its hour's net position (load - PV + the set-point, clipped to what the battery can run for the hour)
in its LEC's pool, as its HEMS would; for the later hours its LEC_EMS is told what the HEMS would plan from
the state of charge the hour leaves. It sees what the HEMS knows of the hour: the time, the tariffs, its
battery's state of charge, its own load and PV of the hour (the HEMS plans on its profiles) and the cap and
fees its LEC_EMS sent. Its reward is the household's bill of the hour as its LEC_EMS settled it: the pool's bill
plus the fairness and over-cap fees. The HEMS's LP plans its window ahead (``ems.lookahead_h``); the agent sees
only the hour.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from lec_cosim.models.battery import stored_energy_value_eur
from lec_cosim.scenario import ScenarioError

NO_CAP_KW = 100.0
"""The import cap an agent observes when its LEC_EMS sets none (a household's connection carries far less)."""

ACTION_FIELDS = (
    ("battery_kw", "kW", "the home battery's power for the hour (+ charges, - discharges), within its rating; the "
     "household clips it to what the battery can hold for the hour"),
)
OBSERVATION_FIELDS = (
    ("hour_sin", "1", "sin(2 pi h / 24) of the time of day h of the hour being decided"),
    ("hour_cos", "1", "cos(2 pi h / 24) of that time"),
    ("import_price_eur_per_kwh", "EUR/kWh", "the hour's retail tariff (what the grid charges for import)"),
    ("export_price_eur_per_kwh", "EUR/kWh", "the hour's feed-in tariff"),
    ("soc_kwh", "kWh", "the home battery's state of charge at the hour's start"),
    ("load_kwh", "kWh", "the household's load in the hour (its profile, as its HEMS plans on)"),
    ("pv_kwh", "kWh", "its PV output in the hour"),
    ("import_cap_kw", "kW", f"the import cap its LEC_EMS sent for the hour ({NO_CAP_KW:g}: none)"),
    ("import_fee_eur_per_kwh", "EUR/kWh", "the fairness fee on all its import in the hour"),
    ("over_cap_fee_eur_per_kwh", "EUR/kWh", "the fee on import above the cap"),
)
REWARD = ("minus the household's bill of the hour as its LEC_EMS settled it (EUR): the pool's bill (pool price "
          "times bought minus sold, retail times grid import, minus feed-in times grid export) plus the fairness and "
          "over-cap fees; at the episode's last hour also the battery's change of state of charge over the episode "
          "at the episode's mean retail tariff, a gain times the one-way efficiency, a loss divided by it (info "
          "terminal_eur; the HEMS's LP ends the day where it began). The study has no DN impact here: dn_penalty_eur "
          "does not apply")


class HemsRoles:
    """The HEMS roles of a p2p scenario's ``agents:``, read through the agent proxy's input ports (``proxy``: its
    :class:`federates.common.Federate`)."""

    reward = REWARD
    action_fields = ACTION_FIELDS
    observation_fields = OBSERVATION_FIELDS

    def __init__(self, scenario, **options):
        from lec_cosim.models.multi_lec_ems import hourly_mean, hourly_tariffs, members_from_scenario, n_hours

        if options:
            raise ValueError(f"role_options: {', '.join(sorted(options))}: the HEMS roles take no options")
        self.scenario = scenario
        self.roles = list(scenario.agents)
        self.members = members = members_from_scenario(scenario)
        table = members.table
        row = {member: j for j, member in enumerate(table["member"])}
        households = set(table.loc[table["kind"] == "household", "member"])
        with_battery = [m for m in table["member"] if m in households and table.at[row[m], "battery_kw"] > 0]
        for role in self.roles:
            if role not in households:
                raise ScenarioError(f"{scenario.source_file}: agents: {role}: no household of the feeder")
            if role not in with_battery:
                raise ScenarioError(f"{scenario.source_file}: agents: {role} has no home battery to decide (those "
                                    f"with one: {', '.join(with_battery)})")
        self.row = {role: row[role] for role in self.roles}
        self.lec = {role: table.at[row[role], "lec"] for role in self.roles}
        self.energy_kwh = {role: float(table.at[row[role], "battery_kwh"]) for role in self.roles}
        self.power_kw = {role: float(table.at[row[role], "battery_kw"]) for role in self.roles}
        self.efficiency = {role: float(table.at[row[role], "battery_efficiency"] or 1.0) for role in self.roles}
        self.load_h, self.pv_h = hourly_mean(members, members.load_kw), hourly_mean(members, members.pv_kw)
        self.retail, self.feed_in = hourly_tariffs(members, scenario.tariff.scheme, scenario.tariff.feed_in_eur_per_kwh)
        self.periods = n_hours(members)
        self._seen: dict[str, tuple] = {}  # a role's hour as observed (float64): its HEMS's own decision needs it
        self._episode_prices: list[float] = []
        self._played: int | None = None  # the hour being played (its LEC_EMS's record is the reward's)

    def action_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-self.power_kw[role]]), np.array([self.power_kw[role]])

    def observation_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        high = np.array([1.0, 1.0, np.inf, np.inf, self.energy_kwh[role], np.inf, np.inf, NO_CAP_KW, np.inf, np.inf])
        return low, high

    def observe(self, proxy, role: str, period: int, first: bool) -> np.ndarray:
        j, start = self.row[role], self.scenario.start
        if first and period == 0:
            self._episode_prices = []
        # after the episode's last hour nothing is decided: its observation repeats that hour's tariffs and caps
        period = min(period, self.periods - 1)
        soc = 0.5 * self.energy_kwh[role] if first else float(proxy.read_port("households.soc_kwh")[j])
        caps = proxy.read_port(f"{self.lec[role]}.member_caps")[role]
        if caps["hour"] != period:
            raise RuntimeError(f"{role}: the caps of hour {caps['hour']} at hour {period}")
        cap = float(caps["import_cap_kw"])
        fee, over_fee = float(caps["import_fee_eur_per_kwh"]), float(caps["over_cap_fee_eur_per_kwh"])
        self._seen[role] = (period, soc, cap, fee, over_fee)
        angle = 2 * math.pi * ((start.hour + period) % 24) / 24
        return np.array([math.sin(angle), math.cos(angle), self.retail[period], self.feed_in[period], soc,
                         self.load_h[j, period], self.pv_h[j, period], min(cap, NO_CAP_KW), fee, over_fee])

    def default_action(self, role: str, observation) -> np.ndarray:
        """Its HEMS's own decision for the hour (the first hour of its LP's plan of its window), from what
        the role last observed (the float64 values, not the observation's float32)."""
        from lec_cosim.models.home_plan import plan_home, reachable_soc_final_kwh
        from lec_cosim.models.multi_lec_ems import planning_window

        j, (hour, soc, cap, fee, over_fee) = self.row[role], self._seen[role]
        w = planning_window(self.members, self.scenario, hour)
        final = reachable_soc_final_kwh(0.5 * self.energy_kwh[role], soc_kwh=soc, battery_kw=self.power_kw[role],
                                        battery_efficiency=self.efficiency[role], dt_h=1.0, steps=w.stop - w.start)
        plan = plan_home(self.load_h[j, w], self.pv_h[j, w], dt_h=1.0,
                         import_price_eur_per_kwh=self.retail[w], export_price_eur_per_kwh=self.feed_in[w],
                         battery_kwh=self.energy_kwh[role], battery_kw=self.power_kw[role],
                         battery_efficiency=self.efficiency[role], soc_kwh=soc,
                         soc_final_kwh=final, import_cap_kw=cap,
                         over_cap_fee_eur_per_kwh=over_fee, import_fee_eur_per_kwh=fee)
        return np.array([plan.charge_kw[0] - plan.discharge_kw[0]])

    def before_step(self, proxy) -> None:
        """The hour about to be played (its record is the reward's) and its retail tariff (the terminal value's)."""
        self._played = next(iter(self._seen.values()))[0]
        self._episode_prices.append(float(self.retail[self._played]))

    def _trade(self, proxy, role: str) -> dict:
        record = proxy.read_port(f"{self.lec[role]}.record")
        if record["hour"] != self._played:
            raise RuntimeError(f"{role}: {self.lec[role]}'s record of hour {record['hour']} after hour {self._played}")
        return next(t for t in record["trades"] if t["member"] == role)

    def money_eur(self, proxy, role: str) -> float:
        trade = self._trade(proxy, role)
        return -(trade["cost_eur"] + trade["fee_eur"])

    def terminal_eur(self, proxy, role: str) -> float:
        """The state of charge gained (or lost) over the episode at its mean retail tariff, through the battery's
        one-way efficiency (as the community battery's LEC_EMS role values it)."""
        change = float(proxy.read_port("households.soc_kwh")[self.row[role]]) - 0.5 * self.energy_kwh[role]
        return stored_energy_value_eur(change, float(np.mean(self._episode_prices)), self.efficiency[role])

    def dn_impact(self, proxy) -> float:
        return 0.0

    def info(self, proxy) -> dict:
        return {f"{role}_grid_import_kwh": float(self._trade(proxy, role)["grid_import_kwh"]) for role in self.roles}


def scenario_for_day(scenario, day: dt.date):
    """The scenario played on ``day`` (the same LECs, members and grid; that day's PV, and a source's dated loads)."""
    return scenario.model_copy(update={"start": dt.datetime.combine(day, scenario.start.time())})


def scenario_for_days(scenario, first: dt.date, days: int):
    """A learning environment's federation spans one day: its episodes restart the day (``reset``), not a later one."""
    if days > 1:
        raise ScenarioError(f"{scenario.source_file}: a three-LEC learning environment's federation plays its "
                            "episodes on one day; give federation='per_episode' to play several")
    return scenario_for_day(scenario, first)
