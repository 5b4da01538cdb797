"""The community battery's LEC on a feeder from any source (a scenario's ``grid.source``). No HELICS here.

The built-in grid (:class:`lec_cosim.models.grid.LECGrid`) puts the whole community on one LV busbar. On a
feeder (:class:`~lec_cosim.models.feeder_model.Feeder`, read by
:func:`~lec_cosim.models.feeder_source.load_feeder`) the same community is spread over the feeder's buses:

* **Households.** The ``households.count`` households are placed on the feeder's connection points (its loads):
  each point takes ``count // P`` of them (``P`` points), and the ``count mod P`` left over go one each to points
  spread over the phases and along the feeder (:func:`~lec_cosim.models.feeder_households.spread`, the rule the
  local market places its PV and CHPs by). With ``count == P`` it is one household per point, as the feeder's
  own loads are; a smaller community leaves points empty, spread along the feeder, not bunched at its head.
  Households take the load profiles in turn (household ``i`` plays profile ``i mod L``, as
  :class:`~lec_cosim.models.household.HouseholdFleet` does) and the points in the feeder's order, so the
  points' loads add up to the fleet's aggregate. PV is ``kwp_per_household`` at each household's point, Q at
  the households' power factor. The feeder's own loads are replaced and its own generators (``sgen``) left
  out: the community's households and PV are the study's.
* **The battery** is a storage at ``grid.battery_bus`` (a bus name), by default at the **head**: the LV side of
  the transformer at the external grid's bus (the external grid's bus in a net without one there).
* **The PCC** is the external grid's connection: its power is the flow out of that bus into the feeder (into
  the LEC: positive), its voltage that bus's. ``lv_vm_pu`` is the head's voltage, ``trafo_loading_percent`` the
  highest loading of the net's transformers (0 without any), ``max_line_loading_percent`` the highest of its
  lines; ``vm_min_pu``/``vm_max_pu`` the extremes over every bus, the violations counted over every bus, line and
  transformer.

The flow is balanced, solved by pandapower's ``runpp``, power-grid-model or OpenDSS (``grid.solver``): a feeder
with single-phase connections (``asymmetric_load``/``asymmetric_sgen``) is refused, as is a line without a
rating. Each refusal is a :class:`FeederSettingError` naming the scenario field to change.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd

from lec_cosim.models.feeder_model import Feeder, FeederSourceError, element_name
from lec_cosim.models.grid import _RUNPP_OPTIONS, GridResult, PowerFlowError
from lec_cosim.models.pgm_backend import PowerFlowNotConverged, PowerGridError, pandapower_results

_SQRT3 = math.sqrt(3.0)


class FeederSettingError(FeederSourceError):
    """A feeder or a setting the community battery cannot take on it; ``field`` names the scenario's field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FeederCommunity:
    """The community battery's LEC on a feeder: where its households and its battery are.

    Attributes
    ----------
    feeder : Feeder
    households : pandas.Series
        Households per connection point (index: the feeder's connection names, in its order; int).
    head_bus, battery_bus : int
        pandapower indices of the head (LV side of the transformer at the external grid) and of the battery's bus.
    """

    feeder: Feeder
    households: pd.Series
    head_bus: int
    battery_bus: int

    @property
    def points(self) -> pd.DataFrame:
        """The connection points (``bus``, ``phases``, ``table``, ``row``) in the order of :attr:`households`."""
        return self.feeder.connections.loc[self.households.index]

    def describe(self) -> str:
        net, occupied = self.feeder.net, int((self.households > 0).sum())
        return (f"{int(self.households.sum())} households on {occupied} of the {len(self.households)} connection "
                f"points of {self.feeder.name}; battery at {element_name(net, 'bus', self.battery_bus)}")


def households_on_points(feeder: Feeder, count: int) -> pd.Series:
    """How many of ``count`` households each connection point of ``feeder`` takes (see the module docstring)."""
    from lec_cosim.models.feeder_households import place_households, spread

    points = place_households(feeder)  # one per point, named as the point, with its bus and phases
    per_point = pd.Series(count // len(points), index=points.index, name="households", dtype=int)
    extra = spread(feeder, points, count % len(points))
    per_point.loc[extra] += 1
    return per_point


def head_bus(feeder: Feeder) -> int:
    """The feeder's head: the LV bus of the transformer at the external grid's bus, or that bus itself when no
    transformer is there. Several transformers there are refused: the head would be ambiguous."""
    net = feeder.net
    source = int(net.ext_grid["bus"].iloc[0])
    at_source = net.trafo[(net.trafo["hv_bus"] == source) | (net.trafo["lv_bus"] == source)]
    if len(at_source) > 1:
        raise FeederSettingError("grid.source", f"{feeder.source}: {len(at_source)} transformers at the external "
                                 "grid's bus: the community's LV busbar (its battery's default bus) is ambiguous")
    if not len(at_source):
        return source
    row = at_source.iloc[0]
    return int(row["lv_bus"] if int(row["hv_bus"]) == source else row["hv_bus"])


def find_bus(feeder: Feeder, name: str) -> int:
    """The bus ``name`` names: a bus's name in the net, or ``bus <index>``."""
    net = feeder.net
    named = net.bus.index[net.bus["name"].astype(str) == name]
    if len(named) > 1:
        raise FeederSettingError("grid.battery_bus", f"{name!r}: {len(named)} buses of {feeder.source} have this "
                                 f"name; give one as 'bus <index>' (indices {', '.join(map(str, named[:4]))})")
    if len(named) == 1:
        return int(named[0])
    by_index = re.fullmatch(r"bus\s+(\d+)", name.strip())
    if by_index and int(by_index.group(1)) in net.bus.index:
        return int(by_index.group(1))
    examples = ", ".join(repr(str(n)) for n in net.bus["name"].dropna().astype(str)[:4])
    raise FeederSettingError("grid.battery_bus", f"{name!r} is not a bus of {feeder.source} (its buses are named "
                             f"{examples}, ...; or give 'bus <index>'; buses nothing supplies are left out)")


def feeder_community(feeder: Feeder, count: int, battery_bus: str | None = None) -> FeederCommunity:
    """The community of ``count`` households on ``feeder`` with its battery at ``battery_bus`` (default: the head).

    Raises
    ------
    FeederSettingError
        A feeder the balanced flow cannot take (single-phase connections, a line without a rating, several
        transformers at the source) or a battery bus it does not have.
    """
    net = feeder.net
    if not feeder.balanced:
        table = "asymmetric_load" if len(net.asymmetric_load) else "asymmetric_sgen"
        raise FeederSettingError("grid.source", f"{feeder.source}: {element_name(net, table, net[table].index[0])}: "
                                 "single-phase connections; the community battery's grid flow is balanced (take a "
                                 "feeder with three-phase loads)")
    unrated = net.line.index[~(net.line["max_i_ka"].astype(float) > 0)]
    if len(unrated):
        raise FeederSettingError("grid.source", f"{feeder.source}: {element_name(net, 'line', unrated[0])}: no "
                                 "rating (max_i_ka): its loading cannot be told")
    head = head_bus(feeder)
    bus = head if battery_bus is None else find_bus(feeder, battery_bus)
    return FeederCommunity(feeder=feeder, households=households_on_points(feeder, count), head_bus=head,
                           battery_bus=bus)


def profile_counts(households: pd.Series, n_profiles: int) -> np.ndarray:
    """(points, profiles): how many households of each load profile each point holds, households ``0 .. count-1``
    playing profile ``i mod n_profiles`` and taking the points in turn (consecutive households at one point)."""
    counts = np.zeros((len(households), n_profiles), dtype=int)
    first = 0
    for j, n in enumerate(households.to_numpy(dtype=int)):
        for i in range(first, first + n):
            counts[j, i % n_profiles] += 1
        first += n
    return counts


def point_powers(scenario, community: FeederCommunity, step_s: float, n_steps: int,
                 fleet=None) -> dict[str, np.ndarray]:
    """Each connection point's mean load, reactive load and PV over each of ``n_steps`` steps from the scenario's
    start: ``{"load_p_mw", "load_q_mvar", "pv_p_mw"}``, arrays (n_steps, points) in MW and MVAR.

    They add up over the points to :meth:`HouseholdFleet.power`'s aggregates (to rounding): the loads as the
    profiles' step means weighted by the households per point and profile, the PV as the aggregate's share of
    the point's households. ``fleet``: the scenario's :class:`HouseholdFleet`, if made already.

    Raises
    ------
    DataError
        A profile that does not cover the horizon (one line naming the file).
    """
    from lec_cosim.models.household import HouseholdFleet
    from lec_cosim.models.timeseries import DataError, step_means

    hh = scenario.households
    fleet = fleet or HouseholdFleet.from_scenario(scenario)
    aggregate = fleet.power(scenario.start, step_s, n_steps)  # also names a file whose data end too early
    units = fleet.profile_loads()
    try:
        per_profile = np.stack([step_means(units[c], scenario.start, step_s, n_steps) for c in units.columns])
    except DataError as exc:
        raise DataError(f"{hh.load_profile_file}: {exc}") from None
    load = (profile_counts(community.households, len(units.columns)) @ per_profile).T
    share = community.households.to_numpy(dtype=float) / float(hh.count)
    return {"load_p_mw": load, "load_q_mvar": load * math.tan(math.acos(fleet.power_factor)),
            "pv_p_mw": aggregate["pv_p_mw"].to_numpy()[:, None] * share[None, :]}


@dataclass(frozen=True)
class FeederGridResult(GridResult):
    """One step on the feeder: a :class:`lec_cosim.models.grid.GridResult` whose ``line_loading_percent`` is the
    highest loading of the net's lines (the built-in grid's one line), published as ``max_line_loading_percent``
    (PCC flows into the LEC)."""

    @property
    def max_line_loading_percent(self) -> float:
        return self.line_loading_percent


class FeederLECGrid:
    """The community's feeder as a power flow: set the points' loads and PV and the battery, solve, read the PCC.

    Parameters
    ----------
    community : FeederCommunity
        Its feeder's net is changed in place (the households' loads, one PV ``sgen`` per point, the battery's
        ``storage``): read a feeder for each grid.
    grid_config
        The scenario's ``grid``: ``solver``, ``ext_grid_vm_pu`` (None: the net's own set point), ``vm_min_pu``,
        ``vm_max_pu``, ``max_loading_percent``.
    """

    def __init__(self, community: FeederCommunity, grid_config):
        self.community = community
        net = community.feeder.net
        points = community.points
        self.n_points = len(points)
        if len(net.sgen):
            net.sgen.drop(net.sgen.index, inplace=True)  # the feeder's own generation: the community's is the study's
        net.load["p_mw"] = 0.0
        net.load["q_mvar"] = 0.0
        if "scaling" in net.load.columns:
            net.load["scaling"] = 1.0
        self._load_rows = points["row"].to_numpy()
        self._pv_rows = np.array([pp.create_sgen(net, int(bus), p_mw=0.0, q_mvar=0.0, name=f"pv {name}", type="PV")
                                  for name, bus in points["bus"].items()])
        self._storage = pp.create_storage(net, community.battery_bus, p_mw=0.0, max_e_mwh=1.0,
                                          name="community_battery")
        if grid_config.ext_grid_vm_pu is not None:
            net.ext_grid["vm_pu"] = float(grid_config.ext_grid_vm_pu)
        self.net = net
        self.solver = grid_config.solver
        self.vm_limits_pu = (grid_config.vm_min_pu, grid_config.vm_max_pu)
        self.max_loading_percent = grid_config.max_loading_percent
        bus_index = net.bus.index
        self._source = int(net.ext_grid["bus"].iloc[0])
        self._source_pos = bus_index.get_loc(self._source)
        self._head_pos = bus_index.get_loc(community.head_bus)
        line, tr = net.line, net.trafo
        self._line_from = line["from_bus"].to_numpy() == self._source
        self._line_to = line["to_bus"].to_numpy() == self._source
        self._trafo_hv = tr["hv_bus"].to_numpy() == self._source
        self._trafo_lv = tr["lv_bus"].to_numpy() == self._source
        self._line_rating_ka = (line["max_i_ka"] * line["df"] * line["parallel"]).to_numpy(dtype=float)
        self._trafo_rating = tuple(tr[c].to_numpy(dtype=float) for c in ("sn_mva", "vn_hv_kv", "vn_lv_kv")) + (
            (tr["parallel"] * tr["df"]).to_numpy(dtype=float),)
        self._at_source = {table: net[table]["bus"].to_numpy() == self._source for table in ("load", "sgen", "storage")}
        self._flow = None
        if self.solver == "power-grid-model":
            from lec_cosim.models.pgm_backend import PgmPowerFlow

            self._flow = PgmPowerFlow(net, symmetric=True)
        elif self.solver == "opendss":
            from lec_cosim.models.opendss_backend import OpenDssPowerFlow

            self._flow = OpenDssPowerFlow(net, symmetric=True)
        self.solve(np.zeros(self.n_points), np.zeros(self.n_points), np.zeros(self.n_points), 0.0)

    def solve(self, load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw: float) -> FeederGridResult:
        """Power flow of one step: the points' loads and PV (arrays in the order of the community's points) and the
        battery (load convention: positive charges).

        Raises
        ------
        lec_cosim.models.grid.PowerFlowError
            The flow did not converge.
        """
        net = self.net
        load_p, load_q, pv_p = (np.asarray(v, dtype=float) for v in (load_p_mw, load_q_mvar, pv_p_mw))
        if not len(load_p) == len(load_q) == len(pv_p) == self.n_points:
            raise ValueError(f"expected {self.n_points} values per point, got {len(load_p)}, {len(load_q)}, "
                             f"{len(pv_p)}")
        net.load.loc[self._load_rows, "p_mw"] = load_p
        net.load.loc[self._load_rows, "q_mvar"] = load_q
        net.sgen.loc[self._pv_rows, "p_mw"] = pv_p
        net.storage.at[self._storage, "p_mw"] = float(battery_p_mw)
        try:
            if self._flow is None:
                pp.runpp(net, **_RUNPP_OPTIONS)
                flow = pandapower_results(net, symmetric=True)
            else:
                flow = self._flow.solve()
        except (pp.powerflow.LoadflowNotConverged, PowerGridError, PowerFlowNotConverged) as exc:
            raise PowerFlowError(f"power flow did not converge on the feeder ({self.solver}; load "
                                 f"{load_p.sum():.4f} MW, PV {pv_p.sum():.4f} MW, battery {battery_p_mw:.4f} MW): "
                                 f"{' '.join(str(exc).split())}") from None
        return self._result(flow)

    def _result(self, flow) -> FeederGridResult:
        net = self.net
        vm = flow.vm_pu[:, 0]

        def injected(table: str, column: str) -> float:  # load convention; the PV's sgens generate
            values = net[table][column].to_numpy(dtype=float)[self._at_source[table]]
            return float(values.sum()) * (-1.0 if table == "sgen" else 1.0)

        pcc = []
        for line_from, line_to, hv, lv, column in (
                (flow.line_p_from_mw, flow.line_p_to_mw, flow.trafo_p_hv_mw, flow.trafo_p_lv_mw, "p_mw"),
                (flow.line_q_from_mvar, flow.line_q_to_mvar, flow.trafo_q_hv_mvar, flow.trafo_q_lv_mvar, "q_mvar")):
            out = (line_from[self._line_from, 0].sum() + line_to[self._line_to, 0].sum()
                   + hv[self._trafo_hv, 0].sum() + lv[self._trafo_lv, 0].sum())
            pcc.append(float(out) + sum(injected(t, column) for t in ("load", "sgen", "storage")))
        line_loading = 100.0 * flow.line_i_ka[:, 0] / self._line_rating_ka
        sn, vn_hv, vn_lv, derating = self._trafo_rating
        # pandapower's loading: the larger side current over that side's rated current
        trafo_loading = 100.0 * np.maximum(flow.trafo_i_hv_ka[:, 0] * vn_hv, flow.trafo_i_lv_ka[:, 0] * vn_lv) \
            * _SQRT3 / sn / derating
        low, high = self.vm_limits_pu
        return FeederGridResult(
            pcc_p_mw=pcc[0], pcc_q_mvar=pcc[1], pcc_vm_pu=float(vm[self._source_pos]),
            lv_vm_pu=float(vm[self._head_pos]),
            trafo_loading_percent=float(trafo_loading.max()) if len(trafo_loading) else 0.0,
            line_loading_percent=float(line_loading.max()) if len(line_loading) else 0.0,
            losses_mw=float(flow.line_pl_mw.sum() + flow.trafo_pl_mw.sum()),
            losses_mvar=float(flow.line_ql_mvar.sum() + flow.trafo_ql_mvar.sum()),
            vm_min_pu=float(vm.min()), vm_max_pu=float(vm.max()),
            bus_violations=int(np.count_nonzero((vm < low) | (vm > high))),
            line_overloads=int(np.count_nonzero(line_loading > self.max_loading_percent)
                               + np.count_nonzero(trafo_loading > self.max_loading_percent)),
        )


def community_of(scenario) -> FeederCommunity:
    """The community of a scenario with ``grid.source``: its feeder read afresh (each grid changes its net).

    Raises
    ------
    FeederSourceError
        The source cannot be read (:func:`~lec_cosim.models.feeder_source.load_feeder`).
    FeederSettingError
        The community cannot be placed on it.
    """
    from lec_cosim.models.feeder_source import load_feeder

    return feeder_community(load_feeder(scenario.grid.source), scenario.households.count, scenario.grid.battery_bus)
