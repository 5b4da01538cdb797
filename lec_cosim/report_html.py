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

The page is assembled here; which directories it takes and of which kind they are is
:mod:`lec_cosim.report_runs` (:func:`run_kind`, :func:`group_runs`, :data:`KINDS`), the blocks of
every run (timing, feeder map, provenance, and the :class:`Table` and :class:`Figure` items) are
:mod:`lec_cosim.report_run_blocks`; every name of both is importable from here too.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from lec_cosim import __version__
from lec_cosim.files import write_text_atomic
from lec_cosim.report_run_blocks import (  # noqa: F401
    TIMING_HEADER,
    Figure,
    Table,
    _data_files,
    _read_json,
    _seconds,
    provenance,
    run_feeder_map,
    run_timing,
    timing_table,
)
from lec_cosim.report_runs import (  # noqa: F401
    _INCOMPLETE_PREFIX,
    KINDS,
    _incomplete_reason,
    _kinds,
    group_runs,
    run_kind,
)
from lec_cosim.scenario import ScenarioError
from lec_cosim.studies import study


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
        :func:`lec_cosim.studies.local_market.report.load_paper_values`).

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
        (f'<p class="meta">Generated {e(generated.isoformat(timespec="seconds"))} by lec-cosim {e(__version__)} '
         f"from {n_runs} run director{'ies' if n_runs > 1 else 'y'}. Tables as <code>lec-cosim compare</code> "
         "prints them; units in the column or row labels.</p>"),
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
