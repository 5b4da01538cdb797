"""Reuse: the three-LEC p2p study clears its LEC pools with the local market's pool operator.

With ``p2p.market: pool_operator`` (``scenarios/ieee_eu_lv_three_lecs_pool.yaml``) one federate per
LEC runs ``federates/lem_market.py``, the local market's own component, unchanged: the members send
it their orders, it answers each of them and sends the LEC_EMS the book, which the LEC_EMS settles
instead of clearing the pool itself (``p2p.market: ems``, the default). Real HELICS federates, the
shipped day with hourly grid steps: the pool operators' run in this process (``lec_cosim.inproc``: the same
federate programs and configs as threads on HELICS's in-process core, results byte-identical to ``lec-cosim
run``; a process per federate made it about 15 s, mostly start-up). The run with the LEC_EMSs' own pools is the
shipped three-LEC scenario run with ``--framework p2p``, which other test files read too (``harness.shared_runs``):
the pool scenario is that scenario but for its pool operators.

What differs and why: nothing in the results. Both clear the same book by the same rule, the
uniform-price double auction of :func:`lec_cosim.models.auction.clear_double_auction` on its
merit-order path (needs bid at the import price, surpluses offered at the export price, the
midpoint rule for the price), and both settle it with :func:`lec_cosim.models.lec_pool.settle_pool`.
The operator books the orders in the order they arrive, the LEC_EMS in its members' order, and the
merit order sums the quantities of a price level in that order: the pro-rata shares can differ in
the last bit (about 1e-16 kWh), nothing more. Only the federation differs: three more federates and
2 x 55 + 3 more messages an hour (the orders to the operators, their answers and their books).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from harness import SHARED_RUNS, shared_run

from lec_cosim.models.auction import Order, clear_double_auction
from lec_cosim.models.lec_pool import (
    clear_lec_pool,
    member_orders,
    pool_from_book,
    pool_order_message,
)
from lec_cosim.models.multi_lec_ems import hourly_tariffs, members_from_scenario
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.three_lecs.wiring import plan
from lec_cosim.wiring import federate_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scenarios" / "ieee_eu_lv_three_lecs_pool.yaml"
HOURS = 24
LECS = ["lec1", "lec2", "lec3"]
OPERATORS = ["pool_operator_1", "pool_operator_2", "pool_operator_3"]
EMS = ["lec_ems_1", "lec_ems_2", "lec_ems_3"]


def scenario_file(directory: Path, market: str) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    data["horizon_h"] = HOURS
    data["resolution"]["grid_min"] = 60
    data["p2p"]["market"] = market
    data["feeder"]["data_dir"] = str((SHIPPED.parent / data["feeder"]["data_dir"]).resolve())
    data["pv"]["profile_file"] = str((SHIPPED.parent / data["pv"]["profile_file"]).resolve())
    path = directory / f"three_lecs_{market}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory) -> dict[str, Path]:
    """The pool cleared by the pool operators (in this process) and by the LEC_EMSs (the shared p2p run, made at
    the same time if no other test has made it yet)."""
    from concurrent.futures import ThreadPoolExecutor

    from lec_cosim.inproc import run_inproc

    directory = tmp_path_factory.mktemp("pool_operator")
    out = directory / "run"
    path = scenario_file(directory, "pool_operator")
    with ThreadPoolExecutor(1) as pool:
        shared = pool.submit(shared_run, tmp_path_factory, "three_lecs_p2p")
        run_inproc(load_scenario(path), out, timeout_s=300)
        ems_path, ems_out = shared.result()
    # the same scenario but for the pool operators: the shared run is the pool scenario clearing in the LEC_EMSs
    ems = load_scenario(ems_path).model_copy(update={"framework": "p2p"})
    assert ems.p2p.market == "ems" and SHARED_RUNS["three_lecs_p2p"][2] == ["--framework", "p2p"]
    mine = load_scenario(scenario_file(directory, "ems"))
    assert (ems.model_dump(exclude={"name", "description"}) == mine.model_dump(exclude={"name", "description"})), \
        "the shared p2p run is not the pool scenario with p2p.market: ems"
    return {"pool_operator": out, "ems": ems_out}


@pytest.fixture(scope="module")
def operator_run(both_runs) -> Path:
    return both_runs["pool_operator"]


@pytest.fixture(scope="module")
def ems_run(both_runs) -> Path:
    return both_runs["ems"]


def read(run_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / name)


def records(run_dir: Path) -> dict:
    lines = (run_dir / "ems_records.jsonl").read_text().splitlines()
    return {(r["hour"], r["lec"]): r for r in map(json.loads, lines)}


def graph(run_dir: Path) -> dict:
    return json.loads((run_dir / "federation_graph.json").read_text())


# --- the model: the operator's order format and its book ------------------------------------------


def test_a_member_s_order_in_the_operator_s_format_is_its_pool_order():
    def message(net):
        return pool_order_message("LOAD7", net, period=3, import_price_eur_per_kwh=0.2,
                                  export_price_eur_per_kwh=0.045)

    assert message(1.5) == {"period": 3, "participant": "LOAD7",
                            "orders": [{"side": "buy", "price_eur_per_kwh": 0.2, "quantity_kwh": 1.5}]}
    assert message(-0.5)["orders"] == [{"side": "sell", "price_eur_per_kwh": 0.045, "quantity_kwh": 0.5}]
    assert message(0.0)["orders"] == []  # still sent: the member hears the pool's answer


@pytest.mark.parametrize("net", [{"A": 3.0, "B": -1.0, "C": -1.0, "D": 0.0},  # need > surplus: import price
                                 {"A": 1.0, "B": -2.0, "C": -2.0},            # surplus > need: export price
                                 {"A": 2.0, "B": -2.0},                      # balanced: the midpoint
                                 {"A": 2.0, "B": 1.0}])                      # buyers only: no trade
def test_settling_the_operator_s_book_gives_the_ems_s_own_pool(net):
    prices = {"import_price_eur_per_kwh": 0.2, "export_price_eur_per_kwh": 0.045}
    orders = [Order(m, o["side"], o["price_eur_per_kwh"], o["quantity_kwh"])
              for m, x in net.items() for o in pool_order_message(m, x, period=0, **prices)["orders"]]
    cleared = clear_double_auction(orders, solver="merit_order")  # what the operator runs, then its book
    book = {"period": 0, "price_eur_per_kwh": cleared.price_eur_per_kwh, "volume_kwh": cleared.volume_kwh,
            "orders": [{"participant": o.participant, "side": o.side, "price_eur_per_kwh": o.price_eur_per_kwh,
                        "quantity_kwh": o.quantity_kwh, "accepted_kwh": float(a)}
                       for o, a in zip(orders, cleared.accepted_kwh)]}
    book = json.loads(json.dumps(book))  # as it travels
    settled = pool_from_book(book, **prices)
    own = clear_lec_pool(member_orders(net, **prices), **prices)
    assert settled.price_eur_per_kwh == own.price_eur_per_kwh
    for field in ("volume_kwh", "lec_net_kwh"):
        assert getattr(settled, field) == getattr(own, field)
    for field in ("bought_kwh", "sold_kwh", "grid_import_kwh", "grid_export_kwh", "cost_eur"):
        assert getattr(settled, field) == getattr(own, field), field


# --- the plan: the local market's component, wired by the three-LEC study -------------------------


def test_each_lec_gets_the_local_market_s_pool_operator_wired_to_its_members_and_its_ems(tmp_path):
    scenario = load_scenario(SHIPPED)
    feds = {p.name: federate_config(p, "", tmp_path) for p in plan(scenario)}
    endpoints = {e["name"] for c in feds.values() for e in c["endpoints"]}
    lec_of = members_from_scenario(scenario).table.query("kind == 'household'").set_index("member")["lec"]
    for k, (operator, lec) in enumerate(zip(OPERATORS, LECS), start=1):
        settings = feds[operator]["lec_cosim"]
        assert settings["module"] == "federates.lem_market" and settings["solver"] == "merit_order"
        ports = settings["ports"]
        assert ports["endpoints"] == {"orders": f"mlec/{lec}/pool"}
        assert ports["targets"]["results"] == {m: f"mlec/member/{m}" for m in lec_of[lec_of == lec].index}
        # the book goes to the LEC_EMS's market endpoint, where its members' plans arrive
        assert ports["targets"]["book"] == f"mlec/{lec}/market"
        assert ports["targets"]["book"] in feds[f"lec_ems_{k}"]["lec_cosim"]["ports"]["endpoints"].values()
        assert set(ports["out"]) == {"price_eur_per_kwh", "volume_kwh"}
        assert feds[f"lec_ems_{k}"]["lec_cosim"]["pool"] == "settle_book"
        assert feds[operator]["offset"] == pytest.approx(0.0025) and feds[operator]["period"] == 3600
    households = feds["households"]["lec_cosim"]
    assert households["pool_operator"] is True
    assert households["ports"]["targets"]["pool"] == {lec: f"mlec/{lec}/pool" for lec in LECS}
    for config in feds.values():
        for target in config["lec_cosim"].get("ports", {}).get("targets", {}).values():
            assert set(target.values() if isinstance(target, dict) else [target]) <= endpoints
    assert set(OPERATORS) <= set(feds["recorder"]["lec_cosim"]["federates"])
    # The default clears in the LEC_EMS: no operator, the shipped study's federation as before.
    default = {p.name: p for p in plan(load_scenario(ROOT / "scenarios" / "ieee_eu_lv_three_lecs.yaml")
                                       .model_copy(update={"framework": "p2p"}))}
    assert not set(OPERATORS) & set(default) and default["lec_ems_1"].settings["pool"] == "clear_orders"
    assert default["households"].settings["pool_operator"] is False


# --- the run with the pool operators ----------------------------------------------------------------


def test_every_pool_balances_and_the_members_settlements_add_up(operator_run):
    t = read(operator_run, "p2p_trades.csv")
    assert sorted(t["hour"].unique()) == list(range(HOURS)) and len(t) == 55 * HOURS
    pools = t.groupby(["hour", "lec"])
    np.testing.assert_allclose(pools["bought_kwh"].sum(), pools["sold_kwh"].sum(), atol=1e-9)
    traded = t[t["bought_kwh"] > 0]
    assert traded["bought_kwh"].sum() > 20, "hardly any trade inside the LECs"
    assert traded.groupby(["hour", "lec"]).ngroups >= 8
    # every member's own order is what its pool and the grid split between them
    np.testing.assert_allclose(t["net_kwh"], t["bought_kwh"] - t["sold_kwh"] + t["grid_import_kwh"]
                               - t["grid_export_kwh"], atol=1e-9)
    # money: the pool only moves money among the members; the rest is the grid's tariff
    scenario = load_scenario(operator_run / "scenario.json")
    retail, feed_in = hourly_tariffs(members_from_scenario(scenario), "bihourly", 0.045)
    price = t["price_eur_per_kwh"].fillna(0.0)
    pool_payment = price * (t["bought_kwh"] - t["sold_kwh"])
    assert pool_payment.groupby([t["hour"], t["lec"]]).sum().abs().max() < 1e-9
    np.testing.assert_allclose(t["cost_eur"], pool_payment + retail[t["hour"]] * t["grid_import_kwh"]
                               - feed_in[t["hour"]] * t["grid_export_kwh"], atol=1e-12)
    # the price: the import price when needs exceed surpluses, the export price when surpluses do
    for (hour, _), rows in traded.groupby(["hour", "lec"]):
        pool = t[(t["hour"] == hour) & (t["lec"] == rows["lec"].iloc[0])]
        assert rows["price_eur_per_kwh"].nunique() == 1
        p = rows["price_eur_per_kwh"].iloc[0]
        if pool["grid_import_kwh"].sum() > 1e-9:
            assert p == pytest.approx(retail[hour])
        elif pool["grid_export_kwh"].sum() > 1e-9:
            assert p == pytest.approx(feed_in[hour])
    # The LECs' residuals meet on the platform, settled as in every p2p run.
    s = read(operator_run, "settlement.csv")
    balance = s["net_kwh"] - s["exchange_in_kwh"] + s["exchange_out_kwh"]
    np.testing.assert_allclose(balance, s["grid_import_kwh"] - s["grid_export_kwh"], atol=1e-9)


def test_members_trade_through_their_lec_s_pool_operator_and_it_answers_every_one(operator_run):
    g = graph(operator_run)
    scenario = load_scenario(operator_run / "scenario.json")
    lec_of = members_from_scenario(scenario).table.query("kind == 'household'").set_index("member")["lec"]
    sent = {(m["source"], m["destination"]): m["count"] for m in g["federates"]["households"]["messages"]
            if m["source"].startswith("mlec/member/")}  # not the households' measurements for the LEC_EMSs
    assert len(sent) == 2 * 55  # every member: its plan to the LEC_EMS, its order to the operator
    for member, lec in lec_of.items():
        assert sent[(f"mlec/member/{member}", f"mlec/{lec}/market")] == HOURS
        assert sent[(f"mlec/member/{member}", f"mlec/{lec}/pool")] == HOURS
    for operator, lec in zip(OPERATORS, LECS):
        out = {m["destination"]: m["count"] for m in g["federates"][operator]["messages"]}
        members = lec_of[lec_of == lec].index
        assert out == {**{f"mlec/member/{m}": HOURS for m in members}, f"mlec/{lec}/market": HOURS}
    links = {(m["source"], m["destination"]) for m in g["messages"] if m["count"] > 0}
    assert {(o, e) for o, e in zip(OPERATORS, EMS)} <= links
    assert {("households", o) for o in OPERATORS} | {(o, "households") for o in OPERATORS} <= links
    assert not any(a in OPERATORS and b in OPERATORS for a, b in links)
    # The book the LEC_EMS recorded is the operator's: its price and volume, every hour.
    for (hour, lec), r in records(operator_run).items():
        trades = pd.DataFrame(r["trades"])
        assert r["pool_volume_kwh"] == pytest.approx(trades["bought_kwh"].sum(), abs=1e-12)


# --- the comparison with the LEC_EMS's own pool -----------------------------------------------------


def test_the_pool_operator_gives_the_results_of_the_ems_s_own_pool(operator_run, ems_run):
    """Same rule, same book: equal results (module docstring); only the federation grows."""
    for name in ("p2p_trades.csv", "settlement.csv", "exchanges.csv", "members.csv", "lecs.csv", "grid.csv"):
        a, b = read(operator_run, name), read(ems_run, name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9, obj=name)
    a, b = records(operator_run), records(ems_run)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["pool_price_eur_per_kwh"] == b[key]["pool_price_eur_per_kwh"], key
        assert a[key]["pool_volume_kwh"] == pytest.approx(b[key]["pool_volume_kwh"], rel=1e-12, abs=1e-12), key
        for x, y in zip(a[key]["trades"], b[key]["trades"], strict=True):
            assert x.keys() == y.keys()
            assert (x["member"], x["price_eur_per_kwh"]) == (y["member"], y["price_eur_per_kwh"]), key
            numbers = [k for k in x if k not in ("member", "price_eur_per_kwh")]
            assert [x[k] for k in numbers] == pytest.approx([y[k] for k in numbers], rel=1e-12, abs=1e-12), key
        assert a[key]["pooled_charge_kw"] == pytest.approx(b[key]["pooled_charge_kw"], rel=1e-9, abs=1e-9)
    ka, kb = (json.loads((r / "summary.json").read_text())["kpis"] for r in (operator_run, ems_run))
    for kpi in ("total_cost_eur", "self_sufficiency", "grid_import_kwh", "grid_export_kwh", "exchanged_kwh",
                "p2p_volume_kwh", "p2p_fees_eur", "trafo_peak_kw", "losses_kwh"):
        assert ka[kpi] == pytest.approx(kb[kpi], rel=1e-9, abs=1e-9), kpi
    # the federation: three operators more, and per hour 55 orders, 55 answers and 3 books more
    assert set(graph(operator_run)["federates"]) - set(graph(ems_run)["federates"]) == set(OPERATORS)
    assert ka["messages"] - kb["messages"] == (2 * 55 + 3) * HOURS
