"""Wall time of the three-LEC federation over a long horizon (a year by default), under each framework.

    .venv/bin/python benchmarks/three_lecs_year.py [--scenario scenarios/ieee_eu_lv_three_lecs.yaml] \
        [--hours 8784] [--start 2016-01-01] [--frameworks decentralised distributed p2p] [--dso-limits] [--keep DIR]

For each framework it runs the scenario (by default ``scenarios/ieee_eu_lv_three_lecs.yaml``; any three-LEC
scenario on the IEEE feeder, e.g. ``ieee_eu_lv_three_lecs_diverse.yaml``) with ``horizon_h`` and ``start`` changed
(nothing else) exactly as a user does: ``lec-cosim run SCENARIO --framework F`` in a subprocess (a
``helics_broker`` and one process per federate). It prints, per framework, the federation's wall time (the
command's, start-up and writing results included), the time per simulated day, and the run's headline KPIs
from its ``summary.json``.

Side by side, in this process and the same run, the anchor: the DSO's three-phase power flows alone
(``lec_cosim.adapters.three_lec_grid.dso_grid``: the DSO's own grid model and solver) over every grid
step of the horizon, with the members' load and PV (no batteries): what the grid computation costs without any
federation, EMS or market. The ratio federation / grid alone says what everything else costs on top.

Figures on a 2-core machine are in ``docs/speed.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "scenarios" / "ieee_eu_lv_three_lecs.yaml"
FRAMEWORKS = ("decentralised", "distributed", "p2p")


def long_scenario(scenario: Path, hours: int, start: str, work: Path) -> Path:
    """A three-LEC scenario with only ``horizon_h`` and ``start`` changed, its data paths made absolute."""
    data = yaml.safe_load(scenario.read_text())
    data.update({"horizon_h": hours, "start": f"{start}T00:00:00", "name": f"{data['name']}_long"})
    data["feeder"]["data_dir"] = str((scenario.parent / data["feeder"]["data_dir"]).resolve())
    data["pv"]["profile_file"] = str((scenario.parent / data["pv"]["profile_file"]).resolve())
    path = work / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_framework(path: Path, framework: str, out: Path, dso_limits: bool, timeout_s: float) -> tuple[float, dict]:
    command = [str(ROOT / ".venv" / "bin" / "lec-cosim"), "run", str(path), "--framework", framework, "--out",
               str(out), "--force", "--quiet", "--timeout", str(timeout_s),
               "--dso-limits" if dso_limits else "--no-dso-limits"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RunFailed(f"{framework}: lec-cosim run failed ({done.returncode}) after {wall:.1f} s: "
                        f"{done.stderr.strip()[-2000:]}")
    return wall, json.loads((out / "summary.json").read_text())


class RunFailed(RuntimeError):
    """A framework's run failed: reported, and the next framework still runs."""


def grid_alone_s(path: Path) -> tuple[float, int]:
    """The DSO's power flows alone over every grid step of the scenario's horizon (members' load and PV)."""
    from lec_cosim.adapters.three_lec_grid import dso_grid
    from lec_cosim.models.multi_lec_ems import members_from_scenario
    from lec_cosim.scenario import load_scenario

    scenario = load_scenario(path)
    members = members_from_scenario(scenario)
    grid = dso_grid(scenario, members)  # as the DSO's adapter builds it
    started = time.perf_counter()
    for step in range(members.n_steps):
        grid.solve_step(step)
    return time.perf_counter() - started, members.n_steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO, help="a three-LEC scenario on the IEEE feeder")
    parser.add_argument("--hours", type=int, default=8784, help="horizon, h (default 8784: all of 2016)")
    parser.add_argument("--start", default="2016-01-01", help="first day (2016)")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--dso-limits", action="store_true", help="with the DSO's limits (dso.limits)")
    parser.add_argument("--timeout", type=float, default=7200.0, help="give up a run after this many seconds")
    parser.add_argument("--keep", type=Path, help="keep the runs' results in this directory")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="three_lecs_year_"))
    keep = args.keep or work
    path = long_scenario(args.scenario.resolve(), args.hours, args.start, work)
    days = args.hours / 24
    print(f"{args.scenario.name}, {args.hours} h ({days:g} days) from {args.start}, DSO limits "
          f"{'on' if args.dso_limits else 'off'}; results in {keep}", flush=True)
    grid_s, steps = grid_alone_s(path)
    print(f"anchor: the DSO's power flows alone, {steps} steps: {grid_s:.1f} s ({1e3 * grid_s / steps:.2f} ms a step)",
          flush=True)
    print(f"{'framework':14s} {'wall s':>8s} {'s/day':>6s} {'x grid':>7s} {'cost EUR':>10s} {'self-suff':>9s} "
          f"{'exchanged kWh':>13s} {'bus viol':>8s} {'line ovl':>8s} {'iterations':>10s}")
    failed = []
    for framework in args.frameworks:
        try:
            wall, summary = run_framework(path, framework, keep / framework, args.dso_limits, args.timeout)
        except RunFailed as exc:  # the frameworks after it still run (a year each: too long to lose)
            print(exc, flush=True)
            failed.append(framework)
            continue
        k = summary["kpis"]
        print(f"{framework:14s} {wall:8.1f} {wall / days:6.2f} {wall / grid_s:7.2f} {k['total_cost_eur']:10.2f} "
              f"{100 * k['self_sufficiency']:8.1f}% {k['exchanged_kwh']:13.1f} {k['bus_violations']:8d} "
              f"{k['line_overloads']:8d} {k['iterations_total'] or '-':>10}", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
