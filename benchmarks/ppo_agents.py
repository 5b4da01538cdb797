"""PPO agents trained through the learning environments, compared with the study's own decision-makers.

    .venv/bin/pip install '.[rl]'       # stable-baselines3 (and torch: a CPU build is enough)
    .venv/bin/python benchmarks/ppo_agents.py battery --steps 100000
    .venv/bin/python benchmarks/ppo_agents.py chp --steps 20000

``battery``: the community battery's LEC_EMS (``scenarios/trondelag_battery_agent.yaml``, a set-point every
15 minutes) trained with PPO on May 2019's first three weeks, evaluated on three held-out days against the
LEC_EMS's day-ahead LP of the same days (the regret in EUR) and against leaving the battery idle.

``chp``: the six CHP producers of Case 1 (``scenarios/ieee_eu_lv_chp_agents.yaml``) as one PPO policy (their six
offers as one action, their summed profit as the reward), trained on May 2016's first three weeks and evaluated
on three held-out days against the ACO bids (``scenarios/learned/ieee_eu_lv_lem_plain_bids.json``) and truthful
bidding, with the DN impact of each.

Both go through the same environments a user has (long-lived, in-process, the real federation: three-phase or
balanced power flows, the market's clearing, the settlement). Prints a table and the wall time, writes the
learning curve (episode return against env steps) as a PNG into docs/ and the figures as JSON beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

import gymnasium
import numpy as np
from host import machine
from lem_common import ROOT

TRAIN = {"battery": ("2019-05-01", 21), "chp": ("2016-05-01", 21)}
HELD_OUT = {"battery": ["2019-05-26", "2019-05-27", "2019-05-28"], "chp": ["2016-05-26", "2016-05-27", "2016-05-28"]}
SCENARIO = {"battery": "trondelag_battery_agent.yaml", "chp": "ieee_eu_lv_chp_agents.yaml"}


def days(first: str, n: int) -> list[str]:
    start = dt.date.fromisoformat(first)
    return [(start + dt.timedelta(days=k)).isoformat() for k in range(n)]


class Scaled(gymnasium.ActionWrapper):
    """Actions in [-1, 1] (what PPO's Gaussian policy suits) mapped onto the role's physical bounds."""

    def __init__(self, env):
        super().__init__(env)
        self.low, self.high = env.action_bounds  # float64: the Box's float32 bounds would shift a truthful offer
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=env.action_space.shape, dtype=np.float32)

    def action(self, action):
        return self.low + (np.clip(action, -1, 1) + 1) / 2 * (self.high - self.low)


class Joint(gymnasium.Env):
    """The six CHPs of a LecParallelEnv as one agent: their observations and offers side by side, their summed
    profit as the reward (one policy bidding for all, as ACO learns the six bids together)."""

    def __init__(self, parallel):
        self.env = parallel
        agents = parallel.possible_agents
        self.agents = agents
        self.sizes = [parallel.action_space(a).shape[0] for a in agents]
        lows = [parallel.observation_space(a).low for a in agents]
        highs = [parallel.observation_space(a).high for a in agents]
        self.observation_space = gymnasium.spaces.Box(np.concatenate(lows), np.concatenate(highs), dtype=np.float32)
        self.action_bounds = tuple(np.concatenate([parallel.action_bounds[a][side] for a in agents]) for side in (0, 1))
        self.action_space = gymnasium.spaces.Box(*(b.astype(np.float32) for b in self.action_bounds), dtype=np.float32)
        self.last_info = {}

    def _joined(self, observations):
        return np.concatenate([observations[a] for a in self.agents]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        observations, _ = self.env.reset(seed=seed, options=options)
        return self._joined(observations), {}

    def step(self, action):
        parts = np.split(np.asarray(action, dtype=float), np.cumsum(self.sizes)[:-1])
        observations, rewards, terminations, _, infos = self.env.step(dict(zip(self.agents, parts)))
        self.last_info = infos[self.agents[0]]
        done = all(terminations.values())
        return self._joined(observations), float(sum(rewards.values())), done, False, dict(self.last_info)

    def close(self):
        self.env.close()


class TrainDays(gymnasium.Wrapper):
    """Training episodes draw their day from the training days only (a stream of their own per environment)."""

    def __init__(self, env, train: list[str], seed: int):
        super().__init__(env)
        self.train, self.rng = train, np.random.default_rng(seed)
        self.low, self.high = env.low, env.high

    def reset(self, *, seed=None, options=None):
        day = self.train[int(self.rng.integers(len(self.train)))]
        return self.env.reset(seed=seed, options=options or {"day": day})


def make_env(kind: str, on_days: list[str], grid_min: int | None = None, cpu: int | None = None):
    """The study's environment; ``cpu``: its process pinned to that CPU (a subprocess environment's own core)."""
    import atexit
    import shutil
    import tempfile

    from lec_cosim.env import LecEnv, LecParallelEnv
    from lec_cosim.scenario import write_scenario_variant

    scenario = ROOT / "scenarios" / SCENARIO[kind]
    if grid_min is not None:  # the same study at another grid step (the market stays hourly)
        folder = Path(tempfile.mkdtemp(prefix="lec_cosim_ppo_"))
        atexit.register(shutil.rmtree, folder, True)
        scenario = write_scenario_variant(scenario, {"resolution.grid_min": grid_min}, folder)
    return Scaled(LecEnv(scenario, days=on_days, cpu=cpu) if kind == "battery"
                  else Joint(LecParallelEnv(scenario, days=on_days, cpu=cpu)))


def play(env, day: str, policy) -> dict:
    """One episode on ``day`` with ``policy(observation) -> action`` (in [-1, 1]): money and DN impact."""
    observation, _ = env.reset(options={"day": day})
    money = impact = 0.0
    done = False
    while not done:
        observation, reward, done, _, info = env.step(policy(observation))
        money += reward
        impact += info.get("dn_impact", 0.0)
    terminal = sum(info.get("terminal_eur", {}).values())  # the battery's end state, valued: not money spent
    return {"money_eur": money - terminal, "terminal_eur": terminal, "dn_impact": impact}


def fixed(env, physical: np.ndarray):
    """A policy that always plays ``physical`` (in the role's units), in the wrapper's [-1, 1]."""
    scaled = 2 * (physical - env.low) / np.where(env.high > env.low, env.high - env.low, 1.0) - 1
    return lambda observation: scaled


def lp_costs(held_out: list[str]) -> dict[str, float]:
    """The LEC_EMS's LP on each held-out day (the same scenario without the agent), as a normal run in-process."""
    import tempfile

    from lec_cosim.inproc import run_inproc
    from lec_cosim.scenario import load_scenario
    from lec_cosim.studies.community_battery.agents import scenario_for_day

    scenario = load_scenario(ROOT / "scenarios" / SCENARIO["battery"])
    scenario = scenario.model_copy(update={"agents": []})
    costs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for day in held_out:
            run = Path(tmp) / day
            run_inproc(scenario_for_day(scenario, dt.date.fromisoformat(day)), run)
            costs[day] = json.loads((run / "summary.json").read_text())["kpis"]["energy_cost"]
    return costs


def aco_policy(env):
    """Case 1's ACO bids (per hour of the day) at full capacity, in the wrapper's [-1, 1]."""
    bids = json.loads((ROOT / "scenarios" / "learned" / "ieee_eu_lv_lem_plain_bids.json").read_text())
    prices = bids["bids_eur_per_kwh"]
    hour = {"k": 0}

    def act(observation):
        k = hour["k"] % 24
        hour["k"] += 1
        physical = np.concatenate([[prices[f"CHP{c}"][k], env.high[2 * c - 1]] for c in range(1, 7)])
        return 2 * (physical - env.low) / (env.high - env.low) - 1

    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("battery", "chp"))
    parser.add_argument("--steps", type=int, default=20000, help="PPO's env steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", type=int, default=1, help="environments side by side, each in a process of its "
                        "own (stable-baselines3's SubprocVecEnv); 1: in this process")
    parser.add_argument("--grid-min", type=int, choices=(15, 30, 60), default=None,
                        help="chp: the study's grid step instead of the scenario's (the market stays hourly)")
    args = parser.parse_args()
    rollout = 960 if args.kind == "battery" else 480
    if args.grid_min is not None and args.kind == "battery":
        parser.error("--grid-min: the battery's agent decides at every grid step (its EMS step): chp only")
    if rollout % args.envs:
        parser.error(f"--envs: must divide the rollout of {rollout} steps per update")
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import (
        DummyVecEnv,
        SubprocVecEnv,
        VecMonitor,
        VecNormalize,
    )

    torch.set_num_threads(1)  # the federation's threads need the other core
    print(machine())
    train = days(*TRAIN[args.kind])
    held_out = HELD_OUT[args.kind]
    started = time.perf_counter()
    # one builder per environment, each drawing its training days from a stream of its own; with several, each
    # environment's subprocess on a CPU of its own (lec_cosim.env.pin_process_to_cpu)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []  # pinning: Linux only
    pin = [cpus[k % len(cpus)] if args.envs > 1 and cpus else None for k in range(args.envs)]
    builders = [lambda k=k: TrainDays(make_env(args.kind, train + held_out, args.grid_min, pin[k]), train,
                                      args.seed + k) for k in range(args.envs)]
    vector = SubprocVecEnv(builders, start_method="spawn") if args.envs > 1 else DummyVecEnv(builders)
    monitored = VecMonitor(vector)  # each finished episode's return and length, from every environment
    returns, ends = [], []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:  # its return, and the env steps taken by then (all environments')
                    returns.append(info["episode"]["r"])
                    ends.append(self.num_timesteps)
            return True

    # observations (prices in EUR/MWh beside states of charge in MWh) and rewards normalised by running statistics
    normalised = VecNormalize(monitored, norm_obs=True, norm_reward=True, gamma=0.99)
    # the rollout per update stays 480 (960) steps whatever the number of environments
    model = PPO("MlpPolicy", normalised, seed=args.seed, verbose=0, n_steps=rollout // args.envs,
                batch_size=96 if args.kind == "battery" else 48, learning_rate=3e-4, gamma=0.99)
    model.learn(total_timesteps=args.steps, callback=Record())
    normalised.training = False
    normalised.close()  # the training environments' federations end here
    train_s = time.perf_counter() - started
    print(f"trained: {args.steps} env steps in {train_s:.0f} s ({args.steps / train_s:.0f} steps/s, PPO included)",
          flush=True)
    returns = np.array(returns)
    lengths = np.array(ends)
    inner = make_env(args.kind, held_out, args.grid_min)  # a fresh environment in this process, for the held-out days

    def ppo(observation):
        return model.predict(normalised.normalize_obs(observation), deterministic=True)[0]

    rows = {}
    for day in held_out:
        row = {"ppo": play(inner, day, ppo)}
        if args.kind == "battery":
            row["idle"] = play(inner, day, fixed(inner, np.zeros(1)))
        else:
            truthful = np.column_stack([inner.low[0::2], inner.high[1::2]]).ravel()  # the floor, full capacity
            row["truthful"] = play(inner, day, fixed(inner, truthful))
            row["aco"] = play(inner, day, aco_policy(inner))
        rows[day] = row
    inner.close()
    if args.kind == "battery":  # after the environment's federation is gone: the LP's runs alone on the machine
        for day, cost in lp_costs(held_out).items():
            rows[day]["lp"] = {"money_eur": -cost, "terminal_eur": 0.0, "dn_impact": 0.0}
    wall_s = time.perf_counter() - started
    print(f"PPO, {args.steps} env steps: {train_s:.0f} s training ({args.steps / train_s:.0f} steps/s), "
          f"{wall_s:.0f} s in all")
    names = list(next(iter(rows.values())))
    print("| held-out day | " + " | ".join(f"{n} EUR" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for day, row in rows.items():  # money spent or earned; in brackets the value of the battery's end state
        print(f"| {day} | " + " | ".join(f"{row[n]['money_eur']:.2f}" + (
            f" ({row[n]['terminal_eur']:+.2f})" if row[n].get("terminal_eur") else "") for n in names) + " |")
    if args.kind == "chp":
        print("DN impact: " + ", ".join(f"{n} {np.mean([r[n]['dn_impact'] for r in rows.values()]):.1f}"
                                          for n in names))
    out = ROOT / "docs" / f"ppo_{args.kind}"
    out.with_suffix(".json").write_text(json.dumps({
        "date": dt.date.today().isoformat(), "machine": machine(), "steps": args.steps, "train_s": train_s,
        "wall_s": wall_s, "held_out": rows, "episode_returns": returns.tolist(), "steps_at_episode_end":
        lengths.tolist()}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(lengths, returns, ".", alpha=0.3, label="episode return")
    if len(returns) >= 10:
        window = max(len(returns) // 20, 5)
        ax.plot(lengths[window - 1:], np.convolve(returns, np.ones(window) / window, mode="valid"),
                label=f"mean of {window} episodes")
    ax.set_xlabel("env steps")
    ax.set_ylabel("EUR per episode (day)")
    ax.set_title(f"PPO, {'community battery' if args.kind == 'battery' else 'six CHP bidders'}: training days")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    print(f"wrote {out.with_suffix('.png')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
