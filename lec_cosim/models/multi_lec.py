"""Three (or N) local energy communities on the IEEE European LV test feeder: the split, the neighbours, the assets.

The model layer of the multi-LEC scenario of issue 4: the 55 households of the feeder of
:mod:`lec_cosim.models.ieee_eulv` split into LECs along the feeder's branches, the LECs' neighbour
graph, the members' home PV and batteries, one community battery per LEC, and the per-step profiles
an LEC EMS plans with. No HELICS here. Everything is deterministic and derived from the shipped data.

The split (:func:`split_into_lecs`)
-----------------------------------
The rule uses the topology only: the radial feeder (905 lines, a tree) rooted at IEEE bus 1, the
transformer's LV bus, and the buses of the 55 loads (``Lines.csv``, ``Loads.csv``). A *part* of the
feeder is the subtree below a *root* bus, without the subtrees of the other parts' roots. It
starts as one part, rooted at bus 1.

1. **Main junction of a part**: the bus with at least two downstream branches that carry households
   (counted within the part) whose *second-largest* branch carries the most households. This is
   where the part's load divides most evenly. Ties go to the bus nearer the head, then the lower bus.
2. **Split**: take the part with the most households that has a main junction (ties: root nearer
   the head, then lower bus).
   Each branch below its main junction becomes a new part, rooted at the branch's first bus. The
   part keeps its upstream section (the trunk down to the junction and all that hangs off it). If
   fewer new parts are needed than the junction has branches, the branches with the most
   households are split off first (ties: lower bus). If the upstream section holds no household,
   one branch stays with it.
3. Repeat 2 until there are ``n_lecs`` parts. Number them ``lec1`` .. ``lecN`` in ascending order
   of their root bus. In the IEEE data every line runs from a lower-numbered bus (towards the head)
   to a higher one, so ``lec1`` is always the part at the head.

Every LEC is then a connected piece of the feeder (a subtree minus the subtrees below it), and
no other LEC's household lies on the lines between its households.

**Result for three LECs.** The feeder's main junction is **bus 280** (:data:`MAIN_JUNCTION_BUS`),
115.1 m from bus 1. There the trunk (4-core mains from the transformer, first heading south-east,
then south) divides into two branches. One branch has 13 households and starts at bus 287; the
other has 23 and starts at bus 288. No other junction has a second branch with more than 6
households (bus 101: 6 and 43; bus 114: 5 and 38; bus 666: 3 and 13). So the split is:

======  ========  ==========  ============  ===========================================
LEC     root bus  households  phases a/b/c  where
======  ========  ==========  ============  ===========================================
lec1    1         19          7 / 7 / 5     the trunk to bus 280 with its service drops and the
                                            spurs at buses 101 (6 households) and 114 (5):
                                            LOAD1..LOAD17, LOAD19, LOAD21
lec2    287       13          7 / 4 / 2     the branch east from bus 280 along the northern street:
                                            LOAD18, 20, 22, 23, 25, 29..31, 33..37
lec3    288       23          7 / 8 / 8     the branch south along the western houses, then
                                            north-east along the southern street: LOAD24, 26..28,
                                            32, 38..55
======  ========  ==========  ============  ===========================================

Cutting the two lines 280-287 (1.75 m) and 280-288 (0.91 m) leaves exactly these three
groups as connected pieces. Daily load energy of the IEEE profiles (unscaled): lec1 173.2,
lec2 121.8, lec3 188.9 kWh, 483.9 kWh in all. lec2 is phase-unbalanced (7 of its 13 households
on phase a, 2 on phase c). For other ``n_lecs`` the same rule gives 32/23 (2 LECs: bus 288
split off), 19/13/10/13 (4: bus 673, the larger branch below bus 666), 19/13/7/3/13 (5).

Alternatives rejected:

========================================================  ===========  ============================
rule                                                      households   why not
========================================================  ===========  ============================
**main-junction split (chosen)**                          19/13/23     --
cut any 2 lines, most even counts (min-max, exhaustive)   19/18/18     cuts the main of the 288
                                                                       branch mid-street (three
                                                                       optimal pairs tie: buses
                                                                       594 and 280, 594 and 263,
                                                                       578 and 263); with 594 and
                                                                       280 the middle LEC straddles
                                                                       both branches (and the
                                                                       neighbour graph is a line)
branches hanging off the trunk (to bus 280) grouped       18/14/23     moves one house (LOAD19, on a
in order along the trunk, min-max counts                               spur at bus 263) to lec2, which
                                                                       then owns a piece of trunk;
                                                                       the largest LEC stays 23
main-junction rule weighing daily energy, not counts      19/13/23     same junction (second branch
                                                                       121.8 kWh at bus 280, next
                                                                       67.9 kWh at bus 101); counts
                                                                       are kept: the energies are
                                                                       one typical day
branches from line codes (4-core mains vs 2-core)         19/13/23     same result, but relies on an
                                                                       interpretation of the code
                                                                       names, not on topology
========================================================  ===========  ============================

An LEC's part of the feeder (:func:`lec_parts`)
-----------------------------------------------
An LEC owns the smallest subtree that joins its households: the paths from each of its households'
buses up to their lowest common upstream bus. For the three LECs these are 219, 148 and 297 buses,
pairwise disjoint. The lines between the parts are the **shared trunk**, owned by no LEC. For
lec1 it ends at bus 263, the last household junction before bus 280.

Neighbours (:func:`lec_neighbours`, :func:`lec_distances`)
----------------------------------------------------------
Two LECs are neighbours if the feeder path that joins their parts

* passes through no third LEC's part (they are adjacent along the feeder: what one exports to the
  other flows only over shared trunk), and
* is at most ``max_distance_m`` long (:data:`NEIGHBOUR_MAX_DISTANCE_M` = 50 m, the sum of line
  lengths, as :func:`~lec_cosim.models.lem_participants.path_length_m`).

For every split of this feeder into 2 to 8 LECs by the rule above, the joining paths of adjacent
parts are 7-28 m long. A path that crosses another LEC is at least 53 m long. So 50 m lies between
the two groups: it never removes an adjacent pair here. It guards against joining two LECs through a
long stretch of trunk on other feeders or splits.

**Three LECs: a triangle.** The three parts meet at the main junction, bus 280.

=========  ================  ========  =============================
pair       joining path      length    through
=========  ================  ========  =============================
lec1-lec2  bus 263 to 310    13.2 m    trunk 263-280, then 287
lec1-lec3  bus 263 to 373    12.3 m    trunk 263-280, then 288
lec2-lec3  bus 310 to 373    15.5 m    bus 280 (neither branch's part)
=========  ================  ========  =============================

No path crosses a third LEC. So every pair is a neighbour, and the graph is the triangle
``(lec1, lec2), (lec1, lec3), (lec2, lec3)``. It is not a line: the two branches join each other
at bus 280 directly, not through the trunk's households, and lec1's part stops at bus 263 above
the junction. (A split that cuts within a branch, such as the min-max one above, would give a line
instead.)

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
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, read_load_profiles_kw
from lec_cosim.models.lem_participants import (
    DEFAULT_PV_DAY,
    HEAD_BUS,
    PAPER_PV_PEAK_KW,
    PV_PROFILE_FILE,
    _feeder,
    consumer_loads,
    path_length_m,
    prosumer_pv_profile,
    pv_day_profiles,
    pv_kwp_per_prosumer,
    reduced_bus_of,
)

N_LECS = 3
"""LECs of the issue-4 scenario."""
MAIN_JUNCTION_BUS = 280
"""The feeder's main junction: where the trunk divides into the two branches of lec2 and lec3."""
LEC_ROOT_BUSES = (1, 287, 288)
"""First bus of each of the three LECs' pieces of the feeder (``lec1``, ``lec2``, ``lec3``)."""
NEIGHBOUR_MAX_DISTANCE_M = 50.0
"""Longest shared-trunk path (m) between the parts of two LECs that still makes them neighbours."""
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


# ---------------------------------------------------------------------------------------------
# Rooted feeder
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Tree:
    """The radial feeder rooted at the head bus: parent, children (ascending), preorder, loads."""

    parent: dict
    children: dict
    order: tuple
    length_m: dict  # length of the line from each bus's parent to the bus, m
    dist_m: dict
    load_bus: dict  # load name -> bus
    loads_at: dict  # bus -> tuple of load names


@lru_cache(maxsize=4)
def _tree(data_dir: str) -> _Tree:
    adj, loads = _feeder(data_dir)
    parent = {HEAD_BUS: None}
    children: dict[int, list[int]] = {b: [] for b in adj}
    order = [HEAD_BUS]
    stack = [HEAD_BUS]
    while stack:
        bus = stack.pop()
        for nb in sorted(adj[bus], reverse=True):
            if nb not in parent:
                parent[nb] = bus
                children[bus].append(nb)
                stack.append(nb)
                order.append(nb)
    children = {b: tuple(sorted(c)) for b, c in children.items()}
    length = {b: adj[b][p] for b, p in parent.items() if p is not None}
    load_bus = {str(n): int(b) for n, b in zip(loads["Name"], loads["Bus"])}
    loads_at: dict[int, list[str]] = {}
    for name, bus in load_bus.items():
        loads_at.setdefault(bus, []).append(name)
    return _Tree(parent=parent, children=children, order=tuple(order), length_m=length,
                 dist_m=path_length_m(data_dir), load_bus=load_bus,
                 loads_at={b: tuple(v) for b, v in loads_at.items()})


def _ancestors(tree: _Tree, bus: int) -> list[int]:
    """``bus`` and every bus upstream of it, up to the head."""
    out = []
    while bus is not None:
        out.append(bus)
        bus = tree.parent[bus]
    return out


def _load_number(name: str) -> int:
    return int(name[4:])


# ---------------------------------------------------------------------------------------------
# Split into LECs
# ---------------------------------------------------------------------------------------------
def _region(tree: _Tree, root: int, roots: set) -> list[int]:
    """Buses of the part rooted at ``root``: its subtree without the subtrees of other part roots (preorder)."""
    out, stack = [], [root]
    while stack:
        bus = stack.pop()
        out.append(bus)
        stack.extend(c for c in reversed(tree.children[bus]) if c not in roots)
    return out


def _main_junction(tree: _Tree, root: int, roots: set):
    """Main junction of a part and the household counts below each of its children (within the part).

    The main junction is the bus of the part with at least two children that carry households, whose
    second-largest such child carries the most households (ties: nearer the head, then lower bus).
    Returns ``(junction, {child: households})`` or ``(None, {})`` for a part without such a bus.
    """
    region = _region(tree, root, roots)
    inside = set(region)
    count = {}
    for bus in reversed(region):
        count[bus] = len(tree.loads_at.get(bus, ())) + sum(count[c] for c in tree.children[bus] if c in inside)
    best, best_key = None, None
    for bus in region:
        loaded = sorted((count[c] for c in tree.children[bus] if c in inside and count[c] > 0), reverse=True)
        if len(loaded) < 2:
            continue
        key = (-loaded[1], tree.dist_m[bus], bus)
        if best_key is None or key < best_key:
            best, best_key = bus, key
    if best is None:
        return None, {}
    return best, {c: count[c] for c in tree.children[best] if c in inside and count[c] > 0}


def split_into_lecs(n_lecs: int = N_LECS, data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Assign the 55 households to ``n_lecs`` LECs along the feeder's branches (rule in the module docstring).

    Parameters
    ----------
    n_lecs : int
        Number of LECs, at least 1.
    data_dir : path-like
        IEEE European LV data folder.

    Returns
    -------
    pandas.DataFrame
        One row per household in IEEE order (``LOAD1`` .. ``LOAD55``); columns ``load``, ``lec``
        (``lec1`` .. ``lecN``), ``bus`` (IEEE bus), ``phase`` (``a``/``b``/``c``), ``path_length_m`` (from
        bus 1) and ``lec_root_bus`` (the bus where the LEC's part of the feeder begins: bus 1 for the
        head's LEC, else the first bus of its branch).
    """
    n_lecs = int(n_lecs)
    if n_lecs < 1:
        raise ValueError("n_lecs must be at least 1")
    tree = _tree(str(data_dir))
    roots = [HEAD_BUS]
    while len(roots) < n_lecs:
        households = {r: sum(len(tree.loads_at.get(b, ())) for b in _region(tree, r, set(roots))) for r in roots}
        # largest part first (ties: nearer the head, then lower bus) that has a junction to split at
        for part in sorted(roots, key=lambda r: (-households[r], tree.dist_m[r], r)):
            junction, below = _main_junction(tree, part, set(roots))
            if junction is not None:
                break
        else:
            raise ValueError(f"the feeder cannot be split into {n_lecs} LECs along its branches")
        branches = sorted(below, key=lambda c: (-below[c], c))
        upstream = households[part] - sum(below.values())
        room = len(branches) if upstream > 0 else len(branches) - 1
        roots.extend(branches[: min(room, n_lecs - len(roots))])
    roots.sort()  # IEEE numbering is topological: the head's part is lec1
    name_of = {r: f"lec{i}" for i, r in enumerate(roots, start=1)}
    root_set = set(roots)
    owner = {}
    for r in roots:
        for bus in _region(tree, r, root_set):
            owner[bus] = r
    _, loads = _feeder(str(data_dir))
    buses = loads["Bus"].astype(int).to_numpy()
    return pd.DataFrame({
        "load": loads["Name"].to_numpy(),
        "lec": [name_of[owner[b]] for b in buses],
        "bus": buses,
        "phase": loads["phases"].str.lower().to_numpy(),
        "path_length_m": [tree.dist_m[b] for b in buses],
        "lec_root_bus": [owner[b] for b in buses],
    })


def lec_names(split: pd.DataFrame) -> list[str]:
    """LEC names of a split in numeric order (``lec1``, ``lec2``, ..., ``lec10``)."""
    return sorted(split["lec"].unique(), key=lambda s: (len(s), s))


def lec_parts(split: pd.DataFrame, data_dir: Path | str = DEFAULT_DATA_DIR) -> dict[str, frozenset]:
    """Each LEC's part of the feeder: the buses of the smallest subtree that joins its households.

    This is the union of the paths from each of its households' buses up to their lowest common
    upstream bus. It holds the LEC's own lines only; the trunk that connects the LECs to each other
    and to the transformer lies outside every part.

    Returns
    -------
    dict
        ``{lec: frozenset of IEEE buses}``, in :func:`lec_names` order.
    """
    tree = _tree(str(data_dir))
    parts = {}
    for lec in lec_names(split):
        buses = [int(b) for b in split.loc[split["lec"] == lec, "bus"]]
        paths = [_ancestors(tree, b) for b in buses]
        common = set(paths[0]).intersection(*map(set, paths[1:]))
        top = max(common, key=lambda b: tree.dist_m[b])  # lowest common upstream bus
        part = set()
        for path in paths:
            for bus in path:
                part.add(bus)
                if bus == top:
                    break
        parts[lec] = frozenset(part)
    return parts


def _path(tree: _Tree, a: int, b: int) -> list[int]:
    """Buses of the feeder path from ``a`` to ``b`` (both included)."""
    up_a, up_b = _ancestors(tree, a), _ancestors(tree, b)
    on_b = set(up_b)
    meet = next(x for x in up_a if x in on_b)
    return up_a[: up_a.index(meet) + 1] + list(reversed(up_b[: up_b.index(meet)]))


def _path_length_m(tree: _Tree, path: list[int]) -> float:
    total = 0.0
    for x, y in pairwise(path):
        total += tree.length_m[y] if tree.parent.get(y) == x else tree.length_m[x]
    return total


def lec_distances(split: pd.DataFrame, max_distance_m: float = NEIGHBOUR_MAX_DISTANCE_M,
                  data_dir: Path | str = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """How every pair of LECs is joined along the feeder.

    Parameters
    ----------
    split : pandas.DataFrame
        A household assignment with columns ``lec`` and ``bus`` (e.g. :func:`split_into_lecs`).
    max_distance_m : float
        Longest joining path of neighbours, m (see :func:`lec_neighbours`).

    Returns
    -------
    pandas.DataFrame
        One row per pair ``lec_a < lec_b``: ``from_bus`` (last bus of ``lec_a``'s part on the joining
        path), ``to_bus`` (first bus of ``lec_b``'s part), ``distance_m`` (length of the joining path,
        the sum of its line lengths), ``via_bus`` (the bus where the path turns, nearest the head;
        for LECs in line with each other one of the end buses), ``crosses`` (LECs whose parts the
        joining path passes through, comma-separated) and ``neighbours`` (bool).
    """
    tree = _tree(str(data_dir))
    parts = lec_parts(split, data_dir)
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if parts[a] & parts[b]:
                raise ValueError(f"the parts of {a} and {b} overlap: not a split along the feeder")
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            path = _path(tree, next(iter(parts[a])), next(iter(parts[b])))
            last_a = max(k for k, x in enumerate(path) if x in parts[a])
            first_b = min(k for k, x in enumerate(path) if x in parts[b])
            joining = path[last_a: first_b + 1]
            crosses = [c for c in names if c not in (a, b) and any(x in parts[c] for x in joining)]
            distance = _path_length_m(tree, joining)
            via = min(joining, key=lambda x: (tree.dist_m[x], x))
            rows.append({"lec_a": a, "lec_b": b, "from_bus": joining[0], "to_bus": joining[-1],
                         "distance_m": distance, "via_bus": via, "crosses": ",".join(crosses),
                         "neighbours": (not crosses) and distance <= max_distance_m})
    return pd.DataFrame(rows, columns=["lec_a", "lec_b", "from_bus", "to_bus", "distance_m", "via_bus", "crosses",
                                       "neighbours"])


def lec_neighbours(split: pd.DataFrame, max_distance_m: float = NEIGHBOUR_MAX_DISTANCE_M,
                   data_dir: Path | str = DEFAULT_DATA_DIR) -> list[tuple[str, str]]:
    """The neighbour graph of the LECs (rule in the module docstring).

    Two LECs are neighbours if the feeder path that joins their parts (:func:`lec_parts`) passes
    through no other LEC's part and is at most ``max_distance_m`` long.

    Returns
    -------
    list of (str, str)
        Undirected edges ``(lec_a, lec_b)`` with ``lec_a`` before ``lec_b`` in :func:`lec_names` order,
        sorted.
    """
    table = lec_distances(split, max_distance_m, data_dir)
    return [(a, b) for a, b, ok in zip(table["lec_a"], table["lec_b"], table["neighbours"]) if ok]


# ---------------------------------------------------------------------------------------------
# Members and their assets
# ---------------------------------------------------------------------------------------------
def _home_battery_loads(split: pd.DataFrame, prosumers: set) -> set:
    """Every second prosumer of each LEC along the feeder (positions 1, 3, ... by path length)."""
    chosen = set()
    for _, group in split[split["load"].isin(prosumers)].groupby("lec"):
        ordered = group.assign(k=group["load"].map(_load_number)).sort_values(["path_length_m", "k"])
        chosen.update(ordered["load"].iloc[1::2])
    return chosen


def _community_battery_bus(tree: _Tree, part: frozenset, buses: list[int]) -> int:
    """Junction of the LEC's part with the least total path length to its households (ties: lower bus)."""
    candidates = [b for b in part if sum(1 for c in tree.children[b] if c in part) >= 2] or sorted(part)
    best, best_key = None, None
    for cand in sorted(candidates):
        total = sum(_path_length_m(tree, _path(tree, cand, b)) for b in buses)
        key = (round(total, 9), cand)
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


@dataclass(frozen=True, eq=False)
class MultiLecMembers:
    """The members of the LECs, their assets and their profiles over one day.

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
        Hours from midnight, whole hours, at most 24.
    home_battery_kwh, home_battery_kw : float
        Size of each home battery.
    community_battery_hours : float
        Energy of a community battery in hours of its LEC's mean load; its power is the mean load.
    battery_efficiency : float
        Round-trip efficiency of every battery.
    max_distance_m : float
        Neighbour distance of :func:`lec_neighbours`.

    Returns
    -------
    MultiLecMembers
    """
    if 60 % grid_min:
        raise ValueError("grid_min must divide 60")
    n_steps = round(horizon_h * 60 / grid_min)
    if n_steps * grid_min != horizon_h * 60 or not 0 < horizon_h <= 24 or n_steps % (60 // grid_min):
        raise ValueError("horizon_h must be a whole number of hours, at most 24")
    tree = _tree(str(data_dir))
    split = split_into_lecs(n_lecs, data_dir)
    names = lec_names(split)
    parts = lec_parts(split, data_dir)
    neighbours = lec_neighbours(split, max_distance_m, data_dir)
    reduced = reduced_bus_of(data_dir)
    _, loads = _feeder(str(data_dir))
    pf = dict(zip(loads["Name"], loads["PF"].astype(float)))

    consumers = set(consumer_loads(data_dir=data_dir))
    prosumers = [n for n in split["load"] if n not in consumers]
    pv_profile = prosumer_pv_profile(prosumers)
    kwp = pv_kwp_per_prosumer(pv_sizing_day, pv_peak_kw, 60, data_dir, pv_file)
    batteries = _home_battery_loads(split, set(prosumers))

    scale = load_scale_for_peak(load_peak_kw, data_dir)
    one_min = _load_day_kw(data_dir) * scale
    minutes = n_steps * grid_min
    pv = pv_day_profiles(day, pv_file)

    rows, load_rows, pv_rows = [], [], []
    for row in split.itertuples(index=False):
        has_pv = row.load in pv_profile
        has_bat = row.load in batteries
        rows.append({"member": row.load, "lec": row.lec, "kind": "household", "bus": int(row.bus),
                     "reduced_bus": reduced[int(row.bus)], "phase": row.phase, "pv_kwp": kwp if has_pv else 0.0,
                     "pv_profile": pv_profile.get(row.load, ""), "load_profile": f"profile_{_load_number(row.load)}",
                     "battery_kwh": float(home_battery_kwh) if has_bat else 0.0,
                     "battery_kw": float(home_battery_kw) if has_bat else 0.0,
                     "battery_efficiency": float(battery_efficiency) if has_bat else 0.0})
        load_rows.append(one_min[row.load].to_numpy()[:minutes].reshape(n_steps, grid_min).mean(axis=1))
        if has_pv:
            per_min = np.repeat(pv[pv_profile[row.load]].to_numpy(dtype=float), 15)[:minutes]
            pv_rows.append(per_min.reshape(n_steps, grid_min).mean(axis=1) * kwp)
        else:
            pv_rows.append(np.zeros(n_steps))
    lec_rows = []
    for name in names:
        members = split[split["lec"] == name]
        mean_kw = float(one_min[list(members["load"])].to_numpy().sum() / 1440.0)
        energy = float(round(community_battery_hours * mean_kw))
        bus = _community_battery_bus(tree, parts[name], [int(b) for b in members["bus"]])
        rows.append({"member": f"{name}_battery", "lec": name, "kind": "community_battery", "bus": bus,
                     "reduced_bus": reduced[bus], "phase": "abc", "pv_kwp": 0.0, "pv_profile": "",
                     "load_profile": "", "battery_kwh": energy, "battery_kw": energy / community_battery_hours,
                     "battery_efficiency": float(battery_efficiency)})
        load_rows.append(np.zeros(n_steps))
        pv_rows.append(np.zeros(n_steps))
        homes = [r for r in rows if r["lec"] == name and r["kind"] == "household"]
        phases = members["phase"].value_counts()
        lec_rows.append({
            "lec": name, "root_bus": int(members["lec_root_bus"].iloc[0]), "households": len(members),
            "prosumers": sum(r["pv_kwp"] > 0 for r in homes),
            "home_batteries": sum(r["battery_kwh"] > 0 for r in homes),
            "phase_a": int(phases.get("a", 0)), "phase_b": int(phases.get("b", 0)), "phase_c": int(phases.get("c", 0)),
            "pv_kwp": sum(r["pv_kwp"] for r in homes), "home_battery_kwh": sum(r["battery_kwh"] for r in homes),
            "home_battery_kw": sum(r["battery_kw"] for r in homes), "community_battery_bus": bus,
            "community_battery_kwh": energy, "community_battery_kw": energy / community_battery_hours})
    table = pd.DataFrame(rows)
    load_kw = np.vstack(load_rows)
    tan_phi = np.array([math.tan(math.acos(pf[m])) if m in pf else 0.0 for m in table["member"]])
    return MultiLecMembers(table=table, lecs=pd.DataFrame(lec_rows), neighbours=neighbours, grid_min=int(grid_min),
                           start=pd.Timestamp(day).normalize(), load_kw=load_kw, load_kvar=load_kw * tan_phi[:, None],
                           pv_kw=np.vstack(pv_rows), load_scale=scale)
