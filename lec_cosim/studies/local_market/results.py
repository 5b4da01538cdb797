"""The results contract of a local-market run (``framework: local_market``).

Files (units in the column names; ``time`` is the ISO start of the step or market period; over a
horizon of several days the timestamps run on from day to day):

- ``orders.csv``: ``time, participant, side (buy|sell), price, quantity_kwh, accepted_kwh``; price
  in EUR/kWh. Only when the LEM is enabled (empty table otherwise).
- ``clearing.csv``: ``time, price, volume_kwh``: uniform price (EUR/kWh, empty when nothing
  traded) and traded volume of each hour.
- ``allocation.csv``: ``time, seller, buyer, energy_kwh``: the pool's bilateral allocation x_ij, its
  positive entries (sellers x buyers per hour). Only when the scenario's ``market.write_allocation``
  asks for it; by default up to :data:`ALLOCATION_DEFAULT_MAX_PARTICIPANTS` participants
  (:func:`writes_allocation`).
- ``participants.csv``: ``participant, kind (consumer|prosumer|chp), bus, phase, cost_eur,
  income_eur, profit_eur`` over the horizon; plus the horizon's ``lem_bought_kwh, lem_sold_kwh,
  grid_import_kwh, grid_export_kwh, chp_kwh``.
- ``settlement.csv``: the same money and energy per participant and hour.
- ``households.csv``: ``time, participant, bus, phase, load_kw, pv_kw, chp_kw, battery_kw, net_kw``
  per grid step (``net_kw`` = consumption - generation; no battery in this case, so 0).
- ``energy.csv``: community totals per hour: ``time, load_kwh, pv_kwh, chp_kwh, lem_bought_kwh,
  lem_sold_kwh, grid_import_kwh, grid_export_kwh``.
- ``grid.csv``: ``time, vm_min_pu, vm_max_pu, bus_violations, line_overloads, p_loss_kw,
  q_loss_kvar`` per grid step (+ ``bus_violations_reduced, angle_violations, dn_impact,
  trafo_p_kw``).
- ``summary.json``: KPIs (below), written last: its presence marks a complete directory.

KPIs: ``consumers_prosumers``, ``producers`` and ``total``, each ``{cost_eur, income_eur,
profit_eur}`` (profit = income - cost; a CHP's cost is its production cost); violation counts
summed over the grid steps (a bus outside the band in 4 quarter-hours counts 4); losses in kWh and
kvarh; ``lem_volume_kwh``; the horizon's energies; and ``fitness`` of the CHP bids that were
played (LEM runs): -mean(CHP profit) + std(CHP profit) + 1e4 x hours not cleared + the DN impact
summed over the grid steps. Every KPI covers the whole horizon (one day or many).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.adapters import read_array
from lec_cosim.files import write_text_atomic
from lec_cosim.json_codec import float_reprs
from lec_cosim.models.auction import BilateralAllocation
from lec_cosim.models.bidding import NOT_CLEARED_PENALTY
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.studies.community_battery.results import versions

ORDER_COLUMNS = ["time", "participant", "side", "price", "quantity_kwh", "accepted_kwh"]
SETTLEMENT_COLUMNS = ["lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh", "grid_export_kwh", "chp_kwh",
                      "cost_eur", "income_eur"]
ALLOCATION_COLUMNS = ["time", "seller", "buyer", "energy_kwh"]
STREAM_EVERY_PERIODS = 24
"""The recorder writes its big tables every this many market periods (a day of hours) while the run goes on."""
HOUSEHOLD_COLUMNS = ["time", "participant", "bus", "phase", "load_kw", "pv_kw", "chp_kw", "battery_kw", "net_kw"]
ALLOCATION_DEFAULT_MAX_PARTICIPANTS = 2500
"""Without ``market.write_allocation``, allocation.csv is written up to this many participants (40 copies of the
IEEE feeder are 2,440: every scenario of up to 40 copies, the former limit, keeps its file); above, the
sellers x buyers rows (~450 M a day with 10,010 households) are left out unless asked for."""
GRID_COLUMNS = ["time", "vm_min_pu", "vm_max_pu", "bus_violations", "line_overloads", "p_loss_kw", "q_loss_kvar",
                "bus_violations_reduced", "angle_violations", "dn_impact", "trafo_p_kw"]


def writes_allocation(scenario, n_participants: int) -> bool:
    """Whether a run of ``scenario`` with ``n_participants`` writes allocation.csv (``market.write_allocation``,
    by default up to :data:`ALLOCATION_DEFAULT_MAX_PARTICIPANTS` participants)."""
    asked = scenario.market.write_allocation
    return n_participants <= ALLOCATION_DEFAULT_MAX_PARTICIPANTS if asked is None else bool(asked)


def allocation_rows(factors: list[tuple[int, BilateralAllocation]]) -> dict[str, np.ndarray]:
    """The positive entries of the hours' allocations, hour by hour and seller by seller (the dense table's
    order): ``period``, ``seller``, ``buyer``, ``energy_kwh``; sellers and buyers as each allocation names them."""
    columns = {c: [] for c in ("period", "seller", "buyer", "energy_kwh")}
    for period, bilateral in factors:
        i, j, kwh = bilateral.pairs()
        columns["period"].append(np.full(len(kwh), period, dtype=np.int32))
        columns["seller"].append(np.asarray(bilateral.sellers, dtype=object)[i])
        columns["buyer"].append(np.asarray(bilateral.buyers, dtype=object)[j])
        columns["energy_kwh"].append(kwh)
    return {c: np.concatenate(v) if v else np.zeros(0, dtype=object if c in ("seller", "buyer") else float)
            for c, v in columns.items()}


_QUOTED = re.compile(r'[,"\r\n]')
"""What makes the csv module quote a field (pandas' ``to_csv`` writes through it, quoting as needed)."""


def _csv_fields(values) -> list[str] | None:
    """The CSV fields ``to_csv`` writes for one column (NaN as an empty field), or None for a column whose
    fields this does not know to be the same: only float64 (numpy's ``astype(str)``, which pandas writes, is
    Python's ``repr``: :func:`~lec_cosim.json_codec.float_reprs`), integers, and strings or ints that need no
    quotes."""
    if isinstance(getattr(values, "dtype", None), pd.api.extensions.ExtensionDtype):
        return None  # nullable integers, categoricals ...: pandas knows how it writes them (Int64's NA as "")
    values = np.asarray(values)
    if values.ndim != 1:
        return None
    kind = values.dtype.kind
    if values.dtype == np.float64:
        fields = float_reprs(values)
        for i in np.flatnonzero(np.isnan(values)).tolist():
            fields[i] = ""
        return fields
    if kind in "iu":
        return list(map(str, values.tolist()))
    if kind != "O":
        return None
    fields = values.tolist()
    try:
        distinct = set(fields)
    except TypeError:  # unhashable
        return None
    kinds = {type(x) for x in distinct}
    if kinds <= {str}:
        return None if any(_QUOTED.search(x) for x in distinct) else fields
    if kinds <= {int}:
        return list(map(str, fields))
    return None


def csv_rows(table, columns: list[str]) -> str | None:
    """The rows ``table[columns].to_csv(index=False, header=False)`` writes, as one string, built here from the
    columns (several times faster); None where pandas has to write them (:func:`_csv_fields`). ``table``: a frame
    or a mapping of column names to 1-D arrays of one length."""
    if len(columns) < 2:  # a lone empty field would be quoted
        return None
    fields = []
    for column in columns:
        column_fields = _csv_fields(table[column])
        if column_fields is None:
            return None
        fields.append(column_fields)
    if not fields[0]:
        return ""
    return os.linesep.join(map(",".join, zip(*fields))) + os.linesep


def _write_csv(file, table, columns: list[str], *, header: bool) -> None:
    """``table[columns]`` as CSV into an open text file, the bytes of pandas' ``to_csv(index=False)``."""
    text = csv_rows(table, columns)
    if text is None or (header and any(_QUOTED.search(c) for c in columns)):
        frame = table[columns] if isinstance(table, pd.DataFrame) else pd.DataFrame({c: table[c] for c in columns})
        frame.to_csv(file, index=False, header=header)
        return
    file.write((",".join(columns) + os.linesep if header else "") + text)


def _write_csv_atomic(path: Path, frame: pd.DataFrame) -> None:
    """``frame`` as CSV, streamed to a ``.partial`` file and renamed (a year's households.csv is ~2 M rows)."""
    tmp = path.with_name(path.name + ".partial")
    columns = list(frame.columns)
    if all(type(c) is str for c in columns) and len(set(columns)) == len(columns):
        with tmp.open("w", newline="", encoding="utf-8") as file:  # as to_csv(path) opens it
            _write_csv(file, frame, columns, header=True)
    else:
        frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _money(frame: pd.DataFrame) -> dict:
    cost, income = float(frame["cost_eur"].sum()), float(frame["income_eur"].sum())
    return {"cost_eur": cost, "income_eur": income, "profit_eur": income - cost}


def not_cleared_hours(orders: pd.DataFrame, clearing: pd.DataFrame) -> int:
    """Hours with demand in the book but nothing traded."""
    if orders.empty:
        return 0
    demand = orders[orders["side"] == "buy"].groupby("time")["quantity_kwh"].sum()
    volume = clearing.set_index("time")["volume_kwh"]
    return int(((demand > 0) & ~(volume.reindex(demand.index).fillna(0.0) > 0)).sum())


def lem_kpis(participants: pd.DataFrame, energy: pd.DataFrame, grid: pd.DataFrame, orders: pd.DataFrame,
             clearing: pd.DataFrame, grid_step_h: float, lem_enabled: bool) -> dict:
    households = participants[participants["kind"] != "chp"]
    chp = participants[participants["kind"] == "chp"]
    kpis = {
        "consumers_prosumers": _money(households),
        "producers": _money(chp),
        "total": _money(participants),
        "bus_violations": int(grid["bus_violations"].sum()),
        "bus_violations_reduced": int(grid["bus_violations_reduced"].sum()),
        "violated_buses": int(grid["violated_buses_so_far"].iloc[-1]),
        "violated_buses_reduced": int(grid["violated_buses_so_far_reduced"].iloc[-1]),
        "angle_violations": int(grid["angle_violations"].sum()),
        "line_overloads": int(grid["line_overloads"].sum()),
        "losses_kwh": float(grid["p_loss_kw"].sum() * grid_step_h),
        "losses_kvarh": float(grid["q_loss_kvar"].sum() * grid_step_h),
        "dn_impact": float(grid["dn_impact"].sum()),
        "lem_volume_kwh": float(clearing["volume_kwh"].sum()) if len(clearing) else 0.0,
        "vm_min_pu": float(grid["vm_min_pu"].min()),
        "vm_max_pu": float(grid["vm_max_pu"].max()),
    }
    for column in ("load_kwh", "pv_kwh", "chp_kwh", "grid_import_kwh", "grid_export_kwh"):
        kpis[column] = float(energy[column].sum())
    if lem_enabled:
        profit = (chp["income_eur"] - chp["cost_eur"]).to_numpy()
        nc = not_cleared_hours(orders, clearing)
        kpis["not_cleared_hours"] = nc
        kpis["fitness"] = float(-profit.mean() + profit.std() + NOT_CLEARED_PENALTY * nc + kpis["dn_impact"])
    return kpis


def write_lem_arrays(out_dir: Path, scenario, community, *, steps: np.ndarray, participants: list[str],
                     physical: dict[str, np.ndarray], money: dict[str, np.ndarray], price: np.ndarray,
                     volume: np.ndarray, orders: pd.DataFrame, allocation: pd.DataFrame | None,
                     grid: dict[str, np.ndarray], wall_time_s: float, streamed: dict[str, Path] | None = None) -> dict:
    """Write a local-market run kept as arrays (the recorder's, the one-loop benchmark's); returns the summary.

    Parameters
    ----------
    steps : numpy.ndarray of str
        The ISO time of every grid step; every ``community.steps_per_period``-th starts a market period.
    participants : list of str
        The participants in the column order of the arrays.
    physical : dict
        ``load_kw``, ``pv_kw``, ``chp_kw`` and ``net_kw``, each (grid steps, participants).
    money : dict
        :data:`SETTLEMENT_COLUMNS` arrays, each (market periods, participants).
    price, volume : numpy.ndarray
        The pool's clearing price (EUR/kWh, NaN where nothing cleared) and volume (kWh) per period.
    orders, allocation : pandas.DataFrame
        The books, as ``orders.csv`` and ``allocation.csv`` hold them; ``allocation`` None: no allocation.csv.
    grid : dict
        The DSO's values per grid step (:data:`GRID_COLUMNS` but ``time``).
    """
    hours = steps[:: community.steps_per_period]
    if streamed and "households.csv" in streamed:  # written already: only the columns the energy table sums
        households = pd.DataFrame({v: physical[v].ravel() for v in ("load_kw", "pv_kw")})
    else:
        households = households_frame(steps, participants, community.table.set_index("participant").loc[participants],
                                      physical)
    settlement = settlement_frame(hours, participants, money)
    clearing = (pd.DataFrame({"time": hours, "price": price, "volume_kwh": volume}) if scenario.market.enabled
                else pd.DataFrame(columns=["time", "price", "volume_kwh"]))
    return write_lem_results(out_dir, scenario, table=community.table, households=households, settlement=settlement,
                             orders=orders, clearing=clearing, allocation=allocation,
                             grid=pd.DataFrame({"time": steps, **grid}), wall_time_s=wall_time_s,
                             load_scale=community.load_scale, streamed=streamed)


def households_frame(steps: np.ndarray, participants: list[str], table: pd.DataFrame,
                     physical: dict[str, np.ndarray]) -> pd.DataFrame:
    """households.csv's rows of ``steps`` (ISO times): ``physical`` arrays (steps, participants); ``table`` the
    participants' bus and phase, indexed by participant in the arrays' order."""
    return pd.DataFrame(households_columns(steps, participants, table, physical))


def households_columns(steps: np.ndarray, participants: list[str], table: pd.DataFrame,
                       physical: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`households_frame`'s columns, without the frame (what a :class:`CsvStream` writes)."""
    n, n_steps = len(participants), len(steps)
    names = np.array(participants, dtype=object)
    return {
        "time": np.repeat(steps, n), "participant": np.tile(names, n_steps),
        "bus": np.tile(table["bus"].to_numpy(), n_steps), "phase": np.tile(table["phase"].to_numpy(), n_steps),
        **{v: physical[v].ravel() for v in ("load_kw", "pv_kw", "chp_kw")}, "battery_kw": np.zeros(n * n_steps),
        "net_kw": physical["net_kw"].ravel()}


def settlement_frame(hours: np.ndarray, participants: list[str], money: dict[str, np.ndarray]) -> pd.DataFrame:
    """settlement.csv's rows of ``hours`` (ISO times): ``money`` arrays (hours, participants)."""
    return pd.DataFrame(settlement_columns(hours, participants, money))


def settlement_columns(hours: np.ndarray, participants: list[str], money: dict[str, np.ndarray]) -> dict:
    """:func:`settlement_frame`'s columns, without the frame."""
    n = len(participants)
    names = np.array(participants, dtype=object)
    return {"time": np.repeat(hours, n), "participant": np.tile(names, len(hours)),
            **{v: money[v].ravel() for v in SETTLEMENT_COLUMNS}}


class CsvStream:
    """A results table written a chunk at a time while the run goes on, into ``NAME.partial`` (renamed by
    :func:`write_lem_results` at the end, as every table is written): a chunk's rows are the bytes the whole
    table's ``to_csv`` gives them, so the file is the same as written at once."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns = Path(path), columns
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._file = self.partial.open("w", newline="", encoding="utf-8")  # as to_csv(path) writes
        pd.DataFrame(columns=columns).to_csv(self._file, index=False)  # the header, as an empty table writes it

    def append(self, table) -> None:
        """Write the rows of ``table``: a frame, or a mapping of (at least) the stream's columns to 1-D arrays."""
        if len(table[self.columns[0]]):
            _write_csv(self._file, table, self.columns, header=False)

    def close(self) -> Path:
        self._file.close()
        return self.partial


def write_lem_results(out_dir: Path, scenario, *, table: pd.DataFrame, households: pd.DataFrame,
                      settlement: pd.DataFrame, orders: pd.DataFrame, clearing: pd.DataFrame,
                      allocation: pd.DataFrame | None, grid: pd.DataFrame, wall_time_s: float,
                      load_scale: float = 1.0, streamed: dict[str, Path] | None = None) -> dict:
    """Write every contract file of a local-market run; returns the summary.

    ``table`` is the participants' table (participant, kind, bus, phase); ``settlement`` has one
    row per participant and hour (``time, participant`` + :data:`SETTLEMENT_COLUMNS`); ``allocation``
    None leaves allocation.csv out (not asked for: :func:`writes_allocation`). ``streamed``: tables already
    written while the run went on (file name -> its complete ``.partial`` file, :class:`CsvStream`), renamed
    into place instead of written again.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    totals = settlement.groupby("participant", sort=False)[SETTLEMENT_COLUMNS].sum()
    participants = table[["participant", "kind", "bus", "phase"]].merge(totals, left_on="participant",
                                                                        right_index=True)
    participants["profit_eur"] = participants["income_eur"] - participants["cost_eur"]
    participants = participants[["participant", "kind", "bus", "phase", "cost_eur", "income_eur", "profit_eur",
                                 "lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh", "grid_export_kwh", "chp_kwh"]]
    steps_per_hour = int(round(1.0 / (scenario.grid_step_s / 3600.0)))
    # households: one row per participant and grid step, in time order (grouped by hour without a copy)
    hour = np.arange(len(households)) // (len(table) * steps_per_hour)
    physical = households.groupby(hour)[["load_kw", "pv_kw"]].sum() / steps_per_hour
    money = settlement.groupby("time", sort=False)[SETTLEMENT_COLUMNS].sum()
    energy = pd.DataFrame({
        "time": money.index,
        "load_kwh": physical["load_kw"].to_numpy(),
        "pv_kwh": physical["pv_kw"].to_numpy(),
        "chp_kwh": money["chp_kwh"].to_numpy(),
        "lem_bought_kwh": money["lem_bought_kwh"].to_numpy(),
        "lem_sold_kwh": money["lem_sold_kwh"].to_numpy(),
        "grid_import_kwh": money["grid_import_kwh"].to_numpy(),
        "grid_export_kwh": money["grid_export_kwh"].to_numpy(),
    })
    files = {  # each table's columns taken only if it is written here (a streamed one is renamed into place)
        "orders.csv": lambda: orders.reindex(columns=ORDER_COLUMNS),
        "clearing.csv": lambda: clearing[["time", "price", "volume_kwh"]],
        **({} if allocation is None else {"allocation.csv": lambda: allocation.reindex(columns=ALLOCATION_COLUMNS)}),
        "participants.csv": lambda: participants,
        "settlement.csv": lambda: settlement[["time", "participant", *SETTLEMENT_COLUMNS]],
        "households.csv": lambda: households[HOUSEHOLD_COLUMNS],
        "energy.csv": lambda: energy,
        "grid.csv": lambda: grid[GRID_COLUMNS + ["violated_buses_so_far", "violated_buses_so_far_reduced"]],
    }
    for name, frame in files.items():
        if streamed and name in streamed:
            os.replace(streamed[name], out_dir / name)
        else:
            _write_csv_atomic(out_dir / name, frame())
    summary = {
        "kind": scenario.kind,
        "scenario": scenario.name,
        "framework": scenario.framework,
        "lem_enabled": scenario.market.enabled,
        "tariff_scheme": scenario.market.tariff_scheme,
        "chp_strategy": scenario.market.chp_strategy if scenario.market.enabled else None,
        "currency": "EUR",
        "start": scenario.start.isoformat(),
        "horizon_h": scenario.horizon_h,
        "grid_step_h": scenario.grid_step_s / 3600.0,
        "market_step_h": scenario.market_step_s / 3600.0,
        "market_solver": scenario.market.solver,
        "load_scale": load_scale,
        "kpis": lem_kpis(participants, energy, grid, orders, clearing, scenario.grid_step_s / 3600.0,
                         scenario.market.enabled),
        "wall_time_s": wall_time_s,
        "versions": versions("glpk" if scenario.market.solver == "glpk" else "highs"),
    }
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


PHYSICAL = ("load_kw", "pv_kw", "chp_kw", "net_kw")
"""The participant vectors households.csv keeps (not load_kvar)."""


class LocalMarketRecord:
    """The local market's record for the recorder component: every file of the contract above.

    Runs last in each exchange (every grid step, or every hour with the grid steps as vectors): it
    reads the participant groups' injections (settings ``groups``: group -> players; group ``g``'s
    vector ``v`` at the input port ``g/v``, the grid steps of the exchange step-major) and, at each
    hour's first step, their settlement and the market's book (a message at the endpoint port
    ``book``; with settings ``periods_per_exchange`` P > 1, at each exchange's first step the P periods'
    settlement, period-major, and their books in one message), then the DSO's values at the ports ``grid/<value>`` (those named in settings
    ``grid_counts`` are counts). Everything is preallocated: a year at 15 min is 35,136 steps x 61
    participants; no per-step rows or frames.
    """

    def __init__(self, scenario, settings: dict):
        s = self.scenario = scenario
        self.community = community = community_from_scenario(s)
        group_members: dict[str, list[str]] = settings["groups"]
        self.order = [m for members in group_members.values() for m in members]
        self.steps_per_period = community.steps_per_period
        self.block = block = int(settings.get("block_steps", 1))  # grid steps per exchange
        self.periods = int(settings.get("periods_per_exchange", 1))  # market periods per exchange
        n_exchanges = int(round(s.end_s / (s.grid_step_s * block)))
        self.step_times = [k * s.grid_step_s for k in range(n_exchanges * block)]
        n_steps, n = len(self.step_times), len(self.order)
        n_periods = -(-n_steps // self.steps_per_period)
        self.market = s.market.enabled
        self.physical = {v: np.zeros((n_steps, n)) for v in PHYSICAL}
        self.money = {v: np.zeros((n_periods, n)) for v in SETTLEMENT_COLUMNS}
        self.physical_ports = {v: [f"{g}/{v}" for g in group_members] for v in PHYSICAL}
        self.money_ports = {v: [f"{g}/{v}" for g in group_members] for v in SETTLEMENT_COLUMNS}
        self.counts = set(settings.get("grid_counts", ()))
        self.grid_ports: dict[str, str] = {}  # the DSO's value -> its port, in the plan's order (at the first step)
        self.grid: dict[str, np.ndarray] = {}
        self.n_steps = n_steps
        self.price = np.full(n_periods, math.nan)
        self.volume = np.zeros(n_periods)
        # The market's books, one small array per hour and column; participants as indices into ``names``.
        self.names = list(self.order)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.books = {c: [] for c in ("period", "participant", "buy", "price", "quantity_kwh", "accepted_kwh")}
        # the allocations as their factors (sellers and buyers as indices into ``names``), one per hour
        self.write_allocation = writes_allocation(s, n)
        self.allocations: list[tuple[int, BilateralAllocation]] = []
        # The big tables (a year: households.csv 2.1 M rows, allocation.csv 4 M) are written a day at a time while
        # the run goes on: the recorder waits for the DSO most of the time, and written at the end they took 28 s
        # after the year's last step. Only with an output folder (the recorder's settings), only for runs of more
        # than a day.
        start = s.start
        self.steps_iso = np.array([(start + dt.timedelta(seconds=t)).isoformat() for t in self.step_times],
                                  dtype=object)
        self.hours_iso = self.steps_iso[::self.steps_per_period]
        self.table = community.table.set_index("participant").loc[self.order]
        output_dir = settings.get("output_dir")
        self.streams: dict[str, CsvStream] = {}
        if output_dir is not None and n_periods > STREAM_EVERY_PERIODS:
            out = Path(output_dir)
            self.streams = {
                "households.csv": CsvStream(out / "households.csv", HOUSEHOLD_COLUMNS),
                "settlement.csv": CsvStream(out / "settlement.csv", ["time", "participant", *SETTLEMENT_COLUMNS]),
                **({"orders.csv": CsvStream(out / "orders.csv", ORDER_COLUMNS)} if self.market else {}),
                **({"allocation.csv": CsvStream(out / "allocation.csv", ALLOCATION_COLUMNS)}
                   if self.market and self.write_allocation else {})}
        self.streamed_periods = 0  # periods whose rows are in the streams
        self.streamed_books = 0  # hours of the books' lists written
        self.streamed_allocations = 0

    def _grid_columns(self, inputs) -> None:
        """The DSO's values: every input port ``grid/<value>``, doubles then counts as the plan lists them."""
        for port in inputs.ports:
            if port.startswith("grid/"):
                value = port[len("grid/"):]
                self.grid_ports[value] = port
                self.grid[value] = (np.zeros(self.n_steps, dtype=np.int64) if value in self.counts
                                    else np.zeros(self.n_steps))

    def _code(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.index[name]

    def _gather(self, inputs, ports: list[str]) -> np.ndarray:
        """(block, participants): each group publishes its members' values step by step."""
        return np.hstack([np.reshape(read_array(inputs, port), (self.block, -1)) for port in ports])

    def _grid_values(self, inputs, value: str) -> np.ndarray:
        if self.block == 1:
            return np.array([inputs.read(self.grid_ports[value])])
        values = read_array(inputs, self.grid_ports[value])
        if len(values) != self.block:
            raise RuntimeError(f"{self.grid_ports[value]}: {len(values)} values for a block of {self.block} grid "
                               "steps")
        return values

    def add(self, b: int, t_s: float, inputs) -> None:
        if not self.grid_ports:
            self._grid_columns(inputs)
        first = b * self.block
        for v, ports in self.physical_ports.items():
            self.physical[v][first:first + self.block] = self._gather(inputs, ports)
        for k in range(first, first + self.block):
            self._record(k, inputs)
        complete = (first + self.block) // self.steps_per_period  # periods whose every step is recorded
        if self.streams and complete - self.streamed_periods >= STREAM_EVERY_PERIODS:
            self._stream(complete)

    def _stream(self, periods: int) -> None:
        """Append the rows of the periods recorded since the last call, up to ``periods``, to the streams."""
        p0, spp = self.streamed_periods, self.steps_per_period
        steps = slice(p0 * spp, periods * spp)
        streams = self.streams
        streams["households.csv"].append(households_columns(
            self.steps_iso[steps], self.order, self.table, {v: self.physical[v][steps] for v in PHYSICAL}))
        streams["settlement.csv"].append(settlement_columns(
            self.hours_iso[p0:periods], self.order, {v: self.money[v][p0:periods] for v in SETTLEMENT_COLUMNS}))
        if "orders.csv" in streams:
            streams["orders.csv"].append(self._order_columns({c: v[self.streamed_books:]
                                                              for c, v in self.books.items()}))
            self.streamed_books = len(self.books["period"])
        if "allocation.csv" in streams:
            streams["allocation.csv"].append(self._allocation_columns(self.allocations[self.streamed_allocations:]))
            self.streamed_allocations = len(self.allocations)
        self.streamed_periods = periods

    def _orders(self, chunks: dict) -> pd.DataFrame:
        """orders.csv's rows of the books' hours in ``chunks``."""
        return pd.DataFrame(self._order_columns(chunks), columns=ORDER_COLUMNS)

    def _order_columns(self, chunks: dict) -> dict[str, np.ndarray]:
        """:meth:`_orders`' columns, without the frame."""
        book = self._joined(chunks, self.hours_iso)
        book["side"] = np.where(book.pop("buy").astype(bool), "buy", "sell").astype(object)
        return book

    def _allocation(self, allocations: list) -> pd.DataFrame:
        """allocation.csv's rows of ``allocations`` (hours' factors)."""
        return pd.DataFrame(self._allocation_columns(allocations), columns=ALLOCATION_COLUMNS)

    def _allocation_columns(self, allocations: list) -> dict[str, np.ndarray]:
        """:meth:`_allocation`'s columns, without the frame."""
        rows = allocation_rows(allocations)  # sellers and buyers as indices into ``names``
        return self._joined({c: [v.astype(int) if c in ("seller", "buyer") else v] for c, v in rows.items()},
                            self.hours_iso)

    def _record(self, k: int, inputs) -> None:
        periods = self.periods
        if k % (self.steps_per_period * periods) == 0:  # an exchange's first step: its periods' settlement
            period = k // self.steps_per_period
            for v, ports in self.money_ports.items():  # each group's vector: the periods' values, period-major
                self.money[v][period:period + periods] = np.hstack([
                    np.reshape(read_array(inputs, port), (periods, -1)) for port in ports])
            if self.market:
                messages = inputs.receive("book")
                if periods == 1:
                    self._book(period, messages)
                else:
                    hours = list(range(period, period + periods))
                    if len(messages) != 1 or messages[0][1].get("periods") != hours:
                        raise RuntimeError(f"expected the market's books of hours {hours[0]}-{hours[-1]} in one "
                                           f"message, got {len(messages)} messages")
                    self._books(hours, messages[0][1])
        if k % self.block == 0:
            for value, column in self.grid.items():
                if value in self.counts:
                    column[k:k + self.block] = np.rint(self._grid_values(inputs, value)).astype(np.int64)
                else:
                    column[k:k + self.block] = self._grid_values(inputs, value)

    def _book(self, period: int, messages: list) -> None:
        """One period's book (its rows as dicts): taken as a one-period bundle of :meth:`_books`."""
        if len(messages) != 1 or messages[0][1]["period"] != period:
            raise RuntimeError(f"expected the market's book of hour {period}, got {len(messages)} messages")
        book = messages[0][1]
        rows = book["orders"]
        self._books([period], {
            "price_eur_per_kwh": [book["price_eur_per_kwh"]], "volume_kwh": [book["volume_kwh"]],
            "orders": {"period": [period] * len(rows),
                       **{key: [o[key] for o in rows] for key in ("participant", "side", "price_eur_per_kwh",
                                                                   "quantity_kwh", "accepted_kwh")}},
            "allocation": [book.get("allocation")]})

    def _books(self, hours: list[int], bundle: dict) -> None:
        """Several periods' books in one message, as columns (federates/lem_market.py, ``periods_per_step``)."""
        for h, (price, volume) in enumerate(zip(bundle["price_eur_per_kwh"], bundle["volume_kwh"], strict=True)):
            if price is not None:
                self.price[hours[h]] = price
            self.volume[hours[h]] = volume
        columns, books, code = bundle["orders"], self.books, self._code
        period = np.array(columns["period"], dtype=np.int32)
        if len(period) and not (period.min() >= hours[0] and period.max() <= hours[-1]):
            raise RuntimeError(f"the market's books of hours {hours[0]}-{hours[-1]} hold rows of other hours")
        books["period"].append(period)
        books["participant"].append(np.array([code(name) for name in columns["participant"]], dtype=np.int32))
        books["buy"].append(np.array([side == "buy" for side in columns["side"]], dtype=bool))
        for c, key in (("price", "price_eur_per_kwh"), ("quantity_kwh", "quantity_kwh"),
                       ("accepted_kwh", "accepted_kwh")):
            books[c].append(np.array(columns[key], dtype=float))
        if self.write_allocation:
            for hour, factors in zip(hours, bundle["allocation"], strict=True):
                self.allocations.append((hour, BilateralAllocation(
                    [code(name) for name in factors["sellers"]], [code(name) for name in factors["buyers"]],
                    factors["sold_kwh"], factors["bought_kwh"], factors["volume_kwh"])))

    def _joined(self, chunks: dict, hours: np.ndarray) -> dict[str, np.ndarray]:
        """The books' columns over all hours; ``period`` becomes ``time``, indices become names."""
        columns = {c: np.concatenate(v) if v else np.zeros(0) for c, v in chunks.items()}
        all_names = np.array(self.names, dtype=object)
        out = {"time": hours[columns.pop("period").astype(int)]}
        for c, values in columns.items():
            out[c] = all_names[values.astype(int)] if c in ("participant", "seller", "buyer") else values
        return out

    def write(self, output_dir: Path, wall_time_s: float, replies=None) -> dict:
        streamed = {}
        if self.streams:
            if Path(output_dir).resolve() != self.streams["households.csv"].path.parent.resolve():
                raise RuntimeError(f"results asked in {output_dir}, streamed into "
                                   f"{self.streams['households.csv'].path.parent}")
            self._stream(len(self.hours_iso))
            streamed = {name: stream.close() for name, stream in self.streams.items()}
        orders = self._orders(self.books)
        allocation = None
        if self.write_allocation:  # the table itself only if not streamed: nothing else reads it
            allocation = (pd.DataFrame(columns=ALLOCATION_COLUMNS) if "allocation.csv" in streamed
                          else self._allocation(self.allocations))
        return write_lem_arrays(output_dir, self.scenario, self.community, steps=self.steps_iso,
                                participants=self.order, physical=self.physical, money=self.money, price=self.price,
                                volume=self.volume, orders=orders, allocation=allocation, grid=self.grid,
                                wall_time_s=wall_time_s, streamed=streamed)
