"""The Python API: run a scenario's federation and read runs back, as ``lec-cosim run`` does.

    >>> import lec_cosim
    >>> result = lec_cosim.run("scenarios/trondelag_arbitrage.yaml", out="results/arb", force=True)
    >>> result.kpis["energy_cost"], result.tables["pcc"]["p_mw"].max()
    >>> again = lec_cosim.load("results/arb")

:func:`run` validates the scenario and its data, then runs the federation exactly as the CLI does
(same processes, same run folder: ``OUT.partial`` while it runs, ``OUT`` when complete,
``OUT.incomplete`` otherwise) and returns a :class:`RunResult`. Errors are exceptions: bad input a
:class:`~lec_cosim.scenario.ScenarioError` before anything is written, a failed run a
:class:`~lec_cosim.runs.RunFailed` naming the federate and where the incomplete run is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lec_cosim.checks import check_broker, check_data
from lec_cosim.runs import execute, output_dir
from lec_cosim.scenario import ScenarioError, load_scenario


class _Tables(Mapping):
    """A run's CSV tables by name (``pcc`` for ``pcc.csv``), each read on first use."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._names = sorted(p.stem for p in folder.glob("*.csv"))
        self._read: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(f"no table {name!r} in {self._folder} (tables: {', '.join(self._names)})")
        if name not in self._read:
            self._read[name] = pd.read_csv(self._folder / f"{name}.csv")
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class RunResult:
    """A complete run: its folder, its ``summary.json`` and its tables (units in the column names)."""

    path: Path
    summary: dict
    tables: Mapping[str, pd.DataFrame] = field(repr=False)
    wall_s: float | None = None
    """Wall seconds of the federation, for a run just made (None for one read back)."""

    @property
    def kpis(self) -> dict:
        return self.summary["kpis"]

    @property
    def scenario(self) -> dict:
        """The resolved scenario the run was made from (``scenario.json``)."""
        return json.loads((self.path / "scenario.json").read_text())


def load(run_dir: str | Path) -> RunResult:
    """Read a complete run back; raises :class:`ScenarioError` for a folder that is not one (or incomplete)."""
    path = Path(run_dir)
    if (path / "INCOMPLETE.txt").is_file():
        reason = (path / "INCOMPLETE.txt").read_text(errors="replace").splitlines()[0]
        raise ScenarioError(f"{path}: not a complete run: {reason}")
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: not a lec-cosim run (summary.json: {getattr(exc, 'strerror', None) or exc})") \
            from None
    return RunResult(path, summary, _Tables(path))


def default_out(scenario) -> Path:
    """Where a run of ``scenario`` goes without ``out``: its ``outputs.directory``, else ``results/<name>``
    (three LECs: ``results/<name>_<framework>[_dso]``)."""
    if scenario.outputs.directory:
        return Path(scenario.outputs.directory)
    from lec_cosim.studies import study_of

    return Path("results") / study_of(scenario).run_name(scenario)


def run(scenario, out: str | Path | None = None, *, force: bool = False, timeout_s: float | None = None,
        stall_timeout_s: float | None | str = "scenario", sub_brokers: int = 0, debug: bool = False,
        prepare: Callable[[Path], None] | None = None, on_start: Callable[[Path], None] | None = None,
        on_progress: Callable[[str], None] | None = None) -> RunResult:
    """Run a scenario's federation and return its results.

    Parameters
    ----------
    scenario
        A scenario file, or a scenario loaded with :func:`lec_cosim.scenario.load_scenario`.
    out
        The results folder (default: :func:`default_out`). An existing run there is replaced only with
        ``force``, and nothing that is not a lec-cosim run folder ever is.
    timeout_s, stall_timeout_s
        Give up after ``timeout_s`` wall seconds; end the run when no federate's time advances for
        ``stall_timeout_s`` (default: the scenario's ``federation.stall_timeout_s``; None: never).
    sub_brokers
        A root broker and this many sub-brokers (0: one broker).
    prepare, on_start, on_progress
        ``prepare(staging)`` may change the written federation before it starts; ``on_start(staging)``
        is told where it runs; ``on_progress(line)`` gets the recorder's progress lines.
    """
    if not hasattr(scenario, "model_dump"):
        scenario = load_scenario(scenario)
    check_broker(scenario, on_this_host=True)
    check_data(scenario)
    target = output_dir(default_out(scenario) if out is None else out)
    stall = scenario.federation.stall_timeout_s if stall_timeout_s == "scenario" else stall_timeout_s
    wall = execute(scenario, target, force=force, sub_brokers=sub_brokers, prepare=prepare, timeout_s=timeout_s,
                   stall_timeout_s=stall, debug=debug, on_start=on_start, on_progress=on_progress)
    result = load(target)
    result.wall_s = wall
    return result
