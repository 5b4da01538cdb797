"""The IEEE PES European LV Test Feeder as an unbalanced three-phase pandapower net, and its power flow.

:func:`build_ieee_eulv` builds the net from the checked tables of
:mod:`lec_cosim.models.feeder_tables` (with the source impedance of
:mod:`lec_cosim.models.source_impedance`); :class:`IEEEEuropeanLV` holds it with its 55 loads and
their profiles, :func:`run_pf_3ph` runs pandapower's ``runpp_3ph`` on it. This is the part that
needs pandapower, and the part validated against the IEEE OpenDSS reference solution (below).

Validation against the IEEE OpenDSS reference solution (``data/ieee_eulv/reference_solution_opendss``)
----------------------------------------------------------------------------------------------------
Measured with this module (pandapower 3.5.6, ``runpp_3ph``, flat start), all 907 buses x 3 phases,
reference magnitudes from the ``Magnitude`` columns (6 digits, ~4e-6 pu):

==========================  ===========  ============  ============
max abs phase-voltage error minute 1     minute 566    minute 1440
==========================  ===========  ============  ============
pandapower's snapshot       2.8e-4 pu    **7.4e-3 pu** 9.6e-4 pu
this model                  2e-6 pu      7e-6 pu       2e-6 pu
==========================  ===========  ============  ============

Transformer secondary power per phase, all 1440 minutes: P within 0.10 % (max 3 W), Q within 0.21 %
(max 1.2 var) of the reference. Angles agree within 0.05 deg (the reference prints 0.1 deg). The
remaining differences are at the level of the reference's rounding and OpenDSS's solution tolerance.

Why pandapower's shipped snapshot (``pandapower.networks.ieee_european_lv_asymmetric``) is off
--------------------------------------------------------------------------------------------
Three differences, found by switching each one on in this model (max error at minute 566):

1. **Reactive power of the phase-B and phase-C loads (the dominant cause).** In all three snapshot
   JSON files, every load on phase b or c has ``q/p = 0.00033`` instead of ``tan(acos 0.95) = 0.3287``:
   their Q is 1000 times too small (phase-a loads are right; P matches ``profile_k`` exactly). Alone it
   causes 7.4e-3 pu; the snapshot's transformer Q on phases b/c is 96-100 % off the reference.
   Correcting Q in pandapower's own snapshot brings it to 1.0e-3 pu.
2. **Source impedance.** OpenDSS's ``Vsource`` (``pu=1.05 ISC3=3000 ISC1=5`` at 11 kV, X1/R1 = 4) is a
   1.05 pu EMF behind Z1 = Z2 = 0.513 + j2.054 ohm, about a third of the transformer's impedance
   (6.08 ohm referred to 11 kV); the reference's SourceBus drops to 1.0490-1.0498 pu at minute 566.
   pandapower's ``ext_grid`` is an ideal source in the positive sequence (its ``s_sc_*`` data enter only
   the negative and zero sequence networks, as ``1.1 / (s_sc / 3)``), and the snapshot uses 10 GVA. Here
   the EMF sits on an auxiliary bus and the OpenDSS impedance is an explicit line to SourceBus. Alone:
   1.0e-3 pu.
3. **Transformer zero-sequence impedance.** The snapshot's Dyn transformer has ``mag0_percent = 100``
   and ``si0_hv_partial = 0.9``, so pandapower's T model gives an LV-side zero-sequence impedance of
   0.1 Zk + (0.9 Zk || Zk) = 0.57 Zk. OpenDSS (``%imag = 0``, grounded wye) gives the full leakage
   impedance Zk; here ``mag0_percent`` is practically infinite. Alone: 4.9e-4 pu.

With all three (ideal source, mag0 = 100, Q bug) this model reproduces the snapshot's 7.42e-3 pu.
Not causes: the transformer resistance (``Transformers.txt`` has no ``%R``, and OpenDSS's default
``%R = 0.2`` per winding gives the same 0.4 % as the IEEE CSV and the snapshot; with 0 % the error would
be 5.4e-4 pu, so the reference did use 0.4 %); the line data (the snapshot's R1/X1/R0/X0 and lengths
equal ``LineCodes.csv``/``Lines.csv``; C1 = C0 = 0; the sequence data are OpenDSS's Kron-reduced
3x3 matrices with the neutral earthed everywhere, as pandapower's line model); the load model
(OpenDSS model 1 = constant PQ, like ``asymmetric_load``; the reference load currents, e.g. LOAD1 at
minute 1, give exactly the profile power, so no low/high-voltage model switching occurred).

Speed: numba is not installed in the project environment, and there one ``runpp_3ph`` takes ~0.2 s
on this 908-bus net (``init="results"`` in a time series saves ~25 %). If numba is installed,
pandapower's JIT is used automatically (not measured here).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lec_cosim.models.feeder_tables import (
    _PHASE_FROM_IEEE,
    DEFAULT_DATA_DIR,
    read_feeder_tables,
)
from lec_cosim.models.source_impedance import opendss_vsource_impedance_ohm

if TYPE_CHECKING:  # pandapower is imported where a net is built or solved
    import pandapower as pp

# pandapower's optional JIT for its Newton-Raphson: whether it is installed, not imported (pandapower imports it
# at its first power flow; importing it here cost every process that builds a feeder ~0.3 s, the DSO's too)
_HAVE_NUMBA = importlib.util.find_spec("numba") is not None

PHASES = ("a", "b", "c")

SOURCE_EMF_BUS_NAME = "SourceBus_emf"
SOURCE_EMF_BUS_INDEX = 907
"""pandapower index of the auxiliary 11 kV bus holding the ideal source EMF (``ext_grid``). The LV
buses keep their IEEE numbers 1..906 as pandapower indices and ``SourceBus`` is index 0."""
SOURCE_IMPEDANCE_LINE_NAME = "Vsource_impedance"
IDEAL_EXT_GRID_S_SC_MVA = 1.0e8
"""Short-circuit power given to the ``ext_grid`` behind the explicit source impedance: large enough that
pandapower's own ext_grid impedance (used in the negative and zero sequence networks only) vanishes
next to the OpenDSS source impedance (ratio ~2e-6)."""
TRAFO_MAG0_PERCENT = 1.0e9
"""Zero-sequence magnetising impedance of the Dyn transformer in % of its short-circuit impedance:
practically infinite, as in OpenDSS (``%imag=0``, no zero-sequence core path), so that the zero-sequence
impedance seen from the LV side equals the leakage impedance."""


@dataclass
class IEEEEuLVResult:
    """Result of one three-phase power flow.

    Attributes
    ----------
    vm_pu : pandas.DataFrame
        Phase-to-ground voltage magnitudes, pu of 0.416 kV / sqrt(3) (LV) or 11 kV / sqrt(3)
        (``SourceBus``); index: IEEE bus name (``"SourceBus"``, ``"1"`` .. ``"906"``), columns ``a, b, c``.
    va_degree : pandas.DataFrame
        Voltage angles, degrees, same layout.
    trafo_lv_p_kw, trafo_lv_q_kvar : numpy.ndarray
        Per-phase (a, b, c) active / reactive power at the transformer's LV terminal, kW / kvar, positive
        into the transformer (so negative while the feeder draws power). This is the sign of the IEEE
        OpenDSS reference (terminal 2 of ``Transformer.TR1``) and of pandapower's ``res_trafo_3ph``.
    """

    vm_pu: pd.DataFrame
    va_degree: pd.DataFrame
    trafo_lv_p_kw: np.ndarray
    trafo_lv_q_kvar: np.ndarray


@dataclass
class IEEEEuropeanLV:
    """The IEEE European LV test feeder in pandapower, with its 55 loads and their profiles.

    Build it with :func:`build_ieee_eulv`.

    Attributes
    ----------
    net : pandapowerNet
        The three-phase model: bus 0 ``SourceBus`` (11 kV), buses 1..906 (0.416 kV, index = IEEE bus
        number), bus 907 ``SourceBus_emf`` (ideal source EMF, ``ext_grid``), line ``Vsource_impedance``
        (the OpenDSS source impedance) plus ``LINE1`` .. ``LINE905`` (IEEE line code in column
        ``ieee_linecode``), trafo ``TR1`` (Dyn) and
        ``asymmetric_load`` ``LOAD1`` .. ``LOAD55`` in IEEE order.
    load_phase : numpy.ndarray of str
        Phase (``"a"``, ``"b"`` or ``"c"``) of each of the 55 loads, in ``net.asymmetric_load`` order.
    load_power_factor : numpy.ndarray
        Power factor of each load (0.95 lagging in the IEEE data).
    profiles_kw : pandas.DataFrame
        Load of each of the 55 loads, kW; index ``minute`` 1..1440, columns ``LOAD1`` .. ``LOAD55``.
        ``LOADk`` follows its IEEE load shape ``Shape_k`` = ``profile_k``.
    """

    net: pp.pandapowerNet
    load_phase: np.ndarray
    load_power_factor: np.ndarray
    profiles_kw: pd.DataFrame

    @property
    def load_names(self) -> list[str]:
        """Names ``LOAD1`` .. ``LOAD55``."""
        return list(self.net.asymmetric_load["name"])

    def set_loads_kw(self, p_kw) -> None:
        """Set the 55 loads' active power, each on its own phase; Q follows from the power factor.

        Parameters
        ----------
        p_kw : array_like, shape (55,)
            Active power of ``LOAD1`` .. ``LOAD55``, kW (consumption positive).
        """
        p_mw = np.asarray(p_kw, dtype=float) / 1000.0
        if p_mw.shape != self.load_phase.shape:
            raise ValueError(f"expected {self.load_phase.size} load powers, got shape {p_mw.shape}")
        q_mvar = p_mw * np.tan(np.arccos(self.load_power_factor))
        al = self.net.asymmetric_load
        for ph in PHASES:
            on = self.load_phase == ph
            al[f"p_{ph}_mw"] = np.where(on, p_mw, 0.0)
            al[f"q_{ph}_mvar"] = np.where(on, q_mvar, 0.0)

    def set_minute(self, minute: int) -> None:
        """Set the loads to the IEEE profiles at ``minute`` (1..1440)."""
        self.set_loads_kw(self.profiles_kw.loc[int(minute)].to_numpy())

    def solve(self, init: str = "flat") -> IEEEEuLVResult:
        """Run the three-phase power flow on the present loads (see :func:`run_pf_3ph`)."""
        return run_pf_3ph(self.net, init=init)

    def solve_minute(self, minute: int, init: str = "flat") -> IEEEEuLVResult:
        """Set the loads to ``minute`` (1..1440) and run the three-phase power flow."""
        self.set_minute(minute)
        return self.solve(init=init)


def build_ieee_eulv(data_dir: Path | str = DEFAULT_DATA_DIR, minute: int | None = 1) -> IEEEEuropeanLV:
    """Build the IEEE European LV test feeder as a three-phase pandapower model from the IEEE CSV data.

    Elements, all from ``data_dir/csv`` (IEEE ``European_LV_CSV`` set):

    * ``Source.csv``: an ideal EMF (``ext_grid``, vm_pu = 1.05, at the auxiliary bus ``SourceBus_emf``)
      behind the OpenDSS ``Vsource`` impedance (ISC3 = 3000 A, ISC1 = 5 A at 11 kV, X1/R1 = 4,
      X0/R0 = 3; :func:`opendss_vsource_impedance_ohm`) modelled as a 1 km line to ``SourceBus``.
      pandapower's ``ext_grid`` alone is an ideal positive-sequence source, so it could not represent this.
    * ``Transformer.csv``: TR1 11/0.416 kV, 800 kVA, Dyn (LV lags 30 deg), %X = 4, %R = 0.4 (the OpenDSS
      default ``%R = 0.2`` per winding gives the same 0.4 %), no magnetising current or iron losses;
      zero sequence: the same leakage impedance, magnetising impedance practically infinite.
    * ``Lines.csv`` / ``LineCodes.csv``: 905 three-phase lines (length in m) with R1, X1, R0, X0 in ohm/km
      and C1 = C0 = 0 (sequence data = OpenDSS's Kron-reduced phase impedance matrix, neutral solidly
      earthed everywhere). No ampacity is given, so ``max_i_ka`` is NaN (line loading is undefined).
    * ``Loads.csv``: 55 single-phase wye ``asymmetric_load`` (constant PQ, OpenDSS load model 1), each
      on its phase (A/B/C -> a/b/c), PF from the file (0.95), profile from its ``Yearly`` shape
      ``Shape_k`` -> ``profile_k`` of ``load_profiles_1min_100.csv``.
    * ``Buscoords.csv``: bus geodata.

    Parameters
    ----------
    data_dir : path-like
        Folder with ``csv/`` and ``load_profiles_1min_100.csv`` (default: the repository's
        ``data/ieee_eulv``).
    minute : int or None
        If given (1..1440), the loads are set to the profiles at this minute; if None they are zero.

    Returns
    -------
    IEEEEuropeanLV
    """
    import pandapower as pp  # here, not at the top: the CSV readers serve processes without a grid

    tables = read_feeder_tables(data_dir)
    source, trafo, lines, loads, coords = tables.source, tables.trafo, tables.lines, tables.loads, tables.coords
    codes = tables.codes.set_index("Name")
    if len(trafo) != 1:
        raise ValueError("expected one transformer in Transformer.csv")
    tr = trafo.iloc[0]
    if not (set(lines["Units"]) == {"m"} and set(codes["Units"]) == {"km"}):
        raise ValueError("expected line lengths in m and line codes per km")

    net = pp.create_empty_network(name="IEEE European LV Test Feeder", f_hz=50.0)

    # buses: SourceBus = 0, LV buses keep their IEEE numbers, auxiliary EMF bus 907
    hv_bus = str(tr["bus1"])
    lv_buses = coords["Busname"].astype(int).to_numpy()
    pp.create_bus(net, vn_kv=float(tr["kV_pri"]), name=hv_bus, index=0)
    pp.create_buses(net, len(lv_buses), vn_kv=float(tr["kV_sec"]), name=[str(b) for b in lv_buses],
                    index=lv_buses.tolist(),
                    geodata=list(zip(coords["x"].astype(float), coords["y"].astype(float))))
    pp.create_bus(net, vn_kv=source["vn_kv"], name=SOURCE_EMF_BUS_NAME, index=SOURCE_EMF_BUS_INDEX)

    # source: ideal EMF + OpenDSS Vsource impedance
    pp.create_ext_grid(net, SOURCE_EMF_BUS_INDEX, vm_pu=source["vm_pu"], va_degree=0.0, name="Vsource.Source",
                       s_sc_max_mva=IDEAL_EXT_GRID_S_SC_MVA, s_sc_min_mva=IDEAL_EXT_GRID_S_SC_MVA,
                       rx_max=0.25, rx_min=0.25, r0x0_max=1 / 3, x0x_max=1.0, r0x0_min=1 / 3, x0x_min=1.0)
    r1, x1, r0, x0 = opendss_vsource_impedance_ohm(source["vn_kv"], source["isc3_a"], source["isc1_a"])
    pp.create_line_from_parameters(net, SOURCE_EMF_BUS_INDEX, 0, length_km=1.0, r_ohm_per_km=r1, x_ohm_per_km=x1,
                                   c_nf_per_km=0.0, r0_ohm_per_km=r0, x0_ohm_per_km=x0, c0_nf_per_km=0.0,
                                   max_i_ka=np.nan, name=SOURCE_IMPEDANCE_LINE_NAME)

    # transformer
    if not (str(tr["Conn_pri"]).lower() == "delta" and str(tr["Conn_sec"]).lower() == "wye"):
        raise ValueError("expected a Delta/Wye transformer")
    vkr = float(tr["% resistance"])
    vk = math.hypot(float(tr["%XHL"]), vkr)
    pp.create_transformer_from_parameters(
        net, hv_bus=0, lv_bus=int(tr["bus2"]), sn_mva=float(tr["MVA"]), vn_hv_kv=float(tr["kV_pri"]),
        vn_lv_kv=float(tr["kV_sec"]), vk_percent=vk, vkr_percent=vkr, pfe_kw=0.0, i0_percent=0.0,
        shift_degree=30.0, vector_group="Dyn", vk0_percent=vk, vkr0_percent=vkr, mag0_percent=TRAFO_MAG0_PERCENT,
        mag0_rx=0.0, si0_hv_partial=0.9, name=str(tr["Name"]))

    # lines
    c = codes.loc[lines["LineCode"]]
    pp.create_lines_from_parameters(
        net, from_buses=lines["Bus1"].astype(int).to_numpy(), to_buses=lines["Bus2"].astype(int).to_numpy(),
        length_km=lines["Length"].to_numpy(dtype=float) / 1000.0,
        r_ohm_per_km=c["R1"].to_numpy(dtype=float), x_ohm_per_km=c["X1"].to_numpy(dtype=float),
        c_nf_per_km=c["C1"].to_numpy(dtype=float), r0_ohm_per_km=c["R0"].to_numpy(dtype=float),
        x0_ohm_per_km=c["X0"].to_numpy(dtype=float), c0_nf_per_km=c["C0"].to_numpy(dtype=float),
        max_i_ka=np.full(len(lines), np.nan), name=lines["Name"].tolist())
    net.line["g0_us_per_km"] = net.line["g0_us_per_km"].fillna(0.0)
    net.line["ieee_linecode"] = net.line["name"].map(dict(zip(lines["Name"], lines["LineCode"])))

    # loads
    if not (loads["numPhases"].eq(1).all() and loads["Connection"].str.lower().eq("wye").all()
            and loads["Model"].eq(1).all()):
        raise ValueError("expected single-phase wye constant-PQ (model 1) loads")
    phase = loads["phases"].map(_PHASE_FROM_IEEE).to_numpy()
    for name, bus in zip(loads["Name"], loads["Bus"].astype(int)):
        pp.create_asymmetric_load(net, int(bus), name=str(name), type="wye")

    profiles = tables.profiles
    shape_k = loads["Yearly"].str.extract(r"^Shape_(\d+)$", expand=False).astype(int)
    # IEEE LoadShapes: Shape_k -> load_profile_k (the profile table numbers them the same way); kW = 1 base
    base_kw = loads["kW"].to_numpy(dtype=float)
    profiles_kw = pd.DataFrame(profiles[[f"profile_{k}" for k in shape_k]].to_numpy() * base_kw,
                               index=profiles.index, columns=loads["Name"].tolist())

    model = IEEEEuropeanLV(net=net, load_phase=phase, load_power_factor=loads["PF"].to_numpy(dtype=float),
                           profiles_kw=profiles_kw)
    if minute is None:
        model.set_loads_kw(np.zeros(len(loads)))
    else:
        model.set_minute(minute)
    return model


def run_pf_3ph(net: pp.pandapowerNet, init: str = "flat") -> IEEEEuLVResult:
    """Run pandapower's three-phase power flow (``runpp_3ph``) and collect the feeder results.

    Parameters
    ----------
    net : pandapowerNet
        A net built by :func:`build_ieee_eulv` (``IEEEEuropeanLV.net``).
    init : str
        Start of pandapower's iteration: ``"flat"`` (default; every call independent of the previous
        one) or ``"results"`` (start from the previous result: ~25 % faster in time series, results
        equal to ~1e-9 pu).

    Returns
    -------
    IEEEEuLVResult
        Per-bus per-phase voltages (without the auxiliary EMF bus) and the transformer's LV-side
        per-phase P/Q.
    """
    import pandapower as pp

    pp.runpp_3ph(net, init=init, numba=_HAVE_NUMBA)
    rb = net.res_bus_3ph.drop(index=SOURCE_EMF_BUS_INDEX)
    names = net.bus.loc[rb.index, "name"].to_numpy()
    vm = pd.DataFrame(rb[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy(), index=names, columns=list(PHASES))
    va = pd.DataFrame(rb[["va_a_degree", "va_b_degree", "va_c_degree"]].to_numpy(), index=names,
                      columns=list(PHASES))
    vm.index.name = va.index.name = "bus"
    rt = net.res_trafo_3ph.iloc[0]
    p = np.array([rt[f"p_{ph}_lv_mw"] for ph in PHASES]) * 1000.0
    q = np.array([rt[f"q_{ph}_lv_mvar"] for ph in PHASES]) * 1000.0
    return IEEEEuLVResult(vm_pu=vm, va_degree=va, trafo_lv_p_kw=p, trafo_lv_q_kvar=q)
