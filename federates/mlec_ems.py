"""LEC_EMS federate: one local energy community's energy-management system, in any of the three frameworks.

Every hour it plans its batteries for the rest of the day (``lec_cosim.models.multi_lec_ems``)
within the DSO's latest limits and publishes the hour's set-points; then, by framework:

* decentralised: plans alone and sends its hourly position to the market platform;
* distributed: negotiates exchanges with its neighbours by ADMM (``LecAgent``), one iteration
  per microsecond slot, and stops when the residuals it hears of say all agents stop;
* p2p: sends its members their import caps and fees, clears their orders in the LEC's pool,
  plans the community battery around their plans and sends the LEC's position to the platform.

At H + 5 ms it publishes the hour's record (plan, trades, negotiation) for the recorder.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np

from federates.common import Federate, main
from lec_cosim.models.exchange import LecAgent, ProposalMessage, solve_centralised
from lec_cosim.models.multi_lec_ems import (
    hourly_tariffs,
    members_from_scenario,
    n_hours,
    pooled_batteries,
    rest_of_day_problem,
)
from lec_cosim.models.p2p import clear_lec_pool, member_caps_and_fees, member_orders


def build(fed: Federate):
    s = fed.scenario
    lec = fed.settings["lec"]
    on_platform = bool(fed.settings["on_platform"])
    framework = s.framework
    members = members_from_scenario(s)
    names = members.lec_names
    me = names.index(lec)
    batteries = pooled_batteries(members, home_batteries=framework != "p2p")
    soc_kwh = 0.5 * batteries.energy_kwh
    retail, feed_in = hourly_tariffs(members, s.tariff.scheme, s.tariff.feed_in_eur_per_kwh)
    hours = n_hours(members)
    table = members.table
    my_households = list(table.loc[(table["lec"] == lec) & (table["kind"] == "household"), "member"])
    neg = s.negotiation
    plan_offset_s, clear_offset_s = fed.settings["plan_offset_s"], fed.settings["clear_offset_s"]
    settle_offset_s, admm_slot_s = fed.settings["settle_offset_s"], fed.settings["admm_slot_s"]
    state = SimpleNamespace(import_limit=None, export_limit=None, record=None, agent=None, previous_import={})

    def read_limits() -> None:
        if s.dso.limits:
            imports = fed.read_port("import_limit_kw")
            exports = fed.read_port("export_limit_kw")
            if len(imports) == len(names):  # nothing before the DSO's first step
                state.import_limit, state.export_limit = np.array(imports), np.array(exports)

    def problem(hour: int, *, with_edges: bool, net_demand_kw=None):
        return rest_of_day_problem(members, s, first_hour=hour, soc_kwh=soc_kwh, batteries=batteries,
                                   net_demand_kw=net_demand_kw, import_limit_kw=state.import_limit,
                                   export_limit_kw=state.export_limit, with_edges=with_edges, only_lec=me)

    def publish_hour(hour: int, plan: dict) -> None:
        """Set-points of the hour from a plan (arrays over the remaining hours) and the record's plan part."""
        charge = float(plan["charge_kw"][0] - plan["discharge_kw"][0])
        curtail = float(plan["curtailed_kw"][0])
        fed.publish_port("pooled_charge_kw", charge)
        fed.publish_port("curtail_kw", curtail)
        state.record = {
            "hour": hour, "lec": lec, "framework": framework, "soc_start_kwh": float(soc_kwh[me]),
            "pooled_charge_kw": charge, "curtail_kw": curtail, "planned_soc_kwh": float(plan["soc_kwh"][0]),
            "planned_import_kw": float(plan["import_kw"][0]), "planned_export_kw": float(plan["export_kw"][0]),
            "limit_excess_kw": float(plan["limit_excess_kw"][0]),
            "import_limit_kw": None if state.import_limit is None else float(state.import_limit[me]),
            "export_limit_kw": None if state.export_limit is None else float(state.export_limit[me]),
        }
        # The households run the set-point exactly within the batteries' limits, which the plan
        # respects; so the planned energy is the batteries' energy at the next hour's start.
        soc_kwh[me] = float(plan["soc_kwh"][0])

    def send_position(hour: int) -> None:
        if on_platform:
            position = state.record["planned_import_kw"] - state.record["planned_export_kw"]  # one hour: kWh
            fed.send(fed.endpoint("ems"), fed.target("platform"), {"hour": hour, "lec": lec, "position_kwh": position})

    # -- decentralised ---------------------------------------------------------------------

    def plan_alone(hour: int) -> None:
        read_limits()
        publish_hour(hour, solve_centralised(problem(hour, with_edges=False)).of_lec(me))
        send_position(hour)

    # -- distributed -----------------------------------------------------------------------

    def start_negotiation(hour: int) -> None:
        read_limits()
        state.agent = LecAgent(problem(hour, with_edges=True), me, rho_eur_per_kwh2=neg.rho_eur_per_kwh2,
                               tol_kw=neg.tol_kw, max_iterations=neg.max_iterations)
        state.residuals = []
        propose()

    def propose() -> None:
        for message in state.agent.propose():
            fed.send(fed.endpoint("ems"), fed.target("lecs", names[message.receiver]), json.loads(message.to_json()))

    def iterate(hour: int) -> None:
        agent = state.agent
        heard = [ProposalMessage.from_json(json.dumps(payload)) for _, payload in fed.receive(fed.endpoint("ems"))]
        agent.receive(heard)
        k = agent.state.iteration
        for e, n, _ in agent.neighbours:
            primal, dual = agent.state.residual_reports[(e, k)]
            state.residuals.append({"iteration": k, "neighbour": names[n], "primal_residual_kw": primal,
                                    "dual_residual_eur_per_kwh": dual})
        if not agent.state.finished:
            propose()
            return
        schedule = agent.schedule()
        publish_hour(hour, schedule)
        exchanges = []
        for e, n, _ in agent.neighbours:
            sent = float(agent.state.targets_kw[n][0])  # agreed kW from this LEC to n in the hour
            price = -float(agent.state.duals_eur_per_kwh[n][0])
            exchanges.append({"neighbour": names[n], "sent_kwh": sent, "price_eur_per_kwh": price,
                              "payment_eur": -price * sent,
                              "wheeling_eur": 0.5 * neg.wheeling_eur_per_kwh2 * sent ** 2})
        state.record.update({"iterations": k, "converged": agent.state.converged, "exchanges": exchanges,
                             "residuals": state.residuals})

    def negotiation_slots(hour: int, start: float):
        yield start + plan_offset_s, lambda _: start_negotiation(hour)
        k = 0
        while not state.agent.state.finished:
            k += 1
            yield start + plan_offset_s + k * admm_slot_s, lambda _: iterate(hour)

    # -- p2p -------------------------------------------------------------------------------

    def send_caps(hour: int) -> None:
        read_limits()
        if state.import_limit is not None:
            lec_limit = float(state.import_limit[me])
        elif s.p2p.member_import_cap_kw is not None:
            lec_limit = s.p2p.member_import_cap_kw * len(my_households)
        else:
            lec_limit = math.inf
        caps = member_caps_and_fees(state.previous_import, my_households, lec_import_limit_kw=lec_limit,
                                    fairness_fee_eur_per_kwh=s.p2p.fairness_fee_eur_per_kwh)
        state.caps = caps
        for member, (cap, fee) in caps.items():
            fed.send(fed.endpoint("market"), fed.target("members", member), {
                "hour": hour, "import_cap_kw": cap, "import_fee_eur_per_kwh": fee,
                "over_cap_fee_eur_per_kwh": s.p2p.over_cap_fee_eur_per_kwh})

    def clear_pool(hour: int) -> None:
        orders = {payload["member"]: payload for _, payload in fed.receive(fed.endpoint("market"))}
        missing = set(my_households) - set(orders)
        if missing or any(o["hour"] != hour for o in orders.values()):
            raise RuntimeError(f"{lec} market: hour {hour}: no order from {sorted(missing)}")
        net_kwh = {m: orders[m]["net_kwh"] for m in my_households}
        pool = clear_lec_pool(member_orders(net_kwh, import_price_eur_per_kwh=retail[hour],
                                            export_price_eur_per_kwh=feed_in[hour]),
                              import_price_eur_per_kwh=retail[hour], export_price_eur_per_kwh=feed_in[hour])
        trades = []
        for m in my_households:
            cap, fee = state.caps[m]
            result = {"hour": hour, "member": m, "net_kwh": net_kwh[m], "price_eur_per_kwh": pool.price_eur_per_kwh,
                      **{k: getattr(pool, k).get(m, 0.0) for k in
                         ("bought_kwh", "sold_kwh", "grid_import_kwh", "grid_export_kwh", "cost_eur")},
                      "import_cap_kw": cap, "import_fee_eur_per_kwh": fee}
            result["fee_eur"] = fee * result["grid_import_kwh"] + s.p2p.over_cap_fee_eur_per_kwh * max(
                0.0, result["grid_import_kwh"] - cap)
            trades.append(result)
            fed.send(fed.endpoint("market"), fed.target("members", m), result)
        state.previous_import = {t["member"]: t["grid_import_kwh"] for t in trades}
        # The community battery around the members' own plans for the rest of the day.
        plans = np.sum([orders[m]["plan_kw"] for m in my_households], axis=0)
        net = np.zeros((len(names), len(plans)))
        net[me] = plans
        publish_hour(hour, solve_centralised(problem(hour, with_edges=False, net_demand_kw=net)).of_lec(me))
        state.record.update({"pool_price_eur_per_kwh": pool.price_eur_per_kwh, "pool_volume_kwh": pool.volume_kwh,
                             "trades": trades})
        send_position(hour)

    # -- every framework -------------------------------------------------------------------

    def settle(hour: int) -> None:
        if on_platform:
            answers = fed.receive(fed.endpoint("ems"))
            if len(answers) != 1 or answers[0][1].get("hour") != hour:
                raise RuntimeError(f"{lec}: expected one platform result for hour {hour}, got {len(answers)}")
            state.record["platform"] = answers[0][1]
        fed.publish_port("record", state.record)

    def slots():
        for hour in range(hours):
            start = hour * 3600.0
            if framework == "distributed":
                yield from negotiation_slots(hour, start)
            elif framework == "decentralised":
                yield start + plan_offset_s, lambda _, h=hour: plan_alone(h)
            else:
                yield start + plan_offset_s, lambda _, h=hour: send_caps(h)
                yield start + clear_offset_s, lambda _, h=hour: clear_pool(h)
            yield start + settle_offset_s, lambda _, h=hour: settle(h)

    return SimpleNamespace(slots=slots())


if __name__ == "__main__":
    main(build, __doc__)
