"""The three-LEC p2p study with a continuous double auction in each LEC (``p2p.market: continuous``), end to end.

The shipped scenario ``scenarios/ieee_eu_lv_three_lecs_cda.yaml`` on its first six hours with hourly grid steps,
as an in-process federation (``lec_cosim.inproc``: the same federate programs on HELICS's in-process core; about
8 s). The members trade from hour 3 on. Checked on the results the run writes: each LEC's energy and money balances
every hour, the trades against the members' settlement, the auction's volume and welfare against the uniform-price
pool of the same orders (cleared beside it every hour), the arrival order drawn from the seed, and the KPIs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.inproc import run_inproc
from lec_cosim.models.continuous_auction import MIN_TRADE_KWH, arrival_order
from lec_cosim.models.multi_lec_ems import hourly_tariffs, members_from_scenario
from lec_cosim.scenario import load_scenario, write_scenario_variant
from lec_cosim.studies.three_lecs.wiring import plan

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scenarios" / "ieee_eu_lv_three_lecs_cda.yaml"
HOURS = 6
LECS = ["lec1", "lec2", "lec3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cda")
    path = write_scenario_variant(SHIPPED, {"horizon_h": HOURS, "resolution.grid_min": 60}, directory)
    out = directory / "run"
    run_inproc(load_scenario(path), out, timeout_s=300)
    return out


def read(run_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / name)


def test_the_scenario_chooses_the_auction_in_the_lec_ems_s_own_pool_code_path():
    scenario = load_scenario(SHIPPED)
    assert (scenario.framework, scenario.p2p.market, scenario.p2p.arrival_seed) == ("p2p", "continuous", 0)
    plans = {p.name: p for p in plan(scenario)}
    assert not any(name.startswith("pool_operator") for name in plans)
    for k in range(1, 4):
        assert plans[f"lec_ems_{k}"].module == "federates.mlec_ems"
        assert plans[f"lec_ems_{k}"].settings["pool"] == "clear_continuous"
    assert plans["recorder"].settings["tables"] == ["p2p_trades", "cda_trades"]
    # the default market records no auction tables
    pool = {p.name: p for p in plan(scenario.model_copy(update={"p2p": scenario.p2p.model_copy(
        update={"market": "ems"})}))}
    assert pool["recorder"].settings["tables"] == ["p2p_trades"]


def test_every_lec_balances_energy_and_money_every_hour(run):
    t = read(run, "p2p_trades.csv")
    assert sorted(t["hour"].unique()) == list(range(HOURS)) and len(t) == 55 * HOURS
    pools = t.groupby(["hour", "lec"])
    np.testing.assert_allclose(pools["bought_kwh"].sum(), pools["sold_kwh"].sum(), atol=1e-9)
    np.testing.assert_allclose(t["net_kwh"], t["bought_kwh"] - t["sold_kwh"] + t["grid_import_kwh"]
                               - t["grid_export_kwh"], atol=1e-9)
    # money: each member at its own trades' mean price; what members pay, members receive, within each LEC
    scenario = load_scenario(run / "scenario.json")
    retail, feed_in = hourly_tariffs(members_from_scenario(scenario), "bihourly", 0.045)
    payment = t["price_eur_per_kwh"].fillna(0.0) * (t["bought_kwh"] - t["sold_kwh"])
    assert payment.groupby([t["hour"], t["lec"]]).sum().abs().max() < 1e-9
    np.testing.assert_allclose(t["cost_eur"], payment + retail[t["hour"]] * t["grid_import_kwh"]
                               - feed_in[t["hour"]] * t["grid_export_kwh"], atol=1e-12)
    assert t.loc[(t["bought_kwh"] + t["sold_kwh"]) == 0, "price_eur_per_kwh"].isna().all()
    # so each LEC's members pay, together, its residual at the tariffs: what the pool of the same orders costs
    lec = t.groupby(["hour", "lec"])
    residual = lec.apply(lambda g: retail[g.name[0]] * g["grid_import_kwh"].sum()
                         - feed_in[g.name[0]] * g["grid_export_kwh"].sum(), include_groups=False)
    np.testing.assert_allclose(lec["cost_eur"].sum(), residual, atol=1e-12)
    # the LECs' residuals meet on the platform, as in every p2p run
    s = read(run, "settlement.csv")
    balance = s["net_kwh"] - s["exchange_in_kwh"] + s["exchange_out_kwh"]
    np.testing.assert_allclose(balance, s["grid_import_kwh"] - s["grid_export_kwh"], atol=1e-9)


def test_the_trades_add_up_to_the_members_settlement(run):
    trades, t = read(run, "p2p_cda_trades.csv"), read(run, "p2p_trades.csv")
    assert len(trades) >= 10 and set(trades["lec"]) == set(LECS)
    assert (trades["quantity_kwh"] > 0).all() and set(trades["maker_side"]) <= {"buy", "sell"}
    for (hour, lec), rows in trades.groupby(["hour", "lec"]):
        assert rows["sequence"].tolist() == list(range(len(rows)))
    money = trades["quantity_kwh"] * trades["price_eur_per_kwh"]
    member = t.set_index(["hour", "member"])
    for column, who in (("bought_kwh", "buyer"), ("sold_kwh", "seller")):
        kwh = trades.groupby(["hour", who])["quantity_kwh"].sum()
        np.testing.assert_allclose(kwh, member.loc[kwh.index, column], atol=1e-12)
        paid = money.groupby([trades["hour"], trades[who]]).sum()
        np.testing.assert_allclose(paid, (member.loc[paid.index, "price_eur_per_kwh"]
                                          * member.loc[paid.index, column]), atol=1e-12)
    # each trade at the maker's limit: a buyer's at the retail price, a seller's at the feed-in price
    scenario = load_scenario(run / "scenario.json")
    retail, feed_in = hourly_tariffs(members_from_scenario(scenario), "bihourly", 0.045)
    expected = np.where(trades["maker_side"] == "buy", retail[trades["hour"]], feed_in[trades["hour"]])
    np.testing.assert_allclose(trades["price_eur_per_kwh"], expected, atol=0)


def test_the_auction_trades_the_pool_s_volume_and_welfare_every_hour(run):
    h = read(run, "p2p_cda_vs_pool.csv")
    assert len(h) == HOURS * len(LECS)
    np.testing.assert_allclose(h["cda_volume_kwh"], h["pool_volume_kwh"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h["cda_welfare_eur"], h["pool_welfare_eur"], rtol=1e-12, atol=1e-12)
    assert h["cda_volume_kwh"].sum() > 5
    traded = h[h["trades"] > 0]  # trades of at least MIN_TRADE_KWH: rounding-level ones set no price
    assert (traded["cda_price_min_eur_per_kwh"] <= traded["cda_price_mean_eur_per_kwh"] + 1e-15).all()
    assert (traded["cda_price_mean_eur_per_kwh"] <= traded["cda_price_max_eur_per_kwh"] + 1e-15).all()
    assert h.loc[h["trades"] == 0, "cda_price_mean_eur_per_kwh"].isna().all()
    trades = read(run, "p2p_cda_trades.csv")
    volume = trades.groupby(["hour", "lec"])["quantity_kwh"].sum()
    every = h.set_index(["hour", "lec"])
    np.testing.assert_allclose(volume, every.loc[volume.index, "cda_volume_kwh"], atol=1e-12)
    real = trades[trades["quantity_kwh"] >= MIN_TRADE_KWH].groupby(["hour", "lec"]).size()
    np.testing.assert_array_equal(real, every.loc[real.index, "trades"])


def test_the_arrival_order_is_the_seed_s_draw_for_the_hour_and_the_lec(run):
    t = read(run, "p2p_trades.csv")
    lines = (run / "ems_records.jsonl").read_text().splitlines()
    for record in map(json.loads, lines):
        hour, lec = record["hour"], record["lec"]
        rows = t[(t["hour"] == hour) & (t["lec"] == lec)]
        ordering = rows.loc[rows["net_kwh"] != 0, "member"].tolist()  # one order per member with a net
        drawn = arrival_order(len(ordering), seed=0, period=hour, stream=LECS.index(lec))
        assert record["cda_arrival"] == [ordering[i] for i in drawn], (hour, lec)


def test_the_summary_reports_the_auction_against_the_pool_and_its_price_spread(run):
    k = json.loads((run / "summary.json").read_text())["kpis"]
    trades, h = read(run, "p2p_cda_trades.csv"), read(run, "p2p_cda_vs_pool.csv")
    assert k["p2p_cda_trades"] == (trades["quantity_kwh"] >= MIN_TRADE_KWH).sum() > 0
    trades = trades[trades["quantity_kwh"] >= MIN_TRADE_KWH]  # the price statistics leave rounding out
    assert k["p2p_cda_volume_kwh"] == pytest.approx(k["p2p_pool_counterfactual_volume_kwh"], rel=1e-12)
    assert k["p2p_cda_volume_kwh"] == pytest.approx(k["p2p_volume_kwh"], rel=1e-12)
    assert k["p2p_cda_welfare_eur"] == pytest.approx(h["pool_welfare_eur"].sum(), rel=1e-9)  # CSV: 10 digits
    assert k["p2p_cda_efficiency_ratio"] == pytest.approx(1.0, abs=1e-12)
    w = trades["quantity_kwh"]
    mean = np.average(trades["price_eur_per_kwh"], weights=w)
    assert k["p2p_cda_price_mean_eur_per_kwh"] == pytest.approx(mean)
    assert k["p2p_cda_price_std_eur_per_kwh"] == pytest.approx(
        np.sqrt(np.average((trades["price_eur_per_kwh"] - mean) ** 2, weights=w)))
    assert k["p2p_cda_price_min_eur_per_kwh"] == trades["price_eur_per_kwh"].min()
    assert k["p2p_cda_price_max_eur_per_kwh"] == trades["price_eur_per_kwh"].max()
    members = read(run, "p2p_cda_members.csv")
    assert len(members) == 55
    assert members["paid_eur"].sum() == pytest.approx(members["received_eur"].sum(), rel=1e-9)  # CSV: 10 digits
    prices = pd.concat([members["buy_price_mean_eur_per_kwh"], members["sell_price_mean_eur_per_kwh"]]).dropna()
    assert k["p2p_cda_member_price_min_eur_per_kwh"] == pytest.approx(prices.min())
    assert k["p2p_cda_member_price_max_eur_per_kwh"] == pytest.approx(prices.max())
