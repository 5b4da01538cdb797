"""Eight runs of different scenarios at once on one machine: no port clashes, all finish.

    .venv/bin/python benchmarks/parallel_runs.py [--runs 8]

Starts ``lec-cosim run`` for eight scenarios together (the shipped 24 h scenarios of all three
kinds, the local-market ones at hourly grid steps so that eight fit on two cores), waits for all,
and prints each run's wall time, its broker port and the wall time of all of them; it fails if a
run fails or two runs shared a port. ``tests/test_parallel_runs.py`` does the same with four.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time

from host import machine
from lem_common import ROOT, temporary_dir

from lec_cosim.scenario import write_scenario_variant

SCENARIOS = [
    ("trondelag_arbitrage", {}),
    ("trondelag_self_consumption", {}),
    ("ieee_eu_lv_lem_plain", {"resolution.grid_min": 60}),
    ("ieee_eu_lv_lem_bihourly", {"resolution.grid_min": 60}),
    ("ieee_eu_lv_base_plain", {"resolution.grid_min": 60}),
    ("ieee_eu_lv_base_bihourly", {"resolution.grid_min": 60}),
    ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60}),
    ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60, "framework": "p2p", "name": "three_lecs_p2p"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=len(SCENARIOS), choices=range(1, len(SCENARIOS) + 1))
    args = parser.parse_args()
    work = temporary_dir("lec_bench_parallel_")
    started = time.perf_counter()
    procs = {}
    for name, changes in SCENARIOS[:args.runs]:
        changes = dict(changes)
        label = changes.pop("name", name)
        path = write_scenario_variant(ROOT / "scenarios" / f"{name}.yaml", changes, work / "scenarios", label)
        procs[label] = (time.perf_counter(), subprocess.Popen(
            [sys.executable, "-m", "lec_cosim", "run", str(path), "--out", str(work / label), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    print(f"# {len(procs)} runs at once; machine: {machine()}; date {dt.date.today()}; results in {work}")
    print()
    print("| run | wall time (s) | broker port | result |")
    print("|---|---:|---:|---|")
    ports, failed = [], []
    for label, (start, proc) in procs.items():
        output = proc.communicate()[0]
        wall = time.perf_counter() - start
        runner = work / label / "runner.json"
        port = ""
        if runner.is_file():
            broker = json.loads(runner.read_text())["federates"][0]["exec"]
            port = next(p for p in broker.split() if p.startswith("--port=")).split("=")[1]
            ports.append(port)
        ok = proc.returncode == 0
        if not ok:
            failed.append(f"{label}: {output.strip().splitlines()[-1] if output.strip() else proc.returncode}")
        print(f"| {label} | {wall:.1f} | {port} | {'ok' if ok else 'FAILED'} |", flush=True)
    print()
    print(f"all {len(procs)} done in {time.perf_counter() - started:.1f} s; distinct broker ports: {len(set(ports))}")
    if failed or len(set(ports)) != len(ports):
        raise SystemExit("; ".join(failed) or "two runs shared a broker port")


if __name__ == "__main__":
    main()
