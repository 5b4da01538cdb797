"""The power-flow backends side by side: the cost of a step on each shipped feeder, and every shipped
scenario's KPIs with each backend (they must agree within 1e-4 relative).

    .venv/bin/python benchmarks/backend_agreement.py [--days 2] [--steps-only] [SCENARIO ...]

First, per feeder (the community battery's balanced grid, the IEEE European LV feeder three-phase with the
local market's players), the same random states solved by ``pandapower``, ``power-grid-model`` and
``opendss`` (dss-python) in one loop, and on the IEEE feeder the project's own ``fixed-point`` (three-phase only):
milliseconds per step and the largest voltage difference to power-grid-model. Then each scenario of ``scenarios/`` (or those given) runs through the whole federation
once per backend (``grid.solver``, or ``dso.solver`` of the three-LEC scenarios), and the largest relative
difference of the ``summary.json`` KPIs to pandapower's is printed with the wall times (a scenario on a
``feeder.source``, which pandapower's three-phase flow is not set up for, compares the other two). Horizons longer than
``--days`` days (the week and the year files) are cut to that many days: pandapower's three-phase flow takes
~0.1 s a step here. Exits non-zero if a scenario's KPIs differ by more than 1e-4.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import yaml
from host import machine
from lem_common import ROOT, kpi_difference, run_measured, temporary_dir

from lec_cosim.scenario import write_scenario_variant

TOLERANCE = 1e-4
BACKENDS = ("pandapower", "power-grid-model", "opendss")
THREE_PHASE_BACKENDS = (*BACKENDS, "fixed-point")
"""The IEEE feeder's row adds the fixed point (three-phase flows only; its KPIs: tests/test_fixed_point_backend.py)."""
STATES = 50


def solver_key(data: dict) -> str:
    return "dso.solver" if "lecs" in data else "grid.solver"


def step_costs() -> None:
    """Milliseconds per step of each backend on each shipped feeder, the same random states, one loop each."""
    import time

    import numpy as np

    from lec_cosim.models.grid import LECGrid
    from lec_cosim.models.three_phase_feeder import LemGrid
    from lec_cosim.scenario import load_scenario

    rng = np.random.default_rng(20261206)
    print("| feeder | flow | " + " | ".join(f"{b} (ms/step)" for b in THREE_PHASE_BACKENDS)
          + " | largest voltage difference to power-grid-model (pu) |")
    print("|---|---|" + "---:|" * (len(THREE_PHASE_BACKENDS) + 1))
    grid_config = load_scenario(ROOT / "scenarios" / "trondelag_arbitrage.yaml").grid
    points = rng.uniform([0.0, 0.0, -0.6], [1.0, 1.0, 0.6], size=(STATES, 3))
    times, volts = {}, {}
    for backend in BACKENDS:
        grid = LECGrid(grid_config.model_copy(update={"solver": backend}))
        start = time.perf_counter()
        volts[backend] = [grid.solve(load_p_mw=p, load_q_mvar=0.3 * p, pv_p_mw=pv, battery_p_mw=b).pcc_vm_pu
                          for p, pv, b in points]
        times[backend] = (time.perf_counter() - start) / STATES * 1000.0
    gap = max(np.max(np.abs(np.subtract(volts[b], volts["power-grid-model"]))) for b in BACKENDS)
    print("| community battery grid | balanced | " + " | ".join(f"{times[b]:.2f}" for b in BACKENDS)
          + " | - " * (len(THREE_PHASE_BACKENDS) - len(BACKENDS)) + f"| {gap:.1e} |", flush=True)
    grids = {backend: LemGrid(solver=backend) for backend in THREE_PHASE_BACKENDS}
    first = grids[BACKENDS[0]]
    states = [(rng.uniform(0, 3, len(first.household_names)), rng.uniform(0, 5, len(first.prosumer_names)),
               rng.uniform(0, 10, len(first.chp_names))) for _ in range(STATES // 5)]
    times, volts = {}, {}
    for backend, grid in grids.items():
        grid.set_injections(load_kw=states[0][0], pv_kw=states[0][1], chp_kw=states[0][2])
        grid.solve()  # built at its first solve
        start = time.perf_counter()
        volts[backend] = []
        for load, pv, chp in states:
            grid.set_injections(load_kw=load, pv_kw=pv, chp_kw=chp)
            volts[backend].append(grid.solve().vm_pu.to_numpy())
        times[backend] = (time.perf_counter() - start) / len(states) * 1000.0
    gap = max(np.max(np.abs(np.subtract(volts[b], volts["power-grid-model"]))) for b in THREE_PHASE_BACKENDS)
    print("| IEEE European LV feeder, 61 players | three-phase | "
          + " | ".join(f"{times[b]:.2f}" for b in THREE_PHASE_BACKENDS)
          + f" | {gap:.1e} |", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path)
    parser.add_argument("--days", type=float, default=2.0, help="longest horizon run, days")
    parser.add_argument("--steps-only", action="store_true", help="only the cost of a step per feeder")
    args = parser.parse_args()
    paths = args.scenarios or sorted((ROOT / "scenarios").glob("*.yaml"))
    print("# The power-flow backends side by side")
    print(f"machine: {machine()}; date {dt.date.today()}")
    print()
    step_costs()
    if args.steps_only:
        return
    work = temporary_dir("lec_bench_backends_")
    print(f"KPIs of whole federations (results in {work})")
    print()
    print("| scenario | horizon (h) | " + " | ".join(f"{b} (s)" for b in BACKENDS)
          + " | largest relative KPI difference to pandapower |")
    print("|---|---:|" + "---:|" * (len(BACKENDS) + 1))
    worst = 0.0
    for path in paths:
        data = yaml.safe_load(path.read_text())
        horizon = min(float(data.get("horizon_h", 24)), 24 * args.days)
        runs = {}
        for backend in BACKENDS:
            variant = write_scenario_variant(path, {solver_key(data): backend, "horizon_h": horizon},
                                    work / "scenarios" / backend, f"{data['name']}")
            if backend == "pandapower" and "source" in data.get("feeder", {}):
                continue  # pandapower's three-phase flow is not set up for a feeder.source: validate refuses it
            runs[backend] = run_measured(variant, work / backend / data["name"])
        reference = next(iter(runs))  # pandapower's, or the first backend that takes the scenario
        diff = max(kpi_difference(runs[reference].kpis, runs[b].kpis) for b in runs)
        worst = max(worst, diff)
        print(f"| {data['name']} | {horizon:g} | "
              + " | ".join(f"{runs[b].wall_s:.1f}" if b in runs else "refused" for b in BACKENDS)
              + f" | {diff:.1e}{'' if reference == 'pandapower' else f' (to {reference})'} |", flush=True)
    print()
    print(f"largest difference over all scenarios: {worst:.1e} (bound {TOLERANCE:g})")
    if worst > TOLERANCE:
        raise SystemExit("the backends disagree")


if __name__ == "__main__":
    main()
