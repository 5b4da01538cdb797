"""The federation of the community battery (one LEC behind its transformer, the day-ahead market).

Time is in seconds from the scenario start. Within one step the data flow is ordered by small
phase offsets, so that each federate is granted its time only after its inputs for that instant
were published (HELICS delivers a value stamped t to federates granted a time later than t):

    market (+0 ms) -> LEC_EMS (+1 ms) -> households (+2 ms) [-> devices at the homes (+2.5 ms)] -> DSO (+3 ms)
    -> recorder (+4 ms)

With ``agents:`` an agent proxy (a learning environment, :mod:`lec_cosim.env`) decides at +1 ms: in the
LEC_EMS's place for ``lec_ems``, beside it for a device's role alone (before the devices at +2.5 ms).
"""

from __future__ import annotations

from dataclasses import replace

from lec_cosim.home_devices import HomeSite, attach
from lec_cosim.scenario import Scenario
from lec_cosim.wiring import FederatePlan, Signal

PHASE_OFFSET_S = {"market": 0.0, "lec_ems": 0.001, "households": 0.002, "dso": 0.003, "recorder": 0.004}
FEDERATE_MODULES = {
    "market": "federates.market",
    "lec_ems": "federates.lec_ems",
    "households": "federates.household",
    "dso": "federates.dso",
    "recorder": "federates.recorder",
}


def signals(scenario: Scenario) -> dict[str, list[Signal]]:
    """Publications of each federate; the interface of the federation."""
    lec = scenario.lec_name
    pubs = {
        "market": [
            Signal("market/day_ahead_price_eur_per_mwh", "vector", port="day_ahead_price"),
            Signal("market/day_ahead_export_price_eur_per_mwh", "vector", port="day_ahead_export_price"),
            Signal("market/price_eur_per_mwh", port="price"),
            Signal("market/export_price_eur_per_mwh", port="export_price"),
        ],
        "lec_ems": [
            Signal(f"{lec}/ems/battery_setpoint_mw", unit="MW", port="setpoint_mw"),
            Signal(f"{lec}/ems/planned_soc_mwh", unit="MWh", port="planned_soc_mwh"),
        ],
        "households": [
            Signal(f"{lec}/households/p_mw", unit="MW", port="load_p_mw"),
            Signal(f"{lec}/households/q_mvar", unit="MVAR", port="load_q_mvar"),
            Signal(f"{lec}/pv/p_mw", unit="MW", port="pv_p_mw"),
            Signal(f"{lec}/battery/p_mw", unit="MW", port="battery_p_mw"),
            Signal(f"{lec}/battery/soc_mwh", unit="MWh", port="soc_mwh"),
        ],
        "dso": [
            Signal(f"{lec}/pcc/p_mw", unit="MW", port="pcc_p_mw"),
            Signal(f"{lec}/pcc/q_mvar", unit="MVAR", port="pcc_q_mvar"),
            Signal(f"{lec}/pcc/vm_pu", port="pcc_vm_pu"),
            Signal(f"{lec}/lv_busbar/vm_pu", port="lv_vm_pu"),
            Signal(f"{lec}/transformer/loading_percent", port="trafo_loading_percent"),
            Signal(f"{lec}/grid/losses_mw", unit="MW", port="losses_mw"),
            Signal(f"{lec}/grid/losses_mvar", unit="MVAR", port="losses_mvar"),
            Signal(f"{lec}/grid/vm_min_pu", port="vm_min_pu"),
            Signal(f"{lec}/grid/vm_max_pu", port="vm_max_pu"),
            Signal(f"{lec}/grid/bus_violations", "integer", port="bus_violations"),
            Signal(f"{lec}/grid/line_overloads", "integer", port="line_overloads"),
        ],
        "recorder": [],
    }
    if scenario.grid.source is not None:  # on a feeder: the households by connection point, the lines' loading
        pubs["households"] += [Signal(f"{lec}/{name}", "vector", port=port)
                               for name, port in FEEDER_VECTORS.items()]
        pubs["dso"].append(Signal(f"{lec}/grid/max_line_loading_percent", port="max_line_loading_percent"))
    return pubs


FEEDER_VECTORS = {"households/connection_p_mw": "connection_load_p_mw",
                  "households/connection_q_mvar": "connection_load_q_mvar", "pv/connection_p_mw": "connection_pv_p_mw"}
"""On a feeder source: the vectors the households publish (key after the LEC's name -> port), one value per connection
point of the feeder, in its order (:mod:`lec_cosim.models.battery_feeder`); the DSO reads them, nothing records
them (the recorder keeps the aggregates)."""


def subscriptions(scenario: Scenario) -> dict[str, list[Signal]]:
    pubs = signals(scenario)
    market_now = [s for s in pubs["market"] if s.type != "vector"]
    households = [s for s in pubs["households"] if s.type != "vector"]
    by_point = [s for s in pubs["households"] if s.type == "vector"]
    return {
        "market": [],
        "lec_ems": [s for s in pubs["market"] if s.type == "vector"],
        "households": [pubs["lec_ems"][0]],
        "dso": by_point + households[3:4] if by_point else households[:4],
        "recorder": market_now + pubs["lec_ems"] + households + pubs["dso"],
    }


def periods_s(scenario: Scenario) -> dict[str, int]:
    return {
        "market": scenario.market_step_s,
        "lec_ems": scenario.ems_step_s,
        "households": scenario.grid_step_s,
        "dso": scenario.grid_step_s,
        "recorder": scenario.grid_step_s,
    }


def plan(scenario: Scenario) -> list[FederatePlan]:
    """Every federate of the federation with its interface, in start order."""
    pubs, subs, periods = signals(scenario), subscriptions(scenario), periods_s(scenario)
    settings = SETTINGS if scenario.grid.source is None else {**SETTINGS, "dso": FEEDER_DSO_SETTINGS}
    plans = [FederatePlan(name, module, periods[name], PHASE_OFFSET_S[name], pubs[name], subs[name],
                          settings=settings.get(name, {}))
             for name, module in FEDERATE_MODULES.items()]
    day_ahead = next(s for s in pubs["market"] if s.port == "day_ahead_price")
    site = HomeSite(scenario.lec_name, scenario.grid_step_s, HOME_DEVICES_OFFSET_S, scenario.market_step_s,
                    scenario.home_count, per_home=False, price=day_ahead)
    attached = attach(scenario.home_devices, plans, site)
    plans = [replace(p, subscriptions=p.subscriptions + attached.recorded,
                     settings={**p.settings, **attached.recorder_settings}) if p.name == "recorder" else p
             for p in attached.plans]
    return with_agent(scenario, plans, pubs, attached.devices, site) if scenario.agents else plans


def with_agent(scenario: Scenario, plans: list[FederatePlan], pubs: dict[str, list[Signal]], devices: dict,
               site: HomeSite) -> list[FederatePlan]:
    """The federation with ``agents:``: the agent proxy, every grid step at the LEC_EMS's slot. With ``lec_ems`` it
    takes the LEC_EMS's place, publishing the battery's set-point on the LEC_EMS's key (NaN for the planned state
    of charge: there is no plan), and reads the households' and the battery's values; else it comes before the
    LEC_EMS, whose LP plans as usual. A device's role (``devices``: the attached device plans) is handed over by
    its kind (:meth:`lec_cosim.home_devices.HomeDevice.decided_by_agent`). It reads the market's current prices,
    the PCC's power and every device's load (port ``{device}/load``)."""
    roles = list(scenario.agents)
    out, observed = [], [replace(s, port=f"market/{s.port}") for s in pubs["market"] if s.type != "vector"]
    if "lec_ems" in roles:
        setpoint, planned = pubs["lec_ems"]
        out += [replace(setpoint, port="lec_ems.action"), replace(planned, port="lec_ems.planned_soc_mwh")]
        observed += [replace(s, port=f"households/{s.port}") for s in pubs["households"] if s.type != "vector"]
    observed += [replace(s, port=f"dso/{s.port}") for s in pubs["dso"] if s.port == "pcc_p_mw"]
    for name, device_plan in devices.items():
        device = scenario.home_devices[name]
        load = next(s for s in device_plan.federate.publications if s.port == device_plan.load)
        observed.append(replace(load, port=f"{name}/load"))
        if device.agent_role in roles:
            handover = device.decided_by_agent(name, site, device_plan.federate)
            plans = [handover.federate if p.name == device_plan.federate.name else p for p in plans]
            out.append(handover.action)
            observed += handover.observed
    proxy = FederatePlan("agent", "federates.agent", scenario.grid_step_s, PHASE_OFFSET_S["lec_ems"], out, observed,
                         settings={"roles": roles, "decision_period_s": float(scenario.grid_step_s)})
    at = next(i for i, p in enumerate(plans) if p.name == "lec_ems")
    return plans[:at] + [proxy] + plans[at + ("lec_ems" in roles):]

HOME_DEVICES_OFFSET_S = 0.0025
"""Devices at the homes (:mod:`lec_cosim.home_devices`) step after the households (their profiles are the
step's), before the DSO that adds their load; they follow the day-ahead prices."""


SETTINGS = {
    "dso": {"grid_adapter": "lec_cosim.adapters.community_grid:CommunityGrid"},
    "recorder": {"record": "lec_cosim.studies.community_battery.results:CommunityBatteryRecord"},
}
"""What the generic components run in this study: its grid and its record."""

FEEDER_DSO_SETTINGS = {"grid_adapter": "lec_cosim.adapters.community_grid:FeederCommunityGrid"}
"""On a feeder source (``grid.source``), the DSO solves the feeder with the households on its buses."""
