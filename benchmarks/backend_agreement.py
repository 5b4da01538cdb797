"""Every shipped scenario with both power-flow backends: the KPIs must agree within 1e-4 relative.

    .venv/bin/python benchmarks/backend_agreement.py [--days 2] [SCENARIO ...]

Runs each scenario of ``scenarios/`` (or those given) twice through the whole federation, once with
``pandapower`` and once with ``power-grid-model`` as the power-flow backend (``grid.solver``, or
``dso.solver`` of the three-LEC scenarios), and prints the largest relative difference of the
``summary.json`` KPIs, with both wall times. Horizons longer than ``--days`` days (the week and the
year files) are cut to that many days: pandapower's three-phase flow takes ~0.1 s a step here.
Exits non-zero if a scenario's KPIs differ by more than 1e-4.
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
BACKENDS = ("pandapower", "power-grid-model")


def solver_key(data: dict) -> str:
    return "dso.solver" if "lecs" in data else "grid.solver"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path)
    parser.add_argument("--days", type=float, default=2.0, help="longest horizon run, days")
    args = parser.parse_args()
    paths = args.scenarios or sorted((ROOT / "scenarios").glob("*.yaml"))
    work = temporary_dir("lec_bench_backends_")
    print("# KPIs with pandapower and with power-grid-model, whole federations")
    print(f"machine: {machine()}; date {dt.date.today()}; results in {work}")
    print()
    print("| scenario | horizon (h) | pandapower (s) | power-grid-model (s) | largest relative KPI difference |")
    print("|---|---:|---:|---:|---:|")
    worst = 0.0
    for path in paths:
        data = yaml.safe_load(path.read_text())
        horizon = min(float(data.get("horizon_h", 24)), 24 * args.days)
        runs = {}
        for backend in BACKENDS:
            variant = write_scenario_variant(path, {solver_key(data): backend, "horizon_h": horizon},
                                    work / "scenarios" / backend, f"{data['name']}")
            runs[backend] = run_measured(variant, work / backend / data["name"])
        diff = kpi_difference(runs["pandapower"].kpis, runs["power-grid-model"].kpis)
        worst = max(worst, diff)
        print(f"| {data['name']} | {horizon:g} | {runs['pandapower'].wall_s:.1f} | "
              f"{runs['power-grid-model'].wall_s:.1f} | {diff:.1e} |", flush=True)
    print()
    print(f"largest difference over all scenarios: {worst:.1e} (bound {TOLERANCE:g})")
    if worst > TOLERANCE:
        raise SystemExit("the backends disagree")


if __name__ == "__main__":
    main()
