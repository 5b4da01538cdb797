"""Recorder federate of a local-market run over a real broker: test federates play everyone else.

Two hours of eight quarter-hour steps. Two test participant groups publish every vector (the
physical ones each step at t + 3 ms, the settlement ones at hour starts), a test market sends the
recorder the book of each hour at T + 2 ms (hour 0 clears, hour 1 has demand but nothing trades)
and a test DSO publishes every ``lem/grid/...`` double and integer at t + 4 ms. The numbers are
made up by formula; every file of the results contract must hold exactly them, and the KPIs must
equal sums done here by hand.
"""

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from harness import TestFederate, enter_all, federate_under_test, write_scenario

from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.wiring import (
    DISPATCH_OFFSET_S,
    DSO_COUNTS,
    DSO_DAY_COUNTS,
    DSO_DOUBLES,
    DSO_OFFSET_S,
    MARKET_DOUBLES,
    MARKET_ENDPOINT,
    MARKET_OFFSET_S,
    PARTICIPANT_VECTORS,
    RECORDER_ENDPOINT,
    SETTLEMENT_VECTORS,
    groups,
    plan,
)

HORIZON_H = 2
STEP_S = 900
N_STEPS = HORIZON_H * 4
START = dt.datetime(2016, 5, 26)
CHPS = [f"CHP{k}" for k in range(1, 7)]


def stamp(seconds: float) -> str:
    return (START + dt.timedelta(seconds=seconds)).isoformat()


def number(name: str) -> int:
    """0..54 for LOAD1..LOAD55, 55..60 for CHP1..CHP6."""
    return int(name[4:]) - 1 if name.startswith("LOAD") else 54 + int(name[3:])


def physical(name: str, k: int) -> dict[str, float]:
    """Injections of ``name`` in grid step ``k`` (kW, kvar)."""
    i = number(name)
    load = 1.0 + 0.01 * i + 0.25 * k
    pv = 0.0 if name.startswith("CHP") else 0.02 * i * (k % 4)
    chp = 5.0 + k if name.startswith("CHP") else 0.0
    return {"load_kw": load, "load_kvar": 0.33 * load, "pv_kw": pv, "chp_kw": chp, "net_kw": load - pv - chp}


def money(name: str, hour: int) -> dict[str, float]:
    """Settlement of ``name`` in ``hour`` (kWh, EUR)."""
    i = number(name)
    return {"lem_bought_kwh": 0.1 * i + hour, "lem_sold_kwh": 0.05 * i, "grid_import_kwh": 0.2 + hour,
            "grid_export_kwh": 0.3 * hour, "chp_kwh": (i - 50.0 + hour) if name.startswith("CHP") else 0.0,
            "cost_eur": 0.01 * i + 0.1 * hour, "income_eur": 0.02 * i * (hour + 1) + (0.5 * i % 3)}


def grid_values(k: int) -> dict:
    """What the DSO publishes in step ``k``."""
    return {"vm_min_pu": 0.95 - 0.01 * k, "vm_max_pu": 1.02 + 0.005 * k, "p_loss_kw": 1.0 + k,
            "q_loss_kvar": 0.5 * k, "dn_impact": 0.1 * k, "trafo_p_kw": 50.0 - 10.0 * k,
            "bus_violations": k % 3, "bus_violations_reduced": k % 2, "angle_violations": int(k == 5),
            "line_overloads": k // 4,
            "violated_buses_so_far": [0, 0, 2, 3, 3, 5, 5, 7][k],
            "violated_buses_so_far_reduced": [0, 0, 1, 1, 1, 2, 2, 3][k]}


def order(participant, side, price, quantity, accepted):
    return {"participant": participant, "side": side, "price_eur_per_kwh": price, "quantity_kwh": quantity,
            "accepted_kwh": accepted}


BOOKS = [  # exactly what federates/lem_market.py sends the recorder
    {"period": 0, "price_eur_per_kwh": 0.12, "volume_kwh": 3.0,
     "orders": [order("LOAD1", "buy", 0.158, 2.0, 2.0), order("LOAD4", "buy", 0.158, 1.5, 1.0),
                order("CHP1", "sell", 0.045, 2.5, 2.5), order("CHP2", "sell", 0.12, 4.0, 0.5)],
     # the allocation as its factors: x_ij = sold_i bought_j / volume
     "allocation": {"sellers": ["CHP1", "CHP2"], "sold_kwh": [2.5, 0.5], "buyers": ["LOAD1", "LOAD4"],
                    "bought_kwh": [2.0, 1.0], "volume_kwh": 3.0}},
    # demand in the book, nothing trades: not cleared
    {"period": 1, "price_eur_per_kwh": None, "volume_kwh": 0.0,
     "orders": [order("LOAD1", "buy", 0.05, 1.0, 0.0), order("CHP3", "sell", 0.06, 5.0, 0.0)],
     "allocation": {"sellers": [], "sold_kwh": [], "buyers": [], "bought_kwh": [], "volume_kwh": 0.0}},
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("exchange, write_allocation", [("step", None), ("period", None), ("period", False)])
def test_lem_recorder_writes_what_it_was_sent_and_the_kpis(tmp_path, exchange, write_allocation):
    """``market.write_allocation`` false: no allocation.csv, every other file the same (default: written, 61
    participants are below the 2,500 it is left out above)."""
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": HORIZON_H, "participants.federates": 2,
        "market.chp_strategy": "truthful", "market.learned_bids_file": None,
        "resolution.exchange": exchange, "market.write_allocation": write_allocation})
    scenario = load_scenario(path)
    assert scenario.start == START and scenario.grid_step_s == STEP_S and scenario.market_step_s == 3600
    members = groups(scenario)
    assert list(members) == ["participants_1", "participants_2"]
    order_all = [m for names in members.values() for m in names]
    assert len(order_all) == 61
    recorder = next(f for f in plan(scenario) if f.name == "recorder")
    # the generic recorder running the local market's record, which reads its inputs by port
    assert recorder.module == "federates.recorder"
    assert recorder.settings["record"] == "lec_cosim.studies.local_market.results:LocalMarketRecord"
    assert recorder.endpoint_ports == {"book": RECORDER_ENDPOINT}
    assert [s.port for s in recorder.subscriptions] == (
        [f"{g}/{v}" for g in members for v in PARTICIPANT_VECTORS + SETTLEMENT_VECTORS]
        + [f"grid/{v}" for v in DSO_DOUBLES + DSO_COUNTS + DSO_DAY_COUNTS] + [f"market/{v}" for v in MARKET_DOUBLES])
    sub_types = {s.key: s.type for s in recorder.subscriptions}
    dso_keys = {f"lem/grid/{v}": sub_types[f"lem/grid/{v}"] for v in DSO_DOUBLES + DSO_COUNTS + DSO_DAY_COUNTS}
    block = recorder.settings["block_steps"]  # grid steps per exchange: an hour's four, or one
    assert block == (4 if exchange == "period" else 1) and recorder.period_s == block * STEP_S
    assert {dso_keys[f"lem/grid/{v}"] for v in DSO_COUNTS + DSO_DAY_COUNTS} == (
        {"integer"} if block == 1 else {"vector"})
    assert recorder.endpoints == [RECORDER_ENDPOINT]

    with federate_under_test("recorder", scenario, tmp_path / "run", len(members) + 2) as port:
        stand_ins = {g: TestFederate(f"test_{g}", port, period=block * STEP_S, offset=DISPATCH_OFFSET_S,
                                     publications=[(f"lem/{g}/{v}", "vector")
                                                   for v in PARTICIPANT_VECTORS + SETTLEMENT_VECTORS])
                     for g in members}
        market = TestFederate("test_market", port, period=3600, offset=MARKET_OFFSET_S,
                              endpoints=[MARKET_ENDPOINT],
                              publications=[(f"lem/market/{v}", "double") for v in MARKET_DOUBLES])
        dso = TestFederate("test_dso", port, period=block * STEP_S, offset=DSO_OFFSET_S,
                           publications=list(dso_keys.items()))
        everyone = [*stand_ins.values(), market, dso]
        enter_all(*everyone)
        for k in range(0, N_STEPS, block):
            t = k * float(STEP_S)
            block_steps = range(k, k + block)
            hour_start = k % 4 == 0
            # Every test federate with an endpoint must have a request outstanding.
            if hour_start:
                market.request(t)  # T + 2 ms
            for fed in [*stand_ins.values(), dso]:
                fed.request(t)  # t + 3 ms, t + 4 ms
            if hour_start:
                hour = k // 4
                market.arrive(t)
                book = BOOKS[hour]
                market.send(MARKET_ENDPOINT, RECORDER_ENDPOINT, book)
                price = book["price_eur_per_kwh"]
                market.publish("lem/market/price_eur_per_kwh", math.nan if price is None else price)
                market.publish("lem/market/volume_kwh", book["volume_kwh"])
            for g, fed in stand_ins.items():
                fed.arrive(t)
                for v in PARTICIPANT_VECTORS:  # step-major over the block
                    fed.publish(f"lem/{g}/{v}", [physical(n, j)[v] for j in block_steps for n in members[g]])
                if hour_start:
                    rows = [money(n, k // 4) for n in members[g]]
                    for v in SETTLEMENT_VECTORS:
                        fed.publish(f"lem/{g}/{v}", [r[v] for r in rows])
            dso.arrive(t)
            for key, kind in dso_keys.items():
                name = key.rsplit("/", 1)[1]
                if kind == "integer":
                    dso.publish_int(key, grid_values(k)[name])
                elif kind == "vector":
                    dso.publish(key, [float(grid_values(j)[name]) for j in block_steps])
                else:
                    dso.publish(key, grid_values(k)[name])
        # The end of the horizon: lets the recorder take its last step and finish.
        for fed in everyone:
            fed.request(N_STEPS * float(STEP_S))
        for fed in everyone:
            fed.granted()
            fed.close()

    run = tmp_path / "run"
    community = community_from_scenario(scenario)
    table = community.table.set_index("participant")
    hours = [stamp(3600 * h) for h in range(HORIZON_H)]
    steps = [stamp(STEP_S * k) for k in range(N_STEPS)]

    # --- the market's books ----------------------------------------------------------------------------
    orders = pd.read_csv(run / "orders.csv")
    assert list(orders.columns) == ["time", "participant", "side", "price", "quantity_kwh", "accepted_kwh"]
    sent = [(hours[b["period"]], o["participant"], o["side"], o["price_eur_per_kwh"], o["quantity_kwh"],
             o["accepted_kwh"]) for b in BOOKS for o in b["orders"]]
    assert [tuple(r)[:3] for r in orders.itertuples(index=False)] == [s[:3] for s in sent]
    assert orders[["price", "quantity_kwh", "accepted_kwh"]].to_numpy().tolist() == [
        pytest.approx(s[3:], abs=1e-12) for s in sent]

    clearing_text = (run / "clearing.csv").read_text().splitlines()
    assert clearing_text == ["time,price,volume_kwh", f"{hours[0]},0.12,3.0", f"{hours[1]},,0.0"]
    clearing = pd.read_csv(run / "clearing.csv")
    assert clearing.price.iloc[0] == 0.12 and math.isnan(clearing.price.iloc[1])

    if write_allocation is False:
        assert not (run / "allocation.csv").exists()
    else:
        allocation = pd.read_csv(run / "allocation.csv")
        assert list(allocation.columns) == ["time", "seller", "buyer", "energy_kwh"]
        # every seller to every buyer, seller by seller: 2.5 x 2 / 3, 2.5 x 1 / 3, 0.5 x 2 / 3, 0.5 x 1 / 3 kWh
        assert [tuple(r)[:3] for r in allocation.itertuples(index=False)] == [
            (hours[0], "CHP1", "LOAD1"), (hours[0], "CHP1", "LOAD4"), (hours[0], "CHP2", "LOAD1"),
            (hours[0], "CHP2", "LOAD4")]
        assert allocation.energy_kwh.tolist() == pytest.approx([5 / 3, 5 / 6, 1 / 3, 1 / 6], abs=1e-12)

    # --- per grid step: households.csv in the recorder's participant order -------------------------------
    households = pd.read_csv(run / "households.csv")
    assert list(households.columns) == ["time", "participant", "bus", "phase", "load_kw", "pv_kw", "chp_kw",
                                        "battery_kw", "net_kw"]
    assert len(households) == N_STEPS * 61
    assert households.time.tolist() == [s for s in steps for _ in order_all]
    assert households.participant.tolist() == order_all * N_STEPS
    assert households.bus.tolist() == [int(table.loc[n, "bus"]) for n in order_all] * N_STEPS
    assert households.phase.tolist() == [table.loc[n, "phase"] for n in order_all] * N_STEPS
    assert set(households.loc[households.participant.str.startswith("CHP"), "phase"]) == {"abc"}
    for v in ("load_kw", "pv_kw", "chp_kw", "net_kw"):
        expected = [physical(n, k)[v] for k in range(N_STEPS) for n in order_all]
        assert households[v].tolist() == pytest.approx(expected, abs=1e-12), v
    assert (households.battery_kw == 0.0).all()

    # --- per hour: settlement.csv, energy.csv ------------------------------------------------------------
    settlement = pd.read_csv(run / "settlement.csv")
    assert list(settlement.columns) == ["time", "participant", *SETTLEMENT_VECTORS]
    assert settlement.time.tolist() == [h for h in hours for _ in order_all]
    assert settlement.participant.tolist() == order_all * HORIZON_H
    for v in SETTLEMENT_VECTORS:
        expected = [money(n, h)[v] for h in range(HORIZON_H) for n in order_all]
        assert settlement[v].tolist() == pytest.approx(expected, abs=1e-12), v

    energy = pd.read_csv(run / "energy.csv")
    assert list(energy.columns) == ["time", "load_kwh", "pv_kwh", "chp_kwh", "lem_bought_kwh", "lem_sold_kwh",
                                    "grid_import_kwh", "grid_export_kwh"]
    assert energy.time.tolist() == hours
    for h in range(HORIZON_H):
        row = energy.iloc[h]
        quarter = range(4 * h, 4 * h + 4)
        assert row.load_kwh == pytest.approx(sum(physical(n, k)["load_kw"] * 0.25 for k in quarter for n in order_all))
        assert row.pv_kwh == pytest.approx(sum(physical(n, k)["pv_kw"] * 0.25 for k in quarter for n in order_all))
        for v in ("chp_kwh", "lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh", "grid_export_kwh"):
            assert row[v] == pytest.approx(sum(money(n, h)[v] for n in order_all)), (h, v)
    # by hand: 61 loads of 1 + 0.01 i in hour 0 with 0.25 k for k = 0..3 averaged (0.375)
    assert energy.load_kwh.iloc[0] == pytest.approx(61 * 1.0 + 0.01 * sum(range(61)) + 61 * 0.375)

    # --- the day per participant: participants.csv in the community table's order ------------------------
    participants = pd.read_csv(run / "participants.csv")
    assert list(participants.columns) == ["participant", "kind", "bus", "phase", "cost_eur", "income_eur",
                                          "profit_eur", "lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh",
                                          "grid_export_kwh", "chp_kwh"]
    assert participants.participant.tolist() == community.table.participant.tolist()
    assert participants.kind.tolist() == community.table.kind.tolist()
    assert participants.bus.tolist() == community.table.bus.astype(int).tolist()
    assert participants.phase.tolist() == community.table.phase.tolist()
    for _, row in participants.iterrows():
        day = {v: sum(money(row.participant, h)[v] for h in range(HORIZON_H)) for v in SETTLEMENT_VECTORS}
        for v, value in day.items():
            assert row[v] == pytest.approx(value, abs=1e-12), (row.participant, v)
        assert row.profit_eur == pytest.approx(day["income_eur"] - day["cost_eur"], abs=1e-12)

    # --- per grid step: grid.csv -------------------------------------------------------------------------
    grid = pd.read_csv(run / "grid.csv")
    assert list(grid.columns) == ["time", "vm_min_pu", "vm_max_pu", "bus_violations", "line_overloads",
                                  "p_loss_kw", "q_loss_kvar", "bus_violations_reduced", "angle_violations",
                                  "dn_impact", "trafo_p_kw", "violated_buses_so_far",
                                  "violated_buses_so_far_reduced"]
    assert grid.time.tolist() == steps
    for v in DSO_DOUBLES:
        assert grid[v].tolist() == pytest.approx([grid_values(k)[v] for k in range(N_STEPS)], abs=1e-12), v
    for v in DSO_COUNTS + DSO_DAY_COUNTS:
        assert grid[v].dtype.kind == "i", v
        assert grid[v].tolist() == [grid_values(k)[v] for k in range(N_STEPS)], v

    # --- summary.json: KPIs by hand ----------------------------------------------------------------------
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scenario"] == "ieee_eu_lv_lem_plain" and summary["framework"] == "local_market"
    assert summary["lem_enabled"] is True and summary["chp_strategy"] == "truthful"
    assert summary["start"] == hours[0] and summary["horizon_h"] == HORIZON_H
    assert summary["grid_step_h"] == 0.25 and summary["market_step_h"] == 1.0
    kpis = summary["kpis"]
    kind = dict(zip(community.table.participant, community.table.kind))
    names = {"consumers_prosumers": [n for n in order_all if kind[n] != "chp"],
             "producers": [n for n in order_all if kind[n] == "chp"], "total": order_all}
    assert sorted(names["producers"]) == CHPS
    for group, who in names.items():
        cost = sum(money(n, h)["cost_eur"] for n in who for h in range(HORIZON_H))
        income = sum(money(n, h)["income_eur"] for n in who for h in range(HORIZON_H))
        assert kpis[group]["cost_eur"] == pytest.approx(cost), group
        assert kpis[group]["income_eur"] == pytest.approx(income), group
        assert kpis[group]["profit_eur"] == pytest.approx(income - cost), group
    # p_loss 1..8 kW over eight quarter hours; q_loss 0.5 k
    assert kpis["losses_kwh"] == pytest.approx(sum(1.0 + k for k in range(N_STEPS)) * 0.25) == pytest.approx(9.0)
    assert kpis["losses_kvarh"] == pytest.approx(sum(0.5 * k for k in range(N_STEPS)) * 0.25)
    assert kpis["bus_violations"] == 0 + 1 + 2 + 0 + 1 + 2 + 0 + 1 == 7
    assert kpis["bus_violations_reduced"] == 4
    assert kpis["angle_violations"] == 1 and kpis["line_overloads"] == 4
    assert kpis["violated_buses"] == 7 and kpis["violated_buses_reduced"] == 3  # the last cumulative values
    dn_impact = sum(0.1 * k for k in range(N_STEPS))
    assert kpis["dn_impact"] == pytest.approx(dn_impact) == pytest.approx(2.8)
    assert kpis["vm_min_pu"] == pytest.approx(0.95 - 0.07) and kpis["vm_max_pu"] == pytest.approx(1.02 + 0.035)
    assert kpis["lem_volume_kwh"] == pytest.approx(3.0)
    assert kpis["load_kwh"] == pytest.approx(energy.load_kwh.sum())
    assert kpis["pv_kwh"] == pytest.approx(energy.pv_kwh.sum())
    for v in ("chp_kwh", "grid_import_kwh", "grid_export_kwh"):
        assert kpis[v] == pytest.approx(sum(money(n, h)[v] for n in order_all for h in range(HORIZON_H))), v
    assert kpis["not_cleared_hours"] == 1
    profit = np.array([sum(money(n, h)["income_eur"] - money(n, h)["cost_eur"] for h in range(HORIZON_H))
                       for n in CHPS])
    mean = sum(profit) / 6
    std = math.sqrt(sum((p - mean) ** 2 for p in profit) / 6)  # ddof = 0
    assert std > 0.1  # the CHPs' profits differ, so the std term counts
    assert kpis["fitness"] == pytest.approx(-mean + std + 1e4 * 1 + dn_impact, abs=1e-9)


@pytest.mark.parametrize("grid_min, block", [(60, 1), (15, 4)])  # an hour's four grid steps as one exchange
def test_tables_written_a_day_at_a_time_are_the_tables_written_at_once(tmp_path, grid_min, block):
    """Over more than a day the record appends its big tables (households, settlement, orders, allocation) a day
    at a time while the run goes on; fed the same three days of made-up values, a record without an output folder
    (everything written at the end) writes the same bytes in every file and the same KPIs."""
    from lec_cosim.studies.local_market.results import STREAM_EVERY_PERIODS, LocalMarketRecord

    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {
        "horizon_h": 72, "resolution.grid_min": grid_min, "market.write_allocation": True}))
    names = community_from_scenario(scenario).names
    settings = {"groups": {"g": names}, "block_steps": block, "grid_counts": list(DSO_COUNTS + DSO_DAY_COUNTS)}

    class Inputs:  # what the recorder's ports hold at step k: made-up but different every step
        ports = [f"grid/{v}" for v in (*DSO_DOUBLES, *DSO_COUNTS, *DSO_DAY_COUNTS)]

        def __init__(self, k):
            self.k, self.rng = k, np.random.default_rng(k)

        def read(self, port):
            if port.startswith("grid/"):
                values = (self.rng.integers(0, 9, block).astype(float) if port[5:] in settings["grid_counts"]
                          else self.rng.random(block))
                return values if block > 1 else float(values[0])
            if port.split("/")[-1] in SETTLEMENT_VECTORS:  # once an hour
                return self.rng.random(len(names)) * (1 + self.k % 5)
            return self.rng.random(block * len(names)) * (1 + self.k % 5)  # each grid step of the exchange

        def receive(self, port):
            sellers, buyers = names[:3], names[5:9]
            orders = [{"participant": n, "side": "sell" if n in sellers else "buy", "price_eur_per_kwh": 0.1 + i / 100,
                       "quantity_kwh": 1.0 + self.k, "accepted_kwh": float(i % 2)} for i, n in enumerate(sellers + buyers)]
            sold, bought = self.rng.random(3), self.rng.random(4)
            return [("market", {"period": self.k, "price_eur_per_kwh": None if self.k % 7 == 3 else 0.12,
                                "volume_kwh": 2.0, "orders": orders,
                                "allocation": {"sellers": sellers, "sold_kwh": list(sold), "buyers": buyers,
                                               "bought_kwh": list(bought / bought.sum() * sold.sum()),
                                               "volume_kwh": float(sold.sum())}})]

    runs = {}
    for streamed in (True, False):
        out = tmp_path / ("streamed" if streamed else "at_once")
        out.mkdir()
        record = LocalMarketRecord(scenario, {**settings, **({"output_dir": str(out)} if streamed else {})})
        assert bool(record.streams) is streamed
        for k in range(72):
            record.add(k, k * 3600.0, Inputs(k))
            if streamed and k == 2 * STREAM_EVERY_PERIODS:  # two days are on disk, unfinished
                assert record.streamed_periods == 2 * STREAM_EVERY_PERIODS
                assert not (out / "households.csv").exists() and (out / "households.csv.partial").is_file()
        runs[streamed] = out, record.write(out, wall_time_s=1.0)
    assert runs[True][1]["kpis"] == runs[False][1]["kpis"]
    files = sorted(p.name for p in runs[False][0].glob("*.csv"))
    assert "allocation.csv" in files and sorted(p.name for p in runs[True][0].iterdir()) == files + ["summary.json"]
    for name in files:
        assert (runs[True][0] / name).read_bytes() == (runs[False][0] / name).read_bytes(), name
    assert len(pd.read_csv(runs[True][0] / "households.csv")) == 72 * (60 // grid_min) * len(names)
