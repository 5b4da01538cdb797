"""Shared parts of the local-market benchmarks: a measured federation run and the same models in one loop.

* :func:`run_measured` runs a scenario's federation exactly as ``lec-cosim run`` does (generated runner,
  real ``helics_broker`` and federate processes) and samples the resident memory of all its processes.
* :func:`run_monolithic` runs the same models in one Python loop, no HELICS and no processes: for
  every hour the participants' orders (:func:`~lec_cosim.models.lem_community.period_orders`), the
  auction, the settlement, then the power flow of every grid step, and the same results writer as
  the recorder. Its ``summary.json`` KPIs must equal the federation's: that is checked by the
  benchmarks, so the two measure the same work.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lec_cosim.federation import write_federation
from lec_cosim.forkserver import run_environment, start_spare
from lec_cosim.launch import run_federation
from lec_cosim.models.auction import clear_double_auction
from lec_cosim.models.grid_cache import lem_grid
from lec_cosim.models.lem_community import (
    community_from_scenario,
    period_orders,
    read_learned_bids,
    settle_members,
    truthful_bids,
)
from lec_cosim.models.lem_orders import household_orders
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.results import (
    allocation_rows,
    write_lem_arrays,
    writes_allocation,
)
from lec_cosim.studies.local_market.wiring import (
    DSO_COUNTS,
    DSO_DAY_COUNTS,
    DSO_DOUBLES,
    SETTLEMENT_VECTORS,
    block_steps,
)


class MemorySampler:
    """Peak of the summed resident memory of the processes whose command line mentions ``marker``."""

    def __init__(self, marker: str, every_s: float = 0.2):
        self.marker = marker
        self.every_s = every_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.is_set():
            total = 0.0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if self.marker.encode() not in cmdline:
                        continue
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page_mb
                except (OSError, ValueError, IndexError):
                    continue
            self.peak_mb = max(self.peak_mb, total)
            self._stop.wait(self.every_s)


@dataclass
class FederationRun:
    wall_s: float
    peak_mb: float
    kpis: dict
    federate_lines: list[str]
    federates: int
    run_dir: Path
    started_unix_s: float = math.nan
    """When the launcher was called (Unix seconds): the federation's start-up counts from here."""

    def startup_s(self) -> float:
        """From the launcher's call until every federate is in executing mode (the fork server's imports, each
        process's start and its model build included), from ``timing/<federate>.json``'s executing times."""
        executing = [json.loads(path.read_text()).get("executing_unix_s")
                     for path in (self.run_dir / "timing").glob("*.json")]
        if not executing or any(t is None for t in executing):
            return math.nan
        return max(executing) - self.started_unix_s

    def seconds(self, what: str) -> dict[str, float]:
        """Per federate, the seconds its closing log line gives for ``what`` ("working", "stepping", ...)."""
        out = {}
        for line in self.federate_lines:
            name, rest = line.split(": ", 1)
            for part in rest.split(", "):
                if part.endswith(f" s {what}") or part.endswith(f" s {what} for grants"):
                    out[name] = float(part.split(" ")[0])
        return out


def run_measured(scenario_path: Path, run_dir: Path, *, libraries_loaded: bool = False) -> FederationRun:
    """Run the federation of ``scenario_path`` into ``run_dir``; wall time, peak memory, KPIs, log lines.

    The fork server is started as the clock starts, with the launcher's call: its imports are counted in full
    (``lec-cosim run`` starts it before its own imports, and hides them behind those). ``libraries_loaded``: the
    server is started and has imported what it preloads (HELICS, numpy, pandas, scipy.sparse, the schema) before the
    clock starts, as a comparison's other engine is imported before its clock."""
    scenario = load_scenario(scenario_path)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    write_federation(scenario, run_dir)
    entries = json.loads((run_dir / "runner.json").read_text())["federates"]
    n_federates = sum("broker" not in entry["name"] for entry in entries)
    # every federate is started with its config file in run_dir, so run_dir marks the processes
    if libraries_loaded:
        start_spare(run_environment(), wait=True)
    with MemorySampler(str(run_dir)) as memory:
        start, started_unix = time.perf_counter(), time.time()
        start_spare(run_environment())  # (none new when one is waiting)
        run_federation(run_dir)
        wall = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = []
    for log in sorted((run_dir / "logs").glob("*.log")):
        lines += [line for line in log.read_text().splitlines() if " slots, " in line]
    return FederationRun(wall, memory.peak_mb, summary["kpis"], lines, n_federates, run_dir, started_unix)


def run_monolithic(scenario_path: Path, out_dir: Path) -> tuple[float, dict]:
    """The federation's models in one loop; returns (seconds, KPIs). Writes the same results files.

    The grid steps go to the grid as the DSO federate hands them over: an exchange's block at a time
    (``resolution.exchange``: a day's, an hour's or one step), through ``LemGrid.solve_block``."""
    start = time.perf_counter()
    s = load_scenario(scenario_path)
    community = community_from_scenario(s)
    g = s.grid
    # built as the DSO federate builds it: the fixed-point grid compiled in the cache (lec_cosim.models.grid_cache)
    grid = lem_grid(feeder=None, table=community.table, data_dir=s.feeder.data_dir, vm_min_pu=g.vm_min_pu,
                   vm_max_pu=g.vm_max_pu,
                   max_loading_percent=g.max_loading_percent, va_max_deviation_degree=g.va_max_deviation_degree,
                   violation_model=g.dn_impact_counts, step_h=s.grid_step_s / 3600.0, solver=g.solver,
                   source_strength=s.feeder.source_strength)
    names = list(community.names)
    n = len(names)
    kinds, chp_cap = community.kinds, community.chp_kw
    load_kwh, pv_kwh = community.load_kwh, community.pv_kwh
    lem, scheme, b = s.market.enabled, s.market.tariff_scheme, community.b_eur_per_kwh
    bids = {}
    if lem:
        bids = (read_learned_bids(s.market.learned_bids_file, community, scheme)
                if s.market.chp_strategy == "aco" else truthful_bids(community))
    per = community.steps_per_period
    n_periods, n_steps = community.n_periods, community.n_periods * per
    # each kind's rows of the community's arrays in the grid's order, and the federation's grid steps per exchange
    row = {name: j for j, name in enumerate(names)}
    hh_rows, pv_rows, chp_rows = ([row[n] for n in grid_names] for grid_names in (
        grid.household_names, grid.prosumer_names, grid.chp_names))
    block = block_steps(s)

    money = {v: np.zeros((n_periods, n)) for v in SETTLEMENT_VECTORS}
    chp_kw = np.zeros((n_steps, n))
    grid_doubles = {v: np.zeros(n_steps) for v in DSO_DOUBLES}
    grid_counts = {v: np.zeros(n_steps, dtype=np.int64) for v in DSO_COUNTS + DSO_DAY_COUNTS}
    price, volume = np.full(n_periods, math.nan), np.zeros(n_periods)
    order_rows, deals = [], []
    with_allocation = writes_allocation(s, n)
    # the players' orders and settlement as the participant federates make them: the households by their rule all at
    # once, the CHPs one by one, the settlement of all players of an hour at once
    households = [j for j in range(n) if kinds[j] != "chp"]
    hh_names, hh_kinds = [names[j] for j in households], kinds[households]
    position = {name: j for j, name in enumerate(names)}
    reduced = np.asarray(grid.bus_in_reduced, dtype=bool)
    violated_so_far = np.zeros(len(grid.lv_buses), dtype=bool)
    period_h = s.market_step_s / 3600.0
    solved = 0  # grid steps solved
    for p in range(n_periods):
        hour = p % 24
        orders = []
        bought, sold = np.zeros(n), np.zeros(n)
        result = None
        if lem:
            by_rule = dict(zip(hh_names, household_orders(hh_names, hh_kinds, load_kwh[households, p],
                                                          pv_kwh[households, p], hour, scheme)))
            for j, name in enumerate(names):
                orders += (by_rule[name] if name in by_rule else
                           period_orders(kinds[j], name, load_kwh[j, p], pv_kwh[j, p], chp_cap[j], hour, scheme,
                                         bids[name][p], b))
            result = clear_double_auction(orders, solver=s.market.solver)
            if result.price_eur_per_kwh is not None:
                price[p] = result.price_eur_per_kwh
            volume[p] = result.volume_kwh
            for o, a in zip(orders, result.accepted_kwh.tolist()):
                (bought if o.side == "buy" else sold)[position[o.participant]] += a
                order_rows.append((p, o.participant, o.side, o.price_eur_per_kwh, o.quantity_kwh, a))
            if with_allocation:
                deals.append((p, result.bilateral))
        st = settle_members(kinds, load_kwh[:, p], pv_kwh[:, p], chp_cap, hour=hour, scheme=scheme, lem_enabled=lem,
                            price_eur_per_kwh=result.price_eur_per_kwh if lem else None, bought_kwh=bought,
                            sold_kwh=sold, b_eur_per_kwh=b)
        for v in SETTLEMENT_VECTORS:
            money[v][p] = st[v]
        chp_kw[p * per:(p + 1) * per] = st["chp_kwh"] / period_h
        # each exchange's grid steps whose injections are known in one call, as the DSO federate solves them
        # (LemGrid.solve_block): a day's, an hour's, or each step alone
        while solved + block <= (p + 1) * per:
            steps = slice(solved, solved + block)
            solved += block
            flows = grid.solve_block(community.load_kw[hh_rows, steps].T, community.load_kvar[hh_rows, steps].T,
                                     community.pv_kw[pv_rows, steps].T, chp_kw[steps][:, chp_rows])
            for v in DSO_DOUBLES:
                grid_doubles[v][steps] = getattr(flows, v)
            for v in DSO_COUNTS:
                grid_counts[v][steps] = getattr(flows, v)
            so_far = flows.violated_so_far(violated_so_far)  # (step, bus), as the DSO counts them
            violated_so_far = so_far[-1].copy()
            grid_counts["violated_buses_so_far"][steps] = so_far.sum(axis=1)
            grid_counts["violated_buses_so_far_reduced"][steps] = (so_far & reduced).sum(axis=1)

    stamps = np.array([(s.start + pd.Timedelta(seconds=k * s.grid_step_s)).isoformat() for k in range(n_steps)],
                      dtype=object)
    hours = stamps[::per]
    load_kw, pv_kw = community.load_kw.T, community.pv_kw.T
    physical = {"load_kw": load_kw, "pv_kw": pv_kw, "chp_kw": chp_kw, "net_kw": load_kw - pv_kw - chp_kw}
    orders = pd.DataFrame(order_rows, columns=["period", "participant", "side", "price", "quantity_kwh",
                                               "accepted_kwh"])
    orders.insert(0, "time", hours[orders.pop("period").to_numpy(dtype=int)] if len(orders) else [])
    allocation = None
    if with_allocation:
        allocation = pd.DataFrame(allocation_rows(deals), columns=["period", "seller", "buyer", "energy_kwh"])
        allocation.insert(0, "time", hours[allocation.pop("period").to_numpy(dtype=int)])
    summary = write_lem_arrays(out_dir, s, community, steps=stamps, participants=names, physical=physical,
                               money=money, price=price, volume=volume, orders=orders, allocation=allocation,
                               grid={**grid_doubles, **grid_counts}, wall_time_s=time.perf_counter() - start)
    return time.perf_counter() - start, summary["kpis"]


def kpi_difference(a: dict, b: dict, path: str = "") -> float:
    """Largest relative difference between two nested KPI dictionaries (numbers only)."""
    worst = 0.0
    for key in a:
        x, y = a[key], b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            worst = max(worst, kpi_difference(x, y, f"{path}{key}."))
        elif "wall_time" in key:  # not a result
            continue
        elif isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            if math.isnan(x) and math.isnan(y):
                continue
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-9))
    return worst


def temporary_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
