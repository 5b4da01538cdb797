"""Per-LEC operating envelopes: the DSO's import and export limits of each LEC from linearised voltages.

:class:`OperatingEnvelope` turns a few power flows of :class:`~lec_cosim.models.multi_lec_feeder.MultiLecGrid`
into each LEC's import and export limits for the next period ("dynamic operating envelopes"): the
slopes of the LEC's voltages per kW of its net import, and the rule that turns them and a state into
limits. It is the DSO's decision, built on the grid but not part of it, hence its own module. No
HELICS here.

Operating envelopes (:class:`OperatingEnvelope`)
------------------------------------------------
:meth:`OperatingEnvelope.build` takes 1 + 2 n_lecs power flows (plus one to restore the warm start) at
a base state (default: the unloaded feeder): for each LEC k, one with ``probe_kw`` more import and one
with ``probe_kw`` more export, spread evenly over LEC k's households (``probe_kw / n_k`` each, active
power only), the other LECs unchanged. The differences give, per kW of LEC k's net import ``P_k``,

* ``s_import[k]``: drop of LEC k's lowest voltage, ``s_export[k]``: rise of its highest voltage
  (the brief's slopes, pu per kW), and
* the same per voltage point of the LEC (``point_s_import``, ``point_s_export``).

:meth:`OperatingEnvelope.limits` gives the import and export limits for a state. Rule ``"extreme"``
is the linearised rule on the LEC's extremes:

    ``import_limit = max(0, P_k + (lec_vm_min - (vm_min + margin)) / s_import)``
    ``export_limit = max(0, -P_k + ((vm_max - margin) - lec_vm_max) / s_export)``

Rule ``"points"`` (the default) applies the same rule to every voltage point i of the LEC on its own
slope and takes the tightest: ``import_limit = max(0, P_k + min_i (v_i - (vm_min + margin)) / s_i)``
over the points with ``s_i > 0`` (``export_limit`` alike). It equals ``"extreme"`` while the lowest
point stays the lowest, and stays right when another point takes over. The extremes' secant does
not: at 19:00 lec1's highest voltage sits at the household next to the transformer, which hardly
moves with lec1's export, so ``"extreme"`` from that state allowed 345 kW of export where the far
households reach 1.095 pu at ~204 kW; at noon lec2's highest point even *falls* with lec2's export
(its households are mostly on phase a and the high point is on another phase: neutral shift), a
negative slope and an unbounded ``"extreme"`` export limit. A slope <= 0 sets no limit; ``numpy.inf``
is returned where no slope of the LEC is positive. A limit of 0 means the LEC is already past the
target voltage: the envelope does not say how much the opposite direction would need (clipped at 0).
Over a market period of several steps :meth:`OperatingEnvelope.period_limits` takes the element-wise
minimum of the steps' limits.

Assumptions and what the rule leaves out:

* **Linear**: one secant per point and direction. Voltage drops grow faster than linearly with import
  (constant-power loads draw more current at lower voltage), so an import limit far above the present
  import is *optimistic*; see the measured figures. Cutting import from a violated state is on the safe
  side (the slopes of the heavy state are the steepest). Build near the state the limits are for.
* **One LEC at a time, the others held fixed**: each LEC's limit assumes the other LECs keep the
  injections of the state. The LECs share the trunk and the transformer, so when several LECs go to
  their limits at once the voltages move further (cross-sensitivities are not used).
* **How the LEC changes its import**: as the probe, evenly over its households. A change at the
  LEC's far end moves its voltages more; a change at its battery bus (balanced) moves a phase the
  probe lowered (neutral shift) up instead.
* **Voltage only**: line and transformer loading are **not** limited. On this feeder with the 140 kW
  peak scaling the head cable is the binding limit by far: 39 sections are overloaded (max 156 %) at
  19:00 and (112 %) at noon with the batteries idle, while the voltage limits are a few hundred kW
  away. The transformer (800 kVA) runs at <= 20 %, so including it would change nothing; a thermal
  envelope for the shared head cable needs a rule for sharing it, which this module does not have:
  :mod:`lec_cosim.models.household_envelope` (``dso.limits_per: household``) limits every household
  from voltages and loadings and shares the common branches by a rule.

Measured on the scenario day
----------------------------
:func:`~lec_cosim.models.multi_lec.multi_lec_members` defaults (2016-05-26, 15-min steps, 140 kW load
peak), home and community batteries idle, this machine (2 cores, pandapower 3.5.6 without numba):
one :meth:`MultiLecGrid.solve` 0.45 s median over the 96 steps (0.26-1.2 s; LemGrid's own solve,
0.3-0.6 s here today); building the grid 2.5 s; one envelope 8 flows, 3-4.5 s.

Unloaded-feeder slopes, pu per kW (import = export there): lec1 2.4e-4, lec2 9.9e-4, lec3 5.2e-4
(lec2 at the end of the northern street is the weakest, lec1 at the head the stiffest).

=====  ===============  ===============  ==========  ============================  ===========================
step   LEC              vm min / max pu  net import  import / export limit, kW     import / export limit, kW
                                         kW          (unloaded base, "points")     (base = the state, "points")
=====  ===============  ===============  ==========  ============================  ===========================
19:00  lec1             1.0062 / 1.0409  +40.7       594 / 210                     579 / 204
19:00  lec2             0.9955 / 1.0368  +32.4       124 / 67                      115 / 60
19:00  lec3             0.9968 / 1.0316  +39.1       268 / 95                      252 / 91
12:00  lec1             1.0371 / 1.0872  -30.2       641 / 77                      662 / 81
12:00  lec2             1.0491 / 1.0953  -12.2       133 / 58                      134 / 59
12:00  lec3             1.0509 / 1.0930  -52.0       279 / 58                      297 / 58
=====  ===============  ===============  ==========  ============================  ===========================

Checked with full power flows (the LEC's import moved to the limit evenly over its households): the
export limits land at 1.088-1.095 pu (target 1.095); the import limits, 80-620 kW beyond the present
import, land at 0.865-0.896 pu (target 0.905): the linear extrapolation over several hundred kW is
optimistic by up to 0.04 pu. Over the hour 19:00-20:00 (:meth:`~OperatingEnvelope.period_limits`,
unloaded base) the import limits are 455 / 124 / 178 kW. Over 12:00-13:00 the export limits are
77 / 2 / 21 kW: at 12:30-12:45 lec2 reaches 1.106 pu and lec3 1.114 pu (exporting 24 and 56-63 kW),
so both must export less than they do. With all three community batteries charging at full power at
noon the overloads vanish (max line loading 71 %).

"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lec_cosim.models.grid_indicators import VM_MAX_PU, VM_MIN_PU
from lec_cosim.models.multi_lec_feeder import MultiLecGrid, MultiLecGridResult

PROBE_KW = 10.0
"""Default extra import / export of an envelope probe, kW per LEC."""
MARGIN_PU = 0.005
"""Default distance of the envelope's target voltage from the band edge, pu."""


RULES = ("points", "extreme")
"""Envelope rules of :meth:`OperatingEnvelope.limits` (module docstring)."""


@dataclass(frozen=True, eq=False)
class OperatingEnvelope:
    """Per-LEC import and export limits from linearised voltage sensitivities (module docstring).

    Build it with :meth:`build`; evaluate with :meth:`limits` (one state) or :meth:`period_limits`.

    Attributes
    ----------
    lec_names : tuple of str
    s_import_pu_per_kw : numpy.ndarray, shape (n_lecs,)
        Drop of each LEC's lowest voltage per kW of extra import (the ``"extreme"`` rule's slope).
    s_export_pu_per_kw : numpy.ndarray, shape (n_lecs,)
        Rise of each LEC's highest voltage per kW of extra export.
    point_s_import, point_s_export : tuple of numpy.ndarray
        Per LEC, the same for each of its voltage points (:meth:`MultiLecGrid.lec_voltage_points`
        order; the ``"points"`` rule's slopes). Can be <= 0: in a four-wire feeder, load on one
        phase can raise another phase's voltage.
    vm_min_pu, vm_max_pu, margin_pu, probe_kw : float
    base : MultiLecGridResult
        The state the sensitivities were taken at.
    n_power_flows : int
    build_seconds : float
    """

    lec_names: tuple
    s_import_pu_per_kw: np.ndarray
    s_export_pu_per_kw: np.ndarray
    point_s_import: tuple = field(repr=False)
    point_s_export: tuple = field(repr=False)
    vm_min_pu: float = VM_MIN_PU
    vm_max_pu: float = VM_MAX_PU
    margin_pu: float = MARGIN_PU
    probe_kw: float = PROBE_KW
    base: MultiLecGridResult | None = field(default=None, repr=False)
    points: tuple = field(default=(), repr=False)
    n_power_flows: int = 0
    build_seconds: float = 0.0

    @classmethod
    def build(cls, grid: MultiLecGrid, *, probe_kw: float = PROBE_KW, margin_pu: float = MARGIN_PU,
              base: MultiLecGridResult | None = None) -> OperatingEnvelope:
        """Sensitivities of every LEC's voltages to its net import, from 1 + 2 n_lecs power flows.

        Parameters
        ----------
        grid : MultiLecGrid
        probe_kw : float
            Extra import (and, separately, export) per LEC, kW, > 0, spread evenly over the LEC's
            households (``probe_kw / n_k`` each, active power only).
        margin_pu : float
            Distance of the target voltage from the band edge, pu, >= 0.
        base : MultiLecGridResult, optional
            State to linearise at (its injections are solved again). Default: the unloaded feeder
            (all injections 0). Build at (or near) the state the limits are for: the slopes grow
            with the load (module docstring).

        Returns
        -------
        OperatingEnvelope
        """
        if not probe_kw > 0 or not margin_pu >= 0:
            raise ValueError("need probe_kw > 0 and margin_pu >= 0")
        start = time.perf_counter()
        n_hh, n_k = grid.n_households, grid.n_lecs
        if base is None:
            net0, kvar0, bat0 = np.zeros(n_hh), np.zeros(n_hh), np.zeros(n_k)
        else:
            net0, kvar0, bat0 = base.household_net_kw, base.household_kvar, base.community_battery_kw
        b = grid.solve(net0, kvar0, bat0)
        vb = _point_voltages(b, grid._lec_points)
        s_imp, s_exp = np.empty(n_k), np.empty(n_k)
        p_imp, p_exp = [], []
        for k in range(n_k):
            mine = grid.household_lec == k
            up = grid.solve(net0 + np.where(mine, probe_kw / mine.sum(), 0.0), kvar0, bat0)
            s_imp[k] = (b.lec_vm_min_pu[k] - up.lec_vm_min_pu[k]) / probe_kw
            p_imp.append((vb[k] - _point_voltages(up, grid._lec_points)[k]) / probe_kw)
            down = grid.solve(net0 - np.where(mine, probe_kw / mine.sum(), 0.0), kvar0, bat0)
            s_exp[k] = (down.lec_vm_max_pu[k] - b.lec_vm_max_pu[k]) / probe_kw
            p_exp.append((_point_voltages(down, grid._lec_points)[k] - vb[k]) / probe_kw)
        grid.solve(net0, kvar0, bat0)  # leave the warm start at the base
        return cls(lec_names=grid.lec_names, s_import_pu_per_kw=s_imp, s_export_pu_per_kw=s_exp,
                   point_s_import=tuple(p_imp), point_s_export=tuple(p_exp), vm_min_pu=grid.vm_min_pu,
                   vm_max_pu=grid.vm_max_pu, margin_pu=float(margin_pu), probe_kw=float(probe_kw), base=b,
                   points=tuple(grid._lec_points), n_power_flows=2 + 2 * n_k,
                   build_seconds=time.perf_counter() - start)

    def limits(self, result: MultiLecGridResult, rule: str = "points") -> tuple[np.ndarray, np.ndarray]:
        """Import and export limits per LEC for a state (rules in the module docstring).

        Parameters
        ----------
        result : MultiLecGridResult
            The state (e.g. the forecast of the next period's step).
        rule : {"points", "extreme"}
            ``"points"``: every voltage point of the LEC on its own slope; ``"extreme"``: the LEC's
            lowest / highest voltage on one slope.

        Returns
        -------
        (import_limit_kw, export_limit_kw) : two numpy.ndarray, shape (n_lecs,), >= 0
            ``numpy.inf`` where no slope is positive: the linearisation finds no voltage limit in
            that direction.
        """
        if tuple(result.lec_names) != tuple(self.lec_names):
            raise ValueError("result and envelope have different LECs")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}")
        p = result.lec_net_import_kw
        low, high = self.vm_min_pu + self.margin_pu, self.vm_max_pu - self.margin_pu
        if rule == "extreme":
            head_imp = _headroom_kw(result.lec_vm_min_pu - low, self.s_import_pu_per_kw)
            head_exp = _headroom_kw(high - result.lec_vm_max_pu, self.s_export_pu_per_kw)
        else:
            v = _point_voltages(result, self.points)
            head_imp = np.array([_headroom_kw(v[k] - low, self.point_s_import[k]).min()
                                 for k in range(len(self.lec_names))])
            head_exp = np.array([_headroom_kw(high - v[k], self.point_s_export[k]).min()
                                 for k in range(len(self.lec_names))])
        return np.maximum(p + head_imp, 0.0), np.maximum(-p + head_exp, 0.0)

    def period_limits(self, results: Sequence[MultiLecGridResult], rule: str = "points"
                      ) -> tuple[np.ndarray, np.ndarray]:
        """The most restrictive :meth:`limits` over the steps of a market period (element-wise minimum)."""
        if not results:
            raise ValueError("need at least one result")
        pairs = [self.limits(r, rule) for r in results]
        return np.min([q[0] for q in pairs], axis=0), np.min([q[1] for q in pairs], axis=0)


def _point_voltages(result: MultiLecGridResult, points) -> list[np.ndarray]:
    vm = result.grid.vm_pu.to_numpy()
    return [vm[rows, cols] for rows, cols in points]


def _headroom_kw(headroom_pu, slope_pu_per_kw) -> np.ndarray:
    """headroom / slope where the slope is positive, +inf elsewhere."""
    headroom = np.asarray(headroom_pu, dtype=float)
    slope = np.asarray(slope_pu_per_kw, dtype=float)
    out = np.full(np.broadcast(headroom, slope).shape, np.inf)
    pos = slope > 0
    np.divide(headroom, slope, out=out, where=pos)
    return out
