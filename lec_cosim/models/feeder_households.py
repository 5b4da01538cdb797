"""Households on any feeder: the connection point each one takes, its load profile and its devices.

The pieces a study needs to put households on a :class:`~lec_cosim.models.feeder_model.Feeder` from any
source. Nothing here knows a study or HELICS.

* :func:`place_households`: by default one household per connection point of the feeder, named as the
  point; or a **mapping file** (CSV ``household,connection``) that names the households and says where
  each is connected (several may share a point; points without a household stay empty).
* :func:`household_loads`: each household's load in kW, from the feeder source's own profiles (SimBench's
  year, the IEEE day, an OpenDSS model's load shapes) or from the user's **smart-meter CSV** (a ``time``
  column of local times and one column of kW per household), read and checked as every other time series
  of the project (:func:`lec_cosim.models.timeseries.read_profile_columns`); Q from a power factor.
* :func:`spread` and :func:`assign_devices`: PV, home batteries (and any device flag) per household, by a
  **rule** (a share of the households, a size each) or by a **table** (CSV ``household,pv_kwp,
  battery_kwh,battery_kw``). The rule spreads the chosen households over the phases and along the
  feeder, the rule the local-market study uses on the IEEE feeder (its 13 households without PV:
  :data:`lec_cosim.models.lem_participants.CONSUMER_LOADS`, which this rule reproduces).

Every bad input is one line naming the file, the row or column and the reason
(:class:`~lec_cosim.models.feeder_model.FeederSourceError` or
:class:`~lec_cosim.models.timeseries.DataError`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.feeder_model import Feeder, FeederSourceError
from lec_cosim.models.timeseries import HOUSEHOLD_LOAD_RANGE, DataError, read_csv_rows, read_profile_columns

DEVICE_COLUMNS = ("pv_kwp", "battery_kwh", "battery_kw")
"""The sizes a household's devices have (0: none)."""


def path_length_km(feeder: Feeder) -> pd.Series:
    """Electrical path length of every bus from the source, km (line lengths summed; transformers count 0)."""
    import pandapower.topology as top

    source = int(feeder.net.ext_grid["bus"].iloc[0])
    return top.calc_distance_to_bus(feeder.net, source, weight="weight")


def place_households(feeder: Feeder, mapping: Path | str | None = None) -> pd.DataFrame:
    """Which connection point each household takes.

    Returns
    -------
    pandas.DataFrame
        Index ``household`` (in the order of the mapping file, else of the feeder's connection points); columns
        ``connection``, ``bus`` and ``phases`` (of the point).

    Raises
    ------
    FeederSourceError
        A mapping file that is missing or not a CSV, lacks a column, names a household twice or a connection point
        the feeder does not have: one line naming the file, the row and the value.
    """
    points = feeder.connections
    if mapping is None:
        table = pd.DataFrame({"connection": points.index}, index=pd.Index(points.index, name="household"))
    else:
        path = Path(mapping)
        if not path.is_file():
            raise FeederSourceError(f"{path}: file not found")
        try:
            rows = read_csv_rows(path, dtype=str, keep_default_na=False)
        except DataError as error:
            raise FeederSourceError(str(error)) from None
        for column in ("household", "connection"):
            if column not in rows.columns:
                raise FeederSourceError(f"{path}: column {column!r} missing (has {', '.join(rows.columns)})")
        rows = rows.apply(lambda column: column.str.strip())
        for line, household, connection in zip(rows.index, rows["household"], rows["connection"]):
            if not household:
                raise FeederSourceError(f"{path}: row {line}: household is empty")
            if connection not in points.index:
                raise FeederSourceError(f"{path}: row {line}: connection {connection!r} is not a connection point of "
                                        f"the feeder ({feeder.name}: {', '.join(points.index[:4])}, ...)")
        twice = rows["household"].duplicated()
        if twice.any():
            line = rows.index[int(np.argmax(twice.to_numpy()))]
            raise FeederSourceError(f"{path}: row {line}: household {rows.at[line, 'household']!r} appears twice")
        table = pd.DataFrame({"connection": rows["connection"].to_numpy()},
                             index=pd.Index(rows["household"].to_numpy(), name="household"))
    table["bus"] = points.loc[table["connection"], "bus"].to_numpy()
    table["phases"] = points.loc[table["connection"], "phases"].to_numpy()
    return table


def household_loads(feeder: Feeder, households: pd.DataFrame, profiles: Path | str | None = None,
                    power_factor: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each household's active and reactive load, kW and kvar (time index, one column per household).

    ``profiles`` None takes the feeder source's profiles of the household's connection point (households that
    share a point share its profile, each the whole of it); a path reads the user's CSV (``time`` and one column
    per household, kW). Q follows ``power_factor`` (lagging) for a CSV, the source's own Q otherwise.

    Raises
    ------
    FeederSourceError
        The source has no profiles and no CSV is given.
    DataError
        The CSV lacks a household's column or holds what a household's load cannot be (one line naming the
        file, the row or the column).
    """
    if not 0 < power_factor <= 1:
        raise ValueError("power_factor must be in (0, 1]")
    names = list(households.index)
    if profiles is None:
        if feeder.load_p_kw is None:
            raise FeederSourceError(f"{feeder.source}: the source has no load profiles; give the households' "
                                    "own (a CSV of kW per household)")
        p = feeder.load_p_kw.loc[:, households["connection"]].set_axis(names, axis=1)
        if feeder.load_q_kvar is not None:
            q = feeder.load_q_kvar.loc[:, households["connection"]].set_axis(names, axis=1)
        else:
            q = p * math.tan(math.acos(power_factor))
        return p, q
    p = read_profile_columns(Path(profiles), names, HOUSEHOLD_LOAD_RANGE)
    p.index.name = "time"
    return p, p * math.tan(math.acos(power_factor))


def spread(feeder: Feeder, households: pd.DataFrame, count: int) -> list[str]:
    """``count`` households spread over the phases and along the feeder.

    The households are grouped by their connection's phases (``a``, ``b``, ``c``; balanced ones form one
    group). Each group gets a share proportional to its size (largest remainders, ties in phase order).
    Within a group, sorted by path length from the source (ties by their order in ``households``), those at
    positions ``floor((j + 0.5) n / c)``, ``j = 0 .. c - 1``, are chosen. Returns them in ``households`` order.
    """
    if not 0 <= count <= len(households):
        raise ValueError(f"count {count} is not between 0 and the {len(households)} households")
    if count == 0:
        return []
    distance = path_length_km(feeder)
    chosen = spread_choice(households["phases"].to_numpy(),
                           [distance.get(int(b), np.inf) for b in households["bus"]], count)
    return [households.index[i] for i in chosen]


def spread_choice(groups, distances, count: int) -> list[int]:
    """The rule of :func:`spread` on plain arrays: positions (ascending) of ``count`` of the items, each item
    in ``groups[i]`` at path length ``distances[i]``; ties in distance go by position."""
    table = pd.DataFrame({"order": np.arange(len(groups)), "group": np.asarray(groups),
                          "dist": np.asarray(distances, dtype=float)})
    sizes = table["group"].value_counts().sort_index()
    quota = sizes * count / sizes.sum()
    per_group = np.floor(quota).astype(int)
    remainder = (quota - per_group).sort_values(ascending=False, kind="stable")
    for group in remainder.index[: count - int(per_group.sum())]:
        per_group[group] += 1
    chosen = []
    for group, c in per_group.items():
        if c == 0:
            continue
        members = table[table["group"] == group].sort_values(["dist", "order"]).reset_index(drop=True)
        n = len(members)
        chosen.extend(members.loc[[int(math.floor((j + 0.5) * n / c)) for j in range(c)], "order"])
    return sorted(int(i) for i in chosen)


def assign_devices(feeder: Feeder, households: pd.DataFrame, *, pv: dict | None = None,
                   battery: dict | None = None, table: Path | str | None = None) -> pd.DataFrame:
    """The households with their devices' sizes (columns :data:`DEVICE_COLUMNS`, 0 for none).

    By rule: ``pv = {"share": 0.76, "kwp": 4.6}`` gives PV of ``kwp`` to ``round(share x households)`` of them
    and ``battery = {"share": ..., "kwh": ..., "kw": ...}`` batteries, both chosen by :func:`spread` (PV goes
    to the households the rule does *not* leave without, as the local-market study chooses its consumers;
    batteries to the spread choice among those with PV, or among all when there is no PV rule). Or by a
    ``table`` CSV ``household,pv_kwp,battery_kwh,battery_kw``: every household of the table must be placed,
    sizes are numbers >= 0, a battery has both energy and power; households it leaves out have none.
    """
    out = households.copy()
    for column in DEVICE_COLUMNS:
        out[column] = 0.0
    if table is not None:
        if pv is not None or battery is not None:
            raise ValueError("devices come by rule or by table, not both")
        return _devices_from_table(Path(table), out)
    names = list(households.index)
    with_pv = names
    if pv is not None:
        n_pv = int(round(float(pv["share"]) * len(names)))
        without = set(spread(feeder, households, len(names) - n_pv))
        with_pv = [n for n in names if n not in without]
        out.loc[with_pv, "pv_kwp"] = float(pv["kwp"])
    if battery is not None:
        candidates = households.loc[with_pv]
        n_battery = int(round(float(battery["share"]) * len(names)))
        if n_battery > len(candidates):
            raise ValueError(f"battery share {battery['share']:g} asks for {n_battery} batteries among "
                             f"{len(candidates)} households with PV")
        chosen = spread(feeder, candidates, n_battery)
        out.loc[chosen, "battery_kwh"] = float(battery["kwh"])
        out.loc[chosen, "battery_kw"] = float(battery["kw"])
    return out


def _devices_from_table(path: Path, out: pd.DataFrame) -> pd.DataFrame:
    try:
        rows = read_csv_rows(path, dtype=str, keep_default_na=False)
    except DataError as error:
        raise FeederSourceError(str(error)) from None
    for column in ("household", *DEVICE_COLUMNS):
        if column not in rows.columns:
            raise FeederSourceError(f"{path}: column {column!r} missing (has {', '.join(rows.columns)})")
    seen: dict[str, int] = {}
    for line, row in rows.iterrows():
        household = row["household"].strip()
        if household not in out.index:
            raise FeederSourceError(f"{path}: row {line}: household {household!r} is not placed on the feeder")
        if household in seen:
            raise FeederSourceError(f"{path}: row {line}: household {household!r} appears twice (first in row "
                                    f"{seen[household]})")
        seen[household] = line
        sizes = {}
        for column in DEVICE_COLUMNS:
            text = row[column].strip()
            try:
                value = float(text) if text else 0.0
            except ValueError:
                value = float("nan")
            if not (math.isfinite(value) and value >= 0):
                raise FeederSourceError(f"{path}: row {line}: {column} is {text!r}, not a size >= 0")
            sizes[column] = value
        if (sizes["battery_kwh"] > 0) != (sizes["battery_kw"] > 0):
            raise FeederSourceError(f"{path}: row {line}: a battery needs both battery_kwh and battery_kw")
        for column, value in sizes.items():
            out.at[household, column] = value
    return out
