"""Parameter sweeps: a scenario run for every combination of parameter values, one isolated run each.

``lec-cosim sweep SCENARIO --grid SWEEP.yaml`` (and :func:`run_sweep`) reads a sweep file::

    parameters:                      # dotted scenario fields -> their values; the runs are the product
      battery.capacity_mwh: [0.6, 1.2, 2.4]
      market.feed_in_tariff: [null, 40.0]
    cases:                           # optional: sets of values that go together, each with every product
      - {battery.capacity_mwh: 1.2, battery.power_mw: 0.6}
    framework: [decentralised, distributed]   # optional, three-LEC scenarios: --framework of lec-cosim run

Every variant of the scenario is validated, its data loaded, before any run starts: a bad field or value is
one line naming the sweep file, the field and the reason, and nothing is written. The runs then go to a
local process pool (``workers`` processes) or to a Dask cluster (``scheduler``, ``tcp://HOST:PORT``), each
into its own folder ``OUT/runs/<id>`` with its own broker ports (:mod:`lec_cosim.ports` reserves them across
processes and threads). A run's id is its index in the sweep and a short hash of its parameters
(``003_5c1f0a9e``), its parameters are in ``OUT/runs/<id>/sweep_parameters.json``, its scenario file in
``OUT/scenarios/<id>.yaml``.

A sweep run again on the same ``OUT`` skips every run whose folder is complete and was made from the same
scenario (the variant's resolved fields and its data files' hashes, as its ``manifest.json`` records them)
with the same parameters; failed, incomplete and stale runs are run again. At the end ``OUT/sweep.csv``
holds one row per run (its id, parameters, status, error, wall time and every KPI of its ``summary.json``,
nested ones as ``lecs.lec1.cost_eur``) and ``OUT/sweep.png`` one KPI against the first parameter.

On a cluster, ``OUT`` must be a folder every worker reaches under the same path (a shared file system), and
every worker needs lec-cosim and the scenario's data files at the paths of the machine the sweep starts from.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import Field, field_validator, model_validator

from lec_cosim.files import write_text_atomic
from lec_cosim.scenario import FRAMEWORKS, ScenarioError, load_scenario, write_scenario_variant
from lec_cosim.schema.base import _Strict, _validate

PARAMETERS_FILE = "sweep_parameters.json"
"""In each run folder: the run's id and parameters (written before it starts) and its wall time (once done)."""
SWEEP_FILE = "sweep.json"
"""In ``OUT``: what the sweep is (scenario, sweep file, runs); it also marks ``OUT`` as a sweep's folder."""
TABLE_FILE = "sweep.csv"
PLOT_FILE = "sweep.png"
SWEEP_COLUMNS = ("run_id", "status", "error", "wall_time_s")
"""The table's own columns (the parameters follow ``run_id``, the KPIs ``wall_time_s``)."""
RESERVED_FIELDS = {
    "name": "the sweep names each run after the scenario and its run id",
    "kind": "a sweep varies one study's scenario; sweep another kind's scenario separately",
    "outputs": "the sweep puts each run into OUT/runs/<id>",
}
"""Scenario fields a sweep may not vary, and why."""

DOTTED_FIELD = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")


def _dotted(name: str, where: str) -> None:
    if not DOTTED_FIELD.fullmatch(name):
        raise ValueError(f"{where}{name}: not a scenario field: lower-case names joined by dots "
                         "(battery.capacity_mwh)")


def _distinct(values: list) -> list:
    dumped = [json.dumps(v, sort_keys=True, default=str) for v in values]
    twice = next((values[i] for i, d in enumerate(dumped) if d in dumped[:i]), None)
    if twice is not None:
        raise ValueError(f"the value {twice!r} appears twice")
    return values


class SweepFile(_Strict):
    """A sweep file: the runs are the product of ``parameters`` (and ``framework``), each with every case."""

    description: str = Field("", description="what the sweep is for (not used by the runs)")
    parameters: dict[str, list[Any]] = Field(
        {}, description="dotted scenario fields (battery.capacity_mwh) -> the values each takes; the runs are the "
        "product of all lists, the first field varying slowest")
    cases: list[dict[str, Any]] = Field(
        [], description="sets of field values that go together (zipped, not multiplied), each naming the same "
        "fields; every case is run with every combination of parameters")
    framework: Optional[list[Literal[FRAMEWORKS]]] = Field(
        None, description="three-LEC scenarios: the frameworks to run (lec-cosim run --framework), the last "
        "factor of the product")

    @field_validator("parameters")
    @classmethod
    def _distinct_values(cls, parameters):
        for name, values in parameters.items():
            _dotted(name, "")
            if not values:
                raise ValueError(f"{name}: an empty list: give the field's values, at least one")
            try:
                _distinct(values)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return parameters

    @field_validator("cases")
    @classmethod
    def _fields_of_cases(cls, cases):
        for i, case in enumerate(cases):
            if not case:
                raise ValueError(f"{i}: an empty case: give the fields it sets")
            for name in case:
                _dotted(name, f"{i}.")
        return cases

    @field_validator("framework")
    @classmethod
    def _distinct_frameworks(cls, frameworks):
        if frameworks is not None and not frameworks:
            raise ValueError("an empty list: give the frameworks to run, at least one")
        return _distinct(frameworks) if frameworks else frameworks

    @model_validator(mode="after")
    def _runs_defined(self):
        if not (self.parameters or self.cases or self.framework):
            raise ValueError("give parameters, cases or framework: a sweep with none of them has no runs")
        if self.framework and "framework" in self.parameters:
            raise ValueError("framework: also a parameter (parameters.framework); give it in one place")
        named = list(self.parameters) + (["framework"] if self.framework else [])
        for i, case in enumerate(self.cases):
            if set(case) != set(self.cases[0]):
                raise ValueError(f"cases.{i}: names {', '.join(case)}, but the first case names "
                                 f"{', '.join(self.cases[0])}: every case sets the same fields")
            both = next((name for name in case if name in named), None)
            if both is not None:
                raise ValueError(f"cases.{i}.{both}: also a parameter of the product; give it in one place")
        fields = named + list(self.cases[0] if self.cases else [])
        for name in fields:
            reserved = RESERVED_FIELDS.get(name.split(".")[0])
            if reserved is not None:
                raise ValueError(f"{_where(name, self)}: a sweep cannot vary it: {reserved}")
        for name in fields:  # battery and battery.capacity_mwh: one would overwrite the other
            inside = next((other for other in fields if other.startswith(name + ".")), None)
            if inside is not None:
                raise ValueError(f"{_where(name, self)}: also sets {inside}, which is inside it; vary one of them")
        return self


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: where it goes and what it changes; picklable, for a worker process or a Dask worker."""

    run_id: str
    index: int
    parameters: dict
    scenario_file: str
    run_dir: str
    timeout_s: Optional[float] = None


@dataclass
class RunOutcome:
    """What became of one run: ``status`` ``"ok"`` (``kpis`` set) or ``"failed"`` (``error`` set)."""

    run_id: str
    status: str
    error: str = ""
    wall_time_s: Optional[float] = None
    kpis: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    skipped: bool = False
    """Complete from an earlier sweep: not run again."""


@dataclass
class Sweep:
    """A validated sweep: its base scenario, its file, and its runs (scenario files still in a staging folder)."""

    scenario_file: Path
    sweep_file: Path
    definition: SweepFile
    base_name: str
    kind: str
    runs: list[SweepRun]
    staging: Path
    scenario_sha256: dict[str, str]
    data_sha256: dict[str, dict]

    @property
    def parameter_names(self) -> list[str]:
        return list(self.runs[0].parameters) if self.runs else []


@dataclass
class SweepResult:
    """The outcome of a sweep: one :class:`RunOutcome` per run (in the sweep's order), its table and plot."""

    out: Path
    outcomes: list[RunOutcome]
    table: Any
    """The table written to ``sweep.csv`` (a pandas DataFrame)."""
    plot: Optional[Path]
    wall_s: float

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status != "ok"]


def _json_value(value):
    """A parameter value as JSON has it (YAML dates as ISO text): for the hash, the record and the table."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


def run_id(index: int, parameters: dict, count: int) -> str:
    """The id of run ``index`` of ``count``: its index (zero-padded, sorting in order) and a hash of its parameters."""
    digest = hashlib.sha256(json.dumps(_json_value(parameters), sort_keys=True).encode()).hexdigest()[:8]
    return f"{index:0{max(3, len(str(count - 1)))}d}_{digest}"


def read_sweep_file(path: str | Path) -> SweepFile:
    """Read and validate a sweep file (strict YAML as a scenario's: no key twice, UTF-8)."""
    from lec_cosim.scenario import read_strict_yaml

    path = Path(path)
    data = read_strict_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: (top level): expected a mapping (parameters, cases, framework)")
    unknown = next((key for key in data if key not in SweepFile.model_fields), None)
    if unknown is not None:
        raise ScenarioError(f"{path}: {unknown}: no such key in a sweep file (its keys: "
                            f"{', '.join(SweepFile.model_fields)}; scenario fields go under parameters)")
    # the fields' names, where the schema's messages could not name them (a key that is no name, a case's index)
    named = [("parameters", name) for name in data.get("parameters") or {}] if isinstance(
        data.get("parameters"), dict) else []
    for i, case in enumerate(data.get("cases") if isinstance(data.get("cases"), list) else []):
        if isinstance(case, dict) and not case:
            raise ScenarioError(f"{path}: cases.{i}: an empty case: give the fields it sets")
        named += [(f"cases.{i}", name) for name in case] if isinstance(case, dict) else []
    for where, name in named:
        if not (isinstance(name, str) and DOTTED_FIELD.fullmatch(name)):
            raise ScenarioError(f"{path}: {where}.{name}: not a scenario field: lower-case names joined by dots "
                                "(battery.capacity_mwh)")
    return _validate(SweepFile, data, path)


def _combinations(definition: SweepFile) -> list[dict]:
    """Every run's parameters: the product of ``parameters`` and ``framework``, each with every case."""
    axes = dict(definition.parameters)
    if definition.framework:
        axes["framework"] = definition.framework
    product = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    cases = definition.cases or [{}]
    return [{**combination, **case} for combination in product for case in cases]


def _where(name: str, definition: SweepFile) -> str:
    """Where the sweep file sets the field ``name``."""
    if name in definition.parameters:
        return f"parameters.{name}"
    if name == "framework" and definition.framework:
        return "framework"
    return f"cases.{name}"


def _blame(message: str, variant: Path, parameters: dict, definition: SweepFile, sweep_file: Path,
           label: str) -> ScenarioError:
    """A variant's validation error as the sweep file's: the parameter whose field it names, and the run."""
    text = message.removeprefix(f"{variant}: ").removeprefix(f"{variant.resolve()}: ")
    location, _, reason = text.partition(": ")
    reason = reason.replace("Extra inputs are not permitted", "no such field in the scenario")
    values = ", ".join(f"{k}={_json_value(v)!r}" for k, v in parameters.items())
    guilty = next((name for name in parameters if location == name or location.startswith(name + ".")), None)
    guilty = guilty or next((name for name in parameters if name.startswith(location + ".")), None)
    if guilty is not None:
        return ScenarioError(f"{sweep_file}: {_where(guilty, definition)}: {reason} (in {label}: {values})")
    return ScenarioError(f"{sweep_file}: the scenario's {location}: {reason} (in {label}: {values})")


def _check_paths(base_data: dict, definition: SweepFile, sweep_file: Path) -> None:
    """Each dotted field goes through sections of the scenario, not through a value (``battery.power_mw.x``)."""
    for name in _combinations(definition)[0]:
        node, walked = base_data, []
        for key in name.split(".")[:-1]:
            walked.append(key)
            node = node.get(key, {}) if isinstance(node, dict) else node
            if not isinstance(node, dict):
                raise ScenarioError(f"{sweep_file}: {_where(name, definition)}: {'.'.join(walked)} is a value in "
                                    "the scenario, not a section with fields")


def plan_sweep(scenario_file: str | Path, sweep_file: str | Path, out: str | Path, *,
               timeout_s: float | None = None) -> Sweep:
    """Validate a sweep: its file, and every variant of the scenario with its data, before anything is written.

    The variants' scenario files are written into a temporary folder (``Sweep.staging``), which
    :func:`run_sweep` copies into ``OUT/scenarios``; every data path in them is absolute.

    Raises
    ------
    ScenarioError
        One line naming the sweep file (or the scenario), the field and the reason.
    """
    from lec_cosim.checks import check_broker, check_data
    from lec_cosim.manifest import _paths, data_hashes
    from lec_cosim.studies import KINDS, study, study_of

    scenario_file, sweep_file, out = Path(scenario_file), Path(sweep_file), Path(os.path.abspath(out))
    definition = read_sweep_file(sweep_file)
    base = load_scenario(scenario_file)
    if definition.framework and "framework" not in study_of(base).OVERRIDES:
        takers = [kind for kind in KINDS if "framework" in study(kind).OVERRIDES]
        raise ScenarioError(f"{sweep_file}: framework: applies to {' and '.join(takers)} scenarios only, not "
                            f"{base.kind} ({scenario_file})")
    _check_paths(yaml.safe_load(scenario_file.read_text(encoding="utf-8-sig")), definition, sweep_file)
    combinations = _combinations(definition)
    staging = Path(tempfile.mkdtemp(prefix="lec_cosim_sweep_"))
    runs, scenario_sha, data_sha, hashed = [], {}, {}, {}
    try:
        for index, parameters in enumerate(combinations):
            rid = run_id(index, parameters, len(combinations))
            label = f"run {rid}"
            name = f"{base.name[:100 - len(rid) - 1]}_{rid}"
            try:
                variant = write_scenario_variant(scenario_file, parameters, staging, name)
            except yaml.YAMLError as exc:  # a value YAML cannot write (not from a YAML file: the API)
                raise ScenarioError(f"{sweep_file}: parameters: {exc}") from None
            try:
                scenario = load_scenario(variant)
                check_broker(scenario, on_this_host=True)
                check_data(scenario)
            except ScenarioError as exc:
                raise _blame(str(exc), variant, parameters, definition, sweep_file, label) from None
            dumped = json.dumps(scenario.model_dump(mode="json"), sort_keys=True)
            scenario_sha[rid] = hashlib.sha256(dumped.encode()).hexdigest()
            # the data files' hashes, as the run's manifest records them; variants share their files: hash once
            files = tuple((name, str(path)) for name, path in _paths(scenario))
            if files not in hashed:
                hashed[files] = data_hashes(scenario)
            data_sha[rid] = hashed[files]
            runs.append(SweepRun(rid, index, {k: _json_value(v) for k, v in parameters.items()}, str(variant),
                                 str(out / "runs" / rid), timeout_s))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Sweep(scenario_file.resolve(), sweep_file.resolve(), definition, base.name, base.kind, runs, staging,
                 scenario_sha, data_sha)


def _complete(run: SweepRun, sweep: Sweep) -> RunOutcome | None:
    """The outcome of an earlier, complete run of ``run`` with the same scenario, data and parameters, else None."""
    folder = Path(run.run_dir)
    if not folder.is_dir() or (folder / "INCOMPLETE.txt").exists():
        return None
    try:
        summary = json.loads((folder / "summary.json").read_text())
        manifest = json.loads((folder / "manifest.json").read_text())
        record = json.loads((folder / PARAMETERS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(summary, dict) and isinstance(summary.get("kpis"), dict) and isinstance(record, dict)):
        return None
    if record.get("parameters") != run.parameters or manifest.get("scenario_sha256") != sweep.scenario_sha256[
            run.run_id] or manifest.get("data_sha256") != sweep.data_sha256[run.run_id]:
        return None
    return RunOutcome(run.run_id, "ok", wall_time_s=record.get("wall_time_s"), kpis=summary["kpis"],
                      summary=summary, skipped=True)


def run_one(run: SweepRun) -> RunOutcome:
    """Run one federation of a sweep (in a worker process, or a Dask worker's thread); never raises for a failed
    run: its error line is the outcome's ``error``."""
    from lec_cosim.runs import OutputError, RunFailed, RunInterrupted, is_run_folder

    if _INTERRUPTED:
        return RunOutcome(run.run_id, "failed", "not run (the sweep was interrupted)")
    folder = Path(run.run_dir)
    record = {"run_id": run.run_id, "parameters": run.parameters}

    def prepare(staging: Path) -> None:  # the run's parameters go with it, complete or not
        write_text_atomic(staging / PARAMETERS_FILE, json.dumps(record, indent=1))

    started = time.perf_counter()
    try:
        from lec_cosim.api import run as run_scenario  # its imports take a while: Ctrl-C may come then

        result = run_scenario(run.scenario_file, folder, force=True, timeout_s=run.timeout_s, prepare=prepare)
    except RunInterrupted as exc:
        return RunOutcome(run.run_id, "failed", f"interrupted ({exc.failed.interrupted})",
                          time.perf_counter() - started)
    except RunFailed as exc:
        return RunOutcome(run.run_id, "failed", " ".join(exc.reason.split()), time.perf_counter() - started)
    except (ScenarioError, OutputError, OSError) as exc:
        return RunOutcome(run.run_id, "failed", " ".join(str(exc).split()), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 (one run's surprise must not end the others)
        return RunOutcome(run.run_id, "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                          time.perf_counter() - started)
    except KeyboardInterrupt:  # before its federation started, or after it ended: nothing to keep
        return RunOutcome(run.run_id, "failed", "interrupted", time.perf_counter() - started)
    write_text_atomic(folder / PARAMETERS_FILE, json.dumps({**record, "wall_time_s": result.wall_s}, indent=1))
    stale = folder.with_name(folder.name + ".incomplete")  # an earlier failure of this run, now superseded
    if is_run_folder(stale):
        shutil.rmtree(stale, ignore_errors=True)
    return RunOutcome(run.run_id, "ok", wall_time_s=result.wall_s, kpis=result.kpis, summary=result.summary)


def _flat(kpis: dict, prefix: str = "") -> dict:
    """KPIs as table columns: nested ones joined with dots (``lecs.lec1.cost_eur``), lists as JSON text."""
    flat = {}
    for key, value in kpis.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        elif isinstance(value, list):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def sweep_table(sweep: Sweep, outcomes: dict[str, RunOutcome]):
    """One row per run: ``run_id``, the parameters, ``status``, ``error``, ``wall_time_s`` and the KPIs."""
    import pandas as pd

    rows = []
    for run in sweep.runs:
        outcome = outcomes.get(run.run_id) or RunOutcome(run.run_id, "failed", "not run (the sweep was interrupted)")
        row = {"run_id": run.run_id}
        for name, value in run.parameters.items():
            row[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        row.update(status=outcome.status, error=outcome.error, wall_time_s=outcome.wall_time_s)
        for name, value in _flat(outcome.kpis).items():
            row.setdefault(name, value)  # a KPI named like a column of the sweep (wall_time_s) is the same measure
        rows.append(row)
    return pd.DataFrame(rows)


def default_kpi(table, parameter_names: list[str]) -> str | None:
    """The KPI a sweep's plot shows by default: the first numeric one about cost, else the first numeric one."""
    import pandas as pd

    own = set(SWEEP_COLUMNS) | set(parameter_names)
    numeric = [c for c in table.columns if c not in own and pd.api.types.is_numeric_dtype(table[c])
               and table[c].notna().any()]
    return next((c for c in numeric if "cost" in c), numeric[0] if numeric else None)


def write_plot(parameters: list[dict], values: list[float | None], kpi: str, path: Path, title: str) -> Path:
    """``kpi`` (``values``, one per run: None for a failed run, left out) against the first parameter, one line per
    combination of the other parameters' values; written atomically.

    A numeric first parameter is an axis of numbers; any other (a framework, null, a list) one of categories, in
    the order of the sweep file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(parameters[0]) if parameters else []
    x_name, others = (names[0], names[1:]) if names else ("run", [])
    xs = [p[x_name] if names else i for i, p in enumerate(parameters)]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    categories = list(dict.fromkeys(json.dumps(x) for x in xs))
    lines: dict[str, list[tuple[float, float]]] = {}
    for p, x, y in zip(parameters, xs, values):
        label = ", ".join(f"{n}={json.dumps(p[n])}" for n in others)
        if y is not None and not (isinstance(y, float) and math.isnan(y)):
            lines.setdefault(label, []).append((x if numeric else categories.index(json.dumps(x)), y))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in lines.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label or None)
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(x_name)
    ax.set_ylabel(kpi)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if others:
        ax.legend(fontsize="small")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def check_out(out: Path) -> Path:
    """``OUT`` may hold a sweep: new, empty, or an earlier sweep's folder (its ``sweep.json``); one line if not."""
    from lec_cosim.runs import output_dir

    out = output_dir(out)
    if out.exists() and any(out.iterdir()) and not (out / SWEEP_FILE).is_file():
        raise ScenarioError(f"{out}: --out: exists and is no sweep's folder (no {SWEEP_FILE}); nothing was written: "
                            "choose another --out")
    return out


def check_scheduler(address: str) -> str:
    """A Dask scheduler's address, ``tcp://HOST:PORT`` (or ``tls://``); one line if it is none."""
    if not re.fullmatch(r"(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}", address or ""):
        raise ScenarioError(f"{address}: --scheduler: not a Dask scheduler address (tcp://HOST:PORT)")
    return address


_INTERRUPTED = False
"""In a pool process: the sweep was interrupted; the runs still queued for it are not started."""


def _interrupt(signum, frame) -> None:
    global _INTERRUPTED
    _INTERRUPTED = True
    raise KeyboardInterrupt


def _pool_worker_started() -> None:
    """In each pool process: Ctrl-C (SIGINT) interrupts its run, and no queued run starts after it, even where
    the sweep was started with SIGINT ignored (a script's background job), which its processes would inherit."""
    import signal

    signal.signal(signal.SIGINT, _interrupt)


class _Pool:
    """The local executor: a process pool of ``workers`` processes, started by forkserver (no process forked
    while the pool's threads run)."""

    waits_for_runs = True
    """Stopping it waits for the runs in progress to end (interrupted, they end at once, kept incomplete)."""

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                                            initializer=_pool_worker_started)

    def submit(self, run: SweepRun):
        return self.executor.submit(run_one, run)

    def as_completed(self, futures):
        from concurrent.futures import as_completed

        return as_completed(futures)

    def stop(self, interrupted: KeyboardInterrupt | None) -> None:
        from lec_cosim.runs import Terminated

        if isinstance(interrupted, Terminated):  # SIGTERM reached this process only (Ctrl-C reaches the workers
            import multiprocessing  # too): they end their federations, keeping them, as on Ctrl-C
            import signal

            for child in multiprocessing.active_children():
                try:
                    os.kill(child.pid, signal.SIGINT)
                except OSError:
                    pass
        self.executor.shutdown(wait=True, cancel_futures=True)


class _Dask:
    """A Dask distributed cluster: each run one task, in a worker's thread."""

    waits_for_runs = False
    """Stopping it leaves the runs in progress to finish on their workers."""

    def __init__(self, address: str, connect_timeout_s: float = 20.0):
        try:
            from distributed import Client
        except ImportError:
            raise ScenarioError(f"{address}: --scheduler: Dask distributed is not installed (pip install "
                                "'lec-cosim[cluster]')") from None
        try:
            self.client = Client(address, timeout=f"{connect_timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ScenarioError(f"{address}: --scheduler: no Dask scheduler reached ({' '.join(str(exc).split())})") \
                from None

    def submit(self, run: SweepRun):
        # pure=False: a run is an experiment, never taken from a cache; the key names it in the dashboard
        return self.client.submit(run_one, run, pure=False, key=f"lec-cosim-{run.run_id}-{os.urandom(4).hex()}")

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures, loop=self.client.loop)  # this client's, not a default one

    def stop(self, interrupted: KeyboardInterrupt | None) -> None:
        self.client.close()  # runs still going on the workers finish there (a thread cannot be stopped)


def run_sweep(scenario_file: str | Path, sweep_file: str | Path, out: str | Path | None = None, *,
              workers: int | None = None, scheduler: str | None = None, timeout_s: float | None = None,
              plot_kpi: str | None = None, on_outcome: Callable[[SweepRun, RunOutcome, int, int], None] | None = None,
              on_plan: Callable[[Sweep, list[SweepRun]], None] | None = None) -> SweepResult:
    """Run a sweep (see the module's description) and write ``OUT/sweep.csv`` and ``OUT/sweep.png``.

    Parameters
    ----------
    scenario_file, sweep_file
        The base scenario and the sweep file.
    out
        The sweep's folder (default ``results/<sweep file's stem>``): new, empty or an earlier sweep's.
    workers
        Processes of the local pool (default: the machine's cores); not with ``scheduler``.
    scheduler
        A Dask scheduler's address (``tcp://HOST:PORT``): the runs go to its workers instead.
    timeout_s
        Each run's own limit in wall seconds (as ``lec-cosim run --timeout``).
    plot_kpi
        The KPI the plot shows (default: :func:`default_kpi`).
    on_outcome, on_plan
        ``on_plan(sweep, to_run)`` once the sweep is validated; ``on_outcome(run, outcome, done, total)`` after
        each run that was made.

    Returns
    -------
    SweepResult
        Failed runs are in it (``failed``), not raised.

    Raises
    ------
    ScenarioError
        Bad input (the sweep file, a variant, ``out``, the scheduler, ``plot_kpi``): one line, nothing written
        (an unknown ``plot_kpi`` is found once the KPIs are known: the table is written, the plot not).

    Notes
    -----
    The pool's processes start by ``forkserver``, which imports the calling script: call this under
    ``if __name__ == "__main__":``, as any multiprocessing program.
    """
    from lec_cosim.runs import RunLock, output_error

    if scheduler is not None:
        check_scheduler(scheduler)
        if workers is not None:
            raise ScenarioError(f"{scheduler}: --workers: the size of the local pool; a Dask cluster has its own "
                                "workers")
    if workers is not None and workers < 1:
        raise ScenarioError(f"{sweep_file}: --workers: must be 1 or more, not {workers}")
    if timeout_s is not None and not (0 < timeout_s < math.inf):
        raise ScenarioError(f"{sweep_file}: --timeout: must be a positive number of seconds, not {timeout_s:g}")
    out = check_out(Path(out) if out is not None else Path("results") / Path(sweep_file).stem)
    sweep = plan_sweep(scenario_file, sweep_file, out, timeout_s=timeout_s)
    started = time.perf_counter()
    outcomes: dict[str, RunOutcome] = {}
    interrupted: BaseException | None = None
    try:
        executor = _Dask(scheduler) if scheduler is not None else None  # reached before anything is written
        lock = RunLock(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            lock.__enter__()  # another sweep into OUT: one line naming its PID
        except BaseException as exc:
            if executor is not None:
                executor.stop(None)
            if isinstance(exc, OSError):
                raise output_error(out, "write there", exc) from None
            raise
        try:
            interrupted = _run_locked(sweep, out, executor, workers, outcomes, on_outcome, on_plan)
        finally:
            lock.__exit__(None, None, None)
    finally:
        shutil.rmtree(sweep.staging, ignore_errors=True)
    table = sweep_table(sweep, outcomes)
    write_text_atomic(out / TABLE_FILE, table.to_csv(index=False))
    if interrupted is not None:  # the table of the runs that finished is written; the interruption goes on
        raise interrupted
    if plot_kpi is not None and plot_kpi not in table.columns:
        known = [c for c in table.columns if c not in SWEEP_COLUMNS and c not in sweep.parameter_names]
        raise ScenarioError(f"{sweep_file}: --plot-kpi: {plot_kpi!r} is no KPI of these runs ({', '.join(known)}); "
                            f"the table is in {out / TABLE_FILE}, no plot was drawn")
    kpi = plot_kpi or default_kpi(table, sweep.parameter_names)
    plot = None
    if kpi is not None and (table["status"] == "ok").any():
        values = [None if status != "ok" else value for status, value in zip(table["status"], table[kpi])]
        plot = write_plot([r.parameters for r in sweep.runs], values, kpi, out / PLOT_FILE,
                          f"{sweep.base_name}: {Path(sweep_file).name}")
    ordered = [outcomes.get(r.run_id) or RunOutcome(r.run_id, "failed", "not run (the sweep was interrupted)")
               for r in sweep.runs]
    return SweepResult(out, ordered, table, plot, time.perf_counter() - started)


def _outcome(future, run: SweepRun) -> RunOutcome:
    """The outcome of a finished future; a worker that died (a killed process, a lost Dask worker) or was
    interrupted outside :func:`run_one`'s care is a failed run too."""
    try:
        return future.result()
    except KeyboardInterrupt:  # raised in the worker, carried here
        return RunOutcome(run.run_id, "failed", "interrupted")
    except Exception as exc:  # noqa: BLE001
        return RunOutcome(run.run_id, "failed", f"the worker ended: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())}")


def _run_locked(sweep: Sweep, out: Path, executor, workers, outcomes: dict[str, RunOutcome], on_outcome,
                on_plan) -> KeyboardInterrupt | None:
    """The runs of ``sweep`` once ``OUT`` is locked: skip the complete ones, run the others, their outcomes into
    ``outcomes``; returns the interruption (Ctrl-C, SIGTERM) that ended it early, if any."""
    (out / "scenarios").mkdir(exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    placed = []
    for run in sweep.runs:
        target = out / "scenarios" / f"{run.run_id}.yaml"
        shutil.copyfile(run.scenario_file, target)
        placed.append(SweepRun(run.run_id, run.index, run.parameters, str(target), run.run_dir, run.timeout_s))
    sweep.runs = placed
    write_text_atomic(out / SWEEP_FILE, json.dumps({
        "scenario": str(sweep.scenario_file), "sweep_file": str(sweep.sweep_file),
        "definition": sweep.definition.model_dump(mode="json"),
        "runs": [{"run_id": r.run_id, "parameters": r.parameters} for r in sweep.runs]}, indent=1))
    to_run = []
    for run in sweep.runs:
        earlier = _complete(run, sweep)
        if earlier is not None:
            outcomes[run.run_id] = earlier
        else:
            to_run.append(run)
    if on_plan is not None:
        on_plan(sweep, to_run)
    if not to_run:
        if executor is not None:
            executor.stop(None)
        return None
    if executor is None:
        executor = _Pool(min(workers or os.cpu_count() or 1, len(to_run)))
    interrupted, futures = None, {}
    try:
        futures = {executor.submit(run): run for run in to_run}
        for finished, future in enumerate(executor.as_completed(list(futures)), start=1):
            run = futures[future]
            outcomes[run.run_id] = outcome = _outcome(future, run)
            if on_outcome is not None:
                on_outcome(run, outcome, finished, len(to_run))
    except KeyboardInterrupt as exc:
        interrupted = exc
    finally:
        if executor.waits_for_runs:
            executor.stop(interrupted)
        if interrupted is not None:  # what ended while the interruption was handled is in the table too
            for future, run in futures.items():
                if run.run_id not in outcomes and future.done() and not future.cancelled():
                    outcomes[run.run_id] = _outcome(future, run)
        if not executor.waits_for_runs:
            executor.stop(interrupted)
    return interrupted
