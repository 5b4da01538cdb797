"""Grid tariffs of the local electricity market: the feed-in tariff and the retail tariff of an hour.

The prices at which the grid buys and sells in the LEM scenarios, and so the bounds of every order
in the LEM (nobody pays more than retail or accepts less than feed-in). Separate because the
tariffs are used well beyond bidding (the three-LEC EMS, the reports), which should not need the
bid learner to know what the grid charges.

* Feed-in 0.045 EUR/kWh. Retail either plain 0.158 EUR/kWh or bi-hourly: 0.1924 peak, 0.1023
  off-peak, with the peak "9 to 22 h" read as the hours starting at 9, 10, ..., 21
  (09:00-22:00); hour 22 is off-peak. Hours are hour-of-day integers (taken modulo 24).
"""

from __future__ import annotations

import numpy as np

FEED_IN_EUR_PER_KWH = 0.045
FEED_IN = FEED_IN_EUR_PER_KWH
PLAIN_EUR_PER_KWH = 0.158
BIHOURLY_OFF_PEAK_EUR_PER_KWH = 0.1023
BIHOURLY_PEAK_EUR_PER_KWH = 0.1924
PEAK_START_HOUR = 9  # first peak hour (09:00-10:00)
PEAK_END_HOUR = 22  # first off-peak hour after the peak (22:00-23:00)
SCHEMES = ("plain", "bihourly")


def retail_tariff_eur_per_kwh(hour, scheme: str = "plain"):
    """Retail (grid purchase) tariff of an hour of the day, EUR/kWh.

    Parameters
    ----------
    hour : int or array_like of int
        Hour of the day (the hour starting at ``hour``:00), taken modulo 24.
    scheme : {"plain", "bihourly"}
        Plain tariff 0.158; bi-hourly 0.1924 for hours 9..21 (peak, 09:00-22:00) and 0.1023
        otherwise.

    Returns
    -------
    float or numpy.ndarray
        A float for a scalar hour, an array otherwise.
    """
    if type(hour) is int:  # one hour, the common case (every order and settlement): no arrays
        if scheme == "plain":
            return PLAIN_EUR_PER_KWH
        if scheme == "bihourly":
            peak = PEAK_START_HOUR <= hour % 24 < PEAK_END_HOUR
            return BIHOURLY_PEAK_EUR_PER_KWH if peak else BIHOURLY_OFF_PEAK_EUR_PER_KWH
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tariff scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    h = np.mod(np.asarray(hour), 24)
    if scheme == "plain":
        tariff = np.full(h.shape, PLAIN_EUR_PER_KWH)
    else:
        peak = (h >= PEAK_START_HOUR) & (h < PEAK_END_HOUR)
        tariff = np.where(peak, BIHOURLY_PEAK_EUR_PER_KWH, BIHOURLY_OFF_PEAK_EUR_PER_KWH)
    return float(tariff) if tariff.ndim == 0 else tariff
