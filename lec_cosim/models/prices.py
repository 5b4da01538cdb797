"""Price feed: day-ahead spot prices and the export (feed-in) price, per market step."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from lec_cosim.models.timeseries import DataError, read_price_file, step_means


@dataclass(frozen=True)
class PriceFeed:
    """Spot prices in currency/MWh; exports are paid ``feed_in_tariff`` or, if None, the spot price."""

    spot: pd.Series
    feed_in_tariff: Optional[float] = None
    source: Optional[str] = None
    """The price file, named in errors."""

    @classmethod
    def from_scenario(cls, scenario) -> "PriceFeed":
        path = scenario.market.price_file
        return cls(read_price_file(path), scenario.market.feed_in_tariff, str(path))

    def prices(self, start: dt.datetime, step_s: float, n_steps: int) -> pd.DataFrame:
        """Spot and export price of each step.

        Returns
        -------
        pandas.DataFrame
            Columns ``price`` and ``export_price`` (currency/MWh).
        """
        try:
            spot = step_means(self.spot, start, step_s, n_steps)
        except DataError as exc:
            if self.source is None:
                raise
            raise DataError(f"{self.source}: {exc}") from None
        export = spot if self.feed_in_tariff is None else np.full(n_steps, float(self.feed_in_tariff))
        return pd.DataFrame({"price": spot, "export_price": export})
