"""One day of the LEM's participants (:class:`LemDay`): their hourly energies, the CHPs' bid bounds, the book.

The data the bid learner and the day's clearing work on, checked once: consumers' load,
prosumers' load and PV, CHP capacities, the tariff scheme; a seeded synthetic day of the paper's
community for tests and benchmarks; and :func:`day_orders`, the book of one hour as
:class:`~lec_cosim.models.auction.Order` lists for the general clearing. Separate from the
clearing (:mod:`lec_cosim.models.lem_day_clearing`) because it is data, not a market rule.

**Decision variables** of the learner: one offer price per CHP per hour (6 x 24 = 144 variables
for the paper's case), bounded below by the CHP's floor and above by the hour's retail tariff (a
higher offer would never be accepted by a buyer bidding at retail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lec_cosim.models.auction import Order
from lec_cosim.models.chp_cost import (
    CHP_B_EUR_PER_KWH,
    CHP_CAPACITY_KW,
    chp_bid_floor_eur_per_kwh,
)
from lec_cosim.models.lem_orders import chp_orders, consumer_orders, prosumer_orders
from lec_cosim.models.tariffs import SCHEMES, retail_tariff_eur_per_kwh

HOURS = 24


@dataclass(frozen=True, eq=False)
class LemDay:
    """Energy of the LEM's participants over one day of hourly market periods.

    Parameters
    ----------
    consumer_load_kwh : array_like, shape (n_consumers, n_hours)
    prosumer_load_kwh, prosumer_pv_kwh : array_like, shape (n_prosumers, n_hours)
    chp_capacity_kw : array_like, shape (n_chp,)
    scheme : {"plain", "bihourly"}
        Retail tariff scheme.
    start_hour : int
        Hour of the day of the first period (tariffs follow the hour of the day).
    b_eur_per_kwh : float
        CHP cost coefficient b.
    consumer_names, prosumer_names, chp_names : tuple of str, optional
        Default ``C01``, ``P01``, ``CHP1``, ...
    """

    consumer_load_kwh: np.ndarray
    prosumer_load_kwh: np.ndarray
    prosumer_pv_kwh: np.ndarray
    chp_capacity_kw: np.ndarray
    scheme: str = "plain"
    start_hour: int = 0
    b_eur_per_kwh: float = CHP_B_EUR_PER_KWH
    consumer_names: tuple = ()
    prosumer_names: tuple = ()
    chp_names: tuple = ()

    def __post_init__(self):
        def array(name, ndim):
            a = np.array(getattr(self, name), dtype=float, ndmin=ndim)
            if a.ndim != ndim or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ValueError(f"{name} must be a {ndim}-d array of finite numbers >= 0")
            a.setflags(write=False)
            object.__setattr__(self, name, a)
            return a

        cons = array("consumer_load_kwh", 2)
        pl = array("prosumer_load_kwh", 2)
        pv = array("prosumer_pv_kwh", 2)
        chp = array("chp_capacity_kw", 1)
        if cons.size == 0:
            cons = np.zeros((0, pl.shape[1]))
            cons.setflags(write=False)
            object.__setattr__(self, "consumer_load_kwh", cons)
        if pl.size == 0 and pv.size == 0:
            for name in ("prosumer_load_kwh", "prosumer_pv_kwh"):
                empty = np.zeros((0, cons.shape[1]))
                empty.setflags(write=False)
                object.__setattr__(self, name, empty)
            pl = pv = self.prosumer_load_kwh
        if pl.shape != pv.shape:
            raise ValueError(f"prosumer load {pl.shape} and PV {pv.shape} must have the same shape")
        if cons.shape[1] != pl.shape[1]:
            raise ValueError("consumers and prosumers must have the same number of hours")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown tariff scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        for attr, n, prefix in (
            ("consumer_names", cons.shape[0], "C"),
            ("prosumer_names", pl.shape[0], "P"),
            ("chp_names", chp.shape[0], "CHP"),
        ):
            names = tuple(getattr(self, attr)) or tuple(f"{prefix}{i + 1:02d}" for i in range(n))
            if len(names) != n:
                raise ValueError(f"{attr} must have {n} names")
            object.__setattr__(self, attr, names)
        if len(set(self.consumer_names + self.prosumer_names + self.chp_names)) != cons.shape[0] + pl.shape[0] + len(chp):
            raise ValueError("participant names must be unique")

    @property
    def n_hours(self) -> int:
        return self.consumer_load_kwh.shape[1]

    @property
    def n_chp(self) -> int:
        return self.chp_capacity_kw.shape[0]

    @property
    def hours(self) -> np.ndarray:
        """Hour of the day of every period."""
        return (self.start_hour + np.arange(self.n_hours)) % 24

    @property
    def retail_eur_per_kwh(self) -> np.ndarray:
        return retail_tariff_eur_per_kwh(self.hours, self.scheme)

    @property
    def bid_floor_eur_per_kwh(self) -> np.ndarray:
        """Lowest offer of every CHP, EUR/kWh, shape (n_chp,)."""
        return np.atleast_1d(chp_bid_floor_eur_per_kwh(self.chp_capacity_kw, self.b_eur_per_kwh))

    def bid_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower (cost) and upper (retail, or the cost if higher) bounds of the bids, (n_chp, n_hours)."""
        lower = np.repeat(self.bid_floor_eur_per_kwh[:, None], self.n_hours, axis=1)
        upper = np.maximum(np.broadcast_to(self.retail_eur_per_kwh, lower.shape), lower)
        return lower, upper

    def truthful_bids(self) -> np.ndarray:
        """The ``truthful`` strategy: every CHP offers at its floor (opportunity cost), (n_chp, n_hours)."""
        return self.bid_bounds()[0]


def synthetic_day(
    seed: int = 0,
    *,
    n_consumers: int = 13,
    n_prosumers: int = 42,
    n_chp: int = 6,
    chp_capacity_kw: float = CHP_CAPACITY_KW,
    scheme: str = "plain",
) -> LemDay:
    """A random but seeded day of the paper's community (13 consumers, 42 prosumers, 6 CHP).

    Loads follow a residential shape (night trough, morning and evening peaks) scaled to
    3-8 kWh/day per house with 15 % hourly noise; PV is a clear-sky bell between 7 h and 19 h of
    a 1.5-4 kWp system with a random cloudiness factor. For benchmarks and tests only.
    """
    rng = np.random.default_rng(seed)
    h = np.arange(HOURS)
    shape = 0.25 + 0.5 * np.exp(-((h - 8) ** 2) / 4.0) + 1.0 * np.exp(-((h - 20) ** 2) / 6.0)
    shape = shape / shape.sum()

    def loads(n):
        daily = rng.uniform(3.0, 8.0, size=(n, 1))
        return daily * shape * rng.lognormal(0.0, 0.15, size=(n, HOURS))

    bell = np.clip(np.sin(np.pi * (h + 0.5 - 7) / 12.0), 0.0, None) * ((h >= 7) & (h < 19))
    kwp = rng.uniform(1.5, 4.0, size=(n_prosumers, 1))
    pv = 0.8 * kwp * bell * rng.uniform(0.6, 1.0, size=(n_prosumers, 1))
    return LemDay(
        consumer_load_kwh=loads(n_consumers),
        prosumer_load_kwh=loads(n_prosumers),
        prosumer_pv_kwh=pv,
        chp_capacity_kw=np.full(n_chp, float(chp_capacity_kw)),
        scheme=scheme,
    )


def day_orders(day: LemDay, bids_eur_per_kwh, period: int) -> list[Order]:
    """The LEM book of one period as :class:`Order` lists (consumers, prosumers, then CHPs)."""
    bids = _bids(day, bids_eur_per_kwh)[0]
    hour = int(day.hours[period])
    orders = []
    for name, load in zip(day.consumer_names, day.consumer_load_kwh[:, period]):
        orders += consumer_orders(name, load, hour, day.scheme)
    for name, load, pv in zip(day.prosumer_names, day.prosumer_load_kwh[:, period], day.prosumer_pv_kwh[:, period]):
        orders += prosumer_orders(name, load, pv, hour, day.scheme)
    for name, cap, price in zip(day.chp_names, day.chp_capacity_kw, bids[:, period]):
        orders += chp_orders(name, cap, price, b_eur_per_kwh=day.b_eur_per_kwh)
    return orders


def _bids(day: LemDay, bids) -> np.ndarray:
    """Bids as an array (n_ants, n_chp, n_hours); accepts (n_chp,), (n_chp, n_hours) or batched."""
    b = np.asarray(bids, dtype=float)
    if b.ndim == 1:
        b = b[:, None]
    if b.ndim == 2:
        b = b[None]
    if b.ndim != 3 or b.shape[1] != day.n_chp:
        raise ValueError(f"bids must have shape (n_chp={day.n_chp}, n_hours), got {np.shape(bids)}")
    b = np.broadcast_to(b, (b.shape[0], day.n_chp, day.n_hours))
    if not np.all(np.isfinite(b)):
        raise ValueError("bids must be finite")
    return b
