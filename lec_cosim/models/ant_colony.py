"""Ant colony optimisation for continuous domains (ACO_R), and the training of the CHPs' bids with it.

:func:`acor_minimize` is the generic optimiser over a box; :func:`train_aco` runs it on a
:class:`~lec_cosim.models.bid_fitness.BiddingProblem`. Separate because the optimiser knows
nothing of markets.

ACO_R after Socha and Dorigo, "Ant colony optimization for continuous domains", EJOR 185(3),
2008: an archive of the k best solutions, ranked; weights w_l = exp(-(l-1)^2 / (2 q^2 k^2)) /
(q k sqrt(2 pi)) choose one archive solution per ant as the mean of a Gaussian kernel, whose
standard deviation in each dimension is xi times the mean distance of the other archive
solutions to it. Samples outside the bounds are clipped onto them (offers at the retail cap or at
cost are legitimate bids). The new solutions join the archive and the worst are dropped. Each run
starts from a uniform random archive into which the truthful bids are inserted
(``include_truthful``), so the learnt bids are never worse than truthful bidding; of ``runs``
independent runs the best is kept. Run r draws from
``numpy.random.SeedSequence(seed).spawn(runs)[r]``: same seed, same history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lec_cosim.models.bid_fitness import BiddingProblem
from lec_cosim.models.lem_day import LemDay


def acor_minimize(
    objective: Callable[[np.ndarray], np.ndarray],
    lower,
    upper,
    *,
    iterations: int = 500,
    ants: int = 20,
    archive_size: int = 50,
    q: float = 0.1,
    xi: float = 0.85,
    rng: np.random.Generator | int | None = None,
    initial=None,
):
    """Minimise ``objective`` over a box with ACO_R (Socha and Dorigo 2008).

    Parameters
    ----------
    objective : callable
        Maps a batch (n, dim) to fitness values (n,); called once per iteration with all ants.
    lower, upper : array_like, shape (dim,)
        Bounds; samples outside are clipped onto them.
    iterations, ants : int
        Number of iterations, and solutions sampled per iteration.
    archive_size : int
        k, the number of solutions kept.
    q : float
        Locality of the search: small q favours the best archive solutions as kernel means.
    xi : float
        Convergence speed (> 0): scale of the kernels' standard deviations.
    rng : numpy.random.Generator or int, optional
    initial : array_like, shape (m, dim), optional
        Solutions put into the initial archive (clipped to the bounds) in place of random ones.

    Returns
    -------
    best_x : numpy.ndarray, shape (dim,)
    best_f : float
    history : numpy.ndarray, shape (iterations,)
        Best-so-far fitness after every iteration (non-increasing).
    """
    rng = np.random.default_rng(rng)
    lower = np.asarray(lower, dtype=float).ravel()
    upper = np.asarray(upper, dtype=float).ravel()
    if lower.shape != upper.shape or np.any(upper < lower):
        raise ValueError("bounds must have the same shape and lower <= upper")
    if archive_size < 2 or ants < 1 or iterations < 0 or q <= 0 or xi <= 0:
        raise ValueError("need archive_size >= 2, ants >= 1, iterations >= 0, q > 0 and xi > 0")
    k, dim = archive_size, lower.size
    archive = lower + (upper - lower) * rng.random((k, dim))
    if initial is not None:
        init = np.atleast_2d(np.asarray(initial, dtype=float))[:k]
        archive[: len(init)] = np.clip(init, lower, upper)
    values = np.asarray(objective(archive), dtype=float)
    order = np.argsort(values, kind="stable")
    archive, values = archive[order], values[order]

    rank = np.arange(k)
    weights = np.exp(-(rank**2) / (2.0 * q**2 * k**2)) / (q * k * math.sqrt(2.0 * math.pi))
    p = weights / weights.sum()
    history = np.empty(iterations)
    for it in range(iterations):
        guide = rng.choice(k, size=ants, p=p)
        mean = archive[guide]  # (ants, dim)
        sigma = xi * np.abs(archive[None, :, :] - mean[:, None, :]).sum(axis=1) / (k - 1)
        x = np.clip(mean + sigma * rng.standard_normal((ants, dim)), lower, upper)
        f = np.asarray(objective(x), dtype=float)
        pool = np.concatenate([archive, x])
        pool_f = np.concatenate([values, f])
        keep = np.argsort(pool_f, kind="stable")[:k]
        archive, values = pool[keep], pool_f[keep]
        history[it] = values[0]
    return archive[0].copy(), float(values[0]), history


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """Outcome of :func:`train_aco`.

    Attributes
    ----------
    best_bids_eur_per_kwh : numpy.ndarray, shape (n_chp, n_hours)
        Bids of the best run.
    best_fitness : float
    history : numpy.ndarray, shape (runs, iterations)
        Best-so-far fitness of every run after every iteration.
    run_fitness : numpy.ndarray, shape (runs,)
    best_run : int
    truthful_fitness : float
        Fitness of the ``truthful`` strategy, for comparison.
    """

    best_bids_eur_per_kwh: np.ndarray
    best_fitness: float
    history: np.ndarray
    run_fitness: np.ndarray
    best_run: int
    truthful_fitness: float


def train_aco(
    problem: BiddingProblem | LemDay,
    *,
    iterations: int = 500,
    ants: int = 20,
    runs: int = 10,
    seed: int = 0,
    archive_size: int = 50,
    q: float = 0.1,
    xi: float = 0.85,
    include_truthful: bool = True,
) -> TrainingResult:
    """Learn the CHPs' bids with ACO_R: ``runs`` independent runs, the best kept.

    Run r uses the generator ``numpy.random.SeedSequence(seed).spawn(runs)[r]`` so the same seed
    gives identical histories. With ``include_truthful`` the truthful bids are in every initial
    archive (the result is then never worse than truthful bidding).
    """
    if isinstance(problem, LemDay):
        problem = BiddingProblem(problem)
    if runs < 1:
        raise ValueError("runs must be >= 1")
    lower, upper = problem.bounds
    truthful = problem.truthful()
    truthful_f = float(problem.evaluate(truthful[None])[0])
    history = np.empty((runs, iterations))
    run_f = np.empty(runs)
    best_x, best_f, best_run = None, math.inf, -1
    for r, child in enumerate(np.random.SeedSequence(seed).spawn(runs)):
        x, f, hist = acor_minimize(
            problem.evaluate,
            lower,
            upper,
            iterations=iterations,
            ants=ants,
            archive_size=archive_size,
            q=q,
            xi=xi,
            rng=np.random.default_rng(child),
            initial=truthful[None] if include_truthful else None,
        )
        history[r], run_f[r] = hist, f
        if f < best_f:
            best_x, best_f, best_run = x, f, r
    return TrainingResult(
        best_bids_eur_per_kwh=problem.bids(best_x),
        best_fitness=best_f,
        history=history,
        run_fitness=run_f,
        best_run=best_run,
        truthful_fitness=truthful_f,
    )
