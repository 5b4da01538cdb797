"""Comparison of three-LEC runs (frameworks decentralised, distributed, p2p): one table over several runs.

Reads the ``summary.json`` of each run directory (``lec_cosim.results_mlec``) and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from lec_cosim.scenario import FRAMEWORKS


def _summary(run_dir) -> dict:
    path = Path(run_dir) / "summary.json"
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc.msg}") from None


def is_mlec_run(run_dir) -> bool:
    """True when ``run_dir/summary.json`` is of a three-LEC framework."""
    try:
        summary = _summary(run_dir)
    except ValueError:
        return False
    return summary.get("framework") in FRAMEWORKS and "lecs" in summary.get("kpis", {})


def _fmt(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def mlec_compare_table(runs) -> str:
    """A Markdown table: one column per run, one row per KPI.

    Rows: total cost and cost per member, cost per LEC and per member of each LEC,
    self-sufficiency (community and per LEC), energy exchanged between LECs, PV curtailed,
    transformer peak, voltage range, bus violations (bus-steps outside the band, and steps with
    any), line overloads (line-steps), losses, messages exchanged, negotiation iterations (total
    and largest per hour), wall time.
    """
    summaries = []
    for run in runs:
        s = _summary(run)
        if s.get("framework") not in FRAMEWORKS:
            raise ValueError(f"{run}: not a three-LEC run (framework {s.get('framework')!r})")
        summaries.append(s)
    lecs = sorted({lec for s in summaries for lec in s["kpis"]["lecs"]})
    header = ["KPI"] + [f"{s['framework']}{' + DSO limits' if s.get('dso_limits') else ''}" for s in summaries]

    def row(label, get, digits=2):
        return [label] + [_fmt(get(s["kpis"]), digits) for s in summaries]

    rows = [
        row("cost, all LECs (EUR)", lambda k: k["total_cost_eur"]),
        row("cost per member (EUR)", lambda k: k["cost_per_member_eur"], 3),
    ]
    for lec in lecs:
        rows.append(row(f"cost {lec} (EUR)", lambda k, lec=lec: k["lecs"][lec]["cost_eur"]))
    for lec in lecs:
        rows.append(row(f"cost per member {lec} (EUR)", lambda k, lec=lec: k["lecs"][lec]["cost_per_member_eur"], 3))
    rows.append(row("self-sufficiency, all LECs (%)", lambda k: 100 * k["self_sufficiency"], 1))
    for lec in lecs:
        rows.append(row(f"self-sufficiency {lec} (%)", lambda k, lec=lec: 100 * k["lecs"][lec]["self_sufficiency"], 1))
    rows += [
        row("exchanged between LECs (kWh)", lambda k: k["exchanged_kwh"]),
        row("PV curtailed (kWh)", lambda k: k["curtailed_kwh"]),
        row("grid import (kWh)", lambda k: k["grid_import_kwh"], 1),
        row("grid export (kWh)", lambda k: k["grid_export_kwh"], 1),
        row("transformer peak (kW)", lambda k: k["trafo_peak_kw"], 1),
        row("lowest voltage (pu)", lambda k: k["vm_min_pu"], 4),
        row("highest voltage (pu)", lambda k: k["vm_max_pu"], 4),
        row("bus violations (bus-steps)", lambda k: k["bus_violations"]),
        row("steps with a bus violation", lambda k: k["steps_with_bus_violations"]),
        row("line overloads (line-steps)", lambda k: k["line_overloads"]),
        row("losses (kWh)", lambda k: k["losses_kwh"]),
        row("messages exchanged", lambda k: k["messages"]),
        row("negotiation iterations (total)", lambda k: k["iterations_total"]),
        row("negotiation iterations (largest hour)", lambda k: k["iterations_max"]),
        row("wall time (s)", lambda k: k["wall_time_s"], 1),
    ]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])
