"""Home EV charging: the fleet model by hand, the sessions against their statistics, and the federate in the
community-battery federation (a real HELICS federation, in-process: the federate programs as threads) against the
model replayed in one loop; the federation without EVs is ``lec-cosim run``'s (processes), shared with other files."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest
from harness import ROOT, SHARED_RUNS, cli_in_process, shared_run, write_scenario

from lec_cosim.inproc import run_inproc
from lec_cosim.models.ev_charging import (
    EVFleet,
    MobilityStatistics,
    PriceForecast,
    Session,
    day_type,
    draw_sessions,
)
from lec_cosim.scenario import load_scenario

STATS = MobilityStatistics.from_folder(ROOT / "data" / "ev")


def test_uncontrolled_charges_from_arrival_at_full_power_until_the_need_is_met():
    # Arrives 10 min into the first 15-min step, needs 2 kWh at 3.6 kW: 0.3 kWh in step 0 (5 min), 0.9 kWh
    # in step 1, the last 0.8 kWh in step 2; leaves at 2 h.
    fleet = EVFleet([Session(0, 600.0, 7200.0, 2.0)], charger_kw=3.6, step_s=900.0, mode="uncontrolled")
    power = [fleet.step(k * 900.0) for k in range(8)]
    assert power == pytest.approx([1.2, 3.6, 3.2, 0, 0, 0, 0, 0])  # kW, averages over each step
    assert fleet.unmet_kwh == 0 and fleet.sessions_ended == 1
    assert fleet.session_table()[0]["delivered_kwh"] == pytest.approx(2.0)


def test_a_session_too_short_for_its_need_leaves_the_rest_unmet():
    # Plugged in 30 min at 7.2 kW: at most 3.6 kWh of the 10 kWh needed.
    fleet = EVFleet([Session(0, 0.0, 1800.0, 10.0)], charger_kw=7.2, step_s=900.0, mode="uncontrolled")
    assert [fleet.step(k * 900.0) for k in range(3)] == pytest.approx([7.2, 7.2, 0.0])
    assert fleet.unmet_kwh == pytest.approx(6.4) and fleet.session_table()[0]["unmet_kwh"] == pytest.approx(6.4)


def test_smart_charges_in_the_cheapest_steps_before_departure_and_earlier_on_equal_prices():
    # Hourly steps, prices 50, 20, 40, 20, 10; 12 kWh at 7.2 kW from 0 h to 5 h: the 10 step (7.2 kWh), then
    # the first 20 step (4.8 kWh); the second 20 step, the 40 and the 50 get nothing.
    prices = PriceForecast(3600.0)
    prices.add_day(0.0, [50, 20, 40, 20, 10] + [99] * 19)
    fleet = EVFleet([Session(0, 0.0, 5 * 3600.0, 12.0)], charger_kw=7.2, step_s=3600.0, mode="smart")
    assert [fleet.step(k * 3600.0, prices) for k in range(5)] == pytest.approx([0, 4.8, 0, 0, 7.2])
    assert fleet.unmet_kwh == pytest.approx(0.0)


def test_smart_replans_when_the_next_days_prices_arrive():
    # Plugged in from 22:00 to 03:00 needing 21.6 kWh at 7.2 kW (three hours). At 22:00 only today's prices
    # are known (22 h, 23 h: 30); the night is forecast as today's 0-2 h (40 each): charge at 22 h, 23 h and
    # midnight. Tomorrow's prices arrive at midnight (0 h: 50, 1 h and 2 h: 5): the third hour moves to 1 h.
    prices = PriceForecast(3600.0)
    prices.add_day(0.0, [40, 40, 40] + [60] * 19 + [30, 30])
    fleet = EVFleet([Session(0, 22 * 3600.0, 27 * 3600.0, 21.6)], charger_kw=7.2, step_s=3600.0, mode="smart")
    assert prices(24 * 3600.0) == 40 and prices(25 * 3600.0) == 40  # persistence: the same hour of day 0
    assert [fleet.step(t * 3600.0, prices) for t in (22, 23)] == pytest.approx([7.2, 7.2])
    prices.add_day(24 * 3600.0, [50, 5, 5] + [60] * 21)
    assert [fleet.step(t * 3600.0, prices) for t in (24, 25, 26)] == pytest.approx([0, 7.2, 0])
    assert fleet.unmet_kwh == 0 and fleet.sessions_ended == 1


def test_prices_never_seen_are_the_same_everywhere_and_hours_before_the_first_day_take_its_time_of_day():
    prices = PriceForecast(3600.0)
    assert prices(0.0) == prices(5 * 3600.0) == float("inf")  # smart then charges as early as uncontrolled
    prices.add_day(86400.0, list(range(24)))  # day 1 known only
    assert prices(3 * 3600.0) == 3 and prices(86400.0 * 2 + 7 * 3600.0) == 7


def test_a_departure_mid_step_and_a_session_open_at_the_end():
    # Leaves 20 min into step 1: 15 + 20 min plugged in at 6 kW = 3.5 kWh of the 4 kWh needed; the other
    # session is still plugged in at the end of the horizon (open: neither met nor unmet).
    fleet = EVFleet([Session(0, 0.0, 2100.0, 4.0), Session(1, 600.0, 99999.0, 50.0)], charger_kw=6.0,
                    step_s=900.0, mode="uncontrolled")
    power = [fleet.step(k * 900.0) for k in range(3)]
    assert power[0] == pytest.approx(6.0 + 2.0) and power[1] == pytest.approx(6.0 + 6.0)
    assert power[2] == pytest.approx(6.0 * 5 / 15 + 6.0)  # the 5 min before the first leaves, the second
    table = {row["ev"]: row for row in fleet.session_table()}
    assert table[0]["delivered_kwh"] == pytest.approx(3.5) and table[0]["unmet_kwh"] == pytest.approx(0.5)
    assert table[1]["unmet_kwh"] is None and fleet.sessions_ended == 1 and fleet.unmet_kwh == pytest.approx(0.5)


def test_no_session_at_all():
    fleet = EVFleet([], charger_kw=7.2, step_s=900.0, mode="smart")
    assert fleet.step(0.0, PriceForecast(3600.0)) == 0 and fleet.session_table() == []


def test_a_session_under_way_at_the_start_has_charged_as_uncontrolled_before_it():
    fleet = EVFleet([Session(0, -1800.0, 3600.0, 5.0)], charger_kw=4.0, step_s=900.0, mode="smart")
    assert fleet.session_table()[0]["delivered_kwh"] == pytest.approx(2.0)  # 30 min at 4 kW


def test_sessions_are_reproducible_and_follow_their_statistics():
    start = dt.datetime(2019, 5, 20)  # a Monday: five weekdays, then the weekend
    one = draw_sessions(STATS, 300, start, 7 * 86400.0, seed=3, consumption_kwh_per_km=0.18, battery_kwh=60.0)
    assert one == draw_sessions(STATS, 300, start, 7 * 86400.0, seed=3, consumption_kwh_per_km=0.18,
                                battery_kwh=60.0)
    assert one != draw_sessions(STATS, 300, start, 7 * 86400.0, seed=4, consumption_kwh_per_km=0.18,
                                battery_kwh=60.0)
    assert all(s.arrival_s < s.departure_s and 0 < s.energy_kwh <= 60.0 for s in one)
    assert {s.ev for s in one} == set(range(300))
    # Weekday morning departures: the share leaving between 6 and 9 h is the data's (half-hour weights of trips
    # away from home), within sampling noise (about 1,200 departures).
    weekday_leaves = [(s.departure_s % 86400) / 3600 for s in one
                      if 0 < s.departure_s < 5 * 86400 and day_type((start + dt.timedelta(seconds=s.departure_s))
                                                                      .date()) == "weekdays"]
    weights = STATS.away["weekdays"]
    expected = weights[12:18].sum() / weights.sum()
    observed = np.mean([6 <= h < 9 for h in weekday_leaves])
    assert len(weekday_leaves) > 1000 and abs(observed - expected) < 0.04, (observed, expected)
    # Away at least 7 h after leaving on a weekday (a full-time worker's day), 1 h at weekends.
    for ev in range(300):
        mine = sorted((s for s in one if s.ev == ev), key=lambda s: s.arrival_s)
        for left, back in zip(mine, mine[1:]):
            weekday = day_type((start + dt.timedelta(seconds=left.departure_s)).date()) == "weekdays"
            assert back.arrival_s - left.departure_s >= (7 if weekday else 1) * 3600 - 1e-6
    # The mean daily round trip (energy / consumption) is that of the distance classes: between the class
    # table's lower-edge and upper-edge means, doubled.
    p = STATS.distance_duration.sum(axis=1) / STATS.distance_duration.sum()
    edges = STATS.distance_edges_km
    lower, upper = 2 * (p * np.r_[0, edges[:-1]]).sum(), 2 * (p * edges).sum()
    km = np.mean([s.energy_kwh / 0.18 for s in one if s.energy_kwh < 60.0])
    assert lower < km < upper, (lower, km, upper)


def _run_inproc(paths: dict, folder) -> dict:
    """Each scenario's federation in this process (``lec_cosim.inproc``: the federate programs and configs of
    ``lec-cosim run`` as threads on HELICS's in-process core, results byte-identical to it, ``tests/test_inproc.py``):
    these runs are read for their results. Results folder ``out_<name>`` by name."""
    for name, path in paths.items():
        run_inproc(load_scenario(path), folder / f"out_{name}", timeout_s=300)
    return {name: folder / f"out_{name}" for name in paths}


@pytest.fixture(scope="module")
def ev_runs(tmp_path_factory):
    """The shipped EV scenario (smart) and the same uncontrolled, run at once, and no EVs: the shipped day of
    trondelag_arbitrage (the EV scenario's but for its EVs), a run other test files read too."""
    tmp = tmp_path_factory.mktemp("ev")
    paths = {"smart": write_scenario(tmp, "trondelag_arbitrage_ev", {}),
             "uncontrolled": write_scenario(tmp / "u", "trondelag_arbitrage_ev", {"ev.mode": "uncontrolled"})}
    runs = _run_inproc(paths, tmp)
    none_path, none = shared_run(tmp_path_factory, "trondelag_arbitrage")
    assert SHARED_RUNS["trondelag_arbitrage"] == ("trondelag_arbitrage", {}, [])
    assert load_scenario(paths["smart"]).model_dump(exclude={"name", "description", "ev"}) == \
        load_scenario(none_path).model_dump(exclude={"name", "description", "ev"})
    return {**runs, "none": none}


def _replay(run) -> np.ndarray:
    """The fleet model run in one loop over the run's own sessions and prices: its power per step, in MW."""
    ev = json.loads((run / "configs" / "ev_charging.json").read_text())["lec_cosim"]["ev"]
    summary = json.loads((run / "summary.json").read_text())
    horizon_s = summary["horizon_h"] * 3600.0
    sessions = draw_sessions(MobilityStatistics.from_folder(ev["mobility_dir"]), ev["count"],
                             dt.datetime.fromisoformat(summary["start"]), horizon_s, ev["seed"],
                             ev["consumption_kwh_per_km"], ev["battery_kwh"])
    fleet = EVFleet(sessions, ev["charger_kw"], 900.0, ev["mode"])
    prices = PriceForecast(3600.0)
    prices.add_day(0.0, pd.read_csv(run / "signals.csv")["price"].to_numpy()[::4])  # the day's vector, as published
    steps = int(horizon_s // 900)
    return np.array([fleet.step(k * 900.0, prices if ev["mode"] == "smart" else None) for k in range(steps)]) / 1000


@pytest.mark.parametrize("mode", ["smart", "uncontrolled"])
def test_the_federate_charges_as_the_model_does_and_the_grid_carries_it(ev_runs, mode):
    run, none = ev_runs[mode], ev_runs["none"]
    signals, base = pd.read_csv(run / "signals.csv"), pd.read_csv(none / "signals.csv")
    ev = signals["ev_p_mw"].to_numpy()
    np.testing.assert_allclose(ev, _replay(run), rtol=0, atol=1e-12)
    # The households, the battery and the LEC_EMS do not see the EVs; the PCC carries them, plus the change
    # of the losses (a few per cent of the EV power at most; less loss when the LEC exports, more when it
    # imports), and nothing else: without EV charging the grid solves the very same step.
    for column in ("load_p_mw", "pv_p_mw", "battery_p_mw", "setpoint_mw"):
        np.testing.assert_array_equal(signals[column], base[column])
    extra = signals["pcc_p_mw"].to_numpy() - base["pcc_p_mw"].to_numpy()
    assert np.all(np.abs(extra - ev) <= 0.05 * ev) and np.all(extra[ev == 0] == 0) and ev.max() > 0
    summary = json.loads((run / "summary.json").read_text())["kpis"]
    sessions = pd.read_csv(run / "ev_sessions.csv")
    ended = sessions.dropna(subset=["unmet_kwh"])
    assert summary["ev_energy_kwh"] == pytest.approx(ev.sum() * 0.25 * 1000)
    assert summary["ev_energy_cost"] == pytest.approx((ev * signals["price"]).sum() * 0.25)
    assert summary["ev_unmet_kwh"] == pytest.approx(ended["unmet_kwh"].sum())
    assert summary["ev_sessions_ended"] == len(ended) > 0
    assert summary["pcc_peak_p_mw"] >= json.loads((none / "summary.json").read_text())["kpis"]["pcc_peak_p_mw"]


def test_smart_charging_pays_less_per_kwh_than_charging_on_arrival(ev_runs):
    kpis = {mode: json.loads((ev_runs[mode] / "summary.json").read_text())["kpis"]
            for mode in ("smart", "uncontrolled")}
    per_kwh = {mode: k["ev_energy_cost"] / k["ev_energy_kwh"] for mode, k in kpis.items()}
    assert per_kwh["smart"] < per_kwh["uncontrolled"], per_kwh
    assert kpis["smart"]["ev_unmet_kwh"] == kpis["uncontrolled"]["ev_unmet_kwh"] == 0


@pytest.fixture(scope="module")
def three_lec_runs(tmp_path_factory):
    """The three-LEC EV scenario (smart, by tariff) and the same without EVs, 12 h at hourly grid steps."""
    tmp = tmp_path_factory.mktemp("ev3")
    changes = {"horizon_h": 12, "resolution.grid_min": 60}
    paths = {"ev": write_scenario(tmp, "ieee_eu_lv_three_lecs_ev", changes),
             "none": write_scenario(tmp / "n", "ieee_eu_lv_three_lecs", changes)}
    return _run_inproc(paths, tmp)


def test_the_three_lec_feeder_carries_the_evs_and_the_lecs_plan_without_them(three_lec_runs):
    run, none = three_lec_runs["ev"], three_lec_runs["none"]
    components = pd.read_csv(run / "components.csv")
    ev_kw = components["ev_p_mw"].to_numpy() * 1000
    assert ev_kw.max() > 7  # at least one charger at full power at some hour
    # The members' own powers and bills are those of the run without EVs (the LEC_EMSs do not see them) ...
    pd.testing.assert_frame_equal(pd.read_csv(run / "members.csv"), pd.read_csv(none / "members.csv"))
    # ... and the transformer carries the EVs' power, plus the change of the losses, at every hour.
    extra = pd.read_csv(run / "grid.csv")["trafo_p_kw"].to_numpy() - pd.read_csv(none / "grid.csv")["trafo_p_kw"].to_numpy()
    assert np.all(np.abs(extra - ev_kw) <= 0.1 * ev_kw + 1e-6) and np.all(extra[ev_kw == 0] == 0)
    kpis = json.loads((run / "summary.json").read_text())["kpis"]
    assert kpis["ev_energy_kwh"] == pytest.approx(ev_kw.sum() * 1.0)  # hourly steps
    assert kpis["ev_sessions_ended"] == components["ev_sessions_ended"].iloc[-1] > 0
    assert kpis["ev_unmet_kwh"] == 0 and "ev_energy_cost" not in kpis  # no spot price in this study
    # Smart charging follows the bihourly tariff: no EV of this morning charges in its peak (from 09:00), as
    # every one of them is plugged in over off-peak hours long enough for its need.
    hours = pd.to_datetime(components["time"]).dt.hour
    assert ev_kw[(hours >= 9).to_numpy()].sum() == 0 and ev_kw[(hours < 9).to_numpy()].sum() > 0


@pytest.mark.parametrize("base,changes,needles", [
    ("trondelag_arbitrage_ev", {"ev.count": 121}, ["ev.count: 121 EVs for 120 homes; at most one EV per home"]),
    ("trondelag_arbitrage_ev", {"grid.import_limit_mw": 0.5},
     [": ev: the LEC_EMS plans the import limit (grid.import_limit_mw)", "leave out one of the two"]),
    ("ieee_eu_lv_three_lecs_ev", {"dso.limits": True},
     [": ev: the DSO sets its limits for the next hour (dso.limits)", "leave out one of the two"]),
    ("ieee_eu_lv_three_lecs_ev", {"ev.count": 56}, ["ev.count: 56 EVs for 55 homes"]),
])
def test_ev_scenarios_that_cannot_run_as_meant_are_one_line(tmp_path, base, changes, needles, capsys):
    path = write_scenario(tmp_path, base, changes)
    done = cli_in_process(capsys, "validate", path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert all(needle in done.stderr for needle in needles), done.stderr


@pytest.mark.parametrize("file,edit,reason", [
    ("DepartureDestinationTrip_Worker.csv", lambda text: text.replace(",home,", ",house,"), "no column 'home'"),
    ("DepartureDestinationTrip_Worker.csv", lambda text: "\n".join(text.splitlines()[:-1]) + "\n",
     "weekdays: expected the 48 half hours"),
    ("DistanceDurationTrip.csv", lambda text: text.replace("0.02895", "-0.02895"), "not negative"),
    ("DistanceDurationTrip.csv", lambda text: text.replace("1,0.02895,", "1,", 1), "one probability per duration"),
])
def test_broken_trip_statistics_are_one_line_naming_the_file(tmp_path, file, edit, reason, capsys):
    import shutil

    folder = tmp_path / "ev"
    shutil.copytree(ROOT / "data" / "ev", folder)
    (folder / file).write_text(edit((folder / file).read_text()))
    path = write_scenario(tmp_path, "trondelag_arbitrage_ev", {"ev.mobility_dir": str(folder)})
    done = cli_in_process(capsys, "validate", path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"ev.mobility_dir: {folder / file}: " in done.stderr and reason in done.stderr, done.stderr


OWN_MODULES = {"lec_cosim/models/ev_charging.py", "lec_cosim/components/ev_charging.py", "federates/ev_charging.py"}


def test_no_module_but_its_own_and_its_schema_entry_names_the_ev_component():
    """A device at the homes plugs into the studies through lec_cosim.home_devices: outside its model, kind
    and program, only its schema entry (lec_cosim/schema/homes.py) may name it. A study, grid adapter, DSO
    or recorder that spells an EV port, setting or section fails here."""
    names = re.compile(r"\bev_[a-z_]+|EVCharging|\.ev\b|\bev\b")
    naming = {str(path.relative_to(ROOT)) for folder in ("lec_cosim", "federates")
              for path in (ROOT / folder).rglob("*.py") if names.search(path.read_text())}
    assert naming - OWN_MODULES == {"lec_cosim/schema/homes.py"}
    assert OWN_MODULES <= naming  # the pattern finds the component where it is


def test_the_federate_kind_tutorial_shows_the_code_the_tests_run():
    """Every Python block of the tutorial names its file in its first line and is, character for character,
    a part of that file: the tutorial cannot drift from the component it walks through (the model, the
    kind's declaration, the program and its schema entry)."""
    page = (ROOT / "docs" / "tutorials" / "add-a-federate-kind.md").read_text()
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)\n```", page, flags=re.S)
    assert len(blocks) >= 6
    files = {path for path, _ in blocks}
    parts = ("lec_cosim/models/", "lec_cosim/components/", "federates/", "lec_cosim/schema/homes.py")
    assert all(any(path.startswith(part) for path in files) for part in parts), files  # model, kind, program, entry
    for path, code in blocks:
        assert code in (ROOT / path).read_text(), f"{path}: the tutorial's block is not in the file any more"
