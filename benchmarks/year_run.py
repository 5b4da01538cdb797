"""Where the wall time of a (year-long) federation goes: LP solves, power flows, HELICS and the rest.

    .venv/bin/python benchmarks/year_run.py [--scenario scenarios/trondelag_arbitrage_year.yaml] [--days N]

1. Runs the scenario's federation exactly as ``lec-cosim run`` does (``write_federation`` and
   ``run_federation`` into a temporary directory: helics_broker plus five federate processes).
   ``--days N`` shortens the horizon to N days by writing a modified copy of the scenario first.
   A two-hour federation of the same scenario measures the fixed cost (process start-up,
   joining, writing results), so that the cost per simulated day can be extrapolated.
2. Times, in this process and with the same models, the parts that the federates compute:

   (a) ``DayAheadPlanner.plan`` (forecast and LP) for every day of the horizon, with the inputs the LEC_EMS federate
       builds (day-ahead prices on the EMS grid, perfect-foresight load and PV);
   (b) ``LECGrid.solve`` for every grid step, with the values recorded in the run's ``signals.csv``;

   and derives (c) HELICS time coordination + everything else = federation wall time - (a) - (b).
   Both (a) and (b) lie on the federation's critical path (each step's data flow is sequential:
   market -> LEC_EMS -> households -> DSO -> recorder), so the shares are shares of wall time.
3. Runs the same models in one plain loop in this process (no HELICS, no processes) and compares
   its results and its time with the federation's.

Nothing in the federates is changed or instrumented.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lec_cosim.federation import write_federation  # noqa: E402
from lec_cosim.launch import FederationError, run_federation  # noqa: E402
from lec_cosim.models.battery import Battery  # noqa: E402
from lec_cosim.models.ems import DayAheadPlanner  # noqa: E402
from lec_cosim.models.grid import LECGrid  # noqa: E402
from lec_cosim.models.household import HouseholdFleet  # noqa: E402
from lec_cosim.models.prices import PriceFeed  # noqa: E402
from lec_cosim.scenario import Scenario, ScenarioError, load_scenario  # noqa: E402
from lec_cosim.studies.community_battery.results import write_results  # noqa: E402

DAY_S = 86400
COMPARED = ["setpoint_mw", "battery_p_mw", "soc_mwh", "pcc_p_mw", "pcc_q_mvar", "pcc_vm_pu", "lv_vm_pu",
            "trafo_loading_percent", "losses_mw"]


# Scenario ----------------------------------------------------------------------------------------
def shortened(scenario: Scenario, days: float, work_dir: Path) -> Scenario:
    """A copy of the scenario with a horizon of ``days``, written to ``work_dir`` and re-validated."""
    data = json.loads(scenario.to_json())  # resolved: data paths are absolute
    data["horizon_h"] = days * 24
    data["name"] = f"{scenario.name}_{days:g}d"
    path = work_dir / f"{data['name']}.json"  # JSON is YAML: load_scenario reads it
    path.write_text(json.dumps(data, indent=2))
    return load_scenario(path)


# In-process models, as the federates use them --------------------------------------------------
def ems_days(scenario: Scenario):
    """(day_start, n_steps, prices, export prices) of every day, as the market publishes them."""
    s = scenario
    market = PriceFeed.from_scenario(s).prices(s.start, s.market_step_s, int(round(s.end_s / s.market_step_s)))
    per_day = int(DAY_S // s.market_step_s)
    for t in np.arange(0.0, s.end_s, DAY_S):
        k_market = int(round(t / s.market_step_s))
        day = market.iloc[k_market: k_market + per_day]
        n_steps = int(min(DAY_S, s.end_s - t) // s.ems_step_s)
        yield (s.start + dt.timedelta(seconds=float(t)), n_steps, day["price"].to_numpy(),
               day["export_price"].to_numpy())


def time_lp(scenario: Scenario) -> tuple[float, int, np.ndarray]:
    """Seconds spent in DayAheadPlanner.plan over the horizon, number of solves, and the set-points."""
    total, n, setpoints = 0.0, 0, []
    planner = DayAheadPlanner(scenario)
    for day in ems_days(scenario):
        start = time.perf_counter()
        schedule = planner.plan(*day)
        total += time.perf_counter() - start
        n += 1
        setpoints.append(schedule.setpoint_mw)
    return total, n, np.concatenate(setpoints)


def time_power_flows(scenario: Scenario, grid_csv: pd.DataFrame) -> tuple[float, float]:
    """Seconds spent in LECGrid.solve over the recorded steps, and the largest PCC P difference."""
    grid = LECGrid(scenario.grid)
    rows = grid_csv[["load_p_mw", "load_q_mvar", "pv_p_mw", "battery_p_mw"]].to_numpy()
    pcc = np.empty(len(rows))
    start = time.perf_counter()
    for i, (load_p, load_q, pv_p, battery_p) in enumerate(rows):
        pcc[i] = grid.solve(load_p, load_q, pv_p, battery_p).pcc_p_mw
    total = time.perf_counter() - start
    return total, float(np.max(np.abs(pcc - grid_csv["pcc_p_mw"].to_numpy()))) if len(rows) else 0.0


def monolithic(scenario: Scenario, out_dir: Path) -> tuple[float, dict, pd.DataFrame]:
    """All models in one loop, no HELICS: returns wall time (models built, results written),
    the time inside the LP and the power flows, and the grid table."""
    s = scenario
    started = time.perf_counter()
    inside = {"lp": 0.0, "pf": 0.0}
    n_grid = int(round(s.end_s / s.grid_step_s))
    per_ems = s.ems_step_s // s.grid_step_s
    per_market = s.market_step_s // s.grid_step_s
    prices = PriceFeed.from_scenario(s).prices(s.start, s.market_step_s, int(round(s.end_s / s.market_step_s)))
    power = HouseholdFleet.from_scenario(s).power(s.start, s.grid_step_s, n_grid)
    b = s.battery
    battery = Battery(b.capacity_mwh, b.power_mw, b.efficiency, soc_mwh=b.soc_initial * b.capacity_mwh)
    grid = LECGrid(s.grid)
    step_h = s.grid_step_s / 3600.0
    records = {name: [] for name in ["time", "price", "export_price", "setpoint_mw", "planned_soc_mwh",
                                      "load_p_mw", "load_q_mvar", "pv_p_mw", "battery_p_mw", "soc_mwh",
                                      "pcc_p_mw", "pcc_q_mvar", "pcc_vm_pu", "lv_vm_pu",
                                      "trafo_loading_percent", "losses_mw", "losses_mvar", "vm_min_pu",
                                      "vm_max_pu", "bus_violations", "line_overloads"]}
    load_p, load_q, pv_p = (power[c].to_numpy() for c in ("load_p_mw", "load_q_mvar", "pv_p_mw"))
    price, export_price = prices["price"].to_numpy(), prices["export_price"].to_numpy()
    days = ems_days(s)
    planner = DayAheadPlanner(s)
    plan_setpoint = plan_soc = None
    first_ems = 0
    for k in range(n_grid):
        t = k * s.grid_step_s
        if t % DAY_S == 0:
            day = next(days)
            t0 = time.perf_counter()
            schedule = planner.plan(*day)
            inside["lp"] += time.perf_counter() - t0
            plan_setpoint, plan_soc = schedule.setpoint_mw, schedule.table["soc_mwh"].to_numpy()
            first_ems = k // per_ems
        i = k // per_ems - first_ems
        setpoint = float(plan_setpoint[i])
        p_battery = battery.step(setpoint, step_h)
        t0 = time.perf_counter()
        result = grid.solve(load_p[k], load_q[k], pv_p[k], p_battery)
        inside["pf"] += time.perf_counter() - t0
        m = k // per_market
        for name, value in (
            ("time", (s.start + dt.timedelta(seconds=t)).isoformat()), ("price", price[m]),
            ("export_price", export_price[m]), ("setpoint_mw", setpoint), ("planned_soc_mwh", plan_soc[i]),
            ("load_p_mw", load_p[k]), ("load_q_mvar", load_q[k]), ("pv_p_mw", pv_p[k]),
            ("battery_p_mw", p_battery), ("soc_mwh", battery.soc_mwh), ("pcc_p_mw", result.pcc_p_mw),
            ("pcc_q_mvar", result.pcc_q_mvar), ("pcc_vm_pu", result.pcc_vm_pu), ("lv_vm_pu", result.lv_vm_pu),
            ("trafo_loading_percent", result.trafo_loading_percent), ("losses_mw", result.losses_mw),
            ("losses_mvar", result.losses_mvar), ("vm_min_pu", result.vm_min_pu),
            ("vm_max_pu", result.vm_max_pu), ("bus_violations", result.bus_violations),
            ("line_overloads", result.line_overloads),
        ):
            records[name].append(value)
    table = pd.DataFrame(records)
    write_results(table, s, out_dir, wall_time_s=time.perf_counter() - started)
    return time.perf_counter() - started, inside, table


def run_cli_path(scenario: Scenario, run_dir: Path, timeout_s, show) -> float:
    """What `lec-cosim run` does after loading the scenario: write the federation, run it."""
    run_dir.mkdir(parents=True)
    write_federation(scenario, run_dir)
    return run_federation(run_dir, timeout_s=timeout_s, on_progress=show)


# Report ------------------------------------------------------------------------------------------
def share(part: float, whole: float) -> str:
    return f"{part:9.2f} s  {100.0 * part / whole:5.1f} %" if whole > 0 else f"{part:9.2f} s"


def main(argv=None) -> int:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "trondelag_arbitrage_year.yaml"))
    parser.add_argument("--days", type=float, default=None, help="shorten the horizon to this many days")
    parser.add_argument("--timeout", type=float, default=None, help="give the federation up after this many seconds")
    parser.add_argument("--keep", metavar="DIR", default=None, help="keep the run's files in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the figures to FILE")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the two-hour federation that measures the fixed start-up cost")
    args = parser.parse_args(argv)

    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="lec_year_run_"))
    if args.keep and work.exists() and any(work.iterdir()):
        print(f"error: {work}: exists and is not empty", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    try:
        try:
            scenario = load_scenario(args.scenario)
            if args.days is not None:
                scenario = shortened(scenario, args.days, work)
        except ScenarioError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        days = scenario.horizon_h / 24.0
        n_grid = int(round(scenario.end_s / scenario.grid_step_s))
        print(f"scenario {scenario.name}: {days:g} days from {scenario.start.isoformat()}, "
              f"{n_grid} grid steps of {scenario.resolution.grid_min} min, EMS solver {scenario.ems.solver}",
              flush=True)

        # 1. The federation, as `lec-cosim run` starts it; and a two-hour one for the fixed cost
        #    (process start-up, joining, writing results) that does not grow with the horizon.
        run_dir = work / "federation"
        show = None if args.quiet else (lambda line: print(f"  {line}", file=sys.stderr, flush=True))
        try:
            wall = run_cli_path(scenario, run_dir, args.timeout, show)
            print(f"federation finished in {wall:.1f} s", flush=True)
            fixed_s = None
            if not args.no_baseline:
                two_hours = shortened(scenario, 2 / 24, work)  # one hour trips the EMS (one price)
                fixed_s = run_cli_path(two_hours, work / "federation_2h", args.timeout, None)
                print(f"two-hour federation (fixed cost) finished in {fixed_s:.1f} s", flush=True)
        except FederationError as exc:
            print(f"error: the federation failed: {exc}", file=sys.stderr)
            return 1
        recorded = pd.read_csv(run_dir / "signals.csv")

        # 2. The federates' computations, timed in this process.
        lp_s, n_lp, lp_setpoints = time_lp(scenario)
        pf_s, pf_diff = time_power_flows(scenario, recorded)
        helics_other_s = wall - lp_s - pf_s

        # 3. The same models in one loop.
        mono_s, mono_inside, mono_table = monolithic(scenario, work / "monolithic")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    per_ems = scenario.ems_step_s // scenario.grid_step_s
    fed_setpoints = recorded["setpoint_mw"].to_numpy()[::per_ems]
    lp_diff = float(np.max(np.abs(fed_setpoints - lp_setpoints))) if len(lp_setpoints) == len(fed_setpoints) else float("nan")
    mono_diff = {c: float(np.max(np.abs(mono_table[c].to_numpy() - recorded[c].to_numpy()))) for c in COMPARED}

    print()
    print(f"Federation ({days:g} simulated days, {n_grid} grid steps, {n_lp} LP solves; "
          f"machine: {_cpus()} CPUs)")
    print(f"  wall time                          {wall:9.2f} s")
    print(f"  per simulated day                  {wall / days:9.3f} s")
    print(f"  per grid step                      {wall / n_grid * 1e3:9.3f} ms")
    if fixed_s is not None:
        marginal_day = (wall - fixed_s) / (days - 2 / 24) if days > 2 / 24 else float("nan")
        print(f"  fixed cost (a two-hour federation) {fixed_s:9.2f} s   (start-up, joining, writing results)")
        print(f"  per simulated day beyond that      {marginal_day:9.3f} s   (a year: "
              f"{(fixed_s + marginal_day * (365 - 2 / 24)) / 60:.1f} min by extrapolation)")
    print("Shares of the federation's wall time")
    print(f"  (a) LP solves (DayAheadPlanner)   {share(lp_s, wall)}   {lp_s / max(n_lp, 1) * 1e3:.1f} ms per solve, "
          f"measured in-process")
    print(f"  (b) power flows (LECGrid.solve)    {share(pf_s, wall)}   {pf_s / max(n_grid, 1) * 1e3:.3f} ms per call, "
          f"measured in-process on signals.csv's inputs")
    print(f"  (c) HELICS coordination + other    {share(helics_other_s, wall)}   derived: wall - (a) - (b); "
          f"includes process start-up,")
    print("                                                          data playback, battery, recording "
          "and writing results")
    if fixed_s is not None:
        print(f"      of which the fixed cost          {share(fixed_s, wall)}   (the two-hour federation)")
        rest_ms = (helics_other_s - fixed_s) / n_grid * 1e3
        note = "" if rest_ms >= 0 else "   (negative: within the noise of the in-process timings)"
        print(f"      the rest, per grid step          {rest_ms:9.3f} ms{note}")
    print("Monolithic loop (same models in one process, no HELICS; models built and results written)")
    print(f"  wall time                          {mono_s:9.2f} s   ({mono_s / days:.3f} s per simulated day)")
    print(f"    of which LP solves               {share(mono_inside['lp'], mono_s)}")
    print(f"    of which power flows             {share(mono_inside['pf'], mono_s)}")
    print(f"    of which other models, recording {share(mono_s - mono_inside['lp'] - mono_inside['pf'], mono_s)}")
    print(f"  federation / monolithic            {wall / mono_s:9.2f} x   (difference {wall - mono_s:.1f} s, "
          f"{(wall - mono_s) / n_grid * 1e3:.2f} ms per grid step)")
    print("Consistency checks (in-process models vs the federation's signals.csv)")
    print(f"  LP set-points: max |diff| {lp_diff:.1e} MW; power flows on recorded inputs: max |PCC P diff| "
          f"{pf_diff:.1e} MW")
    print("  monolithic loop: max |diff| " + ", ".join(f"{c} {v:.1e}" for c, v in mono_diff.items()))

    if args.json:
        Path(args.json).write_text(json.dumps({
            "scenario": scenario.name, "days": days, "grid_steps": n_grid, "lp_solves": n_lp,
            "federation_wall_s": wall, "fixed_cost_s": fixed_s, "per_day_s": wall / days,
            "lp_s": lp_s, "power_flow_s": pf_s, "helics_and_other_s": helics_other_s,
            "monolithic_s": mono_s, "monolithic_lp_s": mono_inside["lp"], "monolithic_pf_s": mono_inside["pf"],
            "federation_over_monolithic": wall / mono_s, "lp_setpoint_diff_mw": lp_diff,
            "power_flow_diff_mw": pf_diff, "monolithic_diff": mono_diff,
        }, indent=2))
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
