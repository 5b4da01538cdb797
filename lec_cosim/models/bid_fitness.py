"""The fitness of the CHPs' bids, with the distribution-network (DN) impact, and the bidding problem.

What the learner minimises, and the :class:`BiddingProblem` that evaluates it for a batch of
bids. Separate from the optimiser (:mod:`lec_cosim.models.ant_colony`) because the fitness is the
paper's model of the market and the grid, the optimiser a generic search.

**Fitness** (minimised) = -mean(profit) + std(profit) + 1e4 * (hours the LEM did not clear)
+ dn_penalty(result). Profit is each CHP's daily profit (income - production cost); mean and
(population, ddof=0) standard deviation are taken across the CHPs, so the colony learns bids
that are profitable *and* fair among the producers. An hour "did not clear" when there was
demand in the book but nothing traded. The distribution-network (DN) penalty - voltage, angle
and line-limit violation counts plus active and reactive losses in the paper - is a callable
supplied by the caller (it takes the :class:`~lec_cosim.models.lem_day_clearing.DayResult`), or
``None`` for 0. A penalty object with a ``penalty_batch`` method (:class:`BatchDnPenalty`, e.g.
:class:`lec_cosim.models.lem_grid.LinearDnImpactModel`) is instead given the CHPs' sold kWh of a
whole batch of bids at once, so that training with a DN penalty is as vectorised as without.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from lec_cosim.models.lem_day import LemDay
from lec_cosim.models.lem_day_clearing import (
    DayResult,
    _Book,
    _book,
    _chp_profit,
    _clear_batch,
    day_profit,
)

NOT_CLEARED_PENALTY = 1e4


@runtime_checkable
class BatchDnPenalty(Protocol):
    """A DN penalty that depends on the CHPs' production only and evaluates a batch of it at once."""

    def penalty_batch(self, chp_sold_kwh: np.ndarray) -> np.ndarray:
        """Penalty of every CHP schedule: ``chp_sold_kwh`` (n, n_chp, n_hours) -> (n,)."""
        ...  # pragma: no cover


DnPenalty = Callable[[DayResult], float] | BatchDnPenalty
"""A callable on the :class:`DayResult`, or an object with ``penalty_batch`` (:class:`BatchDnPenalty`),
which is then used for single results too (its ``chp_sold_kwh``)."""


def _dn_value(dn_penalty: DnPenalty | None, result: DayResult) -> float:
    if dn_penalty is None:
        return 0.0
    batch = getattr(dn_penalty, "penalty_batch", None)
    if batch is not None:
        return float(np.asarray(batch(np.asarray(result.chp_sold_kwh, dtype=float)[None]), dtype=float)[0])
    return float(dn_penalty(result))


def fitness_components(result: DayResult, dn_penalty: DnPenalty | None = None) -> dict[str, float]:
    """The terms of the fitness: ``mean_profit_eur``, ``std_profit_eur`` (across CHPs, ddof=0),
    ``not_cleared_penalty`` (1e4 per hour), ``dn_penalty`` and their combination ``fitness``.

    ``dn_penalty`` is called on ``result``, or, if it has ``penalty_batch``, that is called on
    ``result.chp_sold_kwh[None]``."""
    profit = np.asarray(result.chp_profit_eur, dtype=float)
    mean = float(profit.mean()) if profit.size else 0.0
    std = float(profit.std()) if profit.size else 0.0
    nc = NOT_CLEARED_PENALTY * result.not_cleared_hours
    dn = _dn_value(dn_penalty, result)
    return {
        "mean_profit_eur": mean,
        "std_profit_eur": std,
        "not_cleared_penalty": nc,
        "dn_penalty": dn,
        "fitness": -mean + std + nc + dn,
    }


def fitness(result: DayResult, dn_penalty: DnPenalty | None = None) -> float:
    """-mean(profit) + std(profit) + 1e4 x (hours not cleared) + dn_penalty(result); minimised."""
    return fitness_components(result, dn_penalty)["fitness"]


@dataclass(frozen=True, eq=False)
class BiddingProblem:
    """The CHPs' joint bidding problem over a day, as a bounded minimisation for ACO_R.

    The decision vector is the bids (n_chp, n_hours) flattened row by row (CHP-major).
    """

    day: LemDay
    dn_penalty: DnPenalty | None = None
    _book: _Book = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_book", _book(self.day))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.day.n_chp, self.day.n_hours)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self.day.bid_bounds()
        return lower.ravel(), upper.ravel()

    def truthful(self) -> np.ndarray:
        return self.day.truthful_bids().ravel()

    def bids(self, x) -> np.ndarray:
        """A decision vector as bids (n_chp, n_hours)."""
        return np.asarray(x, dtype=float).reshape(self.shape)

    def evaluate(self, x) -> np.ndarray:
        """Fitness of a batch of decision vectors (n, n_chp * n_hours) -> (n,).

        Without a DN penalty, or with one that has ``penalty_batch`` (:class:`BatchDnPenalty`), the whole
        batch is cleared at once in NumPy and the penalty gets the sold kWh of all candidates,
        (n, n_chp, n_hours). A plain callable DN penalty is called on each candidate's
        :class:`DayResult` (slow path).
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        bids = x.reshape(x.shape[0], *self.shape)
        batch = getattr(self.dn_penalty, "penalty_batch", None)
        if self.dn_penalty is not None and batch is None:
            return np.array([fitness(day_profit(self.day, b), self.dn_penalty) for b in bids])
        clearing, volume, frac, _ = _clear_batch(self.day, self._book, bids)
        sold, income, cost = _chp_profit(self.day, clearing, frac)
        profit = income - cost
        not_cleared = ((self._book.demand_kwh > 0) & ~(volume > 0)).sum(axis=1)
        f = -profit.mean(axis=1) + profit.std(axis=1) + NOT_CLEARED_PENALTY * not_cleared
        if batch is None:
            return f
        dn = np.asarray(batch(np.ascontiguousarray(np.swapaxes(sold, 1, 2))), dtype=float)
        if dn.shape != f.shape:
            raise ValueError(f"penalty_batch returned shape {dn.shape}, expected {f.shape}")
        return f + dn
