"""Wall time of the CHP bid training (ACO_R) of the LEM cases, against the paper's 53 min in MATLAB.

    .venv/bin/python benchmarks/aco_training.py [--scenario scenarios/ieee_eu_lv_lem_plain.yaml ...]
        [--iterations N --ants N --runs N --seed N] [--grid-solver pandapower] [--cli] [--keep DIR]
        [--json FILE]

Lezama, Faia and Vale report 53-57 minutes in MATLAB for the training of the CHP bids: 10 runs x
500 iterations x 20 ants. This script times the same training as ``lec-cosim train-bidders``
(:func:`lec_cosim.training.train_bidders`) for the scenarios' ``learning`` settings (10 x 500 x 20,
DN penalty on), by default for both LEM cases (``ieee_eu_lv_lem_plain`` and ``_bihourly``), step
by step with the same calls:

1. set-up: load the scenario; build the community (``community_from_scenario``) and its day
   (``Community.lem_day``);
2. set-up: the DN-impact surrogate (``training.dn_penalty_model``): ``LemGrid`` (the feeder with the
   61 participants) and ``LinearDnImpactModel.build`` (1 + 6 three-phase power flows per hour: 168,
   with the scenario's ``grid.solver``);
3. the ACO loop (``train_aco`` on ``BiddingProblem(day, penalty)``), with the time spent in the
   fitness evaluations, and in them in the DN penalty, measured on the side;
4. the closing evaluations and writing the bids file (as ``train_bidders`` does).

Importing pandapower (about a second) is done once before and not counted.

The learnt bids go to a temporary directory (or ``--keep DIR``), never to ``scenarios/learned/``;
the fitness is printed beside the one in the scenario's shipped bids file (same seed and settings:
the same number, unless the models changed since). ``--cli`` also times ``train_bidders`` itself
end to end (into the temporary directory), which should match the sum of the steps.
``--grid-solver`` overrides the scenarios' ``grid.solver``, the backend of the DN model's power
flows (``power-grid-model``, the default, or ``pandapower``'s ``runpp_3ph``).

The ratio to the paper compares a Python/NumPy implementation on this machine with MATLAB on the
authors' (unknown) machine: an order of magnitude, not a like-for-like comparison. The machine
(CPU model from /proc/cpuinfo, cores) is printed; other processes on it make the timings noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from host import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lec_cosim.models.bidding import BiddingProblem, train_aco  # noqa: E402
from lec_cosim.models.lem_community import community_from_scenario  # noqa: E402
from lec_cosim.scenario import ScenarioError, load_scenario  # noqa: E402
from lec_cosim.training import dn_penalty_model, save_learned_bids  # noqa: E402

PAPER_MIN = 53.0
PAPER_MAX_MIN = 57.0
DEFAULT_SCENARIOS = ("ieee_eu_lv_lem_plain.yaml", "ieee_eu_lv_lem_bihourly.yaml")


class _TimedPenalty:
    """The DN penalty with the time spent in ``penalty_batch`` counted (same results)."""

    def __init__(self, penalty):
        self.penalty = penalty
        self.seconds = 0.0
        self.calls = 0

    def penalty_batch(self, chp_kw):
        started = time.perf_counter()
        try:
            return self.penalty.penalty_batch(chp_kw)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1

    def __call__(self, result):
        return self.penalty(result)


class _TimedProblem(BiddingProblem):
    """``BiddingProblem`` with the time spent in ``evaluate`` counted (same results)."""

    def evaluate(self, x):
        started = time.perf_counter()
        try:
            return super().evaluate(x)
        finally:
            timer = self.__dict__.setdefault("_timer", [0.0, 0, 0])
            timer[0] += time.perf_counter() - started
            timer[1] += 1
            timer[2] += int(np.atleast_2d(x).shape[0])


def grid_backend(scenario) -> str:
    """The power-flow backend of the DN model (``grid.solver``; pandapower where there is no choice)."""
    return str(getattr(scenario.grid, "solver", "pandapower"))


def with_grid_solver(scenario_path: str, solver: str, work_dir: Path):
    """The scenario with ``grid.solver`` replaced (a resolved copy in ``work_dir``)."""
    scenario = load_scenario(scenario_path)
    data = json.loads(scenario.to_json())  # resolved: data paths are absolute
    if "solver" not in data.get("grid", {}):
        raise ScenarioError(f"{scenario_path}: this version has no grid.solver to choose")
    data["grid"]["solver"] = solver
    path = work_dir / f"{scenario.name}.json"  # JSON is YAML: load_scenario reads it
    path.write_text(json.dumps(data, indent=1))
    return path


def shipped_fitness(scenario):
    path = scenario.market.learned_bids_file
    try:
        payload = json.loads(Path(path).read_text())
        return float(payload["fitness"]), payload
    except (OSError, TypeError, ValueError, KeyError):
        return None, {}


def time_training(scenario_path: str, out_dir: Path, *, iterations=None, ants=None, runs=None, seed=None,
                  cli: bool = False, say=print) -> dict:
    """Train the bids of one scenario as ``train_bidders`` does, timing every step; returns the figures."""
    t = {}
    started = time.perf_counter()
    scenario = load_scenario(scenario_path)
    t["load_scenario"] = time.perf_counter() - started
    backend = grid_backend(scenario)
    cfg = scenario.learning
    iterations, ants, runs = iterations or cfg.iterations, ants or cfg.ants, runs or cfg.runs
    seed = cfg.seed if seed is None else seed
    say(f"{scenario.name}: {runs} runs x {iterations} iterations x {ants} ants, seed {seed}, "
        f"DN penalty {'on' if cfg.dn_penalty else 'off'} ({backend} power flows)")

    t0 = time.perf_counter()
    community = community_from_scenario(scenario)
    day = community.lem_day(scenario.market.tariff_scheme)
    t["community"] = time.perf_counter() - t0

    penalty, n_pf, build_s = None, 0, 0.0
    t0 = time.perf_counter()
    if cfg.dn_penalty:
        penalty = dn_penalty_model(scenario, community)
        if tuple(penalty.chp_names) != tuple(day.chp_names):
            raise RuntimeError("CHP order of the DN model differs from the day's")
        n_pf, build_s = penalty.n_power_flows, penalty.build_seconds
    dn_s = time.perf_counter() - t0
    t["lemgrid"] = dn_s - build_s  # LemGrid (feeder, participants), hourly injections
    t["dn_model_build"] = build_s
    say(f"  set-up: community {t['community']:.1f} s, LemGrid {t['lemgrid']:.1f} s, "
        f"LinearDnImpactModel.build {build_s:.1f} s ({n_pf} power flows)")

    timed_penalty = _TimedPenalty(penalty) if penalty is not None else None
    problem = _TimedProblem(day, timed_penalty)
    t0 = time.perf_counter()
    result = train_aco(problem, iterations=iterations, ants=ants, runs=runs, seed=seed)
    t["aco"] = time.perf_counter() - t0
    eval_s, eval_calls, evaluations = problem.__dict__.get("_timer", [0.0, 0, 0])
    dn_eval_s = timed_penalty.seconds if timed_penalty is not None else 0.0
    say(f"  ACO loop {t['aco']:.1f} s")

    t0 = time.perf_counter()
    target = out_dir / f"{scenario.name}_bids.json"
    _, best, truthful = save_learned_bids(target, scenario, day, penalty, result, seed=seed, iterations=iterations,
                                          ants=ants, runs=runs, started=started, aco_s=t["aco"])
    t["finish"] = time.perf_counter() - t0
    total = time.perf_counter() - started

    shipped, payload = shipped_fitness(scenario)
    same_settings = (payload.get("iterations"), payload.get("ants"), payload.get("runs"), payload.get("seed")) == (
        iterations, ants, runs, seed)
    figures = {
        "scenario": scenario.name, "grid_solver": backend, "runs": runs, "iterations": iterations, "ants": ants,
        "seed": seed,
        "dn_penalty": bool(cfg.dn_penalty), "power_flows": n_pf, "seconds": t, "total_s": total,
        "setup_s": t["load_scenario"] + t["community"] + t["lemgrid"] + t["dn_model_build"],
        "evaluate_s": eval_s, "evaluate_calls": eval_calls, "evaluations": evaluations, "dn_penalty_s": dn_eval_s,
        "fitness": result.best_fitness, "truthful_fitness": truthful["fitness"], "best_run": result.best_run,
        "shipped_fitness": shipped, "shipped_same_settings": same_settings,
        "shipped_wall_time_s": payload.get("wall_time_s"), "shipped_aco_time_s": payload.get("aco_time_s"),
        "bids_file": str(target),
    }
    if cli:
        from lec_cosim.training import train_bidders

        t0 = time.perf_counter()
        train_bidders(scenario, out_dir / f"{scenario.name}_bids_cli.json", iterations=iterations, ants=ants,
                      runs=runs, seed=seed)
        figures["train_bidders_s"] = time.perf_counter() - t0
        say(f"  train_bidders end to end {figures['train_bidders_s']:.1f} s")
    return figures


def _min(seconds: float) -> str:
    return f"{seconds / 60:.2f} min" if seconds >= 60 else f"{seconds:.1f} s"


def report(all_figures: list[dict]) -> None:
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
          f"Python {platform.python_version()}, NumPy {np.__version__}; other processes share the machine, "
          "timings are noisy")
    print(f"paper (Lezama, Faia, Vale; MATLAB): {PAPER_MIN:.0f}-{PAPER_MAX_MIN:.0f} min for 10 runs x 500 iterations "
          "x 20 ants")
    print()
    header = f"{'':34s}" + "".join(f"{f['scenario']:>26s}" for f in all_figures)
    print(header)

    def row(label, values):
        print(f"{label:34s}" + "".join(f"{v:>26s}" for v in values))

    row("DN model power flows (grid.solver)", [f["grid_solver"] for f in all_figures])
    row("runs x iterations x ants", [f"{f['runs']} x {f['iterations']} x {f['ants']}" for f in all_figures])
    row("set-up", [f"{f['setup_s']:.1f} s" for f in all_figures])
    row("  load scenario, community, day", [f"{f['seconds']['load_scenario'] + f['seconds']['community']:.1f} s"
                                            for f in all_figures])
    row("  LemGrid (feeder, participants)", [f"{f['seconds']['lemgrid']:.1f} s" for f in all_figures])
    row("  LinearDnImpactModel.build", [f"{f['seconds']['dn_model_build']:.1f} s ({f['power_flows']} PF)"
                                        for f in all_figures])
    row("ACO loop", [f"{f['seconds']['aco']:.1f} s" for f in all_figures])
    row("  in fitness evaluations", [f"{f['evaluate_s']:.1f} s" for f in all_figures])
    row("    of which DN penalty", [f"{f['dn_penalty_s']:.1f} s" for f in all_figures])
    row("  ACO_R sampling, archive", [f"{f['seconds']['aco'] - f['evaluate_s']:.1f} s" for f in all_figures])
    row("  per iteration (20 ants)", [f"{f['seconds']['aco'] / (f['runs'] * f['iterations']) * 1e3:.2f} ms"
                                      for f in all_figures])
    row("  candidate bid sets evaluated", [f"{f['evaluations']}" for f in all_figures])
    row("closing evaluations, bids file", [f"{f['seconds']['finish']:.2f} s" for f in all_figures])
    row("total (train-bidders path)", [f"{_min(f['total_s'])}" for f in all_figures])
    if any("train_bidders_s" in f for f in all_figures):
        row("train_bidders end to end (--cli)", [f"{_min(f['train_bidders_s'])}" if "train_bidders_s" in f else "-"
                                                 for f in all_figures])
    row("total / paper's 53 min", [f"{f['total_s'] / (PAPER_MIN * 60):.4f}" for f in all_figures])
    row("paper's 53 min / total", [f"{PAPER_MIN * 60 / f['total_s']:.0f} x" for f in all_figures])
    row("paper's 53 min / ACO loop", [f"{PAPER_MIN * 60 / f['seconds']['aco']:.0f} x" for f in all_figures])
    row("best fitness", [f"{f['fitness']:.4f}" for f in all_figures])
    row("  shipped bids file's fitness", [
        "-" if f["shipped_fitness"] is None else
        f"{f['shipped_fitness']:.4f}{'' if f['shipped_same_settings'] else ' (other settings)'}"
        for f in all_figures])
    row("  truthful bidding", [f"{f['truthful_fitness']:.4f}" for f in all_figures])
    row("shipped file: wall, ACO time", [
        "-" if f["shipped_wall_time_s"] is None
        else f"{f['shipped_wall_time_s']:.1f} s, {f['shipped_aco_time_s']:.1f} s"
        for f in all_figures])
    if all_figures and all_figures[0]["runs"] * all_figures[0]["iterations"] * all_figures[0]["ants"] != 10 * 500 * 20:
        print("note: not the paper's 10 x 500 x 20; the ratios compare different amounts of work")


def main(argv=None) -> int:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", default=None,
                        help="a local-market scenario (repeatable; default: the plain and bi-hourly LEM cases)")
    parser.add_argument("--iterations", type=int, help="override learning.iterations (default: the scenario's)")
    parser.add_argument("--ants", type=int, help="override learning.ants")
    parser.add_argument("--runs", type=int, help="override learning.runs")
    parser.add_argument("--seed", type=int, help="override learning.seed")
    parser.add_argument("--grid-solver", choices=["power-grid-model", "pandapower"],
                        help="override the scenarios' grid.solver (the DN model's power flows)")
    parser.add_argument("--cli", action="store_true", help="also time train_bidders end to end (trains twice)")
    parser.add_argument("--keep", metavar="DIR", help="write the learnt bids files to DIR (default: a temporary "
                                                      "directory, deleted)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args(argv)
    scenarios = args.scenario or [str(ROOT / "scenarios" / name) for name in DEFAULT_SCENARIOS]

    # Imports that the first scenario would otherwise pay alone (pandapower: ~1 s).
    t0 = time.perf_counter()
    import pandapower  # noqa: F401

    import lec_cosim.models.lem_grid  # noqa: F401
    print(f"imports (pandapower, lem_grid): {time.perf_counter() - t0:.1f} s, not counted below")

    learned = (ROOT / "scenarios" / "learned").resolve()
    out_dir = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="lec_aco_training_"))
    if out_dir == learned or learned in out_dir.parents:
        print(f"error: {out_dir}: would overwrite the shipped learned bids", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    try:
        for path in scenarios:
            try:
                if args.grid_solver:
                    work = out_dir / "scenarios"
                    work.mkdir(exist_ok=True)
                    path = with_grid_solver(path, args.grid_solver, work)
                figures.append(time_training(path, out_dir, iterations=args.iterations, ants=args.ants,
                                             runs=args.runs, seed=args.seed, cli=args.cli))
            except ScenarioError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": cpu_model(), "cores": os.cpu_count(), "paper_min": [PAPER_MIN, PAPER_MAX_MIN],
            "scenarios": figures}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
