"""IEEE PES European LV Test Feeder as an unbalanced three-phase pandapower model.

The feeder: 11 kV source, one 11/0.416 kV 800 kVA Dyn transformer, 906 LV buses, 905 three-phase lines
and 55 single-phase residential loads driven by the IEEE 1-minute load profiles (one day). The model is
built from the IEEE CSV set in ``data/ieee_eulv/csv`` (see ``data/ieee_eulv/README.md``) by
:func:`build_ieee_eulv`; :meth:`IEEEEuropeanLV.set_minute` / :meth:`IEEEEuropeanLV.set_loads_kw` set the
55 loads (P from the profile, Q from PF 0.95) and :func:`run_pf_3ph` runs pandapower's ``runpp_3ph`` and
returns per-bus per-phase voltages and the transformer's LV-side per-phase P/Q. No HELICS here.

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

import configparser
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lec_cosim.models.timeseries import HOUSEHOLD_LOAD_RANGE, DataError, check_values, read_csv_rows

if TYPE_CHECKING:  # pandapower is imported where a net is built or solved
    import pandapower as pp

try:  # pandapower's optional JIT for its Newton-Raphson
    import numba  # noqa: F401
    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_NUMBA = False

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "ieee_eulv"
"""``data/ieee_eulv/`` of the repository: the IEEE CSV feeder files, the load profile table and the
IEEE OpenDSS reference solution (see its ``README.md``)."""

PHASES = ("a", "b", "c")
_PHASE_FROM_IEEE = {"A": "a", "B": "b", "C": "c"}
_SQRT3 = math.sqrt(3.0)

# OpenDSS defaults the IEEE data rely on (Vsource and Transformer, OpenDSS source code / manual)
OPENDSS_VSOURCE_X1R1 = 4.0
"""OpenDSS ``Vsource`` default X1/R1 (Source.csv / Master.dss give ISC3, ISC1 only)."""
OPENDSS_VSOURCE_X0R0 = 3.0
"""OpenDSS ``Vsource`` default X0/R0."""

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


# ---------------------------------------------------------------------------------------------
# IEEE CSV readers
# ---------------------------------------------------------------------------------------------
class FeederDataError(ValueError):
    """A table of the feeder folder is inconsistent; the message names the file, the row and the reason."""


def _read_ieee_csv(path: Path) -> pd.DataFrame:
    """Read one IEEE CSV table: skip the leading ``#`` comment lines, strip header blanks.

    The frame's ``attrs["lines"]`` holds the file line of each data row (blank lines are skipped
    but counted), for messages.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeederDataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    while numbered and numbered[0][1].lstrip().startswith("#"):
        numbered.pop(0)
    if len(numbered) < 2:
        raise FeederDataError(f"{path}: no table (a header line and data rows expected)")
    (header_line, header_text), rows = numbered[0], numbered[1:]
    header = [c.strip() for c in header_text.split(",")]
    twice = next((c for i, c in enumerate(header) if c in header[:i]), None)
    if twice is not None:
        raise FeederDataError(f"{path}: line {header_line}: column {twice!r} appears twice")
    try:
        df = pd.read_csv(io.StringIO("\n".join(line for _, line in numbered)), skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise FeederDataError(f"{path}: not a CSV table: {str(exc).strip()} (counting from line {header_line})") from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].str.strip()
    df.attrs["lines"] = [n for n, _ in rows]
    return df


def _fail_at(table: pd.DataFrame, path: Path, bad, reason: str) -> None:
    """Raise for the first row where ``bad`` holds, naming its line in ``path``."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        # a row of mixed columns comes out as floats: show each cell as its own column has it
        row = pd.Series({column: table[column].iat[i] for column in table.columns}, dtype=object)
        raise FeederDataError(f"{path}: line {table.attrs['lines'][i]}: {reason(row)}")


@dataclass(frozen=True)
class FeederTables:
    """The tables of a feeder folder, as :func:`read_feeder_tables` read and checked them."""

    source: dict
    coords: pd.DataFrame
    lines: pd.DataFrame
    codes: pd.DataFrame
    loads: pd.DataFrame
    trafo: pd.DataFrame
    profiles: pd.DataFrame


def read_feeder_tables(data_dir: Path | str = DEFAULT_DATA_DIR) -> FeederTables:
    """Read the feeder folder's tables and check that they fit together, before a model is built from them.

    Every bus a line, load or the transformer names has coordinates; names are unique; lines
    have a known line code and a positive length; every load has a phase A, B or C and a
    load shape ``Shape_k`` with its column ``profile_k`` in the profile table, which holds
    numbers only.

    Raises
    ------
    FeederDataError
        The first inconsistency: ``"<file>: line <n>: <reason>"``.
    """
    csv = Path(data_dir) / "csv"
    try:
        source = read_source(data_dir)
    except (KeyError, ValueError) as exc:
        raise FeederDataError(f"{csv / 'Source.csv'}: a [Source] section with Voltage, pu, ISC3 and ISC1 expected "
                              f"({type(exc).__name__}: {exc})") from None
    paths = {name: csv / f"{name}.csv" for name in ("Buscoords", "Lines", "LineCodes", "Loads", "Transformer")}
    coords, lines, codes, loads, trafo = (_read_ieee_csv(path) for path in paths.values())
    for table, path, needed in ((coords, "Buscoords", ["Busname"]), (lines, "Lines", ["Name", "Bus1", "Bus2",
                                "Length", "LineCode"]), (codes, "LineCodes", ["Name"]),
                                (loads, "Loads", ["Name", "Bus", "phases", "Yearly"]), (trafo, "Transformer", ["bus2"])):
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise FeederDataError(f"{paths[path]}: column {missing[0]!r} missing")
    buses = pd.to_numeric(coords["Busname"], errors="coerce")
    _fail_at(coords, paths["Buscoords"], buses.isna(), lambda row: f"bus name {row['Busname']} is not a number")
    _fail_at(coords, paths["Buscoords"], buses.duplicated(), lambda row: f"bus {row['Busname']} appears twice")
    known = set(buses.astype(int))

    def unknown(values) -> np.ndarray:
        numbers = pd.to_numeric(values, errors="coerce")
        return numbers.isna().to_numpy() | ~numbers.fillna(-1).astype(int).isin(known).to_numpy()

    for end in ("Bus1", "Bus2"):
        _fail_at(lines, paths["Lines"], unknown(lines[end]),
                 lambda row, end=end: f"{end} {row[end]} of {row['Name']} is not a bus of Buscoords.csv")
    _fail_at(lines, paths["Lines"], lines["Name"].duplicated(), lambda row: f"line {row['Name']} appears twice")
    _fail_at(lines, paths["Lines"], ~lines["LineCode"].isin(codes["Name"]),
             lambda row: f"line code {row['LineCode']!r} of {row['Name']} is not in LineCodes.csv")
    length = pd.to_numeric(lines["Length"], errors="coerce")
    _fail_at(lines, paths["Lines"], ~((length > 0) & np.isfinite(length)),
             lambda row: f"length {row['Length']} of {row['Name']} is not a positive finite number")
    _fail_at(trafo, paths["Transformer"], unknown(trafo["bus2"]),
             lambda row: f"bus2 {row['bus2']} is not a bus of Buscoords.csv")
    _fail_at(loads, paths["Loads"], unknown(loads["Bus"]),
             lambda row: f"bus {row['Bus']} of {row['Name']} is not a bus of Buscoords.csv")
    _fail_at(loads, paths["Loads"], loads["Name"].duplicated(), lambda row: f"load {row['Name']} appears twice")
    _fail_at(loads, paths["Loads"], ~loads["phases"].isin(list(_PHASE_FROM_IEEE)),
             lambda row: f"phase {row['phases']!r} of {row['Name']} is not A, B or C")
    _check_physics(csv, source, coords, lines, codes, loads, trafo, paths)
    profiles = read_load_profiles_kw(data_dir)
    shape = loads["Yearly"].astype(str).str.extract(r"^Shape_(\d+)$", expand=False)
    _fail_at(loads, paths["Loads"], shape.isna() | ~("profile_" + shape.fillna("")).isin(profiles.columns),
             lambda row: f"load shape {row['Yearly']!r} of {row['Name']} has no profile_k column in "
                         "load_profiles_1min_100.csv")
    return FeederTables(source, coords, lines, codes, loads, trafo, profiles)


def _numeric(table: pd.DataFrame, path: Path, columns: list[str]) -> dict[str, pd.Series]:
    """The named columns as finite numbers, or :class:`FeederDataError` at the first cell that is not one."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise FeederDataError(f"{path}: column {missing[0]!r} missing")
    out = {}
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        _fail_at(table, path, ~np.isfinite(values.to_numpy(dtype=float)),
                 lambda row, column=column: f"{column} of {row.iloc[0]} is {row[column]!r}, not a finite number")
        out[column] = values
    return out


def _source_line(csv: Path, key: str) -> str:
    """``line N`` of ``key=`` in Source.csv, for messages."""
    try:
        for n, line in enumerate((csv / "Source.csv").read_text(encoding="utf-8").splitlines(), start=1):
            if line.split("=", 1)[0].strip().lower() == key.lower():
                return f"line {n}"
    except (OSError, UnicodeDecodeError):
        pass
    return key


def _check_physics(csv: Path, source: dict, coords, lines, codes, loads, trafo, paths: dict) -> None:
    """What a power flow needs of the tables' numbers: real, finite and physically possible.

    Positive voltages, ratings, lengths and short-circuit currents; impedances not negative and not all
    zero; power factors in (0, 1]; one Delta/Wye transformer; single-phase wye constant-PQ loads; lengths
    in m and line codes per km (what the feeder builder supports). Each error names the table and line.
    """
    source_path = csv / "Source.csv"
    for key, field, low, high, what in (("Voltage", "vn_kv", 0.0, 1000.0, "the source's line-to-line voltage, kV"),
                                        ("pu", "vm_pu", 0.5, 1.5, "the source voltage, pu"),
                                        ("ISC3", "isc3_a", 0.0, 1e7, "the three-phase short-circuit current, A"),
                                        ("ISC1", "isc1_a", 0.0, 1e7, "the single-phase short-circuit current, A")):
        value = source[field]
        if not (np.isfinite(value) and low < value <= high):
            raise FeederDataError(f"{source_path}: {_source_line(csv, key)}: {key} = {value:g} is impossible for "
                                  f"{what} (expected above {low:g}, up to {high:g})")
    try:
        impedances = opendss_vsource_impedance_ohm(source["vn_kv"], source["isc3_a"], source["isc1_a"])
    except (ValueError, ZeroDivisionError):
        impedances = (math.nan,)
    if not all(np.isfinite(z) and z > 0 for z in impedances):
        raise FeederDataError(f"{source_path}: {_source_line(csv, 'ISC1')}: ISC1 = {source['isc1_a']:g} A and ISC3 = "
                              f"{source['isc3_a']:g} A give no source impedance (the single-phase current is too large "
                              "for the three-phase one)")
    _numeric(coords, paths["Buscoords"], ["x", "y"])
    path = paths["Transformer"]
    if len(trafo) != 1:
        raise FeederDataError(f"{path}: {len(trafo)} transformers; the feeder has one")
    t = _numeric(trafo, path, ["kV_pri", "kV_sec", "MVA", "%XHL", "% resistance"])
    for column, what in (("kV_pri", "a winding voltage"), ("kV_sec", "a winding voltage"), ("MVA", "a rating"),
                         ("%XHL", "a short-circuit reactance")):
        _fail_at(trafo, path, ~(t[column] > 0), lambda row, c=column, w=what: f"{c} of {row.iloc[0]} is {row[c]}: "
                 f"{w} must be positive")
    _fail_at(trafo, path, t["% resistance"] < 0,
             lambda row: f"% resistance of {row.iloc[0]} is {row['% resistance']}: a resistance cannot be negative")
    conn = trafo.get("Conn_pri", pd.Series([""])).astype(str).str.lower().eq("delta") & \
        trafo.get("Conn_sec", pd.Series([""])).astype(str).str.lower().eq("wye")
    _fail_at(trafo, path, ~conn.to_numpy(), lambda row: f"{row.iloc[0]} is not Delta/Wye (the feeder model needs "
             "a Delta primary and a grounded-wye secondary)")
    path = paths["LineCodes"]
    c = _numeric(codes, path, ["R1", "X1", "R0", "X0", "C1", "C0"])
    for column in ("R1", "X1", "R0", "X0", "C1", "C0"):
        _fail_at(codes, path, c[column] < 0, lambda row, col=column: f"{col} of line code {row['Name']} is "
                 f"{row[col]}: an impedance or capacitance cannot be negative")
    for r, x in (("R1", "X1"), ("R0", "X0")):
        _fail_at(codes, path, (c[r] == 0) & (c[x] == 0), lambda row, r=r, x=x: f"{r} and {x} of line code "
                 f"{row['Name']} are both zero: a line without impedance")
    units = codes.get("Units", pd.Series(["km"] * len(codes))).astype(str).str.lower()
    _fail_at(codes, path, units.ne("km").to_numpy(),
             lambda row: f"line code {row['Name']} is per {row.get('Units')!r}; the feeder model takes ohm per km")
    path = paths["Lines"]
    units = lines.get("Units", pd.Series(["m"] * len(lines))).astype(str).str.lower()
    _fail_at(lines, path, units.ne("m").to_numpy(),
             lambda row: f"length of {row['Name']} is in {row.get('Units')!r}; the feeder model takes m")
    path = paths["Loads"]
    n = _numeric(loads, path, ["numPhases", "kV", "Model", "kW", "PF"])
    _fail_at(loads, path, ~(n["kV"] > 0), lambda row: f"kV of {row['Name']} is {row['kV']}: must be positive")
    _fail_at(loads, path, n["kW"] < 0, lambda row: f"kW of {row['Name']} is {row['kW']}: must not be negative")
    _fail_at(loads, path, ~((n["PF"] > 0) & (n["PF"] <= 1)),
             lambda row: f"PF of {row['Name']} is {row['PF']}: a power factor lies in (0, 1]")
    wye = loads.get("Connection", pd.Series([""] * len(loads))).astype(str).str.lower().eq("wye")
    _fail_at(loads, path, ~((n["numPhases"] == 1) & (n["Model"] == 1) & wye).to_numpy(),
             lambda row: f"{row['Name']} is not a single-phase wye constant-PQ load (numPhases 1, Model 1, "
                         "Connection wye): the feeder model has no other")


def _number(text: str) -> float:
    match = re.match(r"\s*([-+0-9.eE]+)", text)
    if match is None:
        raise ValueError(f"no number in {text!r}")
    return float(match.group(1))


def read_source(data_dir: Path | str = DEFAULT_DATA_DIR) -> dict:
    """Read ``csv/Source.csv`` (INI style).

    Returns
    -------
    dict
        ``vn_kv`` (line-to-line base voltage, kV), ``vm_pu`` (source EMF, pu), ``isc3_a`` and ``isc1_a``
        (three-phase and single-phase short-circuit currents, A).
    """
    parser = configparser.ConfigParser(comment_prefixes=("#",))
    parser.read(Path(data_dir) / "csv" / "Source.csv", encoding="utf-8")
    sec = parser["Source"]
    return {"vn_kv": _number(sec["Voltage"]), "vm_pu": _number(sec["pu"]), "isc3_a": _number(sec["ISC3"]),
            "isc1_a": _number(sec["ISC1"])}


def opendss_vsource_impedance_ohm(vn_kv: float, isc3_a: float, isc1_a: float,
                                  x1r1: float = OPENDSS_VSOURCE_X1R1,
                                  x0r0: float = OPENDSS_VSOURCE_X0R0) -> tuple[float, float, float, float]:
    """Sequence impedances of an OpenDSS ``Vsource`` given by ``ISC3``/``ISC1`` (``ZSpecType`` 2).

    Same formulas as OpenDSS ``TVsourceObj.RecalcElementData``: ``MVAsc3 = sqrt(3) kV Isc3``,
    ``|Z1| = kV^2 / MVAsc3`` split with X1/R1, and ``Z0`` (with X0/R0) solving
    ``|2 Z1 + Z0| = 3 V_LN / Isc1``. Z2 = Z1.

    Parameters
    ----------
    vn_kv : float
        Line-to-line base voltage, kV.
    isc3_a, isc1_a : float
        Three-phase and single-phase short-circuit currents, A.
    x1r1, x0r0 : float
        X/R ratios of the positive and zero sequence (OpenDSS defaults 4 and 3).

    Returns
    -------
    tuple of float
        ``(r1_ohm, x1_ohm, r0_ohm, x0_ohm)``.
    """
    mvasc3 = _SQRT3 * vn_kv * isc3_a / 1000.0
    x1 = vn_kv ** 2 / mvasc3 / math.sqrt(1.0 + 1.0 / x1r1 ** 2)
    r1 = x1 / x1r1
    a = 1.0 + x0r0 ** 2
    b = 4.0 * (r1 + x1 * x0r0)
    c = 4.0 * (r1 * r1 + x1 * x1) - (3.0 * vn_kv * 1000.0 / _SQRT3 / isc1_a) ** 2
    r0 = (-b + math.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    return r1, x1, r0, r0 * x0r0


def read_load_profiles_kw(data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Read ``load_profiles_1min_100.csv``: the 100 IEEE 1-minute profiles, kW.

    Returns
    -------
    pandas.DataFrame
        Index ``minute`` (1..1440; minute m is the IEEE time m*60 s, i.e. the interval ending at
        HH:MM), columns ``profile_1`` .. ``profile_100`` in kW.
    """
    path = Path(data_dir) / "load_profiles_1min_100.csv"
    try:
        df = read_csv_rows(path)
    except DataError as exc:
        raise FeederDataError(str(exc)) from None
    twice = [c for c in df.columns if re.fullmatch(r".+\.\d+", c) and c.rsplit(".", 1)[0] in df.columns]
    if twice:  # pandas renames a repeated column "x" to "x.1"
        raise FeederDataError(f"{path}: line 1: column {twice[0].rsplit('.', 1)[0]!r} appears twice")
    if "minute" not in df.columns or "time" not in df.columns:
        raise FeederDataError(f"{path}: columns 'minute' and 'time' expected first")
    lines = df.index
    profiles = df.drop(columns=["time"]).set_index("minute")
    numbers = profiles.apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna().any(axis=1).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        column = profiles.columns[numbers.iloc[i].isna().to_numpy()][0]
        raise FeederDataError(f"{path}: line {lines[i]}: {column} is {profiles.iat[i, profiles.columns.get_loc(column)]!r}, "
                              "not a number")
    minute = pd.to_numeric(df["minute"], errors="coerce")
    bad = minute.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raw = df["minute"].iat[i]
        raise FeederDataError(f"{path}: line {lines[i]}: minute is {'empty' if pd.isna(raw) else repr(raw)}, "
                              "not a number")
    minutes = minute.to_numpy(dtype=float)
    if len(minutes) < 2:
        raise FeederDataError(f"{path}: only one data row; the profiles need one row a minute")
    odd = np.flatnonzero(np.diff(minutes) != 1)
    if odd.size or minutes[0] != 1:
        i = int(odd[0]) + 1 if odd.size else 0
        expected = minutes[i - 1] + 1 if i else 1
        raise FeederDataError(f"{path}: line {lines[i]}: minute {minutes[i]:g}, expected {expected:g} (one row a "
                              "minute from 1, no gap, repeat or disorder)")
    clock = df["time"].astype(str).str.strip().str.extract(r"^(\d{1,2}):(\d\d)(?::(\d\d))?$").astype(float)
    seconds = (clock[0] * 3600 + clock[1] * 60 + clock[2].fillna(0)).to_numpy()
    off = np.flatnonzero(~(seconds == minutes * 60.0))  # NaN (no HH:MM:SS) is off too
    if off.size:
        i = int(off[0])
        raise FeederDataError(f"{path}: line {lines[i]}: time {df['time'].iat[i]!r} is not minute {minutes[i]:g} "
                              f"({int(minutes[i]) // 60:02d}:{int(minutes[i]) % 60:02d}:00): each row's time is the end "
                              "of its minute, HH:MM:SS")
    numbers.index = numbers.index.astype(int)
    try:
        check_values(path, numbers.set_axis(lines, axis=0), **HOUSEHOLD_LOAD_RANGE)
    except DataError as exc:
        raise FeederDataError(str(exc)) from None
    if minutes[-1] < 1440:  # a whole day: the loads repeat it every day
        raise FeederDataError(f"{path}: line {lines[-1]}: the profiles end at minute {minutes[-1]:g}; they need one "
                              "row a minute for the whole day (minutes 1 to 1440)")
    return numbers


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
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
