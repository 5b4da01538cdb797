"""The continuous double auction (``lec_cosim.models.continuous_auction``) and the LEC's market run with it
(``lec_cosim.models.lec_pool.clear_lec_continuous``): hand-computed books, then properties over random books.

Every case below was worked out by hand from the rule of the module docstring: orders arrive one by one; an
incoming order trades with the best resting order of the other side (best price, then earliest) while the
prices cross, each trade at the resting order's price, and its rest rests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lec_cosim.models.auction import Order, clear_double_auction
from lec_cosim.models.continuous_auction import arrival_order, clear_continuous, price_stats
from lec_cosim.models.lec_pool import clear_lec_continuous, clear_lec_pool, member_orders


def trades(result):
    return [(t.buyer, t.seller, t.quantity_kwh, t.price_eur_per_kwh) for t in result.trades]


# --- hand-computed books ------------------------------------------------------------------------


def test_an_incoming_bid_takes_the_cheapest_offers_first_at_their_prices_and_rests_the_rest():
    orders = [Order("S1", "sell", 0.10, 2.0), Order("S2", "sell", 0.08, 1.0), Order("S3", "sell", 0.12, 5.0),
              Order("B", "buy", 0.11, 4.0)]
    r = clear_continuous(orders)
    # S2 (0.08) before S1 (0.10); S3 (0.12) does not cross 0.11; B's last kWh rests unmatched
    assert trades(r) == [("B", "S2", 1.0, 0.08), ("B", "S1", 2.0, 0.10)]
    assert [t.sequence for t in r.trades] == [0, 1] and {t.maker_side for t in r.trades} == {"sell"}
    assert r.accepted_kwh.tolist() == [2.0, 1.0, 0.0, 3.0]
    assert r.volume_kwh == 3.0
    assert r.paid_eur["B"] == pytest.approx(0.08 + 0.20)
    assert r.received_eur == pytest.approx({"S1": 0.20, "S2": 0.08, "S3": 0.0, "B": 0.0})
    assert r.welfare_eur == pytest.approx((0.11 - 0.08) * 1 + (0.11 - 0.10) * 2)
    assert r.mean_price_eur_per_kwh("B") == pytest.approx(0.28 / 3)
    assert r.mean_price_eur_per_kwh("S3") is None


def test_an_incoming_offer_takes_the_highest_bids_first_at_their_prices():
    orders = [Order("B1", "buy", 0.15, 1.0), Order("B2", "buy", 0.20, 1.0), Order("B3", "buy", 0.05, 1.0),
              Order("S", "sell", 0.10, 5.0)]
    r = clear_continuous(orders)
    assert trades(r) == [("B2", "S", 1.0, 0.20), ("B1", "S", 1.0, 0.15)]  # B3's 0.05 is below the ask
    assert r.accepted_kwh.tolist() == [1.0, 1.0, 0.0, 2.0]
    assert r.trades[0].maker_side == "buy"


def test_the_maker_sets_the_price_so_the_arrival_order_decides_who_gets_the_gain():
    bid, ask = Order("B", "buy", 0.20, 1.0), Order("S", "sell", 0.05, 1.0)
    assert trades(clear_continuous([bid, ask])) == [("B", "S", 1.0, 0.20)]  # the bid rested: the seller gains
    assert trades(clear_continuous([bid, ask], arrival=[1, 0])) == [("B", "S", 1.0, 0.05)]  # the buyer gains
    # the gain of trade is the same either way; only its split differs
    assert clear_continuous([bid, ask]).welfare_eur == clear_continuous([bid, ask], arrival=[1, 0]).welfare_eur


def test_partial_fills_on_both_sides_leave_the_rest_for_later_orders():
    orders = [Order("S1", "sell", 0.05, 3.0), Order("B1", "buy", 0.10, 1.0), Order("B2", "buy", 0.10, 1.5),
              Order("S2", "sell", 0.06, 2.0), Order("B3", "buy", 0.10, 2.0)]
    r = clear_continuous(orders)
    # S1 rests 3; B1 takes 1 (S1 has 2 left), B2 1.5 (S1 0.5 left); S2 rests; B3 takes S1's 0.5, then 1.5 of S2
    assert trades(r) == [("B1", "S1", 1.0, 0.05), ("B2", "S1", 1.5, 0.05), ("B3", "S1", 0.5, 0.05),
                         ("B3", "S2", 1.5, 0.06)]
    assert r.accepted_kwh.tolist() == [3.0, 1.0, 1.5, 1.5, 2.0]  # S2 keeps 0.5 unmatched
    assert r.bought_kwh == {"S1": 0.0, "B1": 1.0, "B2": 1.5, "S2": 0.0, "B3": 2.0}


def test_resting_orders_at_the_same_price_trade_in_the_order_they_arrived():
    orders = [Order("late", "sell", 0.07, 1.0), Order("early", "sell", 0.07, 1.0), Order("B", "buy", 0.10, 1.5)]
    r = clear_continuous(orders, arrival=[1, 0, 2])  # "early" reaches the book first
    assert trades(r) == [("B", "early", 1.0, 0.07), ("B", "late", 0.5, 0.07)]
    r = clear_continuous(orders)  # the list's order: "late" first
    assert trades(r) == [("B", "late", 1.0, 0.07), ("B", "early", 0.5, 0.07)]


def test_a_better_price_beats_an_earlier_arrival():
    orders = [Order("first", "buy", 0.10, 1.0), Order("better", "buy", 0.12, 1.0), Order("S", "sell", 0.09, 1.0)]
    assert trades(clear_continuous(orders)) == [("better", "S", 1.0, 0.12)]


def test_nothing_trades_when_prices_do_not_cross_or_a_side_is_empty():
    apart = [Order("B", "buy", 0.08, 1.0), Order("S", "sell", 0.09, 1.0)]
    for book in (apart, apart[::-1], [apart[0]], [apart[1]], []):
        r = clear_continuous(book)
        assert r.trades == () and r.volume_kwh == 0.0 and r.welfare_eur == 0.0
        assert r.accepted_kwh.tolist() == [0.0] * len(book)
        assert r.price_stats() == {"trades": 0, "mean_eur_per_kwh": None, "std_eur_per_kwh": None,
                                   "min_eur_per_kwh": None, "max_eur_per_kwh": None}
    touching = clear_continuous([Order("B", "buy", 0.09, 1.0), Order("S", "sell", 0.09, 2.0)])
    assert trades(touching) == [("B", "S", 1.0, 0.09)]  # equal prices cross


def test_zero_quantity_orders_trade_nothing_and_never_block_the_book():
    orders = [Order("Z", "sell", 0.01, 0.0), Order("S", "sell", 0.05, 1.0), Order("B", "buy", 0.10, 1.0)]
    r = clear_continuous(orders)
    assert trades(r) == [("B", "S", 1.0, 0.05)] and r.accepted_kwh.tolist() == [0.0, 1.0, 1.0]


def test_invalid_orders_and_arrival_orders_are_refused():
    with pytest.raises(TypeError, match="Order instances"):
        clear_continuous([("B", "buy", 0.1, 1.0)])
    with pytest.raises(ValueError, match="quantity_kwh must be >= 0"):
        Order("B", "buy", 0.1, -1.0)
    with pytest.raises(ValueError, match="finite"):
        Order("B", "buy", math.nan, 1.0)
    orders = [Order("B", "buy", 0.1, 1.0), Order("S", "sell", 0.05, 1.0)]
    for arrival in ([0], [0, 0], [0, 2], [1, 0, 2]):
        with pytest.raises(ValueError, match="permutation"):
            clear_continuous(orders, arrival=arrival)
    for bad in ({"seed": -1, "period": 0}, {"seed": 0, "period": 1.5}, {"seed": True, "period": 0}):
        with pytest.raises(ValueError, match="integer >= 0"):
            arrival_order(3, **bad)


def test_the_arrival_order_is_a_reproducible_permutation_per_seed_period_and_stream():
    first = arrival_order(20, seed=0, period=5, stream=1)
    assert sorted(first) == list(range(20))
    assert first == arrival_order(20, seed=0, period=5, stream=1)
    others = [arrival_order(20, seed=1, period=5, stream=1), arrival_order(20, seed=0, period=6, stream=1),
              arrival_order(20, seed=0, period=5, stream=2)]
    assert all(other != first for other in others)
    # the documented draw, so that anyone can redo it
    assert first == np.random.default_rng([0, 5, 1]).permutation(20).tolist()
    assert arrival_order(0, seed=0, period=0) == []


def test_price_statistics_are_weighted_by_kwh():
    stats = price_stats([0.05, 0.20], [3.0, 1.0])
    assert stats["mean_eur_per_kwh"] == pytest.approx(0.0875)
    assert stats["std_eur_per_kwh"] == pytest.approx(math.sqrt((3 * 0.0375**2 + 0.1125**2) / 4))
    assert (stats["min_eur_per_kwh"], stats["max_eur_per_kwh"], stats["trades"]) == (0.05, 0.20, 2)


# --- the LEC's market: members' orders, the grid for the rest ---------------------------------------

PRICES = {"import_price_eur_per_kwh": 0.20, "export_price_eur_per_kwh": 0.05}


def test_the_lec_s_auction_settles_each_member_at_its_trades_prices_and_the_rest_at_the_tariffs():
    net = {"A": 3.0, "B": -1.0, "C": -1.5, "D": 0.5}
    orders = member_orders(net, **PRICES)  # A, B, C, D
    cda = clear_lec_continuous(orders, **PRICES, arrival=[2, 0, 1, 3])
    # C offers 1.5 at 0.05 and rests; A bids 3 at 0.20 and takes them at 0.05, its 1.5 left rests at 0.20;
    # B's 1 kWh then meets A's bid: 0.20; D's 0.5 finds no offer and goes to the grid
    assert trades(cda.book) == [("A", "C", 1.5, 0.05), ("A", "B", 1.0, 0.20)]
    assert cda.arrival_members == ("C", "A", "B", "D")
    assert cda.bought_kwh == {"A": 2.5, "B": 0.0, "C": 0.0, "D": 0.0}
    assert cda.grid_import_kwh == {"A": 0.5, "B": 0.0, "C": 0.0, "D": 0.5}
    assert cda.cost_eur == pytest.approx({"A": 0.075 + 0.20 + 0.5 * 0.20, "B": -0.20, "C": -0.075, "D": 0.10})
    assert cda.member_price_eur_per_kwh("A") == pytest.approx(0.275 / 2.5)
    assert cda.member_price_eur_per_kwh("D") is None
    assert cda.price_eur_per_kwh == pytest.approx(0.275 / 2.5)  # the volume-weighted mean trade price
    assert cda.lec_net_kwh == pytest.approx(1.0)
    # The counterfactual: the pool of the same orders trades as much, at the import price (demand > supply).
    assert cda.pool.volume_kwh == cda.volume_kwh == 2.5 and cda.pool.price_eur_per_kwh == 0.20
    assert cda.pool_welfare_eur == pytest.approx(cda.book.welfare_eur) == pytest.approx(2.5 * 0.15)
    record = cda.market_record()
    assert record["pool_counterfactual"] == {"price_eur_per_kwh": 0.20, "volume_kwh": 2.5,
                                             "welfare_eur": cda.pool_welfare_eur}
    assert [t["sequence"] for t in record["cda_trades"]] == [0, 1] and record["market"] == "continuous"


def test_truthful_bids_at_one_price_give_the_pool_s_total_lec_cost():
    """The issue's acceptance case, solved by hand: every need bid at the import price 0.20, every surplus
    offered at the export price 0.05. Both mechanisms trade min(3, 2.5) = 2.5 kWh and leave 0.5 kWh to import;
    whatever the trade prices, money between members cancels, so the LEC pays 0.5 x 0.20 = 0.10 EUR either way."""
    net = {"A": 2.0, "B": 1.0, "C": -2.0, "D": -0.5}
    orders = member_orders(net, **PRICES)
    pool = clear_lec_pool(orders, **PRICES)
    assert sum(pool.cost_eur.values()) == pytest.approx(0.10)
    for arrival in ([0, 1, 2, 3], [2, 3, 0, 1], [0, 2, 1, 3], [3, 1, 2, 0]):
        cda = clear_lec_continuous(orders, **PRICES, arrival=arrival)
        assert sum(cda.cost_eur.values()) == pytest.approx(0.10)
        assert cda.volume_kwh == pytest.approx(2.5) and cda.lec_net_kwh == pytest.approx(pool.lec_net_kwh)


def test_members_without_orders_or_with_nothing_to_trade_are_left_to_the_grid():
    cda = clear_lec_continuous(member_orders({"A": 1.0, "B": 2.0}, **PRICES), **PRICES)
    assert cda.volume_kwh == 0.0 and cda.price_eur_per_kwh is None
    assert cda.cost_eur == pytest.approx({"A": 0.20, "B": 0.40}) and cda.market_record()["cda_trades"] == []
    empty = clear_lec_continuous([], **PRICES)
    assert empty.cost_eur == {} and empty.pool.volume_kwh == 0.0 and empty.pool_welfare_eur == 0.0


# --- properties over random books -----------------------------------------------------------------


def random_book(rng, n, overlapping):
    orders = []
    for k in range(n):
        side = "buy" if rng.random() < 0.5 else "sell"
        if overlapping:
            price = round(float(rng.uniform(0.0, 0.3)), 3)
        else:  # every bid at or above every offer, as the LEC's members bid
            price = float(rng.choice([0.15, 0.2])) if side == "buy" else float(rng.choice([0.045, 0.15]))
        quantity = 0.0 if rng.random() < 0.05 else round(float(rng.uniform(0.01, 5.0)), 3)
        orders.append(Order(f"m{k}", side, price, quantity))
    return orders


def test_when_every_bid_is_at_least_every_offer_the_auction_trades_the_pool_s_volume():
    rng = np.random.default_rng(17)
    for case in range(300):
        orders = random_book(rng, int(rng.integers(0, 25)), overlapping=False)
        arrival = arrival_order(len(orders), seed=case, period=0)
        cda = clear_continuous(orders, arrival=arrival)
        pool = clear_double_auction(orders, solver="merit_order")
        demand = sum(o.quantity_kwh for o in orders if o.side == "buy")
        supply = sum(o.quantity_kwh for o in orders if o.side == "sell")
        assert cda.volume_kwh == pytest.approx(min(demand, supply), abs=1e-12)
        assert cda.volume_kwh == pytest.approx(pool.volume_kwh, rel=1e-9, abs=1e-12)
        # with several price levels it may match worse-priced orders than the pool: less welfare, never more
        assert cda.welfare_eur <= pool.welfare_eur + 1e-12


def test_with_one_price_a_side_as_the_members_bid_the_auction_also_has_the_pool_s_welfare():
    rng = np.random.default_rng(18)
    for case in range(300):
        net = {f"m{k}": round(float(rng.uniform(-4, 4)), 3) for k in range(int(rng.integers(0, 25)))}
        orders = member_orders(net, **PRICES)
        cda = clear_continuous(orders, arrival=arrival_order(len(orders), seed=case, period=0))
        pool = clear_double_auction(orders, solver="merit_order")
        assert cda.volume_kwh == pytest.approx(pool.volume_kwh, rel=1e-9, abs=1e-12)
        assert cda.welfare_eur == pytest.approx(pool.welfare_eur, rel=1e-9, abs=1e-12)
        assert cda.welfare_eur == pytest.approx(0.15 * cda.volume_kwh, rel=1e-9, abs=1e-12)


def test_every_book_balances_energy_and_money_and_never_beats_the_pool_s_welfare():
    rng = np.random.default_rng(4)
    for case in range(300):
        orders = random_book(rng, int(rng.integers(0, 25)), overlapping=True)
        cda = clear_continuous(orders, arrival=arrival_order(len(orders), seed=case, period=1))
        # energy: what the buyers got is what the sellers gave; no order beyond its quantity
        assert sum(cda.bought_kwh.values()) == pytest.approx(sum(cda.sold_kwh.values()), abs=1e-12)
        assert all(0 <= a <= o.quantity_kwh + 1e-12 for a, o in zip(cda.accepted_kwh, orders))
        # money: what members pay is what members receive
        assert sum(cda.paid_eur.values()) == pytest.approx(sum(cda.received_eur.values()), abs=1e-12)
        # every trade inside both limits, at the maker's price
        for t in cda.trades:
            bid, ask = orders[t.buy_order], orders[t.sell_order]
            assert ask.price_eur_per_kwh <= t.price_eur_per_kwh <= bid.price_eur_per_kwh
            assert t.price_eur_per_kwh == (bid if t.maker_side == "buy" else ask).price_eur_per_kwh
        # the book left at the end does not cross: the best resting bid is below the best resting offer
        rest = [o.quantity_kwh - a for o, a in zip(orders, cda.accepted_kwh)]
        bids = [o.price_eur_per_kwh for o, r in zip(orders, rest) if o.side == "buy" and r > 1e-12]
        asks = [o.price_eur_per_kwh for o, r in zip(orders, rest) if o.side == "sell" and r > 1e-12]
        if bids and asks:
            assert max(bids) < min(asks)
        assert cda.welfare_eur <= clear_double_auction(orders, solver="merit_order").welfare_eur + 1e-12


def test_the_lec_s_money_balances_every_hour_whatever_the_arrival():
    rng = np.random.default_rng(9)
    for case in range(200):
        net = {f"m{k}": round(float(rng.uniform(-4, 4)), 3) for k in range(int(rng.integers(1, 20)))}
        orders = member_orders(net, **PRICES)
        cda = clear_lec_continuous(orders, **PRICES, arrival=arrival_order(len(orders), seed=case, period=2))
        pool = cda.pool
        # trades move money only among members: the LEC's bill is its residual at the tariffs, as the pool's
        residual = PRICES["import_price_eur_per_kwh"] * sum(cda.grid_import_kwh.values()) \
            - PRICES["export_price_eur_per_kwh"] * sum(cda.grid_export_kwh.values())
        assert sum(cda.cost_eur.values()) == pytest.approx(residual, abs=1e-12)
        assert sum(cda.cost_eur.values()) == pytest.approx(sum(pool.cost_eur.values()), abs=1e-12)
        for m, x in net.items():  # each member's net split between its trades and the grid
            assert x == pytest.approx(cda.bought_kwh.get(m, 0) - cda.sold_kwh.get(m, 0)
                                      + cda.grid_import_kwh.get(m, 0) - cda.grid_export_kwh.get(m, 0), abs=1e-12)


def test_price_statistics_leave_out_rounding_level_trades():
    """A 1e-12 kWh trade (a member's net a rounding off zero) sets no price: the count, the extremes and the mean
    are those of the real trades."""
    from lec_cosim.models.continuous_auction import MIN_TRADE_KWH, price_stats

    stats = price_stats([0.01, 0.05, 0.20], [1e-12, 1.0, 3.0])
    assert stats["trades"] == 2 and stats["min_eur_per_kwh"] == 0.05 and stats["max_eur_per_kwh"] == 0.20
    assert stats["mean_eur_per_kwh"] == pytest.approx((0.05 + 3 * 0.20) / 4, abs=1e-15)
    assert price_stats([0.3], [MIN_TRADE_KWH / 2])["mean_eur_per_kwh"] is None
    assert price_stats([0.3], [MIN_TRADE_KWH])["trades"] == 1
