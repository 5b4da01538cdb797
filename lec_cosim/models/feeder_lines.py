"""The feeder's line sections as the local-market grid counts them: ratings and reduced-model lines.

Two facts per feeder line section that the IEEE data do not give and :class:`~lec_cosim.models.
three_phase_feeder.LemGrid` needs to count overloads: the continuous current rating of its line
code (:func:`read_line_ratings`) and the line of the 110-bus reduced model it belongs to
(``_reduced_line_ids``). They are data about the feeder, independent of any power flow, so they
live apart from the grid class.

Line ratings
------------
The IEEE data have no ampacity. ``data/ieee_eulv/line_ratings.csv`` (:func:`read_line_ratings`, see
``data/ieee_eulv/README.md``) gives one continuous rating per line code from IEC 60364-5-52 (cables in
the ground, method D). ``Vsource_impedance`` (the 11 kV source impedance) is not part of the feeder: it
is excluded from losses and overload checks. With the loads scaled to the paper's 140 kW peak, the
4-core 70 mm2 aluminium cable at the feeder head (138 A; its first 39 sections carry all 55 households)
and the 0.1 in2 copper main after it (143 A) overload at the evening peak and, from reverse PV flow,
around noon.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR
from lec_cosim.models.lem_participants import HEAD_BUS

LINE_RATINGS_FILE = DEFAULT_DATA_DIR / "line_ratings.csv"
"""Continuous current rating per IEEE line code (``data/ieee_eulv/line_ratings.csv``)."""


def read_line_ratings(path: Path | str = LINE_RATINGS_FILE) -> pd.DataFrame:
    """Read the line ratings table.

    Parameters
    ----------
    path : path-like
        CSV with columns ``linecode, conductor, cross_section_mm2, max_i_ka, source``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``linecode``.
    """
    table = pd.read_csv(path).set_index("linecode")
    if not (table["max_i_ka"] > 0).all():
        raise ValueError(f"{path}: every max_i_ka must be > 0")
    return table


def reduced_model_buses(from_bus: np.ndarray, to_bus: np.ndarray, head: int, loaded: set) -> list[int]:
    """The buses of a radial feeder's reduced model, ascending: the head, the ``loaded`` buses and the
    junctions (three or more branches) left once load-free spurs are pruned (the rule and its reasons:
    :mod:`lec_cosim.models.lem_participants`, which gives the IEEE feeder's 110 buses by it).

    Raises
    ------
    ValueError
        If the lines do not form a tree.
    """
    adj: dict[int, set] = {}
    for a, b in zip(np.asarray(from_bus, dtype=int).tolist(), np.asarray(to_bus, dtype=int).tolist()):
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    if len(from_bus) != len(adj) - 1:
        raise ValueError("expected a radial feeder (a tree)")
    keep = set(loaded) | {head}
    leaves = [b for b, n in adj.items() if len(n) == 1 and b not in keep]
    while leaves:  # prune load-free spurs
        nxt = []
        for leaf in leaves:
            for nb in adj.pop(leaf):
                adj[nb].discard(leaf)
                if len(adj[nb]) == 1 and nb not in keep:
                    nxt.append(nb)
        leaves = nxt
    return sorted(keep | {b for b, n in adj.items() if len(n) >= 3})


def _reduced_line_ids(from_bus: np.ndarray, to_bus: np.ndarray, reduced_of: dict[int, int],
                      head: int = HEAD_BUS) -> np.ndarray:
    """Reduced-model line of every feeder line section, -1 for sections on load-free spurs.

    A reduced line is the chain of sections between two kept buses; it is identified by the reduced
    number of its downstream kept bus. Sections on spurs that the reduction prunes (no load below)
    carry no current and belong to no reduced line.
    """
    adj: dict[int, list[tuple[int, int]]] = {}
    for i, (a, b) in enumerate(zip(from_bus.tolist(), to_bus.tolist())):
        adj.setdefault(a, []).append((b, i))
        adj.setdefault(b, []).append((a, i))
    parent_line: dict[int, int] = {}
    order = [head]
    seen = {head}
    for bus in order:  # breadth-first from the feeder head
        for nb, i in adj.get(bus, []):
            if nb not in seen:
                seen.add(nb)
                parent_line[nb] = i
                order.append(nb)
    children: dict[int, list[int]] = {}
    for bus in order[1:]:
        i = parent_line[bus]
        up = from_bus[i] if to_bus[i] == bus else to_bus[i]
        children.setdefault(int(up), []).append(bus)
    loaded: dict[int, bool] = {}
    rep: dict[int, int] = {}
    for bus in reversed(order):  # leaves first
        kids = [c for c in children.get(bus, []) if loaded[c]]
        loaded[bus] = bus in reduced_of or bool(kids)
        if bus in reduced_of:
            rep[bus] = bus
        elif len(kids) == 1:
            rep[bus] = rep[kids[0]]
        elif kids:  # a junction that is not kept cannot happen in the reduced numbering
            raise ValueError(f"bus {bus} joins {len(kids)} loaded branches but is not a reduced-model bus")
    ids = np.full(len(from_bus), -1, dtype=int)
    for bus in order[1:]:
        if loaded[bus]:
            ids[parent_line[bus]] = reduced_of[rep[bus]]
    return ids
