"""Whole federations with pandapower, power-grid-model and OpenDSS as the power-flow backend: the same KPIs.

One scenario of each kind, run with each backend: the community battery (balanced flow, transformer with iron
losses), the local market (three-phase flow observed by the DSO) and three LECs with the DSO's limits on (the power
flow feeds back into the EMSs' plans). The run with the scenario's own backend is a ``lec-cosim run`` other test
files read too (``harness.shared_runs``); the other two backends run here on the same scenario and command line,
at once: OpenDSS as ``lec-cosim run``, pandapower or power-grid-model as a federation in this process
(``lec_cosim.inproc``: the same federate programs and configs as threads on HELICS's in-process core, results
byte-identical to ``lec-cosim run``, ``tests/test_inproc.py``; the command line's options applied by the CLI's own
loader), which saves that run's processes their seconds of imports each. OpenDSS stays a process: creating its
engine's context (``dss.IDSS.NewContext``) in a federate thread once crashed the test process with a segmentation
fault. ``benchmarks/backend_agreement.py`` runs every shipped scenario the same way.
"""

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import SCENARIOS, SHARED_RUNS, shared_run, write_scenario

from lec_cosim.cli import _load, build_parser
from lec_cosim.inproc import run_inproc
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim"]
BACKENDS = ("pandapower", "power-grid-model", "opendss")
AS_PROCESS = {"opendss"}  # its engine's context made in a federate thread once crashed the test process (segfault)
CASES = {  # scenario: its solver's key, and the shared run of it (harness.SHARED_RUNS)
    "trondelag_arbitrage": ("grid.solver", "trondelag_arbitrage"),
    # hourly grid steps: pandapower's three-phase flow (~60 ms, and the DSO's indicators around it) at 30-minute
    # steps made this the slowest test of make test. The local market over 12 h: the morning PV ramp and noon.
    "ieee_eu_lv_lem_plain": ("grid.solver", "lem_hourly_12h"),
    # the shipped day to 14:00 with the DSO's limits (--dso-limits): they bind from late morning and feed back into
    # the plans (the whole day with pandapower made this the suite's slowest test)
    "ieee_eu_lv_three_lecs": ("dso.solver", "three_lecs_dso_limits_14h"),
}


def as_run_loads_it(path, extra: list[str]):
    """The scenario ``lec-cosim run PATH --out ... *extra`` runs: the file with the command line's overrides."""
    return _load(build_parser().parse_args(["run", str(path), "--out", str(path.parent / "unused"), *extra]))


def numbers(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and "wall_time" not in key:
            yield f"{prefix}{key}", float(value)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("name", list(CASES))
def test_kpis_agree_between_backends(tmp_path, tmp_path_factory, name):
    key, shared = CASES[name]
    base, changes, extra = SHARED_RUNS[shared]
    assert base == name and key not in changes
    section, field = key.split(".")
    own = getattr(getattr(load_scenario(SCENARIOS / f"{name}.yaml"), section), field)  # the shared run's backend
    others = [backend for backend in BACKENDS if backend != own]
    assert len(others) == len(BACKENDS) - 1, own
    variants, procs = {}, {}
    for backend in others:
        folder = tmp_path / backend
        folder.mkdir()
        variants[backend] = write_scenario(folder, name, {key: backend, **changes})
        if backend in AS_PROCESS:
            procs[backend] = subprocess.Popen(CLI + ["run", str(variants[backend]), "--out",
                                                     str(tmp_path / f"out_{backend}"), "--quiet", *extra],
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with ThreadPoolExecutor(1) as pool:
        made_shared = pool.submit(shared_run, tmp_path_factory, shared)  # if not made yet: a process, meanwhile
        for backend in others:
            if backend not in AS_PROCESS:
                run_inproc(as_run_loads_it(variants[backend], extra), tmp_path / f"out_{backend}", timeout_s=380)
        path, made = made_shared.result()
    for backend, proc in procs.items():
        output = proc.communicate(timeout=380)[0]
        assert proc.returncode == 0, output
    assert getattr(getattr(load_scenario(path), section), field) == own
    kpis = {own: dict(numbers(json.loads((made / "summary.json").read_text())["kpis"]))}
    for backend in others:
        summary = json.loads((tmp_path / f"out_{backend}" / "summary.json").read_text())
        ran = load_scenario(tmp_path / f"out_{backend}" / "scenario.json")
        assert getattr(getattr(ran, section), field) == backend
        # the shared run's scenario, its command line's options too, but for the backend
        same = load_scenario(made / "scenario.json")
        same = same.model_copy(update={section: getattr(same, section).model_copy(update={field: backend})})
        assert ran.model_dump() == same.model_dump(), backend
        kpis[backend] = dict(numbers(summary["kpis"]))
    reference = kpis[own]
    assert len(reference) > 5
    for backend in others:
        other = kpis[backend]
        assert set(other) == set(reference), backend
        for kpi, value in reference.items():
            if math.isnan(value):
                assert math.isnan(other[kpi]), (backend, kpi)
                continue
            assert other[kpi] == pytest.approx(value, rel=1e-4, abs=1e-9), (backend, kpi)
