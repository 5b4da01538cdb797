"""Playback of measured series on the simulation clock, at any step length.

The simulation clock is local standard time without daylight-saving jumps (UTC+01:00 for the
Nordic and German data we ship). Series are treated as piecewise constant over their own
interval, so the mean over any step is exact: 1-minute grid steps hold the 15-minute value,
hourly steps average four 15-minute values.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd

SIMULATION_UTC_OFFSET = "Etc/GMT-1"  # POSIX sign convention: this is UTC+01:00


class DataError(ValueError):
    """A data file does not hold what the scenario needs."""


def step_means(series: pd.Series, start: dt.datetime, step_s: float, n_steps: int,
               interval_s: float | None = None) -> np.ndarray:
    """Mean of a piecewise-constant series over ``n_steps`` consecutive steps.

    Parameters
    ----------
    series : pandas.Series
        Values indexed by the start of their interval, on a regular time axis.
    start : datetime.datetime
        Start of the first step (naive, simulation clock).
    step_s : float
        Step length in seconds.
    n_steps : int
        Number of steps.
    interval_s : float, optional
        Interval of the series in seconds; needed only for a series of one value.

    Returns
    -------
    numpy.ndarray
        ``n_steps`` means.
    """
    index = series.index
    if interval_s is None:
        if len(index) < 2:
            raise DataError(f"series {series.name!r}: give interval_s for a series of one value")
        interval_s = (index[1] - index[0]).total_seconds()
    origin = index[0]
    t0 = (pd.Timestamp(start) - origin).total_seconds()
    t_end = t0 + step_s * n_steps
    covered_s = interval_s * len(series)
    if t0 < -1e-9 or t_end > covered_s + 1e-9:
        raise DataError(
            f"series {series.name!r} covers {origin} to {origin + pd.Timedelta(seconds=covered_s)}, "
            f"not {pd.Timestamp(start)} to {pd.Timestamp(start) + pd.Timedelta(seconds=step_s * n_steps)}"
        )
    values = series.to_numpy(dtype=float)
    first = t0 / interval_s
    if abs(first - round(first)) < 1e-9:
        # Aligned steps: exact means without cumulative round-off.
        first = int(round(first))
        if step_s % interval_s == 0:
            per = int(step_s // interval_s)
            return values[first : first + per * n_steps].reshape(n_steps, per).mean(axis=1)
        if interval_s % step_s == 0:
            per = int(interval_s // step_s)
            return np.repeat(values[first:], per)[:n_steps]
    energy = np.concatenate(([0.0], np.cumsum(series.to_numpy(dtype=float)) * interval_s))
    knots = np.arange(len(series) + 1) * interval_s
    edges = t0 + step_s * np.arange(n_steps + 1)
    cumulative = np.interp(edges, knots, energy)
    return np.diff(cumulative) / step_s


def on_calendar(series: pd.Series, years: range) -> pd.Series:
    """Replay a one-year profile on other calendar years, by month, day and time of day.

    29 February is dropped for non-leap target years; a non-leap profile played on a leap year
    repeats 28 February.
    """
    source_year = series.index[0].year
    source = series[series.index.year == source_year]
    pieces = []
    for year in years:
        part = source
        if calendar.isleap(source_year) and not calendar.isleap(year):
            part = part[~((part.index.month == 2) & (part.index.day == 29))]
        elif calendar.isleap(year) and not calendar.isleap(source_year):
            feb28 = part[(part.index.month == 2) & (part.index.day == 28)]
            last = feb28.index[-1]
            part = pd.concat([part[part.index <= last], feb28, part[part.index > last]])
        step = part.index[1] - part.index[0]
        new_index = pd.date_range(dt.datetime(year, 1, 1), periods=len(part), freq=step)
        pieces.append(pd.Series(part.to_numpy(), index=new_index, name=series.name))
    return pd.concat(pieces)


def read_csv_rows(path: Path, **options) -> pd.DataFrame:
    """A CSV file's data rows, indexed by their line in the file (the header is line 1).

    Blank lines are skipped but counted, so messages name the line an editor shows. A file that
    is empty, has no data rows, is not UTF-8 or has a row of the wrong length raises
    :class:`DataError` naming it.
    """
    try:
        frame = pd.read_csv(path, skip_blank_lines=False, **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a CSV table: {str(exc).strip()}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    frame = frame[~_blank_rows(frame)]
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return frame


def _blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Cell by cell: missing, or nothing but white space."""
    return frame.isna() | frame.astype(str).apply(lambda column: column.str.strip() == "")


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """The rows whose every cell is blank (:func:`_blank`). Only rows whose first cell is blank can be: the other
    cells are looked at in those alone (stripping every cell of a year of 15-minute profiles, 843,000 of them,
    cost each federate that reads one about a third of a second of CPU)."""
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=bool)
    candidates = _blank(frame.iloc[:, :1]).iloc[:, 0].to_numpy()
    rows = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        rows[candidates] = _blank(frame[candidates]).all(axis=1).to_numpy()
    return rows


CIVIL_TIME_ZONE = "Europe/Berlin"
"""The civil time whose summer-time labels a profile may carry (SimBench's German profiles do: see data/README.md)."""


def _duration(ns: int) -> str:
    """``15 min``, ``1 h``, ``1 day 2 h``, ``30 s``: a step for a message."""
    seconds = int(ns) / 1e9
    parts = []
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            count = int(seconds // size)
            parts.append(f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}")
            seconds -= count * size
    if seconds or not parts:
        parts.append(f"{seconds:g} s")
    return " ".join(parts)


def _usual_step(steps: np.ndarray) -> int:
    """The most frequent step (the first one if none repeats)."""
    kinds, counts = np.unique(steps, return_counts=True)
    return int(kinds[np.argmax(counts)]) if counts.max() > 1 else int(steps[0])


def _irregular(steps: np.ndarray) -> int:
    return int(np.count_nonzero(steps != _usual_step(steps)))


def _civil_utc(stamps: pd.Series) -> np.ndarray | None:
    """Naive labels read as civil time (:data:`CIVIL_TIME_ZONE`), as ns since 1970 UTC; a label given twice is
    summer time the first time (the autumn hour). None if a label does not exist in civil time (the skipped spring
    hour)."""
    index = pd.DatetimeIndex(stamps)
    civil = index.tz_localize(CIVIL_TIME_ZONE, ambiguous=~index.duplicated(keep="first"), nonexistent="NaT")
    return None if civil.isna().any() else civil.tz_convert("UTC").asi8


def check_time_axis(path: Path, stamps: pd.Series, raw: pd.Series, *, civil_time: bool = False) -> None:
    """Check the timestamps of a series: at least two, unique, in order and evenly spaced.

    Parameters
    ----------
    path : pathlib.Path
        The file, for messages.
    stamps : pandas.Series
        The parsed timestamps (``NaT`` where a row did not parse), indexed by file line.
    raw : pandas.Series
        The timestamps as written, same index, for messages.
    civil_time : bool
        Naive labels may follow summer time (a missing hour in spring and a repeated one in autumn,
        in :data:`CIVIL_TIME_ZONE`); they are accepted when they are evenly spaced as civil time.

    Raises
    ------
    DataError
        ``"<file>: row <n>: <reason>"`` for the first offending row.
    """
    bad = stamps.isna().to_numpy()
    if bad.any():
        line = stamps.index[int(np.argmax(bad))]
        raise DataError(f"{path}: row {line}: {str(raw.loc[line])!r} is not a timestamp (YYYY-MM-DDTHH:MM"
                        f"{'+01:00' if getattr(stamps.dt, 'tz', None) is not None else ''})")
    if len(stamps) < 2:
        raise DataError(f"{path}: only one data row; a time series needs two at least (its step is the time "
                        "between rows)")
    values = pd.DatetimeIndex(stamps).asi8  # ns since 1970 (UTC for stamps with an offset)
    steps = np.diff(values)
    if (steps > 0).all() and (steps == steps[0]).all():
        return
    if civil_time and getattr(stamps.dt, "tz", None) is None:
        utc = _civil_utc(stamps)
        if utc is not None:
            civil_steps = np.diff(utc)
            if (civil_steps > 0).all() and (civil_steps == civil_steps[0]).all():
                return  # summer-time labels of an evenly spaced series
            if _irregular(civil_steps) < _irregular(steps):
                # summer-time labels broken elsewhere: look for the error on the civil clock, where the repeated
                # autumn hour is no duplicate and the skipped spring hour no gap
                values, steps = utc, civil_steps
    lines = stamps.index
    first_at = {}
    for i, value in enumerate(values):
        if value in first_at:
            raise DataError(f"{path}: row {lines[i]}: timestamp {str(raw.iloc[i])!r} appears twice (first in row "
                            f"{lines[first_at[value]]})")
        first_at[value] = i
    back = np.flatnonzero(steps <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(f"{path}: row {lines[i]}: timestamp {str(raw.iloc[i])!r} comes before the previous row's "
                        f"{str(raw.iloc[i - 1])!r}; rows must be in time order")
    step = _usual_step(steps)
    odd = int(np.flatnonzero(steps != step)[0]) + 1
    raise DataError(f"{path}: row {lines[odd]}: timestamp {str(raw.iloc[odd])!r} is {_duration(steps[odd - 1])} "
                    f"after the previous row, not the file's step of {_duration(step)} (a gap or an uneven step); "
                    "timestamps must be evenly spaced")


def check_values(path: Path, values: pd.DataFrame, *, low: float, high: float, unit: str,
                 hint: str = "", min_peak: float = 0.0) -> None:
    """Check numeric columns: finite, and each column's values within ``[low, high]`` ``unit``, peaking at
    ``min_peak`` at least and not all zero.

    The range is what is plausible for the unit: a profile in W read as kW peaks a thousand times too high,
    one in MW a thousand times too low. Raises :class:`DataError` naming the file and the row or column.
    """
    array = values.to_numpy(dtype=float)
    infinite = ~np.isfinite(array)
    if infinite.any():
        r, c = np.argwhere(infinite)[0]
        raise DataError(f"{path}: row {values.index[r]}: {values.columns[c]} is {array[r, c]}, not a finite number")
    for c, column in enumerate(values.columns):
        col = array[:, c]
        if not (col != 0.0).any():
            raise DataError(f"{path}: column {column!r} is zero throughout")
        lowest, highest = float(col.min()), float(col.max())
        if highest < min_peak:
            raise DataError(f"{path}: column {column!r} peaks at {highest:g} {unit}, implausibly low (expected "
                            f"{min_peak:g} {unit} at least){hint}")
        if lowest < low or highest > high:
            r = int(np.argmin(col)) if lowest < low else int(np.argmax(col))
            raise DataError(f"{path}: row {values.index[r]}: {column} is {col[r]:g} {unit}, implausible (expected "
                            f"{low:g} to {high:g} {unit}){hint}")


_PROFILE_TABLES: dict[tuple, pd.DataFrame] = {}
_PROFILE_TABLES_LOCK = threading.Lock()  # an in-process federation's federates are threads
"""The last profile tables read, by file (path, modification time, size) and request: a federate reads the PV
profiles twice (the scenario's check of its days, then the community), 0.1-0.35 s each on the DSO's start-up."""
_PROFILE_TABLES_KEPT = 4


def file_state(path: Path) -> tuple | None:
    """What tells a file changed (inode, modification and change times, size), for what a process keeps of it;
    None if it cannot be read (its reader says why)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size


def read_profile_table(path: Path, columns: list[str], value_range: dict | None = None) -> pd.DataFrame:
    """Read a profile CSV with a ``time`` column and numeric ``columns``, all checked.

    Raises :class:`DataError` naming the file and the column or row: a column missing or
    appearing twice, a value that is not a number or missing or infinite, a timestamp that
    does not parse, appears twice, is out of order or off the file's step (see
    :func:`check_time_axis`; summer-time labels are accepted), fewer than two rows.

    The same file unchanged (path, inode, modification and change times, size), read for the same columns and
    range, is not read again in this process: the caller gets a copy of the table read before. And a file of the
    same content read for the same request by any process before is not parsed and checked again: its table is
    in the disk cache (:mod:`lec_cosim.models.disk_cache`).
    """
    state = file_state(Path(path))
    # None: read_csv_rows says what is wrong with the file
    key = None if state is None else (str(Path(path).resolve()), *state, tuple(columns), repr(value_range))
    with _PROFILE_TABLES_LOCK:
        kept = _PROFILE_TABLES.get(key) if key is not None else None
    if kept is not None:
        return kept.copy()
    if key is None:
        return _read_profile_table(path, columns, value_range)
    from lec_cosim.models import disk_cache

    # read and checked once for all processes and runs (the year's PV file took ~0.2 s in each federate)
    table = disk_cache.file_result("profiles", path, (tuple(columns), repr(value_range), pd.__version__),
                                   lambda: _read_profile_table(path, columns, value_range), Path(__file__))
    with _PROFILE_TABLES_LOCK:
        while len(_PROFILE_TABLES) >= _PROFILE_TABLES_KEPT:
            _PROFILE_TABLES.pop(next(iter(_PROFILE_TABLES)))
        _PROFILE_TABLES[key] = table.copy()
    return table


def _read_profile_table(path: Path, columns: list[str], value_range: dict | None) -> pd.DataFrame:
    frame = read_csv_rows(path, dtype=str, keep_default_na=False)
    header = list(frame.columns)
    twice = [c for c in header if re.fullmatch(r".+\.\d+", c) and c.rsplit(".", 1)[0] in header]
    if twice:  # pandas renames a repeated column "x" to "x.1"
        raise DataError(f"{path}: column {twice[0].rsplit('.', 1)[0]!r} appears twice")
    if "time" not in header:
        raise DataError(f"{path}: column 'time' missing")
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: column {missing[0]!r} missing (has {', '.join(header[1:8])}, ...)")
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1).to_numpy()
    if bad.any():
        line = values.index[int(np.argmax(bad))]
        column = values.columns[values.loc[line].isna().to_numpy()][0]
        raw = frame.at[line, column]
        raw = "" if pd.isna(raw) else str(raw)
        raise DataError(f"{path}: row {line}: {column} is {'empty' if not raw.strip() else repr(raw)}, not a number")
    check_values(path, values, **(value_range or dict(low=-np.inf, high=np.inf, unit="")))
    offset = frame["time"].str.strip().str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True).to_numpy()
    if offset.any():  # pandas cannot mix them with local times (a ValueError, or a series shifted to the offset)
        line = frame.index[int(offset.argmax())]
        raise DataError(f"{path}: row {line}: timestamp {frame.at[line, 'time']!r} has a UTC offset; a profile's "
                        "times are local time without one (YYYY-MM-DDTHH:MM)")
    stamps = pd.to_datetime(frame["time"], format="ISO8601", errors="coerce")
    check_time_axis(path, stamps, frame["time"], civil_time=True)
    values.insert(0, "time", frame["time"])
    return values.reset_index(drop=True)


HOUSEHOLD_LOAD_RANGE = dict(low=0.0, high=50.0, min_peak=0.01, unit="kW",
                            hint="; one household's load, in kW or relative to its peak: is it in W or MW?")
"""What one household's load profile may hold: its peak (or 1.0, relative) at 10 W to 50 kW, never below zero."""
PV_RANGE = dict(low=-0.05, high=1.5, unit="p.u.", hint="; PV feed-in relative to the rated power: is it in W, kW "
                "or %?")
"""What a relative PV profile may hold: a little below zero at night (inverter standby) to 1.5 p.u. at most."""


def read_profile_columns(path: Path, columns: list[str], value_range: dict | None = None) -> pd.DataFrame:
    """Read named columns of a profile CSV whose first column ``time`` is ISO local time.

    ``value_range`` (keywords of :func:`check_values`, e.g. :data:`PV_RANGE`) is what the columns may hold.
    """
    frame = read_profile_table(path, columns, value_range)
    frame.index = pd.to_datetime(frame.pop("time"))
    return frame


def read_price_file(path: Path) -> pd.Series:
    """Day-ahead prices in currency/MWh on the simulation clock.

    The file has two columns: a timestamp with UTC offset and the price (ENTSO-E export layout).
    """
    frame = read_csv_rows(path)
    if frame.shape[1] != 2:
        raise DataError(f"{path}: expected 2 columns (timestamp, price), found {frame.shape[1]}")
    raw = frame.iloc[:, 0].astype(str)
    has_offset = raw.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True)
    if not has_offset.all():
        row = raw.index[int((~has_offset).to_numpy().argmax())]
        raise DataError(f"{path}: row {row}: timestamp {raw.loc[row]!r} has no UTC offset")
    stamps = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    check_time_axis(path, stamps, raw)
    prices = pd.to_numeric(frame.iloc[:, 1], errors="coerce")
    if prices.isna().any():
        raise DataError(f"{path}: row {prices.index[int(prices.isna().to_numpy().argmax())]}: price is not a number")
    if not np.isfinite(prices.to_numpy()).all():
        row = prices.index[int((~np.isfinite(prices.to_numpy())).argmax())]
        raise DataError(f"{path}: row {row}: price is {prices.loc[row]}, not a finite number")
    # A file in EUR/kWh (or ct/kWh) read as EUR/MWh would silently scale every cost by 1000: day-ahead
    # prices in EUR/MWh have a median of tens, in EUR/kWh of hundredths.
    typical = float(prices.abs().median())
    if typical < 1.0:
        raise DataError(f"{path}: column 2: prices look like EUR/kWh (median {typical:.4g}), expected EUR/MWh")
    if typical > 5000.0:
        raise DataError(f"{path}: column 2: prices look like EUR/GWh or ct/kWh x 1000 (median {typical:.4g}), "
                        "expected EUR/MWh")
    local = stamps.dt.tz_convert(SIMULATION_UTC_OFFSET).dt.tz_localize(None)
    return pd.Series(prices.to_numpy(), index=pd.DatetimeIndex(local), name="price")
