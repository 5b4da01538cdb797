"""LEC_EMS federate: one local energy community's energy-management system, in any of the three frameworks.

Every hour it plans its batteries ahead (``ems.lookahead_h``, ``lec_cosim.models.multi_lec_ems``)
within the DSO's latest limits and publishes the hour's set-points; how it plans is its strategy
(the config's ``ems``, chosen by the plan for the framework). It plans from the energy in its pooled batteries
as the households measured it at the hour's start (a message at its endpoint ``meter``, sent at H + 0 ms; read
at its first slot of the hour, before it plans, in every strategy), not from where its last plan ended: the two
part once a battery clips its share of a pooled set-point. The first hour of a run (or of a learning environment's
episode) nothing is measured: it plans from the known initial state. Its record keeps both and their
difference.

* ``plan_alone`` (decentralised): plans alone and sends its hourly position to the market platform;
* ``negotiate`` (distributed): negotiates exchanges with its neighbours by ADMM (``LecAgent``), one
  iteration per microsecond slot, and stops when the residuals it hears of say all agents stop; with
  ``negotiation.warm_start`` each hour starts from the last hour's agreement;
* ``run_market`` (p2p): sends its members their import caps and fees, clears their orders in the
  LEC's pool, plans the community battery around their plans and sends the LEC's position to the
  platform. Who clears the pool is its pool strategy (the config's ``pool``): ``clear_orders``, the
  LEC_EMS itself, or ``settle_book``, the LEC's pool operator (the local market's component
  ``federates/lem_market.py``), whose book arrives at the ``market`` endpoint with the members' plans;
  or ``clear_continuous``: the LEC_EMS matches its members' orders in a continuous double auction
  (price-time priority, each trade at the resting order's price) in an arrival order drawn from the
  scenario's ``p2p.arrival_seed``, the hour and the LEC, and records the pool of the same orders beside it.

It plans on its LEC's households' true profiles or, with the scenario's ``ems.forecast``, on the forecast made at
the hour from what is metered before it (``lec_cosim.models.forecast``; then its record holds the forecast).

At H + 5 ms it publishes the hour's record (plan, trades, negotiation) for the recorder.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np

from federates.common import Federate, main
from lec_cosim.models.continuous_auction import arrival_order
from lec_cosim.models.exchange import LecAgent, ProposalMessage, plan_lec_alone
from lec_cosim.models.forecast import forecasts_from_scenario
from lec_cosim.models.lec_pool import PoolResult, clear_lec_continuous, pool_from_book
from lec_cosim.models.multi_lec_ems import (
    hourly_tariffs,
    members_from_scenario,
    n_hours,
    planning_window,
    pooled_batteries,
    rest_of_day_problem,
    window_limits_kw,
)
from lec_cosim.models.p2p import clear_lec_pool, member_caps_and_fees, member_orders

SOC_SAME_KWH = 1e-9
"""A measured energy this close to the plan's is the plan's (it plans from the planned value, to the bit): the
households add up their members' batteries, the plan has the pool as one, and the two differ by rounding alone
where no battery clips (measured on the shipped day: at most 1e-13 kWh). Planned from the measurement, the
shipped day's results moved by the same rounding (1e-14 kWh, 1e-9 % of a line's loading)."""


class LecEms:
    """What every strategy shares: the LEC's batteries and tariffs, the DSO's limits, publishing the
    hour's set-points and record, the position to the platform and its answer. A strategy adds
    :meth:`hour_slots`: its slots of one hour before the record's (times and actions)."""

    def __init__(self, fed: Federate):
        self.fed = fed
        s = self.scenario = fed.scenario
        self.lec = fed.options.lec
        self.on_platform = fed.options.on_platform
        self.members = members = members_from_scenario(s)
        self.names = members.lec_names
        self.me = self.names.index(self.lec)
        # who plans the home batteries: the LEC_EMS (pooled with the community battery) or each HEMS
        self.batteries = pooled_batteries(members, home_batteries=not fed.options.members_bid)
        self.start_day()
        self.retail, self.feed_in = hourly_tariffs(members, s.tariff.scheme, s.tariff.feed_in_eur_per_kwh)
        self.hours = n_hours(members)
        table = members.table
        self.my_households = list(table.loc[(table["lec"] == self.lec) & (table["kind"] == "household"), "member"])
        self.plan_offset_s, self.settle_offset_s = fed.options.plan_offset_s, fed.options.settle_offset_s
        self.import_limit = self.export_limit = self.record = None
        self.stale_limits = False
        # what it plans on: its LEC's households' true profiles, or the scenario's forecast of them (ems.forecast)
        self.forecasts = forecasts_from_scenario(s, members, lecs=[self.lec])
        self.forecast_record = {}
        # dso.limits_per household: the LEC's limits are the sums of its households' (the DSO sums them); a p2p
        # LEC_EMS also reads each household's import limit, its member's cap
        self.member_limits = "household_import_limit_kw" in fed.ports.get("in", {})
        self.household_names = list(table.loc[table["kind"] == "household", "member"])
        self.member_import_limit: dict[str, float] | None = None
        self.day_limits = None
        """dso.limits_per household: each LEC's import and export limits for every hour from the DSO's forecast,
        shape (n_lecs, hours) each: the plan's later hours take them, its first the latest limits."""

    def start_day(self) -> None:
        """The first hour of a run or an episode comes next: planned from the known initial state (half full)."""
        self.soc_kwh = 0.5 * self.batteries.energy_kwh
        """What it plans the hour from, per LEC (only its own LEC's entry changes)."""
        self.first_hour = True
        self.planned_soc_kwh = float(self.soc_kwh[self.me])
        """Where its last plan had the pooled energy at the next hour's start (the initial state before the first):
        what it planned from before it read the measurement (kept for the record)."""
        self.measured_soc_kwh = math.nan

    def read_soc(self, hour: int) -> None:
        """The energy in its pooled batteries at the hour's start, as the households measured it (at H + 0 ms):
        what it plans the hour from, but where it is its plan's to :data:`SOC_SAME_KWH`. In the first hour of a
        run or an episode nothing is measured (the households send nothing then): the known initial state."""
        readings = self.fed.receive(self.fed.endpoint("meter"))
        expected = 0 if self.first_hour else 1
        if len(readings) != expected or any(p.get("hour") != hour or p.get("lec") != self.lec for _, p in readings):
            raise RuntimeError(f"{self.lec}: expected {expected} measurement(s) of its batteries from the households "
                               f"at hour {hour}, got {[payload for _, payload in readings]}")
        if self.first_hour:  # nothing measured yet: the known initial state
            self.measured_soc_kwh = float(self.soc_kwh[self.me])
            self.first_hour = False
            return
        self.measured_soc_kwh = float(readings[0][1]["pooled_soc_kwh"])
        off_plan = abs(self.measured_soc_kwh - self.planned_soc_kwh) > SOC_SAME_KWH
        self.soc_kwh[self.me] = self.measured_soc_kwh if off_plan else self.planned_soc_kwh

    def reset(self) -> None:
        """A learning environment's next episode (``Federate.run_episodes``): the day's start again. The DSO's
        last limits of the episode before stay in the inputs: read now, they count only once the DSO has
        published again (a run's first hour has none). The episode's first hour starts from the known initial
        state, as the households' batteries do (they measure nothing then)."""
        self.start_day()
        self.import_limit = self.export_limit = self.record = None
        self.member_import_limit = None
        if self.scenario.dso.limits:
            self.fed.read_port("import_limit_kw")
            self.fed.read_port("export_limit_kw")
            self.stale_limits = True

    def slots(self):
        for hour in range(self.hours):
            start = hour * 3600.0
            yield from self.hour_slots(hour, start)
            yield start + self.settle_offset_s, lambda _, h=hour: self.settle(h)

    def hour_slots(self, hour: int, start: float):
        raise NotImplementedError

    def read_limits(self) -> None:
        if self.scenario.dso.limits:
            if self.stale_limits and not self.fed.port_updated("import_limit_kw"):
                return  # the episode's DSO has not published yet: what the inputs hold is the last episode's
            self.stale_limits = False
            imports = self.fed.read_port("import_limit_kw")
            exports = self.fed.read_port("export_limit_kw")
            if len(imports) == len(self.names):  # nothing before the DSO's first step
                self.import_limit, self.export_limit = np.array(imports), np.array(exports)
            if self.day_limits is None and "import_limit_day_kw" in self.fed.ports.get("in", {}):
                day = [np.array(self.fed.read_port(f"{d}_limit_day_kw")) for d in ("import", "export")]
                if len(day[0]) == len(self.names) * self.hours:
                    self.day_limits = tuple(v.reshape(len(self.names), self.hours) for v in day)
            if self.member_limits:
                homes = self.fed.read_port("household_import_limit_kw")
                if len(homes) == len(self.household_names):
                    limit = dict(zip(self.household_names, map(float, homes)))
                    self.member_import_limit = {m: limit[m] for m in self.my_households}

    def problem(self, hour: int, *, with_edges: bool, net_demand_kw=None):
        """Its exchange problem of ``hour``: on the forecast of its LEC's net demand (unless ``net_demand_kw``, the
        p2p members' plans) and PV over its planning window (``ems.lookahead_h``)."""
        w = planning_window(self.members, self.scenario, hour)
        window = w.stop - w.start
        net, pv = self.forecasts.lec(self.me, hour, window)
        rows = np.zeros((len(self.names), window))
        if net_demand_kw is None:
            net_demand_kw = rows.copy()
            net_demand_kw[self.me] = net
        curtailable = rows
        curtailable[self.me] = pv
        if self.forecasts.strategy != "perfect":  # recorded for the forecast's errors (results: forecast_errors.csv)
            self.forecast_record = {"forecast_load_kw": self.forecasts.lec_load(self.me, hour, window).tolist(),
                                    "forecast_pv_kw": pv.tolist()}
        imports, exports = self.import_limit, self.export_limit
        if self.day_limits is not None and imports is not None:
            # this hour: the latest limits (its forecast and the hour before measured); later: the DSO's forecast
            imports, exports = (window_limits_kw(now, day, w) for now, day in zip((imports, exports), self.day_limits))
        return rest_of_day_problem(self.members, self.scenario, first_hour=hour, soc_kwh=self.soc_kwh,
                                   batteries=self.batteries, net_demand_kw=net_demand_kw, curtailable_kw=curtailable,
                                   import_limit_kw=imports, export_limit_kw=exports,
                                   with_edges=with_edges, only_lec=self.me)

    def publish_hour(self, hour: int, plan: dict) -> None:
        """Set-points of the hour from a plan (arrays over the remaining hours) and the record's plan part."""
        me = self.me
        charge = float(plan["charge_kw"][0] - plan["discharge_kw"][0])
        curtail = float(plan["curtailed_kw"][0])
        self.fed.publish_port("pooled_charge_kw", charge)
        self.fed.publish_port("curtail_kw", curtail)
        self.record = {
            "hour": hour, "lec": self.lec, "framework": self.scenario.framework,
            "soc_start_kwh": float(self.soc_kwh[me]), "measured_soc_start_kwh": self.measured_soc_kwh,
            "planned_soc_start_kwh": self.planned_soc_kwh,
            "soc_start_gap_kwh": self.measured_soc_kwh - self.planned_soc_kwh,
            "pooled_charge_kw": charge, "curtail_kw": curtail, "planned_soc_kwh": float(plan["soc_kwh"][0]),
            "planned_import_kw": float(plan["import_kw"][0]), "planned_export_kw": float(plan["export_kw"][0]),
            "limit_excess_kw": float(plan["limit_excess_kw"][0]),
            "import_limit_kw": None if self.import_limit is None else float(self.import_limit[me]),
            "export_limit_kw": None if self.export_limit is None else float(self.export_limit[me]),
            **self.forecast_record,
        }
        # where the plan has the batteries at the next hour's start; the households measure where they are
        self.planned_soc_kwh = float(plan["soc_kwh"][0])

    def send_position(self, hour: int) -> None:
        if self.on_platform:
            position = self.record["planned_import_kw"] - self.record["planned_export_kw"]  # one hour: kWh
            self.fed.send(self.fed.endpoint("ems"), self.fed.target("platform"),
                          {"hour": hour, "lec": self.lec, "position_kwh": position})

    def settle(self, hour: int) -> None:
        if self.on_platform:
            answers = self.fed.receive(self.fed.endpoint("ems"))
            if len(answers) != 1 or answers[0][1].get("hour") != hour:
                raise RuntimeError(f"{self.lec}: expected one platform result for hour {hour}, got {len(answers)}")
            self.record["platform"] = answers[0][1]
        self.fed.publish_port("record", self.record)


class PlanAlone(LecEms):
    """Decentralised: plans alone at H + 1 ms and sends its position to the platform."""

    def hour_slots(self, hour: int, start: float):
        yield start + self.plan_offset_s, lambda _: self.plan_alone(hour)

    def plan_alone(self, hour: int) -> None:
        self.read_limits()
        self.read_soc(hour)
        self.publish_hour(hour, plan_lec_alone(self.problem(hour, with_edges=False), self.me))
        self.send_position(hour)


class Negotiate(LecEms):
    """Distributed: ADMM with the neighbours from H + 1 ms, one iteration per ADMM slot, until all stop."""

    def __init__(self, fed: Federate):
        super().__init__(fed)
        self.admm_slot_s = fed.options.admm_slot_s
        self.agent = None
        self.residuals = []

    def reset(self) -> None:
        super().reset()
        self.agent = None  # an episode's first negotiation starts cold, as the run's did

    def hour_slots(self, hour: int, start: float):
        yield start + self.plan_offset_s, lambda _: self.start_negotiation(hour)
        k = 0
        while not self.agent.state.finished:
            k += 1
            yield start + self.plan_offset_s + k * self.admm_slot_s, lambda _: self.iterate(hour)

    def start_negotiation(self, hour: int) -> None:
        self.read_limits()
        self.read_soc(hour)
        neg = self.scenario.negotiation
        # warm start: the last hour's agreement, its window moved on by the hour (every agent does the same)
        warm = self.agent.carried_over() if neg.warm_start and self.agent is not None else None
        self.agent = LecAgent(self.problem(hour, with_edges=True), self.me, rho_eur_per_kwh2=neg.rho_eur_per_kwh2,
                              tol_kw=neg.tol_kw, max_iterations=neg.max_iterations, warm_start=warm,
                              over_relaxation=neg.over_relaxation, adaptive_rho=neg.adaptive_rho)
        self.residuals = []
        self.propose()

    def propose(self) -> None:
        for message in self.agent.propose():
            self.fed.send(self.fed.endpoint("ems"), self.fed.target("lecs", self.names[message.receiver]),
                          json.loads(message.to_json()))

    def iterate(self, hour: int) -> None:
        agent, names = self.agent, self.names
        heard = [ProposalMessage.from_json(json.dumps(payload))
                 for _, payload in self.fed.receive(self.fed.endpoint("ems"))]
        agent.receive(heard)
        k = agent.state.iteration
        for e, n, _ in agent.neighbours:
            primal, dual = agent.state.residual_reports[(e, k)]
            self.residuals.append({"iteration": k, "neighbour": names[n], "primal_residual_kw": primal,
                                   "dual_residual_eur_per_kwh": dual})
        if not agent.state.finished:
            self.propose()
            return
        self.publish_hour(hour, agent.schedule())
        wheeling = self.scenario.negotiation.wheeling_eur_per_kwh2
        exchanges = []
        for e, n, _ in agent.neighbours:
            sent = float(agent.state.agreed_kw[n][0])  # agreed kW from this LEC to n in the hour
            price = -float(agent.state.duals_eur_per_kwh[n][0])
            exchanges.append({"neighbour": names[n], "sent_kwh": sent, "price_eur_per_kwh": price,
                              "payment_eur": -price * sent, "wheeling_eur": 0.5 * wheeling * sent ** 2})
        self.record.update({"iterations": k, "converged": agent.state.converged, "exchanges": exchanges,
                            "residuals": self.residuals})


def clear_orders(lec: str, hour: int, net_kwh: dict[str, float], others: list, *, import_price: float,
                 export_price: float, **_) -> PoolResult:
    """The LEC_EMS clears its members' orders itself (``p2p.market: ems``): nothing else may arrive."""
    if others:
        raise RuntimeError(f"{lec} market: hour {hour}: {len(others)} message(s) from others than its members")
    return clear_lec_pool(member_orders(net_kwh, import_price_eur_per_kwh=import_price,
                                        export_price_eur_per_kwh=export_price),
                          import_price_eur_per_kwh=import_price, export_price_eur_per_kwh=export_price)


def settle_book(lec: str, hour: int, net_kwh: dict[str, float], others: list, *, import_price: float,
                export_price: float, **_) -> PoolResult:
    """The LEC's pool operator cleared the members' orders (``p2p.market: pool_operator``): settle its book.

    The one other message must be the book of this hour, holding exactly the orders the members planned.
    """
    if len(others) != 1 or others[0].get("period") != hour:
        raise RuntimeError(f"{lec} market: hour {hour}: expected the pool operator's book of the hour, got "
                           f"{len(others)} message(s) from others than its members")
    book = others[0]
    planned = {o.participant: (o.side, o.quantity_kwh) for o in member_orders(
        net_kwh, import_price_eur_per_kwh=import_price, export_price_eur_per_kwh=export_price)}
    cleared = {o["participant"]: (o["side"], o["quantity_kwh"]) for o in book["orders"]}
    if cleared != planned or len(book["orders"]) != len(planned):
        raise RuntimeError(f"{lec} market: hour {hour}: the pool operator's book does not hold the members' "
                           f"planned orders ({sorted(set(cleared) ^ set(planned))} differ)")
    return pool_from_book(book, import_price_eur_per_kwh=import_price, export_price_eur_per_kwh=export_price)


def clear_continuous(lec: str, hour: int, net_kwh: dict[str, float], others: list, *, import_price: float,
                     export_price: float, arrival_seed: int, lec_index: int) -> PoolResult:
    """The LEC_EMS matches its members' orders in a continuous double auction (``p2p.market: continuous``).

    The orders (one per member with a non-zero net, in the LEC's member order) reach the book in the order
    :func:`lec_cosim.models.continuous_auction.arrival_order` draws from the seed, the hour and the LEC's index.
    """
    if others:
        raise RuntimeError(f"{lec} market: hour {hour}: {len(others)} message(s) from others than its members")
    orders = member_orders(net_kwh, import_price_eur_per_kwh=import_price, export_price_eur_per_kwh=export_price)
    return clear_lec_continuous(orders, import_price_eur_per_kwh=import_price, export_price_eur_per_kwh=export_price,
                                arrival=arrival_order(len(orders), seed=arrival_seed, period=hour, stream=lec_index))


POOLS = {"clear_orders": clear_orders, "settle_book": settle_book, "clear_continuous": clear_continuous}
"""Who clears the LEC's pool, and how, by the name the config gives (``pool``). Each gets the LEC, the hour,
its members' nets, the other messages of the hour, the tariffs, the scenario's arrival seed and the LEC's index
(the last two only the continuous auction reads)."""


class RunMarket(LecEms):
    """P2P: caps and fees to the members at H + 1 ms; at H + 3 ms clears their orders in the LEC's pool
    (its pool strategy: itself, or settling its pool operator's book), plans the community battery around
    their plans and sends the LEC's position to the platform."""

    def __init__(self, fed: Federate):
        super().__init__(fed)
        self.clear_offset_s = fed.options.clear_offset_s
        self.pool = POOLS[fed.options.pool]
        self.caps = {}
        self.previous_import = {}
        self.publish_caps = "member_caps" in fed.ports["out"]  # an agent proxy decides for some members

    def reset(self) -> None:
        super().reset()
        self.caps, self.previous_import = {}, {}

    def hour_slots(self, hour: int, start: float):
        yield start + self.plan_offset_s, lambda _: self.send_caps(hour)
        yield start + self.clear_offset_s, lambda _: self.clear_pool(hour)

    def send_caps(self, hour: int) -> None:
        p2p = self.scenario.p2p
        self.read_limits()
        self.read_soc(hour)
        if self.import_limit is not None:
            lec_limit = float(self.import_limit[self.me])
        elif p2p.member_import_cap_kw is not None:
            lec_limit = p2p.member_import_cap_kw * len(self.my_households)
        else:
            lec_limit = math.inf
        self.caps = member_caps_and_fees(self.previous_import, self.my_households, lec_import_limit_kw=lec_limit,
                                         fairness_fee_eur_per_kwh=p2p.fairness_fee_eur_per_kwh,
                                         member_import_limits_kw=self.member_import_limit)
        messages = {member: {"hour": hour, "import_cap_kw": cap, "import_fee_eur_per_kwh": fee,
                             "over_cap_fee_eur_per_kwh": p2p.over_cap_fee_eur_per_kwh}
                    for member, (cap, fee) in self.caps.items()}
        for member, message in messages.items():
            self.fed.send(self.fed.endpoint("market"), self.fed.target("members", member), message)
        if self.publish_caps:
            self.fed.publish_port("member_caps", messages)

    def clear_pool(self, hour: int) -> None:
        fed, lec, homes, p2p = self.fed, self.lec, self.my_households, self.scenario.p2p
        retail, feed_in = self.retail[hour], self.feed_in[hour]
        member_of = {fed.target("members", m): m for m in homes}
        orders, others = {}, []
        for source, payload in fed.receive(fed.endpoint("market")):
            if source in member_of:
                orders[payload["member"]] = payload
            else:
                others.append(payload)
        missing = set(homes) - set(orders)
        if missing or any(o["hour"] != hour for o in orders.values()):
            raise RuntimeError(f"{lec} market: hour {hour}: no order from {sorted(missing)}")
        net_kwh = {m: orders[m]["net_kwh"] for m in homes}
        pool = self.pool(lec, hour, net_kwh, others, import_price=retail, export_price=feed_in,
                         arrival_seed=p2p.arrival_seed, lec_index=self.me)
        trades = []
        for m in homes:
            cap, fee = self.caps[m]
            result = {"hour": hour, "member": m, "net_kwh": net_kwh[m],
                      "price_eur_per_kwh": pool.member_price_eur_per_kwh(m),
                      **{k: getattr(pool, k).get(m, 0.0) for k in
                         ("bought_kwh", "sold_kwh", "grid_import_kwh", "grid_export_kwh", "cost_eur")},
                      "import_cap_kw": cap, "import_fee_eur_per_kwh": fee}
            result["fee_eur"] = fee * result["grid_import_kwh"] + p2p.over_cap_fee_eur_per_kwh * max(
                0.0, result["grid_import_kwh"] - cap)
            trades.append(result)
            fed.send(fed.endpoint("market"), fed.target("members", m), result)
        self.previous_import = {t["member"]: t["grid_import_kwh"] for t in trades}
        # The community battery around the members' own plans over the window.
        plans = np.sum([orders[m]["plan_kw"] for m in homes], axis=0)
        net = np.zeros((len(self.names), len(plans)))
        net[self.me] = plans
        plan = plan_lec_alone(self.problem(hour, with_edges=False, net_demand_kw=net), self.me)
        self.publish_hour(hour, plan)
        self.record.update({"pool_price_eur_per_kwh": pool.price_eur_per_kwh, "pool_volume_kwh": pool.volume_kwh,
                            "trades": trades, **pool.market_record()})
        self.send_position(hour)


STRATEGIES = {"plan_alone": PlanAlone, "negotiate": Negotiate, "run_market": RunMarket}
"""The LEC_EMS's strategies by the name its config gives (``ems``)."""


def build(fed: Federate):
    strategy = STRATEGIES[fed.options.ems](fed)
    return SimpleNamespace(slots=strategy.slots(), reset=strategy.reset)


if __name__ == "__main__":
    main(build, __doc__)
