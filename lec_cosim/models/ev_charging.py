"""Home EV charging: charging sessions drawn from German mobility statistics, charged on arrival or by price.

**Sessions.** Every EV of the community makes one round trip a day: it leaves home at a time drawn from the
departure-time distribution of trips away from home, comes back at a time drawn from that of trips towards
home (at least ``MIN_AWAY_H`` later), and drives a one-way distance (with its duration) drawn from the joint
distance-duration distribution of trips. It is plugged in from its arrival home until it leaves the next
day, and needs the energy of the day's round trip (distance x consumption, at most its battery). The
distributions are those of ``emobpy`` (Gaete-Morales, Kramer, Schill, Zerrahn, "An open tool for creating
battery-electric vehicle time series from empirical data, emobpy", Scientific Data 8, 152 (2021)), derived
from the German national travel survey *Mobilität in Deutschland* 2017 (``data/ev/README.md``): half-hour
departure probabilities by destination for weekdays, Saturdays and Sundays (its *workers* file: full- and
part-time commuters), and trip distance classes (up to 1, 2, 5, 10, 20, 50, 100, 400 km) against duration
classes (up to 10, 15, 20, 30, 45, 60, 185 min). Times and distances are drawn uniformly within their class.
What emobpy adds on top (several trips a day, rules per driver type, weather-dependent consumption) is left
out: one round trip a day keeps a session per EV and night, the case home charging is about.

**Charging.** Each grid step an EV charges at most ``charger_kw`` while plugged in (a step it arrives or
leaves in, for the part of it that it is plugged in); the published power is the step's average.
``uncontrolled`` charges from arrival until the need is met. ``smart`` charges in the cheapest steps before
departure that meet the need: every step it re-plans each session over the prices known then (day-ahead
prices for the rest of the day; past midnight, until the next day's prices arrive, each hour's price of the
day before), and charges now only if now is among the cheapest steps; on equal prices, earlier steps first.
A session already under way when the simulation starts has charged, before it, what uncontrolled charging
would have: nothing controlled it before the federation began.

**Decided** (``EVFleet.step``'s ``decided_kw``, from a learning agent: the EV component's role), each EV's
average power for the step (kW) replaces the mode: the fleet keeps the physics, charging only while plugged
in, at most ``charger_kw`` for that time and never past what the session still needs (a decision beyond is
clipped, not refused). The decision that reproduces a mode's step is that step's ``power_kw_by_ev``;
:meth:`EVFleet.outlook` is what an agent knows of the step it decides.

Energy a session still needs when its EV leaves is **unmet**; sessions still plugged in at the end of the
horizon are open, neither met nor unmet. Unmet energy is not carried into the next session, and a day whose
trip ends after the next morning's departure (a night away) has no session. ``delivered_kwh`` of a session
includes what it charged before the start; ``ev_energy_kwh`` counts the horizon only.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DAY_S = 86400.0
MIN_AWAY_H = {"weekdays": 7.0, "saturday": 1.0, "sunday": 1.0}
"""Least time away from home: emobpy's full-time workers spend at least 7 h at the workplace on weekdays;
on weekends we require an hour (our choice: emobpy's shortest stay anywhere is 15 min)."""
DESTINATIONS_AWAY = ("errands", "escort", "leisure", "shopping", "workplace")


@dataclass(frozen=True)
class Session:
    """One EV plugged in at home: from ``arrival_s`` to ``departure_s`` (seconds from the start), needing
    ``energy_kwh``."""

    ev: int
    arrival_s: float
    departure_s: float
    energy_kwh: float


@dataclass(frozen=True)
class MobilityStatistics:
    """The trip statistics: departure probabilities per half hour (away from home, towards home) by day type,
    and the joint distribution of one-way distance and duration classes."""

    away: dict[str, np.ndarray]
    home: dict[str, np.ndarray]
    distance_edges_km: np.ndarray
    duration_edges_min: np.ndarray
    distance_duration: np.ndarray

    @classmethod
    def from_folder(cls, folder: str | Path) -> MobilityStatistics:
        folder = Path(folder)
        departures, trips = folder / "DepartureDestinationTrip_Worker.csv", folder / "DistanceDurationTrip.csv"
        away: dict[str, list[float]] = {}
        home: dict[str, list[float]] = {}
        times: dict[str, list[float]] = {}
        with open(departures, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"days", "time", "home", *DESTINATIONS_AWAY} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{departures}: no column {sorted(missing)[0]!r}")
            for line, row in enumerate(reader, start=2):
                try:
                    values = [float(row[d]) for d in ("time", "home", *DESTINATIONS_AWAY)]
                except (TypeError, ValueError):
                    raise ValueError(f"{departures}: line {line}: a value that is not a number") from None
                if not all(math.isfinite(v) and v >= 0 for v in values):
                    raise ValueError(f"{departures}: line {line}: probabilities must be finite and not negative")
                times.setdefault(row["days"], []).append(values[0])
                home.setdefault(row["days"], []).append(values[1])
                away.setdefault(row["days"], []).append(sum(values[2:]))
        for day in ("weekdays", "saturday", "sunday"):
            if times.get(day) != [0.5 * k for k in range(48)]:
                raise ValueError(f"{departures}: {day}: expected the 48 half hours 0, 0.5, ... 23.5 in order")
            if sum(away[day]) <= 0 or sum(home[day]) <= 0:
                raise ValueError(f"{departures}: {day}: no departure away from home or back home at all")
        with open(trips, newline="") as f:
            rows = list(csv.reader(f))
        try:
            durations = np.array([float(x) for x in rows[0][1:]])
            distances = np.array([float(r[0]) for r in rows[1:]])
            table = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
        except (IndexError, ValueError):
            raise ValueError(f"{trips}: expected a header of durations (min) and rows of a distance (km) and one "
                             "probability per duration") from None
        if table.ndim != 2 or table.shape != (len(distances), len(durations)) or len(distances) == 0:
            raise ValueError(f"{trips}: {len(distances)} distance rows for {len(durations)} durations: not a table")
        if not (np.all(np.diff(distances) > 0) and np.all(np.diff(durations) > 0) and distances[0] > 0
                and durations[0] > 0):
            raise ValueError(f"{trips}: distance and duration classes must be positive and increasing")
        if not (np.all(np.isfinite(table)) and np.all(table >= 0) and table.sum() > 0):
            raise ValueError(f"{trips}: probabilities must be finite, not negative, and not all zero")
        return cls({d: np.array(v) for d, v in away.items()}, {d: np.array(v) for d, v in home.items()},
                   distances, durations, table)


def day_type(day: dt.date) -> str:
    return {5: "saturday", 6: "sunday"}.get(day.weekday(), "weekdays")


def _half_hour(rng: np.random.Generator, weights: np.ndarray) -> float:
    """A time of day in hours, drawn from half-hour weights, uniform within the half hour."""
    k = rng.choice(len(weights), p=weights / weights.sum())
    return 0.5 * k + 0.5 * rng.random()


def _trip(rng: np.random.Generator, stats: MobilityStatistics) -> tuple[float, float]:
    """One-way distance (km) and duration (h) of a trip, drawn from the joint class table."""
    p = stats.distance_duration.ravel()
    k = rng.choice(len(p), p=p / p.sum())
    i, j = divmod(k, stats.distance_duration.shape[1])
    lo_km = stats.distance_edges_km[i - 1] if i else 0.0
    lo_min = stats.duration_edges_min[j - 1] if j else 0.0
    km = lo_km + (stats.distance_edges_km[i] - lo_km) * rng.random()
    minutes = lo_min + (stats.duration_edges_min[j] - lo_min) * rng.random()
    return km, minutes / 60.0


def _round_trip(rng: np.random.Generator, stats: MobilityStatistics, day: dt.date) -> tuple[float, float, float]:
    """(leaves home, is back home, distance driven): hours from the day's midnight and km."""
    kind = day_type(day)
    leave = _half_hour(rng, stats.away[kind])
    later = np.arange(48) * 0.5 >= math.floor((leave + MIN_AWAY_H[kind]) * 2) / 2
    weights = stats.home[kind] * later
    back_departs = _half_hour(rng, weights) if weights.sum() > 0 else min(leave + MIN_AWAY_H[kind], 23.5)
    back_departs = max(back_departs, leave + MIN_AWAY_H[kind])
    km, hours = _trip(rng, stats)
    return leave, back_departs + hours, 2.0 * km


def draw_sessions(stats: MobilityStatistics, n_evs: int, start: dt.datetime, horizon_s: float, seed: int,
                  consumption_kwh_per_km: float, battery_kwh: float) -> list[Session]:
    """Every EV's sessions overlapping ``[0, horizon_s)``; reproducible for a seed (one stream per EV)."""
    sessions = []
    first_day = start.date() - dt.timedelta(days=1)  # the evening before: plugged in when the run starts
    days = int(math.ceil((horizon_s + (start - dt.datetime.combine(start.date(), dt.time())).total_seconds())
                         / DAY_S)) + 2
    midnight0 = (dt.datetime.combine(first_day, dt.time()) - start).total_seconds()
    for ev in range(n_evs):
        rng = np.random.default_rng([seed, ev])
        trips = [_round_trip(rng, stats, first_day + dt.timedelta(days=d)) for d in range(days)]
        for d in range(days - 1):
            _, back_h, km = trips[d]
            leave_next_h = trips[d + 1][0]
            arrival = midnight0 + d * DAY_S + back_h * 3600.0
            departure = midnight0 + (d + 1) * DAY_S + leave_next_h * 3600.0
            if departure <= arrival:  # back after the next morning's departure: no night at home
                continue
            if arrival < horizon_s and departure > 0:
                sessions.append(Session(ev, float(arrival), float(departure),
                                        float(min(km * consumption_kwh_per_km, battery_kwh))))
    return sessions


def fleet_of(ev, start: dt.datetime, horizon_s: float, step_s: float, stats: MobilityStatistics | None = None,
             drawn: dict | None = None) -> EVFleet:
    """The fleet of a scenario's ``ev`` section (:class:`lec_cosim.components.ev_charging.EVChargingConfig`) for a
    run from ``start`` for ``horizon_s``: its sessions drawn as that run draws them. The sessions depend on the
    start day (each EV's stream begins the evening before it), so a learning environment's episode of day D
    builds the fleet of a run from D, not a window of a longer run's. ``drawn``: sessions drawn before, by start
    and horizon, kept there (a long-lived environment plays the same days again; a draw takes milliseconds)."""
    drawn = {} if drawn is None else drawn
    if (start, horizon_s) not in drawn:
        stats = stats if stats is not None else MobilityStatistics.from_folder(ev.mobility_dir)
        drawn[start, horizon_s] = draw_sessions(stats, ev.count, start, horizon_s, ev.seed, ev.consumption_kwh_per_km,
                                                ev.battery_kwh)
    return EVFleet(drawn[start, horizon_s], ev.charger_kw, step_s, ev.mode, count=ev.count)


OUTLOOK_FIELDS = ("plugged_in", "energy_needed_kwh", "hours_to_departure", "max_charge_kwh")
"""What :meth:`EVFleet.outlook` gives per EV, in this order."""


@dataclass
class _State:
    session: Session
    delivered_kwh: float = 0.0
    ended: bool = False


@dataclass
class EVFleet:
    """The community's EVs charging at home, step by step (see the module docstring for the two modes)."""

    sessions: list[Session]
    charger_kw: float
    step_s: float
    mode: str = "uncontrolled"
    count: int = 0
    """EVs in the community (vectors by EV number have at least this many values, one per EV with a session
    if more)."""
    states: list[_State] = field(init=False)
    unmet_kwh: float = field(init=False, default=0.0)
    sessions_ended: int = field(init=False, default=0)
    power_kw_by_ev: np.ndarray = field(init=False)
    """Each EV's average power over the last step, kW (by EV number)."""

    def __post_init__(self):
        if self.mode not in ("uncontrolled", "smart"):
            raise ValueError(f"mode: {self.mode!r}; uncontrolled or smart")
        self.states = [_State(s) for s in sorted(self.sessions, key=lambda s: (s.arrival_s, s.ev))]
        self.power_kw_by_ev = np.zeros(max((s.ev for s in self.sessions), default=-1) + 1)
        for state in self.states:  # what uncontrolled charging delivered before the run began
            s = state.session
            if s.arrival_s < 0:
                state.delivered_kwh = min(s.energy_kwh, self.charger_kw * (min(0.0, s.departure_s) - s.arrival_s)
                                          / 3600.0)

    def _plugged_h(self, s: Session, t0: float) -> float:
        """Hours of the step starting at ``t0`` that the session is plugged in."""
        return max(0.0, min(t0 + self.step_s, s.departure_s) - max(t0, s.arrival_s)) / 3600.0

    def step(self, t_s: float, price_at=None, decided_kw=None) -> float:
        """Charge during the step starting at ``t_s``; returns the fleet's average power over it in kW.

        ``price_at(t)`` (smart mode): the price known now for the step starting at ``t``. ``decided_kw`` (by EV
        number): each EV's average power over the step as an agent decided it, in place of the mode; clipped to
        0 .. ``charger_kw`` for the time plugged in and to the session's need.
        """
        energy = 0.0
        self.power_kw_by_ev[:] = 0.0
        step_h = self.step_s / 3600.0
        for state in self.states:
            s = state.session
            if state.ended or s.arrival_s >= t_s + self.step_s:
                continue
            need = s.energy_kwh - state.delivered_kwh
            hours = self._plugged_h(s, t_s)
            if need > 1e-12 and hours > 0:
                now = min(need, self.charger_kw * hours)
                if decided_kw is not None:  # a step's average power: its energy is power x step, within the above
                    now = min(now, max(0.0, float(decided_kw[s.ev])) * step_h)
                elif self.mode == "smart":
                    now = self._smart_now(s, t_s, need, price_at)
                state.delivered_kwh += now
                energy += now
                self.power_kw_by_ev[s.ev] += now / (self.step_s / 3600.0)
            if s.departure_s <= t_s + self.step_s:
                state.ended = True
                self.sessions_ended += 1
                self.unmet_kwh += max(0.0, s.energy_kwh - state.delivered_kwh)
        return energy / (self.step_s / 3600.0)

    def _smart_now(self, s: Session, t_s: float, need: float, price_at) -> float:
        """Energy to charge in this step: its share of the cheapest steps left before departure that meet the need."""
        starts = np.arange(t_s, s.departure_s, self.step_s)
        capacity = np.array([self.charger_kw * self._plugged_h(s, t) for t in starts])
        prices = np.array([price_at(t) for t in starts])
        order = np.lexsort((starts, prices))  # cheapest first; on equal prices, earlier first
        left = need
        for i in order:
            take = min(left, capacity[i])
            if i == 0:
                return take
            left -= take
            if left <= 1e-12:
                return 0.0
        return 0.0

    def outlook(self, t_s: float) -> np.ndarray:
        """What each EV's charger knows of the step starting at ``t_s`` (before it is charged), one row per EV by
        number, columns :data:`OUTLOOK_FIELDS`: 1 if its session is plugged in during any of the step (it may
        arrive or leave within it), else 0; the energy the session still needs (kWh); hours from the step's start
        to its departure; the most it can charge in the step (kWh: ``charger_kw`` for the time plugged in, at most
        its need). An EV not plugged in during the step has a row of zeros."""
        rows = np.zeros((max(self.count, len(self.power_kw_by_ev)), len(OUTLOOK_FIELDS)))
        for state in self.states:
            s = state.session
            if state.ended or s.arrival_s >= t_s + self.step_s or s.departure_s <= t_s:
                continue
            need = max(0.0, s.energy_kwh - state.delivered_kwh)
            rows[s.ev] = (1.0, need, (s.departure_s - t_s) / 3600.0,
                          min(need, self.charger_kw * self._plugged_h(s, t_s)))
        return rows

    def session_table(self) -> list[dict]:
        """Every session with what it needed, got and missed (``unmet_kwh`` None while still plugged in)."""
        return [{"ev": st.session.ev, "arrival_s": st.session.arrival_s, "departure_s": st.session.departure_s,
                 "energy_needed_kwh": st.session.energy_kwh, "delivered_kwh": st.delivered_kwh,
                 "unmet_kwh": max(0.0, st.session.energy_kwh - st.delivered_kwh) if st.ended else None}
                for st in self.states]


class PriceForecast:
    """Prices per market step as a federate learns them: day-ahead vectors as they arrive; for a step not known,
    the same time of day of the latest day known before it (persistence), else of the earliest day known after
    it; with no price known at all, the same price (infinite) everywhere, so smart charging charges as early
    as uncontrolled charging does."""

    def __init__(self, market_step_s: float):
        self.market_step_s = market_step_s
        self.per_day = int(round(DAY_S / market_step_s))
        self.known: dict[int, float] = {}
        self.by_time_of_day: dict[int, list[int]] = {}
        """Known steps by their time of day, in order."""

    def add_day(self, t_s: float, prices, until_s: float | None = None) -> None:
        """The prices of the market steps from ``t_s`` on; with ``until_s`` (a run's end), none from there on: a
        long-lived learning federation's market publishes whole days past an episode's end, a run's market ends
        its vector at the horizon, where this cuts nothing."""
        import bisect

        if until_s is not None:
            prices = prices[:max(math.ceil((until_s - t_s) / self.market_step_s - 1e-9), 0)]
        first = int(round(t_s / self.market_step_s))
        for k, price in enumerate(prices):
            if first + k not in self.known:
                bisect.insort(self.by_time_of_day.setdefault((first + k) % self.per_day, []), first + k)
            self.known[first + k] = float(price)

    def __call__(self, t_s: float) -> float:
        import bisect

        k = int(t_s // self.market_step_s)
        if k in self.known:
            return self.known[k]
        same_time = self.by_time_of_day.get(k % self.per_day)
        if not same_time:
            return math.inf
        i = bisect.bisect_right(same_time, k)
        return self.known[same_time[i - 1] if i else same_time[0]]


def ev_kpis(signals, scenario) -> dict:
    """The EV KPIs of a run, from its recorded ``ev_p_mw``, ``price`` (if the study has spot prices), ``ev_unmet_kwh`` and
    ``ev_sessions_ended`` (the recorder's ``added_kpis``): the energy charged within the horizon, what
    it cost at the spot price (the scenario's currency, like ``energy_cost``, which counts the households
    and the battery only), the fleet's peak, the energy missing at departures and the sessions ended."""
    step_h = scenario.grid_step_s / 3600.0
    ev = signals["ev_p_mw"].to_numpy(dtype=float)
    priced = {}
    if "price" in signals:  # per MWh, the spot price of each grid step (a study with spot prices)
        priced["ev_energy_cost"] = float((ev * signals["price"].to_numpy(dtype=float)).sum() * step_h)
    return {
        "ev_energy_kwh": float(ev.sum() * step_h * 1000.0),
        **priced,
        "ev_peak_kw": float(ev.max() * 1000.0) if len(ev) else 0.0,
        "ev_unmet_kwh": float(signals["ev_unmet_kwh"].iloc[-1]) if len(ev) else 0.0,
        "ev_sessions_ended": int(signals["ev_sessions_ended"].iloc[-1]) if len(ev) else 0,
    }
