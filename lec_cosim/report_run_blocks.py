"""The blocks the HTML report shows for every run: its timing, its feeder map and its provenance.

A run's timeline figure and per-federate totals (:func:`run_timing`, from its ``timing/`` folder),
its feeder map (:func:`run_feeder_map`, IEEE-feeder runs) and what produced it (:func:`provenance`,
from ``manifest.json`` and ``summary.json``), as the report's :class:`Table` and :class:`Figure`
items or (label, text) pairs. They read one run each and know nothing of the page around them, so
they live apart from its assembly in :mod:`lec_cosim.report_html`.
"""

from __future__ import annotations

import json
import math
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Table:
    """A KPI table as formatted text: ``header`` labels (units included) and ``rows`` of cells."""

    id: str
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    """A PNG figure with its caption."""

    id: str
    caption: str
    png: bytes


TIMING_HEADER = ["federate", "slots", "working s", "waiting s", "messages sent", "values published", "start-up s",
                 "ready s", "critical hours"]
"""Columns of a run's timing table (:func:`timing_table`)."""


def _seconds(value, digits: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def timing_table(totals, table_id: str) -> Table:
    """The per-federate totals of :func:`lec_cosim.timing.totals` as a :class:`Table`."""
    rows = [[r.federate, str(r.slots), f"{r.work_s:.3f}", f"{r.wait_s:.3f}", str(r.messages_sent),
             str(r.values_published), _seconds(r.startup_s, 2), _seconds(r.ready_s, 2), str(r.critical_hours)]
            for r in totals.itertuples()]
    caption = ("Per federate: slots, working and waiting wall time, messages sent and values published (sums of "
               "timing/<federate>.csv); start-up (process start to executing mode) and ready (process start to its "
               "model built: the largest holds up every federate's start-up), from timing/<federate>.json; hours "
               "it was the critical federate of")
    return Table(table_id, caption, list(TIMING_HEADER), rows)


def run_timing(run: Path, anchor: str, label: str) -> tuple[Figure, Table] | None:
    """A run's timeline figure and totals table; None when the run has no ``timing/`` folder."""
    from lec_cosim.timing import CRITICAL_DEFINITION, plot_timeline, read_timing, totals

    timing = read_timing(run)
    if timing is None:
        return None
    table = totals(timing)
    with tempfile.TemporaryDirectory(prefix="lec-cosim-report-") as tmp:
        png = Path(tmp) / "timeline.png"
        bin_h = plot_timeline(timing, png, title=label)
        data = png.read_bytes()
    critical = ", ".join(f"{r.federate} {r.critical_hours} h" for r in table.itertuples() if r.critical_hours)
    per = "simulated hour" if bin_h == 1 else f"bar of {bin_h} simulated hours"
    caption = (f"Who holds {label} up: each federate's wall time per {per} (timing/<federate>.csv), working (its "
               f"colour) with its waiting for the grant stacked on it (grey), all rows on one scale. "
               f"{CRITICAL_DEFINITION}. Critical: {critical or 'none'}.")
    return Figure(f"fig-timeline-{anchor}", caption, data), timing_table(table, f"timing-{anchor}")


def run_feeder_map(run: Path, anchor: str, label: str) -> Figure | str | None:
    """A run's feeder map; None when it has no grid extremes (community battery, older runs), or why
    there is none when its feeder folder has no coordinates here (the run was made elsewhere)."""
    from lec_cosim.feeder_map import NoCoordinates, caption, feeder_map, plot_feeder_map

    try:
        data = feeder_map(run)
    except NoCoordinates as exc:
        return str(exc)
    if data is None:
        return None
    with tempfile.TemporaryDirectory(prefix="lec-cosim-report-") as tmp:
        png = Path(tmp) / "feeder.png"
        plot_feeder_map(data, png, title=label)
        return Figure(f"fig-feeder-{anchor}", caption(data), png.read_bytes())



def _read_json(path: Path) -> dict | None:
    """A JSON object from ``path``; None when absent, unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _data_files(data: Mapping) -> list[str]:
    lines = []
    for field, files in data.items():
        if not isinstance(files, Mapping):
            continue
        if len(files) <= 3:
            lines += [f"{field}: {name} ({str(digest)[:12]})" for name, digest in files.items()]
        else:
            lines.append(f"{field}: {len(files)} files")
    return lines


def provenance(run_dir: str | Path) -> list[tuple[str, str]]:
    """What produced a run, from its ``manifest.json`` and ``summary.json``.

    Parameters
    ----------
    run_dir
        A complete run directory.

    Returns
    -------
    list of (str, str)
        (label, text) pairs: run directory, scenario file with the first 12 hex digits of the
        resolved scenario's SHA-256, data files with theirs, seed, versions, command line, platform
        and time written; the simulated period and wall time from ``summary.json``. Without a
        readable ``manifest.json`` a pair says so and the summary's versions stand in.
    """
    path = Path(run_dir)
    summary = _read_json(path / "summary.json") or {}
    items = [("run directory", str(path.resolve()))]
    scenario = _read_json(path / "scenario.json") or {}  # three-LEC summaries do not repeat the start
    start, horizon = summary.get("start") or scenario.get("start"), summary.get("horizon_h")
    if isinstance(horizon, (int, float)):
        items.append(("simulated", f"{horizon:g} h" + (f" from {start}" if start else "")))
    kpis = summary.get("kpis") if isinstance(summary.get("kpis"), dict) else {}
    wall = summary.get("wall_time_s", kpis.get("wall_time_s"))
    if isinstance(wall, (int, float)):
        items.append(("wall time", f"{wall:.1f} s"))
    manifest = _read_json(path / "manifest.json")
    if manifest is None:
        state = "absent" if not (path / "manifest.json").exists() else "unreadable"
        items.append(("manifest.json", f"{state}: no hashes or command line recorded"))
        versions = summary.get("versions")
        if isinstance(versions, Mapping):
            items.append(("versions (summary.json)", ", ".join(
                f"{name} {value.get('name', '')} {value.get('version', '')}".strip() if isinstance(value, Mapping)
                else f"{name} {value}" for name, value in versions.items())))
        return items
    scenario_hash = str(manifest.get("scenario_sha256") or "")[:12]
    items.append(("scenario file", f"{manifest.get('source_file') or 'not recorded'}"
                  + (f" (resolved scenario SHA-256 {scenario_hash}…)" if scenario_hash else "")))
    data = _data_files(manifest.get("data_sha256") or {})
    if data:
        items.append(("data (SHA-256 prefix)", "; ".join(data)))
    if manifest.get("seed") is not None:
        items.append(("seed", str(manifest["seed"])))
    versions = manifest.get("versions") or {}
    items.append(("versions", ", ".join(f"{name} {version}" for name, version in versions.items()
                                        if version != "not installed")))
    command = manifest.get("command")
    if command:
        items.append(("command", shlex.join(map(str, command)) if isinstance(command, list) else str(command)))
    if manifest.get("platform"):
        items.append(("platform", str(manifest["platform"])))
    if manifest.get("written"):
        items.append(("written", str(manifest["written"])))
    return items
