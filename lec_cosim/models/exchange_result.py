"""The schedules and costs of all LECs after an exchange, however it was solved.

:class:`ExchangeResult` is what the centralised optimum and the ADMM negotiation both return (the
negotiation wraps it in :class:`lec_cosim.models.admm.NegotiationResult`); the cost rules (each
LEC pays its grid cost and half of every incident edge's wheeling cost and fee) and the balance
check live with it so that both solvers count the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lec_cosim.models.exchange_problem import ExchangeProblem


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
