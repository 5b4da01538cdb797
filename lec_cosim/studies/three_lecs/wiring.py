"""The federations of the three-LEC scenario: decentralised, distributed and P2P (Rana et al. 2022, Figs. 7-9).

Federates (``federates/mlec_*.py``; the DSO and the recorder are the generic components
``federates/dso.py`` and ``federates/recorder.py`` running :class:`lec_cosim.adapters.three_lec_grid.ThreeLecGrid`
and :class:`lec_cosim.studies.three_lecs.results.MultiLecRecord`)::

    lec_ems_1..N  one LEC_EMS per LEC: plans its batteries every hour over its window (ems.lookahead_h)
    pool_operator_1..N
                  p2p with ``p2p.market: pool_operator``: each LEC's pool operator, the local market's
                  component ``federates/lem_market.py`` (no copy): clears its members' orders
    platform      decentralised, p2p: the market platform between LECs (no platform in distributed)
    households    every member's assets (grouped HEMS): loads, PV, home and community batteries;
                  in p2p the HEMS plan their own home batteries and bid into their LEC's market
    dso           three-phase power flow at every grid step; with ``dso.limits`` it publishes
                  per-LEC import and export limits that the EMSs respect from the next hour on
    recorder      writes the results contract and queries the federation's exchange graph

Who talks to whom (messages; values are physics, limits and records)::

    all three      households -> lec_ems_k's meter endpoint (its batteries' measured energy, hourly)
    decentralised  lec_ems_k  <-> platform               positions and platform results
    distributed    lec_ems_k  <-> lec_ems_j (neighbours)  ADMM proposals
    p2p            household members <-> their lec_ems_k's market endpoint (caps, orders, results)
                   lec_ems_k  <-> platform
    p2p, pool_operator
                   household members  -> their lec_ems_k's market endpoint (plans; caps and bills back)
                   household members <-> their pool_operator_k (orders, pool results)
                   pool_operator_k    -> lec_ems_k's market endpoint (the cleared book)

Time pattern within hour H (seconds). Nobody waits for a reply: every federate requests fixed
times, and HELICS delivers a message or value stamped t to a federate granted a later time::

    H + 0 ms          households send each LEC_EMS its pooled batteries' energy as measured at
                                the hour's start (what the grid steps of the hour before left)
    H + 1 ms          lec_ems   read it; plan (decentralised), send caps (p2p); distributed: ADMM
                                iteration i at H + 1 ms + i us (send at slot i, read at i + 1)
    H + 1.5 ms        agent     (p2p with agents:) the agent proxy publishes its households' set-points
    H + 2 ms          households (p2p) read caps, plan their homes, send orders (and with a pool
                                operator their plans to the LEC_EMS, their orders to the operator)
    H + 2.5 ms        pool_operator (p2p, pool_operator) clear the orders, answer the members,
                                send the LEC_EMS the book
    H + 3 ms          lec_ems   (p2p) clear the LEC pool (with a pool operator: settle its book;
                                with ``p2p.market: continuous``: match the orders in its continuous
                                double auction, the pool of the same orders cleared beside it),
                                answer the members, plan the community battery; publish the
                                hour's set-points; send the position
    H + 4 ms          platform  clear the LECs' positions, answer them
    H + 5 ms          lec_ems   read the platform's answer, publish the hour's record
    t + 6 ms          households apply set-points at every grid step t, publish members' powers
    t + 7 ms          dso       power flow of step t (and limits)
    t + 8 ms          recorder  reads step t

The measurement closes the loop households -> LEC_EMS -> households without a reply inside a step: the
LEC_EMS reads at H + 1 ms what the households sent at H + 0 ms, and the households run its set-points
from H + 6 ms (the first hour the LEC_EMS plans from the known initial state). It is a message, not a value:
with values both ways the two federates would answer each other's HELICS time requests for as long as the
DSO computes (``docs/design/frameworks.md``).

ADMM iterations are sub-steps of the market period, not HELICS iterative time requests: with
fixed slots no federate can wait for another that waits for it (the lesson of the local market),
and the agents decide themselves, from the residuals they exchange, at which slot they all stop.
Every federate but the recorder stays connected after its last slot until the recorder has
asked it the ``exchanges`` query at its own last step (``stay_for_query``; see
``federates.common.Federate.stay_for_query``), so the message graph is read from the running
federation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lec_cosim.home_devices import HomeSite, attach
from lec_cosim.models.tariffs import retail_tariff_eur_per_kwh
from lec_cosim.scenario import MultiLecScenario
from lec_cosim.schema.ieee_feeder import FEEDER_HOUSEHOLDS
from lec_cosim.wiring import FederatePlan, Signal

MEASURE_OFFSET_S = 0.0
"""The households send each LEC_EMS its measured pooled energy at the hour's start, before it plans (+1 ms)."""
EMS_PLAN_OFFSET_S = 0.001
AGENT_OFFSET_S = 0.0015
"""p2p with ``agents:``: the agent proxy decides its households' home batteries after their LEC_EMSs sent the
hour's caps (+1 ms), before the HEMSs bid (+2 ms)."""
HEMS_BID_OFFSET_S = 0.002
POOL_OPERATOR_OFFSET_S = 0.0025
"""p2p with a pool operator: after the members' orders (H + 2 ms), before the LEC_EMS reads the book (H + 3 ms)."""
EMS_CLEAR_OFFSET_S = 0.003
PLATFORM_OFFSET_S = 0.004
EMS_SETTLE_OFFSET_S = 0.005
HOUSEHOLDS_OFFSET_S = 0.006
DSO_OFFSET_S = 0.007
RECORDER_OFFSET_S = 0.008
ADMM_SLOT_S = 1e-6
"""One ADMM iteration per microsecond after H + 1 ms; the iteration cap (<= 900) keeps them before H + 2 ms."""
MS_PERIOD_S = 0.001

PLATFORM_ENDPOINT = "mlec/platform"
HOUSEHOLDS_METER_ENDPOINT = "mlec/households/meter"
HOUSEHOLD_VECTORS = ("load_kw", "load_kvar", "pv_kw", "curtailed_kw", "battery_kw", "soc_kwh", "net_kw")
"""Per member (households, then community batteries), published by ``households`` at every grid step."""
EMS_VALUES = ("pooled_charge_kw", "curtail_kw")
"""Per LEC, the hour's set-points: charge (positive) of the batteries it manages, PV to curtail."""
GRID_DOUBLES = ("vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "trafo_p_kw", "max_line_loading_percent")
GRID_COUNTS = ("bus_violations", "line_overloads")
GRID_VECTORS = ("lec_vm_min_pu", "lec_vm_max_pu", "lec_net_import_kw", "import_limit_kw", "export_limit_kw")
HOUSEHOLD_LIMIT_VECTORS = ("household_import_limit_kw", "household_export_limit_kw")
"""Per household, the DSO's limits with ``dso.limits_per: household``: the p2p LEC_EMSs read the import limits
(their members' caps), the households both (each keeps to its own: home battery, then PV), the recorder both."""
DAY_LIMIT_VECTORS = ("import_limit_day_kw", "export_limit_day_kw")
"""With ``dso.limits_per: household``, each LEC's limits for every hour from the DSO's forecast: the LEC_EMSs plan
their later hours with them."""


def ems_name(lec: str) -> str:
    return f"lec_ems_{lec.removeprefix('lec')}"


def ems_endpoint(lec: str) -> str:
    return f"mlec/{lec}/ems"


def market_endpoint(lec: str) -> str:
    """The LEC's P2P market, run by its LEC_EMS."""
    return f"mlec/{lec}/market"


def member_endpoint(member: str) -> str:
    return f"mlec/member/{member}"


def pool_operator_name(lec: str) -> str:
    return f"pool_operator_{lec.removeprefix('lec')}"


def pool_operator_endpoint(lec: str) -> str:
    """The LEC's pool operator's inbox (p2p with ``p2p.market: pool_operator``)."""
    return f"mlec/{lec}/pool"


def meter_endpoint(lec: str) -> str:
    """Where an LEC_EMS receives the energy in its pooled batteries as the households measure it at every hour's
    start (it plans from it). Each LEC_EMS receives its own LEC's, nothing of the others'."""
    return f"mlec/{lec}/meter"


def ems_signals(lec: str) -> list[Signal]:
    """What an LEC_EMS publishes, by its own port names (its set-points and its record)."""
    return ([Signal(f"mlec/{lec}/ems/{v}", port=v) for v in EMS_VALUES]
            + [Signal(f"mlec/{lec}/ems/record", "string", port="record")])


def member_caps_signal(lec: str) -> Signal:
    """p2p with agents: the caps and fees an LEC_EMS sent its members for the hour, for the agent proxy."""
    return Signal(f"mlec/{lec}/ems/member_caps", "string", port="member_caps")


def _of_each(owners: list[str], signal_of) -> list[Signal]:
    """Each owner's one signal (``signal_of(owner)``) as a subscriber of several names them."""
    return [s for owner in owners for s in _of(owner, [signal_of(owner)])]


def _of(owner: str, signals: list[Signal]) -> list[Signal]:
    """``signals`` as a subscriber of several alike publishers names them: ``<owner>.<port>``."""
    return [dataclasses.replace(s, port=f"{owner}.{s.port}") for s in signals]


HOUSEHOLDS = tuple(f"LOAD{k}" for k in range(1, FEEDER_HOUSEHOLDS + 1))
"""The feeder's 55 households in IEEE order (the members with an endpoint in p2p); no data needed."""

EMS_SETTINGS = {"plan_offset_s": EMS_PLAN_OFFSET_S, "clear_offset_s": EMS_CLEAR_OFFSET_S,
                "settle_offset_s": EMS_SETTLE_OFFSET_S, "admm_slot_s": ADMM_SLOT_S}
"""The times of an LEC_EMS's slots within the hour (seconds after its start), and the ADMM slot."""
HOUSEHOLDS_SETTINGS = {"measure_offset_s": MEASURE_OFFSET_S, "bid_offset_s": HEMS_BID_OFFSET_S,
                       "step_offset_s": HOUSEHOLDS_OFFSET_S}
"""The times of the households' slots: the measurement and the HEMS bids (p2p) within the hour, the steps within
a grid step."""
GRID_ADAPTER = "lec_cosim.adapters.three_lec_grid:ThreeLecGrid"
RECORD = "lec_cosim.studies.three_lecs.results:MultiLecRecord"
RECORD_COLUMNS = {"members": list(HOUSEHOLD_VECTORS), "grid": list(GRID_DOUBLES + GRID_COUNTS),
                  "lecs": list(GRID_VECTORS)}
"""The recorder's input ports by table: members' vectors, the grid's indicators, the per-LEC vectors."""


@dataclass(frozen=True)
class FrameworkDesign:
    """How a framework's federation is made: who trades where, who plans what, what it records.

    The one place the frameworks differ: the plan reads it and hands each federate the part it acts on.
    """

    ems: str
    """The LEC_EMSs' strategy (``federates/mlec_ems.py``: plan_alone, negotiate, run_market)."""
    ems_period_s: float
    """The LEC_EMSs' period: the ADMM slot when they negotiate, else a millisecond."""
    platform: bool
    """The LECs (those of ``lecs.on_platform``) trade on the market platform."""
    negotiates: bool
    """Each LEC_EMS sends proposals to the other LECs' EMSs (target ``lecs``)."""
    members_bid: bool
    """Each HEMS plans its home battery and bids in its LEC's market, which its LEC_EMS runs."""
    tables: tuple[str, ...] = ()
    """The framework's own results tables (:class:`lec_cosim.studies.three_lecs.results.MultiLecRecord`)."""
    ems_offsets_s: tuple[float, ...] = ()
    """When in each hour its LEC_EMSs act (the interface's schedule)."""


DESIGNS = {
    "decentralised": FrameworkDesign("plan_alone", MS_PERIOD_S, platform=True, negotiates=False, members_bid=False,
                                     ems_offsets_s=(EMS_PLAN_OFFSET_S, EMS_SETTLE_OFFSET_S)),
    "distributed": FrameworkDesign("negotiate", ADMM_SLOT_S, platform=False, negotiates=True, members_bid=False,
                                   tables=("negotiation",), ems_offsets_s=(EMS_PLAN_OFFSET_S, EMS_SETTLE_OFFSET_S)),
    "p2p": FrameworkDesign("run_market", MS_PERIOD_S, platform=True, negotiates=False, members_bid=True,
                           tables=("p2p_trades",),
                           ems_offsets_s=(EMS_PLAN_OFFSET_S, EMS_CLEAR_OFFSET_S, EMS_SETTLE_OFFSET_S)),
}
"""Every framework's design, by the scenario's ``framework``."""


@dataclass(frozen=True)
class PoolDesign:
    """Who clears each LEC's P2P pool (``p2p.market``), when its members bid (p2p)."""

    ems_pool: str
    """The LEC_EMS's pool strategy (``federates/mlec_ems.py``: clear_orders, settle_book)."""
    pool_operator: bool
    """One pool-operator federate per LEC, the local market's ``federates/lem_market.py``, clears the members'
    orders: the HEMS send it their orders (target ``pool``), it answers them and sends the LEC_EMS the book."""
    tables: tuple[str, ...] = ()
    """The mechanism's own results tables (:class:`lec_cosim.studies.three_lecs.results.MultiLecRecord`)."""


POOL_DESIGNS = {
    "ems": PoolDesign("clear_orders", pool_operator=False),
    "pool_operator": PoolDesign("settle_book", pool_operator=True),
    "continuous": PoolDesign("clear_continuous", pool_operator=False, tables=("cda_trades",)),
}
"""Every LEC market mechanism, by the scenario's ``p2p.market``: the uniform-price pool (cleared by the LEC_EMS or
by a pool operator) or the continuous double auction (run by the LEC_EMS)."""
POOL_OPERATOR_SOLVER = "merit_order"
"""The pool operator's auction path: the one the LEC_EMS's own pool uses
(:func:`lec_cosim.models.lec_pool.clear_lec_pool`)."""
POOL_OPERATOR_VALUES = ("price_eur_per_kwh", "volume_kwh")
"""What a pool operator publishes (its component's output ports): nobody in this study reads them; the
LEC_EMS records the book's price and volume."""


def lec_households(scenario: MultiLecScenario) -> dict[str, list[str]]:
    """Each LEC's households (the feeder's order), from the feeder split the members are made of.

    Only a plan whose members bid needs it (their endpoints; each pool operator answers its own LEC's
    members); imported here, so that every other plan stays free of the feeder's data and of pandas.
    """
    if scenario.feeder.source is None:
        from lec_cosim.models.lec_split import split_into_lecs

        split = split_into_lecs(scenario.lecs.count, scenario.feeder.data_dir)
        return {lec: list(split.loc[split["lec"] == lec, "load"]) for lec in scenario.lec_names}
    from lec_cosim.models.multi_lec_ems import members_from_scenario

    table = members_from_scenario(scenario).table
    homes = table[table["kind"] == "household"]
    return {lec: list(homes.loc[homes["lec"] == lec, "member"]) for lec in scenario.lec_names}


def household_names(scenario: MultiLecScenario, by_lec: dict[str, list[str]] | None = None) -> tuple[str, ...]:
    """The feeder's households: the IEEE feeder's ``LOAD1`` .. ``LOAD55`` without reading data, a source's LEC by
    LEC (``by_lec``: :func:`lec_households`, if already at hand)."""
    if scenario.feeder.source is None:
        return HOUSEHOLDS
    by_lec = lec_households(scenario) if by_lec is None else by_lec
    return tuple(home for homes in by_lec.values() for home in homes)


def plan(scenario: MultiLecScenario) -> list[FederatePlan]:
    """Every federate of the framework's federation with its interface, in start order.

    Federates reach each other by port (``lec_cosim.ports`` in their configs): an LEC_EMS sends from
    its ``ems`` endpoint (and in p2p its ``market``) to its targets ``platform``, ``lecs`` (the other
    LECs' EMSs, by LEC) and ``members`` (the HEMS, by member); the households' HEMS send from their
    member's endpoint to ``market`` (by LEC), and with pool operators their orders to ``pool`` (by
    LEC); a pool operator (``federates/lem_market.py``) takes orders at ``orders``, answers its
    LEC's members at ``results`` (by member) and sends the book to ``book``, its LEC_EMS's
    ``market``; the platform from ``platform`` to ``lecs``. A federate that reads alike values of
    several LECs calls them ``<lec>.<port>``.
    """
    design = DESIGNS[scenario.framework]
    pools = POOL_DESIGNS[scenario.p2p.market]
    pool_operators = design.members_bid and pools.pool_operator
    lecs = scenario.lec_names
    # a source's households are read once (its members); the IEEE feeder's only for pool operators
    by_lec = (lec_households(scenario) if pool_operators or scenario.agents
              or (design.members_bid and scenario.feeder.source) else {})
    homes = household_names(scenario, by_lec) if design.members_bid else ()
    on_platform = [lec for lec in lecs if lec in scenario.platform_lecs] if design.platform else []
    grid_pubs = ([Signal(f"mlec/grid/{v}", port=v) for v in GRID_DOUBLES]
                 + [Signal(f"mlec/grid/{v}", "integer", port=v) for v in GRID_COUNTS]
                 + [Signal(f"mlec/grid/{v}", "vector", port=v) for v in GRID_VECTORS])
    limits = [s for s in grid_pubs if s.port in ("import_limit_kw", "export_limit_kw")]
    per_household = scenario.dso.limits and scenario.dso.limits_per == "household"
    household_limits = ([Signal(f"mlec/grid/{v}", "vector", port=v) for v in HOUSEHOLD_LIMIT_VECTORS]
                        if per_household else [])
    day_limits = [Signal(f"mlec/grid/{v}", "vector", port=v) for v in DAY_LIMIT_VECTORS] if per_household else []
    grid_pubs = grid_pubs + household_limits + day_limits
    household_caps = [s for s in household_limits if s.port == "household_import_limit_kw"] * design.members_bid
    household_pubs = [Signal(f"mlec/households/{v}", "vector", port=v) for v in HOUSEHOLD_VECTORS]
    plans = []
    all_ems = []
    agents = list(scenario.agents)  # p2p only (the scenario's check)
    agent_lecs = [lec for lec in lecs if set(by_lec.get(lec, ())) & set(agents)]
    for lec in lecs:
        pubs = ems_signals(lec)
        all_ems += _of(lec, pubs)
        if lec in agent_lecs:  # the caps of its agents' hour, for the agent proxy (not the recorder's)
            pubs = pubs + [member_caps_signal(lec)]
        ports = {"ems": ems_endpoint(lec), "meter": meter_endpoint(lec),
                 **({"market": market_endpoint(lec)} if design.members_bid else {})}
        targets = {}
        if lec in on_platform:
            targets["platform"] = PLATFORM_ENDPOINT
        if design.negotiates:
            targets["lecs"] = {other: ems_endpoint(other) for other in lecs if other != lec}
        if design.members_bid:
            targets["members"] = {m: member_endpoint(m) for m in homes}
        plans.append(FederatePlan(ems_name(lec), "federates.mlec_ems", design.ems_period_s, 0.0, pubs,
                                  (list(limits) + day_limits + household_caps) if scenario.dso.limits else [],
                                  list(ports.values()),
                                  {"lec": lec, "on_platform": lec in on_platform, "ems": design.ems,
                                   "members_bid": design.members_bid,
                                   **({"pool": pools.ems_pool} if design.members_bid else {}), **EMS_SETTINGS},
                                  endpoint_ports=ports, targets=targets,
                                  acts_at=tuple((scenario.market_step_s, o) for o in design.ems_offsets_s),
                                  acts_note="after +1 ms, one ADMM iteration every microsecond until all LECs stop "
                                  "(at most negotiation.max_iterations)" if design.negotiates else ""))
    platform_record = Signal("mlec/platform/record", "string", port="record")
    if on_platform:
        plans.append(FederatePlan("platform", "federates.mlec_platform", scenario.market_step_s, PLATFORM_OFFSET_S,
                                  [platform_record], [], [PLATFORM_ENDPOINT], {"lecs": on_platform},
                                  endpoint_ports={"platform": PLATFORM_ENDPOINT},
                                  targets={"lecs": {lec: ems_endpoint(lec) for lec in on_platform}}))
    if pool_operators:
        for lec, members in by_lec.items():
            plans.append(FederatePlan(
                pool_operator_name(lec), "federates.lem_market", scenario.market_step_s, POOL_OPERATOR_OFFSET_S,
                [Signal(f"mlec/{lec}/pool/{v}", port=v) for v in POOL_OPERATOR_VALUES], [],
                [pool_operator_endpoint(lec)], {"solver": POOL_OPERATOR_SOLVER},
                endpoint_ports={"orders": pool_operator_endpoint(lec)},
                targets={"results": {m: member_endpoint(m) for m in members}, "book": market_endpoint(lec)}))
    setpoints = [s for s in all_ems if not s.port.endswith(".record")]
    hems_ports = {m: member_endpoint(m) for m in homes}
    hems_targets = {"market": {lec: market_endpoint(lec) for lec in lecs}} if hems_ports else {}
    if pool_operators:
        hems_targets["pool"] = {lec: pool_operator_endpoint(lec) for lec in lecs}
    actions = [Signal(f"mlec/agent/{m}/battery_kw", port=f"{m}.action") for m in agents]
    if agents:
        observed = ([dataclasses.replace(s, port=f"households.{s.port}") for s in household_pubs
                     if s.port == "soc_kwh"]
                    + [s for s in all_ems if s.port in {f"{lec}.record" for lec in agent_lecs}]
                    + _of_each(agent_lecs, member_caps_signal))
        plans.append(FederatePlan("agent", "federates.agent", scenario.market_step_s, AGENT_OFFSET_S, actions,
                                  observed, settings={"roles": agents,
                                                      "decision_period_s": float(scenario.market_step_s)}))
    # the households measure every LEC's pooled batteries for its LEC_EMS (a message, not a value: see above)
    hems_ports["meter"] = HOUSEHOLDS_METER_ENDPOINT
    hems_targets["lec_ems"] = {lec: meter_endpoint(lec) for lec in lecs}
    plans.append(FederatePlan("households", "federates.mlec_households", MS_PERIOD_S, 0.0, household_pubs,
                              setpoints + actions + household_limits, list(hems_ports.values()),
                              {"members_bid": design.members_bid, "pool_operator": pool_operators,
                               **({"agent_members": agents} if agents else {}), **HOUSEHOLDS_SETTINGS},
                              endpoint_ports=hems_ports, targets=hems_targets,
                              acts_at=((scenario.market_step_s, MEASURE_OFFSET_S),)
                              + ((scenario.market_step_s, HEMS_BID_OFFSET_S),) * design.members_bid
                              + ((scenario.grid_step_s, HOUSEHOLDS_OFFSET_S),)))
    plans.append(FederatePlan("dso", "federates.dso", scenario.grid_step_s, DSO_OFFSET_S, grid_pubs,
                              household_pubs, settings={"grid_adapter": GRID_ADAPTER,
                                                        **({"household_limits": True} if per_household else {})}))
    recorder_subs = household_pubs + grid_pubs + all_ems
    if on_platform:
        recorder_subs += _of("platform", [platform_record])
    attached = attach(scenario.home_devices, plans, home_site(scenario))
    plans, recorder_subs = attached.plans, recorder_subs + attached.recorded
    # the agent proxy (a learning environment's thread) has no endpoints and is not asked for exchanges
    plans = [p if p.name == "agent" else dataclasses.replace(p, settings={**p.settings, "stay_for_query": True})
             for p in plans]
    plans.append(FederatePlan("recorder", "federates.recorder", scenario.grid_step_s, RECORDER_OFFSET_S,
                              [], recorder_subs, [],
                              {"record": RECORD, "columns": {**RECORD_COLUMNS, **(
                                  {"households": list(HOUSEHOLD_LIMIT_VECTORS)} if per_household else {})},
                               "tables": list(design.tables) + list(pools.tables if design.members_bid else ()),
                               "query_exchanges": True, **attached.recorder_settings,
                               "federates": [p.name for p in plans if p.name != "agent"]}))
    return plans


HOME_DEVICES_OFFSET_S = 0.0065
"""Devices at the homes (:mod:`lec_cosim.home_devices`) step after the households (+6 ms), before the DSO
(+7 ms) that adds their power at their homes."""


def home_site(scenario: MultiLecScenario) -> HomeSite:
    """The feeder's households take devices; the grid takes each home's load, and the homes know the members'
    retail tariff in advance (for every hour, also past the horizon)."""
    hours = np.arange(math.ceil(scenario.horizon_h) + 24)
    tariff = 1000.0 * np.asarray(retail_tariff_eur_per_kwh(hours, scenario.tariff.scheme), dtype=float)
    if scenario.home_count is None:
        raise ValueError("the households of the feeder source are not counted: load the scenario with "
                         "lec_cosim.scenario.load_scenario")
    return HomeSite("mlec", scenario.grid_step_s, HOME_DEVICES_OFFSET_S, scenario.market_step_s,
                    scenario.home_count, per_home=True, tariff_eur_per_mwh=tuple(tariff.tolist()))
