"""Pool operator federate over a real broker: 64 bidders on 16 test federates send order messages.

The federate is a component: it is run here under a plan of the test's own, with keys and endpoint
names no study uses (its inbox, each bidder's endpoint, where the book goes, its price and volume
keys), all of which it must take from its config. The books are solved by hand; every hour the
federate must answer every bidder (orders stamped T + 1 ms, results read at T + 3 ms) without
anyone waiting for a reply. The local market's plan wires it to its 61 players and the recorder.
"""

import math
from dataclasses import replace

import pandas as pd
import pytest
from harness import TestFederate, arrive_all, enter_all, plan_under_test, write_scenario

from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.wiring import (
    DISPATCH_OFFSET_S,
    MARKET_ENDPOINT,
    MARKET_OFFSET_S,
    ORDER_OFFSET_S,
    RECORDER_ENDPOINT,
    SLOT_PERIOD_S,
    all_participants,
    participant_endpoint,
    plan,
)
from lec_cosim.wiring import FederatePlan, Signal, federate_config

N_FEDERATES, PER_FEDERATE = 16, 4
BIDDERS = [f"B{i:02d}" for i in range(N_FEDERATES * PER_FEDERATE)]
BUYERS, SELLERS = BIDDERS[:60], BIDDERS[60:]


def book(hour: int) -> dict[str, list[dict]]:
    """Orders of every bidder in ``hour`` (EUR/kWh, kWh)."""
    def order(side, price, qty):
        return {"side": side, "price_eur_per_kwh": price, "quantity_kwh": qty}

    orders = {name: [] for name in BIDDERS}
    if hour == 0:  # 60 kWh demand at retail; supply 20 @ 0.04, 20 @ 0.045, 2 x 15 @ 0.10 (a tie)
        for name in BUYERS:
            orders[name] = [order("buy", 0.158, 1.0)]
        for name, (price, qty) in zip(SELLERS, [(0.04, 20.0), (0.045, 20.0), (0.10, 15.0), (0.10, 15.0)]):
            orders[name] = [order("sell", price, qty)]
    elif hour == 1:  # no crossing: bids at 0.05, offers at 0.06
        for name in BUYERS[:10]:
            orders[name] = [order("buy", 0.05, 1.0)]
        orders[SELLERS[0]] = [order("sell", 0.06, 5.0)]
    elif hour == 3:  # demand only
        orders[BUYERS[0]] = [order("buy", 0.158, 2.0)]
    return orders  # hour 2: an empty book


POOL = "clearing/house"  # names no study uses: the component must take every one from its config
BOOK_TO = "watch/books"
PRICE_KEY, VOLUME_KEY = "clearing/uniform_price", "clearing/traded"


def bidder_endpoint(name: str) -> str:
    return f"bidders/{name}"


def pool_plan(scenario, solver: str) -> FederatePlan:
    """The pool operator wired by this test, as a study's plan would wire it."""
    return FederatePlan(
        "pool", "federates.lem_market", scenario.market_step_s, MARKET_OFFSET_S,
        [Signal(PRICE_KEY, port="price_eur_per_kwh"), Signal(VOLUME_KEY, port="volume_kwh")], [], [POOL],
        {"solver": solver}, endpoint_ports={"orders": POOL},
        targets={"results": {name: bidder_endpoint(name) for name in BIDDERS}, "book": BOOK_TO})


def test_the_local_market_wires_the_pool_to_every_player_and_the_recorder(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {"participants.federates": 3}))
    config = federate_config(next(f for f in plan(scenario) if f.name == "market"), "", tmp_path)
    settings = config["lec_cosim"]
    ports = settings["ports"]
    assert settings["module"] == "federates.lem_market" and settings["solver"] == scenario.market.solver
    assert ports["endpoints"] == {"orders": MARKET_ENDPOINT} and [e["name"] for e in config["endpoints"]] == [
        MARKET_ENDPOINT]
    players = all_participants(scenario)
    assert len(players) == 61
    assert ports["targets"] == {"results": {p: participant_endpoint(p) for p in players}, "book": RECORDER_ENDPOINT}
    assert ports["out"] == {"price_eur_per_kwh": {"key": "lem/market/price_eur_per_kwh", "type": "double"},
                            "volume_kwh": {"key": "lem/market/volume_kwh", "type": "double"}}
    # every player's group sends its orders to the pool's inbox, from the player's own endpoint
    groups = [f for f in plan(scenario) if f.name.startswith("participants_")]
    assert len(groups) == 3
    for group in groups:
        group_ports = federate_config(group, "", tmp_path)["lec_cosim"]["ports"]
        assert group_ports["targets"] == {"orders": MARKET_ENDPOINT}
        assert group_ports["endpoints"] == {p: participant_endpoint(p) for p in group.settings["participants"]}


EXPECTED = {  # hour -> (price, {bidder: accepted kWh})
    0: (0.10, {**{b: 1.0 for b in BUYERS}, **dict(zip(SELLERS, [20.0, 20.0, 10.0, 10.0]))}),
    1: (None, {}), 2: (None, {}), 3: (None, {}),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("solver", ["merit_order", "glpk"])
def test_market_clears_each_hour_and_answers_every_bidder(tmp_path, solver):
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": 4, "market.solver": solver, "market.chp_strategy": "truthful", "market.learned_bids_file": None})
    scenario = load_scenario(path)
    results, books, prices = {}, {}, {}
    with plan_under_test(pool_plan(scenario, solver), scenario, tmp_path / "run", N_FEDERATES + 1) as port:
        bidders = []
        for f in range(N_FEDERATES):
            names = BIDDERS[f * PER_FEDERATE:(f + 1) * PER_FEDERATE]
            fed = TestFederate(f"bidders_{f}", port, period=SLOT_PERIOD_S, offset=ORDER_OFFSET_S,
                               endpoints=[bidder_endpoint(n) for n in names])
            fed.names = names
            bidders.append(fed)
        observer = TestFederate("observer", port, period=SLOT_PERIOD_S, offset=DISPATCH_OFFSET_S,
                                endpoints=[BOOK_TO], subscriptions=[(PRICE_KEY, "double"), (VOLUME_KEY, "double")])
        enter_all(*bidders, observer)
        for hour in range(4):
            T = hour * 3600.0
            # Every test federate must have a request outstanding, or the others cannot be granted.
            observer.request(T)  # T + 3 ms
            arrive_all(bidders, T)  # T + 1 ms
            orders = book(hour)
            for fed in bidders:
                for name in fed.names:
                    fed.send(bidder_endpoint(name), POOL,
                             {"period": hour, "participant": name, "orders": orders[name]})
            arrive_all(bidders, T + 0.002)  # results are read at T + 3 ms
            observer.arrive(T)
            for fed in bidders:
                for name in fed.names:
                    results[hour, name] = fed.receive(bidder_endpoint(name))
            books[hour] = observer.receive(BOOK_TO)
            prices[hour] = (observer.value(PRICE_KEY), observer.value(VOLUME_KEY))
        for fed in [*bidders, observer]:
            fed.close()

    for hour in range(4):
        price, accepted = EXPECTED[hour]
        assert len(books[hour]) == 1
        record = books[hour][0][1]
        assert record["period"] == hour
        volume = sum(v for name, v in accepted.items() if name in BUYERS)
        assert record["volume_kwh"] == pytest.approx(volume, abs=1e-9)
        if price is None:
            assert record["price_eur_per_kwh"] is None and math.isnan(prices[hour][0])
        else:
            assert record["price_eur_per_kwh"] == pytest.approx(price, abs=1e-12)
            assert prices[hour][0] == pytest.approx(price, abs=1e-12)
        assert prices[hour][1] == pytest.approx(volume, abs=1e-9)
        for name in BIDDERS:
            messages = results[hour, name]
            assert len(messages) == 1, (hour, name)  # everyone is answered, bids or not
            source, reply = messages[0]
            assert source == POOL and reply["period"] == hour
            got = sum(o["accepted_kwh"] for o in reply["orders"])
            assert got == pytest.approx(accepted.get(name, 0.0), abs=1e-9)
            assert reply["price_eur_per_kwh"] == (None if price is None else pytest.approx(price, abs=1e-12))
    # Bilateral allocation of hour 0: each seller delivers to each buyer in proportion (x_ij = g_i d_j / V).
    _, reply = results[0, SELLERS[2]][0]
    assert reply["allocation_kwh"] == pytest.approx({b: -10.0 / 60.0 for b in BUYERS})
    _, reply = results[0, BUYERS[0]][0]
    assert reply["allocation_kwh"] == pytest.approx(dict(zip(SELLERS, [20 / 60, 20 / 60, 10 / 60, 10 / 60])))
    factors = books[0][0][1]["allocation"]  # the book's allocation as its factors: x_ij = sold_i bought_j / V
    assert factors["sellers"] == SELLERS and factors["buyers"] == BUYERS and factors["volume_kwh"] == 60.0
    assert factors["sold_kwh"] == pytest.approx([20.0, 20.0, 10.0, 10.0]) and sum(factors["bought_kwh"]) == 60.0


@pytest.mark.timeout(120)
def test_players_sharing_an_endpoint_get_one_answer_and_the_same_book(tmp_path):
    """Half the bidders share one endpoint and send one message (in reverse order); the rest one each. The shared
    endpoint gets one answer with each of its players' results, the book is in participant-name order whatever
    the messages, and with ``bidder_allocation`` off the answers carry no allocation (the book still does)."""
    shared, alone = BIDDERS[::2], BIDDERS[1::2]  # buyers and sellers on both sides
    group = "bidders/group"
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": 1, "market.chp_strategy": "truthful", "market.learned_bids_file": None})
    scenario = load_scenario(path)
    pool = pool_plan(scenario, "merit_order")
    pool.targets["results"] = {name: group if name in shared else bidder_endpoint(name) for name in BIDDERS}
    with plan_under_test(pool, scenario, tmp_path / "run", 2, settings={"bidder_allocation": False}) as port:
        together = TestFederate("together", port, period=SLOT_PERIOD_S, offset=ORDER_OFFSET_S, endpoints=[group])
        apart = TestFederate("apart", port, period=SLOT_PERIOD_S, offset=ORDER_OFFSET_S,
                             endpoints=[bidder_endpoint(n) for n in alone] + [BOOK_TO])
        enter_all(together, apart)
        arrive_all([together, apart], 0.0)
        orders = book(0)
        together.send(group, POOL, {"period": 0, "participants": {n: orders[n] for n in reversed(shared)}})
        for name in alone:
            apart.send(bidder_endpoint(name), POOL, {"period": 0, "participant": name, "orders": orders[name]})
        arrive_all([together, apart], 0.002)
        answers = together.receive(group)
        single = {name: apart.receive(bidder_endpoint(name)) for name in alone}
        books = apart.receive(BOOK_TO)
        together.close()
        apart.close()

    price, accepted = EXPECTED[0]
    assert len(answers) == 1
    source, answer = answers[0]
    assert source == POOL and answer["period"] == 0 and answer["price_eur_per_kwh"] == pytest.approx(price, abs=1e-12)
    assert sorted(answer["results"]) == sorted(shared)
    for name, result in answer["results"].items():
        assert set(result) == {"orders"}  # no allocation for the bidders
        assert sum(o["accepted_kwh"] for o in result["orders"]) == pytest.approx(accepted.get(name, 0.0), abs=1e-9)
    for name, messages in single.items():
        assert len(messages) == 1 and set(messages[0][1]) == {"period", "price_eur_per_kwh", "orders"}
        assert sum(o["accepted_kwh"] for o in messages[0][1]["orders"]) == pytest.approx(accepted.get(name, 0.0),
                                                                                          abs=1e-9)
    record = books[0][1]
    traders = [o["participant"] for o in record["orders"]]
    assert traders == sorted(traders) and len(traders) == sum(len(o) for o in orders.values())
    assert sum(record["allocation"]["sold_kwh"]) == pytest.approx(60.0) == record["allocation"]["volume_kwh"]


def test_one_message_per_group_clears_the_same_market_as_one_per_player(tmp_path):
    """Case 1 with three participant federates: orders and results one message per group instead of one per
    player give the same CSVs byte for byte (the book is cleared in participant-name order either way)."""
    from lec_cosim.inproc import run_inproc

    runs = {}
    for messages in ("per_player", "per_group"):
        scenario = load_scenario(write_scenario(tmp_path / messages, "ieee_eu_lv_lem_plain", {
            "horizon_h": 8, "participants.federates": 3, "participants.messages": messages}))
        run_inproc(scenario, tmp_path / messages / "run", timeout_s=300)
        runs[messages] = tmp_path / messages / "run"
    csvs = sorted(p.name for p in runs["per_player"].glob("*.csv"))
    assert {"orders.csv", "clearing.csv", "settlement.csv", "allocation.csv"} <= set(csvs)
    for name in csvs:
        assert (runs["per_group"] / name).read_bytes() == (runs["per_player"] / name).read_bytes(), name
    sent = {m: pd.read_csv(runs[m] / "timing" / "participants_1.csv").messages_sent.max() for m in runs}
    assert sent == {"per_player": 21, "per_group": 1}  # 21 of the 61 players in the first group: one message each


@pytest.mark.timeout(120)
def test_a_step_of_several_periods_clears_each_periods_pool_as_alone(tmp_path):
    """``periods_per_step`` 4 (as a day's hours with ``resolution.exchange: day``): one message per bidder (or one
    for a shared endpoint) holds the four hours' orders as [side, price, quantity]; each hour's pool clears as the
    hourly steps clear it (``EXPECTED``), each message gets one answer with the four hours' prices and its accepted
    kWh per order in the order sent, the book goes as one message of the four hours' rows as columns, and price and
    volume are vectors of the four hours."""
    shared, alone = BIDDERS[::2], BIDDERS[1::2]
    group = "bidders/group"
    hours = [0, 1, 2, 3]
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": 4, "market.chp_strategy": "truthful", "market.learned_bids_file": None})
    scenario = load_scenario(path)
    pool = replace(pool_plan(scenario, "merit_order"), period_s=4 * scenario.market_step_s,
                   publications=[Signal(PRICE_KEY, "vector", port="price_eur_per_kwh"),
                                 Signal(VOLUME_KEY, "vector", port="volume_kwh")])
    pool.targets["results"] = {name: group if name in shared else bidder_endpoint(name) for name in BIDDERS}

    def lean(name):  # the four hours' orders of a bidder, [side, price, quantity] each
        return [[[o["side"], o["price_eur_per_kwh"], o["quantity_kwh"]] for o in book(h)[name]] for h in hours]

    with plan_under_test(pool, scenario, tmp_path / "run", 2, settings={"periods_per_step": 4}) as port:
        together = TestFederate("together", port, period=SLOT_PERIOD_S, offset=ORDER_OFFSET_S, endpoints=[group])
        apart = TestFederate("apart", port, period=SLOT_PERIOD_S, offset=ORDER_OFFSET_S,
                             endpoints=[bidder_endpoint(n) for n in alone] + [BOOK_TO],
                             subscriptions=[(PRICE_KEY, "vector"), (VOLUME_KEY, "vector")])
        enter_all(together, apart)
        arrive_all([together, apart], 0.0)
        together.send(group, POOL, {"periods": hours, "participants": {n: lean(n) for n in reversed(shared)}})
        for name in alone:
            apart.send(bidder_endpoint(name), POOL, {"periods": hours, "participant": name, "orders": lean(name)})
        arrive_all([together, apart], 0.002)
        answers = together.receive(group)
        single = {name: apart.receive(bidder_endpoint(name)) for name in alone}
        book_messages = apart.receive(BOOK_TO)
        prices, volumes = apart.vector(PRICE_KEY), apart.vector(VOLUME_KEY)
        together.close()
        apart.close()

    assert len(answers) == 1 and answers[0][1]["periods"] == hours
    assert sorted(answers[0][1]["results"]) == sorted(shared)
    assert len(book_messages) == 1 and book_messages[0][1]["periods"] == hours
    record = book_messages[0][1]
    rows = pd.DataFrame(record["orders"])
    assert list(rows.columns) == ["period", "participant", "side", "price_eur_per_kwh", "quantity_kwh",
                                  "accepted_kwh"]
    assert len(rows) == sum(len(orders) for h in hours for orders in book(h).values())
    for h in hours:
        price, accepted = EXPECTED[h]
        volume = sum(v for name, v in accepted.items() if name in BUYERS)
        assert record["volume_kwh"][h] == pytest.approx(volume, abs=1e-9) == volumes[h]
        in_hour = rows[rows["period"] == h]
        assert list(in_hour["participant"]) == sorted(in_hour["participant"])  # participant-name order
        assert in_hour.groupby("participant")["accepted_kwh"].sum().to_dict() == pytest.approx(
            {name: accepted.get(name, 0.0) for name in in_hour["participant"].unique()}, abs=1e-9)
        answer_price = answers[0][1]["price_eur_per_kwh"][h]
        if price is None:
            assert answer_price is None and record["price_eur_per_kwh"][h] is None and math.isnan(prices[h])
        else:
            assert answer_price == pytest.approx(price, abs=1e-12) == prices[h] == record["price_eur_per_kwh"][h]
        for name, result in answers[0][1]["results"].items():
            assert set(result) == {"accepted_kwh", "allocation_kwh"}
            assert len(result["accepted_kwh"][h]) == len(book(h)[name])  # one per order sent
            assert sum(result["accepted_kwh"][h]) == pytest.approx(accepted.get(name, 0.0), abs=1e-9)
        for name, messages in single.items():
            assert len(messages) == 1 and messages[0][1]["periods"] == hours, name
            mine = messages[0][1]
            assert set(mine) == {"periods", "price_eur_per_kwh", "accepted_kwh", "allocation_kwh"}
            assert sum(mine["accepted_kwh"][h]) == pytest.approx(accepted.get(name, 0.0), abs=1e-9)
    # hour 0's bilateral allocation, as an hourly step gives it
    assert single[SELLERS[1]][0][1]["allocation_kwh"][0] == pytest.approx({b: -20.0 / 60.0 for b in BUYERS})
