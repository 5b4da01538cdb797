"""Participants of the local electricity market (LEM) on the IEEE European LV test feeder.

This module sets up the 61 market players of Lezama, Faia and Vale, "Bidding in Local Electricity Markets
Considering Low Voltage Grid Constraints": 13 consumers, 42 prosumers with rooftop PV (about 194 kW PV
peak) and 6 CHP producers of 10 kW each, on the feeder of :mod:`lec_cosim.models.ieee_eulv`. It gives
them buses and phases of the full 906-bus feeder, sizes the PV, and tabulates each participant's load and
PV energy for one day. No HELICS here. Everything is deterministic: the same data give the same table.

Reduced bus numbering (used to place the paper's CHP units)
-----------------------------------------------------------
The paper numbers buses of a *reduced* feeder and puts its CHP units at reduced buses 18, 27, 28, 70, 79
and 108. The 906-bus feeder has no such numbering, so one is defined here from the topology alone
(``data/ieee_eulv/csv/Lines.csv`` and ``Loads.csv``) by :func:`reduced_bus_numbering`:

1. Take the radial feeder (905 lines, a tree) rooted at IEEE bus 1, the transformer's LV bus.
2. Prune load-free spurs. Repeatedly delete every leaf bus that has no load (and is not bus 1). Such
   spurs carry no current, so they do not change any voltage or flow. This deletes 205 buses
   (52 load-free dead ends with their lines) and leaves a tree of 701 buses. Apart from the root
   bus 1, its leaves are exactly the 55 load buses.
3. Keep the buses that a reduced model cannot merge away: bus 1 (feeder head), the 55 load buses, and
   the 54 junctions (degree >= 3) of the pruned tree. Every other bus lies on a chain of series line
   sections without injections, which can be merged exactly into one line (impedances add).
4. Number the kept buses 1..N in ascending order of their IEEE bus number. Reduced bus 1 is then
   the feeder head (IEEE bus 1).

This gives **N = 110** reduced buses (:data:`REDUCED_BUS_COUNT`), 109 equivalent lines, and an
exact equivalent of the full feeder for the 55 loads and anything connected at a kept bus.
Reductions of the IEEE European LV feeder used in the literature typically have about 100-120 buses,
and the paper's highest bus (108) fits N = 110. The other candidates ruled out:

==============================================================  =====  ============================
rule                                                            N      why not
==============================================================  =====  ============================
head + 55 load buses                                            56     N < 108: no bus 108
head + loads + junctions (deg >= 3), no pruning                 153    keeps 43 junctions that only
                                                                       branch into load-free spurs
head + loads + every bus of degree != 2, no pruning             205    also keeps 52 empty dead ends
**head + loads + junctions after pruning load-free spurs**      110    chosen
==============================================================  =====  ============================

The numbering order is ascending IEEE bus number. It needs no tie-breaking rule. In the IEEE data, every
one of the 905 lines runs from a lower-numbered bus (towards the head) to a higher-numbered one. So this
order is a topological order of the tree: each reduced bus has a higher number than every bus upstream
of it. A depth-first order (children visited in ascending bus number) is also plausible but would put
the CHPs elsewhere (reduced bus 108 would then be IEEE bus 66). The paper does not publish its mapping,
so this mapping cannot be checked against it.

CHP placement (:data:`CHP_BUS_MAP`, reduced bus -> IEEE bus of the full feeder):

===========  ========  =========================================
reduced bus  IEEE bus  what is there
===========  ========  =========================================
18           155       junction (no load)
27           248       LOAD10 (phase b)
28           249       LOAD11 (phase b), next to bus 248
70           614       LOAD32 (phase c)
79           686       junction (no load)
108          899       LOAD53 (phase b)
===========  ========  =========================================

Each CHP is a balanced three-phase 10 kW unit (``phase = "abc"``; 3.33 kW per phase). The paper gives no
phase, and 10 kW is more than a single-phase LV connection usually takes.

Consumers and prosumers (:func:`consumer_loads`)
------------------------------------------------
The 55 households ``LOAD1`` .. ``LOAD55`` keep their IEEE bus, phase and load profile (``LOADk`` uses
``profile_k``). Of them, 13 are consumers and 42 are PV prosumers. The rule spreads the consumers both
across the phases and along the feeder, so that PV (single-phase, on the household's phase) is about
equally common on each phase and at each distance from the transformer, and no part of the feeder is
PV-free by accident:

* Consumers per phase are proportional to the phase's load count (a 21, b 19, c 15), with largest
  remainders: a 5, b 4, c 4 (13 in total).
* Within a phase, the loads are sorted by electrical path length from bus 1 (sum of line lengths, ties by
  load number). With ``n`` loads and ``c`` consumers, those at sorted positions ``floor((j + 0.5) n / c)``,
  ``j = 0..c-1``, are consumers.

The result is :data:`CONSUMER_LOADS`.

PV sizing (:func:`pv_kwp_per_prosumer`)
---------------------------------------
PV is shaped by the SimBench PV feed-in profiles ``PV1`` .. ``PV8`` (``data/pv/simbench_PV_profiles_2016_15min.csv``:
German sites, 2016, 15 min, p.u. of rated power; see ``data/README.md``). The k-th prosumer in
load-number order uses ``PV((k mod 8) + 1)``, so the 42 systems are not all perfectly coincident. Rows are
read by position on the simulation clock (local standard time UTC+01:00, row i = i x 15 min after
2016-01-01 00:00), as everywhere in lec-cosim.

* Default day: **2016-05-26** (:data:`DEFAULT_PV_DAY`), the day of 2016 with the largest daily energy of
  the mean of PV1..PV8 (4.06 kWh/kWp, a clear late-spring day). Any other 2016 day can be given.
* All prosumers get the same rating, ``kWp = 194 kW / max_t sum_i p_i(t)``. Here ``p_i`` is the prosumer's
  relative profile averaged to the sizing resolution, so that the peak of aggregate PV over the day
  equals 194 kW (:data:`PAPER_PV_PEAK_KW`). The default resolution is hourly (the LEM's 24 periods).
  On 2016-05-26 that gives **8.525 kWp per prosumer, 358 kWp installed**, an hourly aggregate peak of
  194.0 kW at 11:00-12:00, a 15-min aggregate peak of 194.2 kW and 1455 kWh of PV over the day. With
  ``resolution_min=15`` the 15-min peak is 194 kW instead (8.514 kWp each). The 194 kW is a
  *generation* peak, not installed kWp. On that day the single profiles peak at 0.57-0.61 p.u.
  (15 min), but the aggregate of the 8 shapes peaks at only 0.54 p.u. in hourly means. So the
  installed capacity is about 1.85 times the generation peak.

Load peak of the IEEE profiles (:func:`load_peak_kw`)
-----------------------------------------------------
The paper reports a load peak of about 140 kW. The 55 IEEE profiles (1 kW base, as the feeder uses them)
give a much lower aggregate peak: **57.4 kW at 1-min resolution** (minute 566, 09:26), 40.4 kW in
15-min means and **38.9 kW in hourly means** (18:00-19:00). Their daily energy is 483.9 kWh, and the sum of the 55
individual 1-min peaks is 329 kW. The loads are not rescaled here. The ratio to the paper's 140 kW
(x2.4 at 1 min, x3.6 hourly) is a known difference of this reproduction.

Energies (:func:`participant_energy`)
-------------------------------------
Per participant and period (15 min or 1 h) of the day: ``load_kwh`` from the IEEE 1-minute profile (minute
m is the interval ending at minute m, so minutes 1..60 form hour 0), ``pv_kwh`` from the 15-min PV profile
(piecewise constant) times kWp, and ``chp_max_kwh`` = 10 kW x period length for CHPs. The IEEE day and
the PV day are combined by time of day; the IEEE profiles carry no date.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import (
    DEFAULT_DATA_DIR,
    _read_ieee_csv,
    read_load_profiles_kw,
)
from lec_cosim.models.timeseries import PV_RANGE, file_state, read_profile_table

PV_PROFILE_FILE = Path(__file__).resolve().parents[2] / "data" / "pv" / "simbench_PV_profiles_2016_15min.csv"
"""SimBench PV1..PV8 relative feed-in, 2016, 15 min (``data/pv/``; ODbL 1.0 / DbCL 1.0, see ``data/README.md``)."""
PV_PROFILES = tuple(f"PV{i}" for i in range(1, 9))
PV_PROFILE_YEAR = 2016

HEAD_BUS = 1
"""IEEE bus of the transformer's LV terminal: the feeder head."""
REDUCED_BUS_COUNT = 110
"""N of the reduced numbering (:func:`reduced_bus_numbering`)."""
PAPER_CHP_REDUCED_BUSES = (18, 27, 28, 70, 79, 108)
"""Reduced-model buses of the paper's 6 CHP units."""
CHP_BUS_MAP = {18: 155, 27: 248, 28: 249, 70: 614, 79: 686, 108: 899}
"""Paper's reduced bus -> IEEE bus of the full feeder (reduced numbering of this module)."""
CHP_KW = 10.0
"""Rating of each CHP unit, kW (three-phase, balanced)."""
N_CONSUMERS = 13
N_PROSUMERS = 42
PAPER_PV_PEAK_KW = 194.0
"""Aggregate PV peak of the paper, kW (generation peak over the simulated day)."""
PAPER_LOAD_PEAK_KW = 140.0
"""Load peak stated in the paper, kW (for comparison only; loads are not rescaled)."""
DEFAULT_PV_DAY = "2016-05-26"
"""Day of 2016 with the largest daily energy of the mean of SimBench PV1..PV8."""
CONSUMER_LOADS = ("LOAD4", "LOAD7", "LOAD9", "LOAD12", "LOAD23", "LOAD24", "LOAD25", "LOAD32", "LOAD35",
                  "LOAD40", "LOAD47", "LOAD48", "LOAD54")
"""The 13 consumers (no PV) chosen by :func:`consumer_loads` from the IEEE data."""


# ---------------------------------------------------------------------------------------------
# Topology and reduced numbering
# ---------------------------------------------------------------------------------------------
def _feeder(data_dir: str) -> tuple[dict, pd.DataFrame]:
    """Adjacency ``{bus: {neighbour: length_m}}`` of the LV feeder and the IEEE load table (kept while the files are
    the same: a community built after they changed, and kept in the disk cache by their content, reads them again)."""
    return _feeder_of(data_dir, *feeder_files_state(data_dir))


def feeder_files_state(data_dir: str) -> tuple:
    """What tells the feeder's tables changed (``Lines.csv``, ``Loads.csv``): for caches of what is built from them."""
    csv = Path(data_dir) / "csv"
    return file_state(csv / "Lines.csv"), file_state(csv / "Loads.csv")


@lru_cache(maxsize=4)
def _feeder_of(data_dir: str, *file_states) -> tuple[dict, pd.DataFrame]:
    csv = Path(data_dir) / "csv"
    lines = _read_ieee_csv(csv / "Lines.csv")
    loads = _read_ieee_csv(csv / "Loads.csv")
    adj: dict[int, dict[int, float]] = {}
    for a, b, length in zip(lines["Bus1"].astype(int), lines["Bus2"].astype(int), lines["Length"].astype(float)):
        adj.setdefault(a, {})[b] = length
        adj.setdefault(b, {})[a] = length
    if len(lines) != len(adj) - 1:
        raise ValueError("expected a radial feeder (a tree)")
    return adj, loads


def _pruned_adjacency(adj: dict, keep: set) -> dict:
    """Delete leaf buses not in ``keep`` repeatedly (load-free spurs)."""
    pruned = {b: dict(n) for b, n in adj.items()}
    leaves = [b for b, n in pruned.items() if len(n) == 1 and b not in keep]
    while leaves:
        nxt = []
        for leaf in leaves:
            for nb in pruned.pop(leaf):
                del pruned[nb][leaf]
                if len(pruned[nb]) == 1 and nb not in keep:
                    nxt.append(nb)
        leaves = nxt
    return pruned


def reduced_bus_numbering(data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.Series:
    """Reduced-model bus numbering of the 906-bus feeder (rule in the module docstring).

    Returns
    -------
    pandas.Series
        Index ``reduced_bus`` 1..N (N = :data:`REDUCED_BUS_COUNT` = 110), values: IEEE bus number
        (name ``ieee_bus``), ascending.
    """
    adj, loads = _feeder(str(data_dir))
    load_buses = set(loads["Bus"].astype(int))
    pruned = _pruned_adjacency(adj, load_buses | {HEAD_BUS})
    keep = {HEAD_BUS} | load_buses | {b for b, n in pruned.items() if len(n) >= 3}
    buses = sorted(keep)
    return pd.Series(buses, index=pd.RangeIndex(1, len(buses) + 1, name="reduced_bus"), name="ieee_bus")


def reduced_bus_of(data_dir: Path | str = DEFAULT_DATA_DIR) -> dict[int, int]:
    """Inverse of :func:`reduced_bus_numbering`: IEEE bus -> reduced bus (kept buses only)."""
    numbering = reduced_bus_numbering(data_dir)
    return {int(b): int(r) for r, b in numbering.items()}


def chp_bus_map(data_dir: Path | str = DEFAULT_DATA_DIR) -> dict[int, int]:
    """The paper's CHP reduced buses -> IEEE buses, computed from :func:`reduced_bus_numbering`.

    Equals :data:`CHP_BUS_MAP` for the shipped IEEE data.
    """
    numbering = reduced_bus_numbering(data_dir)
    return {r: int(numbering.loc[r]) for r in PAPER_CHP_REDUCED_BUSES}


def path_length_m(data_dir: Path | str = DEFAULT_DATA_DIR) -> dict[int, float]:
    """Electrical path length (sum of line lengths, m) from the head bus 1 to every LV bus."""
    adj, _ = _feeder(str(data_dir))
    dist = {HEAD_BUS: 0.0}
    stack = [HEAD_BUS]
    while stack:
        bus = stack.pop()
        for nb, length in adj[bus].items():
            if nb not in dist:
                dist[nb] = dist[bus] + length
                stack.append(nb)
    return dist


# ---------------------------------------------------------------------------------------------
# Consumers and prosumers
# ---------------------------------------------------------------------------------------------
def consumer_loads(n_consumers: int = N_CONSUMERS, data_dir: Path | str = DEFAULT_DATA_DIR) -> list[str]:
    """The households without PV, spread over phases and along the feeder (rule in the module docstring).

    Returns
    -------
    list of str
        Load names (``LOADk``) in load-number order.
    """
    from lec_cosim.models.feeder_households import spread_choice  # the rule, for any feeder

    _, loads = _feeder(str(data_dir))
    dist = path_length_m(data_dir)
    k = loads["Name"].str.extract(r"(\d+)$", expand=False).astype(int).to_numpy()
    by_number = np.argsort(k, kind="stable")  # ties in distance go by load number
    chosen = spread_choice(loads["phases"].str.lower().to_numpy()[by_number],
                           [dist[int(b)] for b in loads["Bus"].to_numpy()[by_number]], n_consumers)
    return [f"LOAD{k[by_number][i]}" for i in chosen]


# ---------------------------------------------------------------------------------------------
# PV
# ---------------------------------------------------------------------------------------------
def _pv_table(path: str) -> pd.DataFrame:
    """The PV file's table (kept while the file is the same)."""
    return _pv_table_of(path, file_state(Path(path)))


@lru_cache(maxsize=2)
def _pv_table_of(path: str, file_state) -> pd.DataFrame:
    frame = read_profile_table(Path(path), list(PV_PROFILES), PV_RANGE)
    values = frame[list(PV_PROFILES)].to_numpy(dtype=float).clip(min=0.0)
    # by position on the simulation clock (UTC+01:00, no DST), not by the file's labels
    index = pd.date_range(f"{PV_PROFILE_YEAR}-01-01", periods=len(frame), freq="15min")
    return pd.DataFrame(values, index=index, columns=list(PV_PROFILES))


def pv_day_profiles(day: str = DEFAULT_PV_DAY, pv_file: Path | str = PV_PROFILE_FILE) -> pd.DataFrame:
    """Relative PV feed-in PV1..PV8 of one 2016 day, 96 rows of 15 min (index: interval start), p.u."""
    start = pd.Timestamp(day).normalize()
    if start.year != PV_PROFILE_YEAR:
        raise ValueError(f"PV profiles cover {PV_PROFILE_YEAR} only, not {start.date()}")
    table = _pv_table(str(pv_file))
    day_rows = table.loc[start: start + pd.Timedelta(minutes=15 * 95)]
    if len(day_rows) != 96:
        raise ValueError(f"PV profile file has no complete day {start.date()}")
    return day_rows


def pv_data_span(pv_file: Path | str = PV_PROFILE_FILE) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start and end of the PV data on the simulation clock (2016-01-01 00:00 and 2017-01-01 00:00 for 2016)."""
    index = _pv_table(str(pv_file)).index
    return index[0], index[-1] + pd.Timedelta(minutes=15)


def pv_profiles(day: str = DEFAULT_PV_DAY, hours: int = 24, pv_file: Path | str = PV_PROFILE_FILE) -> pd.DataFrame:
    """Relative PV feed-in PV1..PV8 over ``hours`` from midnight of ``day``: consecutive days of the calendar.

    ``4 * hours`` rows of 15 min (index: interval start), p.u.; ``hours = 24`` gives
    :func:`pv_day_profiles`. ValueError if the span leaves the 2016 data.
    """
    if hours <= 0 or hours != int(hours):
        raise ValueError(f"hours must be a positive whole number, not {hours}")
    start = pd.Timestamp(day).normalize()
    first = pv_day_profiles(start, pv_file)  # the start day must be in the data, with its usual message
    if hours <= 24:
        return first.iloc[: 4 * int(hours)]
    stop = start + pd.Timedelta(hours=int(hours))
    end = pv_data_span(pv_file)[1]
    if stop > end:
        raise ValueError(f"PV profile file {Path(pv_file).name} ends at {end.isoformat()}, but {int(hours)} h from "
                         f"{start.date()} run to {stop.isoformat()}")
    rows = _pv_table(str(pv_file)).loc[start: stop - pd.Timedelta(minutes=15)]
    if len(rows) != 4 * int(hours):
        raise ValueError(f"PV profile file {Path(pv_file).name} has gaps between {start} and {stop}")
    return rows


def prosumer_pv_profile(prosumers: list[str]) -> dict[str, str]:
    """SimBench profile of each prosumer: the k-th prosumer (load-number order, k = 0..) gets PV(k mod 8 + 1)."""
    ordered = sorted(prosumers, key=lambda name: int(name[4:]))
    return {name: PV_PROFILES[i % len(PV_PROFILES)] for i, name in enumerate(ordered)}


def _resample_mean(frame: pd.DataFrame, resolution_min: int) -> pd.DataFrame:
    if resolution_min == 15:
        return frame
    if resolution_min == 60:
        return frame.groupby(np.arange(len(frame)) // 4).mean().set_axis(frame.index[::4])
    raise ValueError("resolution_min must be 15 or 60")


def pv_kwp_per_prosumer(day: str = DEFAULT_PV_DAY, peak_kw: float = PAPER_PV_PEAK_KW, resolution_min: int = 60,
                        data_dir: Path | str = DEFAULT_DATA_DIR, pv_file: Path | str = PV_PROFILE_FILE) -> float:
    """Common kWp of the 42 prosumers so that the day's aggregate PV peak equals ``peak_kw``.

    The peak is taken over the day's mean power per ``resolution_min`` (60: hourly, default; 15: native).
    """
    consumers = set(consumer_loads(data_dir=data_dir))
    prosumers = [n for n in _feeder(str(data_dir))[1]["Name"] if n not in consumers]
    assignment = prosumer_pv_profile(prosumers)
    rel = _resample_mean(pv_day_profiles(day, pv_file), resolution_min)
    aggregate = sum(rel[p] for p in assignment.values())
    return float(peak_kw / aggregate.max())


# ---------------------------------------------------------------------------------------------
# Participants and energies
# ---------------------------------------------------------------------------------------------
def participants(day: str = DEFAULT_PV_DAY, resolution_min: int = 60, data_dir: Path | str = DEFAULT_DATA_DIR,
                 pv_file: Path | str = PV_PROFILE_FILE) -> pd.DataFrame:
    """Tidy table of the 61 LEM participants.

    Parameters
    ----------
    day, resolution_min
        PV sizing day (2016) and resolution of the sizing peak, see :func:`pv_kwp_per_prosumer`.

    Returns
    -------
    pandas.DataFrame
        One row per participant, ``LOAD1`` .. ``LOAD55`` (IEEE order) then ``CHP1`` .. ``CHP6``; columns
        ``participant, kind`` (``consumer``/``prosumer``/``chp``), ``bus`` (IEEE bus number), ``phase``
        (``a``/``b``/``c``, ``abc`` for CHP), ``pv_kwp``, ``chp_kw``, ``reduced_bus`` (reduced numbering,
        all participants sit at kept buses), ``load_profile`` (``profile_k`` or empty) and ``pv_profile``
        (``PV1``..``PV8`` or empty).
    """
    _, loads = _feeder(str(data_dir))
    consumers = set(consumer_loads(data_dir=data_dir))
    prosumers = [n for n in loads["Name"] if n not in consumers]
    assignment = prosumer_pv_profile(prosumers)
    kwp = pv_kwp_per_prosumer(day, resolution_min=resolution_min, data_dir=data_dir, pv_file=pv_file)
    reduced = reduced_bus_of(data_dir)
    rows = []
    for name, bus, phase, shape in zip(loads["Name"], loads["Bus"].astype(int), loads["phases"], loads["Yearly"]):
        is_pros = name in assignment
        rows.append({"participant": name, "kind": "prosumer" if is_pros else "consumer", "bus": int(bus),
                     "phase": phase.lower(), "pv_kwp": kwp if is_pros else 0.0, "chp_kw": 0.0,
                     "reduced_bus": reduced[int(bus)], "load_profile": "profile_" + shape.split("_")[1],
                     "pv_profile": assignment.get(name, "")})
    for i, (rbus, bus) in enumerate(chp_bus_map(data_dir).items(), start=1):
        rows.append({"participant": f"CHP{i}", "kind": "chp", "bus": bus, "phase": "abc", "pv_kwp": 0.0,
                     "chp_kw": CHP_KW, "reduced_bus": rbus, "load_profile": "", "pv_profile": ""})
    return pd.DataFrame(rows)


def load_peak_kw(data_dir: Path | str = DEFAULT_DATA_DIR) -> dict[str, float]:
    """Aggregate peak of the 55 IEEE loads (kW) at 1-min, 15-min and hourly resolution, and the day's kWh."""
    profiles = read_load_profiles_kw(data_dir)[[f"profile_{k}" for k in range(1, 56)]]
    total = profiles.sum(axis=1).to_numpy()
    return {"1min": float(total.max()), "15min": float(total.reshape(96, 15).mean(axis=1).max()),
            "60min": float(total.reshape(24, 60).mean(axis=1).max()), "energy_kwh": float(total.sum() / 60.0)}


def participant_energy(resolution_min: int = 60, day: str = DEFAULT_PV_DAY, sizing_resolution_min: int = 60,
                       data_dir: Path | str = DEFAULT_DATA_DIR, pv_file: Path | str = PV_PROFILE_FILE) -> pd.DataFrame:
    """Energy per participant and period of the day.

    Parameters
    ----------
    resolution_min : int
        Period length, 60 (24 periods, default) or 15 (96 periods).
    day : str
        PV day of 2016; the IEEE loads are the same single day whatever the date.
    sizing_resolution_min : int
        Resolution of the PV sizing peak (:func:`pv_kwp_per_prosumer`).

    Returns
    -------
    pandas.DataFrame
        Long table, 61 x periods rows: ``participant, kind, period`` (0..23 or 0..95), ``start``
        (timestamp of the period start on ``day``), ``load_kwh``, ``pv_kwh``, ``chp_max_kwh``.
    """
    if resolution_min not in (15, 60):
        raise ValueError("resolution_min must be 15 or 60")
    table = participants(day, sizing_resolution_min, data_dir, pv_file)
    n_periods = 1440 // resolution_min
    hours = resolution_min / 60.0
    profiles = read_load_profiles_kw(data_dir)
    minutes = profiles.loc[1:1440]
    loads = _feeder(str(data_dir))[1]
    base_kw = dict(zip(loads["Name"], loads["kW"].astype(float)))
    pv = pv_day_profiles(day, pv_file)
    pv_kwh_per_kwp = pv.to_numpy().reshape(n_periods, resolution_min // 15, len(PV_PROFILES)).sum(axis=1) * 0.25
    pv_kwh_per_kwp = pd.DataFrame(pv_kwh_per_kwp, columns=list(PV_PROFILES))
    start = pd.Timestamp(day).normalize() + pd.to_timedelta(np.arange(n_periods) * resolution_min, unit="min")
    frames = []
    for row in table.itertuples(index=False):
        if row.load_profile:
            load = (minutes[row.load_profile].to_numpy().reshape(n_periods, resolution_min).sum(axis=1) / 60.0
                    * base_kw[row.participant])
        else:
            load = np.zeros(n_periods)
        pv_kwh = (pv_kwh_per_kwp[row.pv_profile].to_numpy() * row.pv_kwp if row.pv_profile
                  else np.zeros(n_periods))
        frames.append(pd.DataFrame({"participant": row.participant, "kind": row.kind, "period": np.arange(n_periods),
                                    "start": start, "load_kwh": load, "pv_kwh": pv_kwh,
                                    "chp_max_kwh": np.full(n_periods, row.chp_kw * hours)}))
    return pd.concat(frames, ignore_index=True)
