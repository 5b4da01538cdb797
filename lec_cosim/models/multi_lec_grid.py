"""The multi-LEC members on the IEEE European LV feeder: three-phase power flow and per-LEC operating envelopes.

:class:`MultiLecGrid` places the members of :func:`lec_cosim.models.multi_lec.multi_lec_members` (55
households in three LECs, one community battery per LEC) on the feeder and evaluates one grid state
with the three-phase power flow of :class:`lec_cosim.models.lem_grid.LemGrid` (which it wraps; the
power-flow code, ratings, losses and violation counts are LemGrid's). :class:`OperatingEnvelope` turns
power flows into the DSO's per-LEC import and export limits for the next period ("dynamic operating
envelopes"). No HELICS here.

Elements
--------
* **Households** ``LOAD1`` .. ``LOAD55``: LemGrid's single-phase wye loads on their IEEE bus and phase.
* **Generation slot** of every household: LemGrid's single-phase PV ``asymmetric_sgen`` on the
  household's bus and phase (all 55 are passed to LemGrid as ``prosumer``). It carries whatever the
  household feeds in: PV and home-battery discharge (the 13 households without PV or battery simply
  never get a negative net from :meth:`MultiLecGrid.step_injections`).
* **Community battery** ``lecK_battery``: one balanced three-phase pandapower ``load`` (P/3 per phase,
  unity power factor) at its IEEE bus, added to ``LemGrid.net`` by this class, with
  ``p_mw = -community_battery_kw / 1000`` (signed). ``runpp_3ph`` takes symmetric loads of either sign
  (``pandapower.pf.runpp_3ph._get_elements``: ``p_mw / 3`` per phase), and LemGrid's ``_write`` does
  not touch ``net.load`` (it rewrites only its own ``asymmetric_load`` and ``asymmetric_sgen`` rows),
  so a signed battery needs no change to :mod:`~lec_cosim.models.lem_grid`. Its power enters the
  transformer power and the losses like any other injection.

Household power: one signed net value
-------------------------------------
:meth:`MultiLecGrid.solve` takes one signed **net** active power per household,
``net = load - pv + home-battery charge - discharge`` (kW; positive draws from the grid), and its
reactive power. A positive net goes into the household's load, a negative one into its generation
slot, on the same bus and phase. This is *exact*, not an approximation: loads and generators are
constant-power elements and ``runpp_3ph`` sums them per bus and phase before solving
(``pandapower.pf.runpp_3ph._load_mapping``), so a load ``L`` and a generator ``G`` on one bus-phase
are the same grid state as one load ``L - G``. Separate load, PV and battery arguments would only add
ways to pass the same state. :meth:`MultiLecGrid.step_injections` builds net and kvar from the
members' profiles and a home-battery schedule (positive: discharging, as the community batteries).
Reactive power stays with the household (the load's kvar; PV and batteries at unity power factor).

Per-LEC indicators (:class:`MultiLecGridResult`)
------------------------------------------------
An LEC's **voltage points** (:meth:`MultiLecGrid.lec_voltage_points`) are its households' connection
points (each household's bus on its own phase) and its community battery's bus (all three phases).
``lec_vm_min_pu`` / ``lec_vm_max_pu`` are the extremes over these points; the other two phases of a
single-phase household's bus feed no member, so they do not count (at 19:00 they would move lec1's
minimum from 1.0062 to 1.0058 pu). ``lec_net_import_kw`` is the sum of the LEC's household nets minus
its community battery's power (positive: the LEC draws from the feeder); ``lec_bus_violations`` counts
its points outside the band. Feeder-wide indicators are those of the wrapped ``LemGridResult``.

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
  envelope for the shared head cable needs a rule for sharing it between the LECs, which this module
  does not have.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, PHASES, IEEEEuropeanLV
from lec_cosim.models.lem_grid import (
    MAX_LOADING_PERCENT,
    VM_MAX_PU,
    VM_MIN_PU,
    LemGrid,
    LemGridResult,
)
from lec_cosim.models.multi_lec import MultiLecMembers

PROBE_KW = 10.0
"""Default extra import / export of an envelope probe, kW per LEC."""
MARGIN_PU = 0.005
"""Default distance of the envelope's target voltage from the band edge, pu."""


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MultiLecGridResult:
    """One three-phase power flow of :class:`MultiLecGrid`, with per-LEC indicators.

    Attributes
    ----------
    grid : LemGridResult
        Feeder-wide indicators and the per-bus voltages (``grid.vm_pu``).
    lec_names : tuple of str
    lec_vm_min_pu, lec_vm_max_pu : numpy.ndarray, shape (n_lecs,)
        Lowest / highest voltage over each LEC's voltage points (module docstring), pu.
    lec_net_import_kw : numpy.ndarray, shape (n_lecs,)
        Sum of the LEC's household nets minus its community battery's power, kW; positive: the LEC
        draws from the feeder.
    lec_bus_violations : numpy.ndarray of int, shape (n_lecs,)
        The LEC's voltage points outside ``[vm_min_pu, vm_max_pu]`` of the grid.
    household_net_kw, household_kvar : numpy.ndarray, shape (n_households,)
        The household injections of this state (order :attr:`MultiLecGrid.household_names`).
    community_battery_kw : numpy.ndarray, shape (n_lecs,)
        Community battery power, kW, positive: discharging into the grid.
    """

    grid: LemGridResult
    lec_names: tuple
    lec_vm_min_pu: np.ndarray
    lec_vm_max_pu: np.ndarray
    lec_net_import_kw: np.ndarray
    lec_bus_violations: np.ndarray
    household_net_kw: np.ndarray = field(repr=False)
    household_kvar: np.ndarray = field(repr=False)
    community_battery_kw: np.ndarray = field(repr=False)

    @property
    def bus_violations(self) -> int:
        """LV buses of the whole feeder with any phase outside the band (``grid.bus_violations``)."""
        return self.grid.bus_violations

    @property
    def p_loss_kw(self) -> float:
        """Losses of the feeder lines and the transformer, kW."""
        return self.grid.p_loss_kw

    @property
    def trafo_p_kw(self) -> float:
        """Active power through the transformer, kW, positive into the feeder."""
        return self.grid.trafo_p_kw

    def lec_table(self) -> pd.DataFrame:
        """The per-LEC indicators as a table indexed by LEC."""
        return pd.DataFrame({"vm_min_pu": self.lec_vm_min_pu, "vm_max_pu": self.lec_vm_max_pu,
                             "net_import_kw": self.lec_net_import_kw, "bus_violations": self.lec_bus_violations},
                            index=pd.Index(self.lec_names, name="lec"))


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------
class MultiLecGrid:
    """The IEEE European LV feeder with the multi-LEC members on it (a :class:`LemGrid` wrapper).

    Parameters
    ----------
    members : MultiLecMembers
        From :func:`~lec_cosim.models.multi_lec.multi_lec_members`: placement, assets and profiles.
    vm_min_pu, vm_max_pu : float
        Voltage band, pu.
    max_loading_percent : float
        Thermal limit of lines and transformer, % (LemGrid's overload counts).
    step_h : float
        Step length, hours (LemGrid's loss energies).
    data_dir : path-like
        IEEE data folder.
    feeder : IEEEEuropeanLV, optional
        A built feeder to reuse (its net is copied, not changed); default: built from ``data_dir``.
    solver : {"power-grid-model", "pandapower"}
        Three-phase power-flow backend of the wrapped :class:`LemGrid`.

    Attributes
    ----------
    lem_grid : LemGrid
        The wrapped grid; its ``net`` holds the community batteries as ``load`` rows.
    members : MultiLecMembers
    household_names : tuple of str
        Order of the household arrays (the members table's order).
    lec_names : tuple of str
    household_lec : numpy.ndarray of int
        Position in :attr:`lec_names` of each household's LEC.
    battery_names : tuple of str
        Community battery per LEC (``lecK_battery``), in :attr:`lec_names` order.
    battery_bus : numpy.ndarray of int
        IEEE bus of each community battery.
    lec_household_count : numpy.ndarray of int
        Households per LEC.
    """

    def __init__(
        self,
        members: MultiLecMembers,
        *,
        vm_min_pu: float = VM_MIN_PU,
        vm_max_pu: float = VM_MAX_PU,
        max_loading_percent: float = MAX_LOADING_PERCENT,
        step_h: float = 0.25,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        feeder: IEEEEuropeanLV | None = None,
        solver: str = "power-grid-model",
    ):
        import pandapower as pp

        self.members = members
        table = members.table
        hh = table[table["kind"] == "household"]
        bat = table[table["kind"] == "community_battery"]
        self.lec_names = tuple(members.lec_names)
        lec_pos = {name: i for i, name in enumerate(self.lec_names)}
        self.household_names = tuple(hh["member"])
        self.household_lec = hh["lec"].map(lec_pos).to_numpy(dtype=int)
        self._household_rows = np.flatnonzero((table["kind"] == "household").to_numpy())
        by_lec = bat.set_index("lec")
        missing = set(self.lec_names) - set(by_lec.index)
        if missing or len(bat) != len(self.lec_names):
            raise ValueError(f"need exactly one community battery per LEC; missing for {sorted(missing)}")
        self.battery_names = tuple(by_lec.loc[list(self.lec_names), "member"])
        self.battery_bus = by_lec.loc[list(self.lec_names), "bus"].to_numpy(dtype=int)

        lem_table = pd.DataFrame({"participant": hh["member"].to_numpy(), "kind": "prosumer",
                                  "bus": hh["bus"].to_numpy(dtype=int), "phase": hh["phase"].to_numpy()})
        self.lem_grid = LemGrid(feeder, lem_table, data_dir=data_dir, vm_min_pu=vm_min_pu, vm_max_pu=vm_max_pu,
                                max_loading_percent=max_loading_percent, step_h=step_h, solver=solver)
        net = self.lem_grid.net
        self._battery_load = np.array([pp.create_load(net, int(bus), p_mw=0.0, q_mvar=0.0, name=str(name))
                                       for name, bus in zip(self.battery_names, self.battery_bus)])

        # voltage points of each LEC: (row in vm_pu, phase column)
        bus_row = {int(b): i for i, b in enumerate(self.lem_grid.lv_buses)}
        phase_col = {ph: i for i, ph in enumerate(PHASES)}
        points = []
        for k, name in enumerate(self.lec_names):
            mine = hh[hh["lec"] == name]
            rows = [bus_row[int(b)] for b in mine["bus"]] + [bus_row[int(self.battery_bus[k])]] * 3
            cols = [phase_col[p] for p in mine["phase"]] + [0, 1, 2]
            points.append((np.array(rows), np.array(cols)))
        self._lec_points = points
        self.lec_household_count = np.bincount(self.household_lec, minlength=len(self.lec_names))

    # --- convenience ---------------------------------------------------------------------------
    @property
    def vm_min_pu(self) -> float:
        return self.lem_grid.vm_min_pu

    @property
    def vm_max_pu(self) -> float:
        return self.lem_grid.vm_max_pu

    @property
    def n_lecs(self) -> int:
        return len(self.lec_names)

    @property
    def n_households(self) -> int:
        return len(self.household_names)

    def lec_voltage_points(self, lec: str) -> list[tuple[int, str]]:
        """The (IEEE bus, phase) points over which ``lec``'s voltage extremes are taken."""
        rows, cols = self._lec_points[self.lec_names.index(lec)]
        return [(int(self.lem_grid.lv_buses[r]), PHASES[c]) for r, c in zip(rows, cols)]

    def step_injections(self, step: int, home_battery_kw=None) -> tuple[np.ndarray, np.ndarray]:
        """Household net power and kvar of one step of the members' profiles.

        Parameters
        ----------
        step : int
            Step of ``members`` (0 = midnight).
        home_battery_kw : mapping or array_like (n_households,), optional
            Home battery power, kW, positive: discharging (as the community batteries). Default 0.

        Returns
        -------
        (net_kw, kvar) : two numpy.ndarray, shape (n_households,)
            ``load - pv - home_battery_kw`` and the load's kvar, in :attr:`household_names` order.
        """
        rows = self._household_rows
        m = self.members
        battery = self._household_vector(home_battery_kw, "home_battery_kw")
        return (m.load_kw[rows, step] - m.pv_kw[rows, step] - battery, m.load_kvar[rows, step].copy())

    def _household_vector(self, values, what: str) -> np.ndarray:
        return _vector(values, self.household_names, what)

    def _battery_vector(self, values) -> np.ndarray:
        if isinstance(values, (Mapping, pd.Series)):
            values = {self.lec_names[self.battery_names.index(k)] if k in self.battery_names else k: v
                      for k, v in dict(values).items()}
        return _vector(values, self.lec_names, "community_battery_kw")

    # --- power flow ----------------------------------------------------------------------------
    def solve(self, household_net_kw, household_kvar, community_battery_kw=None,
              init: str | None = None) -> MultiLecGridResult:
        """Run the three-phase power flow of one state.

        Parameters
        ----------
        household_net_kw : mapping or array_like, shape (n_households,)
            Net active power per household, kW: load - PV + home-battery charge - discharge; positive
            draws from the grid. A mapping is keyed by ``LOADk`` (missing households: 0); an array
            follows :attr:`household_names`.
        household_kvar : mapping or array_like, shape (n_households,)
            Reactive power per household, kvar (positive: inductive).
        community_battery_kw : mapping or array_like, shape (n_lecs,), optional
            Community battery power per LEC, kW, positive: discharging into the grid, negative:
            charging. Keyed by LEC (``lec1``) or battery (``lec1_battery``); default 0.
        init : {"flat", "auto", "results"}, optional
            Start of pandapower's iteration (:meth:`LemGrid.solve`; power-grid-model ignores it).

        Returns
        -------
        MultiLecGridResult
        """
        net_kw = self._household_vector(household_net_kw, "household_net_kw")
        kvar = self._household_vector(household_kvar, "household_kvar")
        battery = self._battery_vector(community_battery_kw)
        grid = self.lem_grid
        gen = np.maximum(-net_kw, 0.0)
        grid.set_injections(load_kw=dict(zip(self.household_names, np.maximum(net_kw, 0.0))),
                            load_kvar=dict(zip(self.household_names, kvar)),
                            pv_kw=dict(zip(self.household_names, gen)))
        grid.net.load.loc[self._battery_load, "p_mw"] = -battery / 1000.0
        res = grid.solve(init)
        vm = res.vm_pu.to_numpy()
        vmin = np.empty(self.n_lecs)
        vmax = np.empty(self.n_lecs)
        viol = np.empty(self.n_lecs, dtype=int)
        for k, (rows, cols) in enumerate(self._lec_points):
            v = vm[rows, cols]
            vmin[k], vmax[k] = v.min(), v.max()
            viol[k] = int(((v < grid.vm_min_pu) | (v > grid.vm_max_pu)).sum())
        net_import = np.bincount(self.household_lec, weights=net_kw, minlength=self.n_lecs) - battery
        return MultiLecGridResult(grid=res, lec_names=self.lec_names, lec_vm_min_pu=vmin, lec_vm_max_pu=vmax,
                                  lec_net_import_kw=net_import, lec_bus_violations=viol, household_net_kw=net_kw,
                                  household_kvar=kvar, community_battery_kw=battery)

    def solve_step(self, step: int, home_battery_kw=None, community_battery_kw=None) -> MultiLecGridResult:
        """:meth:`solve` on the members' profiles of ``step`` (:meth:`step_injections`)."""
        net_kw, kvar = self.step_injections(step, home_battery_kw)
        return self.solve(net_kw, kvar, community_battery_kw)


def _vector(values, names: Sequence[str], what: str) -> np.ndarray:
    """A float vector in ``names`` order from a mapping (missing: 0), a Series, an array, or None (zeros)."""
    if values is None:
        return np.zeros(len(names))
    if isinstance(values, (Mapping, pd.Series)):
        series = pd.Series(dict(values), dtype=float)
        unknown = sorted(set(series.index) - set(names))
        if unknown:
            raise KeyError(f"{what}: unknown names {unknown}")
        out = series.reindex(list(names)).fillna(0.0).to_numpy(dtype=float)
    else:
        out = np.asarray(values, dtype=float).copy()
        if out.shape != (len(names),):
            raise ValueError(f"{what} must have shape ({len(names)},), got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what}: values must be finite")
    return out


# ---------------------------------------------------------------------------------------------
# Operating envelopes
# ---------------------------------------------------------------------------------------------
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
