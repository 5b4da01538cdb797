"""A fast linear surrogate of the grid's DN impact as a function of the CHP outputs, for the bid learner.

:class:`LinearDnImpactModel` gives the distribution-network impact of a day
(:func:`~lec_cosim.models.grid_indicators.dn_impact`) for a batch of CHP schedules without a power
flow: the bid learner (:mod:`lec_cosim.models.bidding`) evaluates ~10^5 candidate bid sets, while
one three-phase power flow of :class:`~lec_cosim.models.three_phase_feeder.LemGrid` takes about a
millisecond. It is built from 1 + n_chp power flows per period of that grid and then knows nothing
of the network, which is why it is a module of its own.

Linear DN-impact model for the learner (:class:`LinearDnImpactModel`)
-------------------------------------------------------------------
During one day the only grid quantity the bids change is the CHP output ``u[k, h]`` (kW = kWh sold in
hour h). Loads and PV of every hour are fixed. For each hour the model runs 1 + n_chp power flows: all
CHPs off (``u = 0``), then each CHP alone at its capacity. Differences give secant sensitivities (per
kW) of

* every bus-phase voltage magnitude and angle deviation: linear;
* every branch phase current (complex phasor, from P, Q and the sending-end voltage): linear
  superposition ``I = I0 + sum_k u_k dI_k``, so the current magnitude is evaluated for the superposed
  phasor and the losses are quadratic. For a line with sequence resistances R1, R0 (Kron-reduced, as
  pandapower's model) the loss is ``R1 * sum_p |I_p|^2 + (R0 - R1)/3 * |I_a + I_b + I_c|^2`` (times the
  length); for the transformer (Dyn, zero-sequence impedance = leakage impedance, magnetising branch
  infinite) ``Rk * sum_p |I_p,LV|^2``; the same with X for the reactive losses. At the power-flow
  points both agree with pandapower's losses to ~1e-10 kW.

The secant is exact when every CHP is off or only one runs at capacity. Superposing several CHPs
ignores that a constant-power unit injects less current when the others raise the voltage at its bus:
with all six at 10 kW at the evening peak this alone made the linear model miss 9 of 61 overloaded
sections (the loss error was -1.1 %). The model therefore applies the sensitivities to *effective*
outputs ``u_eff[l] = u[l] * (1 - sum_{k != l} eps[l, k] u[k])``, with ``eps[l, k]`` the relative voltage
rise at CHP l's bus per kW of CHP k (from the same power flows; ~4e-4 per kW at most here, so
``u_eff`` is at most ~2 % below ``u``). It keeps the exactness at the calibration points and the
losses quadratic (in ``u_eff``).

Violation counts use a pre-filter: a bus-phase or branch-phase enters the evaluation of an hour only
if some output in the box ``0 <= u <= capacity`` can bring it past its limit (from the bounds of the
linear model); the superposition and the grouping into buses and lines are sparse matrix products.

Measured (this machine, 2 cores, pandapower 3.5.6 without numba; 2016-05-26, loads scaled to a
140 kW hourly peak, PF 0.95 lagging, hourly steps):

* one :meth:`LemGrid.solve` ~0.9 ms with power-grid-model (the default; ~0.7 ms of it the flow),
  0.3 s with pandapower from a flat start; building the model for 24 hours (168 power flows) ~0.4 s
  (28 s with pandapower); :meth:`LinearDnImpactModel.penalty_batch` of 20 ants x 24 hours
  1.7 ms (:meth:`~LinearDnImpactModel.components_batch`, with the voltage extremes, 8 ms). Both roughly
  double when the other core is busy.
* accuracy against full power flows over all 24 hours, for CHPs all at full, all at half output,
  three uniform-random and three random on/off schedules: hourly losses within 0.8 % (P) and 1.5 %
  (Q), day losses within 0.2 %, ``vm_min``/``vm_max`` within 6e-5 pu, ``trafo_p_kw`` within 0.01 kW.
  Counts were equal except for elements that sit at their limit: a bus-phase within 1e-4 pu of
  1.1 pu (1 bus in 4 of the 9 schedules), and four sections of one cable loaded 100.014 % (1 schedule). Day
  totals of the DN impact within 0.15 %. ``tests/test_lem_grid.py`` checks hours 3, 12 and 18.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from lec_cosim.models.day_injections import HourlyInjections, _as_series
from lec_cosim.models.grid_indicators import _GridState, _wrap_degree, dn_impact
from lec_cosim.models.three_phase_feeder import LemGrid


@dataclass(frozen=True, eq=False)
class _Grouping:
    """Which candidate entries form one counted element (a bus or a branch in one period)."""

    member: sparse.csr_matrix  # (G, M): 1 where entry m belongs to group g
    to_period: sparse.csr_matrix  # (T, G): 1 where group g lies in period t

    def count(self, viol: np.ndarray) -> np.ndarray:
        """Violated groups per period: viol (M, A) of 0/1 -> (A, T)."""
        if self.member.shape[0] == 0:
            return np.zeros((viol.shape[1], self.to_period.shape[0]))
        grouped = (self.member @ viol > 0).astype(float)  # (G, A)
        return np.asarray(self.to_period @ grouped).T


def _grouping(t_idx: np.ndarray, element: np.ndarray, n_t: int) -> _Grouping:
    """Group entries by (period, element); entries with element < 0 are not counted."""
    keep = np.flatnonzero(element >= 0)
    key = t_idx[keep].astype(np.int64) * (int(element.max(initial=0)) + 1) + element[keep]
    uniq, first, gid = np.unique(key, return_index=True, return_inverse=True)
    n_g = uniq.size
    member = sparse.csr_matrix((np.ones(keep.size), (gid.ravel(), keep)), shape=(n_g, t_idx.size))
    to_period = sparse.csr_matrix((np.ones(n_g), (t_idx[keep[first]], np.arange(n_g))), shape=(n_t, n_g))
    return _Grouping(member=member, to_period=to_period)


@dataclass(frozen=True, eq=False)
class _Threshold:
    """Entries (period, element-phase) that some u in the box can push past a limit.

    value(u) = base + sum_k u[k, t] * slope[k] (a sparse matrix over the flattened u); an entry is
    violated if (|value| if magnitude else value) is < lower or > upper; an element is violated in a
    period if any of its entries is.
    """

    weights: sparse.csr_matrix  # (M, K*T): slope of entry m on u[k, t_m] at column k*T + t_m
    base: np.ndarray  # (M,)
    lower: np.ndarray  # (M,)
    upper: np.ndarray  # (M,)
    magnitude: bool
    full: _Grouping
    reduced: _Grouping

    def counts(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Violated elements per ant and period, full and reduced model: two (A, T) arrays."""
        value = self.weights @ u.reshape(u.shape[0], -1).T + self.base[:, None]  # (M, A)
        if self.magnitude:
            value = np.abs(value)
        viol = ((value < self.lower[:, None]) | (value > self.upper[:, None])).astype(float)
        return self.full.count(viol), self.reduced.count(viol)


def _threshold(base, slope, lower, upper, element, reduced_element, u_lo, u_hi, magnitude) -> _Threshold:
    """Keep the entries that some u in the box u_lo <= u <= u_hi can push past a limit.

    base (T, N), slope (T, K, N) per kW, lower/upper (N,); element (N,) the counted element of each
    entry (bus or branch) and reduced_element (N,) its element of the reduced model (-1: none);
    u_lo, u_hi (T, K) the box of the (effective) CHP outputs of each period.
    """
    n_t, n_k, _ = slope.shape
    a, b = u_lo[:, :, None] * slope, u_hi[:, :, None] * slope
    if magnitude:
        maybe = np.abs(base) + np.maximum(np.abs(a), np.abs(b)).sum(axis=1) > upper
    else:
        lo = base + np.minimum(a, b).sum(axis=1)
        hi = base + np.maximum(a, b).sum(axis=1)
        maybe = (lo < lower) | (hi > upper)
    t_idx, n_idx = np.nonzero(maybe)
    m = t_idx.size
    rows = np.repeat(np.arange(m), n_k)
    cols = (np.arange(n_k)[None, :] * n_t + t_idx[:, None]).ravel()
    weights = sparse.csr_matrix((np.swapaxes(slope, 1, 2)[t_idx, n_idx].ravel(), (rows, cols)), shape=(m, n_k * n_t))
    return _Threshold(weights=weights, base=base[t_idx, n_idx], lower=lower[n_idx], upper=upper[n_idx],
                      magnitude=magnitude, full=_grouping(t_idx, element[n_idx], n_t),
                      reduced=_grouping(t_idx, reduced_element[n_idx], n_t))


COMPONENTS = ("vm_min_pu", "vm_max_pu", "bus_violations", "bus_violations_reduced", "angle_violations",
              "angle_violations_reduced", "line_overloads", "line_overloads_reduced", "p_loss_kw",
              "q_loss_kvar", "trafo_p_kw", "dn_impact")
"""Per-period quantities of :meth:`LinearDnImpactModel.components_batch`."""


class LinearDnImpactModel:
    """DN impact of a day as a fast function of the CHP outputs, for the bid learner.

    Build it with :meth:`build`. Voltages and angle deviations are linear in the effective CHP outputs
    (:meth:`effective_outputs`; ``u`` in kW, for hourly periods the CHP's kWh sold in the hour), branch
    currents are linear complex superpositions (so losses are quadratic), with secant sensitivities
    from 1 + n_chp three-phase power flows per period (module docstring). Valid for
    ``0 <= u <= capacity``.

    Use it as the ``dn_penalty`` of :class:`~lec_cosim.models.bidding.BiddingProblem`: it has
    :meth:`penalty_batch` (the batched path of ``BiddingProblem.evaluate``) and is callable on a
    :class:`~lec_cosim.models.bidding.DayResult`. The CHP order is :attr:`chp_names`, which must be the
    order of the ``LemDay``'s CHPs, and the periods must be the day's hours.

    Attributes
    ----------
    chp_names : tuple of str
    chp_capacity_kw : numpy.ndarray, shape (n_chp,)
    periods : numpy.ndarray
        Positions of the modelled periods in the :class:`HourlyInjections`.
    step_h : float
    violation_model : {"full", "reduced"}
    n_power_flows : int
        Power flows run by :meth:`build`.
    build_seconds : float
        Wall time of :meth:`build`.
    """

    def __init__(self, *, chp_names, chp_capacity_kw, periods, step_h, violation_model, vm0, dvm, dev0, ddev,
                 p_coef, q_coef, trafo_p0, eps, bus_thr, angle_thr, line_thr, n_power_flows=0, build_seconds=0.0):
        self.chp_names = tuple(chp_names)
        self.chp_capacity_kw = np.asarray(chp_capacity_kw, dtype=float)
        self.periods = np.asarray(periods, dtype=int)
        self.step_h = float(step_h)
        self.violation_model = violation_model
        self._vm0, self._dvm = vm0, dvm
        self._dev0, self._ddev = dev0, ddev
        self._p_coef, self._q_coef = p_coef, q_coef
        self._trafo_p0 = trafo_p0
        self._eps = eps
        self._bus, self._angle, self._line = bus_thr, angle_thr, line_thr
        self.n_power_flows = n_power_flows
        self.build_seconds = build_seconds

    @property
    def n_chp(self) -> int:
        return len(self.chp_names)

    @property
    def n_periods(self) -> int:
        return self.periods.size

    # --- build ---------------------------------------------------------------------------------
    @classmethod
    def build(cls, grid: LemGrid, injections: HourlyInjections, periods=None, *,
              chp_capacity_kw=None) -> LinearDnImpactModel:
        """Build the model with 1 + n_chp power flows per period.

        Parameters
        ----------
        grid : LemGrid
            Supplies the network, the limits, ``violation_model`` and the CHPs. Its injections are
            restored afterwards.
        injections : HourlyInjections
            Loads and PV of every period (the CHP part is ignored); its ``step_h`` converts the losses
            into the loss energies of :func:`dn_impact` (``grid.step_h`` is not used here).
        periods : sequence of int, optional
            Positions of the periods to model (default: all). Evaluations then take arrays with
            ``len(periods)`` periods.
        chp_capacity_kw : mapping or pandas.Series, optional
            Capacity per CHP (default ``injections.chp_capacity_kw``); the perturbation size and the
            upper bound of ``u``.

        Returns
        -------
        LinearDnImpactModel
        """
        if grid.n_feeders != 1:
            raise ValueError("the linear DN-impact model covers one feeder (its transformer loss terms)")
        start = time.perf_counter()
        periods = np.arange(injections.n_periods) if periods is None else np.asarray(periods, dtype=int)
        cap_series = _as_series(injections.chp_capacity_kw if chp_capacity_kw is None else chp_capacity_kw,
                                "chp_capacity_kw")
        cap = cap_series.reindex(list(grid.chp_names)).to_numpy(dtype=float)
        if np.any(~np.isfinite(cap)) or np.any(cap <= 0):
            raise ValueError(f"need a capacity > 0 for every CHP of the grid {grid.chp_names}")
        saved = grid.injections()
        n_t, n_k = periods.size, cap.size
        n_bus, n_line = grid.lv_buses.size, len(grid.line_names)
        vm0 = np.empty((n_t, n_bus * 3))
        dvm = np.empty((n_t, n_k, n_bus * 3))
        dev0, ddev = np.empty_like(vm0), np.empty_like(dvm)
        n_br = n_line + 2  # feeder lines, transformer LV side, transformer HV side
        i0 = np.empty((n_t, n_br, 3), dtype=complex)
        di = np.empty((n_t, n_k, n_br, 3), dtype=complex)
        trafo_p0 = np.empty(n_t)
        n_pf = 0
        try:
            for j, t in enumerate(periods):
                grid.set_injections(**injections.period(int(t)), chp_kw={})
                base = grid._solve_state()
                n_pf += 1
                vm0[j], dev0[j], i0[j] = base.vm.ravel(), base.va_dev.ravel(), _branch_currents(base)
                trafo_p0[j] = base.trafo_p_kw
                for k, name in enumerate(grid.chp_names):
                    grid.set_injections(chp_kw={name: cap[k]})
                    s = grid._solve_state()
                    n_pf += 1
                    dvm[j, k] = (s.vm.ravel() - vm0[j]) / cap[k]
                    ddev[j, k] = _wrap_degree(s.va_dev.ravel() - dev0[j]) / cap[k]
                    di[j, k] = (_branch_currents(s) - i0[j]) / cap[k]
        finally:
            grid.set_injections(**saved)

        # losses: quadratic forms over the branch currents (lines and the transformer LV side)
        r_phase = np.r_[grid._line_r[0], grid._trafo_r_ohm, 0.0]
        r_sum = np.r_[grid._line_r[1], 0.0, 0.0]
        x_phase = np.r_[grid._line_x[0], grid._trafo_x_ohm, 0.0]
        x_sum = np.r_[grid._line_x[1], 0.0, 0.0]
        p_coef = _loss_coefficients(i0, di, r_phase, r_sum)
        q_coef = _loss_coefficients(i0, di, x_phase, x_sum)

        # interaction of the CHPs: eps[t, l, k] = relative voltage rise at CHP l's bus per kW of CHP k
        bus_pos = {int(b): i for i, b in enumerate(grid.lv_buses)}
        chp_b = np.array([bus_pos[grid.chp_bus[name]] for name in grid.chp_names])
        vm3, dvm3 = vm0.reshape(n_t, n_bus, 3), dvm.reshape(n_t, n_k, n_bus, 3)
        eps = np.empty((n_t, n_k, n_k))
        for l in range(n_k):
            vm_l = vm3[:, chp_b[l]] + cap[l] * dvm3[:, l, chp_b[l]]  # (T, 3) with CHP l alone at capacity
            eps[:, l, :] = (dvm3[:, :, chp_b[l]] / vm_l[:, None, :]).mean(axis=2)
            eps[:, l, l] = 0.0
        # box of the effective outputs u_eff = u * (1 - eps u) for 0 <= u <= cap
        u_lo = np.minimum(0.0, cap * (1.0 - np.einsum("tlk,k->tl", np.maximum(eps, 0.0), cap)))
        u_hi = cap * (1.0 + np.einsum("tlk,k->tl", np.maximum(-eps, 0.0), cap))

        # violation pre-filters for that box
        bus_of = np.repeat(np.arange(n_bus), 3)
        bus_red = np.where(grid.bus_in_reduced[bus_of], bus_of, -1)
        ones = np.ones(n_bus * 3)
        bus_thr = _threshold(vm0, dvm, grid.vm_min_pu * ones, grid.vm_max_pu * ones, bus_of, bus_red, u_lo, u_hi,
                             magnitude=False)
        amax = grid.va_max_deviation_degree
        angle_thr = _threshold(dev0, ddev, -amax * ones, amax * ones, bus_of, bus_red, u_lo, u_hi, magnitude=False)
        i_lim = (np.r_[grid._line_max_i_ka, grid._trafo_ir_lv_ka, grid._trafo_ir_hv_ka]
                 * grid.max_loading_percent / 100.0)
        trafo_id = n_line  # both transformer sides are one element
        branch = np.repeat(np.r_[np.arange(n_line), trafo_id, trafo_id], 3)
        red = grid.line_reduced_id
        branch_red = np.repeat(np.r_[red, red.max() + 1, red.max() + 1], 3)
        line_thr = _threshold(i0.reshape(n_t, -1), di.reshape(n_t, n_k, -1), np.full(n_br * 3, -np.inf),
                              np.repeat(i_lim, 3), branch, branch_red, u_lo, u_hi, magnitude=True)
        return cls(chp_names=grid.chp_names, chp_capacity_kw=cap, periods=periods, step_h=injections.step_h,
                   violation_model=grid.violation_model, vm0=vm0, dvm=dvm, dev0=dev0, ddev=ddev, p_coef=p_coef,
                   q_coef=q_coef, trafo_p0=trafo_p0, eps=eps, bus_thr=bus_thr, angle_thr=angle_thr,
                   line_thr=line_thr, n_power_flows=n_pf, build_seconds=time.perf_counter() - start)

    # --- evaluation ----------------------------------------------------------------------------
    def _u(self, chp_kw) -> np.ndarray:
        u = np.asarray(chp_kw, dtype=float)
        if u.ndim == 2:
            u = u[None]
        if u.ndim != 3 or u.shape[1:] != (self.n_chp, self.n_periods):
            raise ValueError(f"chp_kw must have shape (n_ants, n_chp={self.n_chp}, n_periods={self.n_periods}), "
                             f"got {np.shape(chp_kw)}")
        tol = 1e-9 * max(1.0, float(self.chp_capacity_kw.max()))
        if not np.all(np.isfinite(u)) or np.any(u < -tol) or np.any(u > self.chp_capacity_kw[:, None] + tol):
            raise ValueError("CHP outputs must lie in [0, capacity]: the linear model is built for that box")
        return u

    def effective_outputs(self, chp_kw) -> np.ndarray:
        """Effective CHP outputs ``u_eff[l] = u[l] * (1 - sum_k eps[l, k] u[k])`` (same shape as ``chp_kw``).

        A CHP injects constant power, so its current falls when the other CHPs raise the voltage at its
        bus; ``eps[l, k]`` is the relative voltage rise at CHP l's bus per kW of CHP k (0 for k = l, whose
        effect the secant already holds). All sensitivities are applied to ``u_eff``.
        """
        u = self._u(chp_kw)
        return u * (1.0 - np.einsum("tlk,akt->alt", self._eps, u))

    @staticmethod
    def _quadratic(coef, u) -> np.ndarray:
        c, a, b = coef
        return c + np.einsum("akt,tk->at", u, a) + np.einsum("akt,tkl,alt->at", u, b, u)

    def _counts(self, u):
        bus, bus_r = self._bus.counts(u)
        ang, ang_r = self._angle.counts(u)
        line, line_r = self._line.counts(u)
        return {"bus_violations": bus, "bus_violations_reduced": bus_r, "angle_violations": ang,
                "angle_violations_reduced": ang_r, "line_overloads": line, "line_overloads_reduced": line_r}

    def _impact(self, counts, p_loss, q_loss):
        suffix = "" if self.violation_model == "full" else "_reduced"
        return dn_impact(counts["bus_violations" + suffix], counts["angle_violations" + suffix],
                         counts["line_overloads" + suffix], p_loss * self.step_h, q_loss * self.step_h,
                         self.step_h)

    def penalty_batch(self, chp_kw) -> np.ndarray:
        """Day total of :func:`dn_impact` for a batch of CHP schedules.

        Parameters
        ----------
        chp_kw : array_like, shape (n_ants, n_chp, n_periods) or (n_chp, n_periods)
            CHP output (kW; kWh sold per hour for hourly periods), within ``[0, capacity]``.

        Returns
        -------
        numpy.ndarray, shape (n_ants,)
        """
        ue = self.effective_outputs(chp_kw)
        counts = self._counts(ue)
        impact = self._impact(counts, self._quadratic(self._p_coef, ue), self._quadratic(self._q_coef, ue))
        return impact.sum(axis=1)

    def components_batch(self, chp_kw) -> dict[str, np.ndarray]:
        """Per-period indicators for a batch of CHP schedules (for reporting).

        Returns
        -------
        dict of str to numpy.ndarray
            Keys :data:`COMPONENTS`, each of shape (n_ants, n_periods): the same quantities as
            :class:`LemGridResult` (without the transformer's reactive power and the loadings).
        """
        u = self._u(chp_kw)
        ue = self.effective_outputs(u)
        counts = self._counts(ue)
        p_loss = self._quadratic(self._p_coef, ue)
        q_loss = self._quadratic(self._q_coef, ue)
        vm = self._vm0[:, None, :] + np.matmul(np.transpose(ue, (2, 0, 1)), self._dvm)  # (T, A, n_bus * 3)
        out = {"vm_min_pu": vm.min(axis=2).T, "vm_max_pu": vm.max(axis=2).T, **counts, "p_loss_kw": p_loss,
               "q_loss_kvar": q_loss,
               "trafo_p_kw": self._trafo_p0 - u.sum(axis=1) + (p_loss - self._p_coef[0]),
               "dn_impact": self._impact(counts, p_loss, q_loss)}
        return {name: out[name] for name in COMPONENTS}

    def hourly(self, chp_kw) -> pd.DataFrame:
        """:meth:`components_batch` of one schedule (n_chp, n_periods) as a table, one row per period."""
        comp = self.components_batch(np.asarray(chp_kw, dtype=float)[None])
        return pd.DataFrame({k: v[0] for k, v in comp.items()}, index=pd.Index(self.periods, name="period"))

    def __call__(self, result) -> float:
        """DN penalty of a :class:`~lec_cosim.models.bidding.DayResult` (its ``chp_sold_kwh``)."""
        return float(self.penalty_batch(np.asarray(result.chp_sold_kwh, dtype=float)[None])[0])


def _branch_currents(state: _GridState) -> np.ndarray:
    """Complex phase currents (n_line + 2, 3): feeder lines, transformer LV side, transformer HV side."""
    return np.vstack([state.i_line, state.i_trafo_lv, state.i_trafo_hv])


def _loss_coefficients(i0, di, w_phase, w_sum):
    """Quadratic loss model per period: loss(u) = c + a.u + u'Bu (kW or kvar).

    Per branch, loss = w_phase * sum_p |I_p|^2 + w_sum * |sum_p I_p|^2 (ohm, kA -> MW), with
    I = I0 + sum_k u_k dI_k.
    """
    f0 = np.concatenate([i0, i0.sum(axis=2, keepdims=True)], axis=2)  # (T, NB, 4)
    df = np.concatenate([di, di.sum(axis=3, keepdims=True)], axis=3)  # (T, K, NB, 4)
    w = np.concatenate([np.repeat(w_phase[:, None], 3, axis=1), w_sum[:, None]], axis=1)  # (NB, 4)
    scale = 1000.0  # MW -> kW
    c = scale * np.einsum("tbf,bf->t", np.abs(f0) ** 2, w)
    a = scale * 2.0 * np.einsum("tbf,bf,tkbf->tk", np.conj(f0), w, df).real
    b = scale * np.einsum("tkbf,bf,tlbf->tkl", np.conj(df), w, df).real
    return c, a, 0.5 * (b + np.swapaxes(b, 1, 2))
