"""The LEM community over a horizon: who the players are, what they bid, what they produce and pay.

This module turns a ``local_market`` scenario into plain arrays and plain functions, for the
participant, market and DSO federates and for the learner (``lec-cosim train-bidders``). No HELICS.

Time: the horizon starts at midnight of the scenario's start date (a 2016 date of the PV data) and
runs for any whole number of hours up to the end of the PV data (2016-12-31 24:00). The market
period is one hour (the paper's hourly day-ahead LEM); the grid step divides it. Period ``p`` is
hour ``p % 24`` of its day: tariffs and CHP bids follow the hour of the day.

Days: **loads repeat** the IEEE typical day every day (the IEEE data have one day and no date);
**PV follows the calendar** (consecutive 2016 days from the start date); CHP bids repeat daily
(a bids file holds the 24 hourly bids of a day). The PV kWp is sized on one day, the start day
unless ``participants.pv.sizing_day`` names another, so the first day of a multi-day run is exactly
the one-day run of the same start (and sizing day).

Profiles
--------
* **Load.** ``LOADk`` follows IEEE ``profile_k`` (1-minute, kW), averaged to the grid step, times a
  common factor that makes the community's aggregate *hourly* load peak equal ``load_peak_kw`` (the
  paper's 140 kW; the published profiles peak at 38.9 kW in hourly means, so the factor is 3.60).
  Reactive load from the IEEE power factor (0.95 lagging). The same day repeats every day.
* **PV** of the 42 prosumers: SimBench shapes PV1..PV8 (15 min, piecewise constant within a grid
  step shorter than 15 min) of the calendar days of the horizon, times a common kWp sized so the
  aggregate hourly PV peak of the sizing day (default: the start day) is ``pv_peak_kw`` (194 kW), see
  :mod:`lec_cosim.models.lem_participants`. Unity power factor.
* **CHP**: balanced three-phase units, unity power factor.

Behaviour per market period (hour)
----------------------------------
Energies of the hour (kWh) are the means of the grid steps: forecasts equal actuals (the paper's
day-ahead market with known profiles). Orders are :mod:`lec_cosim.models.bidding`'s: consumers bid
their load at the retail tariff; prosumers bid a deficit at retail or offer a surplus at feed-in;
CHPs offer their capacity at their strategy's price (``truthful``: the marginal cost at full
output; ``aco``: the learnt bid of the hour of the day).

Settlement (:func:`settle_period`): accepted LEM energy at the clearing price; the rest of a
buyer's need is bought from the grid at retail and the rest of a prosumer's surplus injected at
feed-in. In the LEM cases a CHP produces exactly what the LEM accepts (it is a LEM producer). In
the base cases (no LEM) a CHP's only outlet is the grid at the feed-in tariff, and it produces at
the output that maximises its profit there: ``G* = min(capacity, 1000 (feed_in / 2b)^2)`` kW,
where the marginal cost 2b sqrt(G/1000) meets the feed-in tariff; with b = 0.20 and 0.045 EUR/kWh
that is 12.7 kW, so a 10 kW unit runs flat out (profit 0.18 EUR per hour).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.files import write_text_atomic
from lec_cosim.models import disk_cache
from lec_cosim.models.auction import Order
from lec_cosim.models.bidding import (
    FEED_IN_EUR_PER_KWH,
    chp_bid_floor_eur_per_kwh,
    chp_orders,
    chp_production_cost_eur,
    consumer_orders,
    prosumer_orders,
    retail_tariff_eur_per_kwh,
)
from lec_cosim.models.community import MARKET_PERIOD_MIN, Community  # noqa: F401 (the players, defined there)
from lec_cosim.models.feeder_copies import base_name, replicate_participants
from lec_cosim.models.feeder_tables import feeder_folder_files
from lec_cosim.models.ieee_eulv import _read_ieee_csv, read_load_profiles_kw
from lec_cosim.models.lem_participants import (
    load_peak_kw,
    participants,
    pv_day_profiles,
    pv_kwp_per_prosumer,
    pv_profiles,
)

HOURS_PER_DAY = 24
KINDS = ("consumer", "prosumer", "chp")


class BidsFileError(ValueError):
    """A learned-bids file that does not fit the scenario."""


def load_scale_factor(load_peak_kw_target: float | None, data_dir: Path | str) -> float:
    """Factor that brings the 55 IEEE profiles' aggregate hourly peak to ``load_peak_kw_target`` (1 if None)."""
    if load_peak_kw_target is None:
        return 1.0
    return float(load_peak_kw_target) / load_peak_kw(data_dir)["60min"]


def build_community(
    data_dir: Path | str,
    day: str,
    pv_file: Path | str,
    *,
    grid_min: int = 15,
    horizon_h: float = 24.0,
    load_peak_kw_target: float | None = 140.0,
    pv_peak_kw: float = 194.0,
    chp_capacity_kw: float = 10.0,
    b_eur_per_kwh: float = 0.20,
    pv_sizing_day: str | None = None,
    feeder_copies: int = 1,
) -> Community:
    """Build the community of the LEM scenario (see the module docstring).

    Parameters
    ----------
    data_dir : path-like
        IEEE European LV data folder.
    day : str
        Start date (2016), e.g. ``"2016-05-26"``: the first PV day (and the PV sizing day by default).
    pv_file : path-like
        SimBench PV profiles (15 min, p.u.).
    grid_min : int
        Grid step, minutes; divides 60.
    horizon_h : float
        Hours from midnight of ``day``, a positive whole number, up to the end of the PV data.
        Loads repeat the IEEE day; PV follows the calendar from ``day``.
    pv_sizing_day : str, optional
        Day (2016) whose aggregate hourly PV peak is ``pv_peak_kw``; default ``day``.
    feeder_copies : int
        Copies of the feeder (:mod:`lec_cosim.models.feeder_copies`): the 61 players repeat on every
        copy with the same profiles, copy c's named ``F<c>_<name>``; the table gets a ``feeder`` column.

    Kept between runs (:mod:`lec_cosim.models.disk_cache`, kind ``communities``), by these arguments, the content
    of the IEEE folder's tables and of the PV file, and the models' source: every federate of a run builds the same
    community (0.07-0.15 s each, on cores they share at start-up).
    """
    arguments = {name: str(value) if isinstance(value, Path) else value for name, value in locals().items()}
    files = [*feeder_folder_files(data_dir), Path(pv_file), *disk_cache.model_sources()]
    request = json.dumps({**arguments, "numpy": np.__version__, "pandas": pd.__version__}, sort_keys=True)
    return disk_cache.result("communities", request, files,
                             lambda: _built_community(**arguments))


def _built_community(data_dir, day, pv_file, *, grid_min, horizon_h, load_peak_kw_target, pv_peak_kw,
                     chp_capacity_kw, b_eur_per_kwh, pv_sizing_day, feeder_copies) -> Community:
    if 60 % grid_min:
        raise ValueError("grid_min must divide 60")
    n_steps = int(round(horizon_h * 60 / grid_min))
    if n_steps <= 0 or n_steps * grid_min != horizon_h * 60 or n_steps % (60 // grid_min):
        raise ValueError("horizon_h must be a positive whole number of hours")
    hours = n_steps * grid_min // 60
    day_steps = 1440 // grid_min
    sizing_day = day if pv_sizing_day is None else str(pv_sizing_day)
    if float(pv_day_profiles(sizing_day, pv_file).to_numpy().max()) <= 0.0:
        raise ValueError(f"no PV at all on {sizing_day} in {Path(pv_file).name}: cannot size the PV on that day")
    table = participants(sizing_day, 60, data_dir, pv_file).copy()
    table["pv_kwp"] = np.where(table["kind"] == "prosumer",
                               pv_kwp_per_prosumer(sizing_day, pv_peak_kw, 60, data_dir, pv_file), 0.0)
    table["chp_kw"] = np.where(table["kind"] == "chp", float(chp_capacity_kw), 0.0)
    scale = load_scale_factor(load_peak_kw_target, data_dir)

    profiles = read_load_profiles_kw(data_dir).loc[1:1440]
    loads = _read_ieee_csv(Path(data_dir) / "csv" / "Loads.csv").set_index("Name")
    n = len(table)
    load_kw = np.zeros((n, n_steps))
    load_kvar = np.zeros((n, n_steps))
    pv_kw = np.zeros((n, n_steps))
    pv = pv_profiles(day, hours, pv_file)
    minutes = n_steps * grid_min
    repeats = -(-n_steps // day_steps)  # days the IEEE day is repeated over (the last one maybe in part)
    for i, row in enumerate(table.itertuples(index=False)):
        if row.kind == "chp":
            continue
        base = float(loads.loc[row.participant, "kW"])
        pf = float(loads.loc[row.participant, "PF"])
        one_min = profiles[row.load_profile].to_numpy(dtype=float) * base * scale
        one_day = one_min.reshape(day_steps, grid_min).mean(axis=1)
        load_kw[i] = np.tile(one_day, repeats)[:n_steps]
        load_kvar[i] = load_kw[i] * math.tan(math.acos(pf))
        if row.kind == "prosumer":
            per_15 = pv[row.pv_profile].to_numpy(dtype=float)
            per_min = np.repeat(per_15, 15)[:minutes]
            pv_kw[i] = per_min.reshape(n_steps, grid_min).mean(axis=1) * row.pv_kwp
    table = table[["participant", "kind", "bus", "phase", "pv_kwp", "chp_kw", "reduced_bus"]].reset_index(drop=True)
    if feeder_copies > 1:
        table = replicate_participants(table, feeder_copies)
        load_kw, load_kvar, pv_kw = (np.tile(a, (feeder_copies, 1)) for a in (load_kw, load_kvar, pv_kw))
    return Community(table=table, grid_min=grid_min, load_kw=load_kw, load_kvar=load_kvar, pv_kw=pv_kw,
                     load_scale=scale, b_eur_per_kwh=float(b_eur_per_kwh))


def community_from_scenario(scenario) -> Community:
    """:func:`build_community` with the settings of a ``local_market`` scenario; on a ``feeder.source``,
    :func:`lec_cosim.models.feeder_community.build_feeder_community`."""
    p = scenario.participants
    if getattr(scenario.feeder, "source", None) is not None:
        from lec_cosim.models.feeder_community import build_feeder_community
        from lec_cosim.models.feeder_source import load_feeder

        h = scenario.feeder.households
        return build_feeder_community(
            load_feeder(scenario.feeder.source), scenario.start, p.pv.profile_file,
            grid_min=scenario.resolution.grid_min, horizon_h=scenario.horizon_h, mapping=h.mapping_file,
            load_profiles=h.load_file, load_peak_kw=scenario.feeder.load_peak_kw, power_factor=h.power_factor,
            pv_share=h.pv_share, pv_peak_kw=p.pv.peak_kw,
            pv_sizing_day=None if p.pv.sizing_day is None else p.pv.sizing_day.isoformat(),
            chp_count=p.chp.count, chp_capacity_kw=p.chp.capacity_kw, b_eur_per_kwh=p.chp.b_eur_per_kwh)
    return build_community(
        scenario.feeder.data_dir, scenario.start.date().isoformat(), p.pv.profile_file,
        grid_min=scenario.resolution.grid_min, horizon_h=scenario.horizon_h,
        load_peak_kw_target=scenario.feeder.load_peak_kw, pv_peak_kw=p.pv.peak_kw,
        chp_capacity_kw=p.chp.capacity_kw, b_eur_per_kwh=p.chp.b_eur_per_kwh,
        pv_sizing_day=None if p.pv.sizing_day is None else p.pv.sizing_day.isoformat(),
        feeder_copies=getattr(scenario.feeder, "copies", 1),
    )


def participant_groups(names: list[str], n_groups: int) -> list[list[str]]:
    """Deal the participants to ``n_groups`` federates in turn (each gets a mix of kinds)."""
    n_groups = max(1, min(int(n_groups), len(names)))
    return [names[g::n_groups] for g in range(n_groups)]


# --- strategies and orders ---------------------------------------------------------------------


def base_case_chp_output_kw(capacity_kw: float, b_eur_per_kwh: float,
                            feed_in_eur_per_kwh: float = FEED_IN_EUR_PER_KWH) -> float:
    """Profit-maximising CHP output when its only outlet is the grid at the feed-in tariff, kW."""
    return float(min(capacity_kw, 1000.0 * (feed_in_eur_per_kwh / (2.0 * b_eur_per_kwh)) ** 2))


def truthful_bids(community: Community) -> dict[str, np.ndarray]:
    """The ``truthful`` strategy: each CHP offers at its marginal cost at full output, every period."""
    floor = {}
    for name, cap in zip(community.names, community.chp_kw):
        if cap > 0:
            floor[name] = np.full(community.n_periods, chp_bid_floor_eur_per_kwh(cap, community.b_eur_per_kwh))
    return floor


def write_learned_bids(path: Path, scenario_name: str, bids: dict[str, np.ndarray], **info) -> None:
    """Save learnt CHP bids (EUR/kWh per hour) and what produced them, as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"scenario": scenario_name, "unit": "EUR/kWh",
               "bids_eur_per_kwh": {name: [float(v) for v in values] for name, values in bids.items()}, **info}
    write_text_atomic(path, json.dumps(payload, indent=1))


def read_learned_bids(path: Path, community: Community, scheme: str | None = None) -> dict[str, np.ndarray]:
    """Read bids written by :func:`write_learned_bids`; check they fit the community.

    A file holds one bid per hour of the day from midnight (24; values past the 24th are
    ignored); a shorter horizon plays the first hours. Bids repeat daily: a horizon over 24 h
    plays bid ``p % 24`` in period ``p``. Returns one bid per period of the horizon. With
    ``scheme`` the bids must not exceed that tariff's retail price of their hour (a higher offer
    could never be accepted: the file was learnt for another tariff).
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        bids = {name: np.asarray(v, dtype=float) for name, v in payload["bids_eur_per_kwh"].items()}
    except FileNotFoundError:
        raise BidsFileError(f"{path}: not found; write it with `lec-cosim train-bidders`") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BidsFileError(f"{path}: not a learned-bids file ({type(exc).__name__}: {exc})") from None
    floor = truthful_bids(community)
    if set(bids) != {base_name(name) for name in floor}:
        raise BidsFileError(f"{path}: bids for {sorted(bids)}, but the scenario's CHPs are {sorted(floor)}")
    bids = {name: bids[base_name(name)] for name in floor}  # the copies of a feeder bid as the original
    n = min(community.n_periods, HOURS_PER_DAY)
    for name, values in bids.items():
        if values.ndim != 1 or len(values) < n or not np.all(np.isfinite(values)):
            raise BidsFileError(f"{path}: {name}: expected at least {n} finite hourly bids")
        values = values[:n]
        if np.any(values < floor[name][:n] - 1e-9):
            raise BidsFileError(f"{path}: {name}: a bid is below the CHP's floor (opportunity cost) "
                                f"{floor[name][0]:.4f} EUR/kWh")
        if scheme is not None:
            cap = np.maximum(retail_tariff_eur_per_kwh(np.arange(n), scheme), floor[name][:n])
            if np.any(values > cap + 1e-9):
                hour = int(np.argmax(values > cap + 1e-9))
                raise BidsFileError(f"{path}: {name}: bid {values[hour]:.4f} EUR/kWh at hour {hour} is above the "
                                    f"{scheme} retail tariff {cap[hour]:.4f}; learnt for another tariff?")
        bids[name] = tile_daily(values, community.n_periods)
    return bids


def tile_daily(hourly: np.ndarray, n_periods: int) -> np.ndarray:
    """Values of the hours of one day (the first ``min(n_periods, 24)`` used) repeated over ``n_periods`` hours."""
    day = np.asarray(hourly, dtype=float)[:HOURS_PER_DAY]
    return np.tile(day, -(-n_periods // len(day)))[:n_periods]


def period_orders(kind: str, name: str, load_kwh: float, pv_kwh: float, chp_kw: float, hour: int,
                  scheme: str, chp_bid: float | None, b_eur_per_kwh: float) -> list[Order]:
    """The orders of one participant for one hourly period; ``hour`` is the hour of the day (``period % 24``)."""
    if kind == "consumer":
        return consumer_orders(name, load_kwh, hour, scheme)
    if kind == "prosumer":
        return prosumer_orders(name, load_kwh, pv_kwh, hour, scheme)
    if kind == "chp":
        return chp_orders(name, chp_kw, chp_bid, b_eur_per_kwh=b_eur_per_kwh)
    raise ValueError(f"unknown participant kind {kind!r}")


# --- settlement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodSettlement:
    """One participant's energy and money in one market period (kWh, EUR).

    ``cost_eur`` is what it pays (energy bought in the LEM and from the grid; a CHP's production
    cost); ``income_eur`` what it earns (LEM sales, feed-in).
    """

    lem_bought_kwh: float
    lem_sold_kwh: float
    grid_import_kwh: float
    grid_export_kwh: float
    chp_kwh: float
    cost_eur: float
    income_eur: float


def settle_period(kind: str, load_kwh: float, pv_kwh: float, chp_kw: float, *, hour: int, scheme: str,
                  lem_enabled: bool, price_eur_per_kwh: float | None = None, bought_kwh: float = 0.0,
                  sold_kwh: float = 0.0, b_eur_per_kwh: float = 0.20) -> PeriodSettlement:
    """Settle one participant for one hour (rules in the module docstring); ``hour`` of the day (``period % 24``)."""
    retail = retail_tariff_eur_per_kwh(hour, scheme)
    price = 0.0 if price_eur_per_kwh is None else float(price_eur_per_kwh)
    if kind == "chp":
        produced = sold_kwh if lem_enabled else base_case_chp_output_kw(chp_kw, b_eur_per_kwh)
        to_grid = 0.0 if lem_enabled else produced
        return PeriodSettlement(0.0, sold_kwh, 0.0, to_grid, produced,
                                float(chp_production_cost_eur(produced, b_eur_per_kwh)),
                                price * sold_kwh + FEED_IN_EUR_PER_KWH * to_grid)
    net = load_kwh - pv_kwh
    need, surplus = max(net, 0.0), max(-net, 0.0)
    grid_import = max(need - bought_kwh, 0.0)
    grid_export = max(surplus - sold_kwh, 0.0)
    return PeriodSettlement(bought_kwh, sold_kwh, grid_import, grid_export, 0.0,
                            price * bought_kwh + retail * grid_import,
                            price * sold_kwh + FEED_IN_EUR_PER_KWH * grid_export)


def _python_max(a, b):
    """``max(a, b)`` of Python element by element: ``a`` unless ``b`` is greater. (``np.maximum`` returns +0.0
    for (-0.0, 0.0) where Python returns -0.0: a results file would then differ in a sign of zero.)"""
    return np.where(b > a, b, a)


def settle_members(kinds, load_kwh, pv_kwh, chp_kw, *, hour: int, scheme: str, lem_enabled: bool,
                   price_eur_per_kwh: float | None, bought_kwh, sold_kwh,
                   b_eur_per_kwh: float = 0.20) -> dict[str, np.ndarray]:
    """:func:`settle_period` for many participants of one hour at once: one array per field of
    :class:`PeriodSettlement`, the participants' numbers to the last bit (the same operations on each, in numpy).

    Parameters
    ----------
    kinds, load_kwh, pv_kwh, chp_kw, bought_kwh, sold_kwh : array_like
        One value per participant (``kinds`` of ``consumer``, ``prosumer``, ``chp``; as in :func:`settle_period`,
        any kind but ``chp`` settles as a household).
    """
    kinds = np.asarray(kinds)
    load, pv = np.asarray(load_kwh, dtype=float), np.asarray(pv_kwh, dtype=float)
    bought, sold = np.asarray(bought_kwh, dtype=float), np.asarray(sold_kwh, dtype=float)
    retail = retail_tariff_eur_per_kwh(hour, scheme)
    price = 0.0 if price_eur_per_kwh is None else float(price_eur_per_kwh)
    net = load - pv
    need, surplus = _python_max(net, 0.0), _python_max(-net, 0.0)
    out = {"lem_bought_kwh": bought.copy(), "lem_sold_kwh": sold.copy(),
           "grid_import_kwh": _python_max(need - bought, 0.0), "grid_export_kwh": _python_max(surplus - sold, 0.0),
           "chp_kwh": np.zeros(len(kinds))}
    out["cost_eur"] = price * bought + retail * out["grid_import_kwh"]
    out["income_eur"] = price * sold + FEED_IN_EUR_PER_KWH * out["grid_export_kwh"]
    for j in np.flatnonzero(kinds == "chp"):  # few, and their cost is a function of its own
        st = settle_period("chp", load[j], pv[j], chp_kw[j], hour=hour, scheme=scheme, lem_enabled=lem_enabled,
                           price_eur_per_kwh=price_eur_per_kwh, bought_kwh=bought[j], sold_kwh=sold[j],
                           b_eur_per_kwh=b_eur_per_kwh)
        for field, values in out.items():
            values[j] = getattr(st, field)
    return out
