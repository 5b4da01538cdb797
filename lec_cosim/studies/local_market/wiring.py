"""The federation of a local electricity market (``framework: local_market``).

Federates::

    participants_1..n   households and CHPs, grouped; orders out, results in, injections out
                        (federates/lem_participants.py)
    market              the pool operator: clears each hourly pool (only when the LEM is enabled;
                        federates/lem_market.py, a component any study can wire)
    dso                 three-phase power flow of the IEEE European LV feeder at every grid step
                        (the generic federates/dso.py running lec_cosim.adapters.ieee_feeder)
    recorder            writes the results contract (the generic federates/recorder.py running
                        lec_cosim.studies.local_market.results.LocalMarketRecord)

Orders and results travel as HELICS **messages**; everything physical is a **value**. The time
pattern within each hour T (seconds) cannot deadlock, whatever the number of bidders, because
no federate ever waits for a reply: every federate requests fixed times, and HELICS delivers a
message stamped t to a federate granted a time later than t::

    T + 1 ms   participants  send one order message per participant to ``lem/market`` (with
                             ``participants.messages: per_group`` one per group, for all its players)
    T + 2 ms   market        clears the hour with every order that arrived; answers each order
                             message with its players' results and sends the recorder the whole book
    T + 3 ms   participants  read their results, settle the hour, publish injections
               (and at the other grid steps t of the hour: t + 3 ms, injections only)
    t + 4 ms   dso           power flow with the injections of step t
    t + 5 ms   recorder      reads everything of step t

With ``resolution.exchange: period`` (the default) the grid steps of an hour travel together: at
T + 3 ms the participants publish vectors holding every grid step of the hour (step-major), at
T + 4 ms the DSO solves them one by one and publishes one vector per indicator (one value per
step), and the recorder reads them at T + 5 ms. The grid is still solved at every grid step; only
the time requests of the grid steps inside an hour go, as nothing here reacts within an hour.

With ``resolution.exchange: day`` everything that happens in an hour above happens once a day, for the day's
24 hours (as a day-ahead market with hourly products): at T + 1 ms (T a day's start) one order message per
player (or group) holds its 24 hours' orders, at T + 2 ms the market clears the 24 hourly pools, each as if
alone, answers each message once with the 24 results, sends the recorder the 24 books in one message and
publishes price and volume as vectors of 24; at T + 3 ms the participants settle the 24 hours and publish
settlement vectors of 24 x players (hour-major) and injection vectors of the day's 96 grid steps; at T + 4 ms
the DSO solves the 96 steps as one block. The results are the hourly exchange's to the last digit
(``tests/test_day_exchange.py``): nothing a player bids depends on an outcome of the same day. Not with agents,
who decide each hour on the last hour's outcome.

With ``agents:`` an agent proxy (federates/agent.py, or a learning environment, lec_cosim.env) takes
the named players' decisions: at T + 0.5 ms it publishes each one's bid (price, quantity), which its
participant group reads at T + 1 ms instead of the player's rule or strategy; at its next slot (T + 1 h + 0.5 ms)
it reads what the hour gave (price, volume, the CHP's settlement, the DSO's values).

A bidder that sends nothing simply is not in the book. The market never counts replies, so a
federation of 61 single-participant federates works like one of three groups.
"""

from __future__ import annotations

from dataclasses import replace

from lec_cosim.models.feeder_copies import copy_name
from lec_cosim.models.lem_community import participant_groups
from lec_cosim.scenario import LemScenario
from lec_cosim.wiring import FederatePlan, Signal

AGENT_OFFSET_S = 0.0005
"""The agent proxy decides first in each hour (only with ``agents:``)."""
ORDER_OFFSET_S = 0.001
MARKET_OFFSET_S = 0.002
DISPATCH_OFFSET_S = 0.003
DSO_OFFSET_S = 0.004
RECORDER_OFFSET_S = 0.005
SLOT_PERIOD_S = 0.001
"""Participants act at two slots of an hour; a 1 ms period lets them be granted exactly those."""

MARKET_ENDPOINT = "lem/market"
RECORDER_ENDPOINT = "lem/recorder"
PARTICIPANT_VECTORS = ("load_kw", "load_kvar", "pv_kw", "chp_kw", "net_kw")
SETTLEMENT_VECTORS = ("lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh", "grid_export_kwh", "chp_kwh",
                      "cost_eur", "income_eur")
DSO_DOUBLES = ("vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "dn_impact", "trafo_p_kw")
DSO_COUNTS = ("bus_violations", "bus_violations_reduced", "angle_violations", "line_overloads")
DSO_DAY_COUNTS = ("violated_buses_so_far", "violated_buses_so_far_reduced")
"""Distinct buses outside the voltage band since the start (all LV buses / the reduced model's)."""
MARKET_DOUBLES = ("price_eur_per_kwh", "volume_kwh")


def participant_endpoint(name: str) -> str:
    return f"lem/{name}"


def group_endpoint(group: str) -> str:
    """The endpoint a participant federate's players share with ``participants.messages: per_group``."""
    return f"lem/{group}"


def source_community(scenario):
    """The community on a ``feeder.source``; what its data cannot give is one line naming the scenario."""
    from lec_cosim.models.lem_community import community_from_scenario
    from lec_cosim.scenario import ScenarioError

    try:
        return community_from_scenario(scenario)
    except (ValueError, KeyError, OSError) as exc:  # FeederSourceError and DataError are ValueErrors
        raise ScenarioError(f"{scenario.source_file}: data: {' '.join(str(exc).split())}") from None


def all_participants(scenario: LemScenario) -> list[str]:
    """The players in their fixed order (LOAD1..LOAD55, CHP1..CHP6, then the same for each feeder copy)."""
    if scenario.feeder.source is not None:  # the community on the source's feeder names its players
        return source_community(scenario).names
    one = [f"LOAD{k}" for k in range(1, 56)] + [f"CHP{k}" for k in range(1, 7)]
    return [copy_name(name, c) for c in range(1, scenario.feeder.copies + 1) for name in one]


def groups(scenario: LemScenario) -> dict[str, list[str]]:
    """Participant federate name -> its participants."""
    dealt = participant_groups(all_participants(scenario), scenario.participants.federates)
    return {f"participants_{g + 1}": members for g, members in enumerate(dealt)}


def block_steps(scenario: LemScenario) -> int:
    """Grid steps per exchange: all steps of a market period or of a day, or 1 (``resolution.exchange``)."""
    return periods_per_exchange(scenario) * scenario.market_step_s // scenario.grid_step_s \
        if scenario.resolution.exchange != "step" else 1


def periods_per_exchange(scenario: LemScenario) -> int:
    """Market periods per exchange: a day's with ``resolution.exchange: day``, else 1."""
    return 86400 // scenario.market_step_s if scenario.resolution.exchange == "day" else 1


def plan(scenario: LemScenario) -> list[FederatePlan]:
    """Every federate of the federation with its interface, in start order.

    The federates spell no key and no endpoint: each reads them from its config by port name. A
    participant group publishes its vectors on ports named as the vectors, receives at one endpoint
    port per player (the player's name), or with ``participants.messages: per_group`` at one for all
    (``group``), and sends its orders to ``orders``; the market takes orders
    at ``orders``, answers each player at its member of ``results`` and sends the book to ``book``;
    the DSO and the recorder read a group's vector ``v`` at ``<group>/v``, the recorder the DSO's
    values at ``grid/v``, the market's at ``market/v`` and the book at its endpoint port ``book``.
    """
    block = block_steps(scenario)
    grid_s = scenario.grid_step_s * block
    periods = periods_per_exchange(scenario)
    market_s = scenario.market_step_s * periods  # the period of the orders' exchange
    blocks = {"block_steps": block}
    bundles = {"periods_per_exchange": periods} if periods > 1 else {}  # the participants' and the recorder's
    market = scenario.market.enabled
    members_of = groups(scenario)
    plans = []
    group_pubs = {}
    agents = list(scenario.agents)
    per_group = scenario.participants.messages == "per_group"
    answer_at = {}  # player -> the endpoint its orders come from and its result goes to
    for name, members in members_of.items():
        pubs = [Signal(f"lem/{name}/{v}", "vector", port=v) for v in PARTICIPANT_VECTORS + SETTLEMENT_VECTORS]
        group_pubs[name] = pubs
        played = [m for m in members if m in agents]
        ports = ({"group": group_endpoint(name)} if per_group
                 else {m: participant_endpoint(m) for m in members})
        answer_at.update({m: ports["group"] if per_group else ports[m] for m in members})
        plans.append(FederatePlan(
            name, "federates.lem_participants", SLOT_PERIOD_S, 0.0, pubs,
            [Signal(agent_action_key(m), "vector", port=f"{m}.action") for m in played],
            list(ports.values()),
            {"participants": members, **blocks, **bundles, "order_offset_s": ORDER_OFFSET_S,
             "dispatch_offset_s": DISPATCH_OFFSET_S, "physical_vectors": list(PARTICIPANT_VECTORS),
             "settlement_vectors": list(SETTLEMENT_VECTORS), **({"agent_players": played} if played else {})},
            endpoint_ports=ports,
            targets={"orders": MARKET_ENDPOINT} if market else {},
            acts_at=((market_s, ORDER_OFFSET_S),) * market + ((grid_s, DISPATCH_OFFSET_S),)))
    market_pubs = [Signal(f"lem/market/{v}", "vector" if periods > 1 else "double", port=v) for v in MARKET_DOUBLES]
    if market:
        plans.append(FederatePlan(
            "market", "federates.lem_market", market_s, MARKET_OFFSET_S, market_pubs, [],
            # the participants read their accepted quantities; the allocation reaches the results through the book
            [MARKET_ENDPOINT], {"solver": scenario.market.solver, "bidder_allocation": False,
                                **({"periods_per_step": periods} if periods > 1 else {})},
            endpoint_ports={"orders": MARKET_ENDPOINT},
            targets={"results": answer_at, "book": RECORDER_ENDPOINT}))

    def read_as(prefix: str, signals: list[Signal]) -> list[Signal]:
        """The same values under the reader's port names: ``prefix/<the publisher's port>``."""
        return [replace(s, port=f"{prefix}/{s.port}") for s in signals]

    physical = [s for name, pubs in group_pubs.items() for s in read_as(name, pubs)
                if s.key.rsplit("/", 1)[1] in PARTICIPANT_VECTORS]
    if block == 1:
        dso_pubs = [Signal(f"lem/grid/{v}", port=v) for v in DSO_DOUBLES] + [
            Signal(f"lem/grid/{v}", "integer", port=v) for v in DSO_COUNTS + DSO_DAY_COUNTS]
    else:  # one value per grid step of the period
        dso_pubs = [Signal(f"lem/grid/{v}", "vector", port=v) for v in DSO_DOUBLES + DSO_COUNTS + DSO_DAY_COUNTS]
    group_settings = {"groups": members_of, **blocks}
    plans.append(FederatePlan("dso", "federates.dso", grid_s, DSO_OFFSET_S, dso_pubs, physical, [],
                              {**SETTINGS["dso"], **group_settings}))
    recorder_subs = [s for name, pubs in group_pubs.items() for s in read_as(name, pubs)] + read_as("grid", dso_pubs)
    if market:
        recorder_subs += read_as("market", market_pubs)
    if agents:
        plans.insert(0, agent_plan(scenario, members_of, group_pubs, market_pubs, dso_pubs, read_as))
    plans.append(FederatePlan("recorder", "federates.recorder", grid_s, RECORDER_OFFSET_S, [], recorder_subs,
                              [RECORDER_ENDPOINT],
                              {**SETTINGS["recorder"], **group_settings, **bundles,
                               "grid_counts": list(DSO_COUNTS + DSO_DAY_COUNTS)},
                              endpoint_ports={"book": RECORDER_ENDPOINT}))
    return plans


def agent_action_key(player: str) -> str:
    return f"lem/agent/{player}/action"


AGENT_OBSERVES = ("lem_bought_kwh", "lem_sold_kwh", "cost_eur", "income_eur")
"""What an agent reads of its own player's settlement (its group's vectors, at the player's index)."""
AGENT_OBSERVES_GRID = ("dn_impact", "violated_buses_so_far")
"""What an agent reads of the DSO's values (lec_cosim/studies/local_market/agents.py). The proxy subscribes to
these only: HELICS sends a value only to its subscribers, and the DSO's others would cost an env step a
message each for nobody."""


def agent_plan(scenario: LemScenario, members_of, group_pubs, market_pubs, dso_pubs, read_as) -> FederatePlan:
    """The agent proxy of the players in ``agents:``: an action port per player; it reads the market's values,
    the settlement values and DSO values its roles read (``AGENT_OBSERVES``, ``AGENT_OBSERVES_GRID``)."""
    agents = list(scenario.agents)
    known = {m for members in members_of.values() for m in members}
    unknown = [a for a in agents if a not in known]
    if unknown:
        raise ValueError(f"agents: {', '.join(unknown)}: no player of this community")
    where = {m: (group, members.index(m)) for group, members in members_of.items() for m in members if m in agents}
    groups_read = sorted({group for group, _ in where.values()}, key=list(members_of).index)
    observed = read_as("market", market_pubs) + [
        s for s in read_as("grid", dso_pubs) if s.key.rsplit("/", 1)[1] in AGENT_OBSERVES_GRID] + [
        s for group in groups_read for s in read_as(group, group_pubs[group])
        if s.key.rsplit("/", 1)[1] in AGENT_OBSERVES]
    return FederatePlan(
        "agent", "federates.agent", scenario.market_step_s, AGENT_OFFSET_S,
        [Signal(agent_action_key(a), "vector", port=f"{a}.action") for a in agents], observed, [],
        {"roles": agents, "role_group": {a: where[a][0] for a in agents},
         "role_index": {a: where[a][1] for a in agents}, "decision_period_s": float(scenario.market_step_s)})


SETTINGS = {
    "dso": {"grid_adapter": "lec_cosim.adapters.ieee_feeder:IeeeFeederGrid"},
    "recorder": {"record": "lec_cosim.studies.local_market.results:LocalMarketRecord"},
}
"""What the generic components run in this study: the three-phase IEEE feeder and the local market's record."""
