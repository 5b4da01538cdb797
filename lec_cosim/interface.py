"""The published interface of a scenario's federation, for stock HELICS tools and other federates.

Read from the federation's plans (:func:`lec_cosim.federation.plan`), which the generator also
writes into the federate configs, so it is what a run really registers: per federate its period
and phase offsets (seconds: when it acts; a federate acting at several offsets of its period is given
HELICS a finer period, also listed), its publications (key, HELICS type, unit), its subscriptions and its
endpoints. Values carry their unit in the key (``_kw``, ``_pu``, ``_eur_per_kwh``) where HELICS has
no unit field set.
"""

from __future__ import annotations

from lec_cosim.federation import plan


def federation_interface(scenario) -> dict:
    """Every federate's period, offset, publications, subscriptions and endpoints (a JSON-ready dict)."""
    federates = [{
        "name": federate.name,
        "schedule_s": [list(pair) for pair in federate.schedule()],
        "schedule_note": federate.acts_note,
        "helics_period_s": federate.period_s,
        "helics_offset_s": federate.offset_s,
        "publications": [{"key": s.key, "type": s.type, "unit": s.unit} for s in federate.publications],
        "subscriptions": [{"key": s.key, "type": s.type, "unit": s.unit} for s in federate.subscriptions],
        "endpoints": list(federate.endpoints),
    } for federate in plan(scenario)]
    return {"scenario": scenario.name, "start": scenario.start.isoformat(), "time_unit": "s",
            "horizon_s": scenario.horizon_h * 3600.0, "federates": federates}


def publication_types(interface: dict) -> dict[str, str]:
    """Every published key of an interface and its HELICS type."""
    return {p["key"]: p["type"] for fed in interface["federates"] for p in fed["publications"]}


def interface_markdown(interface: dict) -> str:
    """The interface as Markdown tables: one row per publication and per endpoint."""
    lines = [f"Federation of `{interface['scenario']}` (times in seconds from {interface['start']})", "",
             "| federate | period (s) | offsets (s) | publishes | type | unit |", "|---|---:|---:|---|---|---|"]
    for fed in interface["federates"]:
        periods = ", ".join(f"{p:g}" for p, _ in fed["schedule_s"])
        offsets = ", ".join(f"{o:g}" for _, o in fed["schedule_s"])
        for pub in fed["publications"]:
            lines.append(f"| {fed['name']} | {periods} | {offsets} | `{pub['key']}` | "
                         f"{pub['type']} | {pub['unit'] or ''} |")
    endpoints = [(fed["name"], e) for fed in interface["federates"] for e in fed["endpoints"]]
    if endpoints:
        lines += ["", "| federate | endpoint (JSON messages) |", "|---|---|"]
        lines += [f"| {name} | `{e}` |" for name, e in endpoints]
    finer = [fed for fed in interface["federates"]
             if fed["schedule_s"] != [[fed["helics_period_s"], fed["helics_offset_s"]]]]
    if finer:
        lines += ["", "Where a federate lists several periods and offsets it acts at each (every period, at its "
                  "offset); " + ", ".join(f"{f['name']} ({f['helics_period_s']:g} s)" for f in finer) + " are "
                  "given HELICS that finer period and request only the slots listed."]
        lines += [f"{f['name']}: {f['schedule_note']}." for f in finer if f.get("schedule_note")]
    lines += ["", "Where the unit column is empty the unit is in the key (`_kw`, `_pu`, `_eur_per_kwh`); counts have none."]
    return "\n".join(lines) + "\n"
