"""The multi-LEC members on the IEEE European LV feeder: one three-phase power flow with per-LEC indicators.

:class:`MultiLecGrid` places the members of :func:`lec_cosim.models.multi_lec.multi_lec_members` (55
households in three LECs, one community battery per LEC) on the feeder and evaluates one grid state
with the three-phase power flow of :class:`lec_cosim.models.three_phase_feeder.LemGrid` (which it
wraps; the power-flow code, ratings, losses and violation counts are LemGrid's), reporting each LEC's
voltages, net import and violations (:class:`MultiLecGridResult`). The DSO's limits derived from such
power flows are :mod:`lec_cosim.models.operating_envelope`. No HELICS here.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.feeder_model import Feeder
from lec_cosim.models.grid_indicators import (
    MAX_LOADING_PERCENT,
    VM_MAX_PU,
    VM_MIN_PU,
    LemGridResult,
)
from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, PHASES, IEEEEuropeanLV
from lec_cosim.models.multi_lec import MultiLecMembers
from lec_cosim.models.three_phase_feeder import LemGrid


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
    feeder : IEEEEuropeanLV or Feeder, optional
        A built IEEE feeder to reuse (its net is copied, not changed; default: built from ``data_dir``), or a
        feeder from any source (:class:`~lec_cosim.models.feeder_model.Feeder`) the members were placed on
        (:func:`~lec_cosim.models.multi_lec.multi_lec_members_on_feeder`: their buses are its pandapower buses).
    solver : {"power-grid-model", "pandapower", "opendss"}
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
        feeder: IEEEEuropeanLV | Feeder | None = None,
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
            rows, cols = [], []
            for bus, phase in [*zip(mine["bus"], mine["phase"]), (self.battery_bus[k], "abc")]:
                rows += [bus_row[int(bus)]] * len(phase)  # a balanced connection: all three phases
                cols += [phase_col[p] for p in phase]
            points.append((np.array(rows), np.array(cols)))
        self._lec_points = points
        self.lec_household_count = np.bincount(self.household_lec, minlength=len(self.lec_names))
        # the households' positions in the grid's own orders (its households, its prosumers: every household, as
        # made above): its injections are then set as arrays, without a lookup by name per household and step (a
        # third of a step's time)
        position = {name: i for i, name in enumerate(self.household_names)}
        self._grid_order = (np.array([position[n] for n in self.lem_grid.household_names]),
                            np.array([position[n] for n in self.lem_grid.prosumer_names]))

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
        households, prosumers = self._grid_order
        grid.set_injections(load_kw=np.maximum(net_kw, 0.0)[households], load_kvar=kvar[households],
                            pv_kw=gen[prosumers])
        loads = grid.net.load
        for row, kw in zip(self._battery_load, battery):  # .at per battery: .loc with a list costs ~0.5 ms a step
            loads.at[row, "p_mw"] = -kw / 1000.0
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


