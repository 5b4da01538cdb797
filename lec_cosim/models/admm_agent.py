"""One LEC's side of the ADMM negotiation of exchanges: its local QP, its messages, its stopping rule.

What one LEC_EMS federate holds: a :class:`LecAgent` knows only its own LEC's data and talks only
to its neighbours, by :class:`ProposalMessage`; consensus ADMM on the exchanged quantities (the
distributed framework, Rana et al. 2022, Fig. 8). Separate from :mod:`lec_cosim.models.admm`,
which runs all agents in one process, because a federate needs the agent alone.

ADMM, as each agent runs it
---------------------------
Each agent i keeps, per neighbour n (edge e), its own copy ``x_in[t]`` of the exchange, in its
own orientation (kW it sends to n; negative = receives). The two copies of one edge must agree:
``x_in = -x_ni``. Agent i also keeps the agreed value ``z_in`` (the consensus; ``z_ni = -z_in``)
and a dual ``lambda_e[t]`` (EUR/kWh). One iteration k:

1. **Local step.** Agent i solves its own QP: its grid and battery costs, half of every incident
   edge's wheeling cost and fee (each LEC pays half), plus for every neighbour n::

       sum_t dt * (lambda_e[t] * x_in[t] + rho_e / 2 * (x_in[t] - z_in[t]) ** 2)

2. **Message.** Agent i sends to each neighbour n one :class:`ProposalMessage`:
   ``exchange_kw = x_in`` (T values, kW from i to n) and the residual reports it knows of (for
   the stopping rule below). Nothing else: no costs, demands or prices leave the LEC.
3. **Consensus and dual update**, computed by both ends from the same two proposals, so they stay
   identical without being sent (``alpha``: the over-relaxation, below; 1 is plain ADMM)::

       z_in     = alpha * (x_in - x_ni) / 2 + (1 - alpha) * z_in     (alpha 1: the average of the two copies)
       lambda_e = lambda_e + rho_e * alpha * (x_in + x_ni) / 2

   In the own-orientation convention both ends hold the same ``lambda_e``. ``-lambda_e`` is the
   price per kWh the receiving LEC pays the sending LEC (the bilateral price of the exchange).
4. **Residuals** of edge e at iteration k, the maximum over the steps of: primal
   ``|x_in + x_ni|`` (kW, how far the two proposals disagree) and dual
   ``max(rho_e, rho) * |z^k - z^(k-1)|`` (EUR/kWh, how much the agreed exchange still moves, as a price).
   Both ends compute the same two numbers.

Stopping without a supervisor: the residuals of edge e are known only to its two ends, so each
message also carries the reports (edge, iteration, primal, dual) the sender has, and every
agent forwards what it hears. The report of an edge reaches every agent of the connected
neighbour graph within ``stop_delay`` iterations (the largest hop distance from any LEC to the
nearer end of any edge; 1 for a line of three). After iteration k every agent looks at iteration
``k - stop_delay``: if, for every edge, the primal residual was at most ``tol_kw`` and the dual
residual at most ``dual_tol_eur_per_kwh`` (default ``tol_kw`` times the smallest wheeling cost,
see :func:`default_dual_tol_eur_per_kwh`), it stops. All agents hold the same reports for that
iteration, so all stop after the same iteration k; the price is ``stop_delay`` extra
iterations. Every agent also stops at ``max_iterations``. Agents of different connected
components of the graph never talk and stop independently.

Stopped at the cap, the two proposals of an edge still disagree (by up to the last primal
residual): if each LEC kept its last local solution, the LECs' schedules would not add up (in the
first iterations both ends of an edge plan to *receive*, and the community's grid export and
costs come out better than the optimum). So an agent that stops at the cap plans once more with
each exchange fixed at the agreed value ``z_in`` (antisymmetric by construction): every LEC's
balance then holds with the exchanges both ends settle, and the exchanges add up. That plan
exists whenever the LEC's local problem does: the grid takes any balance, and the DSO's limits
bound the physical flow, which the exchanges do not change.

Over-relaxation and residual balancing
--------------------------------------
Two standard accelerations (Boyd et al. 2011, "Distributed optimization and statistical learning via
ADMM", sections 3.4.3 and 3.4.1), both computed by the two ends of an edge from the same numbers, so
no message changes:

* over-relaxation ``alpha`` (default 1.6, in [1, 2); Boyd et al. suggest 1.5-1.8): each update takes the
  average of the two proposals ``alpha`` times and the old consensus ``1 - alpha`` times;
* residual balancing of each edge's ``rho_e`` (``adaptive_rho``): after an iteration whose primal residual,
  in units of ``tol_kw``, exceeds ``RHO_BALANCE`` (10) times its dual residual in units of
  ``dual_tol_eur_per_kwh``, the edge's rho doubles; in the opposite case it halves. The duals are kept
  unscaled, so they need no rescaling. Only in the first ``RHO_ADAPT_ITERATIONS`` iterations of a
  negotiation and within a factor of 1,000 of the configured rho: from then on rho is fixed and the usual
  convergence of ADMM holds. A warm start carries each edge's rho over with its duals. The stopping rule's
  dual residual is ``max(rho_e, rho) * |z^k - z^(k-1)|``: with a rho balanced below the configured one, the
  agreed exchange moves more per iteration, and the rule must still stop only once it moves by less than
  about ``tol_kw`` (an edge held at its capacity, primal residual 0, halves its rho every iteration).

Measured offline on warm-started hours of the shipped three-LEC scenario in 2016 (all agents in one loop,
``tol_kw`` 0.001, 2026-12-07): 48 hours from 2 September took 848 iterations plain, 586 over-relaxed
(alpha 1.8), 600 balanced, 488 both (alpha 1.6; longest hour 180, 107, 60, 54 iterations), the last two with
the stopping rule above; the
year in the federation: see ``docs/studies/three-frameworks.md``.

Units: powers in kW, energies in kWh, prices in EUR/kWh, ``wheeling_eur_per_kwh2`` and ``rho``
in EUR per kW squared per hour (EUR/kWh per kW: the price change per kW of mismatch).

Choice of rho: the local problems are linear except for the wheeling cost, so the curvature
ADMM works against is the wheeling cost ``w``. Iterations to tol 0.01 kW for rho = 0.5, 1, 2, 3,
5, 10 times w (3 LECs in a line, 24 hourly steps, batteries; 2 cores, about 12 ms per iteration):

* the day of ``tests/test_exchange.py`` (w = 1e-3, the B - C link binding at 4 kW):
  231, 114, 56, 50, 47, 72 iterations (2.7, 1.5, 0.7, 0.8, 0.8, 1.3 s);
* the same day with links of 40 and 30 kW and one tariff: w = 3e-4: 379, 188, 98, 79, 68, 84;
  w = 1e-3: 186, 92, 47, 41, 46, 72; w = 3e-3: 75, 36, 25, 27, 36, 55.

So the default rho is 3 w (:func:`default_rho_eur_per_kwh2`), near the fastest for every w; a
fixed rho in EUR would be right for one wheeling cost only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from lec_cosim.models.exchange_problem import ExchangeProblem
from lec_cosim.models.exchange_qp import (
    _add_exchange,
    _add_lec,
    _QpBuilder,
    _solve_once,
)
from lec_cosim.models.exchange_result import _grid_cost_eur, _half_edge_cost_eur

# Default rho as a multiple of the smallest wheeling cost (see "Choice of rho" in the module docstring).
DEFAULT_RHO_PER_WHEELING = 3.0
DEFAULT_TOL_KW = 0.01
DEFAULT_MAX_ITERATIONS = 500
DEFAULT_OVER_RELAXATION = 1.6
RHO_BALANCE = 10.0
"""Residual balancing: rho doubles (halves) when the normalised primal residual is this many times the dual one
(or the other way round)."""
RHO_ADAPT_ITERATIONS = 50
"""Residual balancing adapts rho in a negotiation's first iterations only; rho is fixed from then on."""
RHO_RANGE = 1e3
"""An edge's rho stays within this factor of the configured rho."""


@dataclass(frozen=True)
class ProposalMessage:
    """What one agent sends one neighbour per iteration (the HELICS message).

    Attributes
    ----------
    sender, receiver : int
        LEC indices.
    iteration : int
        ADMM iteration (1-based) of the proposal.
    exchange_kw : tuple of float, length T
        Power the sender proposes to send to the receiver at each step, kW (negative: receive).
    residual_reports : tuple of (edge, iteration, primal_residual_kw, dual_residual_eur_per_kwh)
        Residuals of edges the sender knows of, for the iterations the receiver may still need
        (so that every agent can apply the stopping rule without a supervisor).
    """

    sender: int
    receiver: int
    iteration: int
    exchange_kw: tuple
    residual_reports: tuple = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "sender": self.sender,
                "receiver": self.receiver,
                "iteration": self.iteration,
                "exchange_kw": list(self.exchange_kw),
                "residual_reports": [list(r) for r in self.residual_reports],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ProposalMessage:
        data = json.loads(text)
        return cls(
            sender=int(data["sender"]),
            receiver=int(data["receiver"]),
            iteration=int(data["iteration"]),
            exchange_kw=tuple(float(v) for v in data["exchange_kw"]),
            residual_reports=tuple(
                (int(e), int(k), float(p), float(c)) for e, k, p, c in data["residual_reports"]
            ),
        )


@dataclass
class AgentState:
    """Everything an agent carries from one ADMM iteration to the next.

    All per-neighbour arrays have shape (T,) and the agent's own orientation (positive: power
    this LEC sends to that neighbour).

    Attributes
    ----------
    iteration : int
        Iterations completed (proposals sent and answers received).
    targets_kw : dict of int to numpy.ndarray
        Consensus ``z`` with each neighbour (over-relaxed: the average of the last two proposals ``alpha`` times, the
        last ``z`` ``1 - alpha`` times; see ``agreed_kw`` for what is settled).
    duals_eur_per_kwh : dict of int to numpy.ndarray
        ADMM dual ``lambda`` of each edge (the same value at both ends).
    proposals_kw : dict of int to numpy.ndarray
        This agent's last proposal to each neighbour.
    residual_reports : dict of (edge, iteration) to (primal_residual_kw, dual_residual_eur_per_kwh)
        Residuals heard of or computed, kept while the stopping rule may still need them.
    agreed_kw : dict of int to numpy.ndarray
        The exchange agreed with each neighbour: the average of the last two proposals (the consensus ``z`` of
        plain ADMM; over-relaxed, ``z`` also leans on its last value and may overshoot an edge's capacity by up
        to about ``tol_kw``, the average never does). What is settled, recorded and planned around at the cap.
    rho_eur_per_kwh2 : dict of int to float
        ADMM penalty of the edge to each neighbour (the same value at both ends; it changes only with
        ``adaptive_rho``).
    finished, converged : bool
        The agent has stopped; it stopped on the tolerance rule rather than the cap.
    """

    iteration: int = 0
    targets_kw: dict = field(default_factory=dict)
    duals_eur_per_kwh: dict = field(default_factory=dict)
    proposals_kw: dict = field(default_factory=dict)
    residual_reports: dict = field(default_factory=dict)
    agreed_kw: dict = field(default_factory=dict)
    rho_eur_per_kwh2: dict = field(default_factory=dict)
    finished: bool = False
    converged: bool = False


class LecAgent:
    """One LEC's side of the ADMM negotiation (held by one LEC_EMS federate).

    The agent reads only its own LEC's data from ``problem`` (demand, prices, battery, grid
    limits) and the data of its incident edges; the neighbour graph is used only to know which
    edges exist and how long residual reports take to spread (``stop_delay``).

    Parameters
    ----------
    problem : ExchangeProblem
    lec : int
        Index of this agent's LEC.
    rho_eur_per_kwh2 : float, optional
        ADMM penalty, EUR/kWh per kW of mismatch, at the start of a cold negotiation. The same at every agent.
        Default :func:`default_rho_eur_per_kwh2`.
    tol_kw : float
        Tolerance on every edge's primal residual, kW.
    dual_tol_eur_per_kwh : float, optional
        Tolerance on every edge's dual residual; default :func:`default_dual_tol_eur_per_kwh`.
    max_iterations : int
        Stop here at the latest.
    warm_start : tuple, optional
        ``(targets, duals)`` or ``(targets, duals, rhos)`` (dicts by neighbour) to start from: another agent's
        :meth:`carried_over`. Default: a cold start (zeros, ``rho_eur_per_kwh2`` on every edge).
    over_relaxation : float
        ``alpha`` in [1, 2) of the module docstring; 1: plain ADMM.
    adaptive_rho : bool
        Residual balancing of each edge's rho (module docstring).

    Notes
    -----
    Use it either step by step with :meth:`local_step`, or with the protocol::

        while not agent.state.finished:
            send(agent.propose())          # one ProposalMessage per neighbour
            agent.receive(messages_for_me)  # one ProposalMessage from each neighbour
    """

    def __init__(
        self,
        problem: ExchangeProblem,
        lec: int,
        *,
        rho_eur_per_kwh2: float | None = None,
        tol_kw: float = DEFAULT_TOL_KW,
        dual_tol_eur_per_kwh: float | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        warm_start: tuple | None = None,
        over_relaxation: float = DEFAULT_OVER_RELAXATION,
        adaptive_rho: bool = True,
    ):
        if not 0 <= lec < problem.n_lecs:
            raise ValueError(f"lec must be in 0..{problem.n_lecs - 1}, got {lec}")
        rho_eur_per_kwh2, dual_tol_eur_per_kwh = _check_admm_settings(
            problem, rho_eur_per_kwh2, tol_kw, dual_tol_eur_per_kwh, max_iterations
        )
        self.problem = problem
        self.lec = lec
        self.rho_eur_per_kwh2 = float(rho_eur_per_kwh2)
        self.tol_kw = float(tol_kw)
        self.dual_tol_eur_per_kwh = dual_tol_eur_per_kwh
        self.max_iterations = int(max_iterations)
        if not 1.0 <= over_relaxation < 2.0:
            raise ValueError(f"over_relaxation must be in [1, 2), got {over_relaxation}")
        self.over_relaxation = float(over_relaxation)
        self.adaptive_rho = bool(adaptive_rho)
        self.neighbours = problem.neighbours(lec)
        self.edge_to = {n: e for e, n, _ in self.neighbours}
        self.component_edges = problem.component_edges(lec)
        self.stop_delay = problem.stop_delay(lec)

        t = problem.n_steps
        targets, duals, rhos = (tuple(warm_start) + ({},))[:3] if warm_start is not None else ({}, {}, {})
        self.state = AgentState(
            targets_kw={n: _fitted(targets.get(n), t) for _, n, _ in self.neighbours},
            duals_eur_per_kwh={n: _fitted(duals.get(n), t) for _, n, _ in self.neighbours},
            proposals_kw={n: np.zeros(t) for _, n, _ in self.neighbours},
            agreed_kw={n: np.zeros(t) for _, n, _ in self.neighbours},
            rho_eur_per_kwh2={n: self._carried_rho(rhos.get(n)) for _, n, _ in self.neighbours},
        )
        self._build()

    # -- local QP --------------------------------------------------------------------------

    def _build(self):
        p, t, dt = self.problem, self.problem.n_steps, self.problem.dt_h
        qp = _QpBuilder()
        self._columns = _add_lec(qp, p, self.lec)
        self._exchange_columns = {}
        for e, n, _ in self.neighbours:
            fee_cost = np.full(t, 0.5 * dt * p.wheeling_fee_eur_per_kwh[e])  # this LEC's half
            exchange = _add_exchange(qp, p.edge_capacity_kw[e], t, fee_cost)
            qp.add_coefficients(self._columns.balance_rows, exchange, -1.0)
            self._exchange_columns[n] = exchange
        self._qp = qp.model()
        self._own_hessian = qp.hessian()  # the tie-break terms; the exchange terms depend on rho
        self._hessian_rho = None
        self._values = None
        self._duals = None
        self._agreed = None  # (values, duals, columns) of the plan around the agreed exchanges

    def _set_curvature(self, rho: dict):
        """Hessian of half the wheeling cost plus the ADMM penalty: dt * (w / 2 + rho_e / 2) * x^2."""
        key = tuple(rho[n] for _, n, _ in self.neighbours)
        if key == self._hessian_rho:
            return
        p, dt = self.problem, self.problem.dt_h
        qp = _QpBuilder()
        qp.n_cols = len(self._qp.cost)
        for e, n, _ in self.neighbours:
            qp.add_curvature(self._exchange_columns[n], dt * (p.wheeling_eur_per_kwh2[e] + rho[n]))
        self._qp.set_hessian(self._own_hessian + qp.hessian())
        self._hessian_rho = key

    def local_step(self, neighbour_targets_kw: dict, duals_eur_per_kwh: dict, rho_eur_per_kwh2) -> dict:
        """Solve this LEC's local QP and return its proposed exchanges.

        Minimises the LEC's grid and battery costs, half of each incident edge's wheeling cost
        and fee, and for each neighbour n ``sum_t dt * (lambda_n * x_n + rho / 2 * (x_n - z_n)**2)``.

        Parameters
        ----------
        neighbour_targets_kw : dict of int to array_like, shape (T,)
            Consensus ``z_n``: the agreed power this LEC sends to neighbour n, kW.
        duals_eur_per_kwh : dict of int to array_like, shape (T,)
            ADMM dual ``lambda_n`` of the edge to neighbour n.
        rho_eur_per_kwh2 : float or dict of int to float
            ADMM penalty, one for all edges or one per neighbour. Changing it re-passes the Hessian; otherwise only
            the linear objective changes.

        Returns
        -------
        dict of int to numpy.ndarray, shape (T,)
            Proposed power sent to each neighbour, kW (negative: received).
        """
        dt = self.problem.dt_h
        rho = (dict(rho_eur_per_kwh2) if isinstance(rho_eur_per_kwh2, dict)
               else {n: float(rho_eur_per_kwh2) for _, n, _ in self.neighbours})
        self._set_curvature(rho)
        indices, costs = [], []
        for _, n, _ in self.neighbours:
            # Linear part of dt * (lambda * x + rho/2 * (x - z)^2).
            indices.append(self._exchange_columns[n])
            costs.append(dt * (np.asarray(duals_eur_per_kwh[n], dtype=float)
                               - rho[n] * np.asarray(neighbour_targets_kw[n], dtype=float)))
        if indices:
            self._qp.set_costs(np.concatenate(indices), np.concatenate(costs))
        self._values, self._duals = self._qp.solve(f"local QP of LEC {self.problem.lec_names[self.lec]}")
        self._agreed = None
        return {n: self._values[x] for n, x in self._exchange_columns.items()}

    def _plan_with_agreed_exchanges(self) -> None:
        """Plan this LEC once more with every exchange fixed at the agreed value (at the cap).

        The agreed powers join the balance as data (a QP of this LEC alone; HiGHS' QP solver
        mishandled exchange columns fixed at tiny values, "claims optimality, but with primal
        infeasibilities"). Grid import and export are unbounded and the DSO's limits bound only
        the physical flow (no exchange in it), so the plan exists if the local problem does.
        """
        if not self.neighbours:
            return
        sent = np.sum([self.state.agreed_kw[n] for _, n, _ in self.neighbours], axis=0)
        qp = _QpBuilder()
        columns = _add_lec(qp, self.problem, self.lec, sent_kw=sent)
        values, duals = _solve_once(qp, f"plan of LEC {self.problem.lec_names[self.lec]} with the exchanges "
                                         f"agreed when the negotiation stopped at its cap of {self.max_iterations} "
                                         "iterations")
        self._agreed = (values, duals, columns)

    def schedule(self) -> dict:
        """This LEC's schedule from its last local step (arrays of shape (T,)); after the
        negotiation stopped at the cap, its plan around the agreed exchanges.

        Keys: ``import_kw``, ``export_kw``, ``charge_kw``, ``discharge_kw``, ``soc_kwh``,
        ``exchange_to_kw`` (dict: neighbour -> power sent to it, kW), ``cost_eur`` (grid cost
        plus half the wheeling cost and fee of the exchanges it scheduled) and
        ``local_price_eur_per_kwh`` (dual of its balance).
        """
        if self._values is None:
            raise RuntimeError("no local step solved yet")
        if self._agreed is not None:
            v, duals, c = self._agreed
            exchange_to = {n: np.array(self.state.agreed_kw[n], dtype=float) for _, n, _ in self.neighbours}
        else:
            v, duals, c = self._values, self._duals, self._columns
            exchange_to = {n: v[x] for n, x in self._exchange_columns.items()}
        own = c.values(v)
        cost = _grid_cost_eur(self.problem, self.lec, own["import_kw"], own["export_kw"])
        cost += sum(_half_edge_cost_eur(self.problem, self.edge_to[n], x) for n, x in exchange_to.items())
        return {
            **own,
            "exchange_to_kw": exchange_to,
            "cost_eur": cost,
            "local_price_eur_per_kwh": duals[c.balance_rows] / self.problem.dt_h,
        }

    def carried_over(self, hours: int = 1) -> tuple[dict, dict, dict]:
        """The agreed exchanges, duals and rhos of this negotiation ``hours`` later: the warm start of the next one
        (``warm_start``), its window moved on by ``hours`` steps; the new steps at the end repeat the last value
        (:func:`_fitted`). Both ends of an edge carry the same duals and rho and opposite targets over, so they
        start the next negotiation agreed, as ADMM requires."""
        s = self.state
        return ({n: np.asarray(z, dtype=float)[hours:] for n, z in s.targets_kw.items()},
                {n: np.asarray(y, dtype=float)[hours:] for n, y in s.duals_eur_per_kwh.items()},
                dict(s.rho_eur_per_kwh2))

    # -- ADMM protocol ---------------------------------------------------------------------

    def propose(self) -> list:
        """Run the local step of the next iteration; return one message per neighbour."""
        s = self.state
        if s.finished:
            raise RuntimeError(f"agent of LEC {self.lec} has finished; nothing to propose")
        s.proposals_kw = self.local_step(s.targets_kw, s.duals_eur_per_kwh, s.rho_eur_per_kwh2)
        k = s.iteration + 1
        # Reports the neighbours may still need: iterations k - stop_delay .. k - 1.
        reports = tuple(
            (e, it, primal, dual)
            for (e, it), (primal, dual) in sorted(s.residual_reports.items())
            if it >= k - self.stop_delay
        )
        return [
            ProposalMessage(self.lec, n, k, tuple(float(v) for v in s.proposals_kw[n]), reports)
            for _, n, _ in self.neighbours
        ]

    def receive(self, messages) -> None:
        """Take the neighbours' proposals of this iteration; update consensus, duals, residuals.

        Parameters
        ----------
        messages : iterable of ProposalMessage
            Exactly one from each neighbour, of the iteration this agent just proposed in.
        """
        s = self.state
        k = s.iteration + 1
        heard = {}
        for m in messages:
            if m.receiver != self.lec or m.sender not in self.edge_to:
                raise ValueError(f"message from {m.sender} to {m.receiver} is not for LEC {self.lec}'s agent")
            if m.iteration != k:
                raise ValueError(f"message of iteration {m.iteration} while LEC {self.lec} is at {k}")
            heard[m.sender] = np.asarray(m.exchange_kw, dtype=float)
            for e, it, primal, dual in m.residual_reports:
                s.residual_reports[(int(e), int(it))] = (float(primal), float(dual))
        missing = set(self.edge_to) - set(heard)
        if missing:
            raise ValueError(f"LEC {self.lec} missing proposals from {sorted(missing)} at iteration {k}")

        alpha = self.over_relaxation
        for n, theirs in heard.items():
            mine, rho = s.proposals_kw[n], s.rho_eur_per_kwh2[n]
            # theirs is what n sends to us: -(what we send to n). Both ends compute these from the same two
            # proposals with signs exactly opposite (a - b == -(b - a) in floating point), so they stay agreed.
            s.agreed_kw[n] = 0.5 * (mine - theirs)
            target = s.agreed_kw[n] if alpha == 1.0 else alpha * s.agreed_kw[n] + (1.0 - alpha) * s.targets_kw[n]
            mismatch = mine + theirs
            primal, moved = float(np.max(np.abs(mismatch))), float(np.max(np.abs(target - s.targets_kw[n])))
            # The stopping rule's dual residual takes at least the configured rho: a rho balanced down would
            # otherwise let the agreed exchange still move by more than tol_kw when the rule says stop.
            s.residual_reports[(self.edge_to[n], k)] = (primal, max(rho, self.rho_eur_per_kwh2) * moved)
            s.targets_kw[n] = target
            s.duals_eur_per_kwh[n] = s.duals_eur_per_kwh[n] + rho * alpha * 0.5 * mismatch
            if self.adaptive_rho and k <= RHO_ADAPT_ITERATIONS:
                s.rho_eur_per_kwh2[n] = self._balanced(rho, primal, rho * moved)
        s.iteration = k

        checked = k - self.stop_delay
        if checked >= 1 and all(
            (e, checked) in s.residual_reports
            and s.residual_reports[(e, checked)][0] <= self.tol_kw
            and s.residual_reports[(e, checked)][1] <= self.dual_tol_eur_per_kwh
            for e in self.component_edges
        ):
            s.finished = s.converged = True
        elif k >= self.max_iterations:
            s.finished = True
            self._plan_with_agreed_exchanges()
        # Older reports can no longer be needed by anyone.
        for key in [key for key in s.residual_reports if key[1] < k + 1 - self.stop_delay]:
            del s.residual_reports[key]


    def _carried_rho(self, rho) -> float:
        """A warm start's rho for an edge: the configured one if none came, else the carried one within
        ``RHO_RANGE`` of the configured one. (An edge held at its capacity last hour may carry a rho balanced far
        down, which slows the next hour where the edge is free: raising it back was not measured, so not done.)"""
        if rho is None:
            return self.rho_eur_per_kwh2
        rho = float(rho)
        if not (math.isfinite(rho) and rho > 0):
            raise ValueError(f"a warm start's rho must be positive, got {rho}")
        return self._in_range(rho)

    def _in_range(self, rho: float) -> float:
        """``rho`` within ``RHO_RANGE`` of the configured rho."""
        return min(max(rho, self.rho_eur_per_kwh2 / RHO_RANGE), RHO_RANGE * self.rho_eur_per_kwh2)

    def _balanced(self, rho: float, primal_kw: float, dual_eur_per_kwh: float) -> float:
        """The edge's next rho by residual balancing (module docstring), each residual in units of its tolerance,
        within ``RHO_RANGE`` of the configured rho."""
        primal, dual = primal_kw / self.tol_kw, dual_eur_per_kwh / self.dual_tol_eur_per_kwh
        if primal > RHO_BALANCE * dual:
            return self._in_range(2.0 * rho)
        if dual > RHO_BALANCE * primal:
            return self._in_range(0.5 * rho)
        return rho


def _fitted(values, steps: int) -> np.ndarray:
    """``values`` cut or extended to ``steps`` (the extension repeats the last value); zeros without values: a cold
    start."""
    if values is None or len(values) == 0:
        return np.zeros(steps)
    values = np.asarray(values, dtype=float)[:steps]
    return np.concatenate([values, np.full(steps - len(values), values[-1])])


def default_dual_tol_eur_per_kwh(problem: ExchangeProblem, tol_kw: float) -> float:
    """Dual-residual tolerance matching ``tol_kw``: the smallest wheeling cost times ``tol_kw``.

    The dual residual ``rho * |z^k - z^(k-1)|`` is a price error (EUR/kWh). An exchange price
    that is off by ``w * tol_kw`` moves an exchange with wheeling cost ``w`` by about
    ``tol_kw / 2`` (its marginal wheeling cost is ``2 * w * p``). Measured on the three-LEC day
    of ``tests/test_exchange.py`` (with links of 40 and 30 kW): the distance of the agreed
    exchanges to the optimum stays about ``rho * |z^k - z^(k-1)| / w``, whatever rho. A tolerance
    on ``|z^k - z^(k-1)|`` in kW alone stopped far too early for large rho (0.97 kW off with
    rho = 0.1 and tol 0.01 kW).
    """
    wheeling = float(np.min(problem.wheeling_eur_per_kwh2)) if problem.n_edges else 1.0
    return float(tol_kw) * wheeling


def default_rho_eur_per_kwh2(problem: ExchangeProblem) -> float:
    """Default ADMM penalty: ``DEFAULT_RHO_PER_WHEELING`` (3) times the smallest wheeling cost.

    The wheeling cost is the only curvature of the local problems; rho of a few times it was the
    fastest in the sweep of the module docstring. 3e-3 for problems without edges (unused there).
    """
    wheeling = float(np.min(problem.wheeling_eur_per_kwh2)) if problem.n_edges else 1e-3
    return DEFAULT_RHO_PER_WHEELING * wheeling


def _check_admm_settings(problem, rho, tol_kw, dual_tol_eur_per_kwh, max_iterations):
    """Validate the ADMM settings; return rho and the dual tolerance to use."""
    if rho is None:
        rho = default_rho_eur_per_kwh2(problem)
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be positive, got {rho}")
    if not (math.isfinite(tol_kw) and tol_kw > 0):
        raise ValueError(f"tol_kw must be positive, got {tol_kw}")
    if dual_tol_eur_per_kwh is None:
        dual_tol_eur_per_kwh = default_dual_tol_eur_per_kwh(problem, tol_kw)
    if not (math.isfinite(dual_tol_eur_per_kwh) and dual_tol_eur_per_kwh > 0):
        raise ValueError(f"dual_tol_eur_per_kwh must be positive, got {dual_tol_eur_per_kwh}")
    if int(max_iterations) != max_iterations or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations}")
    return float(rho), float(dual_tol_eur_per_kwh)
