"""Energy exchange between neighbouring LECs: the centralised optimum and its ADMM negotiation.

N local energy communities (LECs) plan T steps of ``dt_h`` hours. LEC i has a net demand
``d[i, t]`` (members' load minus PV, kW, negative when it has a surplus), a community battery,
a grid connection and, on every edge (i, j) of an undirected neighbour graph, a net exchange
``p[e, t]`` (kW, positive from the edge's first LEC to its second). In load convention the
balance of LEC i at step t is::

    d[i, t] + charge[i, t] - discharge[i, t] - import[i, t] + export[i, t]
        + sum(p[e, t] for edges leaving i) - sum(p[e, t] for edges entering i) = 0

with the battery of ``lec_cosim.models.ems`` (SoC(0) = SoC(T), sqrt(efficiency) on each leg,
separate non-negative import and export). The whole community of LECs minimises::

    sum_i sum_t dt * (c_import[i, t] * import - c_export[i, t] * export
                      + throughput_penalty * (charge + discharge))
    + sum_e sum_t dt * (wheeling[e] * p[e, t] ** 2 + fee[e] * |p[e, t]|)

The quadratic wheeling cost stands for the losses of moving power between LECs; it is what makes
the exchanges unique (without it any split of a surplus among neighbours could be optimal), so
it must be positive. The linear fee is optional.

Two ways to solve it:

* :func:`solve_centralised`: one quadratic programme (QP) over all LECs, what a supervisor with
  every LEC's data would compute.
* :func:`admm_negotiate`: every LEC holds a :class:`LecAgent` that knows only its own data and
  talks only to its neighbours; consensus ADMM on the exchanged quantities. This is the
  distributed framework (Rana et al. 2022, Fig. 8); each LEC_EMS federate holds one agent.

ADMM, as each agent runs it
---------------------------
Each agent i keeps, per neighbour n (edge e), its own copy ``x_in[t]`` of the exchange, in its
own orientation (kW it sends to n; negative = receives). The two copies of one edge must agree:
``x_in = -x_ni``. Agent i also keeps the agreed value ``z_in`` (the consensus; ``z_ni = -z_in``)
and a dual ``lambda_e[t]`` (EUR/kWh). One iteration k:

1. **Local step.** Agent i solves its own QP: its grid and battery costs, half of every incident
   edge's wheeling cost and fee (each LEC pays half), plus for every neighbour n::

       sum_t dt * (lambda_e[t] * x_in[t] + rho / 2 * (x_in[t] - z_in[t]) ** 2)

2. **Message.** Agent i sends to each neighbour n one :class:`ProposalMessage`:
   ``exchange_kw = x_in`` (T values, kW from i to n) and the residual reports it knows of (for
   the stopping rule below). Nothing else: no costs, demands or prices leave the LEC.
3. **Consensus and dual update**, computed by both ends from the same two proposals, so they stay
   identical without being sent::

       z_in     = (x_in - x_ni) / 2                  (the average of the two copies)
       lambda_e = lambda_e + rho * (x_in + x_ni) / 2

   In the own-orientation convention both ends hold the same ``lambda_e``. ``-lambda_e`` is the
   price per kWh the receiving LEC pays the sending LEC (the bilateral price of the exchange).
4. **Residuals** of edge e at iteration k, the maximum over the steps of: primal
   ``|x_in + x_ni|`` (kW, how far the two proposals disagree) and dual
   ``rho * |z^k - z^(k-1)|`` (EUR/kWh, how much the agreed exchange still moves, as a price).
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

Solver: HiGHS through ``highspy`` (Pyomo's ``appsi_highs`` rejects quadratic objectives). Each
agent builds its HiGHS model once and between iterations changes only the linear costs of its
exchange columns (and the Hessian only if rho changes). HiGHS 1.15 still restarts its active-set
QP solver from scratch on every solve (measured: the same iteration counts with and without
``setBasis`` of the previous optimum; its QP hot start is off by default in later HiGHS for being
unreliable, ERGO-Code/HiGHS#2521 and #3089); a day's local QP takes about 200 active-set
iterations, 3-5 ms.

The problem is made strictly convex by a tiny quadratic tie-break on every grid and battery
power (``tie_break_eur_per_kwh2``, default 1e-6): the optimum is then unique, so the centralised
and the negotiated schedules can be compared step by step, and HiGHS' active-set solver does not
take the flat directions of the linear part for non-convex (it did: "QP solver model status:
Non-convex" on the three-LEC day without it). It changes the day's cost by about 1e-8 relative.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

# Default rho as a multiple of the smallest wheeling cost (see "Choice of rho" above).
DEFAULT_RHO_PER_WHEELING = 3.0
DEFAULT_TOL_KW = 0.01
DEFAULT_MAX_ITERATIONS = 500

# HiGHS' QP solver adds this times the identity to the (scaled) Hessian. Against 1e-10, its
# default 1e-7 moved the three-LEC day's grid imports by 6e-5 kW, 1e-9 by 5e-7 kW.
_QP_REGULARISATION = 1e-10
_SOLVER_TOLERANCE = 1e-9
# HiGHS sees the objective in milli-EUR. Its active-set QP solver works with absolute
# tolerances; in EUR the Hessian entries (1e-6 to 1e-3) are so small that it cycled without end
# on some local problems (measured with highspy 1.15: 15 of 36 local QPs hit a time limit, with
# wheeling 3e-4 and tie-break 1e-6..1e-4 EUR/kWh^2); scaled by 1000 all 36 solve in <= 0.01 s.
_OBJECTIVE_SCALE = 1e3
_QP_ITERATION_LIMIT = 200_000


class InfeasibleExchange(RuntimeError):
    """The exchange problem (or one LEC's local problem) has no feasible schedule."""


class SolverFailure(RuntimeError):
    """HiGHS stopped without an optimum for another reason (e.g. its iteration limit)."""


# --------------------------------------------------------------------------------------------
# Problem
# --------------------------------------------------------------------------------------------


def _per_lec(name, value, n_lecs, *, default=None):
    """Scalar or (N,) -> float array (N,); None entries take ``default``."""
    if value is None:
        value = default
    values = np.array(
        [default if v is None else v for v in np.atleast_1d(np.asarray(value, dtype=object))], dtype=float
    )
    if values.shape == (1,):
        values = np.full(n_lecs, values[0])
    if values.shape != (n_lecs,):
        raise ValueError(f"{name} must be a scalar or have one value per LEC ({n_lecs}), got shape {values.shape}")
    return values


def _per_edge(name, value, n_edges):
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.shape == (1,):
        values = np.full(n_edges, values[0])
    if values.shape != (n_edges,):
        raise ValueError(f"{name} must be a scalar or have one value per edge ({n_edges}), got shape {values.shape}")
    return values


def _per_lec_and_step(name, value, n_lecs, n_steps):
    """Scalar, (T,) (same for every LEC) or (N, T) -> float array (N, T)."""
    values = np.asarray(value, dtype=float)
    if values.ndim == 0 or values.shape == (n_steps,):
        values = np.broadcast_to(values, (n_lecs, n_steps))
    if values.shape != (n_lecs, n_steps):
        raise ValueError(
            f"{name} must be a scalar, have shape (T,) = ({n_steps},) or (N, T) = ({n_lecs}, {n_steps}), "
            f"got shape {values.shape}"
        )
    return np.array(values, dtype=float)


def _frozen(array):
    array = np.array(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ExchangeProblem:
    """Data of the exchange problem between N LECs over T steps.

    Arrays given per LEC accept a scalar (the same for all); arrays per LEC and step accept a
    scalar, shape (T,) (the same for all LECs) or (N, T). After construction every attribute is
    a read-only array of full shape.

    Parameters
    ----------
    net_demand_kw : array_like, shape (N, T)
        Members' load minus PV of each LEC and step, kW (negative: surplus).
    dt_h : float
        Step length, h.
    import_price_eur_per_kwh, export_price_eur_per_kwh : array_like, shape (T,) or (N, T)
        Grid prices. The export price may not exceed the import price of the same LEC and step
        (otherwise buying to sell at once would pay).
    edges : sequence of (int, int)
        Undirected neighbour graph; ``edges[e] = (i, j)`` orients exchange e from i to j.
    edge_capacity_kw : float or array_like, shape (n_edges,)
        Largest exchange in either direction, kW (``inf`` allowed).
    wheeling_eur_per_kwh2 : float or array_like, shape (n_edges,)
        Quadratic wheeling cost: an edge costs ``wheeling * p**2 * dt_h`` EUR per step. Must be
        positive (it makes the exchanges unique, which the ADMM consensus relies on).
    wheeling_fee_eur_per_kwh : float or array_like, shape (n_edges,)
        Linear fee per kWh exchanged in either direction (default 0).
    battery_capacity_kwh, battery_power_kw : float or array_like, shape (N,)
        Community battery of each LEC; a capacity of 0 or None means no battery.
    battery_efficiency : float or array_like, shape (N,)
        Round-trip efficiency in (0, 1]; sqrt of it applies on each leg.
    soc_initial : float or array_like, shape (N,)
        State of charge at the start and end of the horizon, fraction of capacity.
    grid_import_limit_kw, grid_export_limit_kw : float or array_like, shape (T,) or (N, T)
        The DSO's limits on the power each LEC physically draws from and feeds into the feeder:
        its members' net demand plus battery charge minus discharge plus curtailed PV (default
        ``inf``). Exchanges with neighbours do not count: they are trades over the same feeder.
    limit_penalty_eur_per_kwh : float
        ``inf`` (default): the grid limits are hard. Finite: they are soft, every kWh beyond a
        limit costs this much (a DSO limit must never make a LEC's plan infeasible: an evening
        without battery left still needs its import). Not part of the reported costs; the excess
        is reported (``ExchangeResult.limit_excess_kw``).
    soc_final : float or array_like, shape (N,), optional
        State of charge the battery must end with, fraction of capacity (default: ``soc_initial``).
        A rolling plan starts from the present state of charge and ends where the day must end.
    curtailable_kw : float or array_like, shape (T,) or (N, T)
        PV each LEC may curtail at each step, kW (default 0). Curtailing raises the net demand; it is
        chosen only when nothing else can take a surplus (an export limit with a full battery).
    throughput_penalty_eur_per_kwh : float
        Tie-breaker per kWh charged plus discharged, so that among equally cheap schedules the
        one without needless cycling is returned (as in ``ems.schedule_battery``). Not part of
        the reported costs.
    tie_break_eur_per_kwh2 : float
        Tiny quadratic cost ``tie_break * power**2 * dt_h`` on every grid import, export, charge
        and discharge (default 1e-6). Makes the optimum unique and keeps HiGHS' QP solver stable
        (see the module docstring). Not part of the reported costs.
    lec_names : sequence of str, optional
        Names for reports (default ``lec_1`` ... ``lec_N``).
    """

    net_demand_kw: np.ndarray
    dt_h: float
    import_price_eur_per_kwh: np.ndarray
    export_price_eur_per_kwh: np.ndarray
    edges: tuple = ()
    edge_capacity_kw: np.ndarray = math.inf
    wheeling_eur_per_kwh2: np.ndarray = 1e-3
    wheeling_fee_eur_per_kwh: np.ndarray = 0.0
    battery_capacity_kwh: np.ndarray = 0.0
    battery_power_kw: np.ndarray = 0.0
    battery_efficiency: np.ndarray = 1.0
    soc_initial: np.ndarray = 0.5
    grid_import_limit_kw: np.ndarray = math.inf
    grid_export_limit_kw: np.ndarray = math.inf
    limit_penalty_eur_per_kwh: float = math.inf
    soc_final: np.ndarray = None
    curtailable_kw: np.ndarray = 0.0
    throughput_penalty_eur_per_kwh: float = 1e-6
    tie_break_eur_per_kwh2: float = 1e-6
    lec_names: tuple = None

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        demand = np.asarray(self.net_demand_kw, dtype=float)
        if demand.ndim != 2 or demand.shape[0] < 1 or demand.shape[1] < 1:
            raise ValueError(f"net_demand_kw must have shape (N LECs, T steps) with N, T >= 1, got {demand.shape}")
        if not np.all(np.isfinite(demand)):
            raise ValueError("net_demand_kw must be finite")
        n, t = demand.shape
        put("net_demand_kw", _frozen(demand))

        dt = float(self.dt_h)
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt_h must be a positive number of hours, got {self.dt_h}")
        put("dt_h", dt)

        buy = _per_lec_and_step("import_price_eur_per_kwh", self.import_price_eur_per_kwh, n, t)
        sell = _per_lec_and_step("export_price_eur_per_kwh", self.export_price_eur_per_kwh, n, t)
        if not (np.all(np.isfinite(buy)) and np.all(np.isfinite(sell))):
            raise ValueError("import and export prices must be finite")
        if np.any(sell > buy):
            i, k = np.argwhere(sell > buy)[0]
            raise ValueError(
                f"export price {sell[i, k]} exceeds import price {buy[i, k]} (LEC {i}, step {k}): "
                "buying to sell at once would pay"
            )
        put("import_price_eur_per_kwh", _frozen(buy))
        put("export_price_eur_per_kwh", _frozen(sell))

        edges = []
        seen = set()
        for edge in self.edges:
            try:
                a, b = (int(v) for v in edge)
            except (TypeError, ValueError):
                raise ValueError(f"each edge must be a pair of LEC indices, got {edge!r}") from None
            if not (0 <= a < n and 0 <= b < n):
                raise ValueError(f"edge {edge!r} names a LEC outside 0..{n - 1}")
            if a == b:
                raise ValueError(f"edge {edge!r} connects a LEC to itself")
            if frozenset((a, b)) in seen:
                raise ValueError(f"edge {edge!r} appears twice (edges are undirected)")
            seen.add(frozenset((a, b)))
            edges.append((a, b))
        put("edges", tuple(edges))
        n_edges = len(edges)

        capacity = _per_edge("edge_capacity_kw", self.edge_capacity_kw, n_edges)
        if np.any(np.isnan(capacity)) or np.any(capacity < 0):
            raise ValueError("edge_capacity_kw must be >= 0 (inf allowed)")
        wheeling = _per_edge("wheeling_eur_per_kwh2", self.wheeling_eur_per_kwh2, n_edges)
        if not np.all(np.isfinite(wheeling) & (wheeling > 0)):
            raise ValueError("wheeling_eur_per_kwh2 must be positive and finite: it makes the exchanges unique")
        fee = _per_edge("wheeling_fee_eur_per_kwh", self.wheeling_fee_eur_per_kwh, n_edges)
        if not np.all(np.isfinite(fee) & (fee >= 0)):
            raise ValueError("wheeling_fee_eur_per_kwh must be >= 0 and finite")
        put("edge_capacity_kw", _frozen(capacity))
        put("wheeling_eur_per_kwh2", _frozen(wheeling))
        put("wheeling_fee_eur_per_kwh", _frozen(fee))

        energy = _per_lec("battery_capacity_kwh", self.battery_capacity_kwh, n, default=0.0)
        power = _per_lec("battery_power_kw", self.battery_power_kw, n, default=0.0)
        efficiency = _per_lec("battery_efficiency", self.battery_efficiency, n, default=1.0)
        soc = _per_lec("soc_initial", self.soc_initial, n, default=0.5)
        if not np.all(np.isfinite(energy) & (energy >= 0)):
            raise ValueError("battery_capacity_kwh must be >= 0 and finite (0 or None: no battery)")
        if not np.all(np.isfinite(power) & (power >= 0)):
            raise ValueError("battery_power_kw must be >= 0 and finite")
        if not np.all((efficiency > 0) & (efficiency <= 1)):
            raise ValueError("battery_efficiency must be in (0, 1]")
        if not np.all((soc >= 0) & (soc <= 1)):
            raise ValueError("soc_initial must be a fraction in [0, 1]")
        # Without storage a power rating would still let charge and discharge run together and
        # burn energy through the efficiency loss; no capacity means no battery at all.
        power = np.where(energy > 0, power, 0.0)
        put("battery_capacity_kwh", _frozen(energy))
        put("battery_power_kw", _frozen(power))
        put("battery_efficiency", _frozen(efficiency))
        put("soc_initial", _frozen(soc))
        soc_final = soc if self.soc_final is None else _per_lec("soc_final", self.soc_final, n, default=0.5)
        if not np.all((soc_final >= 0) & (soc_final <= 1)):
            raise ValueError("soc_final must be a fraction in [0, 1]")
        put("soc_final", _frozen(soc_final))

        for name in ("grid_import_limit_kw", "grid_export_limit_kw"):
            limit = _per_lec_and_step(name, getattr(self, name), n, t)
            if np.any(np.isnan(limit)) or np.any(limit < 0):
                raise ValueError(f"{name} must be >= 0 (inf: no limit)")
            put(name, _frozen(limit))
        limit_penalty = float(self.limit_penalty_eur_per_kwh)
        if not limit_penalty > 0:
            raise ValueError("limit_penalty_eur_per_kwh must be positive (inf: hard limits)")
        put("limit_penalty_eur_per_kwh", limit_penalty)
        curtailable = _per_lec_and_step("curtailable_kw", self.curtailable_kw, n, t)
        if not np.all(np.isfinite(curtailable) & (curtailable >= 0)):
            raise ValueError("curtailable_kw must be >= 0 and finite")
        put("curtailable_kw", _frozen(curtailable))

        penalty = float(self.throughput_penalty_eur_per_kwh)
        if not (math.isfinite(penalty) and penalty >= 0):
            raise ValueError("throughput_penalty_eur_per_kwh must be >= 0 and finite")
        put("throughput_penalty_eur_per_kwh", penalty)
        tie_break = float(self.tie_break_eur_per_kwh2)
        if not (math.isfinite(tie_break) and tie_break > 0):
            raise ValueError("tie_break_eur_per_kwh2 must be positive and finite")
        put("tie_break_eur_per_kwh2", tie_break)

        names = tuple(f"lec_{i + 1}" for i in range(n)) if self.lec_names is None else tuple(self.lec_names)
        if len(names) != n or len(set(names)) != n:
            raise ValueError(f"lec_names must hold {n} distinct names")
        put("lec_names", names)

    @property
    def n_lecs(self) -> int:
        return self.net_demand_kw.shape[0]

    @property
    def n_steps(self) -> int:
        return self.net_demand_kw.shape[1]

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def neighbours(self, lec: int) -> tuple:
        """Edges at ``lec`` as ``(edge_index, neighbour, direction)`` tuples.

        ``direction`` is +1 if the edge is oriented from ``lec`` to the neighbour, else -1, so
        ``direction * exchange_kw[edge_index]`` is the power ``lec`` sends to the neighbour.
        """
        found = []
        for e, (a, b) in enumerate(self.edges):
            if a == lec:
                found.append((e, b, 1))
            elif b == lec:
                found.append((e, a, -1))
        return tuple(found)

    def without_exchanges(self) -> ExchangeProblem:
        """The same LECs with no neighbour graph: each on its own (the stand-alone baseline)."""
        return dataclasses.replace(
            self, edges=(), edge_capacity_kw=math.inf, wheeling_eur_per_kwh2=1e-3, wheeling_fee_eur_per_kwh=0.0
        )

    def _hops_from(self, lec: int) -> dict:
        """Hop distance from ``lec`` to every LEC of its connected component."""
        hops = {lec: 0}
        queue = deque([lec])
        while queue:
            here = queue.popleft()
            for _, there, _ in self.neighbours(here):
                if there not in hops:
                    hops[there] = hops[here] + 1
                    queue.append(there)
        return hops

    def component_edges(self, lec: int) -> tuple:
        """Indices of the edges in the connected component of ``lec`` (the edges it must hear of)."""
        members = self._hops_from(lec)
        return tuple(e for e, (a, _) in enumerate(self.edges) if a in members)

    def stop_delay(self, lec: int) -> int:
        """Iterations until every agent of ``lec``'s component has heard every edge's residuals.

        The largest hop distance from a LEC of the component to the nearer end of an edge of it
        (an edge's residuals are known to its ends after the iteration and travel one hop per
        iteration). 0 for a LEC without neighbours.
        """
        members = self._hops_from(lec)
        edges = [self.edges[e] for e in self.component_edges(lec)]
        if not edges:
            return 0
        delay = 0
        for member in members:
            hops = self._hops_from(member)
            delay = max(delay, max(min(hops[a], hops[b]) for a, b in edges))
        return delay


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExchangeResult:
    """Schedules and costs of all LECs.

    Attributes
    ----------
    lec_names : tuple of str
    import_kw, export_kw, charge_kw, discharge_kw : numpy.ndarray, shape (N, T)
        Grid import and export, battery charge and discharge, kW.
    soc_kwh : numpy.ndarray, shape (N, T)
        Battery energy at the end of each step, kWh.
    exchange_kw : numpy.ndarray, shape (n_edges, T)
        Exchange on each edge, kW, positive from ``edges[e][0]`` to ``edges[e][1]``. After a
        negotiation: the agreed value (the average of the two LECs' proposals).
    exchange_out_kw : numpy.ndarray, shape (N, T)
        Net power each LEC sends to all its neighbours as it scheduled it (after a negotiation,
        from its own proposals, so that its balance holds exactly; after one stopped at the cap,
        from the agreed exchanges).
    cost_eur : numpy.ndarray, shape (N,)
        Grid cost of each LEC plus half the wheeling cost and fee of each of its edges (the
        throughput tie-breaker excluded).
    total_cost_eur : float
        Sum of ``cost_eur``.
    local_price_eur_per_kwh : numpy.ndarray, shape (N, T), or None
        Dual of each LEC's balance: the cost of one more kWh of net demand there.
    curtailed_kw : numpy.ndarray, shape (N, T), or None
        PV curtailed (only where the problem allows it).
    limit_excess_kw : numpy.ndarray, shape (N, T), or None
        Physical import or export beyond the DSO's limits (only with soft limits).
    """

    lec_names: tuple
    import_kw: np.ndarray
    export_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    exchange_kw: np.ndarray
    exchange_out_kw: np.ndarray
    cost_eur: np.ndarray
    total_cost_eur: float
    local_price_eur_per_kwh: np.ndarray | None = None
    curtailed_kw: np.ndarray | None = None
    limit_excess_kw: np.ndarray | None = None

    def of_lec(self, lec: int) -> dict:
        """One LEC's schedule, keyed like :meth:`LecAgent.schedule` (arrays of shape (T,))."""
        keys = ("import_kw", "export_kw", "charge_kw", "discharge_kw", "soc_kwh", "curtailed_kw", "limit_excess_kw")
        return {key: getattr(self, key)[lec] for key in keys}


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
        Per iteration, ``rho * max |z^k - z^(k-1)|`` over edges and steps.
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


def balance_mismatch_kw(problem: ExchangeProblem, result: ExchangeResult) -> np.ndarray:
    """Left-hand side of every LEC's balance (zero when it holds), shape (N, T), kW."""
    curtailed = 0.0 if result.curtailed_kw is None else result.curtailed_kw
    return (
        problem.net_demand_kw + curtailed + result.charge_kw - result.discharge_kw - result.import_kw
        + result.export_kw + result.exchange_out_kw
    )


def _grid_cost_eur(problem: ExchangeProblem, lec: int, import_kw, export_kw) -> float:
    return float(
        problem.dt_h * np.sum(
            problem.import_price_eur_per_kwh[lec] * import_kw - problem.export_price_eur_per_kwh[lec] * export_kw
        )
    )


def _half_edge_cost_eur(problem: ExchangeProblem, edge: int, exchange_kw) -> float:
    """Half of an edge's wheeling cost and fee: what each of its two LECs pays."""
    w = problem.wheeling_eur_per_kwh2[edge]
    fee = problem.wheeling_fee_eur_per_kwh[edge]
    return float(0.5 * problem.dt_h * np.sum(w * exchange_kw**2 + fee * np.abs(exchange_kw)))


# --------------------------------------------------------------------------------------------
# QP assembly (HiGHS minimises c'x + 1/2 x'Qx subject to row_lower <= Ax <= row_upper)
# --------------------------------------------------------------------------------------------


class _QpBuilder:
    def __init__(self):
        self.cost, self.col_lower, self.col_upper = [], [], []
        self.row_lower, self.row_upper = [], []
        self.a_entries = ([], [], [])
        self.q_entries = ([], [], [])
        self.n_cols = 0
        self.n_rows = 0

    def add_columns(self, cost, lower, upper) -> np.ndarray:
        cost, lower, upper = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (cost, lower, upper)))
        index = np.arange(self.n_cols, self.n_cols + cost.size)
        self.cost.append(cost.ravel())
        self.col_lower.append(lower.ravel())
        self.col_upper.append(upper.ravel())
        self.n_cols += cost.size
        return index

    def add_rows(self, lower, upper) -> np.ndarray:
        lower, upper = np.broadcast_arrays(np.asarray(lower, dtype=float), np.asarray(upper, dtype=float))
        index = np.arange(self.n_rows, self.n_rows + lower.size)
        self.row_lower.append(lower.ravel())
        self.row_upper.append(upper.ravel())
        self.n_rows += lower.size
        return index

    def add_coefficients(self, rows, cols, values):
        rows, cols, values = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(values, dtype=float))
        for store, part in zip(self.a_entries, (rows, cols, values)):
            store.append(part.ravel())

    def add_curvature(self, cols, curvature):
        """Add ``curvature / 2 * x[cols]**2`` to the objective (element-wise)."""
        cols, curvature = np.broadcast_arrays(np.asarray(cols), np.asarray(curvature, dtype=float))
        for store, part in zip(self.q_entries, (cols, cols, curvature)):
            store.append(part.ravel())

    def hessian(self) -> sp.csc_matrix:
        """Lower triangle of Q, column-wise (HiGHS' ``kTriangular``)."""
        def joined(parts, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        rows, cols = joined(self.q_entries[0], int), joined(self.q_entries[1], int)
        q = sp.csc_matrix((joined(self.q_entries[2], float), (rows, cols)), shape=(self.n_cols, self.n_cols))
        q.sum_duplicates()
        return q

    def build(self) -> highspy.Highs:
        def joined(parts, dtype=float):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = self.n_rows
        lp.col_cost_ = _OBJECTIVE_SCALE * joined(self.cost)
        lp.col_lower_ = joined(self.col_lower)
        lp.col_upper_ = joined(self.col_upper)
        lp.row_lower_ = joined(self.row_lower)
        lp.row_upper_ = joined(self.row_upper)
        a = sp.csc_matrix(
            (joined(self.a_entries[2]), (joined(self.a_entries[0], int), joined(self.a_entries[1], int))),
            shape=(self.n_rows, self.n_cols),
        )
        a.sum_duplicates()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = self.n_cols
        lp.a_matrix_.num_row_ = self.n_rows
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data

        model = highspy.HighsModel()
        model.lp_ = lp
        if self.q_entries[0]:
            q = self.hessian()
            hessian = highspy.HighsHessian()
            hessian.dim_ = self.n_cols
            hessian.format_ = highspy.HessianFormat.kTriangular
            hessian.start_ = q.indptr.astype(np.int32)
            hessian.index_ = q.indices.astype(np.int32)
            hessian.value_ = _OBJECTIVE_SCALE * q.data
            model.hessian_ = hessian

        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("qp_regularization_value", _QP_REGULARISATION)
        # A day's local QP takes a few hundred active-set iterations; a federate must not hang
        # if HiGHS ever cycles.
        highs.setOptionValue("qp_iteration_limit", _QP_ITERATION_LIMIT)
        for option in ("primal_feasibility_tolerance", "dual_feasibility_tolerance", "optimality_tolerance"):
            highs.setOptionValue(option, _SOLVER_TOLERANCE)
        highs.passModel(model)
        return highs


def _run(highs: highspy.Highs, what: str):
    """Solve; return column values and row duals."""
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        infeasible = status == highspy.HighsModelStatus.kInfeasible
        error = InfeasibleExchange if infeasible else SolverFailure
        raise error(f"{what} not solved to optimality ({highs.modelStatusToString(status)})")
    solution = highs.getSolution()
    return np.asarray(solution.col_value), np.asarray(solution.row_dual) / _OBJECTIVE_SCALE


@dataclass(frozen=True)
class _LecColumns:
    """Where one LEC's variables and balance rows sit in a QP (``None``: the problem has no such columns)."""

    grid_import: np.ndarray
    grid_export: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    soc: np.ndarray
    balance_rows: np.ndarray
    import_excess: np.ndarray | None = None
    export_excess: np.ndarray | None = None
    curtail: np.ndarray | None = None

    def values(self, x: np.ndarray) -> dict:
        """The LEC's powers from a solution vector (``limit_excess_kw``: physical flow beyond the DSO's limits)."""
        t = len(self.grid_import)

        def part(cols):
            return x[cols] if cols is not None else np.zeros(t)

        import_excess, export_excess = part(self.import_excess), part(self.export_excess)
        return {
            "import_kw": x[self.grid_import],
            "export_kw": x[self.grid_export],
            "charge_kw": x[self.charge],
            "discharge_kw": x[self.discharge],
            "soc_kwh": x[self.soc],
            "curtailed_kw": part(self.curtail),
            "limit_excess_kw": import_excess + export_excess,
        }


def _add_lec(qp: _QpBuilder, problem: ExchangeProblem, lec: int, sent_kw=None) -> _LecColumns:
    """Columns, balance and SoC rows of one LEC; exchanges are added to the balance by the caller.

    ``sent_kw`` (shape (T,)): power the LEC sends to its neighbours, fixed (it joins the balance's
    right-hand side, not the DSO's limits); otherwise the caller adds exchange columns.

    Balance row (load convention rearranged with the data on the right)::

        import - export - charge + discharge - curtail - (power sent to neighbours) = net_demand

    The DSO's limits apply to the LEC's physical exchange with the feeder (net demand plus battery
    plus curtailment); with soft limits (finite ``limit_penalty_eur_per_kwh``) an excess column
    per direction and step relaxes them at the penalty.
    """
    t, dt = problem.n_steps, problem.dt_h
    penalty = problem.throughput_penalty_eur_per_kwh * dt
    energy = problem.battery_capacity_kwh[lec]
    power = problem.battery_power_kw[lec]
    soc_start = problem.soc_initial[lec] * energy
    leg = math.sqrt(problem.battery_efficiency[lec])
    buy, sell = problem.import_price_eur_per_kwh[lec], problem.export_price_eur_per_kwh[lec]
    import_limit, export_limit = problem.grid_import_limit_kw[lec], problem.grid_export_limit_kw[lec]

    grid_import = qp.add_columns(dt * buy, 0.0, np.inf)
    grid_export = qp.add_columns(-dt * sell, 0.0, np.inf)
    charge = qp.add_columns(np.full(t, penalty), 0.0, power)
    discharge = qp.add_columns(np.full(t, penalty), 0.0, power)
    soc_upper = np.full(t, energy)
    soc_lower = np.zeros(t)
    soc_lower[-1] = soc_upper[-1] = problem.soc_final[lec] * energy
    soc = qp.add_columns(np.zeros(t), soc_lower, soc_upper)
    powers = [grid_import, grid_export, charge, discharge]
    curtail = None
    if np.any(problem.curtailable_kw[lec] > 0):
        curtail = qp.add_columns(np.full(t, penalty), 0.0, problem.curtailable_kw[lec])
        powers.append(curtail)

    balance_rhs = problem.net_demand_kw[lec] + (0.0 if sent_kw is None else np.asarray(sent_kw, dtype=float))
    balance = qp.add_rows(balance_rhs, balance_rhs)
    qp.add_coefficients(balance, grid_import, 1.0)
    qp.add_coefficients(balance, grid_export, -1.0)
    qp.add_coefficients(balance, charge, -1.0)
    qp.add_coefficients(balance, discharge, 1.0)
    if curtail is not None:
        qp.add_coefficients(balance, curtail, -1.0)

    # The DSO's limits bound what physically crosses the LEC's boundary: its members' net demand
    # plus charge minus discharge plus curtailment (= import - export - power sent to neighbours).
    # Exchanges with neighbours are bookkeeping over the same feeder and cannot relieve it.
    import_excess = export_excess = None
    soft = math.isfinite(problem.limit_penalty_eur_per_kwh)
    net = problem.net_demand_kw[lec]
    for limit, sign in ((import_limit, 1.0), (export_limit, -1.0)):
        if not np.any(np.isfinite(limit)):
            continue
        # sign * (charge - discharge + curtail) - excess <= limit - sign * net
        row = qp.add_rows(-np.inf, np.where(np.isfinite(limit), limit - sign * net, np.inf))
        qp.add_coefficients(row, charge, sign)
        qp.add_coefficients(row, discharge, -sign)
        if curtail is not None:
            qp.add_coefficients(row, curtail, sign)
        if soft:
            excess = qp.add_columns(np.full(t, dt * problem.limit_penalty_eur_per_kwh), 0.0, np.inf)
            qp.add_coefficients(row, excess, -1.0)
            powers.append(excess)
            if sign > 0:
                import_excess = excess
            else:
                export_excess = excess
    for cols in powers:
        qp.add_curvature(cols, 2.0 * problem.tie_break_eur_per_kwh2 * dt)

    # soc[k] - soc[k-1] - sqrt(eta) * dt * charge[k] + dt / sqrt(eta) * discharge[k] = 0
    soc_rhs = np.zeros(t)
    soc_rhs[0] = soc_start
    soc_rows = qp.add_rows(soc_rhs, soc_rhs)
    qp.add_coefficients(soc_rows, soc, 1.0)
    qp.add_coefficients(soc_rows[1:], soc[:-1], -1.0)
    qp.add_coefficients(soc_rows, charge, -leg * dt)
    qp.add_coefficients(soc_rows, discharge, dt / leg)
    return _LecColumns(grid_import, grid_export, charge, discharge, soc, balance, import_excess, export_excess, curtail)


def _add_exchange(qp: _QpBuilder, capacity_kw: float, n_steps: int, fee_cost) -> np.ndarray:
    """Columns of one exchange (kW, free sign, within the capacity); returns their indices.

    A linear fee on ``|exchange|`` goes on an extra column ``size >= |exchange|`` (two rows)
    rather than on separate send and receive columns: with those, the wheeling cost
    ``(send - receive)**2`` has a singular Hessian, which HiGHS' QP solver can take for
    non-convex (measured with highspy 1.15).
    """
    fee_cost = np.broadcast_to(np.asarray(fee_cost, dtype=float), (n_steps,))
    exchange = qp.add_columns(np.zeros(n_steps), -capacity_kw, np.full(n_steps, capacity_kw))
    if np.any(fee_cost > 0):
        size = qp.add_columns(fee_cost, 0.0, np.full(n_steps, capacity_kw))
        above_plus = qp.add_rows(np.zeros(n_steps), np.inf)  # size - exchange >= 0
        qp.add_coefficients(above_plus, size, 1.0)
        qp.add_coefficients(above_plus, exchange, -1.0)
        above_minus = qp.add_rows(np.zeros(n_steps), np.inf)  # size + exchange >= 0
        qp.add_coefficients(above_minus, size, 1.0)
        qp.add_coefficients(above_minus, exchange, 1.0)
    return exchange


# --------------------------------------------------------------------------------------------
# Centralised optimum
# --------------------------------------------------------------------------------------------


def solve_centralised(problem: ExchangeProblem) -> ExchangeResult:
    """Optimum of all LECs together, as one QP (what a supervisor would compute).

    Parameters
    ----------
    problem : ExchangeProblem

    Returns
    -------
    ExchangeResult
        With the balance duals as local prices.

    Raises
    ------
    InfeasibleExchange
        If no schedule meets the grid limits and capacities.
    """
    qp = _QpBuilder()
    t, dt = problem.n_steps, problem.dt_h
    lecs = [_add_lec(qp, problem, i) for i in range(problem.n_lecs)]
    exchanges = []
    for e, (a, b) in enumerate(problem.edges):
        exchange = _add_exchange(qp, problem.edge_capacity_kw[e], t, dt * problem.wheeling_fee_eur_per_kwh[e])
        # wheeling * dt * p^2 = 1/2 * (2 * wheeling * dt) * p^2
        qp.add_curvature(exchange, 2.0 * problem.wheeling_eur_per_kwh2[e] * dt)
        qp.add_coefficients(lecs[a].balance_rows, exchange, -1.0)  # a sends
        qp.add_coefficients(lecs[b].balance_rows, exchange, 1.0)  # b receives
        exchanges.append(exchange)

    values, duals = _run(qp.build(), "centralised exchange QP")
    exchange_kw = np.array([values[x] for x in exchanges]).reshape(problem.n_edges, t)
    return _result(
        problem,
        [c.values(values) for c in lecs],
        exchange_kw=exchange_kw,
        own_exchange_kw={(e, lec): exchange_kw[e] for e, edge in enumerate(problem.edges) for lec in edge},
        local_price=np.array([duals[c.balance_rows] for c in lecs]) / dt,
    )


def _result(problem, lec_values, *, exchange_kw, own_exchange_kw, local_price):
    """Assemble an ExchangeResult from each LEC's :meth:`_LecColumns.values`.

    ``own_exchange_kw[(edge, lec)]`` is the edge as ``lec`` scheduled it.
    """

    def stacked(key):
        return np.array([v[key] for v in lec_values])

    grid_import, grid_export = stacked("import_kw"), stacked("export_kw")
    costs = np.zeros(problem.n_lecs)
    out = np.zeros((problem.n_lecs, problem.n_steps))
    for i in range(problem.n_lecs):
        costs[i] = _grid_cost_eur(problem, i, grid_import[i], grid_export[i])
        for e, _, direction in problem.neighbours(i):
            own = own_exchange_kw[(e, i)]
            costs[i] += _half_edge_cost_eur(problem, e, own)
            out[i] += direction * own
    return ExchangeResult(
        lec_names=problem.lec_names,
        import_kw=grid_import,
        export_kw=grid_export,
        charge_kw=stacked("charge_kw"),
        discharge_kw=stacked("discharge_kw"),
        soc_kwh=stacked("soc_kwh"),
        exchange_kw=exchange_kw,
        exchange_out_kw=out,
        cost_eur=costs,
        total_cost_eur=float(costs.sum()),
        local_price_eur_per_kwh=local_price,
        curtailed_kw=stacked("curtailed_kw"),
        limit_excess_kw=stacked("limit_excess_kw"),
    )


# --------------------------------------------------------------------------------------------
# ADMM agent (what one LEC_EMS federate holds)
# --------------------------------------------------------------------------------------------


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
        Consensus ``z`` with each neighbour (the average of the last two proposals).
    duals_eur_per_kwh : dict of int to numpy.ndarray
        ADMM dual ``lambda`` of each edge (the same value at both ends).
    proposals_kw : dict of int to numpy.ndarray
        This agent's last proposal to each neighbour.
    residual_reports : dict of (edge, iteration) to (primal_residual_kw, dual_residual_eur_per_kwh)
        Residuals heard of or computed, kept while the stopping rule may still need them.
    finished, converged : bool
        The agent has stopped; it stopped on the tolerance rule rather than the cap.
    """

    iteration: int = 0
    targets_kw: dict = field(default_factory=dict)
    duals_eur_per_kwh: dict = field(default_factory=dict)
    proposals_kw: dict = field(default_factory=dict)
    residual_reports: dict = field(default_factory=dict)
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
        ADMM penalty, EUR/kWh per kW of mismatch. The same at every agent. Default
        :func:`default_rho_eur_per_kwh2`.
    tol_kw : float
        Tolerance on every edge's primal residual, kW.
    dual_tol_eur_per_kwh : float, optional
        Tolerance on every edge's dual residual; default :func:`default_dual_tol_eur_per_kwh`.
    max_iterations : int
        Stop here at the latest.

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
        self.neighbours = problem.neighbours(lec)
        self.edge_to = {n: e for e, n, _ in self.neighbours}
        self.component_edges = problem.component_edges(lec)
        self.stop_delay = problem.stop_delay(lec)

        t = problem.n_steps
        self.state = AgentState(
            targets_kw={n: np.zeros(t) for _, n, _ in self.neighbours},
            duals_eur_per_kwh={n: np.zeros(t) for _, n, _ in self.neighbours},
            proposals_kw={n: np.zeros(t) for _, n, _ in self.neighbours},
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
        self._highs = qp.build()
        self._own_hessian = qp.hessian()  # the tie-break terms; the exchange terms depend on rho
        self._hessian_rho = None
        self._values = None
        self._duals = None
        self._agreed = None  # (values, duals, columns) of the plan around the agreed exchanges

    def _set_curvature(self, rho: float):
        """Hessian of half the wheeling cost plus the ADMM penalty: dt * (w / 2 + rho / 2) * x^2."""
        if rho == self._hessian_rho:
            return
        p, dt = self.problem, self.problem.dt_h
        qp = _QpBuilder()
        qp.n_cols = n_cols = self._highs.getNumCol()
        for e, n, _ in self.neighbours:
            qp.add_curvature(self._exchange_columns[n], dt * (p.wheeling_eur_per_kwh2[e] + rho))
        q = (self._own_hessian + qp.hessian()).tocsc()
        q.sort_indices()
        self._highs.passHessian(
            n_cols, q.nnz, highspy.HessianFormat.kTriangular.value,
            q.indptr.astype(np.int32), q.indices.astype(np.int32), _OBJECTIVE_SCALE * q.data,
        )
        self._hessian_rho = rho

    def local_step(self, neighbour_targets_kw: dict, duals_eur_per_kwh: dict, rho_eur_per_kwh2: float) -> dict:
        """Solve this LEC's local QP and return its proposed exchanges.

        Minimises the LEC's grid and battery costs, half of each incident edge's wheeling cost
        and fee, and for each neighbour n ``sum_t dt * (lambda_n * x_n + rho / 2 * (x_n - z_n)**2)``.

        Parameters
        ----------
        neighbour_targets_kw : dict of int to array_like, shape (T,)
            Consensus ``z_n``: the agreed power this LEC sends to neighbour n, kW.
        duals_eur_per_kwh : dict of int to array_like, shape (T,)
            ADMM dual ``lambda_n`` of the edge to neighbour n.
        rho_eur_per_kwh2 : float
            ADMM penalty. Changing it re-passes the Hessian; otherwise only the linear objective
            changes.

        Returns
        -------
        dict of int to numpy.ndarray, shape (T,)
            Proposed power sent to each neighbour, kW (negative: received).
        """
        dt = self.problem.dt_h
        self._set_curvature(float(rho_eur_per_kwh2))
        indices, costs = [], []
        for _, n, _ in self.neighbours:
            # Linear part of dt * (lambda * x + rho/2 * (x - z)^2).
            indices.append(self._exchange_columns[n])
            costs.append(dt * (np.asarray(duals_eur_per_kwh[n], dtype=float)
                               - rho_eur_per_kwh2 * np.asarray(neighbour_targets_kw[n], dtype=float)))
        if indices:
            index = np.concatenate(indices).astype(np.int32)
            self._highs.changeColsCost(len(index), index, _OBJECTIVE_SCALE * np.concatenate(costs))
        self._values, self._duals = _run(self._highs, f"local QP of LEC {self.problem.lec_names[self.lec]}")
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
        sent = np.sum([self.state.targets_kw[n] for _, n, _ in self.neighbours], axis=0)
        qp = _QpBuilder()
        columns = _add_lec(qp, self.problem, self.lec, sent_kw=sent)
        values, duals = _run(qp.build(), f"plan of LEC {self.problem.lec_names[self.lec]} with the exchanges "
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
            exchange_to = {n: np.array(self.state.targets_kw[n], dtype=float) for _, n, _ in self.neighbours}
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

    # -- ADMM protocol ---------------------------------------------------------------------

    def propose(self) -> list:
        """Run the local step of the next iteration; return one message per neighbour."""
        s = self.state
        if s.finished:
            raise RuntimeError(f"agent of LEC {self.lec} has finished; nothing to propose")
        s.proposals_kw = self.local_step(s.targets_kw, s.duals_eur_per_kwh, self.rho_eur_per_kwh2)
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

        for n, theirs in heard.items():
            mine = s.proposals_kw[n]
            target = 0.5 * (mine - theirs)  # theirs is what n sends to us: -(what we send to n)
            mismatch = mine + theirs
            s.residual_reports[(self.edge_to[n], k)] = (
                float(np.max(np.abs(mismatch))),
                self.rho_eur_per_kwh2 * float(np.max(np.abs(target - s.targets_kw[n]))),
            )
            s.targets_kw[n] = target
            s.duals_eur_per_kwh[n] = s.duals_eur_per_kwh[n] + self.rho_eur_per_kwh2 * 0.5 * mismatch
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


def admm_negotiate(
    problem: ExchangeProblem,
    rho_eur_per_kwh2: float | None = None,
    tol_kw: float = DEFAULT_TOL_KW,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    *,
    dual_tol_eur_per_kwh: float | None = None,
) -> NegotiationResult:
    """Negotiate the exchanges with one :class:`LecAgent` per LEC, in one process.

    Follows the federates' message pattern: every iteration each unfinished agent proposes
    (local step), its messages are delivered to the neighbours, and each agent updates its
    consensus, duals and residual reports; agents stop by themselves (see the module docstring).

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
                 max_iterations=max_iterations)
        for i in range(problem.n_lecs)
    ]
    primal_history, dual_history = [], []
    first_within_tol = None
    messages_sent = 0
    while not all(a.state.finished for a in agents):
        active = [a for a in agents if not a.state.finished]
        before = {(a.lec, n): z.copy() for a in active for n, z in a.state.targets_kw.items()}
        outbox = [m for a in active for m in a.propose()]
        messages_sent += len(outbox)
        for a in active:
            a.receive([m for m in outbox if m.receiver == a.lec])
        # The federation-wide view, for the record only: the agents decide from their reports.
        primal = change = 0.0
        for a in active:
            for _, n, _ in a.neighbours:
                theirs = agents[n].state.proposals_kw[a.lec]
                primal = max(primal, float(np.max(np.abs(a.state.proposals_kw[n] + theirs))))
                change = max(change, float(np.max(np.abs(a.state.targets_kw[n] - before[(a.lec, n)]))))
        primal_history.append(primal)
        dual_history.append(rho_eur_per_kwh2 * change)
        if first_within_tol is None and primal <= tol_kw and rho_eur_per_kwh2 * change <= dual_tol:
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
        consensus[e] = agents[a].state.targets_kw[b]
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
