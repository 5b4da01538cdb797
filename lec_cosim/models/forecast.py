"""Forecasts of the households' hourly load and PV that the three-LEC EMSs plan on (no HELICS).

An EMS plans a window of hours ``[hour, hour + window)`` at ``hour`` (``ems.lookahead_h`` ahead, cut at the run's
end: ``multi_lec_ems.planning_window``). With perfect foresight it plans on the households' true profiles; with a forecast it
plans on what a forecaster makes at ``hour`` from what is metered before it: the run's own hours before ``hour``
and the days before the run's start. The households' true profiles still drive the grid, so a forecast's errors
show up as deviations of the LECs' grid exchange from their plans, settled at the tariffs.

Series and forecasters
----------------------
:class:`HourlySeries` holds hourly values of several series (rows) from a start time. A forecaster's
:meth:`~Forecaster.forecast` gets the series *up to the forecast's origin only* (``past``: the columns before
``hour``) and returns ``window`` hours from there; it never gets the future, so it cannot use it. With ``T`` the
origin (the first hour not known), ``y_t`` the metered value of hour ``t`` and ``k = 0 .. window - 1``:

``persistence``
    The naive method: every hour of the window is the last metered hour's value, ``yhat_{T+k} = y_{T-1}``
    (Hyndman and Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., OTexts 2021, Sec. 5.2, "Naive
    method"). It knows the present level, not the day's shape: at 05:00 it forecasts a day without sun.
``seasonal_naive``
    The seasonal naive method with period ``m`` (24 h: the same hour of the previous day, or 168 h: of the previous
    week), ``yhat_{T+k} = y_{T+k-m(floor(k/m)+1)}``: the last metered value of the same hour of the day (week)
    (FPP3, Sec. 5.2, "Seasonal naive method"; their ``h = k + 1``). For a window of at most ``m`` hours it is
    ``y_{T+k-m}``.
``learned``
    Gradient boosting (scikit-learn's ``HistGradientBoostingRegressor``) on calendar features of the hour
    forecast (hour of day, weekday, day of year) and lagged values (the seasonal naive values of periods 24 h and
    168 h, as above), each series divided by its mean over the training days. One *global* model per group of
    series (Montero-Manso and Hyndman, "Principles and algorithms for forecasting groups of time series: Locality
    and globality", Int. J. Forecasting 37(4), 2021): here one per LEC and signal, trained on its households. It
    is **trained once, on the ``training_days`` days strictly before the run's start** (:meth:`Learned.fit` gets
    only those); during the run it is not refitted, and its lags are the metered values before the origin.
``perfect``
    Perfect foresight: the truth, today's behaviour and the default. :class:`PerfectForesight` holds the true
    series; it is the only forecaster that does.

What the EMSs forecast (:class:`HouseholdForecasts`)
----------------------------------------------------
Every household's load and PV, hourly (the community batteries have neither). An LEC_EMS plans on its LEC's sums
(net demand: load minus PV; curtailable PV: the PV); in p2p each HEMS plans its home on its own forecast. One
service per LEC: its learned models are trained on its own households only, so nothing of another LEC enters an
LEC_EMS's plan (the federates' ``only_lec``), and the p2p LEC_EMS's sums are the sums of its members' forecasts.

History before the run's start (:func:`ieee_history`): the IEEE feeder's loads are one typical day, so every day
before the start has the same load (a daily seasonal naive forecast of the loads is exact); the PV follows the
2016 calendar of the SimBench profile file, each household's shape times its kWp. A ``feeder.source``'s dated
profiles have no history here yet (the scenario refuses a forecast there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STRATEGIES = ("perfect", "persistence", "seasonal_naive", "learned")
"""The forecasters by the scenario's ``ems.forecast``."""
SEASONAL_PERIODS_H = (24, 168)
"""The seasonal naive method's periods: a day or a week."""
LEARNED_LAGS_H = (24, 168)
"""The learned model's lagged values: the seasonal naive values of these periods."""


@dataclass(frozen=True, eq=False)
class HourlySeries:
    """Hourly values of several series: ``values[i, t]`` is series ``i``'s mean over hour ``t`` from ``start``."""

    start: pd.Timestamp
    values: np.ndarray

    @property
    def n_hours(self) -> int:
        return self.values.shape[1]

    def before(self, n_hours: int) -> "HourlySeries":
        """The first ``n_hours`` hours only (a copy: what is known before hour ``n_hours``)."""
        if not 0 <= n_hours <= self.n_hours:
            raise ValueError(f"{n_hours} h before: the series has {self.n_hours} h")
        return HourlySeries(self.start, np.array(self.values[:, :n_hours], dtype=float))

    def rows(self, rows) -> "HourlySeries":
        return HourlySeries(self.start, np.array(self.values[rows], dtype=float))


def seasonal_lag_values(past: np.ndarray, window_h: int, period_h: int) -> np.ndarray:
    """``y_{T+k-m(floor(k/m)+1)}`` for ``k = 0 .. window_h - 1`` (``T``: ``past``'s length, ``m``: ``period_h``)."""
    origin = past.shape[1]
    k = np.arange(window_h)
    lagged = origin + k - period_h * (k // period_h + 1)
    if origin < period_h:
        raise ValueError(f"a seasonal lag of {period_h} h needs {period_h} h before the forecast, not {origin} h")
    return past[:, lagged]


class Forecaster:
    """Forecasts ``window_h`` hours of every series from the end of ``past`` (the hours known at the origin)."""

    name = ""
    history_h = 0
    """Hours before the run's start it needs (to forecast the run's first hour)."""

    def fit(self, past: HourlySeries) -> None:
        """Learn from the hours before the run's start (nothing to learn for the rules)."""

    def forecast(self, past: HourlySeries, window_h: int) -> np.ndarray:
        raise NotImplementedError


class PerfectForesight(Forecaster):
    """The truth: ``actual`` from the end of ``past`` on (the only forecaster that holds the future)."""

    name = "perfect"

    def __init__(self, actual: HourlySeries):
        self.actual = actual

    def forecast(self, past: HourlySeries, window_h: int) -> np.ndarray:
        return np.array(self.actual.values[:, past.n_hours:past.n_hours + window_h], dtype=float)


class Persistence(Forecaster):
    """The naive method: the last metered hour held over the window (module docstring)."""

    name = "persistence"
    history_h = 1

    def forecast(self, past: HourlySeries, window_h: int) -> np.ndarray:
        if past.n_hours < 1:
            raise ValueError("persistence needs one hour before the forecast")
        return np.repeat(past.values[:, -1:], window_h, axis=1)


class SeasonalNaive(Forecaster):
    """The seasonal naive method: the last metered value of the same hour of the day or week (module docstring)."""

    name = "seasonal_naive"

    def __init__(self, period_h: int = 24):
        if period_h not in SEASONAL_PERIODS_H:
            raise ValueError(f"seasonal period {period_h} h: one of {SEASONAL_PERIODS_H}")
        self.period_h = self.history_h = int(period_h)

    def forecast(self, past: HourlySeries, window_h: int) -> np.ndarray:
        return seasonal_lag_values(past.values, window_h, self.period_h)


class Learned(Forecaster):
    """Gradient boosting on calendar features and lagged values, one global model over the series given
    (module docstring); trained by :meth:`fit` on the ``training_days`` days before the run's start only."""

    name = "learned"

    def __init__(self, training_days: int = 28, max_iter: int = 100, random_state: int = 0):
        self.training_days = int(training_days)
        self.history_h = 24 * self.training_days + max(LEARNED_LAGS_H)
        self.max_iter, self.random_state = int(max_iter), int(random_state)
        self.model = None
        self.scale = None

    @staticmethod
    def features(start: pd.Timestamp, target_hours: np.ndarray, lags: list[np.ndarray]) -> np.ndarray:
        """One row per value to forecast: hour of day, weekday, day of year of its hour, then its lagged values."""
        times = start + pd.to_timedelta(target_hours, unit="h")
        return np.column_stack([times.hour, times.weekday, times.dayofyear, *lags]).astype(float)

    def fit(self, past: HourlySeries) -> None:
        """Fit on the last ``training_days`` days of ``past`` (whose lags reach 168 h further back)."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        if past.n_hours < self.history_h:
            raise ValueError(f"the learned forecaster needs {self.history_h} h before the run's start, not "
                             f"{past.n_hours} h")
        train = np.arange(past.n_hours - 24 * self.training_days, past.n_hours)
        values = past.values
        self.scale = values[:, train].mean(axis=1)
        used = np.flatnonzero(self.scale > 0)  # a series without PV forecasts none
        rows, targets = [], []
        for i in used:
            y = values[i] / self.scale[i]
            rows.append(self.features(past.start, train, [y[train - lag] for lag in LEARNED_LAGS_H]))
            targets.append(y[train])
        self.model = None
        if rows:
            # one thread: the machine's cores belong to the federation, and the fit is the same on every machine
            with threadpool_limits(1):
                self.model = HistGradientBoostingRegressor(
                    max_iter=self.max_iter, early_stopping=False, random_state=self.random_state).fit(
                    np.vstack(rows), np.concatenate(targets))

    def forecast(self, past: HourlySeries, window_h: int) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        if self.scale is None:
            raise RuntimeError("the learned forecaster forecasts only after fit()")
        out = np.zeros((past.values.shape[0], window_h))
        if self.model is None:
            return out
        target = past.n_hours + np.arange(window_h)
        lags = [seasonal_lag_values(past.values, window_h, lag) for lag in LEARNED_LAGS_H]
        used = np.flatnonzero(self.scale > 0)
        x = np.vstack([self.features(past.start, target, [lag[i] / self.scale[i] for lag in lags]) for i in used])
        with threadpool_limits(1):
            predicted = self.model.predict(x).reshape(len(used), window_h)
        out[used] = np.maximum(predicted, 0.0) * self.scale[used, None]  # no negative load or PV
        return out


def make_forecaster(strategy: str, *, seasonal_period_h: int = 24, training_days: int = 28) -> Forecaster:
    """A rule or the learned model by the scenario's name (not ``perfect``: :class:`HouseholdForecasts` holds it)."""
    if strategy == "persistence":
        return Persistence()
    if strategy == "seasonal_naive":
        return SeasonalNaive(seasonal_period_h)
    if strategy == "learned":
        return Learned(training_days)
    raise ValueError(f"forecast {strategy!r}: one of {', '.join(STRATEGIES[1:])} (perfect needs the truth)")


def history_hours(strategy: str, *, seasonal_period_h: int = 24, training_days: int = 28) -> int:
    """Hours of metered data before the run's start that ``strategy`` needs (0 for perfect foresight)."""
    if strategy == "perfect":
        return 0
    return make_forecaster(strategy, seasonal_period_h=seasonal_period_h, training_days=training_days).history_h


def ieee_history(members, days: int, *, data_dir, pv_file, load_scale_of_lec: dict[str, float] | None = None
                 ) -> tuple[HourlySeries, HourlySeries]:
    """Every member's hourly load and PV over the ``days`` days before ``members.start`` on the IEEE feeder.

    The loads are the typical day of :func:`lec_cosim.models.multi_lec.multi_lec_members` (the IEEE profiles times
    ``members.load_scale``, times the LEC's ``load_scale_of_lec``), the same every day; the PV each household's
    SimBench shape (``pv_profile``) times its kWp, from the 2016 calendar. Community batteries: zeros.
    """
    from lec_cosim.models.lem_participants import pv_profiles
    from lec_cosim.models.multi_lec import _load_day_kw

    table = members.table
    start = members.start - pd.Timedelta(days=days)
    n = 24 * days
    load, pv = np.zeros((len(table), n)), np.zeros((len(table), n))
    one_min = _load_day_kw(data_dir)
    shapes = pv_profiles(start.isoformat(), n, pv_file)
    shapes = shapes.groupby(np.arange(len(shapes)) // 4).mean()  # 15 min -> hourly means
    for j, row in enumerate(table.itertuples(index=False)):
        if row.kind != "household":
            continue
        scale = members.load_scale * (load_scale_of_lec or {}).get(row.lec, 1.0)
        day = (one_min[row.member].to_numpy() * scale).reshape(24, 60).mean(axis=1)
        load[j] = np.tile(day, days)
        if row.pv_profile and row.pv_kwp > 0:
            pv[j] = shapes[row.pv_profile].to_numpy(dtype=float) * row.pv_kwp
    return HourlySeries(start, load), HourlySeries(start, pv)


class HouseholdForecasts:
    """The forecasts the EMSs and HEMSs of a three-LEC run plan on (module docstring, "What the EMSs forecast").

    Parameters
    ----------
    members : MultiLecMembers
        The run's members: their profiles are the truth, hourly means of the run's hours.
    strategy : str
        One of :data:`STRATEGIES`.
    history : (HourlySeries, HourlySeries), optional
        Every member's hourly load and PV before the run's start (:func:`ieee_history`; not for ``perfect``).
    lecs : iterable of str, optional
        The LECs whose forecasts are wanted (an LEC_EMS: its own); a learned model is trained for these only.
    seasonal_period_h, training_days : int
        The seasonal naive method's period; the learned model's training days.
    """

    def __init__(self, members, strategy: str = "perfect", history=None, *, lecs=None, seasonal_period_h: int = 24,
                 training_days: int = 28):
        from lec_cosim.models.multi_lec_ems import hourly_mean

        if strategy not in STRATEGIES:
            raise ValueError(f"forecast {strategy!r}: one of {', '.join(STRATEGIES)}")
        self.members, self.strategy = members, strategy
        self.lec_names = list(members.lec_names)
        lec = members.table["lec"].to_numpy()
        households = members.table["kind"].to_numpy() == "household"
        self.rows = {name: np.flatnonzero((lec == name) & households) for name in self.lec_names}
        self.load_h, self.pv_h = hourly_mean(members, members.load_kw), hourly_mean(members, members.pv_kw)
        self.net_lec_h, self.pv_lec_h = (hourly_mean(members, members.net_demand_kw),
                                         hourly_mean(members, members.lec_pv_kw))
        self.forecasters, self.history_h = {}, 0
        self._cache = {}
        if strategy == "perfect":
            return
        if history is None:
            raise ValueError(f"forecast {strategy!r} needs the members' history before the run's start")
        load_history, pv_history = history
        self.history_h = load_history.n_hours
        # the truth of every hour: the history, then the run's own hours (what is metered as they pass)
        self.actual = {"load": HourlySeries(load_history.start, np.hstack([load_history.values, self.load_h])),
                       "pv": HourlySeries(pv_history.start, np.hstack([pv_history.values, self.pv_h]))}
        for name in (self.lec_names if lecs is None else list(lecs)):
            for signal, series in self.actual.items():
                forecaster = make_forecaster(strategy, seasonal_period_h=seasonal_period_h,
                                             training_days=training_days)
                forecaster.fit(series.rows(self.rows[name]).before(self.history_h))  # strictly before the start
                self.forecasters[(name, signal)] = forecaster

    def lec_rows(self, lec: str) -> np.ndarray:
        """The LEC's households' rows of the members' table."""
        return self.rows[lec]

    def households(self, lec: str, hour: int, window_h: int) -> tuple[np.ndarray, np.ndarray]:
        """Load and PV forecasts of the LEC's households (rows :meth:`lec_rows`), each (households, window_h), kW,
        made at ``hour`` of the run for hours ``hour .. hour + window_h - 1``."""
        key = (lec, hour, window_h)
        if self._cache and next(iter(self._cache))[1] != hour:
            self._cache.clear()  # forecasts are asked for the present hour: a year's would fill the memory
        if key not in self._cache:
            rows = self.rows[lec]
            if self.strategy == "perfect":
                window = slice(hour, hour + window_h)
                self._cache[key] = self.load_h[rows, window], self.pv_h[rows, window]
            else:
                known = self.history_h + hour
                self._cache[key] = tuple(
                    self.forecasters[(lec, signal)].forecast(self.actual[signal].rows(rows).before(known), window_h)
                    for signal in ("load", "pv"))
        return self._cache[key]

    def member(self, j: int, hour: int, window_h: int) -> tuple[np.ndarray, np.ndarray]:
        """Household ``j``'s (row of the members' table) load and PV forecasts, each (window_h,), kW."""
        lec = self.members.table.at[j, "lec"]
        load, pv = self.households(lec, hour, window_h)
        i = int(np.flatnonzero(self.rows[lec] == j)[0])
        return load[i], pv[i]

    def lec(self, index: int, hour: int, window_h: int) -> tuple[np.ndarray, np.ndarray]:
        """LEC ``index``'s net demand (load minus PV) and PV forecasts, each (window_h,), kW: the sums over its
        households (perfect foresight: the members' profiles, as the LEC_EMS planned on them before forecasts)."""
        if self.strategy == "perfect":
            window = slice(hour, hour + window_h)
            return self.net_lec_h[index, window], self.pv_lec_h[index, window]
        load, pv = self.households(self.lec_names[index], hour, window_h)
        return load.sum(axis=0) - pv.sum(axis=0), pv.sum(axis=0)

    def lec_load(self, index: int, hour: int, window_h: int) -> np.ndarray:
        """LEC ``index``'s load forecast, (window_h,), kW (what its EMS records beside net and PV)."""
        load, _ = self.households(self.lec_names[index], hour, window_h)
        return load.sum(axis=0)

    def all_lecs(self, hour: int, window_h: int) -> tuple[np.ndarray, np.ndarray]:
        """Every LEC's net demand and PV forecasts, each (N, window_h): the centralised problem's inputs."""
        pairs = [self.lec(i, hour, window_h) for i in range(len(self.lec_names))]
        return np.vstack([p[0] for p in pairs]), np.vstack([p[1] for p in pairs])


def forecasts_from_scenario(scenario, members, *, lecs=None) -> HouseholdForecasts:
    """The :class:`HouseholdForecasts` of a three-LEC scenario's ``ems`` block (history: :func:`ieee_history`)."""
    ems = scenario.ems
    kwargs = dict(seasonal_period_h=ems.seasonal_period_h, training_days=ems.training_days)
    if ems.forecast == "perfect":
        return HouseholdForecasts(members, "perfect", **kwargs)
    if scenario.feeder.source is not None:
        raise ValueError("ems.forecast: forecasts need the households' history, which a feeder.source does not give "
                         "yet")
    hours = history_hours(ems.forecast, **kwargs)
    history = ieee_history(members, -(-hours // 24), data_dir=scenario.feeder.data_dir,
                           pv_file=scenario.pv.profile_file,
                           load_scale_of_lec={lec: scenario.lecs.composition(lec).load_scale
                                              for lec in scenario.lec_names})
    return HouseholdForecasts(members, ems.forecast, history, lecs=lecs, **kwargs)
