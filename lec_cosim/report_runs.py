"""Which run directories the HTML report can take, and of which kind each is.

:func:`run_kind` accepts only complete runs (a missing directory, an incomplete or unfinished run,
one without a readable ``summary.json`` or of no known kind is one :class:`lec_cosim.scenario.
ScenarioError` naming the directory and the reason) and :func:`group_runs` groups them by kind in
the order of :data:`KINDS`. The CLI asks this before anything is drawn, and it needs none of the
page's HTML, so it lives apart from :mod:`lec_cosim.report_html`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lec_cosim.scenario import ScenarioError


def _kinds() -> dict[str, tuple[str, str]]:
    from lec_cosim.studies import KINDS as STUDY_KINDS
    from lec_cosim.studies import study

    return {kind: (study(kind).TITLE, study(kind).DESCRIPTION) for kind in STUDY_KINDS}


KINDS: dict[str, tuple[str, str]] = _kinds()
"""Run kind -> (section title, one-line description); the sections appear in this order."""

_INCOMPLETE_PREFIX = "This run did not complete:"


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
