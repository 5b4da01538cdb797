"""Comparison of three-LEC runs (frameworks decentralised, distributed, p2p): one table and one figure over several
runs.

Reads run directories (contract in :mod:`lec_cosim.studies.three_lecs.results`) and writes nothing into them:
``summary.json`` for the table; ``settlement.csv`` (per hour and LEC), ``grid.csv`` (per grid
step) and, for the voltage band, ``scenario.json`` for the figure. A missing file or column raises
a one-line :class:`ValueError` naming the run directory and the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.scenario import FRAMEWORKS

SETTLEMENT_COLUMNS = ["hour", "lec", "grid_import_kwh", "grid_export_kwh", "exchange_in_kwh", "cost_eur"]
GRID_COLUMNS = ["time", "vm_min_pu", "vm_max_pu"]
_NOTHING_KWH = 1e-6  # the settlement's sums leave rounding dust (4e-16 kWh) where nothing was exchanged


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
    if "kind" in summary:  # runs record their kind; older ones are recognised by their framework and KPIs
        return summary["kind"] == "three_lecs"
    return summary.get("framework") in FRAMEWORKS and "lecs" in summary.get("kpis", {})


def _fmt(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    text = f"{value:.{digits}f}"
    # Rounding dust below zero (a curtailment of -3e-15 kWh) is no "-0.00".
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def run_label(summary: dict) -> str:
    """A three-LEC run's column label: its framework, with " + DSO limits" when the loop was on (" per household"
    and the sharing rule when the limits were per household) and its forecast when its EMSs planned on one."""
    forecast = summary.get("forecast", "perfect")
    if summary.get("dso_limits_per") == "household":
        label = f"{summary['framework']} + DSO limits per household ({summary.get('dso_sharing')})"
    else:
        label = f"{summary['framework']}{' + DSO limits' if summary.get('dso_limits') else ''}"
    return label + ("" if forecast == "perfect" else f", {forecast} forecast")


def forecast_error_costs(summaries: list[dict]) -> list[float | None]:
    """Per run, the cost of its forecast's errors: its total cost less that of the run among ``summaries`` that
    planned with perfect foresight on the same scenario, framework, DSO loop and horizon (None: no such run, or
    the run itself planned with perfect foresight)."""
    def key(s):
        return (s.get("scenario"), s["framework"], bool(s.get("dso_limits")), s.get("dso_limits_per"),
                s.get("dso_sharing"), s.get("horizon_h"))

    perfect = {key(s): s["kpis"]["total_cost_eur"] for s in summaries if s.get("forecast", "perfect") == "perfect"}
    return [None if s.get("forecast", "perfect") == "perfect" or key(s) not in perfect
            else s["kpis"]["total_cost_eur"] - perfect[key(s)] for s in summaries]


def distinct_run_labels(summaries: list[dict]) -> list[str]:
    """:func:`run_label` per run; runs of the same framework told apart by scenario, then by number."""
    labels = [run_label(s) for s in summaries]
    for label in set(labels):
        same = [i for i, other in enumerate(labels) if other == label]
        if len(same) > 1:
            scenarios = [summaries[i].get("scenario") for i in same]
            distinct = None not in scenarios and len(set(scenarios)) == len(same)
            for n, i in enumerate(same, start=1):
                labels[i] = f"{label} ({scenarios[n - 1]})" if distinct else f"{label} #{n}"
    return labels


def _mlec_summaries(runs) -> list[dict]:
    summaries = []
    for run in runs:
        s = _summary(run)
        if s.get("framework") not in FRAMEWORKS:
            raise ValueError(f"{run}: not a three-LEC run (framework {s.get('framework')!r})")
        summaries.append(s)
    return summaries


def mlec_compare_cells(runs) -> tuple[list[str], list[list[str]]]:
    """The comparison table of three-LEC runs as formatted text: one column per run, one row per KPI.

    Rows: total cost and cost per member, cost per LEC and per member of each LEC,
    self-sufficiency (community and per LEC), energy exchanged between LECs (and the negotiation's
    tolerance, which determines it), PV curtailed,
    transformer peak, voltage range, bus violations (bus-steps outside the band, and steps with
    any), line overloads (line-steps), losses, messages exchanged, negotiation iterations (total
    and largest per hour), wall time. When a run's LECs traded in a continuous double auction
    (``p2p.market: continuous``), also: the P2P volume, the auction's volume and welfare against the
    uniform-price pool of the same orders, its number of trades and its trade prices (volume-weighted
    mean and std, min, max) against the pool's volume-weighted mean price. When a run had the DSO's limits
    per household, also: the Jain index of the households' curtailment, the largest household's, the energy
    above the household import limits and the households over them, and the overloaded rows (line or
    transformer phases) by direction and in how many the households behind were over their import limits.

    Parameters
    ----------
    runs
        Run directories of the frameworks decentralised, distributed or p2p.

    Returns
    -------
    header : list of str
        ``"KPI"``, then one label per run (:func:`distinct_run_labels`).
    rows : list of list of str
        Per KPI: its label (unit in parentheses), then the run's value ("-" where it has none,
        e.g. negotiation iterations outside the distributed framework).
    """
    summaries = _mlec_summaries(runs)
    lecs = sorted({lec for s in summaries for lec in s["kpis"]["lecs"]})
    header = ["KPI"] + distinct_run_labels(summaries)

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
        # what determines the negotiated exchange: with a small wheeling cost the total cost hardly depends on
        # it, so the ADMM's stopping tolerance decides how close to the optimum's volume it lands
        row("negotiation tolerance (kW)", lambda k: k.get("negotiation_tol_kw"), 4),
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
    if any(s.get("forecast", "perfect") != "perfect" for s in summaries):
        # runs whose EMSs planned on a forecast: its errors, and what they cost against perfect foresight (rows only
        # then, so other comparisons keep their table)
        costs = dict(zip(map(id, summaries), forecast_error_costs(summaries)))

        def error(signal, measure):
            return lambda k: k.get("forecast_errors", {}).get(signal, {}).get(measure)

        rows[-1:-1] = [
            ["forecast"] + [s.get("forecast", "perfect") for s in summaries],
            row("load forecast MAE (kW)", error("load", "mae_kw")),
            row("load forecast RMSE (kW)", error("load", "rmse_kw")),
            row("PV forecast MAE (kW)", error("pv", "mae_kw")),
            row("PV forecast RMSE (kW)", error("pv", "rmse_kw")),
            row("net demand forecast MAE, next hour (kW)", error("net", "mae_next_hour_kw")),
            ["cost of forecast error (EUR)"] + [_fmt(costs[id(s)], 2) for s in summaries],
        ]
    if any("curtailment_jain_index" in s["kpis"] for s in summaries):
        # runs with the DSO's limits per household (rows only then, so other comparisons keep their table)
        rows[-1:-1] = [
            row("households curtailed", lambda k: k.get("households_curtailed")),
            row("largest household curtailment (kWh)", lambda k: k.get("household_curtailed_kwh_max")),
            row("curtailment Jain index", lambda k: k.get("curtailment_jain_index"), 3),
            row("import over household limits (kWh)", lambda k: k.get("import_over_household_limits_kwh")),
            row("households over their import limit", lambda k: k.get("households_over_import_limit")),
            row("overloaded phase-steps, import", lambda k: k.get("overload_rows_import")),
            row("overloaded phase-steps, export", lambda k: k.get("overload_rows_export")),
            row("overloaded phase-steps, homes over import limits",
                lambda k: k.get("overload_rows_over_import_limits")),
        ]
    if any("p2p_cda_volume_kwh" in s["kpis"] for s in summaries):
        # runs whose LECs traded in a continuous double auction: against the pool of the same orders, and the
        # spread of the prices members got (rows only then, so other comparisons keep their table)
        rows[-1:-1] = [
            row("P2P traded inside the LECs (kWh)", lambda k: k.get("p2p_volume_kwh")),
            row("CDA traded (kWh)", lambda k: k.get("p2p_cda_volume_kwh")),
            row("pool of the same orders traded (kWh)", lambda k: k.get("p2p_pool_counterfactual_volume_kwh")),
            row("CDA welfare (EUR)", lambda k: k.get("p2p_cda_welfare_eur"), 3),
            row("pool of the same orders welfare (EUR)", lambda k: k.get("p2p_pool_counterfactual_welfare_eur"), 3),
            row("CDA trades", lambda k: k.get("p2p_cda_trades")),
            row("CDA trade price mean (EUR/kWh)", lambda k: k.get("p2p_cda_price_mean_eur_per_kwh"), 4),
            row("CDA trade price std (EUR/kWh)", lambda k: k.get("p2p_cda_price_std_eur_per_kwh"), 4),
            row("CDA trade price min (EUR/kWh)", lambda k: k.get("p2p_cda_price_min_eur_per_kwh"), 4),
            row("CDA trade price max (EUR/kWh)", lambda k: k.get("p2p_cda_price_max_eur_per_kwh"), 4),
            row("pool price, volume-weighted mean (EUR/kWh)",
                lambda k: k.get("p2p_pool_counterfactual_price_mean_eur_per_kwh"), 4),
        ]
    return header, rows


def mlec_compare_table(runs) -> str:
    """A Markdown table of :func:`mlec_compare_cells`: one column per run, one row per KPI."""
    header, rows = mlec_compare_cells(runs)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in rows])


# ---------------------------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------------------------
def _voltage_band(run_dir) -> tuple[float, float] | None:
    """The DSO's voltage band of the run from its resolved ``scenario.json``; None when not recorded."""
    try:
        dso = json.loads((Path(run_dir) / "scenario.json").read_text())["dso"]
        return float(dso["vm_min_pu"]), float(dso["vm_max_pu"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _hour_ticks(ax, x_max: float) -> None:
    """Every hour up to 12 h, every 3 h up to two days, then whole days (at most ~16 ticks)."""
    step = 1.0 if x_max <= 12 else 3.0 if x_max <= 48 else 24.0 * max(1, math.ceil(x_max / 24.0 / 16))
    ax.set_xticks(np.arange(0, x_max + 1e-9, step))
    ax.set_xlim(0, x_max)


def _extended(x: np.ndarray, y: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Step-plot data whose last value lasts its full period."""
    return np.append(x, x[-1] + width), np.append(y, y[-1])


def plot_mlec_runs(runs, output_png) -> None:
    """Three panels over three-LEC runs, to a PNG: what each LEC paid, and what the feeder saw.

    1. Cost per LEC over the run (EUR), one bar per run (``settlement.csv`` ``cost_eur`` summed).
    2. The LECs' hourly grid import (solid, up) and export (dashed, down), in kWh per hour, and,
       where any LEC bought from another, the energy exchanged between LECs (dotted).
    3. The feeder's lowest (dashed) and highest (solid) bus voltage per grid step (``grid.csv``),
       with the DSO's band where ``scenario.json`` records it.

    Parameters
    ----------
    runs
        Run directories of the frameworks decentralised, distributed or p2p; one colour per run.
    output_png
        Path or binary file object the PNG is written to.

    Raises
    ------
    ValueError
        A run that is not a three-LEC run, or a missing file or column (one line naming both).
    """
    from lec_cosim.studies.local_market.report import read_run_csv

    if not runs:
        raise ValueError("no run directories given")
    summaries = _mlec_summaries(runs)
    labels = distinct_run_labels(summaries)
    if max(float(summary.get("horizon_h", 24)) for summary in summaries) > CALENDAR_PLOT_AFTER_H:
        plot_mlec_calendar(runs, labels, output_png)
        return
    settlements = [read_run_csv(run, "settlement.csv", SETTLEMENT_COLUMNS, rows=True) for run in runs]
    grids = [read_run_csv(run, "grid.csv", GRID_COLUMNS, rows=True) for run in runs]
    bands = {band for band in map(_voltage_band, runs) if band is not None}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cost, ax_grid, ax_v) = plt.subplots(3, 1, figsize=(11, 10.5), height_ratios=[1, 1.2, 1.2])
    lecs = sorted({lec for settlement in settlements for lec in settlement["lec"].unique()})
    x = np.arange(len(lecs))
    width = 0.8 / len(runs)
    x_max = 0.0
    for i, (label, settlement, grid) in enumerate(zip(labels, settlements, grids)):
        colour = f"C{i % 10}"
        cost = settlement.groupby("lec")["cost_eur"].sum().reindex(lecs, fill_value=0.0)
        bars = ax_cost.bar(x + (i - (len(runs) - 1) / 2) * width, cost.to_numpy(), width, color=colour, label=label)
        ax_cost.bar_label(bars, fmt="%.2f", fontsize=7)

        hourly = settlement.groupby("hour")[["grid_import_kwh", "grid_export_kwh", "exchange_in_kwh"]].sum()
        hours = hourly.index.to_numpy(dtype=float)
        ax_grid.step(*_extended(hours, hourly["grid_import_kwh"].to_numpy(), 1.0), where="post", color=colour,
                     lw=1.6, label=f"{label}: grid import")
        ax_grid.step(*_extended(hours, -hourly["grid_export_kwh"].to_numpy(), 1.0), where="post", color=colour,
                     lw=1.2, ls="--", label=f"{label}: grid export")
        if (hourly["exchange_in_kwh"] > _NOTHING_KWH).any():
            ax_grid.step(*_extended(hours, hourly["exchange_in_kwh"].to_numpy(), 1.0), where="post", color=colour,
                         lw=1.2, ls=":", label=f"{label}: between LECs")
        x_max = max(x_max, hours[-1] + 1.0)

        times = pd.to_datetime(grid["time"], format="ISO8601")
        step_h = ((times - times.iloc[0]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
        period = float(np.median(np.diff(step_h))) if len(step_h) > 1 else 0.25
        ax_v.step(*_extended(step_h, grid["vm_max_pu"].to_numpy(dtype=float), period), where="post", color=colour,
                  lw=1.4, label=f"{label}: highest")
        ax_v.step(*_extended(step_h, grid["vm_min_pu"].to_numpy(dtype=float), period), where="post", color=colour,
                  lw=1.2, ls="--", label=f"{label}: lowest")
        x_max = max(x_max, step_h[-1] + period)
    for low, high in sorted(bands):
        ax_v.axhline(low, color="grey", ls=":", lw=1)
        ax_v.axhline(high, color="grey", ls=":", lw=1, label=f"DSO band {low:g}-{high:g} pu")

    ax_cost.set_xticks(x, lecs)
    ax_cost.set_ylabel("cost (EUR)")
    ax_cost.set_title("cost per LEC over the run", fontsize=10)
    ax_grid.axhline(0, color="grey", lw=0.5)
    ax_grid.set_ylabel("energy per hour (kWh)")
    ax_grid.set_title("all LECs: grid import (up), grid export (down), exchanges between LECs", fontsize=10)
    ax_v.set_ylabel("bus voltage (pu)")
    ax_v.set_title("feeder: lowest and highest bus voltage per grid step", fontsize=10)
    ax_v.set_xlabel("hours from the run's start (h)")
    for ax in (ax_grid, ax_v):
        _hour_ticks(ax, x_max)
    for ax in (ax_cost, ax_grid, ax_v):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(output_png, dpi=120)
    plt.close(fig)


CALENDAR_PLOT_AFTER_H = 7 * 24
"""Runs longer than a week are drawn by calendar period (:func:`plot_mlec_calendar`): hour by hour they are a blur."""


def plot_mlec_calendar(runs, labels: list[str], output_png) -> None:
    """Four panels over long three-LEC runs, one bar per run and period (month; day for runs within two months):
    the LECs' cost, their self-sufficiency, the feeder's bus violations and line overloads, and the energy
    exchanged between LECs (``months.csv`` / ``days.csv`` and ``grid_months.csv`` / ``grid_days.csv``)."""
    from lec_cosim.studies.local_market.report import read_run_csv

    months = [read_run_csv(run, "months.csv", ["month", "lec", "cost_eur"], rows=True) for run in runs]
    by_month = max(len(frame["month"].unique()) for frame in months) >= 2
    period, label = ("months", "month") if by_month else ("days", "date")
    columns = [label, "lec", "load_kwh", "grid_import_kwh", "exchange_in_kwh", "exchange_out_kwh", "cost_eur"]
    lecs_tables = [read_run_csv(run, f"{period}.csv", columns, rows=True) for run in runs]
    grid_tables = [read_run_csv(run, f"grid_{period}.csv", [label, "bus_violations", "line_overloads"], rows=True)
                   for run in runs]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    ax_cost, ax_self, ax_viol, ax_x = axes
    periods = sorted({p for frame in lecs_tables for p in frame[label].astype(str)})
    x = np.arange(len(periods))
    width = 0.8 / len(runs)
    for i, (run_label, lecs, grid) in enumerate(zip(labels, lecs_tables, grid_tables)):
        colour, offset = f"C{i % 10}", (i - (len(runs) - 1) / 2) * width
        per = lecs.assign(**{label: lecs[label].astype(str)}).groupby(label)[
            ["load_kwh", "grid_import_kwh", "exchange_in_kwh", "exchange_out_kwh", "cost_eur"]].sum().reindex(periods)
        self_sufficiency = 1.0 - per["grid_import_kwh"] / per["load_kwh"]  # the community's, as its KPI
        g = grid.assign(**{label: grid[label].astype(str)}).set_index(label).reindex(periods)
        ax_cost.bar(x + offset, per["cost_eur"].to_numpy(), width, color=colour, label=run_label)
        ax_self.bar(x + offset, 100 * self_sufficiency.to_numpy(), width, color=colour, label=run_label)
        ax_viol.bar(x + offset, g["bus_violations"].to_numpy(), width, color=colour, label=f"{run_label}: bus")
        ax_viol.bar(x + offset, g["line_overloads"].to_numpy(), width, bottom=g["bus_violations"].to_numpy(),
                    color=colour, alpha=0.45, label=f"{run_label}: line")
        ax_x.bar(x + offset, per["exchange_out_kwh"].to_numpy(), width, color=colour, label=run_label)
    ax_cost.set_ylabel("cost (EUR)")
    ax_cost.set_title(f"all LECs: cost per {label}", fontsize=10)
    ax_self.set_ylabel("self-sufficiency (%)")
    ax_self.set_title("all LECs together: 1 - grid import / load", fontsize=10)
    ax_viol.set_ylabel("violations (count)")
    ax_viol.set_title("feeder: bus-voltage violations (solid) and line overloads (light), element-steps",
                      fontsize=10)
    ax_x.set_ylabel("energy (kWh)")
    ax_x.set_title("energy exchanged between LECs (platform or negotiation)", fontsize=10)
    ax_x.set_xticks(x, periods, rotation=45 if len(periods) > 12 else 0, ha="right" if len(periods) > 12 else "center")
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(output_png, dpi=120)
    plt.close(fig)
