"""Property-based tests of the validation layer (issue 13): malformed inputs generated from the schema and from
valid data files.

Every scenario and data file here is a valid one with one thing broken: a number of the scenario (any field of
``Scenario``, ``LemScenario`` or ``MultiLecScenario``, found by walking their pydantic models) replaced by a
boolean, a text, inf or nan, or a value outside its bounds; a required field deleted; an unknown field added at
any depth; a key given twice in the YAML text; a row of a price, household, PV or IEEE load profile file
duplicated, dropped or swapped, a cell made inf, nan, empty or text, a column scaled by 1000 (W for kW, % for
p.u.), a timestamp garbled, the file cut to one row or short of the horizon. The contract, checked in-process
(``lec_cosim.cli.main``): ``validate`` exits with 2 and prints one line, ``error: <scenario file>: ...``, that
names the field (the dotted path that was broken) or the data file and its row, and no traceback; ``run`` does
the same and writes nothing, starts nothing.

Deterministic (``derandomize``) and bounded: a few hundred cases, well under a minute.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import re
import types
import typing
from pathlib import Path

import annotated_types
import pandas as pd
import pytest
import yaml
from harness import ROOT, SCENARIOS, processes_mentioning
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from lec_cosim.cli import main
from lec_cosim.scenario import (
    LemScenario,
    MultiLecScenario,
    Scenario,
    _ScenarioLoader,
    write_scenario_variant,
)


def _fullest(default: str) -> str:
    """The shipped scenario of ``default``'s kind and horizon with the most top-level sections (``default``
    on a tie): the one that gives the most of the optional sections (devices at the homes, say), so that the
    mutations reach as many of the schema's fields as a shipped scenario can."""
    def read(path: Path) -> dict:
        return yaml.safe_load(path.read_text())
    first = read(SCENARIOS / default)
    alike = [p for p in sorted(SCENARIOS.glob("*.yaml"))
             if read(p).get("kind") == first["kind"] and read(p).get("horizon_h") == first.get("horizon_h")
             and "agents" not in read(p)]  # a scenario with agents runs only in a learning environment
    return max(alike, key=lambda p: (len(read(p)), p.name == default)).name


KINDS = {"battery": (Scenario, _fullest("trondelag_arbitrage.yaml")),
         "lem": (LemScenario, _fullest("ieee_eu_lv_lem_plain.yaml")),
         "mlec": (MultiLecScenario, _fullest("ieee_eu_lv_three_lecs.yaml"))}
"""The base scenario of each kind (see :func:`_fullest`)."""

FAST = settings(derandomize=True, deadline=None, database=None, max_examples=150,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])
"""Cases refused by the schema: milliseconds each."""
SLOW = settings(FAST, max_examples=15)
"""Cases that read data files (a tenth of a second to a second each)."""


# --- the schema, walked ----------------------------------------------------------------------------------------


def _plain(annotation):
    """``(type, optional)``: ``Optional[X]`` is X, optional."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _walk(model: type[BaseModel], prefix: tuple = ()):
    """``(path, FieldInfo, type)`` of every field of ``model`` and of its sections, depth first."""
    for name, info in model.model_fields.items():
        if name == "source_file":  # set by the loader, never by the user
            continue
        kind, _ = _plain(info.annotation)
        yield prefix + (name,), info, kind
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from _walk(kind, prefix + (name,))


def _numeric(model):
    return [(path, info, kind) for path, info, kind in _walk(model) if kind in (int, float)]


def _sections(model):
    """The top level ``()`` and the path and model of every section."""
    return [((), model)] + [(path, kind) for path, _, kind in _walk(model)
                            if isinstance(kind, type) and issubclass(kind, BaseModel)]


def _bounds(info) -> dict:
    found = {}
    for item in info.metadata:
        for name in ("gt", "ge", "lt", "le"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                found[name] = getattr(item, name)
    return found


NUMERIC = {kind: _numeric(model) for kind, (model, _) in KINDS.items()}
BOUNDED = {kind: [(p, i, k) for p, i, k in fields if _bounds(i)] for kind, fields in NUMERIC.items()}


def test_the_walk_finds_the_numbers_of_every_kind():
    # the generators below are only as good as this walk: it must reach the sections' numbers
    found = {kind: {".".join(path) for path, _, _ in fields} for kind, fields in NUMERIC.items()}
    assert {"horizon_h", "battery.capacity_mwh", "grid.transformer.sn_mva", "grid.mv_line.length_km",
            "households.pv.kwp_per_household", "resolution.grid_min", "federation.stall_timeout_s",
            "market.feed_in_tariff"} <= found["battery"]
    assert {"participants.chp.b_eur_per_kwh", "feeder.copies", "learning.seed", "grid.vm_min_pu"} <= found["lem"]
    assert {"lecs.home_battery_kwh", "dso.margin_pu", "negotiation.max_iterations", "pv.peak_kw"} <= found["mlec"]
    assert min(len(fields) for fields in NUMERIC.values()) >= 15


# --- files and the contract ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Each kind's shipped scenario with absolute paths, as a dict, checked valid."""
    folder = tmp_path_factory.mktemp("bases")
    out = {}
    for kind, (_, file) in KINDS.items():
        path = write_scenario_variant(SCENARIOS / file, {}, folder)
        assert _validate(path)[0] == 0
        out[kind] = yaml.safe_load(path.read_text())
    return out


_counter = itertools.count()


def _fresh(root: Path) -> Path:
    """A new empty folder for one generated case (tmp_path is shared by all the examples of a test)."""
    folder = root / f"case{next(_counter)}"
    folder.mkdir()
    return folder


class _Dumper(yaml.SafeDumper):
    """YAML as the scenario loader reads it: a text such as '1e-09', which it reads as a number, is quoted."""

    yaml_implicit_resolvers = _ScenarioLoader.yaml_implicit_resolvers


def _dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=math.inf)


def _write(folder: Path, data: dict, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(_dump(data))
    return path


def _validate(path: Path, *more: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path), *more])
    return code, out.getvalue(), err.getvalue()


def _refused(path: Path, *more: str) -> str:
    """The one error line of ``validate``, asserting the contract; ``<scenario>`` stands for the file's path."""
    code, out, err = _validate(path, *more)
    note(f"exit {code}: {err.strip()}")
    assert code == 2, (out, err)
    return _one_line(path, err)


def _one_line(path: Path, err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert lines[0].startswith(f"error: {path}: "), lines[0]  # the scenario file, first
    return lines[0].replace(str(path), "<scenario>", 1)


def _set(data: dict, path: tuple, value) -> None:
    node = data
    for key in path[:-1]:
        if node.get(key) is None:
            node[key] = {}  # a section the scenario leaves to its defaults
        node = node[key]
    node[path[-1]] = value


def _get(data: dict, path: tuple):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _kind_text(value) -> str:
    """How the error line shows a wrong value (``lec_cosim.scenario._kind``)."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"the number {value!r}"


# --- scenarios: numbers of the wrong type, out of bounds, huge -------------------------------------------------


def _wrong_type(kind_field):
    """A boolean, a number written as text, other text, inf, -inf or nan, for a numeric field."""
    _, _, number = kind_field
    as_text = st.integers(-5, 500).map(str) if number is int else st.floats(-5, 500, allow_nan=False).map(repr)
    return st.one_of(st.booleans(), as_text, st.sampled_from(["abc", "12 kW", "", "1,5", "on"]),
                     st.sampled_from([math.inf, -math.inf, math.nan]))


@st.composite
def wrong_types(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    field = draw(st.sampled_from(NUMERIC[kind]))
    return kind, field[0], draw(_wrong_type(field))


@given(case=wrong_types())
@FAST
def test_a_number_of_the_wrong_type_is_refused_at_its_field(case, bases, tmp_path):
    kind, path, value = case
    data = yaml.safe_load(yaml.safe_dump(bases[kind]))
    _set(data, path, value)
    line = _refused(_write(_fresh(tmp_path), data))
    assert f"<scenario>: {'.'.join(path)}: " in line, line
    # never coerced: the line says what was given (a boolean, a text), or that it is not finite
    shown = "the number nan" if isinstance(value, float) and math.isnan(value) else _kind_text(value)
    assert f"not {shown}" in line, line


@st.composite
def out_of_bounds(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    path, info, number = draw(st.sampled_from(BOUNDED[kind]))
    bounds = _bounds(info)
    side = draw(st.sampled_from(sorted(bounds)))
    bound = bounds[side]
    step = draw(st.sampled_from([1, 1000, 10**6] if number is int else [1e-9, 0.5, 1.0, 1e6]))
    if side == "gt":
        value = bound - draw(st.sampled_from([0, step]))
    elif side == "ge":
        value = bound - step
    elif side == "lt":
        value = bound + draw(st.sampled_from([0, step]))
    else:
        value = bound + step
    value = int(value) if number is int else float(value)
    return kind, path, value, side


@given(case=out_of_bounds())
@FAST
def test_a_number_outside_its_bounds_is_refused_at_its_field(case, bases, tmp_path):
    kind, path, value, side = case
    data = yaml.safe_load(yaml.safe_dump(bases[kind]))
    _set(data, path, value)
    line = _refused(_write(_fresh(tmp_path), data))
    assert f"<scenario>: {'.'.join(path)}: Input should be {'greater' if side in ('gt', 'ge') else 'less'} than" \
        in line, line


@st.composite
def huge_numbers(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    path, _, number = draw(st.sampled_from(NUMERIC[kind]))
    value = draw(st.sampled_from([10**12, 10**300] if number is int else [1e12, 1e300, -1e300]))
    return kind, path, value


@given(case=huge_numbers())
@SLOW
def test_a_huge_number_is_taken_or_refused_in_one_line(case, bases, tmp_path):
    # A huge capacity may be legal; then the scenario is valid. Otherwise: one line, no traceback, no hang.
    kind, path, value = case
    data = yaml.safe_load(yaml.safe_dump(bases[kind]))
    _set(data, path, value)
    scenario = _write(_fresh(tmp_path), data)
    code, _, err = _validate(scenario)
    note(f"exit {code}: {err.strip()}")
    event("valid" if code == 0 else "refused")
    assert code in (0, 2), err
    if code == 2:
        line = _one_line(scenario, err)
        # the field itself, or what it collides with (a data file the horizon runs past, learnt bids, ...)
        assert re.match(r"error: <scenario>: [a-z_][a-z0-9_]*(\.[a-z0-9_]+)*: ", line), line
        event("refused at the field itself" if f"<scenario>: {'.'.join(path)}: " in line else "refused elsewhere")


# --- scenarios: a field missing, an unknown one, a key twice ---------------------------------------------------


@st.composite
def missing_fields(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    model = KINDS[kind][0]
    required = [path for path, info, _ in _walk(model) if info.is_required()]
    return kind, draw(st.sampled_from(required))


@given(case=missing_fields())
@FAST
def test_a_missing_required_field_is_named(case, bases, tmp_path):
    kind, path = case
    data = yaml.safe_load(yaml.safe_dump(bases[kind]))
    if _get(data, path[:-1]) is None or path[-1] not in _get(data, path[:-1]):
        return  # an optional section the scenario leaves out: nothing in it is missing
    del _get(data, path[:-1])[path[-1]]
    line = _refused(_write(_fresh(tmp_path), data))
    if path == ("kind",):  # the study: the message says what to add
        assert f"<scenario>: kind: missing; add `kind: {bases[kind]['kind']}`" in line, line
        return
    assert f"<scenario>: {'.'.join(path)}: Field required" in line, line


KEY = st.from_regex(r"\A[a-z][a-z0-9_]{0,15}\Z")


@st.composite
def unknown_fields(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    section, model = draw(st.sampled_from(_sections(KINDS[kind][0])))
    known = set(model.model_fields) | ({"lecs", "framework"} if not section else set())  # these choose the kind
    key = draw(KEY.filter(lambda k: k not in known))
    value = draw(st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none(),
                           st.lists(st.integers(), max_size=2)))
    return kind, section, key, value


@given(case=unknown_fields())
@FAST
def test_an_unknown_field_is_named_at_any_depth(case, bases, tmp_path):
    kind, section, key, value = case
    data = yaml.safe_load(yaml.safe_dump(bases[kind]))
    _set(data, section + (key,), value)
    line = _refused(_write(_fresh(tmp_path), data))
    assert f"<scenario>: {'.'.join(section + (key,))}: Extra inputs are not permitted" in line, line


MAPPING_KEY = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):( |$)")


@st.composite
def twice(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    return kind, draw(st.integers(0, 10**6))


@given(case=twice())
@FAST
def test_a_key_given_twice_is_refused_at_its_line(case, bases, tmp_path):
    kind, pick = case
    lines = _dump(bases[kind]).splitlines()
    keyed = [i for i, line in enumerate(lines) if MAPPING_KEY.match(line)]
    i = keyed[pick % len(keyed)]
    key = MAPPING_KEY.match(lines[i]).group(2)
    lines.insert(i + 1, lines[i])  # right below: the first one then holds nothing, the second its old value
    path = _fresh(tmp_path) / "scenario.yaml"
    path.write_text("\n".join(lines) + "\n")
    line = _refused(path)
    assert f"<scenario>: line {i + 2}: invalid YAML: key {key!r} appears twice (first on line {i + 1})" in line, line


# --- data files ------------------------------------------------------------------------------------------------


class Series:
    """A valid data file of one kind of scenario, and how its errors name rows."""

    def __init__(self, name, kind, field, lines, values, *, high=None, row_word="row", needed_rows=None,
                 single_rows=None):
        self.name, self.kind, self.field, self.lines = name, kind, field, lines
        self.values = values  # indices of the columns the scenario reads (only these are checked)
        self.high = high  # the highest plausible value (None: prices, checked by their median)
        self.row_word, self.needed_rows = row_word, needed_rows
        self.price = high is None
        self.header = lines[0].split(",")
        # rows that alone pass the value checks (non-zero, plausible): what "one row" keeps
        self.single_rows = single_rows

    def __repr__(self):
        return f"Series({self.name})"


def _nonzero_rows(lines, columns, low=0.01):
    return [i for i, line in enumerate(lines[1:]) if all(float(line.split(",")[c]) >= low for c in columns)]


@pytest.fixture(scope="module")
def series(bases, tmp_path_factory):
    """The data files the corruptions start from, each checked valid with its scenario.

    The community battery gets small ones (a day and a half of prices from 2019-01-01, two days of 2016
    household and PV profiles, replayed on 2019); the local market and the three LECs read the whole 2016 PV
    file up to 28 May (they need 26 May) and the IEEE load profile table (a day of minutes).
    """
    folder = tmp_path_factory.mktemp("series")
    prices = (ROOT / "data/prices/NO1_dayahead_2019_hourly_EUR_per_MWh.csv").read_text().splitlines()[:37]
    households = (ROOT / "data/household/simbench_H0_household_profiles_2016_15min.csv").read_text().splitlines()[:193]
    pv_year = (ROOT / "data/pv/simbench_PV_profiles_2016_15min.csv").read_text().splitlines()
    pv_to_may = pv_year[:1 + 96 * (31 + 29 + 31 + 30 + 28)]  # to 28 May: the LEM and LEC PV day is 26 May
    profiles = (ROOT / "data/ieee_eulv/load_profiles_1min_100.csv").read_text().splitlines()
    header = households[0].split(",")
    ploads = [header.index(f"{p}_pload") for p in bases["battery"]["households"]["load_profiles"]]
    pv_columns = list(range(1, 9))
    sunny = [14000 + i for i in _nonzero_rows(pv_year[14000:14100], pv_columns)]  # late May, as rows of the file
    ieee = list(range(2, len(profiles[0].split(","))))
    made = [
        Series("prices", "battery", ("market", "price_file"), prices, [1], needed_rows=24,
               single_rows=list(range(len(prices) - 1))),
        Series("household", "battery", ("households", "load_profile_file"), households, ploads, high=50.0,
               needed_rows=96, single_rows=_nonzero_rows(households, ploads)),
        Series("pv", "battery", ("households", "pv", "profile_file"), pv_year[:193], [1], high=1.5, needed_rows=96,
               single_rows=_nonzero_rows(pv_year[:193], [1])),
        Series("pv", "lem", ("participants", "pv", "profile_file"), pv_to_may, pv_columns, high=1.5,
               single_rows=sunny),
        Series("pv", "mlec", ("pv", "profile_file"), pv_to_may, pv_columns, high=1.5, single_rows=sunny),
        Series("load_profiles_1min_100", "lem", ("feeder", "data_dir"), profiles, ieee, high=50.0, row_word="line",
               needed_rows=1440, single_rows=list(range(1440))),
        Series("load_profiles_1min_100", "mlec", ("feeder", "data_dir"), profiles, ieee, high=50.0, row_word="line",
               needed_rows=1440, single_rows=list(range(1440))),
    ]
    assert [f"{s.kind} {s.name}" for s in made] == SERIES
    for s in made:
        scenario, _ = _place(s, s.lines, bases, _fresh(folder))
        assert _validate(scenario)[0] == 0, (s, _validate(scenario))
    return made


def _place(s: Series, lines: list[str], bases, folder: Path) -> tuple[Path, Path]:
    """The scenario of ``s.kind`` reading ``lines`` as its file; returns the scenario and the data file."""
    data = yaml.safe_load(yaml.safe_dump(bases[s.kind]))
    if s.kind == "battery":
        data["start"] = pd.Timestamp("2019-01-01").to_pydatetime()
    if s.field == ("feeder", "data_dir"):  # the IEEE folder: its tables, and the profile table under test
        (folder / "csv").symlink_to(ROOT / "data" / "ieee_eulv" / "csv")
        target = folder / f"{s.name}.csv"
        _set(data, s.field, str(folder))
    else:
        target = folder / f"{s.name}.csv"
        _set(data, s.field, str(target))
    target.write_text("\n".join(lines) + "\n")
    return _write(folder, data), target


def _cells(line: str, column: int, value: str) -> str:
    cells = line.split(",")
    cells[column] = value
    return ",".join(cells)


SERIES = ["battery prices", "battery household", "battery pv", "lem pv", "mlec pv", "lem load_profiles_1min_100",
          "mlec load_profiles_1min_100"]
"""The ``series`` fixture's files, in its order."""
HOWS = ["duplicate", "drop", "swap", "cell", "scale", "timestamp", "one_row", "cut"]
CORRUPTIONS = [(name, how) for name in SERIES for how in HOWS
               if not (how == "cut" and name in ("lem pv", "mlec pv"))]  # their PV file is longer than they need


@st.composite
def corruptions(draw, series_list, how=None):
    """``(series, lines, how, expected)``: a valid file with one thing broken, and what its error line must hold
    (each item a substring, or a tuple of substrings one of which)."""
    s = draw(st.sampled_from(series_list))
    rows = s.lines[1:]
    n = len(rows)
    def line_of(i: int) -> str:  # data row i is file line i + 2 (header 1)
        return f"row {i + 2}"

    how = how or draw(st.sampled_from(HOWS if s.needed_rows else HOWS[:-1]))
    # where: mostly near the top (a file is read whole, so any row will do; the top keeps cases cheap to shrink)
    i = draw(st.integers(0, min(n, 60) - 2))
    ieee = s.row_word == "line"
    if how == "duplicate":
        lines = s.lines[:i + 2] + [s.lines[i + 1]] + s.lines[i + 2:]
        expected = [line_of(i + 1), "expected" if ieee else "appears twice"]
    elif how == "drop":
        i = max(i, 1)
        lines = s.lines[:i + 1] + s.lines[i + 2:]
        expected = [line_of(i), "expected" if ieee else "evenly spaced"]
    elif how == "swap":
        j = draw(st.integers(i + 1, min(n - 1, i + 8)))
        lines = list(s.lines)
        lines[i + 1], lines[j + 1] = lines[j + 1], lines[i + 1]
        expected = [line_of(max(i, 1)) if ieee else line_of(i + 1),
                    "expected" if ieee else "comes before the previous row"]
    elif how == "cell":
        column = draw(st.sampled_from(s.values))
        value = draw(st.sampled_from(["inf", "-inf", "nan", "NaN", "", " ", "abc", "1,5", "0x1F", "12kW"]))
        if "," in value:
            value = f'"{value}"'
        lines = s.lines[:i + 1] + [_cells(s.lines[i + 1], column, value)] + s.lines[i + 2:]
        expected = [line_of(i), "price" if s.price else s.header[column], ("not a number", "not a finite number")]
    elif how == "scale":
        column = draw(st.sampled_from([c for c in s.values
                                       if s.price or 1000 * max(float(r.split(",")[c]) for r in rows) > s.high]))
        lines = [s.lines[0]] + [_cells(r, column, repr(float(r.split(",")[column]) * 1000)) for r in rows]
        expected = ["EUR/GWh"] if s.price else [s.header[column], "implausible"]
    elif how == "timestamp":
        stamp = draw(st.sampled_from(["yesterday", "2016-13-01T00:00", "2016-02-30T12:00", "2016-01-01T25:00", "",
                                      "NaT", "01.01.2016 00:15", "2016-01-01T00:15:00+99:00", "2016-01-01T00:15Z",
                                      "2016-01-01T00:15+05:00"]))
        column = 0
        reasons = ("is not a timestamp", "has a UTC offset")
        if ieee:  # the minute, or the clock time beside it
            column = draw(st.sampled_from([0, 1]))
            stamp = draw(st.sampled_from(["x", "", "1e400", "25:00:00", "00:00:61"] if column else ["x", "", "-"]))
            reasons = ("is not minute", "not a number")
        elif s.price:  # a price's time has a UTC offset: without one, or one of 2016 among 2019's rows
            i = max(i, 1)
            stamp += "+01:00" if stamp and draw(st.booleans()) else ""
            reasons = ("is not a timestamp", "has no UTC offset", "comes before the previous row")
        lines = s.lines[:i + 1] + [_cells(s.lines[i + 1], column, stamp)] + s.lines[i + 2:]
        expected = [line_of(i), reasons]
    elif how == "one_row":
        k = draw(st.sampled_from(s.single_rows))
        lines = [s.lines[0], s.lines[k + 1]]
        expected = ["only one data row"]
    else:  # cut: short of the horizon
        m = draw(st.integers(2, s.needed_rows - 1))
        lines = s.lines[:m + 1]
        dark = any(all(float(r.split(",")[c]) == 0 for r in lines[1:]) for c in s.values)  # a PV file cut at night
        expected = [line_of(m - 1), "1440"] if ieee else ["zero throughout"] if dark else ["covers"]
    return s, lines, how, expected


@pytest.mark.parametrize("name, how", CORRUPTIONS)
@given(data=st.data())
@settings(SLOW, max_examples=2)
def test_a_corrupted_data_file_is_refused_naming_file_and_row(name, how, data, series, bases, tmp_path):
    s, lines, how, expected = data.draw(corruptions([series[SERIES.index(name)]], how))
    note(f"{s} {how} {expected}")
    scenario, target = _place(s, lines, bases, _fresh(tmp_path))
    line = _refused(scenario)
    assert f"{target}: " in line, line  # the data file
    for needles in expected:
        if isinstance(needles, str):
            # rows are file lines, header 1; the IEEE table's own messages say "line", the shared value check "row"
            needles = (needles, needles.replace("row ", "line ")) if s.row_word == "line" else (needles,)
        assert any(needle in line for needle in needles), (needles, line)


# --- run: refused before anything is written or started --------------------------------------------------------


@given(data=st.data())
@settings(SLOW, max_examples=8)
def test_run_refuses_a_malformed_input_before_writing_or_starting_anything(data, series, bases, tmp_path):
    folder = _fresh(tmp_path)
    (folder / "in").mkdir()
    if data.draw(st.booleans(), label="a data file"):
        s, lines, _, _ = data.draw(corruptions(series))
        scenario, _ = _place(s, lines, bases, folder / "in")
    else:
        kind, path, value = data.draw(wrong_types())
        scenario_data = yaml.safe_load(yaml.safe_dump(bases[kind]))
        _set(scenario_data, path, value)
        scenario = _write(folder / "in", scenario_data)
    parent = folder / "results"
    parent.mkdir()
    out = parent / "run"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["run", str(scenario), "--out", str(out), "--quiet"])
    note(err.getvalue())
    assert code == 2
    _one_line(scenario, err.getvalue())
    assert list(parent.iterdir()) == []  # no run folder, no .partial, no .incomplete, no lock file
    assert processes_mentioning(str(out)) == []
