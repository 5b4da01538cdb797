"""The learning environments (lec_cosim.env) on a real federation: the Gymnasium and PettingZoo API checks,
an episode whose actions are a normal run's giving that run's results exactly, reproducible seeds, and a
federate failing mid-episode ending the step with its error.

Every episode here is a real HELICS federation (inproc core, the study's federate programs as threads:
three-phase power flows of the IEEE European LV feeder, the pool's clearing, the settlement).
"""

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from harness import seeded_episode, write_scenario
from pettingzoo.test import parallel_api_test

from federates.common import INJECTED_HANGS_END
from lec_cosim.env import LecEnv, LecParallelEnv, describe_spaces
from lec_cosim.inproc import run_inproc
from lec_cosim.launch import FederationError
from lec_cosim.models.lem_community import community_from_scenario, read_learned_bids
from lec_cosim.scenario import ScenarioError, load_scenario

HOURS = 4
CHPS = [f"CHP{k}" for k in range(1, 7)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("env")


@pytest.fixture(scope="module")
def two_chps(folder):
    """Case 1 for a few hours with two of its CHPs handed to agents (the others keep their ACO bids)."""
    return load_scenario(write_scenario(folder / "two", "ieee_eu_lv_lem_plain",
                                        {"horizon_h": HOURS, "agents": ["CHP2", "CHP5"]}))


def test_gymnasium_check_env(two_chps, tmp_path):
    env = LecEnv(two_chps, work_dir=tmp_path)
    try:
        check_env(env, skip_render_check=True)
        assert env.action_space.shape == (2,) and env.observation_space.shape == (8,)
        low, high = env.action_space.low, env.action_space.high
        assert low[1] == 0 and high[1] == pytest.approx(10.0)  # 0 to the CHP's 10 kWh an hour
        assert low[0] == pytest.approx(0.045)  # the opportunity cost of a 10 kW CHP: the feed-in tariff
        assert high[0] == pytest.approx(0.158)  # the plain retail tariff
    finally:
        env.close()


def test_pettingzoo_parallel_api_test(two_chps, tmp_path):
    env = LecParallelEnv(two_chps, work_dir=tmp_path)
    try:
        parallel_api_test(env, num_cycles=2 * HOURS)
        assert env.possible_agents == ["CHP2", "CHP5"]
    finally:
        env.close()


def test_an_episode_of_a_normal_runs_actions_gives_its_results(folder, tmp_path):
    """All six CHPs as agents offering their ACO bids at full capacity: the federation with the agent proxy
    gives the normal run's (ACO strategy) results, byte for byte, and the rewards are the CHPs' money."""
    normal = load_scenario(write_scenario(folder / "normal", "ieee_eu_lv_lem_plain", {"horizon_h": HOURS}))
    played = load_scenario(write_scenario(folder / "six", "ieee_eu_lv_lem_plain",
                                          {"horizon_h": HOURS, "agents": CHPS}))
    run_inproc(normal, tmp_path / "normal")  # as a process run (tests/test_inproc.py), faster
    bids = read_learned_bids(normal.market.learned_bids_file, community_from_scenario(normal), "plain")
    env = LecParallelEnv(played, work_dir=tmp_path / "env", federation="per_episode")  # one with results files
    try:
        observations, infos = env.reset(seed=0)
        assert infos["CHP1"]["day"] == "2016-05-26"
        money = dict.fromkeys(CHPS, 0.0)
        seen, paid = [], []
        for hour in range(HOURS):
            actions = {chp: np.array([bids[chp][hour], 10.0]) for chp in CHPS}
            observations, rewards, terminations, truncations, infos = env.step(actions)
            for chp in CHPS:
                money[chp] += rewards[chp]
            seen.append({chp: observations[chp] for chp in CHPS})
            paid.append(dict(rewards))
        assert all(terminations.values()) and not env.agents
        run_dir = tmp_path / "env" / "episode_000001"
        assert infos["CHP1"]["run_dir"] == str(run_dir)
    finally:
        env.close()
    csvs = sorted(p.name for p in (tmp_path / "normal").glob("*.csv"))
    assert "settlement.csv" in csvs and "grid.csv" in csvs
    for name in csvs:
        assert (run_dir / name).read_bytes() == (tmp_path / "normal" / name).read_bytes(), name
    ours = json.loads((run_dir / "summary.json").read_text())["kpis"]
    theirs = json.loads((tmp_path / "normal" / "summary.json").read_text())["kpis"]
    assert ours == theirs
    producers = theirs["producers"]
    assert sum(money.values()) == pytest.approx(producers["profit_eur"], abs=1e-9)
    # what each CHP saw after hour k is hour k's row of the normal run's results, its reward that hour's money
    clearing = pd.read_csv(tmp_path / "normal" / "clearing.csv")
    settlement = pd.read_csv(tmp_path / "normal" / "settlement.csv").set_index(["time", "participant"])
    for hour in range(HOURS):
        time = clearing["time"][hour]
        for chp in CHPS:
            price, cleared, volume, sold = seen[hour][chp][3:7]
            assert cleared == 1 and price == pytest.approx(clearing["price"][hour], rel=1e-6)
            assert volume == pytest.approx(clearing["volume_kwh"][hour], rel=1e-6)
            row = settlement.loc[(time, chp)]
            assert sold == pytest.approx(row["lem_sold_kwh"], abs=1e-5)
            assert paid[hour][chp] == pytest.approx(row["income_eur"] - row["cost_eur"], abs=1e-9)
    assert any(paid[hour][chp] > 0 for hour in range(HOURS) for chp in CHPS)


def test_seeds_choose_the_same_days_and_give_the_same_episode(two_chps, tmp_path):
    days = ["2016-05-26", "2016-06-21", "2016-07-14"]

    def episode(seed):
        env = LecEnv(two_chps, work_dir=tmp_path / f"run{len(list(tmp_path.iterdir()))}", days=days)
        try:
            observation, info = env.reset(seed=seed)
            rng = np.random.default_rng(seed)
            trace = [observation]
            for _ in range(HOURS):
                action = env.action_space.low + rng.random(2) * (env.action_space.high - env.action_space.low)
                observation, reward, terminated, truncated, _ = env.step(action)
                trace += [observation, np.array([reward])]
            assert terminated
            return info["day"], np.concatenate(trace)
        finally:
            env.close()

    day_a, trace_a = episode(7)
    day_b, trace_b = episode(7)
    assert day_a == day_b and day_a in days
    np.testing.assert_array_equal(trace_a, trace_b)
    second = trace_a[8:16]  # the observation after the first hour: its price, volume and DN impact are known
    assert second[3] > 0 and second[4] == 1 and second[5] > 0 and second[7] > 0


PINNED_EPISODE = """
import json, os, sys
tests, path, work_dir, cpu, hours = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, tests)
from harness import seeded_episode
from lec_cosim.env import LecEnv
env = LecEnv(path, work_dir=work_dir, cpu=cpu)
trace = seeded_episode(env, hours)
cpus = sorted({c for task in os.listdir("/proc/self/task") for c in os.sched_getaffinity(int(task))})
threads = len(os.listdir("/proc/self/task"))
env.close()
print(json.dumps({"cpus": cpus, "threads": threads, "trace": trace}))
"""


def test_a_pinned_environment_runs_its_federation_on_its_cpu_with_the_same_episode(two_chps, tmp_path):
    """``cpu=`` pins the environment's process, the federation's threads included (they start after the pinning),
    to one CPU; the episode is the unpinned one's to the last bit. In a subprocess: pinning is process-wide."""
    import os
    import subprocess
    import sys

    cpu = max(os.sched_getaffinity(0))
    done = subprocess.run([sys.executable, "-c", PINNED_EPISODE, str(Path(__file__).parent), str(two_chps.source_file),
                           str(tmp_path / "pinned"), str(cpu), str(HOURS)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    pinned = json.loads(done.stdout.strip().splitlines()[-1])
    assert pinned["cpus"] == [cpu] and pinned["threads"] >= 5  # the proxy, three federates, HELICS's own
    env = LecEnv(two_chps, work_dir=tmp_path / "free")
    try:
        trace = seeded_episode(env, HOURS)
    finally:
        env.close()
    assert pinned["trace"] == json.loads(json.dumps(trace))
    with pytest.raises(ValueError, match="not one of this process's CPUs"):
        LecEnv(two_chps, work_dir=tmp_path / "bad", cpu=max(os.sched_getaffinity(0)) + 1)


def test_a_federate_failing_mid_episode_ends_the_step_with_its_error(two_chps, tmp_path):
    def arm(run_dir):
        config = run_dir / "configs" / "dso.json"
        data = json.loads(config.read_text())
        data["lec_cosim"]["inject_fault_at_s"] = 2 * 3600.0
        config.write_text(json.dumps(data))

    before = set(threading.enumerate())
    env = LecEnv(two_chps, work_dir=tmp_path, prepare=arm)
    try:
        env.reset(seed=0)
        env.step(env.action_space.low)
        env.step(env.action_space.low)
        with pytest.raises(FederationError) as failed:
            env.step(env.action_space.low)
        assert failed.value.federate == "dso"
        assert "injected fault at 7200" in str(failed.value)
        env.reset(seed=0)  # the environment plays on with a fresh federation
    finally:
        env.close()
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith("federate ")]
    assert not left, left


def test_a_federate_that_hangs_ends_the_step_at_its_deadline(two_chps, tmp_path):
    """The DSO hangs inside its step (as a solver that never returns): the step ends after step_timeout_s with
    the deadline's error, not never; once let go, the hung thread leaves."""
    def arm(run_dir):
        config = run_dir / "configs" / "dso.json"
        data = json.loads(config.read_text())
        data["lec_cosim"]["inject_hang_at_s"] = 3600.0
        config.write_text(json.dumps(data))

    before = set(threading.enumerate())
    env = LecEnv(two_chps, work_dir=tmp_path, prepare=arm, step_timeout_s=5.0)  # the start has START_TIMEOUT_S
    release = threading.Timer(6.5, INJECTED_HANGS_END.set)
    try:
        env.reset(seed=0)
        env.step(env.action_space.low)  # hour 0: the DSO plays it
        # a thread busy in a model cannot be killed: let it go once the deadline has ended the federation, while
        # the environment waits a little for its threads (else that wait would be all of its 10 s)
        release.start()
        with pytest.raises(FederationError) as stalled:
            env.step(env.action_space.low)  # hour 1: the DSO does not come back
        assert stalled.value.stalled and "did not play period 1 within 5 s" in str(stalled.value)
        # a federation on global time that stalls may be HELICS's coordinator: the next coordinate among cores
        assert env.play.global_time is False and env.play.episode is None
        release.join()
    finally:
        release.cancel()
        INJECTED_HANGS_END.set()
        try:
            env.close()
            for thread in threading.enumerate():
                if thread not in before and thread.name.startswith("federate "):
                    thread.join(10.0)  # let go, it finds its federation ended and leaves
        finally:
            INJECTED_HANGS_END.clear()
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith("federate ")]
    assert not left, left


def test_a_scenario_with_agents_runs_only_in_an_environment(two_chps):
    from lec_cosim.checks import check_data

    with pytest.raises(ScenarioError, match="agents: CHP2, CHP5 are decided by an external agent"):
        check_data(two_chps)
    text = describe_spaces(two_chps)
    assert "| price_eur_per_kwh | EUR/kWh | 0.045 | 0.158 |" in text
    assert "| last_dn_impact | 1 |" in text


def test_a_long_lived_federation_plays_each_episode_as_a_fresh_one(folder, tmp_path, monkeypatch):
    """Episodes of one long-lived federation (the default: time runs on, nothing is rebuilt, the models rewound)
    give the observations, rewards and DSO counts of a new federation per episode, also after an episode cut
    short. Fourteen hours, so that the midday PV drives buses out of band and the DSO's count of distinct
    violated buses so far (which its reset must rewind) is not zero."""
    hours = 14
    played = load_scenario(write_scenario(folder / "pair", "ieee_eu_lv_lem_plain",
                                          {"horizon_h": hours, "agents": ["CHP1", "CHP4"]}))
    days = ["2016-05-26", "2016-05-27"]
    rng = np.random.default_rng(3)
    plans = {day: [{chp: rng.uniform([0.045, 0.0], [0.158, 10.0]) for chp in ("CHP1", "CHP4")}
                   for _ in range(hours)] for day in days}

    def play(env, day, steps=hours):
        observations, _ = env.reset(options={"day": day})
        trace = [np.concatenate(list(observations.values()))]
        for hour in range(steps):
            observations, rewards, terminations, _, infos = env.step(plans[day][hour])
            trace += [np.concatenate(list(observations.values())), np.array(list(rewards.values())),
                      np.array([infos["CHP1"]["violated_buses_so_far"]])]
        assert all(terminations.values()) == (steps == hours)
        return np.concatenate(trace), infos["CHP1"]["violated_buses_so_far"]

    long_lived = LecParallelEnv(played, days=days, work_dir=tmp_path / "long")
    try:
        play(long_lived, "2016-05-27")  # a whole episode: its violated buses must not count in the next
        play(long_lived, "2016-05-26", steps=2)  # cut short
        second, violated = play(long_lived, "2016-05-27")
        third, _ = play(long_lived, "2016-05-26")
        assert long_lived.play.episode.episodes == 4 and long_lived.play._federations == 1
        with pytest.raises(RuntimeError, match="episode is over"):
            long_lived.step(plans["2016-05-26"][0])
        with pytest.raises(ValueError, match="not one of the environment's days"):
            long_lived.reset(options={"day": "2016-06-01"})
    finally:
        long_lived.close()
    assert violated > 0
    fresh = LecParallelEnv(played, days=days, work_dir=tmp_path / "fresh", federation="per_episode")
    try:
        np.testing.assert_array_equal(second, play(fresh, "2016-05-27")[0])
        np.testing.assert_array_equal(third, play(fresh, "2016-05-26")[0])
    finally:
        fresh.close()
    assert not np.array_equal(second, third)  # the two days differ (PV, and so prices)

    # HELICS 3.6.1's global time coordinator, which a long-lived federation uses, stops granting after some
    # 32,000 grants: the environment rebuilds its federation at an episode's start before a budget of grants
    # (lec_cosim.inproc.GLOBAL_TIME_GRANTS) runs out, and runs episodes of more than a quarter of the budget on
    # distributed coordination. An episode here takes about 80 grants, 96 by the federates' schedules: a budget
    # of 400 rebuilds the federation for the fourth episode (after three, 3 x 80 + 2 x 96 > 400), one of 200
    # keeps it on distributed coordination from the start. The episodes stay those of a fresh federation.
    for budget, global_time, federations, rounds in ((400, True, 2, 3), (200, False, 1, 1)):
        monkeypatch.setattr("lec_cosim.inproc.GLOBAL_TIME_GRANTS", budget)
        rebuilt = LecParallelEnv(played, days=days, work_dir=tmp_path / f"budget{budget}")
        try:
            traces = [play(rebuilt, day)[0] for day in ("2016-05-27", "2016-05-26") * rounds]
            assert rebuilt.play._federations == federations and rebuilt.play.global_time == global_time, budget
            assert rebuilt.play.episode.federation.global_time == global_time
        finally:
            rebuilt.close()
        assert len(traces) == 2 * rounds
        for trace, expected in zip(traces, (second, third) * rounds):
            np.testing.assert_array_equal(trace, expected)


def test_a_cross_entropy_learner_beats_truthful_bidding_on_a_held_out_day(folder):
    """A small numpy learner (the cross-entropy method over the six CHPs' hourly offer price, one policy for all)
    trained on one day, through the same environment a user has, earns the CHPs more than truthful bidding on
    another day."""
    played = load_scenario(write_scenario(folder / "cem", "ieee_eu_lv_lem_plain",
                                          {"horizon_h": HOURS, "agents": CHPS}))
    env = LecParallelEnv(played, days=["2016-05-26", "2016-05-27"])
    low, high = env.action_bounds["CHP1"]  # float64: the truthful bid exactly

    def profit(day, prices):
        env.reset(options={"day": day})
        total = 0.0
        for hour in range(HOURS):
            _, rewards, *_ = env.step({chp: np.array([prices[hour], high[1]]) for chp in CHPS})
            total += sum(rewards.values())
        return total

    try:
        rng = np.random.default_rng(0)
        mean, std = np.full(HOURS, (low[0] + high[0]) / 2), np.full(HOURS, (high[0] - low[0]) / 2)
        for _ in range(4):
            candidates = np.clip(mean + std * rng.standard_normal((8, HOURS)), low[0], high[0])
            scores = [profit("2016-05-26", prices) for prices in candidates]
            elite = candidates[np.argsort(scores)[-3:]]
            mean, std = elite.mean(axis=0), elite.std(axis=0) + 1e-3
        learned, truthful = profit("2016-05-27", mean), profit("2016-05-27", np.full(HOURS, low[0]))
    finally:
        env.close()
    assert truthful > 0  # truthful bidding never loses money: every accepted kWh earns its marginal cost
    assert learned > 1.5 * truthful, (learned, truthful)


# --- the community battery's LEC_EMS as a role: the second study -------------------------------------------------


@pytest.fixture(scope="module")
def battery(folder):
    """Six hours of the arbitrage scenario at 15-min EMS steps, the LEC_EMS handed to an agent."""
    return load_scenario(write_scenario(folder / "battery", "trondelag_arbitrage",
                                        {"horizon_h": 6, "resolution.ems_min": 15, "agents": ["lec_ems"]}))


def test_the_battery_environments_pass_the_api_checks(battery, tmp_path):
    env = LecEnv(battery, work_dir=tmp_path / "gym")
    try:
        check_env(env, skip_render_check=True)
        assert env.action_space.low[0] == -0.6 and env.action_space.high[0] == 0.6  # the battery's 0.6 MW
    finally:
        env.close()
    env = LecParallelEnv(battery, work_dir=tmp_path / "zoo")
    try:
        parallel_api_test(env, num_cycles=30)
        assert env.possible_agents == ["lec_ems"]
    finally:
        env.close()


def test_the_lps_set_points_played_by_an_agent_give_the_lps_run(folder, battery, tmp_path):
    """The LEC_EMS's LP as a normal run; its set-points played through the environment give the same battery,
    grid and energy cost (the rewards sum to minus the LP's cost), and long-lived episodes (one after another cut
    short on another day, the battery's state of charge rewound) give the same again."""
    normal = load_scenario(write_scenario(folder / "lp", "trondelag_arbitrage",
                                          {"horizon_h": 6, "resolution.ems_min": 15}))
    run_inproc(normal, tmp_path / "lp")
    lp = pd.read_csv(tmp_path / "lp" / "signals.csv")
    cost = json.loads((tmp_path / "lp" / "summary.json").read_text())["kpis"]["energy_cost"]
    assert len(lp) == 24 and lp["setpoint_mw"].abs().max() > 0.1

    def play(env, day="2019-05-26", steps=24):
        observation, _ = env.reset(options={"day": day})
        trace, total = [observation], 0.0
        for k in range(steps):
            observation, reward, terminated, _, info = env.step(np.array([lp["setpoint_mw"][k]]))
            trace.append(np.append(observation, reward))
            total += reward
        return np.concatenate(trace), total, info

    env = LecEnv(battery, federation="per_episode", work_dir=tmp_path / "per_episode")
    try:
        fresh, total, info = play(env)
    finally:
        env.close()
    assert total == pytest.approx(-cost, abs=1e-9)
    ours = pd.read_csv(f"{info['run_dir']}/signals.csv")
    for column in lp.columns.drop("planned_soc_mwh"):  # an agent plans nothing: NaN
        assert ours[column].equals(lp[column]), column
    assert ours["planned_soc_mwh"].isna().all()
    env = LecEnv(battery, days=["2019-05-26", "2019-05-27"], work_dir=tmp_path / "long_lived")
    try:
        play(env, "2019-05-27", steps=5)  # cut short, the battery half discharged
        long_lived, _, _ = play(env)
    finally:
        env.close()
    np.testing.assert_array_equal(long_lived, fresh)


def test_episodes_start_where_every_federate_can_be_granted():
    """Episodes start at multiples of every federate's period (their least common multiple), not only of the
    longest: with 45-min grid steps under an hourly market that is every 3 h."""
    from lec_cosim.wiring import FederatePlan, with_episode_control

    plans = [FederatePlan("agent", "federates.agent", 2700.0, 0.001),
             FederatePlan("market", "federates.market", 3600.0, 0.0),
             FederatePlan("participants", "federates.lem_participants", 0.001, 0.0),
             FederatePlan("recorder", "federates.recorder", 2700.0, 0.004)]
    out = with_episode_control(plans, "agent", without=("recorder",))
    assert [p.name for p in out] == ["agent", "market", "participants"]
    assert {p.settings["episode_period_s"] for p in out} == {10800.0}
    assert all(p.settings.get("episode_control") for p in out[1:]) and "episode_control" not in out[0].settings


def test_the_battery_s_end_state_is_valued_through_its_efficiency(battery):
    """The last reward's value of the state of charge: a gain can deliver only its one-way share, a loss costs
    more to put back (so no end state is worth more than the LP, which must end where it began, could reach)."""
    from lec_cosim.studies.community_battery.agents import CommunityBatteryRoles

    class Ports:  # the proxy's input ports as the roles read them: values, no HELICS
        def __init__(self, soc):
            self.soc = soc

        def read_port(self, port):
            return {"households/soc_mwh": self.soc, "market/price": 40.0, "market/export_price": 40.0}[port]

    roles = CommunityBatteryRoles(battery)
    roles.observe(Ports(0.6), "lec_ems", 0, first=True)
    roles.before_step(Ports(0.6))
    one_way = 0.95 ** 0.5
    assert roles.terminal_eur(Ports(0.6), "lec_ems") == 0.0
    assert roles.terminal_eur(Ports(0.8), "lec_ems") == pytest.approx(0.2 * 40.0 * one_way)
    assert roles.terminal_eur(Ports(0.4), "lec_ems") == pytest.approx(-0.2 * 40.0 / one_way)
