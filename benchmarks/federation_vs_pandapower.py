"""The whole local-market federation against pandapower's own ``run_timeseries`` computing the grid alone.

    .venv/bin/python benchmarks/federation_vs_pandapower.py [--scenario scenarios/ieee_eu_lv_lem_plain_week.yaml]

One week at 15 minutes (672 grid steps) of Case 1 on the IEEE European LV feeder, side by side in
this run:

1. the federation as ``lec-cosim run`` runs it (broker, participants, market, DSO, recorder; the
   three-phase power flow every 15 min with the scenario's backend, power-grid-model by default);
2. pandapower's ``pandapower.timeseries.run_timeseries`` with ``run=runpp_3ph`` over the same feeder
   and the same per-step powers (the community's profiles and the CHP outputs the federation's
   market produced), the grid alone: no market, no settlement, no results files
   (``benchmarks/pandapower_baseline.py``). Its voltages are checked against the federation's
   ``grid.csv`` (within 1e-6 pu), so both computed the same grid.

Printed: both wall times (the federation's from process start-up to results written, pandapower's
of ``run_timeseries`` alone, without building the net) and the ratio pandapower / federation.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from host import machine
from lem_common import ROOT, run_measured, temporary_dir
from pandapower_baseline import chp_profile, run_pandapower_timeseries, scenario_grid

from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario, write_scenario_variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "ieee_eu_lv_lem_plain_week.yaml")
    args = parser.parse_args()
    work = temporary_dir("lec_bench_pp_")
    path = write_scenario_variant(args.scenario, {}, work / "scenario")
    fed = run_measured(path, work / "federation")

    scenario = load_scenario(path)
    community = community_from_scenario(scenario)
    chp_kw, _ = chp_profile(community, str(fed.run_dir))
    grid = scenario_grid(scenario, community.table, solver="pandapower")
    frame, pp_s = run_pandapower_timeseries(grid, community.load_kw, community.load_kvar, community.pv_kw, chp_kw,
                                            table=community.table)
    recorded = pd.read_csv(fed.run_dir / "grid.csv")
    deviation = max(np.abs(frame["vm_min_pu"].to_numpy() - recorded["vm_min_pu"].to_numpy()).max(),
                    np.abs(frame["vm_max_pu"].to_numpy() - recorded["vm_max_pu"].to_numpy()).max())
    steps = len(recorded)
    print(f"# Federation vs pandapower run_timeseries (grid alone), {steps} steps of 15 min ({args.scenario.name})")
    print(f"machine: {machine()}; date {dt.date.today()}; results in {work}")
    print()
    print("| run | wall time (s) | per grid step (ms) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| whole federation ({fed.federates} federates + broker, grid.solver {scenario.grid.solver}) | "
          f"{fed.wall_s:.1f} | {1000 * fed.wall_s / steps:.1f} | 1.00 |")
    print(f"| pandapower run_timeseries, runpp_3ph, grid alone | {pp_s:.1f} | {1000 * pp_s / steps:.1f} | "
          f"{pp_s / fed.wall_s:.1f} |")
    print()
    print(f"largest difference of vm_min/vm_max between the two: {deviation:.1e} pu")
    if deviation > 1e-6:
        raise SystemExit("pandapower and the federation computed different grids: the comparison is void")


if __name__ == "__main__":
    main()
