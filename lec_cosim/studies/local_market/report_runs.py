"""The local-market runs a LEM report reads: their summary and CSVs, and the paper's case labels.

Separate from the tables (:mod:`lec_cosim.studies.local_market.report_tables`) and the figures
(:mod:`lec_cosim.studies.local_market.report_figures`) because both read the same run directories and name the runs
the same way; what is read and how a missing file or column is reported (a one-line
:class:`ValueError` naming the run directory and file) is decided here once.

The files read: ``summary.json`` (scenario, ``lem_enabled``, ``tariff_scheme``, ``chp_strategy``
and the KPIs), ``clearing.csv`` (``time, price, volume_kwh`` per market period, LEM runs only) and
``energy.csv`` (``time, load_kwh, pv_kwh, chp_kwh, lem_bought_kwh, lem_sold_kwh, grid_import_kwh,
grid_export_kwh`` per market period, community totals).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

LEM_FRAMEWORK = "local_market"

CASE_LABELS = {
    (False, "plain"): "Base 1",
    (False, "bihourly"): "Base 2",
    (True, "plain"): "Case 1",
    (True, "bihourly"): "Case 2",
}
"""(lem_enabled, tariff_scheme) -> the paper's case label."""

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

