"""The studies lec-cosim runs, one folder each (``lec_cosim/studies/<kind>/``), found by a scenario's ``kind:``.

A study's folder holds its schema (``schema.py``: its pydantic model and reader), its wiring (``wiring.py``:
which federate kinds, how connected, as :class:`lec_cosim.wiring.FederatePlan`), its results contract
(``results.py``: the record the generic recorder keeps, its tables and KPIs) and its report (``report*.py``).
Its ``__init__`` says everything the command line, the reports and the compiler need to know of it, so
that none of those names a study:

- ``KIND``, ``TITLE``, ``DESCRIPTION`` (the HTML report's section), ``plan(scenario)`` (its
  federates, :class:`lec_cosim.wiring.FederatePlan`), ``describe(scenario)`` (what ``validate``
  prints), ``done(kpis, summary)`` (what ``run`` prints at the end), ``check_data(scenario)`` (the data
  a run would load, loaded once before it starts), ``run_name(scenario)`` (its default results folder);
- ``OVERRIDES``: the command-line options that change its scenarios (``framework``, ``dso_limits``);
  ``VALUE_PLAYERS``: federates whose published values ``--play-market`` may replace by a file;
  ``check_training(scenario, source)`` where ``lec-cosim train-bidders`` applies;
- ``compare(runs, paper)`` (``lec-cosim compare``), ``plot(runs, output)`` (``lec-cosim plot``),
  ``tables(runs, paper)`` (the HTML report's ``(id, caption, header, rows)`` tables), ``FIGURE_CAPTION``,
  ``ROW_HEADERS`` (cells naming a table row), ``NO_FEEDER_MAP`` (why a run has no feeder map, or None),
  ``run_labels(summaries, runs)``, ``recognise(summary)`` (a run made before runs recorded their kind).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

KINDS = ("community_battery", "local_market", "three_lecs")
"""Every study, in the order the reports show them (each is the package ``lec_cosim.studies.<kind>``)."""


def study(kind: str) -> ModuleType:
    """The module of one study, by kind."""
    if kind not in KINDS:
        raise KeyError(f"{kind!r} is no study of lec-cosim; one of {', '.join(KINDS)}")
    return importlib.import_module(f"lec_cosim.studies.{kind}")


def study_of(scenario) -> ModuleType:
    """The study of a validated scenario."""
    return study(scenario.kind)


def kind_of_run(run_dir: str | Path) -> str | None:
    """The kind of a run directory from its ``summary.json`` (recorded, or recognised in an older run); None
    when it has no readable summary or is of no study."""
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    if summary.get("kind") in KINDS:
        return summary["kind"]
    return next((kind for kind in KINDS if study(kind).recognise(summary)), None)
