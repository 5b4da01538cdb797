"""Where a feeder comes from: the IEEE European LV test feeder, a SimBench grid, a pandapower net or an OpenDSS model.

Every source gives the same thing, a :class:`Feeder`: a pandapower net the project's power-flow backends
solve (:mod:`lec_cosim.models.pgm_backend`, pandapower itself, :mod:`lec_cosim.models.opendss_backend`),
the feeder's loads as **connection points** (where households go: bus, phases, row in the net's load
table) and, where the source has them, their profiles. Nothing here knows a study or HELICS.

Sources (:func:`load_feeder` dispatches on the first word of a source's ``"kind: value"``, as ``lec-cosim feeder``
and a local-market scenario's ``feeder.source`` take it):

* ``ieee_eu_lv`` (:func:`ieee_eu_lv_feeder`): the IEEE European LV test feeder from its CSV folder
  (:mod:`lec_cosim.models.feeder_net`), 55 single-phase loads, 1-minute profiles of one day (on
  2000-01-01: the IEEE gives no date).
* ``simbench`` (:func:`simbench_feeder`): any grid of the SimBench data set by its code, through the
  ``simbench`` package, with its year of 15-minute load and generation profiles (absolute values).
* ``pandapower`` (:func:`pandapower_feeder`): a pandapower net saved as JSON, balanced (``load``,
  ``sgen``) or three-phase (``asymmetric_load``, ``asymmetric_sgen`` and zero-sequence line data).
* ``opendss`` (:func:`lec_cosim.models.opendss_feeder.opendss_feeder`): an OpenDSS model read with
  dss-python.

What a source cannot express in the project's grid model (an element kind, a control, a setting) is
refused with :class:`FeederSourceError`: one line naming the file (or the SimBench code) and the element,
never dropped. Each source is checked against its own engine on a snapshot of its own data
(:func:`pandapower_deviation_pu`, :func:`~lec_cosim.models.opendss_feeder.opendss_deviation_pu`,
``tests/test_feeder_sources.py``).
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.feeder_model import (
    MAG0_PRACTICALLY_INFINITE_PERCENT,
    PHASES,
    Feeder,
    FeederSourceError,
    check_expressible,
    connections_of,
    drop_out_of_service,
    element_name,
    resolve_switches,
)
from lec_cosim.models.opendss_feeder import opendss_feeder


# --- the sources ----------------------------------------------------------------------------------------------
def solvable(feeder: Feeder, where: str) -> None:
    """Refuse, naming ``where``, a feeder the project's power-flow backend cannot build (a vector group, a
    setting it does not model): better at reading than at the first step of a run."""
    from lec_cosim.models.pgm_backend import PgmPowerFlow, UnsupportedNetwork

    try:
        PgmPowerFlow(feeder.net, symmetric=feeder.balanced)
    except UnsupportedNetwork as error:
        raise FeederSourceError(f"{where}: {error}") from None


def ieee_eu_lv_feeder(data_dir: Path | str | None = None) -> Feeder:
    """The IEEE European LV test feeder (:func:`lec_cosim.models.feeder_net.build_ieee_eulv`): 55 single-phase
    households, their 1-minute profiles of one day (kW; Q at their power factor 0.95)."""
    from lec_cosim.models.feeder_net import (
        DEFAULT_DATA_DIR,
        SOURCE_IMPEDANCE_LINE_NAME,
        build_ieee_eulv,
    )

    data_dir = Path(DEFAULT_DATA_DIR if data_dir is None else data_dir)
    model = build_ieee_eulv(data_dir, minute=1)
    connections = connections_of(model.net)
    # minute k of the IEEE profiles holds over the k-th minute of the day (the IEEE CSV labels it by its end,
    # 00:01 ... 24:00): labelled by the minute's start, as the project's profiles are (and the OpenDSS source's)
    p = model.profiles_kw.set_axis(pd.date_range("2000-01-01 00:00", periods=len(model.profiles_kw), freq="1min",
                                                 name="time"))
    q = p * np.tan(np.arccos(model.load_power_factor))
    source_lines = tuple(model.net.line.index[model.net.line["name"] == SOURCE_IMPEDANCE_LINE_NAME])
    return Feeder(name="IEEE European LV test feeder", source=f"ieee_eu_lv: {data_dir}", net=model.net,
                  connections=connections, load_p_kw=p, load_q_kvar=q, source_lines=source_lines)


def pandapower_feeder(path: Path | str) -> Feeder:
    """A pandapower net from its JSON file (``pandapower.to_json``), checked and with its switches applied.

    Raises
    ------
    FeederSourceError
        The file is missing or not a pandapower net, or it holds what the grid model cannot express.
    """
    import pandapower as pp

    path = Path(path)
    if not path.is_file():
        raise FeederSourceError(f"{path}: file not found")
    try:
        net = pp.from_json(str(path))
    except Exception as error:  # pandapower raises many kinds for a file that is not its JSON
        raise FeederSourceError(f"{path}: not a pandapower net ({type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else ''})") from None
    notes = resolve_switches(net, str(path))
    check_expressible(net, str(path))
    notes += drop_out_of_service(net)
    if not (len(net.load) or len(net.asymmetric_load)):
        raise FeederSourceError(f"{path}: load: the net has no loads, so no household can be connected")
    if len(net.asymmetric_load) or len(net.asymmetric_sgen):
        missing = [c for c in ("r0_ohm_per_km", "x0_ohm_per_km") if c not in net.line.columns
                   or net.line[c].isna().any()]
        if missing:
            column = missing[0]
            bad = net.line.index[net.line[column].isna()][0] if column in net.line.columns else net.line.index[0]
            raise FeederSourceError(f"{path}: {element_name(net, 'line', bad)}: no {column}: single-phase loads need "
                                    "the lines' zero-sequence data for a three-phase flow")
        tr = net.trafo
        if len(tr) and "mag0_percent" in tr.columns:
            finite = tr.index[tr["mag0_percent"].fillna(np.inf) < MAG0_PRACTICALLY_INFINITE_PERCENT]
            if len(finite):
                raise FeederSourceError(
                    f"{path}: {element_name(net, 'trafo', finite[0])}: a zero-sequence magnetising impedance of "
                    f"{tr.at[finite[0], 'mag0_percent']:g} % (split by si0_hv_partial): the grid model's three-phase "
                    "transformers have none (OpenDSS's model: the leakage impedance only); set mag0_percent to 1e9 "
                    "if that is your transformer")
        notes.append("the ext_grid is an ideal source in every sequence (give a source impedance as a line)")
    feeder = Feeder(name=path.stem, source=f"pandapower: {path}", net=net, connections=connections_of(net, str(path)),
                    notes=notes)
    solvable(feeder, str(path))
    return feeder


def simbench_codes(lv_only: bool = True) -> list[str]:
    """The SimBench codes the ``simbench`` package knows (LV grids of one voltage level if ``lv_only``)."""
    import simbench as sb

    codes = sb.collect_all_simbench_codes()
    return [c for c in codes if c.split("-")[1] == "LV"] if lv_only else list(codes)


def simbench_cache_dir() -> Path:
    """Where SimBench grids read once are kept (``$LEC_COSIM_CACHE``, else the user's cache folder, a folder per
    simbench and pandapower version): the package parses its whole data set for every grid, 5-8 s here."""
    from importlib.metadata import (
        version,  # not the packages themselves: importing simbench takes seconds
    )

    from lec_cosim.models.disk_cache import cache_dir

    root = cache_dir()  # $LEC_COSIM_CACHE, else the user's cache folder, as every kept computation
    packages = "-".join(f"{name}-{version(name)}" for name in ("simbench", "pandapower", "pandas", "numpy"))
    return root / f"{SIMBENCH_CACHE_FORMAT}-{packages}"


SIMBENCH_CACHE_FORMAT = "simbench-v1"
"""Changes when what is kept changes: a new folder, the old ones left unread."""


@functools.lru_cache(maxsize=4)
def _simbench_net_cached(code: str):
    import pickle

    if not re.fullmatch(r"[A-Za-z0-9._-]+", code) or ".." in code:  # a code names a file of the cache below
        raise FeederSourceError(f"simbench {code}: not a SimBench code (letters, digits, '-', '_' and '.' only)")
    cached = simbench_cache_dir() / f"{code}.pickle"
    if cached.is_file():
        try:
            return pickle.loads(cached.read_bytes())  # written below by this function only
        except Exception:  # a damaged file: read the data set again
            pass
    import simbench as sb

    codes = sb.collect_all_simbench_codes()
    if code not in codes:
        lv = [c for c in codes if c.split("-")[1] == "LV"]
        raise FeederSourceError(f"simbench {code}: not a SimBench code; the {len(lv)} LV grids are "
                                f"{', '.join(lv[:6])}, ... (simbench.collect_all_simbench_codes() lists all "
                                f"{len(codes)})")
    net = sb.get_simbench_net(code)
    read = (net, sb.get_absolute_values(net, profiles_instead_of_study_cases=True))
    partial = cached.with_name(f".{cached.name}.{os.getpid()}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(pickle.dumps(read))
        partial.replace(cached)  # whole or not at all, also with two processes at once
    except (OSError, pickle.PicklingError):  # no cache where it cannot be written: only slower
        pass
    finally:
        partial.unlink(missing_ok=True)
    return read


def simbench_net(code: str):
    """The SimBench grid as the ``simbench`` package gives it (a copy: reading the data set takes seconds, so it
    is read once and kept: :func:`simbench_cache_dir`)."""
    return copy.deepcopy(_simbench_net_cached(code)[0])


def simbench_feeder(code: str) -> Feeder:
    """A SimBench grid (``simbench.get_simbench_net``) with its year of 15-minute profiles (absolute values).

    The loads are SimBench's three-phase connection points (balanced, at their own power factor); the
    generators (``sgen``: PV, wind, ...) keep their profiles. The switches are applied (closed ones change
    nothing; SimBench's LV grids have only closed ones) and the profiles are played back by position (row k at
    k x 15 min after 2016-01-01 00:00; SimBench's own labels follow summer time).

    Raises
    ------
    FeederSourceError
        An unknown code, or a grid with what the project's grid model cannot express (e.g. the storage units
        or several sources of the larger multi-level grids).
    """
    where = f"simbench {code}"
    net = simbench_net(code)
    profiles = _simbench_net_cached(code)[1]  # simbench.get_absolute_values of the grid: not changed below
    # SimBench's time labels follow German summer time (01:45 jumps to 03:00 on 27 March 2016, 02:00-02:45 come
    # twice on 30 October): its rows are played back by position, row k at k x 15 min after 1 January 00:00, the
    # project's clock (local standard time all year; data/README.md)
    first = pd.to_datetime(net.profiles["load"]["time"].iloc[0], format="%d.%m.%Y %H:%M")
    times = pd.date_range(first, periods=len(net.profiles["load"]), freq="15min")
    for table in ("storage",):  # SimBench gives storage without profiles in some grids; refuse, never drop
        if len(net[table]):
            raise FeederSourceError(f"{where}: {element_name(net, table, net[table].index[0])}: storage units of the "
                                    "grid are not expressible (give batteries to households instead)")
    notes = resolve_switches(net, where)
    check_expressible(net, where)
    notes += drop_out_of_service(net)
    index = pd.DatetimeIndex(times, name="time")

    def table(element: str, column: str, names) -> pd.DataFrame:
        values = profiles[(element, column)]
        values = values.loc[:, [c for c in net[element].index]]
        return pd.DataFrame(values.to_numpy() * 1000.0, index=index[:len(values)], columns=list(names))

    load_names = [str(n) for n in net.load["name"]]
    p = table("load", "p_mw", load_names)
    q = table("load", "q_mvar", load_names)
    sgen = table("sgen", "p_mw", [str(n) for n in net.sgen["name"]]) if len(net.sgen) else None
    feeder = Feeder(name=code, source=f"simbench: {code}", net=net, connections=connections_of(net, where),
                    load_p_kw=p, load_q_kvar=q, sgen_p_kw=sgen, notes=notes)
    solvable(feeder, where)
    return feeder


def pandapower_deviation_pu(original, feeder: Feeder, time=None) -> float:
    """Largest voltage difference, pu, between pandapower's own power flow of a source's net and the project's
    (power-grid-model) flow of the feeder made from it: the check of a SimBench or pandapower source.

    ``original`` is the net as its source gives it (switches, out-of-service elements and all). At ``time``
    both nets take the feeder's profiles (loads and generators by name); otherwise the powers the nets hold.
    pandapower runs ``runpp`` (balanced) or ``runpp_3ph``; the comparison covers every bus of the feeder (the open
    ends of lines behind open switches are the feeder's own buses, pandapower's internal ones).
    """
    import pandapower as pp

    from lec_cosim.models.pgm_backend import PgmPowerFlow

    net = feeder.net
    if time is not None:
        for table, profile, column in (("load", feeder.load_p_kw, "p_mw"), ("load", feeder.load_q_kvar, "q_mvar"),
                                       ("sgen", feeder.sgen_p_kw, "p_mw")):
            if profile is None or not len(net[table]):
                continue
            values = profile.loc[time] / 1000.0
            for target in (original, net):
                rows = target[table]["name"].astype(str).map(values)
                target[table].loc[rows.notna(), column] = rows[rows.notna()].to_numpy(dtype=float)
    balanced = feeder.balanced
    if balanced:
        pp.runpp(original, tolerance_mva=1e-10, calculate_voltage_angles=True, numba=False)
        theirs = original.res_bus[["vm_pu"]]
    else:
        pp.runpp_3ph(original, tolerance_mva=1e-10)
        theirs = original.res_bus_3ph[[f"vm_{ph}_pu" for ph in PHASES]]
    flow = PgmPowerFlow(net, symmetric=balanced).solve()
    ours = pd.DataFrame(flow.vm_pu, index=net.bus.index)
    common = net.bus.index.intersection(theirs.index)  # not the open ends of lines: pandapower keeps those inside
    return float(np.max(np.abs(ours.loc[common].to_numpy() - theirs.loc[common].to_numpy())))


IEEE_REFERENCE_SNAPSHOTS = {1: "0001_offpeak", 566: "0566_onpeak", 1440: "1440_end"}
"""Minutes of the day at which the IEEE published OpenDSS's solution of its feeder (``reference_solution_opendss/``)."""


def ieee_reference_deviation_pu(data_dir: Path | str | None = None, minute: int = 566) -> float:
    """Largest voltage difference, pu, between the project's flow (power-grid-model) of the IEEE feeder with its
    loads at ``minute`` and the IEEE's published OpenDSS solution of that minute (1, 566 or 1440): the check of the
    ``ieee_eu_lv`` source against its own engine."""
    from lec_cosim.models.feeder_net import DEFAULT_DATA_DIR, build_ieee_eulv
    from lec_cosim.models.pgm_backend import PgmPowerFlow

    data_dir = Path(DEFAULT_DATA_DIR if data_dir is None else data_dir)
    if minute not in IEEE_REFERENCE_SNAPSHOTS:
        raise FeederSourceError(f"minute {minute}: the IEEE published its solution at minutes "
                                f"{sorted(IEEE_REFERENCE_SNAPSHOTS)} only")
    tag = IEEE_REFERENCE_SNAPSHOTS[minute]
    path = data_dir / "reference_solution_opendss" / f"snapshot_minute{tag}_bus_voltages.csv"
    if not path.is_file():
        raise FeederSourceError(f"{path}: file not found (the IEEE's reference solution)")
    ref = pd.read_csv(path)
    base_v = ref["BasekV"].to_numpy() * 1000.0 / np.sqrt(3.0)
    theirs = np.c_[ref["Magnitude1"], ref["Magnitude2"], ref["Magnitude3"]] / base_v[:, None]
    names = ["SourceBus" if b == "SOURCEBUS" else str(int(b)) for b in ref["Bus"]]
    model = build_ieee_eulv(data_dir, minute=minute)
    flow = PgmPowerFlow(model.net, symmetric=False).solve()
    ours = pd.DataFrame(flow.vm_pu, index=model.net.bus["name"].astype(str).to_numpy())
    return float(np.max(np.abs(ours.loc[names].to_numpy() - theirs)))


CHECK_TOLERANCE_PU = 1e-4
"""The largest voltage difference to a source's own engine that ``lec-cosim feeder --check`` accepts."""


def own_engine_deviation_pu(source: str, base: Path | None = None, time=None) -> tuple[float, str]:
    """The check of a feeder source against its own engine: ``(largest voltage difference in pu, what was
    compared)``. OpenDSS models against OpenDSS's solution; SimBench grids and pandapower nets against
    pandapower's flow (SimBench at ``time``, default the quarter-hour of the year's peak load); the IEEE
    feeder against the IEEE's published OpenDSS solution at minute 566 (its evening peak)."""
    from pandapower.powerflow import LoadflowNotConverged

    from lec_cosim.models.pgm_backend import (
        PowerFlowNotConverged,
        PowerGridError,
        UnsupportedNetwork,
    )

    if time is not None and source.partition(":")[0].strip() != "simbench":
        raise FeederSourceError(f"--time {time}: only a SimBench source has a year to choose a snapshot from")
    try:
        return _own_engine_deviation_pu(source, base, time)
    except (UnsupportedNetwork, PowerGridError, LoadflowNotConverged, PowerFlowNotConverged) as error:
        raise FeederSourceError(f"{source}: the check's power flow failed: {type(error).__name__}: "
                                f"{' '.join(str(error).split())}") from None


def _own_engine_deviation_pu(source: str, base: Path | None, time) -> tuple[float, str]:
    import pandapower as pp

    from lec_cosim.models.opendss_feeder import opendss_deviation_pu

    kind, _, value = (part.strip() for part in source.partition(":"))
    feeder = load_feeder(source, base)
    if kind == "opendss":
        return opendss_deviation_pu(feeder.source.partition(": ")[2]), "OpenDSS's own solution of the model"
    if kind == "simbench":
        if time is None:
            when = feeder.load_p_kw.sum(axis=1).idxmax()
        else:
            try:
                when = pd.Timestamp(time)
            except ValueError:
                when = None
            if when is None or when not in feeder.load_p_kw.index:
                first, last = feeder.load_p_kw.index[[0, -1]]
                raise FeederSourceError(f"--time {time}: not a quarter-hour of the SimBench profiles "
                                        f"({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}, every 15 min)")
        return (pandapower_deviation_pu(simbench_net(value), feeder, when),
                f"pandapower's power flow of the SimBench grid at {when:%Y-%m-%d %H:%M}")
    if kind == "pandapower":
        path = feeder.source.partition(": ")[2]
        return pandapower_deviation_pu(pp.from_json(path), feeder), "pandapower's power flow of the net"
    data_dir = feeder.source.partition(": ")[2]
    return (ieee_reference_deviation_pu(data_dir, 566),
            "the IEEE's published OpenDSS solution at minute 566 (the evening peak)")


def describe_feeder(feeder: Feeder) -> list[str]:
    """What a feeder holds, a line per fact (``lec-cosim feeder``)."""
    net, c = feeder.net, feeder.connections
    phases = c["phases"].value_counts()
    lines = [f"{feeder.name} ({feeder.source})",
             f"  buses {len(net.bus)}, lines {len(net.line)}, transformers {len(net.trafo)}, "
             f"{'balanced' if feeder.balanced else 'three-phase (unbalanced)'}",
             "  connection points " + f"{len(c)}: " + ", ".join(
                 f"{n} {'three-phase' if p == 'abc' else 'on phase ' + p}" for p, n in sorted(phases.items())),
             f"  generators {len(net.sgen) + len(net.asymmetric_sgen)}"]
    for label, table in (("load profiles", feeder.load_p_kw), ("generation profiles", feeder.sgen_p_kw)):
        if table is not None and len(table) > 1:
            step = (table.index[1] - table.index[0]).total_seconds() / 60.0
            lines.append(f"  {label}: {table.shape[1]} columns, {len(table)} steps of {step:g} min, "
                         f"{table.index[0]:%Y-%m-%d %H:%M} to {table.index[-1]:%Y-%m-%d %H:%M} (kW)")
    lines += [f"  note: {note}" for note in feeder.notes]
    return lines


def load_feeder(source: str, base: Path | None = None) -> Feeder:
    """The feeder a source names: ``"ieee_eu_lv[: DIR]"``, ``"simbench: CODE"``,
    ``"pandapower: FILE"`` or ``"opendss: FILE"`` (files relative to ``base``)."""
    kind, _, value = (part.strip() for part in source.partition(":"))
    base = Path(base) if base is not None else Path.cwd()

    def file(text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else (base / path).resolve()

    if kind == "ieee_eu_lv":
        return ieee_eu_lv_feeder(file(value) if value else None)
    if kind == "simbench":
        return simbench_feeder(value)
    if kind == "pandapower":
        return pandapower_feeder(file(value))
    if kind == "opendss":
        return opendss_feeder(file(value))
    raise FeederSourceError(f"feeder.source: {kind!r} is not a source; one of ieee_eu_lv, simbench, pandapower, "
                            "opendss")


def resolve_source(source: str, base: Path) -> str:
    """``source`` with its file or folder (``pandapower``, ``opendss``, ``ieee_eu_lv``) made absolute from ``base``,
    as :func:`load_feeder` would read it there: a scenario written out (``scenario.json``) reads the same feeder from
    any directory. Other sources (``simbench: CODE``, an unknown kind) unchanged."""
    kind, _, value = (part.strip() for part in source.partition(":"))
    if kind in ("pandapower", "opendss", "ieee_eu_lv") and value:
        return f"{kind}: {(Path(base) / value).resolve()}"
    return source


SOURCE_FILE_KINDS = {"pandapower": "file", "opendss": "folder", "ieee_eu_lv": "folder"}
"""Sources that read the user's files, and what of them the feeder depends on: a pandapower net is one file; an
OpenDSS model is its master file and what it redirects to (its folder); the IEEE feeder is its data folder."""


def source_data(source: str) -> tuple[Path, str] | None:
    """The files a source reads, as ``(path, "file" | "folder")`` (an OpenDSS master file's folder), or None for a
    source without files of the user's (``simbench``: the package's data set, whose version the manifest holds)."""
    kind, _, value = (part.strip() for part in source.partition(":"))
    if kind not in SOURCE_FILE_KINDS or not value:
        return None
    path = Path(value)
    return (path.parent, "folder") if kind == "opendss" else (path, SOURCE_FILE_KINDS[kind])


def with_source_data(source: str, place) -> str:
    """``source`` with its file or folder replaced by ``place(path)`` (an OpenDSS master keeps its name in the
    placed folder): a compose project's containers read the same model from where it is copied."""
    data = source_data(source)
    if data is None:
        return source
    kind = source.partition(":")[0].strip()
    placed = Path(place(data[0]))
    return f"{kind}: {placed / Path(source.partition(':')[2].strip()).name if kind == 'opendss' else placed}"


def feeder_of(scenario) -> Feeder | None:
    """The feeder a scenario's ``feeder.source`` names, or None for the IEEE feeder of its ``feeder.data_dir``
    (the grid models build that one themselves, with its copies)."""
    source = getattr(scenario.feeder, "source", None)
    return None if source is None else load_feeder(source)

