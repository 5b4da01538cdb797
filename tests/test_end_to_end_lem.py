"""The LEM case (Case 1) and its base case, the shipped scenarios as they are: real federations in this process
(``lec_cosim.inproc``: the federate programs and configs of ``lec-cosim run`` as threads on HELICS's in-process
core, results byte-identical to a process run, ``tests/test_inproc.py``; ``lec-cosim run`` of the local market with a
process per federate: ``harness.SHARED_RUNS``, ``tests/test_parallel_runs.py``, ``tests/test_fault_injection.py``).

Asserts what must hold whatever the bids: the pool balances every hour, prices lie between the
feed-in and the retail tariff, money sums to zero between buyers, sellers and the grid, the
physical injections follow the trades, and the DSO's power balance closes.
"""

import json

import numpy as np
import pandas as pd
import pytest

from harness import SCENARIOS

from lec_cosim.inproc import run_inproc
from lec_cosim.models.bidding import FEED_IN_EUR_PER_KWH, chp_production_cost_eur, retail_tariff_eur_per_kwh
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.scenario import load_scenario

NAMES = ("ieee_eu_lv_lem_plain", "ieee_eu_lv_base_plain")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e_lem")
    for name in NAMES:
        run_inproc(load_scenario(SCENARIOS / f"{name}.yaml"), base / name, timeout_s=400)
    return {name: base / name for name in NAMES}


def read(run_dir, name):
    return pd.read_csv(run_dir / name)


def test_contract_files_and_columns(runs):
    run = runs["ieee_eu_lv_lem_plain"]
    assert list(read(run, "orders.csv").columns) == ["time", "participant", "side", "price", "quantity_kwh",
                                                     "accepted_kwh"]
    assert list(read(run, "clearing.csv").columns) == ["time", "price", "volume_kwh"]
    assert list(read(run, "participants.csv").columns)[:7] == ["participant", "kind", "bus", "phase", "cost_eur",
                                                               "income_eur", "profit_eur"]
    assert list(read(run, "households.csv").columns) == ["time", "participant", "bus", "phase", "load_kw", "pv_kw",
                                                         "chp_kw", "battery_kw", "net_kw"]
    assert list(read(run, "grid.csv").columns)[:7] == ["time", "vm_min_pu", "vm_max_pu", "bus_violations",
                                                       "line_overloads", "p_loss_kw", "q_loss_kvar"]
    assert len(read(run, "clearing.csv")) == 24 and len(read(run, "grid.csv")) == 96
    assert len(read(run, "households.csv")) == 96 * 61 and len(read(run, "participants.csv")) == 61
    summary = json.loads((run / "summary.json").read_text())
    k = summary["kpis"]
    for group in ("consumers_prosumers", "producers", "total"):
        assert k[group]["profit_eur"] == pytest.approx(k[group]["income_eur"] - k[group]["cost_eur"])
    assert k["total"]["cost_eur"] == pytest.approx(k["consumers_prosumers"]["cost_eur"] + k["producers"]["cost_eur"])
    assert {"bus_violations", "line_overloads", "losses_kwh", "losses_kvarh", "lem_volume_kwh", "fitness"} <= set(k)
    assert summary["chp_strategy"] == "aco" and summary["lem_enabled"] is True
    base = json.loads((runs["ieee_eu_lv_base_plain"] / "summary.json").read_text())
    assert "fitness" not in base["kpis"] and base["kpis"]["lem_volume_kwh"] == 0.0


def test_pool_balances_and_prices_lie_between_feed_in_and_retail(runs):
    run = runs["ieee_eu_lv_lem_plain"]
    orders, clearing = read(run, "orders.csv"), read(run, "clearing.csv")
    bought = orders[orders.side == "buy"].groupby("time").accepted_kwh.sum()
    sold = orders[orders.side == "sell"].groupby("time").accepted_kwh.sum()
    volume = clearing.set_index("time").volume_kwh
    np.testing.assert_allclose(bought.reindex(volume.index, fill_value=0), volume, atol=1e-9)
    np.testing.assert_allclose(sold.reindex(volume.index, fill_value=0), volume, atol=1e-9)
    assert (volume > 0).all()  # with CHPs and PV in the community every hour trades
    hours = pd.to_datetime(clearing.time).dt.hour
    retail = retail_tariff_eur_per_kwh(hours.to_numpy(), "plain")
    # every offer is at or above feed-in (prosumers at feed-in, CHPs at their opportunity cost)
    # and every bid is at retail, so the uniform price lies between them
    assert (clearing.price >= FEED_IN_EUR_PER_KWH - 1e-12).all()
    assert (clearing.price <= retail + 1e-12).all()
    # accepted never exceeds what was asked; bids above the price are served in full
    assert (orders.accepted_kwh <= orders.quantity_kwh + 1e-9).all()
    merged = orders.merge(clearing, on="time", suffixes=("", "_clearing"))
    in_money = merged[(merged.side == "buy") & (merged.price > merged.price_clearing + 1e-12)]
    np.testing.assert_allclose(in_money.accepted_kwh, in_money.quantity_kwh, atol=1e-9)
    in_money = merged[(merged.side == "sell") & (merged.price < merged.price_clearing - 1e-12)]
    np.testing.assert_allclose(in_money.accepted_kwh, in_money.quantity_kwh, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_money_sums_to_zero_between_buyers_sellers_and_the_grid(runs, name):
    run = runs[name]
    settlement, clearing = read(run, "settlement.csv"), read(run, "clearing.csv")
    price = clearing.set_index("time").price.fillna(0.0) if len(clearing) else None
    hour = pd.to_datetime(settlement.time).dt.hour.to_numpy()
    retail = retail_tariff_eur_per_kwh(hour, "plain")
    lem_paid = (settlement.lem_bought_kwh * (settlement.time.map(price) if price is not None else 0)).sum()
    lem_earned = (settlement.lem_sold_kwh * (settlement.time.map(price) if price is not None else 0)).sum()
    assert lem_paid == pytest.approx(lem_earned, rel=1e-12, abs=1e-9)  # the pool is budget balanced
    grid_bill = (settlement.grid_import_kwh * retail).sum() - (settlement.grid_export_kwh * FEED_IN_EUR_PER_KWH).sum()
    production = chp_production_cost_eur(settlement.chp_kwh.to_numpy()).sum()
    net = settlement.cost_eur.sum() - settlement.income_eur.sum()
    # what the community pays net = what the grid (supplier) receives net + the CHPs' fuel
    assert net == pytest.approx(grid_bill + production, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_injections_follow_the_trades_and_the_power_balance_closes(runs, name):
    run = runs[name]
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    community = community_from_scenario(scenario)
    households, settlement, grid = read(run, "households.csv"), read(run, "settlement.csv"), read(run, "grid.csv")
    chp = households[households.participant.str.startswith("CHP")]
    hourly = chp.assign(hour=pd.to_datetime(chp.time).dt.floor("h").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    chp_kwh = hourly.groupby(["hour", "participant"]).chp_kw.mean()
    sold = settlement[settlement.participant.str.startswith("CHP")].set_index(["time", "participant"]).chp_kwh
    np.testing.assert_allclose(chp_kwh.sort_index().to_numpy(), sold.sort_index().to_numpy(), atol=1e-9)
    # households follow their profiles
    loads = households.pivot(index="time", columns="participant", values="load_kw")[community.names]
    np.testing.assert_allclose(loads.to_numpy().T, community.load_kw, atol=1e-9)
    # the transformer carries the community's net demand plus the losses
    net = households.groupby("time").net_kw.sum().reindex(grid.time).to_numpy()
    np.testing.assert_allclose(grid.trafo_p_kw.to_numpy(), net + grid.p_loss_kw.to_numpy(), atol=1e-3)
