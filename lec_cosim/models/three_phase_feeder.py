"""The LEM participants on the IEEE European LV feeder: one three-phase grid state (LemGrid).

:class:`LemGrid` places the 61 players of :mod:`lec_cosim.models.lem_participants` on the feeder of
:mod:`lec_cosim.models.ieee_eulv`, takes their powers (:meth:`~LemGrid.set_injections`) and runs one
three-phase power flow (power-grid-model, or pandapower's ``runpp_3ph``), which it judges by the
indicators of :mod:`lec_cosim.models.grid_indicators`; or a block of grid steps at once
(:meth:`~LemGrid.solve_block`: their indicators as arrays, each step's numbers those of :meth:`~LemGrid.solve`;
with the fixed point, the whole block's flows and indicators computed together). It is the grid the DSO runs every step; the
line data it attaches come from :mod:`lec_cosim.models.feeder_lines`, the learner's fast surrogate
built from its power flows is :mod:`lec_cosim.models.linear_dn_impact`. No HELICS here.

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
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.day_injections import _as_series
from lec_cosim.models.feeder_copies import (
    FEEDER_BUS_STRIDE,
    copy_bus,
    feeder_of_bus,
    ieee_bus,
    replicate_feeder_net,
)
from lec_cosim.models.feeder_lines import (
    LINE_RATINGS_FILE,
    _reduced_line_ids,
    read_line_ratings,
    reduced_model_buses,
)
from lec_cosim.models.feeder_model import Feeder, FeederSourceError, three_phase_ready
from lec_cosim.models.grid_indicators import (
    MAX_LOADING_PERCENT,
    VA_MAX_DEVIATION_DEGREE,
    VIOLATION_MODELS,
    VM_MAX_PU,
    VM_MIN_PU,
    LemGridBlock,
    LemGridResult,
    _GridState,
    _wrap_degree,
    dn_impact,
)
from lec_cosim.models.ieee_eulv import (
    _HAVE_NUMBA,
    DEFAULT_DATA_DIR,
    PHASES,
    SOURCE_IMPEDANCE_LINE_NAME,
    IEEEEuropeanLV,
    build_ieee_eulv,
)
from lec_cosim.models.lem_participants import (
    HEAD_BUS,
    participants,
    reduced_bus_numbering,
)
from lec_cosim.models.pgm_backend import (
    PgmPowerFlow,
    PowerFlowArrays,
    PowerFlowNotConverged,
    PowerGridError,
    pandapower_results,
)

SOLVERS = ("power-grid-model", "pandapower", "opendss", "fixed-point")
"""Power-flow backends of :class:`LemGrid`; the first is the default (see :mod:`lec_cosim.models.pgm_backend` and
:mod:`lec_cosim.models.opendss_backend`)."""

_SQRT3 = math.sqrt(3.0)
_RECENT_STEPS = 96
"""Grid steps whose indicators :meth:`LemGrid.solve_block_chunks` keeps (a day at 15 minutes): a step whose injections
are, bit for bit, those of a step among them (its loaded phases' powers, with the same engine, its settings and the
grid's limits and ratings: :meth:`LemGrid._indicator_settings`) is not solved again; its numbers are copied (the
same input gives the same numbers to the last digit: every step is solved as if alone, whatever its block). On the
IEEE feeder's year half the grid steps recur within a day (its loads are one day repeated; at night the PV is zero
and the CHPs' outputs repeat): measured 2026-12-07, 17,537 of 35,136."""
_CHUNK_STEPS = 8
"""Grid steps :meth:`LemGrid.solve_block` takes through the fixed point's results and the indicators at a time (the
iteration takes the whole block): a chunk's arrays (~0.35 MB the largest) are used again while in the core's
caches. 4 to 16 cost the same per step, 32 ~15 % more, all 96 of a day at once ~40 % more (measured 2026-12-07).
The numbers do not depend on it."""


class _RecentSteps:
    """The indicators of the last ``window`` grid steps solved, by the flow's input (the bytes of a step's loaded
    phases' powers): ``key -> (block, row)`` (a :class:`LemGridBlock` and the step's row), under one engine and its
    settings (:meth:`known`)."""

    def __init__(self, window: int):
        self.window = window
        self._by_key: dict[bytes, tuple[LemGridBlock, int]] = {}
        self._added: list[tuple[list[bytes], LemGridBlock]] = []  # in order, oldest first
        self._steps = 0
        self._solver: tuple = (None,)

    def known(self, keys: list[bytes], solver: tuple) -> tuple[dict, list[int]]:
        """For a block's steps' keys: ``known`` (step -> its ``(block, row)`` among the recent steps, or the
        earlier step of the same block with the same injections) and ``fresh`` (the steps to solve, in order).
        ``solver``: the flow engine and its settings; the recent steps of another (or changed) one are forgotten."""
        if solver[0] is not self._solver[0] or solver[1:] != self._solver[1:]:  # (the engine: itself, not equal)
            self._by_key.clear()
            self._added.clear()
            self._steps = 0
            self._solver = solver
        known, fresh, first = {}, [], {}
        for j, key in enumerate(keys):
            hit = self._by_key.get(key)
            if hit is not None:
                known[j] = hit
            elif key in first:
                known[j] = first[key]
            else:
                first[key] = j
                fresh.append(j)
        return known, fresh

    def add(self, keys: list[bytes], block: LemGridBlock) -> None:
        """Keep the steps of ``block`` (``keys``: one per row), and forget the steps older than the window."""
        for row, key in enumerate(keys):
            self._by_key[key] = (block, row)
        self._added.append((keys, block))
        self._steps += len(keys)
        while self._added and self._steps - len(self._added[0][0]) >= self.window:  # the rest cover the window
            old_keys, old_block = self._added.pop(0)
            self._steps -= len(old_keys)
            for key in old_keys:
                if self._by_key.get(key, (None,))[0] is old_block:  # not kept since by a later block
                    del self._by_key[key]


def add_asymmetric_sgens(net, buses, names) -> np.ndarray:
    """``pandapower.create_asymmetric_sgen(net, bus, name=name, type="wye")`` for each bus and name, at once.

    The first is created by pandapower; the others are copies of its row with their bus, name and the next
    indices, appended in one ``concat`` (the rows equal pandapower's one by one: tests/test_feeder_copies.py).
    One call per element rebuilds the table each time: 8,736 sgens of 182 feeder copies took two minutes.

    Returns
    -------
    numpy.ndarray
        The new rows' indices, in order.
    """
    import pandapower as pp

    buses, names = np.asarray(buses, dtype=int), list(names)
    if len(buses) != len(names):
        raise ValueError("one name per bus")
    if len(buses) == 0:
        return np.zeros(0, dtype=int)
    if not np.isin(buses, net.bus.index).all():
        raise ValueError(f"asymmetric sgens at buses not in the net: {sorted(set(buses) - set(net.bus.index))[:5]}")
    first = pp.create_asymmetric_sgen(net, int(buses[0]), name=names[0], type="wye")
    table = net.asymmetric_sgen
    template = table.loc[[first]]
    rows = template.loc[np.repeat(template.index, len(buses) - 1)]
    rows.index = pd.Index(np.arange(first + 1, first + len(buses)), dtype=table.index.dtype)
    rows["bus"] = buses[1:].astype(table["bus"].dtype)
    rows["name"] = np.array(names[1:], dtype=object)
    net.asymmetric_sgen = pd.concat([table, rows]) if len(rows) else table
    return np.arange(first, first + len(buses))


class LemGrid:
    """A feeder with the LEM's households, PV and CHP units on it: the IEEE European LV feeder (the paper's
    players, feeder copies, its 110-bus reduced model) or a feeder from any source.

    Parameters
    ----------
    feeder : IEEEEuropeanLV or Feeder, optional
        The IEEE feeder (:func:`~lec_cosim.models.ieee_eulv.build_ieee_eulv`; default: built from ``data_dir``),
        or a :class:`~lec_cosim.models.feeder_model.Feeder` from any source (:meth:`_place_on_feeder`: the
        households replace its loads and generators, ratings are its own, the reduced model follows the IEEE
        feeder's rule). Its net is copied, not changed.
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
    solver : {"power-grid-model", "pandapower", "opendss", "fixed-point"}
        Three-phase power-flow backend: power-grid-model (~2 ms per flow here), pandapower's
        ``runpp_3ph`` (~0.1-0.3 s without numba), OpenDSS through dss-python, or the project's own fixed point
        on the reduced sequence networks (~0.4 ms; :mod:`lec_cosim.models.fixed_point_backend`, one feeder, not
        feeder copies). All model the same network and agree within ~1e-7 pu (``tests/test_pgm_backend.py``,
        ``tests/test_opendss_backend.py``, ``tests/test_fixed_point_backend.py``).
    source_strength : float
        The IEEE feeder's 11 kV source impedance divided by this: a source strong enough for many feeder
        copies (:func:`~lec_cosim.models.feeder_copies.replicate_feeder_net`).

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
        source_strength: float = 1.0,
        flow_threads: int = 1,
    ):
        if not 0 < vm_min_pu < vm_max_pu:
            raise ValueError("need 0 < vm_min_pu < vm_max_pu")
        if not (max_loading_percent > 0 and va_max_deviation_degree > 0 and step_h > 0):
            raise ValueError("max_loading_percent, va_max_deviation_degree and step_h must be > 0")
        if violation_model not in VIOLATION_MODELS:
            raise ValueError(f"violation_model must be one of {VIOLATION_MODELS}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        if int(flow_threads) < 1 or (int(flow_threads) > 1 and solver != "power-grid-model"):
            raise ValueError(f"flow_threads: 1, or more with power-grid-model only, not {flow_threads} with {solver}")
        self.solver = solver
        self.flow_threads = int(flow_threads)
        self._flow_copies: list = []  # the engines of the other threads (solve_steps)
        self._pool = None
        self.vm_min_pu = float(vm_min_pu)
        self.vm_max_pu = float(vm_max_pu)
        self.max_loading_percent = float(max_loading_percent)
        self.va_max_deviation_degree = float(va_max_deviation_degree)
        self.step_h = float(step_h)
        self.violation_model = violation_model
        self.source_strength = float(source_strength)
        if isinstance(feeder, Feeder) and self.source_strength != 1.0:
            raise ValueError("source_strength is of the IEEE feeder's source; a Feeder from a source has its own")

        if isinstance(feeder, Feeder):
            net, feeder_lines = self._place_on_feeder(feeder, table)
        else:
            feeder = build_ieee_eulv(data_dir, minute=None) if feeder is None else feeder
            table = participants(data_dir=data_dir) if table is None else table
            net, feeder_lines = self._place_on_ieee_feeder(feeder, table, data_dir, line_ratings)
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
        self.lv_buses = np.sort(net.bus.index[(net.bus["vn_kv"] < 1.0).to_numpy()].to_numpy(dtype=int))
        self._bus_vn_kv = net.bus["vn_kv"]
        if isinstance(feeder, Feeder):
            self._reduced_generic(feeder, from_bus, to_bus)
        else:
            self._reduced_ieee(data_dir, from_bus, to_bus)

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
        self._lv_head_rows = self._head_rows[self._lv_feeder]  # per LV bus: its feeder's head
        self._trafo_hv_row = self._bus_row.get_indexer([self._trafo_hv_bus])[0]
        self._from_rows = self._bus_row.get_indexer(self._line_from_bus)
        self._line_rows = net.line.index.get_indexer(self._line_idx)
        self._vn_phase_kv = net.bus["vn_kv"].to_numpy(dtype=float) / _SQRT3
        self._pgm: PgmPowerFlow | None = None  # built at the first solve: callers may still add elements
        self._block_scratch: dict = {}  # solve_block's arrays, kept from one block to the next
        self.recent_steps = _RECENT_STEPS
        """How many of the last grid steps solved in blocks are kept to copy a repeated step's numbers (whole blocks:
        at least this many, fewer than this and a block more; 0: none kept between blocks, a step repeated within a
        block is still solved once)."""
        # result labels, built once (an object Index of 905 names costs more than a power flow)
        self._result_bus_index = pd.Index(self.lv_buses, name="bus")
        self._result_line_index = pd.Index(self.line_names, name="line")
        self._result_phase_index = pd.Index(list(PHASES))

    def _place_on_ieee_feeder(self, feeder, table, data_dir, line_ratings):
        """The IEEE feeder (and its copies): households on its loads, PV and CHPs added, ratings by line code."""
        feeder_col = table["feeder"].to_numpy(dtype=int) if "feeder" in table.columns else np.ones(len(table), int)
        self.n_feeders = int(feeder_col.max())
        net = replicate_feeder_net(feeder.net, self.n_feeders, self.source_strength)
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
        self._load_weights = self._pv_weights = None  # every household on one phase: _load_phase, _pv_phase
        for ph in PHASES:
            al[f"p_{ph}_mw"] = 0.0
            al[f"q_{ph}_mvar"] = 0.0

        # PV: single-phase sgens of the prosumers; CHP: balanced three-phase sgens
        prosumers = households[households["kind"] == "prosumer"]
        self.prosumer_names = tuple(prosumers["participant"])
        self._pv_phase = prosumers["phase"].map({ph: i for i, ph in enumerate(PHASES)}).to_numpy(dtype=int)
        pv_rows = add_asymmetric_sgens(net, net_bus[prosumers.index].to_numpy(),
                                       [f"PV {name}" for name in prosumers["participant"]])
        chps = table[table["kind"] == "chp"]
        self.chp_names = tuple(chps["participant"])
        self.chp_bus = {name: int(bus) for name, bus in zip(chps["participant"], chps["bus"])}
        chp_rows = add_asymmetric_sgens(net, net_bus[chps.index].to_numpy(),
                                        [str(name) for name in chps["participant"]])
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
        return net, feeder_lines

    def _place_on_feeder(self, feeder: Feeder, table):
        """Any feeder (:class:`~lec_cosim.models.feeder_model.Feeder`, from any source): the households replace the
        feeder's own loads and generators (one wye load each at its bus, on its phases: ``a``, ``b``, ``c``, or
        ``abc`` for a balanced connection, the power split evenly), PV on the household's phases, CHPs balanced;
        the line ratings are the source's (``max_i_ka``; the IEEE feeder's by line code)."""
        import pandapower as pp

        if table is None:
            raise ValueError("a participants table is needed on a feeder other than the IEEE feeder's default")
        if "feeder" in table.columns and table["feeder"].ne(1).any():
            raise ValueError("feeder copies are built from the IEEE feeder; a Feeder from a source has one copy")
        self.n_feeders = 1
        net = three_phase_ready(feeder)
        self.net = net
        for name in ("load", "asymmetric_load", "sgen", "asymmetric_sgen"):
            net[name] = net[name].iloc[0:0]

        def weights(phases) -> np.ndarray:
            out = np.zeros((len(phases), 3))
            for i, text in enumerate(phases):
                on = [PHASES.index(ph) for ph in str(text)] if set(str(text)) <= set(PHASES) and text else []
                if not on:
                    raise ValueError(f"phase {text!r}: not a, b, c or a combination of them")
                out[i, on] = 1.0 / len(on)
            return out

        households = table[table["kind"].isin(["consumer", "prosumer"])]
        self.household_names = tuple(households["participant"])
        rows = [pp.create_asymmetric_load(net, int(bus), name=str(name), type="wye")
                for name, bus in zip(households["participant"], households["bus"])]
        self._load_row = net.asymmetric_load.index.get_indexer(rows)
        self._load_weights = weights(households["phase"])
        self._load_phase = None
        prosumers = households[households["kind"] == "prosumer"]
        self.prosumer_names = tuple(prosumers["participant"])
        self._pv_weights = weights(prosumers["phase"])
        self._pv_phase = None
        pv_rows = [pp.create_asymmetric_sgen(net, int(bus), name=f"PV {name}", type="wye")
                   for name, bus in zip(prosumers["participant"], prosumers["bus"])]
        chps = table[table["kind"] == "chp"]
        self.chp_names = tuple(chps["participant"])
        self.chp_bus = {name: int(bus) for name, bus in zip(chps["participant"], chps["bus"])}
        chp_rows = [pp.create_asymmetric_sgen(net, int(bus), name=str(name), type="wye")
                    for name, bus in zip(chps["participant"], chps["bus"])]
        self._pv_pos = net.asymmetric_sgen.index.get_indexer(pv_rows)
        self._chp_pos = net.asymmetric_sgen.index.get_indexer(chp_rows)
        unknown = sorted(set(table["bus"].astype(int)) - set(net.bus.index))
        if unknown:
            raise ValueError(f"participants at buses the feeder does not have: {unknown[:5]}")

        # the feeder's lines behind its transformer(s): the source's impedance and MV lines are not the feeder's
        lv = net.bus["vn_kv"] < 1.0
        feeder_lines = (~net.line.index.isin(feeder.source_lines) & net.line["from_bus"].map(lv).to_numpy()
                        & net.line["to_bus"].map(lv).to_numpy())
        if "ieee_linecode" in net.line.columns:
            ratings = read_line_ratings(LINE_RATINGS_FILE)
            codes = net.line.loc[feeder_lines, "ieee_linecode"]
            net.line.loc[feeder_lines, "max_i_ka"] = ratings.loc[codes, "max_i_ka"].to_numpy(dtype=float)
        for column in ("parallel", "df"):  # the indicators take one cable per line, at its full rating
            if column in net.line.columns and net.line.loc[feeder_lines, column].ne(1).any():
                bad = net.line.index[feeder_lines & net.line[column].ne(1).to_numpy()][0]
                raise FeederSourceError(f"{feeder.source}: line {net.line.at[bad, 'name']}: {column} "
                                        f"{net.line.at[bad, column]:g}; give parallel cables and derating in the "
                                        "line's own data (impedance, max_i_ka)")
        rating = net.line.loc[feeder_lines, "max_i_ka"].to_numpy(dtype=float)
        if not (np.isfinite(rating) & (rating > 0)).all():
            bad = net.line.index[feeder_lines][~(np.isfinite(rating) & (rating > 0))][0]
            raise FeederSourceError(f"{feeder.source}: line {net.line.at[bad, 'name']}: no rating (max_i_ka); the "
                                    "DSO counts overloads against it")
        return net, feeder_lines

    def _reduced_generic(self, feeder: Feeder, from_bus, to_bus) -> None:
        """The reduced model of any radial feeder by the IEEE feeder's rule (head, household buses, junctions after
        pruning load-free spurs); a meshed feeder has none: its reduced counts are the full ones."""
        if len(self._trafo_lv_bus) != 1:
            raise ValueError("expected one transformer")
        head = int(self._trafo_lv_bus[0])
        loaded = {int(b) for b in self.net.asymmetric_load["bus"]}
        self._lv_feeder = np.zeros(len(self.lv_buses), dtype=int)
        try:
            buses = reduced_model_buses(from_bus, to_bus, head, loaded)
        except ValueError:  # meshed: no reduction
            self.reduced_model = "none (a meshed feeder): the reduced counts are the full ones"
            self.bus_in_reduced = np.ones(len(self.lv_buses), dtype=bool)
            self.line_reduced_id = np.arange(len(from_bus))
            return
        self.reduced_model = f"{len(buses)} buses: the head, the households' buses and the junctions between them"
        reduced_of = {b: r for r, b in enumerate(buses, start=1)}
        self.bus_in_reduced = np.isin(self.lv_buses, buses)
        self.line_reduced_id = _reduced_line_ids(from_bus, to_bus, reduced_of, head=head)

    def _reduced_ieee(self, data_dir, from_bus, to_bus) -> None:
        """The paper's 110-bus reduced model of the IEEE feeder, on every copy."""
        if not np.array_equal(self._trafo_lv_bus, copy_bus(HEAD_BUS, np.arange(1, self.n_feeders + 1))):
            raise ValueError("expected each feeder's transformer LV side at its bus 1")
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
        self._lv_feeder = feeder_of_bus(self.lv_buses) - 1
        self.reduced_model = "the paper's 110 buses"

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

    def _rows(self, table: str) -> int:
        """Rows of a table of the net (a compiled grid knows them without its net: lec_cosim.models.grid_cache)."""
        return len(self.net[table])

    def _phase_powers(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-phase P and Q (MW, Mvar; rows of the net's tables) of ``asymmetric_load``/``asymmetric_sgen``: the
        present injections as a block of one step (:meth:`_block_phase_powers`)."""
        block = self._block_phase_powers(self._load_p[None], self._load_q[None], self._pv_p[None], self._chp_p[None])
        return {table: (p[0], q[0]) for table, (p, q) in block.items()}

    def _write(self, powers: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        """Write the powers into the pandapower tables (the pandapower backend reads them there)."""
        for table, (p, q) in (powers or self._phase_powers()).items():
            frame = self.net[table]
            for i, ph in enumerate(PHASES):
                frame[f"p_{ph}_mw"] = p[:, i]
                frame[f"q_{ph}_mvar"] = q[:, i]

    # --- power flow ----------------------------------------------------------------------------
    def _engine(self, powers: dict[str, tuple[np.ndarray, np.ndarray]]):
        """The power-grid-model, OpenDSS or fixed-point model of the net (built on first use, rebuilt if the net
        changed)."""
        if self._pgm is None or not self._pgm.describes(self.net):
            self._write(powers)
            self._flow_copies = []
            if self.solver == "opendss":
                from lec_cosim.models.opendss_backend import OpenDssPowerFlow

                self._pgm = OpenDssPowerFlow(self.net, symmetric=False)
            elif self.solver == "fixed-point":
                from lec_cosim.models.fixed_point_backend import FixedPointPowerFlow

                self._pgm = FixedPointPowerFlow(self.net, symmetric=False)
            else:
                self._pgm = PgmPowerFlow(self.net, symmetric=False)
        return self._pgm

    def _solve_state(self, init: str | None = None, currents: bool = True) -> _GridState:
        powers = self._phase_powers()
        if self.solver != "pandapower":
            # the powers go straight to the engine: writing them into pandas costs more than the flow
            self._engine(powers)
            self._solved = False
            try:
                flow = self._pgm.solve(powers)
            except (PowerGridError, PowerFlowNotConverged) as exc:
                raise PowerFlowNotConverged(f"three-phase power flow ({self.solver}): {exc}") from None
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
        return self._indicators(self._solve_state(init, currents=False))

    def solve_steps(self, load_kw: np.ndarray, load_kvar: np.ndarray, pv_kw: np.ndarray,
                    chp_kw: np.ndarray) -> list[LemGridResult]:
        """:meth:`solve` for several grid steps: row ``j`` of each array is step ``j``'s injections, every
        participant of the kind in the grid's order (as numpy arrays in :meth:`set_injections`).

        With ``flow_threads`` > 1 the steps' flows run that many at a time, each thread on its own copy of the
        power-grid-model engine: its calculation releases Python's lock, so a large grid (feeder copies) keeps
        several cores busy. Each flow starts from scratch as one :meth:`solve` does, so the results are those of
        solving the steps one by one, to the last digit. The grid keeps the last step's injections.

        Raises
        ------
        PowerFlowNotConverged
            If a step's power flow does not converge.
        """
        steps = len(load_kw)
        threads = min(self.flow_threads, steps)
        if threads == 1 and self.solver != "fixed-point":
            results = []
            for j in range(steps):
                self.set_injections(load_kw=load_kw[j], load_kvar=load_kvar[j], pv_kw=pv_kw[j], chp_kw=chp_kw[j])
                results.append(self.solve())
            return results
        from concurrent.futures import ThreadPoolExecutor, wait

        powers = []
        for j in range(steps):
            self.set_injections(load_kw=load_kw[j], load_kvar=load_kvar[j], pv_kw=pv_kw[j], chp_kw=chp_kw[j])
            powers.append(self._phase_powers())
        first = self._engine(powers[-1])
        if self.solver == "fixed-point":  # the block's flows in one call: what they share is set once
            self._solved = False
            try:
                flows = first.solve_many(powers)
            except (PowerGridError, PowerFlowNotConverged) as exc:
                raise PowerFlowNotConverged(f"three-phase power flow ({self.solver}): {exc}") from None
            self._solved = True
            return [self._indicators(self._state(flow, currents=False)) for flow in flows]
        while len(self._flow_copies) < threads - 1:  # an engine per thread: a model is not shared between calls
            self._flow_copies.append(PgmPowerFlow(self.net, symmetric=False))
        engines = [first, *self._flow_copies[:threads - 1]]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.flow_threads, thread_name_prefix="power-flow")
        self._solved = False
        futures = [self._pool.submit(lambda k: [engines[k].solve(p) for p in powers[k::threads]], k)
                   for k in range(threads)]
        wait(futures)  # every engine idle again before any error leaves: the next call may use them
        try:
            parts = [future.result() for future in futures]
        except (PowerGridError, PowerFlowNotConverged) as exc:
            raise PowerFlowNotConverged(f"three-phase power flow ({self.solver}): {exc}") from None
        flows: list = [None] * steps
        for k, part in enumerate(parts):
            flows[k::threads] = part
        self._solved = True
        return [self._indicators(self._state(flow, currents=False)) for flow in flows]

    # --- a block of grid steps at once ---------------------------------------------------------
    def _block_array(self, values, names: tuple, what: str, nonnegative: bool, steps: int) -> np.ndarray:
        """A (steps, participants of the kind) array checked as :meth:`set_injections` checks one step's."""
        out = np.array(values, dtype=float)
        if out.shape != (steps, len(names)) or not np.all(np.isfinite(out)):
            raise ValueError(f"{what}: expected {steps} x {len(names)} finite values (steps x the grid's order)")
        if nonnegative and np.any(out < 0):
            raise ValueError(f"{what}: values must be >= 0")
        return out

    def _block_phase_powers(self, load_kw, load_kvar, pv_kw, chp_kw) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-phase P and Q (MW, Mvar; (steps, rows of the net's tables, 3)) of ``asymmetric_load`` and
        ``asymmetric_sgen`` for a block of steps' injections (each (steps, participants of the kind), kW, kvar)."""
        steps = len(load_kw)
        n = self._rows("asymmetric_load")
        load_p, load_q = np.zeros((steps, n, 3)), np.zeros((steps, n, 3))
        sgen_p = np.zeros((steps, self._rows("asymmetric_sgen"), 3))
        if self._load_weights is None:  # one phase each (the IEEE feeder)
            load_p[:, self._load_row, self._load_phase] = load_kw / 1000.0
            load_q[:, self._load_row, self._load_phase] = load_kvar / 1000.0
            sgen_p[:, self._pv_pos, self._pv_phase] = pv_kw / 1000.0
        else:
            load_p[:, self._load_row] = (load_kw / 1000.0)[:, :, None] * self._load_weights
            load_q[:, self._load_row] = (load_kvar / 1000.0)[:, :, None] * self._load_weights
            sgen_p[:, self._pv_pos] = (pv_kw / 1000.0)[:, :, None] * self._pv_weights
        sgen_p[:, self._chp_pos, :] = (chp_kw / 3.0 / 1000.0)[:, :, None]
        return {"asymmetric_load": (load_p, load_q), "asymmetric_sgen": (sgen_p, np.zeros_like(sgen_p))}

    def solve_block(self, load_kw: np.ndarray, load_kvar: np.ndarray, pv_kw: np.ndarray,
                    chp_kw: np.ndarray) -> LemGridBlock:
        """The indicators of several grid steps (arguments as :meth:`solve_steps`) as arrays over the steps:
        :meth:`solve_block_chunks`' chunks as one block."""
        blocks = list(self.solve_block_chunks(load_kw, load_kvar, pv_kw, chp_kw))
        return blocks[0] if len(blocks) == 1 else LemGridBlock.concatenate(blocks)

    def solve_block_chunks(self, load_kw: np.ndarray, load_kvar: np.ndarray, pv_kw: np.ndarray,
                           chp_kw: np.ndarray):
        """The indicators of several grid steps (arguments as :meth:`solve_steps`): yields them in chunks of
        consecutive steps (a :class:`LemGridBlock` each), in order, each as soon as it is computed: a caller that
        reduces the steps, as the DSO's extremes and running counts, takes a chunk while it is in the core's caches,
        and no array of the whole block is built (:meth:`solve_block` joins them).

        Step ``j``'s numbers are those :meth:`solve` gives on its injections alone, to the last digit. With the
        fixed-point solver the whole block is computed at once: its flows (:meth:`~lec_cosim.models.
        fixed_point_backend.FixedPointPowerFlow.solve_block`), the states and the indicators as arrays over the
        steps, each reduction summing a step's numbers in the order :meth:`solve` does. The other solvers go
        step by step (:meth:`solve_steps`). The grid keeps the last step's injections.

        Raises
        ------
        PowerFlowNotConverged
            If a step's power flow does not converge.
        """
        steps = len(load_kw)
        if steps == 0:
            raise ValueError("solve_block: no grid step")
        load_kw = self._block_array(load_kw, self.household_names, "load_kw", True, steps)
        load_kvar = self._block_array(load_kvar, self.household_names, "load_kvar", False, steps)
        pv_kw = self._block_array(pv_kw, self.prosumer_names, "pv_kw", True, steps)
        chp_kw = self._block_array(chp_kw, self.chp_names, "chp_kw", True, steps)
        if self.solver != "fixed-point":
            results = self.solve_steps(load_kw, load_kvar, pv_kw, chp_kw)
            violated = np.stack([np.isin(self.lv_buses, r.violated_buses) for r in results])
            yield LemGridBlock.from_results(results, violated)
            return
        # the last step's injections kept, as set_injections would (checked above: no second check)
        self._load_p, self._load_q, self._pv_p, self._chp_p = (a[-1].copy() for a in (load_kw, load_kvar, pv_kw,
                                                                                         chp_kw))
        window = getattr(self, "recent_steps", _RECENT_STEPS)  # (a grid compiled before it had one: the default)
        recent = getattr(self, "_recent", None)
        if recent is None or recent.window != window:
            recent = self._recent = _RecentSteps(window)
        powers = self._block_phase_powers(load_kw, load_kvar, pv_kw, chp_kw)
        engine = self._engine({t: (p[-1], q[-1]) for t, (p, q) in powers.items()})  # built, or rebuilt for a new net
        s = engine.block_powers(powers)  # each step's loaded phases' powers: the flow's only input
        keys = [row.tobytes() for row in s]
        known, fresh = recent.known(keys, (engine, self._indicator_settings()))
        if not known:  # every step new: the chunks as they are solved
            for chunk, first in self._solved_chunks(engine, powers, s):
                recent.add(keys[first:first + len(chunk)], chunk)
                yield chunk
            return
        rows: list = [known.get(j) for j in range(steps)]  # per step: (block, row), None for the fresh ones
        if fresh:
            for chunk, first in self._solved_chunks(engine, powers, s, np.asarray(fresh)):
                for row in range(len(chunk)):
                    rows[fresh[first + row]] = (chunk, row)
        for j, hit in enumerate(rows):
            if isinstance(hit, int):  # the same injections as an earlier step of this block
                rows[j] = rows[hit]
        block = LemGridBlock.gathered(rows)
        recent.add(keys, block)
        self._solved = True
        yield block

    def _indicator_settings(self) -> tuple:
        """Everything but a step's flow that its indicators depend on (limits, counts' model, ratings): steps kept
        with other settings are not copied (:class:`_RecentSteps`)."""
        arrays = (self._line_max_i_ka, self._trafo_ir_lv_ka, self._trafo_ir_hv_ka, self.bus_in_reduced,
                  self.line_reduced_id)
        return (self.vm_min_pu, self.vm_max_pu, self.max_loading_percent, self.va_max_deviation_degree, self.step_h,
                self.violation_model, self._pgm.max_iterations, self._pgm.tolerance_pu,
                *(np.asarray(a).tobytes() for a in arrays))

    def _solved_chunks(self, engine, powers: dict, s: np.ndarray, steps: np.ndarray | None = None):
        """:meth:`solve_block_chunks`' chunks of the fixed point (of the block's ``steps`` only, if given), each with
        its first step among them: ``(chunk, first)``."""
        if steps is None:
            steps = np.arange(len(s))
        self._solved = False
        chunks = engine.solve_chunks(s[steps], lambda j: {t: (p[steps[j]], q[steps[j]])
                                                          for t, (p, q) in powers.items()},
                                     chunk_states=_CHUNK_STEPS, tables=False, scratch=self._block_scratch)
        while True:
            try:
                first, flows, fallback = next(chunks, (None, None, None))
                if flows is None:
                    break
                block = self._block_indicators(flows)  # new arrays: the flows' are the next chunk's scratch
                for j, flow in fallback.items():  # solved by power-grid-model: the lone step's path, into the arrays
                    block.set_step(j, self._indicators(self._state(flow, currents=False)), self.lv_buses)
            except (PowerGridError, PowerFlowNotConverged) as exc:
                raise PowerFlowNotConverged(f"three-phase power flow ({self.solver}): {exc}") from None
            yield block, first
        self._solved = True

    def _block_indicators(self, flow) -> LemGridBlock:
        """:meth:`_state` and :meth:`_indicators` of a block of flows, from their network-ordered arrays
        (:class:`~lec_cosim.models.fixed_point_backend.FlowBlock`: (step, phase, network bus or branch)).

        A step's sums add its numbers in the order the lone step's ``sum()`` does (a C-contiguous row per step in
        that order, summed along it: numpy's pairwise sum of the same sequence); everything else is element by
        element or a minimum, maximum or count, which no order changes."""
        steps = len(flow.vm_abc)
        lv, head, lines, trafos = self._network_rows(flow)
        vm = np.take(flow.vm_abc, lv, axis=2)  # (step, phase, LV bus)
        # each bus's lowest and highest phase: the band's test on them is the test on every phase
        vm_low = np.minimum(np.minimum(vm[:, 0], vm[:, 1]), vm[:, 2])
        vm_high = np.maximum(np.maximum(vm[:, 0], vm[:, 1]), vm[:, 2])
        s_from, s_to = flow.s_from_abc, flow.s_to_abc
        # alone: line_pl_mw[rows] is C-contiguous (line, phase), trafo_pl_mw's memory runs phase by phase
        # summed in the branches' order first (contiguous), then copied into the (line, phase) order
        line_p = np.ascontiguousarray(np.add(s_from.real, s_to.real)[:, :, lines].transpose(0, 2, 1))
        line_q = np.ascontiguousarray(np.add(s_from.imag, s_to.imag)[:, :, lines].transpose(0, 2, 1))
        hv, lv_side = s_from[:, :, trafos], s_to[:, :, trafos]  # (step, phase, transformer)
        trafo_pl = np.add(hv.real, lv_side.real).reshape(steps, -1).sum(axis=1)
        trafo_ql = np.add(hv.imag, lv_side.imag).reshape(steps, -1).sum(axis=1)
        p_loss_kw = (line_p.reshape(steps, -1).sum(axis=1) + trafo_pl) * 1000.0
        q_loss_kvar = (line_q.reshape(steps, -1).sum(axis=1) + trafo_ql) * 1000.0
        s_hv = np.add(np.ascontiguousarray(hv.real), np.multiply(1j, hv.imag))  # as _state, elementwise
        trafo_p_kw = s_hv.real.reshape(steps, -1).sum(axis=1) * 1000.0
        trafo_q_kvar = s_hv.imag.reshape(steps, -1).sum(axis=1) * 1000.0

        limit = self.max_loading_percent
        bus_viol = (vm_low < self.vm_min_pu) | (vm_high > self.vm_max_pu)
        ang_viol = self._block_angle_violations(flow.voltages_pu, lv, head)
        ka = np.maximum(flow.ka_from_abc, flow.ka_to_abc)  # (step, phase, branch): line_i_ka
        i_max = np.maximum(np.maximum(ka[:, 0], ka[:, 1]), ka[:, 2])[:, lines]
        line_load = 100.0 * i_max / self._line_max_i_ka
        line_over = line_load > limit
        trafo_loads = 100.0 * np.maximum(flow.ka_to_abc[:, :, trafos].max(axis=1) / self._trafo_ir_lv_ka,
                                         flow.ka_from_abc[:, :, trafos].max(axis=1) / self._trafo_ir_hv_ka)
        trafo_over = (trafo_loads > limit).sum(axis=1)
        order, starts = self._reduced_line_groups
        reduced_over = (np.logical_or.reduceat(line_over[:, order], starts, axis=1).sum(axis=1) if len(starts)
                        else np.zeros(steps, dtype=np.int64))
        no_angle = not ang_viol.any()
        counts = {
            "bus_violations": bus_viol.sum(axis=1),
            "bus_violations_reduced": (bus_viol & self.bus_in_reduced).sum(axis=1),
            "angle_violations": np.zeros(steps, dtype=np.int64) if no_angle else ang_viol.sum(axis=1),
            "angle_violations_reduced": (np.zeros(steps, dtype=np.int64) if no_angle
                                         else (ang_viol & self.bus_in_reduced).sum(axis=1)),
            "line_overloads": line_over.sum(axis=1) + trafo_over,
            "line_overloads_reduced": reduced_over + trafo_over,
        }
        suffix = "" if self.violation_model == "full" else "_reduced"
        impact = dn_impact(counts["bus_violations" + suffix], counts["angle_violations" + suffix],
                           counts["line_overloads" + suffix], p_loss_kw * self.step_h, q_loss_kvar * self.step_h,
                           self.step_h)
        return LemGridBlock(
            vm_min_pu=vm_low.min(axis=1), vm_max_pu=vm_high.max(axis=1), **counts,
            max_line_loading_percent=line_load.max(axis=1), trafo_loading_percent=trafo_loads.max(axis=1),
            p_loss_kw=p_loss_kw, q_loss_kvar=q_loss_kvar, trafo_p_kw=trafo_p_kw, trafo_q_kvar=trafo_q_kvar,
            dn_impact=np.asarray(impact, dtype=float), step_h=self.step_h, violation_model=self.violation_model,
            vm_phase_values=vm, line_loading_values=line_load, trafo_loadings_percent=trafo_loads,
            bus_violated=bus_viol, vm_bus_min_pu=vm_low, vm_bus_max_pu=vm_high)

    def _network_rows(self, flow) -> tuple:
        """The network bus of each LV bus and of its feeder's head, the network branches of the feeder lines (a
        slice when they follow each other) and of the transformers; kept for the flow engine that made ``flow``."""
        cached = getattr(self, "_network_rows_cache", None)  # (engine, its bus_rows, rows): held, not ids
        if cached is None or cached[0] is not self._pgm or cached[1] is not flow.bus_rows:
            lv, head = flow.bus_rows[self._lv_rows], flow.bus_rows[self._lv_head_rows]
            lines = flow.lines.start + self._line_rows
            if len(lines) and np.array_equal(lines, np.arange(lines[0], lines[0] + len(lines))):
                lines = slice(int(lines[0]), int(lines[0]) + len(lines))
            cached = self._network_rows_cache = (self._pgm, flow.bus_rows, (lv, head, lines, flow.trafos))
        return cached[2]

    _ANGLE_MARGIN_DEGREE = 1e-6
    """Angles closer than this to the band's edge are computed as :meth:`_state` computes them (its rounding is
    ~1e-13 degrees): farther, the side of the edge is certain from the voltages' product."""

    def _block_angle_violations(self, v: np.ndarray, lv: np.ndarray, head: np.ndarray) -> np.ndarray:
        """(step, LV bus): any phase's angle deviating from the same phase's at the feeder head by more than the
        band, as :meth:`_indicators` counts it, without an arctangent per bus and phase (``v``: the complex phase
        voltages, (step, phase, network bus); ``lv``, ``head``: each LV bus's network bus and its head's).

        ``arg(v conj(v_head))`` is the deviation the lone step computes (``angle(v) - angle(v_head)``, wrapped);
        where it lies within the band by more than :data:`_ANGLE_MARGIN_DEGREE` (its imaginary part's magnitude
        under ``tan(band - margin)`` times its real part) no rounding can put it outside; every other phase
        (none on the IEEE feeder at 5 degrees, whose largest deviation is ~1.3) is computed the lone step's way."""
        bound = math.tan(math.radians(self.va_max_deviation_degree - self._ANGLE_MARGIN_DEGREE))
        if bound <= 0:
            unsure = np.ones((len(v), 3, len(lv)), dtype=bool)
        elif np.all(head == head[0]):  # one feeder: one head for all; every bus tested, the others' tests ignored
            w = np.multiply(v, np.conj(v[:, :, head[0]])[:, :, None])
            sure = np.abs(w.imag) < np.multiply(w.real, bound)
            if sure.all(axis=(0, 1))[lv].all():
                return np.zeros((len(v), len(lv)), dtype=bool)
            unsure = ~sure[:, :, lv]
        else:
            w = np.multiply(v[:, :, lv], np.conj(v[:, :, head]))
            unsure = ~(np.abs(w.imag) < np.multiply(w.real, bound))
        violated = np.zeros(unsure.shape, dtype=bool)
        if unsure.any():
            step, phase, bus = np.nonzero(unsure)
            # np.angle of contiguous complex copies: the lone step's arctangents of strided real and imaginary parts
            va = np.angle(np.ascontiguousarray(v[step, phase, lv[bus]]), deg=True)
            va_head = np.angle(np.ascontiguousarray(v[step, phase, head[bus]]), deg=True)
            violated[step, phase, bus] = np.abs(_wrap_degree(va - va_head)) > self.va_max_deviation_degree
        return violated.any(axis=1)

    @property
    def _reduced_line_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """The feeder lines of a reduced-model line next to each other (``order``) and where each reduced line's
        run starts (``starts``): an overloaded reduced line is one whose run has an overloaded section."""
        if getattr(self, "_reduced_groups_cache", None) is None:
            ids = np.asarray(self.line_reduced_id)
            order = np.flatnonzero(ids >= 0)
            order = order[np.argsort(ids[order], kind="stable")]
            sorted_ids = ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if len(order) else order
            self._reduced_groups_cache = (order, starts)
        return self._reduced_groups_cache

    def _indicators(self, s: _GridState) -> LemGridResult:
        """The step's indicators from its solved state."""
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
            vm_pu_values=s.vm, va_deviation_values=s.va_dev, line_loading_values=line_load, bus_index=buses,
            phase_index=self._result_phase_index, line_index=self._result_line_index,
            violated_buses=tuple(int(b) for b in self.lv_buses[bus_viol]),
            trafo_loadings_percent=trafo_loads,
            # per phase, for a thermal envelope (lec_cosim.models.household_envelope): the loading of each
            # line-phase and transformer side-phase, not only each element's highest phase
            line_phase_loading_values=100.0 * s.i_line_mag / self._line_max_i_ka[:, None],
            trafo_phase_loading_values=100.0 * np.hstack([s.i_trafo_lv_mag / self._trafo_ir_lv_ka,
                                                          s.i_trafo_hv_mag / self._trafo_ir_hv_ka]),
        )

