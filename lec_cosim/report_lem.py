"""Compare local-electricity-market (LEM) runs: Tables II and III and Figs. 3 and 4 of Lezama et al.

After Lezama, Faia and Vale, "Bidding in Local Electricity Markets Considering Low Voltage Grid
Constraints": Base 1 (no LEM, plain tariff), Base 2 (no LEM, bi-hourly tariff), Case 1 (LEM, plain),
Case 2 (LEM, bi-hourly).

Everything here reads run directories of the ``local_market`` framework and writes nothing into
them. The files used:

- ``summary.json`` (all functions): scenario, ``lem_enabled``, ``tariff_scheme``, ``chp_strategy``
  and the KPIs of Tables II and III;
- ``clearing.csv`` (prices plot, LEM runs only): ``time, price, volume_kwh`` per market period;
- ``energy.csv`` (energy plot): ``time, load_kwh, pv_kwh, chp_kwh, lem_bought_kwh, lem_sold_kwh,
  grid_import_kwh, grid_export_kwh`` per market period (community totals).

A missing file or column raises a one-line :class:`ValueError` naming the run directory and file.

Paper values are given per case label (``"Base 1"`` .. ``"Case 2"``, or a scenario name) as
``{label: {metric: value}}``; a metric is a KPI key of ``summary.json`` (``"losses_kwh"``), a
dotted group key (``"producers.profit_eur"``) or a nested group (``{"producers": {"profit_eur":
...}}``). :data:`PAPER_TABLE_III` holds the values we have. The paper's bus-violation counts are on
its own 110-bus reduced model of the feeder and read as the number of buses outside the band on
the day, so they are compared with ``violated_buses_reduced`` (distinct buses of the reduced
110-bus numbering of :mod:`lec_cosim.models.lem_participants` outside the band at any grid step),
not with the count over all buses of the full feeder nor with bus-steps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.bidding import FEED_IN_EUR_PER_KWH, SCHEMES, retail_tariff_eur_per_kwh

LEM_FRAMEWORK = "local_market"

CASE_LABELS = {
    (False, "plain"): "Base 1",
    (False, "bihourly"): "Base 2",
    (True, "plain"): "Case 1",
    (True, "bihourly"): "Case 2",
}
"""(lem_enabled, tariff_scheme) -> the paper's case label."""

PAPER_TABLE_III: dict[str, dict[str, float]] = {
    "Base 1": {"violated_buses_reduced": 14, "losses_kwh": 48.36},
    "Base 2": {"violated_buses_reduced": 14, "losses_kwh": 48.36},
    "Case 1": {"violated_buses_reduced": 0, "losses_kwh": 10.57},
    "Case 2": {"violated_buses_reduced": 5, "losses_kwh": 30.71},
}
"""Table III of the paper as we have it (bus violations on its 110-bus model, losses in kWh)."""

_GROUPS = [
    ("consumers_prosumers", "consumers & prosumers"),
    ("producers", "producers"),
    ("total", "total"),
]
_MONEY = [("cost_eur", "cost"), ("income_eur", "income"), ("profit_eur", "profit")]

TABLE_II_ROWS: list[tuple[str, str, str]] = [
    (f"{group}.{key}", f"{glabel} {mlabel} (EUR)", "{:.2f}") for group, glabel in _GROUPS for key, mlabel in _MONEY
] + [
    ("fitness", "fitness (-)", "{:.4f}"),
    ("lem_volume_kwh", "LEM volume (kWh)", "{:.2f}"),
]
"""(metric key, row label, format) of the Table II analogue."""

TABLE_III_ROWS: list[tuple[str, str, str]] = [
    ("violated_buses_reduced", "buses outside the band, reduced 110-bus model (-)", "{:d}"),
    ("violated_buses", "buses outside the band, all 906 buses (-)", "{:d}"),
    ("bus_violations_reduced", "bus violations x grid steps, reduced model (-)", "{:d}"),
    ("bus_violations", "bus violations x grid steps, all buses (-)", "{:d}"),
    ("angle_violations", "angle violations (-)", "{:d}"),
    ("line_overloads", "line overloads x grid steps (-)", "{:d}"),
    ("losses_kwh", "losses (kWh)", "{:.2f}"),
    ("losses_kvarh", "losses (kvarh)", "{:.2f}"),
    ("dn_impact", "DN impact (-)", "{:.4f}"),
    ("vm_min_pu", "V min (pu)", "{:.4f}"),
    ("vm_max_pu", "V max (pu)", "{:.4f}"),
]
"""(metric key, row label, format) of the Table III analogue."""

CLEARING_COLUMNS = ["time", "price", "volume_kwh"]
ENERGY_COLUMNS = ["time", "load_kwh", "pv_kwh", "chp_kwh", "lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh",
                  "grid_export_kwh"]


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def _read_summary(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise ValueError(f"{run_dir}: missing summary.json")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{run_dir}: summary.json is not valid JSON ({err})") from None


def _read_lem_summary(run_dir: str | Path) -> dict:
    summary = _read_summary(run_dir)
    if summary.get("framework") != LEM_FRAMEWORK:
        raise ValueError(f"{run_dir}: not a {LEM_FRAMEWORK} run (framework {summary.get('framework')!r})")
    return summary


def read_run_csv(run_dir: str | Path, name: str, columns: Sequence[str], *, rows: bool = False) -> pd.DataFrame:
    """A results CSV of a run with the ``columns`` a report needs (and some ``rows``), else a one-line ValueError."""
    path = Path(run_dir) / name
    if not path.is_file():
        raise ValueError(f"{run_dir}: missing {name}")
    frame = pd.read_csv(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{run_dir}: {name} lacks column(s) {', '.join(missing)}")
    if rows and frame.empty:
        raise ValueError(f"{run_dir}: {name} has no rows")
    return frame


def is_lem_run(run_dir: str | Path) -> bool:
    """True when ``run_dir/summary.json`` is of the ``local_market`` framework.

    A directory without a readable ``summary.json`` is not a LEM run (False, no error).
    """
    try:
        summary = _read_summary(run_dir)
    except ValueError:
        return False
    return summary.get("kind", "local_market" if summary.get("framework") == LEM_FRAMEWORK else None) == "local_market"


def case_label(summary: Mapping) -> str | None:
    """The paper's label (Base 1, Base 2, Case 1, Case 2) of a run, or None if not identifiable."""
    lem, scheme = summary.get("lem_enabled"), summary.get("tariff_scheme")
    if not isinstance(lem, bool):
        return None
    return CASE_LABELS.get((lem, scheme))


def run_labels(summaries: Sequence[Mapping]) -> list[str]:
    """Column labels of runs: the case label where identifiable, else the scenario name.

    Runs sharing a case label are told apart by their CHP strategy ("Case 1 (aco)") when that is
    enough, else by their scenario name ("Case 1 (my_scenario)").
    """
    base = [case_label(s) or str(s.get("scenario", f"run {i + 1}")) for i, s in enumerate(summaries)]
    labels = list(base)
    for label in set(base):
        idx = [i for i, b in enumerate(base) if b == label]
        if len(idx) < 2:
            continue
        strategies = [summaries[i].get("chp_strategy") for i in idx]
        if None not in strategies and len(set(strategies)) == len(idx):
            for i, strategy in zip(idx, strategies):
                labels[i] = f"{label} ({strategy})"
        else:
            for i in idx:
                labels[i] = f"{label} ({summaries[i].get('scenario', i + 1)})"
    # Still equal (same scenario name twice): number them.
    for label in set(labels):
        idx = [i for i, b in enumerate(labels) if b == label]
        if len(idx) > 1:
            for n, i in enumerate(idx, start=1):
                labels[i] = f"{label} #{n}"
    return labels


# ---------------------------------------------------------------------------------------------
# Paper values
# ---------------------------------------------------------------------------------------------
def _number(value) -> float | None:
    """A paper value as a float, or None when unknown (None, NaN, "n/a", ...)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _flatten_metrics(values: Mapping) -> dict[str, float | None]:
    flat: dict[str, float | None] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = _number(v)
        else:
            flat[str(key)] = _number(value)
    return flat


def load_paper_values(paper: Mapping | str | Path | None = None, builtin: bool = True) -> dict[str, dict]:
    """Paper values as ``{label: {flat metric key: value}}``.

    ``paper`` is a dict or a JSON/YAML file of ``{label: {metric: value}}``; its values override
    :data:`PAPER_TABLE_III` (included unless ``builtin`` is False) metric by metric.
    """
    merged: dict[str, dict] = {}
    if builtin:
        merged = {label: dict(values) for label, values in PAPER_TABLE_III.items()}
    if paper is None:
        return merged
    if isinstance(paper, (str, Path)):
        path = Path(paper)
        if not path.is_file():
            raise ValueError(f"{path}: paper values file not found")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            paper = yaml.safe_load(text) or {}
        else:
            paper = json.loads(text)
    if not isinstance(paper, Mapping):
        raise TypeError("paper values must be a mapping {label: {metric: value}}")
    for label, values in paper.items():
        if not isinstance(values, Mapping):
            raise TypeError(f"paper values of {label!r} must be a mapping {{metric: value}}")
        merged.setdefault(str(label), {}).update(_flatten_metrics(values))
    return merged


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def _kpi(kpis: Mapping, key: str):
    value = kpis
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return None if isinstance(value, Mapping) else _number(value)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _format(value, fmt: str) -> str:
    if _is_missing(value):
        return "n/a"
    if fmt == "{:d}":
        number = float(value)
        return f"{round(number):d}" if number == round(number) else f"{number:.2f}"
    text = fmt.format(float(value))
    # No "-0.00".
    if text.lstrip("-").strip("0.") == "" and text.startswith("-"):
        text = text[1:]
    return text


def _paper_for(paper: Mapping, summary: Mapping, label: str) -> dict | None:
    # The paper's cases are one day: a run of another horizon matches paper values by scenario name only.
    one_day = summary.get("horizon_h", 24) == 24
    for key in ((case_label(summary), label) if one_day else ()) + (summary.get("scenario"),):
        if key is not None and key in paper:
            return paper[key]
    return None


def lem_compare_frames(run_dirs: Sequence[str | Path], paper: Mapping | str | Path | None = None,
                       builtin_paper: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw Table II and Table III analogues (rows = metric keys; columns = (label, ours|paper)).

    A paper column is present for a run only where the paper values hold at least one of the
    table's metrics for it; missing values are NaN.
    """
    if not run_dirs:
        raise ValueError("no run directories given")
    summaries = [_read_lem_summary(run) for run in run_dirs]
    labels = run_labels(summaries)
    values = load_paper_values(paper, builtin=builtin_paper)
    frames = []
    for rows in (TABLE_II_ROWS, TABLE_III_ROWS):
        keys = [key for key, _, _ in rows]
        columns = {}
        for summary, label in zip(summaries, labels):
            kpis = summary.get("kpis", {})
            columns[(label, "ours")] = [_kpi(kpis, key) for key in keys]
            ref = _paper_for(values, summary, label) or {}
            if any(not _is_missing(ref.get(key)) for key in keys):
                columns[(label, "paper")] = [ref.get(key) for key in keys]
        frame = pd.DataFrame(columns, index=keys, dtype=float)
        frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["run", "source"])
        frames.append(frame)
    return frames[0], frames[1]


def lem_table_cells(frame: pd.DataFrame, rows: list[tuple[str, str, str]]) -> tuple[list[str], list[list[str]]]:
    """One table of :func:`lem_compare_frames` as formatted text.

    Parameters
    ----------
    frame
        The Table II or Table III frame of :func:`lem_compare_frames`.
    rows
        Its row definitions, :data:`TABLE_II_ROWS` or :data:`TABLE_III_ROWS`.

    Returns
    -------
    header : list of str
        ``"KPI"``, then ``"<run label> (ours|paper)"`` per column.
    body : list of list of str
        Per KPI: its label (unit in parentheses), then the values in the row's format ("n/a" where
        missing).
    """
    header = ["KPI"] + [f"{label} ({source})" for label, source in frame.columns]
    body = [[row_label] + [_format(v, fmt) for v in frame.loc[key].tolist()] for key, row_label, fmt in rows]
    return header, body


def _markdown(frame: pd.DataFrame, rows: list[tuple[str, str, str]]) -> str:
    header, body = lem_table_cells(frame, rows)
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def lem_compare_tables(run_dirs: Sequence[str | Path], paper: Mapping | str | Path | None = None,
                       builtin_paper: bool = True) -> str:
    """Markdown Tables II (costs, incomes, profits, fitness, LEM volume) and III (grid) of the runs.

    Parameters
    ----------
    run_dirs
        ``local_market`` run directories; one column (pair) per run, in the given order, labelled
        Base 1/Base 2/Case 1/Case 2 from ``lem_enabled`` and ``tariff_scheme`` (else the scenario).
    paper
        Extra paper values, a dict or a JSON/YAML file ``{label: {metric: value}}`` (module
        docstring); they override :data:`PAPER_TABLE_III`.
    builtin_paper
        Include :data:`PAPER_TABLE_III` (default True).

    Returns
    -------
    str
        Two markdown tables with headings. Each run has an "(ours)" column and, where the paper
        values give any of the table's metrics for it, a "(paper)" column ("n/a" where unknown).
        EUR and kWh with 2 decimals, pu and fitness with 4, counts as integers; a missing KPI
        (e.g. fitness where no learner's bids were played) is "n/a".
    """
    table_ii, table_iii = lem_compare_frames(run_dirs, paper, builtin_paper)
    return "\n".join([
        "### Table II analogue: costs, incomes and profits",
        "",
        _markdown(table_ii, TABLE_II_ROWS),
        "",
        "### Table III analogue: distribution network",
        "",
        _markdown(table_iii, TABLE_III_ROWS),
    ])


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def _hours(times: pd.Series) -> np.ndarray:
    """Hours since midnight of the first period's day (wall-clock offsets kept as written)."""
    try:
        parsed = pd.to_datetime(times, format="ISO8601")
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):  # mixed UTC offsets
        parsed = pd.to_datetime(times, format="ISO8601", utc=True)
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)
    origin = parsed.iloc[0].normalize()
    return ((parsed - origin) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


def _hour_ticks(ax, x_max: float) -> None:
    """Ticks every 3 h over a day or two, then every whole number of days (at most ~16 ticks)."""
    step = 3.0 if x_max <= 48 else 24.0 * max(1, math.ceil(x_max / 24.0 / 16))
    ax.set_xticks(np.arange(0, x_max + 1e-9, step))


def _hour_label(x_max: float) -> str:
    return "hour of day (h)" if x_max <= 24 else "hours from midnight of the first day (h)"


def _period_h(hours: np.ndarray) -> float:
    steps = np.diff(hours)
    return float(np.median(steps)) if len(steps) else 1.0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_prices(ax, run_dirs: Sequence[str | Path], tariffs: Mapping[str, Sequence[float]] | None,
                 require_lem: bool) -> None:
    summaries = [_read_lem_summary(run) for run in run_dirs]
    labels = run_labels(summaries)
    x_max = 24.0
    drawn = 0
    for run, summary, label in zip(run_dirs, summaries, labels):
        if not summary.get("lem_enabled"):
            continue
        clearing = read_run_csv(run, "clearing.csv", CLEARING_COLUMNS)
        if clearing.empty:
            raise ValueError(f"{run}: clearing.csv has no rows")
        hours = _hours(clearing["time"])
        end = hours[-1] + _period_h(hours)
        price = pd.to_numeric(clearing["price"], errors="coerce").to_numpy(dtype=float)
        ax.step(np.append(hours, end), np.append(price, price[-1]), where="post", lw=2, label=f"{label} LEM price")
        x_max = max(x_max, end)
        drawn += 1
    if require_lem and not drawn:
        raise ValueError(f"no LEM run (lem_enabled true) among {', '.join(str(r) for r in run_dirs)}")
    hours = np.arange(math.ceil(x_max) + 1)
    schemes = sorted({s.get("tariff_scheme") for s in summaries if s.get("tariff_scheme") in SCHEMES},
                     key=SCHEMES.index)
    tariffs = dict(tariffs or {})
    for scheme in schemes:
        if scheme not in tariffs:
            tariffs[scheme] = retail_tariff_eur_per_kwh(hours[:-1], scheme)
    for scheme, values in tariffs.items():
        values = np.asarray(values, dtype=float)
        if len(values) == 24 and x_max > 24:  # the hours of a day, repeated over a multi-day run
            values = np.resize(values, math.ceil(x_max))
        x = np.arange(len(values) + 1)
        ax.step(x, np.append(values, values[-1]), where="post", ls="--", color="grey" if scheme == "plain" else "k",
                lw=1, label=f"retail tariff ({scheme})")
    ax.axhline(FEED_IN_EUR_PER_KWH, ls=":", color="tab:green", lw=1.2, label=f"feed-in tariff ({FEED_IN_EUR_PER_KWH})")
    ax.set_ylabel("price (EUR/kWh)")
    ax.set_xlim(0, x_max)
    _hour_ticks(ax, x_max)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _draw_energy(ax, run_dir: str | Path, title: str | None = None) -> None:
    energy = read_run_csv(run_dir, "energy.csv", ENERGY_COLUMNS)
    if energy.empty:
        raise ValueError(f"{run_dir}: energy.csv has no rows")
    hours = _hours(energy["time"])
    period = _period_h(hours)
    width = 0.4 * period
    mid = hours + period / 2
    ax.bar(mid - width / 2, energy.grid_import_kwh, width, color="tab:red", label="grid import (bought)")
    ax.bar(mid - width / 2, -energy.grid_export_kwh, width, color="tab:orange", label="grid export (sold)")
    ax.bar(mid + width / 2, energy.lem_bought_kwh, width, color="tab:blue", label="LEM bought")
    ax.bar(mid + width / 2, -energy.lem_sold_kwh, width, color="tab:cyan", label="LEM sold")
    ax.plot(mid, energy.pv_kwh, "-o", ms=3, color="gold", label="PV output")
    ax.plot(mid, energy.chp_kwh, "-s", ms=3, color="tab:purple", label="CHP output")
    ax.plot(mid, energy.load_kwh, "--", color="k", lw=1, label="load")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel(f"energy per {period:g} h (kWh)")
    x_max = max(24.0, hours[-1] + period)
    ax.set_xlim(0, x_max)
    _hour_ticks(ax, x_max)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=10)


def _save(fig, output_png: str | Path) -> None:
    plt = _pyplot()
    fig.tight_layout()
    fig.savefig(output_png, dpi=120)
    plt.close(fig)


def plot_lem_prices(run_dirs: Sequence[str | Path], output_png: str | Path,
                    tariffs: Mapping[str, Sequence[float]] | None = None) -> None:
    """Fig. 3 analogue: LEM clearing price per period of each LEM run (step plot), to a PNG.

    Reference lines: the retail tariff of each tariff scheme among the runs (hourly values from
    :func:`lec_cosim.models.bidding.retail_tariff_eur_per_kwh`, or ``tariffs[scheme]`` per hour
    of day if given) and the feed-in tariff. Runs without the LEM are skipped; ValueError if none
    is left. Periods where nothing traded (empty price) leave a gap.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    try:
        _draw_prices(ax, run_dirs, tariffs, require_lem=True)
        ax.set_xlabel(_hour_label(ax.get_xlim()[1]))
        ax.set_title("LEM clearing price", fontsize=10)
    except Exception:
        plt.close(fig)
        raise
    _save(fig, output_png)


def plot_lem_energy(run_dir: str | Path, output_png: str | Path) -> None:
    """Fig. 4 analogue for one run: per period, energy bought (up) and sold (down) on the grid and
    in the LEM (bars) with PV, CHP output and load (lines), to a PNG."""
    plt = _pyplot()
    summary = _read_lem_summary(run_dir)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    try:
        _draw_energy(ax, run_dir, title=f"{run_labels([summary])[0]}: energy per period")
        ax.set_xlabel(_hour_label(ax.get_xlim()[1]))
    except Exception:
        plt.close(fig)
        raise
    _save(fig, output_png)


def plot_lem_runs(run_dirs: Sequence[str | Path], output_png: str | Path,
                  tariffs: Mapping[str, Sequence[float]] | None = None) -> None:
    """Multi-panel figure: the prices panel (Fig. 3) over one energy panel (Fig. 4) per run."""
    if not run_dirs:
        raise ValueError("no run directories given")
    summaries = [_read_lem_summary(run) for run in run_dirs]
    labels = run_labels(summaries)
    plt = _pyplot()
    fig, axes = plt.subplots(len(run_dirs) + 1, 1, figsize=(11, 3.2 * (len(run_dirs) + 1)), sharex=True)
    try:
        _draw_prices(axes[0], run_dirs, tariffs, require_lem=False)
        axes[0].set_title("LEM clearing price and tariffs", fontsize=10)
        for ax, run, label in zip(axes[1:], run_dirs, labels):
            _draw_energy(ax, run, title=f"{label}: energy per period")
        axes[-1].set_xlabel(_hour_label(max(ax.get_xlim()[1] for ax in axes)))
    except Exception:
        plt.close(fig)
        raise
    _save(fig, output_png)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lec_cosim.report_lem RUN_DIR ... [--paper FILE] [--plot PNG]``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="local_market run directories")
    parser.add_argument("--paper", help="JSON/YAML file of paper values {label: {metric: value}}")
    parser.add_argument("--plot", help="write the multi-panel prices/energy figure to this PNG")
    args = parser.parse_args(argv)
    print(lem_compare_tables(args.runs, paper=args.paper))
    if args.plot:
        plot_lem_runs(args.runs, args.plot)


if __name__ == "__main__":
    main()
