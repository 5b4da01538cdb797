"""Households of the LEC: load and rooftop PV played back from measured profiles."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from lec_cosim.models.timeseries import (
    HOUSEHOLD_LOAD_RANGE,
    PV_RANGE,
    DataError,
    on_calendar,
    read_profile_columns,
    step_means,
)


@dataclass(frozen=True)
class HouseholdFleet:
    """Aggregate of ``count`` households, each with one load profile and optional PV.

    Households take the load profiles in turn; each profile is scaled so that one household
    uses ``annual_consumption_kwh`` over the profile year. PV is ``kwp_per_household`` kWp on
    every household, shaped by a relative PV profile (p.u. of rated power).

    Attributes
    ----------
    load_mw : pandas.Series
        Aggregate active load on the simulation calendar, MW.
    pv_mw : pandas.Series
        Aggregate PV feed-in, MW (zeros without PV).
    power_factor : float
        Load power factor (inductive); gives reactive load.
    """

    load_mw: pd.Series
    pv_mw: pd.Series
    power_factor: float
    sources: Optional[dict] = None
    """The profile file of ``load_mw`` and of ``pv_mw``, named when a step lies outside them."""

    @classmethod
    def from_scenario(cls, scenario) -> "HouseholdFleet":
        hh = scenario.households
        first_year = scenario.start.year
        last = scenario.start + dt.timedelta(hours=scenario.horizon_h)
        years = range(first_year, last.year + 1)
        profiles = read_profile_columns(hh.load_profile_file, [f"{name}_pload" for name in hh.load_profiles],
                                        HOUSEHOLD_LOAD_RANGE)
        source_year = profiles.index[0].year
        in_year = profiles[profiles.index.year == source_year]
        interval_h = (profiles.index[1] - profiles.index[0]).total_seconds() / 3600
        # kWh per unit profile over its year -> MW per household so it sums to the annual use.
        per_household_mw = hh.annual_consumption_kwh / (in_year.sum() * interval_h) / 1000.0
        counts = np.bincount(np.arange(hh.count) % len(hh.load_profiles), minlength=len(hh.load_profiles))
        aggregate = (profiles * per_household_mw.to_numpy() * counts).sum(axis=1)
        load = on_calendar(aggregate.rename("load_mw"), years)
        if hh.pv is not None and hh.pv.kwp_per_household > 0:
            pv_profile = read_profile_columns(hh.pv.profile_file, [hh.pv.profile], PV_RANGE)[hh.pv.profile]
            pv = on_calendar(pv_profile.clip(lower=0.0) * hh.pv.kwp_per_household * hh.count / 1000.0, years)
            pv = pv.rename("pv_mw")
        else:
            pv = pd.Series(0.0, index=load.index, name="pv_mw")
        return cls(load_mw=load, pv_mw=pv, power_factor=hh.power_factor,
                   sources={"load_mw": str(hh.load_profile_file), "pv_mw": str(hh.pv.profile_file) if hh.pv else None})

    def power(self, start: dt.datetime, step_s: float, n_steps: int) -> pd.DataFrame:
        """Mean load P and Q and PV P over each of ``n_steps`` steps from ``start``.

        Returns
        -------
        pandas.DataFrame
            Columns ``load_p_mw``, ``load_q_mvar``, ``pv_p_mw``.
        """
        load, pv = (self._means(series, start, step_s, n_steps) for series in (self.load_mw, self.pv_mw))
        tan_phi = math.tan(math.acos(self.power_factor))
        return pd.DataFrame({"load_p_mw": load, "load_q_mvar": load * tan_phi, "pv_p_mw": pv})

    def _means(self, series: pd.Series, start: dt.datetime, step_s: float, n_steps: int):
        try:
            return step_means(series, start, step_s, n_steps)
        except DataError as exc:
            source = (self.sources or {}).get(series.name)
            if source is None:
                raise
            raise DataError(f"{source}: {exc}") from None
