"""Unit tests of the household fleet and the price feed on the shipped scenario's data."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.household import HouseholdFleet
from lec_cosim.models.prices import PriceFeed
from lec_cosim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "trondelag_arbitrage.yaml"
LOAD_FILE = ROOT / "data" / "household" / "simbench_H0_household_profiles_2016_15min.csv"
PV_FILE = ROOT / "data" / "pv" / "simbench_PV_profiles_2016_15min.csv"
DAY = dt.datetime(2019, 5, 26)
# 26 May 2019 is day 145 (0-based) of 2019 and, after 29 February, day 146 of 2016.
DAY_2016_POS = 146 * 96


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)


@pytest.fixture(scope="module")
def fleet(scenario):
    return HouseholdFleet.from_scenario(scenario)


@pytest.fixture(scope="module")
def raw_load():
    return pd.read_csv(LOAD_FILE)


@pytest.fixture(scope="module")
def raw_pv():
    return pd.read_csv(PV_FILE)


def variant(scenario, *, start=None, horizon_h=None, **households):
    update = {"households": scenario.households.model_copy(update=households)}
    if start is not None:
        update["start"] = start
    if horizon_h is not None:
        update["horizon_h"] = horizon_h
    return scenario.model_copy(update=update)


# ----------------------------------------------------------------------------------------------
# HouseholdFleet
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count, profile", [(1, "H0-A"), (3, "H0-L")])
def test_annual_energy_over_profile_year(scenario, count, profile):
    # On the profile's own year (2016) the fleet is the scaled profile unchanged, so its energy is
    # annual_consumption_kwh * count / 1000 MWh.
    s = variant(scenario, start=dt.datetime(2016, 1, 1), count=count, load_profiles=[profile], pv=None)
    fleet = HouseholdFleet.from_scenario(s)
    assert len(fleet.load_mw) == 366 * 96
    energy_mwh = fleet.load_mw.sum() * 0.25
    assert energy_mwh == pytest.approx(16000 * count / 1000, rel=1e-6)
    np.testing.assert_array_equal(fleet.pv_mw.to_numpy(), 0.0)


def test_annual_energy_on_2019_misses_29_february(scenario, raw_load):
    s = variant(scenario, count=1, load_profiles=["H0-A"], pv=None)
    fleet = HouseholdFleet.from_scenario(s)
    assert len(fleet.load_mw) == 365 * 96
    unit = raw_load["H0-A_pload"].to_numpy()
    scale_mw = 16.0 / (unit.sum() * 0.25)  # MW per unit of profile: 16 MWh a year
    feb29 = unit[59 * 96 : 60 * 96].sum() * 0.25 * scale_mw
    assert fleet.load_mw.sum() * 0.25 == pytest.approx(16.0 - feb29, rel=1e-9)
    np.testing.assert_allclose(fleet.load_mw.to_numpy()[:96], unit[:96] * scale_mw, rtol=1e-12)


def test_shipped_fleet_annual_energy(scenario):
    # 120 households over 5 profiles (24 each): 120 * 16 000 kWh = 1 920 MWh over the profile year.
    s = variant(scenario, start=dt.datetime(2016, 1, 1))
    fleet = HouseholdFleet.from_scenario(s)
    assert fleet.load_mw.sum() * 0.25 == pytest.approx(1920.0, rel=1e-6)


def test_households_take_profiles_in_turn(scenario, raw_load):
    # 7 households over 5 profiles: A and B twice, C, G, L once.
    profiles = ["H0-A", "H0-B", "H0-C", "H0-G", "H0-L"]
    s = variant(scenario, start=dt.datetime(2016, 1, 1), count=7, load_profiles=profiles, pv=None)
    fleet = HouseholdFleet.from_scenario(s)
    expected = np.zeros(len(raw_load))
    for name, n in zip(profiles, [2, 2, 1, 1, 1]):
        unit = raw_load[f"{name}_pload"].to_numpy()
        expected += n * unit * 16.0 / (unit.sum() * 0.25)
    np.testing.assert_allclose(fleet.load_mw.to_numpy(), expected, rtol=1e-12)
    assert fleet.load_mw.sum() * 0.25 == pytest.approx(7 * 16.0, rel=1e-9)


def test_reactive_power_from_power_factor(fleet, scenario):
    pf = scenario.households.power_factor
    assert pf == 0.97
    frame = fleet.power(DAY, 900, 96)
    assert list(frame.columns) == ["load_p_mw", "load_q_mvar", "pv_p_mw"]
    tan_phi = math.sqrt(1 - pf**2) / pf  # tan(acos(0.97)) = 0.243104 / 0.97 = 0.25062...
    assert tan_phi == pytest.approx(0.250624, abs=1e-6)
    np.testing.assert_allclose(frame["load_q_mvar"], frame["load_p_mw"] * tan_phi, rtol=1e-12)
    assert (frame["load_q_mvar"] > 0).all()  # inductive


def test_pv_is_kwp_times_count_times_profile(fleet, raw_pv):
    frame = fleet.power(DAY, 900, 96)
    expected = raw_pv["PV1"].to_numpy()[DAY_2016_POS : DAY_2016_POS + 96].clip(min=0) * 8 * 120 / 1000
    np.testing.assert_allclose(frame["pv_p_mw"], expected, rtol=1e-12)
    assert frame["pv_p_mw"].max() > 0.5  # a clear day: about 0.6 MW peak from 0.96 MWp
    assert frame["pv_p_mw"].iloc[:12].max() == 0.0  # night


def test_load_on_the_shipped_day(fleet, raw_load):
    frame = fleet.power(DAY, 900, 96)
    expected = np.zeros(96)
    for name in ["H0-A", "H0-B", "H0-C", "H0-G", "H0-L"]:
        unit = raw_load[f"{name}_pload"].to_numpy()
        expected += 24 * unit[DAY_2016_POS : DAY_2016_POS + 96] * 16.0 / (unit.sum() * 0.25)
    np.testing.assert_allclose(frame["load_p_mw"], expected, rtol=1e-12)


def test_hourly_means_are_means_of_quarter_hours(fleet):
    quarter = fleet.power(DAY, 900, 96)
    hourly = fleet.power(DAY, 3600, 24)
    for column in quarter.columns:
        np.testing.assert_allclose(hourly[column], quarter[column].to_numpy().reshape(24, 4).mean(axis=1),
                                   rtol=1e-12, atol=1e-15)
    # Energy over the day is the same at either step.
    assert hourly["load_p_mw"].sum() * 1.0 == pytest.approx(quarter["load_p_mw"].sum() * 0.25, rel=1e-12)


def test_minute_steps_hold_quarter_hours(fleet):
    quarter = fleet.power(DAY, 900, 8)
    minute = fleet.power(DAY, 60, 120)
    for column in quarter.columns:
        np.testing.assert_allclose(minute[column], np.repeat(quarter[column].to_numpy(), 15), rtol=1e-12)


def test_fleet_without_pv(scenario):
    fleet = HouseholdFleet.from_scenario(variant(scenario, pv=None))
    frame = fleet.power(DAY, 3600, 24)
    np.testing.assert_array_equal(frame["pv_p_mw"], 0.0)
    assert (frame["load_p_mw"] > 0).all()


# ----------------------------------------------------------------------------------------------
# PriceFeed
# ----------------------------------------------------------------------------------------------


def test_spot_prices_on_the_shipped_day(scenario):
    feed = PriceFeed.from_scenario(scenario)
    assert feed.feed_in_tariff is None
    prices = feed.prices(DAY, 3600, 24)
    assert list(prices.columns) == ["price", "export_price"]
    # File rows "2019-05-26 01:00:00+02:00,32.75" and "2019-05-26 00:00:00+02:00,35.53": the first
    # is 00:00 on the UTC+01:00 clock, the second belongs to the day before (23:00).
    assert prices["price"].iloc[0] == 32.75
    assert feed.spot[pd.Timestamp("2019-05-25 23:00")] == 35.53
    # The scenario comment quotes a 15.1 to 37.2 EUR/MWh spread for the day.
    assert prices["price"].min() == pytest.approx(15.1, abs=0.05)
    assert prices["price"].max() == pytest.approx(37.2, abs=0.05)
    # No feed-in tariff: exports are paid the spot price.
    np.testing.assert_array_equal(prices["export_price"], prices["price"])


def test_feed_in_tariff_is_constant(scenario):
    spot = PriceFeed.from_scenario(scenario).spot
    feed = PriceFeed(spot, feed_in_tariff=12.5)
    prices = feed.prices(DAY, 3600, 24)
    np.testing.assert_array_equal(prices["export_price"], np.full(24, 12.5))
    np.testing.assert_array_equal(prices["price"], PriceFeed(spot).prices(DAY, 3600, 24)["price"])

    market = scenario.market.model_copy(update={"feed_in_tariff": 0.0})
    zero = PriceFeed.from_scenario(scenario.model_copy(update={"market": market}))
    assert zero.feed_in_tariff == 0.0
    np.testing.assert_array_equal(zero.prices(DAY, 900, 96)["export_price"], np.zeros(96))


def test_prices_at_quarter_hours_hold_the_hour(scenario):
    feed = PriceFeed.from_scenario(scenario)
    hourly = feed.prices(DAY, 3600, 24)
    quarter = feed.prices(DAY, 900, 96)
    np.testing.assert_array_equal(quarter["price"], np.repeat(hourly["price"].to_numpy(), 4))
    np.testing.assert_array_equal(quarter["export_price"], quarter["price"])
