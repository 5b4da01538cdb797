"""Learning environments on a running federation: Gymnasium for one agent, PettingZoo for several.

A scenario hands roles to an external agent (``agents:``, e.g. CHP producers of the local market); its
federation then has an agent proxy federate (``lec_cosim/components/agent.py``) where the role's own
decision would be. Here the environment *is* that proxy: :meth:`LecEnv.step` publishes the agent's
decision at the proxy's slot and requests its next slot from HELICS, which the broker grants once the
rest of the federation has played the period (the market cleared, the participants settled, the DSO's
three-phase power flows solved, the recorder recorded). Observations and rewards are what the proxy's
input ports then hold; their fields and units are the study's (``agent_roles(scenario)``, e.g.
:mod:`lec_cosim.studies.local_market.agents`) and are listed by :func:`describe_spaces`.

The federation runs in this process (:mod:`lec_cosim.inproc`): the same federate programs as a normal
run, as threads on HELICS's inproc core. An episode plays the scenario's horizon from a day that
:meth:`reset` chooses among ``days`` (seeded), with the same community. With ``federation="long_lived"``
(the default) one federation plays every episode: it spans all ``days``, is built once, and its time runs
on; ``reset()`` publishes an episode control that every federate reads at its next slot
(``Federate.run_episodes``), so a reset costs well under a millisecond. Its recorder is left out (no
results files). With ``federation="per_episode"`` each episode is a new federation (seconds to start)
that writes a normal run's results; an episode whose actions are those of a normal run gives that run's
results exactly, and long-lived episodes give exactly the observations and rewards of per-episode ones
(``tests/test_env_api.py``).

The environment never blocks for ever: a step that the federation has not granted within
``step_timeout_s`` (its start: at least ``START_TIMEOUT_S``) ends the federation, and a federate that fails ends it
at once; either way the step raises :class:`lec_cosim.launch.FederationError` naming the federate and its error.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gymnasium
import helics as h
import numpy as np
from gymnasium import spaces

from lec_cosim.launch import FederationError
from lec_cosim.scenario import Scenario, ScenarioError, load_scenario

STEP_TIMEOUT_S = 60.0
START_TIMEOUT_S = 60.0
"""A federation's start (its federates' set-up, entering executing mode, the proxy's first period) has at least this
long, whatever ``step_timeout_s``: a short step deadline must not fail a start on a busy machine."""
MAX_FEDERATION_TIME_S = 1e8
"""A long-lived federation is rebuilt once its time passes this (about 28,000 hourly steps; a few seconds per
rebuild): requests are made 100 ns before a slot, and far out float64 seconds lose that resolution (measured:
wrong grants from about 1e9 s with a 1 ms period)."""
PROXY = "agent"


def _grants_per_episode(scenario, length_s: float) -> int:
    """The grants an episode of ``length_s`` takes, all federates together, from their declared schedules
    (lec-cosim interface), with two for each schedule's wait between episodes (the recorder, which a long-lived
    federation leaves out, counted too). Slots a federate does not declare (a negotiation's ADMM iterations) are
    not counted: no environment runs one today; the measured count would catch them after an episode."""
    from lec_cosim.interface import federation_interface

    return int(sum(math.ceil(length_s / period) + 2 for federate in federation_interface(scenario)["federates"]
                   for period, _ in federate["schedule_s"]))


def pin_process_to_cpu(cpu: int) -> None:
    """Run every thread of this process, and every thread it starts later, on one CPU (Linux).

    An environment's federation is a chain of threads that hand the period over to each other (the proxy, the
    participants, the market, the DSO, HELICS's core); with one environment per core, as a vectorised trainer's
    subprocesses run them, a hand-over on the same core wakes a thread whose data is still in that core's cache,
    where an unpinned one wakes it on whichever core is free, often the other environment's. Measured with two
    environments on 2 cores (``benchmarks/env_throughput.py``): see docs/speed.md. The whole process is pinned:
    in a process that also trains (one environment, no subprocesses) the learner would share the one CPU too.
    """
    import os

    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("cpu: pinning a process to a CPU needs Linux (os.sched_setaffinity)")
    allowed = os.sched_getaffinity(0)
    if isinstance(cpu, bool) or not isinstance(cpu, (int, np.integer)) or int(cpu) not in allowed:
        raise ValueError(f"cpu: {cpu!r} is not one of this process's CPUs {sorted(allowed)}")
    cpu = int(cpu)
    for task in os.listdir("/proc/self/task"):  # the threads already running (a thread's mask is its own)
        try:
            os.sched_setaffinity(int(task), {cpu})
        except ProcessLookupError:  # ended meanwhile
            pass


def _scenario(scenario) -> Scenario:
    """A scenario, or its file read and validated."""
    return load_scenario(scenario) if isinstance(scenario, (str, Path)) else scenario


def _study(scenario):
    from lec_cosim.studies import study_of

    study = study_of(scenario)
    if not hasattr(study, "agent_roles"):
        raise ScenarioError(f"{scenario.source_file}: agents: the {scenario.kind} study has no roles an agent can take")
    if not scenario.agents:
        raise ScenarioError(f"{scenario.source_file}: agents: name the roles an agent decides (none given)")
    return study


class _Deadline:
    """One watchdog thread for the whole environment: ends the federation when a step takes too long.

    Each :meth:`arm` starts a new generation; the watchdog fires only for the generation it saw armed, so a
    step that ends right at its deadline can never stop the next step's (or episode's) federation."""

    def __init__(self):
        self._lock = threading.Lock()
        self._generation = 0
        self._armed: tuple[int, float, object, str] | None = None
        self.fired: str | None = None
        """The reason of the last deadline that fired, for the step that raises."""
        self._wake = threading.Event()
        self._closed = False
        threading.Thread(target=self._watch, name="lec_cosim env deadline", daemon=True).start()

    def arm(self, federation, seconds: float, why: str) -> None:
        with self._lock:
            self._generation += 1
            self._armed = (self._generation, time.monotonic() + seconds, federation, why)
            self.fired = None
        self._wake.set()

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _watch(self) -> None:
        while not self._closed:
            with self._lock:
                armed = self._armed
            if armed is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            generation, until, federation, why = armed
            remaining = until - time.monotonic()
            if remaining > 0:
                self._wake.wait(min(remaining, 1.0))
                self._wake.clear()
                continue
            with self._lock:
                if self._armed is None or self._armed[0] != generation:
                    continue
                self._armed = None
                self.fired = why
            federation.stop(why)


class AgentFederation:
    """A federation in this process with the agent proxy in the caller's thread: one episode's, or with
    ``long_lived`` one for every episode (the episode control on, the recorder left out)."""

    def __init__(self, scenario, run_dir: Path, deadline: _Deadline, step_timeout_s: float, debug: bool = False,
                 prepare=None, long_lived: bool = False, global_time: bool = False):
        from federates.common import Federate
        from lec_cosim.inproc import InprocFederation
        from lec_cosim.wiring import with_episode_control

        self.scenario, self.run_dir, self.long_lived = scenario, Path(run_dir), long_lived
        self.deadline, self.step_timeout_s = deadline, step_timeout_s
        transform = (lambda plans: with_episode_control(plans, PROXY, without=("recorder",))) if long_lived else None
        # one core for all: the federates of an env act in turn, and a grant through one core's thread is quicker
        self.federation = InprocFederation(scenario, run_dir, outside=(PROXY,), debug=debug, transform=transform,
                                           shared_core=True, global_time=global_time)
        if prepare is not None:  # tests: change the written federation (arm a fault) before it starts
            prepare(self.run_dir)
        self.federation.start()
        self.proxy = None
        self.episodes = 0
        try:
            self.proxy = Federate(self.federation.config(PROXY))
            self.period_s = self.proxy.period_s
            start_s = max(self.step_timeout_s, START_TIMEOUT_S)
            self._call(h.helicsFederateEnterExecutingMode, self.proxy.fed, what="start", timeout_s=start_s)
            self.start_s, self.period = 0.0, 0
            self.now_s = self._call(self.proxy.request_slot, self.proxy.offset_s, what="its first period",
                                    timeout_s=start_s)
        except BaseException:
            self.close()
            raise

    def begin(self, day_s: float, length_s: float) -> None:
        """Start an episode playing the scenario from ``day_s`` for ``length_s`` (long-lived): announced now, it
        starts at the next multiple of every federate's period (``episode_period_s``: no federate has acted in it
        yet), where the proxy then waits."""
        self.episodes += 1
        align = self.proxy.options.episode_period_s  # a multiple of every federate's period
        self.start_s, self.period = (math.floor((self.now_s - self.proxy.offset_s) / align + 1e-9) + 1) * align, 0
        self.proxy.publish_port("episode_control", {"episode": self.episodes, "start_s": self.start_s,
                                                    "day_s": day_s, "length_s": length_s})
        wanted = self.start_s + self.proxy.offset_s
        self.now_s = self._call(self.proxy.request_slot, wanted, what=f"the start of episode {self.episodes}")
        if abs(self.now_s - wanted) > 1e-6:
            raise self._failure() or FederationError(f"the agent proxy was granted {self.now_s} s, not {wanted} s")

    def _call(self, function, *args, what: str, timeout_s: float | None = None):
        timeout_s = self.step_timeout_s if timeout_s is None else timeout_s
        self.deadline.arm(self.federation, timeout_s, f"the federation did not play {what} within {timeout_s:g} s")
        try:
            return function(*args)
        except h.HelicsException as exc:
            if self.deadline.fired is not None:  # nobody failed: the federation was too slow (or hangs)
                raise FederationError(self.deadline.fired, stalled=True) from None
            raise self._failure() or FederationError(f"the federation stopped: {exc}") from None
        finally:
            self.deadline.disarm()

    def _failure(self) -> FederationError | None:
        end = time.monotonic() + 3.0  # the federate that failed first is still writing its error
        while not self.federation.errors and time.monotonic() < end:
            time.sleep(0.02)
        return self.federation.failure()

    def act(self, role: str, action, outputs: dict) -> None:
        """Publish a role's action (one number on a double port, else a vector) and its other outputs."""
        port = f"{role}.action"
        values = [float(v) for v in action]
        one = self.proxy.ports["out"][port]["type"] == "double"
        self.proxy.publish_port(port, values[0] if one else values)
        for name, value in outputs.items():
            self.proxy.publish_port(f"{role}.{name}", value)

    def advance(self) -> None:
        """Play the current period: request the proxy's next slot (granted once everyone has played it)."""
        self.period += 1
        wanted = self.start_s + self.period * self.period_s + self.proxy.offset_s
        granted = self._call(self.proxy.request_slot, wanted, what=f"period {self.period - 1}")
        if abs(granted - wanted) > 1e-6:  # HELICS's end of time: the federation ended under us
            raise self._failure() or FederationError(f"the agent proxy was granted {granted} s, not {wanted} s")
        self.now_s = granted

    def finish(self) -> None:
        """Let the federation end (a long-lived one told to stop) and, for one episode's, write its results."""
        if self.long_lived:
            self.proxy.publish_port("episode_control", {"stop": True})
        self.proxy.close()
        self.proxy = None
        try:
            self.federation.wait(timeout_s=self.step_timeout_s)
        finally:
            self.federation.close()

    def close(self) -> None:
        """End the federation now, wherever it is (a global error)."""
        if self.proxy is not None:
            try:
                h.helicsFederateGlobalError(self.proxy.fed, 1, "the environment ended the episode")
            except h.HelicsException:
                pass
            try:
                self.proxy.close()
            except h.HelicsException:
                pass
            self.proxy = None
        self.federation.close()


class _Reads:
    """The agent proxy as the roles see it between two of its time requests: each input port read from HELICS
    once (nothing can change before the next request), so that six roles reading their group's vectors cost
    one read each; whether a port was updated is what it was at that first look, for every role alike."""

    def __init__(self, proxy):
        self._proxy, self._values, self._updated = proxy, {}, {}

    def port_updated(self, port: str) -> bool:
        if port not in self._updated:
            self._updated[port] = self._proxy.port_updated(port)
        return self._updated[port]

    def read_port(self, port: str):
        if port not in self._values:
            self.port_updated(port)
            self._values[port] = self._proxy.read_port(port)
        return self._values[port]

    def __getattr__(self, name):  # options, ports, ...: the proxy's
        return getattr(self._proxy, name)


class _Play:
    """What both environments share: the roles, their spaces, the episodes."""

    def __init__(self, scenario, *, days=None, dn_penalty_eur: float = 0.0, work_dir=None,
                 step_timeout_s: float = STEP_TIMEOUT_S, keep_episodes: int = 1, debug: bool = False, prepare=None,
                 federation: str = "long_lived", role_options: dict | None = None, cpu: int | None = None):
        from lec_cosim.checks import check_data
        from lec_cosim.inproc import GLOBAL_TIME_GRANTS

        if federation not in ("long_lived", "per_episode"):
            raise ValueError(f"federation: 'long_lived' or 'per_episode', not {federation!r}")
        self.long_lived = federation == "long_lived"
        if cpu is not None:  # before any federation: its threads inherit the creating thread's CPUs
            pin_process_to_cpu(cpu)
        self.scenario = _scenario(scenario)
        self.study = _study(self.scenario)
        self.roles = self.study.agent_roles(self.scenario, **(role_options or {}))  # the study's own options
        self.days = [self.scenario.start.date()] if days is None else [
            d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in days]
        if not self.days:
            raise ValueError("days: give at least one day to play")
        self.first_day = min(self.days)
        # every day's data at once: a data error is one line here, not a federate's crash in some episode
        n_days = (max(self.days) - self.first_day).days + 1
        if self.long_lived or n_days <= getattr(self.study, "FEDERATION_DAYS", n_days):
            self.span = self.study.scenario_for_days(self.scenario, self.first_day, n_days)
            check_data(self.span, agents_played=True)
        else:  # a study whose federations play fewer days (three LECs: one): each episode's own
            for day in sorted(set(self.days)):
                check_data(self.study.scenario_for_day(self.scenario, day), agents_played=True)
        self.dn_penalty_eur = float(dn_penalty_eur)
        self._own_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="lec_cosim_env_") if work_dir is None else work_dir)
        self.step_timeout_s, self.keep_episodes, self.debug = step_timeout_s, keep_episodes, debug
        self.prepare = prepare
        self.deadline = _Deadline()
        self.episode: AgentFederation | None = None
        self.episodes = 0
        # A long-lived federation coordinates time globally (lec_cosim.inproc: far fewer thread wake-ups a step)
        # and is rebuilt, at an episode's start, before it makes GLOBAL_TIME_GRANTS grants. Episodes of more than
        # a quarter of that budget (long horizons: from the federates' declared schedules, or as measured) run on
        # distributed coordination instead, and so does every federation after one that stalled. The count is
        # the process's (grants_so_far): other environments in this process make it rebuild sooner, or even
        # give up global time (speed only).
        self._episode_grants = _grants_per_episode(self.span, self.scenario.end_s) if self.long_lived else 0
        self.global_time = self.long_lived and self._episode_grants <= GLOBAL_TIME_GRANTS / 4
        self._grants_at_build = self._grants_at_begin = 0
        self.rng = np.random.default_rng()
        self.day: dt.date | None = None
        self.first = True
        self._federations = 0

    def action_space(self, role: str) -> spaces.Box:
        low, high = self.roles.action_bounds(role)
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def observation_space(self, role: str) -> spaces.Box:
        low, high = self.roles.observation_bounds(role)
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def start(self, seed, options) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        options = options or {}
        day = options.get("day")
        self.day = (dt.date.fromisoformat(str(day)) if day is not None
                    else self.days[int(self.rng.integers(len(self.days)))])
        if self.day not in self.days:  # a long-lived federation holds the data of these days only
            raise ValueError(f"day {self.day}: not one of the environment's days ({', '.join(map(str, self.days))})")
        self.episodes += 1
        self.first = True
        self._reads_at = None  # nothing read in an earlier episode is this one's
        if hasattr(self.roles, "begin"):  # roles whose start depends on the day (the EVs' sessions)
            self.roles.begin(self.day)
        if self.long_lived:
            from federates.common import grants_so_far

            if self.episode is not None and (self.episode.now_s > MAX_FEDERATION_TIME_S or self._grants_run_out()):
                self.end_episode()
            if self.episode is None:  # the first episode, after a failure, or time or grants run out: (re)build it
                self._federations += 1
                self.episode = AgentFederation(self.span, self.work_dir / f"federation_{self._federations:03d}",
                                               self.deadline, self.step_timeout_s, self.debug, self.prepare,
                                               long_lived=True, global_time=self.global_time)
                self._grants_at_build = grants_so_far()
            self._grants_at_begin = grants_so_far()
            try:
                self.episode.begin((self.day - self.first_day).days * 86400.0, self.scenario.end_s)
            except BaseException as exc:  # the federation is lost: the next reset builds another
                self._stalled(exc)
                self.end_episode()
                raise
            return
        self.end_episode()
        run_dir = self.work_dir / f"episode_{self.episodes:06d}"
        old = self.work_dir / f"episode_{self.episodes - self.keep_episodes:06d}"
        if self.keep_episodes and old.is_dir():  # a folder of ours, from this environment
            shutil.rmtree(old, ignore_errors=True)
        scenario = self.study.scenario_for_day(self.scenario, self.day)
        self.episode = AgentFederation(scenario, run_dir, self.deadline, self.step_timeout_s, self.debug,
                                       self.prepare)

    @property
    def run_dir(self) -> Path | None:
        """The current (or last) episode's run folder: its results once the episode is over."""
        return self.episode.run_dir if self.episode is not None else self._last_dir

    _last_dir: Path | None = None
    _reads_at: tuple | None = None

    def observe(self, role: str) -> np.ndarray:
        period = self.episode.period
        values = self.roles.observe(self._reads(), role, period, self.first)
        return values.astype(np.float32)

    def _reads(self) -> _Reads:
        """The proxy's reads at its present time (a new :class:`_Reads` once it has moved on)."""
        episode = self.episode
        now = (self.episodes, episode.now_s)
        if self._reads_at != now:
            self._reads_at, self._read_view = now, _Reads(episode.proxy)
        return self._read_view

    def check_playing(self) -> None:
        if self.episode is None or self.episode.proxy is None or self.episode.period >= self.roles.periods:
            raise RuntimeError("the episode is over (or never began): reset() the environment before step()")

    def play(self, actions: dict) -> tuple[dict, dict, bool]:
        """Publish every role's action, play the period; rewards by role and whether the episode is over."""
        self.check_playing()
        for role in self.roles.roles:
            low, high = self.roles.action_bounds(role)
            action = np.asarray(actions[role], dtype=float).reshape(-1)
            if action.shape != low.shape or not np.all(np.isfinite(action)):
                raise ValueError(f"{role}: an action is {len(low)} finite numbers "
                                 f"({', '.join(f[0] for f in _fields(self.roles, role, 'action'))}), "
                                 f"not {actions[role]!r}")
            outputs = self.roles.outputs(role) if hasattr(self.roles, "outputs") else {}
            self.episode.act(role, np.clip(action, low, high), outputs)
        if hasattr(self.roles, "before_step"):
            self.roles.before_step(self._reads())
        try:
            self.episode.advance()
        except BaseException as exc:  # a federate's failure, a deadline, Ctrl-C: this episode is over
            self._stalled(exc)
            self.end_episode()
            raise
        self.first = False
        proxy = self._reads()
        impact = self.roles.dn_impact(proxy)
        rewards = {role: self.roles.money_eur(proxy, role) - self.dn_penalty_eur * impact
                   for role in self.roles.roles}
        info = {"dn_impact": impact, "period": self.episode.period - 1, "day": self.day.isoformat(),
                **self.roles.info(proxy)}
        done = self.episode.period >= self.roles.periods
        if done and hasattr(self.roles, "terminal_eur"):  # what the role's state at the end is worth (its study's)
            terminal = {role: self.roles.terminal_eur(proxy, role) for role in self.roles.roles}
            rewards = {role: rewards[role] + terminal[role] for role in rewards}
            info["terminal_eur"] = terminal
        return rewards, info, done

    def finish_episode(self) -> Path | None:
        """After an episode's last period: one episode's federation ends and writes its results (their folder);
        a long-lived one waits for the next episode (None)."""
        if self.long_lived:
            return None
        episode = self.episode
        self.episode = None
        episode.finish()
        self._last_dir = episode.run_dir
        return episode.run_dir

    def _grants_run_out(self) -> bool:
        """Whether the long-lived federation, coordinating time globally, might pass GLOBAL_TIME_GRANTS in the
        next episode (twice the largest episode yet, measured or estimated, from what it has granted so far)."""
        from federates.common import grants_so_far
        from lec_cosim.inproc import GLOBAL_TIME_GRANTS

        now = grants_so_far()
        self._episode_grants = max(self._episode_grants, now - self._grants_at_begin)
        if self.global_time and self._episode_grants > GLOBAL_TIME_GRANTS / 4:
            self.global_time = False  # episodes this long: the next federation coordinates time among its cores
            return True
        budget_left = GLOBAL_TIME_GRANTS - (now - self._grants_at_build)
        return self.episode.federation.global_time and 2 * self._episode_grants > budget_left

    def _stalled(self, exc: BaseException) -> None:
        """A federation on global time that stalled (HELICS's coordinator may have stopped granting): the next
        ones coordinate time among their cores."""
        if self.episode is not None and self.episode.federation.global_time and getattr(exc, "stalled", False):
            self.global_time = False

    def end_episode(self) -> None:
        if self.episode is not None:
            self._last_dir = self.episode.run_dir
            episode, self.episode = self.episode, None
            episode.close()

    def close(self) -> None:
        try:
            if self.long_lived and self.episode is not None and self.episode.proxy is not None:
                episode, self.episode = self.episode, None
                try:
                    episode.finish()  # told to stop, the federates end their runs cleanly
                except BaseException:
                    episode.close()
                    raise
            self.end_episode()
        finally:
            self.deadline.close()
            if self._own_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)


class LecEnv(gymnasium.Env):
    """A Gymnasium environment for one role of a scenario's ``agents:`` (the first, or ``role``).

    The other roles of ``agents:`` (if any) play ``others``: a function ``(role, observation) -> action``
    (default: the study's default action for the role where it has one, the battery idle or the EVs charging at
    full power; else the lower bound of every action field but the last, the whole quantity, i.e. truthful
    bidding for the local market's CHPs).
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario, role: str | None = None, *, others=None, **options):
        self.play = _Play(scenario, **options)
        self.role = role or self.play.roles.roles[0]
        if self.role not in self.play.roles.roles:
            self.play.close()
            raise ValueError(f"role {self.role!r} is not one of agents: {self.play.roles.roles}")
        self.others = others or _truthful(self.play)
        self.action_space = self.play.action_space(self.role)
        self.action_bounds = self.play.roles.action_bounds(self.role)
        """The action's bounds as float64 (the Box's are float32: 0.045 becomes 0.04500000178, which is enough
        to break a tie in the pool's merit order)."""
        self.observation_space = self.play.observation_space(self.role)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.play.start(seed, options)
        return self.play.observe(self.role), {"day": self.play.day.isoformat()}

    def step(self, action):
        self.play.check_playing()
        actions = {role: self.others(role, self.play.observe(role)) for role in self.play.roles.roles
                   if role != self.role}
        actions[self.role] = action
        rewards, info, done = self.play.play(actions)
        observation = self.play.observe(self.role)
        if done and (run_dir := self.play.finish_episode()) is not None:
            info["run_dir"] = str(run_dir)
        return observation, float(rewards[self.role]), done, False, info

    def close(self):
        self.play.close()


def _truthful(play: _Play):
    def act(role, observation):
        if hasattr(play.roles, "default_action"):  # the study's own default for the role
            return play.roles.default_action(role, observation)
        low, high = play.roles.action_bounds(role)
        return np.concatenate([low[:-1], high[-1:]])
    return act


def _fields(roles, role: str, kind: str):
    """A role's ``action`` or ``observation`` fields, or its ``reward`` text: its own where the study's roles
    differ (``action_fields_of(role)``), else the study's one set."""
    of = getattr(roles, f"{kind}_fields_of" if kind != "reward" else "reward_of", None)
    return of(role) if of is not None else getattr(roles, f"{kind}_fields" if kind != "reward" else "reward")


try:
    from pettingzoo import ParallelEnv
except ImportError:  # pragma: no cover - pettingzoo is a dependency; this keeps Gymnasium usable without it
    ParallelEnv = object


class LecParallelEnv(ParallelEnv):
    """A PettingZoo ``ParallelEnv``: every role of a scenario's ``agents:`` is an agent, all decide each period."""

    metadata = {"name": "lec_cosim_v0", "render_modes": []}

    def __init__(self, scenario, **options):
        self.play = _Play(scenario, **options)
        self.possible_agents = list(self.play.roles.roles)
        self.agents: list[str] = []
        self._action_spaces = {role: self.play.action_space(role) for role in self.possible_agents}
        self.action_bounds = {role: self.play.roles.action_bounds(role) for role in self.possible_agents}
        """Each agent's action bounds as float64 (see :attr:`LecEnv.action_bounds`)."""
        self._observation_spaces = {role: self.play.observation_space(role) for role in self.possible_agents}

    def observation_space(self, agent):
        return self._observation_spaces[agent]

    def action_space(self, agent):
        return self._action_spaces[agent]

    def reset(self, seed=None, options=None):
        self.play.start(seed, options)
        self.agents = list(self.possible_agents)
        day = self.play.day.isoformat()
        return ({role: self.play.observe(role) for role in self.agents}, {role: {"day": day} for role in self.agents})

    def step(self, actions):
        rewards, info, done = self.play.play(actions)
        observations = {role: self.play.observe(role) for role in self.agents}
        if done and (run_dir := self.play.finish_episode()) is not None:
            info["run_dir"] = str(run_dir)
        agents = list(self.agents)
        if done:
            self.agents = []
        return (observations, {r: float(rewards[r]) for r in agents}, {r: done for r in agents},
                {r: False for r in agents}, {r: dict(info) for r in agents})

    def close(self):
        self.play.close()


def describe_spaces(scenario) -> str:
    """The roles' action and observation fields with their units and bounds, and the reward (Markdown); roles
    with the same spaces share one section."""
    scenario = _scenario(scenario)
    roles = _study(scenario).agent_roles(scenario)
    sections: dict[str, list[str]] = {}
    for role in roles.roles:
        low, high = roles.action_bounds(role)
        lines = ["| action | unit | from | to | meaning |", "|---|---|---|---|---|"]
        lines += _rows(_fields(roles, role, "action"), low, high)
        low, high = roles.observation_bounds(role)
        lines += ["", "| observation | unit | from | to | meaning |", "|---|---|---|---|---|"]
        lines += _rows(_fields(roles, role, "observation"), low, high)
        lines.append(f"\nReward: {_fields(roles, role, 'reward')}.\n")
        sections.setdefault("\n".join(lines), []).append(role)
    return "\n".join(f"### {', '.join(names)}\n\n{text}" for text, names in sections.items())


def _rows(fields, low, high) -> list[str]:
    """Table rows of fields; a run of fields numbered in order that differ only by their number (one per EV:
    ``ev0_kw``, ``ev1_kw``, ...) is one row, ``ev0_kw … ev39_kw``, its meaning with the number as ``i``."""
    import re

    runs: list[dict] = []
    for (name, unit, doc), lo, hi in zip(fields, low, high):
        number = re.search(r"\d+", name)
        same = {"bounds": (unit, f"{lo:.4g}", f"{hi:.4g}"),
                "template": name[:number.start()] + "#" + name[number.end():] if number else name}
        n = int(number.group()) if number else None
        run = runs[-1] if runs else None
        if n is not None and run is not None and all(run[k] == v for k, v in same.items()) and run["n"] == n - 1:
            differ = _numbered_alike(run["last_doc"], doc, n - 1)
            if differ and run["differ"] in (None, differ):
                run.update(n=n, last=name, last_doc=doc, differ=differ)
                continue
        runs.append({**same, "n": n, "first": name, "last": name, "doc": doc, "last_doc": doc, "differ": None})
    rows = []
    for run in runs:
        name, doc = run["first"], run["doc"]
        if run["differ"]:
            name = f"{run['first']} … {run['last']}"
            parts = re.split(r"(\d+)", doc)
            doc = "".join("i" if k in run["differ"] else part for k, part in enumerate(parts))
        rows.append(f"| {name} | {' | '.join(run['bounds'])} | {doc} |")
    return rows


def _numbered_alike(doc: str, next_doc: str, n: int) -> tuple[int, ...] | None:
    """Where two meanings differ if only by the number ``n`` in the first, ``n + 1`` in the second (the positions
    among their parts split at numbers), else None."""
    import re

    parts, next_parts = re.split(r"(\d+)", doc), re.split(r"(\d+)", next_doc)
    if len(parts) != len(next_parts):
        return None
    differ = tuple(k for k, (a, b) in enumerate(zip(parts, next_parts)) if a != b)
    alike = all(parts[k] == str(n) and next_parts[k] == str(n + 1) for k in differ)
    return differ if differ and alike else None
