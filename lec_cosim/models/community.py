"""The local market's community as plain arrays: who the players are and what they consume and produce.

:class:`Community` is what every federate of the local market reads (participants, market operator, DSO,
recorder) and what the learner trains on, whichever feeder the players sit on: the IEEE feeder's
(:func:`lec_cosim.models.lem_community.build_community`) or any other
(:func:`lec_cosim.models.feeder_community.build_feeder_community`). No HELICS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lec_cosim.models.bidding import LemDay

MARKET_PERIOD_MIN = 60


@dataclass(frozen=True, eq=False)
class Community:
    """The players of the LEM and their profiles over the horizon (one or more days).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per participant (``LOAD1`` .. ``LOAD55``, ``CHP1`` .. ``CHP6``): ``participant, kind,
        bus, phase, pv_kwp, chp_kw, reduced_bus``.
    grid_min : int
        Grid step, minutes.
    load_kw, load_kvar, pv_kw : numpy.ndarray, shape (n_participants, n_steps)
        Mean power of every grid step of the horizon (0 for CHPs).
    load_scale : float
        Factor applied to the IEEE profiles.
    b_eur_per_kwh : float
        CHP cost coefficient.
    """

    table: pd.DataFrame
    grid_min: int
    load_kw: np.ndarray
    load_kvar: np.ndarray
    pv_kw: np.ndarray
    load_scale: float
    b_eur_per_kwh: float

    @property
    def names(self) -> list[str]:
        return list(self.table["participant"])

    @property
    def kinds(self) -> np.ndarray:
        return self.table["kind"].to_numpy()

    @property
    def chp_kw(self) -> np.ndarray:
        """Capacity of every participant's CHP, kW (0 for households)."""
        return self.table["chp_kw"].to_numpy(dtype=float)

    @property
    def steps_per_period(self) -> int:
        return MARKET_PERIOD_MIN // self.grid_min

    @property
    def n_periods(self) -> int:
        return self.load_kw.shape[1] // self.steps_per_period

    def period_energy_kwh(self, values_kw: np.ndarray) -> np.ndarray:
        """Energy per market period of per-step powers (n, n_steps) -> (n, n_periods), kWh."""
        n = values_kw.shape[0]
        return values_kw.reshape(n, self.n_periods, self.steps_per_period).mean(axis=2) * MARKET_PERIOD_MIN / 60.0

    @property
    def load_kwh(self) -> np.ndarray:
        return self.period_energy_kwh(self.load_kw)

    @property
    def pv_kwh(self) -> np.ndarray:
        return self.period_energy_kwh(self.pv_kw)

    def lem_day(self, scheme: str) -> LemDay:
        """The horizon as the learner's :class:`~lec_cosim.models.bidding.LemDay` (same energies and names).

        One ``LemDay`` of ``n_periods`` hours; tariffs follow the hour of the day (``period % 24``).
        """
        kinds = self.kinds
        cons, pros, chp = (kinds == "consumer"), (kinds == "prosumer"), (kinds == "chp")
        names = np.array(self.names)
        return LemDay(
            consumer_load_kwh=self.load_kwh[cons], prosumer_load_kwh=self.load_kwh[pros],
            prosumer_pv_kwh=self.pv_kwh[pros], chp_capacity_kw=self.chp_kw[chp], scheme=scheme,
            b_eur_per_kwh=self.b_eur_per_kwh, consumer_names=tuple(names[cons]),
            prosumer_names=tuple(names[pros]), chp_names=tuple(names[chp]),
        )
