"""Learning-environment speed on the local market: steps per second and reset time, beside its anchors.

    .venv/bin/python benchmarks/env_throughput.py [--episodes 4] [--grid-min 15 60] [--envs 1 2] [--rounds 1]

One env step is one market hour of Case 1 with its six CHPs as agents (``scenarios/ieee_eu_lv_chp_agents.yaml``,
LecParallelEnv, random offers): the market clears, the participants settle, the DSO solves the hour's
three-phase power flows of the IEEE European LV feeder (four at 15-min grid steps, one at hourly). The
environment is long-lived (one federation, episodes on three days) and in-process. ``--envs 2`` runs two
environments side by side in two processes, as a vectorised trainer does (stable-baselines3's
SubprocVecEnv), and counts their steps together. Every configuration runs twice, side by side: each
environment's process free to use any CPU, and pinned to a CPU of its own (``LecParallelEnv(..., cpu=...)``,
environment e on the e-th CPU this process may use; Linux only).

Side by side in the same run, the anchors: Case 1's day (a message per player, the shipped scenario's
setting; the agents' scenario sends one per group) as a normal run (``lec-cosim run``, a broker and a
process per federate), in-process (lec_cosim.inproc, no agent), and its models in one Python loop, no
HELICS, writing the same results files (benchmarks/lem_common.run_monolithic; per hour: a five-day loop
minus a one-day loop, so that its set-up does not count). Prints absolute times and ratios; the issue's
targets are 200 steps/s on 2 cores and a reset under 50 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from host import machine
from lem_common import ROOT, run_monolithic, temporary_dir

from lec_cosim.scenario import load_scenario, write_scenario_variant

DAYS = ["2016-05-26", "2016-05-27", "2016-05-28"]
LOOP_DAYS = 5
"""The models in one loop: their cost per hour is a run of this many days minus a run of one (set-up excluded;
with two days the difference was lost in the noise of a shared machine)."""


def play(path: str, work_dir: str, episodes: int, seed: int, start, results, cpu: int | None) -> None:
    """One environment's episodes (random offers); its first reset builds the federation before ``start``
    (a barrier shared with the other environments) so that only stepping and resets are timed together.
    ``cpu``: the environment's process pinned to that CPU (LecParallelEnv's ``cpu``), or free."""
    from lec_cosim.env import LecParallelEnv

    env = LecParallelEnv(path, work_dir=work_dir, days=DAYS, cpu=cpu)
    rng = np.random.default_rng(seed)
    try:
        t0 = time.perf_counter()
        env.reset(seed=seed)
        first_reset_s = time.perf_counter() - t0
        start.wait(timeout=300)  # a sibling that died before it would leave this one waiting for ever
        began = time.perf_counter()
        resets, per_step, steps = [], [], 0
        for episode in range(episodes):
            if episode:
                t0 = time.perf_counter()
                env.reset(seed=seed + episode)
                resets.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hours = 0
            while env.agents:
                spaces = {a: env.action_space(a) for a in env.agents}
                env.step({a: rng.uniform(s.low, s.high).astype(s.dtype) for a, s in spaces.items()})
                hours += 1
            per_step.append((time.perf_counter() - t0) / hours)
            steps += hours
        results.put({"first_reset_s": first_reset_s, "resets_s": resets, "per_step_s": per_step, "steps": steps,
                     "began": began, "ended": time.perf_counter()})
    finally:
        env.close()


def measure(path: Path, tmp: Path, envs: int, episodes: int, pinned: bool) -> dict:
    """``envs`` environments at once, each in its own process (``pinned``: environment e on CPU e modulo the CPUs);
    steps/s of all together."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(envs), context.Queue()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []  # pinning: Linux only
    if pinned and not cpus:
        raise SystemExit("pinned environments need Linux (os.sched_getaffinity)")
    workers = [context.Process(target=play, args=(str(path), str(tmp / f"env{e}"), episodes, 100 * e, start,
                                                  results, cpus[e % len(cpus)] if pinned else None))
               for e in range(envs)]
    for w in workers:
        w.daemon = True  # a worker left behind by a failure does not hold the benchmark at exit
        w.start()
    got = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    wall = max(g["ended"] for g in got) - min(g["began"] for g in got)
    return {"steps_per_s": sum(g["steps"] for g in got) / wall,
            "step_ms": 1e3 * float(np.median([s for g in got for s in g["per_step_s"]])),
            "reset_ms": 1e3 * float(np.median([r for g in got for r in g["resets_s"]] or [np.nan])),
            "first_reset_s": float(np.median([g["first_reset_s"] for g in got]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="episodes per environment")
    parser.add_argument("--grid-min", type=int, nargs="+", default=[15, 60], choices=(15, 30, 60))
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2], help="environments side by side")
    parser.add_argument("--rounds", type=int, default=1, help="measure every configuration this many times, "
                        "interleaved (a shared machine's speed drifts)")
    args = parser.parse_args()
    print(machine())
    from lec_cosim.inproc import run_inproc

    tmp = temporary_dir("lec_cosim_env_bench_")
    rows = []
    try:
        for grid_min in args.grid_min:
            agents = write_scenario_variant(ROOT / "scenarios" / "ieee_eu_lv_chp_agents.yaml",
                                            {"resolution.grid_min": grid_min}, tmp / f"a{grid_min}")
            plain = write_scenario_variant(ROOT / "scenarios" / "ieee_eu_lv_lem_plain.yaml",
                                           {"resolution.grid_min": grid_min}, tmp / f"p{grid_min}")
            plain2 = write_scenario_variant(ROOT / "scenarios" / "ieee_eu_lv_lem_plain.yaml",
                                            {"resolution.grid_min": grid_min, "horizon_h": 24 * LOOP_DAYS},
                                            tmp / f"q{grid_min}")
            hours = int(load_scenario(agents).horizon_h)
            for _ in range(args.rounds):
                for envs in args.envs:
                    for pinned in (False, True):  # side by side: each environment's process free, or on its own CPU
                        m = measure(agents, tmp / f"env_{grid_min}_{envs}_{pinned}_{len(rows)}", envs, args.episodes,
                                    pinned)
                        rows.append((grid_min, envs, pinned, m))
                        print(f"grid {grid_min} min, {envs} env(s), {'pinned' if pinned else 'free'}: "
                              f"{m['steps_per_s']:.0f} steps/s together; one step {m['step_ms']:.1f} ms (median), "
                              f"reset {m['reset_ms']:.2f} ms (median; the first, building the federation: "
                              f"{m['first_reset_s']:.2f} s)", flush=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lec_cosim", "run", str(plain), "--out",
                            str(tmp / f"proc{grid_min}"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
            process_s = time.perf_counter() - t0
            inproc_s = run_inproc(load_scenario(plain), tmp / f"inproc{grid_min}")
            loop_1, _ = run_monolithic(Path(plain), tmp / f"loop{grid_min}")
            loop_2, _ = run_monolithic(Path(plain2), tmp / f"loop2_{grid_min}")
            loop_ms = 1e3 * (loop_2 - loop_1) / (24 * (LOOP_DAYS - 1))
            one = next(m for g, e, p, m in rows if g == grid_min and e == min(args.envs) and not p)
            print(f"grid {grid_min} min, per market hour: normal run of the day (processes, start-up included) "
                  f"{1e3 * process_s / hours:.1f} ms, in-process {1e3 * inproc_s / hours:.1f} ms; the models in "
                  f"one loop {loop_ms:.1f} ms; env step / models in one loop {one['step_ms'] / loop_ms:.2f}",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| grid step | environments | processes | steps/s (all) | step (median) | reset (median) |")
    print("|---|---|---|---|---|---|")
    for grid_min, envs, pinned, m in rows:
        print(f"| {grid_min} min | {envs} | {'pinned' if pinned else 'free'} | {m['steps_per_s']:.0f} | "
              f"{m['step_ms']:.1f} ms | {m['reset_ms']:.2f} ms |")


if __name__ == "__main__":
    main()
