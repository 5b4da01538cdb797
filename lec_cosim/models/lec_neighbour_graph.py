"""Which LECs are neighbours: how every pair of LECs is joined along the feeder, and the neighbour graph.

The graph the exchanges and the ADMM negotiation run on. Separate from the split
(:mod:`lec_cosim.models.lec_split`) because it is a rule of its own on top of any split (a
distance limit, no third LEC in between), checked on splits other than the feeder rule's.

Neighbours (:func:`lec_neighbours`, :func:`lec_distances`)
----------------------------------------------------------
Two LECs are neighbours if the feeder path that joins their parts

* passes through no third LEC's part (they are adjacent along the feeder: what one exports to the
  other flows only over shared trunk), and
* is at most ``max_distance_m`` long (:data:`NEIGHBOUR_MAX_DISTANCE_M` = 50 m, the sum of line
  lengths, as :func:`~lec_cosim.models.lem_participants.path_length_m`).

For every split of this feeder into 2 to 8 LECs by the rule of
:func:`~lec_cosim.models.lec_split.split_into_lecs`, the joining paths of adjacent parts are 7-28 m
long. A path that crosses another LEC is at least 53 m long. So 50 m lies between
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
the junction. (A split that cuts within a branch, such as the min-max one rejected in
:mod:`lec_cosim.models.lec_split`, would give a line instead.)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR
from lec_cosim.models.lec_split import _as_tree, _path, _path_length_m, lec_parts

NEIGHBOUR_MAX_DISTANCE_M = 50.0
"""Longest shared-trunk path (m) between the parts of two LECs that still makes them neighbours."""


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
    tree = _as_tree(data_dir)
    parts = lec_parts(split, tree)
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
            via = min(joining, key=lambda x: (tree.dist_m[x], tree.rank[x]))
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
