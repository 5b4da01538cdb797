"""Whole federations with pandapower, power-grid-model and OpenDSS as the power-flow backend: the same KPIs.

One scenario of each kind, run with each backend: the community battery (balanced flow, transformer with iron
losses), the local market (three-phase flow observed by the DSO) and three LECs with the DSO's limits on (the power
flow feeds back into the EMSs' plans). The run with the scenario's own backend is a ``lec-cosim run`` other test
files read too (``harness.shared_runs``); the other two backends run here on the same scenario, the command line's
options set in it (``--framework``, ``--dso-limits``), as federations in this process (``lec_cosim.inproc``: the same
federate programs and configs as threads on HELICS's in-process core, results byte-identical to ``lec-cosim run``,
``tests/test_inproc.py``): a process per federate cost each run seconds of imports. ``benchmarks/backend_agreement.py``
runs every shipped scenario the same way.
"""

import json
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import SCENARIOS, SHARED_RUNS, shared_run, write_scenario

from lec_cosim.cli import _load, build_parser
from lec_cosim.inproc import run_inproc
from lec_cosim.scenario import load_scenario

BACKENDS = ("pandapower", "power-grid-model", "opendss")
CASES = {  # scenario: its solver's key, and the shared run of it (harness.SHARED_RUNS)
    "trondelag_arbitrage": ("grid.solver", "trondelag_arbitrage"),
    # hourly grid steps: pandapower's three-phase flow (~60 ms, and the DSO's indicators around it) at 30-minute
    # steps made this the slowest test of make test. The local market over 12 h: the morning PV ramp and noon.
    "ieee_eu_lv_lem_plain": ("grid.solver", "lem_hourly_12h"),
    # the shipped day with the DSO's limits (--dso-limits): they bind at noon and feed back into the plans
    "ieee_eu_lv_three_lecs": ("dso.solver", "three_lecs_dso_limits"),
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
    with ThreadPoolExecutor(1) as pool:
        made_shared = pool.submit(shared_run, tmp_path_factory, shared)  # if not made yet: a process, meanwhile
        for backend in others:
            folder = tmp_path / backend
            folder.mkdir()
            variant = write_scenario(folder, name, {key: backend, **changes})
            run_inproc(as_run_loads_it(variant, extra), tmp_path / f"out_{backend}", timeout_s=380)
        path, made = made_shared.result()
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
