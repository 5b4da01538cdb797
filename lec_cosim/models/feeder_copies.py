"""Several copies of the IEEE European LV feeder under one 11 kV bus: scale studies of 55 x k households.

A DSO's secondary substations hang off one MV feeder; a study of a thousand households is a few tens
of LV feeders behind their own MV/LV transformers, coupled through the MV source impedance. Here copy
``c`` (1-based) of the IEEE feeder gets its own 800 kVA transformer from the shared ``SourceBus`` (and
the one OpenDSS source impedance in front of it), its LV buses numbered ``bus + 1000 (c - 1)`` and its
elements named ``F<c>_<name>`` (copy 1 keeps the IEEE names and numbers, so a one-copy model is the
feeder itself). Copies are exact replicas: same cables, same household placement and profiles; the
results differ between copies only through the shared source impedance. No HELICS here.
"""

from __future__ import annotations

import copy as _copy
import math
import re

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import SOURCE_IMPEDANCE_LINE_NAME

FEEDER_BUS_STRIDE = 1000
"""pandapower bus index of IEEE bus ``b`` on copy ``c``: ``b + FEEDER_BUS_STRIDE * (c - 1)``."""
MAX_COPIES = 200
_COPY_PREFIX = re.compile(r"^F([2-9]|[1-9][0-9]+)_")


def copy_name(name: str, copy: int) -> str:
    """Name of an element or participant of feeder copy ``copy`` (1-based; copy 1 keeps its name)."""
    return str(name) if copy == 1 else f"F{copy}_{name}"


def base_name(name: str) -> str:
    """The copy-1 name of a participant or element of any copy (:func:`copy_name` undone)."""
    match = _COPY_PREFIX.match(name)
    return name[match.end():] if match else name


def copy_bus(bus, copy):
    """pandapower bus index of IEEE bus ``bus`` on feeder copy ``copy`` (scalars or arrays)."""
    return np.asarray(bus) + FEEDER_BUS_STRIDE * (np.asarray(copy) - 1)


def feeder_of_bus(bus):
    """Feeder copy (1-based) of a pandapower LV bus index."""
    return np.asarray(bus) // FEEDER_BUS_STRIDE + 1


def ieee_bus(bus):
    """IEEE bus number of a pandapower LV bus index of any copy."""
    return np.asarray(bus) % FEEDER_BUS_STRIDE


def _check_copies(copies: int) -> int:
    copies = int(copies)
    if not 1 <= copies <= MAX_COPIES:
        raise ValueError(f"copies must be between 1 and {MAX_COPIES}, not {copies}")
    return copies


def replicate_feeder_net(net, copies: int, source_strength: float = 1.0):
    """A pandapower net with ``copies`` copies of the feeder's LV part under the shared 11 kV bus.

    Parameters
    ----------
    net : pandapowerNet
        The IEEE feeder (:func:`~lec_cosim.models.ieee_eulv.build_ieee_eulv`'s ``net``): one transformer
        from the 11 kV ``SourceBus`` (index 0) to LV buses numbered below :data:`FEEDER_BUS_STRIDE`.
        Not changed.
    copies : int
        Number of feeders (1 returns a plain copy).
    source_strength : float
        The 11 kV source's short-circuit power as a multiple of the feeder's own: the source impedance (line
        ``Vsource_impedance``, every sequence) is divided by it. The IEEE source (3 kA at 11 kV, 57 MVA)
        carries 19 copies; 182 copies (10,010 households) on it ask 25 MW through 2.1 ohm at the evening peak
        and its power flow diverges. A source ``k`` times as strong is a primary substation with ``k`` such
        feeders' worth of short-circuit power.
    """
    copies = _check_copies(copies)
    out = _copy.deepcopy(net)
    if source_strength != 1.0:
        if not (math.isfinite(source_strength) and source_strength > 0):
            raise ValueError(f"source_strength must be a positive number, not {source_strength!r}")
        source = out.line["name"] == SOURCE_IMPEDANCE_LINE_NAME
        if source.sum() != 1:
            raise ValueError(f"expected one source impedance line {SOURCE_IMPEDANCE_LINE_NAME!r}")
        impedance = ["r_ohm_per_km", "x_ohm_per_km", "r0_ohm_per_km", "x0_ohm_per_km"]
        out.line.loc[source, impedance] = out.line.loc[source, impedance] / float(source_strength)
    if copies == 1:
        return out
    lv = net.bus.index[net.bus["vn_kv"] < 1.0]
    if lv.max() >= FEEDER_BUS_STRIDE or len(net.trafo) != 1:
        raise ValueError("expected one transformer and LV buses numbered below 1000")
    feeder_lines = net.line[net.line["name"] != SOURCE_IMPEDANCE_LINE_NAME]
    buses, lines, trafos, loads = [out.bus], [out.line], [out.trafo], [out.asymmetric_load]
    for c in range(2, copies + 1):
        offset = FEEDER_BUS_STRIDE * (c - 1)
        bus = net.bus.loc[lv].copy()
        bus.index = bus.index + offset
        bus["name"] = [copy_name(n, c) for n in bus["name"]]
        buses.append(bus)
        line = feeder_lines.copy()
        line[["from_bus", "to_bus"]] += offset
        line["name"] = [copy_name(n, c) for n in line["name"]]
        line.index = pd.RangeIndex(sum(map(len, lines)), sum(map(len, lines)) + len(line))
        lines.append(line)
        trafo = net.trafo.copy()
        trafo["lv_bus"] += offset
        trafo["name"] = [copy_name(n, c) for n in trafo["name"]]
        trafo.index = trafo.index + (c - 1)
        trafos.append(trafo)
        load = net.asymmetric_load.copy()
        load["bus"] += offset
        load["name"] = [copy_name(n, c) for n in load["name"]]
        load.index = load.index + len(net.asymmetric_load) * (c - 1)
        loads.append(load)
    out.bus = pd.concat(buses)
    out.line = pd.concat(lines)
    out.trafo = pd.concat(trafos)
    out.asymmetric_load = pd.concat(loads)
    for table in ("bus", "line", "trafo", "asymmetric_load"):
        if not out[table].index.is_unique:
            raise AssertionError(f"{table}: duplicate index after replication")
    return out


def replicate_participants(table: pd.DataFrame, copies: int) -> pd.DataFrame:
    """The participants table of ``copies`` feeders: copy c's rows renamed (:func:`copy_name`), column ``feeder``.

    ``bus`` stays the IEEE bus number within the participant's feeder.
    """
    copies = _check_copies(copies)
    frames = []
    for c in range(1, copies + 1):
        frame = table.copy()
        frame["participant"] = [copy_name(n, c) for n in frame["participant"]]
        frame["feeder"] = c
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
