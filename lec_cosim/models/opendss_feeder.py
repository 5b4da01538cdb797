"""An OpenDSS model, read with dss-python, as the project's grid model (a :class:`~.feeder_model.Feeder`).

:func:`opendss_feeder` compiles the model in a private OpenDSS context (``DSS.NewContext()``: two reads
never share a circuit), walks its circuit elements and builds the pandapower net the project's backends
solve. :func:`opendss_snapshot` solves the model in OpenDSS itself and :func:`opendss_deviation_pu`
compares the two: the check of this source against its own engine.

What is read, and how
---------------------
* **Buses**: every bus, named as in OpenDSS, with its voltage base (``Set voltagebases`` /
  ``Calcvoltagebases`` must have given every bus one: pandapower's ``vn_kv`` is OpenDSS's line-to-line
  base) and its coordinates where the model has them.
* **Vsource** (exactly one, three-phase): an ideal EMF (``ext_grid`` on an auxiliary bus ``<bus>_emf``, at
  ``pu`` x ``BasekV`` and ``Angle``) behind the Vsource's own sequence impedances Z1 and Z0, as OpenDSS
  computes them from ``ISC3``/``ISC1``, ``MVAsc``, ``Z1``/``Z0`` or ``puZ1``, as a 1 km line
  (pandapower's ``ext_grid`` is ideal in the positive sequence; the IEEE feeder is built the same way).
* **Line** (three-phase, Kron-reduced): the 3x3 phase impedance and capacitance matrices of the line (from
  its line code, its geometry or its own R1/X1/R0/X0) turned into sequence data, which is exact when the
  matrices are balanced (equal diagonals, equal off-diagonals: sequence data, or a transposed line);
  ``NormAmps`` becomes ``max_i_ka`` (OpenDSS gives 400 A where the model rates nothing: the feeder's notes
  count such lines) and the line code is kept (column ``linecode``). An untransposed line (unequal entries)
  is refused: its coupling has no sequence form.
* **Transformer** (two windings, three-phase, higher voltage on winding 1): vector group from the
  connections and ``LeadLag`` (OpenDSS's delta-wye shifts by 30 degrees: ``Dyn1``/``Dyn11``),
  ``%R`` of both windings and ``XHL`` as the short-circuit impedance; zero sequence as OpenDSS: the same
  leakage impedance, no zero-sequence core path. Taps off 1.0, neutral impedances and a magnetising branch
  (``%noloadloss``, ``%imag``: OpenDSS places it at winding 1's terminal, pandapower in the middle of the
  leakage impedance, 1e-4 to 1e-3 pu apart) are refused.
* **Load** (constant P/Q, OpenDSS ``model=1``): three-phase wye -> a balanced ``load``; single-phase from a
  phase to ground (``bus.k`` or ``bus.k.0``) -> an ``asymmetric_load`` on that phase. Delta, phase-to-phase
  and other load models are refused (the households set every load's P and Q at each step; a voltage-
  dependent model would not be what OpenDSS computes).
* **Generator** (``model=1``): a static generator (``sgen``/``asymmetric_sgen``) the same way.
* **EnergyMeter**, **Monitor**: measuring only; ignored. Disabled elements are not part of the circuit.
* Anything else (Capacitor, Reactor, RegControl, PVSystem, Storage, Fuse, ...) is refused with one line
  naming the file and the element.

The model's yearly (else daily) load shapes, where every load has one with ``useactual`` off, give the
loads' profiles (``Feeder.load_p_kw``: base kW x Pmult; Q: base kvar x Qmult, or x Pmult where the shape has
no Qmult), the generators' shapes their profiles (``Feeder.sgen_p_kw``); shapes on some elements but not on
others, or shapes the grid model cannot play, are refused. The time axis is the shape's interval from midnight
of an arbitrary day (2000-01-01; OpenDSS has no calendar), each label the *start* of the interval its value
holds over, as every profile of the project: OpenDSS uses point k at k intervals past midnight, the end of the
k-th interval, so point k is labelled k - 1 intervals past midnight.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.feeder_model import PHASES, Feeder, FeederSourceError, connections_of, unsupplied_buses

_SQRT3 = math.sqrt(3.0)
UNIT_KM = {0: 1.0, 1: 1.609344, 2: 0.3048, 3: 1.0, 4: 1e-3, 5: 0.3048e-3, 6: 0.0254e-3, 7: 1e-5, 8: 1e-6}
"""OpenDSS length units (``Units``: none, mi, kft, km, m, ft, in, cm, mm) in km. 'none' keeps the model's own
unit: R and X per unit length times the length still give the right ohms."""
SUPPORTED = {"vsource", "line", "transformer", "load", "generator"}
IGNORED = {"energymeter", "monitor"}
TRAFO_MAG0_PERCENT = 1.0e9
"""Zero-sequence magnetising impedance, % of the short-circuit impedance: practically infinite, as OpenDSS's
transformer has no zero-sequence core path (see :mod:`lec_cosim.models.feeder_net`)."""
IDEAL_S_SC_MVA = 1.0e8
OPENDSS_DEFAULT_NORMAMPS = 400.0
"""What OpenDSS rates a line whose model gives no ``NormAmps``."""
BALANCE_TOLERANCE = 1e-6
"""Relative spread allowed among a line matrix's diagonal (and off-diagonal) entries for it to count as balanced."""


def _context(master: Path):
    """A private OpenDSS context with ``master`` compiled; refused with one line if OpenDSS cannot compile it."""
    from dss import DSS, DSSException

    if not master.is_file():
        raise FeederSourceError(f"{master}: file not found")
    dss = DSS.NewContext()
    # no window, editor or change of the process's working folder: a model's `Show` or `Plot` lines do nothing
    # here (its `Solve` and `Export` lines still run, at every read)
    dss.AllowChangeDir = False
    dss.AllowForms = False
    dss.AllowEditor = False
    try:
        dss.Text.Command = "clear"
        dss.Text.Command = f'redirect "{master}"'
    except DSSException as error:
        raise FeederSourceError(f"{master}: OpenDSS cannot compile it: {_first_line(error)}") from None
    try:
        named = bool(dss.ActiveCircuit.Name)
    except DSSException:
        named = False
    if not named:
        raise FeederSourceError(f"{master}: defines no circuit (New Circuit.<name>)")
    return dss


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _nodes(bus_spec: str) -> tuple[str, list[int]]:
    name, *nodes = bus_spec.split(".")
    return name.lower(), [int(n) for n in nodes if n != ""]


def _vector(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"[-+0-9.eE]+", text)]


def _property(element, name: str) -> str:
    return element.Properties(name).Val


def _sequence(matrix: np.ndarray, what: str, where: str) -> tuple[float, float]:
    """(positive, zero) sequence values of a balanced 3x3 phase matrix; an unbalanced one is refused."""
    m = matrix.reshape(3, 3)
    diag, off = np.diag(m), m[~np.eye(3, dtype=bool)]
    scale = max(float(np.max(np.abs(diag))), 1e-300)
    if np.ptp(diag) > BALANCE_TOLERANCE * scale or np.ptp(off) > BALANCE_TOLERANCE * scale:
        raise FeederSourceError(f"{where}: its {what} matrix is not balanced (an untransposed line): the grid model's "
                                "lines are given by sequence data; give the line sequence values (R1, X1, R0, X0) "
                                "or a transposed line code")
    s, mu = float(diag.mean()), float(off.mean())
    return s - mu, s + 2.0 * mu


def opendss_feeder(master: Path | str) -> Feeder:
    """The OpenDSS model compiled from ``master`` as a :class:`Feeder` (see the module docstring for the rules).

    Raises
    ------
    FeederSourceError
        One line naming the file and the element OpenDSS cannot compile or the grid model cannot express.
    """
    import pandapower as pp

    master = Path(master).resolve()
    dss = _context(master)
    circuit = dss.ActiveCircuit
    where = str(master)

    for full in circuit.AllElementNames:
        kind = full.split(".", 1)[0].lower()
        if kind in SUPPORTED or kind in IGNORED:
            continue
        circuit.SetActiveElement(full)
        if not circuit.ActiveCktElement.Enabled:  # not part of the circuit OpenDSS solves
            continue
        raise FeederSourceError(f"{where}: {full}: a {full.split('.', 1)[0]} is not expressible in the project's grid "
                                "model (it takes Vsource, Line, Transformer, Load and Generator; EnergyMeter and "
                                "Monitor are ignored)")

    net = pp.create_empty_network(name=circuit.Name, f_hz=float(circuit.Solution.Frequency))
    bus_of: dict[str, int] = {}
    names, vn_kv, geodata = [], [], []
    for i, name in enumerate(circuit.AllBusNames):
        circuit.SetActiveBusi(i)
        bus = circuit.ActiveBus
        if not bus.kVBase > 0:
            raise FeederSourceError(f"{where}: bus {name}: no voltage base; add `Set voltagebases=[...]` and "
                                    "`Calcvoltagebases` to the model")
        names.append(name)
        vn_kv.append(float(bus.kVBase) * _SQRT3)
        geodata.append((float(bus.x), float(bus.y)) if bus.Coorddefined else None)
        bus_of[name.lower()] = i
    located = all(g is not None for g in geodata)
    pp.create_buses(net, len(names), vn_kv=vn_kv, name=names, index=list(range(len(names))),
                    **({"geodata": geodata} if located else {}))

    # the source: an ideal EMF behind the Vsource's impedance
    sources = circuit.Vsources
    if sources.Count != 1:
        raise FeederSourceError(f"{where}: Vsource: the grid model has exactly one source, the model has "
                                f"{sources.Count}")
    sources.First
    element = circuit.ActiveCktElement
    if sources.Phases != 3:
        raise FeederSourceError(f"{where}: Vsource.{sources.Name}: {sources.Phases} phases; the source must be "
                                "three-phase")
    source_bus, _ = _nodes(element.BusNames[0])
    vn_kv = float(net.bus.at[bus_of[source_bus], "vn_kv"])
    emf = pp.create_bus(net, vn_kv=vn_kv, name=f"{source_bus}_emf")
    pp.create_ext_grid(net, emf, vm_pu=float(sources.pu) * float(sources.BasekV) / vn_kv,
                       va_degree=float(sources.AngleDeg), name=f"Vsource.{sources.Name}", s_sc_max_mva=IDEAL_S_SC_MVA,
                       s_sc_min_mva=IDEAL_S_SC_MVA, rx_max=0.1, rx_min=0.1, r0x0_max=0.1, x0x_max=1.0,
                       r0x0_min=0.1, x0x_min=1.0)
    r1, x1 = _vector(_property(element, "Z1"))[:2]
    r0, x0 = _vector(_property(element, "Z0"))[:2]
    source_line = pp.create_line_from_parameters(
        net, emf, bus_of[source_bus], length_km=1.0, r_ohm_per_km=r1, x_ohm_per_km=x1, c_nf_per_km=0.0,
        r0_ohm_per_km=r0, x0_ohm_per_km=x0, c0_nf_per_km=0.0, max_i_ka=np.nan, name=f"Vsource.{sources.Name} impedance")

    # lines
    lines = circuit.Lines
    rows = []
    index = lines.First
    while index:
        name = f"Line.{lines.Name}"
        element = circuit.ActiveCktElement
        if element.Enabled:
            if lines.Phases != 3:
                raise FeederSourceError(f"{where}: {name}: {lines.Phases} phase(s); the grid model's lines are "
                                        "three-phase (Kron-reduced: no separate neutral conductor)")
            (b1, n1), (b2, n2) = _nodes(lines.Bus1), _nodes(lines.Bus2)
            for nodes in (n1, n2):
                if nodes and nodes[:3] != [1, 2, 3]:
                    raise FeederSourceError(f"{where}: {name}: connected to nodes {nodes}; the grid model connects "
                                            "phases 1, 2, 3 in order")
            km = UNIT_KM.get(int(lines.Units))
            if km is None:
                raise FeederSourceError(f"{where}: {name}: unknown length unit {lines.Units}")
            r1, r0 = _sequence(np.asarray(lines.Rmatrix, dtype=float), "resistance", f"{where}: {name}")
            x1, x0 = _sequence(np.asarray(lines.Xmatrix, dtype=float), "reactance", f"{where}: {name}")
            c1, c0 = _sequence(np.asarray(lines.Cmatrix, dtype=float), "capacitance", f"{where}: {name}")
            rows.append((bus_of[b1], bus_of[b2], float(lines.Length) * km, r1 / km, x1 / km, c1 / km, r0 / km,
                         x0 / km, c0 / km, float(lines.NormAmps) / 1000.0, lines.Name, lines.LineCode or None))
        index = lines.Next
    if rows:
        columns = list(zip(*rows))
        pp.create_lines_from_parameters(
            net, from_buses=list(columns[0]), to_buses=list(columns[1]), length_km=list(columns[2]),
            r_ohm_per_km=list(columns[3]), x_ohm_per_km=list(columns[4]), c_nf_per_km=list(columns[5]),
            r0_ohm_per_km=list(columns[6]), x0_ohm_per_km=list(columns[7]), c0_nf_per_km=list(columns[8]),
            max_i_ka=list(columns[9]), name=list(columns[10]), linecode=list(columns[11]))
    net.line["g_us_per_km"] = net.line["g_us_per_km"].fillna(0.0)
    net.line["g0_us_per_km"] = net.line["g0_us_per_km"].fillna(0.0)
    default_rated = int((net.line["max_i_ka"] == OPENDSS_DEFAULT_NORMAMPS / 1000.0).sum())
    notes = [f"{default_rated} line(s) rated {OPENDSS_DEFAULT_NORMAMPS:g} A, OpenDSS's default NormAmps: give "
             "their ratings if they are not"] if default_rated else []

    # transformers
    trafos = circuit.Transformers
    index = trafos.First
    while index:
        name = f"Transformer.{trafos.Name}"
        element = circuit.ActiveCktElement
        if element.Enabled:
            _transformer(net, trafos, element, name, where, bus_of)
        index = trafos.Next

    # loads and generators
    _injections(net, circuit, where, bus_of)
    isolated = unsupplied_buses(net)
    if isolated:
        raise FeederSourceError(f"{where}: bus {net.bus.at[isolated[0], 'name']}: not connected to the source (and "
                                f"{len(isolated) - 1} more bus(es)); OpenDSS leaves such buses out of its solution")
    if not (len(net.load) or len(net.asymmetric_load)):
        raise FeederSourceError(f"{where}: Load: the model has no loads, so no household can be connected")
    connections = connections_of(net, where)
    load_p, load_q = _shape_profiles(circuit, circuit.Loads, where, "Load")
    sgen_p, _ = _shape_profiles(circuit, circuit.Generators, where, "Generator")
    return Feeder(name=circuit.Name, source=f"opendss: {master}", net=net, connections=connections,
                  load_p_kw=load_p, load_q_kvar=load_q, sgen_p_kw=sgen_p, source_lines=(source_line,), notes=notes)


def _transformer(net, trafos, element, name: str, where: str, bus_of: dict) -> None:
    import pandapower as pp

    if trafos.NumWindings != 2 or element.NumPhases != 3:
        raise FeederSourceError(f"{where}: {name}: {trafos.NumWindings} windings, {element.NumPhases} phases; the grid "
                                "model's transformers have two three-phase windings")
    conns = [c.strip().lower() for c in _property(element, "conns").strip("[] ").split(",") if c.strip()]
    order = list(element.NodeOrder)
    per = len(order) // 2
    winding = []
    for w in (1, 2):
        trafos.Wdg = w
        if abs(float(trafos.Tap) - 1.0) > 1e-12:
            raise FeederSourceError(f"{where}: {name}: tap {trafos.Tap:g} on winding {w}; the grid model's "
                                    "transformers are at their rated ratio")
        if float(trafos.Rneut) >= 0 or float(trafos.Xneut) > 0:
            raise FeederSourceError(f"{where}: {name}: a neutral impedance on winding {w} is not expressible; "
                                    "ground the neutral solidly (node 0) or leave it open")
        bus, _ = _nodes(element.BusNames[w - 1])
        nodes = order[(w - 1) * per:w * per]
        grounded = conns[w - 1] == "wye" and len(nodes) > 3 and nodes[3] == 0
        winding.append(dict(bus=bus, kv=float(trafos.kV), kva=float(trafos.kVA), r=float(trafos.R),
                            conn=conns[w - 1], grounded=grounded))
    hv, lv = winding
    if hv["kv"] < lv["kv"]:
        raise FeederSourceError(f"{where}: {name}: winding 1 ({hv['kv']:g} kV) is below winding 2 ({lv['kv']:g} kV); "
                                "give the higher-voltage winding first")
    if abs(hv["kva"] - lv["kva"]) > 1e-9 * hv["kva"]:
        raise FeederSourceError(f"{where}: {name}: windings of {hv['kva']:g} and {lv['kva']:g} kVA; the grid model's "
                                "transformers have one rating")
    letter = {"delta": "d", "wye": "y"}
    group = letter[hv["conn"]].upper() + ("N" if hv["grounded"] else "") + letter[lv["conn"]] + (
        "n" if lv["grounded"] else "")
    lag = _property(element, "LeadLag").strip().lower() in ("lag", "ansi")
    shift = 0.0 if hv["conn"] == lv["conn"] else (30.0 if lag else 330.0)
    vkr = hv["r"] + lv["r"]
    vk = math.hypot(float(trafos.Xhl), vkr)
    noload, imag = float(_property(element, "%noloadloss")), float(_property(element, "%imag"))
    if noload > 0 or imag > 0:
        # OpenDSS puts the magnetising branch at winding 1's terminal, pandapower (and so the grid model) in the
        # middle of the leakage impedance: 1e-4 to 1e-3 pu apart at usual values, beyond the check's bound
        raise FeederSourceError(f"{where}: {name}: a magnetising branch (%noloadloss {noload:g}, %imag {imag:g}) "
                                "is not expressible: the grid model places it differently from OpenDSS; set both "
                                "to 0 to read the transformer without it")
    sn_mva = hv["kva"] / 1000.0
    pp.create_transformer_from_parameters(
        net, hv_bus=bus_of[hv["bus"]], lv_bus=bus_of[lv["bus"]], sn_mva=sn_mva, vn_hv_kv=hv["kv"], vn_lv_kv=lv["kv"],
        vk_percent=vk, vkr_percent=vkr, pfe_kw=noload / 100.0 * hv["kva"], i0_percent=math.hypot(noload, imag),
        shift_degree=shift, vector_group=group, vk0_percent=vk, vkr0_percent=vkr, mag0_percent=TRAFO_MAG0_PERCENT,
        mag0_rx=0.0, si0_hv_partial=0.9, name=trafos.Name)


def _injections(net, circuit, where: str, bus_of: dict) -> None:
    import pandapower as pp

    for kind, collection in (("Load", circuit.Loads), ("Generator", circuit.Generators)):
        index = collection.First
        while index:
            name = f"{kind}.{collection.Name}"
            element = circuit.ActiveCktElement
            if element.Enabled:
                if int(collection.Model) != 1:
                    raise FeederSourceError(f"{where}: {name}: model={collection.Model}; the grid model's loads and "
                                            "generators are constant P/Q (model=1)")
                delta = (bool(collection.IsDelta) if kind == "Load"
                         else _property(element, "conn").lower().startswith("d"))
                bus, nodes = _nodes(element.BusNames[0])
                phases = int(element.NumPhases)
                p_mw, q_mvar = float(collection.kW) / 1000.0, float(collection.kvar) / 1000.0
                if kind == "Generator":
                    q_mvar = float(collection.kvar) / 1000.0
                if phases == 3 and not delta and (not nodes or (nodes[:3] == [1, 2, 3] and nodes[3:] in ([], [0]))):
                    create = pp.create_load if kind == "Load" else pp.create_sgen
                    create(net, bus_of[bus], p_mw=p_mw, q_mvar=q_mvar, name=collection.Name)
                elif phases == 1 and not delta and nodes and nodes[0] in (1, 2, 3) and nodes[1:] in ([], [0]):
                    ph = PHASES[nodes[0] - 1]
                    powers = {f"p_{x}_mw": (p_mw if x == ph else 0.0) for x in PHASES}
                    powers.update({f"q_{x}_mvar": (q_mvar if x == ph else 0.0) for x in PHASES})
                    create = pp.create_asymmetric_load if kind == "Load" else pp.create_asymmetric_sgen
                    create(net, bus_of[bus], name=collection.Name, type="wye", **powers)
                else:
                    raise FeederSourceError(f"{where}: {name}: {phases} phase(s) at {element.BusNames[0]}"
                                            f"{' in delta' if delta else ''}; the grid model connects loads and "
                                            "generators three-phase wye or one phase to ground")
            index = collection.Next


def _shape_profiles(circuit, collection, where: str, kind: str):
    """Each enabled element's yearly (else daily) shape as kW and kvar (Pmult x kW, Qmult x kvar where the shape
    has a Qmult, else Pmult x kvar), where every element of the collection has one; else (None, None)."""
    shapes = circuit.LoadShapes
    wanted, without = {}, []
    index = collection.First
    while index:
        if circuit.ActiveCktElement.Enabled:
            shape = collection.Yearly or collection.daily
            if shape:
                wanted[collection.Name] = (shape.lower(), float(collection.kW), float(collection.kvar))
            else:
                without.append(collection.Name)
        index = collection.Next
    if wanted and without:
        raise FeederSourceError(f"{where}: {kind}.{without[0]}: no load shape while others have one; give every "
                                "one a shape, or none")
    if not wanted:
        return None, None
    series, step_h = {}, None
    for shape in {s for s, _, _ in wanted.values()}:
        shapes.Name = shape
        h = float(shapes.HrInterval) if shapes.HrInterval > 0 else float(shapes.MinInterval) / 60.0
        if shapes.UseActual or shapes.Npts < 2 or h <= 0 or (step_h is not None and abs(h - step_h) > 1e-12):
            raise FeederSourceError(f"{where}: LoadShape.{shape}: not a profile the grid model can play "
                                    "(it needs multipliers, useactual=no, at one fixed interval shared by all shapes)")
        step_h = h
        pmult = np.asarray(shapes.Pmult, dtype=float)
        qmult = np.asarray(shapes.Qmult, dtype=float)
        series[shape] = (pmult, qmult if len(qmult) == len(pmult) else pmult)
    lengths = {len(p) for p, _ in series.values()}
    if len(lengths) > 1:
        raise FeederSourceError(f"{where}: LoadShape: shapes of {sorted(lengths)} points; the grid model plays "
                                "shapes of one length")
    n = lengths.pop()
    # OpenDSS uses point k at k intervals past midnight, the end of the k-th interval: labelled by the interval's
    # start, as the project's profiles are
    index = pd.date_range(pd.Timestamp("2000-01-01"), periods=n, freq=pd.Timedelta(hours=step_h), name="time")
    p = pd.DataFrame({name: series[s][0][:n] * kw for name, (s, kw, _) in wanted.items()}, index=index)
    q = pd.DataFrame({name: series[s][1][:n] * kvar for name, (s, _, kvar) in wanted.items()}, index=index)
    return p, q


# --- the check against OpenDSS itself --------------------------------------------------------------------------
def opendss_snapshot(master: Path | str, tolerance: float = 1e-10) -> pd.DataFrame:
    """Solve the model in OpenDSS (snapshot, every load and generator held at constant P/Q) and return the
    phase-to-ground voltage magnitude of every bus and phase in kV: index bus name (lower case), columns a, b, c.

    OpenDSS's constant-P/Q load switches to a constant impedance outside ``Vminpu``..``Vmaxpu`` (0.95..1.05 by
    default); the bounds are widened here so the check compares the same constant-power model.
    """
    master = Path(master).resolve()
    dss = _context(master)
    dss.Text.Command = "batchedit load..* vminpu=0.0 vmaxpu=10 vlowpu=0.0"
    if dss.ActiveCircuit.Generators.Count:
        dss.Text.Command = "batchedit generator..* vminpu=0.0 vmaxpu=10"
    dss.Text.Command = f"set mode=snap tolerance={tolerance} maxiterations=100"
    dss.ActiveCircuit.Solution.Solve()
    if not dss.ActiveCircuit.Solution.Converged:
        raise FeederSourceError(f"{master}: OpenDSS's own power flow does not converge")
    circuit = dss.ActiveCircuit
    volts = np.asarray(circuit.AllBusVolts, dtype=float)
    magnitude_kv = np.hypot(volts[0::2], volts[1::2]) / 1000.0
    rows = {}
    for node, value in zip(circuit.AllNodeNames, magnitude_kv):
        bus, _, phase = node.rpartition(".")
        if phase in ("1", "2", "3"):
            rows.setdefault(bus.lower(), [np.nan] * 3)[int(phase) - 1] = value
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(PHASES))


def opendss_deviation_pu(master: Path | str) -> float:
    """Largest difference between the project's three-phase power flow of the model (power-grid-model) and
    OpenDSS's own solution, over every bus and phase, in pu of the bus's phase-to-ground base voltage."""
    from lec_cosim.models.pgm_backend import PgmPowerFlow

    feeder = opendss_feeder(master)
    net = feeder.net
    flow = PgmPowerFlow(net, symmetric=feeder.balanced).solve()
    names = net.bus["name"].str.lower().to_numpy()
    base_kv = pd.Series(net.bus["vn_kv"].to_numpy(dtype=float) / _SQRT3, index=names)
    ours = pd.DataFrame(np.broadcast_to(flow.vm_pu, (len(names), 3)), index=names, columns=list(PHASES))
    theirs = opendss_snapshot(master)
    missing = theirs.index.difference(ours.index)
    if len(missing):
        raise FeederSourceError(f"{master}: bus {missing[0]}: solved by OpenDSS but not in the grid model")
    theirs_pu = theirs.div(base_kv.loc[theirs.index], axis=0)
    return float(np.nanmax((ours.loc[theirs.index] - theirs_pu).abs().to_numpy()))
