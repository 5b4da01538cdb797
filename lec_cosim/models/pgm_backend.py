"""power-grid-model as a power-flow backend for pandapower networks (balanced and three-phase).

power-grid-model (Alliander's C++ engine) solves the IEEE European LV feeder's three-phase power flow
in a few milliseconds, against ~0.1-0.3 s for pandapower's ``runpp_3ph`` without numba. This module
builds the power-grid-model input *directly* from the pandapower tables that the project's grids use
and returns the results as numpy arrays in pandapower's units and element order, so a grid model can
swap backends without changing what it computes. No HELICS here.

Why not power-grid-model-io's pandapower converter: it drops part of the transformer's zero-sequence
data (pandapower's ``mag0_percent``/``si0_hv_partial``), which moves the three-phase voltages of the
IEEE feeder by 4-6e-4 pu. Here the zero-sequence magnetising branch is mapped explicitly
(``i0_zero_sequence``/``p0_zero_sequence``), and the models agree to ~1e-9 pu (see the tests).

Supported elements (anything else raises :class:`UnsupportedNetwork`, so callers can fall back):

* ``bus``; one ``ext_grid`` (an ideal source: power-grid-model's source impedance, present in every
  sequence, is made negligible with ``sk = 1e15`` VA; pandapower's ext_grid is ideal in the positive
  sequence and its ``s_sc_max_mva`` data enter the zero sequence only — a network that relies on them
  must model the source impedance as an element, as :mod:`lec_cosim.models.ieee_eulv` does);
* ``line`` (``parallel``, ``r/x/c/g`` and their zero-sequence data);
* two-winding ``trafo`` without taps, vector groups ``Dyn``, ``YNyn``, ``Yzn`` ... as listed in
  ``_WINDINGS`` (``pfe_kw``/``i0_percent`` as the magnetising branch; ``mag0_percent`` as its
  zero-sequence counterpart);
* ``load``, ``sgen`` and ``storage`` (balanced, constant power; a storage is a load: positive
  charges) and ``asymmetric_load``/``asymmetric_sgen`` (``type="wye"``, constant power).

The magnetising branch sits in the middle of pandapower's T model (``trafo_model="t"``, its default)
and at the terminals in power-grid-model's pi model; the transformer is given to power-grid-model as
the exact pi equivalent of pandapower's T (:func:`_pi_equivalent`), so the two agree to solver
tolerance with iron losses too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    PowerGridModel,
    WindingType,
    initialize_array,
)
from power_grid_model.errors import PowerGridError

from lec_cosim.models.errors import InfeasibleInput

__all__ = ["NetPowerFlow", "PgmPowerFlow", "PowerFlowArrays", "PowerFlowNotConverged", "PowerGridError",
           "UnsupportedNetwork", "pandapower_results"]

_SK_IDEAL_VA = 1.0e15
_WINDINGS = {  # pandapower vector group -> (winding_from (hv), winding_to (lv)) of power-grid-model
    "Dyn": ("delta", "wye_n"), "Dy": ("delta", "wye"), "Dd": ("delta", "delta"),
    "YNyn": ("wye_n", "wye_n"), "YNy": ("wye_n", "wye"), "Yyn": ("wye", "wye_n"), "Yy": ("wye", "wye"),
    "YNd": ("wye_n", "delta"), "Yd": ("wye", "delta"), "Yzn": ("wye", "zigzag_n"),
}


class UnsupportedNetwork(ValueError):
    """The network holds an element or a setting this backend does not model."""


class PowerFlowNotConverged(InfeasibleInput):
    """A power flow did not converge, whichever the backend. Not a pandapower ``LoadflowNotConverged``: this
    module serves a DSO that runs without importing pandapower (~1.9 s, :mod:`lec_cosim.models.grid_cache`); a
    caller of both catches both."""

    field = "feeder"


@dataclass
class PowerFlowArrays:
    """Results of one power flow in pandapower units, rows in the order of the pandapower tables.

    Balanced results have a phase axis of length 1 (the per-phase values are then the three-phase
    totals, as pandapower's ``res_*`` tables report them); three-phase results have length 3 (a, b, c).
    """

    vm_pu: np.ndarray  # (n_bus, k)
    va_degree: np.ndarray  # (n_bus, k)
    line_p_from_mw: np.ndarray  # (n_line, k)
    line_q_from_mvar: np.ndarray
    line_p_to_mw: np.ndarray
    line_q_to_mvar: np.ndarray
    line_i_from_ka: np.ndarray
    line_i_to_ka: np.ndarray
    trafo_p_hv_mw: np.ndarray  # (n_trafo, k)
    trafo_q_hv_mvar: np.ndarray
    trafo_p_lv_mw: np.ndarray
    trafo_q_lv_mvar: np.ndarray
    trafo_i_hv_ka: np.ndarray
    trafo_i_lv_ka: np.ndarray

    @property
    def line_pl_mw(self) -> np.ndarray:
        return self.line_p_from_mw + self.line_p_to_mw

    @property
    def line_ql_mvar(self) -> np.ndarray:
        return self.line_q_from_mvar + self.line_q_to_mvar

    @property
    def line_i_ka(self) -> np.ndarray:
        """Larger of the two ends' currents, as pandapower's ``i_ka``/``i_a_ka``."""
        return np.maximum(self.line_i_from_ka, self.line_i_to_ka)

    @property
    def trafo_pl_mw(self) -> np.ndarray:
        return self.trafo_p_hv_mw + self.trafo_p_lv_mw

    @property
    def trafo_ql_mvar(self) -> np.ndarray:
        return self.trafo_q_hv_mvar + self.trafo_q_lv_mvar


def _pi_equivalent(uk, ukr, i0, p0):
    """power-grid-model's pi parameters (pu of the rating) equivalent to pandapower's T model.

    pandapower (``trafo_model="t"``, its default) places the magnetising admittance ``ym`` between two
    halves of the short-circuit impedance ``zk``; power-grid-model splits ``ym`` between the two
    terminals. The star-delta transform of the T gives the exact pi: series ``zk + zk^2 / (4 zm)``
    and a terminal shunt ``1 / (zk / 2 + 2 zm)`` on each side (``zm = 1 / ym``), so both models solve
    the same network. Without a magnetising branch the two are the same. Returns ``(uk, pk, i0, p0)``
    with ``pk`` and ``p0`` in pu of the rating.
    """
    xk = np.sqrt(np.maximum(uk ** 2 - ukr ** 2, 0.0))
    zk = ukr + 1j * xk
    b = np.sqrt(np.maximum(i0 ** 2 - p0 ** 2, 0.0))
    ym = p0 - 1j * b  # inductive
    z_series, y_total = zk.astype(complex), np.zeros_like(zk, dtype=complex)
    on = np.abs(ym) > 0
    zm = 1.0 / ym[on]
    z_series[on] = zk[on] + zk[on] ** 2 / (4.0 * zm)
    y_total[on] = 2.0 / (zk[on] / 2.0 + 2.0 * zm)
    return np.abs(z_series), z_series.real, np.abs(y_total), y_total.real


def _column(table, name, default):
    if name in table.columns:
        return table[name].to_numpy(dtype=float)
    return np.full(len(table), float(default))


def _filled(values: np.ndarray, default: float) -> np.ndarray:
    return np.where(np.isnan(values), default, values)


class NetPowerFlow:
    """What the backends that solve a pandapower net share (:class:`PgmPowerFlow`,
    :class:`~lec_cosim.models.opendss_backend.OpenDssPowerFlow`): whether a model still describes its net, and
    the elements and settings neither models (:class:`UnsupportedNetwork`, naming the backend)."""

    backend = "?"
    net = None
    symmetric = True
    _sizes: tuple = ()

    @staticmethod
    def _element_counts(net) -> tuple:
        return tuple(len(net[t]) for t in ("bus", "ext_grid", "line", "trafo", "load", "sgen", "storage",
                                           "asymmetric_load", "asymmetric_sgen"))

    def describes(self, net) -> bool:
        """Whether this model was built from ``net`` with its present elements (powers may differ)."""
        return net is self.net and self._element_counts(net) == self._sizes

    def _check_common(self, net) -> None:
        for table in ("gen", "trafo3w", "impedance", "ward", "xward", "shunt", "switch", "dcline", "motor", "svc",
                      "tcsc", "ssc", "vsc"):
            if table in net and len(net[table]):
                raise UnsupportedNetwork(f"{table}: not modelled by the {self.backend} backend")
        if len(net.ext_grid) != 1:
            raise UnsupportedNetwork("ext_grid: exactly one is supported")
        if self.symmetric and (len(net.asymmetric_load) or len(net.asymmetric_sgen)):
            raise UnsupportedNetwork("asymmetric_load/asymmetric_sgen need the three-phase flow")
        # a balanced load's connection matters in a three-phase flow only (runpp_3ph solves a delta one as delta)
        for table in ("asymmetric_load", "asymmetric_sgen") + (() if self.symmetric else ("load",)):
            if len(net[table]) and "type" in net[table].columns and \
                    not net[table]["type"].fillna("wye").eq("wye").all():
                raise UnsupportedNetwork(f"{table}: only wye connection is supported")
        for column in ("const_z_p_percent", "const_i_p_percent", "const_z_percent", "const_i_percent",
                       "const_z_q_percent", "const_i_q_percent"):
            if column in net.load.columns and net.load[column].fillna(0).abs().gt(0).any():
                raise UnsupportedNetwork(f"load: only constant-power loads are supported ({column})")
        if len(net.trafo):
            tap_pos = net.trafo["tap_pos"] if "tap_pos" in net.trafo.columns else None
            tap_neutral = net.trafo["tap_neutral"] if "tap_neutral" in net.trafo.columns else None
            if tap_pos is not None and tap_neutral is not None:
                moved = (tap_pos.fillna(0) != tap_neutral.fillna(0)) & net.trafo.get(
                    "tap_step_percent", tap_pos * 0).fillna(0).ne(0)
                if moved.any():
                    raise UnsupportedNetwork("trafo: an off-neutral tap position")
        if "parallel" in net.trafo.columns and net.trafo["parallel"].ne(1).any():
            raise UnsupportedNetwork("trafo: parallel units")


class PgmPowerFlow(NetPowerFlow):
    """A pandapower network solved by power-grid-model; build once, :meth:`solve` many times.

    The network's topology, impedances and ratings are read once; the powers of ``load``, ``sgen``,
    ``asymmetric_load`` and ``asymmetric_sgen`` (their ``p_*``/``q_*`` columns, ``scaling`` and
    ``in_service``) are read from ``net`` at every :meth:`solve`, so the caller keeps writing powers
    into the pandapower tables as before.

    Parameters
    ----------
    net : pandapowerNet
    symmetric : bool
        ``True``: balanced (positive-sequence) power flow, like ``pandapower.runpp``; ``False``:
        three-phase, like ``pandapower.runpp_3ph``. A balanced flow refuses asymmetric elements.
    tolerance_pu : float
        Voltage tolerance of the iteration.
    method : {"iterative_current", "newton_raphson"}
        power-grid-model's iteration. The default, iterative current, factorises the admittance matrix
        once per call and iterates the current injections: ~1.0 ms against ~2.5 ms for Newton-Raphson
        on the IEEE feeder's three-phase flow, same solution to ~1e-11 pu. If it does not converge
        (heavily loaded, far from 1 pu), the state is solved again with Newton-Raphson.

    Raises
    ------
    UnsupportedNetwork
        For elements or settings outside the list in the module docstring.
    """

    backend = "power-grid-model"

    def __init__(self, net, *, symmetric: bool, tolerance_pu: float = 1e-10, max_iterations: int = 30,
                 method: str = "iterative_current"):
        if method not in ("iterative_current", "newton_raphson"):
            raise ValueError(f"method must be iterative_current or newton_raphson, not {method!r}")
        self.method = CalculationMethod[method]

        self.net = net
        self.symmetric = bool(symmetric)
        self.tolerance_pu = float(tolerance_pu)
        self.max_iterations = int(max_iterations)
        self._check_supported(net)
        next_id = 0

        def ids(n):
            nonlocal next_id
            out = np.arange(next_id, next_id + n, dtype=np.int32)
            next_id += n
            return out

        bus = net.bus
        self._bus_index = bus.index.to_numpy()
        node = initialize_array(DatasetType.input, ComponentType.node, len(bus))
        node["id"] = ids(len(bus))
        node["u_rated"] = bus["vn_kv"].to_numpy(dtype=float) * 1e3
        node_of = dict(zip(self._bus_index.tolist(), node["id"].tolist()))
        self._bus_vn_kv = bus["vn_kv"].to_numpy(dtype=float)
        self._bus_in_service = bus["in_service"].to_numpy(dtype=bool)

        def nodes(buses):
            return np.array([node_of[int(b)] for b in buses], dtype=np.int32)

        eg = net.ext_grid
        source = initialize_array(DatasetType.input, ComponentType.source, len(eg))
        source["id"] = ids(len(eg))
        source["node"] = nodes(eg["bus"])
        source["status"] = eg["in_service"].to_numpy(dtype=np.int8)
        source["u_ref"] = eg["vm_pu"].to_numpy(dtype=float)
        source["u_ref_angle"] = np.deg2rad(eg["va_degree"].to_numpy(dtype=float))
        source["sk"] = _SK_IDEAL_VA
        source["rx_ratio"] = 0.1
        source["z01_ratio"] = 1.0

        def branches(component, table, from_bus: str, to_bus: str):
            array = initialize_array(DatasetType.input, component, len(table))
            array["id"] = ids(len(table))
            array["from_node"] = nodes(table[from_bus])
            array["to_node"] = nodes(table[to_bus])
            array["from_status"] = array["to_status"] = table["in_service"].to_numpy(dtype=np.int8)
            return array

        ln = net.line
        line = branches(ComponentType.line, ln, "from_bus", "to_bus")
        length, parallel = ln["length_km"].to_numpy(dtype=float), ln["parallel"].to_numpy(dtype=float)
        omega = 2.0 * math.pi * float(net.f_hz)
        for seq, r, x, c, g in (("1", "r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km", "g_us_per_km"),
                                ("0", "r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km", "g0_us_per_km")):
            line[f"r{seq}"] = _column(ln, r, np.nan) * length / parallel
            line[f"x{seq}"] = _column(ln, x, np.nan) * length / parallel
            c_f = _filled(_column(ln, c, 0.0), 0.0) * 1e-9 * length * parallel
            g_s = _filled(_column(ln, g, 0.0), 0.0) * 1e-6 * length * parallel
            line[f"c{seq}"] = c_f
            line[f"tan{seq}"] = np.divide(g_s, omega * c_f, out=np.zeros_like(g_s), where=c_f > 0)
            if np.any((g_s > 0) & (c_f <= 0)):
                raise UnsupportedNetwork("line: a shunt conductance without capacitance")
        if not self.symmetric and np.isnan(line["r0"]).any() | np.isnan(line["x0"]).any():
            raise UnsupportedNetwork("line: zero-sequence data (r0/x0) missing for a three-phase flow")
        line["i_n"] = ln["max_i_ka"].fillna(1e6).to_numpy(dtype=float) * 1e3

        tr = net.trafo
        trafo = branches(ComponentType.transformer, tr, "hv_bus", "lv_bus")
        sn = tr["sn_mva"].to_numpy(dtype=float) * 1e6
        trafo["u1"] = tr["vn_hv_kv"].to_numpy(dtype=float) * 1e3
        trafo["u2"] = tr["vn_lv_kv"].to_numpy(dtype=float) * 1e3
        trafo["sn"] = sn
        uk, pk, i0, p0 = _pi_equivalent(tr["vk_percent"].to_numpy(dtype=float) / 100.0,
                                        tr["vkr_percent"].to_numpy(dtype=float) / 100.0,
                                        tr["i0_percent"].to_numpy(dtype=float) / 100.0,
                                        tr["pfe_kw"].to_numpy(dtype=float) / 1e3 / (sn / 1e6))
        trafo["uk"], trafo["pk"], trafo["i0"], trafo["p0"] = uk, pk * sn, i0, p0 * sn
        groups = tr["vector_group"] if "vector_group" in tr.columns else [None] * len(tr)
        for i, group in enumerate(groups):
            if group is None or (isinstance(group, float) and math.isnan(group)):
                group = "Dyn" if int(round(float(tr["shift_degree"].iloc[i]) / 30.0)) % 2 else "YNyn"
            if group not in _WINDINGS:
                raise UnsupportedNetwork(f"trafo: vector group {group!r}")
            w_from, w_to = _WINDINGS[group]
            trafo["winding_from"][i] = WindingType[w_from]
            trafo["winding_to"][i] = WindingType[w_to]
        shift = tr["shift_degree"].to_numpy(dtype=float)
        clock = np.round(shift / 30.0)
        if np.any(np.abs(clock * 30.0 - shift) > 1e-9):
            raise UnsupportedNetwork("trafo: shift_degree must be a multiple of 30")
        trafo["clock"] = (clock % 12).astype(np.int8)
        trafo["tap_side"] = 0
        for name in ("tap_pos", "tap_min", "tap_max", "tap_nom"):
            trafo[name] = 0
        trafo["tap_size"] = 0.0
        # zero-sequence magnetising branch: pandapower's mag0 is in % of the short-circuit impedance
        if not self.symmetric:
            vk0 = _column(tr, "vk0_percent", np.nan)
            vkr0 = _column(tr, "vkr0_percent", np.nan)
            vk = tr["vk_percent"].to_numpy(dtype=float)
            vkr = tr["vkr_percent"].to_numpy(dtype=float)
            if np.any(np.abs(vk0 - vk) > 1e-9) or np.any(np.abs(vkr0 - vkr) > 1e-9):
                raise UnsupportedNetwork("trafo: zero-sequence short-circuit impedance other than the positive "
                                         "sequence's (vk0_percent/vkr0_percent)")
            mag0 = _column(tr, "mag0_percent", np.nan)
            mag0_rx = _filled(_column(tr, "mag0_rx", 0.0), 0.0)
            if np.any(np.isnan(mag0)):
                raise UnsupportedNetwork("trafo: mag0_percent missing for a three-phase flow")
            # |z_mag0| = mag0/100 * vk/100 (pu of the rating): i0_zs = 1/|z_mag0|, p0_zs from its resistance
            z_mag0 = mag0 / 100.0 * vk / 100.0
            trafo["i0_zero_sequence"] = 1.0 / z_mag0
            r_part = mag0_rx / np.sqrt(1.0 + mag0_rx ** 2)
            trafo["p0_zero_sequence"] = r_part / z_mag0 * sn
            trafo["i0_zero_sequence"] = np.where(z_mag0 > 1e6, 0.0, trafo["i0_zero_sequence"])
            trafo["p0_zero_sequence"] = np.where(z_mag0 > 1e6, 0.0, trafo["p0_zero_sequence"])
        else:
            trafo["i0_zero_sequence"] = trafo["i0"]
            trafo["p0_zero_sequence"] = trafo["p0"]
        for side in ("from", "to"):
            trafo[f"r_grounding_{side}"] = 0.0
            trafo[f"x_grounding_{side}"] = 0.0
        self._trafo_hv_bus = tr["hv_bus"].to_numpy(dtype=int)
        self._trafo_lv_bus = tr["lv_bus"].to_numpy(dtype=int)

        data = {ComponentType.node: node, ComponentType.source: source, ComponentType.line: line,
                ComponentType.transformer: trafo}
        # one input and one update array per power-grid-model component; each pandapower table is a
        # slice of its component's arrays ("load" and "storage" are both sym_load)
        tables_of: dict = {}
        for table_name, component in (
                ("load", ComponentType.sym_load), ("sgen", ComponentType.sym_gen), ("storage", ComponentType.sym_load),
                ("asymmetric_load", ComponentType.asym_load), ("asymmetric_sgen", ComponentType.asym_gen)):
            if len(net[table_name]):
                tables_of.setdefault(component, []).append(table_name)
        self._updates = {}
        self._injections = []  # (table name, update array view)
        for component, table_names in tables_of.items():
            n = sum(len(net[t]) for t in table_names)
            array = initialize_array(DatasetType.input, component, n)
            array["id"] = ids(n)
            array["node"] = nodes(np.concatenate([net[t]["bus"].to_numpy() for t in table_names]))
            array["type"] = 0  # constant power
            update = initialize_array(DatasetType.update, component, n)
            update["id"] = array["id"]
            first = 0
            for t in table_names:
                self._injections.append((t, update[first:first + len(net[t])]))
                first += len(net[t])
            data[component] = array
            self._updates[component] = update
        self._write_injections()
        for component, update in self._updates.items():
            for name in ("status", "p_specified", "q_specified"):
                data[component][name] = update[name]
        self._model = PowerGridModel(data)
        self._sizes = self._element_counts(net)
        self._outputs = [ComponentType.node, ComponentType.line, ComponentType.transformer]

    def _check_supported(self, net) -> None:
        self._check_common(net)

    # --- one solve ---------------------------------------------------------------------------
    def _write_injections(self, powers: dict | None = None) -> None:
        powers = powers or {}
        for table_name, array in self._injections:
            table = self.net[table_name]
            # pandapower's sgen and power-grid-model's gen are both generation-positive, the loads of
            # both consumption-positive: no sign change for either kind
            array["status"] = table["in_service"].to_numpy(dtype=np.int8)
            scaling = table["scaling"].to_numpy(dtype=float) if "scaling" in table.columns else np.ones(len(table))
            if table_name in powers:
                p, q = (np.asarray(v, dtype=float) for v in powers[table_name])
            elif table_name in ("load", "sgen", "storage"):
                p, q = table["p_mw"].to_numpy(dtype=float), table["q_mvar"].to_numpy(dtype=float)
            else:
                p = np.column_stack([table[f"p_{ph}_mw"].to_numpy(dtype=float) for ph in "abc"])
                q = np.column_stack([table[f"q_{ph}_mvar"].to_numpy(dtype=float) for ph in "abc"])
            s = scaling if p.ndim == 1 else scaling[:, None]
            # sym_load/sym_gen take the three-phase total in both calculations, asym_* one value per phase
            array["p_specified"] = p * s * 1e6
            array["q_specified"] = q * s * 1e6

    def solve(self, powers: dict | None = None) -> PowerFlowArrays:
        """Run the power flow on the present injections and return the results.

        Parameters
        ----------
        powers : dict, optional
            ``{table: (p_mw, q_mvar)}`` for some of ``load``, ``sgen`` (shape (n,)), ``asymmetric_load``,
            ``asymmetric_sgen`` (shape (n, 3)), in the rows of ``net``'s tables, before ``scaling``.
            Tables not given are read from ``net``.

        Raises
        ------
        power_grid_model.errors.PowerGridError
            If the iteration does not converge (``IterationDiverge``) or the input is invalid.
        """
        self._write_injections(powers)
        if self._updates:
            self._model.update(update_data=self._updates)
        return self._arrays(self._calculate())

    def _calculate(self, update_data=None):
        options = dict(symmetric=self.symmetric, error_tolerance=self.tolerance_pu,
                       output_component_types=self._outputs, update_data=update_data)
        if self.method != CalculationMethod.newton_raphson:
            try:
                return self._model.calculate_power_flow(calculation_method=self.method,
                                                        max_iterations=3 * self.max_iterations, **options)
            except PowerGridError:
                pass  # Newton-Raphson decides: it converges where iterative current may not, or fails for good
        return self._model.calculate_power_flow(calculation_method=CalculationMethod.newton_raphson,
                                                max_iterations=self.max_iterations, **options)

    def solve_batch(self, powers: list[dict]) -> list[PowerFlowArrays]:
        """:meth:`solve` for several states at once (one power-grid-model batch: less overhead per state).

        Parameters
        ----------
        powers : list of dict
            One ``powers`` mapping of :meth:`solve` per state.

        Raises
        ------
        power_grid_model.errors.PowerGridError
            If a state does not converge.
        """
        batch = {component: np.empty((len(powers), len(update)), dtype=update.dtype)
                 for component, update in self._updates.items()}
        for b, state in enumerate(powers):
            self._write_injections(state)
            for component, update in self._updates.items():
                batch[component][b] = update
        out = self._calculate(batch)
        return [self._arrays({c: values[b] for c, values in out.items()}) for b in range(len(powers))]

    def _arrays(self, out) -> PowerFlowArrays:
        # a net without transformers (or lines) has no output of that component: an empty table, as pandapower's
        empty = np.zeros(0, dtype=[(name, float) for name in ("p_from", "q_from", "p_to", "q_to", "i_from", "i_to")])
        node = out[ComponentType.node]
        line, trafo = out.get(ComponentType.line, empty), out.get(ComponentType.transformer, empty)

        phases = 1 if self.symmetric else 3

        def k(values):
            values = np.asarray(values, dtype=float)
            return values.reshape(len(values), -1) if len(values) else values.reshape(0, phases)

        return PowerFlowArrays(
            vm_pu=k(node["u_pu"]), va_degree=np.rad2deg(k(node["u_angle"])),
            line_p_from_mw=k(line["p_from"]) / 1e6, line_q_from_mvar=k(line["q_from"]) / 1e6,
            line_p_to_mw=k(line["p_to"]) / 1e6, line_q_to_mvar=k(line["q_to"]) / 1e6,
            line_i_from_ka=k(line["i_from"]) / 1e3, line_i_to_ka=k(line["i_to"]) / 1e3,
            trafo_p_hv_mw=k(trafo["p_from"]) / 1e6, trafo_q_hv_mvar=k(trafo["q_from"]) / 1e6,
            trafo_p_lv_mw=k(trafo["p_to"]) / 1e6, trafo_q_lv_mvar=k(trafo["q_to"]) / 1e6,
            trafo_i_hv_ka=k(trafo["i_from"]) / 1e3, trafo_i_lv_ka=k(trafo["i_to"]) / 1e3,
        )


def pandapower_results(net, *, symmetric: bool) -> PowerFlowArrays:
    """The results of pandapower's last ``runpp`` (``symmetric``) or ``runpp_3ph`` as :class:`PowerFlowArrays`."""
    if symmetric:
        rb, rl, rt = net.res_bus, net.res_line, net.res_trafo
        phases = [""]
        bus_cols = (["vm_pu"], ["va_degree"])
    else:
        rb, rl, rt = net.res_bus_3ph, net.res_line_3ph, net.res_trafo_3ph
        phases = ["_a", "_b", "_c"]
        bus_cols = ([f"vm{p}_pu" for p in phases], [f"va{p}_degree" for p in phases])

    def cols(table, pattern):
        return table[[pattern.format(p=p) for p in phases]].to_numpy(dtype=float)

    return PowerFlowArrays(
        vm_pu=rb[bus_cols[0]].to_numpy(dtype=float), va_degree=rb[bus_cols[1]].to_numpy(dtype=float),
        line_p_from_mw=cols(rl, "p{p}_from_mw"), line_q_from_mvar=cols(rl, "q{p}_from_mvar"),
        line_p_to_mw=cols(rl, "p{p}_to_mw"), line_q_to_mvar=cols(rl, "q{p}_to_mvar"),
        line_i_from_ka=cols(rl, "i{p}_from_ka"), line_i_to_ka=cols(rl, "i{p}_to_ka"),
        trafo_p_hv_mw=cols(rt, "p{p}_hv_mw"), trafo_q_hv_mvar=cols(rt, "q{p}_hv_mvar"),
        trafo_p_lv_mw=cols(rt, "p{p}_lv_mw"), trafo_q_lv_mvar=cols(rt, "q{p}_lv_mvar"),
        trafo_i_hv_ka=cols(rt, "i{p}_hv_ka"), trafo_i_lv_ka=cols(rt, "i{p}_lv_ka"),
    )
