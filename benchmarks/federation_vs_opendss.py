"""The whole local-market federation against OpenDSS computing the grid alone from the IEEE's own feeder files.

    .venv/bin/python benchmarks/federation_vs_opendss.py [--year] [--scenario FILE] [--pandapower]
        [--dss-tolerance PU] [--tolerance PU]

Case 1 on the IEEE European LV feeder at 15 minutes, a week (``scenarios/ieee_eu_lv_lem_plain_week.yaml``,
672 grid steps) or with ``--year`` the year 2016 (``scenarios/ieee_eu_lv_lem_plain_year.yaml``, 35,136 grid
steps), side by side in this run:

1. the federation as ``lec-cosim run`` runs it (broker, participants, market, DSO, recorder processes over
   HELICS; ``benchmarks/lem_common.py``, :func:`run_measured`), with its start-up (from the launcher's call
   until every federate is in executing mode, from ``timing/<federate>.json``; per federate from its process
   start) and each federate's work and wait;
2. OpenDSS (dss-python) on the IEEE's own files, ``data/ieee_eulv/opendss/Master.dss`` and what it
   redirects to (not the project's pandapower -> OpenDSS translation, ``lec_cosim/models/opendss_backend.py``),
   with the federation's own injections: the community's profiles and the CHP outputs its market produced
   (read from the run's ``households.csv``, as ``benchmarks/federation_vs_pandapower.py`` does). The circuit
   build (compiling the files, one ``Generator`` per PV and CHP unit) is timed apart from the loop; the loop
   sets every load's kW and kvar and every generator's kW through the ``Loads``/``Generators`` interfaces,
   solves, and reads all node voltages (``AllBusVmagPu``) and the losses: what the comparison needs;
3. the same models in one loop (:func:`run_monolithic`, no HELICS, no processes), whose KPIs must equal
   the federation's;
4. with ``--pandapower``, pandapower's own ``run_timeseries`` (``runpp_3ph``) over the same steps
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
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from host import machine
from lem_common import ROOT, FederationRun, kpi_difference, run_measured, run_monolithic, temporary_dir
from pandapower_baseline import _numba_installed, chp_profile, run_pandapower_timeseries, scenario_grid

from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario, write_scenario_variant

MASTER = ROOT / "data" / "ieee_eulv" / "opendss" / "Master.dss"
WEEK = ROOT / "scenarios" / "ieee_eu_lv_lem_plain_week.yaml"
YEAR = ROOT / "scenarios" / "ieee_eu_lv_lem_plain_year.yaml"
LOAD_CONSTANT_POWER = "vminpu=0 vlowpu=0 vmaxpu=1000"
GENERATOR_CONSTANT_POWER = "vminpu=0 vmaxpu=1000"
"""Constant power at any voltage, as the project's model: OpenDSS's defaults switch loads (0.95-1.05 pu)
and generators (0.90-1.10 pu) to a constant impedance outside their band."""
PHASE_NODE = {"a": 1, "b": 2, "c": 3}
KPI_TOLERANCE = 1e-9


@dataclass
class IeeeCircuit:
    """The IEEE's OpenDSS circuit with the community's PV and CHP units added, and where each participant is.

    Attributes
    ----------
    dss : dss.IDSS
        The engine context holding the circuit.
    load_part, load_idx : numpy.ndarray
        Households (rows of the participants' table) and their IEEE ``Load`` (1-based index of ``Loads``).
    pv_part, pv_idx, chp_part, chp_idx : numpy.ndarray
        Prosumers and CHPs and their ``Generator`` (1-based index of ``Generators``).
    lv_nodes : numpy.ndarray of bool
        The LV nodes in ``AllNodeNames`` order (all but the 11 kV source bus).
    node_bus : numpy.ndarray of int
        IEEE bus number of each LV node.
    build_s, build_cpu_s : float
        Wall and CPU time of compiling the files and adding the generators.
    """

    dss: object
    load_part: np.ndarray
    load_idx: np.ndarray
    pv_part: np.ndarray
    pv_idx: np.ndarray
    chp_part: np.ndarray
    chp_idx: np.ndarray
    lv_nodes: np.ndarray
    node_bus: np.ndarray
    build_s: float
    build_cpu_s: float


def build_ieee_circuit(table: pd.DataFrame, master: Path = MASTER, tolerance_pu: float | None = None) -> IeeeCircuit:
    """Compile the IEEE's ``Master.dss``, add a single-phase PV ``Generator`` per prosumer on its load's bus and
    phase and a three-phase one per CHP at its bus, and map the participants of ``table`` to them.

    Raises ``ValueError`` if a household is not an IEEE load of the same name on the same bus and phase.
    """
    from dss import DSS

    started, started_cpu = time.perf_counter(), time.process_time()
    dss = DSS.NewContext()
    for flag in ("AllowChangeDir", "AllowForms", "AllowEditor"):  # no dialogs, no chdir in this process
        if hasattr(dss, flag):
            setattr(dss, flag, False)
    dss.Text.Command = f"compile [{master}]"
    table = table.reset_index(drop=True)
    prosumers, chps = table[table["kind"] == "prosumer"], table[table["kind"] == "chp"]
    commands = [f"batchedit load..* {LOAD_CONSTANT_POWER}"]
    for name, bus, phase in zip(prosumers["participant"], prosumers["bus"], prosumers["phase"]):
        commands.append(f"new generator.pv_{name} phases=1 bus1={int(bus)}.{PHASE_NODE[phase]} kv=0.23 kw=0 pf=1 "
                        f"model=1 {GENERATOR_CONSTANT_POWER}")
    for name, bus in zip(chps["participant"], chps["bus"]):
        commands.append(f"new generator.{name} phases=3 bus1={int(bus)} kv=0.416 kw=0 pf=1 model=1 "
                        f"{GENERATOR_CONSTANT_POWER}")
    dss.Text.Commands(commands)
    circuit = dss.ActiveCircuit
    if tolerance_pu is not None:
        circuit.Solution.Tolerance = tolerance_pu
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu

    loads, gens = circuit.Loads, circuit.Generators
    load_pos = {n.lower(): k + 1 for k, n in enumerate(loads.AllNames)}
    gen_pos = {n.lower(): k + 1 for k, n in enumerate(gens.AllNames)}
    households = table[table["kind"].isin(("consumer", "prosumer"))]
    if len(households) != loads.Count:
        raise ValueError(f"{len(households)} households for the IEEE files' {loads.Count} loads")
    for name, bus, phase in zip(households["participant"], households["bus"], households["phase"]):
        if name.lower() not in load_pos:
            raise ValueError(f"household {name} is not a load of {master}")
        loads.idx = load_pos[name.lower()]
        ieee_bus = circuit.ActiveCktElement.BusNames[0]
        if ieee_bus != f"{int(bus)}.{PHASE_NODE[phase]}":
            raise ValueError(f"household {name} sits at {bus} phase {phase}, its IEEE load at {ieee_bus}")
    names = np.array(circuit.AllNodeNames)
    lv = np.array([not n.startswith("sourcebus") for n in names])
    positions = lambda where, names: np.array([where[n.lower()] for n in names])  # noqa: E731
    return IeeeCircuit(
        dss=dss,
        load_part=households.index.to_numpy(), load_idx=positions(load_pos, households["participant"]),
        pv_part=prosumers.index.to_numpy(), pv_idx=positions(gen_pos, "pv_" + prosumers["participant"]),
        chp_part=chps.index.to_numpy(), chp_idx=positions(gen_pos, chps["participant"]),
        lv_nodes=lv, node_bus=np.array([int(n.split(".")[0]) for n in names[lv]]), build_s=build_s,
        build_cpu_s=build_cpu_s)


def run_opendss_loop(c: IeeeCircuit, load_kw, load_kvar, pv_kw, chp_kw) -> tuple[pd.DataFrame, pd.DataFrame, float,
                                                                                 float]:
    """At every step set each load's kW and kvar and each generator's kW, solve, read the node voltages.

    Parameters
    ----------
    c : IeeeCircuit
    load_kw, load_kvar, pv_kw, chp_kw : numpy.ndarray, shape (n_participants, n_steps)
        Every participant's powers, kW / kvar (as ``Community.load_kw``; ``chp_kw`` the market's CHP outputs).

    Returns
    -------
    steps : pandas.DataFrame
        Per step ``vm_min_pu``, ``vm_max_pu`` (LV nodes) and ``p_loss_kw`` (OpenDSS's circuit losses: lines
        and transformer).
    buses : pandas.DataFrame
        Per IEEE bus, index ``bus``: ``vm_min_pu``, ``vm_max_pu`` over its phases and the steps.
    seconds, cpu_s : float
        Wall and CPU time of the loop.
    """
    circuit = c.dss.ActiveCircuit
    loads, gens, solution = circuit.Loads, circuit.Generators, circuit.Solution
    # plain Python lists: the loop indexes them element by element
    load_rows = [(int(j), load_kw[i].tolist(), load_kvar[i].tolist()) for i, j in zip(c.load_part, c.load_idx)]
    gen_rows = ([(int(j), pv_kw[i].tolist()) for i, j in zip(c.pv_part, c.pv_idx)]
                + [(int(j), chp_kw[i].tolist()) for i, j in zip(c.chp_part, c.chp_idx)])
    n_steps = np.shape(load_kw)[1]
    vm_min, vm_max, p_loss = np.zeros(n_steps), np.zeros(n_steps), np.zeros(n_steps)
    lv = c.lv_nodes
    node_min = np.full(lv.sum(), np.inf)
    node_max = np.full(lv.sum(), -np.inf)
    started, started_cpu = time.perf_counter(), time.process_time()
    for k in range(n_steps):
        for j, kw, kvar in load_rows:
            loads.idx = j
            loads.kW = kw[k]  # kW first: its setter recomputes kvar from the power factor
            loads.kvar = kvar[k]
        for j, kw in gen_rows:
            gens.idx = j
            gens.kW = kw[k]
        solution.Solve()
        if not solution.Converged:
            raise RuntimeError(f"OpenDSS did not converge at step {k}")
        v = np.asarray(circuit.AllBusVmagPu)[lv]
        vm_min[k], vm_max[k] = v.min(), v.max()
        np.minimum(node_min, v, out=node_min)
        np.maximum(node_max, v, out=node_max)
        p_loss[k] = circuit.Losses[0] / 1000.0  # W -> kW
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    steps = pd.DataFrame({"vm_min_pu": vm_min, "vm_max_pu": vm_max, "p_loss_kw": p_loss})
    by_bus = pd.DataFrame({"vm_min_pu": node_min, "vm_max_pu": node_max}).groupby(c.node_bus)
    buses = pd.DataFrame({"vm_min_pu": by_bus["vm_min_pu"].min(), "vm_max_pu": by_bus["vm_max_pu"].max()})
    buses.index.name = "bus"
    return steps, buses, seconds, cpu_s


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
    """The comparison (``runs``: OpenDSS at its default tolerance first, the federation last) and each federate's
    start-up and work, as markdown; ``diffs``: the voltage differences of each OpenDSS run, by its tolerance."""
    federation = runs[-1]
    cell = lambda x: "" if x is None else f"{x:.2f}"  # noqa: E731
    print("| run | build / start-up (s) | loop / stepping (s) | total (s) | per grid step (ms) | CPU (s) | "
          "federation / this, wall | federation / this, CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(f"| {run.what} | {cell(run.build_s)} | {cell(run.loop_s)} | {run.wall_s:.2f} | "
              f"{1000 * run.wall_s / steps:.2f} | {run.cpu_s:.2f} | {federation.wall_s / run.wall_s:.2f} | "
              f"{federation.cpu_s / run.cpu_s:.2f} |")
    dss, one_loop = runs[0], runs[-2]
    print()
    print(f"federation / OpenDSS: {federation.wall_s / dss.wall_s:.1f}x wall (build included), "
          f"{federation.loop_s / dss.loop_s:.1f}x stepping / loop, {federation.cpu_s / dss.cpu_s:.1f}x CPU; "
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
    runs.append(Measured(f"whole federation ({fed.federates} federates + broker)", fed.wall_s,
                         sum(fed.seconds("CPU in all").values()), fed.startup_s(), float(times["stepping_s"].max())))

    n_steps = len(steps)
    print(f"# Federation vs OpenDSS computing the grid alone, {n_steps} steps of 15 min ({source.name})")
    print(f"machine: {machine()}; date {dt.date.today()}; load average {os.getloadavg()[0]:.1f} at the end; "
          f"results in {work}")
    print()
    print_tables(source.name, n_steps, fed, times, runs, diffs, kpi_diff)
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
