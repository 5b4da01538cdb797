"""The local-market federation against the same models in one process: the cost of HELICS.

    .venv/bin/python benchmarks/federation_vs_monolithic.py [--days 7] [--scenario scenarios/ieee_eu_lv_lem_plain_year.yaml]

Runs the scenario (default: the year file, cut to ``--days`` from its start; ``--days 366`` is the
whole of 2016 at 15 min) twice, side by side in this run:

1. the federation, as ``lec-cosim run`` does: broker, participants, market, DSO and recorder
   processes over HELICS (``benchmarks/lem_common.py``, :func:`run_measured`);
2. a monolithic loop of the same models in this process (:func:`run_monolithic`), writing the same
   results files.

Both must give the same KPIs (largest relative difference printed; it is checked). Printed: wall
times, the ratio federation / monolithic, and the share of the federation's wall time that is not
model work, ``1 - monolithic / federation``: HELICS time coordination, messages and values, the
process start-up, and the federates' own bookkeeping (the issue's "HELICS coordination" share).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from host import machine
from lem_common import ROOT, kpi_difference, run_measured, run_monolithic, temporary_dir

from lec_cosim.scenario import write_scenario_variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "ieee_eu_lv_lem_plain_year.yaml")
    parser.add_argument("--days", type=float, default=7.0, help="horizon, days from the scenario's start")
    args = parser.parse_args()
    work = temporary_dir("lec_bench_mono_")
    path = write_scenario_variant(args.scenario, {"horizon_h": int(round(args.days * 24))}, work / "scenario")
    fed = run_measured(path, work / "federation")
    mono_s, mono_kpis = run_monolithic(path, work / "monolithic")
    diff = kpi_difference(fed.kpis, mono_kpis)
    print(f"# Federation vs monolithic loop, {args.days:g} days at 15 min ({args.scenario.name})")
    print(f"machine: {machine()}; date {dt.date.today()}; results in {work}")
    print()
    print("| run | wall time (s) | ratio |")
    print("|---|---:|---:|")
    print(f"| monolithic loop (same models, one process) | {mono_s:.1f} | 1.00 |")
    print(f"| federation ({fed.federates} federates + broker) | {fed.wall_s:.1f} | {fed.wall_s / mono_s:.2f} |")
    print()
    working, stepping = fed.seconds("working"), fed.seconds("stepping")
    # within an hour the federates act one after the other (orders -> market -> settlement ->
    # power flows -> recorder), so the stepping time is their working time plus the grant latency
    latency = max(stepping.values()) - sum(working.values())
    print(f"not model work (HELICS coordination, message and vector handling, start-up): "
          f"{100 * (1 - mono_s / fed.wall_s):.0f} % of the federation's wall time, of which:")
    print(f"  HELICS time coordination on the critical path (stepping {max(stepping.values()):.1f} s - the "
          f"federates' working time {sum(working.values()):.1f} s): {latency:.1f} s = "
          f"{100 * latency / fed.wall_s:.0f} %")
    print(f"  process start-up, joining and results beyond the stepping: {fed.wall_s - max(stepping.values()):.1f} s")
    print(f"peak memory of the federation (all processes): {fed.peak_mb:.0f} MB")
    print(f"largest relative KPI difference federation vs monolithic: {diff:.1e}")
    for line in fed.federate_lines:
        print("  " + line)
    if diff > 1e-9:
        raise SystemExit("the federation and the monolithic loop disagree: the comparison is void")




if __name__ == "__main__":
    main()
