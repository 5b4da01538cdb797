"""Clearing a whole LEM day for given CHP bids, vectorised over a batch of bids, and settling everyone.

Evaluating a bid means clearing 24 hours; the learner evaluates ~10^5 bids, so this clears all 24
hours of all ants of an iteration at once in NumPy (:func:`_clear_batch`), with exactly the
conventions of the merit-order path of :func:`lec_cosim.models.auction.clear_double_auction`
(largest volume, midpoint price, pro-rata ties) specialised to this book: every bid is at the
hour's retail tariff, so the demand curve has one step. :func:`day_profit` settles one set of bids
(:class:`DayResult`: prices, volumes, CHP profits, consumers' and prosumers' bills). Separate from
the general auction because it is that auction specialised for speed; the tests check the two
agree on :func:`lec_cosim.models.lem_day.day_orders`.

The market period is one hour, so kW and kWh per period are the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lec_cosim.models.chp_cost import chp_production_cost_eur
from lec_cosim.models.lem_day import LemDay, _bids
from lec_cosim.models.tariffs import FEED_IN_EUR_PER_KWH

_REL_TOL = 1e-9  # as in lec_cosim.models.auction


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
