"""Operating envelopes per connection point: each household's import and export limit, voltage and thermal.

:class:`HouseholdEnvelope` turns power flows of :class:`~lec_cosim.models.multi_lec_feeder.MultiLecGrid`
into an import and an export limit for every household (its connection point) for the next period,
from linearised voltages *and* line and transformer loadings, and shares what the common branches
allow between the households behind them by a rule (:data:`SHARING_RULES`). It is the per-household
counterpart of :mod:`lec_cosim.models.operating_envelope` (per LEC, voltage only), which stays the
default (``dso.limits_per: lec``). No HELICS here.

Sensitivities (:meth:`HouseholdEnvelope.build`)
-----------------------------------------------
1 + 2 n_households power flows of the unloaded feeder (batteries idle, every other household at 0): for
each household j one with ``probe_kw`` of import and one with ``probe_kw`` of export at j alone, on its
phase. They give, per kW at household j,

* ``v_import[i, j]``: the drop of voltage point i (the LECs' points, :meth:`MultiLecGrid.lec_voltage_points`)
  and ``v_export[i, j]``: its rise;
* ``thermal[r, j]``: the loading, % of the rating, that j's import adds to row r: every feeder line's
  phases a, b, c, and each transformer's LV and HV phase currents (LemGrid's ratings). From the unloaded
  feeder this is the magnitude of j's own current through r: nonzero only on the path from the
  transformer to j, on j's phase (and, through the Dyn transformer, on two HV phases).

Linear model of a state (:meth:`HouseholdEnvelope.limits`)
----------------------------------------------------------
``x`` is the households' net import (kW, positive: drawing), ``x0`` the state's. The state's voltages
``v0`` and loadings ``L0`` (per row) are the linearisation point, as in the per-LEC envelope:

* voltage, import: ``v0_i - sum_j a_ij (x_j - x0_j) >= vm_min + margin`` with ``a = max(v_import, 0)``;
  export alike with ``b = max(v_export, 0)`` on ``-x`` against ``vm_max - margin``. A negative slope
  (in a four-wire feeder, load on one phase can raise another phase's voltage) is left out, on the safe
  side while a household stays above its state.
* thermal: each row's current as a signed sum of the households' currents, ``f_r = sum_j s_rj x_j``
  (``s = thermal``): a household's current adds to the others' of the same phase when both import and
  cancels them when it exports (their currents are nearly in phase: unity power factor, short LV
  lines). The state's loading fixes the offset ``o_r = sign(f_r(x0)) L0_r - f_r(x0)`` (its reactive
  power and the nonlinearity); the limit is ``|f_r(x) + o_r| <= max_loading_percent``, two linear rows:
  ``sum_j s_rj x_j <= Lmax - o_r`` (import) and ``sum_j s_rj (-x_j) <= Lmax + o_r`` (export). A line
  carrying export at the state thus has the room of its export current *plus* its rating for more import.

Every constraint is then ``sum_j c_rj y_j <= cap_r`` with ``c >= 0`` (``y = x`` for import, ``-x`` for
export): the capacity each common branch (or voltage point) has for the households behind it.

Sharing a common branch (:func:`share_capacity`)
------------------------------------------------
Each household j gets a limit ``y_j``; the limits must hold together (every household at its limit at
once), ``C y <= cap``. Both rules are **progressive filling** (max-min fairness, Bertsekas and Gallager,
*Data Networks*, 2nd ed. 1992, Sec. 6.5.2): every household's limit rises at the rate of its weight;
when a row is full, the households in it (``c_rj > 0``) stop; the others go on until every household is
stopped by a row. The rules differ in the weights:

* ``"equal"``: weight 1: every household behind a bottleneck gets the same limit, the others what the
  next bottleneck leaves (max-min fair). A single-limit-for-all envelope, as the equal allocation of
  operating envelopes between customers (Petrou et al., "Ensuring distribution network integrity using
  dynamic operating limits for prosumers", IEEE Trans. Smart Grid 12(5), 2021; Liu, Ochoa et al.,
  "Using OPF-based operating envelopes to facilitate residential DER services", IEEE Trans. Smart Grid
  13(6), 2022), but per bottleneck, so a household behind a loose branch is not held to a tight one's limit.
* ``"proportional"``: weight = the household's need: its import ``max(x0_j, 0)`` for import limits, its
  surplus ``max(-x0_j, 0)`` for export limits, at least :data:`NEED_FLOOR_KW` (so a household that needs
  nothing now keeps a small share, and with no needs at all the rule is the equal one). ``x0`` is the state's
  unless the caller gives the needs (the DSO gives each household's own load minus PV of the period's forecast,
  its batteries idle: what a battery charges is not a need, and over a period's states the weights must be one
  set, or the element-wise minimum of :meth:`HouseholdEnvelope.period_limits` takes each household's smallest
  share of a different state's split and their sum falls far below the branch's capacity). Each
  bottleneck is shared in proportion to need: weighted max-min fairness (Bertsekas and Gallager, ibid.);
  the "network-weighted proportional" and "max-min" allocations compared by Zabihi et al., "Fair
  allocation of operating envelopes for distribution networks considering voltage unbalance",
  arXiv:2606.29351, 2026.

A full row's sum equals its capacity (``C y = cap`` on the rows that stopped someone; the tests check it).
A row already over its capacity at ``y = 0`` stops its households at 0: the envelope cannot ask for less
than nothing (an import limit of 0 under a load that cannot move is the signal that it must be covered by
batteries or not at all). A household in no row with a positive coefficient gets ``inf``.

Assumptions: linear (one secant per household and direction from the unloaded feeder; voltage drops
grow faster than linearly with import, currents at lower voltage too); the community batteries stay at
the state's power (they are the LEC's, not a household's: the LEC_EMS plans them within the sum of its
households' limits); reactive power stays at the state's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lec_cosim.models.grid_indicators import MAX_LOADING_PERCENT, VM_MAX_PU, VM_MIN_PU
from lec_cosim.models.multi_lec_feeder import MultiLecGrid, MultiLecGridResult
from lec_cosim.models.operating_envelope import MARGIN_PU

SHARING_RULES = ("equal", "proportional")
"""How the capacity of a common branch is shared between the households behind it (module docstring)."""
HOUSEHOLD_PROBE_KW = 1.0
"""Import (and export) of one household's probe, kW."""
NEED_FLOOR_KW = 0.1
"""The least need of a household under the ``"proportional"`` rule, kW."""
_FILL_TOL = 1e-9
"""A row is full within this share of its capacity (at least 1e-9 in its own units)."""
_COEFFICIENT_TOL = 1e-6
"""A thermal coefficient below this, %/kW, is rounding (a household off the row's path: a real one is ~1-3 %/kW
on this feeder's cables, ~1e-9 off it)."""


def share_capacity(coefficients, capacity, weights) -> np.ndarray:
    """Limits ``y >= 0`` with ``coefficients @ y <= capacity`` by progressive filling at the given weights.

    Parameters
    ----------
    coefficients : array_like, shape (R, N), >= 0
        What one unit of household j's limit uses of row r.
    capacity : array_like, shape (R,)
        Each row's capacity (may be negative: the row is over already).
    weights : array_like, shape (N,), > 0
        Rate at which each household's limit rises (1 each: equal; the needs: proportional).

    Returns
    -------
    numpy.ndarray, shape (N,)
        Each household's limit; ``inf`` for a household in no row with a positive coefficient.
    """
    c = np.asarray(coefficients, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    w = np.asarray(weights, dtype=float)
    if c.ndim != 2 or cap.shape != (c.shape[0],) or w.shape != (c.shape[1],):
        raise ValueError("need coefficients (R, N), capacity (R,) and weights (N,)")
    if (c < 0).any() or not (w > 0).all():
        raise ValueError("need coefficients >= 0 and weights > 0")
    involved = (c > 0).any(axis=0)
    limits = np.where(involved, 0.0, np.inf)
    rising = involved.copy()
    used = np.zeros(len(cap))
    tol = _FILL_TOL * np.maximum(1.0, np.abs(cap))
    while rising.any():
        rate = c[:, rising] @ w[rising]
        growing = rate > 0
        room = np.maximum(cap - used, 0.0)
        step = float(np.min(room[growing] / rate[growing]))
        limits[rising] += step * w[rising]
        used = c @ np.where(np.isfinite(limits), limits, 0.0)
        full = growing & (cap - used <= tol)
        stopped = (c[full] > 0).any(axis=0)
        if not (stopped & rising).any():  # rounding: stop the households of the row closest to full
            closest = np.flatnonzero(growing)[np.argmin((room[growing] / rate[growing]))]
            stopped = c[closest] > 0
        rising &= ~stopped
    return limits


def jain_index(values) -> float | None:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)`` of non-negative values (Jain, Chiu and Hawe, "A
    quantitative measure of fairness and discrimination for resource allocation in shared computer systems",
    DEC TR-301, 1984): 1 when all are equal, ``k/n`` when k share alike and the rest get nothing. None when all
    are 0 (nothing to share) or there are none."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not (x > 0).any():
        return None
    return float(x.sum() ** 2 / (x.size * (x ** 2).sum()))


@dataclass(frozen=True, eq=False)
class HouseholdLimits:
    """One state's per-household limits and the rows they were shared on (:meth:`HouseholdEnvelope.limits`)."""

    import_kw: np.ndarray
    export_kw: np.ndarray
    import_rows: np.ndarray = field(repr=False)
    """Coefficients (rows, households) of the import constraints: voltage points, then thermal rows."""
    import_capacity: np.ndarray = field(repr=False)
    export_rows: np.ndarray = field(repr=False)
    export_capacity: np.ndarray = field(repr=False)


@dataclass(frozen=True, eq=False)
class HouseholdEnvelope:
    """Per-household import and export limits from linearised voltages and loadings (module docstring).

    Attributes
    ----------
    household_names : tuple of str
    household_lec : numpy.ndarray of int
    v_import, v_export : numpy.ndarray, shape (n_points, n_households)
        Drop (rise) of every voltage point per kW of import (export) at each household, pu/kW.
    thermal : numpy.ndarray, shape (n_rows, n_households)
        Loading, %, of every thermal row per kW at each household (:attr:`thermal_rows`).
    thermal_rows : tuple of (str, str)
        (element, phase) of each thermal row: feeder lines ``(name, a|b|c)``, then each transformer's
        ``(name, lv_a .. hv_c)``.
    rule : str
    vm_min_pu, vm_max_pu, margin_pu, max_loading_percent, probe_kw : float
    n_power_flows : int
    build_seconds : float
    """

    household_names: tuple
    household_lec: np.ndarray = field(repr=False)
    v_import: np.ndarray = field(repr=False)
    v_export: np.ndarray = field(repr=False)
    thermal: np.ndarray = field(repr=False)
    thermal_rows: tuple = field(repr=False)
    points: tuple = field(repr=False)
    rule: str = "equal"
    vm_min_pu: float = VM_MIN_PU
    vm_max_pu: float = VM_MAX_PU
    margin_pu: float = MARGIN_PU
    max_loading_percent: float = MAX_LOADING_PERCENT
    probe_kw: float = HOUSEHOLD_PROBE_KW
    n_power_flows: int = 0
    build_seconds: float = 0.0

    @classmethod
    def build(cls, grid: MultiLecGrid, *, rule: str = "equal", probe_kw: float = HOUSEHOLD_PROBE_KW,
              margin_pu: float = MARGIN_PU) -> HouseholdEnvelope:
        """Sensitivities of the voltage points and thermal rows to every household, from 1 + 2 n power flows."""
        if rule not in SHARING_RULES:
            raise ValueError(f"rule must be one of {SHARING_RULES}, not {rule!r}")
        if not probe_kw > 0 or not margin_pu >= 0:
            raise ValueError("need probe_kw > 0 and margin_pu >= 0")
        start = time.perf_counter()
        n = grid.n_households
        zeros, bat = np.zeros(n), np.zeros(grid.n_lecs)
        rows = np.concatenate([r for r, _ in grid._lec_points])
        cols = np.concatenate([c for _, c in grid._lec_points])
        base = grid.solve(zeros, zeros, bat)
        v0, l0 = base.grid.vm_pu_values[rows, cols], _loadings(base)
        v_imp, v_exp = np.empty((len(rows), n)), np.empty((len(rows), n))
        thermal = np.empty((len(l0), n))
        for j in range(n):
            probe = np.zeros(n)
            probe[j] = probe_kw
            up = grid.solve(probe, zeros, bat)
            v_imp[:, j] = (v0 - up.grid.vm_pu_values[rows, cols]) / probe_kw
            thermal[:, j] = (_loadings(up) - l0) / probe_kw
            down = grid.solve(-probe, zeros, bat)
            v_exp[:, j] = (down.grid.vm_pu_values[rows, cols] - v0) / probe_kw
        # a household off a row's path moves its current only by rounding
        thermal[thermal < _COEFFICIENT_TOL] = 0.0
        lem = grid.lem_grid
        names = [(line, ph) for line in lem.line_names for ph in "abc"]
        names += [(trafo, side) for trafo in lem.trafo_names for side in
                  ("lv_a", "lv_b", "lv_c", "hv_a", "hv_b", "hv_c")]
        return cls(household_names=grid.household_names, household_lec=grid.household_lec.copy(),
                   v_import=v_imp, v_export=v_exp, thermal=thermal, thermal_rows=tuple(names),
                   points=(rows, cols), rule=rule, vm_min_pu=grid.vm_min_pu, vm_max_pu=grid.vm_max_pu,
                   margin_pu=float(margin_pu), max_loading_percent=lem.max_loading_percent,
                   probe_kw=float(probe_kw), n_power_flows=1 + 2 * n, build_seconds=time.perf_counter() - start)

    def limits(self, result: MultiLecGridResult, needs_kw=None) -> HouseholdLimits:
        """Each household's import and export limit at a state (the module docstring's model and rule).

        ``needs_kw``: the ``"proportional"`` rule's (import need, export need) per household, kW (default: the
        state's net import and export)."""
        x0 = np.asarray(result.household_net_kw, dtype=float)
        if x0.shape != (len(self.household_names),):
            raise ValueError("the state has other households than the envelope")
        rows, cols = self.points
        v0 = result.grid.vm_pu_values[rows, cols]
        a, b = np.maximum(self.v_import, 0.0), np.maximum(self.v_export, 0.0)
        s = self.thermal
        active = self.active_room(result)
        imp_rows = np.vstack([a, s])
        imp_cap = np.concatenate([v0 - (self.vm_min_pu + self.margin_pu) + a @ x0, active])
        exp_rows = np.vstack([b, s])
        exp_cap = np.concatenate([(self.vm_max_pu - self.margin_pu) - v0 + b @ (-x0), active])
        if self.rule == "equal":
            w_imp = w_exp = np.ones(len(x0))
        else:
            need_imp, need_exp = (x0, -x0) if needs_kw is None else needs_kw
            w_imp, w_exp = np.maximum(need_imp, NEED_FLOOR_KW), np.maximum(need_exp, NEED_FLOOR_KW)
        return HouseholdLimits(import_kw=share_capacity(imp_rows, imp_cap, w_imp),
                               export_kw=share_capacity(exp_rows, exp_cap, w_exp),
                               import_rows=imp_rows, import_capacity=imp_cap, export_rows=exp_rows,
                               export_capacity=exp_cap)

    def active_room(self, result: MultiLecGridResult) -> np.ndarray:
        """Per thermal row, the most its households' active currents may add up to, %: ``sqrt(Lmax^2 - q^2)``
        with ``q = sqrt(max(L0^2 - f0^2, 0))`` the part of the state's loading its active flow does not explain
        (reactive load current, in quadrature); ``-1`` where ``q`` alone is over the rating (no room at all)."""
        flow = self.thermal @ np.asarray(result.household_net_kw, dtype=float)
        quadrature = np.maximum(_loadings(result) ** 2 - flow ** 2, 0.0)
        room = self.max_loading_percent ** 2 - quadrature
        return np.where(room > 0, np.sqrt(np.maximum(room, 0.0)), -1.0)

    def period_limits(self, results, needs_kw=None) -> tuple[np.ndarray, np.ndarray]:
        """The most restrictive :meth:`limits` over the states of a period (element-wise minimum), every state's
        shared by the same needs (default: each household's largest over the states)."""
        if not results:
            raise ValueError("need at least one result")
        if needs_kw is None:
            nets = np.array([r.household_net_kw for r in results])
            needs_kw = (nets.max(axis=0), (-nets).max(axis=0))
        found = [self.limits(r, needs_kw) for r in results]
        return (np.min([q.import_kw for q in found], axis=0), np.min([q.export_kw for q in found], axis=0))

    def lec_sums(self, household_kw, n_lecs: int) -> np.ndarray:
        """Each LEC's limit: the sum of its households' (``inf`` if one of them has none)."""
        return np.bincount(self.household_lec, weights=np.asarray(household_kw, dtype=float), minlength=n_lecs)

    def behind(self, row: int) -> np.ndarray:
        """Positions of the households whose current flows through thermal row ``row``."""
        return np.flatnonzero(self.thermal[row] > 0)


def _loadings(result: MultiLecGridResult) -> np.ndarray:
    """Every thermal row's loading, %: the lines' phases, then each transformer's LV and HV phases."""
    g = result.grid
    return np.concatenate([g.line_phase_loading_values.ravel(), g.trafo_phase_loading_values.ravel()])
