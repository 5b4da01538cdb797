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
    unit_load_mw: Optional[pd.DataFrame] = None
    """One household of each load profile, MW, on the profile file's time axis (see :meth:`profile_loads`)."""
    years: Optional[range] = None
    """The calendar years ``load_mw`` and ``pv_mw`` cover."""

    @classmethod
    def from_scenario(cls, scenario) -> "HouseholdFleet":
        hh = scenario.households
        years = _years(scenario)
        counts = np.bincount(np.arange(hh.count) % len(hh.load_profiles), minlength=len(hh.load_profiles))
        unit = _one_household_of_each_profile(hh)
        aggregate = (unit * counts).sum(axis=1)
        load = on_calendar(aggregate.rename("load_mw"), years)
        if hh.pv is not None and hh.pv.kwp_per_household > 0:
            pv_profile = read_profile_columns(hh.pv.profile_file, [hh.pv.profile], PV_RANGE)[hh.pv.profile]
            pv = on_calendar(pv_profile.clip(lower=0.0) * hh.pv.kwp_per_household * hh.count / 1000.0, years)
            pv = pv.rename("pv_mw")
        else:
            pv = pd.Series(0.0, index=load.index, name="pv_mw")
        return cls(load_mw=load, pv_mw=pv, power_factor=hh.power_factor,
                   sources={"load_mw": str(hh.load_profile_file), "pv_mw": str(hh.pv.profile_file) if hh.pv else None},
                   unit_load_mw=unit, years=years)

    def profile_loads(self) -> pd.DataFrame:
        """One household of each of the scenario's load profiles, MW, on the simulation calendar (columns
        ``<profile>_pload``, in the order of ``households.load_profiles``): household ``i`` plays profile
        ``i mod len(load_profiles)``, so ``load_mw`` is these columns weighted by their counts (the community
        battery on a feeder source puts them on the feeder's buses). A fleet made by :meth:`from_scenario` only."""
        unit = self.unit_load_mw
        return pd.DataFrame({column: on_calendar(unit[column], self.years) for column in unit.columns})

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


def _years(scenario) -> range:
    """The calendar years the scenario's horizon touches."""
    last = scenario.start + dt.timedelta(hours=scenario.horizon_h)
    return range(scenario.start.year, last.year + 1)


def _one_household_of_each_profile(hh) -> pd.DataFrame:
    """Each load profile scaled to one household's ``annual_consumption_kwh`` over the profile year, MW, on the
    profile file's own time axis."""
    profiles = read_profile_columns(hh.load_profile_file, [f"{name}_pload" for name in hh.load_profiles],
                                    HOUSEHOLD_LOAD_RANGE)
    source_year = profiles.index[0].year
    in_year = profiles[profiles.index.year == source_year]
    interval_h = (profiles.index[1] - profiles.index[0]).total_seconds() / 3600
    # kWh per unit profile over its year -> MW per household so it sums to the annual use.
    per_household_mw = hh.annual_consumption_kwh / (in_year.sum() * interval_h) / 1000.0
    return profiles * per_household_mw.to_numpy()
