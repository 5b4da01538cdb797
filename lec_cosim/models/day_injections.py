"""The powers of the local-market participants per period of one day, for the grid.

:class:`HourlyInjections` holds the households' loads (P and Q), the prosumers' PV and the CHP
capacities of every market period, as mean powers; :func:`hourly_injections` builds them from the
community of :func:`~lec_cosim.models.lem_community.build_community` at hourly steps, with the
loads' reactive power from their power factor (:func:`reactive_power_kvar`). They are the input of
the grid (:meth:`~lec_cosim.models.three_phase_feeder.LemGrid.set_injections`) and of the linear
DN-impact model, not part of either, so they live apart; so does ``_as_series``, which reads
values keyed by participant name for both.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR
from lec_cosim.models.lem_community import build_community
from lec_cosim.models.lem_participants import (
    DEFAULT_PV_DAY,
    PAPER_LOAD_PEAK_KW,
    PV_PROFILE_FILE,
)

LOAD_POWER_FACTOR = 0.95
"""Power factor (lagging) of the IEEE household loads."""


def reactive_power_kvar(load_kw, power_factor: float = LOAD_POWER_FACTOR):
    """Reactive power of loads at a lagging power factor, ``P * tan(acos(pf))`` (same container type)."""
    if not 0 < power_factor <= 1:
        raise ValueError("power_factor must be in (0, 1]")
    return load_kw * math.tan(math.acos(power_factor))


def _as_series(values, what: str) -> pd.Series:
    if isinstance(values, pd.Series):
        series = values
    elif isinstance(values, Mapping):
        series = pd.Series(dict(values), dtype=float)
    else:
        raise TypeError(f"{what} must be a mapping or a pandas Series keyed by participant name")
    series = series.astype(float)
    if not series.index.is_unique:
        raise ValueError(f"{what}: duplicate participant names")
    if not np.all(np.isfinite(series.to_numpy())):
        raise ValueError(f"{what}: values must be finite")
    return series


@dataclass(frozen=True, eq=False)
class HourlyInjections:
    """Powers of the participants per period of one day (mean power of the period).

    Attributes
    ----------
    load_kw, load_kvar : pandas.DataFrame
        Household consumption, index ``period``, columns ``LOADk``.
    pv_kw : pandas.DataFrame
        PV generation of the prosumers, index ``period``, columns prosumer names.
    chp_capacity_kw : pandas.Series
        CHP name -> capacity, kW.
    load_scale : float
        Factor the IEEE load profiles were multiplied with.
    step_h : float
        Period length, hours.
    """

    load_kw: pd.DataFrame
    load_kvar: pd.DataFrame
    pv_kw: pd.DataFrame
    chp_capacity_kw: pd.Series
    load_scale: float = 1.0
    step_h: float = 1.0

    @property
    def n_periods(self) -> int:
        return len(self.load_kw)

    def period(self, t: int) -> dict[str, pd.Series]:
        """``load_kw``, ``load_kvar`` and ``pv_kw`` of period ``t`` (position), for :meth:`LemGrid.set_injections`."""
        return {"load_kw": self.load_kw.iloc[t], "load_kvar": self.load_kvar.iloc[t], "pv_kw": self.pv_kw.iloc[t]}

    @classmethod
    def from_community(cls, community) -> HourlyInjections:
        """Mean powers per market period of a :class:`~lec_cosim.models.lem_community.Community`."""
        kinds = community.kinds
        names = np.array(community.names)
        households, prosumers, chp = kinds != "chp", kinds == "prosumer", kinds == "chp"
        period_h = community.steps_per_period * community.grid_min / 60.0

        def frame(values_kw, mask):
            mean_kw = community.period_energy_kwh(values_kw[mask]) / period_h
            return pd.DataFrame(mean_kw.T, columns=list(names[mask]),
                                index=pd.RangeIndex(mean_kw.shape[1], name="period"))

        return cls(load_kw=frame(community.load_kw, households), load_kvar=frame(community.load_kvar, households),
                   pv_kw=frame(community.pv_kw, prosumers),
                   chp_capacity_kw=pd.Series(community.chp_kw[chp], index=list(names[chp])),
                   load_scale=community.load_scale, step_h=period_h)


def hourly_injections(
    day: str = DEFAULT_PV_DAY,
    *,
    load_peak_kw: float | None = PAPER_LOAD_PEAK_KW,
    power_factor: float = LOAD_POWER_FACTOR,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    pv_file: Path | str = PV_PROFILE_FILE,
) -> HourlyInjections:
    """Hourly powers of the 61 participants: the community of
    :func:`~lec_cosim.models.lem_community.build_community` at hourly steps.

    The energy of an hour is its mean power (kWh per hour = kW).

    Parameters
    ----------
    day : str
        PV day of 2016.
    load_peak_kw : float or None
        Scale all household loads by one factor so that the aggregate hourly load peak equals this
        (the paper's 140 kW; the IEEE profiles peak at 38.9 kW in hourly means, factor 3.60). None: no
        scaling.
    power_factor : float
        Lagging power factor of the loads (IEEE: 0.95).
    data_dir, pv_file
        Data locations (see :mod:`lec_cosim.models.lem_participants`).

    Returns
    -------
    HourlyInjections
    """
    community = build_community(data_dir, day, pv_file, grid_min=60, load_peak_kw_target=load_peak_kw)
    injections = HourlyInjections.from_community(community)
    return dataclasses.replace(injections, load_kvar=reactive_power_kvar(injections.load_kw, power_factor))


