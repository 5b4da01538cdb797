"""The whole local-market federation against OpenDSS computing the grid alone from the IEEE's own feeder files.

    .venv/bin/python benchmarks/federation_vs_opendss.py [--year] [--scenario FILE] [--pandapower]
        [--dss-tolerance PU] [--tolerance PU] [--no-commands]

Case 1 on the IEEE European LV feeder at 15 minutes, a week (``scenarios/ieee_eu_lv_lem_plain_week.yaml``,
672 grid steps) or with ``--year`` the year 2016 (``scenarios/ieee_eu_lv_lem_plain_year.yaml``, 35,136 grid
steps), side by side in this run:

1. the federation as ``lec-cosim run`` runs it (broker, participants, market, DSO, recorder processes over
   HELICS; ``benchmarks/lem_common.py``, :func:`run_measured`), with its start-up (from the launcher's call
   until every federate is in executing mode, from ``timing/<federate>.json``; per federate from its process
   start) and each federate's work and wait; and once more with the fork server started and its imports done
   before the clock (HELICS, numpy, pandas, scipy.sparse: the federation's libraries loaded, as dss-python is
   imported before OpenDSS's clock below);
2. OpenDSS (dss-python) on the IEEE's own files, ``data/ieee_eulv/opendss/Master.dss`` and what it
   redirects to (not the project's pandapower -> OpenDSS translation, ``lec_cosim/models/opendss_backend.py``),
   with the federation's own injections: the community's profiles and the CHP outputs its market produced
   (read from the run's ``households.csv``, as ``benchmarks/federation_vs_pandapower.py`` does). The circuit
   build (compiling the files, one ``Generator`` per PV and CHP unit) is timed apart from the loop; the loop
   sets every load's kW and kvar and every generator's kW through the ``Loads``/``Generators`` interfaces,
   solves, and reads all node voltages (``AllBusVmagPu``) and the losses: what the comparison needs;
3. the same models in one loop (:func:`run_monolithic`, no HELICS, no processes), whose KPIs must equal
   the federation's;
4. each as a command (unless ``--no-commands``): ``lec-cosim run`` against the OpenDSS loop as an OpenDSS user's
   script (``benchmarks/opendss_ieee.py``, given the same injections in a file), each timed from its process's
   start to its exit, three times in turn, with the CPU of all their processes: the comparison with every import
   on both sides (above, the federation carries its fork server's imports and OpenDSS none);
5. with ``--pandapower``, pandapower's own ``run_timeseries`` (``runpp_3ph``) over the same steps
   (``benchmarks/pandapower_baseline.py``), with numba if it is installed (``pip install -e '.[bench]'``,
   as the Makefile's ``bench`` target does), as users run it.

The IEEE files against the project's model (``data/ieee_eulv/csv``, :mod:`lec_cosim.models.feeder_net`):
the same source (11 kV, 1.05 pu, ISC3 = 3000 A, ISC1 = 5 A), transformer (800 kVA Dyn, XHL = 4 %, OpenDSS's
default %R = 0.2 per winding = 0.4 %), lines and load buses and phases (checked here per load). One
difference is aligned: the IEEE loads keep OpenDSS's defaults ``vminpu = 0.95``, ``vmaxpu = 1.05`` of their
0.23 kV, outside which a constant-power load becomes a constant impedance; the feeder's phases run at
0.93-1.12 pu of 0.416 kV / sqrt 3 = 0.240 kV here (1.16 pu of 0.23 kV), so its loads would switch
(9e-3 pu apart from the federation, measured). The project models constant power at any voltage, so every
load gets ``vminpu=0 vlowpu=0 vmaxpu=1000``, and the generators (not in the IEEE files) the same.

Checked (the run exits with 1 otherwise): at every step the lowest and highest LV phase voltage
(``grid.csv``'s ``vm_min_pu``/``vm_max_pu``) and each bus's extremes over the run
(``bus_voltage_extremes.csv``) agree within ``--tolerance`` (1e-5 pu); the one loop's KPIs equal the
federation's (relative 1e-9). OpenDSS runs twice: at its default solution tolerance (1e-4 pu between
iterations), the figure compared, and at ``--dss-tolerance`` (1e-6 pu), the run checked. Its default is
not close enough to its own solution: 8.2e-6 pu from the federation over the week, 1.4e-5 pu over the year
(2026-12-07); at 1e-6, 1e-7 pu, for ~25 % more time per step.

Printed: a markdown table of the OpenDSS grid alone (circuit build, loop, per step), the federation
(start-up, total, per step), the one loop, the ratios federation / OpenDSS and federation / one loop in
wall and in CPU time, the largest voltage difference; and a table of each federate's start-up, work and
CPU. The machine is often shared: the ratios, measured side by side in one run, are steadier than the
seconds, and the CPU seconds (this process's; the federation's: its federates' processes, from their
closing log lines, 0.1 s resolution, without the broker) steadier than the wall seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from host import machine
from lem_common import (
    ROOT,
    FederationRun,
    kpi_difference,
    run_measured,
    run_monolithic,
    temporary_dir,
)
from opendss_ieee import build_ieee_circuit, run_opendss_loop, write_inputs
from pandapower_baseline import (
    _numba_installed,
    chp_profile,
    run_pandapower_timeseries,
    scenario_grid,
)

from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario, write_scenario_variant

WEEK = ROOT / "scenarios" / "ieee_eu_lv_lem_plain_week.yaml"
YEAR = ROOT / "scenarios" / "ieee_eu_lv_lem_plain_year.yaml"
KPI_TOLERANCE = 1e-9


def voltage_differences(run_dir: Path, steps: pd.DataFrame, buses: pd.DataFrame) -> dict[str, float]:
    """Largest differences of OpenDSS's voltages from the federation's ``grid.csv`` and
    ``bus_voltage_extremes.csv``, pu (and of the losses, kW)."""
    grid = pd.read_csv(run_dir / "grid.csv")
    extremes = pd.read_csv(run_dir / "bus_voltage_extremes.csv").set_index("bus")
    if len(grid) != len(steps) or set(extremes.index) != set(buses.index):
        raise RuntimeError("the federation's results and OpenDSS's cover different steps or buses")
    per_bus = buses.loc[extremes.index]
    return {
        "step vm_min/vm_max (pu)": float(max(np.abs(steps[c].to_numpy() - grid[c].to_numpy()).max()
                                             for c in ("vm_min_pu", "vm_max_pu"))),
        "bus extremes (pu)": float(max(np.abs(per_bus[c].to_numpy() - extremes[c].to_numpy()).max()
                                       for c in ("vm_min_pu", "vm_max_pu"))),
        "losses (kW)": float(np.abs(steps["p_loss_kw"].to_numpy() - grid["p_loss_kw"].to_numpy()).max()),
    }


def federate_times(run_dir: Path) -> pd.DataFrame:
    """Each federate's start-up (``timing/<federate>.json``, wall s from its process start) and work and wait."""
    rows = []
    for path in sorted((run_dir / "timing").glob("*.json")):
        info = json.loads(path.read_text())
        rows.append({"federate": info["federate"], "created_s": info.get("created_s"), "ready_s": info.get("ready_s"),
                     "startup_s": info.get("startup_s"), "work_s": info.get("work_s"), "wait_s": info.get("wait_s"),
                     "stepping_s": info.get("stepping_s")})
    return pd.DataFrame(rows).set_index("federate")


@dataclass
class Measured:
    """One run of the comparison: wall and CPU seconds (CPU: this process's, or the federates' processes')."""

    what: str
    wall_s: float
    cpu_s: float
    build_s: float | None = None
    loop_s: float | None = None


def print_tables(label: str, steps: int, fed: FederationRun, times: pd.DataFrame, runs: list[Measured],
                 diffs: dict, kpi_diff: float) -> None:
    """The comparison (``runs``: OpenDSS at its default tolerance first, then the one loop, the federation with its
    libraries loaded before the clock and the federation last) and each federate's
    start-up and work, as markdown; ``diffs``: the voltage differences of each OpenDSS run, by its tolerance."""
    federation = runs[-1]
    cell = lambda x: "" if x is None else f"{x:.2f}"
    print("| run | build / start-up (s) | loop / stepping (s) | total (s) | per grid step (ms) | CPU (s) | "
          "federation / this, wall | federation / this, CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(f"| {run.what} | {cell(run.build_s)} | {cell(run.loop_s)} | {run.wall_s:.2f} | "
              f"{1000 * run.wall_s / steps:.2f} | {run.cpu_s:.2f} | {federation.wall_s / run.wall_s:.2f} | "
              f"{federation.cpu_s / run.cpu_s:.2f} |")
    dss, one_loop, loaded = runs[0], runs[-3], runs[-2]
    print()
    print(f"federation / OpenDSS: {federation.wall_s / dss.wall_s:.1f}x wall (build included), "
          f"{federation.loop_s / dss.loop_s:.1f}x stepping / loop, {federation.cpu_s / dss.cpu_s:.1f}x CPU; "
          f"its libraries imported before the clock, as OpenDSS's: {loaded.wall_s / dss.wall_s:.2f}x wall; "
          f"federation / one loop: {federation.wall_s / one_loop.wall_s:.2f}x wall, "
          f"{federation.cpu_s / one_loop.cpu_s:.2f}x CPU (the federation's CPU: its federates' processes, "
          "not the broker)")
    for tolerance, found in diffs.items():
        print(f"largest differences OpenDSS (tolerance {tolerance:g} pu) - federation: "
              + ", ".join(f"{k} {v:.1e}" for k, v in found.items()))
    print(f"largest relative difference of the KPIs, one loop - federation: {kpi_diff:.1e}")
    print()
    print(f"Where the federation's {fed.wall_s:.2f} s go ({label}): every federate in executing mode "
          f"{fed.startup_s():.2f} s after the launcher's call (the fork server's imports, then the processes: the "
          "table's start-up column is from each federate's process start; created = imports and HELICS federate, "
          "ready = model built, start-up = all in executing mode):")
    print()
    print("| federate | created (s) | ready (s) | start-up (s) | work (s) | wait (s) | stepping (s) | CPU (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    cpu = fed.seconds("CPU in all")
    for name, row in times.iterrows():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in times.columns)
              + f" | {cpu.get(name, math.nan):.1f} |")


COMMAND_REPEATS = 3


def time_command(argv: list[str]) -> tuple[float, float]:
    """Wall seconds from a command's start to its exit, and the CPU seconds of all its processes (each reaped by
    its parent: the federates by the fork server, the server, broker and watchdog by ``lec-cosim run``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare_commands(path: Path, work: Path, inputs: Path, kpis: dict) -> list[tuple[str, list[tuple[float, float]]]]:
    """``lec-cosim run`` and the OpenDSS script (``opendss_ieee.py``, OpenDSS's default tolerance), each timed as a
    whole :data:`COMMAND_REPEATS` times, in turn; the command's KPIs must equal the federation's."""
    lec = [sys.executable, "-m", "lec_cosim", "run", str(path), "--out", str(work / "command"), "--force", "--quiet"]
    dss = [sys.executable, str(Path(__file__).with_name("opendss_ieee.py")), "--inputs", str(inputs)]
    times = {"lec": [], "dss": []}
    for _ in range(COMMAND_REPEATS):
        times["dss"].append(time_command(dss))
        times["lec"].append(time_command(lec))
    found = json.loads((work / "command" / "summary.json").read_text())["kpis"]
    if kpi_difference(kpis, found) > KPI_TOLERANCE:
        raise RuntimeError("lec-cosim run's KPIs differ from the measured federation's")
    script = ("OpenDSS grid alone as a script (python benchmarks/opendss_ieee.py: its imports, the IEEE files' "
              "compile, the loop)")
    return [(script, times["dss"]),
            ("lec-cosim run (the whole federation, its scenario checked and results written)", times["lec"])]


def print_commands(measured: list[tuple[str, list[tuple[float, float]]]]) -> None:
    """The commands' table: median and range of the wall seconds, median CPU, and lec-cosim run / OpenDSS."""
    medians = [(float(np.median([w for w, _ in runs])), float(np.median([c for _, c in runs]))) for _, runs in measured]
    print(f"Each as a command, from its process's start to its exit ({COMMAND_REPEATS} runs each, in turn; CPU: all "
          "its processes):")
    print()
    print("| command | wall (s), median | wall (s), range | CPU (s), median | lec-cosim run / this, wall | CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for (what, runs), (wall, cpu) in zip(measured, medians):
        walls = [w for w, _ in runs]
        print(f"| {what} | {wall:.2f} | {min(walls):.2f}-{max(walls):.2f} | {cpu:.2f} | "
              f"{medians[-1][0] / wall:.2f} | {medians[-1][1] / cpu:.2f} |")


def main() -> int:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", action="store_true", help=f"the year ({YEAR.name}) instead of the week")
    parser.add_argument("--scenario", type=Path, help=f"a local-market scenario (default {WEEK.name})")
    parser.add_argument("--pandapower", action="store_true",
                        help="also pandapower's run_timeseries over the same steps (numba if installed)")
    parser.add_argument("--dss-tolerance", type=float, default=1e-6,
                        help="OpenDSS's solution tolerance in the checked run, pu (the compared run: OpenDSS's "
                             "default, 1e-4)")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest voltage difference allowed, pu")
    parser.add_argument("--no-commands", action="store_true",
                        help="leave out the comparison of lec-cosim run and the OpenDSS script as whole commands")
    args = parser.parse_args()
    source = args.scenario or (YEAR if args.year else WEEK)
    work = temporary_dir("lec_bench_dss_")
    path = write_scenario_variant(source, {}, work / "scenario")

    fed = run_measured(path, work / "federation")
    times = federate_times(fed.run_dir)

    scenario = load_scenario(path)
    community = community_from_scenario(scenario)
    chp_kw, _ = chp_profile(community, str(fed.run_dir))
    runs, diffs = [], {}
    for tolerance in (None, args.dss_tolerance):  # OpenDSS's default, then the checked run
        circuit = build_ieee_circuit(community.table, tolerance_pu=tolerance)
        steps, buses, dss_s, dss_cpu_s = run_opendss_loop(circuit, community.load_kw, community.load_kvar,
                                                          community.pv_kw, chp_kw)
        tolerance = circuit.dss.ActiveCircuit.Solution.Tolerance
        label = "its default tolerance" if not runs else "checked"
        runs.append(Measured(f"OpenDSS grid alone (IEEE Master.dss, dss-python), tolerance {tolerance:g} pu "
                             f"({label})", circuit.build_s + dss_s, circuit.build_cpu_s + dss_cpu_s, circuit.build_s,
                             dss_s))
        diffs[tolerance] = voltage_differences(fed.run_dir, steps, buses)

    if args.pandapower:
        grid = scenario_grid(scenario, community.table, solver="pandapower")
        started_cpu = time.process_time()
        _, pp_s = run_pandapower_timeseries(grid, community.load_kw, community.load_kvar, community.pv_kw, chp_kw,
                                            table=community.table)
        runs.append(Measured(f"pandapower run_timeseries, runpp_3ph, grid alone (numba "
                             f"{'on' if _numba_installed() else 'off'})", pp_s, time.process_time() - started_cpu,
                             None, pp_s))

    started_cpu = time.process_time()
    mono_s, mono_kpis = run_monolithic(path, work / "one_loop")
    runs.append(Measured("same models in one loop (market, settlement, power flows, results files)", mono_s,
                         time.process_time() - started_cpu))
    kpi_diff = kpi_difference(fed.kpis, mono_kpis)
    # the federation again, its libraries imported before the clock as dss-python is before OpenDSS's
    loaded = run_measured(path, work / "federation_loaded", libraries_loaded=True)
    kpi_diff = max(kpi_diff, kpi_difference(fed.kpis, loaded.kpis))
    runs.append(Measured("whole federation, its libraries imported before the clock (as dss-python before "
                         "OpenDSS's)", loaded.wall_s, sum(loaded.seconds("CPU in all").values()),
                         loaded.startup_s(), float(federate_times(loaded.run_dir)["stepping_s"].max())))
    runs.append(Measured(f"whole federation ({fed.federates} federates + broker)", fed.wall_s,
                         sum(fed.seconds("CPU in all").values()), fed.startup_s(), float(times["stepping_s"].max())))

    commands = None
    if not args.no_commands:
        inputs = work / "powers.npz"
        write_inputs(inputs, community.table, community.load_kw, community.load_kvar, community.pv_kw, chp_kw)
        commands = compare_commands(path, work, inputs, fed.kpis)

    n_steps = len(steps)
    print(f"# Federation vs OpenDSS computing the grid alone, {n_steps} steps of 15 min ({source.name})")
    print(f"machine: {machine()}; date {dt.date.today()}; load average {os.getloadavg()[0]:.1f} at the end; "
          f"results in {work}")
    print()
    print_tables(source.name, n_steps, fed, times, runs, diffs, kpi_diff)
    if commands is not None:
        print()
        print_commands(commands)
    checked = diffs[tolerance]
    voltage = max(checked["step vm_min/vm_max (pu)"], checked["bus extremes (pu)"])
    if voltage > args.tolerance:
        print(f"error: OpenDSS and the federation differ by {voltage:.1e} pu (> {args.tolerance:g}): the comparison "
              "is void", file=sys.stderr)
        return 1
    if kpi_diff > KPI_TOLERANCE:
        print(f"error: the one loop's KPIs differ from the federation's by {kpi_diff:.1e} (relative)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
