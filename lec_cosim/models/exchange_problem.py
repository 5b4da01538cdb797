"""The exchange problem between neighbouring LECs: its data, checked once, and its neighbour graph.

:class:`ExchangeProblem` holds what every way of solving the exchange needs (the centralised QP of
:mod:`lec_cosim.models.exchange`, the ADMM agents of :mod:`lec_cosim.models.admm_agent`): N local
energy communities (LECs) plan T steps of ``dt_h`` hours. LEC i has a net demand ``d[i, t]``
(members' load minus PV, kW, negative when it has a surplus), a community battery, a grid
connection and, on every edge (i, j) of an undirected neighbour graph, a net exchange ``p[e, t]``
(kW, positive from the edge's first LEC to its second). In load convention the balance of LEC i at
step t is::

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

Separate from the solvers because it is plain data with its validation and graph queries (hop
distances, connected components), shared by all of them and by the plan that builds it.

Units: powers in kW, energies in kWh, prices in EUR/kWh, ``wheeling_eur_per_kwh2`` in EUR per kW
squared per hour.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import numpy as np


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
        (see :mod:`lec_cosim.models.exchange_qp`). Not part of the reported costs.
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
