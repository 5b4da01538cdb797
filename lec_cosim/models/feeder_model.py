"""The project's grid model of a feeder, whatever its source: :class:`Feeder` and what every source shares.

A :class:`Feeder` is a pandapower net the project's power-flow backends solve and the feeder's loads as
connection points (where households go). The sources that make one are in
:mod:`lec_cosim.models.feeder_source` and :mod:`lec_cosim.models.opendss_feeder`; what a source cannot express
is refused with :class:`FeederSourceError`, one line naming the file and the element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

PHASES = ("a", "b", "c")

UNSUPPORTED_TABLES = ("gen", "trafo3w", "impedance", "ward", "xward", "shunt", "dcline", "motor", "svc", "tcsc",
                      "ssc", "vsc", "storage")
"""pandapower tables the project's grid model has no counterpart for (a non-empty one is refused)."""


UNDATED_DAY = pd.Timestamp("2000-01-01")
"""The day profiles without a date of their own are put on (the IEEE day, OpenDSS load shapes)."""
MAG0_PRACTICALLY_INFINITE_PERCENT = 1.0e6
"""A transformer's ``mag0_percent`` from which its zero-sequence core path counts as absent (the IEEE feeder: 1e9)."""


class FeederSourceError(ValueError):
    """A feeder the project cannot take as it is; the message is one line naming the file and the element."""


@dataclass
class Feeder:
    """A feeder from any source, as the project's grid model: a pandapower net and its connection points.

    Attributes
    ----------
    name : str
        What the feeder is (``"IEEE European LV test feeder"``, the SimBench code, the file's stem).
    source : str
        Where it came from: ``"ieee_eu_lv: DIR"``, ``"simbench: CODE"``, ``"pandapower: FILE"``, ``"opendss: FILE"``.
    net : pandapowerNet
        The grid. Balanced loads and generators are ``load``/``sgen``; single-phase ones
        ``asymmetric_load``/``asymmetric_sgen`` (wye, constant power).
    connections : pandas.DataFrame
        One row per load of the feeder (where a household can be connected), index = the load's name; columns
        ``bus`` (pandapower index), ``phases`` (``"abc"`` for a balanced three-phase connection, else ``"a"``,
        ``"b"`` or ``"c"``), ``table`` (``"load"`` or ``"asymmetric_load"``) and ``row`` (its index there).
    load_p_kw, load_q_kvar : pandas.DataFrame or None
        The source's profiles of its loads (time index, columns = connection names), kW and kvar; None where
        the source has none (a pandapower or OpenDSS snapshot).
    sgen_p_kw : pandas.DataFrame or None
        The source's generation profiles (columns = ``sgen`` names), kW.
    notes : list of str
        What reading the source applied (switches, buses left out, assumptions).
    """

    name: str
    source: str
    net: object
    connections: pd.DataFrame
    load_p_kw: pd.DataFrame | None = None
    load_q_kvar: pd.DataFrame | None = None
    sgen_p_kw: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    source_lines: tuple = ()
    """Rows of ``net.line`` that model the source's impedance, not the feeder's cables."""

    @property
    def balanced(self) -> bool:
        """Whether every load and generator is balanced: a balanced (positive-sequence) flow describes it."""
        return not (len(self.net.asymmetric_load) or len(self.net.asymmetric_sgen))

    @property
    def connection_names(self) -> list[str]:
        return list(self.connections.index)


# --- the pieces every source shares ----------------------------------------------------------------------------
def element_name(net, table: str, row) -> str:
    name = net[table].at[row, "name"] if "name" in net[table].columns else None
    return f"{table} {row}" + (f" ({name})" if isinstance(name, str) and name else "")


def check_expressible(net, where: str) -> None:
    """Refuse, naming ``where`` and the first element, what the project's grid model cannot express.

    Raises
    ------
    FeederSourceError
    """
    for table in UNSUPPORTED_TABLES:
        if table in net and len(net[table]):
            first = element_name(net, table, net[table].index[0])
            raise FeederSourceError(f"{where}: {first}: a {table} element has no counterpart in the project's grid "
                                    "model (lines, two-winding transformers, loads and static generators at constant "
                                    "power)")
    if len(net.ext_grid) != 1:
        raise FeederSourceError(f"{where}: ext_grid: the grid model has exactly one source, found {len(net.ext_grid)}")
    for table in ("load", "asymmetric_load"):
        for column in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent",
                       "const_z_percent", "const_i_percent"):
            if column in net[table].columns:
                bad = net[table].index[net[table][column].fillna(0).abs().gt(0)]
                if len(bad):
                    raise FeederSourceError(f"{where}: {element_name(net, table, bad[0])}: {column} > 0: the grid "
                                            "model's loads are constant power (the households set them every step)")
    for table in ("asymmetric_load", "asymmetric_sgen"):
        if len(net[table]):
            bad = net[table].index[~net[table]["type"].fillna("wye").eq("wye")]
            if len(bad):
                raise FeederSourceError(f"{where}: {element_name(net, table, bad[0])}: a delta connection; the grid "
                                        "model connects loads phase to neutral (wye)")
    if len(net.trafo):
        tr = net.trafo
        moved = tr.index[(tr["tap_pos"].fillna(0) != tr["tap_neutral"].fillna(0))
                         & tr["tap_step_percent"].fillna(0).ne(0)] if "tap_pos" in tr.columns else []
        if len(moved):
            raise FeederSourceError(f"{where}: {element_name(net, 'trafo', moved[0])}: an off-neutral tap position; "
                                    "the grid model's transformers are at their rated ratio")
        if "parallel" in tr.columns and tr["parallel"].ne(1).any():
            raise FeederSourceError(f"{where}: {element_name(net, 'trafo', tr.index[tr['parallel'].ne(1)][0])}: "
                                    "parallel units; give each as its own transformer")


def resolve_switches(net, where: str) -> list[str]:
    """Apply the net's switches to its topology and drop them: the grid model has none.

    A closed line or transformer switch changes nothing. A line open at one end stays energised from the other,
    as pandapower models it: its open end moves to a bus of its own, so its charging current still flows (an MV
    cable's shifts voltages by up to 1e-3 pu; SimBench's MV grids have such open points). A line open at both
    ends, and a transformer behind an open switch, go out of service. Buses joined by a closed bus-bus switch are
    fused into one; an open bus-bus switch joins nothing.
    """
    import pandapower as pp
    import pandapower.toolbox as tb

    notes = []
    sw = net.switch
    if not len(sw):
        return notes
    opened = sw[(sw["et"] == "l") & ~sw["closed"].astype(bool)]
    ends = opened.groupby("element")["bus"].apply(lambda buses: set(buses.astype(int)))
    dead = [line for line, buses in ends.items() if len(buses) > 1]
    net.line.loc[dead, "in_service"] = False
    for line, buses in ends.items():
        if line in dead:
            continue
        (bus,) = buses
        side = "from_bus" if int(net.line.at[line, "from_bus"]) == bus else "to_bus"
        net.line.at[line, side] = pp.create_bus(net, float(net.bus.at[bus, "vn_kv"]),
                                                name=f"open end of line {net.line.at[line, 'name']}")
    if len(ends) - len(dead):
        notes.append(f"{len(ends) - len(dead)} line(s) open at one end behind open switches: energised from the "
                     "other end, each open end a bus of its own")
    if dead:
        notes.append(f"{len(dead)} line(s) out of service behind open switches at both ends")
    opened = sw[(sw["et"] == "t") & ~sw["closed"].astype(bool)]
    if len(opened):
        net.trafo.loc[opened["element"].unique(), "in_service"] = False
        notes.append(f"{len(opened['element'].unique())} trafo(s) out of service behind open switches")
    bus_switches = sw[(sw["et"] == "b") & sw["closed"].astype(bool)]
    if "z_ohm" in sw.columns:
        resistive = sw.index[sw["closed"].astype(bool) & sw["z_ohm"].fillna(0).gt(0)]
        if len(resistive):
            z_ohm = sw.at[resistive[0], "z_ohm"]
            raise FeederSourceError(f"{where}: switch {resistive[0]}: a closed switch with an impedance (z_ohm "
                                    f"{z_ohm:g}); the grid model's switches are ideal: give the impedance as a line")
    # buses joined through any chain of closed bus-bus switches form one group, fused once (fusing pair by pair
    # would lose a bus whose switch names a bus already fused away)
    parent = {int(b): int(b) for b in net.bus.index}

    def root(bus: int) -> int:
        while parent[bus] != bus:
            parent[bus] = parent[parent[bus]]
            bus = parent[bus]
        return bus

    for bus, other in zip(bus_switches["bus"].astype(int), bus_switches["element"].astype(int)):
        if bus in parent and other in parent:
            a, b = root(bus), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, set] = {}
    for bus in parent:
        groups.setdefault(root(bus), set()).add(bus)
    for keep, members in groups.items():
        if len(members) > 1:
            tb.fuse_buses(net, keep, members - {keep})
    if len(bus_switches):
        notes.append(f"{len(bus_switches)} closed bus-bus switch(es): their buses fused")
    if set(sw["et"]) - {"l", "t", "b"}:
        bad = sw.index[~sw["et"].isin(["l", "t", "b"])][0]
        raise FeederSourceError(f"{where}: switch {bad}: element type {sw.at[bad, 'et']!r} is not a line, "
                                "transformer or bus")
    net.switch = net.switch.iloc[0:0]
    return notes


def unsupplied_buses(net) -> list:
    """The buses no in-service branch connects to the source."""
    import pandapower.topology as top

    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    supplied = set(top.connected_component(graph, int(net.ext_grid["bus"].iloc[0])))
    return [b for b in net.bus.index if b not in supplied]


def drop_out_of_service(net) -> list[str]:
    """Remove out-of-service elements and the buses no energised branch reaches from the source, with what is
    connected there (the backends take every element they are given as energised); say what went."""
    import pandapower.toolbox as tb

    tb.drop_out_of_service_elements(net)
    unsupplied = unsupplied_buses(net)
    if not unsupplied:
        return []
    loads = int(net.load["bus"].isin(unsupplied).sum() + net.asymmetric_load["bus"].isin(unsupplied).sum())
    tb.drop_buses(net, unsupplied)
    return [f"{len(unsupplied)} bus(es) not supplied (open switches, out-of-service branches) left out, with "
            f"{loads} load(s) on them"]


def connections_of(net, where: str = "feeder") -> pd.DataFrame:
    """The loads of ``net`` as connection points (see :class:`Feeder`); an unnamed load is ``load <row>``."""

    def name(table: str, row, value) -> str:
        return str(value) if isinstance(value, str) and value.strip() else f"{table} {row}"

    rows = []
    for row, load in net.load.iterrows():
        rows.append((name("load", row, load["name"]), int(load["bus"]), "abc", "load", row))
    for row, load in net.asymmetric_load.iterrows():
        on = [ph for ph in PHASES if abs(load[f"p_{ph}_mw"]) > 0 or abs(load[f"q_{ph}_mvar"]) > 0]
        rows.append((name("asymmetric_load", row, load["name"]), int(load["bus"]), "".join(on) if on else "abc",
                     "asymmetric_load", row))
    table = pd.DataFrame(rows, columns=["name", "bus", "phases", "table", "row"]).set_index("name")
    duplicated = table.index[table.index.duplicated()]
    if len(duplicated):
        raise FeederSourceError(f"{where}: load {duplicated[0]!r}: two loads of the feeder have this name; households "
                                "are mapped to loads by name")
    return table


def three_phase_ready(feeder: Feeder):
    """A copy of the feeder's net a three-phase power flow takes.

    A balanced feeder (SimBench's, a balanced pandapower net) may lack zero-sequence data; its households are
    balanced connections, so no zero-sequence current flows and any zero-sequence impedance gives the same
    result: the lines get their positive-sequence values, the transformers their leakage impedance and no
    zero-sequence core path (OpenDSS's model). A feeder with single-phase connections must give its own.
    """
    import copy

    net = copy.deepcopy(feeder.net)
    line = net.line
    missing = [c for c in ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km")
               if c not in line.columns or line[c].isna().any()]
    trafo_missing = [c for c in ("vk0_percent", "vkr0_percent", "mag0_percent", "mag0_rx", "si0_hv_partial")
                     if len(net.trafo) and (c not in net.trafo.columns or net.trafo[c].isna().any())]
    if (missing or trafo_missing) and not feeder.balanced:
        raise FeederSourceError(f"{feeder.source}: {(missing or trafo_missing)[0]} missing: a feeder with single-phase "
                                "connections needs its zero-sequence data")
    for column, positive in (("r0_ohm_per_km", "r_ohm_per_km"), ("x0_ohm_per_km", "x_ohm_per_km"),
                             ("c0_nf_per_km", "c_nf_per_km")):
        if column in missing:
            line[column] = line[column].fillna(line[positive]) if column in line.columns else line[positive]
    if "g0_us_per_km" not in line.columns or line["g0_us_per_km"].isna().any():
        line["g0_us_per_km"] = line.get("g0_us_per_km", pd.Series(0.0, index=line.index)).fillna(0.0)
    tr = net.trafo
    for column, value in (("vk0_percent", tr["vk_percent"]), ("vkr0_percent", tr["vkr_percent"]),
                          ("mag0_percent", MAG0_PRACTICALLY_INFINITE_PERCENT * 1000.0), ("mag0_rx", 0.0),
                          ("si0_hv_partial", 0.9)):
        if column in trafo_missing:
            tr[column] = tr[column].fillna(value) if column in tr.columns else value
    return net

