"""Unit tests of series playback (lec_cosim.models.timeseries)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.timeseries import DataError, on_calendar, read_price_file, read_profile_columns, step_means

ROOT = Path(__file__).resolve().parents[1]
PRICE_FILE = ROOT / "data" / "prices" / "NO1_dayahead_2019_hourly_EUR_per_MWh.csv"
LOAD_FILE = ROOT / "data" / "household" / "simbench_H0_household_profiles_2016_15min.csv"

T0 = dt.datetime(2016, 1, 1)


def quarter_hours(values, start=T0, name="x"):
    index = pd.date_range(start, periods=len(values), freq="15min")
    return pd.Series(np.asarray(values, dtype=float), index=index, name=name)


def exact_means(values, interval_s, t0_s, step_s, n_steps):
    """Means of a piecewise-constant series by brute force over whole seconds.

    All breakpoints are whole seconds, so averaging the per-second values is exact.
    """
    per_second = np.repeat(np.asarray(values, float), int(interval_s))
    return np.array([
        per_second[int(t0_s + k * step_s): int(t0_s + (k + 1) * step_s)].mean() for k in range(n_steps)
    ])


# ----------------------------------------------------------------------------------------------
# step_means
# ----------------------------------------------------------------------------------------------


def test_hourly_means_of_quarter_hours():
    s = quarter_hours([1, 2, 3, 4, 5, 6, 7, 8, 10, 10, 10, 14])
    np.testing.assert_array_equal(step_means(s, T0, 3600, 3), [2.5, 6.5, 11.0])


def test_aligned_aggregation_from_a_later_start():
    s = quarter_hours(np.arange(96))
    out = step_means(s, dt.datetime(2016, 1, 1, 5), 3600, 4)
    # Hour 5 holds samples 20..23, mean 21.5; then 25.5, 29.5, 33.5.
    np.testing.assert_array_equal(out, [21.5, 25.5, 29.5, 33.5])


def test_same_step_returns_the_values():
    values = np.random.default_rng(0).random(96)
    s = quarter_hours(values)
    np.testing.assert_array_equal(step_means(s, dt.datetime(2016, 1, 1, 2), 900, 8), values[8:16])


def test_one_minute_steps_hold_the_quarter_hour_value():
    values = [3.0, 7.0, -1.0, 2.5]
    s = quarter_hours(values)
    out = step_means(s, T0, 60, 60)
    np.testing.assert_array_equal(out, np.repeat(values, 15))
    # From the second interval, 20 one-minute steps: 15 x 7, then 5 x -1.
    out = step_means(s, dt.datetime(2016, 1, 1, 0, 15), 60, 20)
    np.testing.assert_array_equal(out, [7.0] * 15 + [-1.0] * 5)


def test_one_minute_steps_starting_inside_an_interval():
    # 00:05 is not on a 15-minute boundary: the general path must still hold the values.
    values = np.random.default_rng(1).random(8)
    s = quarter_hours(values)
    out = step_means(s, dt.datetime(2016, 1, 1, 0, 5), 60, 100)
    np.testing.assert_allclose(out, np.repeat(values, 15)[5:105], rtol=0, atol=1e-12)


def test_unaligned_steps_by_hand():
    # Values 1, 2, 3, 4 on 15-minute intervals; 20-minute steps from 00:05:
    # [5, 25) min: 10 min at 1, 10 min at 2 -> 1.5;  [25, 45) min: 5 min at 2, 15 min at 3 -> 2.75.
    s = quarter_hours([1, 2, 3, 4])
    out = step_means(s, dt.datetime(2016, 1, 1, 0, 5), 1200, 2)
    np.testing.assert_allclose(out, [1.5, 2.75], rtol=0, atol=1e-12)


def test_aligned_start_with_step_not_a_multiple_nor_divisor():
    # 20-minute steps from 00:00: [0, 20) = 15 min at 1 + 5 min at 2 -> 1.25; [20, 40) = 10 at 2 +
    # 10 at 3 -> 2.5; [40, 60) = 5 at 3 + 15 at 4 -> 3.75.
    s = quarter_hours([1, 2, 3, 4])
    np.testing.assert_allclose(step_means(s, T0, 1200, 3), [1.25, 2.5, 3.75], rtol=0, atol=1e-12)


@pytest.mark.parametrize("offset_s, step_s", [(180, 420), (37, 1000), (900, 1337), (0, 3700), (61, 59)])
def test_general_path_equals_exact_integral(offset_s, step_s):
    values = np.random.default_rng(offset_s + step_s).normal(size=32)  # 8 hours
    s = quarter_hours(values)
    n = int((32 * 900 - offset_s) // step_s)
    out = step_means(s, T0 + dt.timedelta(seconds=offset_s), step_s, n)
    np.testing.assert_allclose(out, exact_means(values, 900, offset_s, step_s, n), rtol=0, atol=1e-9)
    assert len(out) == n


def test_hourly_series_at_quarter_hours():
    # Prices are hourly: 15-minute steps hold them, also across a non-aligned start.
    index = pd.date_range("2019-01-01", periods=4, freq="h")
    s = pd.Series([10.0, 20.0, 40.0, 80.0], index=index, name="price")
    np.testing.assert_array_equal(step_means(s, dt.datetime(2019, 1, 1, 0, 30), 900, 6),
                                  [10, 10, 20, 20, 20, 20])
    np.testing.assert_allclose(step_means(s, dt.datetime(2019, 1, 1, 0, 30), 3600, 3), [15, 30, 60])


def test_the_whole_series_is_in_range():
    s = quarter_hours(np.arange(8))
    np.testing.assert_array_equal(step_means(s, T0, 7200, 1), [3.5])
    np.testing.assert_array_equal(step_means(s, dt.datetime(2016, 1, 1, 1, 45), 900, 1), [7.0])


@pytest.mark.parametrize(
    "start, step_s, n",
    [
        (dt.datetime(2015, 12, 31, 23, 45), 900, 2),   # starts before the series
        (dt.datetime(2016, 1, 1, 1), 900, 5),          # ends 15 minutes after it
        (dt.datetime(2016, 1, 1, 0, 5), 1200, 6),      # general path, ends after it
        (dt.datetime(2016, 1, 1), 60, 121),            # one minute too long
    ],
)
def test_out_of_range_raises(start, step_s, n):
    s = quarter_hours(np.arange(8), name="load_mw")
    with pytest.raises(DataError, match="series 'load_mw' covers 2016-01-01 00:00:00 to 2016-01-01 02:00:00"):
        step_means(s, start, step_s, n)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# ----------------------------------------------------------------------------------------------
# on_calendar
# ----------------------------------------------------------------------------------------------


def leap_year_profile():
    index = pd.date_range("2016-01-01", "2017-01-01", freq="15min", inclusive="left")
    return pd.Series(np.arange(len(index), dtype=float), index=index, name="p")


def test_leap_profile_on_non_leap_year_drops_29_february():
    profile = leap_year_profile()
    assert len(profile) == 366 * 96
    out = on_calendar(profile, range(2019, 2020))
    assert len(out) == 365 * 96
    assert out.index[0] == pd.Timestamp("2019-01-01 00:00")
    assert out.index[-1] == pd.Timestamp("2019-12-31 23:45")
    assert (np.diff(out.index.asi8) == 900 * 10**9).all()
    # January and February 28 unchanged; 1 March onwards the 2016 values of the same day.
    assert out["2019-01-01 00:00"] == profile["2016-01-01 00:00"]
    np.testing.assert_array_equal(out["2019-02-28"].to_numpy(), profile["2016-02-28"].to_numpy())
    np.testing.assert_array_equal(out["2019-03-01"].to_numpy(), profile["2016-03-01"].to_numpy())
    np.testing.assert_array_equal(out["2019-12-31"].to_numpy(), profile["2016-12-31"].to_numpy())
    assert not np.isin(profile["2016-02-29"].to_numpy(), out.to_numpy()).any()


def test_leap_profile_over_two_years():
    # 2019 (non-leap) then 2020 (leap, played unchanged).
    profile = leap_year_profile()
    out = on_calendar(profile, range(2019, 2021))
    assert len(out) == (365 + 366) * 96
    assert out.index.is_monotonic_increasing and out.index.is_unique
    np.testing.assert_array_equal(out["2020"].to_numpy(), profile.to_numpy())
    np.testing.assert_array_equal(out["2019-03-01"].to_numpy(), out["2020-03-01"].to_numpy())


def test_shipped_load_profile_on_2019():
    profile = read_profile_columns(LOAD_FILE, ["H0-A_pload"])["H0-A_pload"]
    out = on_calendar(profile, range(2019, 2020))
    assert len(out) == 365 * 96
    assert out.name == "H0-A_pload"
    assert (np.diff(out.index.asi8) == 900 * 10**9).all()
    np.testing.assert_array_equal(out["2019-01-01":"2019-02-28"].to_numpy(), profile.to_numpy()[: 59 * 96])
    np.testing.assert_array_equal(out["2019-03-01"].to_numpy(), profile["2016-03-01"].to_numpy())
    # Sample by sample, 1 March 2019 onwards is 1 March 2016 onwards (29 February skipped).
    np.testing.assert_array_equal(out["2019-03-01":].to_numpy(), profile.to_numpy()[60 * 96:])


def test_shipped_profile_labels_carry_summer_time():
    # The shipped SimBench files label samples in wall-clock time with summer time (03:00 follows
    # 01:45 on 27 March 2016, 02:00-02:45 repeat on 30 October). on_calendar plays samples by
    # position on a regular UTC+01:00 axis, so in summer the sample labelled 01:00 (CEST) lands at
    # 00:00 on the simulation clock, which is the same instant.
    profile = read_profile_columns(LOAD_FILE, ["H0-A_pload"])["H0-A_pload"]
    steps = np.diff(profile.index.asi8) // (60 * 10**9)
    assert sorted(set(steps)) == [-45, 15, 75]
    out = on_calendar(profile, range(2019, 2020))
    first = int(np.flatnonzero(profile.index == pd.Timestamp("2016-05-26 01:00"))[0])
    labelled = profile.to_numpy()[first : first + 96]
    np.testing.assert_array_equal(out["2019-05-26"].to_numpy(), labelled)


# ----------------------------------------------------------------------------------------------
# read_price_file
# ----------------------------------------------------------------------------------------------


def test_shipped_price_file():
    prices = read_price_file(PRICE_FILE)
    # 8 761 rows, the last at 2020-01-01 00:00+01:00.
    assert len(prices) == 8761
    assert prices.index[0] == pd.Timestamp("2019-01-01 00:00")
    assert prices.iloc[0] == 48.77
    assert prices.index[-1] == pd.Timestamp("2020-01-01 00:00")
    assert prices.iloc[-1] == 31.82
    assert prices.index.tz is None
    assert (np.diff(prices.index.asi8) == 3600 * 10**9).all()


def test_summer_time_maps_one_hour_earlier():
    prices = read_price_file(PRICE_FILE)
    # File: "2019-07-01 00:00:00+02:00,27.49" is 2019-06-30 23:00 at UTC+01:00.
    assert prices[pd.Timestamp("2019-06-30 23:00")] == 27.49
    assert prices[pd.Timestamp("2019-07-01 00:00")] == 25.39
    # Spring change: 01:00+01:00 is followed by 03:00+02:00 = 02:00 on the simulation clock.
    assert prices[pd.Timestamp("2019-03-31 01:00")] == 38.56
    assert prices[pd.Timestamp("2019-03-31 02:00")] == 38.74
    # Autumn change: 02:00+02:00 and 02:00+01:00 are 01:00 and 02:00.
    assert prices[pd.Timestamp("2019-10-27 01:00")] == 37.11
    assert prices[pd.Timestamp("2019-10-27 02:00")] == 37.11
    assert prices[pd.Timestamp("2019-10-27 03:00")] == 37.08


def write(tmp_path, text, name="prices.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_small_price_file(tmp_path):
    path = write(tmp_path, ",0\n2019-06-01 00:00:00+02:00,10.5\n2019-06-01 01:00:00+02:00,-3\n")
    prices = read_price_file(path)
    assert list(prices.index) == [pd.Timestamp("2019-05-31 23:00"), pd.Timestamp("2019-06-01 00:00")]
    assert list(prices) == [10.5, -3.0]


@pytest.mark.parametrize(
    "text, message",
    [
        (",0,extra\n2019-01-01 00:00:00+01:00,1,2\n2019-01-01 01:00:00+01:00,1,2\n",
         "expected 2 columns \\(timestamp, price\\), found 3"),
        ("price\n1\n2\n", "expected 2 columns \\(timestamp, price\\), found 1"),
        (",0\n2019-01-01 00:00:00+01:00,1\n2019-01-01 01:00:00+01:00,n/a?\n2019-01-01 02:00:00+01:00,3\n",
         "row 3: price is not a number"),
        (",0\n2019-01-01 00:00:00+01:00,1\n2019-01-01 01:00:00+01:00,2\n2019-01-01 02:00:00+01:00,\n",
         "row 4: price is not a number"),
        (",0\nyesterday,1\ntoday,2\n", "row 2: timestamp 'yesterday' has no UTC offset"),
        (",0\n2019-01-01 00:00:00+01:00,1\n2019-01-01 01:00:00,2\n", "row 3: timestamp '2019-01-01 01:00:00' has no UTC offset"),
        (",0\n2019-01-01 00:00:00+01:00,1\n2019-01-01 01:00:00+01:00,2\n2019-01-01 03:00:00+01:00,3\n",
         "evenly spaced"),
    ],
)
def test_bad_price_files_raise(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as info:
        read_price_file(path)
    assert str(info.value).startswith(str(path) + ": ")


# ----------------------------------------------------------------------------------------------
# read_profile_columns
# ----------------------------------------------------------------------------------------------


def test_profile_column_errors(tmp_path):
    path = write(tmp_path, "time,a,b\n2016-01-01T00:00,1,2\n2016-01-01T00:15,,4\n", "profile.csv")
    with pytest.raises(DataError, match="column 'c' missing"):
        read_profile_columns(path, ["c"])
    with pytest.raises(DataError, match="row 3: a is empty, not a number"):
        read_profile_columns(path, ["a"])
    frame = read_profile_columns(path, ["b"])
    assert list(frame["b"]) == [2.0, 4.0]
    no_time = write(tmp_path, "t,a\n2016-01-01T00:00,1\n", "no_time.csv")
    with pytest.raises(DataError, match="column 'time' missing"):
        read_profile_columns(no_time, ["a"])


def test_a_profile_read_again_is_the_same_and_a_changed_file_is_read_anew(tmp_path):
    """The process keeps the last tables read (a federate reads the PV profiles twice): a copy each time, and a
    file changed since is read again."""
    from lec_cosim.models.timeseries import read_profile_table

    path = tmp_path / "pv.csv"
    path.write_text("time,a\n2016-01-01T00:00,0.5\n2016-01-01T00:15,0.25\n")
    first = read_profile_table(path, ["a"])
    first.loc[0, "a"] = 9.0  # the caller's copy: the next reader must not see it
    again = read_profile_table(path, ["a"])
    assert again["a"].tolist() == [0.5, 0.25]
    path.write_text("time,a\n2016-01-01T00:00,0.75\n2016-01-01T00:15,0.25\n2016-01-01T00:30,0.125\n")
    assert read_profile_table(path, ["a"])["a"].tolist() == [0.75, 0.25, 0.125]
    path.write_text("time,a\n2016-01-01T00:00,x\n2016-01-01T00:15,0.25\n")
    with pytest.raises(DataError, match="not a number"):
        read_profile_table(path, ["a"])
