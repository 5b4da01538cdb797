"""The forecasters of ``lec_cosim.models.forecast`` on hand-made series and on the shipped three-LEC day.

Persistence and the seasonal naive method give exact values, worked out here; the learned model is trained on the
days before the run's start only and never moves when the run's own future changes; the history before the start
is the shipped data (the IEEE loads' typical day, the SimBench PV of the days before).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.forecast import (
    HourlySeries,
    Learned,
    Persistence,
    SeasonalNaive,
    forecasts_from_scenario,
)
from lec_cosim.models.multi_lec import multi_lec_members
from lec_cosim.models.multi_lec_ems import hourly_mean, members_from_scenario
from lec_cosim.scenario import ScenarioError, load_scenario, write_scenario_variant

SHIPPED = Path(__file__).resolve().parents[1] / "scenarios" / "ieee_eu_lv_three_lecs.yaml"
START = pd.Timestamp("2016-05-01")


def ramp(n_hours: int) -> HourlySeries:
    """Two series whose value is the hour's index (and ten times it): every lag is read off the value."""
    t = np.arange(n_hours, dtype=float)
    return HourlySeries(START, np.vstack([t, 10 * t]))


def test_persistence_holds_the_last_metered_hour():
    past = ramp(50)
    np.testing.assert_array_equal(Persistence().forecast(past, 4), [[49.0] * 4, [490.0] * 4])
    with pytest.raises(ValueError, match="one hour"):
        Persistence().forecast(ramp(0), 3)


def test_seasonal_naive_repeats_the_last_day_or_week():
    """Origin T = 200 (hours 0..199 known). Period 24: hour T+k takes T+k-24 for k < 24, T+k-48 for 24 <= k < 48
    (FPP3's y_{T+h-m(floor((h-1)/m)+1)} with h = k + 1). Period 168: T+k-168 while k < 168."""
    past = ramp(200)
    day = SeasonalNaive(24).forecast(past, 30)
    np.testing.assert_array_equal(day[0, :24], np.arange(176, 200))
    np.testing.assert_array_equal(day[0, 24:], np.arange(176, 182))
    np.testing.assert_array_equal(day[1], 10 * day[0])
    week = SeasonalNaive(168).forecast(past, 5)
    np.testing.assert_array_equal(week[0], [32, 33, 34, 35, 36])
    with pytest.raises(ValueError, match="168 h before"):
        SeasonalNaive(168).forecast(ramp(100), 5)


def daily_pattern(days: int, seed: int = 3) -> HourlySeries:
    """A PV-like series: a midday bump whose size changes from day to day, and a load-like one with a weekly
    rhythm (weekends 30 % higher) and noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * days)
    bump = np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
    pv = bump * np.repeat(rng.uniform(0.3, 1.0, days), 24) * 8.0
    weekday = (START + pd.to_timedelta(hours, unit="h")).weekday
    load = (1.0 + 0.5 * np.cos((hours % 24 - 19) / 24 * 2 * np.pi)) * np.where(weekday >= 5, 1.3, 1.0)
    return HourlySeries(START, np.vstack([pv, load + rng.normal(0, 0.02, len(hours))]))


def test_learned_model_learns_a_daily_and_weekly_pattern():
    """Trained on 28 days (and the week of lags before them), it forecasts the next day of the load-like series
    to within 6 % of its mean and the PV-like one better than persistence, which misses the day's shape."""
    series = daily_pattern(50)
    origin = 24 * 40
    learned = Learned(training_days=28)
    learned.fit(series.before(origin))
    forecast = learned.forecast(series.before(origin), 24)
    truth = series.values[:, origin:origin + 24]
    mae = np.abs(forecast - truth).mean(axis=1)
    persistence = np.abs(Persistence().forecast(series.before(origin), 24) - truth).mean(axis=1)
    assert mae[1] < 0.06 * truth[1].mean()
    assert mae[0] < 0.5 * persistence[0]
    assert (forecast >= 0).all()


def test_learned_model_never_sees_the_future():
    """Fitted and asked at the same origin, it gives the same forecast whatever comes after the origin: the
    series it gets ends there (``before``), and two series that differ only after it train the same model."""
    series = daily_pattern(50)
    changed = HourlySeries(START, series.values.copy())
    origin = 24 * 40
    changed.values[:, origin:] *= 3.0
    forecasts = []
    for s in (series, changed):
        model = Learned(training_days=28)
        model.fit(s.before(origin))
        forecasts.append(model.forecast(s.before(origin), 24))
    np.testing.assert_array_equal(forecasts[0], forecasts[1])
    with pytest.raises(ValueError, match="needs 840 h"):
        Learned(training_days=28).fit(series.before(800))


@pytest.fixture(scope="module")
def shipped():
    scenario = load_scenario(SHIPPED).model_copy(update={"horizon_h": 12})
    return scenario, members_from_scenario(scenario)


def with_forecast(scenario, forecast: str, **ems):
    return scenario.model_copy(update={"ems": scenario.ems.model_copy(update={"forecast": forecast, **ems})})


def test_seasonal_naive_on_the_shipped_day_is_the_day_before(shipped):
    """The IEEE loads are one typical day: the same hour of the day before is exact. The PV is 25 May's: each
    LEC's forecast at 00:00 is the LECs' PV of 25 May, from the members the model builds for that day."""
    scenario, members = shipped
    forecasts = forecasts_from_scenario(with_forecast(scenario, "seasonal_naive"), members)
    day_before = multi_lec_members("2016-05-25", 15, data_dir=scenario.feeder.data_dir,
                                   pv_file=scenario.pv.profile_file, load_peak_kw=scenario.feeder.load_peak_kw,
                                   pv_peak_kw=scenario.pv.peak_kw, horizon_h=12)
    pv_before = hourly_mean(day_before, day_before.lec_pv_kw)
    truth_net = hourly_mean(members, members.net_demand_kw)
    truth_pv = hourly_mean(members, members.lec_pv_kw)
    for i in range(3):
        net, pv = forecasts.lec(i, 0, 12)
        np.testing.assert_allclose(pv, pv_before[i], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(net + pv, truth_net[i] + truth_pv[i], rtol=1e-12, atol=1e-9)  # the load
    assert np.abs(pv_before - truth_pv).max() > 0.5  # 25 May's sun is not quite 26 May's (0.89 kW at most)


def test_perfect_foresight_is_the_members_profiles(shipped):
    """The default plans on what the EMSs planned on before forecasts existed, to the bit."""
    scenario, members = shipped
    forecasts = forecasts_from_scenario(scenario, members)
    assert forecasts.strategy == "perfect"
    for hour in (0, 7):
        net, pv = forecasts.all_lecs(hour, 12 - hour)
        np.testing.assert_array_equal(net, hourly_mean(members, members.net_demand_kw)[:, hour:])
        np.testing.assert_array_equal(pv, hourly_mean(members, members.lec_pv_kw)[:, hour:])
        load, pv = forecasts.member(3, hour, 12 - hour)
        np.testing.assert_array_equal(load, hourly_mean(members, members.load_kw)[3, hour:])


def test_forecasts_do_not_move_when_the_run_s_future_changes(shipped):
    """Every forecast made at hour h is the same when the households' profiles from h on change (PV halved, load
    doubled): persistence and the learned model alike. Perfect foresight moves (the change is there to see)."""
    scenario, members = shipped
    per_hour = 60 // members.grid_min
    changed_from = 6
    load, pv = members.load_kw.copy(), members.pv_kw.copy()
    load[:, changed_from * per_hour:] *= 2.0
    pv[:, changed_from * per_hour:] *= 0.5
    future = type(members)(**{**members.__dict__, "load_kw": load, "pv_kw": pv})
    for forecast in ("persistence", "learned"):
        s = with_forecast(scenario, forecast)
        one = forecasts_from_scenario(s, members, lecs=["lec2"])
        other = forecasts_from_scenario(s, future, lecs=["lec2"])
        for hour in range(changed_from + 1):
            np.testing.assert_array_equal(one.lec(1, hour, 12 - hour), other.lec(1, hour, 12 - hour))
        if forecast == "persistence":  # the first changed hour, once metered, is what it holds
            assert not np.allclose(one.lec(1, changed_from + 1, 3)[0], other.lec(1, changed_from + 1, 3)[0])
    one, other = forecasts_from_scenario(scenario, members), forecasts_from_scenario(scenario, future)
    assert not np.allclose(one.lec(1, 0, 12)[0], other.lec(1, 0, 12)[0])


@pytest.mark.parametrize(("changes", "message"), [
    ({"ems.forecast": "learned", "start": "2016-01-20T00:00:00"},
     "ems.forecast: learned needs 35 days of PV data before the start"),
    ({"ems.forecast": "seasonal_naive", "ems.seasonal_period_h": 168, "start": "2016-01-03T00:00:00"},
     "needs 7 days of PV data"),
    ({"ems.forecast": "tomorrow"}, "ems.forecast"),
])
def test_a_forecast_without_history_is_refused(tmp_path, changes, message):
    path = write_scenario_variant(SHIPPED, changes, tmp_path)
    with pytest.raises(ScenarioError, match=message) as error:
        load_scenario(path)
    assert "\n" not in str(error.value)
