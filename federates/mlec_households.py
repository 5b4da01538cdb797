"""Households federate: every member's assets in one federate (grouped HEMS), for the three frameworks.

At every hour's start but the first of a run or an episode (H + 0 ms, the config's ``measure_offset_s``;
the first starts from the known initial state) it sends each LEC_EMS (from its endpoint
``meter`` to the target ``lec_ems``) the energy in the batteries that LEC_EMS plans (home and community batteries
in decentralised and distributed, the community battery in p2p) as the grid steps of the hour before left them:
the LEC_EMS plans the hour from it at H + 1 ms. (A message, not a value: a value would tie households and
LEC_EMSs in a loop of HELICS time requests, ``docs/design/frameworks.md``.) This is what the batteries hold,
which is not what the LEC_EMS planned once a battery clips its share of a pooled set-point (it runs full or
empty before the others of its pool).

At every grid step (t + 6 ms) it runs each member's load and PV (less the PV its LEC_EMS curtails)
and each battery at its set-point, and publishes the members' powers (households, then the
community batteries). The set-points: in decentralised and distributed, each LEC_EMS's pooled
set-point split over the home and community batteries it manages; in p2p, the community battery's
set-point from the LEC_EMS, and for every home battery its own HEMS plan: at H + 2 ms each HEMS
reads the caps and fee its LEC sent, plans ahead for its own cost (``lec_cosim.models.p2p.plan_home``, over
the LEC_EMS's window, on its home's true profile or with ``ems.forecast`` on the forecast of it,
``lec_cosim.models.forecast``) and sends its LEC's market its order for the hour. With a pool
operator (the config's ``pool_operator``) that message is the member's plan for its LEC_EMS, and the
order goes to the LEC's pool operator (target ``pool``) in the operator's format
(``lec_cosim.models.lec_pool.pool_order_message``).

A household whose home battery an agent decides (the config's ``agent_members``: a scenario's ``agents:``, played
through :mod:`lec_cosim.env`) takes the hour's set-point from its port ``<member>.action`` (the agent proxy's, at
H + 1.5 ms), clipped to what its battery can run for the hour, and bids the hour's net position it gives. For
the later hours it tells its LEC_EMS what its HEMS would plan from the state of charge the hour leaves (the
agent decides only the hour; a set-point equal to the HEMS's own keeps the HEMS's plan as it is).

With the DSO's limits per household (``dso.limits_per: household``: inputs ``household_import_limit_kw``,
``household_export_limit_kw``) every household keeps to its latest limits at each grid step as far as its devices
can, as a connection under a dynamic operating envelope must: its home battery's set-point (its LEC_EMS's share or
its HEMS's plan) is moved into what keeps the household within them (charging no more than its import limit
leaves, discharging enough to bring its import down to it, charging what its export limit does not let out), then
its PV is curtailed to its export limit (the larger of its share of its LEC_EMS's curtailment and what its own
limit needs). Load cannot be curtailed: an import above the import limit that the battery cannot cover stays (the
results report it). A home battery moved off its LEC_EMS's pooled set-point leaves the LEC_EMS's planned state of
charge behind; the battery itself never runs past full or empty (:class:`~lec_cosim.models.multi_lec_ems.
HomeBatteries`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np

from federates.common import Federate, main
from lec_cosim.components.mlec_households import VECTORS
from lec_cosim.models.forecast import forecasts_from_scenario
from lec_cosim.models.home_plan import reachable_soc_final_kwh
from lec_cosim.models.lec_pool import pool_order_message
from lec_cosim.models.multi_lec_ems import (
    HomeBatteries,
    curtailment_split,
    hourly_tariffs,
    members_from_scenario,
    n_hours,
    planning_window,
    pooled_batteries,
    steps_per_hour,
)
from lec_cosim.models.p2p import plan_home

AGENT_SAME_KW = 1e-9
"""An agent's set-point this close to its HEMS's own decision is that decision: the HEMS's plan stands as it is."""


def build(fed: Federate):
    s = fed.scenario
    members = members_from_scenario(s)
    table = members.table
    names = members.lec_names
    members_bid = fed.options.members_bid  # each HEMS plans its home battery and bids (p2p)
    pool_operator = fed.options.pool_operator  # the LEC's pool operator clears its pool (p2p)
    pooled = pooled_batteries(members, home_batteries=not members_bid)
    batteries = HomeBatteries(members)
    retail, feed_in = hourly_tariffs(members, s.tariff.scheme, s.tariff.feed_in_eur_per_kwh)
    # what each HEMS plans its home on: its true profile, or the scenario's forecast of it (ems.forecast)
    forecasts = forecasts_from_scenario(s, members, lecs=names) if members_bid else None
    households = [j for j, kind in enumerate(table["kind"]) if kind == "household"]
    own_plan_kw = np.zeros(len(table))
    agent_members = set(fed.options.agent_members)
    efficiency = [table.at[j, "battery_efficiency"] or 1.0 for j in range(len(table))]
    household_limited = "household_export_limit_kw" in fed.ports.get("in", {})
    home_batteries = np.array([table.at[j, "kind"] == "household" and batteries.power_kw[j] > 0
                               for j in range(len(table))])
    # each household's member, LEC and endpoint, looked up once: a pandas lookup and a port lookup per member and
    # hour cost more than its order's message
    member_of = {j: table.at[j, "member"] for j in households}
    lec_of = {j: table.at[j, "lec"] for j in households}
    endpoint_of = {j: fed.endpoint(member_of[j]) for j in households} if members_bid else {}

    def lec_values(value: str) -> np.ndarray:
        return np.array([fed.read_port(f"{lec}.{value}") for lec in names])

    def home_plan(j: int, hour: int, first_hour: int, soc_kwh: float, cap: dict):
        """Member ``j``'s HEMS plan from ``first_hour`` to the end of the window of ``hour`` (``planning_window``) from
        ``soc_kwh``, under its LEC's caps, on the forecast it made at ``hour``."""
        return plan_home(**home_problem(j, hour, first_hour, soc_kwh, cap))

    def home_problem(j: int, hour: int, first_hour: int, soc_kwh: float, cap: dict) -> dict:
        """:func:`plan_home`'s arguments for :func:`home_plan` (the forecast is looked up here, in the federate's
        thread: the forecaster caches)."""
        w = planning_window(members, s, hour)
        load, pv = forecasts.member(j, hour, w.stop - hour)
        skip = first_hour - hour
        return dict(load_kw=load[skip:], pv_kw=pv[skip:], dt_h=1.0,
                    import_price_eur_per_kwh=retail[first_hour:w.stop],
                    export_price_eur_per_kwh=feed_in[first_hour:w.stop],
                    battery_kwh=batteries.energy_kwh[j], battery_kw=batteries.power_kw[j],
                    battery_efficiency=efficiency[j], soc_kwh=soc_kwh, soc_final_kwh=reachable_soc_final_kwh(
                        0.5 * batteries.energy_kwh[j], soc_kwh=soc_kwh, battery_kw=batteries.power_kw[j],
                        battery_efficiency=efficiency[j], dt_h=1.0, steps=w.stop - first_hour),
                    import_cap_kw=cap["import_cap_kw"], over_cap_fee_eur_per_kwh=cap["over_cap_fee_eur_per_kwh"],
                    import_fee_eur_per_kwh=cap["import_fee_eur_per_kwh"])

    # The HEMSs' LPs of an hour are independent: two threads solve them (HiGHS releases the GIL while it solves;
    # 28 home LPs 17 -> 12 ms on 2 idle cores, 2026-12-07). Their inputs are gathered and their orders sent in the
    # federate's thread, in the households' order, as before: the same plans and messages.
    planner = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hems") if members_bid else None

    def bid(hour: int) -> None:
        caps = {}
        for j in households:
            got = fed.receive(endpoint_of[j])
            if len(got) != 1 or got[0][1]["hour"] != hour:
                raise RuntimeError(f"{member_of[j]}: expected one cap message from {lec_of[j]} for hour {hour}, got "
                                   f"{len(got)}")
            caps[j] = got[0][1]
        problems = [home_problem(j, hour, hour, batteries.soc_kwh[j], caps[j]) for j in households]
        plans = dict(zip(households, planner.map(lambda problem: plan_home(**problem), problems)))
        for j in households:
            member, lec, endpoint, cap, plan = member_of[j], lec_of[j], endpoint_of[j], caps[j], plans[j]
            own_plan_kw[j] = plan.charge_kw[0] - plan.discharge_kw[0]
            plan_kw = plan.net_kw.tolist()
            if member in agent_members:
                if not fed.port_updated(f"{member}.action"):
                    raise RuntimeError(f"{member}: no set-point from its agent for hour {hour}")
                decided = batteries.hour_setpoint(j, fed.read_port(f"{member}.action"))
                if abs(decided - own_plan_kw[j]) > AGENT_SAME_KW:  # the later hours: its HEMS's plan from there
                    later = (home_plan(j, hour, hour + 1, batteries.soc_after_kwh(j, decided), cap).net_kw.tolist()
                             if len(plan_kw) > 1 else [])  # the rest of the hour's window
                    own_plan_kw[j] = decided
                    load, pv = forecasts.member(j, hour, 1)
                    plan_kw = [float(load[0] - pv[0] + decided), *later]
            fed.send(endpoint, fed.target("market", lec), {
                "hour": hour, "member": member, "net_kwh": plan_kw[0], "plan_kw": plan_kw})
            if pool_operator:
                fed.send(endpoint, fed.target("pool", lec), pool_order_message(
                    member, plan_kw[0], period=hour, import_price_eur_per_kwh=retail[hour],
                    export_price_eur_per_kwh=feed_in[hour]))

    step_ports = [port for port in fed.ports["out"] if port in VECTORS]  # the members' vectors it publishes

    first_hour = [True]  # of a run or an episode: the LEC_EMSs know the initial state, nothing to measure

    def measure(hour: int) -> None:
        """Each LEC's pooled energy now, to its LEC_EMS (the hour's start: what the last grid step left)."""
        if first_hour[0]:
            first_hour[0] = False
            return
        for lec, soc_kwh in zip(names, pooled.soc_kwh(members, batteries.soc_kwh)):
            fed.send(fed.endpoint("meter"), fed.target("lec_ems", lec),
                     {"hour": hour, "lec": lec, "pooled_soc_kwh": float(soc_kwh)})

    def step(n: int) -> None:
        if members_bid:
            for j in households:  # the pool's answers settle money only; the recorder has them from the LEC
                fed.receive(endpoint_of[j])
        charge = pooled.split(members, lec_values("pooled_charge_kw")) + own_plan_kw
        if household_limited:
            charge = within_limits(n, charge)
        battery_kw = batteries.apply(charge)
        curtailed = curtailment_split(members, n, lec_values("curtail_kw"))
        if household_limited:
            curtailed = np.maximum(curtailed, limit_curtailment(n, battery_kw))
        pv = members.pv_kw[:, n] - curtailed
        values = {"load_kw": members.load_kw[:, n], "load_kvar": members.load_kvar[:, n], "pv_kw": pv,
                  "curtailed_kw": curtailed, "battery_kw": battery_kw, "soc_kwh": batteries.soc_kwh,
                  "net_kw": members.load_kw[:, n] - pv + battery_kw}
        for port in step_ports:
            fed.publish_port(port, values[port])

    stale_limits = [False]  # after a learning environment's reset: the inputs hold the last episode's limits

    def latest_limits() -> tuple[np.ndarray, np.ndarray]:
        """Per member, its household's latest import and export limits (``inf``: none yet, or not a household)."""
        found = []
        if stale_limits[0]:
            if not fed.port_updated("household_import_limit_kw"):
                return np.full(len(table), np.inf), np.full(len(table), np.inf)  # as a fresh federation's first step
            stale_limits[0] = False
        for port in ("household_import_limit_kw", "household_export_limit_kw"):
            values = np.asarray(fed.read_port(port), dtype=float)
            limit = np.full(len(table), np.inf)
            if len(values) == len(households):
                limit[households] = values
            found.append(limit)
        return found[0], found[1]

    def within_limits(n: int, charge_kw: np.ndarray) -> np.ndarray:
        """Home batteries' set-points moved into what keeps their households within their limits at step ``n``."""
        imports, exports = latest_limits()
        own = members.load_kw[:, n] - members.pv_kw[:, n]
        most, least = imports - own, -own - exports  # charge keeping import <= limit; charge keeping export <= limit
        moved = np.clip(charge_kw, least, np.maximum(most, least))
        return np.where(home_batteries, moved, charge_kw)

    def limit_curtailment(n: int, battery_kw: np.ndarray) -> np.ndarray:
        """Per member, the PV to curtail at step ``n`` so that each household exports no more than its latest
        export limit (none before the DSO's first one)."""
        limit = latest_limits()[1]
        pv = members.pv_kw[:, n]
        return np.clip(pv - members.load_kw[:, n] - battery_kw - limit, 0.0, pv)

    def slots():
        per_hour = steps_per_hour(members)
        for hour in range(n_hours(members)):
            start = hour * 3600.0
            yield start + fed.options.measure_offset_s, lambda _, h=hour: measure(h)
            if members_bid:
                yield start + fed.options.bid_offset_s, lambda _, h=hour: bid(h)
            for j in range(per_hour):
                n = hour * per_hour + j
                yield start + j * s.grid_step_s + fed.options.step_offset_s, lambda _, n=n: step(n)

    def reset() -> None:  # a learning environment's next episode (Federate.run_episodes)
        batteries.reset()
        own_plan_kw[:] = 0.0
        first_hour[0] = True
        if "household_import_limit_kw" in fed.ports.get("in", {}):
            for port in ("household_import_limit_kw", "household_export_limit_kw"):
                fed.read_port(port)  # read now, they count only once the episode's DSO has published again
            stale_limits[0] = True

    def finish() -> None:
        if planner is not None:
            planner.shutdown()

    return SimpleNamespace(slots=slots(), reset=reset, finish=finish)


if __name__ == "__main__":
    main(build, __doc__)
