"""Households on any feeder (``lec_cosim.models.feeder_households``): placed by name or a mapping file, loads from the
source or a smart-meter CSV, devices by a rule or a table; every bad input one line naming file, row and reason."""

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.feeder_households import (
    assign_devices,
    household_loads,
    place_households,
    spread,
)
from lec_cosim.models.feeder_model import FeederSourceError
from lec_cosim.models.feeder_source import ieee_eu_lv_feeder
from lec_cosim.models.lem_participants import CONSUMER_LOADS, N_PROSUMERS
from lec_cosim.models.timeseries import DataError


@pytest.fixture(scope="module")
def ieee():
    return ieee_eu_lv_feeder()


def test_the_spread_rule_on_the_ieee_feeder_is_the_local_markets_choice_of_consumers(ieee):
    """The generic rule (groups by phase, largest remainders, evenly along the path length) applied to the IEEE
    feeder's 55 connection points picks exactly the study's 13 households without PV."""
    households = place_households(ieee)
    assert spread(ieee, households, len(CONSUMER_LOADS)) == list(CONSUMER_LOADS)
    devices = assign_devices(ieee, households, pv={"share": N_PROSUMERS / 55, "kwp": 4.6})
    assert sorted(devices.index[devices["pv_kwp"] == 0]) == sorted(CONSUMER_LOADS)
    assert (devices["pv_kwp"] > 0).sum() == N_PROSUMERS and set(devices["pv_kwp"]) == {0.0, 4.6}


def test_batteries_go_to_households_with_pv_spread_over_the_phases(ieee):
    households = place_households(ieee)
    devices = assign_devices(ieee, households, pv={"share": 0.5, "kwp": 5.0},
                             battery={"share": 0.2, "kwh": 10.0, "kw": 5.0})
    battery = devices[devices["battery_kwh"] > 0]
    assert len(battery) == 11 and (battery["pv_kwp"] > 0).all() and (battery["battery_kw"] == 5.0).all()
    assert set(battery["phases"]) == {"a", "b", "c"}  # spread, not all on one phase
    with pytest.raises(ValueError, match="asks for 33 batteries among 28 households with PV"):
        assign_devices(ieee, households, pv={"share": 0.5, "kwp": 5.0}, battery={"share": 0.6, "kwh": 1, "kw": 1})


def test_a_mapping_file_names_the_households_and_where_they_are(ieee, tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("household,connection\nflat_1,LOAD7\nflat_2,LOAD7\nshop,LOAD30\n")
    households = place_households(ieee, path)
    assert list(households.index) == ["flat_1", "flat_2", "shop"]
    assert list(households["connection"]) == ["LOAD7", "LOAD7", "LOAD30"]
    assert households.at["shop", "bus"] == ieee.connections.at["LOAD30", "bus"]
    p, q = household_loads(ieee, households)
    assert list(p.columns) == ["flat_1", "flat_2", "shop"]
    np.testing.assert_allclose(p["flat_2"], ieee.load_p_kw["LOAD7"])
    np.testing.assert_allclose(q["shop"], ieee.load_p_kw["LOAD30"] * np.tan(np.arccos(0.95)))


@pytest.mark.parametrize("text,reason", [
    ("household,where\na,LOAD1\n", "column 'connection' missing"),
    ("household,connection\na,LOAD1\nb,LOAD99\n", "row 3: connection 'LOAD99' is not a connection point"),
    ("household,connection\na,LOAD1\na,LOAD2\n", "row 3: household 'a' appears twice"),
    ("household,connection\n,LOAD1\n", "row 2: household is empty"),
])
def test_a_bad_mapping_file_is_one_line_naming_file_and_row(ieee, tmp_path, text, reason):
    path = tmp_path / "map.csv"
    path.write_text(text)
    with pytest.raises(FeederSourceError) as refused:
        place_households(ieee, path)
    assert str(refused.value).startswith(f"{path}: ") and reason in str(refused.value), str(refused.value)


def smart_meter_csv(path, households, scale=1.0, hours=2):
    times = pd.date_range("2016-05-26", periods=hours * 4, freq="15min")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M")})
    for i, name in enumerate(households):
        frame[name] = scale * (0.3 + 0.1 * i + 0.05 * np.arange(len(times)))
    frame.to_csv(path, index=False)


def test_the_users_smart_meter_csv_gives_the_households_loads(ieee, tmp_path):
    households = place_households(ieee).iloc[:3]
    path = tmp_path / "meters.csv"
    smart_meter_csv(path, households.index)
    p, q = household_loads(ieee, households, path, power_factor=0.9)
    assert p.shape == (8, 3) and p.index[1] - p.index[0] == pd.Timedelta(minutes=15)
    assert p.at[p.index[2], "LOAD2"] == pytest.approx(0.5)
    np.testing.assert_allclose(q.to_numpy(), p.to_numpy() * np.tan(np.arccos(0.9)))


def test_a_smart_meter_csv_in_watts_or_without_a_household_is_one_line(ieee, tmp_path):
    households = place_households(ieee).iloc[:3]
    path = tmp_path / "meters.csv"
    smart_meter_csv(path, households.index, scale=1000.0)  # W written as kW
    with pytest.raises(DataError, match=r"meters.csv: row \d+: LOAD\d is \d+ kW, implausible .*in W or MW"):
        household_loads(ieee, households, path)
    smart_meter_csv(path, households.index[:2])
    with pytest.raises(DataError, match=r"meters.csv: column 'LOAD3' missing"):
        household_loads(ieee, households, path)


def test_a_source_without_profiles_asks_for_the_households_own(ieee):
    snapshot = type(ieee)(name="x", source="opendss: Master.dss", net=ieee.net, connections=ieee.connections)
    with pytest.raises(FeederSourceError, match=r"^opendss: Master.dss: the source has no load profiles"):
        household_loads(snapshot, place_households(snapshot))


@pytest.mark.parametrize("text,reason", [
    ("household,pv_kwp,battery_kwh,battery_kw\nLOAD1,4,10,\n", "row 2: a battery needs both"),
    ("household,pv_kwp,battery_kwh,battery_kw\nLOAD1,-4,,\n", "row 2: pv_kwp is '-4', not a size >= 0"),
    ("household,pv_kwp,battery_kwh,battery_kw\nLOADX,4,,\n", "row 2: household 'LOADX' is not placed"),
    ("household,pv_kwp,battery_kwh\nLOAD1,4,1\n", "column 'battery_kw' missing"),
])
def test_a_bad_device_table_is_one_line(ieee, tmp_path, text, reason):
    path = tmp_path / "devices.csv"
    path.write_text(text)
    with pytest.raises(FeederSourceError) as refused:
        assign_devices(ieee, place_households(ieee), table=path)
    assert str(refused.value).startswith(f"{path}: ") and reason in str(refused.value), str(refused.value)


def test_a_device_table_sizes_the_households_it_names(ieee, tmp_path):
    path = tmp_path / "devices.csv"
    path.write_text("household,pv_kwp,battery_kwh,battery_kw\nLOAD1,4.5,10,5\nLOAD9,3,,\n")
    devices = assign_devices(ieee, place_households(ieee), table=path)
    assert devices.loc["LOAD1", ["pv_kwp", "battery_kwh", "battery_kw"]].tolist() == [4.5, 10.0, 5.0]
    assert devices.loc["LOAD9", ["pv_kwp", "battery_kwh"]].tolist() == [3.0, 0.0]
    assert devices["pv_kwp"].sum() == 7.5
