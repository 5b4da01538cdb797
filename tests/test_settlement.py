"""The local market's per-period settlement (``lem_community.settle_period``), solved by hand.

Every case writes out the money in EUR from the published tariffs (``bidding``'s module
docstring): feed-in 0.045 EUR/kWh; retail plain 0.158, bi-hourly 0.1924 in the peak (the hours
starting at 9 .. 21) and 0.1023 otherwise; a CHP's production cost C(G) = (4/3) b G sqrt(G / 1000)
EUR for G kWh in the hour, b = 0.20 EUR/kWh. The rule under test: LEM energy is paid at the
clearing price; what a buyer still needs comes from the grid at retail; what a seller still has
is fed in at the feed-in tariff - and only that (energy sold in the pool earns no feed-in).
"""

from __future__ import annotations

import pytest

from lec_cosim.models.auction import clear_double_auction
from lec_cosim.models.lem_community import period_orders, settle_period

EXACT = 1e-12


def money(st):
    return st.cost_eur, st.income_eur


def energy(st):
    return st.lem_bought_kwh, st.lem_sold_kwh, st.grid_import_kwh, st.grid_export_kwh, st.chp_kwh


# --- consumers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, hour, retail",
    [
        ("plain", 3, 0.158),
        ("plain", 12, 0.158),
        ("bihourly", 8, 0.1023),  # the last off-peak hour of the morning
        ("bihourly", 9, 0.1924),  # the first peak hour
        ("bihourly", 21, 0.1924),  # the last peak hour
        ("bihourly", 22, 0.1023),  # the first off-peak hour of the evening
        ("bihourly", 24 + 10, 0.1924),  # a peak hour of the second day (hour of day taken modulo 24)
    ],
)
def test_consumer_pays_the_pool_price_for_what_it_bought_and_retail_for_the_rest(scheme, hour, retail):
    # Load 3 kWh, 2 kWh bought in the pool at 0.12 EUR/kWh: 1 kWh from the grid.
    # cost = 2 * 0.12 + 1 * retail
    st = settle_period("consumer", 3.0, 0.0, 0.0, hour=hour, scheme=scheme, lem_enabled=True,
                       price_eur_per_kwh=0.12, bought_kwh=2.0)
    assert energy(st) == pytest.approx((2.0, 0.0, 1.0, 0.0, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((0.24 + retail, 0.0), abs=EXACT)


def test_consumer_settles_each_bihourly_band_by_hand():
    # Peak (13:00): 3 kWh load, 2 kWh at 0.15 in the pool: 2 * 0.15 + 1 * 0.1924 = 0.4924 EUR.
    st = settle_period("consumer", 3.0, 0.0, 0.0, hour=13, scheme="bihourly", lem_enabled=True,
                       price_eur_per_kwh=0.15, bought_kwh=2.0)
    assert st.cost_eur == pytest.approx(0.4924, abs=EXACT)
    # Off-peak (23:00), nothing traded (no price): 3 * 0.1023 = 0.3069 EUR, all from the grid.
    st = settle_period("consumer", 3.0, 0.0, 0.0, hour=23, scheme="bihourly", lem_enabled=True,
                       price_eur_per_kwh=None)
    assert st.grid_import_kwh == pytest.approx(3.0, abs=EXACT)
    assert money(st) == pytest.approx((0.3069, 0.0), abs=EXACT)
    # Base case (no LEM), plain: 2.5 kWh * 0.158 = 0.395 EUR.
    st = settle_period("consumer", 2.5, 0.0, 0.0, hour=18, scheme="plain", lem_enabled=False)
    assert money(st) == pytest.approx((0.395, 0.0), abs=EXACT)


# --- prosumers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme, hour", [("plain", 12), ("bihourly", 12), ("bihourly", 7)])
def test_prosumer_surplus_sold_in_the_pool_earns_no_feed_in(scheme, hour):
    # Load 1 kWh, PV 4 kWh: surplus 3 kWh, all sold in the pool at 0.10 EUR/kWh.
    # income = 3 * 0.10 = 0.30 EUR; nothing is left to feed in (paying feed-in on the sold 3 kWh
    # as well would give 0.30 + 3 * 0.045 = 0.435). No purchase, so the tariff plays no part.
    st = settle_period("prosumer", 1.0, 4.0, 0.0, hour=hour, scheme=scheme, lem_enabled=True,
                       price_eur_per_kwh=0.10, sold_kwh=3.0)
    assert energy(st) == pytest.approx((0.0, 3.0, 0.0, 0.0, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((0.0, 0.30), abs=EXACT)


@pytest.mark.parametrize("scheme, hour", [("plain", 11), ("bihourly", 11), ("bihourly", 6)])
def test_prosumer_surplus_partly_sold_feeds_in_only_the_rest(scheme, hour):
    # Load 1 kWh, PV 5 kWh: surplus 4 kWh; 2.5 kWh sold at 0.09, the other 1.5 kWh fed in.
    # income = 2.5 * 0.09 + 1.5 * 0.045 = 0.225 + 0.0675 = 0.2925 EUR
    st = settle_period("prosumer", 1.0, 5.0, 0.0, hour=hour, scheme=scheme, lem_enabled=True,
                       price_eur_per_kwh=0.09, sold_kwh=2.5)
    assert energy(st) == pytest.approx((0.0, 2.5, 0.0, 1.5, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((0.0, 0.2925), abs=EXACT)


@pytest.mark.parametrize("scheme, hour, retail, cost", [
    # Load 4 kWh, PV 1.5 kWh: a deficit of 2.5 kWh; 1 kWh bought at 0.17, 1.5 kWh from the grid.
    ("bihourly", 12, 0.1924, 0.17 + 1.5 * 0.1924),  # 0.4586 EUR
    ("bihourly", 5, 0.1023, 0.17 + 1.5 * 0.1023),  # 0.32345 EUR
    ("plain", 12, 0.158, 0.17 + 1.5 * 0.158),  # 0.407 EUR
])
def test_prosumer_deficit_is_settled_like_a_consumer(scheme, hour, retail, cost):
    st = settle_period("prosumer", 4.0, 1.5, 0.0, hour=hour, scheme=scheme, lem_enabled=True,
                       price_eur_per_kwh=0.17, bought_kwh=1.0)
    assert energy(st) == pytest.approx((1.0, 0.0, 1.5, 0.0, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((cost, 0.0), abs=EXACT)
    assert cost == pytest.approx(0.17 + 1.5 * retail, abs=EXACT)


def test_prosumer_without_a_market_nets_pv_against_load():
    # Surplus 3 kWh (load 1, PV 4): all fed in, 3 * 0.045 = 0.135 EUR.
    st = settle_period("prosumer", 1.0, 4.0, 0.0, hour=12, scheme="bihourly", lem_enabled=False)
    assert energy(st) == pytest.approx((0.0, 0.0, 0.0, 3.0, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((0.0, 0.135), abs=EXACT)
    # Deficit 2 kWh (load 2.5, PV 0.5) at the peak: 2 * 0.1924 = 0.3848 EUR; no feed-in.
    st = settle_period("prosumer", 2.5, 0.5, 0.0, hour=12, scheme="bihourly", lem_enabled=False)
    assert energy(st) == pytest.approx((0.0, 0.0, 2.0, 0.0, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((0.3848, 0.0), abs=EXACT)


# --- CHPs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme, hour", [("plain", 12), ("bihourly", 12), ("bihourly", 2)])
def test_chp_in_the_market_produces_what_it_sold(scheme, hour):
    # 6 kWh accepted at 0.08 EUR/kWh: income 0.48 EUR, nothing to the grid.
    # cost = (4/3) * 0.2 * 6 * sqrt(6 / 1000) = 1.6 * 0.0774597 = 0.1239355 EUR
    st = settle_period("chp", 0.0, 0.0, 10.0, hour=hour, scheme=scheme, lem_enabled=True,
                       price_eur_per_kwh=0.08, sold_kwh=6.0)
    assert energy(st) == pytest.approx((0.0, 6.0, 0.0, 0.0, 6.0), abs=EXACT)
    assert st.income_eur == pytest.approx(0.48, abs=EXACT)
    assert st.cost_eur == pytest.approx(1.6 * 0.006 ** 0.5, abs=EXACT)
    assert st.cost_eur == pytest.approx(0.1239355, abs=1e-7)
    # Nothing accepted: it stays off (no production, no cost, no feed-in).
    st = settle_period("chp", 0.0, 0.0, 10.0, hour=hour, scheme=scheme, lem_enabled=True, price_eur_per_kwh=0.08)
    assert energy(st) == pytest.approx((0.0, 0.0, 0.0, 0.0, 0.0), abs=EXACT)
    assert money(st) == pytest.approx((0.0, 0.0), abs=EXACT)


def test_chp_without_a_market_sells_its_best_output_at_feed_in():
    # The marginal cost 2 * 0.2 * sqrt(G / 1000) meets the 0.045 feed-in at
    # G* = 1000 * (0.045 / 0.4)**2 = 12.65625 kW.
    # 10 kW unit: flat out. income 10 * 0.045 = 0.45; cost (4/3) * 0.2 * 10 * sqrt(0.01) = 0.26667 EUR.
    st = settle_period("chp", 0.0, 0.0, 10.0, hour=12, scheme="bihourly", lem_enabled=False)
    assert energy(st) == pytest.approx((0.0, 0.0, 0.0, 10.0, 10.0), abs=EXACT)
    assert money(st) == pytest.approx((0.8 / 3.0, 0.45), abs=EXACT)
    # 20 kW unit: runs at G* = 12.65625 kW. income 12.65625 * 0.045 = 0.56953125;
    # cost (4/3) * 0.2 * 12.65625 * sqrt(0.01265625) = 3.375 * 0.1125 = 0.3796875 EUR.
    st = settle_period("chp", 0.0, 0.0, 20.0, hour=3, scheme="plain", lem_enabled=False)
    assert energy(st) == pytest.approx((0.0, 0.0, 0.0, 12.65625, 12.65625), abs=EXACT)
    assert money(st) == pytest.approx((0.3796875, 0.56953125), abs=EXACT)


# --- one hour of a real clearing, settled --------------------------------------------------------


@pytest.mark.parametrize("hour, retail", [(12, 0.1924), (4, 0.1023)])
def test_one_cleared_hour_settles_every_kind_by_hand(hour, retail):
    """Consumer (5 kWh), prosumer (load 1, PV 4: offers 3 kWh at feed-in), CHP (10 kW bid at 0.10), bi-hourly.

    The consumer bids 5 kWh at retail (above 0.10 in both bands). Merit order: the prosumer's
    3 kWh at 0.045 first, then 2 of the CHP's 10 kWh at 0.10; the CHP is the partly filled
    marginal offer, so the price is its 0.10 EUR/kWh.
      consumer: 5 * 0.10 = 0.50 EUR paid, nothing from the grid;
      prosumer: 3 * 0.10 = 0.30 EUR earned, nothing fed in;
      CHP:      2 * 0.10 = 0.20 EUR earned; cost (4/3) * 0.2 * 2 * sqrt(0.002) = 0.0238514 EUR.
    The pool's money balances: 0.50 paid = 0.30 + 0.20 earned.
    """
    people = [("consumer", "LOAD1", 5.0, 0.0, 0.0, None), ("prosumer", "LOAD2", 1.0, 4.0, 0.0, None),
              ("chp", "CHP1", 0.0, 0.0, 10.0, 0.10)]
    book = [o for kind, name, load, pv, chp, bid in people
            for o in period_orders(kind, name, load, pv, chp, hour, "bihourly", bid, 0.20)]
    assert [(o.participant, o.side, o.price_eur_per_kwh, o.quantity_kwh) for o in book] == [
        ("LOAD1", "buy", retail, 5.0), ("LOAD2", "sell", 0.045, 3.0), ("CHP1", "sell", 0.10, 10.0)]
    cleared = clear_double_auction(book, solver="merit_order")
    assert cleared.price_eur_per_kwh == pytest.approx(0.10, abs=EXACT)
    assert cleared.accepted_kwh == pytest.approx([5.0, 3.0, 2.0], abs=1e-9)
    accepted = cleared.accepted_by_participant(book)
    settled = {
        name: settle_period(kind, load, pv, chp, hour=hour, scheme="bihourly", lem_enabled=True,
                            price_eur_per_kwh=cleared.price_eur_per_kwh,
                            bought_kwh=accepted.loc[name, "bought_kwh"], sold_kwh=accepted.loc[name, "sold_kwh"])
        for kind, name, load, pv, chp, _ in people
    }
    assert money(settled["LOAD1"]) == pytest.approx((0.50, 0.0), abs=1e-9)
    assert settled["LOAD1"].grid_import_kwh == pytest.approx(0.0, abs=1e-9)
    assert money(settled["LOAD2"]) == pytest.approx((0.0, 0.30), abs=1e-9)
    assert settled["LOAD2"].grid_export_kwh == pytest.approx(0.0, abs=1e-9)
    assert settled["CHP1"].income_eur == pytest.approx(0.20, abs=1e-9)
    assert settled["CHP1"].cost_eur == pytest.approx((0.8 / 3.0) * 2.0 * 0.002 ** 0.5, abs=1e-9)
    assert settled["CHP1"].cost_eur == pytest.approx(0.0238514, abs=1e-7)
    assert settled["CHP1"].chp_kwh == pytest.approx(2.0, abs=1e-9)
    pool_paid = sum(st.lem_bought_kwh for st in settled.values()) * cleared.price_eur_per_kwh
    pool_earned = sum(st.lem_sold_kwh for st in settled.values()) * cleared.price_eur_per_kwh
    assert pool_paid == pytest.approx(pool_earned, abs=1e-12)


# --- many participants at once -------------------------------------------------------------------


@pytest.mark.parametrize("lem, price", [(True, 0.1), (True, None), (False, None)])
@pytest.mark.parametrize("scheme, hour", [("plain", 5), ("bihourly", 12)])
def test_settling_many_at_once_gives_each_ones_numbers_to_the_bit(lem, price, scheme, hour):
    """``settle_members`` is what the participants' federate settles with: every field of every participant equal
    to ``settle_period``'s for that participant alone, bit for bit and sign of zero included (a balanced prosumer's
    surplus is -0.0 in Python's ``max``), over consumers, prosumers short and long, balanced ones and CHPs."""
    import numpy as np

    from lec_cosim.models.lem_community import PeriodSettlement, settle_members

    rng = np.random.default_rng(3)
    n = 40
    kinds = rng.choice(["consumer", "prosumer", "chp"], n)
    load = rng.choice([0.0, 0.7, 1.3, 2.25], n) * (kinds != "chp")
    pv = np.where(kinds == "prosumer", rng.choice([0.0, 0.7, 1.3, 3.1], n), 0.0)
    balanced = np.flatnonzero((kinds == "prosumer") & (load > 0))[:3]
    pv[balanced] = load[balanced]
    chp = np.where(kinds == "chp", rng.choice([5.0, 10.0], n), 0.0)
    bought = np.where(lem, rng.uniform(0, 1, n) * np.maximum(load - pv, 0), 0.0)
    sold = np.where(lem, rng.uniform(0, 1, n) * np.maximum(pv - load, 0) + (kinds == "chp") * chp * 0.5, 0.0)
    many = settle_members(kinds, load, pv, chp, hour=hour, scheme=scheme, lem_enabled=lem, price_eur_per_kwh=price,
                          bought_kwh=bought, sold_kwh=sold)
    assert set(many) == set(PeriodSettlement.__dataclass_fields__)
    for j in range(n):
        one = settle_period(kinds[j], load[j], pv[j], chp[j], hour=hour, scheme=scheme, lem_enabled=lem,
                            price_eur_per_kwh=price, bought_kwh=bought[j], sold_kwh=sold[j])
        for field, values in many.items():
            expected = float(getattr(one, field))
            assert values[j] == expected and np.signbit(values[j]) == np.signbit(expected), (j, kinds[j], field)
