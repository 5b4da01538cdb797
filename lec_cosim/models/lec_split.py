"""The 55 households of the IEEE European LV feeder split into N LECs along its branches, and each LEC's part of it.

The split rule uses the feeder's topology only, so it lives apart from the members' assets and
profiles (:mod:`lec_cosim.models.multi_lec`) and from the LECs' neighbour graph
(:mod:`lec_cosim.models.lec_neighbour_graph`); the rooted feeder (:func:`_tree`) and its paths
are shared with both. Deterministic, derived from the shipped data; no HELICS here.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR
from lec_cosim.models.lem_participants import (
    HEAD_BUS,
    _feeder,
    feeder_files_state,
    path_length_m,
)

N_LECS = 3
"""LECs of the issue-4 scenario."""
MAIN_JUNCTION_BUS = 280
"""The feeder's main junction: where the trunk divides into the two branches of lec2 and lec3."""
LEC_ROOT_BUSES = (1, 287, 288)
"""First bus of each of the three LECs' pieces of the feeder (``lec1``, ``lec2``, ``lec3``)."""


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
    load_phase: dict  # load name -> "a", "b", "c" or "abc"
    rank: dict  # bus -> its place in the feeder's order (ties and LEC numbering)
    load_rank: dict  # load name -> its place among the loads (ties)


def _rooted(adj: dict, head: int, loads: list[tuple[str, int, str]], rank: dict, load_rank: dict,
            dist_m: dict | None = None) -> _Tree:
    """The tree of a radial feeder given as adjacency ``{bus: {neighbour: length_m}}``, rooted at ``head``."""
    parent = {head: None}
    children: dict[int, list[int]] = {b: [] for b in adj}
    order = [head]
    stack = [head]
    while stack:
        bus = stack.pop()
        for nb in sorted(adj[bus], key=rank.__getitem__, reverse=True):
            if nb not in parent:
                parent[nb] = bus
                children[bus].append(nb)
                stack.append(nb)
                order.append(nb)
    children = {b: tuple(sorted(c, key=rank.__getitem__)) for b, c in children.items()}
    length = {b: adj[b][p] for b, p in parent.items() if p is not None}
    if dist_m is None:
        dist_m = {head: 0.0}
        for bus in order[1:]:
            dist_m[bus] = dist_m[parent[bus]] + length[bus]
    load_bus = {name: int(bus) for name, bus, _ in loads}
    loads_at: dict[int, list[str]] = {}
    for name, bus in load_bus.items():
        loads_at.setdefault(bus, []).append(name)
    return _Tree(parent=parent, children=children, order=tuple(order), length_m=length, dist_m=dist_m,
                 load_bus=load_bus, loads_at={b: tuple(v) for b, v in loads_at.items()},
                 load_phase={name: phase for name, _, phase in loads}, rank=rank, load_rank=load_rank)


def _tree(data_dir: str) -> _Tree:
    """The IEEE feeder rooted at bus 1. Its numbering is topological: buses rank by number, loads by ``LOADk``'s k.
    Kept while the feeder's tables are the same."""
    return _tree_of(data_dir, feeder_files_state(data_dir))


@lru_cache(maxsize=4)
def _tree_of(data_dir: str, files_state) -> _Tree:
    adj, loads = _feeder(data_dir)
    rows = [(str(n), int(b), str(p).lower()) for n, b, p in zip(loads["Name"], loads["Bus"], loads["phases"])]
    return _rooted(adj, HEAD_BUS, rows, rank={b: b for b in adj},
                   load_rank={name: _load_number(name) for name, _, _ in rows}, dist_m=path_length_m(data_dir))


def feeder_tree(feeder, households: pd.DataFrame) -> _Tree:
    """A radial feeder from any source, rooted at its transformer's LV bus, with ``households`` as its loads.

    Parameters
    ----------
    feeder : lec_cosim.models.feeder_model.Feeder
    households : pandas.DataFrame
        Index: household names (their order ranks them); columns ``bus`` (pandapower index) and ``phases``.

    Buses rank in the order a depth-first walk from the head meets them (children in pandapower order),
    so LECs are numbered from the head outwards, as on the IEEE feeder. The tree holds the LV lines in
    service below the one transformer; the split needs a radial feeder and refuses a meshed one.
    """
    net = feeder.net
    if len(net.trafo) != 1:
        raise ValueError(f"{feeder.source}: the split into LECs needs one transformer, the feeder has "
                         f"{len(net.trafo)}")
    head = int(net.trafo["lv_bus"].iloc[0])
    lines = net.line[net.line["in_service"].astype(bool)]
    adj: dict[int, dict[int, float]] = {}
    for a, b, km in zip(lines["from_bus"].astype(int), lines["to_bus"].astype(int), lines["length_km"].astype(float)):
        adj.setdefault(a, {})[b] = 1000.0 * km
        adj.setdefault(b, {})[a] = 1000.0 * km
    adj.setdefault(head, {})
    seen, stack = {head}, [head]
    while stack:
        for nb in adj[stack.pop()]:
            if nb not in seen:
                seen.add(nb)
                stack.append(nb)
    edges = sum(len(adj[b]) for b in seen) // 2
    if edges != len(seen) - 1:
        raise ValueError(f"{feeder.source}: the split into LECs follows a radial feeder; this one is meshed "
                         f"({edges} lines between {len(seen)} buses)")
    outside = [h for h, bus in zip(households.index, households["bus"]) if int(bus) not in seen]
    if outside:
        raise ValueError(f"{feeder.source}: household {outside[0]!r} is not on the LV feeder below the transformer")
    adj = {b: adj[b] for b in seen}
    walk, stack, met = {}, [head], set()
    while stack:  # depth first, children in pandapower order
        bus = stack.pop()
        if bus in met:
            continue
        met.add(bus)
        walk[bus] = len(walk)
        stack.extend(sorted((nb for nb in adj[bus] if nb not in met), reverse=True))
    rows = [(str(h), int(bus), str(phase)) for h, bus, phase in zip(households.index, households["bus"],
                                                                    households["phases"])]
    return _rooted(adj, head, rows, rank=walk, load_rank={name: i for i, (name, _, _) in enumerate(rows)})


def _as_tree(where) -> _Tree:
    """A tree as given, or the IEEE feeder's of a data folder."""
    return where if isinstance(where, _Tree) else _tree(str(where))


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
        key = (-loaded[1], tree.dist_m[bus], tree.rank[bus])
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
    data_dir : path-like or tree
        IEEE European LV data folder, or the tree of any radial feeder with its households
        (:func:`feeder_tree`).

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
    tree = _as_tree(data_dir)
    roots = [tree.order[0]]
    while len(roots) < n_lecs:
        households = {r: sum(len(tree.loads_at.get(b, ())) for b in _region(tree, r, set(roots))) for r in roots}
        # largest part first (ties: nearer the head, then lower bus) that has a junction to split at
        for part in sorted(roots, key=lambda r: (-households[r], tree.dist_m[r], tree.rank[r])):
            junction, below = _main_junction(tree, part, set(roots))
            if junction is not None:
                break
        else:
            raise ValueError(f"the feeder cannot be split into {n_lecs} LECs along its branches")
        branches = sorted(below, key=lambda c: (-below[c], tree.rank[c]))
        upstream = households[part] - sum(below.values())
        room = len(branches) if upstream > 0 else len(branches) - 1
        roots.extend(branches[: min(room, n_lecs - len(roots))])
    roots.sort(key=tree.rank.__getitem__)  # the head's part is lec1
    name_of = {r: f"lec{i}" for i, r in enumerate(roots, start=1)}
    root_set = set(roots)
    owner = {}
    for r in roots:
        for bus in _region(tree, r, root_set):
            owner[bus] = r
    names = list(tree.load_bus)
    buses = [tree.load_bus[n] for n in names]
    return pd.DataFrame({
        "load": names,
        "lec": [name_of[owner[b]] for b in buses],
        "bus": buses,
        "phase": [tree.load_phase[n] for n in names],
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
    tree = _as_tree(data_dir)
    parts = {}
    for lec in lec_names(split):
        buses = [int(b) for b in split.loc[split["lec"] == lec, "bus"]]
        paths = [_ancestors(tree, b) for b in buses]
        common = set(paths[0]).intersection(*map(set, paths[1:]))
        # lowest common upstream bus; a zero-length line (a switch) ties a bus with its parent: the deeper one wins
        top = max(common, key=lambda b: (tree.dist_m[b], tree.rank[b]))
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
