"""The local market's community on a feeder from any source: its players and their profiles over the horizon.

The IEEE feeder's community (:func:`lec_cosim.models.lem_community.build_community`) places the paper's 61
players. This module builds the same :class:`~lec_cosim.models.lem_community.Community` on any
:class:`~lec_cosim.models.feeder_model.Feeder`, so that every federate of the local market (participants,
market operator, DSO, recorder) runs on it unchanged. No HELICS here.

* **Households**: one per connection point of the feeder, or as a mapping file places them
  (:func:`lec_cosim.models.feeder_households.place_households`).
* **Loads**: the households' profiles from the feeder source (SimBench's year) or from the user's
  smart-meter CSV, averaged over each grid step on the simulation clock. An undated day (the IEEE day, an
  OpenDSS model's daily shapes: on :data:`~lec_cosim.models.feeder_model.UNDATED_DAY`) repeats every day, as
  the IEEE feeder's community does; dated profiles must cover the horizon. An optional factor brings the
  aggregate hourly load peak of the whole profile to ``load_peak_kw``. Q from the source's profiles, or the
  power factor for a CSV.
* **PV**: ``pv_share`` of the households, spread over the phases and along the feeder
  (:func:`~lec_cosim.models.feeder_households.assign_devices`), with the shipped SimBench PV shapes PV1..PV8
  in turn and one common kWp sized, as on the IEEE feeder, so that the aggregate hourly PV peak of the sizing
  day is ``pv_peak_kw``.
* **Names**: a household's player name is its name with every run of characters other than letters, digits,
  ``_`` and ``-`` replaced by ``_`` (``LV4.101 Load 1`` -> ``LV4_101_Load_1``): it names an endpoint and
  columns.
* **CHPs**: ``chp_count`` balanced units of ``chp_capacity_kw`` at the buses of households spread along the
  feeder (:func:`~lec_cosim.models.feeder_households.spread`), named ``CHP1`` ...
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.community import Community
from lec_cosim.models.feeder_households import (
    assign_devices,
    household_loads,
    place_households,
    spread,
)
from lec_cosim.models.feeder_model import UNDATED_DAY, Feeder
from lec_cosim.models.lem_participants import PV_PROFILES, pv_day_profiles, pv_profiles
from lec_cosim.models.timeseries import DataError, step_means


def _on_horizon(profile: pd.DataFrame, start: dt.datetime, grid_min: int, n_steps: int, what: str) -> np.ndarray:
    """(columns, n_steps) step means of a profile table on the horizon; an undated day repeats daily."""
    step = profile.index[1] - profile.index[0]
    span = step * len(profile)
    if span == pd.Timedelta(days=1) and profile.index[0].normalize() == UNDATED_DAY:
        # one day of arbitrary date: the day again and again from midnight of the start
        day_steps = 1440 // grid_min
        shifted = profile.set_axis(profile.index - profile.index[0].normalize() + pd.Timestamp(start.date()))
        try:
            one_day = np.stack([step_means(shifted[c], pd.Timestamp(start.date()), grid_min * 60.0, day_steps)
                                for c in profile.columns])
        except DataError as error:
            raise DataError(f"{what}: {error}") from None
        return np.tile(one_day, -(-n_steps // day_steps))[:, :n_steps] if n_steps else one_day[:, :0]
    try:
        return np.stack([step_means(profile[c], start, grid_min * 60.0, n_steps) for c in profile.columns])
    except DataError as error:
        raise DataError(f"{what}: {error}") from None


def build_feeder_community(
    feeder: Feeder,
    start: dt.datetime,
    pv_file: Path | str,
    *,
    grid_min: int = 15,
    horizon_h: float = 24.0,
    mapping: Path | str | None = None,
    load_profiles: Path | str | None = None,
    load_peak_kw: float | None = None,
    power_factor: float = 0.95,
    pv_share: float = 0.76,
    pv_peak_kw: float = 194.0,
    pv_sizing_day: str | None = None,
    chp_count: int = 6,
    chp_capacity_kw: float = 10.0,
    b_eur_per_kwh: float = 0.20,
) -> Community:
    """The community of a local-market scenario on ``feeder`` (see the module docstring).

    Raises
    ------
    FeederSourceError, DataError
        A mapping file or load CSV that does not fit (one line naming the file), profiles that do not cover the
        horizon, no PV on the sizing day.
    """
    if 60 % grid_min:
        raise ValueError("grid_min must divide 60")
    n_steps = int(round(horizon_h * 60 / grid_min))
    if n_steps <= 0 or n_steps * grid_min != horizon_h * 60 or n_steps % (60 // grid_min):
        raise ValueError("horizon_h must be a positive whole number of hours")
    households = place_households(feeder, mapping)
    devices = assign_devices(feeder, households, pv={"share": pv_share, "kwp": 1.0})
    prosumers = [h for h in households.index if devices.at[h, "pv_kwp"] > 0]
    pv_shape = {h: PV_PROFILES[i % len(PV_PROFILES)] for i, h in enumerate(prosumers)}

    # PV: one common kWp, the aggregate hourly peak of the sizing day at pv_peak_kw
    sizing_day = pv_sizing_day or start.date().isoformat()
    day = pv_day_profiles(sizing_day, pv_file)
    hourly = day.resample("60min").mean()
    aggregate = sum(hourly[pv_shape[h]] for h in prosumers) if prosumers else None
    if prosumers and not float(aggregate.max()) > 0:
        raise ValueError(f"no PV at all on {sizing_day} in {Path(pv_file).name}: cannot size the PV on that day")
    kwp = float(pv_peak_kw) / float(aggregate.max()) if prosumers else 0.0

    p, q = household_loads(feeder, households, load_profiles, power_factor)
    where = f"the households' loads ({'the feeder source' if load_profiles is None else load_profiles})"
    load_kw = _on_horizon(p, start, grid_min, n_steps, where)
    load_kvar = _on_horizon(q, start, grid_min, n_steps, where)
    scale = 1.0
    if load_peak_kw is not None:
        # the aggregate hourly peak of the whole profile, not of the horizon: a day's loads are the same in a
        # one-day and in a year's run
        per_hour = p.sum(axis=1).resample("60min").mean()
        scale = float(load_peak_kw) / float(per_hour.max())
        load_kw, load_kvar = load_kw * scale, load_kvar * scale

    hours = n_steps * grid_min // 60
    pv = pv_profiles(start.date().isoformat(), hours, pv_file)
    minutes = n_steps * grid_min
    pv_kw = np.zeros_like(load_kw)
    for i, h in enumerate(households.index):
        if h in pv_shape:
            per_min = np.repeat(pv[pv_shape[h]].to_numpy(dtype=float), 15)[:minutes]
            pv_kw[i] = per_min.reshape(n_steps, grid_min).mean(axis=1) * kwp

    # a player's name is its endpoint's and its columns': letters, digits, '_' and '-' only
    names = {h: re.sub(r"[^A-Za-z0-9_-]+", "_", str(h)).strip("_") or "household" for h in households.index}
    chp_names = {f"CHP{i}" for i in range(1, int(chp_count) + 1)}
    taken = sorted(h for h, name in names.items() if name in chp_names)
    if taken:
        raise ValueError(f"household {taken[0]!r}: its player name {names[taken[0]]!r} is a CHP's; rename it")
    if len(set(names.values())) < len(names):
        clash = pd.Series(list(names)).groupby(pd.Series(list(names.values()))).agg(list)
        pair = next(v for v in clash if len(v) > 1)
        raise ValueError(f"households {pair[0]!r} and {pair[1]!r} get the same player name "
                         f"{names[pair[0]]!r}; rename one")
    rows = [{"participant": names[h], "kind": "prosumer" if h in pv_shape else "consumer", "bus": int(row.bus),
             "phase": row.phases, "pv_kwp": kwp if h in pv_shape else 0.0, "chp_kw": 0.0, "reduced_bus": -1}
            for h, row in households.iterrows()]
    chp_sites = spread(feeder, households, int(chp_count)) if chp_count else []
    for i, h in enumerate(chp_sites, start=1):
        rows.append({"participant": f"CHP{i}", "kind": "chp", "bus": int(households.at[h, "bus"]), "phase": "abc",
                     "pv_kwp": 0.0, "chp_kw": float(chp_capacity_kw), "reduced_bus": -1})
    table = pd.DataFrame(rows)
    zeros = np.zeros((len(chp_sites), n_steps))
    return Community(table=table, grid_min=grid_min, load_kw=np.vstack([load_kw, zeros]),
                     load_kvar=np.vstack([load_kvar, zeros]), pv_kw=np.vstack([pv_kw, zeros]),
                     load_scale=scale, b_eur_per_kwh=float(b_eur_per_kwh))

