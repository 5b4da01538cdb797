"""Bidding in the day-ahead LEM: tariffs, participants' orders, CHP profits and ACO-learnt bids.

After Lezama, Faia and Vale, "Bidding in Local Electricity Markets Considering Low Voltage Grid
Constraints". 61 players (13 consumers, 42 PV prosumers, 6 CHP producers of 10 kW) trade in an
hourly day-ahead LEM cleared as a symmetric pool (:mod:`lec_cosim.models.auction`). Consumers and
prosumers follow fixed rules; the CHP producers learn their bids with ant colony optimisation.

Readings of the points the paper leaves open (each one a choice of this module):

* **Tariffs.** Feed-in 0.045 EUR/kWh. Retail either plain 0.158 EUR/kWh or bi-hourly: 0.1924
  peak, 0.1023 off-peak, with the peak "9 to 22 h" read as the hours starting at 9, 10, ..., 21
  (09:00-22:00); hour 22 is off-peak. Hours are hour-of-day integers (taken modulo 24).
* **Consumers** are inelastic price takers: one bid per hour for their whole load at the retail
  tariff (the most they would pay, since the grid always sells at it). What the LEM does not
  serve is bought from the grid at retail.
* **Prosumers** net their PV against their load hour by hour: a deficit is bid at retail like a
  consumer; a surplus is offered at the feed-in tariff (their opportunity cost, since unsold
  surplus is injected at feed-in). A prosumer is never on both sides in one hour.
* **CHP cost.** "Production cost 2*b*sqrt(G)" with b = 0.20 EUR/kWh is read as the *marginal*
  cost at output G, with G in MW (numerically): MC(G) = 2*b*sqrt(G_kW / 1000) EUR/kWh. With G in
  kW a 10 kW unit would cost 1.26 EUR/kWh, eight times the retail tariff, and could never sell;
  in MW it costs 0.040 EUR/kWh at full output, the fuel cost of a gas CHP. The production cost of
  an hour at constant output G is the integral C(G) = (4/3)*b*G*sqrt(G/1000) EUR (G in kW, one
  hour), so C(10 kW) = 0.2667 EUR. A CHP offers its whole capacity as one block, and its price
  floor (the truthful bid) is its opportunity cost: the higher of the marginal cost at full
  output, MC(capacity) = 0.040, and the feed-in tariff 0.045 EUR/kWh (what its energy fetches
  outside the LEM: without a LEM, the base cases, it sells to the grid at feed-in). Every accepted
  kWh then earns at least its marginal cost, so truthful bidding never loses money, and every
  offer in the pool is at or above feed-in, so the price lies between feed-in and retail. In the
  LEM cases a CHP produces exactly what the LEM accepts (it does not sell to the grid).
* **Decision variables.** One offer price per CHP per hour (6 x 24 = 144 variables for the
  paper's case), bounded below by the CHP's floor and above by the hour's retail tariff (a
  higher offer would never be accepted by a buyer bidding at retail).
* **Fitness** (minimised) = -mean(profit) + std(profit) + 1e4 * (hours the LEM did not clear)
  + dn_penalty(result). Profit is each CHP's daily profit (income - production cost); mean and
  (population, ddof=0) standard deviation are taken across the CHPs, so the colony learns bids
  that are profitable *and* fair among the producers. An hour "did not clear" when there was
  demand in the book but nothing traded. The distribution-network (DN) penalty - voltage, angle
  and line-limit violation counts plus active and reactive losses in the paper - is a callable
  supplied by the caller (it takes the :class:`DayResult`), or ``None`` for 0. A penalty object
  with a ``penalty_batch`` method (:class:`BatchDnPenalty`, e.g.
  :class:`lec_cosim.models.lem_grid.LinearDnImpactModel`) is instead given the CHPs' sold kWh of a
  whole batch of bids at once, so that training with a DN penalty is as vectorised as without.
* **ACO** is ACO_R, ant colony optimisation for continuous domains (Socha and Dorigo, "Ant
  colony optimization for continuous domains", EJOR 185(3), 2008): an archive of the k best
  solutions, ranked; weights w_l = exp(-(l-1)^2 / (2 q^2 k^2)) / (q k sqrt(2 pi)) choose one
  archive solution per ant as the mean of a Gaussian kernel, whose standard deviation in each
  dimension is xi times the mean distance of the other archive solutions to it. Samples outside
  the bounds are clipped onto them (offers at the retail cap or at cost are legitimate bids). The
  new solutions join the archive and the worst are dropped. Each run starts from a uniform random
  archive into which the truthful bids are inserted (``include_truthful``), so the learnt bids
  are never worse than truthful bidding; of ``runs`` independent runs the best is kept.
  Run r draws from ``numpy.random.SeedSequence(seed).spawn(runs)[r]``: same seed, same history.

The fitness evaluation clears all 24 hours of all ants of an iteration at once in NumPy
(:func:`_clear_batch`), with exactly the conventions of the merit-order path of
:func:`lec_cosim.models.auction.clear_double_auction` (largest volume, midpoint price, pro-rata
ties) specialised to this book: every bid is at the hour's retail tariff, so the demand curve has
one step. :func:`day_orders` builds the same book as :class:`~lec_cosim.models.auction.Order`
lists for the general clearing (the market federate, and the tests that check the two agree).

The market period is one hour, so kW and kWh per period are the same numbers. No HELICS here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from lec_cosim.models.auction import Order

# --- tariffs -----------------------------------------------------------------------------------

FEED_IN_EUR_PER_KWH = 0.045
FEED_IN = FEED_IN_EUR_PER_KWH
PLAIN_EUR_PER_KWH = 0.158
BIHOURLY_OFF_PEAK_EUR_PER_KWH = 0.1023
BIHOURLY_PEAK_EUR_PER_KWH = 0.1924
PEAK_START_HOUR = 9  # first peak hour (09:00-10:00)
PEAK_END_HOUR = 22  # first off-peak hour after the peak (22:00-23:00)
SCHEMES = ("plain", "bihourly")
STRATEGIES = ("truthful", "aco")

# --- CHP ---------------------------------------------------------------------------------------

CHP_B_EUR_PER_KWH = 0.20
CHP_CAPACITY_KW = 10.0
NOT_CLEARED_PENALTY = 1e4
HOURS = 24

_REL_TOL = 1e-9  # as in lec_cosim.models.auction


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
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tariff scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    h = np.mod(np.asarray(hour), 24)
    if scheme == "plain":
        tariff = np.full(h.shape, PLAIN_EUR_PER_KWH)
    else:
        peak = (h >= PEAK_START_HOUR) & (h < PEAK_END_HOUR)
        tariff = np.where(peak, BIHOURLY_PEAK_EUR_PER_KWH, BIHOURLY_OFF_PEAK_EUR_PER_KWH)
    return float(tariff) if tariff.ndim == 0 else tariff


def chp_marginal_cost_eur_per_kwh(output_kw, b_eur_per_kwh: float = CHP_B_EUR_PER_KWH):
    """Marginal production cost MC(G) = 2*b*sqrt(G / 1000) of a CHP at output G kW, EUR/kWh.

    G enters in MW (module docstring): 0.040 EUR/kWh at 10 kW with b = 0.20.
    """
    g = np.asarray(output_kw, dtype=float)
    if np.any(g < 0):
        raise ValueError("CHP output must be >= 0 kW")
    cost = 2.0 * b_eur_per_kwh * np.sqrt(g / 1000.0)
    return float(cost) if cost.ndim == 0 else cost


def chp_production_cost_eur(energy_kwh, b_eur_per_kwh: float = CHP_B_EUR_PER_KWH):
    """Production cost of one hour at constant output, the integral of the marginal cost, EUR.

    C(G) = (4/3) * b * G * sqrt(G / 1000) for G kWh produced in the hour (0.2667 EUR for 10 kWh).
    """
    g = np.asarray(energy_kwh, dtype=float)
    if np.any(g < 0):
        raise ValueError("CHP energy must be >= 0 kWh")
    cost = (4.0 / 3.0) * b_eur_per_kwh * g * np.sqrt(g / 1000.0)
    return float(cost) if cost.ndim == 0 else cost


def chp_bid_floor_eur_per_kwh(capacity_kw, b_eur_per_kwh: float = CHP_B_EUR_PER_KWH,
                              feed_in_eur_per_kwh: float = FEED_IN_EUR_PER_KWH):
    """Lowest offer price of a CHP (the truthful bid), EUR/kWh: its opportunity cost, the higher of
    its marginal cost at full output and the feed-in tariff (module docstring)."""
    floor = np.maximum(chp_marginal_cost_eur_per_kwh(capacity_kw, b_eur_per_kwh), feed_in_eur_per_kwh)
    return float(floor) if np.ndim(floor) == 0 else floor


# --- orders ------------------------------------------------------------------------------------


def _kwh(value, what):
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def consumer_orders(name: str, load_kwh: float, hour: int, scheme: str = "plain") -> list[Order]:
    """Orders of a consumer for one hour: its whole load bid at the retail tariff.

    Returns an empty list when the load is 0.
    """
    load = _kwh(load_kwh, "load_kwh")
    if load == 0:
        return []
    return [Order(name, "buy", retail_tariff_eur_per_kwh(hour, scheme), load)]


def prosumer_orders(name: str, load_kwh: float, pv_kwh: float, hour: int, scheme: str = "plain") -> list[Order]:
    """Orders of a PV prosumer for one hour: the deficit bid at retail, or the surplus offered at
    the feed-in tariff. Returns an empty list when load and PV balance.
    """
    net = _kwh(load_kwh, "load_kwh") - _kwh(pv_kwh, "pv_kwh")
    if net > 0:
        return [Order(name, "buy", retail_tariff_eur_per_kwh(hour, scheme), net)]
    if net < 0:
        return [Order(name, "sell", FEED_IN_EUR_PER_KWH, -net)]
    return []


def chp_orders(
    name: str,
    capacity_kw: float,
    price_eur_per_kwh: float,
    *,
    b_eur_per_kwh: float = CHP_B_EUR_PER_KWH,
) -> list[Order]:
    """Orders of a CHP for one hour: its whole capacity offered as one block at the bid price.

    Raises ``ValueError`` if the price is below the CHP's floor :func:`chp_bid_floor_eur_per_kwh`.
    """
    capacity = _kwh(capacity_kw, "capacity_kw")
    floor = chp_bid_floor_eur_per_kwh(capacity, b_eur_per_kwh)
    price = float(price_eur_per_kwh)
    if not price >= floor - 1e-12:
        raise ValueError(f"CHP {name!r}: offer {price!r} EUR/kWh below its opportunity cost {floor:.6g}")
    return [Order(name, "sell", price, capacity)]


# --- the day -----------------------------------------------------------------------------------


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


# --- clearing a day ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DayResult:
    """Outcome of a day of the LEM for given CHP bids (all money in EUR, energy in kWh).

    Attributes
    ----------
    bids_eur_per_kwh : numpy.ndarray, shape (n_chp, n_hours)
    price_eur_per_kwh : numpy.ndarray, shape (n_hours,)
        Clearing price, NaN in hours where nothing traded.
    volume_kwh : numpy.ndarray, shape (n_hours,)
    not_cleared : numpy.ndarray of bool, shape (n_hours,)
        Demand in the book but nothing traded.
    chp_sold_kwh : numpy.ndarray, shape (n_chp, n_hours)
        Accepted offers = CHP production.
    chp_income_eur, chp_cost_eur, chp_profit_eur : numpy.ndarray, shape (n_chp,)
        Daily income (price x sold), production cost and profit (income - cost).
    consumer_lem_kwh, consumer_grid_kwh : numpy.ndarray, shape (n_consumers, n_hours)
        Load served by the LEM and bought from the grid at retail.
    consumer_bill_eur : numpy.ndarray, shape (n_consumers,)
    prosumer_lem_bought_kwh, prosumer_grid_import_kwh : numpy.ndarray, shape (n_prosumers, n_hours)
    prosumer_lem_sold_kwh, prosumer_grid_export_kwh : numpy.ndarray, shape (n_prosumers, n_hours)
        Surplus sold in the LEM and injected at the feed-in tariff.
    prosumer_bill_eur : numpy.ndarray, shape (n_prosumers,)
        Daily cost - income (negative: the prosumer earns).
    """

    bids_eur_per_kwh: np.ndarray
    price_eur_per_kwh: np.ndarray
    volume_kwh: np.ndarray
    not_cleared: np.ndarray
    chp_sold_kwh: np.ndarray
    chp_income_eur: np.ndarray
    chp_cost_eur: np.ndarray
    chp_profit_eur: np.ndarray
    consumer_lem_kwh: np.ndarray
    consumer_grid_kwh: np.ndarray
    consumer_bill_eur: np.ndarray
    prosumer_lem_bought_kwh: np.ndarray
    prosumer_grid_import_kwh: np.ndarray
    prosumer_lem_sold_kwh: np.ndarray
    prosumer_grid_export_kwh: np.ndarray
    prosumer_bill_eur: np.ndarray

    @property
    def not_cleared_hours(self) -> int:
        return int(self.not_cleared.sum())


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


@dataclass(frozen=True)
class _Book:
    demand_kwh: np.ndarray  # (T,)
    deficit_kwh: np.ndarray  # (n_p, T)
    surplus_kwh: np.ndarray  # (n_p, T)
    pv_offer_kwh: np.ndarray  # (T,)
    retail: np.ndarray  # (T,)
    tol: np.ndarray  # (T,)


def _book(day: LemDay) -> _Book:
    net = day.prosumer_load_kwh - day.prosumer_pv_kwh
    deficit = np.maximum(net, 0.0)
    surplus = np.maximum(-net, 0.0)
    demand = day.consumer_load_kwh.sum(axis=0) + deficit.sum(axis=0)
    pv = surplus.sum(axis=0)
    total = demand + pv + day.chp_capacity_kw.sum()
    return _Book(demand, deficit, surplus, pv, day.retail_eur_per_kwh, _REL_TOL * np.maximum(1.0, total))


def _clear_batch(day: LemDay, book: _Book, bids: np.ndarray):
    """Clear every hour for a batch of bid arrays (n_ants, n_chp, T), merit-order conventions.

    The offers of an hour are the prosumers' surplus (one tie group at feed-in) and the CHP
    blocks; the bids are one step at retail. Returns price (A, T) (NaN: no trade), volume (A, T),
    the accepted fraction of every offer (A, T, 1 + n_chp) and whether the bids were fully served.
    """
    n_ants = bids.shape[0]
    T = day.n_hours
    price = np.concatenate(
        [np.full((n_ants, T, 1), FEED_IN_EUR_PER_KWH), np.swapaxes(bids, 1, 2)], axis=2
    )  # (A, T, n)
    qty = np.concatenate([book.pv_offer_kwh[:, None], np.broadcast_to(day.chp_capacity_kw, (T, day.n_chp))], axis=1)
    live = qty > 0  # (T, n)
    retail = book.retail[None, :, None]
    tol = book.tol[None, :, None]
    eligible = live & (price <= retail)
    volume = np.minimum(book.demand_kwh, (qty * eligible).sum(axis=2))  # (A, T)
    volume = np.where(book.demand_kwh > 0, volume, 0.0)

    # For offer i: quantity strictly cheaper (better) and the tie group at its price.
    better = (price[..., None, :] < price[..., :, None]) @ qty[:, :, None]  # (A, T, n, 1)
    tie = (price[..., None, :] == price[..., :, None]) @ qty[:, :, None]
    better, tie = better[..., 0], tie[..., 0]
    share = volume[..., None] - better
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(share >= tie - tol, 1.0, np.where(share <= tol, 0.0, share / tie))
    frac = np.where(live, frac, 0.0)

    traded = volume > 0
    last_accepted = np.where(live & (frac > 0), price, -np.inf).max(axis=2)
    first_not_full = np.where(live & (frac < 1), price, np.inf).min(axis=2)
    bid_full = volume >= book.demand_kwh - book.tol
    lo = np.maximum(last_accepted, np.where(bid_full, -np.inf, book.retail))
    hi = np.minimum(book.retail, first_not_full)
    clearing = np.where(traded, 0.5 * (lo + hi), np.nan)
    frac = np.where(traded[..., None], frac, 0.0)
    return clearing, np.where(traded, volume, 0.0), frac, bid_full


def _chp_profit(day: LemDay, clearing, frac):
    sold = frac[..., 1:] * day.chp_capacity_kw  # (A, T, n_chp)
    money_price = np.nan_to_num(clearing, nan=0.0)
    income = (money_price[..., None] * sold).sum(axis=1)  # (A, n_chp)
    cost = chp_production_cost_eur(sold, day.b_eur_per_kwh).sum(axis=1)
    return sold, income, cost


def day_profit(day: LemDay, bids_eur_per_kwh) -> DayResult:
    """Clear every hour of the day with the CHPs' bids and settle every participant.

    Parameters
    ----------
    day : LemDay
    bids_eur_per_kwh : array_like, shape (n_chp, n_hours) or (n_chp,)
        Offer price of every CHP in every hour (a 1-d array: the same price all day).

    Returns
    -------
    DayResult
        LEM trades settle at the clearing price; unmet demand is bought from the grid at retail
        and unsold prosumer surplus injected at the feed-in tariff.
    """
    bids = _bids(day, bids_eur_per_kwh)
    if bids.shape[0] != 1:
        raise ValueError("day_profit takes one set of bids; use BiddingProblem.evaluate for a batch")
    book = _book(day)
    clearing, volume, frac, bid_full = _clear_batch(day, book, bids)
    sold, income, cost = _chp_profit(day, clearing, frac)
    clearing, volume, frac, bid_full = clearing[0], volume[0], frac[0], bid_full[0]
    p = np.nan_to_num(clearing, nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        served = np.where(bid_full, 1.0, np.where(book.demand_kwh > 0, volume / book.demand_kwh, 0.0))
    retail = book.retail

    cons_lem = day.consumer_load_kwh * served
    cons_grid = day.consumer_load_kwh - cons_lem
    pros_bought = book.deficit_kwh * served
    pros_import = book.deficit_kwh - pros_bought
    pros_sold = book.surplus_kwh * frac[:, 0]
    pros_export = book.surplus_kwh - pros_sold
    return DayResult(
        bids_eur_per_kwh=np.array(bids[0]),
        price_eur_per_kwh=clearing,
        volume_kwh=volume,
        not_cleared=(book.demand_kwh > 0) & ~(volume > 0),
        chp_sold_kwh=sold[0].T.copy(),
        chp_income_eur=income[0],
        chp_cost_eur=cost[0],
        chp_profit_eur=income[0] - cost[0],
        consumer_lem_kwh=cons_lem,
        consumer_grid_kwh=cons_grid,
        consumer_bill_eur=(p * cons_lem + retail * cons_grid).sum(axis=1),
        prosumer_lem_bought_kwh=pros_bought,
        prosumer_grid_import_kwh=pros_import,
        prosumer_lem_sold_kwh=pros_sold,
        prosumer_grid_export_kwh=pros_export,
        prosumer_bill_eur=(p * pros_bought + retail * pros_import - p * pros_sold - FEED_IN_EUR_PER_KWH * pros_export).sum(
            axis=1
        ),
    )


# --- fitness -----------------------------------------------------------------------------------

@runtime_checkable
class BatchDnPenalty(Protocol):
    """A DN penalty that depends on the CHPs' production only and evaluates a batch of it at once."""

    def penalty_batch(self, chp_sold_kwh: np.ndarray) -> np.ndarray:
        """Penalty of every CHP schedule: ``chp_sold_kwh`` (n, n_chp, n_hours) -> (n,)."""
        ...  # pragma: no cover


DnPenalty = Callable[[DayResult], float] | BatchDnPenalty
"""A callable on the :class:`DayResult`, or an object with ``penalty_batch`` (:class:`BatchDnPenalty`),
which is then used for single results too (its ``chp_sold_kwh``)."""


def _dn_value(dn_penalty: DnPenalty | None, result: DayResult) -> float:
    if dn_penalty is None:
        return 0.0
    batch = getattr(dn_penalty, "penalty_batch", None)
    if batch is not None:
        return float(np.asarray(batch(np.asarray(result.chp_sold_kwh, dtype=float)[None]), dtype=float)[0])
    return float(dn_penalty(result))


def fitness_components(result: DayResult, dn_penalty: DnPenalty | None = None) -> dict[str, float]:
    """The terms of the fitness: ``mean_profit_eur``, ``std_profit_eur`` (across CHPs, ddof=0),
    ``not_cleared_penalty`` (1e4 per hour), ``dn_penalty`` and their combination ``fitness``.

    ``dn_penalty`` is called on ``result``, or, if it has ``penalty_batch``, that is called on
    ``result.chp_sold_kwh[None]``."""
    profit = np.asarray(result.chp_profit_eur, dtype=float)
    mean = float(profit.mean()) if profit.size else 0.0
    std = float(profit.std()) if profit.size else 0.0
    nc = NOT_CLEARED_PENALTY * result.not_cleared_hours
    dn = _dn_value(dn_penalty, result)
    return {
        "mean_profit_eur": mean,
        "std_profit_eur": std,
        "not_cleared_penalty": nc,
        "dn_penalty": dn,
        "fitness": -mean + std + nc + dn,
    }


def fitness(result: DayResult, dn_penalty: DnPenalty | None = None) -> float:
    """-mean(profit) + std(profit) + 1e4 x (hours not cleared) + dn_penalty(result); minimised."""
    return fitness_components(result, dn_penalty)["fitness"]


@dataclass(frozen=True, eq=False)
class BiddingProblem:
    """The CHPs' joint bidding problem over a day, as a bounded minimisation for ACO_R.

    The decision vector is the bids (n_chp, n_hours) flattened row by row (CHP-major).
    """

    day: LemDay
    dn_penalty: DnPenalty | None = None
    _book: _Book = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_book", _book(self.day))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.day.n_chp, self.day.n_hours)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = self.day.bid_bounds()
        return lower.ravel(), upper.ravel()

    def truthful(self) -> np.ndarray:
        return self.day.truthful_bids().ravel()

    def bids(self, x) -> np.ndarray:
        """A decision vector as bids (n_chp, n_hours)."""
        return np.asarray(x, dtype=float).reshape(self.shape)

    def evaluate(self, x) -> np.ndarray:
        """Fitness of a batch of decision vectors (n, n_chp * n_hours) -> (n,).

        Without a DN penalty, or with one that has ``penalty_batch`` (:class:`BatchDnPenalty`), the whole
        batch is cleared at once in NumPy and the penalty gets the sold kWh of all candidates,
        (n, n_chp, n_hours). A plain callable DN penalty is called on each candidate's
        :class:`DayResult` (slow path).
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        bids = x.reshape(x.shape[0], *self.shape)
        batch = getattr(self.dn_penalty, "penalty_batch", None)
        if self.dn_penalty is not None and batch is None:
            return np.array([fitness(day_profit(self.day, b), self.dn_penalty) for b in bids])
        clearing, volume, frac, _ = _clear_batch(self.day, self._book, bids)
        sold, income, cost = _chp_profit(self.day, clearing, frac)
        profit = income - cost
        not_cleared = ((self._book.demand_kwh > 0) & ~(volume > 0)).sum(axis=1)
        f = -profit.mean(axis=1) + profit.std(axis=1) + NOT_CLEARED_PENALTY * not_cleared
        if batch is None:
            return f
        dn = np.asarray(batch(np.ascontiguousarray(np.swapaxes(sold, 1, 2))), dtype=float)
        if dn.shape != f.shape:
            raise ValueError(f"penalty_batch returned shape {dn.shape}, expected {f.shape}")
        return f + dn


# --- ACO_R -------------------------------------------------------------------------------------


def acor_minimize(
    objective: Callable[[np.ndarray], np.ndarray],
    lower,
    upper,
    *,
    iterations: int = 500,
    ants: int = 20,
    archive_size: int = 50,
    q: float = 0.1,
    xi: float = 0.85,
    rng: np.random.Generator | int | None = None,
    initial=None,
):
    """Minimise ``objective`` over a box with ACO_R (Socha and Dorigo 2008).

    Parameters
    ----------
    objective : callable
        Maps a batch (n, dim) to fitness values (n,); called once per iteration with all ants.
    lower, upper : array_like, shape (dim,)
        Bounds; samples outside are clipped onto them.
    iterations, ants : int
        Number of iterations, and solutions sampled per iteration.
    archive_size : int
        k, the number of solutions kept.
    q : float
        Locality of the search: small q favours the best archive solutions as kernel means.
    xi : float
        Convergence speed (> 0): scale of the kernels' standard deviations.
    rng : numpy.random.Generator or int, optional
    initial : array_like, shape (m, dim), optional
        Solutions put into the initial archive (clipped to the bounds) in place of random ones.

    Returns
    -------
    best_x : numpy.ndarray, shape (dim,)
    best_f : float
    history : numpy.ndarray, shape (iterations,)
        Best-so-far fitness after every iteration (non-increasing).
    """
    rng = np.random.default_rng(rng)
    lower = np.asarray(lower, dtype=float).ravel()
    upper = np.asarray(upper, dtype=float).ravel()
    if lower.shape != upper.shape or np.any(upper < lower):
        raise ValueError("bounds must have the same shape and lower <= upper")
    if archive_size < 2 or ants < 1 or iterations < 0 or q <= 0 or xi <= 0:
        raise ValueError("need archive_size >= 2, ants >= 1, iterations >= 0, q > 0 and xi > 0")
    k, dim = archive_size, lower.size
    archive = lower + (upper - lower) * rng.random((k, dim))
    if initial is not None:
        init = np.atleast_2d(np.asarray(initial, dtype=float))[:k]
        archive[: len(init)] = np.clip(init, lower, upper)
    values = np.asarray(objective(archive), dtype=float)
    order = np.argsort(values, kind="stable")
    archive, values = archive[order], values[order]

    rank = np.arange(k)
    weights = np.exp(-(rank**2) / (2.0 * q**2 * k**2)) / (q * k * math.sqrt(2.0 * math.pi))
    p = weights / weights.sum()
    history = np.empty(iterations)
    for it in range(iterations):
        guide = rng.choice(k, size=ants, p=p)
        mean = archive[guide]  # (ants, dim)
        sigma = xi * np.abs(archive[None, :, :] - mean[:, None, :]).sum(axis=1) / (k - 1)
        x = np.clip(mean + sigma * rng.standard_normal((ants, dim)), lower, upper)
        f = np.asarray(objective(x), dtype=float)
        pool = np.concatenate([archive, x])
        pool_f = np.concatenate([values, f])
        keep = np.argsort(pool_f, kind="stable")[:k]
        archive, values = pool[keep], pool_f[keep]
        history[it] = values[0]
    return archive[0].copy(), float(values[0]), history


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """Outcome of :func:`train_aco`.

    Attributes
    ----------
    best_bids_eur_per_kwh : numpy.ndarray, shape (n_chp, n_hours)
        Bids of the best run.
    best_fitness : float
    history : numpy.ndarray, shape (runs, iterations)
        Best-so-far fitness of every run after every iteration.
    run_fitness : numpy.ndarray, shape (runs,)
    best_run : int
    truthful_fitness : float
        Fitness of the ``truthful`` strategy, for comparison.
    """

    best_bids_eur_per_kwh: np.ndarray
    best_fitness: float
    history: np.ndarray
    run_fitness: np.ndarray
    best_run: int
    truthful_fitness: float


def train_aco(
    problem: BiddingProblem | LemDay,
    *,
    iterations: int = 500,
    ants: int = 20,
    runs: int = 10,
    seed: int = 0,
    archive_size: int = 50,
    q: float = 0.1,
    xi: float = 0.85,
    include_truthful: bool = True,
) -> TrainingResult:
    """Learn the CHPs' bids with ACO_R: ``runs`` independent runs, the best kept.

    Run r uses the generator ``numpy.random.SeedSequence(seed).spawn(runs)[r]`` so the same seed
    gives identical histories. With ``include_truthful`` the truthful bids are in every initial
    archive (the result is then never worse than truthful bidding).
    """
    if isinstance(problem, LemDay):
        problem = BiddingProblem(problem)
    if runs < 1:
        raise ValueError("runs must be >= 1")
    lower, upper = problem.bounds
    truthful = problem.truthful()
    truthful_f = float(problem.evaluate(truthful[None])[0])
    history = np.empty((runs, iterations))
    run_f = np.empty(runs)
    best_x, best_f, best_run = None, math.inf, -1
    for r, child in enumerate(np.random.SeedSequence(seed).spawn(runs)):
        x, f, hist = acor_minimize(
            problem.evaluate,
            lower,
            upper,
            iterations=iterations,
            ants=ants,
            archive_size=archive_size,
            q=q,
            xi=xi,
            rng=np.random.default_rng(child),
            initial=truthful[None] if include_truthful else None,
        )
        history[r], run_f[r] = hist, f
        if f < best_f:
            best_x, best_f, best_run = x, f, r
    return TrainingResult(
        best_bids_eur_per_kwh=problem.bids(best_x),
        best_fitness=best_f,
        history=history,
        run_fitness=run_f,
        best_run=best_run,
        truthful_fitness=truthful_f,
    )
