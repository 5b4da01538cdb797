"""Households of the local market as learning-agent roles (``agents: [LOAD1, ...]``), beside a CHP.

A household agent decides each hour the price and the share of its net position (load minus PV) it bids;
its rule bids the whole deficit at retail and offers the whole surplus at the feed-in tariff. Played through
the environment, that rule gives the normal run byte for byte; a share of 0 leaves the household to the grid.
"""

import json

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from harness import write_scenario

from lec_cosim.env import LecEnv, LecParallelEnv
from lec_cosim.inproc import run_inproc
from lec_cosim.models.lem_community import community_from_scenario, read_learned_bids
from lec_cosim.models.tariffs import FEED_IN_EUR_PER_KWH, retail_tariff_eur_per_kwh
from lec_cosim.scenario import ScenarioError, load_scenario

HOURS = 10  # PV from about 5 h: prosumers sell in the last hours
PLAYERS = ["LOAD1", "LOAD4", "CHP3"]  # a PV prosumer, a consumer and a CHP


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    folder = tmp_path_factory.mktemp("households")
    normal = load_scenario(write_scenario(folder / "normal", "ieee_eu_lv_lem_plain", {"horizon_h": HOURS}))
    played = load_scenario(write_scenario(folder / "played", "ieee_eu_lv_lem_plain",
                                          {"horizon_h": HOURS, "agents": PLAYERS,
                                           "participants.messages": "per_group"}))
    return normal, played


def rule(community, name: str, hour: int) -> np.ndarray:
    """The household's own bid as an agent's action: retail for a deficit, feed-in for a surplus, all of it."""
    j = community.names.index(name)
    net = community.load_kwh[j, hour] - community.pv_kwh[j, hour]
    return np.array([retail_tariff_eur_per_kwh(hour, "plain") if net > 0 else FEED_IN_EUR_PER_KWH, 1.0])


def test_households_playing_their_rule_give_the_normal_run(scenarios, tmp_path):
    normal, played = scenarios
    run_inproc(normal, tmp_path / "normal")  # as a process run (tests/test_inproc.py), faster
    community = community_from_scenario(normal)
    bids = read_learned_bids(normal.market.learned_bids_file, community, "plain")
    env = LecParallelEnv(played, work_dir=tmp_path / "env", federation="per_episode")
    try:
        observations, _ = env.reset(seed=0)
        assert env.observation_space("LOAD1").shape == (9,) and env.observation_space("CHP3").shape == (8,)
        money, positions = dict.fromkeys(PLAYERS, 0.0), []
        for hour in range(HOURS):
            positions.append({n: float(observations[n][-1]) for n in ("LOAD1", "LOAD4")})
            actions = {n: rule(community, n, hour) for n in ("LOAD1", "LOAD4")}
            actions["CHP3"] = np.array([bids["CHP3"][hour], 10.0])
            observations, rewards, terminations, _, _ = env.step(actions)
            for name in PLAYERS:
                money[name] += rewards[name]
        run_dir = tmp_path / "env" / "episode_000001"
    finally:
        env.close()
    for name in sorted(p.name for p in (tmp_path / "normal").glob("*.csv")):
        assert (run_dir / name).read_bytes() == (tmp_path / "normal" / name).read_bytes(), name
    summary = json.loads((tmp_path / "normal" / "summary.json").read_text())
    settlement = pd.read_csv(tmp_path / "normal" / "settlement.csv")
    for name in PLAYERS:
        rows = settlement[settlement.participant == name]
        assert money[name] == pytest.approx((rows.income_eur - rows.cost_eur).sum(), abs=1e-9)
    for hour, seen in enumerate(positions):  # what it saw is its load minus PV of the hour it bid for
        for name, position in seen.items():
            j = community.names.index(name)
            assert position == pytest.approx(community.load_kwh[j, hour] - community.pv_kwh[j, hour], rel=1e-6)
    sold = settlement[(settlement.participant == "LOAD1")].lem_sold_kwh.sum()
    assert sold > 0 and summary["kpis"]["lem_volume_kwh"] > 0  # the prosumer did sell in the pool


def test_a_household_that_bids_nothing_buys_and_sells_through_the_grid(scenarios, tmp_path):
    _, played = scenarios
    community = community_from_scenario(played)
    env = LecEnv(played, "LOAD1", work_dir=tmp_path / "env")  # the other two play their rule and strategy
    try:
        check_env(env, skip_render_check=True)
        assert list(env.action_space.low) == pytest.approx([FEED_IN_EUR_PER_KWH, 0.0])
        env.reset(seed=1)
        j = community.names.index("LOAD1")
        for hour in range(HOURS):
            _, reward, done, _, info = env.step(np.array([0.10, 0.0]))
            net = community.load_kwh[j, hour] - community.pv_kwh[j, hour]
            grid = (-retail_tariff_eur_per_kwh(hour, "plain") * net if net > 0 else FEED_IN_EUR_PER_KWH * -net)
            assert reward == pytest.approx(grid, abs=1e-12)
        assert done
    finally:
        env.close()


def test_an_agent_must_be_a_player_of_the_feeder(tmp_path):
    with pytest.raises(ScenarioError, match="agents: LOAD56: no player of the IEEE feeder"):
        load_scenario(write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {"agents": ["LOAD2", "LOAD56"]}))
