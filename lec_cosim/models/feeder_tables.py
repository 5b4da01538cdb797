"""The tables of the IEEE European LV feeder folder: reading them and checking that a power flow can use them.

:func:`read_feeder_tables` reads ``data/ieee_eulv/csv`` (buses, lines, line codes, loads, the
transformer, the source) and the 1-minute load profiles (:func:`read_load_profiles_kw`) and checks
them before any net is built: the tables fit together (every bus named has coordinates, codes and
shapes exist, names are unique) and their numbers are physically possible (``_check_physics``). A
broken file is one :class:`FeederDataError` naming the file, the line and the reason. Reading and
checking need no pandapower (processes without a grid read the profiles), so they live apart from
the net builder (:mod:`lec_cosim.models.feeder_net`).
"""

from __future__ import annotations

import configparser
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.source_impedance import opendss_vsource_impedance_ohm
from lec_cosim.models.timeseries import (
    HOUSEHOLD_LOAD_RANGE,
    DataError,
    check_values,
    read_csv_rows,
)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "ieee_eulv"
"""``data/ieee_eulv/`` of the repository: the IEEE CSV feeder files, the load profile table and the
IEEE OpenDSS reference solution (see its ``README.md``)."""

_PHASE_FROM_IEEE = {"A": "a", "B": "b", "C": "c"}


class FeederDataError(ValueError):
    """A table of the feeder folder is inconsistent; the message names the file, the row and the reason."""


def feeder_folder_files(data_dir: Path | str) -> list[Path]:
    """Every table of a feeder folder (``*.csv`` in it and in its ``csv/``): what is built from the folder depends on
    their content (the disk cache's keys)."""
    data_dir = Path(data_dir)
    return sorted({*data_dir.glob("*.csv"), *(data_dir / "csv").glob("*.csv")})


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


def read_load_profiles_kw(data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Read ``load_profiles_1min_100.csv``: the 100 IEEE 1-minute profiles, kW.

    Returns
    -------
    pandas.DataFrame
        Index ``minute`` (1..1440; minute m is the IEEE time m*60 s, i.e. the interval ending at
        HH:MM), columns ``profile_1`` .. ``profile_100`` in kW.
    """
    from lec_cosim.models import disk_cache, timeseries

    path = Path(data_dir) / "load_profiles_1min_100.csv"
    # read and checked once for all processes and runs (~0.07 s each time, in every federate)
    return disk_cache.file_result("profiles", path, ("load_profiles_kw", pd.__version__),
                                  lambda: _read_load_profiles_kw(path),
                                  [Path(__file__), Path(timeseries.__file__)]).copy()  # the parse and its checks


def _read_load_profiles_kw(path: Path) -> pd.DataFrame:
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
