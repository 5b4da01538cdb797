"""The local market's community on any feeder (``lec_cosim.models.feeder_community``)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.feeder_community import build_feeder_community
from lec_cosim.models.feeder_net import DEFAULT_DATA_DIR
from lec_cosim.models.feeder_source import ieee_eu_lv_feeder
from lec_cosim.models.lem_community import build_community
from lec_cosim.models.lem_participants import PV_PROFILE_FILE
from lec_cosim.models.opendss_feeder import opendss_feeder
from lec_cosim.models.timeseries import DataError

START = dt.datetime(2016, 5, 26)


@pytest.fixture(scope="module")
def ieee():
    return ieee_eu_lv_feeder()


def test_on_the_ieee_feeder_it_is_the_local_markets_community(ieee):
    """Same households, the same 42 with PV of the same kWp, the same loads (the IEEE day repeated, scaled to the
    140 kW peak) and PV over two days; only the CHPs' sites follow the generic rule."""
    ours = build_feeder_community(ieee, START, PV_PROFILE_FILE, grid_min=15, horizon_h=48, pv_share=42 / 55,
                                  load_peak_kw=140.0)
    theirs = build_community(DEFAULT_DATA_DIR, "2016-05-26", PV_PROFILE_FILE, grid_min=15, horizon_h=48)
    homes = (theirs.table["kind"] != "chp").to_numpy()
    assert list(ours.table["participant"][:55]) == list(theirs.table["participant"][homes])
    assert list(ours.table["kind"]) == list(theirs.table["kind"])
    np.testing.assert_array_equal(ours.table["pv_kwp"][:55], theirs.table["pv_kwp"][homes])
    np.testing.assert_allclose(ours.load_kw, theirs.load_kw, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(ours.load_kvar, theirs.load_kvar, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(ours.pv_kw, theirs.pv_kw)
    assert ours.load_scale == theirs.load_scale
    assert list(ours.table["chp_kw"][55:]) == [10.0] * 6


def test_one_day_of_profiles_repeats_and_a_year_plays_on_the_calendar(ieee, tmp_path):
    dss = opendss_feeder(DEFAULT_DATA_DIR / "opendss" / "Master.dss")
    repeated = build_feeder_community(dss, START, PV_PROFILE_FILE, grid_min=60, horizon_h=48, chp_count=0)
    day = repeated.load_kw[:, :24]
    np.testing.assert_array_equal(repeated.load_kw[:, 24:], day)
    # hour 10 of LOAD1 is the mean of its minutes 601..660 (the OpenDSS shape's points 601..660)
    assert day[0, 10] == pytest.approx(dss.load_p_kw["load1"].iloc[600:660].mean())
    # a CSV of one household's year
    times = pd.date_range("2016-01-01", periods=366 * 96, freq="15min")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M"),
                          "LOAD1": 0.5 + 0.4 * np.sin(np.arange(len(times)) / 96 * 2 * np.pi)})
    path = tmp_path / "meter.csv"
    frame.to_csv(path, index=False)
    mapping = tmp_path / "map.csv"
    mapping.write_text("household,connection\nLOAD1,LOAD1\n")
    one = build_feeder_community(ieee, START, PV_PROFILE_FILE, grid_min=60, horizon_h=24, mapping=mapping,
                                 load_profiles=path, pv_share=1.0, chp_count=0)
    first = (START - dt.datetime(2016, 1, 1)).days * 96
    expected = frame["LOAD1"].to_numpy()[first:first + 96].reshape(24, 4).mean(axis=1)
    np.testing.assert_allclose(one.load_kw[0], expected, rtol=1e-12)
    with pytest.raises(DataError, match=r"meter.csv\): series 'LOAD1' covers 2016-01-01 00:00:00 to 2017-01-01"):
        build_feeder_community(ieee, dt.datetime(2016, 12, 31), PV_PROFILE_FILE, grid_min=60, horizon_h=48,
                               mapping=mapping, load_profiles=path, chp_count=0)
