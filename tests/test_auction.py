"""Unit tests of the LEM market clearing (lec_cosim.models.auction).

Prices in EUR/kWh, quantities in kWh. Every hand-solved book is worked out in the comments by
walking the demand curve (bids, highest price first) against the supply curve (offers, lowest
price first). The price rule is the midpoint of the interval of market-clearing prices
[max(last accepted offer, first bid not fully accepted), min(last accepted bid, first offer not
fully accepted)].
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.auction import BilateralAllocation, ClearingResult, Order, clear_double_auction, settle

LP_SOLVERS = ["glpk", "highs"]
ALL_SOLVERS = LP_SOLVERS + ["merit_order"]
TOL = 1e-6


def buy(name, price, kwh):
    return Order(name, "buy", price, kwh)


def sell(name, price, kwh):
    return Order(name, "sell", price, kwh)


def assert_consistent(result: ClearingResult, orders):
    """Invariants every clearing must satisfy, whatever the book."""
    side = np.array([o.side for o in orders])
    price = np.array([o.price_eur_per_kwh for o in orders], dtype=float)
    q = np.array([o.quantity_kwh for o in orders], dtype=float)
    x = np.asarray(result.accepted_kwh)
    assert x.shape == (len(orders),)
    assert np.all(x >= -TOL) and np.all(x <= q + TOL)
    bought, sold = x[side == "buy"].sum(), x[side == "sell"].sum()
    assert bought == pytest.approx(sold, abs=TOL)
    assert result.volume_kwh == pytest.approx(bought, abs=TOL)
    if result.price_eur_per_kwh is None:
        assert result.volume_kwh == 0 and result.price_interval_eur_per_kwh is None
        assert np.all(x == 0)
        assert result.welfare_eur == 0
        return
    lo, hi = result.price_interval_eur_per_kwh
    p = result.price_eur_per_kwh
    assert lo <= hi + TOL and p == pytest.approx((lo + hi) / 2, abs=1e-12)
    # Complementary slackness at the uniform price: in the money -> fully accepted, out of the
    # money -> rejected.
    is_buy, is_sell = side == "buy", side == "sell"
    np.testing.assert_allclose(x[is_buy & (price > p)], q[is_buy & (price > p)], atol=TOL)
    np.testing.assert_allclose(x[is_sell & (price < p)], q[is_sell & (price < p)], atol=TOL)
    assert np.all(x[is_buy & (price < p)] <= TOL) and np.all(x[is_sell & (price > p)] <= TOL)
    welfare = float(np.sum(np.where(is_buy, price, -price) * x))
    assert result.welfare_eur == pytest.approx(welfare, abs=TOL)
    assert result.welfare_eur >= -TOL


def accepted(result):
    return [round(float(v), 9) for v in result.accepted_kwh]


# --- hand-solved books -------------------------------------------------------------------------

SIMPLE = [buy("b1", 0.30, 10), sell("s1", 0.10, 6), sell("s2", 0.15, 10)]


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_simple_crossing_unique_price(solver):
    # Demand: 10 kWh at 0.30. Supply: 6 kWh at 0.10, then 10 kWh at 0.15. The bid is met by
    # s1's 6 kWh and 4 of s2's 10 kWh; s2 is the partially accepted (marginal) offer, so
    # lo = max(0.15 last accepted offer, no rejected bid) = 0.15 and
    # hi = min(0.30 last accepted bid, 0.15 first offer not fully accepted) = 0.15.
    result = clear_double_auction(SIMPLE, solver=solver)
    assert result.price_eur_per_kwh == pytest.approx(0.15)
    assert result.price_interval_eur_per_kwh == pytest.approx((0.15, 0.15))
    assert result.volume_kwh == pytest.approx(10)
    assert accepted(result) == [10, 6, 4]
    # Welfare 0.30*10 - 0.10*6 - 0.15*4 = 3.0 - 0.6 - 0.6 = 1.8 EUR.
    assert result.welfare_eur == pytest.approx(1.8)
    if solver in LP_SOLVERS:
        assert result.dual_eur_per_kwh == pytest.approx(0.15)  # unique dual, sign of a price
    assert_consistent(result, SIMPLE)


VERTICAL = [buy("b1", 0.30, 10), buy("b2", 0.15, 5), sell("s1", 0.10, 10), sell("s2", 0.25, 5)]


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_price_interval_midpoint_rule(solver):
    # b1 (10 @ 0.30) and s1 (10 @ 0.10) match exactly; next come b2 at 0.15 and s2 at 0.25,
    # which do not cross. The curves overlap on a vertical segment at 10 kWh: any price in
    # [max(0.10, 0.15), min(0.30, 0.25)] = [0.15, 0.25] clears the market. Midpoint: 0.20.
    result = clear_double_auction(VERTICAL, solver=solver)
    assert result.price_interval_eur_per_kwh == pytest.approx((0.15, 0.25))
    assert result.price_eur_per_kwh == pytest.approx(0.20)
    assert accepted(result) == [10, 0, 10, 0]
    assert result.welfare_eur == pytest.approx(0.30 * 10 - 0.10 * 10)
    if solver in LP_SOLVERS:
        # The solver's own dual is some point of the interval (GLPK and HiGHS pick different
        # ends here), which is why the price is computed from the primal solution.
        assert 0.15 - TOL <= result.dual_eur_per_kwh <= 0.25 + TOL
    assert_consistent(result, VERTICAL)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_horizontal_overlap_trades_largest_volume(solver):
    # Demand: 8 @ 0.30 then 6 @ 0.20. Supply: 5 @ 0.10 then 6 @ 0.20.
    # 0-5 kWh: 0.30 vs 0.10 trade; 5-8: 0.30 vs 0.20 trade; 8-11: 0.20 vs 0.20 - welfare-neutral,
    # traded under the largest-volume rule; 11-14: no supply left. Volume 11 kWh:
    # b1 8, b2 3, s1 5, s2 6. Interval [max(0.20, 0.20), min(0.20, -)] = [0.20, 0.20].
    # Welfare 0.3*8 + 0.2*3 - 0.1*5 - 0.2*6 = 1.3 EUR, the same as trading only 8 kWh.
    book = [buy("b1", 0.30, 8), buy("b2", 0.20, 6), sell("s1", 0.10, 5), sell("s2", 0.20, 6)]
    result = clear_double_auction(book, solver=solver)
    assert result.volume_kwh == pytest.approx(11)
    assert accepted(result) == [8, 3, 5, 6]
    assert result.price_eur_per_kwh == pytest.approx(0.20)
    assert result.welfare_eur == pytest.approx(1.3)
    assert_consistent(result, book)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_ties_at_the_margin_share_pro_rata(solver):
    # Offers A (10 kWh) and B (20 kWh) both at 0.10 form a tie group of 30 kWh; the only
    # crossing bid wants 15 kWh (the 0.05 bid is below every offer). The group supplies 15 kWh
    # shared 10:20 -> A 5, B 10; C at 0.20 is out of the money.
    # Interval [max(0.10, 0.05 rejected bid), min(0.30, 0.10 partly accepted offers)] -> 0.10.
    book = [sell("A", 0.10, 10), sell("B", 0.10, 20), sell("C", 0.20, 10), buy("x", 0.30, 15), buy("y", 0.05, 5)]
    result = clear_double_auction(book, solver=solver)
    assert accepted(result) == [5, 10, 0, 15, 0]
    assert result.price_eur_per_kwh == pytest.approx(0.10)
    assert_consistent(result, book)

    # Bid side: X (4 kWh) and Y (12 kWh) both bid 0.25 for the 8 kWh offered at 0.05, so they
    # get 8 * 4/16 = 2 and 8 * 12/16 = 6. Interval [max(0.05, 0.25), min(0.25, -)] -> 0.25.
    book = [buy("X", 0.25, 4), buy("Y", 0.25, 12), sell("S", 0.05, 8)]
    result = clear_double_auction(book, solver=solver)
    assert accepted(result) == [2, 6, 8]
    assert result.price_eur_per_kwh == pytest.approx(0.25)
    assert_consistent(result, book)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_no_crossing_nothing_trades(solver):
    # Highest bid 0.12 < lowest offer 0.15.
    book = [buy("b1", 0.12, 5), buy("b2", 0.08, 5), sell("s1", 0.15, 5), sell("s2", 0.20, 5)]
    result = clear_double_auction(book, solver=solver)
    assert result.price_eur_per_kwh is None
    assert result.volume_kwh == 0
    assert accepted(result) == [0, 0, 0, 0]
    assert result.welfare_eur == 0
    assert (result.allocation.to_numpy() == 0).all() and result.allocation.shape == (2, 2)
    table = settle(result, book)
    assert (table[["cost_eur", "income_eur", "net_eur"]].to_numpy() == 0).all()
    assert_consistent(result, book)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
@pytest.mark.parametrize(
    "book",
    [[], [buy("b1", 0.30, 5), buy("b2", 0.20, 1)], [sell("s1", 0.05, 5)]],
    ids=["empty", "only-bids", "only-offers"],
)
def test_empty_and_one_sided_books(solver, book):
    result = clear_double_auction(book, solver=solver)
    assert result.price_eur_per_kwh is None
    assert result.volume_kwh == 0
    assert len(result.accepted_kwh) == len(book) and not np.any(result.accepted_kwh)
    n_sellers = sum(o.side == "sell" for o in book)
    assert result.allocation.shape == (n_sellers, len(book) - n_sellers)
    assert settle(result, book)["net_eur"].sum() == 0
    assert_consistent(result, book)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_all_demand_met(solver):
    # 7 kWh of demand (3 @ 0.30, 4 @ 0.25) against 20 kWh of cheap supply: every bid is accepted
    # fully, the cheapest offer (0.05) supplies all 7 kWh and sets the price:
    # [max(0.05, no rejected bid), min(0.25, 0.05 partly accepted offer)] = [0.05, 0.05].
    book = [buy("b1", 0.30, 3), buy("b2", 0.25, 4), sell("s1", 0.05, 10), sell("s2", 0.08, 10)]
    result = clear_double_auction(book, solver=solver)
    assert accepted(result) == [3, 4, 7, 0]
    assert result.price_eur_per_kwh == pytest.approx(0.05)
    assert_consistent(result, book)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_zero_quantity_orders_never_set_the_price(solver):
    # A 0 kWh bid at 0.22 sits inside the interval [0.15, 0.25] of VERTICAL and a 0 kWh offer at
    # 0.00 below it; as real orders they would move the interval, with zero quantity they must
    # not: the price stays 0.20 and they are accepted with 0 kWh.
    book = VERTICAL + [buy("z1", 0.22, 0), sell("z2", 0.00, 0.0)]
    result = clear_double_auction(book, solver=solver)
    assert result.price_eur_per_kwh == pytest.approx(0.20)
    assert accepted(result) == [10, 0, 10, 0, 0, 0]
    # A book of zero-quantity orders only trades nothing.
    result = clear_double_auction([buy("z1", 0.3, 0), sell("z2", 0.1, 0)], solver=solver)
    assert result.price_eur_per_kwh is None and result.volume_kwh == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"quantity_kwh": -1.0}, "quantity_kwh must be >= 0"),
        ({"quantity_kwh": math.inf}, "quantity_kwh must be a finite number"),
        ({"quantity_kwh": math.nan}, "quantity_kwh must be a finite number"),
        ({"price_eur_per_kwh": math.nan}, "price_eur_per_kwh must be a finite number"),
        ({"price_eur_per_kwh": -math.inf}, "price_eur_per_kwh must be a finite number"),
        ({"price_eur_per_kwh": "cheap"}, "price_eur_per_kwh must be a number"),
        ({"price_eur_per_kwh": None}, "price_eur_per_kwh must be a number"),
        ({"side": "bid"}, "side must be 'buy' or 'sell'"),
        ({"participant": ""}, "participant must be a non-empty string"),
    ],
)
def test_invalid_orders_raise(kwargs, match):
    fields = {"participant": "h1", "side": "buy", "price_eur_per_kwh": 0.2, "quantity_kwh": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        Order(**fields)


def test_valid_order_edge_cases_and_bad_arguments():
    # Negative prices are finite and valid (e.g. a PV surplus offered below zero); ints coerced.
    order = Order("h1", "sell", -0.02, 3)
    assert order.price_eur_per_kwh == -0.02 and isinstance(order.quantity_kwh, float)
    with pytest.raises(ValueError, match="unknown solver"):
        clear_double_auction(SIMPLE, solver="cplex")
    with pytest.raises(TypeError, match="Order instances"):
        clear_double_auction([("h1", "buy", 0.2, 1.0)])
    result = clear_double_auction(SIMPLE)
    with pytest.raises(ValueError, match="pass the cleared order list"):
        settle(result, SIMPLE[:2])


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_negative_prices(solver):
    # Offers at -0.05 (5 kWh) and 0.02 (5 kWh); bids 6 @ 0.01 and 2 @ -0.10. The 0.01 bid takes
    # the 5 kWh at -0.05 but not the 0.02 offer; vertical overlap at 5 kWh, partly accepted bid:
    # [max(-0.05, 0.01), min(0.01, 0.02)] = [0.01, 0.01].
    book = [sell("s1", -0.05, 5), sell("s2", 0.02, 5), buy("b1", 0.01, 6), buy("b2", -0.10, 2)]
    result = clear_double_auction(book, solver=solver)
    assert accepted(result) == [5, 0, 5, 0]
    assert result.price_eur_per_kwh == pytest.approx(0.01)
    assert_consistent(result, book)


# --- allocation and settlement -----------------------------------------------------------------

# h1 sells twice (an aggregated row), h2 is a prosumer on both sides.
MIXED = [
    sell("h1", 0.05, 4),
    sell("h1", 0.08, 2),
    sell("h2", 0.06, 3),
    sell("h3", 0.20, 5),
    buy("h4", 0.25, 5),
    buy("h2", 0.15, 2),
    buy("h5", 0.10, 4),
    buy("h6", 0.04, 3),
]


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_allocation_is_proportional_and_sums(solver):
    # Supply 4 @ 0.05, 3 @ 0.06, 2 @ 0.08, 5 @ 0.20; demand 5 @ 0.25, 2 @ 0.15, 4 @ 0.10,
    # 3 @ 0.04. Walk: 0-4 (0.25 vs 0.05), 4-5 (0.25 vs 0.06), 5-7 (0.15 vs 0.06),
    # 7-9 (0.10 vs 0.08 and at 7 the 0.06 offer is used up) - all trade; at 9 kWh supply steps
    # to 0.20 > 0.10: stop. Volume 9; h5 gets 2 of 4 (partial bid at 0.10), every offer up to
    # 0.08 is fully accepted. Interval [max(0.08, 0.10), min(0.10, 0.20)] = [0.10, 0.10].
    result = clear_double_auction(MIXED, solver=solver)
    assert result.volume_kwh == pytest.approx(9)
    assert accepted(result) == [4, 2, 3, 0, 5, 2, 2, 0]
    assert result.price_eur_per_kwh == pytest.approx(0.10)
    x = result.allocation
    assert list(x.index) == ["h1", "h2", "h3"] and list(x.columns) == ["h4", "h2", "h5", "h6"]
    # Rows sum to sellers' accepted kWh (h1: 4 + 2), columns to the buyers'.
    np.testing.assert_allclose(x.sum(axis=1).to_numpy(), [6, 3, 0], atol=TOL)
    np.testing.assert_allclose(x.sum(axis=0).to_numpy(), [5, 2, 2, 0], atol=TOL)
    # x_ij = g_i d_j / V, e.g. h1 -> h4: 6 * 5 / 9.
    assert x.loc["h1", "h4"] == pytest.approx(6 * 5 / 9)
    assert x.loc["h2", "h2"] == pytest.approx(3 * 2 / 9)


def test_sparse_allocation_is_the_dense_one_pair_by_pair():
    # MIXED at 0.10 EUR/kWh (above): g = (h1 6, h2 3, h3 0), d = (h4 5, h2 2, h5 2, h6 0), V = 9. The factors
    # give the six positive pairs seller by seller, h1 -> h4 = 6 x 5 / 9 ... h2 -> h5 = 3 x 2 / 9, as the dense
    # table's positive entries to the last bit.
    result = clear_double_auction(MIXED, solver="merit_order")
    bilateral = result.bilateral
    assert bilateral.sellers == ("h1", "h2", "h3") and bilateral.buyers == ("h4", "h2", "h5", "h6")
    assert bilateral.sold_kwh.tolist() == [6, 3, 0] and bilateral.bought_kwh.tolist() == [5, 2, 2, 0]
    i, j, kwh = bilateral.pairs()
    assert [(bilateral.sellers[a], bilateral.buyers[b]) for a, b in zip(i, j)] == [
        ("h1", "h4"), ("h1", "h2"), ("h1", "h5"), ("h2", "h4"), ("h2", "h2"), ("h2", "h5")]
    assert kwh.tolist() == pytest.approx([30 / 9, 12 / 9, 12 / 9, 15 / 9, 6 / 9, 6 / 9], abs=1e-12)
    dense = result.allocation.to_numpy()
    assert np.array_equal(np.argwhere(dense > 0), np.column_stack([i, j]))
    assert np.array_equal(dense[i, j], kwh)  # the same floats, not only close
    assert np.array_equal(bilateral.row(0), dense[0]) and np.array_equal(bilateral.column(1), dense[:, 1])
    assert bilateral.shape == (3, 4)


def test_sparse_allocation_of_random_books_equals_the_dense_formula():
    rng = np.random.default_rng(18)
    for trial in range(20):
        n_sellers, n_buyers = int(rng.integers(1, 40)), int(rng.integers(1, 60))
        g = rng.uniform(0, 5, n_sellers) * (rng.random(n_sellers) < 0.6)  # some sold nothing
        d = rng.uniform(0, 3, n_buyers) * (rng.random(n_buyers) < 0.7)
        volume = float(g.sum()) if trial % 5 else 0.0  # every fifth: nothing traded
        bilateral = BilateralAllocation([f"s{k}" for k in range(n_sellers)], [f"b{k}" for k in range(n_buyers)],
                                        g, d, volume)
        dense = np.outer(g, d) / volume if volume > 0 else np.zeros((n_sellers, n_buyers))
        i, j, kwh = bilateral.pairs()
        assert np.array_equal(np.argwhere(dense > 0), np.column_stack([i, j]))
        assert np.array_equal(dense[i, j], kwh)
        assert np.array_equal(bilateral.to_frame().to_numpy(), dense)
        k = int(rng.integers(n_sellers))
        assert np.array_equal(bilateral.row(k), dense[k])
    # a whole cleared book: the result's factors against its dense table
    book = [sell(f"s{k}", float(rng.uniform(0.04, 0.14)), float(rng.uniform(0, 4))) for k in range(30)]
    book += [buy(f"b{k}", float(rng.uniform(0.08, 0.22)), float(rng.uniform(0, 2))) for k in range(50)]
    result = clear_double_auction(book, solver="merit_order")
    assert result.volume_kwh > 0
    i, j, kwh = result.bilateral.pairs()
    dense = result.allocation.to_numpy()
    assert np.array_equal(dense[i, j], kwh) and len(kwh) == int((dense > 0).sum())
    assert kwh.sum() == pytest.approx(result.volume_kwh, rel=1e-12)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_settlement_sums_to_zero(solver):
    result = clear_double_auction(MIXED, solver=solver)
    table = settle(result, MIXED)
    assert list(table.index) == ["h1", "h2", "h3", "h4", "h5", "h6"]
    # At 0.10 EUR/kWh: h4 pays 0.5, h5 pays 0.2; h1 earns 0.6; h2 buys 2 and sells 3 -> +0.1.
    assert table.loc["h4", "cost_eur"] == pytest.approx(0.5)
    assert table.loc["h1", "income_eur"] == pytest.approx(0.6)
    assert table.loc["h2", "net_eur"] == pytest.approx(0.1)
    assert table["cost_eur"].sum() == pytest.approx(table["income_eur"].sum())
    assert table["net_eur"].sum() == pytest.approx(0.0, abs=1e-12)
    by_participant = result.accepted_by_participant(MIXED)
    pd.testing.assert_frame_equal(by_participant, table[["bought_kwh", "sold_kwh"]])


# --- LP versus merit order ---------------------------------------------------------------------


def random_book(rng):
    """A random book; half of them on a coarse price grid so ties and overlaps are common."""
    n_bids, n_offers = rng.integers(0, 13, size=2)
    n = n_bids + n_offers
    if rng.random() < 0.5:
        prices = rng.integers(-2, 12, size=n) / 40.0  # EUR/kWh, steps of 0.025
        quantities = rng.integers(0, 6, size=n).astype(float)  # kWh, zeros included
    else:
        prices = rng.uniform(-0.05, 0.35, size=n)
        quantities = rng.uniform(0.0, 5.0, size=n)
    sides = ["buy"] * int(n_bids) + ["sell"] * int(n_offers)
    order = rng.permutation(n)
    return [Order(f"p{rng.integers(0, 8)}", sides[k], float(prices[k]), float(quantities[k])) for k in order]


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_lp_and_merit_order_agree_on_random_books(solver):
    rng = np.random.default_rng(20240611)
    n_unique = n_interval = n_trading = n_overlap = n_pro_rata = 0
    for _ in range(200):
        book = random_book(rng)
        lp = clear_double_auction(book, solver=solver)
        mo = clear_double_auction(book, solver="merit_order")
        assert_consistent(lp, book)
        assert_consistent(mo, book)
        np.testing.assert_allclose(lp.accepted_kwh, mo.accepted_kwh, atol=TOL)
        assert lp.volume_kwh == pytest.approx(mo.volume_kwh, abs=TOL)
        assert lp.welfare_eur == pytest.approx(mo.welfare_eur, abs=TOL)
        np.testing.assert_allclose(lp.allocation.to_numpy(), mo.allocation.to_numpy(), atol=TOL)
        if mo.price_eur_per_kwh is None:
            assert lp.price_eur_per_kwh is None
            continue
        n_trading += 1
        lo, hi = mo.price_interval_eur_per_kwh
        assert lp.price_interval_eur_per_kwh == pytest.approx((lo, hi), abs=TOL)
        assert lp.price_eur_per_kwh == pytest.approx(mo.price_eur_per_kwh, abs=TOL)
        # The solver's dual is a valid clearing price; where the interval is a point it is the
        # price itself.
        assert lo - TOL <= lp.dual_eur_per_kwh <= hi + TOL
        if hi - lo < TOL:
            n_unique += 1
            assert lp.dual_eur_per_kwh == pytest.approx(mo.price_eur_per_kwh, abs=TOL)
        else:
            n_interval += 1
        at_price = [(o, x) for o, x in zip(book, mo.accepted_kwh) if o.price_eur_per_kwh == mo.price_eur_per_kwh]
        n_overlap += {o.side for o, _ in at_price if o.quantity_kwh > 0} == {"buy", "sell"}
        n_pro_rata += sum(0 < x < o.quantity_kwh - TOL for o, x in at_price) > 1
    # The sample exercises unique prices, price intervals, horizontal overlaps (largest-volume
    # rule), partly filled tie groups of several orders (pro rata) and books that do not trade.
    assert n_unique > 100 and n_interval > 10 and n_overlap > 10 and n_pro_rata > 10 and n_trading < 190


def test_sixty_one_participants():
    # A community of 61 households (as in the paper's case): each one either buys (no PV
    # surplus this hour) or sells its surplus; some of them do both across two orders.
    rng = np.random.default_rng(61)
    book = []
    for h in range(61):
        name = f"house_{h:02d}"
        if rng.random() < 0.4:
            book.append(sell(name, round(float(rng.uniform(0.04, 0.14)), 3), round(float(rng.uniform(0, 4)), 2)))
        if rng.random() < 0.7:
            book.append(buy(name, round(float(rng.uniform(0.08, 0.22)), 3), round(float(rng.uniform(0, 2)), 2)))
    results = {}
    for solver in ALL_SOLVERS:
        results[solver] = clear_double_auction(book, solver=solver)
        assert_consistent(results[solver], book)
    reference = results["merit_order"]
    assert reference.volume_kwh > 5 and reference.price_eur_per_kwh is not None
    for solver in LP_SOLVERS:
        np.testing.assert_allclose(results[solver].accepted_kwh, reference.accepted_kwh, atol=TOL)
        assert results[solver].price_eur_per_kwh == pytest.approx(reference.price_eur_per_kwh, abs=TOL)
    x = reference.allocation
    sells = reference.accepted_by_participant(book)
    np.testing.assert_allclose(x.sum(axis=1).to_numpy(), sells.loc[x.index, "sold_kwh"].to_numpy(), atol=TOL)
    np.testing.assert_allclose(x.sum(axis=0).to_numpy(), sells.loc[x.columns, "bought_kwh"].to_numpy(), atol=TOL)
    assert settle(reference, book)["net_eur"].sum() == pytest.approx(0.0, abs=1e-9)
