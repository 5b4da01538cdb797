"""A household's HEMS of the p2p framework as a learning-agent role (``agents: [LOAD3, ...]``) on a real federation:
the API checks, the HEMSs' own decisions played as actions giving the normal p2p run byte for byte, a long-lived
federation's episodes (after one cut short, with the DSO's limits) equal to a fresh federation's, an agent's
set-point run by the battery within what it can hold and billed as the LEC_EMS settles it, a drained battery
and the pool operators, and the refusals.

Every episode is a real HELICS federation of the three LECs (inproc core, the federate programs as threads: the
LEC_EMSs' LPs and pools, the platform, the HEMSs' LPs, the three-phase power flow, the recorder), at hourly grid
steps as the shared p2p run (``tests/harness.py``) that it is compared with.
"""

import json

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from harness import shared_runs, write_scenario

from lec_cosim.env import LecEnv, LecParallelEnv, describe_spaces
from lec_cosim.scenario import ScenarioError, load_scenario

AGENTS = ["LOAD3", "LOAD22", "LOAD28"]  # one household with a home battery in each LEC
HOURS = 24


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("env_p2p")


@pytest.fixture(scope="module")
def hems_agents(folder):
    """The shipped HEMS agents' scenario at the shared p2p run's hourly grid steps."""
    return load_scenario(write_scenario(folder / "agents", "ieee_eu_lv_three_lecs_hems_agents",
                                        {"resolution.grid_min": 60}))


@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory):
    """The normal p2p run of the same day (``lec-cosim run``, a process per federate)."""
    return shared_runs(tmp_path_factory, "three_lecs_p2p")["three_lecs_p2p"][1]


def play_own_decisions(env):
    """One episode whose actions are the HEMSs' own decisions (each role's default action); observations (from
    reset on), rewards and every step's info by role."""
    observations, _ = env.reset()
    seen, rewards, infos = [observations], [], []
    while env.agents:
        actions = {role: env.play.roles.default_action(role, observations[role]) for role in env.agents}
        observations, reward, _, _, info = env.step(actions)
        seen.append(observations)
        rewards.append(reward)
        infos.append(info)
    return seen, rewards, infos


@pytest.fixture(scope="module")
def replayed(hems_agents, folder):
    """The HEMSs' own decisions played through one episode's federation (which writes a normal run's results)."""
    env = LecParallelEnv(hems_agents, federation="per_episode", work_dir=folder / "replay")
    try:
        seen, rewards, infos = play_own_decisions(env)
        return seen, rewards, infos, env.play.run_dir
    finally:
        env.close()


def test_the_spaces_are_those_of_a_hems(hems_agents):
    env = LecEnv(hems_agents, role="LOAD22")
    try:
        check_env(env, skip_render_check=True)  # reset, step, spaces, determinism on a live federation
        assert env.action_space.low.tolist() == [-5.0] and env.action_space.high.tolist() == [5.0]
        observation, _ = env.reset(seed=3)
        hour_sin, hour_cos, retail, feed_in, soc = observation[:5]
        assert (hour_sin, hour_cos) == (0.0, 1.0)
        assert retail == pytest.approx(0.1023) and feed_in == pytest.approx(0.045)  # bi-hourly off-peak at 00:00
        assert soc == 5.0  # half of its 10 kWh
        assert observation[7] == 100.0  # no import cap: the observed ceiling
    finally:
        env.close()
    text = describe_spaces(hems_agents)
    assert "battery_kw" in text and "import_cap_kw" in text and text.startswith("### LOAD3, LOAD22, LOAD28")


def test_the_hemss_own_decisions_give_the_p2p_run(replayed, p2p_run):
    """Played as actions, the HEMSs' own set-points give the normal p2p run: its results tables byte for byte,
    its KPIs to 1e-9 and every member's bill; the agents' rewards sum to minus their bills (their batteries end
    where they began)."""
    _, rewards, infos, run_dir = replayed
    assert len(rewards) == HOURS
    for table in ("members.csv", "p2p_trades.csv", "lecs.csv", "grid.csv", "settlement.csv"):
        assert (run_dir / table).read_bytes() == (p2p_run / table).read_bytes(), table
    replay = json.loads((run_dir / "summary.json").read_text())["kpis"]
    normal = json.loads((p2p_run / "summary.json").read_text())["kpis"]
    assert set(replay) == set(normal)
    numbers = [(key, value) for key, value in normal.items()
               if isinstance(value, (int, float)) and key != "wall_time_s"]
    numbers += [(f"{lec}.{key}", value) for lec, kpis in normal["lecs"].items() for key, value in kpis.items()]
    assert len(numbers) > 20 and any(key == "messages" for key, _ in numbers)
    for key, value in numbers:
        mine = replay["lecs"][key.split(".")[0]][key.split(".")[1]] if "." in key else replay[key]
        assert mine == pytest.approx(value, rel=1e-9, abs=1e-9), key
    trades = {name: pd.read_csv(folder / "p2p_trades.csv") for name, folder in (("replay", run_dir),
                                                                                ("normal", p2p_run))}
    bill = [c for c in trades["normal"].columns if c.endswith("_eur")]
    assert len(trades["replay"]) == len(trades["normal"]) > 0
    np.testing.assert_allclose(trades["replay"][bill].to_numpy(), trades["normal"][bill].to_numpy(), atol=1e-9)
    mine = trades["normal"][trades["normal"]["member"].isin(AGENTS)]
    terminal = infos[-1]["LOAD3"]["terminal_eur"]
    assert all(abs(v) < 1e-9 for v in terminal.values())  # the HEMS's LP ends the day at its start
    for role in AGENTS:
        own = mine[mine["member"] == role]
        assert sum(r[role] for r in rewards) == pytest.approx(-(own["cost_eur"] + own["fee_eur"]).sum(), abs=1e-9)


def test_an_episode_cut_short_and_the_dsos_limits(hems_agents, folder):
    """With the DSO's limits, over 14 hours (they bind around noon): a long-lived federation's two episodes after
    one cut short each see and earn exactly what a fresh federation's does (the batteries, caps, plans and limits
    reset in every federate, the cut episode's caps dropped). The first hour has no limit (the DSO has not
    solved yet), not the last episode's; the caps and fees the LEC_EMSs sent are the observed ones. And the
    long-lived federation writes no results files."""
    limited = hems_agents.model_copy(update={"horizon_h": 14.0,
                                             "dso": hems_agents.dso.model_copy(update={"limits": True})})
    fresh = LecParallelEnv(limited, federation="per_episode", work_dir=folder / "limits_fresh")
    try:
        seen, rewards, _ = play_own_decisions(fresh)
        trades = pd.read_csv(fresh.play.run_dir / "p2p_trades.csv")
    finally:
        fresh.close()
    caps = np.array([[step[role][7] for role in AGENTS] for step in seen[:-1]])
    assert np.all(caps[0] == 100.0) and np.any(caps[1:] < 100.0)  # limits from the second hour on, binding
    mine = trades[trades["member"].isin(AGENTS)].sort_values(["hour", "member"])
    sent = np.minimum(mine.pivot(index="hour", columns="member", values="import_cap_kw")[AGENTS].to_numpy(), 100.0)
    np.testing.assert_allclose(caps, sent, rtol=1e-6)  # float32 observations of what the LEC_EMSs sent
    work = folder / "limits_long_lived"
    env = LecParallelEnv(limited, work_dir=work)
    try:
        observations, _ = env.reset()
        for _ in range(3):  # cut short in the fourth hour, its caps sent and not yet bid on
            observations, *_ = env.step({role: env.play.roles.default_action(role, observations[role])
                                         for role in env.agents})
        episodes = [play_own_decisions(env) for _ in range(2)]
    finally:
        env.close()
    for again, earned, _ in episodes:
        assert len(again) == len(seen) == 15
        for a, b in zip(again, seen):
            for role in AGENTS:
                np.testing.assert_array_equal(a[role], b[role])
        assert earned == rewards
    assert not list(work.rglob("*.csv")) or all(p.parent.name == "timing" for p in work.rglob("*.csv"))


def test_an_agents_setpoint_is_run_and_billed(hems_agents, folder):
    """LOAD3 charges at full power from 00:00: the first hour runs 5 kW, the second only what fills the battery;
    its bids are its load - PV + what ran, and its rewards the bills its LEC_EMS settled."""
    env = LecEnv(hems_agents, role="LOAD3", federation="per_episode", work_dir=folder / "full_power")
    try:
        env.reset()
        rewards = [env.step(np.array([5.0], dtype=np.float32))[1] for _ in range(HOURS)]
        run_dir = env.play.run_dir
    finally:
        env.close()
    members = pd.read_csv(run_dir / "members.csv")
    mine = members[members["member"] == "LOAD3"].reset_index(drop=True)
    leg = np.sqrt(0.95)
    assert mine.loc[0, "battery_kw"] == pytest.approx(5.0)
    assert mine.loc[1, "battery_kw"] == pytest.approx((10.0 - 5.0 - 5.0 * leg) / leg)  # what fills it
    assert mine.loc[1, "soc_kwh"] == pytest.approx(10.0)
    assert mine["soc_kwh"].max() <= 10.0 + 1e-9
    trades = pd.read_csv(run_dir / "p2p_trades.csv")
    own = trades[trades["member"] == "LOAD3"].reset_index(drop=True)
    np.testing.assert_allclose(own["net_kwh"], mine["load_kw"] - mine["pv_kw"] + mine["battery_kw"], atol=1e-9)
    np.testing.assert_allclose(rewards[:-1], -(own["cost_eur"] + own["fee_eur"])[:-1], atol=1e-12)


def test_what_an_agent_cannot_take(folder, hems_agents):
    decentralised = write_scenario(folder / "refused", "ieee_eu_lv_three_lecs_hems_agents",
                                   {"framework": "decentralised"})
    with pytest.raises(ScenarioError, match="agents: only p2p has roles an agent can take"):
        load_scenario(decentralised)
    no_battery = hems_agents.model_copy(update={"agents": ["LOAD1"]})
    with pytest.raises(ScenarioError, match="agents: LOAD1 has no home battery to decide"):
        LecEnv(no_battery)
    with pytest.raises(ScenarioError, match="a three-LEC learning environment.s federation plays its episodes on one day"):
        LecEnv(hems_agents, days=["2016-05-26", "2016-05-27"])


def test_a_drained_battery_and_the_pool_operator(hems_agents):
    """Agents that discharge all day leave their batteries empty: the households' HEMSs still plan the later hours
    (towards what the battery can reach), the episode's end values the lost charge, and the LECs' pool operators
    settle exactly what the LEC_EMSs' own pools do."""
    morning = hems_agents.model_copy(update={"horizon_h": 12.0})  # 00:00 to 12:00: nine off-peak hours, three peak
    pool = morning.model_copy(update={"p2p": morning.p2p.model_copy(update={"market": "pool_operator"})})
    earned = {}
    for market, scenario in (("ems", morning), ("pool_operator", pool)):
        env = LecParallelEnv(scenario)
        try:
            env.reset()
            rewards, info = [], {}
            while env.agents:
                _, reward, _, _, info = env.step({role: np.array([-5.0]) for role in env.agents})
                rewards.append(reward)
            earned[market] = rewards, info["LOAD3"]["terminal_eur"]
        finally:
            env.close()
    (ems, terminal), (pool_operator, _) = earned["ems"], earned["pool_operator"]
    as_array = lambda rewards: np.array([[r[role] for role in AGENTS] for r in rewards])  # noqa: E731
    np.testing.assert_allclose(as_array(ems), as_array(pool_operator), rtol=0, atol=1e-12)
    one_way = np.sqrt(0.95)
    for role in AGENTS:  # emptied from 5 kWh: the loss at the episode's mean bi-hourly tariff, divided by one leg
        mean_retail = (3 * 0.1924 + 9 * 0.1023) / 12
        assert terminal[role] == pytest.approx(-5.0 * mean_retail / one_way)
