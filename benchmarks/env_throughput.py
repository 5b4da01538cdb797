"""Learning-environment speed on the local market: steps per second and reset time, beside its anchors.

    .venv/bin/python benchmarks/env_throughput.py [--episodes 3] [--grid-min 15]

One env step is one market hour of Case 1 with its six CHPs as agents (``scenarios/ieee_eu_lv_chp_agents.yaml``,
LecParallelEnv, random offers): the market clears, the participants settle, the DSO solves the hour's
three-phase power flows of the IEEE European LV feeder. Side by side in the same run: the same day as a normal
run (``lec-cosim run``, a broker and a process per federate) and in-process (lec_cosim.inproc, no agent),
per market hour. The environment is long-lived (one federation, episodes on three days). Prints absolute
times and ratios; the issue's targets are 200 steps/s and a reset under 50 ms.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

import numpy as np
from host import machine
from lem_common import ROOT, temporary_dir

from lec_cosim.scenario import load_scenario, write_scenario_variant

DAYS = ["2016-05-26", "2016-05-27", "2016-05-28"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--grid-min", type=int, default=15, choices=(15, 30, 60))
    args = parser.parse_args()
    print(machine())
    from lec_cosim.env import LecParallelEnv
    from lec_cosim.inproc import run_inproc

    tmp = temporary_dir("lec_cosim_env_bench_")
    try:
        agents = load_scenario(write_scenario_variant(ROOT / "scenarios" / "ieee_eu_lv_chp_agents.yaml",
                                                      {"resolution.grid_min": args.grid_min}, tmp / "a"))
        plain_path = write_scenario_variant(ROOT / "scenarios" / "ieee_eu_lv_lem_plain.yaml",
                                            {"resolution.grid_min": args.grid_min}, tmp / "p")
        hours = int(agents.horizon_h)
        env = LecParallelEnv(agents, work_dir=tmp / "env", days=DAYS)  # long-lived: one federation for all
        resets, stepping = [], []
        try:
            for episode in range(args.episodes):
                t0 = time.perf_counter()
                env.reset(seed=episode)  # the first builds the federation
                resets.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for _ in range(hours):
                    env.step({a: env.action_space(a).sample() for a in env.agents})
                stepping.append((time.perf_counter() - t0) / hours)
        finally:
            env.close()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lec_cosim.cli", "run", str(plain_path), "--out", str(tmp / "proc"),
                        "--quiet"], check=True)
        process_s = time.perf_counter() - t0
        inproc_s = run_inproc(load_scenario(plain_path), tmp / "inproc")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    step_ms = 1e3 * float(np.median(stepping[1:] or stepping))
    print(f"env step (one market hour, grid every {args.grid_min} min): median {step_ms:.1f} ms = "
          f"{1e3 / step_ms:.0f} steps/s (target 200)")
    print(f"env reset (long-lived): first {resets[0]:.2f} s (imports, the federation of {len(DAYS)} days built), "
          f"then median {1e3 * float(np.median(resets[1:] or resets)):.2f} ms (target 50 ms)")
    print(f"normal run of the day (processes): {process_s:.1f} s = {1e3 * process_s / hours:.0f} ms per market hour "
          f"with start-up; in-process: {inproc_s:.1f} s = {1e3 * inproc_s / hours:.0f} ms per hour")
    print(f"ratios: env step / in-process hour {step_ms / (1e3 * inproc_s / hours):.2f}; "
          f"process run / in-process run {process_s / inproc_s:.2f}")


if __name__ == "__main__":
    main()
