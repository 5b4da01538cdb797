"""What a LEC_EMS of the three-LEC scenario plans with: tariffs, its batteries, its exchange problem.

Plain Python shared by the federates of the three frameworks (and by tests that solve the same
problems in one process). A LEC_EMS plans ahead at every market period (a rolling horizon): from
the present hour over ``ems.lookahead_h`` hours (24 by default; cut at the run's end, so a one-day
run plans the rest of its day), from the batteries' present energy, ending where the run started,
within the DSO's latest limits. It plans in hours, the market's
period: its set-points hold for the hour, and the grid, which runs in 15-minute steps, carries
the deviations within the hour. (Planned at 15 minutes, one day's local QP of the ADMM took about
120 ms instead of 4 ms, and a day's negotiation 34 s instead of about 1 s.)

Batteries. In the decentralised and distributed frameworks the LEC_EMS manages its members' home
batteries (by set-points to their HEMS) and its community battery as one pooled battery; every
battery of an LEC has the same energy-to-power ratio (two hours by default; the scenario checks it for
an LEC whose batteries ``lecs.each`` sizes), so a pooled set-point split in proportion to each
battery's power keeps all of them at the same state of charge. In the P2P
framework the HEMS manage their home batteries themselves and the LEC_EMS only its community battery.

Sign convention: a battery's power is positive when it charges (load convention, like net demand).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lec_cosim.models.bidding import retail_tariff_eur_per_kwh
from lec_cosim.models.exchange import ExchangeProblem
from lec_cosim.models.feeder_community import build_feeder_community
from lec_cosim.models.feeder_source import feeder_of
from lec_cosim.models.lem_participants import DEFAULT_PV_DAY
from lec_cosim.models.multi_lec import (
    MultiLecMembers,
    multi_lec_members,
    multi_lec_members_on_feeder,
)


def members_from_scenario(scenario, feeder=None) -> MultiLecMembers:
    """The LECs' members and profiles of a three-LEC scenario: on the IEEE feeder (:func:`multi_lec_members`)
    or on its ``feeder.source`` (:func:`multi_lec_members_on_feeder`; ``feeder``: that source already read)."""
    lecs = scenario.lecs
    # lecs.each: only what the scenario file sets, so an LEC it leaves out is built as before, to the bit
    each = {name: lec.model_dump(exclude_unset=True, exclude_none=True) for name, lec in lecs.each.items()}
    assets = dict(n_lecs=lecs.count, home_battery_kwh=lecs.home_battery_kwh, home_battery_kw=lecs.home_battery_kw,
                  community_battery_hours=lecs.community_battery_hours, battery_efficiency=lecs.battery_efficiency,
                  max_distance_m=lecs.neighbour_max_distance_m, each=each or None)
    feeder = feeder if feeder is not None else feeder_of(scenario)
    if feeder is not None:
        households = scenario.feeder.households
        community = build_feeder_community(
            feeder, scenario.start, scenario.pv.profile_file, grid_min=scenario.resolution.grid_min,
            horizon_h=scenario.horizon_h, mapping=households.mapping_file, load_profiles=households.load_file,
            load_peak_kw=scenario.feeder.load_peak_kw, power_factor=households.power_factor,
            pv_share=households.pv_share, pv_peak_kw=scenario.pv.peak_kw, pv_sizing_day=DEFAULT_PV_DAY, chp_count=0)
        return multi_lec_members_on_feeder(feeder, community, scenario.start, **assets)
    return multi_lec_members(scenario.start.date().isoformat(), scenario.resolution.grid_min,
                             data_dir=scenario.feeder.data_dir, pv_file=scenario.pv.profile_file,
                             horizon_h=scenario.horizon_h, load_peak_kw=scenario.feeder.load_peak_kw,
                             pv_peak_kw=scenario.pv.peak_kw, **assets)


def steps_per_hour(members: MultiLecMembers) -> int:
    return 60 // members.grid_min


def n_hours(members: MultiLecMembers) -> int:
    return members.n_steps // steps_per_hour(members)


def hourly_mean(members: MultiLecMembers, values) -> np.ndarray:
    """Mean of every hour of per-step rows: shape (..., T) -> (..., T / steps per hour)."""
    values = np.asarray(values, dtype=float)
    per_hour = steps_per_hour(members)
    return values.reshape(*values.shape[:-1], values.shape[-1] // per_hour, per_hour).mean(axis=-1)


def hourly_tariffs(members: MultiLecMembers, scheme: str, feed_in_eur_per_kwh: float) -> tuple[np.ndarray, np.ndarray]:
    """Import (retail) and export (feed-in) price of every hour of the horizon, EUR/kWh, each shape (H,)."""
    hours = np.arange(n_hours(members))
    retail = np.asarray(retail_tariff_eur_per_kwh(hours, scheme), dtype=float)
    return retail, np.full(len(hours), float(feed_in_eur_per_kwh))


def planning_window(members: MultiLecMembers, scenario, first_hour: int) -> slice:
    """The hours an EMS or HEMS plans at ``first_hour``: ``ems.lookahead_h`` hours ahead (a rolling horizon), cut at
    the run's end. With the default 24 h a one-day run plans the rest of its day, as it always did."""
    return slice(first_hour, min(first_hour + scenario.ems.lookahead_h, n_hours(members)))


def window_limits_kw(latest_kw, hourly_kw, window: slice) -> np.ndarray:
    """Each LEC's limits over a planning ``window``, shape (N, window length): the ``latest_kw`` (N,) for its first
    hour, the DSO's forecast ``hourly_kw`` (N, run's hours) for the later ones (the thermal limits per household
    change with the hour's load)."""
    latest = np.asarray(latest_kw, dtype=float)
    return np.column_stack([latest, np.asarray(hourly_kw, dtype=float)[:, window.start + 1:window.stop]])


@dataclass(frozen=True)
class PooledBatteries:
    """The batteries one LEC_EMS plans as one, per LEC (arrays of shape (N,)), and how to split them.

    Attributes
    ----------
    energy_kwh, power_kw : numpy.ndarray
        Pooled energy and power of each LEC.
    efficiency : numpy.ndarray
        Round trip (the same for all batteries of a LEC).
    share : numpy.ndarray, shape (n_members,)
        Each member's part of its LEC's pooled set-point (power / pooled power; 0 if not pooled).
    pooled : numpy.ndarray of bool, shape (n_members,)
        The members whose battery is in its LEC's pool.
    """

    energy_kwh: np.ndarray
    power_kw: np.ndarray
    efficiency: np.ndarray
    share: np.ndarray
    pooled: np.ndarray

    def split(self, members: MultiLecMembers, lec_charge_kw) -> np.ndarray:
        """Per-member set-points (n_members,) from one pooled set-point per LEC (N,), kW, charge positive."""
        lec_index = {name: i for i, name in enumerate(members.lec_names)}
        per_lec = np.asarray(lec_charge_kw, dtype=float)[[lec_index[name] for name in members.table["lec"]]]
        return per_lec * self.share

    def soc_kwh(self, members: MultiLecMembers, member_soc_kwh) -> np.ndarray:
        """Each LEC's pooled energy (N,) from every member's battery's energy (n_members,), kWh: what its LEC_EMS
        plans from (its pooled batteries' only)."""
        soc = np.where(self.pooled, np.asarray(member_soc_kwh, dtype=float), 0.0)
        lec = members.table["lec"].to_numpy()
        return np.array([soc[lec == name].sum() for name in members.lec_names])


def pooled_batteries(members: MultiLecMembers, *, home_batteries: bool) -> PooledBatteries:
    """Batteries each LEC_EMS plans: the community battery, plus the home batteries if ``home_batteries``."""
    table = members.table
    pooled = table["kind"].eq("community_battery") | (home_batteries & table["battery_kw"].gt(0))
    kw = np.where(pooled, table["battery_kw"].to_numpy(dtype=float), 0.0)
    kwh = np.where(pooled, table["battery_kwh"].to_numpy(dtype=float), 0.0)
    lec = table["lec"].to_numpy()
    names = members.lec_names
    power = np.array([kw[lec == n].sum() for n in names])
    energy = np.array([kwh[lec == n].sum() for n in names])
    efficiency = np.array([table.loc[(lec == n) & pooled, "battery_efficiency"].max() for n in names])
    lec_power = dict(zip(names, power))
    share = np.array([k / lec_power[n] if lec_power[n] > 0 else 0.0 for k, n in zip(kw, lec)])
    return PooledBatteries(energy, power, np.nan_to_num(efficiency, nan=1.0), share, pooled.to_numpy(dtype=bool))


def rest_of_day_problem(
    members: MultiLecMembers,
    scenario,
    *,
    first_hour: int,
    soc_kwh,
    batteries: PooledBatteries,
    net_demand_kw=None,
    curtailable_kw=None,
    import_limit_kw=None,
    export_limit_kw=None,
    with_edges: bool = True,
    only_lec: int | None = None,
) -> ExchangeProblem:
    """The exchange problem a LEC_EMS solves at ``first_hour``: the hours of its :func:`planning_window`.

    Parameters
    ----------
    members : MultiLecMembers
    scenario : MultiLecScenario
        Tariff, negotiation and DSO settings.
    first_hour : int
        Hour the plan starts at (its steps are hours).
    soc_kwh : array_like, shape (N,)
        Energy of each LEC's pooled battery now; the plan ends at the run's initial 50 % (at the window's end: what
        the next windows start from is then what the run started from, and no plan empties the batteries just
        because its window ends), or as near to it as the window's hours at full power can bring a battery measured
        far from its plan.
    batteries : PooledBatteries
    net_demand_kw : array_like, shape (N, window), optional
        Hourly mean. Default: members' load minus PV (no home battery). The P2P LEC_EMS passes its
        members' own plans; an LEC_EMS that plans on a forecast (:mod:`lec_cosim.models.forecast`) its forecast.
    curtailable_kw : array_like, shape (N, window), optional
        PV the plan may curtail, hourly mean. Default: the members' PV; a forecast's PV when planned on one.
    import_limit_kw, export_limit_kw : array_like, shape (N,) or (N, window), optional
        The DSO's latest limits, applied to every remaining hour (soft, at the scenario's penalty):
        a limit is the largest import (export) the DSO's linearised power flow allows, about the
        same whatever the hour, so it holds until the DSO updates it. Or one per remaining hour
        (thermal limits per household change with the hour's load: the DSO's forecast for the later hours).
    with_edges : bool
        Include the neighbour graph (the distributed framework); otherwise every LEC plans alone.
    only_lec : int, optional
        Fill only this LEC's data; the others' rows are zeros. What one agent knows: a federate
        builds its problem this way, so nothing of another LEC leaks into it.
    """
    n = len(members.lec_names)
    rest = planning_window(members, scenario, first_hour)
    t = rest.stop - rest.start
    if net_demand_kw is None:
        net_demand_kw = hourly_mean(members, members.net_demand_kw)[:, rest]
    net = np.array(net_demand_kw, dtype=float)
    if curtailable_kw is None:
        curtailable_kw = hourly_mean(members, members.lec_pv_kw)[:, rest]
    curtailable = np.array(curtailable_kw, dtype=float)
    retail, feed_in = hourly_tariffs(members, scenario.tariff.scheme, scenario.tariff.feed_in_eur_per_kwh)
    energy = batteries.energy_kwh
    soc = np.divide(np.asarray(soc_kwh, dtype=float), energy, out=np.full(n, 0.5), where=energy > 0)

    def per_hour(limit) -> np.ndarray:
        limit = np.full(n, math.inf) if limit is None else np.asarray(limit, dtype=float)
        return limit if limit.ndim == 2 else np.repeat(limit[:, None], t, axis=1)

    imports, exports = per_hour(import_limit_kw), per_hour(export_limit_kw)
    if only_lec is not None:
        keep = np.arange(n) == only_lec
        net[~keep] = 0.0
        curtailable[~keep] = 0.0
    index = {name: i for i, name in enumerate(members.lec_names)}
    edges = tuple((index[a], index[b]) for a, b in members.neighbours) if with_edges else ()
    neg = scenario.negotiation
    # The plan ends at the initial 50 %, or as near as the window's hours at full power reach from now: a battery
    # measured far from its plan (a clipped set-point, a forecast's error) could not be back in one hour.
    start = np.clip(soc, 0.0, 1.0)
    leg = np.sqrt(batteries.efficiency)
    with np.errstate(divide="ignore", invalid="ignore"):
        highest = np.where(energy > 0, start + leg * batteries.power_kw * t / energy, 1.0)
        lowest = np.where(energy > 0, start - batteries.power_kw * t / (leg * energy), 0.0)
    final = np.clip(0.5, lowest, highest)
    return ExchangeProblem(
        net_demand_kw=net, dt_h=1.0,
        import_price_eur_per_kwh=retail[rest], export_price_eur_per_kwh=feed_in[rest],
        edges=edges, edge_capacity_kw=neg.edge_capacity_kw, wheeling_eur_per_kwh2=neg.wheeling_eur_per_kwh2,
        battery_capacity_kwh=energy, battery_power_kw=batteries.power_kw, battery_efficiency=batteries.efficiency,
        soc_initial=start, soc_final=final,
        grid_import_limit_kw=imports, grid_export_limit_kw=exports,
        limit_penalty_eur_per_kwh=scenario.dso.limit_penalty_eur_per_kwh,
        curtailable_kw=curtailable, lec_names=tuple(members.lec_names),
    )


def curtailment_split(members: MultiLecMembers, step: int, lec_curtail_kw) -> np.ndarray:
    """Per-member PV curtailment (n_members,) at a grid step from each LEC's planned curtailment (hourly mean).

    Shared in proportion to the members' PV at the step, at most all of it.
    """
    pv = members.pv_kw[:, step]
    lec = members.table["lec"].to_numpy()
    out = np.zeros(len(pv))
    for i, name in enumerate(members.lec_names):
        mine = lec == name
        total = pv[mine].sum()
        if total > 0:
            out[mine] = pv[mine] / total * min(float(lec_curtail_kw[i]), total)
    return out


class HomeBatteries:
    """Every member's battery as the households federate runs it: follows set-points within its limits.

    Parameters
    ----------
    members : MultiLecMembers
    soc_fraction : float
        Initial state of charge of every battery (the plans start and end at 50 %).
    """

    def __init__(self, members: MultiLecMembers, soc_fraction: float = 0.5):
        table = members.table
        self.energy_kwh = table["battery_kwh"].to_numpy(dtype=float)
        self.power_kw = table["battery_kw"].to_numpy(dtype=float)
        self.leg = np.sqrt(np.where(self.energy_kwh > 0, table["battery_efficiency"].to_numpy(dtype=float), 1.0))
        self.soc_fraction = soc_fraction
        self.soc_kwh = soc_fraction * self.energy_kwh
        self.dt_h = members.dt_h

    def reset(self) -> None:
        """Every battery back at its initial state of charge (a learning environment's next episode)."""
        self.soc_kwh = self.soc_fraction * self.energy_kwh

    def hour_setpoint(self, j: int, charge_kw: float, hours: float = 1.0) -> float:
        """Member ``j``'s set-point (charge positive) clipped to what its battery can hold for ``hours`` from its
        state of charge now: within its power, and neither over full nor below empty at the end."""
        room_kw, stored_kw = self._limits_kw(hours)
        power = self.power_kw[j]
        return float(min(max(charge_kw, -power, -stored_kw[j]), power, room_kw[j]))

    def soc_after_kwh(self, j: int, charge_kw: float, hours: float = 1.0) -> float:
        """Member ``j``'s state of charge after ``hours`` at a set-point it can hold (:meth:`hour_setpoint`)."""
        return float(min(max(self.soc_kwh[j] + self._stored_kwh(charge_kw, hours)[j], 0.0), self.energy_kwh[j]))

    def _limits_kw(self, hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Per member, the most its battery can charge and discharge for ``hours`` from its state of charge now, kW."""
        return (self.energy_kwh - self.soc_kwh) / (self.leg * hours), self.soc_kwh * self.leg / hours

    def _stored_kwh(self, charge_kw, hours: float) -> np.ndarray:
        """Per member, the energy its battery gains (loses: negative) running ``charge_kw`` for ``hours``, kWh."""
        return np.where(charge_kw > 0, charge_kw * self.leg, charge_kw / self.leg) * hours

    def apply(self, charge_kw) -> np.ndarray:
        """Run one step at the set-points (charge positive), clipped to power and energy; returns what ran, kW."""
        wanted = np.clip(np.asarray(charge_kw, dtype=float), -self.power_kw, self.power_kw)
        room_kw, stored_kw = self._limits_kw(self.dt_h)
        done = np.where(wanted > 0, np.minimum(wanted, room_kw), np.maximum(wanted, -stored_kw))
        self.soc_kwh = self.soc_kwh + self._stored_kwh(done, self.dt_h)
        self.soc_kwh = np.clip(self.soc_kwh, 0.0, self.energy_kwh)
        return done
