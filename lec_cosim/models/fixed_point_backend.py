"""A three-phase power flow of the project's own: a fixed point on the loads' currents over pandapower's sequence
networks, for feeders that are solved tens of thousands of times with only the powers changing.

Why: a year at 15 minutes is 35,136 three-phase flows of the IEEE European LV feeder. power-grid-model builds
and factorises its admittance matrix at every call (~1.3 ms of its ~2.3 ms a flow here, measured 2026-12-07),
OpenDSS keeps its factorisation and needs ~0.6 ms. Here everything that does not depend on the powers is done
once, when the model is built:

1. pandapower's own sequence networks (zero, positive, negative; the same ``pd2ppc`` conversion and admittance
   matrices ``runpp_3ph`` builds, so the model is pandapower's, which power-grid-model matches to ~1e-10 pu on
   this feeder): ``Y0``, ``Y1`` and ``Y2``, the source an ideal slack in the positive sequence;
2. their impedance matrices seen from the buses that carry loads or generators (Kron reduction, a sparse LU of
   each network solved once per such bus), turned into one phase-domain matrix ``Z`` over those buses' phases,
   and the no-load voltages ``V_nl`` there.

A flow then iterates on those phases only (~180 unknowns on the IEEE feeder instead of ~2,700):
``V = V_nl + Z I(V)`` with ``I(V) = conj(S / V)``, the constant-power loads' currents (the iteration
OpenDSS and power-grid-model's ``iterative_current`` use, on the reduced system), from the no-load voltages,
until no voltage changes by more than ``tolerance_pu``; then every bus's voltage and every branch's currents and
powers follow from the converged currents in one pass (``Z`` of all buses, the branch admittances ``Yf``/``Yt``).

Each flow starts from the no-load state, not from the last solution: a step's result does not depend on which
steps were solved before it, so a run gives the same numbers whatever its exchange or block structure.

A state on which the fixed point does not converge (a heavily loaded feeder, far from 1 pu: the iteration's
contraction is lost before Newton-Raphson's) is solved by power-grid-model instead (built on first need),
with the same model.

Limits (:class:`~lec_cosim.models.pgm_backend.UnsupportedNetwork` otherwise): three-phase flows only; wye
constant-power loads and generators (``load``, ``sgen``, ``storage`` balanced over the phases,
``asymmetric_load``, ``asymmetric_sgen``; a ``storage`` is a load, as power-grid-model takes it, where
``runpp_3ph`` leaves storage out); every bus, line and transformer in service and connected (their
``in_service`` is read when the model is built); an ideal source (``s_sc_max_mva`` of at least 1e6 MVA: the
fallback, power-grid-model, takes the source as ideal); the elements and settings :class:`~lec_cosim.models.pgm_backend.NetPowerFlow`
lists; at most :data:`MAX_DENSE_ENTRIES` entries in the dense impedance matrix of all buses to the loaded buses
(a feeder, not a city: the IEEE feeder has 908 x 61; use power-grid-model for feeder copies). No HELICS here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from lec_cosim.models.pgm_backend import (
    NetPowerFlow,
    PgmPowerFlow,
    PowerFlowArrays,
    PowerFlowNotConverged,
    UnsupportedNetwork,
)

__all__ = ["MAX_DENSE_ENTRIES", "FixedPointPowerFlow", "FlowBlock"]

MAX_DENSE_ENTRIES = 20_000_000
"""Largest (buses x loaded buses) impedance matrix this backend keeps: three of them, one per sequence (about
1 GB of complex numbers at the limit, and as much again while they are built)."""
_IDEAL_SOURCE_MVA = 1e6
"""The ext_grid's ``s_sc_max_mva`` from which its impedance is negligible (the IEEE feeder's: 1e8)."""

_ROW_BLOCK = 128
"""Rows of a sequence's impedance matrix (908 x 61 complex on the IEEE feeder: 0.9 MB) multiplied at a time for
all the block's states: a block of rows (125 kB) stays in the core's cache from one state to the next, the whole
matrix does not. The same numbers: OpenBLAS's gemv of a row-major matrix computes each row's dot product alone,
the rows in groups of 4 and the last ``rows % 4`` by narrower kernels; blocks of a multiple of 4 (of 128: of any
power of two up to it) keep every row in the same kernel, and the last rows last (tests/test_fixed_point_backend.py
checks it against the whole matrix's product)."""
_A = np.array([[1, 1, 1], [1, np.exp(-2j * np.pi / 3), np.exp(2j * np.pi / 3)],
               [1, np.exp(2j * np.pi / 3), np.exp(-2j * np.pi / 3)]])
"""Sequence (0, 1, 2) to phase (a, b, c): pandapower's ``sequence_to_phase``."""
_A_INV = np.linalg.inv(_A)
_BALANCED = ("load", "sgen", "storage")
_INJECTIONS = ("load", "sgen", "storage", "asymmetric_load", "asymmetric_sgen")
_GENERATION = {"sgen": -1.0, "asymmetric_sgen": -1.0}  # consumption positive, as the tables' loads


def _sequence_networks(net):
    """pandapower's three sequence networks of ``net``, as ``runpp_3ph`` builds them.

    Returns the admittance matrices ``(Y, Yf, Yt)`` per sequence (0, 1, 2), the positive sequence's ``ppci``
    (buses, branches, base) and the slack bus. pandapower's internal functions (``pd2ppc``, ``makeYbus``):
    ``tests/test_fixed_point_backend.py`` checks the result against power-grid-model's solution.
    """
    from pandapower.auxiliary import _add_pf_options, _add_ppc_options
    from pandapower.build_bus import _add_ext_grid_sc_impedance
    from pandapower.pd2ppc import _pd2ppc_recycle
    from pandapower.pypower.bustypes import bustypes
    from pandapower.pypower.makeYbus import makeYbus

    saved = net.get("_options")
    try:
        net._options = {}
        _add_ppc_options(net, calculate_voltage_angles=True, trafo_model="t", check_connectivity=True,
                         mode="pf_3ph", switch_rx_ratio=2, init_vm_pu="flat", init_va_degree="flat",
                         enforce_p_lims=False, enforce_q_lims=False, recycle=None, voltage_depend_loads=False,
                         neglect_open_switch_branches=False)
        _add_pf_options(net, tolerance_mva=1e-8, trafo_loading="current", numba=False, ac=True, algorithm="nr",
                        max_iteration=30, only_v_results=False, use_umfpack=True, permc_spec=None,
                        lightsim2grid=False, v_debug=False)
        # the order runpp_3ph converts them in: the negative sequence gets the source's impedance added
        _, ppci1 = _pd2ppc_recycle(net, 1, recycle=None)
        _, ppci2 = _pd2ppc_recycle(net, 2, recycle=None)
        _add_ext_grid_sc_impedance(net, ppci2)
        _, ppci0 = _pd2ppc_recycle(net, 0, recycle=None)
        lookups = net._pd2ppc_lookups
        bus_rows = np.asarray(lookups["bus"])[net.bus.index.to_numpy()]
        branches = dict(lookups.get("branch", {}))
    finally:
        net._options = saved if saved is not None else {}
    networks = [makeYbus(ppci["baseMVA"], ppci["bus"], ppci["branch"]) for ppci in (ppci0, ppci1, ppci2)]
    ref, pv, _ = bustypes(ppci1["bus"], ppci1["gen"])
    if len(ref) != 1 or len(pv):
        raise UnsupportedNetwork("one slack bus and no voltage-controlled generators are supported")
    return networks, ppci1, int(ref[0]), bus_rows, branches


_BLAS = None
_BLAS_LIBRARIES = None


def _one_blas_thread():
    """BLAS on one thread for the solve's small products (~15 us to switch): OpenBLAS's own threads made the
    183 x 183 product of the IEEE feeder 15 x slower on 2 cores (6.4 ms a flow instead of 0.4, measured).
    Nothing to switch where BLAS runs on one thread already (a federate: OPENBLAS_NUM_THREADS=1; ~1 us to ask)."""
    global _BLAS, _BLAS_LIBRARIES
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
        _BLAS_LIBRARIES = _BLAS.select(user_api="blas").lib_controllers
    if _BLAS_LIBRARIES and all(library.num_threads == 1 for library in _BLAS_LIBRARIES):
        return contextlib.nullcontext()
    return _BLAS.limit(limits=1, user_api="blas")


class FixedPointPowerFlow(NetPowerFlow):
    """A pandapower network's three-phase power flow by a fixed point on the reduced system; build once,
    :meth:`solve` many times. The interface of :class:`~lec_cosim.models.pgm_backend.PgmPowerFlow`.

    Parameters
    ----------
    net : pandapowerNet
    symmetric : bool
        Must be ``False``: three-phase only.
    tolerance_pu : float
        The largest change of a loaded bus's phase voltage (complex, pu) between two iterations at which it
        stops: power-grid-model's criterion (1e-10 here as there; the solutions then agree to ~1e-10 pu).
    max_iterations : int
        Iterations before the state is handed to power-grid-model (the IEEE feeder needs 6-8).

    Raises
    ------
    UnsupportedNetwork
        For elements or settings outside the module docstring's list.
    """

    backend = "fixed-point"

    def __init__(self, net, *, symmetric: bool = False, tolerance_pu: float = 1e-10, max_iterations: int = 60):
        if symmetric:
            raise UnsupportedNetwork("the fixed-point backend solves three-phase flows only")
        self.net, self.symmetric = net, False
        self._check_common(net)
        for table in ("bus", "line", "trafo"):
            if len(net[table]) and not net[table]["in_service"].all():
                raise UnsupportedNetwork(f"{table}: an element out of service (not modelled by the fixed-point "
                                         "backend)")
        s_sc = net.ext_grid.get("s_sc_max_mva")
        if s_sc is not None and (s_sc.fillna(np.inf) < _IDEAL_SOURCE_MVA).any():
            # pandapower's sequence networks put this impedance in the zero and negative sequences, and
            # power-grid-model (the fallback) takes the source as ideal: the two would be different models
            raise UnsupportedNetwork(f"ext_grid: a finite short-circuit power (s_sc_max_mva below "
                                     f"{_IDEAL_SOURCE_MVA:g}); model the source impedance as an element, as "
                                     "lec_cosim.models.ieee_eulv does")
        self._sizes = self._element_counts(net)
        self.tolerance_pu, self.max_iterations = float(tolerance_pu), int(max_iterations)
        self.iterations = 0  # of the last solve, for the curious
        self._fallback: PgmPowerFlow | None = None

        with _one_blas_thread():  # SuperLU's solves for many buses at once: 1.4 s on two threads, 0.06 s on one
            self._build(net)

    def _build(self, net) -> None:
        from scipy.sparse.linalg import splu

        (networks, ppci, ref, bus_rows, branches) = _sequence_networks(net)
        self._base_mva = float(ppci["baseMVA"])
        self._bus_rows = bus_rows  # net.bus row -> network bus
        n_bus = ppci["bus"].shape[0]
        from_bus = ppci["branch"][:, 0].real.astype(int)
        to_bus = ppci["branch"][:, 1].real.astype(int)
        base_kv = ppci["bus"][:, 9].real
        self._lines = slice(*branches["line"]) if "line" in branches else slice(0, 0)
        self._trafos = slice(*branches["trafo"]) if "trafo" in branches else slice(0, 0)
        self._from_bus, self._to_bus = from_bus, to_bus
        # |I| in pu of the network to kA per phase: sqrt(3) * base MVA / base kV (checked against power-grid-model)
        self._ka_from = np.sqrt(3) * self._base_mva / base_kv[from_bus]
        self._ka_to = np.sqrt(3) * self._base_mva / base_kv[to_bus]
        self._yf = [nw[1].tocsr() for nw in networks]
        self._yt = [nw[2].tocsr() for nw in networks]
        self._y_branches = _stacked_rows([*self._yf, *self._yt], n_bus)

        # the injections: each table's rows -> their bus among the loaded buses
        if len(bus_rows) and bus_rows.max() >= n_bus:  # pandapower's connectivity check dropped it
            raise UnsupportedNetwork("bus: a bus not connected to the source")
        tables = {t: net[t] for t in _INJECTIONS if t in net and len(net[t])}
        rows = {t: net.bus.index.get_indexer(table["bus"].to_numpy()) for t, table in tables.items()}
        for t, found in rows.items():
            if (found < 0).any():
                raise UnsupportedNetwork(f"{t}: a row on a bus the net does not have")
        buses = {t: bus_rows[found] for t, found in rows.items()}
        loaded = np.unique(np.concatenate(list(buses.values()))) if buses else np.zeros(0, dtype=int)
        if ref in set(loaded.tolist()):
            raise UnsupportedNetwork("a load or generator at the source's bus")
        if n_bus * max(len(loaded), 1) > MAX_DENSE_ENTRIES:
            raise UnsupportedNetwork(f"{n_bus} buses x {len(loaded)} loaded buses: too large for the fixed-point "
                                     "backend's dense reduction (use power-grid-model)")
        self._tables = tuple(tables)
        self._positions = {t: np.searchsorted(loaded, b) for t, b in buses.items()}
        self._rank_groups = {t: _rank_groups(p) for t, p in self._positions.items()}
        self._n_loaded = n = len(loaded)

        # the impedance matrices of the three sequences from every bus to the loaded buses (the slack's voltage
        # fixed in the positive sequence: its network reduced to the other buses)
        y0, y1, y2 = (nw[0].tocsc() for nw in networks)
        free = np.setdiff1d(np.arange(n_bus), [ref])
        unit = np.zeros((n_bus, n), dtype=complex)
        unit[loaded, np.arange(n)] = 1.0
        z = np.zeros((3, n_bus, n), dtype=complex)
        z[0] = splu(y0).solve(unit)
        z[2] = splu(y2).solve(unit)
        lu1 = splu(y1[free][:, free].tocsc())
        z[1][free] = lu1.solve(unit[free])
        ppc_ref = ppci["bus"][ref]
        v_ref = ppc_ref[7].real * np.exp(1j * np.deg2rad(ppc_ref[8].real))  # VM, VA
        v1 = np.empty(n_bus, dtype=complex)
        v1[ref] = v_ref
        v1[free] = lu1.solve(-(y1[free][:, [ref]].toarray()[:, 0]) * v_ref)
        self._v_noload_012 = np.stack([np.zeros(n_bus, dtype=complex), v1, np.zeros(n_bus, dtype=complex)])
        self._z_all = z  # (3, bus, loaded bus)
        # the reduced system in phases, phase-major (a of every loaded bus, then b, then c):
        # Z_abc = A diag(Z0, Z1, Z2) A^-1 bus-pair by bus-pair
        zl = z[:, loaded, :]
        self._z = np.einsum("ps,sij,sq->piqj", _A, zl, _A_INV).reshape(3 * n, 3 * n)
        self._v_noload = (_A @ self._v_noload_012[:, loaded]).reshape(3 * n)

    # --- injections ------------------------------------------------------------------------------
    def _scales(self) -> dict[str, np.ndarray]:
        """Each table's ``in_service`` times ``scaling`` and sign (consumption positive), read from the net."""
        scales = {}
        for table_name in self._tables:
            table = self.net[table_name]
            scale = table["in_service"].to_numpy(dtype=float) * _GENERATION.get(table_name, 1.0)
            if "scaling" in table.columns:
                scale = scale * table["scaling"].to_numpy(dtype=float)
            scales[table_name] = scale
        return scales

    def _powers(self, powers: dict | None, scales: dict[str, np.ndarray]) -> np.ndarray:
        """The loaded buses' complex power per phase (consumption positive, pu), phase-major (3 n,)."""
        powers = powers or {}
        block = {}
        for table_name in self._tables:
            p, q = (np.asarray(v, dtype=float) for v in (powers[table_name] if table_name in powers
                                                         else self._table_powers(table_name)))
            block[table_name] = (p[None], q[None])
        return self.block_powers(block, scales)[0]

    def _table_powers(self, table_name: str) -> tuple[np.ndarray, np.ndarray]:
        """A table's P and Q as the net holds them (MW, Mvar; a balanced table one column each)."""
        table = self.net[table_name]
        if table_name in _BALANCED:
            return table["p_mw"].to_numpy(dtype=float), table["q_mvar"].to_numpy(dtype=float)
        return (np.column_stack([table[f"p_{ph}_mw"].to_numpy(dtype=float) for ph in "abc"]),
                np.column_stack([table[f"q_{ph}_mvar"].to_numpy(dtype=float) for ph in "abc"]))

    def block_powers(self, powers: dict, scales: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The loaded buses' complex powers of a block of states (consumption positive, pu), (states, 3 n).

        ``powers``: table -> ``(p, q)``, MW and Mvar with a leading axis of states, ``(states, rows)`` for a
        balanced table, ``(states, rows, 3)`` for an asymmetric one, each with the same number of states (at least
        one table); a table of the net's injections not in it keeps the net's powers in every state. Each state's
        row is :meth:`_powers` of that state alone, to the last digit: the same operations element by element,
        and a bus with several rows sums them in the rows' order, from 0, as ``np.add.at`` does.
        """
        scales = self._scales() if scales is None else scales
        states = len(np.asarray(next(iter(powers.values()))[0]))
        s = np.zeros((states, 3, self._n_loaded), dtype=complex)
        for table_name in self._tables:
            balanced = table_name in _BALANCED
            if table_name in powers:
                p, q = (np.asarray(v, dtype=float) for v in powers[table_name])
            else:  # the same powers in every state
                p, q = (np.broadcast_to(v, (states, *np.shape(v))) for v in self._table_powers(table_name))
            scale = scales[table_name]
            # ufuncs, not operators: numpy computes an operator on a temporary above 256 KB in place
            # ("temporary elision"), where complex products take another loop and round differently; a lone
            # state's arrays are far below that size, so the block must not be elided either
            pq = np.add(p, np.multiply(1j, q))
            power = np.multiply(pq, scale if p.ndim == 2 else scale[:, None])
            per_phase = np.repeat(np.divide(power, 3.0)[:, :, None], 3, axis=2) if balanced else power
            for rows, positions in self._rank_groups[table_name]:
                s[:, :, positions] += per_phase[:, rows, :].transpose(0, 2, 1)
        return np.divide(s.reshape(states, -1), self._base_mva)

    # --- solving ---------------------------------------------------------------------------------
    def solve(self, powers: dict | None = None) -> PowerFlowArrays:
        """Run the three-phase power flow on ``powers`` (as :meth:`PgmPowerFlow.solve`) and return the results.

        Raises
        ------
        PowerFlowNotConverged
            If neither the fixed point nor power-grid-model converges.
        """
        return self.solve_many([powers])[0]

    def solve_many(self, states: list[dict | None]) -> list[PowerFlowArrays]:
        """:meth:`solve` for several states, solved together as one block (:meth:`solve_block`): each state's
        results are those of solving it alone, to the last digit."""
        scales = self._scales()
        flows, fallback = self.solve_block(np.stack([self._powers(powers, scales) for powers in states])
                                           if states else np.zeros((0, 3 * self._n_loaded), dtype=complex),
                                           states.__getitem__)
        return [fallback[j] if j in fallback else _one_state(flows, j) for j in range(len(states))]

    def solve_block(self, s: np.ndarray, powers_of=None, *, tables: bool = True, scratch: dict | None = None
                    ) -> tuple[FlowBlock, dict[int, PowerFlowArrays]]:
        """The power flows of a block of states at once: ``s`` (states, 3 n), :meth:`block_powers`.

        Returns the results as one :class:`FlowBlock` whose every field has a leading axis of states (a state's
        slice is exactly what :meth:`solve` returns for it alone: its layout too; without ``tables`` only the
        network-ordered arrays; in ``scratch``'s arrays if given, see :meth:`_results_block`), and the states the
        fixed point did not settle, solved by power-grid-model: index -> results (their rows in the block are
        not theirs). power-grid-model takes a state as the tables' powers: ``powers_of(j)``, state ``j``'s dict
        as :meth:`solve` takes it (called for those states only); without ``powers_of`` such a state raises
        :class:`PowerFlowNotConverged`.

        Why the products are per column (``np.matvec``: OpenBLAS's gemv for each state) and not one matrix
        product over the block (gemm: on their own ~20 % faster for the iteration's, ~2 x for the results', but
        the DSO's step in blocks of 96 only ~3 % cheaper with both, measured 2026-12-07): gemm rounds
        differently from gemv (measured 2026-12-07, OpenBLAS 0.3.31 SkylakeX kernels: no column of a 183 x 96
        product equal to its gemv, ~1e-17 apart), and a state's numbers must not depend on its block: the DSO's
        published values are those of one flow at a time, to the last digit. Everything else is element by
        element or per state (the batched ``matmul`` of the 3 x 3 sequence transforms calls the same product
        per state), so the block costs what the products cost, without a Python loop per state.
        """
        (_, flows, fallback), = self.solve_chunks(s, powers_of, tables=tables, scratch=scratch)
        return flows, fallback

    def solve_chunks(self, s: np.ndarray, powers_of=None, *, chunk_states: int | None = None, tables: bool = True,
                     scratch: dict | None = None):
        """:meth:`solve_block`, its results ``chunk_states`` states at a time: yields ``(first, flows, fallback)``
        per chunk (``first``: the chunk's first state in ``s``; ``fallback``'s indices are the chunk's). All the
        states iterate together (the iteration's arrays are small: ~3 kB a state); the results, ~0.6 MB a state,
        are computed and yielded a chunk at a time so that the caller reads them while they are in the core's
        cache. With ``scratch`` a chunk's arrays are the next one's: read them before asking for the next."""
        s = np.asarray(s, dtype=complex)
        states = len(s)
        chunk_states = max(states, 1) if chunk_states is None else int(chunk_states)
        with _one_blas_thread():
            currents, iterations = self._iterate_block(s)
        # of the block's last state, as solving them in turn left it (max_iterations: not settled)
        self.iterations = min(int(iterations[-1]), self.max_iterations) if states else 0
        with _one_blas_thread():  # every state's bus voltages at once: z_all (2.6 MB here) read once, not once a chunk
            v012 = self._sequence_voltages(currents, _arrays(scratch, states)("v012_all", (3, self._z_all.shape[1])))
        for first in range(0, max(states, 1), chunk_states):
            chunk = slice(first, first + chunk_states)
            with _one_blas_thread():
                flows = self._results_block(v012[chunk], tables, scratch)
            fallback = {}
            for j in np.flatnonzero(iterations[chunk] > self.max_iterations):  # no contraction: Newton-Raphson
                if self._fallback is None:
                    self._fallback = PgmPowerFlow(self.net, symmetric=False)
                if powers_of is None:
                    raise PowerFlowNotConverged(f"fixed point: state {first + j} of the block not settled in "
                                                f"{self.max_iterations} iterations")
                fallback[int(j)] = self._fallback.solve(powers_of(first + int(j)))
            yield first, flows, fallback

    def _iterate_block(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The loaded phases' currents (injected, pu) at each state's fixed point, (states, 3 n), and each state's
        iterations (``max_iterations + 1`` where it was not reached; its currents are then zero).

        Each state iterates as if alone, with the same operations element by element, and leaves the block
        when it has converged (or diverged): later iterations of the others do not touch it."""
        z, v_nl, tolerance = self._z, self._v_noload, self.tolerance_pu
        states = len(s)
        currents = np.zeros_like(s)
        iterations = np.full(states, self.max_iterations + 1)
        active = np.arange(states)
        injected = -s
        v = np.repeat(v_nl[None, :], states, axis=0)
        for k in range(1, self.max_iterations + 1):
            if not len(active):
                break
            current = np.conj(np.divide(injected, v))  # ufuncs, not operators: see block_powers
            v_next = np.add(v_nl, _matvec(z, current))
            change = np.abs(np.subtract(v_next, v)).max(axis=1) if v.shape[1] else np.zeros(len(active))
            v = v_next
            done = change < tolerance
            if done.any():
                currents[active[done]] = np.conj(np.divide(injected[done], v[done]))
                iterations[active[done]] = k
            going = ~done & np.isfinite(change)  # a state that diverged stops as one alone does
            if not going.all():
                active, injected, v = active[going], injected[going], v[going]
        return currents, iterations

    def _sequence_voltages(self, currents: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Every bus's sequence voltages (state, sequence, bus) from the loaded phases' converged currents
        (state, 3 n), into ``out``: ``V_nl + z_all I012``, each state's products its own gemv's."""
        states, n = len(currents), self._n_loaded
        i012 = np.matmul(_A_INV, currents.reshape(states, 3, n))  # (state, sequence, loaded bus)
        for k in range(3):  # by rows of z_all (see _ROW_BLOCK): each block read once for all the states
            z_k, i_k = self._z_all[k], i012[:, k]
            for first in range(0, out.shape[2], _ROW_BLOCK):
                rows = slice(first, first + _ROW_BLOCK)
                _matvec(z_k[rows], i_k, out=out[:, k, rows])
        return np.add(self._v_noload_012, out, out=out)  # exact in place: a sum rounds once whatever the loop

    def _results_block(self, currents: np.ndarray, tables: bool = True, scratch: dict | None = None) -> FlowBlock:
        """Every bus's voltage and every branch's currents and powers of a block of converged states (their
        loaded phases' currents (state, 3 n), or their sequence voltages (state, 3, bus) from
        :meth:`_sequence_voltages`).

        In the network's order (:class:`FlowBlock`'s ``*_abc`` arrays: (state, phase, network bus or branch)),
        and with ``tables`` also as :class:`PowerFlowArrays`' fields in the net's tables' order (the angles'
        arctangents per bus and phase only then). ``scratch``: a dict the arrays are kept in from one call to the
        next (the results too: the caller has read them before it calls again); a block's arrays are ~0.1-1.5 MB
        each, and allocating them afresh costs their pages' first touch (the products and element-wise steps up to
        3 x slower, measured 2026-12-07). Every complex product writes to a distinct array (``out=``), never in
        place: numpy's complex product takes another loop in place, which rounds differently."""
        states, n_bus, n_branch = len(currents), self._z_all.shape[1], len(self._from_bus)
        array = _arrays(scratch, states)
        v012 = currents if currents.ndim == 3 else self._sequence_voltages(currents, array("v012", (3, n_bus)))
        v_abc = np.matmul(_A, v012, out=array("v_abc", (3, n_bus)))  # (state, phase, bus)
        # the branches' sequence currents: one sparse product per state, Yf then Yt of each sequence
        yv = array("yv", (2, 3, n_branch))  # (state, from/to, sequence, branch)
        _sparse_rows(self._y_branches, v012.reshape(states, 3 * n_bus), yv.reshape(states, -1))
        ends = []
        for side, end, bus, ka in ((0, "from", self._from_bus, self._ka_from), (1, "to", self._to_bus, self._ka_to)):
            current = np.matmul(_A, yv[:, side], out=array(f"i_{end}", (3, n_branch)))  # (state, phase, branch)
            v_end = np.take(v_abc, bus, axis=2, out=array(f"v_{end}", (3, n_branch)))
            conj = np.conj(current, out=array(f"conj_{end}", (3, n_branch)))
            product = np.multiply(v_end, conj, out=array(f"vi_{end}", (3, n_branch)))
            s = np.multiply(product, self._base_mva, out=array(f"s_{end}", (3, n_branch)))  # MVA
            magnitude = np.abs(current, out=array(f"abs_{end}", (3, n_branch), float))
            ka_end = np.multiply(magnitude, ka, out=array(f"ka_{end}", (3, n_branch), float))
            ends.append((s, ka_end))
        (s_from, ka_from), (s_to, ka_to) = ends
        vm_abc = np.abs(v_abc, out=array("vm_abc", (3, n_bus), float))
        network = {"voltages_pu": v_abc, "vm_abc": vm_abc, "s_from_abc": s_from, "s_to_abc": s_to,
                   "ka_from_abc": ka_from, "ka_to_abc": ka_to, "bus_rows": self._bus_rows, "lines": self._lines,
                   "trafos": self._trafos}
        if not tables:
            return FlowBlock(**dict.fromkeys(PowerFlowArrays.__dataclass_fields__), **network)
        # the net's tables: (state, branch, phase) views of the (state, phase, branch) arrays, each state's slice
        # laid out as a lone flow's (branch, phase) transpose, so what is summed from it per state sums in the
        # same order; |v| gathered into the net's (state, bus, phase) copy, as the lone flow's
        s_from, s_to = s_from.transpose(0, 2, 1), s_to.transpose(0, 2, 1)
        ka_from, ka_to = ka_from.transpose(0, 2, 1), ka_to.transpose(0, 2, 1)
        vm = np.ascontiguousarray(vm_abc.transpose(0, 2, 1)[:, self._bus_rows])
        va = np.angle(np.ascontiguousarray(v_abc.transpose(0, 2, 1)[:, self._bus_rows]), deg=True)
        lines, trafos = self._lines, self._trafos
        return FlowBlock(
            vm_pu=vm, va_degree=va,
            line_p_from_mw=s_from[:, lines].real, line_q_from_mvar=s_from[:, lines].imag,
            line_p_to_mw=s_to[:, lines].real, line_q_to_mvar=s_to[:, lines].imag,
            line_i_from_ka=ka_from[:, lines], line_i_to_ka=ka_to[:, lines],
            trafo_p_hv_mw=s_from[:, trafos].real, trafo_q_hv_mvar=s_from[:, trafos].imag,
            trafo_p_lv_mw=s_to[:, trafos].real, trafo_q_lv_mvar=s_to[:, trafos].imag,
            trafo_i_hv_ka=ka_from[:, trafos], trafo_i_lv_ka=ka_to[:, trafos], **network,
        )


@dataclass
class FlowBlock(PowerFlowArrays):
    """The results of a block of flows: :class:`PowerFlowArrays`' fields with a leading axis of states (None when
    not asked for), and the same numbers in the network's order (pandapower's internal buses and branches: the
    net's bus row ``r`` is network bus ``bus_rows[r]``, its line row ``r`` branch ``lines.start + r``, its
    transformer row ``r`` branch ``trafos.start + r``), each (state, phase, network bus or branch)."""

    voltages_pu: np.ndarray | None = None
    """Complex phase voltages, pu."""
    vm_abc: np.ndarray | None = None
    """Their magnitudes: ``vm_pu`` in the network's order."""
    s_from_abc: np.ndarray | None = None
    """Complex power into each branch at its from (a transformer's HV) side, MVA."""
    s_to_abc: np.ndarray | None = None
    """And at its to (LV) side, MVA."""
    ka_from_abc: np.ndarray | None = None
    """Current magnitude at the from side, kA."""
    ka_to_abc: np.ndarray | None = None
    """And at the to side, kA."""
    bus_rows: np.ndarray | None = None
    lines: slice | None = None
    trafos: slice | None = None


def _matvec(matrix: np.ndarray, vectors: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``matrix @ vectors[j]`` for every row ``j`` of ``vectors``: numpy's ``matvec`` (2.2 on: BLAS's gemv for
    each, in one call), else a loop of the same products."""
    if _NP_MATVEC is not None:
        return _NP_MATVEC(matrix, vectors, out=out)
    out = np.empty((len(vectors), matrix.shape[0]), dtype=np.result_type(matrix, vectors)) if out is None else out
    for j in range(len(vectors)):
        out[j] = matrix @ vectors[j]
    return out


_NP_MATVEC = getattr(np, "matvec", None)


def _arrays(scratch: dict | None, states: int):
    """``array(name, shape, dtype)``: a (states, *shape) array, new, or kept in ``scratch`` under ``name`` (and
    reused by the next call that asks for it)."""

    def array(name, shape, dtype=complex):
        if scratch is None:
            return np.empty((states, *shape), dtype=dtype)
        kept = scratch.get(name)
        if kept is None or len(kept) < states:
            kept = scratch[name] = np.empty((states, *shape), dtype=dtype)
        return kept[:states]

    return array


def _sparse_rows(matrix, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = matrix @ rows[j]`` for every row ``j`` (CSR matrix, C-contiguous rows), into ``out``: scipy's own
    product of a vector (``csr_matvec``, as ``matrix @ vector`` calls it: every row's entries summed in their
    order from 0), one state at a time. Not ``matrix @ rows.T`` (``csr_matvecs``, the same sums, ~35 % less per
    state on its own): it takes the states as columns, so the voltages in and the currents out are transposed
    copies (~130 kB a state), and the block's step cost as much or more with it (2026-12-07: 339 against
    ~325 us a step). scipy's public product where its loop is not at hand."""
    try:
        from scipy.sparse._sparsetools import csr_matvec
    except ImportError:  # a scipy without it: the public product
        for j in range(len(rows)):
            out[j] = matrix @ rows[j]
        return
    out.fill(0)  # the loop adds to it
    m, n = matrix.shape
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for j in range(len(rows)):
        csr_matvec(m, n, indptr, indices, data, rows[j], out[j])


def _stacked_rows(matrices: list, n_columns: int):
    """One CSR matrix of the sequences' branch admittances: ``matrices`` (Yf0, Yf1, Yf2, Yt0, Yt1, Yt2) one under
    the other, sequence ``k``'s on columns ``k n_columns ..``. Built from their arrays, not by ``scipy.sparse.bmat``
    (which sorts the entries of a row): every row keeps its entries in their order, so its product sums them as
    the matrix's own product does, to the last digit."""
    from scipy.sparse import csr_matrix

    indptr, indices, data, offset = [np.zeros(1, dtype=np.int64)], [], [], 0
    for k, m in enumerate(matrices):
        indptr.append(m.indptr[1:].astype(np.int64) + offset)
        offset += m.indptr[-1]
        indices.append(m.indices.astype(np.int64) + (k % 3) * n_columns)
        data.append(m.data)
    rows = sum(m.shape[0] for m in matrices)
    return csr_matrix((np.concatenate(data), np.concatenate(indices), np.concatenate(indptr)),
                      shape=(rows, 3 * n_columns))


def _one_state(flows: PowerFlowArrays, j: int) -> PowerFlowArrays:
    """State ``j``'s results out of a block's (views)."""
    return PowerFlowArrays(**{name: getattr(flows, name)[j] for name in PowerFlowArrays.__dataclass_fields__})


def _rank_groups(positions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """A table's rows in groups that each reach a loaded bus at most once: the first row of every bus, then the
    second, ...; adding the groups in turn sums a bus's rows in their order, as ``np.add.at`` does."""
    positions = np.asarray(positions)
    rank = np.zeros(len(positions), dtype=int)
    seen: dict[int, int] = {}
    for r, p in enumerate(positions.tolist()):
        rank[r] = seen.get(p, 0)
        seen[p] = rank[r] + 1
    return [(np.flatnonzero(rank == g), positions[rank == g]) for g in range(int(rank.max()) + 1 if len(rank) else 0)]
