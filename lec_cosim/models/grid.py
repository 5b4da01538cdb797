"""Grid model: an LEC behind an MV/LV transformer at the end of an MV line, in pandapower.

Buses: ``mv_source`` (external grid) -- MV line (PI section) -- ``pcc`` (the LEC's point of
common coupling, MV side) -- transformer -- ``lv_busbar`` carrying the LEC's aggregate load, PV
and community battery.

Speed. A plain ``pp.runpp`` spends 20-70 ms per call on this 3-bus net, nearly all of it in
pandapower's per-call bookkeeping (option parsing, pandas -> PYPOWER conversion, result tables);
a year at 15 minutes is 35 040 calls. Only the four LV injections change from step to step, so
:class:`LECGrid` lets pandapower build its internal PYPOWER case once (a full ``pp.runpp`` at
construction: admittance matrices ``Ybus``/``Yf``/``Yt``, bus types, lookups) and then per step

1. updates the complex power injection ``Sbus`` of the LV busbar (as pandapower's ``makeSbus``),
2. runs lightsim2grid's Newton-Raphson -- the C++ solver that ``pp.runpp(net, lightsim2grid=True)``
   uses -- on pandapower's ``Ybus``, always from the same flat start (no memory between steps),
3. computes the flows and all result tables with pandapower's formulas (``pypower.pfsoln`` for
   the branch flows, ``results_branch``/``results_bus`` for currents, loadings and bus powers)
   and writes them into ``net.res_bus``, ``res_line``, ``res_trafo``, ``res_ext_grid``,
   ``res_load``, ``res_sgen`` and ``res_storage``.

``self.net`` stays the pandapower model: each :meth:`LECGrid.solve` also writes its four
injections into ``net.load``, ``net.sgen`` and ``net.storage``, so ``pp.runpp(grid.net)``
reproduces the step, and its result tables are what ``pp.runpp`` would have written (to solver
tolerance; ``benchmarks/grid_solve.py`` checks 1e-9 pu / MW on random operating points). The
net's structure (buses, line, transformer, element parameters other than the four injections)
is fixed at construction.

If the fast Newton-Raphson does not converge, the step is handed to ``pp.runpp`` itself, so
:class:`PowerFlowError` is raised exactly when pandapower's own power flow fails. Without
lightsim2grid installed, or if the fast path disagrees with ``pp.runpp`` at construction,
every step uses ``pp.runpp`` (slow but the same results).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandapower as pp
from pandapower.pypower.idx_brch import F_BUS, T_BUS
from pandapower.pypower.idx_bus import BASE_KV
from pandapower.pypower.makeSbus import makeSbus

from lec_cosim.models.errors import InfeasibleInput
from lec_cosim.models.pgm_backend import PgmPowerFlow, PowerFlowNotConverged, PowerGridError

try:  # C++ Newton-Raphson; pandapower's runpp(lightsim2grid=True) uses these classes
    from lightsim2grid.algorithm import NRSing_KLU as _NRSolver
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from lightsim2grid.algorithm import NRSing_SparseLU as _NRSolver
    except ImportError:
        _NRSolver = None

TOLERANCE_MVA = 1e-10
MAX_ITERATION = 10  # pandapower's default for "nr"
_RUNPP_OPTIONS = dict(algorithm="nr", tolerance_mva=TOLERANCE_MVA, max_iteration=MAX_ITERATION, numba=False)
_SQRT3 = math.sqrt(3.0)
_RAD2DEG = 180.0 / math.pi

# Result tables the fast path writes, with the columns it computes (pandapower's names).
_BRANCH_COLUMNS = {
    "res_line": ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "pl_mw", "ql_mvar", "i_from_ka",
                 "i_to_ka", "i_ka", "vm_from_pu", "va_from_degree", "vm_to_pu", "va_to_degree",
                 "loading_percent"],
    "res_trafo": ["p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar", "pl_mw", "ql_mvar", "i_hv_ka", "i_lv_ka",
                  "vm_hv_pu", "va_hv_degree", "vm_lv_pu", "va_lv_degree", "loading_percent"],
}
_RESULT_COLUMNS = {
    "res_bus": ["vm_pu", "va_degree", "p_mw", "q_mvar"],
    **_BRANCH_COLUMNS,
    "res_ext_grid": ["p_mw", "q_mvar"],
    "res_load": ["p_mw", "q_mvar"],
    "res_sgen": ["p_mw", "q_mvar"],
    "res_storage": ["p_mw", "q_mvar"],
}


class PowerFlowError(RuntimeError, InfeasibleInput):
    """The power flow did not converge: the grid cannot carry the scenario's loads and generation."""

    field = "grid"


@dataclass(frozen=True)
class GridResult:
    """Power-flow result of one step (MV-side PCC flows are into the LEC)."""

    pcc_p_mw: float
    pcc_q_mvar: float
    pcc_vm_pu: float
    lv_vm_pu: float
    trafo_loading_percent: float
    line_loading_percent: float
    losses_mw: float
    losses_mvar: float
    vm_min_pu: float
    vm_max_pu: float
    bus_violations: int
    line_overloads: int


class LECGrid:
    """pandapower net of the LEC feeder; set the LV injections, solve, read the PCC."""

    def __init__(self, grid_config):
        line, trafo = grid_config.mv_line, grid_config.transformer
        net = pp.create_empty_network(name="lec_feeder")
        self.source_bus = pp.create_bus(net, vn_kv=trafo.vn_hv_kv, name="mv_source")
        self.pcc_bus = pp.create_bus(net, vn_kv=trafo.vn_hv_kv, name="pcc")
        self.lv_bus = pp.create_bus(net, vn_kv=trafo.vn_lv_kv, name="lv_busbar")
        self.ext_grid = pp.create_ext_grid(net, self.source_bus, vm_pu=grid_config.ext_grid_vm_pu, name="mv_grid")
        self.line = pp.create_line_from_parameters(
            net, self.source_bus, self.pcc_bus, length_km=line.length_km, r_ohm_per_km=line.r_ohm_per_km,
            x_ohm_per_km=line.x_ohm_per_km, c_nf_per_km=line.c_nf_per_km, max_i_ka=line.max_i_ka,
            name="mv_line",
        )
        self.trafo = pp.create_transformer_from_parameters(
            net, self.pcc_bus, self.lv_bus, sn_mva=trafo.sn_mva, vn_hv_kv=trafo.vn_hv_kv,
            vn_lv_kv=trafo.vn_lv_kv, vk_percent=trafo.vk_percent, vkr_percent=trafo.vkr_percent,
            pfe_kw=trafo.pfe_kw, i0_percent=trafo.i0_percent, name="mv_lv_transformer",
        )
        self.load = pp.create_load(net, self.lv_bus, p_mw=0.0, q_mvar=0.0, name="households")
        self.pv = pp.create_sgen(net, self.lv_bus, p_mw=0.0, q_mvar=0.0, name="pv", type="PV")
        self.storage = pp.create_storage(net, self.lv_bus, p_mw=0.0, max_e_mwh=1.0, name="community_battery")
        self.net = net
        self.vm_limits_pu = (grid_config.vm_min_pu, grid_config.vm_max_pu)
        self.max_loading_percent = grid_config.max_loading_percent
        self.solver = getattr(grid_config, "solver", "pandapower")
        self._fast = False
        self._pgm = None
        if self.solver in ("power-grid-model", "opendss"):
            # both take the pandapower tables and answer the same arrays (lec_cosim.models.pgm_backend)
            if self.solver == "opendss":
                from lec_cosim.models.opendss_backend import OpenDssPowerFlow

                self._pgm = OpenDssPowerFlow(net, symmetric=True)
            else:
                self._pgm = PgmPowerFlow(net, symmetric=True)
            tr = net.trafo.loc[self.trafo]
            self._trafo_ir_ka = (float(tr["sn_mva"]) / (_SQRT3 * float(tr["vn_hv_kv"])),
                                 float(tr["sn_mva"]) / (_SQRT3 * float(tr["vn_lv_kv"])))
            self._line_max_i_ka = float(net.line.at[self.line, "max_i_ka"])
            self.solve(0.0, 0.0, 0.0, 0.0)
            return
        if _NRSolver is not None:
            try:
                self._prepare_fast_path()
                self._fast = self._check_against_runpp()
            except Exception as exc:  # e.g. pandapower internals changed: stay correct, get slow
                warnings.warn(f"LECGrid: fast power flow unavailable ({exc!r}); using pp.runpp")
        if self._fast:
            self._solve_fast(0.0, 0.0, 0.0, 0.0)
        else:
            self.solve_runpp(0.0, 0.0, 0.0, 0.0)

    # Public ------------------------------------------------------------------------------------
    def solve(self, load_p_mw: float, load_q_mvar: float, pv_p_mw: float, battery_p_mw: float) -> GridResult:
        """Power flow for one step (battery in load convention: positive charges)."""
        if self._pgm is not None:
            return self._solve_pgm(load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw)
        if self._fast:
            result = self._solve_fast(load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw)
            if result is not None:
                return result
        # Not converged from a flat start (or no fast path): pandapower decides.
        return self.solve_runpp(load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw)

    def solve_runpp(self, load_p_mw: float, load_q_mvar: float, pv_p_mw: float,
                    battery_p_mw: float) -> GridResult:
        """Same as :meth:`solve`, through a full ``pp.runpp`` (the reference; slow)."""
        net = self.net
        self._set_injections(load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw)
        try:
            pp.runpp(net, **_RUNPP_OPTIONS)
        except pp.powerflow.LoadflowNotConverged:
            raise PowerFlowError(
                f"power flow did not converge (load {load_p_mw:.4f} MW, PV {pv_p_mw:.4f} MW, "
                f"battery {battery_p_mw:.4f} MW)"
            ) from None
        return self._result(
            pcc_p_mw=net.res_trafo.at[self.trafo, "p_hv_mw"],
            pcc_q_mvar=net.res_trafo.at[self.trafo, "q_hv_mvar"],
            vm_pu=net.res_bus.vm_pu.to_numpy(),
            trafo_loading_percent=net.res_trafo.at[self.trafo, "loading_percent"],
            line_loading_percent=net.res_line.at[self.line, "loading_percent"],
            losses_mw=net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum(),
            losses_mvar=net.res_line.ql_mvar.sum() + net.res_trafo.ql_mvar.sum(),
        )

    def _result(self, *, pcc_p_mw, pcc_q_mvar, vm_pu, trafo_loading_percent, line_loading_percent,
                losses_mw, losses_mvar) -> GridResult:
        """A step's result; ``vm_pu`` holds every bus in the order of ``net.bus``."""
        return GridResult(
            pcc_p_mw=float(pcc_p_mw),
            pcc_q_mvar=float(pcc_q_mvar),
            pcc_vm_pu=float(vm_pu[self.pcc_bus]),
            lv_vm_pu=float(vm_pu[self.lv_bus]),
            trafo_loading_percent=float(trafo_loading_percent),
            line_loading_percent=float(line_loading_percent),
            losses_mw=float(losses_mw),
            losses_mvar=float(losses_mvar),
            vm_min_pu=float(vm_pu.min()),
            vm_max_pu=float(vm_pu.max()),
            bus_violations=int(np.count_nonzero((vm_pu < self.vm_limits_pu[0]) | (vm_pu > self.vm_limits_pu[1]))),
            line_overloads=int((line_loading_percent > self.max_loading_percent)
                               + (trafo_loading_percent > self.max_loading_percent)),
        )

    def _solve_pgm(self, load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw) -> GridResult:
        """One step with power-grid-model or OpenDSS (``net``'s result tables are not written)."""
        powers = {"load": (np.array([load_p_mw]), np.array([load_q_mvar])), "sgen": (np.array([pv_p_mw]), np.zeros(1)),
                  "storage": (np.array([battery_p_mw]), np.zeros(1))}
        self._set_injections(load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw)
        try:
            flow = self._pgm.solve(powers)
        except (PowerGridError, PowerFlowNotConverged) as exc:
            raise PowerFlowError(f"power flow did not converge ({self.solver}: {exc})") from None
        line_i = float(flow.line_i_ka[0, 0])
        # pandapower's loading: the larger side current over that side's rated current
        trafo_loading = 100.0 * max(flow.trafo_i_hv_ka[0, 0] / self._trafo_ir_ka[0],
                                    flow.trafo_i_lv_ka[0, 0] / self._trafo_ir_ka[1])
        return self._result(
            pcc_p_mw=flow.trafo_p_hv_mw[0, 0], pcc_q_mvar=flow.trafo_q_hv_mvar[0, 0], vm_pu=flow.vm_pu[:, 0],
            trafo_loading_percent=trafo_loading, line_loading_percent=100.0 * line_i / self._line_max_i_ka,
            losses_mw=flow.line_pl_mw.sum() + flow.trafo_pl_mw.sum(),
            losses_mvar=flow.line_ql_mvar.sum() + flow.trafo_ql_mvar.sum())

    @property
    def fast(self) -> bool:
        """Whether :meth:`solve` uses the fast path (lightsim2grid installed, self-check passed)."""
        return self._fast

    # Inputs ------------------------------------------------------------------------------------
    def _set_injections(self, load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw) -> None:
        net = self.net
        net.load.at[self.load, "p_mw"] = load_p_mw
        net.load.at[self.load, "q_mvar"] = load_q_mvar
        net.sgen.at[self.pv, "p_mw"] = pv_p_mw
        net.storage.at[self.storage, "p_mw"] = battery_p_mw

    # Fast path ---------------------------------------------------------------------------------
    def _prepare_fast_path(self) -> None:
        """Let pandapower build its internal case once and keep what each step needs."""
        net = self.net
        pp.runpp(net, **_RUNPP_OPTIONS)  # zero injections: builds net._ppc and the lookups
        internal = net._ppc["internal"]
        bus, gen, branch = internal["bus"], internal["gen"], internal["branch"]
        n_bus = bus.shape[0]
        # The internal (ppci) case must be the whole net, in the net's order: nothing out of
        # service, no fused or auxiliary buses, one line then one transformer.
        bus_lookup = np.asarray(net._pd2ppc_lookups["bus"])
        if n_bus != len(net.bus) or not np.array_equal(bus_lookup[net.bus.index.to_numpy()], np.arange(n_bus)):
            raise RuntimeError("unexpected pandapower internal bus order")
        if dict(net._pd2ppc_lookups["branch"]) != {"line": (0, 1), "trafo": (1, 2)}:
            raise RuntimeError("unexpected pandapower internal branch order")
        for name, columns in _RESULT_COLUMNS.items():
            if list(net[name].columns) != columns or len(net[name]) != 1 + (name == "res_bus") * (n_bus - 1):
                raise RuntimeError(f"unexpected columns of net.{name}: {list(net[name].columns)}")
        self._base_mva = float(internal["baseMVA"])
        self._ref = np.asarray(internal["ref"], dtype=np.int32)
        self._pv_buses = np.asarray(internal["pv"], dtype=np.int32)
        self._pq = np.asarray(internal["pq"], dtype=np.int32)
        if len(self._ref) != 1 or len(self._pv_buses) or int(bus_lookup[self.source_bus]) != int(self._ref[0]):
            raise RuntimeError("expected the external grid as the only slack and no PV buses")
        self._slack_weights = np.zeros(n_bus)
        self._slack_weights[self._ref] = 1.0
        self._ybus = internal["Ybus"].tocsc()
        self._ybus.sum_duplicates()
        self._ybus_ref = internal["Ybus"][self._ref[0], :].toarray().ravel()
        # pypower.pfsoln: Sf = V[f] * conj(Yf V) * baseMVA, St = V[t] * conj(Yt V) * baseMVA
        self._yf = internal["Yf"].toarray()
        self._yt = internal["Yt"].toarray()
        self._f = branch[:, F_BUS].real.astype(np.int64)
        self._t = branch[:, T_BUS].real.astype(np.int64)
        # results_branch._get_branch_flows: i = |S| / (vm * base_kv) / sqrt(3), in kA
        self._base_kv_f = bus[self._f, BASE_KV].real.copy()
        self._base_kv_t = bus[self._t, BASE_KV].real.copy()
        # results_branch: rated currents and derating for loading_percent
        line_row, trafo_row = net.line.loc[self.line], net.trafo.loc[self.trafo]
        self._line_i_max_ka = float(line_row.max_i_ka * line_row.df * line_row.parallel)
        self._trafo_sn_mva = float(trafo_row.sn_mva)
        self._trafo_vn_kv = (float(trafo_row.vn_hv_kv), float(trafo_row.vn_lv_kv))
        self._trafo_parallel, self._trafo_df = float(trafo_row.parallel), float(trafo_row.df)
        # pd2ppc: bus power = loads + storage - sgens, each times its scaling
        self._lv_i = int(bus_lookup[self.lv_bus])
        self._scaling = (float(net.load.at[self.load, "scaling"]), float(net.sgen.at[self.pv, "scaling"]),
                         float(net.storage.at[self.storage, "scaling"]))
        self._pv_q_mvar = float(net.sgen.at[self.pv, "q_mvar"]) * self._scaling[1]
        self._storage_q_mvar = float(net.storage.at[self.storage, "q_mvar"]) * self._scaling[2]
        self._sbus0 = makeSbus(self._base_mva, bus, gen)  # other injections: none but the slack's
        self._sbus0[self._lv_i] = 0.0
        # Flat start (slack at its set point), as pandapower's init="flat": the same start for
        # every step, so a step's result does not depend on the steps before it.
        self._v_start = np.ones(n_bus, dtype=complex)
        self._v_start[self._ref] = internal["V"][self._ref]
        self._solver = _NRSolver()
        # Result arrays backing the net's result tables (see _publish_results).
        self._res = {name: np.zeros((len(net[name]), len(cols))) for name, cols in _RESULT_COLUMNS.items()}
        self._frames: dict[str, pd.DataFrame] = {}
        self._frames_ppc = None

    def _check_against_runpp(self) -> bool:
        """The fast path must reproduce pp.runpp (every result table) on an operating point."""
        point = (0.3, 0.075, 0.2, 0.1)
        if self._solve_fast(*point) is None:
            raise RuntimeError("no convergence at a test point")
        fast = {name: array.copy() for name, array in self._res.items()}
        self.solve_runpp(*point)
        worst = max(float(np.max(np.abs(self.net[name].to_numpy(dtype=float) - fast[name]))) for name in fast)
        if worst > 1e-6:
            warnings.warn(f"LECGrid: fast power flow differs from pp.runpp by {worst:.1e}; using pp.runpp")
            return False
        return True

    def _solve_fast(self, load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw) -> GridResult | None:
        """One step; None if Newton-Raphson did not converge."""
        self._set_injections(load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw)
        sl, sg, ss = self._scaling
        load_p, load_q = load_p_mw * sl, load_q_mvar * sl
        pv_p, storage_p = pv_p_mw * sg, battery_p_mw * ss
        bus_p = load_p - pv_p + storage_p
        bus_q = load_q - self._pv_q_mvar + self._storage_q_mvar
        if not (math.isfinite(bus_p) and math.isfinite(bus_q)):
            return None
        sbus = self._sbus0.copy()
        sbus[self._lv_i] -= complex(bus_p, bus_q) / self._base_mva
        solver = self._solver
        converged = solver.solve(self._ybus, self._v_start.copy(), sbus, self._ref, self._slack_weights,
                                 self._pv_buses, self._pq, MAX_ITERATION, TOLERANCE_MVA / self._base_mva)
        if not (converged and solver.converged()):
            solver.reset()
            return None
        v = solver.get_V()
        if not np.all(np.isfinite(v)):
            solver.reset()
            return None

        base = self._base_mva
        vm = np.abs(v)
        va = np.angle(v) * _RAD2DEG
        f, t = self._f, self._t
        s_f = v[f] * np.conj(self._yf @ v) * base
        s_t = v[t] * np.conj(self._yt @ v) * base
        i_f = np.abs(s_f) / (vm[f] * self._base_kv_f) / _SQRT3
        i_t = np.abs(s_t) / (vm[t] * self._base_kv_t) / _SQRT3
        s_ext = v[self._ref[0]] * np.conj(self._ybus_ref @ v) * base  # slack injection (no load there)

        res = self._res
        # Branch rows (line is branch 0, transformer branch 1): the first 9 columns are shared.
        for name, row in (("res_line", 0), ("res_trafo", 1)):
            out = res[name][0]
            out[0:6] = (s_f[row].real, s_f[row].imag, s_t[row].real, s_t[row].imag,
                        s_f[row].real + s_t[row].real, s_f[row].imag + s_t[row].imag)
        line, trafo = res["res_line"][0], res["res_trafo"][0]
        i_ka = max(i_f[0], i_t[0])
        line[6:14] = (i_f[0], i_t[0], i_ka, vm[f[0]], va[f[0]], vm[t[0]], va[t[0]],
                      i_ka / self._line_i_max_ka * 100.0)
        vn_hv, vn_lv = self._trafo_vn_kv
        trafo_loading = max(i_f[1] * vn_hv * _SQRT3 / self._trafo_sn_mva * 100.0,
                            i_t[1] * vn_lv * _SQRT3 / self._trafo_sn_mva * 100.0)
        trafo[6:13] = (i_f[1], i_t[1], vm[f[1]], va[f[1]], vm[t[1]], va[t[1]],
                       trafo_loading / self._trafo_parallel / self._trafo_df)
        bus = res["res_bus"]
        bus[:, 0], bus[:, 1] = vm, va
        bus[:, 2:4] = 0.0
        bus[self._ref[0], 2:4] = (-s_ext.real, -s_ext.imag)
        bus[self._lv_i, 2:4] = (bus_p, bus_q)
        res["res_ext_grid"][0] = (s_ext.real, s_ext.imag)
        res["res_load"][0] = (load_p, load_q)
        res["res_sgen"][0] = (pv_p, self._pv_q_mvar)
        res["res_storage"][0] = (storage_p, self._storage_q_mvar)
        self._publish_results()

        return self._result(
            pcc_p_mw=trafo[0], pcc_q_mvar=trafo[1], vm_pu=vm, trafo_loading_percent=trafo[12],
            line_loading_percent=line[13], losses_mw=line[4] + trafo[4], losses_mvar=line[5] + trafo[5],
        )

    def _publish_results(self) -> None:
        """Make the net's result tables show the result arrays.

        The tables are DataFrames over the arrays themselves (no copy), so a step costs no pandas
        writes. They are rebuilt when something replaced them or ran ``pp.runpp`` on the net.
        """
        net = self.net
        frames = self._frames
        if frames and net.get("_ppc") is self._frames_ppc and all(net[n] is f for n, f in frames.items()):
            return
        frames.clear()
        for name, array in self._res.items():
            frame = pd.DataFrame(array, index=net[name].index, columns=list(_RESULT_COLUMNS[name]), copy=False)
            net[name] = frame
            frames[name] = frame
        if all(np.shares_memory(frame.to_numpy(), self._res[name]) for name, frame in frames.items()):
            self._frames_ppc = net.get("_ppc")
        else:  # a pandas that copied: tables are new each step (slower, same content)
            frames.clear()
