"""Recorder federate of a local-market run: observes every step and writes the results contract.

Runs last in each exchange (+5 ms; every grid step, or every hour with the grid steps as vectors): it reads the participants' injections and, at each hour's
first step, their settlement and the market's book (a message), then the DSO's power-flow
results. Prints progress lines as it goes.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pandas as pd

from federates.common import Federate, Progress, main
from lec_cosim.lem_federation import (
    DSO_COUNTS,
    DSO_DAY_COUNTS,
    DSO_DOUBLES,
    RECORDER_ENDPOINT,
    SETTLEMENT_VECTORS,
    groups,
)
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.results_lem import write_lem_arrays



PHYSICAL = ("load_kw", "pv_kw", "chp_kw", "net_kw")
"""The participant vectors households.csv keeps (not load_kvar)."""


def build(fed: Federate):
    s = fed.scenario
    started = time.perf_counter()
    community = community_from_scenario(s)
    group_members = groups(s)
    order = [m for members in group_members.values() for m in members]
    steps_per_period = community.steps_per_period
    block = int(fed.settings.get("block_steps", 1))  # grid steps per exchange (lem_federation.block_steps)
    step_times = [k * s.grid_step_s for k in range(len(fed.step_times()) * block)]
    n_steps, n = len(step_times), len(order)
    n_periods = -(-n_steps // steps_per_period)
    # Preallocated: a year at 15 min is 35,136 steps x 61 participants; no per-step rows or frames.
    physical = {v: np.zeros((n_steps, n)) for v in PHYSICAL}
    money = {v: np.zeros((n_periods, n)) for v in SETTLEMENT_VECTORS}
    grid_doubles = {v: np.zeros(n_steps) for v in DSO_DOUBLES}
    grid_counts = {v: np.zeros(n_steps, dtype=np.int64) for v in DSO_COUNTS + DSO_DAY_COUNTS}
    price = np.full(n_periods, math.nan)
    volume = np.zeros(n_periods)
    # The market's books, one small array per hour and column; participants as indices into ``names``.
    names = list(order)
    index = {name: i for i, name in enumerate(names)}
    books = {c: [] for c in ("period", "participant", "buy", "price", "quantity_kwh", "accepted_kwh")}
    deals = {c: [] for c in ("period", "seller", "buyer", "energy_kwh")}
    progress = Progress(s.start, n_steps)

    def code(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    def stamp(k: int) -> str:
        return (s.start + dt.timedelta(seconds=step_times[k])).isoformat()

    def gather(v: str) -> np.ndarray:
        """(block, participants): each group publishes its members' values step by step."""
        return np.hstack([np.reshape(fed.vector(f"lem/{g}/{v}"), (block, -1)) for g in group_members])

    def step(b: int, t: float) -> None:
        first = b * block
        for v in PHYSICAL:
            physical[v][first:first + block] = gather(v)
        for k in range(first, first + block):
            record(k)

    def grid_values(v: str, integer: bool) -> np.ndarray:
        if block == 1:
            return np.array([fed.integer(f"lem/grid/{v}") if integer else fed.value(f"lem/grid/{v}")])
        values = np.asarray(fed.vector(f"lem/grid/{v}"), dtype=float)
        if len(values) != block:
            raise RuntimeError(f"lem/grid/{v}: {len(values)} values for a block of {block} grid steps")
        return values

    def record(k: int) -> None:
        if k % steps_per_period == 0:
            period = k // steps_per_period
            for v in SETTLEMENT_VECTORS:
                money[v][period] = np.concatenate([fed.vector(f"lem/{g}/{v}") for g in group_members])
            if s.market.enabled:
                messages = fed.receive(RECORDER_ENDPOINT)
                if len(messages) != 1 or messages[0][1]["period"] != period:
                    raise RuntimeError(f"expected the market's book of hour {period}, got {len(messages)} messages")
                book = messages[0][1]
                if book["price_eur_per_kwh"] is not None:
                    price[period] = book["price_eur_per_kwh"]
                volume[period] = book["volume_kwh"]
                rows = book["orders"]
                books["period"].append(np.full(len(rows), period, dtype=np.int32))
                books["participant"].append(np.array([code(o["participant"]) for o in rows], dtype=np.int32))
                books["buy"].append(np.array([o["side"] == "buy" for o in rows], dtype=bool))
                for c, key in (("price", "price_eur_per_kwh"), ("quantity_kwh", "quantity_kwh"),
                               ("accepted_kwh", "accepted_kwh")):
                    books[c].append(np.array([o[key] for o in rows], dtype=float))
                rows = book["allocation_kwh"]
                deals["period"].append(np.full(len(rows), period, dtype=np.int32))
                deals["seller"].append(np.array([code(a) for a, _, _ in rows], dtype=np.int32))
                deals["buyer"].append(np.array([code(b) for _, b, _ in rows], dtype=np.int32))
                deals["energy_kwh"].append(np.array([e for _, _, e in rows], dtype=float))
        if k % block == 0:
            for v in DSO_DOUBLES:
                grid_doubles[v][k:k + block] = grid_values(v, False)
            for v in DSO_COUNTS + DSO_DAY_COUNTS:
                grid_counts[v][k:k + block] = np.rint(grid_values(v, True)).astype(np.int64)
        progress.step(k, step_times[k])

    def joined(chunks: dict, hours: np.ndarray) -> dict[str, np.ndarray]:
        """The books' columns over all hours; ``period`` becomes ``time``, indices become names."""
        columns = {c: np.concatenate(v) if v else np.zeros(0) for c, v in chunks.items()}
        all_names = np.array(names, dtype=object)
        out = {"time": hours[columns.pop("period").astype(int)]}
        for c, values in columns.items():
            out[c] = all_names[values.astype(int)] if c in ("participant", "seller", "buyer") else values
        return out

    def finish() -> None:
        steps = np.array([stamp(k) for k in range(n_steps)], dtype=object)
        hours = steps[::steps_per_period]
        book = joined(books, hours)
        book["side"] = np.where(book.pop("buy").astype(bool), "buy", "sell").astype(object)
        orders = pd.DataFrame(book, columns=["time", "participant", "side", "price", "quantity_kwh", "accepted_kwh"])
        allocation = pd.DataFrame(joined(deals, hours), columns=["time", "seller", "buyer", "energy_kwh"])
        write_lem_arrays(fed.output_dir, s, community, steps=steps, participants=order, physical=physical,
                         money=money, price=price, volume=volume, orders=orders, allocation=allocation,
                         grid={**grid_doubles, **grid_counts}, wall_time_s=time.perf_counter() - started)
        print(f"results written to {fed.output_dir}", flush=True)

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
