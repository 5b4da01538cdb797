"""The ADMM negotiation of exchanges between neighbouring LECs, all agents in one process.

:func:`admm_negotiate` runs one :class:`lec_cosim.models.admm_agent.LecAgent` per LEC with the
federates' message pattern (propose, deliver to the neighbours, update) until every agent has
stopped by itself, and returns the schedules, the bilateral prices, the settlement and the
residual history (:class:`NegotiationResult`). Separate from the agent because the federation
runs the agents in separate federates and never calls this; it is the reference the tests and
benchmarks compare the federation with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lec_cosim.models.admm_agent import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_OVER_RELAXATION,
    DEFAULT_TOL_KW,
    LecAgent,
    _check_admm_settings,
)
from lec_cosim.models.exchange_problem import ExchangeProblem
from lec_cosim.models.exchange_result import ExchangeResult, _result


@dataclass(frozen=True, eq=False)
class NegotiationResult:
    """Outcome of :func:`admm_negotiate`.

    Attributes
    ----------
    schedule : ExchangeResult
        Final schedules: each LEC's own last local solution, exchanges as agreed (average of
        the two proposals), costs from each LEC's own schedule. Stopped at the cap (not
        converged): each LEC's plan with its exchanges fixed at the agreed values (module
        docstring), so the schedules add up.
    exchange_proposals_kw : numpy.ndarray, shape (n_edges, 2, T)
        Last proposals of the edge's first and second LEC, both in the edge's orientation.
    exchange_price_eur_per_kwh : numpy.ndarray, shape (n_edges, T)
        Bilateral price (``-lambda``): EUR per kWh the receiving LEC pays the sending LEC.
    settlement_eur : numpy.ndarray, shape (N,)
        What each LEC pays its neighbours for the agreed exchanges at those prices (negative:
        it is paid); sums to zero. ``schedule.cost_eur`` leaves these payments out. At the
        negotiated prices no LEC pays more, with the settlement, than on its own: not
        exchanging was open to it in every local step.
    iterations : int
        Iterations run (local steps per agent).
    primal_residual_kw : numpy.ndarray, shape (iterations,)
        Per iteration, the largest disagreement ``|x_ij + x_ji|`` over edges and steps, kW.
    dual_residual_eur_per_kwh : numpy.ndarray, shape (iterations,)
        Per iteration, the largest of the edges' dual residuals the agents report:
        ``max(rho_e, rho) * max |z^k - z^(k-1)|``.
    converged : bool
        The agents stopped on the tolerance rule, not at the cap.
    first_iteration_within_tol : int or None
        First iteration at which both residuals were below tolerance (the agents stop
        ``stop_delay`` iterations later, once every one of them knows).
    rho_eur_per_kwh2, tol_kw, dual_tol_eur_per_kwh : float
        Settings used.
    messages_sent : int
        Proposal messages exchanged (one per agent, neighbour and iteration).
    wall_time_s : float
    """

    schedule: ExchangeResult
    exchange_proposals_kw: np.ndarray
    exchange_price_eur_per_kwh: np.ndarray
    settlement_eur: np.ndarray
    iterations: int
    primal_residual_kw: np.ndarray
    dual_residual_eur_per_kwh: np.ndarray
    converged: bool
    first_iteration_within_tol: int | None
    rho_eur_per_kwh2: float
    tol_kw: float
    dual_tol_eur_per_kwh: float
    messages_sent: int
    wall_time_s: float


def admm_negotiate(
    problem: ExchangeProblem,
    rho_eur_per_kwh2: float | None = None,
    tol_kw: float = DEFAULT_TOL_KW,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    *,
    dual_tol_eur_per_kwh: float | None = None,
    over_relaxation: float = DEFAULT_OVER_RELAXATION,
    adaptive_rho: bool = True,
) -> NegotiationResult:
    """Negotiate the exchanges with one :class:`LecAgent` per LEC, in one process.

    Follows the federates' message pattern: every iteration each unfinished agent proposes
    (local step), its messages are delivered to the neighbours, and each agent updates its
    consensus, duals and residual reports; agents stop by themselves (see :mod:`lec_cosim.models.admm_agent`).

    Parameters
    ----------
    problem : ExchangeProblem
    rho_eur_per_kwh2 : float, optional
        ADMM penalty, EUR/kWh per kW of mismatch. Default :func:`default_rho_eur_per_kwh2`.
    tol_kw : float
        Tolerance on the primal residual (disagreement of the two proposals of an edge), kW.
    max_iterations : int
    dual_tol_eur_per_kwh : float, optional
        Tolerance on the dual residual ``rho * |z^k - z^(k-1)|``; by default
        :func:`default_dual_tol_eur_per_kwh`.
    over_relaxation, adaptive_rho
        As :class:`LecAgent`'s (1 and False: plain ADMM).

    Returns
    -------
    NegotiationResult
    """
    rho_eur_per_kwh2, dual_tol = _check_admm_settings(
        problem, rho_eur_per_kwh2, tol_kw, dual_tol_eur_per_kwh, max_iterations
    )
    started = time.perf_counter()
    agents = [
        LecAgent(problem, i, rho_eur_per_kwh2=rho_eur_per_kwh2, tol_kw=tol_kw, dual_tol_eur_per_kwh=dual_tol,
                 max_iterations=max_iterations, over_relaxation=over_relaxation, adaptive_rho=adaptive_rho)
        for i in range(problem.n_lecs)
    ]
    primal_history, dual_history = [], []
    first_within_tol = None
    messages_sent = 0
    while not all(a.state.finished for a in agents):
        active = [a for a in agents if not a.state.finished]
        before = {(a.lec, n): z.copy() for a in active for n, z in a.state.targets_kw.items()}
        rho = {(a.lec, n): max(r, rho_eur_per_kwh2) for a in active for n, r in a.state.rho_eur_per_kwh2.items()}
        outbox = [m for a in active for m in a.propose()]
        messages_sent += len(outbox)
        for a in active:
            a.receive([m for m in outbox if m.receiver == a.lec])
        # The federation-wide view, for the record only: the agents decide from their reports (the same residuals).
        primal = dual = 0.0
        for a in active:
            for _, n, _ in a.neighbours:
                theirs = agents[n].state.proposals_kw[a.lec]
                primal = max(primal, float(np.max(np.abs(a.state.proposals_kw[n] + theirs))))
                change = float(np.max(np.abs(a.state.targets_kw[n] - before[(a.lec, n)])))
                dual = max(dual, rho[(a.lec, n)] * change)
        primal_history.append(primal)
        dual_history.append(dual)
        if first_within_tol is None and primal <= tol_kw and dual <= dual_tol:
            first_within_tol = len(primal_history)

    schedules = [a.schedule() for a in agents]
    t = problem.n_steps
    proposals = np.zeros((problem.n_edges, 2, t))
    consensus = np.zeros((problem.n_edges, t))
    price = np.zeros((problem.n_edges, t))
    own = {}
    settlement = np.zeros(problem.n_lecs)
    for e, (a, b) in enumerate(problem.edges):
        proposals[e, 0] = agents[a].state.proposals_kw[b]
        proposals[e, 1] = -agents[b].state.proposals_kw[a]  # b's proposal in the edge's orientation
        consensus[e] = agents[a].state.agreed_kw[b]
        price[e] = -agents[a].state.duals_eur_per_kwh[b]
        # The exchange as each end scheduled it: its last proposal, or the agreed value at the cap.
        own[(e, a)], own[(e, b)] = schedules[a]["exchange_to_kw"][b], -schedules[b]["exchange_to_kw"][a]
        # b pays a the price for what a sends it (a pays b when the flow is reversed).
        payment = problem.dt_h * float(np.sum(price[e] * consensus[e]))
        settlement[a] -= payment
        settlement[b] += payment
    result = _result(
        problem,
        schedules,
        exchange_kw=consensus,
        own_exchange_kw=own,
        local_price=np.array([s["local_price_eur_per_kwh"] for s in schedules]),
    )
    return NegotiationResult(
        schedule=result,
        exchange_proposals_kw=proposals,
        exchange_price_eur_per_kwh=price,
        settlement_eur=settlement,
        iterations=max(a.state.iteration for a in agents),
        primal_residual_kw=np.array(primal_history),
        dual_residual_eur_per_kwh=np.array(dual_history),
        converged=all(a.state.converged for a in agents),
        first_iteration_within_tol=first_within_tol,
        rho_eur_per_kwh2=float(rho_eur_per_kwh2),
        tol_kw=float(tol_kw),
        dual_tol_eur_per_kwh=dual_tol,
        messages_sent=messages_sent,
        wall_time_s=time.perf_counter() - started,
    )
