"""The DSO's grid computation per grid step: a block of steps at once against one step at a time.

    .venv/bin/python benchmarks/grid_block.py [--scenario scenarios/ieee_eu_lv_lem_plain_week.yaml]
        [--blocks 1 4 24 96] [--repeats 3] [--reference /work/main]

Times, side by side in one run, single-threaded (BLAS on one thread, as the federates run it: the script sets
``OPENBLAS_NUM_THREADS=1`` unless it is set), over the scenario's grid steps (the week: 672) with the
community's loads and PV and CHP outputs drawn once (seeded, 0 to each unit's capacity):

1. the DSO adapter's step (``lec_cosim.adapters.ieee_feeder.IeeeFeederGrid.step``: the block's flows,
   indicators, extremes and running counts; ``LemGrid.solve_block``) with ``block_steps`` of each of
   ``--blocks``: an exchange of the local market is 4 grid steps (an hour) today, 96 (a day) soon;
2. the per-step path: ``LemGrid.set_injections``, ``LemGrid.solve`` and ``GridExtremes.add`` per grid step, what
   a caller of the one-step interface pays;
3. with ``--reference DIR``, the adapter's step of another checkout of the project (e.g. ``/work/main`` before
   the block path), in a child process with ``PYTHONPATH=DIR``; its published values must equal this tree's to
   the last digit and in type (the run exits with 1 otherwise).

Printed: a markdown table of ms per grid step in CPU time (this process's) and wall time, the best of
``--repeats`` (the reference's and this tree's repeats alternate), and each one's ratio to the per-step path
(and to the reference at the same block). The grid is loaded compiled from the cache where the checkout has
one (``lec_cosim.models.grid_cache``: one adapter is built before the timings), as a run's DSO loads it. The
scenario's grid must be the IEEE feeder (its DSO adapter); ``grid.solver: fixed-point`` is what the block path
speeds up (the other solvers go step by step inside ``solve_block``). The machine is often shared: CPU times
are steadier than wall times, and the ratios steadier than either.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported: one BLAS thread, as a federate

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHILD = "--child-output"  # the reference's run: lec_cosim from its PYTHONPATH, not from this tree
if CHILD not in sys.argv:
    sys.path.insert(0, str(ROOT))

from host import machine

from lec_cosim.adapters.ieee_feeder import INJECTIONS, OUTPUTS, IeeeFeederGrid
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario

DEFAULT_SCENARIO = ROOT / "scenarios" / "ieee_eu_lv_lem_plain_week.yaml"


class _Inputs:
    """What the federate's inputs give the adapter: each group's vector, step-major over the block."""

    def __init__(self, values: dict[str, np.ndarray]):
        self.values = values

    def read(self, port: str):
        return self.values[port]


def injections(scenario) -> tuple[list[str], dict[str, np.ndarray]]:
    """The players' names and their (player, grid step) powers: the community's loads and PV, and CHP outputs
    drawn uniformly from 0 to each unit's capacity (seed 1)."""
    community = community_from_scenario(scenario)
    rng = np.random.default_rng(1)
    chp = community.chp_kw[:, None] * rng.uniform(0.0, 1.0, community.load_kw.shape)
    return list(community.names), {"load_kw": community.load_kw, "load_kvar": community.load_kvar,
                                   "pv_kw": community.pv_kw, "chp_kw": chp}


def time_adapter(scenario, block: int, repeats: int, out_dir: str) -> tuple[float, float, dict]:
    """Best CPU and wall ms per grid step of ``IeeeFeederGrid.step`` over the scenario's grid steps in blocks of
    ``block``; and its published values (name -> every step's, as floats) with their Python types."""
    names, values = injections(scenario)
    steps = values["load_kw"].shape[1] // block * block
    exchanges = [_Inputs({f"all/{v}": values[v][:, k:k + block].T.reshape(-1) for v in INJECTIONS})
                 for k in range(0, steps, block)]
    best_cpu = best_wall = np.inf
    published: dict = {}
    for _ in range(repeats):
        adapter = IeeeFeederGrid(scenario, {"groups": {"all": names}, "block_steps": block, "output_dir": out_dir})
        adapter.step(0, 0.0, exchanges[0])  # builds the flow engine: not a step's cost
        adapter.reset()
        rows = []
        cpu, wall = time.process_time(), time.perf_counter()
        for k, inputs in enumerate(exchanges):
            rows.append(adapter.step(k, 0.0, inputs))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
        published = {name: np.concatenate([np.atleast_1d(np.asarray(r[name], dtype=float)) for r in rows])
                     for name in OUTPUTS}
        published["types"] = sorted({f"{name}:{type(r[name]).__name__}" for r in rows for name in OUTPUTS})
    return 1e3 * best_cpu / steps, 1e3 * best_wall / steps, published


def time_per_step(scenario, repeats: int) -> tuple[float, float]:
    """Best CPU and wall ms per grid step of the one-step interface: set_injections, solve, GridExtremes.add."""
    from lec_cosim.models.grid_extremes import GridExtremes

    names, values = injections(scenario)
    steps = values["load_kw"].shape[1]
    grid = IeeeFeederGrid(scenario, {"groups": {"all": names}, "block_steps": 1}).grid
    column = {name: i for i, name in enumerate(names)}
    cols = [[column[n] for n in kind] for kind in (grid.household_names, grid.household_names,
                                                   grid.prosumer_names, grid.chp_names)]
    per_step = [[values[v][c, k] for v, c in zip(INJECTIONS, cols)] for k in range(steps)]
    best_cpu = best_wall = np.inf
    for _ in range(repeats):
        extremes, violated = GridExtremes(grid), set()
        cpu, wall = time.process_time(), time.perf_counter()
        for load_kw, load_kvar, pv_kw, chp_kw in per_step:
            grid.set_injections(load_kw=load_kw, load_kvar=load_kvar, pv_kw=pv_kw, chp_kw=chp_kw)
            result = grid.solve()
            extremes.add(result)
            violated.update(result.violated_buses)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
    return 1e3 * best_cpu / steps, 1e3 * best_wall / steps


def run_reference(reference: Path, scenario_path: Path, blocks: list[int], repeats: int) -> dict:
    """The adapter's timings and values of the checkout ``reference`` (a child process on its code)."""
    with tempfile.TemporaryDirectory(prefix="lec_bench_grid_block_") as work:
        output = Path(work) / "reference.npz"
        env = {**os.environ, "PYTHONPATH": str(reference)}
        subprocess.run([sys.executable, __file__, CHILD, str(output), "--scenario", str(scenario_path),
                        "--repeats", str(repeats), "--blocks", *map(str, blocks)], env=env, check=True)
        with np.load(output, allow_pickle=False) as stored:
            found = json.loads(str(stored["meta"]))
            for block in blocks:
                found[str(block)]["values"] = {name: stored[f"{block}/{name}"] for name in OUTPUTS}
        return found


def warm_up(scenario) -> None:
    """One adapter built before the timings: the grid is then loaded compiled from the cache by every adapter
    timed (lec_cosim.models.grid_cache, where the checkout has it), as a run's DSO loads it."""
    names, _ = injections(scenario)
    IeeeFeederGrid(scenario, {"groups": {"all": names}, "block_steps": 1})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 4, 24, 96])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=Path, help="another checkout to time and compare with")
    parser.add_argument(CHILD, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    scenario_path = args.scenario.resolve()
    scenario = load_scenario(scenario_path)
    out_dir = tempfile.mkdtemp(prefix="lec_bench_grid_block_")

    warm_up(scenario)
    if args.child_output is not None:  # the reference's side: timings and values into a file
        meta, arrays = {}, {}
        for block in args.blocks:
            cpu, wall, values = time_adapter(scenario, block, args.repeats, out_dir)
            meta[str(block)] = {"cpu_ms": cpu, "wall_ms": wall, "types": values.pop("types")}
            arrays.update({f"{block}/{name}": v for name, v in values.items()})
        np.savez(args.child_output, meta=json.dumps(meta), **arrays)
        return 0

    print(f"# The DSO's grid step: blocks against one step at a time ({scenario_path.name}, "
          f"solver {scenario.grid.solver})")
    print(f"machine: {machine()}; date {dt.date.today()}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          f"best of {args.repeats}")
    print()
    # the reference and this tree alternately, one repeat each in turn: both see the machine's same moments
    reference, mine = None, {}
    for _ in range(args.repeats):
        if args.reference:
            found = run_reference(args.reference, scenario_path, args.blocks, 1)
            reference = found if reference is None else {
                block: {**found[block], "cpu_ms": min(found[block]["cpu_ms"], reference[block]["cpu_ms"]),
                        "wall_ms": min(found[block]["wall_ms"], reference[block]["wall_ms"])} for block in found}
        for block in args.blocks:
            cpu, wall, values = time_adapter(scenario, block, 1, out_dir)
            old = mine.get(block, (np.inf, np.inf, values))
            mine[block] = (min(cpu, old[0]), min(wall, old[1]), values)
    step_cpu, step_wall = time_per_step(scenario, args.repeats)
    columns = "| path | block | CPU ms / step | wall ms / step | per-step path / this (CPU) |"
    if reference:
        columns += " reference / this (CPU) |"
    print(columns)
    print("|---|---:|---:|---:|---:|" + ("---:|" if reference else ""))
    print(f"| per step: set_injections, solve, GridExtremes.add | 1 | {step_cpu:.3f} | {step_wall:.3f} | 1.00 |"
          + (" |" if reference else ""))
    identical = True
    for block in args.blocks:
        cpu, wall, values = mine[block]
        row = f"| IeeeFeederGrid.step | {block} | {cpu:.3f} | {wall:.3f} | {step_cpu / cpu:.2f} |"
        if reference:
            ref = reference[str(block)]
            same = (ref["types"] == values["types"]
                    and all(np.array_equal(ref["values"][n], values[n]) for n in OUTPUTS))
            identical &= same
            row += f" {ref['cpu_ms'] / cpu:.2f} |"
        print(row)
    if reference:
        print()
        print("| reference | block | CPU ms / step | wall ms / step |")
        print("|---|---:|---:|---:|")
        for block in args.blocks:
            ref = reference[str(block)]
            print(f"| {args.reference} IeeeFeederGrid.step | {block} | {ref['cpu_ms']:.3f} | {ref['wall_ms']:.3f} |")
        print()
        print("published values equal to the reference's, to the last digit and in type: "
              + ("yes" if identical else "NO"))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
