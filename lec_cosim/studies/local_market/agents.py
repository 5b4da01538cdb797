"""The local market's roles an agent can take (``agents:``): any player bidding in the hourly pool, a CHP
producer or a household.

What an agent sees and decides, for :mod:`lec_cosim.env`. It decides each hour's bid before the hour's
market (the agent proxy acts at T + 0.5 ms, the participants send orders at T + 1 ms), and sees what the
federation has made known by then: the hour and its retail tariff (known in advance), and what the previous
hour gave (clearing price, volume, its own trade, the DSO's DN impact). The local market has no forecaster:
its players bid on no forecast of the community's load or PV. A household knows its own net position of the
hour it bids for, as its rule-based self does (it bids that position).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from lec_cosim.models.chp_cost import chp_bid_floor_eur_per_kwh
from lec_cosim.models.tariffs import FEED_IN_EUR_PER_KWH, retail_tariff_eur_per_kwh

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

HOUSEHOLD_ACTION_FIELDS = (
    ("price_eur_per_kwh", "EUR/kWh", "bid price (buying a deficit) or offer price (selling a surplus), from the "
     "feed-in tariff up to the highest retail tariff of the scheme; its rule bids retail and offers at feed-in"),
    ("share", "1", "the share of the hour's net position it bids, 0 (none: all through the grid) to 1 (all of it, "
     "as its rule)"),
)
HOUSEHOLD_OBSERVATION_FIELDS = OBSERVATION_FIELDS[:6] + (
    ("last_traded_kwh", "kWh", "what this household bought (+) or sold (-) in the previous hour's pool"),
    OBSERVATION_FIELDS[7],
    ("net_position_kwh", "kWh", "its load minus its PV in the hour being decided: + a deficit it may buy, - a "
     "surplus it may sell"),
)
HOUSEHOLD_REWARD = ("the household's money in the hour: LEM and feed-in income minus LEM and grid purchases (EUR; "
                    "what the grid does not cover from the LEM it buys at retail), minus dn_penalty_eur times the "
                    "hour's DN impact when the environment is given one")


class LocalMarketRoles:
    """The roles of a local-market scenario with ``agents:`` (CHP producers and households), read through the
    agent proxy's input ports (``proxy``: the agent proxy's :class:`federates.common.Federate`)."""

    def __init__(self, scenario):
        from lec_cosim.models.lem_community import community_from_scenario

        self.scenario = scenario
        self.roles = list(scenario.agents)
        community = community_from_scenario(scenario)
        kind = dict(zip(community.names, community.kinds))
        self.chps = [name for name in self.roles if kind[name] == "chp"]
        self.households = [name for name in self.roles if kind[name] != "chp"]
        self.capacity_kwh = {name: float(cap) * scenario.market_step_s / 3600.0
                             for name, cap in zip(community.names, community.chp_kw) if name in self.chps}
        b = community.b_eur_per_kwh
        scheme = scenario.market.tariff_scheme
        self.scheme = scheme
        self.floor = {name: float(chp_bid_floor_eur_per_kwh(cap, b)) for name, cap in self.capacity_kwh.items()}
        top = float(np.max(retail_tariff_eur_per_kwh(np.arange(24), scheme)))
        self.top_retail = top
        self.ceiling = {name: max(top, floor) for name, floor in self.floor.items()}
        self.periods = int(round(scenario.end_s / scenario.market_step_s))
        self.period_h = scenario.market_step_s / 3600.0
        self._column = {name: community.names.index(name) for name in self.households}
        self._day = scenario.start.date()
        self._net_kwh = {self._day: self._net_of(community)}  # day -> (households, periods): load minus PV, kWh
        self._period = 0

    # --- what each kind of role decides and sees
    def action_fields_of(self, role: str):
        return HOUSEHOLD_ACTION_FIELDS if role in self._column else ACTION_FIELDS

    def observation_fields_of(self, role: str):
        return HOUSEHOLD_OBSERVATION_FIELDS if role in self._column else OBSERVATION_FIELDS

    def reward_of(self, role: str) -> str:
        return HOUSEHOLD_REWARD if role in self._column else REWARD

    def action_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        if role in self._column:
            return np.array([FEED_IN_EUR_PER_KWH, 0.0]), np.array([self.top_retail, 1.0])
        return (np.array([self.floor[role], 0.0]), np.array([self.ceiling[role], self.capacity_kwh[role]]))

    def observation_bounds(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        if role in self._column:
            low = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, -np.inf, 0.0, -np.inf])
            high = np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.inf, np.inf, np.inf, np.inf])
            return low, high
        low = np.array([-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        high = np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.inf, self.capacity_kwh[role], np.inf])
        return low, high

    def begin(self, day) -> None:
        """An episode from ``day``: the households' positions of its hours (their PV is the day's)."""
        self._day = day

    def net_position_kwh(self, role: str, period: int) -> float:
        """A household's load minus PV in ``period`` of the episode's day, kWh (from the community's data, as its
        participant federate bids it)."""
        if self._day not in self._net_kwh:
            from lec_cosim.models.lem_community import community_from_scenario

            self._net_kwh[self._day] = self._net_of(community_from_scenario(scenario_for_day(self.scenario, self._day)))
        return float(self._net_kwh[self._day][self.households.index(role), period])

    def _net_of(self, community) -> np.ndarray:
        """The household agents' load minus PV in every period of ``community`` (rows in ``households`` order)."""
        columns = [self._column[name] for name in self.households]
        return community.load_kwh[columns] - community.pv_kwh[columns]

    def default_action(self, role: str, observation) -> np.ndarray:
        """The role's own rule or strategy: a CHP bids its opportunity cost for its capacity; a household bids its
        whole position, a deficit at retail, a surplus at the feed-in tariff."""
        if role not in self._column:
            low, high = self.action_bounds(role)
            return np.array([low[0], high[1]])
        hour = int((self._period * self.period_h) % 24)
        buying = self.net_position_kwh(role, self._period) > 0
        return np.array([float(retail_tariff_eur_per_kwh(hour, self.scheme)) if buying else FEED_IN_EUR_PER_KWH, 1.0])

    def observe(self, proxy, role: str, period: int, first: bool) -> np.ndarray:
        """What ``role`` knows when it decides ``period`` (from 0); ``first``: nothing has happened yet."""
        self._period = period
        hour = (period * self.period_h) % 24
        angle = 2 * math.pi * hour / 24
        retail = float(retail_tariff_eur_per_kwh(int(hour), self.scheme))
        household = role in self._column
        if first:
            last = [0.0, 0.0, 0.0, 0.0, 0.0]
        else:
            price = proxy.read_port("market/price_eur_per_kwh")
            cleared = not math.isnan(price)
            traded = (self._own(proxy, role, "lem_bought_kwh") - self._own(proxy, role, "lem_sold_kwh") if household
                      else self._own(proxy, role, "lem_sold_kwh"))
            last = [price if cleared else 0.0, float(cleared), proxy.read_port("market/volume_kwh"), traded,
                    self.dn_impact(proxy)]
        values = [math.sin(angle), math.cos(angle), retail, *last]
        if household:
            values.append(self.net_position_kwh(role, period) if period < self.periods else 0.0)
        return np.array(values)

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
