"""Indicators of one three-phase grid state of the local market: limits, LemGridResult and the DN impact.

What one power flow of the feeder is judged by: the voltage band, the angle band and the thermal
limit, the counts and losses of :class:`LemGridResult`, and :func:`dn_impact`, the
distribution-network term of Lezama, Faia and Vale ("Bidding in Local Electricity Markets
Considering Low Voltage Grid Constraints"). Both the exact grid (:class:`~lec_cosim.models.
three_phase_feeder.LemGrid`, the DSO's power flow) and the learner's surrogate
(:class:`~lec_cosim.models.linear_dn_impact.LinearDnImpactModel`) report in these terms, so they
live in a module of their own that both import.

Indicators of one state (:class:`LemGridResult`)
------------------------------------------------
* ``bus_violations``: LV buses (IEEE buses 1..906) with any phase-to-neutral voltage outside
  [``vm_min_pu``, ``vm_max_pu``] (EN 50160: 0.9-1.1 pu; pu of 416 V/sqrt(3)). ``bus_violations_reduced``
  counts only the 110 buses of the reduced model
  (:func:`~lec_cosim.models.lem_participants.reduced_bus_numbering`), the kind of model the paper
  counts on.
* ``angle_violations``: LV buses where the angle of any phase voltage deviates from the same phase's
  angle at the transformer LV bus 1 by more than ``va_max_deviation_degree`` (default 5 deg). The paper
  counts "angle violations" without defining them; the reference (the feeder head, so the transformer
  phase shift drops out) and the 5 deg band are choices of this module. On this feeder the largest
  deviation found is ~1.3 deg (evening peak, all CHPs on), so with 5 deg the count is always 0.
* ``line_overloads``: feeder line sections with any phase current above ``max_loading_percent`` of the
  line code's rating, plus 1 if the transformer is overloaded: its loading is the largest phase current
  on either side over the rated current of that side (800 kVA: 1.110 kA at 416 V, 42.0 A at 11 kV;
  pandapower's own ``loading_percent`` of ``res_trafo_3ph`` uses the HV side only). The IEEE feeder
  splits cables into many short sections (905 lines), so one overloaded cable counts once per
  section; ``line_overloads_reduced`` counts the 109 equivalent lines of the reduced model (a reduced
  line is overloaded if any of its sections is) plus the transformer.
* ``p_loss_kw``, ``q_loss_kvar``: losses of the 905 feeder lines and the transformer (sums of
  pandapower's per-phase ``pl``/``ql``; a single phase's value can be negative through the mutual
  coupling, only the sum is a loss).
* ``trafo_p_kw``: active power through the transformer, positive from 11 kV into the feeder.
* ``dn_impact`` of the step, :func:`dn_impact`: violations + overloads + loss energies of the step
  (``p_loss_kw * step_h`` kWh and ``q_loss_kvar * step_h`` kvarh), with the counts of the full feeder
  or of the reduced model (``violation_model``). The same function is used by the learner's surrogate
  and by the DSO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

VM_MIN_PU = 0.9
"""Lower voltage limit, pu (EN 50160: -10 % of the nominal voltage)."""
VM_MAX_PU = 1.1
"""Upper voltage limit, pu (EN 50160: +10 %)."""
MAX_LOADING_PERCENT = 100.0
"""Thermal limit of lines and transformer, % of the rating."""
VA_MAX_DEVIATION_DEGREE = 5.0
"""Largest allowed deviation of a phase angle from the same phase at the feeder head, degrees (a choice)."""
VIOLATION_MODELS = ("full", "reduced")


def dn_impact(bus_violations, angle_violations, line_overloads, p_loss_kwh, q_loss_kvarh, step_h=1.0):
    """Distribution-network impact of one step (the paper's DN term of the CHP fitness).

    ``step_h * (bus_violations + angle_violations + line_overloads) + p_loss_kwh + q_loss_kvarh``:
    counts of the step weighted by the step length in hours (so a violation lasting an hour counts
    1 at any grid resolution; with the paper's hourly steps the weight is 1) plus the active and
    reactive loss energies of the step (loss power times the step length in hours). Summed over the
    steps of a day it is the day's DN impact. Used alike by
    :class:`LemGrid` (the DSO's power flow) and :class:`LinearDnImpactModel` (the learner).

    Parameters
    ----------
    bus_violations, angle_violations, line_overloads : int or array_like
        Counts of the step.
    p_loss_kwh, q_loss_kvarh : float or array_like
        Loss energies of the step, kWh and kvarh.

    Returns
    -------
    float or numpy.ndarray
    """
    return step_h * (bus_violations + angle_violations + line_overloads) + p_loss_kwh + q_loss_kvarh


@dataclass(frozen=True, eq=False)
class LemGridResult:
    """Grid indicators of one three-phase power flow of :class:`LemGrid`.

    Attributes
    ----------
    vm_min_pu, vm_max_pu : float
        Lowest and highest phase voltage over the LV buses 1..906 and their three phases, pu.
    bus_violations, bus_violations_reduced : int
        LV buses with any phase voltage outside the band; all 906 / the 110 of the reduced model.
    angle_violations, angle_violations_reduced : int
        LV buses with any phase angle deviating from the same phase at bus 1 by more than the limit.
    line_overloads, line_overloads_reduced : int
        Overloaded feeder line sections (of 905) / reduced-model lines (of 109), each plus 1 for an
        overloaded transformer.
    max_line_loading_percent : float
        Highest phase current of any feeder line in % of its rating.
    trafo_loading_percent : float
        Highest phase current of the transformer in % of the rated current of its side.
    p_loss_kw, q_loss_kvar : float
        Losses of the feeder lines and the transformer (not of the source impedance).
    trafo_p_kw, trafo_q_kvar : float
        Power through the transformer, positive from the 11 kV side into the feeder.
    step_h : float
        Step length the loss energies of ``dn_impact`` refer to, hours.
    violation_model : {"full", "reduced"}
        Which counts enter ``dn_impact``.
    dn_impact : float
        :func:`dn_impact` of the step.
    vm_pu, va_deviation_degree : pandas.DataFrame
        Per LV bus (index 1..906) and phase (columns ``a, b, c``): voltage magnitude, pu, and angle
        minus the same phase's angle at bus 1, degrees. Built when first read from ``vm_pu_values`` and
        ``va_deviation_values`` (the same numbers as arrays, bus by phase): a step that only needs the
        indicators and the arrays (the DSO) does not pay for the frames.
    line_loading_percent : pandas.Series
        Highest phase current of every feeder line in % of its rating (index: line name); built when first
        read from ``line_loading_values``.
    violated_buses : tuple of int
        IEEE numbers of the LV buses counted in ``bus_violations``.
    trafo_loadings_percent : numpy.ndarray
        Loading of each transformer (one per feeder copy, order :attr:`LemGrid.trafo_names`), %;
        ``trafo_loading_percent`` is their largest.
    line_phase_loading_values : numpy.ndarray, shape (n_lines, 3), optional
        Current of every feeder line's phases a, b, c in % of its rating (``line_loading_values`` is the
        row maximum).
    trafo_phase_loading_values : numpy.ndarray, shape (n_trafos, 6), optional
        Each transformer's phase currents in % of its side's rated current: LV a, b, c, then HV a, b, c.
    """

    vm_min_pu: float
    vm_max_pu: float
    bus_violations: int
    bus_violations_reduced: int
    angle_violations: int
    angle_violations_reduced: int
    line_overloads: int
    line_overloads_reduced: int
    max_line_loading_percent: float
    trafo_loading_percent: float
    p_loss_kw: float
    q_loss_kvar: float
    trafo_p_kw: float
    trafo_q_kvar: float
    step_h: float
    violation_model: str
    dn_impact: float
    vm_pu_values: np.ndarray = field(repr=False)
    va_deviation_values: np.ndarray = field(repr=False)
    line_loading_values: np.ndarray = field(repr=False)
    bus_index: pd.Index = field(repr=False)
    phase_index: pd.Index = field(repr=False)
    line_index: pd.Index = field(repr=False)
    violated_buses: tuple = field(default=(), repr=False)
    trafo_loadings_percent: np.ndarray = field(default=None, repr=False)
    line_phase_loading_values: np.ndarray = field(default=None, repr=False)
    trafo_phase_loading_values: np.ndarray = field(default=None, repr=False)

    @cached_property
    def vm_pu(self) -> pd.DataFrame:
        return pd.DataFrame(self.vm_pu_values, index=self.bus_index, columns=self.phase_index)

    @cached_property
    def va_deviation_degree(self) -> pd.DataFrame:
        return pd.DataFrame(self.va_deviation_values, index=self.bus_index, columns=self.phase_index)

    @cached_property
    def line_loading_percent(self) -> pd.Series:
        return pd.Series(self.line_loading_values, index=self.line_index)

    def scalars(self) -> dict:
        """The scalar indicators as a dict (no per-bus or per-line tables)."""
        skip = {"vm_pu_values", "va_deviation_values", "line_loading_values", "bus_index", "phase_index",
                "line_index", "violated_buses", "trafo_loadings_percent", "line_phase_loading_values",
                "trafo_phase_loading_values"}
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in skip}


BLOCK_SCALARS = ("vm_min_pu", "vm_max_pu", "bus_violations", "bus_violations_reduced", "angle_violations",
                 "angle_violations_reduced", "line_overloads", "line_overloads_reduced", "max_line_loading_percent",
                 "trafo_loading_percent", "p_loss_kw", "q_loss_kvar", "trafo_p_kw", "trafo_q_kvar", "dn_impact")
"""The per-step indicators of :class:`LemGridBlock`: :class:`LemGridResult`'s numbers (the counts are integers)."""
_BLOCK_COUNTS = frozenset(name for name in BLOCK_SCALARS if "violations" in name or "overloads" in name)


@dataclass(frozen=True, eq=False)
class LemGridBlock:
    """Grid indicators of a block of grid steps of :class:`LemGrid` (:meth:`LemGrid.solve_block`): each of
    :data:`BLOCK_SCALARS` an array with a value per step, and the per-element arrays a grid's extremes and the
    DSO's running counts need, with a leading axis of steps. Step ``j``'s numbers are those of
    :class:`LemGridResult` of :meth:`LemGrid.solve` on its injections alone, to the last digit; no frame, no
    result object per step (what they cost was most of the DSO's step besides the flow).

    Attributes
    ----------
    vm_min_pu, ..., dn_impact : numpy.ndarray, shape (steps,)
        As :class:`LemGridResult`'s fields of the same names (float64; the counts int64).
    step_h : float
    violation_model : str
    vm_phase_values : numpy.ndarray, shape (steps, 3, n_bus)
        Each LV bus's phase voltages, pu, phase by phase; ``vm_pu_values`` is its (steps, n_bus, 3) view
        (``LemGridResult.vm_pu_values`` per step).
    line_loading_values : numpy.ndarray, shape (steps, n_lines)
        Each feeder line's highest phase current, % of its rating.
    trafo_loadings_percent : numpy.ndarray, shape (steps, n_trafos)
    bus_violated : numpy.ndarray of bool, shape (steps, n_bus)
        The LV buses (order :attr:`LemGrid.lv_buses`) counted in ``bus_violations``: ``violated_buses`` per step.
    vm_bus_min_pu, vm_bus_max_pu : numpy.ndarray, shape (steps, n_bus), optional
        Each LV bus's lowest and highest phase voltage (``vm_pu_values``' minimum and maximum over the phases).
    """

    vm_min_pu: np.ndarray
    vm_max_pu: np.ndarray
    bus_violations: np.ndarray
    bus_violations_reduced: np.ndarray
    angle_violations: np.ndarray
    angle_violations_reduced: np.ndarray
    line_overloads: np.ndarray
    line_overloads_reduced: np.ndarray
    max_line_loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    p_loss_kw: np.ndarray
    q_loss_kvar: np.ndarray
    trafo_p_kw: np.ndarray
    trafo_q_kvar: np.ndarray
    dn_impact: np.ndarray
    step_h: float
    violation_model: str
    vm_phase_values: np.ndarray = field(repr=False)
    line_loading_values: np.ndarray = field(repr=False)
    trafo_loadings_percent: np.ndarray = field(repr=False)
    bus_violated: np.ndarray = field(repr=False)
    vm_bus_min_pu: np.ndarray = field(default=None, repr=False)
    vm_bus_max_pu: np.ndarray = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.vm_min_pu)

    @property
    def vm_pu_values(self) -> np.ndarray:
        """(steps, n_bus, 3): each LV bus's phase voltages, pu (a view of ``vm_phase_values``)."""
        return self.vm_phase_values.transpose(0, 2, 1)

    def violated_so_far(self, before: np.ndarray) -> np.ndarray:
        """(step, bus): the LV buses outside the band at any step up to each of the block's, ``before`` (per bus)
        those outside it before the block (the DSO's running counts of distinct buses)."""
        return np.logical_or.accumulate(self.bus_violated | before, axis=0)

    def scalars(self, step: int) -> dict:
        """Step ``step``'s indicators as :meth:`LemGridResult.scalars` gives them (Python floats and ints)."""
        out = {}
        for name in BLOCK_SCALARS:
            if name == "dn_impact":  # LemGridResult's order of fields
                out.update(step_h=self.step_h, violation_model=self.violation_model)
            out[name] = (int if name in _BLOCK_COUNTS else float)(getattr(self, name)[step])
        return out

    def set_step(self, step: int, result: LemGridResult, lv_buses: np.ndarray) -> None:
        """Put one step's :class:`LemGridResult` (its LV buses ``lv_buses``) in row ``step``."""
        for name in BLOCK_SCALARS:
            getattr(self, name)[step] = getattr(result, name)
        self.vm_phase_values[step] = result.vm_pu_values.T
        self.line_loading_values[step] = result.line_loading_values
        self.trafo_loadings_percent[step] = result.trafo_loadings_percent
        self.bus_violated[step] = np.isin(lv_buses, result.violated_buses)
        if self.vm_bus_min_pu is not None:
            self.vm_bus_min_pu[step] = result.vm_pu_values.min(axis=1)
            self.vm_bus_max_pu[step] = result.vm_pu_values.max(axis=1)

    @classmethod
    def concatenate(cls, blocks: list) -> LemGridBlock:
        """One block of the steps of ``blocks``, in order."""
        arrays = {name: np.concatenate([getattr(b, name) for b in blocks])
                  for name in cls.__dataclass_fields__ if name not in ("step_h", "violation_model")
                  and getattr(blocks[0], name) is not None}
        return cls(**arrays, step_h=blocks[0].step_h, violation_model=blocks[0].violation_model)

    @classmethod
    def gathered(cls, rows: list[tuple[LemGridBlock, int]]) -> LemGridBlock:
        """One block of the given rows of other blocks (``(block, row)`` per step, in order): each step's numbers
        copied as they are. A field that one of the blocks lacks (None) is None."""
        first = rows[0][0]
        by_block: dict[int, tuple[LemGridBlock, list[int], list[int]]] = {}  # id -> block, its rows, rows out
        for out_row, (block, row) in enumerate(rows):
            entry = by_block.setdefault(id(block), (block, [], []))
            entry[1].append(row)
            entry[2].append(out_row)
        arrays = {}
        for name in cls.__dataclass_fields__:
            if name in ("step_h", "violation_model"):
                continue
            parts = [getattr(block, name) for block, _, _ in by_block.values()]
            if any(part is None for part in parts):
                arrays[name] = None
                continue
            out = np.empty((len(rows), *parts[0].shape[1:]), dtype=parts[0].dtype)
            for part, (_, taken, placed) in zip(parts, by_block.values()):
                out[placed] = part[taken]
            arrays[name] = out
        return cls(**arrays, step_h=first.step_h, violation_model=first.violation_model)

    @classmethod
    def from_results(cls, results: list, bus_violated: np.ndarray) -> LemGridBlock:
        """The block of per-step results (``bus_violated``: (steps, n_bus), their ``violated_buses``)."""
        first = results[0]
        scalars = {name: np.array([getattr(r, name) for r in results],
                                  dtype=np.int64 if name in _BLOCK_COUNTS else float) for name in BLOCK_SCALARS}
        return cls(**scalars, step_h=first.step_h, violation_model=first.violation_model,
                   vm_phase_values=np.stack([r.vm_pu_values.T for r in results]),
                   line_loading_values=np.stack([r.line_loading_values for r in results]),
                   trafo_loadings_percent=np.stack([np.asarray(r.trafo_loadings_percent, dtype=float)
                                                    for r in results]),
                   bus_violated=np.asarray(bus_violated, dtype=bool))


@dataclass(frozen=True, eq=False)
class _GridState:
    """Raw arrays of one solved state (internal: shared by LemGrid.solve and the linear model)."""

    vm: np.ndarray  # (n_bus, 3) LV buses 1..906
    va_dev: np.ndarray  # (n_bus, 3) degrees
    i_line: np.ndarray  # (n_line, 3) complex, kA, feeder lines
    i_line_mag: np.ndarray  # (n_line, 3) kA (pandapower's)
    i_trafo_lv: np.ndarray  # (n_trafo, 3) complex, kA
    i_trafo_hv: np.ndarray  # (n_trafo, 3) complex, kA
    i_trafo_lv_mag: np.ndarray  # (n_trafo, 3)
    i_trafo_hv_mag: np.ndarray  # (n_trafo, 3)
    p_loss_kw: float
    q_loss_kvar: float
    trafo_p_kw: float
    trafo_q_kvar: float


def _wrap_degree(angle):
    return (np.asarray(angle) + 180.0) % 360.0 - 180.0

