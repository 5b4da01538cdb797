"""The LEM participants on the IEEE European LV feeder: three-phase grid state and DN impact.

:class:`LemGrid` places the 61 players of :mod:`lec_cosim.models.lem_participants` on the feeder of
:mod:`lec_cosim.models.ieee_eulv` and evaluates one grid state with pandapower's ``runpp_3ph``:
voltage band, voltage angle and thermal-limit violations, losses, and the distribution-network (DN)
impact of Lezama, Faia and Vale ("Bidding in Local Electricity Markets Considering Low Voltage Grid
Constraints"). :class:`LinearDnImpactModel` is a fast surrogate of the same DN impact as a function of
the CHP outputs only, for the bid learner (:mod:`lec_cosim.models.bidding`), which evaluates ~10^5
candidate bid sets. No HELICS here.

Elements (:class:`LemGrid`)
---------------------------
* **Households** ``LOAD1`` .. ``LOAD55``: the feeder's single-phase wye ``asymmetric_load`` on their
  own bus and phase (constant P and Q).
* **PV** of the 42 prosumers: one single-phase wye ``asymmetric_sgen`` per prosumer on the household's
  bus and phase, unity power factor.
* **CHP** ``CHP1`` .. ``CHP6``: one balanced three-phase ``asymmetric_sgen`` per unit (P/3 per phase),
  unity power factor, at its IEEE bus.

pandapower's ``runpp_3ph`` sums ``load``, ``asymmetric_load``, ``sgen`` and ``asymmetric_sgen`` per
bus and phase (``pandapower.pf.runpp_3ph._load_mapping``; sgens enter with a negative sign).

Line ratings
------------
The IEEE data have no ampacity. ``data/ieee_eulv/line_ratings.csv`` (:func:`read_line_ratings`, see
``data/ieee_eulv/README.md``) gives one continuous rating per line code from IEC 60364-5-52 (cables in
the ground, method D). ``Vsource_impedance`` (the 11 kV source impedance) is not part of the feeder: it
is excluded from losses and overload checks. With the loads scaled to the paper's 140 kW peak, the
4-core 70 mm2 aluminium cable at the feeder head (138 A; its first 39 sections carry all 55 households)
and the 0.1 in2 copper main after it (143 A) overload at the evening peak and, from reverse PV flow,
around noon.

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

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from lec_cosim.models.ieee_eulv import (
    _HAVE_NUMBA,
    DEFAULT_DATA_DIR,
    PHASES,
    SOURCE_IMPEDANCE_LINE_NAME,
    IEEEEuropeanLV,
    build_ieee_eulv,
)
from lec_cosim.models.lem_community import build_community
from lec_cosim.models.pgm_backend import (
    PowerFlowArrays,
    PowerFlowNotConverged,
    PgmPowerFlow,
    PowerGridError,
    pandapower_results,
)
from lec_cosim.models.feeder_copies import (
    FEEDER_BUS_STRIDE,
    copy_bus,
    feeder_of_bus,
    ieee_bus,
    replicate_feeder_net,
)
from lec_cosim.models.lem_participants import (
    DEFAULT_PV_DAY,
    HEAD_BUS,
    PAPER_LOAD_PEAK_KW,
    PV_PROFILE_FILE,
    participants,
    reduced_bus_numbering,
)

LINE_RATINGS_FILE = DEFAULT_DATA_DIR / "line_ratings.csv"
"""Continuous current rating per IEEE line code (``data/ieee_eulv/line_ratings.csv``)."""
VM_MIN_PU = 0.9
"""Lower voltage limit, pu (EN 50160: -10 % of the nominal voltage)."""
VM_MAX_PU = 1.1
"""Upper voltage limit, pu (EN 50160: +10 %)."""
MAX_LOADING_PERCENT = 100.0
"""Thermal limit of lines and transformer, % of the rating."""
VA_MAX_DEVIATION_DEGREE = 5.0
"""Largest allowed deviation of a phase angle from the same phase at the feeder head, degrees (a choice)."""
LOAD_POWER_FACTOR = 0.95
"""Power factor (lagging) of the IEEE household loads."""
VIOLATION_MODELS = ("full", "reduced")
SOLVERS = ("power-grid-model", "pandapower")
"""Power-flow backends of :class:`LemGrid`; the first is the default (see :mod:`lec_cosim.models.pgm_backend`)."""

_SQRT3 = math.sqrt(3.0)


def read_line_ratings(path: Path | str = LINE_RATINGS_FILE) -> pd.DataFrame:
    """Read the line ratings table.

    Parameters
    ----------
    path : path-like
        CSV with columns ``linecode, conductor, cross_section_mm2, max_i_ka, source``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``linecode``.
    """
    table = pd.read_csv(path).set_index("linecode")
    if not (table["max_i_ka"] > 0).all():
        raise ValueError(f"{path}: every max_i_ka must be > 0")
    return table


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


def reactive_power_kvar(load_kw, power_factor: float = LOAD_POWER_FACTOR):
    """Reactive power of loads at a lagging power factor, ``P * tan(acos(pf))`` (same container type)."""
    if not 0 < power_factor <= 1:
        raise ValueError("power_factor must be in (0, 1]")
    return load_kw * math.tan(math.acos(power_factor))


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
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
        minus the same phase's angle at bus 1, degrees.
    line_loading_percent : pandas.Series
        Highest phase current of every feeder line in % of its rating (index: line name).
    violated_buses : tuple of int
        IEEE numbers of the LV buses counted in ``bus_violations``.
    trafo_loadings_percent : numpy.ndarray
        Loading of each transformer (one per feeder copy, order :attr:`LemGrid.trafo_names`), %;
        ``trafo_loading_percent`` is their largest.
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
    vm_pu: pd.DataFrame = field(repr=False)
    va_deviation_degree: pd.DataFrame = field(repr=False)
    line_loading_percent: pd.Series = field(repr=False)
    violated_buses: tuple = field(default=(), repr=False)
    trafo_loadings_percent: np.ndarray = field(default=None, repr=False)

    def scalars(self) -> dict:
        """The scalar indicators as a dict (no per-bus or per-line tables)."""
        skip = {"vm_pu", "va_deviation_degree", "line_loading_percent", "violated_buses", "trafo_loadings_percent"}
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in skip}


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


def _as_series(values, what: str) -> pd.Series:
    if isinstance(values, pd.Series):
        series = values
    elif isinstance(values, Mapping):
        series = pd.Series(dict(values), dtype=float)
    else:
        raise TypeError(f"{what} must be a mapping or a pandas Series keyed by participant name")
    series = series.astype(float)
    if not series.index.is_unique:
        raise ValueError(f"{what}: duplicate participant names")
    if not np.all(np.isfinite(series.to_numpy())):
        raise ValueError(f"{what}: values must be finite")
    return series


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------
class LemGrid:
    """The IEEE European LV feeder with the LEM's households, PV and CHP units on it.

    Parameters
    ----------
    feeder : IEEEEuropeanLV, optional
        The feeder (:func:`~lec_cosim.models.ieee_eulv.build_ieee_eulv`); its net is copied, not changed.
        Default: built from ``data_dir``.
    table : pandas.DataFrame, optional
        Participants (:func:`~lec_cosim.models.lem_participants.participants`): columns
        ``participant, kind, bus, phase``. Households must be the feeder's ``LOAD1`` .. ``LOAD55`` on
        their IEEE bus and phase; prosumers get a PV unit; ``kind == "chp"`` rows a three-phase CHP.
        Default: built from ``data_dir``.
    data_dir : path-like
        IEEE data folder (default ``data/ieee_eulv``).
    line_ratings : pandas.DataFrame or path-like, optional
        Ratings per line code (:func:`read_line_ratings`); default ``data/ieee_eulv/line_ratings.csv``.
    vm_min_pu, vm_max_pu : float
        Voltage band, pu (EN 50160 defaults 0.9 and 1.1).
    max_loading_percent : float
        Thermal limit of lines and transformer, % of the rating.
    va_max_deviation_degree : float
        Angle band around the same phase's angle at bus 1, degrees.
    step_h : float
        Length of a step, hours: the loss energies in ``dn_impact`` are ``loss * step_h``.
    violation_model : {"full", "reduced"}
        Counts entering ``dn_impact``: of the full feeder (906 buses, 905 line sections) or of the
        110-bus reduced model. Both are always reported.
    solver : {"power-grid-model", "pandapower"}
        Three-phase power-flow backend: power-grid-model (~3 ms per flow here) or pandapower's
        ``runpp_3ph`` (~0.1-0.3 s without numba). Both model the same network and agree within
        ~1e-7 pu (``tests/test_pgm_backend.py``).

    Attributes
    ----------
    net : pandapowerNet
        The three-phase model with the PV and CHP ``asymmetric_sgen`` added (names ``PV LOADk`` and
        ``CHPi``) and ``max_i_ka`` set from the ratings.
    household_names, prosumer_names, chp_names : tuple of str
    chp_bus : dict
        CHP name -> IEEE bus.
    """

    def __init__(
        self,
        feeder: IEEEEuropeanLV | None = None,
        table: pd.DataFrame | None = None,
        *,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        line_ratings: pd.DataFrame | Path | str | None = None,
        vm_min_pu: float = VM_MIN_PU,
        vm_max_pu: float = VM_MAX_PU,
        max_loading_percent: float = MAX_LOADING_PERCENT,
        va_max_deviation_degree: float = VA_MAX_DEVIATION_DEGREE,
        step_h: float = 1.0,
        violation_model: str = "full",
        solver: str = SOLVERS[0],
    ):
        import pandapower as pp

        if not 0 < vm_min_pu < vm_max_pu:
            raise ValueError("need 0 < vm_min_pu < vm_max_pu")
        if not (max_loading_percent > 0 and va_max_deviation_degree > 0 and step_h > 0):
            raise ValueError("max_loading_percent, va_max_deviation_degree and step_h must be > 0")
        if violation_model not in VIOLATION_MODELS:
            raise ValueError(f"violation_model must be one of {VIOLATION_MODELS}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        self.solver = solver
        self.vm_min_pu = float(vm_min_pu)
        self.vm_max_pu = float(vm_max_pu)
        self.max_loading_percent = float(max_loading_percent)
        self.va_max_deviation_degree = float(va_max_deviation_degree)
        self.step_h = float(step_h)
        self.violation_model = violation_model

        feeder = build_ieee_eulv(data_dir, minute=None) if feeder is None else feeder
        table = participants(data_dir=data_dir) if table is None else table
        feeder_col = table["feeder"].to_numpy(dtype=int) if "feeder" in table.columns else np.ones(len(table), int)
        self.n_feeders = int(feeder_col.max())
        net = replicate_feeder_net(feeder.net, self.n_feeders)
        self.net = net
        net_bus = pd.Series(copy_bus(table["bus"].to_numpy(dtype=int), feeder_col), index=table.index)

        # households = the feeder's loads
        al = net.asymmetric_load
        households = table[table["kind"].isin(["consumer", "prosumer"])]
        load_row = pd.Series(np.arange(len(al)), index=al["name"].to_numpy())
        missing = set(households["participant"]) - set(load_row.index)
        if missing or len(households) != len(al):
            raise ValueError(f"households must be the feeder's loads; not on the feeder: {sorted(missing)}")
        rows = load_row.loc[households["participant"]].to_numpy()
        if not np.array_equal(al["bus"].to_numpy()[rows], net_bus[households.index].to_numpy()):
            raise ValueError("a household's bus differs from its feeder load's bus")
        phase_idx = households["phase"].map({ph: i for i, ph in enumerate(PHASES)}).to_numpy()
        load_phase = np.tile(feeder.load_phase, self.n_feeders)
        if np.any(pd.isna(phase_idx)) or not np.array_equal(load_phase[rows], households["phase"].to_numpy()):
            raise ValueError("a household's phase differs from its feeder load's phase")
        self.household_names = tuple(households["participant"])
        self._load_row = rows
        self._load_phase = phase_idx.astype(int)
        for ph in PHASES:
            al[f"p_{ph}_mw"] = 0.0
            al[f"q_{ph}_mvar"] = 0.0

        # PV: single-phase sgens of the prosumers; CHP: balanced three-phase sgens
        prosumers = households[households["kind"] == "prosumer"]
        self.prosumer_names = tuple(prosumers["participant"])
        self._pv_phase = prosumers["phase"].map({ph: i for i, ph in enumerate(PHASES)}).to_numpy(dtype=int)
        pv_rows = [pp.create_asymmetric_sgen(net, int(bus), name=f"PV {name}", type="wye")
                   for name, bus in zip(prosumers["participant"], net_bus[prosumers.index])]
        chps = table[table["kind"] == "chp"]
        self.chp_names = tuple(chps["participant"])
        self.chp_bus = {name: int(bus) for name, bus in zip(chps["participant"], chps["bus"])}
        chp_rows = [pp.create_asymmetric_sgen(net, int(bus), name=str(name), type="wye")
                    for name, bus in zip(chps["participant"], net_bus[chps.index])]
        self._pv_pos = net.asymmetric_sgen.index.get_indexer(pv_rows)
        self._chp_pos = net.asymmetric_sgen.index.get_indexer(chp_rows)

        # ratings
        if not isinstance(line_ratings, pd.DataFrame):
            line_ratings = read_line_ratings(LINE_RATINGS_FILE if line_ratings is None else line_ratings)
        ratings = line_ratings
        feeder_lines = net.line["name"] != SOURCE_IMPEDANCE_LINE_NAME
        codes = net.line.loc[feeder_lines, "ieee_linecode"]
        unknown = set(codes) - set(ratings.index)
        if unknown:
            raise ValueError(f"no rating for line codes {sorted(unknown)}")
        net.line.loc[feeder_lines, "max_i_ka"] = ratings.loc[codes, "max_i_ka"].to_numpy(dtype=float)
        self._line_idx = net.line.index[feeder_lines].to_numpy()
        self.line_names = tuple(net.line.loc[feeder_lines, "name"])
        self._line_max_i_ka = net.line.loc[feeder_lines, "max_i_ka"].to_numpy(dtype=float)
        from_bus = net.line.loc[feeder_lines, "from_bus"].to_numpy(dtype=int)
        to_bus = net.line.loc[feeder_lines, "to_bus"].to_numpy(dtype=int)
        self._line_from_bus = from_bus
        self.line_from_bus, self.line_to_bus = from_bus, to_bus
        """pandapower buses of each feeder line's ends (order :attr:`line_names`)."""
        length = net.line.loc[feeder_lines, "length_km"].to_numpy(dtype=float)
        r1, r0, x1, x0 = (net.line.loc[feeder_lines, c].to_numpy(dtype=float) * length
                          for c in ("r_ohm_per_km", "r0_ohm_per_km", "x_ohm_per_km", "x0_ohm_per_km"))
        # phase-frame loss weights: loss = w_phase * sum_p |I_p|^2 + w_sum * |sum_p I_p|^2
        self._line_r = (r1, (r0 - r1) / 3.0)
        self._line_x = (x1, (x0 - x1) / 3.0)

        # transformers: one per feeder copy, all alike
        if len(net.trafo) != self.n_feeders:
            raise ValueError("expected one transformer per feeder")
        self.trafo_names = tuple(net.trafo["name"])
        tr = net.trafo.iloc[0]
        self._trafo_hv_bus = int(tr["hv_bus"])
        self._trafo_lv_bus = net.trafo["lv_bus"].to_numpy(dtype=int)
        if not np.array_equal(self._trafo_lv_bus, copy_bus(HEAD_BUS, np.arange(1, self.n_feeders + 1))):
            raise ValueError("expected each feeder's transformer LV side at its bus 1")
        sn = float(tr["sn_mva"])
        self._trafo_ir_lv_ka = sn / (_SQRT3 * float(tr["vn_lv_kv"]))
        self._trafo_ir_hv_ka = sn / (_SQRT3 * float(tr["vn_hv_kv"]))
        zbase_lv = float(tr["vn_lv_kv"]) ** 2 / sn
        vk, vkr = float(tr["vk_percent"]) / 100.0, float(tr["vkr_percent"]) / 100.0
        self._trafo_r_ohm = vkr * zbase_lv
        self._trafo_x_ohm = math.sqrt(vk * vk - vkr * vkr) * zbase_lv
        if not (math.isclose(float(tr["vk0_percent"]), float(tr["vk_percent"]))
                and math.isclose(float(tr["vkr0_percent"]), float(tr["vkr_percent"]))):
            raise ValueError("the transformer loss model assumes zero-sequence = leakage impedance")

        # LV buses, reduced model
        self.lv_buses = np.array(sorted(b for b in net.bus.index if net.bus.at[b, "vn_kv"] < 1.0), dtype=int)
        self._bus_vn_kv = net.bus["vn_kv"]
        reduced = reduced_bus_numbering(data_dir)
        reduced_of = {int(b): int(r) for r, b in reduced.items()}
        self.bus_in_reduced = np.isin(ieee_bus(self.lv_buses), list(reduced_of))
        # copies repeat feeder 1's lines in the same order: number feeder 1, shift the ids for the others
        per_feeder = len(from_bus) // self.n_feeders
        first = slice(0, per_feeder)
        if not (per_feeder * self.n_feeders == len(from_bus)
                and np.array_equal(np.tile(from_bus[first], self.n_feeders) % FEEDER_BUS_STRIDE, ieee_bus(from_bus))):
            raise ValueError("feeder copies must repeat the first feeder's lines in order")
        reduced_id = _reduced_line_ids(from_bus[first], to_bus[first], reduced_of)
        self.line_reduced_id = np.concatenate([np.where(reduced_id >= 0, reduced_id + FEEDER_BUS_STRIDE * c, -1)
                                               for c in range(self.n_feeders)])

        n_hh, n_pv, n_chp = len(self.household_names), len(self.prosumer_names), len(self.chp_names)
        self._load_p = np.zeros(n_hh)
        self._load_q = np.zeros(n_hh)
        self._pv_p = np.zeros(n_pv)
        self._chp_p = np.zeros(n_chp)
        self._solved = False
        self._position = {names: {n: i for i, n in enumerate(names)}
                          for names in (self.household_names, self.prosumer_names, self.chp_names)}
        self._bus_row = pd.Index(net.bus.index)
        self._lv_rows = self._bus_row.get_indexer(self.lv_buses)
        self._head_rows = self._bus_row.get_indexer(self._trafo_lv_bus)  # per transformer
        self._lv_head_rows = self._head_rows[feeder_of_bus(self.lv_buses) - 1]  # per LV bus: its feeder's head
        self._trafo_hv_row = self._bus_row.get_indexer([self._trafo_hv_bus])[0]
        self._from_rows = self._bus_row.get_indexer(self._line_from_bus)
        self._line_rows = net.line.index.get_indexer(self._line_idx)
        self._vn_phase_kv = net.bus["vn_kv"].to_numpy(dtype=float) / _SQRT3
        self._pgm: PgmPowerFlow | None = None  # built at the first solve: callers may still add elements
        # result labels, built once (an object Index of 905 names costs more than a power flow)
        self._result_bus_index = pd.Index(self.lv_buses, name="bus")
        self._result_line_index = pd.Index(self.line_names, name="line")
        self._result_phase_index = pd.Index(list(PHASES))

    # --- injections ----------------------------------------------------------------------------
    def _assign(self, values, names: tuple, what: str, nonnegative: bool) -> np.ndarray:
        if isinstance(values, np.ndarray):  # already in the grid's order: no name lookups
            out = np.array(values, dtype=float)
            if out.shape != (len(names),) or not np.all(np.isfinite(out)):
                raise ValueError(f"{what}: expected {len(names)} finite values in the grid's order")
            if nonnegative and np.any(out < 0):
                raise ValueError(f"{what}: values must be >= 0")
            return out
        series = _as_series(values, what)
        position = self._position[names]
        unknown = [n for n in series.index if n not in position]
        if unknown:
            raise KeyError(f"{what}: not a participant of this kind: {unknown}")
        if nonnegative and np.any(series.to_numpy() < 0):
            raise ValueError(f"{what}: values must be >= 0")
        out = np.zeros(len(names))
        out[[position[n] for n in series.index]] = series.to_numpy()
        return out

    def set_injections(self, *, load_kw=None, load_kvar=None, pv_kw=None, chp_kw=None) -> None:
        """Set the participants' powers for the next :meth:`solve`.

        Each argument given replaces all values of its kind: participants missing from it are set to
        0. An argument left ``None`` keeps the present values of its kind. A numpy array instead of a
        mapping holds every participant of the kind in the grid's order (:attr:`household_names`,
        :attr:`prosumer_names`, :attr:`chp_names`), which skips the name lookups.

        Parameters
        ----------
        load_kw : mapping or pandas.Series, optional
            Household consumption (>= 0), kW, keyed by ``LOADk``.
        load_kvar : mapping or pandas.Series, optional
            Household reactive consumption, kvar (positive: inductive), keyed by ``LOADk``; see
            :func:`reactive_power_kvar`.
        pv_kw : mapping or pandas.Series, optional
            PV generation (>= 0), kW, keyed by prosumer (``LOADk``), unity power factor.
        chp_kw : mapping or pandas.Series, optional
            CHP generation (>= 0), kW, keyed by ``CHPi``; balanced over the phases, unity power factor.
        """
        if load_kw is not None:
            self._load_p = self._assign(load_kw, self.household_names, "load_kw", True)
        if load_kvar is not None:
            self._load_q = self._assign(load_kvar, self.household_names, "load_kvar", False)
        if pv_kw is not None:
            self._pv_p = self._assign(pv_kw, self.prosumer_names, "pv_kw", True)
        if chp_kw is not None:
            self._chp_p = self._assign(chp_kw, self.chp_names, "chp_kw", True)

    def injections(self) -> dict[str, pd.Series]:
        """The present injections: ``load_kw``, ``load_kvar``, ``pv_kw``, ``chp_kw`` (Series by name)."""
        return {"load_kw": pd.Series(self._load_p, index=self.household_names),
                "load_kvar": pd.Series(self._load_q, index=self.household_names),
                "pv_kw": pd.Series(self._pv_p, index=self.prosumer_names),
                "chp_kw": pd.Series(self._chp_p, index=self.chp_names)}

    def _phase_powers(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-phase P and Q (MW, Mvar; rows of the net's tables) of ``asymmetric_load``/``asymmetric_sgen``."""
        n = len(self.net.asymmetric_load)
        load_p, load_q = np.zeros((n, 3)), np.zeros((n, 3))
        load_p[self._load_row, self._load_phase] = self._load_p / 1000.0
        load_q[self._load_row, self._load_phase] = self._load_q / 1000.0
        sgen_p = np.zeros((len(self.net.asymmetric_sgen), 3))
        sgen_p[self._pv_pos, self._pv_phase] = self._pv_p / 1000.0
        sgen_p[self._chp_pos, :] = (self._chp_p / 3.0 / 1000.0)[:, None]
        return {"asymmetric_load": (load_p, load_q), "asymmetric_sgen": (sgen_p, np.zeros_like(sgen_p))}

    def _write(self, powers: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        """Write the powers into the pandapower tables (the pandapower backend reads them there)."""
        for table, (p, q) in (powers or self._phase_powers()).items():
            frame = self.net[table]
            for i, ph in enumerate(PHASES):
                frame[f"p_{ph}_mw"] = p[:, i]
                frame[f"q_{ph}_mvar"] = q[:, i]

    # --- power flow ----------------------------------------------------------------------------
    def _solve_state(self, init: str | None = None, currents: bool = True) -> _GridState:
        powers = self._phase_powers()
        if self.solver == "power-grid-model":
            # the powers go straight to power-grid-model: writing them into pandas costs more than the flow
            if self._pgm is None or not self._pgm.describes(self.net):
                self._write(powers)
                self._pgm = PgmPowerFlow(self.net, symmetric=False)
            self._solved = False
            try:
                flow = self._pgm.solve(powers)
            except PowerGridError as exc:
                raise PowerFlowNotConverged(f"three-phase power flow (power-grid-model): {exc}") from None
            self._solved = True
            return self._state(flow, currents)
        import pandapower as pp

        self._write(powers)
        if init is None:
            # Not "results": warm-started from a rather different state, runpp_3ph can stop at a wrong
            # point (1.4e-4 pu off after an export state, found against power-grid-model). And from a
            # flat start it finds a collapsed solution (vm ~ 0) once several Dyn transformers share
            # the source bus; its "auto" start does not.
            init = "flat" if self.n_feeders == 1 else "auto"
        self._solved = False
        try:
            # a tight tolerance: finite differences of voltages (the DSO envelope) amplify solver noise
            pp.runpp_3ph(self.net, init=init, numba=_HAVE_NUMBA, tolerance_mva=1e-11)
        except pp.powerflow.LoadflowNotConverged as exc:
            raise PowerFlowNotConverged(f"three-phase power flow (pandapower): {exc}") from None
        flow = pandapower_results(self.net, symmetric=False)
        if not np.isfinite(flow.vm_pu).all():  # runpp_3ph can return NaN on a singular Jacobian without raising
            raise PowerFlowNotConverged("three-phase power flow (pandapower): singular Jacobian, no solution")
        self._solved = True
        return self._state(flow, currents)

    def _state(self, flow: PowerFlowArrays, currents: bool = True) -> _GridState:
        """The state's arrays; the complex currents (``currents``) only the linear model needs."""
        vm_all, va_all = flow.vm_pu, flow.va_degree
        vm, va = vm_all[self._lv_rows], va_all[self._lv_rows]
        va_dev = _wrap_degree(va - va_all[self._lv_head_rows])
        rows = self._line_rows
        i_mag = flow.line_i_ka[rows]
        p_loss = flow.line_pl_mw[rows].sum() + flow.trafo_pl_mw.sum()
        q_loss = flow.line_ql_mvar[rows].sum() + flow.trafo_ql_mvar.sum()

        s_hv = flow.trafo_p_hv_mw + 1j * flow.trafo_q_hv_mvar  # (n_trafo, 3)
        i_line = i_hv = i_lv = None
        if currents:
            v_all = vm_all * self._vn_phase_kv[:, None] * np.exp(1j * np.deg2rad(va_all))  # kV phase-to-neutral
            s_from = flow.line_p_from_mw[rows] + 1j * flow.line_q_from_mvar[rows]
            i_line = np.conj(s_from / v_all[self._from_rows])
            s_lv = flow.trafo_p_lv_mw + 1j * flow.trafo_q_lv_mvar
            i_hv = np.conj(s_hv / v_all[self._trafo_hv_row][None, :])
            i_lv = np.conj(s_lv / v_all[self._head_rows])
        return _GridState(
            vm=vm, va_dev=va_dev, i_line=i_line, i_line_mag=i_mag, i_trafo_lv=i_lv, i_trafo_hv=i_hv,
            i_trafo_lv_mag=flow.trafo_i_lv_ka, i_trafo_hv_mag=flow.trafo_i_hv_ka,
            p_loss_kw=float(p_loss) * 1000.0, q_loss_kvar=float(q_loss) * 1000.0,
            trafo_p_kw=float(s_hv.real.sum()) * 1000.0, trafo_q_kvar=float(s_hv.imag.sum()) * 1000.0)

    def solve(self, init: str | None = None) -> LemGridResult:
        """Run the three-phase power flow on the present injections and evaluate the indicators.

        Parameters
        ----------
        init : {"flat", "auto", "results"}, optional
            Start of pandapower's iteration (``solver="pandapower"`` only). Default ``"flat"`` (``"auto"``
            with feeder copies). ``"results"`` is about 3 x faster but can stop at a wrong point when the
            previous state was rather different (seen: 1.4e-4 pu).

        Returns
        -------
        LemGridResult

        Raises
        ------
        PowerFlowNotConverged
            If the power flow does not converge (either backend).
        """
        s = self._solve_state(init, currents=False)
        limit = self.max_loading_percent
        bus_viol = ((s.vm < self.vm_min_pu) | (s.vm > self.vm_max_pu)).any(axis=1)
        ang_viol = (np.abs(s.va_dev) > self.va_max_deviation_degree).any(axis=1)
        line_load = 100.0 * s.i_line_mag.max(axis=1) / self._line_max_i_ka
        line_over = line_load > limit
        trafo_loads = 100.0 * np.maximum(s.i_trafo_lv_mag.max(axis=1) / self._trafo_ir_lv_ka,
                                         s.i_trafo_hv_mag.max(axis=1) / self._trafo_ir_hv_ka)
        trafo_load = trafo_loads.max()
        trafo_over = int((trafo_loads > limit).sum())
        reduced_over = self.line_reduced_id[line_over]
        counts = {
            "bus_violations": int(bus_viol.sum()),
            "bus_violations_reduced": int((bus_viol & self.bus_in_reduced).sum()),
            "angle_violations": int(ang_viol.sum()),
            "angle_violations_reduced": int((ang_viol & self.bus_in_reduced).sum()),
            "line_overloads": int(line_over.sum()) + trafo_over,
            "line_overloads_reduced": int(np.unique(reduced_over[reduced_over >= 0]).size) + trafo_over,
        }
        suffix = "" if self.violation_model == "full" else "_reduced"
        impact = dn_impact(counts["bus_violations" + suffix], counts["angle_violations" + suffix],
                           counts["line_overloads" + suffix], s.p_loss_kw * self.step_h, s.q_loss_kvar * self.step_h,
                           self.step_h)
        buses = self._result_bus_index
        return LemGridResult(
            vm_min_pu=float(s.vm.min()), vm_max_pu=float(s.vm.max()), **counts,
            max_line_loading_percent=float(line_load.max()), trafo_loading_percent=float(trafo_load),
            p_loss_kw=s.p_loss_kw, q_loss_kvar=s.q_loss_kvar, trafo_p_kw=s.trafo_p_kw,
            trafo_q_kvar=s.trafo_q_kvar, step_h=self.step_h, violation_model=self.violation_model,
            dn_impact=float(impact),
            vm_pu=pd.DataFrame(s.vm, index=buses, columns=self._result_phase_index),
            va_deviation_degree=pd.DataFrame(s.va_dev, index=buses, columns=self._result_phase_index),
            line_loading_percent=pd.Series(line_load, index=self._result_line_index),
            violated_buses=tuple(int(b) for b in self.lv_buses[bus_viol]),
            trafo_loadings_percent=trafo_loads,
        )


def _reduced_line_ids(from_bus: np.ndarray, to_bus: np.ndarray, reduced_of: dict[int, int]) -> np.ndarray:
    """Reduced-model line of every feeder line section, -1 for sections on load-free spurs.

    A reduced line is the chain of sections between two kept buses; it is identified by the reduced
    number of its downstream kept bus. Sections on spurs that the reduction prunes (no load below)
    carry no current and belong to no reduced line.
    """
    adj: dict[int, list[tuple[int, int]]] = {}
    for i, (a, b) in enumerate(zip(from_bus.tolist(), to_bus.tolist())):
        adj.setdefault(a, []).append((b, i))
        adj.setdefault(b, []).append((a, i))
    parent_line: dict[int, int] = {}
    order = [HEAD_BUS]
    seen = {HEAD_BUS}
    for bus in order:  # breadth-first from the feeder head
        for nb, i in adj.get(bus, []):
            if nb not in seen:
                seen.add(nb)
                parent_line[nb] = i
                order.append(nb)
    children: dict[int, list[int]] = {}
    for bus in order[1:]:
        i = parent_line[bus]
        up = from_bus[i] if to_bus[i] == bus else to_bus[i]
        children.setdefault(int(up), []).append(bus)
    loaded: dict[int, bool] = {}
    rep: dict[int, int] = {}
    for bus in reversed(order):  # leaves first
        kids = [c for c in children.get(bus, []) if loaded[c]]
        loaded[bus] = bus in reduced_of or bool(kids)
        if bus in reduced_of:
            rep[bus] = bus
        elif len(kids) == 1:
            rep[bus] = rep[kids[0]]
        elif kids:  # a junction that is not kept cannot happen in the reduced numbering
            raise ValueError(f"bus {bus} joins {len(kids)} loaded branches but is not a reduced-model bus")
    ids = np.full(len(from_bus), -1, dtype=int)
    for bus in order[1:]:
        if loaded[bus]:
            ids[parent_line[bus]] = reduced_of[rep[bus]]
    return ids


# ---------------------------------------------------------------------------------------------
# Hourly injections of the day
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class HourlyInjections:
    """Powers of the participants per period of one day (mean power of the period).

    Attributes
    ----------
    load_kw, load_kvar : pandas.DataFrame
        Household consumption, index ``period``, columns ``LOADk``.
    pv_kw : pandas.DataFrame
        PV generation of the prosumers, index ``period``, columns prosumer names.
    chp_capacity_kw : pandas.Series
        CHP name -> capacity, kW.
    load_scale : float
        Factor the IEEE load profiles were multiplied with.
    step_h : float
        Period length, hours.
    """

    load_kw: pd.DataFrame
    load_kvar: pd.DataFrame
    pv_kw: pd.DataFrame
    chp_capacity_kw: pd.Series
    load_scale: float = 1.0
    step_h: float = 1.0

    @property
    def n_periods(self) -> int:
        return len(self.load_kw)

    def period(self, t: int) -> dict[str, pd.Series]:
        """``load_kw``, ``load_kvar`` and ``pv_kw`` of period ``t`` (position), for :meth:`LemGrid.set_injections`."""
        return {"load_kw": self.load_kw.iloc[t], "load_kvar": self.load_kvar.iloc[t], "pv_kw": self.pv_kw.iloc[t]}

    @classmethod
    def from_community(cls, community) -> HourlyInjections:
        """Mean powers per market period of a :class:`~lec_cosim.models.lem_community.Community`."""
        kinds = community.kinds
        names = np.array(community.names)
        households, prosumers, chp = kinds != "chp", kinds == "prosumer", kinds == "chp"
        period_h = community.steps_per_period * community.grid_min / 60.0

        def frame(values_kw, mask):
            mean_kw = community.period_energy_kwh(values_kw[mask]) / period_h
            return pd.DataFrame(mean_kw.T, columns=list(names[mask]),
                                index=pd.RangeIndex(mean_kw.shape[1], name="period"))

        return cls(load_kw=frame(community.load_kw, households), load_kvar=frame(community.load_kvar, households),
                   pv_kw=frame(community.pv_kw, prosumers),
                   chp_capacity_kw=pd.Series(community.chp_kw[chp], index=list(names[chp])),
                   load_scale=community.load_scale, step_h=period_h)


def hourly_injections(
    day: str = DEFAULT_PV_DAY,
    *,
    load_peak_kw: float | None = PAPER_LOAD_PEAK_KW,
    power_factor: float = LOAD_POWER_FACTOR,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    pv_file: Path | str = PV_PROFILE_FILE,
) -> HourlyInjections:
    """Hourly powers of the 61 participants: the community of
    :func:`~lec_cosim.models.lem_community.build_community` at hourly steps.

    The energy of an hour is its mean power (kWh per hour = kW).

    Parameters
    ----------
    day : str
        PV day of 2016.
    load_peak_kw : float or None
        Scale all household loads by one factor so that the aggregate hourly load peak equals this
        (the paper's 140 kW; the IEEE profiles peak at 38.9 kW in hourly means, factor 3.60). None: no
        scaling.
    power_factor : float
        Lagging power factor of the loads (IEEE: 0.95).
    data_dir, pv_file
        Data locations (see :mod:`lec_cosim.models.lem_participants`).

    Returns
    -------
    HourlyInjections
    """
    community = build_community(data_dir, day, pv_file, grid_min=60, load_peak_kw_target=load_peak_kw)
    injections = HourlyInjections.from_community(community)
    return dataclasses.replace(injections, load_kvar=reactive_power_kvar(injections.load_kw, power_factor))


# ---------------------------------------------------------------------------------------------
# Linear DN-impact model
# ---------------------------------------------------------------------------------------------
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
