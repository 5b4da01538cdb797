"""Unit tests of LEM bidding (lec_cosim.models.bidding): tariffs, CHP cost, order builders, the
day's clearing and settlement, the fitness, and ACO_R training.

Prices in EUR/kWh, energy in kWh, one-hour market periods. The CHP's marginal cost at output G kW
is 2*b*sqrt(G/1000) and its production cost of G kWh in an hour (4/3)*b*G*sqrt(G/1000).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lec_cosim.models.auction import Order, clear_double_auction, settle
from lec_cosim.models.bidding import (
    FEED_IN,
    FEED_IN_EUR_PER_KWH,
    NOT_CLEARED_PENALTY,
    BatchDnPenalty,
    BiddingProblem,
    LemDay,
    acor_minimize,
    chp_bid_floor_eur_per_kwh,
    chp_marginal_cost_eur_per_kwh,
    chp_orders,
    chp_production_cost_eur,
    consumer_orders,
    day_orders,
    day_profit,
    fitness,
    fitness_components,
    prosumer_orders,
    retail_tariff_eur_per_kwh,
    synthetic_day,
    train_aco,
)

B = 0.20


def cost(g):
    """Hand formula of the hourly production cost, EUR."""
    return 4.0 / 3.0 * B * g * math.sqrt(g / 1000.0)


# --- tariffs -----------------------------------------------------------------------------------


def test_feed_in_and_plain_tariff():
    assert FEED_IN == FEED_IN_EUR_PER_KWH == 0.045
    assert all(retail_tariff_eur_per_kwh(h) == 0.158 for h in range(24))
    assert isinstance(retail_tariff_eur_per_kwh(5, "plain"), float)


@pytest.mark.parametrize(
    "hour, tariff",
    [(0, 0.1023), (8, 0.1023), (9, 0.1924), (15, 0.1924), (21, 0.1924), (22, 0.1023), (23, 0.1023), (33, 0.1924)],
)
def test_bihourly_boundaries(hour, tariff):
    assert retail_tariff_eur_per_kwh(hour, "bihourly") == tariff


def test_bihourly_array_and_bad_scheme():
    t = retail_tariff_eur_per_kwh(np.arange(24), "bihourly")
    assert t.shape == (24,)
    assert np.count_nonzero(t == 0.1924) == 13 and np.count_nonzero(t == 0.1023) == 11
    with pytest.raises(ValueError, match="scheme"):
        retail_tariff_eur_per_kwh(3, "flat")


# --- CHP cost ----------------------------------------------------------------------------------


def test_chp_cost_by_hand():
    # 2 * 0.2 * sqrt(10 / 1000) = 0.4 * 0.1 = 0.04 EUR/kWh
    assert chp_marginal_cost_eur_per_kwh(10.0) == pytest.approx(0.04, abs=1e-15)
    # the floor is the opportunity cost: the feed-in tariff 0.045 is above the marginal cost 0.04
    assert chp_bid_floor_eur_per_kwh(10.0) == pytest.approx(0.045, abs=1e-15)
    assert chp_bid_floor_eur_per_kwh(10.0, feed_in_eur_per_kwh=0.0) == pytest.approx(0.04, abs=1e-15)
    assert chp_bid_floor_eur_per_kwh(40.0) == pytest.approx(0.08, abs=1e-15)  # 0.4 * 0.2 above feed-in
    assert chp_marginal_cost_eur_per_kwh(2.5) == pytest.approx(0.02, abs=1e-15)  # 0.4 * 0.05
    # (4/3) * 0.2 * 10 * 0.1 = 0.26667 EUR, an average cost of 0.026667 EUR/kWh below the floor
    assert chp_production_cost_eur(10.0) == pytest.approx(0.8 / 3.0, abs=1e-15)
    assert chp_production_cost_eur(0.0) == 0.0
    np.testing.assert_allclose(chp_production_cost_eur(np.array([0.0, 2.5, 10.0])), [0.0, cost(2.5), cost(10.0)])
    with pytest.raises(ValueError):
        chp_production_cost_eur(-1.0)


def test_production_cost_is_integral_of_marginal_cost():
    h = 1e-5
    for g in (1.0, 4.0, 10.0):
        slope = (chp_production_cost_eur(g + h) - chp_production_cost_eur(g - h)) / (2 * h)
        assert slope == pytest.approx(chp_marginal_cost_eur_per_kwh(g), rel=1e-8)


# --- order builders ----------------------------------------------------------------------------


def test_consumer_orders():
    assert consumer_orders("c", 1.5, 10, "bihourly") == [Order("c", "buy", 0.1924, 1.5)]
    assert consumer_orders("c", 1.5, 3) == [Order("c", "buy", 0.158, 1.5)]
    assert consumer_orders("c", 0.0, 3) == []
    with pytest.raises(ValueError):
        consumer_orders("c", -1.0, 3)


def test_prosumer_orders():
    assert prosumer_orders("p", 2.0, 0.5, 22, "bihourly") == [Order("p", "buy", 0.1023, 1.5)]
    assert prosumer_orders("p", 0.5, 2.0, 12, "bihourly") == [Order("p", "sell", 0.045, 1.5)]
    assert prosumer_orders("p", 1.0, 1.0, 12) == []
    with pytest.raises(ValueError):
        prosumer_orders("p", 1.0, float("nan"), 12)


def test_chp_orders_and_floor():
    assert chp_orders("g", 10.0, 0.12) == [Order("g", "sell", 0.12, 10.0)]
    assert chp_orders("g", 10.0, 0.045) == [Order("g", "sell", 0.045, 10.0)]
    with pytest.raises(ValueError, match="opportunity cost"):
        chp_orders("g", 10.0, 0.044)


# --- a hand-solvable day -----------------------------------------------------------------------


def tiny_day(**kw):
    # hour 0: consumer 4, prosumer 2 deficit -> demand 6; no PV offer
    # hour 1: consumer 3, prosumer surplus 4 offered at feed-in
    # hour 2: consumer 15 -> more demand than the CHP's 10 kW
    return LemDay(
        consumer_load_kwh=[[4.0, 3.0, 15.0]],
        prosumer_load_kwh=[[2.0, 1.0, 0.0]],
        prosumer_pv_kwh=[[0.0, 5.0, 0.0]],
        chp_capacity_kw=[10.0],
        **kw,
    )


def test_day_profit_by_hand():
    day = tiny_day()
    r = day_profit(day, [[0.10, 0.12, 0.12]])
    # h0: the CHP's block is marginal (6 of 10 kWh): price interval [0.10, min(0.158, 0.10)]
    # h1: the PV group is marginal (3 of 4 kWh) below the CHP: price 0.045, the CHP sells nothing
    # h2: all 10 kWh sold, demand 15 not fully served: interval [max(0.12, 0.158), 0.158]
    np.testing.assert_allclose(r.price_eur_per_kwh, [0.10, 0.045, 0.158], atol=1e-15)
    np.testing.assert_allclose(r.volume_kwh, [6.0, 3.0, 10.0])
    np.testing.assert_allclose(r.chp_sold_kwh, [[6.0, 0.0, 10.0]])
    income = 0.10 * 6 + 0.158 * 10
    assert r.chp_income_eur[0] == pytest.approx(income, abs=1e-12)
    assert r.chp_cost_eur[0] == pytest.approx(cost(6.0) + cost(10.0), abs=1e-12)
    assert r.chp_profit_eur[0] == pytest.approx(income - cost(6.0) - cost(10.0), abs=1e-12)
    # consumer: h0 4 at 0.10, h1 3 at 0.045, h2 10/15 of its 15 from the LEM, 5 from the grid
    np.testing.assert_allclose(r.consumer_lem_kwh, [[4.0, 3.0, 10.0]])
    np.testing.assert_allclose(r.consumer_grid_kwh, [[0.0, 0.0, 5.0]], atol=1e-12)
    assert r.consumer_bill_eur[0] == pytest.approx(0.4 + 0.135 + 1.58 + 5 * 0.158, abs=1e-12)
    # prosumer: buys 2 at 0.10, sells 3 of its 4 kWh at 0.045, injects 1 at feed-in
    np.testing.assert_allclose(r.prosumer_lem_sold_kwh, [[0.0, 3.0, 0.0]])
    np.testing.assert_allclose(r.prosumer_grid_export_kwh, [[0.0, 1.0, 0.0]])
    assert r.prosumer_bill_eur[0] == pytest.approx(0.2 - 0.135 - 0.045, abs=1e-12)
    assert r.not_cleared_hours == 0
    # The pool is budget balanced hour by hour.
    lem_paid = (np.nan_to_num(r.price_eur_per_kwh) * (r.consumer_lem_kwh.sum(0) + r.prosumer_lem_bought_kwh.sum(0))).sum()
    lem_got = (np.nan_to_num(r.price_eur_per_kwh) * (r.prosumer_lem_sold_kwh.sum(0) + r.chp_sold_kwh.sum(0))).sum()
    assert lem_paid == pytest.approx(lem_got, abs=1e-12)


def test_day_profit_bihourly_and_truthful():
    day = tiny_day(scheme="bihourly", start_hour=21)  # hours 21 (peak), 22, 23 (off-peak)
    np.testing.assert_allclose(day.retail_eur_per_kwh, [0.1924, 0.1023, 0.1023])
    truthful = day.truthful_bids()
    np.testing.assert_allclose(truthful, [[0.045, 0.045, 0.045]])  # opportunity cost = feed-in
    r = day_profit(day, truthful)
    # h1: the CHP and the PV surplus both offer at 0.045 and tie: the demand of 3 kWh is shared pro
    # rata, 3 * 10/14 to the CHP and 3 * 4/14 to the prosumer, at price 0.045. h2: demand exceeds
    # the CHP: price is the off-peak retail tariff.
    np.testing.assert_allclose(r.price_eur_per_kwh, [0.045, 0.045, 0.1023], atol=1e-15)
    np.testing.assert_allclose(r.chp_sold_kwh, [[6.0, 30.0 / 14.0, 10.0]])
    np.testing.assert_allclose(r.prosumer_grid_export_kwh, [[0.0, 4.0 - 12.0 / 14.0, 0.0]])
    assert np.all(r.chp_profit_eur >= 0)


def test_day_profit_matches_general_clearing():
    day = synthetic_day(3, n_consumers=4, n_prosumers=8, n_chp=3, scheme="bihourly")
    lower, upper = day.bid_bounds()
    rng = np.random.default_rng(1)
    for trial in range(6):
        bids = lower + (upper - lower) * rng.random(lower.shape)
        if trial % 2:  # ties: bids at the bounds or at the feed-in tariff
            bids = np.choose(rng.integers(0, 3, lower.shape), [lower, upper, np.full(lower.shape, FEED_IN)])
        r = day_profit(day, bids)
        for t in range(day.n_hours):
            orders = day_orders(day, bids, t)
            ref = clear_double_auction(orders, solver="merit_order")
            table = settle(ref, orders)
            assert ref.price_eur_per_kwh == pytest.approx(r.price_eur_per_kwh[t], abs=1e-12)
            for i, name in enumerate(day.chp_names):
                assert table.loc[name, "sold_kwh"] == pytest.approx(r.chp_sold_kwh[i, t], abs=1e-9)
            for i, name in enumerate(day.consumer_names):
                assert table.loc[name, "bought_kwh"] == pytest.approx(r.consumer_lem_kwh[i, t], abs=1e-9)
            for i, name in enumerate(day.prosumer_names):
                if name in table.index:
                    assert table.loc[name, "sold_kwh"] == pytest.approx(r.prosumer_lem_sold_kwh[i, t], abs=1e-9)
                    assert table.loc[name, "bought_kwh"] == pytest.approx(r.prosumer_lem_bought_kwh[i, t], abs=1e-9)


# --- fitness -----------------------------------------------------------------------------------


def two_chp_day():
    return LemDay(
        consumer_load_kwh=[[12.0, 5.0]],
        prosumer_load_kwh=np.zeros((0, 2)),
        prosumer_pv_kwh=np.zeros((0, 2)),
        chp_capacity_kw=[10.0, 10.0],
    )


def test_fitness_components():
    day = two_chp_day()
    # h0: CHP1 at 0.05 sells 10, CHP2 at 0.09 is marginal with 2 -> price 0.09
    # h1: both offer above retail (0.2 > 0.158): demand 5 but no trade -> not cleared
    bids = [[0.05, 0.2], [0.09, 0.2]]
    r = day_profit(day, bids)
    assert np.isnan(r.price_eur_per_kwh[1]) and r.not_cleared.tolist() == [False, True]
    profit = np.array([0.9 - cost(10.0), 0.18 - cost(2.0)])
    np.testing.assert_allclose(r.chp_profit_eur, profit, atol=1e-12)
    c = fitness_components(r, dn_penalty=lambda res: 2.5 * res.not_cleared_hours)
    assert c["mean_profit_eur"] == pytest.approx(profit.mean(), abs=1e-12)
    assert c["std_profit_eur"] == pytest.approx(abs(profit[0] - profit[1]) / 2, abs=1e-12)
    assert c["not_cleared_penalty"] == NOT_CLEARED_PENALTY == 1e4
    assert c["dn_penalty"] == 2.5
    expected = -profit.mean() + abs(profit[0] - profit[1]) / 2 + 1e4 + 2.5
    assert c["fitness"] == pytest.approx(expected, abs=1e-9)
    assert fitness(r) == pytest.approx(expected - 2.5, abs=1e-9)
    # The consumer buys the unserved demand from the grid at retail.
    np.testing.assert_allclose(r.consumer_grid_kwh, [[0.0, 5.0]])


def test_batched_evaluation_equals_fitness():
    day = synthetic_day(5, n_consumers=5, n_prosumers=10, n_chp=3)
    lower, upper = BiddingProblem(day).bounds
    x = lower + (upper - lower) * np.random.default_rng(2).random((7, lower.size))
    for dn in (None, lambda res: float(res.volume_kwh.sum()) * 1e-3):
        problem = BiddingProblem(day, dn_penalty=dn)
        expected = [fitness(day_profit(day, problem.bids(xi)), dn) for xi in x]
        np.testing.assert_allclose(problem.evaluate(x), expected, rtol=1e-12, atol=1e-12)


class QuadraticSalesPenalty:
    """A batch DN penalty on the CHPs' sold kWh only: sum of w[k, h] * sold^2 + c * sold (records shapes)."""

    def __init__(self, n_chp, n_hours, seed=0):
        rng = np.random.default_rng(seed)
        self.w = rng.uniform(0.0, 1e-3, (n_chp, n_hours))
        self.c = rng.uniform(0.0, 1e-2, (n_chp, 1))
        self.shapes = []

    def penalty_batch(self, chp_sold_kwh):
        self.shapes.append(np.shape(chp_sold_kwh))
        sold = np.asarray(chp_sold_kwh)
        return (self.w * sold**2 + self.c * sold).sum(axis=(1, 2))


def test_batched_dn_penalty_equals_per_ant_path():
    day = synthetic_day(5, n_consumers=5, n_prosumers=10, n_chp=3)
    pen = QuadraticSalesPenalty(3, day.n_hours)
    assert isinstance(pen, BatchDnPenalty)
    problem = BiddingProblem(day, dn_penalty=pen)
    lower, upper = problem.bounds
    x = lower + (upper - lower) * np.random.default_rng(4).random((9, lower.size))
    x[0] = problem.truthful()
    batched = problem.evaluate(x)
    assert pen.shapes == [(9, 3, day.n_hours)]  # one call for the whole batch: (ants, n_chp, n_hours)
    # the slow path: a plain callable on each DayResult
    plain = BiddingProblem(day, dn_penalty=lambda res: float(pen.penalty_batch(res.chp_sold_kwh[None])[0]))
    np.testing.assert_allclose(batched, plain.evaluate(x), rtol=1e-12, atol=1e-12)
    expected = [fitness(day_profit(day, problem.bids(xi)), pen) for xi in x]
    np.testing.assert_allclose(batched, expected, rtol=1e-12, atol=1e-12)
    # the penalty is added to the fitness without DN impact
    sold = np.stack([day_profit(day, problem.bids(xi)).chp_sold_kwh for xi in x])
    np.testing.assert_allclose(batched - BiddingProblem(day).evaluate(x), pen.penalty_batch(sold), atol=1e-12)
    assert np.any(pen.penalty_batch(sold) > 0)


def test_fitness_components_use_penalty_batch():
    day = two_chp_day()
    r = day_profit(day, [[0.05, 0.2], [0.09, 0.2]])  # sold: CHP1 10 and 0 kWh, CHP2 2 and 0 kWh
    pen = QuadraticSalesPenalty(2, 2)
    c = fitness_components(r, pen)
    assert pen.shapes == [(1, 2, 2)]
    expected = pen.w[0, 0] * 100 + pen.c[0, 0] * 10 + pen.w[1, 0] * 4 + pen.c[1, 0] * 2
    assert c["dn_penalty"] == pytest.approx(expected, rel=1e-12)
    assert c["fitness"] == pytest.approx(fitness(r) + expected, rel=1e-12)


def test_batched_dn_penalty_steers_training():
    day = small_day()
    # selling from CHP 1 costs 1 per kWh: far more than it earns (<= 0.19 EUR/kWh)
    class TaxChp1:
        def penalty_batch(self, sold):
            return np.asarray(sold)[:, 0, :].sum(axis=1) * 1.0

    free = train_aco(day, iterations=30, ants=10, runs=1, seed=0, archive_size=20)
    taxed = train_aco(BiddingProblem(day, dn_penalty=TaxChp1()), iterations=30, ants=10, runs=1, seed=0,
                      archive_size=20)
    sold_free = day_profit(day, free.best_bids_eur_per_kwh).chp_sold_kwh[0].sum()
    sold_taxed = day_profit(day, taxed.best_bids_eur_per_kwh).chp_sold_kwh[0].sum()
    assert sold_taxed < 0.5 * sold_free
    assert taxed.best_fitness <= taxed.truthful_fitness


# --- ACO_R -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [5, 24])
def test_acor_minimises_shifted_quadratic(dim):
    shift = np.random.default_rng(dim).uniform(-2, 2, dim)
    seen = []

    def objective(x):
        seen.append(x.copy())
        return ((x - shift) ** 2).sum(axis=1)

    x, f, history = acor_minimize(objective, np.full(dim, -5.0), np.full(dim, 5.0), iterations=400, ants=20, rng=0)
    assert f < 1e-4 and np.abs(x - shift).max() < 1e-2
    assert history.shape == (400,) and np.all(np.diff(history) <= 0) and history[-1] == f
    assert all(np.all((s >= -5) & (s <= 5)) for s in seen)


def test_acor_respects_bounds_with_optimum_outside():
    seen = []

    def objective(x):
        seen.append(x.copy())
        return ((x - 10.0) ** 2).sum(axis=1)

    x, _, _ = acor_minimize(objective, np.zeros(3), np.array([1.0, 2.0, 3.0]), iterations=100, ants=10, rng=1)
    np.testing.assert_allclose(x, [1.0, 2.0, 3.0])
    assert all(np.all((s >= 0) & (s <= [1.0, 2.0, 3.0])) for s in seen)


def small_day():
    return synthetic_day(7, n_consumers=4, n_prosumers=10, n_chp=3, scheme="bihourly")


def test_training_is_reproducible():
    a = train_aco(small_day(), iterations=15, ants=8, runs=2, seed=42)
    b = train_aco(small_day(), iterations=15, ants=8, runs=2, seed=42)
    c = train_aco(small_day(), iterations=15, ants=8, runs=2, seed=43)
    np.testing.assert_array_equal(a.history, b.history)
    np.testing.assert_array_equal(a.best_bids_eur_per_kwh, b.best_bids_eur_per_kwh)
    assert not np.array_equal(a.history, c.history)


def test_training_improves_on_truthful_within_bounds():
    day = small_day()
    result = train_aco(day, iterations=40, ants=10, runs=2, seed=0, archive_size=20)
    assert result.history.shape == (2, 40)
    assert np.all(np.diff(result.history, axis=1) <= 0)  # best-so-far never worsens
    assert result.best_fitness == result.history[result.best_run, -1] == result.run_fitness.min()
    assert result.best_fitness < result.truthful_fitness
    assert result.truthful_fitness == pytest.approx(fitness(day_profit(day, day.truthful_bids())), abs=1e-12)
    bids = result.best_bids_eur_per_kwh
    lower, upper = day.bid_bounds()
    assert bids.shape == (3, 24) and np.all(bids >= lower) and np.all(bids <= upper)
    assert fitness(day_profit(day, bids)) == pytest.approx(result.best_fitness, abs=1e-12)
    # Learnt bids are valid CHP orders (at or above cost).
    for t in (0, 12):
        day_orders(day, bids, t)


def test_lem_day_validation():
    with pytest.raises(ValueError, match="same shape"):
        LemDay([[1.0, 1.0]], [[1.0, 1.0]], [[1.0]], [10.0])
    with pytest.raises(ValueError):
        LemDay([[-1.0]], [[1.0]], [[1.0]], [10.0])
    with pytest.raises(ValueError, match="bids"):
        day_profit(tiny_day(), np.zeros((2, 3)))


@pytest.mark.parametrize("scheme, hour", [("plain", 4), ("bihourly", 10), ("bihourly", 23)])
def test_households_bid_at_once_as_each_would_alone(scheme, hour):
    """``household_orders`` (what the participants' federate bids with): for every household the orders of
    ``consumer_orders`` / ``prosumer_orders`` to the last digit: short, long and balanced prosumers, consumers with
    and without load."""

    from lec_cosim.models.lem_orders import household_orders

    rng = np.random.default_rng(7)
    n = 30
    kinds = rng.choice(["consumer", "prosumer"], n)
    load = rng.choice([0.0, 0.35, 1.1, 2.7], n)
    pv = rng.choice([0.0, 0.35, 1.1, 4.2], n)
    names = [f"LOAD{j}" for j in range(n)]
    many = household_orders(names, kinds, load, pv, hour, scheme)
    assert len(many) == n
    for j in range(n):
        alone = (consumer_orders(names[j], load[j], hour, scheme) if kinds[j] == "consumer"
                 else prosumer_orders(names[j], load[j], pv[j], hour, scheme))
        assert many[j] == alone, (j, kinds[j], load[j], pv[j])
        for a, b in zip(many[j], alone):
            assert (a.price_eur_per_kwh, a.quantity_kwh) == (b.price_eur_per_kwh, b.quantity_kwh)
    assert sum(len(o) for o in many) > n // 2  # the case is not empty
    with pytest.raises(ValueError, match="pv_kwh"):
        household_orders(["a"], ["prosumer"], [1.0], [-0.5], hour, scheme)
    with pytest.raises(ValueError, match="load_kwh"):
        household_orders(["a"], ["consumer"], [float("nan")], [0.0], hour, scheme)
    with pytest.raises(ValueError, match="household kind"):
        household_orders(["a"], ["chp"], [1.0], [0.0], hour, scheme)
    assert household_orders(["a"], ["consumer"], [1.0], [float("nan")], hour, scheme)[0][0].quantity_kwh == 1.0
    with pytest.raises(ValueError, match="pv_kwh must be a finite number >= 0, got -0.5$"):  # the first bad one
        household_orders(["a", "b"], ["prosumer", "consumer"], [1.0, float("nan")], [-0.5, 0.0], hour, scheme)
