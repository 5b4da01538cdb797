"""The local market's roles an agent can take (``agents:``): CHP producers bidding in the hourly pool.

What a CHP agent sees and decides, for :mod:`lec_cosim.env`. It decides each hour's offer before the
hour's market (the agent proxy acts at T + 0.5 ms, the participants send orders at T + 1 ms), and sees
what the federation has made known by then: the hour and its retail tariff (known in advance), and what
the previous hour gave (clearing price, volume, its own sale, the DSO's DN impact). The local market has
no forecaster: its players bid on no forecast of the community's load or PV.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from lec_cosim.models.chp_cost import chp_bid_floor_eur_per_kwh
from lec_cosim.models.tariffs import retail_tariff_eur_per_kwh

ACTION_FIELDS = (
    ("price_eur_per_kwh", "EUR/kWh", "offer price, from the CHP's opportunity cost (its truthful bid) up to the "
     "highest retail tariff of the scheme"),
    ("quantity_kwh", "kWh", "energy offered for the hour, from 0 (no offer) up to its capacity"),
)
OBSERVATION_FIELDS = (
    ("hour_sin", "1", "sin(2 pi h / 24) of the hour h being decided"),
    ("hour_cos", "1", "cos(2 pi h / 24) of that hour"),
    ("retail_eur_per_kwh", "EUR/kWh", "the retail tariff of that hour (what buyers bid)"),
    ("last_price_eur_per_kwh", "EUR/kWh", "the previous hour's clearing price (0 when it did not clear)"),
    ("last_cleared", "1", "1 if the previous hour's pool cleared, else 0"),
    ("last_volume_kwh", "kWh", "energy traded in the previous hour's pool"),
    ("last_sold_kwh", "kWh", "what this CHP sold in the previous hour"),
    ("last_dn_impact", "1", "the DSO's DN impact of the previous hour (sum over its grid steps)"),
)
REWARD = ("the CHP's money in the hour: LEM income minus production cost (EUR), minus dn_penalty_eur times the "
          "hour's DN impact when the environment is given one")


class LocalMarketRoles:
    """The CHP roles of a local-market scenario with ``agents:``, read through the agent proxy's input ports
(``proxy``: the agent proxy's :class:`federates.common.Federate`)."""

    action_fields = ACTION_FIELDS
    observation_fields = OBSERVATION_FIELDS
    reward = REWARD

    def __init__(self, scenario):
        from lec_cosim.models.lem_community import community_from_scenario

        self.scenario = scenario
        self.roles = list(scenario.agents)
        community = community_from_scenario(scenario)
        self.capacity_kwh = {name: float(cap) * scenario.market_step_s / 3600.0
                             for name, cap in zip(community.names, community.chp_kw) if name in self.roles}
        b = community.b_eur_per_kwh
        scheme = scenario.market.tariff_scheme
        self.scheme = scheme
        self.floor = {name: float(chp_bid_floor_eur_per_kwh(cap, b)) for name, cap in self.capacity_kwh.items()}
        top = float(np.max(retail_tariff_eur_per_kwh(np.arange(24), scheme)))
        self.ceiling = {name: max(top, floor) for name, floor in self.floor.items()}
        self.periods = int(round(scenario.end_s / scenario.market_step_s))
        self.period_h = scenario.market_step_s / 3600.0

    def action_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([self.floor[role], 0.0]), np.array([self.ceiling[role], self.capacity_kwh[role]]))

    def observation_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        high = np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.inf, self.capacity_kwh[role], np.inf])
        return low, high

    def observe(self, proxy, role: str, period: int, first: bool) -> np.ndarray:
        """What ``role`` knows when it decides ``period`` (from 0); ``first``: nothing has happened yet."""
        hour = (period * self.period_h) % 24
        angle = 2 * math.pi * hour / 24
        retail = float(retail_tariff_eur_per_kwh(int(hour), self.scheme))
        if first:
            return np.array([math.sin(angle), math.cos(angle), retail, 0.0, 0.0, 0.0, 0.0, 0.0])
        price = proxy.read_port("market/price_eur_per_kwh")
        cleared = not math.isnan(price)
        sold = self._own(proxy, role, "lem_sold_kwh")
        return np.array([math.sin(angle), math.cos(angle), retail, price if cleared else 0.0, float(cleared),
                         proxy.read_port("market/volume_kwh"), sold, self.dn_impact(proxy)])

    def money_eur(self, proxy, role: str) -> float:
        """The role's income minus cost in the hour just settled."""
        return self._own(proxy, role, "income_eur") - self._own(proxy, role, "cost_eur")

    def info(self, proxy) -> dict:
        """What the step's ``info`` adds: the DSO's count of distinct buses out of band so far in the episode."""
        return {"violated_buses_so_far": int(np.max(proxy.read_port("grid/violated_buses_so_far")))}

    def dn_impact(self, proxy) -> float:
        return float(np.sum(proxy.read_port("grid/dn_impact")))

    def _own(self, proxy, role: str, value: str) -> float:
        group, index = proxy.options.role_group[role], proxy.options.role_index[role]
        return float(proxy.read_port(f"{group}/{value}")[index])


def scenario_for_day(scenario, day: dt.date):
    """The scenario played from ``day`` for its horizon, with the same community: PV stays sized on the
    scenario's own sizing day (its ``participants.pv.sizing_day``, or its start)."""
    pv = scenario.participants.pv
    sizing = pv.sizing_day or scenario.start.date()
    participants = scenario.participants.model_copy(update={"pv": pv.model_copy(update={"sizing_day": sizing})})
    start = dt.datetime.combine(day, dt.time(0))
    return scenario.model_copy(update={"start": start, "participants": participants})


def scenario_for_days(scenario, first: dt.date, days: int):
    """The scenario played from ``first`` over ``days`` days' episodes: its horizon from each of those days (a
    long-lived learning environment's federation, whose episodes are windows of it)."""
    return scenario_for_day(scenario, first).model_copy(update={"horizon_h": (days - 1) * 24 + scenario.horizon_h})
