"""Unit tests of the "P2P inside the LEC" framework (lec_cosim.models.p2p).

Prices in EUR/kWh, power in kW, energy in kWh. Every expected number is worked out by hand in the
comments. Plain tariff: import (retail) 0.158, export (feed-in) 0.045.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lec_cosim.models.auction import Order
from lec_cosim.models.bidding import (
    FEED_IN_EUR_PER_KWH,
    PLAIN_EUR_PER_KWH,
    retail_tariff_eur_per_kwh,
)
from lec_cosim.models.p2p import (
    HomePlan,
    clear_lec_pool,
    clear_platform,
    member_caps_and_fees,
    member_orders,
    plan_home,
)

RETAIL = PLAIN_EUR_PER_KWH  # 0.158
FEED_IN = FEED_IN_EUR_PER_KWH  # 0.045
PRICES = {"import_price_eur_per_kwh": RETAIL, "export_price_eur_per_kwh": FEED_IN}


def assert_plan_consistent(plan: HomePlan, load, pv, dt_h, eta, soc0, capacity, power):
    """Energy balance and SoC recursion at every step, bounds, no simultaneous import/export."""
    load, pv = np.asarray(load, float), np.asarray(pv, float)
    balance = load - pv + plan.charge_kw - plan.discharge_kw - (plan.import_kw - plan.export_kw)
    assert np.max(np.abs(balance)) <= 1e-9
    np.testing.assert_allclose(plan.net_kw, plan.import_kw - plan.export_kw, atol=1e-12)
    root = math.sqrt(eta)
    soc_prev = np.concatenate([[soc0], plan.soc_kwh[:-1]])
    recursion = soc_prev + dt_h * (root * plan.charge_kw - plan.discharge_kw / root) - plan.soc_kwh
    assert np.max(np.abs(recursion)) <= 1e-9
    assert np.all(plan.import_kw >= 0) and np.all(plan.export_kw >= 0)
    assert np.all(np.minimum(plan.import_kw, plan.export_kw) == 0)
    assert np.all(plan.charge_kw >= 0) and np.all(plan.charge_kw <= power + 1e-9)
    assert np.all(plan.discharge_kw >= 0) and np.all(plan.discharge_kw <= power + 1e-9)
    assert np.all(plan.soc_kwh >= 0) and np.all(plan.soc_kwh <= capacity + 1e-9)


# --- plan_home -------------------------------------------------------------------------------


def test_without_battery_the_plan_is_the_net_load():
    # net load [-2, 2]: export 2 at noon, import 2 in the evening.
    # cost = 2 * 0.158 - 2 * 0.045 = 0.226
    plan = plan_home([1.0, 2.0], [3.0, 0.0], dt_h=1.0, **PRICES)
    np.testing.assert_allclose(plan.import_kw, [0.0, 2.0])
    np.testing.assert_allclose(plan.export_kw, [2.0, 0.0])
    np.testing.assert_allclose(plan.net_kw, [-2.0, 2.0])
    np.testing.assert_allclose(plan.charge_kw, [0.0, 0.0])
    np.testing.assert_allclose(plan.soc_kwh, [0.0, 0.0])
    assert plan.cost_eur == pytest.approx(0.226, abs=1e-12)


def test_dt_scales_energy_and_cost():
    # 15-minute steps: 4 kW for 0.25 h = 1 kWh at 0.158
    plan = plan_home([4.0], [0.0], dt_h=0.25, **PRICES)
    np.testing.assert_allclose(plan.import_kw, [4.0])
    assert plan.cost_eur == pytest.approx(0.158, abs=1e-12)


def test_noon_surplus_is_stored_for_the_evening():
    # noon: load 1, PV 6 -> 5 kWh surplus; evening: load 5, no PV. 10 kWh / 5 kW battery, lossless,
    # empty now and (default final SoC = initial) empty at the end. Exporting the 5 kWh earns
    # 5 * 0.045 and then importing 5 costs 5 * 0.158: storing saves 0.565, so the plan charges
    # 5 at noon and discharges 5 in the evening; no grid exchange, cost 0.
    plan = plan_home(
        [1.0, 5.0], [6.0, 0.0], dt_h=1.0, **PRICES, battery_kwh=10.0, battery_kw=5.0, battery_efficiency=1.0
    )
    np.testing.assert_allclose(plan.charge_kw, [5.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(plan.discharge_kw, [0.0, 5.0], atol=1e-9)
    np.testing.assert_allclose(plan.soc_kwh, [5.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(plan.import_kw, [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(plan.export_kw, [0.0, 0.0], atol=1e-9)
    assert plan.cost_eur == pytest.approx(0.0, abs=1e-9)
    assert_plan_consistent(plan, [1.0, 5.0], [6.0, 0.0], 1.0, 1.0, 0.0, 10.0, 5.0)


def test_storage_with_losses():
    # round trip 0.81 (0.9 each leg). A stored kWh returns 0.81 kWh, worth 0.81 * 0.158 = 0.128 >
    # 0.045: store all 5 kWh. SoC 5 * 0.9 = 4.5, discharge 4.5 * 0.9 = 4.05 kW, import
    # 5 - 4.05 = 0.95 kWh, cost 0.95 * 0.158 = 0.1501.
    plan = plan_home(
        [1.0, 5.0], [6.0, 0.0], dt_h=1.0, **PRICES, battery_kwh=10.0, battery_kw=5.0, battery_efficiency=0.81
    )
    np.testing.assert_allclose(plan.charge_kw, [5.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(plan.soc_kwh, [4.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(plan.discharge_kw, [0.0, 4.05], atol=1e-9)
    np.testing.assert_allclose(plan.import_kw, [0.0, 0.95], atol=1e-9)
    assert plan.cost_eur == pytest.approx(0.1501, abs=1e-9)


def test_final_soc_constraint():
    # One evening step, load 3, battery holds 2 kWh. Default final SoC = 2: the battery may not
    # be used, import 3 (cost 0.474). With soc_final_kwh=0: discharge 2, import 1 (cost 0.158).
    kwargs = dict(dt_h=1.0, **PRICES, battery_kwh=10.0, battery_kw=5.0, soc_kwh=2.0)
    keep = plan_home([3.0], [0.0], **kwargs)
    np.testing.assert_allclose(keep.import_kw, [3.0], atol=1e-9)
    np.testing.assert_allclose(keep.soc_kwh, [2.0], atol=1e-9)
    assert keep.cost_eur == pytest.approx(0.474, abs=1e-9)
    empty = plan_home([3.0], [0.0], **kwargs, soc_final_kwh=0.0)
    np.testing.assert_allclose(empty.discharge_kw, [2.0], atol=1e-9)
    np.testing.assert_allclose(empty.import_kw, [1.0], atol=1e-9)
    assert empty.cost_eur == pytest.approx(0.158, abs=1e-9)


def test_final_soc_above_initial_is_charged_cheapest():
    # Two steps, no load, import 0.3 then 0.1: reaching 4 kWh from 0 charges in the cheap step.
    plan = plan_home(
        [0.0, 0.0], [0.0, 0.0], dt_h=1.0, import_price_eur_per_kwh=[0.3, 0.1], export_price_eur_per_kwh=0.0,
        battery_kwh=10.0, battery_kw=5.0, soc_final_kwh=4.0,
    )
    np.testing.assert_allclose(plan.charge_kw, [0.0, 4.0], atol=1e-9)
    assert plan.cost_eur == pytest.approx(0.4, abs=1e-9)


def test_bihourly_arbitrage_hand_computed():
    # 24 h, load 1 kW, no PV, lossless 10 kWh / 5 kW battery, empty at both ends. Peak 9..21
    # (13 h at 0.1924), off-peak 0.1023. The battery fills off-peak before 9 and covers 10 of the
    # 13 peak kWh: cost = (11 off-peak load + 10 charged) * 0.1023 + 3 * 0.1924 = 2.7255.
    hours = np.arange(24)
    prices = retail_tariff_eur_per_kwh(hours, "bihourly")
    load, pv = np.ones(24), np.zeros(24)
    plan = plan_home(
        load, pv, dt_h=1.0, import_price_eur_per_kwh=prices, export_price_eur_per_kwh=FEED_IN,
        battery_kwh=10.0, battery_kw=5.0,
    )
    assert plan.cost_eur == pytest.approx(2.7255, abs=1e-9)
    assert plan.charge_kw[:9].sum() == pytest.approx(10.0, abs=1e-9)
    assert plan.discharge_kw[9:22].sum() == pytest.approx(10.0, abs=1e-9)
    assert plan.import_kw[9:22].sum() == pytest.approx(3.0, abs=1e-9)
    assert_plan_consistent(plan, load, pv, 1.0, 1.0, 0.0, 10.0, 5.0)


def test_energy_balance_at_every_step_on_a_day_with_pv_and_losses():
    hours = np.arange(24)
    load = 0.4 + 0.3 * np.sin(hours / 3.0) ** 2 + np.where((hours >= 18) & (hours < 22), 1.5, 0.0)
    pv = np.clip(4.0 * np.sin(np.pi * (hours - 6) / 12.0), 0.0, None)
    plan = plan_home(
        load, pv, dt_h=1.0, import_price_eur_per_kwh=retail_tariff_eur_per_kwh(hours, "bihourly"),
        export_price_eur_per_kwh=FEED_IN, battery_kwh=5.0, battery_kw=2.5, battery_efficiency=0.9,
        soc_kwh=1.0, import_cap_kw=1.0, over_cap_fee_eur_per_kwh=0.2, import_fee_eur_per_kwh=0.01,
    )
    assert_plan_consistent(plan, load, pv, 1.0, 0.9, 1.0, 5.0, 2.5)
    assert plan.soc_kwh[-1] >= 1.0 - 1e-9
    no_battery = plan_home(
        load, pv, dt_h=1.0, import_price_eur_per_kwh=retail_tariff_eur_per_kwh(hours, "bihourly"),
        export_price_eur_per_kwh=FEED_IN, import_cap_kw=1.0, over_cap_fee_eur_per_kwh=0.2,
        import_fee_eur_per_kwh=0.01,
    )
    assert plan.cost_eur < no_battery.cost_eur


def test_over_cap_fee_shifts_import_into_the_battery_earlier():
    # Load 0 then 4 kW, flat 0.158, lossless 10 kWh / 5 kW battery empty at both ends.
    # Without a cap: import 4 in step 2 (cycling would only add the throughput penalty).
    # Cap 2 kW with fee 0.5: import 2 in step 1 into the battery and 2 in step 2, discharge 2;
    # nothing above the cap, cost 4 * 0.158 = 0.632.
    kwargs = dict(dt_h=1.0, **PRICES, battery_kwh=10.0, battery_kw=5.0)
    free = plan_home([0.0, 4.0], [0.0, 0.0], **kwargs)
    np.testing.assert_allclose(free.import_kw, [0.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(free.charge_kw, [0.0, 0.0], atol=1e-9)
    capped = plan_home([0.0, 4.0], [0.0, 0.0], **kwargs, import_cap_kw=2.0, over_cap_fee_eur_per_kwh=0.5)
    np.testing.assert_allclose(capped.import_kw, [2.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(capped.charge_kw, [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(capped.discharge_kw, [0.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(capped.import_over_cap_kw, [0.0, 0.0], atol=1e-9)
    assert capped.cost_eur == pytest.approx(0.632, abs=1e-9)


def test_import_above_the_cap_is_allowed_and_pays_the_fee():
    # No battery, load 5, cap 3, over-cap fee 0.5, fairness fee 0.1 on all import:
    # cost = 5 * (0.158 + 0.1) + 2 * 0.5 = 2.29
    plan = plan_home(
        [5.0], [0.0], dt_h=1.0, **PRICES, import_cap_kw=3.0, over_cap_fee_eur_per_kwh=0.5,
        import_fee_eur_per_kwh=0.1,
    )
    np.testing.assert_allclose(plan.import_kw, [5.0])
    np.testing.assert_allclose(plan.import_over_cap_kw, [2.0])
    assert plan.cost_eur == pytest.approx(2.29, abs=1e-12)


def test_plan_arrays_are_read_only():
    plan = plan_home([1.0], [0.0], dt_h=1.0, **PRICES)
    with pytest.raises(ValueError):
        plan.import_kw[0] = 3.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"battery_kwh": -1.0}, "battery_kwh"),
        ({"battery_kw": -1.0}, "battery_kw"),
        ({"battery_kwh": 5.0, "battery_kw": 2.0, "battery_efficiency": 0.0}, "battery_efficiency"),
        ({"battery_kwh": 5.0, "battery_kw": 2.0, "battery_efficiency": 1.2}, "battery_efficiency"),
        ({"battery_kwh": 5.0, "battery_kw": 2.0, "soc_kwh": 6.0}, "must not exceed battery_kwh"),
        ({"battery_kwh": 5.0, "battery_kw": 1.0, "soc_final_kwh": 4.0}, "cannot be reached"),
        ({"import_price_eur_per_kwh": [0.1, 0.2, 0.3]}, "array of length 2"),
        ({"export_price_eur_per_kwh": 0.2}, "must not exceed import_price"),
        ({"import_cap_kw": -1.0}, "import_cap_kw"),
        ({"import_fee_eur_per_kwh": -0.1}, "import_fee_eur_per_kwh"),
        ({"dt_h": 0.0}, "dt_h"),
    ],
)
def test_plan_home_rejects_bad_input(kwargs, message):
    args = dict(dt_h=1.0, **PRICES)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        plan_home([1.0, 1.0], [0.0, 0.0], **args)


def test_plan_home_rejects_length_mismatch_and_negative_load():
    with pytest.raises(ValueError, match="pv_kw"):
        plan_home([1.0, 1.0], [0.0, 0.0, 0.0], dt_h=1.0, **PRICES)
    with pytest.raises(ValueError, match="load_kw"):
        plan_home([-1.0], [0.0], dt_h=1.0, **PRICES)
    with pytest.raises(ValueError, match="non-empty"):
        plan_home([], [], dt_h=1.0, **PRICES)


# --- member orders and the LEC pool ----------------------------------------------------------


def test_member_orders():
    orders = member_orders({"a": 2.0, "b": -3.0, "c": 0.0}, **PRICES)
    assert orders == [Order("a", "buy", RETAIL, 2.0), Order("b", "sell", FEED_IN, 3.0)]


def test_balanced_pool_clears_at_the_midpoint():
    # need 2 (a), surplus 1 + 1 (b, c): all matched, price (0.158 + 0.045) / 2 = 0.1015
    pool = clear_lec_pool(member_orders({"a": 2.0, "b": -1.0, "c": -1.0, "d": 0.0}, **PRICES), **PRICES)
    assert pool.price_eur_per_kwh == pytest.approx(0.1015, abs=1e-12)
    assert pool.price_eur_per_kwh == pytest.approx((RETAIL + FEED_IN) / 2, abs=1e-12)
    assert pool.volume_kwh == pytest.approx(2.0)
    assert pool.bought_kwh == pytest.approx({"a": 2.0, "b": 0.0, "c": 0.0})
    assert pool.sold_kwh == pytest.approx({"a": 0.0, "b": 1.0, "c": 1.0})
    assert sum(pool.bought_kwh.values()) == pytest.approx(sum(pool.sold_kwh.values()), abs=1e-12)
    assert pool.grid_import_kwh == pytest.approx({"a": 0.0, "b": 0.0, "c": 0.0})
    assert pool.lec_net_kwh == pytest.approx(0.0, abs=1e-12)
    # bills: a pays 2 * 0.1015, b and c receive 0.1015 each
    assert pool.cost_eur == pytest.approx({"a": 0.203, "b": -0.1015, "c": -0.1015})
    assert "d" not in pool.bought_kwh  # a zero net places no order


def test_short_pool_clears_at_the_import_price():
    # need 4 (a), surplus 1 (b): 1 matched; a is the long side of the book, its unserved bid sets
    # the price: 0.158. a buys 3 from the grid through the LEC; LEC residual +3.
    # bills: a 1 * 0.158 + 3 * 0.158 = 0.632, b -0.158
    pool = clear_lec_pool(member_orders({"a": 4.0, "b": -1.0}, **PRICES), **PRICES)
    assert pool.price_eur_per_kwh == pytest.approx(RETAIL)
    assert pool.bought_kwh == pytest.approx({"a": 1.0, "b": 0.0})
    assert pool.sold_kwh == pytest.approx({"a": 0.0, "b": 1.0})
    assert pool.grid_import_kwh == pytest.approx({"a": 3.0, "b": 0.0})
    assert pool.grid_export_kwh == pytest.approx({"a": 0.0, "b": 0.0})
    assert pool.lec_net_kwh == pytest.approx(3.0)
    assert pool.cost_eur == pytest.approx({"a": 0.632, "b": -0.158})


def test_long_pool_clears_at_the_export_price_pro_rata():
    # need 1 (a), surplus 3 (b) + 1 (c): price 0.045; b and c share the 1 kWh pro rata 3:1
    # (0.75, 0.25) and export the rest (2.25, 0.75); LEC residual -3.
    pool = clear_lec_pool(member_orders({"a": 1.0, "b": -3.0, "c": -1.0}, **PRICES), **PRICES)
    assert pool.price_eur_per_kwh == pytest.approx(FEED_IN)
    assert pool.sold_kwh == pytest.approx({"a": 0.0, "b": 0.75, "c": 0.25})
    assert pool.grid_export_kwh == pytest.approx({"a": 0.0, "b": 2.25, "c": 0.75})
    assert sum(pool.bought_kwh.values()) == pytest.approx(sum(pool.sold_kwh.values()), abs=1e-12)
    unmatched = sum(pool.grid_import_kwh.values()) - sum(pool.grid_export_kwh.values())
    assert pool.lec_net_kwh == pytest.approx(unmatched, abs=1e-12)
    assert pool.lec_net_kwh == pytest.approx(-3.0)


def test_pool_without_sellers_sends_everything_to_the_grid():
    pool = clear_lec_pool(member_orders({"a": 1.5, "b": 2.0}, **PRICES), **PRICES)
    assert pool.price_eur_per_kwh is None
    assert pool.volume_kwh == 0.0
    assert pool.grid_import_kwh == pytest.approx({"a": 1.5, "b": 2.0})
    assert pool.lec_net_kwh == pytest.approx(3.5)
    empty = clear_lec_pool([], **PRICES)
    assert empty.price_eur_per_kwh is None and empty.lec_net_kwh == 0.0 and empty.bought_kwh == {}


# --- fairness and caps -----------------------------------------------------------------------


def test_fairness_fee_goes_to_the_largest_importer_and_the_limit_is_shared():
    # limit 12 kW over 4 members: caps 3 kW; b imported most (5 kWh) and pays 0.05
    caps = member_caps_and_fees(
        {"a": 3.0, "b": 5.0, "c": 1.0}, ["a", "b", "c", "d"], lec_import_limit_kw=12.0,
        fairness_fee_eur_per_kwh=0.05,
    )
    assert caps == {"a": (3.0, 0.0), "b": (3.0, 0.05), "c": (3.0, 0.0), "d": (3.0, 0.0)}
    assert list(caps) == ["a", "b", "c", "d"]


def test_fairness_fee_ties_all_pay_and_nobody_pays_without_import():
    tie = member_caps_and_fees(
        {"a": 5.0, "b": 5.0, "c": 2.0}, ["a", "b", "c"], lec_import_limit_kw=math.inf, fairness_fee_eur_per_kwh=0.05
    )
    assert tie == {"a": (math.inf, 0.05), "b": (math.inf, 0.05), "c": (math.inf, 0.0)}
    none = member_caps_and_fees({"a": 0.0}, ["a", "b"], lec_import_limit_kw=10.0, fairness_fee_eur_per_kwh=0.05)
    assert none == {"a": (5.0, 0.0), "b": (5.0, 0.0)}


def test_cap_floor():
    # 2 kW over 4 members would be 0.5 kW each; the floor lifts it to 1 kW
    caps = member_caps_and_fees({}, ["a", "b", "c", "d"], lec_import_limit_kw=2.0, fairness_fee_eur_per_kwh=0.0,
                                cap_floor_kw=1.0)
    assert {cap for cap, _ in caps.values()} == {1.0}


def test_caps_and_fees_reject_bad_input():
    kwargs = {"lec_import_limit_kw": 10.0, "fairness_fee_eur_per_kwh": 0.05}
    with pytest.raises(ValueError, match="not members"):
        member_caps_and_fees({"x": 1.0}, ["a"], **kwargs)
    with pytest.raises(ValueError, match="unique"):
        member_caps_and_fees({}, ["a", "a"], **kwargs)
    with pytest.raises(ValueError, match="non-empty"):
        member_caps_and_fees({}, [], **kwargs)
    with pytest.raises(ValueError, match="lec_import_limit_kw"):
        member_caps_and_fees({}, ["a"], lec_import_limit_kw=-1.0, fairness_fee_eur_per_kwh=0.05)
    with pytest.raises(ValueError, match="previous_import_kwh"):
        member_caps_and_fees({"a": -1.0}, ["a"], **kwargs)


def test_fairness_fee_makes_the_largest_importer_pay_more_next_period():
    # a imported most last period; next period a and b have the same 2 kWh need, a pays 0.05 more
    caps = member_caps_and_fees({"a": 4.0, "b": 1.0}, ["a", "b"], lec_import_limit_kw=10.0,
                                fairness_fee_eur_per_kwh=0.05)
    plans = {
        m: plan_home([2.0], [0.0], dt_h=1.0, **PRICES, import_cap_kw=cap, import_fee_eur_per_kwh=fee)
        for m, (cap, fee) in caps.items()
    }
    assert plans["a"].cost_eur == pytest.approx(2 * (0.158 + 0.05), abs=1e-12)
    assert plans["b"].cost_eur == pytest.approx(2 * 0.158, abs=1e-12)


# --- the inter-LEC platform ------------------------------------------------------------------


def test_balanced_platform_with_wheeling():
    # need 4 (lec1), surplus 3 (lec2) + 1 (lec3); offers at 0.045 + 0.01 = 0.055, bids at 0.158;
    # balanced: price (0.158 + 0.055) / 2 = 0.1065. lec1 pays 4 * 0.1065 = 0.426, lec2 receives
    # 0.3195, lec3 0.1065; wheeling lec2 0.03, lec3 0.01.
    res = clear_platform({"lec1": 4.0, "lec2": -3.0, "lec3": -1.0}, **PRICES, wheeling_fee_eur_per_kwh=0.01)
    assert res.price_eur_per_kwh == pytest.approx(0.1065, abs=1e-12)
    assert res.volume_kwh == pytest.approx(4.0)
    assert res.payment_eur == pytest.approx({"lec1": 0.426, "lec2": -0.3195, "lec3": -0.1065})
    assert sum(res.payment_eur.values()) == pytest.approx(0.0, abs=1e-12)
    assert res.wheeling_eur == pytest.approx({"lec1": 0.0, "lec2": 0.03, "lec3": 0.01})
    assert res.grid_import_kwh == pytest.approx({"lec1": 0.0, "lec2": 0.0, "lec3": 0.0})


def test_short_platform_clears_at_the_import_price():
    # need 5 (lec1), surplus 2 (lec2): 2 traded at 0.158, lec1 imports 3 from the grid;
    # payments lec1 0.316, lec2 -0.316 (sum 0)
    res = clear_platform({"lec1": 5.0, "lec2": -2.0}, **PRICES)
    assert res.price_eur_per_kwh == pytest.approx(RETAIL)
    assert res.bought_kwh == pytest.approx({"lec1": 2.0, "lec2": 0.0})
    assert res.sold_kwh == pytest.approx({"lec1": 0.0, "lec2": 2.0})
    assert res.grid_import_kwh == pytest.approx({"lec1": 3.0, "lec2": 0.0})
    assert res.grid_export_kwh == pytest.approx({"lec1": 0.0, "lec2": 0.0})
    assert res.payment_eur == pytest.approx({"lec1": 0.316, "lec2": -0.316})
    assert sum(res.payment_eur.values()) == pytest.approx(0.0, abs=1e-12)


def test_platform_wheeling_fee_above_the_spread_blocks_trade():
    # offer 0.045 + 0.12 = 0.165 > bid 0.158: nothing trades, everything goes to the grid
    res = clear_platform({"lec1": 2.0, "lec2": -2.0}, **PRICES, wheeling_fee_eur_per_kwh=0.12)
    assert res.price_eur_per_kwh is None
    assert res.volume_kwh == 0.0
    assert res.grid_import_kwh == pytest.approx({"lec1": 2.0, "lec2": 0.0})
    assert res.grid_export_kwh == pytest.approx({"lec1": 0.0, "lec2": 2.0})
    assert res.payment_eur == {"lec1": 0.0, "lec2": 0.0}


def test_lec_off_the_platform_and_zero_positions():
    # lec3 is not on the platform: it does not appear; lec2 is on it with a zero position
    res = clear_platform({"lec1": 1.0, "lec2": 0.0}, **PRICES)
    assert set(res.bought_kwh) == {"lec1", "lec2"}
    assert res.price_eur_per_kwh is None
    assert res.grid_import_kwh == pytest.approx({"lec1": 1.0, "lec2": 0.0})
    with pytest.raises(ValueError, match="wheeling_fee"):
        clear_platform({"lec1": 1.0}, **PRICES, wheeling_fee_eur_per_kwh=-0.01)


# --- the chain: homes -> pool -> platform ----------------------------------------------------


def test_home_plans_pool_and_platform_chain():
    # LEC A: a1 needs 3, a2 has 1 surplus -> pool matches 1 at 0.158, residual +2.
    # LEC B: b1 has 5 surplus, b2 needs 1 -> pool matches 1 at 0.045, residual -4.
    # Platform: need 2 vs surplus 4 -> 2 traded at the export price 0.045; A pays 0.09.
    plans = {
        "a1": plan_home([3.0], [0.0], dt_h=1.0, **PRICES),
        "a2": plan_home([1.0], [2.0], dt_h=1.0, **PRICES),
        "b1": plan_home([0.0], [5.0], dt_h=1.0, **PRICES),
        "b2": plan_home([1.0], [0.0], dt_h=1.0, **PRICES),
    }
    net = {m: float(p.net_kw[0]) * 1.0 for m, p in plans.items()}
    pool_a = clear_lec_pool(member_orders({m: net[m] for m in ("a1", "a2")}, **PRICES), **PRICES)
    pool_b = clear_lec_pool(member_orders({m: net[m] for m in ("b1", "b2")}, **PRICES), **PRICES)
    assert pool_a.lec_net_kwh == pytest.approx(2.0)
    assert pool_a.price_eur_per_kwh == pytest.approx(RETAIL)
    assert pool_b.lec_net_kwh == pytest.approx(-4.0)
    assert pool_b.price_eur_per_kwh == pytest.approx(FEED_IN)
    platform = clear_platform({"A": pool_a.lec_net_kwh, "B": pool_b.lec_net_kwh}, **PRICES)
    assert platform.price_eur_per_kwh == pytest.approx(FEED_IN)
    assert platform.bought_kwh["A"] == pytest.approx(2.0)
    assert platform.grid_export_kwh["B"] == pytest.approx(2.0)
    assert platform.payment_eur == pytest.approx({"A": 0.09, "B": -0.09})
