"""One self-contained HTML page over run directories: KPI tables, figures and provenance (``lec-cosim report``).

The page is readable offline from a file: CSS inline, figures as PNG ``data:`` URIs, no script and
no reference to any other file or server. Runs are grouped by kind, one section each, in this
order:

the order of :data:`lec_cosim.studies.KINDS`, each study's tables, figure, caption and run labels
given by its module (``tables``, ``plot``, ``FIGURE_CAPTION``, ``run_labels``): this page names no
study.

Every run also gets a provenance block from its ``manifest.json``, and a timing block: the
timeline of :func:`lec_cosim.timing.plot_timeline` (each federate's working and waiting wall time
per simulated hour, the critical federate of each hour marked) with the per-federate totals of
:func:`lec_cosim.timing.totals`, from the run's ``timing/`` folder ("no timing recorded" for runs
from before it was written); runs on the IEEE feeder also get the feeder map of
:func:`lec_cosim.feeder_map.plot_feeder_map` (buses by their lowest and highest voltage, lines by
their peak loading, violations marked). Numbers are formatted by the same functions as
``lec-cosim compare``, so the page and the terminal show the same figures.

Only complete runs are reported: a missing directory, an incomplete run (``OUT.incomplete`` with
``INCOMPLETE.txt``, or ``OUT.partial``), a directory without ``summary.json`` or a run of unknown
kind raises :class:`lec_cosim.scenario.ScenarioError` naming the directory and the reason before
anything is drawn, and the page is written atomically, so a failure leaves no report behind.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lec_cosim import __version__
from lec_cosim.files import write_text_atomic
from lec_cosim.scenario import ScenarioError
from lec_cosim.studies import study


def _kinds() -> dict[str, tuple[str, str]]:
    from lec_cosim.studies import KINDS as STUDY_KINDS
    from lec_cosim.studies import study

    return {kind: (study(kind).TITLE, study(kind).DESCRIPTION) for kind in STUDY_KINDS}


KINDS: dict[str, tuple[str, str]] = _kinds()
"""Run kind -> (section title, one-line description); the sections appear in this order."""

_INCOMPLETE_PREFIX = "This run did not complete:"


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


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
def _incomplete_reason(run_dir: Path) -> str:
    try:
        first = (run_dir / "INCOMPLETE.txt").read_text(errors="replace").strip().splitlines()[0]
    except (OSError, IndexError):
        return "no INCOMPLETE.txt"
    reason = first.removeprefix(_INCOMPLETE_PREFIX).strip()
    return reason if len(reason) <= 200 else reason[:197] + "..."


def run_kind(run_dir: str | Path) -> str:
    """The kind of a complete run directory, a key of :data:`KINDS`.

    Parameters
    ----------
    run_dir
        A results directory written by ``lec-cosim run`` (or ``helics run`` of a runner file).

    Returns
    -------
    str
        One of :data:`lec_cosim.studies.KINDS`.

    Raises
    ------
    ScenarioError
        One line naming the directory and why it cannot be reported: it does not exist, is not a
        directory, is an incomplete run (``.incomplete`` or ``INCOMPLETE.txt``: the reason it
        records) or an unfinished one (``.partial``), has no ``summary.json`` or an unreadable one,
        or is of no known kind.
    """
    path = Path(run_dir)
    if not path.exists():
        raise ScenarioError(f"{run_dir}: no such run directory")
    if not path.is_dir():
        raise ScenarioError(f"{run_dir}: not a directory (a run directory is expected)")
    if path.name.endswith(".incomplete") or (path / "INCOMPLETE.txt").exists():
        raise ScenarioError(f"{run_dir}: incomplete run ({_incomplete_reason(path)}); only complete runs "
                            "can be reported")
    if path.name.endswith(".partial"):
        raise ScenarioError(f"{run_dir}: unfinished run (.partial: still running or killed); only complete runs "
                            "can be reported")
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise ScenarioError(f"{run_dir}: not a run directory (no summary.json)")
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{summary_path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{summary_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    from lec_cosim.studies import kind_of_run

    kind = kind_of_run(path)  # recorded, or recognised in a run made before runs recorded it
    if kind is not None:
        return kind
    framework = summary.get("framework") if isinstance(summary, dict) else None
    raise ScenarioError(f"{summary_path}: framework {framework!r}: not a kind of run lec-cosim reports "
                        f"({', '.join(title.lower() for title, _ in KINDS.values())})")


def group_runs(run_dirs: Sequence[str | Path]) -> dict[str, list[Path]]:
    """The run directories by kind, in the order of :data:`KINDS`, each kind's runs in the given order.

    Raises
    ------
    ScenarioError
        From :func:`run_kind`, for the first directory that cannot be reported; or when no
        directory is given.
    """
    if not run_dirs:
        raise ScenarioError("report: no run directories given")
    groups: dict[str, list[Path]] = {kind: [] for kind in KINDS}
    for run in run_dirs:
        groups[run_kind(run)].append(Path(run))
    return {kind: runs for kind, runs in groups.items() if runs}


# ---------------------------------------------------------------------------------------------
# Tables and figures per kind
# ---------------------------------------------------------------------------------------------
def kind_tables(kind: str, runs: Sequence[Path], paper: Mapping | str | Path | None = None) -> list[Table]:
    """The KPI tables of one kind of run, formatted as ``lec-cosim compare`` formats them.

    Parameters
    ----------
    kind
        A key of :data:`KINDS`.
    runs
        Run directories of that kind.
    paper
        Local-market runs only: extra published values shown beside the runs (see
        :func:`lec_cosim.report_lem.load_paper_values`).

    Returns
    -------
    list of Table
        One table; two for local-market runs (Tables II and III).
    """
    from lec_cosim.studies import study

    return [Table(*table) for table in study(kind).tables(list(runs), paper)]


def kind_figures(kind: str, runs: Sequence[Path]) -> list[Figure]:
    """The figures of one kind of run, drawn by the kind's plot function, as PNG bytes.

    Parameters
    ----------
    kind
        A key of :data:`KINDS`.
    runs
        Run directories of that kind.

    Returns
    -------
    list of Figure
    """
    from lec_cosim.studies import study

    plot, caption = study(kind).plot, study(kind).FIGURE_CAPTION
    with tempfile.TemporaryDirectory(prefix="lec-cosim-report-") as tmp:
        png = Path(tmp) / f"{kind}.png"
        plot(list(runs), png)
        return [Figure(f"fig-{kind.replace('_', '-')}", caption, png.read_bytes())]


def _as_input_error(kind: str, runs: Sequence[Path], exc: Exception) -> ScenarioError:
    """A reading error of a kind's runs as one line naming the run(s) and the cause."""
    if isinstance(exc, ValueError):  # the report modules name the run and file themselves
        return ScenarioError(str(exc).splitlines()[0])
    if isinstance(exc, OSError) and exc.filename:
        return ScenarioError(f"{exc.filename}: {exc.strerror or exc}")
    where = " ".join(map(str, runs))
    if isinstance(exc, KeyError):
        return ScenarioError(f"{where}: summary.json: missing field {exc.args[0]!r} ({KINDS[kind][0].lower()} run)")
    return ScenarioError(f"{where}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------
# Timing and feeder map per run
# ---------------------------------------------------------------------------------------------
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


def _run_details_html(kind: str, run: Path, anchor: str, label: str) -> str:
    """The timing block (and feeder map) of one run, or notes saying why there is none."""
    e = html.escape
    parts = [f'<div class="run-details" id="run-{e(anchor)}"><h4>{e(label)}</h4>']
    timing = run_timing(run, anchor, label)
    if timing is None:
        parts.append('<p class="note">No timing recorded (no timing/ folder: a run from before federates '
                     "recorded their wall time).</p>")
    else:
        figure, table = timing
        parts += [_figure_html(figure), _table_html(table, 1)]
    feeder = run_feeder_map(run, anchor, label)
    if isinstance(feeder, Figure):
        parts.append(_figure_html(feeder))
    elif isinstance(feeder, str):
        parts.append(f'<p class="note">No feeder map: {e(feeder)}.</p>')
    elif study(kind).NO_FEEDER_MAP:
        parts.append(f'<p class="note">No feeder map: {e(study(kind).NO_FEEDER_MAP)}.</p>')
    else:
        parts.append('<p class="note">No feeder map: no bus_voltage_extremes.csv and line_loading_peaks.csv '
                     "(a run from before the DSO wrote them).</p>")
    parts.append("</div>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------
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


def _run_labels(kind: str, runs: Sequence[Path]) -> list[str]:
    """The runs' names as the kind's table shows them."""
    summaries = [_read_json(run / "summary.json") or {} for run in runs]
    return study(kind).run_labels(summaries, runs)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
_CSS = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #1a1a1a; background: #fff;
       margin: 0 auto; max-width: 1240px; padding: 16px 20px 40px; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0.2em 0; }
h2 { font-size: 1.3em; border-bottom: 2px solid #2b6cb0; padding-bottom: 4px; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
h4 { font-size: 0.95em; margin: 0.8em 0 0.3em; }
p.meta, p.intro { color: #444; margin: 0.3em 0; }
nav ul { margin: 0.3em 0; padding-left: 1.4em; }
a { color: #2b6cb0; }
.scroll { overflow-x: auto; }
table.kpi { border-collapse: collapse; font-size: 0.82em; margin: 0.4em 0 1em; }
table.kpi caption { caption-side: top; text-align: left; font-weight: bold; padding: 4px 0; }
table.kpi th, table.kpi td { border: 1px solid #c8ccd2; padding: 3px 7px; }
table.kpi thead th { background: #e8eef6; vertical-align: bottom; }
table.kpi tbody tr:nth-child(even) { background: #f6f8fa; }
table.kpi tbody th { text-align: left; font-weight: normal; white-space: nowrap; }
table.kpi td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 0.6em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
figcaption { font-size: 0.85em; color: #444; margin-top: 4px; }
.provenance { border-left: 3px solid #c8ccd2; padding: 2px 10px; margin: 0.6em 0; font-size: 0.82em; }
.provenance dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0.3em 0; }
.provenance dt { color: #555; }
.provenance dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.95em; }
p.note { color: #555; font-style: italic; font-size: 0.9em; }
.run-details { margin: 0.4em 0 1.4em; }
"""


def _table_html(table: Table, row_headers: int) -> str:
    """``row_headers``: how many leading cells of a row name it rather than hold a value."""
    e = html.escape
    head = "".join(f'<th scope="col">{e(label)}</th>' for label in table.header)
    body = []
    for cells in table.rows:
        parts = [f'<th scope="row">{e(c)}</th>' if i < row_headers else f'<td class="num">{e(c)}</td>'
                 for i, c in enumerate(cells)]
        body.append("<tr>" + "".join(parts) + "</tr>")
    return (f'<div class="scroll"><table class="kpi" id="{e(table.id)}"><caption>{e(table.caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table></div>")


def _figure_html(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    caption = html.escape(figure.caption)
    return (f'<figure id="{html.escape(figure.id)}"><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _provenance_html(label: str, run: Path) -> str:
    e = html.escape
    rows = "".join(f"<dt>{e(k)}</dt><dd>{f'<code>{e(v)}</code>' if k == 'command' else e(v)}</dd>"
                   for k, v in provenance(run))
    return f'<div class="provenance"><h4>{e(label)}</h4><dl>{rows}</dl></div>'


def html_report(run_dirs: Sequence[str | Path], paper: Mapping | str | Path | None = None,
                generated: dt.datetime | None = None) -> str:
    """The report page of the runs, as one HTML document.

    Parameters
    ----------
    run_dirs
        Complete run directories of any kinds (community battery, local market, three LECs), in
        the order they should appear within their kind's section.
    paper
        Local-market runs only: extra published values beside the runs (as ``compare --paper``).
    generated
        Time stamp shown on the page (default: now, local time with its UTC offset).

    Returns
    -------
    str
        A complete HTML5 document: title, generation time and lec-cosim version, a contents list,
        then per kind a section with the KPI table(s), the figure, each run's timing (timeline and
        totals) and feeder map (IEEE-feeder runs), and each run's provenance.

    Raises
    ------
    ScenarioError
        A directory that cannot be reported (:func:`run_kind`), or a run whose files do not
        follow the results contract (one line naming the run and the file).
    """
    groups = group_runs(run_dirs)
    generated = generated or dt.datetime.now().astimezone()
    e = html.escape
    sections = []
    for kind, runs in groups.items():
        title, intro = KINDS[kind]
        anchor = kind.replace("_", "-")
        labels = _run_labels(kind, runs)
        try:
            tables = kind_tables(kind, runs, paper)
            figures = kind_figures(kind, runs)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise _as_input_error(kind, runs, exc) from exc
        details = []
        for i, (label, run) in enumerate(zip(labels, runs), start=1):
            try:
                details.append(_run_details_html(kind, run, f"{anchor}-{i}", label))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                raise _as_input_error(kind, [run], exc) from exc
        row_headers = study(kind).ROW_HEADERS  # cells that name a row (run, objective)
        parts = [f'<section id="{anchor}"><h2>{e(title)} ({len(runs)} run{"s" if len(runs) > 1 else ""})</h2>',
                 f'<p class="intro">{e(intro)}</p>', "<h3>Key figures</h3>"]
        parts += [_table_html(table, row_headers) for table in tables]
        parts.append("<h3>Figures</h3>")
        parts += [_figure_html(figure) for figure in figures]
        parts.append("<h3>Who holds it up: timing per federate, and the feeder</h3>")
        parts += details
        parts.append("<h3>Provenance</h3>")
        parts += [_provenance_html(label, run) for label, run in zip(labels, runs)]
        parts.append("</section>")
        sections.append("\n".join(parts))
    n_runs = sum(len(runs) for runs in groups.values())
    contents = "".join(f'<li><a href="#{kind.replace("_", "-")}">{e(KINDS[kind][0])}</a>: '
                       f'{e(", ".join(run.name for run in runs))}</li>' for kind, runs in groups.items())
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>lec-cosim report: {n_runs} run{'s' if n_runs > 1 else ''}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>lec-cosim report</h1>",
        f'<p class="meta">Generated {e(generated.isoformat(timespec="seconds"))} by lec-cosim {e(__version__)} '
        f"from {n_runs} run director{'ies' if n_runs > 1 else 'y'}. Tables as <code>lec-cosim compare</code> "
        "prints them; units in the column or row labels.</p>",
        f"<nav><ul>{contents}</ul></nav></header>",
        "<main>",
        *sections,
        "</main></body></html>",
        "",
    ])


def write_html_report(run_dirs: Sequence[str | Path], output: str | Path,
                      paper: Mapping | str | Path | None = None) -> Path:
    """Write the report page of the runs to ``output``, atomically.

    Parameters
    ----------
    run_dirs
        Complete run directories of any kinds (see :func:`html_report`).
    output
        The HTML file; its folder is created if needed. It is replaced only by a whole page: the
        page is built in memory, written beside it under a temporary name and renamed.
    paper
        Local-market runs only: extra published values beside the runs.

    Returns
    -------
    pathlib.Path
        ``output``.

    Raises
    ------
    ScenarioError
        A run that cannot be reported (:func:`html_report`), or an ``output`` that is a directory or
        cannot be written; ``output`` is then left as it was.
    """
    target = Path(output)
    if target.is_dir():
        raise ScenarioError(f"{output}: -o: is a directory, not a file")
    page = html_report(run_dirs, paper=paper)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(target, page)
    except OSError as exc:
        raise ScenarioError(f"{output}: cannot write the report: {exc.strerror or exc}") from None
