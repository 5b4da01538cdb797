"""Tables II and III of Lezama et al. for local-market runs: the frames, their cells and markdown.

Separate from the figures (:mod:`lec_cosim.studies.local_market.report_figures`): the tables need no matplotlib and
are what the HTML report (:mod:`lec_cosim.report_html`) and ``lec-cosim compare`` show as text. The
paper's values live here too (:data:`PAPER_TABLE_III`, :func:`load_paper_values`), since only the
tables compare with them.

Paper values are given per case label (``"Base 1"`` .. ``"Case 2"``, or a scenario name) as
``{label: {metric: value}}``; a metric is a KPI key of ``summary.json`` (``"losses_kwh"``), a
dotted group key (``"producers.profit_eur"``) or a nested group (``{"producers": {"profit_eur":
...}}``). The paper's bus-violation counts are on its own 110-bus reduced model of the feeder and
read as the number of buses outside the band on the day, so they are compared with
``violated_buses_reduced`` (distinct buses of the reduced 110-bus numbering of
:mod:`lec_cosim.models.lem_participants` outside the band at any grid step), not with the count
over all buses of the full feeder nor with bus-steps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from lec_cosim.studies.local_market.report_runs import _read_lem_summary, case_label, run_labels

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
    ("violated_buses_reduced", "buses outside the band, reduced model (-)", "{:d}"),
    ("violated_buses", "buses outside the band, all buses (-)", "{:d}"),
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
"""(metric key, row label, format) of the Table III analogue. The reduced model is the paper's 110 buses on the IEEE
feeder (906 in all), the same rule's buses on any other feeder."""


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


def _on_the_papers_feeder(run_dir: str | Path) -> bool:
    """The run's players sit on the IEEE feeder (``feeder.data_dir``), not on a ``feeder.source``."""
    try:
        scenario = json.loads((Path(run_dir) / "scenario.json").read_text())
    except (OSError, ValueError):
        return True  # a run folder without its scenario: as before sources existed
    return not (scenario.get("feeder") or {}).get("source")


def _paper_for(paper: Mapping, summary: Mapping, label: str, papers_feeder: bool = True) -> dict | None:
    # The paper's cases are one day on the IEEE feeder: a run of another horizon or on another feeder matches
    # paper values by scenario name only.
    by_case = summary.get("horizon_h", 24) == 24 and papers_feeder
    for key in ((case_label(summary), label) if by_case else ()) + (summary.get("scenario"),):
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
        for run, summary, label in zip(run_dirs, summaries, labels):
            kpis = summary.get("kpis", {})
            columns[(label, "ours")] = [_kpi(kpis, key) for key in keys]
            ref = _paper_for(values, summary, label, _on_the_papers_feeder(run)) or {}
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
