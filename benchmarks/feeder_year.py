"""The local market's year on a SimBench grid beside the same year on the IEEE feeder: the cost of a grid step.

    .venv/bin/python benchmarks/feeder_year.py [--days 366] [--repeats 1]

Runs ``scenarios/ieee_eu_lv_lem_plain_year.yaml`` and ``scenarios/simbench_lv_semiurb4_lem_year.yaml`` (cut to
``--days`` days from 1 January) through the whole federation (``run_measured``: generated runner, real broker
and federate processes), alternately, and prints each one's wall time, its cost per grid step (15 min) and the
ratio. Issue 15's target: the SimBench year within 2x of the IEEE feeder's per-step cost. The SimBench grid is
read from its kept copy (``~/.cache/lec-cosim``), as a user's second run would.
"""

from __future__ import annotations

import argparse
import datetime as dt

from host import machine
from lem_common import ROOT, run_measured, temporary_dir

from lec_cosim.scenario import write_scenario_variant

SCENARIOS = {"IEEE European LV feeder": "ieee_eu_lv_lem_plain_year",
             "SimBench 1-LV-semiurb4--0-sw": "simbench_lv_semiurb4_lem_year"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    work = temporary_dir("lec_bench_feeder_year_")
    steps = args.days * 96
    print(f"# The local market's year: IEEE feeder and SimBench grid ({args.days} days, {steps} grid steps)")
    print(f"machine: {machine()}; date {dt.date.today()}; results in {work}")
    print()
    print("| feeder | run | wall (s) | per grid step (ms) | households | LEM volume (kWh) |")
    print("|---|---:|---:|---:|---:|---:|")
    walls: dict[str, list[float]] = {label: [] for label in SCENARIOS}
    for repeat in range(args.repeats):
        for label, name in SCENARIOS.items():
            variant = write_scenario_variant(ROOT / "scenarios" / f"{name}.yaml", {"horizon_h": 24 * args.days},
                                             work / "scenarios", name)
            run = run_measured(variant, work / f"{name}_{repeat}")
            walls[label].append(run.wall_s)
            homes = "55" if "ieee" in name else "41"
            print(f"| {label} | {repeat + 1} | {run.wall_s:.1f} | {run.wall_s / steps * 1000:.2f} | {homes} | "
                  f"{run.kpis['lem_volume_kwh']:.0f} |", flush=True)
    ieee, simbench = (min(v) for v in walls.values())
    print()
    print(f"SimBench / IEEE per-step cost (best runs): {simbench / ieee:.2f} (target: at most 2)")


if __name__ == "__main__":
    main()
