"""The homes' EV charging as a learning-agent role (``agents: [ev_charging]``) on a real federation: the API checks,
a normal run's smart (and uncontrolled) charging played as actions giving that run's results byte for byte and
rewards that sum to its cost, a long-lived federation's episodes equal to a fresh federation's, seeded episodes.

Every episode is a real HELICS federation of the community battery with 40 EVs (inproc core, the federate
programs as threads: the LEC_EMS's LP, the EV model, pandapower's power flow, the recorder). Its day is the
shipped scenario's whole day: the EVs leave in the morning and come home in the evening, and a horizon under a
day would also shorten the day-ahead price vector the smart mode plans on.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from harness import write_scenario
from pettingzoo.test import parallel_api_test

from lec_cosim.components.ev_charging import UNMET_PENALTY_EUR_PER_KWH
from lec_cosim.env import LecEnv, LecParallelEnv, describe_spaces
from lec_cosim.inproc import run_inproc
from lec_cosim.models.ev_charging import OUTLOOK_FIELDS, PriceForecast, fleet_of
from lec_cosim.models.prices import PriceFeed
from lec_cosim.scenario import ScenarioError, load_scenario

DAY, NEXT_DAY = "2019-05-26", "2019-05-27"
STEPS = 96  # a day of 15-min grid steps
EVS = 40
PRICES_AHEAD = 24  # the step's price and 23 hours ahead
EV_PART = slice(2 + PRICES_AHEAD, None)  # the observation's per-EV part: plugged_in, need, hours left, most now


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("env_ev")


@pytest.fixture(scope="module")
def ev_agent(folder):
    """The shipped EV day (LEC_EMS's LP at hourly steps, 40 EVs) with the EVs' charging handed to an agent."""
    return load_scenario(write_scenario(folder / "agent", "trondelag_arbitrage_ev", {"agents": ["ev_charging"]}))


def smart_decisions(scenario):
    """What the smart mode decides for each EV in each step of the scenario's day (kW, the step's average), and
    what the EVs' chargers knew before each step: the EV model alone, fed the day-ahead prices the market
    publishes at the start, as the EV federate is."""
    fleet = fleet_of(scenario.ev, scenario.start, scenario.end_s, scenario.grid_step_s)
    prices = PriceForecast(scenario.market_step_s)
    prices.add_day(0.0, PriceFeed.from_scenario(scenario).prices(scenario.start, scenario.market_step_s, 24)["price"])
    decided, outlooks, totals = [], [], []
    for k in range(STEPS):
        outlooks.append(fleet.outlook(k * scenario.grid_step_s).T.ravel())
        totals.append(fleet.step(k * scenario.grid_step_s, prices) / 1000.0)
        decided.append(np.pad(fleet.power_kw_by_ev, (0, EVS - len(fleet.power_kw_by_ev))))
    outlooks.append(fleet.outlook(STEPS * scenario.grid_step_s).T.ravel())
    return decided, outlooks, np.array(totals)


def normal_run(folder, name, mode):
    scenario = load_scenario(write_scenario(folder / name, "trondelag_arbitrage_ev", {"ev.mode": mode}))
    run_inproc(scenario, folder / name / "run")
    return scenario, folder / name / "run"


def play(env, actions, day=DAY):
    """One episode with these actions (one per step); the observations (the first from reset) and rewards, and the
    last step's info with every step's power at the PCC (``pcc_p_mw_so_far``)."""
    observation, _ = env.reset(options={"day": day})
    seen, rewards, pcc = [observation], [], []
    for action in actions:
        observation, reward, terminated, _, info = env.step(action)
        seen.append(observation)
        rewards.append(reward)
        pcc.append(info["pcc_p_mw"])
    return seen, rewards, terminated, {**info, "pcc_p_mw_so_far": pcc}


def in_both_federations(scenario, actions, tmp_path):
    """The episode of ``DAY`` with these actions in a new federation, and in a long-lived one after an episode of
    ``NEXT_DAY``: what :func:`play` gives of each."""
    fresh = LecEnv(scenario, federation="per_episode", work_dir=tmp_path / "fresh")
    try:
        first = play(fresh, actions)
    finally:
        fresh.close()
    long_lived = LecEnv(scenario, days=[DAY, NEXT_DAY], work_dir=tmp_path / "long")
    try:
        play(long_lived, actions, day=NEXT_DAY)
        again = play(long_lived, actions)
    finally:
        long_lived.close()
    return first, again


@pytest.fixture(scope="module")
def smart_replayed(folder, ev_agent):
    """A normal run of the day in smart mode, and its decisions played through a per-episode environment."""
    scenario, run = normal_run(folder, "smart", "smart")
    decided, outlooks, totals = smart_decisions(scenario)
    env = LecEnv(ev_agent, federation="per_episode", work_dir=folder / "per_episode")
    try:
        seen, rewards, terminated, info = play(env, decided)
    finally:
        env.close()
    return {"run": run, "decided": decided, "outlooks": outlooks, "totals": totals, "seen": seen,
            "rewards": rewards, "terminated": terminated, "info": info}


def test_the_ev_role_passes_gymnasium_s_check(ev_agent, tmp_path):
    env = LecEnv(ev_agent, work_dir=tmp_path)
    try:
        check_env(env, skip_render_check=True)
        assert env.action_space.shape == (EVS,) and env.observation_space.shape == (2 + PRICES_AHEAD + 4 * EVS,)
        assert np.all(env.action_space.low == 0) and np.all(env.action_space.high == np.float32(7.2))
        low, high = env.play.roles.observation_bounds("ev_charging")
        ev_high = high[EV_PART].reshape(len(OUTLOOK_FIELDS), EVS)[:, 0]
        assert list(ev_high) == [1.0, 60.0, 48.0, 7.2 * 0.25]  # plugged in, battery, two days, a step at 7.2 kW
    finally:
        env.close()


def test_both_roles_pass_pettingzoo_s_parallel_api_test(folder, tmp_path):
    both = load_scenario(write_scenario(folder / "both", "trondelag_arbitrage_ev",
                                        {"agents": ["lec_ems", "ev_charging"], "resolution.ems_min": 15}))
    env = LecParallelEnv(both, work_dir=tmp_path)
    try:
        parallel_api_test(env, num_cycles=8)
        assert env.possible_agents == ["lec_ems", "ev_charging"]
        assert env.observation_space("lec_ems").shape == (8,)  # with EVs it sees their load of the last step
        observations, _ = env.reset(options={"day": DAY})
        observations, rewards, _, _, infos = env.step({"lec_ems": np.array([0.3]), "ev_charging": np.full(EVS, 7.2)})
        # the EVs plugged in since the evening before that still need energy charge from 00:00
        assert observations["lec_ems"][7] == np.float32(infos["lec_ems"]["ev_p_mw"]) > 0.01
        assert rewards["lec_ems"] < 0 and rewards["ev_charging"] < 0
    finally:
        env.close()
    text = describe_spaces(both)
    assert "### lec_ems" in text and "### ev_charging" in text and "| last_devices_p_mw | MW |" in text
    assert "| ev0_hours_to_departure … ev39_hours_to_departure | h | 0 | 48 |" in text  # one row for the 40 EVs
    assert f"minus {UNMET_PENALTY_EUR_PER_KWH:g} EUR per kWh" in text


def test_the_smart_mode_s_decisions_played_by_an_agent_give_its_run(smart_replayed):
    """The smart mode's charging of every EV, played as actions, gives the smart run's results byte for byte (the
    EV load, the LP's battery, the grid, the sessions); what the agent saw of each step is what the EVs' chargers
    knew; the rewards are minus the EVs' cost and penalty, and sum to what the run's results give."""
    run, replayed = smart_replayed["run"], Path(smart_replayed["info"]["run_dir"])
    signals = pd.read_csv(run / "signals.csv", float_precision="round_trip")
    np.testing.assert_array_equal(smart_replayed["totals"], signals["ev_p_mw"])  # the decisions are the run's
    assert smart_replayed["terminated"]
    for name in ("signals.csv", "grid.csv", "pcc.csv", "ems.csv", "ev_sessions.csv"):
        assert (run / name).read_bytes() == (replayed / name).read_bytes(), name
    ours = json.loads((replayed / "summary.json").read_text())["kpis"]
    theirs = json.loads((run / "summary.json").read_text())["kpis"]
    assert ours == theirs
    # most EVs were charged before the day began (uncontrolled, nobody controlled them before the federation
    # began); those home in the evening wait for the cheap hours after midnight, past the horizon
    assert theirs["ev_energy_kwh"] > 10 and theirs["ev_sessions_ended"] == 40
    for k, (seen, known) in enumerate(zip(smart_replayed["seen"], smart_replayed["outlooks"])):
        np.testing.assert_array_equal(seen[EV_PART], known.astype(np.float32), err_msg=f"step {k}")
    plugged = np.array([seen[EV_PART][:EVS] for seen in smart_replayed["seen"]])
    assert plugged[0].sum() == EVS and plugged.sum(axis=1).min() < 35  # all home at midnight, some out (a Sunday)
    # the rewards: each step's charging at its spot price; the penalty of what was missing; at the end what the
    # sessions still plugged in need, at the day's mean price
    sessions = pd.read_csv(run / "ev_sessions.csv")
    still_plugged = sessions["unmet_kwh"].isna()
    open_need_kwh = (sessions["energy_needed_kwh"] - sessions["delivered_kwh"])[still_plugged].sum()
    terminal = -open_need_kwh / 1000.0 * signals["price"].mean()
    assert smart_replayed["info"]["terminal_eur"]["ev_charging"] == pytest.approx(terminal, abs=1e-9)
    expected = -theirs["ev_energy_cost"] - UNMET_PENALTY_EUR_PER_KWH * theirs["ev_unmet_kwh"] + terminal
    assert sum(smart_replayed["rewards"]) == pytest.approx(expected, abs=1e-9)
    step_cost = -(signals["ev_p_mw"] * signals["price"] * 0.25).to_numpy()
    unmet = np.diff(np.concatenate([[0.0], signals["ev_unmet_kwh"].to_numpy()]))
    per_step = step_cost - UNMET_PENALTY_EUR_PER_KWH * unmet
    per_step[-1] += terminal
    np.testing.assert_allclose(smart_replayed["rewards"], per_step, rtol=0, atol=1e-9)
    assert open_need_kwh > 300 and theirs["ev_energy_cost"] > 0.2 and terminal < -10


def test_chargers_at_full_power_give_the_uncontrolled_run(folder, ev_agent):
    """Every EV asked for its charger's full power takes what uncontrolled charging takes (the model clips to the
    plug time and the need): the uncontrolled run's results byte for byte, from the agent scenario whose ev.mode
    says smart (an agent's decisions replace the mode)."""
    _, run = normal_run(folder, "uncontrolled", "uncontrolled")
    env = LecEnv(ev_agent, federation="per_episode", work_dir=folder / "full_power")
    try:
        _, rewards, _, info = play(env, [np.full(EVS, 7.2)] * STEPS)
    finally:
        env.close()
    for name in ("signals.csv", "grid.csv", "pcc.csv", "ev_sessions.csv"):
        assert (run / name).read_bytes() == (Path(info["run_dir"]) / name).read_bytes(), name
    kpis = json.loads((run / "summary.json").read_text())["kpis"]
    assert sum(rewards) - info["terminal_eur"]["ev_charging"] == pytest.approx(
        -kpis["ev_energy_cost"] - UNMET_PENALTY_EUR_PER_KWH * kpis["ev_unmet_kwh"], abs=1e-9)


@pytest.fixture(scope="module")
def long_lived(ev_agent, folder):
    env = LecEnv(ev_agent, days=[DAY, NEXT_DAY], work_dir=folder / "long_lived")
    yield env
    env.close()


def test_a_long_lived_federation_replays_a_day_as_a_fresh_one(long_lived, smart_replayed):
    """Episodes of one federation (the EVs' sessions drawn again for each episode's day, the prices they know
    forgotten): the smart decisions of the day give exactly the observations and rewards of the per-episode run,
    after the other day's episode and after an episode cut short."""
    decided = smart_replayed["decided"]
    first = play(long_lived, decided)
    rng = np.random.default_rng(5)
    play(long_lived, [rng.uniform(0, 7.2, EVS) for _ in range(STEPS)], day=NEXT_DAY)
    play(long_lived, decided[:40])  # cut short mid-day
    again = play(long_lived, decided)
    assert long_lived.play._federations == 1 and long_lived.play.episode.episodes == 4
    for episode in (first, again):
        np.testing.assert_array_equal(np.array(episode[0]), np.array(smart_replayed["seen"]))
        np.testing.assert_array_equal(episode[1], smart_replayed["rewards"])
    # the next day is another day: other sessions
    other = long_lived.reset(options={"day": NEXT_DAY})[0]
    assert not np.array_equal(other[EV_PART], smart_replayed["seen"][0][EV_PART])


def test_episodes_under_a_day_see_the_same_in_both_federations(folder, tmp_path):
    """Six-hour episodes: the market of a long-lived federation publishes whole days of prices, a run's its six
    hours; the agent knows the same prices in both (and the same EVs, rewards and end)."""
    short = load_scenario(write_scenario(folder / "short", "trondelag_arbitrage_ev",
                                         {"horizon_h": 6, "agents": ["ev_charging"]}))
    actions = list(np.random.default_rng(2).uniform(0, 7.2, (24, EVS)))
    (seen, rewards, _, info), (seen_again, rewards_again, _, info_again) = in_both_federations(short, actions, tmp_path)
    np.testing.assert_array_equal(np.array(seen_again), np.array(seen))
    np.testing.assert_array_equal(rewards_again, rewards)
    assert info_again["terminal_eur"] == info["terminal_eur"]
    # the grid too: the LEC_EMS plans its battery up to the episode's end in both, not over the rest of the day
    np.testing.assert_array_equal(info_again["pcc_p_mw_so_far"], info["pcc_p_mw_so_far"])
    assert np.all(seen[0][2 + 6:2 + PRICES_AHEAD] == seen[0][2 + 5])  # past 06:00 no price known: the last one


def test_the_lec_ems_agent_sees_the_same_smart_evs_in_both_federations(folder, tmp_path):
    """30-hour episodes of the LEC_EMS's role with smart EVs beside it: on the second day the EVs follow the prices
    of the episode's six hours only, in a long-lived federation (whose market publishes the whole day) as in a run
    of 30 hours, so the agent sees the same EV load."""
    short = load_scenario(write_scenario(folder / "short_ems", "trondelag_arbitrage_ev",
                                         {"horizon_h": 30, "resolution.ems_min": 15, "agents": ["lec_ems"]}))
    actions = list(np.random.default_rng(3).uniform(-0.6, 0.6, (120, 1)))
    (seen, rewards, _, _), (seen_again, rewards_again, _, _) = in_both_federations(short, actions, tmp_path)
    np.testing.assert_array_equal(np.array(seen_again), np.array(seen))
    np.testing.assert_array_equal(rewards_again, rewards)
    assert max(abs(o[-1]) for o in seen) > 0  # the EVs' load was there to be seen


def test_evs_left_uncharged_pay_the_penalty(long_lived, ev_agent, tmp_path):
    """No EV charged: every kWh a session needed is missing when its EV leaves, at the role's penalty; the
    environment's role_options set another penalty."""
    _, rewards, _, info = play(long_lived, [np.zeros(EVS)] * STEPS, day=NEXT_DAY)
    assert info["ev_p_mw"] == 0 and info["ev_unmet_kwh"] > 10  # what the evening before left to the night
    assert sum(rewards) == pytest.approx(-UNMET_PENALTY_EUR_PER_KWH * info["ev_unmet_kwh"]
                                         + info["terminal_eur"]["ev_charging"], abs=1e-9)
    env = LecEnv(ev_agent, role_options={"ev_charging": {"unmet_penalty_eur_per_kwh": 2.0}}, work_dir=tmp_path)
    try:  # no federation yet: it starts at the first reset
        assert env.play.roles.role["ev_charging"].unmet_penalty_eur_per_kwh == 2.0
    finally:
        env.close()
    with pytest.raises(ValueError, match="role_options: lec_ems: not one of agents"):
        LecEnv(ev_agent, role_options={"lec_ems": {}}, work_dir=tmp_path)


def test_a_seed_chooses_the_same_day_and_gives_the_same_episode(long_lived):
    def episode(seed):
        observation, info = long_lived.reset(seed=seed)
        rng = np.random.default_rng(seed)
        trace = [observation]
        for _ in range(12):
            observation, reward, *_ = long_lived.step(rng.uniform(0, 7.2, EVS))
            trace += [observation, np.array([reward], dtype=np.float32)]
        return info["day"], np.concatenate(trace)

    day_a, trace_a = episode(11)
    _, trace_other = episode(12)
    day_b, trace_b = episode(11)
    assert day_a == day_b and day_a in (DAY, NEXT_DAY)
    np.testing.assert_array_equal(trace_a, trace_b)
    assert not np.array_equal(trace_a, trace_other)


def test_the_ev_role_needs_evs_and_an_environment(folder, ev_agent):
    from lec_cosim.checks import check_data

    with pytest.raises(ScenarioError, match="agents: ev_charging are decided by an external agent"):
        check_data(ev_agent)
    with pytest.raises(ScenarioError, match="agents: 'ev_charging' is not a role of this scenario"):
        load_scenario(write_scenario(folder / "no_evs", "trondelag_arbitrage", {"agents": ["ev_charging"]}))
    with pytest.raises(ScenarioError, match="lec_ems decides every grid step"):
        load_scenario(write_scenario(folder / "hourly", "trondelag_arbitrage_ev", {"agents": ["lec_ems"]}))
    # the LEC_EMS alone with EVs at the homes: it sees their load of the last step (no federation starts here)
    battery = load_scenario(write_scenario(folder / "battery_evs", "trondelag_arbitrage_ev",
                                           {"agents": ["lec_ems"], "resolution.ems_min": 15}))
    env = LecEnv(battery, work_dir=folder / "battery_evs" / "env")
    try:
        assert env.observation_space.shape == (8,) and env.action_space.shape == (1,)
    finally:
        env.close()
