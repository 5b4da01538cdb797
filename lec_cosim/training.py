"""``lec-cosim train-bidders``: learn the CHPs' bids of a local-market scenario, in one process.

The learner plays the same models as the federation (the community's hourly energies, the pool's
clearing rules, the settlement), not thousands of federation runs: ACO_R
(:func:`lec_cosim.models.bidding.train_aco`) against the paper's fitness, with the DN-impact
penalty from :class:`lec_cosim.models.lem_grid.LinearDnImpactModel` (linearised three-phase power
flows of the feeder, built once per day) when ``learning.dn_penalty`` is on. The result, with its
fitness history, goes to the scenario's ``market.learned_bids_file``; the federation then plays it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


from lec_cosim.models.bidding import BiddingProblem, day_profit, fitness_components, train_aco
from lec_cosim.models.lem_community import Community, community_from_scenario, write_learned_bids


def dn_penalty_model(scenario, community: Community):
    """The linearised DN-impact model of the scenario's day (hourly, the market's resolution)."""
    from lec_cosim.models.feeder_source import feeder_of
    from lec_cosim.models.lem_grid import HourlyInjections, LemGrid, LinearDnImpactModel

    g = scenario.grid
    grid = LemGrid(feeder_of(scenario), table=community.table, data_dir=scenario.feeder.data_dir,
                   vm_min_pu=g.vm_min_pu, vm_max_pu=g.vm_max_pu, max_loading_percent=g.max_loading_percent,
                   va_max_deviation_degree=g.va_max_deviation_degree, violation_model=g.dn_impact_counts,
                   step_h=1.0, solver=g.solver, source_strength=getattr(scenario.feeder, "source_strength", 1.0))
    return LinearDnImpactModel.build(grid, HourlyInjections.from_community(community))


def save_learned_bids(target: Path, scenario, day, penalty, result, *, seed: int, iterations: int, ants: int,
                      runs: int, started: float, aco_s: float) -> tuple[dict, dict, dict]:
    """Write a training's best bids with their fitness, the truthful bids' and the history to ``target``.

    ``started`` is the :func:`time.perf_counter` at the training's start, ``aco_s`` the seconds in
    ACO. Returns the bids by CHP and the fitness components of the best and of the truthful bids.
    """
    best = fitness_components(day_profit(day, result.best_bids_eur_per_kwh), penalty)
    truthful = fitness_components(day_profit(day, day.truthful_bids()), penalty)
    bids = {name: result.best_bids_eur_per_kwh[i] for i, name in enumerate(day.chp_names)}
    write_learned_bids(
        target, scenario.name, bids,
        strategy="aco", seed=seed, iterations=iterations, ants=ants, runs=runs,
        dn_penalty=scenario.learning.dn_penalty,
        fitness=result.best_fitness, components=best, truthful_components=truthful,
        best_run=result.best_run, run_fitness=[float(f) for f in result.run_fitness],
        history_best_so_far=[[float(v) for v in row] for row in result.history],
        wall_time_s=time.perf_counter() - started, aco_time_s=aco_s,
    )
    return bids, best, truthful


def train_bidders(scenario, target: Path, *, iterations: int | None = None, ants: int | None = None,
                  runs: int | None = None, seed: int | None = None,
                  on_progress: Callable[[str], None] | None = None) -> str:
    """Learn and save the CHP bids of ``scenario``; returns a short report.

    Overrides (``iterations`` ...) replace the scenario's ``learning`` settings; they are
    recorded in the saved file.
    """
    say = on_progress or (lambda line: None)
    cfg = scenario.learning
    iterations = iterations or cfg.iterations
    ants = ants or cfg.ants
    runs = runs or cfg.runs
    seed = cfg.seed if seed is None else seed
    started = time.perf_counter()
    community = community_from_scenario(scenario)
    day = community.lem_day(scenario.market.tariff_scheme)
    penalty = None
    if cfg.dn_penalty:
        say("building the DN-impact model (three-phase power flows of every hour)")
        penalty = dn_penalty_model(scenario, community)
        if tuple(penalty.chp_names) != tuple(day.chp_names):
            raise RuntimeError("CHP order of the DN model differs from the day's")
        say(f"DN-impact model: {penalty.n_power_flows} power flows in {penalty.build_seconds:.1f} s")
    problem = BiddingProblem(day, penalty)
    say(f"ACO: {runs} runs x {iterations} iterations x {ants} ants, seed {seed}")
    t0 = time.perf_counter()
    result = train_aco(problem, iterations=iterations, ants=ants, runs=runs, seed=seed)
    aco_s = time.perf_counter() - t0
    bids, best, truthful = save_learned_bids(target, scenario, day, penalty, result, seed=seed, iterations=iterations,
                                             ants=ants, runs=runs, started=started, aco_s=aco_s)
    return (f"learned bids of {len(bids)} CHPs for {scenario.name}: fitness {result.best_fitness:.4f} "
            f"(truthful {truthful['fitness']:.4f}; mean CHP profit {best['mean_profit_eur']:.3f} EUR, std "
            f"{best['std_profit_eur']:.3f}, DN penalty {best['dn_penalty']:.3f}) in "
            f"{time.perf_counter() - started:.1f} s -> {Path(target).resolve()}")
