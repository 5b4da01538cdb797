"""Three (or N) local energy communities on the IEEE European LV test feeder: the split, the neighbours, the assets.

The model layer of the multi-LEC scenario of issue 4: the 55 households of the feeder of
:mod:`lec_cosim.models.ieee_eulv` split into LECs along the feeder's branches, the LECs' neighbour
graph, the members' home PV and batteries, one community battery per LEC, and the per-step profiles
an LEC EMS plans with. No HELICS here. Everything is deterministic and derived from the shipped data.

The split into LECs and each LEC's part of the feeder are in :mod:`lec_cosim.models.lec_split`,
the neighbour graph in :mod:`lec_cosim.models.lec_neighbour_graph`; their public names are
importable from here too. This module places the members and their assets on that split.

Members and their assets (:func:`multi_lec_members`)
----------------------------------------------------
* **Households** ``LOAD1`` .. ``LOAD55`` keep their IEEE bus, phase and profile (``LOADk`` uses
  ``profile_k``).
* **Home PV** on the 42 prosumers of :mod:`lec_cosim.models.lem_participants`: the 13 consumers of
  :data:`~lec_cosim.models.lem_participants.CONSUMER_LOADS` have none. The shapes are the same
  (SimBench PV1..PV8, the k-th prosumer gets PV(k mod 8 + 1)), and so is the common kWp. It is
  sized so that the aggregate hourly PV peak on ``pv_sizing_day`` is ``pv_peak_kw``, by default
  194 kW on 2016-05-26, which gives **8.525 kWp per prosumer**. The sizing day is fixed, not the
  simulated day, so the installed capacity does not change with the date. Prosumers per LEC:
  15 / 10 / 17 (127.9 / 85.2 / 144.9 kWp).
* **Home batteries** on every second prosumer of each LEC along the feeder: the LEC's prosumers sorted
  by path length from bus 1 (ties by load number) at positions 1, 3, 5, ... (0-based). That is
  7 / 5 / 8, **20 batteries** (about half of the 42 PV homes), spread along each branch:
  lec1 LOAD3, 6, 8, 10, 14, 17, 21; lec2 LOAD22, 31, 33, 34, 36; lec3 LOAD28, 39, 41, 44, 49,
  50, 51, 55. Each has **10 kWh and 5 kW** (0.5 C). On the default day, with loads scaled to 140 kW,
  the median prosumer has 25 kWh of surplus and 17 kWh of deficit. So a 10 kWh battery fills on a
  sunny day and covers more than half of the day's deficit: neither oversized nor token-sized.
  (5 kWh / 2.5 kW would suit the unscaled IEEE loads, a third of these, not 8.5 kWp of PV.)
* **Community battery**, one per LEC (member ``lecK_battery``, balanced three-phase ``abc``). It
  stores ``community_battery_hours`` (2 h) of the LEC's mean household load over the day, rounded
  to whole kWh. Its power is that energy over 2 h, i.e. the mean load. The mean load is taken of the
  (scaled) IEEE day, so it does not depend on the PV day. With the default scaling:
  **lec1 52 kWh / 26 kW, lec2 36 kWh / 18 kW, lec3 57 kWh / 28.5 kW**. It sits at the junction of
  the LEC's part with the least total path length to the LEC's households (its load centre, the
  1-median of the tree; ties: lower bus): buses **101**, **475** and **686**, all on 4-core mains and
  in the reduced numbering of :mod:`~lec_cosim.models.lem_participants`.
* Round-trip efficiency 0.95 for all batteries (as the project's Trondelag scenarios).

LECs that differ (``each``)
---------------------------
By default every LEC has the same kind of members. ``each`` maps an LEC's name to what sets it apart
(:data:`LEC_COMPOSITION_FIELDS`; a field left out takes the common value): ``pv_scale`` multiplies its
prosumers' kWp and PV (0: no PV; which households are prosumers does not change), ``load_scale`` its
households' load, kW and kvar (its community battery is sized on the scaled mean load),
``home_battery_kwh`` / ``home_battery_kw`` size its home batteries (0: none; they stay on the same
households, every second prosumer as placed from the unscaled PV) and ``community_battery_hours`` its
community battery (0: none). Nothing of another LEC changes.

Profiles
--------
These are as :func:`lec_cosim.models.lem_community.build_community` builds them for the LEM. Loads:
the IEEE 1-minute profile averaged to the step, times a common factor that brings the 55
households' aggregate *hourly* peak to ``load_peak_kw`` (default 140 kW, the LEM scenarios' value:
factor 3.595; None keeps the IEEE profiles). Reactive load from PF 0.95 lagging. PV: the 15-min
SimBench shape, piecewise constant within shorter steps, times kWp, at unity power factor. The step
runs from midnight of ``day``. Per-LEC aggregates are plain sums of the members. ``net_demand_kw``
(load minus PV, before any battery) is what :class:`lec_cosim.models.exchange.ExchangeProblem`
takes.

The day's energies per LEC with the defaults (2016-05-26, 140 kW load peak), in kWh:

======  =======  =====  =====================================  ============================
LEC     load     PV     net (load - PV)                        15-min net demand max / min
======  =======  =====  =====================================  ============================
lec1    622.7    521.8  100.9                                  +49.8 / -54.3 kW
lec2    437.9    344.7   93.2                                  +42.7 / -38.1 kW
lec3    679.3    588.5   90.8                                  +65.2 / -65.5 kW
======  =======  =====  =====================================  ============================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, read_load_profiles_kw
from lec_cosim.models.lec_neighbour_graph import (  # noqa: F401
    NEIGHBOUR_MAX_DISTANCE_M,
    lec_distances,
    lec_neighbours,
)
from lec_cosim.models.lec_split import (  # noqa: F401
    LEC_ROOT_BUSES,
    MAIN_JUNCTION_BUS,
    N_LECS,
    _load_number,
    _path,
    _path_length_m,
    _Tree,
    _tree,
    lec_names,
    lec_parts,
    split_into_lecs,
)
from lec_cosim.models.lem_participants import (
    DEFAULT_PV_DAY,
    PAPER_PV_PEAK_KW,
    PV_PROFILE_FILE,
    _feeder,
    consumer_loads,
    prosumer_pv_profile,
    pv_kwp_per_prosumer,
    pv_profiles,
    reduced_bus_of,
)

LOAD_PEAK_KW = 140.0
"""Default aggregate hourly load peak of the 55 households, kW (as the LEM scenarios: factor 3.60)."""
HOME_BATTERY_KWH = 10.0
"""Usable energy of a home battery, kWh."""
HOME_BATTERY_KW = 5.0
"""Power rating of a home battery (both directions), kW."""
COMMUNITY_BATTERY_HOURS = 2.0
"""A community battery stores this many hours of its LEC's mean load; its power is that mean load."""
BATTERY_EFFICIENCY = 0.95
"""Round-trip efficiency of every battery (as the project's Trondelag scenarios)."""
LEC_COMPOSITION_FIELDS = ("pv_scale", "load_scale", "home_battery_kwh", "home_battery_kw", "community_battery_hours")
"""What ``each`` may set for one LEC (module docstring, "LECs that differ")."""


# ---------------------------------------------------------------------------------------------
# Members and their assets
# ---------------------------------------------------------------------------------------------
def _home_battery_loads(tree: _Tree, split: pd.DataFrame, prosumers: set) -> set:
    """Every second prosumer of each LEC along the feeder (positions 1, 3, ... by path length)."""
    chosen = set()
    for _, group in split[split["load"].isin(prosumers)].groupby("lec"):
        ordered = group.assign(k=group["load"].map(tree.load_rank)).sort_values(["path_length_m", "k"])
        chosen.update(ordered["load"].iloc[1::2])
    return chosen


def _community_battery_bus(tree: _Tree, part: frozenset, buses: list[int]) -> int:
    """Junction of the LEC's part with the least total path length to its households (ties: lower bus)."""
    candidates = [b for b in part if sum(1 for c in tree.children[b] if c in part) >= 2] or list(part)
    best, best_key = None, None
    for cand in sorted(candidates, key=tree.rank.__getitem__):
        total = sum(_path_length_m(tree, _path(tree, cand, b)) for b in buses)
        key = (round(total, 9), tree.rank[cand])
        if best_key is None or key < best_key:
            best, best_key = cand, key
    return best


def _load_day_kw(data_dir: Path | str) -> pd.DataFrame:
    """1-minute load of the 55 households, kW (IEEE base kW applied), minutes 1..1440, columns LOADk."""
    _, loads = _feeder(str(data_dir))
    profiles = read_load_profiles_kw(data_dir).loc[1:1440]
    shape = loads["Yearly"].str.extract(r"^Shape_(\d+)$", expand=False).astype(int)
    values = profiles[[f"profile_{k}" for k in shape]].to_numpy(dtype=float) * loads["kW"].to_numpy(dtype=float)
    return pd.DataFrame(values, index=profiles.index, columns=list(loads["Name"]))


def load_scale_for_peak(load_peak_kw: float | None, data_dir: Path | str = DEFAULT_DATA_DIR) -> float:
    """Factor on the IEEE profiles that makes the 55 households' aggregate hourly peak ``load_peak_kw`` (1 if None)."""
    if load_peak_kw is None:
        return 1.0
    total = _load_day_kw(data_dir).sum(axis=1).to_numpy()
    return float(load_peak_kw) / float(total.reshape(24, 60).mean(axis=1).max())


def _lec_compositions(names: list[str], each: dict | None, *, home_battery_kwh: float, home_battery_kw: float,
                      community_battery_hours: float) -> dict[str, dict]:
    """Every LEC's ``pv_scale, load_scale, home_battery_kwh, home_battery_kw, community_battery_hours``: the
    common values, replaced by those ``each`` gives for an LEC."""
    each = each or {}
    unknown = sorted(set(each) - set(names))
    if unknown:
        raise ValueError(f"each: unknown LEC {unknown[0]!r}; the LECs are {', '.join(names)}")
    common = {"pv_scale": 1.0, "load_scale": 1.0, "home_battery_kwh": float(home_battery_kwh),
              "home_battery_kw": float(home_battery_kw), "community_battery_hours": float(community_battery_hours)}
    out = {}
    for name in names:
        given = each.get(name, {})
        wrong = sorted(set(given) - set(LEC_COMPOSITION_FIELDS))
        if wrong:
            raise ValueError(f"each.{name}: unknown field {wrong[0]!r}; the fields are "
                             f"{', '.join(LEC_COMPOSITION_FIELDS)}")
        mine = {**common, **{key: float(value) for key, value in given.items() if value is not None}}
        negative = [key for key, value in mine.items() if value < 0]
        if negative:
            raise ValueError(f"each.{name}.{negative[0]}: must not be negative")
        out[name] = mine
    return out


def _scale_homes(split: pd.DataFrame, homes: dict, each: dict | None) -> None:
    """Scale, in place, the PV and load of the households of every LEC ``each`` names (module docstring)."""
    for row in split.itertuples(index=False):
        if row.lec not in (each or {}):
            continue  # left exactly as built: the default scenario's numbers to the bit
        home, given = homes[row.load], each[row.lec]
        pv_scale = given.get("pv_scale")
        if pv_scale is not None:
            home["pv_kwp"] = home["pv_kwp"] * pv_scale if pv_scale > 0 else 0.0
            home["pv_kw"] = home["pv_kw"] * pv_scale if pv_scale > 0 else np.zeros_like(home["pv_kw"])
            if home["pv_kwp"] == 0:
                home["pv_profile"] = ""
        load_scale = given.get("load_scale")
        if load_scale is not None:
            for key in ("load_kw", "load_kvar", "mean_kw"):
                home[key] = home[key] * load_scale


@dataclass(frozen=True, eq=False)
class MultiLecMembers:
    """The members of the LECs, their assets and their profiles over the horizon (a day to a year).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per member: the 55 households ``LOAD1`` .. ``LOAD55`` (IEEE order), then one community
        battery per LEC (``lec1_battery`` ...). Columns ``member, lec, kind`` (``household`` or
        ``community_battery``), ``bus`` (IEEE bus), ``reduced_bus`` (numbering of
        :mod:`lec_cosim.models.lem_participants`), ``phase`` (``a``/``b``/``c``; ``abc`` for community
        batteries, balanced three-phase), ``pv_kwp``, ``pv_profile`` (``PV1``..``PV8`` or empty),
        ``load_profile`` (``profile_k`` or empty), ``battery_kwh``, ``battery_kw``,
        ``battery_efficiency`` (round trip; 0 where there is no battery).
    lecs : pandas.DataFrame
        One row per LEC (see :meth:`lec_table`).
    neighbours : list of (str, str)
        The LEC neighbour graph (:func:`lec_neighbours`).
    grid_min : int
        Step length, minutes.
    start : pandas.Timestamp
        Start of the day (midnight).
    load_kw, load_kvar, pv_kw : numpy.ndarray, shape (n_members, n_steps)
        Mean power of every step (0 for community batteries). Load positive, PV positive (generation).
    load_scale : float
        Factor applied to the IEEE load profiles.
    """

    table: pd.DataFrame
    lecs: pd.DataFrame
    neighbours: list
    grid_min: int
    start: pd.Timestamp
    load_kw: np.ndarray
    load_kvar: np.ndarray
    pv_kw: np.ndarray
    load_scale: float

    @property
    def lec_names(self) -> list[str]:
        return list(self.lecs["lec"])

    @property
    def n_steps(self) -> int:
        return self.load_kw.shape[1]

    @property
    def dt_h(self) -> float:
        return self.grid_min / 60.0

    @property
    def step_start(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.n_steps, freq=f"{self.grid_min}min")

    def lec_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum per-member rows (n_members, n_steps) over each LEC's members -> (n_lecs, n_steps)."""
        values = np.asarray(values, dtype=float)
        lec = self.table["lec"].to_numpy()
        return np.vstack([values[lec == name].sum(axis=0) for name in self.lec_names])

    @property
    def lec_load_kw(self) -> np.ndarray:
        return self.lec_sum(self.load_kw)

    @property
    def lec_load_kvar(self) -> np.ndarray:
        return self.lec_sum(self.load_kvar)

    @property
    def lec_pv_kw(self) -> np.ndarray:
        return self.lec_sum(self.pv_kw)

    @property
    def net_demand_kw(self) -> np.ndarray:
        """Members' load minus PV per LEC and step, kW, shape (n_lecs, n_steps); negative: surplus.

        Before any battery: home and community batteries are the EMS's decisions.
        """
        return self.lec_load_kw - self.lec_pv_kw

    def _lec_battery(self, kind: str, column: str) -> np.ndarray:
        t = self.table[self.table["kind"] == kind]
        return np.array([t.loc[t["lec"] == name, column].sum() for name in self.lec_names], dtype=float)

    @property
    def community_battery_kwh(self) -> np.ndarray:
        return self._lec_battery("community_battery", "battery_kwh")

    @property
    def community_battery_kw(self) -> np.ndarray:
        return self._lec_battery("community_battery", "battery_kw")

    @property
    def home_battery_kwh(self) -> np.ndarray:
        """Sum of the home batteries' energy per LEC, kWh."""
        return self._lec_battery("household", "battery_kwh")

    @property
    def home_battery_kw(self) -> np.ndarray:
        return self._lec_battery("household", "battery_kw")

    def lec_aggregates(self) -> pd.DataFrame:
        """Per-LEC profiles as a long table: ``lec, step, start, load_kw, load_kvar, pv_kw, net_kw``."""
        frames = []
        for i, name in enumerate(self.lec_names):
            frames.append(pd.DataFrame({
                "lec": name, "step": np.arange(self.n_steps), "start": self.step_start,
                "load_kw": self.lec_load_kw[i], "load_kvar": self.lec_load_kvar[i], "pv_kw": self.lec_pv_kw[i],
                "net_kw": self.net_demand_kw[i]}))
        return pd.concat(frames, ignore_index=True)

    def lec_table(self) -> pd.DataFrame:
        """Summary per LEC, with the day's energies of this object's horizon.

        Columns ``lec, root_bus, households, prosumers, home_batteries, phase_a, phase_b, phase_c, pv_kwp,
        home_battery_kwh, home_battery_kw, community_battery_bus, community_battery_kwh,
        community_battery_kw, load_kwh, pv_kwh, net_kwh``.
        """
        table = self.lecs.copy()
        table["load_kwh"] = self.lec_load_kw.sum(axis=1) * self.dt_h
        table["pv_kwh"] = self.lec_pv_kw.sum(axis=1) * self.dt_h
        table["net_kwh"] = table["load_kwh"] - table["pv_kwh"]
        return table


def multi_lec_members(
    day: str = DEFAULT_PV_DAY,
    grid_min: int = 15,
    *,
    load_peak_kw: float | None = LOAD_PEAK_KW,
    pv_peak_kw: float = PAPER_PV_PEAK_KW,
    pv_sizing_day: str = DEFAULT_PV_DAY,
    n_lecs: int = N_LECS,
    horizon_h: float = 24.0,
    home_battery_kwh: float = HOME_BATTERY_KWH,
    home_battery_kw: float = HOME_BATTERY_KW,
    community_battery_hours: float = COMMUNITY_BATTERY_HOURS,
    battery_efficiency: float = BATTERY_EFFICIENCY,
    max_distance_m: float = NEIGHBOUR_MAX_DISTANCE_M,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    pv_file: Path | str = PV_PROFILE_FILE,
    each: dict[str, dict] | None = None,
) -> MultiLecMembers:
    """The members of the LECs with their assets and per-step profiles (rules in the module docstring).

    Parameters
    ----------
    day : str
        Date of the PV day (2016), e.g. ``"2016-05-26"``; the IEEE loads are one typical day whatever the date.
    grid_min : int
        Step length, minutes; divides 60.
    load_peak_kw : float or None
        Aggregate hourly load peak of the 55 households after scaling, kW (None: IEEE profiles as they are).
    pv_peak_kw : float
        Aggregate hourly PV peak on ``pv_sizing_day`` that sizes the common kWp of the prosumers.
    pv_sizing_day : str
        Day of the PV sizing. Fixed (not ``day``), so the installed kWp does not change with the simulated day.
    n_lecs : int
        Number of LECs (:func:`split_into_lecs`).
    horizon_h : float
        Hours from midnight, whole hours: up to the end of the PV data (a year of 2016). The IEEE day repeats every
        day (one typical day, no seasons); the PV follows the calendar day by day.
    home_battery_kwh, home_battery_kw : float
        Size of each home battery.
    community_battery_hours : float
        Energy of a community battery in hours of its LEC's mean load; its power is the mean load.
    battery_efficiency : float
        Round-trip efficiency of every battery.
    max_distance_m : float
        Neighbour distance of :func:`lec_neighbours`.
    each : dict, optional
        LEC name -> what differs in that LEC (module docstring, "LECs that differ"): ``pv_scale``,
        ``load_scale``, ``home_battery_kwh``, ``home_battery_kw``, ``community_battery_hours``.

    Returns
    -------
    MultiLecMembers
    """
    if 60 % grid_min:
        raise ValueError("grid_min must divide 60")
    n_steps = round(horizon_h * 60 / grid_min)
    if n_steps * grid_min != horizon_h * 60 or not 0 < horizon_h or n_steps % (60 // grid_min):
        raise ValueError("horizon_h must be a positive whole number of hours")
    tree = _tree(str(data_dir))
    split = split_into_lecs(n_lecs, data_dir)
    compositions = _lec_compositions(lec_names(split), each, home_battery_kwh=home_battery_kwh,
                                     home_battery_kw=home_battery_kw, community_battery_hours=community_battery_hours)
    parts = lec_parts(split, data_dir)
    neighbours = lec_neighbours(split, max_distance_m, data_dir)
    reduced = reduced_bus_of(data_dir)
    _, loads = _feeder(str(data_dir))
    pf = dict(zip(loads["Name"], loads["PF"].astype(float)))

    consumers = set(consumer_loads(data_dir=data_dir))
    prosumers = [n for n in split["load"] if n not in consumers]
    pv_profile = prosumer_pv_profile(prosumers)
    kwp = pv_kwp_per_prosumer(pv_sizing_day, pv_peak_kw, 60, data_dir, pv_file)
    batteries = _home_battery_loads(tree, split, set(prosumers))

    scale = load_scale_for_peak(load_peak_kw, data_dir)
    one_min = _load_day_kw(data_dir) * scale
    minutes = n_steps * grid_min
    pv = pv_profiles(day, math.ceil(horizon_h), pv_file)  # consecutive days of the calendar
    days = -(-minutes // 1440)  # the IEEE day repeated over the horizon (the last day maybe in part)

    tan_phi = {name: math.tan(math.acos(value)) for name, value in pf.items()}
    homes = {}
    for row in split.itertuples(index=False):
        has_pv = row.load in pv_profile
        load = np.tile(one_min[row.load].to_numpy(), days)[:minutes].reshape(n_steps, grid_min).mean(axis=1)
        if has_pv:
            per_min = np.repeat(pv[pv_profile[row.load]].to_numpy(dtype=float), 15)[:minutes]
            pv_kw = per_min.reshape(n_steps, grid_min).mean(axis=1) * kwp
        else:
            pv_kw = np.zeros(n_steps)
        homes[row.load] = {"reduced_bus": reduced[int(row.bus)], "pv_kwp": kwp if has_pv else 0.0,
                           "pv_profile": pv_profile.get(row.load, ""),
                           "load_profile": f"profile_{_load_number(row.load)}", "load_kw": load,
                           "load_kvar": load * tan_phi[row.load], "pv_kw": pv_kw,
                           "mean_kw": float(one_min[row.load].to_numpy().sum() / 1440.0)}
    _scale_homes(split, homes, each)
    return _place_assets(tree, split, parts, neighbours, homes, batteries, reduced.__getitem__, n_steps=n_steps,
                         grid_min=grid_min, start=pd.Timestamp(day).normalize(), load_scale=scale,
                         compositions=compositions, battery_efficiency=battery_efficiency)


def _place_assets(tree: _Tree, split: pd.DataFrame, parts: dict, neighbours: list, homes: dict, batteries: set,
                  reduced_bus, *, n_steps: int, grid_min: int, start: pd.Timestamp, load_scale: float,
                  compositions: dict[str, dict], battery_efficiency: float) -> MultiLecMembers:
    """The members table, the LEC table and the profiles of a split whose households are known.

    ``homes`` holds per household (split order) its ``reduced_bus, pv_kwp, pv_profile, load_profile``, its
    step profiles ``load_kw, load_kvar, pv_kw`` and ``mean_kw`` (the mean load the community battery is sized
    on); ``batteries`` the households with a home battery; ``reduced_bus(bus)`` a community battery's bus in
    the reduced numbering; ``compositions`` per LEC its battery sizes (:func:`_lec_compositions`).
    """
    rows, load_rows, kvar_rows, pv_rows = [], [], [], []
    for row in split.itertuples(index=False):
        home = homes[row.load]
        home_battery_kwh = compositions[row.lec]["home_battery_kwh"]
        home_battery_kw = compositions[row.lec]["home_battery_kw"]
        has_bat = row.load in batteries  # a size 0 is no battery: the LEC table counts none
        rows.append({"member": row.load, "lec": row.lec, "kind": "household", "bus": int(row.bus),
                     "reduced_bus": home["reduced_bus"], "phase": row.phase, "pv_kwp": home["pv_kwp"],
                     "pv_profile": home["pv_profile"], "load_profile": home["load_profile"],
                     "battery_kwh": float(home_battery_kwh) if has_bat else 0.0,
                     "battery_kw": float(home_battery_kw) if has_bat else 0.0,
                     "battery_efficiency": float(battery_efficiency) if has_bat else 0.0})
        load_rows.append(home["load_kw"])
        kvar_rows.append(home["load_kvar"])
        pv_rows.append(home["pv_kw"])
    lec_rows = []
    for name in lec_names(split):
        members = split[split["lec"] == name]
        mean_kw = float(sum(homes[m]["mean_kw"] for m in members["load"]))
        community_battery_hours = compositions[name]["community_battery_hours"]
        energy = float(round(community_battery_hours * mean_kw))
        power = energy / community_battery_hours if community_battery_hours > 0 else 0.0
        bus = _community_battery_bus(tree, parts[name], [int(b) for b in members["bus"]])
        rows.append({"member": f"{name}_battery", "lec": name, "kind": "community_battery", "bus": bus,
                     "reduced_bus": reduced_bus(bus), "phase": "abc", "pv_kwp": 0.0, "pv_profile": "",
                     "load_profile": "", "battery_kwh": energy, "battery_kw": power,
                     "battery_efficiency": float(battery_efficiency)})
        for out in (load_rows, kvar_rows, pv_rows):
            out.append(np.zeros(n_steps))
        mine = [r for r in rows if r["lec"] == name and r["kind"] == "household"]
        phases = members["phase"].value_counts()
        lec_rows.append({
            "lec": name, "root_bus": int(members["lec_root_bus"].iloc[0]), "households": len(members),
            "prosumers": sum(r["pv_kwp"] > 0 for r in mine),
            "home_batteries": sum(r["battery_kwh"] > 0 for r in mine),
            "phase_a": int(phases.get("a", 0)), "phase_b": int(phases.get("b", 0)), "phase_c": int(phases.get("c", 0)),
            "pv_kwp": sum(r["pv_kwp"] for r in mine), "home_battery_kwh": sum(r["battery_kwh"] for r in mine),
            "home_battery_kw": sum(r["battery_kw"] for r in mine), "community_battery_bus": bus,
            "community_battery_kwh": energy, "community_battery_kw": power})
    return MultiLecMembers(table=pd.DataFrame(rows), lecs=pd.DataFrame(lec_rows), neighbours=neighbours,
                           grid_min=int(grid_min), start=start, load_kw=np.vstack(load_rows),
                           load_kvar=np.vstack(kvar_rows), pv_kw=np.vstack(pv_rows), load_scale=load_scale)


def multi_lec_members_on_feeder(
    feeder,
    community,
    start,
    *,
    n_lecs: int = N_LECS,
    home_battery_kwh: float = HOME_BATTERY_KWH,
    home_battery_kw: float = HOME_BATTERY_KW,
    community_battery_hours: float = COMMUNITY_BATTERY_HOURS,
    battery_efficiency: float = BATTERY_EFFICIENCY,
    max_distance_m: float = NEIGHBOUR_MAX_DISTANCE_M,
    each: dict[str, dict] | None = None,
) -> MultiLecMembers:
    """The members of the LECs on a feeder from any source (:class:`~lec_cosim.models.feeder_model.Feeder`).

    The households, their loads and their PV are ``community``'s: the local market's households on that feeder,
    without CHPs (:func:`lec_cosim.models.feeder_community.build_feeder_community`: placement, loads from the
    source or a CSV, PV on a share of the households spread over the feeder, one common kWp), over the horizon
    from ``start``. The split, the neighbour graph, the home batteries (every second prosumer of
    each LEC along the feeder) and the community batteries (two hours of the LEC's mean load, at its load
    centre) follow the IEEE feeder's rules (module docstring) on the feeder's tree
    (:func:`lec_cosim.models.lec_split.feeder_tree`). What differs: the mean load is that of the horizon (the
    source's profiles are dated, not one typical day), buses are pandapower indices, and there is no reduced
    numbering (``reduced_bus`` -1) nor profile names. ``each``: LECs that differ, as in :func:`multi_lec_members`.
    """
    from lec_cosim.models.lec_split import feeder_tree

    if (community.table["kind"] == "chp").any():
        raise ValueError("the LECs' members are households: build their community without CHPs")
    table = community.table
    households = pd.DataFrame({"bus": table["bus"].to_numpy(dtype=int), "phases": table["phase"].to_numpy()},
                              index=pd.Index(table["participant"], name="household"))
    tree = feeder_tree(feeder, households)
    split = split_into_lecs(n_lecs, tree)
    parts = lec_parts(split, tree)
    neighbours = lec_neighbours(split, max_distance_m, tree)
    row_of = {name: i for i, name in enumerate(table["participant"])}
    homes = {}
    for name in split["load"]:
        i = row_of[name]
        homes[name] = {"reduced_bus": -1, "pv_kwp": float(table.at[i, "pv_kwp"]), "pv_profile": "",
                       "load_profile": "", "load_kw": community.load_kw[i], "load_kvar": community.load_kvar[i],
                       "pv_kw": community.pv_kw[i], "mean_kw": float(community.load_kw[i].mean())}
    prosumers = {name for name in split["load"] if homes[name]["pv_kwp"] > 0}
    batteries = _home_battery_loads(tree, split, prosumers)  # placed before any LEC's PV is scaled
    compositions = _lec_compositions(lec_names(split), each, home_battery_kwh=home_battery_kwh,
                                     home_battery_kw=home_battery_kw, community_battery_hours=community_battery_hours)
    _scale_homes(split, homes, each)
    n_steps = community.load_kw.shape[1]
    return _place_assets(tree, split, parts, neighbours, homes, batteries, lambda bus: -1, n_steps=n_steps,
                         grid_min=community.grid_min, start=pd.Timestamp(start), load_scale=community.load_scale,
                         compositions=compositions, battery_efficiency=battery_efficiency)
