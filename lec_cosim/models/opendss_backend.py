"""OpenDSS (through dss-python) as a power-flow backend for pandapower networks (balanced and three-phase).

A third engine beside pandapower and power-grid-model (:mod:`lec_cosim.models.pgm_backend`): OpenDSS is
the engine of the IEEE feeders' reference solutions, so a study can be re-run on it without leaving the
project's pandapower nets. :class:`OpenDssPowerFlow` has the interface of
:class:`~lec_cosim.models.pgm_backend.PgmPowerFlow`: built once from a pandapower net, :meth:`solve`
returns :class:`~lec_cosim.models.pgm_backend.PowerFlowArrays` in pandapower's units, element order and
phase convention, and it refuses what it cannot model with the same :class:`UnsupportedNetwork`. Each
instance builds its circuit with DSS text commands in a private engine context (``DSS.NewContext()``), so
two instances never share state; a solve writes the powers through the ``Loads`` interface by index
(only those that changed), no text command per step, and reads the results with the bulk getters
(``AllBusVolts``, the PD elements' ``AllPowers``/``AllCurrents``). No HELICS here.

Supported elements (anything else raises :class:`UnsupportedNetwork`):

* ``bus`` (in service, each connected to the ext_grid by in-service branches); one ``ext_grid`` -> the
  circuit's ``Vsource`` (``basekV`` = the bus's ``vn_kv``, ``pu`` = ``vm_pu``, ``angle`` = ``va_degree``)
  with ``MVAsc3 = MVAsc1 = 1e9`` (the 1e15 VA of the power-grid-model backend's source): ideal, like
  pandapower's ext_grid in the positive sequence; our nets model source impedances as lines;
* ``line`` -> a 3-phase ``Line`` from the sequence data R1/X1/R0/X0 (ohm/km) and C1/C0 (nF/km, OpenDSS's
  unit too), length in km, ``parallel`` folded into the per-km data; ``g_us_per_km``/``g0_us_per_km``
  must be zero. A balanced flow takes missing zero-sequence data from the positive sequence (no
  zero-sequence current flows);
* two-winding ``trafo`` -> a ``Transformer`` with the connections of the vector group (the
  power-grid-model backend's ``_WINDINGS``; derived from ``shift_degree`` when ``vector_group`` is
  missing; a clock suffix as in pandapower's own nets, ``"Dyn5"``, is read and must match
  ``shift_degree``), ``kVs``, ``kVAs``, ``%Rs`` half each, ``XHL``, no taps off neutral. The magnetising
  branch (``pfe_kw``/``i0_percent``) is *not* given as OpenDSS's ``%noloadloss``/``%imag``: OpenDSS puts
  that admittance at one terminal (seen in its ``Yprim``: a Gamma circuit), pandapower in the middle of
  the leakage impedance (T), which no Gamma reproduces (measured: 8e-5 pu apart on the community-battery
  grid's 1.6 MVA unit). The transformer gets the series impedance of the exact pi equivalent of
  pandapower's T (:func:`~lec_cosim.models.pgm_backend._pi_equivalent`, as power-grid-model gets it) and
  the two terminal shunts are delta-connected ``Reactor`` s, counted in the transformer's terminal powers
  and currents as pandapower does (delta: no zero-sequence path, i.e. an infinite zero-sequence
  magnetising impedance). A balanced flow takes every vector group but zigzag (``Yzn``: OpenDSS has no
  zigzag winding), all wyes grounded (no neutral current flows). A three-phase flow takes ``Dyn`` and
  ``YNyn`` only: behind a delta or an ungrounded wye the LV side's zero-sequence voltage is held by the
  phase-to-ground loads alone, and OpenDSS's iteration diverged for each such group tried (YNd, Dd, Yyn,
  Dy, YNy, Yd, Yy on the unbalanced test feeder); it also refuses zero-sequence data other than
  OpenDSS's own model (``vk0 = vk``, ``vkr0 = vkr``, ``mag0_percent`` >= 1e8; the IEEE feeder has 1e9);
* ``load``, ``sgen``, ``storage`` (balanced, constant power) -> a 3-phase wye ``Load`` each (a sgen with
  negative kW/kvar, a storage as a load: positive charges), which OpenDSS splits equally over the phases
  as ``runpp_3ph`` does; ``asymmetric_load``/``asymmetric_sgen`` (``type="wye"``) -> three single-phase
  ``Load`` s, phase to ground (``bus.1``/``.2``/``.3``, neutral on node 0), ``kV = vn_kv / sqrt 3``. All
  ``model=1`` (constant PQ) with ``vminpu = vlowpu = 0`` and ``vmaxpu = 1000``, so OpenDSS never
  switches them to constant impedance.

Phase shifts. OpenDSS shifts a delta-wye transformer by +-30 degrees only (``LeadLag``). Every other odd
clock number is one of those plus 120 or 240 degrees, which is a cyclic relabelling of the LV phases:
the LV winding's terminals go to the LV bus nodes in rotated order (Dyn5 = Dyn1 with ``lv.3.1.2``). That
is exact in every sequence and at any unbalance. Solving Dyn1 and turning the result angles of the
buses behind the transformer by 120 degrees instead is not: it turns the negative sequence the wrong
way, and which HV phases feed an LV phase changes (on the unbalanced test feeder, behind an ideal
source, the LV results came out the same, but the HV phase powers permuted: 57/25/28 kW for 28/57/25).
The even clock numbers 2, 6, 10 of wye-wye and delta-delta units (a polarity reversal, 180 degrees,
plus a relabelling) are solved without the reversal and the angles of the buses behind the transformer
are turned by 180 degrees (a walk from the ext_grid through lines and transformers): exact in a radial
net, where those buses' voltages and currents only change sign; a mesh that reaches a bus with two
different corrections is refused.

Convergence. OpenDSS starts each solve from the last solution, which is what makes it fast in a time
series. After a failed solve it starts the next from the no-load flow (``init``): from a diverged state
it converged, on the IEEE feeder, to another solution of the constant-power equations (phase voltages
up to 0.75 pu off, every load at its power).

Validation (2026-12-06, this 2-core machine, ``tests/test_opendss_backend.py``), largest differences to
:class:`~lec_cosim.models.pgm_backend.PgmPowerFlow`, both at tolerance 1e-10:

==================================================  ==========  ==========  ============  ==============
net, flow                                            vm (pu)     va (deg)    P, Q (MW)     I
==================================================  ==========  ==========  ============  ==============
IEEE European LV feeder, three-phase, minute 566     1.7e-10     1.9e-8      1.2e-11       rel. 1.6e-8
IEEE European LV feeder, three-phase, minute 1       6.9e-11     1.9e-8      1.2e-11       rel. 4.1e-8
community-battery grid, balanced, 20 random states   3.9e-12     2.0e-8      9e-11         9e-11 kA
Dyn5 / Dyn11 / Dyn1 / YNyn6 LV feeder, three-phase   9e-10       4.6e-8      9e-10         2e-10 kA
==================================================  ==========  ==========  ============  ==============

(powers per phase; currents of the IEEE lines that carry more than 1 mA; the unbalanced LV feeder has
iron losses, line capacitance, unbalanced loads and generation and a balanced load, sgen and storage).
The ~2e-8 deg is OpenDSS's: its source bus is that far off ``va_degree`` at no load too. Against
pandapower itself: ``runpp_3ph`` on the IEEE feeder 6.3e-9 pu at minute 566 (2.2e-8 at minute 1; pgm
is as far, it is pandapower's convergence), ``runpp`` on the community-battery grid 4.2e-10 pu,
``runpp_3ph`` on the Dyn5 feeder without its balanced sgen and storage 6.4e-7 pu (with them pandapower
is 3e-3 pu off both backends). pandapower's own LV nets (``panda_four_load_branch``, the Kerber and
Dickert nets: ``"Dyn5"``, iron losses, 3 to 294 buses) agree with pgm to 3.4e-11 pu (balanced).

Speed on the IEEE feeder, three-phase, powers given as ``powers``, minimum of 5 x 60 solves (the
machine was shared, load average 5-8): 1.2-1.3 ms per :meth:`solve` for consecutive minutes around the
peak (a few loads change; ~7 OpenDSS iterations) against 1.3 ms for ``PgmPowerFlow``; 1.5-1.7 ms
against 1.5 ms when all 55 loads change; 0.9 ms against 1.5 ms when none does. Building the circuit
takes ~50 ms (~4 ms for ``PgmPowerFlow``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from dss import DSS, DSSException

from lec_cosim.models.pgm_backend import (
    _WINDINGS,
    NetPowerFlow,
    PowerFlowArrays,
    PowerFlowNotConverged,
    UnsupportedNetwork,
    _column,
    _filled,
    _pi_equivalent,
)

__all__ = ["OpenDssPowerFlow", "PowerFlowNotConverged", "UnsupportedNetwork"]

_MVASC_IDEAL = 1.0e9  # MVA: the 1e15 VA of the power-grid-model backend's ideal source
_VMAX_PU = 1000.0  # a load's vmaxpu: above it OpenDSS would model it as constant impedance
# mag0_percent (% of the short-circuit impedance) from which the zero-sequence magnetising branch counts as
# absent, as in OpenDSS: its admittance is then < 1e-6 of the leakage admittance (the IEEE feeder's: 1e9 %)
_MAG0_INFINITE_PERCENT = 1.0e8
_LOAD_OPTIONS = f"model=1 vminpu=0 vlowpu=0 vmaxpu={_VMAX_PU:g}"


def _num(x: float) -> str:
    """A float for a DSS command, every digit kept (repr round-trips)."""
    return repr(float(x))


def _winding_plan(group: str, shift_degree: float, symmetric: bool) -> dict:
    """OpenDSS connections, node order and residual angle of a pandapower two-winding transformer.

    Returns ``conns`` (hv, lv), ``leadlag``, ``lv_perm`` (the LV terminal conductor on each LV bus phase
    a, b, c; 0-based) and ``residual_degree`` (the part of the pandapower shift not modelled by OpenDSS,
    0 or 180: LV angles are corrected by ``-residual``). Every wye is grounded: in a balanced flow no
    neutral current flows, and a three-phase flow refuses ungrounded ones.
    """
    letters = group.rstrip("0123456789")
    if letters not in _WINDINGS:
        raise UnsupportedNetwork(f"trafo: vector group {group!r}")
    if letters != group and (int(group[len(letters):]) - round(shift_degree / 30.0)) % 12:
        # pandapower's own nets write the clock number ("Dyn5"): it must be the shift's
        raise UnsupportedNetwork(f"trafo: vector group {group!r} with shift_degree {shift_degree:g}")
    hv, lv = _WINDINGS[letters]
    if "zigzag" in hv + lv:
        raise UnsupportedNetwork(f"trafo: vector group {group!r} (OpenDSS's Transformer has no zigzag winding)")
    if not symmetric and (lv != "wye_n" or hv == "wye"):
        # the LV side's zero-sequence voltage would be held by the wye-connected loads alone (a delta or an
        # ungrounded wye on either side cuts the path to ground): OpenDSS's iteration diverges there
        raise UnsupportedNetwork(f"trafo: vector group {group!r} in a three-phase flow (only Dyn and YNyn: "
                                 "an LV side without a grounded neutral)")
    clock = round(shift_degree / 30.0)
    if abs(clock * 30.0 - shift_degree) > 1e-9:
        raise UnsupportedNetwork("trafo: shift_degree must be a multiple of 30")
    clock %= 12
    deltas = (hv == "delta") + (lv == "delta")
    if (clock % 2 == 1) != (deltas == 1):
        raise UnsupportedNetwork(f"trafo: vector group {group!r} cannot shift by {shift_degree:g} degrees")
    # clock = base + 4 m: base is what OpenDSS's connection does, 4 m (m x 120 deg) a relabelling
    if clock % 2:
        base, leadlag, residual = (1, "lag", 0.0) if clock % 4 == 1 else (-1, "lead", 0.0)
    else:
        base, leadlag, residual = (0, "lag", 0.0) if clock % 4 == 0 else (6, "lag", 180.0)
    m = ((clock - base) // 4) % 3
    # the LV bus phase a gets the terminal that lags by m x 120 deg in the positive sequence: conductor m
    lv_perm = [(k + m) % 3 for k in range(3)]
    return {
        "conns": ("delta" if hv == "delta" else "wye", "delta" if lv == "delta" else "wye"),
        "leadlag": leadlag, "lv_perm": lv_perm, "residual_degree": residual,
    }


class OpenDssPowerFlow(NetPowerFlow):
    """A pandapower network solved by OpenDSS; build once, :meth:`solve` many times.

    The interface of :class:`~lec_cosim.models.pgm_backend.PgmPowerFlow`: topology, impedances and
    ratings are read once; the powers of ``load``, ``sgen``, ``storage``, ``asymmetric_load`` and
    ``asymmetric_sgen`` (``p_*``/``q_*``, ``scaling``, ``in_service``) at every :meth:`solve`, unless
    given as ``powers``.

    Parameters
    ----------
    net : pandapowerNet
    symmetric : bool
        ``True``: balanced power flow, like ``pandapower.runpp`` (solved as a balanced three-phase
        circuit; results are phase a's voltages and currents and the three phases' total powers);
        ``False``: three-phase, like ``pandapower.runpp_3ph``.
    tolerance_pu : float
        OpenDSS's ``Solution.Tolerance``: the largest change of a node voltage (pu) between two
        iterations at which it stops.
    max_iterations : int
        OpenDSS's ``Solution.MaxIterations``. Its iteration (fixed point on the current injections,
        one factorisation per solve) needs ~10 at 1e-10 on the IEEE feeder.

    Raises
    ------
    UnsupportedNetwork
        For elements or settings outside the list in the module docstring.
    """

    backend = "OpenDSS"

    def __init__(self, net, *, symmetric: bool, tolerance_pu: float = 1e-10, max_iterations: int = 100):
        self.net = net
        self.symmetric = bool(symmetric)
        self.tolerance_pu = float(tolerance_pu)
        self.max_iterations = int(max_iterations)
        self._check_supported(net)

        bus = net.bus
        self._bus_index = bus.index.to_numpy()
        self._bus_vn_kv = bus["vn_kv"].to_numpy(dtype=float)
        eg = net.ext_grid.iloc[0]
        eg_bus = int(eg["bus"])
        vn_of = dict(zip(self._bus_index.tolist(), self._bus_vn_kv.tolist()))

        cmds = [
            "clear",
            f"set DefaultBaseFrequency={_num(net.f_hz)}",
            f"new circuit.lec bus1=b{eg_bus} phases=3 basekV={_num(vn_of[eg_bus])} pu={_num(eg['vm_pu'])} "
            f"angle={_num(eg['va_degree'])} MVAsc3={_MVASC_IDEAL:g} MVAsc1={_MVASC_IDEAL:g} x1r1=10 x0r0=10",
        ]

        # lines: pandapower's pi model from sequence data is OpenDSS's Line from R1..C0 (OpenDSS builds the
        # phase matrices Zs = (2 Z1 + Z0) / 3, Zm = (Z0 - Z1) / 3 from them)
        ln = net.line
        par = ln["parallel"].to_numpy(dtype=float)
        r1, x1 = ln["r_ohm_per_km"].to_numpy(dtype=float) / par, ln["x_ohm_per_km"].to_numpy(dtype=float) / par
        c1 = _filled(_column(ln, "c_nf_per_km", 0.0), 0.0) * par
        r0, x0 = _column(ln, "r0_ohm_per_km", np.nan) / par, _column(ln, "x0_ohm_per_km", np.nan) / par
        c0 = _column(ln, "c0_nf_per_km", np.nan) * par
        if self.symmetric:  # no zero-sequence current in a balanced flow: any zero-sequence data will do
            r0, x0, c0 = np.where(np.isnan(r0), r1, r0), np.where(np.isnan(x0), x1, x0), np.where(np.isnan(c0), c1, c0)
        elif np.isnan(r0).any() or np.isnan(x0).any():
            raise UnsupportedNetwork("line: zero-sequence data (r0/x0) missing for a three-phase flow")
        c0 = _filled(c0, 0.0)
        length = ln["length_km"].to_numpy(dtype=float)
        line_on = ln["in_service"].to_numpy(dtype=bool)
        self._line_from = ln["from_bus"].to_numpy(dtype=int)
        self._line_to = ln["to_bus"].to_numpy(dtype=int)
        for i in range(len(ln)):
            cmds.append(
                f"new line.l{i} phases=3 bus1=b{self._line_from[i]}.1.2.3 bus2=b{self._line_to[i]}.1.2.3 "
                f"length={_num(length[i])} units=none r1={_num(r1[i])} x1={_num(x1[i])} r0={_num(r0[i])} "
                f"x0={_num(x0[i])} c1={_num(c1[i])} c0={_num(c0[i])} enabled={'yes' if line_on[i] else 'no'}")

        cmds += self._transformers(net)

        # loads: one OpenDSS Load per balanced row, three (a, b, c) per asymmetric row, in table order
        self._injections = []  # (table, first OpenDSS load, rows, per phase, sign)
        n_loads = 0
        for table_name, sign in (("load", 1.0), ("sgen", -1.0), ("storage", 1.0), ("asymmetric_load", 1.0),
                                 ("asymmetric_sgen", -1.0)):
            table = net[table_name]
            per_phase = table_name.startswith("asymmetric")
            self._injections.append((table_name, n_loads, len(table), per_phase, sign))
            for i, b in enumerate(table["bus"].to_numpy(dtype=int)):
                vn = vn_of[int(b)]
                if per_phase:
                    for k, ph in enumerate("abc"):
                        cmds.append(f"new load.{table_name}{i}{ph} phases=1 conn=wye bus1=b{b}.{k + 1} "
                                    f"kV={_num(vn / math.sqrt(3.0))} kW=0 kvar=0 {_LOAD_OPTIONS}")
                else:
                    cmds.append(f"new load.{table_name}{i} phases=3 conn=wye bus1=b{b}.1.2.3 kV={_num(vn)} "
                                f"kW=0 kvar=0 {_LOAD_OPTIONS}")
            n_loads += len(table) * (3 if per_phase else 1)
        self._n_loads = n_loads

        # voltage bases only matter for OpenDSS's own pu values (results here are pu of each bus's vn_kv)
        bases = sorted({round(v, 9) for v in self._bus_vn_kv})
        cmds += [f"set voltagebases=[{', '.join(_num(v) for v in bases)}]", "calcvoltagebases",
                 "set mode=snap controlmode=off loadmult=1"]

        self._dss = DSS.NewContext()
        for flag in ("AllowChangeDir", "AllowForms", "AllowEditor"):  # no dialogs, no chdir in the process
            if hasattr(self._dss, flag):
                setattr(self._dss, flag, False)
        try:
            self._dss.Text.Commands(cmds)
        except DSSException as exc:  # a value OpenDSS rejects: report it as a network we cannot model
            raise UnsupportedNetwork(f"OpenDSS refused the circuit: {exc}") from None
        self._circuit = self._dss.ActiveCircuit
        self._solution = self._circuit.Solution
        self._solution.Tolerance = self.tolerance_pu
        self._solution.MaxIterations = self.max_iterations
        self._loads = self._circuit.Loads
        if self._loads.Count != n_loads:
            raise RuntimeError(f"OpenDSS holds {self._loads.Count} loads, {n_loads} were created")
        self._kw = np.full(n_loads, np.nan)  # the values in OpenDSS: only changed ones are written
        self._kvar = np.full(n_loads, np.nan)

        self._angle_correction = self._walk(net, eg_bus)
        self._map_results()
        self._sizes = self._element_counts(net)

    # --- building ----------------------------------------------------------------------------
    def _transformers(self, net) -> list[str]:
        tr = net.trafo
        cmds = []
        self._trafo_hv_bus = tr["hv_bus"].to_numpy(dtype=int)
        self._trafo_lv_bus = tr["lv_bus"].to_numpy(dtype=int)
        self._trafo_residual = np.zeros(len(tr))
        self._trafo_lv_perm = np.tile(np.arange(3), (len(tr), 1))
        if not len(tr):
            return cmds
        sn = tr["sn_mva"].to_numpy(dtype=float)
        vk = tr["vk_percent"].to_numpy(dtype=float)
        vkr = tr["vkr_percent"].to_numpy(dtype=float)
        uk, pk, i0, p0 = _pi_equivalent(vk / 100.0, vkr / 100.0, tr["i0_percent"].to_numpy(dtype=float) / 100.0,
                                        tr["pfe_kw"].to_numpy(dtype=float) / 1e3 / sn)
        xk = np.sqrt(np.maximum(uk ** 2 - pk ** 2, 0.0))
        # magnetising: pi shunt y/2 per terminal (pu of the rating), inductive: g - j b
        g_side = p0 / 2.0
        b_side = np.sqrt(np.maximum(i0 ** 2 - p0 ** 2, 0.0)) / 2.0
        if not self.symmetric:
            vk0, vkr0 = _column(tr, "vk0_percent", np.nan), _column(tr, "vkr0_percent", np.nan)
            if np.any(~(np.abs(vk0 - vk) <= 1e-9)) or np.any(~(np.abs(vkr0 - vkr) <= 1e-9)):
                raise UnsupportedNetwork("trafo: zero-sequence short-circuit impedance other than the positive "
                                         "sequence's (vk0_percent/vkr0_percent)")
            mag0 = _column(tr, "mag0_percent", np.nan)
            if np.any(~(mag0 >= _MAG0_INFINITE_PERCENT)):
                raise UnsupportedNetwork("trafo: a finite zero-sequence magnetising impedance (mag0_percent); "
                                         "OpenDSS's transformer has none")
        groups = tr["vector_group"] if "vector_group" in tr.columns else [None] * len(tr)
        shift = tr["shift_degree"].to_numpy(dtype=float)
        on = tr["in_service"].to_numpy(dtype=bool)
        vn_hv, vn_lv = tr["vn_hv_kv"].to_numpy(dtype=float), tr["vn_lv_kv"].to_numpy(dtype=float)
        for i, group in enumerate(groups):
            if group is None or (isinstance(group, float) and math.isnan(group)):
                group = "Dyn" if int(round(shift[i] / 30.0)) % 2 else "YNyn"
            plan = _winding_plan(group, shift[i], self.symmetric)
            self._trafo_residual[i] = plan["residual_degree"]
            self._trafo_lv_perm[i] = plan["lv_perm"]
            lv_nodes = [plan["lv_perm"].index(c) + 1 for c in range(3)]  # terminal conductor c -> LV bus node
            # a grounded wye's neutral conductor on node 0 (ground); a delta has none
            nodes = [f"b{self._trafo_hv_bus[i]}.1.2.3" + (".0" if plan["conns"][0] == "wye" else ""),
                     f"b{self._trafo_lv_bus[i]}." + ".".join(map(str, lv_nodes))
                     + (".0" if plan["conns"][1] == "wye" else "")]
            enabled = "yes" if on[i] else "no"
            cmds.append(
                f"new transformer.t{i} phases=3 windings=2 buses=[{nodes[0]}, {nodes[1]}] "
                f"conns=[{plan['conns'][0]}, {plan['conns'][1]}] kVs=[{_num(vn_hv[i])}, {_num(vn_lv[i])}] "
                f"kVAs=[{_num(sn[i] * 1e3)}, {_num(sn[i] * 1e3)}] %Rs=[{_num(pk[i] * 50.0)}, {_num(pk[i] * 50.0)}] "
                f"XHL={_num(xk[i] * 100.0)} %noloadloss=0 %imag=0 leadlag={plan['leadlag']} ppm_antifloat=0 "
                f"enabled={enabled}")
            y2 = g_side[i] ** 2 + b_side[i] ** 2
            if y2 > 0:
                for side, (bus, kv) in enumerate(((self._trafo_hv_bus[i], vn_hv[i]), (self._trafo_lv_bus[i],
                                                                                       vn_lv[i]))):
                    # delta branch Z = 3 / Y_star, Y_star = (g - j b) sn / kV^2 siemens per phase
                    z = 3.0 * kv ** 2 / sn[i] / y2
                    cmds.append(f"new reactor.m{i}{'hl'[side]} phases=3 bus1=b{bus}.1.2.3 conn=delta "
                                f"R={_num(z * g_side[i])} X={_num(z * b_side[i])} enabled={enabled}")
        return cmds

    def _walk(self, net, eg_bus: int) -> np.ndarray:
        """Angle correction (degrees) of each bus: minus the residual shifts on its path from the ext_grid.

        Also refuses in-service buses that no in-service branch connects to the ext_grid (OpenDSS drops
        isolated nodes) and meshes whose transformers' residual shifts disagree.
        """
        adjacent: dict = {int(b): [] for b in self._bus_index}
        for f, t, on in zip(self._line_from, self._line_to, net.line["in_service"].to_numpy(dtype=bool)):
            if on:
                adjacent[int(f)].append((int(t), 0.0))
                adjacent[int(t)].append((int(f), 0.0))
        for hv, lv, res, on in zip(self._trafo_hv_bus, self._trafo_lv_bus, self._trafo_residual,
                                   net.trafo["in_service"].to_numpy(dtype=bool)):
            if on:
                adjacent[int(hv)].append((int(lv), -res))
                adjacent[int(lv)].append((int(hv), res))
        correction = {eg_bus: 0.0}
        queue = deque([eg_bus])
        while queue:
            b = queue.popleft()
            for other, delta in adjacent[b]:
                angle = correction[b] + delta
                if other not in correction:
                    correction[other] = angle
                    queue.append(other)
                elif abs((correction[other] - angle + 180.0) % 360.0 - 180.0) > 1e-9:
                    raise UnsupportedNetwork("trafo: a mesh through a transformer whose phase shift OpenDSS "
                                             "does not model (clock 2, 6 or 10)")
        missing = [b for b in adjacent if b not in correction]
        if missing:
            raise UnsupportedNetwork(f"bus: {len(missing)} bus(es) not connected to the ext_grid, e.g. {missing[0]}")
        return np.array([correction[int(b)] for b in self._bus_index])

    def _map_results(self) -> None:
        """Positions of each bus phase in ``AllBusVolts`` and each branch end in the PD elements' arrays."""
        node_pos = {name: k for k, name in enumerate(self._circuit.AllNodeNames)}
        k = 1 if self.symmetric else 3  # a balanced flow reads phase a (all three alike)
        self._node = np.array([[node_pos[f"b{b}.{ph + 1}"] for ph in range(k)] for b in self._bus_index],
                              dtype=np.intp).reshape(len(self._bus_index), k)
        self._v_base = (self._bus_vn_kv * 1e3 / math.sqrt(3.0))[:, None]

        pd = self._circuit.PDElements
        names = [n.lower() for n in pd.AllNames]
        conductors = np.asarray(pd.AllNumConductors, dtype=int)
        terminals = np.asarray(pd.AllNumTerminals, dtype=int)
        start = np.concatenate([[0], np.cumsum(conductors * terminals)[:-1]])
        first = dict(zip(names, start.tolist()))
        width = dict(zip(names, conductors.tolist()))

        def ends(prefix: str, n: int, perms=None, shunt: str | None = None) -> list[np.ndarray]:
            # positions of the conductors on bus phases a, b, c (n, 2, 3): terminal 1 and 2 of the branch,
            # and of its magnetising shunts, whose currents are the transformer's in pandapower (-1 where
            # there is none: the arrays get a trailing zero)
            main, extra = np.zeros((n, 2, 3), dtype=np.intp), np.full((n, 2, 3), -1, dtype=np.intp)
            for i in range(n):
                s, w = first[f"{prefix}{i}"], width[f"{prefix}{i}"]
                main[i, 0] = s + np.arange(3)
                main[i, 1] = s + w + (np.asarray(perms[i]) if perms is not None else np.arange(3))
                for side, tag in enumerate("hl"):
                    if shunt and f"{shunt}{i}{tag}" in first:
                        extra[i, side] = first[f"{shunt}{i}{tag}"] + np.arange(3)
            return [main, extra] if shunt else [main]

        self._line_ends = ends("line.l", len(self.net.line))
        self._trafo_ends = ends("transformer.t", len(self.net.trafo), self._trafo_lv_perm, "reactor.m")

    # --- checks ------------------------------------------------------------------------------
    def _check_supported(self, net) -> None:
        self._check_common(net)
        if not bool(net.ext_grid["in_service"].iloc[0]):
            raise UnsupportedNetwork("ext_grid: out of service")
        if not net.bus["in_service"].all():
            raise UnsupportedNetwork("bus: out-of-service buses")
        for column in ("g_us_per_km", "g0_us_per_km"):
            if column in net.line.columns and net.line[column].fillna(0).abs().gt(0).any():
                raise UnsupportedNetwork(f"line: a shunt conductance ({column})")

    # --- one solve ---------------------------------------------------------------------------
    def _write_injections(self, powers: dict | None = None) -> None:
        powers = powers or {}
        kw, kvar = np.empty(self._n_loads), np.empty(self._n_loads)
        for table_name, first, n, per_phase, sign in self._injections:
            if not n:
                continue
            table = self.net[table_name]
            scaling = table["scaling"].to_numpy(dtype=float) if "scaling" in table.columns else np.ones(n)
            factor = sign * 1e3 * scaling * table["in_service"].to_numpy(dtype=bool)
            if table_name in powers:
                p, q = (np.asarray(v, dtype=float) for v in powers[table_name])
            elif not per_phase:
                p, q = table["p_mw"].to_numpy(dtype=float), table["q_mvar"].to_numpy(dtype=float)
            else:
                p = np.column_stack([table[f"p_{ph}_mw"].to_numpy(dtype=float) for ph in "abc"])
                q = np.column_stack([table[f"q_{ph}_mvar"].to_numpy(dtype=float) for ph in "abc"])
            if per_phase:
                factor = factor[:, None]
            # a balanced Load takes the three-phase total, a single-phase one its phase's power
            kw[first:first + p.size] = (p * factor).ravel()
            kvar[first:first + q.size] = (q * factor).ravel()
        loads = self._loads
        # kW before kvar for every changed load: OpenDSS's kW setter recomputes kvar from the power
        # factor, its kvar setter then fixes kvar (and the power factor)
        for k in np.flatnonzero((kw != self._kw) | (kvar != self._kvar)).tolist():
            loads.idx = k + 1
            loads.kW = float(kw[k])
            loads.kvar = float(kvar[k])
        self._kw, self._kvar = kw, kvar

    def solve(self, powers: dict | None = None) -> PowerFlowArrays:
        """Run the power flow on the present injections and return the results.

        Parameters
        ----------
        powers : dict, optional
            ``{table: (p_mw, q_mvar)}`` for some of ``load``, ``sgen``, ``storage`` (shape (n,)),
            ``asymmetric_load``, ``asymmetric_sgen`` (shape (n, 3)), in the rows of ``net``'s tables,
            before ``scaling``. Tables not given are read from ``net``.

        Raises
        ------
        PowerFlowNotConverged
            If OpenDSS does not converge within ``max_iterations``.
        """
        self._write_injections(powers)
        try:
            self._solution.Solve()
            converged = self._solution.Converged
        except DSSException as exc:
            converged, reason = False, str(exc)
        else:
            reason = f"not converged in {self.max_iterations} iterations"
        if not converged:
            self._restart()
            raise PowerFlowNotConverged(f"power flow (OpenDSS): {reason}")
        return self._arrays()

    def _restart(self) -> None:
        """Start the next solve from the no-load solution, not from the diverged voltages.

        OpenDSS starts each solve from the last voltages. From a diverged state it can converge to
        another solution of the constant-power equations (measured on the IEEE feeder: after 8 x the
        peak load failed, the peak itself converged to phase voltages up to 0.75 pu off, every load at
        its power). ``init`` makes the next solve start from the no-load flow.
        """
        try:
            self._dss.Text.Command = "init"
        except DSSException:
            pass  # the failure is being reported already; the next solve reports its own

    def solve_batch(self, powers: list[dict]) -> list[PowerFlowArrays]:
        """:meth:`solve` for several states, one after the other (each starts from the last solution)."""
        return [self.solve(state) for state in powers]

    def _arrays(self) -> PowerFlowArrays:
        circuit = self._circuit
        v = np.asarray(circuit.AllBusVolts, dtype=float).view(complex)[self._node] / self._v_base
        pd = circuit.PDElements
        # per conductor and terminal of every PD element, plus a trailing zero for the index -1
        s = np.append(np.asarray(pd.AllPowers, dtype=float).view(complex), 0.0) / 1e3  # kVA -> MVA
        i = np.append(np.asarray(pd.AllCurrents, dtype=float).view(complex), 0.0) / 1e3  # A -> kA
        va = np.angle(v, deg=True) + self._angle_correction[:, None]
        va = (va + 180.0) % 360.0 - 180.0
        # a balanced flow: the three phases' total power and phase a's current (all three alike)
        k = slice(0, 1) if self.symmetric else slice(0, 3)

        def results(ends):
            power = sum(s[e] for e in ends)
            current = np.abs(sum(i[e[:, :, k]] for e in ends))
            if self.symmetric:
                power = power.sum(axis=2, keepdims=True)
            return power[:, 0], power[:, 1], current[:, 0], current[:, 1]

        lf, lt, lif, lit = results(self._line_ends)
        th, tl, tih, til = results(self._trafo_ends)
        return PowerFlowArrays(
            vm_pu=np.abs(v), va_degree=va,
            line_p_from_mw=lf.real, line_q_from_mvar=lf.imag, line_p_to_mw=lt.real, line_q_to_mvar=lt.imag,
            line_i_from_ka=lif, line_i_to_ka=lit,
            trafo_p_hv_mw=th.real, trafo_q_hv_mvar=th.imag, trafo_p_lv_mw=tl.real, trafo_q_lv_mvar=tl.imag,
            trafo_i_hv_ka=tih, trafo_i_lv_ka=til,
        )
