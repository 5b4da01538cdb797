"""Multi-day horizons of the local-market (LEM) scenario, up to the PV data's year (issue 5).

What repeats and what follows the calendar: the IEEE loads are one typical day, repeated every day;
PV follows the 2016 calendar from the start day (sized on the start day, or ``sizing_day``); CHP
bids repeat daily (a bids file holds 24 hourly bids); tariffs follow the hour of the day
(``period % 24``). Unit tests on the community, then one federation run of two days against one of
one day: the first day must come out identical.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from harness import SCENARIOS, write_scenario

from lec_cosim.inproc import run_inproc
from lec_cosim.models.bidding import FEED_IN_EUR_PER_KWH, retail_tariff_eur_per_kwh
from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR
from lec_cosim.models.lem_community import (
    build_community,
    community_from_scenario,
    period_orders,
    read_learned_bids,
    settle_period,
    truthful_bids,
)
from lec_cosim.models.lem_participants import (
    PV_PROFILE_FILE,
    participants,
    pv_day_profiles,
    pv_profiles,
)
from lec_cosim.scenario import ScenarioError, load_scenario

DAY1, DAY2, DAY3 = "2016-05-26", "2016-05-27", "2016-05-28"
BIDS = SCENARIOS / "learned" / "ieee_eu_lv_lem_plain_bids.json"


@pytest.fixture(scope="module")
def three_days():
    return build_community(DEFAULT_DATA_DIR, DAY1, PV_PROFILE_FILE, grid_min=15, horizon_h=72)


@pytest.fixture(scope="module")
def one_day():
    return build_community(DEFAULT_DATA_DIR, DAY1, PV_PROFILE_FILE, grid_min=15, horizon_h=24)


# --- the community over several days ------------------------------------------------------------


def test_loads_repeat_the_ieee_day_and_day_one_is_the_one_day_community(three_days, one_day):
    assert three_days.load_kw.shape == (61, 3 * 96) and three_days.n_periods == 72
    for d in range(3):
        days = slice(96 * d, 96 * (d + 1))
        np.testing.assert_array_equal(three_days.load_kw[:, days], one_day.load_kw)
        np.testing.assert_array_equal(three_days.load_kvar[:, days], one_day.load_kvar)
    np.testing.assert_array_equal(three_days.pv_kw[:, :96], one_day.pv_kw)
    pd.testing.assert_frame_equal(three_days.table, one_day.table)  # kWp sized on the start day
    assert three_days.load_scale == one_day.load_scale


def test_pv_follows_the_calendar_scaled_by_the_start_days_kwp(three_days):
    table = three_days.table
    prosumers = np.flatnonzero(table["kind"] == "prosumer")
    assert len(prosumers) == 42 and np.all(table["pv_kwp"].to_numpy()[prosumers] == table["pv_kwp"].iloc[prosumers[0]])
    kwp = float(table["pv_kwp"].iloc[prosumers[0]])
    shipped = participants()
    profile = dict(zip(shipped["participant"], shipped["pv_profile"]))
    for d, day in enumerate((DAY1, DAY2, DAY3)):
        shapes = pv_day_profiles(day, PV_PROFILE_FILE)
        for i in prosumers:
            expected = shapes[profile[three_days.names[i]]].to_numpy() * kwp
            np.testing.assert_allclose(three_days.pv_kw[i, 96 * d: 96 * (d + 1)], expected, rtol=1e-12, atol=0)
    assert not np.allclose(three_days.pv_kw[:, 96:192], three_days.pv_kw[:, :96])  # not the same day again
    # day 2 exactly as a one-day community of day 2 with its PV sized on day 1
    day2 = build_community(DEFAULT_DATA_DIR, DAY2, PV_PROFILE_FILE, grid_min=15, horizon_h=24, pv_sizing_day=DAY1)
    np.testing.assert_array_equal(three_days.pv_kw[:, 96:192], day2.pv_kw)
    np.testing.assert_array_equal(three_days.load_kw[:, 96:192], day2.load_kw)


def test_pv_profiles_run_over_month_and_the_end_of_the_data():
    span = pv_profiles("2016-05-31", 48, PV_PROFILE_FILE)
    pd.testing.assert_frame_equal(span, pd.concat([pv_day_profiles("2016-05-31"), pv_day_profiles("2016-06-01")]))
    assert len(pv_profiles("2016-01-01", 8784, PV_PROFILE_FILE)) == 8784 * 4
    assert len(pv_profiles("2016-05-26", 5, PV_PROFILE_FILE)) == 20
    with pytest.raises(ValueError, match="ends at 2017-01-01T00:00:00"):
        pv_profiles("2016-12-31", 25, PV_PROFILE_FILE)


def test_a_partial_last_day_and_hourly_grid():
    c = build_community(DEFAULT_DATA_DIR, DAY1, PV_PROFILE_FILE, grid_min=60, horizon_h=30)
    assert c.load_kw.shape == (61, 30) and c.n_periods == 30
    np.testing.assert_array_equal(c.load_kw[:, 24:], c.load_kw[:, :6])
    with pytest.raises(ValueError, match="whole number of hours"):
        build_community(DEFAULT_DATA_DIR, DAY1, PV_PROFILE_FILE, grid_min=15, horizon_h=24.5)


# --- bids and tariffs by the hour of the day ----------------------------------------------------


def test_learned_and_truthful_bids_repeat_daily(three_days):
    shipped = json.loads(BIDS.read_text())["bids_eur_per_kwh"]
    bids = read_learned_bids(BIDS, three_days, "plain")
    assert set(bids) == {f"CHP{k}" for k in range(1, 7)}
    for name, values in bids.items():
        assert len(values) == 72
        np.testing.assert_array_equal(values, np.tile(shipped[name], 3))
    short = build_community(DEFAULT_DATA_DIR, DAY1, PV_PROFILE_FILE, grid_min=60, horizon_h=13)
    for name, values in read_learned_bids(BIDS, short, "plain").items():
        np.testing.assert_array_equal(values, shipped[name][:13])  # a shorter horizon plays the first hours
    partial = build_community(DEFAULT_DATA_DIR, DAY1, PV_PROFILE_FILE, grid_min=60, horizon_h=30)
    for name, values in read_learned_bids(BIDS, partial, "plain").items():
        np.testing.assert_array_equal(values, shipped[name] + shipped[name][:6])
    for values in truthful_bids(three_days).values():
        assert len(values) == 72 and np.all(values == values[0])


def test_bihourly_tariff_orders_and_settlement_follow_the_hour_of_the_day(three_days):
    for h in range(24):
        for day in (1, 2, 100):
            assert retail_tariff_eur_per_kwh(24 * day + h, "bihourly") == retail_tariff_eur_per_kwh(h, "bihourly")
    periods = np.arange(72)
    np.testing.assert_array_equal(retail_tariff_eur_per_kwh(periods, "bihourly"),
                                  np.tile(retail_tariff_eur_per_kwh(np.arange(24), "bihourly"), 3))
    np.testing.assert_array_equal(three_days.lem_day("bihourly").retail_eur_per_kwh,
                                  np.tile(retail_tariff_eur_per_kwh(np.arange(24), "bihourly"), 3))
    # the participants federate passes period % 24: period 24 + 10 is a peak hour like 10:00
    def bid(period):
        return period_orders("consumer", "LOAD4", 2.0, 0.0, 0.0, period % 24, "bihourly", None, 0.2)[0]

    assert bid(24 + 10).price_eur_per_kwh == pytest.approx(0.1924)
    assert bid(24 + 23).price_eur_per_kwh == pytest.approx(0.1023)
    st = settle_period("consumer", 2.0, 0.0, 0.0, hour=(48 + 12) % 24, scheme="bihourly", lem_enabled=False)
    assert st.cost_eur == pytest.approx(2.0 * 0.1924)


# --- scenario validation -------------------------------------------------------------------------


def test_week_and_year_scenarios_load_with_the_paper_community():
    for name, start, hours in (("ieee_eu_lv_lem_plain_week", dt.datetime(2016, 5, 23), 168),
                               ("ieee_eu_lv_lem_plain_year", dt.datetime(2016, 1, 1), 8784)):
        s = load_scenario(SCENARIOS / f"{name}.yaml")
        assert s.start == start and s.horizon_h == hours and s.resolution.grid_min == 15
        assert s.participants.pv.sizing_day == dt.date(2016, 5, 26)
        assert s.market.chp_strategy == "aco" and s.market.tariff_scheme == "plain"
    # 2016-01-01 has no PV at all: the year's community is sized on 26 May like the one-day case
    assert float(pv_day_profiles("2016-01-01").to_numpy().max()) == 0.0


def test_horizon_past_the_pv_data_and_sunless_sizing_day_are_one_line_errors(tmp_path):
    cases = {"past": ({"start": "2016-12-25T00:00:00", "horizon_h": 24 * 8},
                      ("horizon_h: ", "past the end of the PV data", "simbench_PV_profiles_2016_15min.csv",
                       "at most 168 h")),
             "sunless": ({"start": "2016-01-01T00:00:00", "horizon_h": 48},
                         ("start: ", "no PV", "2016-01-01", "sizing_day")),
             "fraction": ({"horizon_h": 36.5}, ("horizon_h: ", "whole number"))}
    for case, (changes, fragments) in cases.items():
        (tmp_path / case).mkdir()
        path = write_scenario(tmp_path / case, "ieee_eu_lv_lem_plain", changes)
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        message = str(err.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        for fragment in fragments:
            assert fragment in message, (fragment, message)
    # exactly to the end of the data is fine
    path = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {"start": "2016-12-25T00:00:00", "horizon_h": 168})
    assert load_scenario(path).horizon_h == 168


# --- the federation over two days ----------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The plain LEM case at a 60-min grid over one day and over two days, each federation in this process
    (``lec_cosim.inproc``: the programs and configs of ``lec-cosim run`` as threads, its results byte for byte,
    ``tests/test_inproc.py``): read for their results, they need no process per federate."""
    base = tmp_path_factory.mktemp("lem_multiday")
    runs = {}
    for days in (1, 2):
        directory = base / f"scenario_{days}"
        directory.mkdir()
        path = write_scenario(directory, "ieee_eu_lv_lem_plain", {"horizon_h": 24 * days,
                                                                   "resolution.grid_min": 60})
        runs[days] = (path, base / f"run_{days}")
        run_inproc(load_scenario(path), runs[days][1], timeout_s=300)
    return runs


def read(run_dir, name):
    return pd.read_csv(run_dir / name)


def lines(run_dir, name):
    return (run_dir / name).read_text().splitlines()


@pytest.mark.timeout(400)
def test_day_one_of_a_two_day_run_is_the_one_day_run(runs):
    one, two = runs[1][1], runs[2][1]
    # every per-hour and per-step file: the two-day file starts with the one-day file, line for line
    for name, rows_per_day in (("clearing.csv", 24), ("orders.csv", None), ("allocation.csv", None),
                               ("settlement.csv", 24 * 61), ("energy.csv", 24), ("households.csv", 24 * 61),
                               ("grid.csv", 24)):
        first = lines(one, name)
        both = lines(two, name)
        assert both[: len(first)] == first, name
        if rows_per_day is not None:
            assert len(first) == 1 + rows_per_day and len(both) == 1 + 2 * rows_per_day, name
    clearing = read(two, "clearing.csv")
    assert len(clearing) == 48 and (clearing.volume_kwh > 0).all()
    times = pd.to_datetime(clearing.time)
    assert times.iloc[0] == pd.Timestamp(DAY1) and times.iloc[-1] == pd.Timestamp(DAY2) + pd.Timedelta(hours=23)
    assert (times.diff().dropna() == pd.Timedelta(hours=1)).all()  # the timestamps run on into day 2
    # the CHPs bid the same price at hour h of both days (bids repeat daily)
    orders = read(two, "orders.csv")
    chp = orders[orders.participant.str.startswith("CHP")].assign(t=lambda f: pd.to_datetime(f.time))
    chp = chp.assign(day=chp.t.dt.day, hour=chp.t.dt.hour).pivot_table(index=["participant", "hour"],
                                                                        columns="day", values="price")
    np.testing.assert_array_equal(chp[26].to_numpy(), chp[27].to_numpy())
    # costs of day one (settlement.csv is equal line for line above): the one-day run's totals
    s1, s2 = read(one, "settlement.csv"), read(two, "settlement.csv")
    p1 = read(one, "participants.csv").set_index("participant")
    day1_of_two = s2.iloc[: len(s1)].groupby("participant")[["cost_eur", "income_eur"]].sum()
    for column in ("cost_eur", "income_eur"):  # re-summed from the CSV here: equal to rounding
        np.testing.assert_allclose(day1_of_two.loc[p1.index, column], p1[column], rtol=1e-12, atol=1e-12)
    k1 = json.loads((one / "summary.json").read_text())["kpis"]
    k2 = json.loads((two / "summary.json").read_text())["kpis"]
    assert k2["total"]["cost_eur"] > k1["total"]["cost_eur"] and k2["lem_volume_kwh"] > k1["lem_volume_kwh"]


@pytest.mark.timeout(400)
def test_two_day_balances_and_summary_cover_48_periods(runs):
    path, run = runs[2]
    scenario = load_scenario(path)
    community = community_from_scenario(scenario)
    households, grid = read(run, "households.csv"), read(run, "grid.csv")
    orders, clearing, settlement = read(run, "orders.csv"), read(run, "clearing.csv"), read(run, "settlement.csv")
    assert len(grid) == 48 and len(households) == 48 * 61 and len(settlement) == 48 * 61
    # every step: the transformer carries the community's net demand plus the losses
    net = households.groupby("time", sort=False).net_kw.sum().reindex(grid.time).to_numpy()
    np.testing.assert_allclose(grid.trafo_p_kw.to_numpy(), net + grid.p_loss_kw.to_numpy(), atol=1e-3)
    # households follow the community: loads repeat, PV of 27 May on day 2
    loads = households.pivot(index="time", columns="participant", values="load_kw")[community.names]
    pv = households.pivot(index="time", columns="participant", values="pv_kw")[community.names]
    np.testing.assert_allclose(loads.to_numpy().T, community.load_kw, atol=1e-9)
    np.testing.assert_allclose(pv.to_numpy().T, community.pv_kw, atol=1e-9)
    np.testing.assert_array_equal(loads.to_numpy()[24:], loads.to_numpy()[:24])
    # every hour: the pool balances and the price lies between feed-in and retail
    volume = clearing.set_index("time").volume_kwh
    for side in ("buy", "sell"):
        accepted = orders[orders.side == side].groupby("time").accepted_kwh.sum()
        np.testing.assert_allclose(accepted.reindex(volume.index, fill_value=0), volume, atol=1e-9)
    assert (clearing.price >= FEED_IN_EUR_PER_KWH - 1e-12).all() and (clearing.price <= 0.158 + 1e-12).all()
    # per participant and hour: energy is conserved (need = LEM + grid, surplus = LEM + feed-in)
    kinds = dict(zip(community.names, community.kinds))
    homes = settlement[settlement.participant.map(kinds) != "chp"]
    idx = [community.names.index(n) for n in homes.participant]
    hours = ((pd.to_datetime(homes.time) - pd.Timestamp(DAY1)) / pd.Timedelta(hours=1)).astype(int).to_numpy()
    net_kwh = community.load_kwh[idx, hours] - community.pv_kwh[idx, hours]
    np.testing.assert_allclose(np.maximum(net_kwh, 0), homes.lem_bought_kwh + homes.grid_import_kwh, atol=1e-9)
    np.testing.assert_allclose(np.maximum(-net_kwh, 0), homes.lem_sold_kwh + homes.grid_export_kwh, atol=1e-9)
    # the summary covers the 48 periods
    summary = json.loads((run / "summary.json").read_text())
    k = summary["kpis"]
    assert summary["horizon_h"] == 48
    participants = read(run, "participants.csv")
    assert k["total"]["cost_eur"] == pytest.approx(settlement.cost_eur.sum(), rel=1e-12)
    assert k["total"]["income_eur"] == pytest.approx(participants.income_eur.sum(), rel=1e-12)
    assert k["lem_volume_kwh"] == pytest.approx(clearing.volume_kwh.sum(), rel=1e-12)
    assert k["load_kwh"] == pytest.approx(community.load_kwh.sum(), rel=1e-9)
    assert k["pv_kwh"] == pytest.approx(community.pv_kwh.sum(), rel=1e-9)
    assert k["losses_kwh"] == pytest.approx(grid.p_loss_kw.sum(), rel=1e-12)  # hourly steps
    assert k["not_cleared_hours"] == 0
    one = json.loads((runs[1][1] / "summary.json").read_text())["kpis"]
    assert k["load_kwh"] == pytest.approx(2 * one["load_kwh"], rel=1e-12)  # the same load every day
    assert k["pv_kwh"] != pytest.approx(2 * one["pv_kwh"], rel=1e-3)  # PV of another day
