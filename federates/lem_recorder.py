"""Recorder federate of a local-market run: observes every step and writes the results contract.

Runs last in each grid step (+5 ms): it reads the participants' injections and, at each hour's
first step, their settlement and the market's book (a message), then the DSO's power-flow
results. Prints progress lines as it goes.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pandas as pd

from federates.common import Federate, main
from lec_cosim.lem_federation import (
    DSO_COUNTS,
    DSO_DAY_COUNTS,
    DSO_DOUBLES,
    PARTICIPANT_VECTORS,
    RECORDER_ENDPOINT,
    SETTLEMENT_VECTORS,
    groups,
)
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.results_lem import write_lem_results

PROGRESS_EVERY_S = 2.0


def build(fed: Federate):
    s = fed.scenario
    started = time.perf_counter()
    community = community_from_scenario(s)
    table = community.table.set_index("participant")
    group_members = groups(s)
    order = [m for members in group_members.values() for m in members]
    bus = table.loc[order, "bus"].to_numpy()
    phase = table.loc[order, "phase"].to_numpy()
    steps_per_period = community.steps_per_period
    n_steps = len(fed.step_times())
    households, settlement, orders, clearing, allocation, grid = [], [], [], [], [], []
    last_report = [started]

    def gather(names) -> dict[str, np.ndarray]:
        return {v: np.concatenate([fed.vector(f"lem/{g}/{v}") for g in group_members]) for v in names}

    def step(k: int, t: float) -> None:
        now = s.start + dt.timedelta(seconds=t)
        stamp = now.isoformat()
        values = gather(PARTICIPANT_VECTORS)
        households.append(pd.DataFrame({"time": stamp, "participant": order, "bus": bus, "phase": phase,
                                        "load_kw": values["load_kw"], "pv_kw": values["pv_kw"],
                                        "chp_kw": values["chp_kw"], "battery_kw": 0.0, "net_kw": values["net_kw"]}))
        if k % steps_per_period == 0:
            money = gather(SETTLEMENT_VECTORS)
            settlement.append(pd.DataFrame({"time": stamp, "participant": order, **money}))
            if s.market.enabled:
                messages = fed.receive(RECORDER_ENDPOINT)
                period = k // steps_per_period
                if len(messages) != 1 or messages[0][1]["period"] != period:
                    raise RuntimeError(f"expected the market's book of hour {period}, got {len(messages)} messages")
                book = messages[0][1]
                price = book["price_eur_per_kwh"]
                clearing.append({"time": stamp, "price": math.nan if price is None else price,
                                 "volume_kwh": book["volume_kwh"]})
                orders.extend({"time": stamp, "participant": o["participant"], "side": o["side"],
                               "price": o["price_eur_per_kwh"], "quantity_kwh": o["quantity_kwh"],
                               "accepted_kwh": o["accepted_kwh"]} for o in book["orders"])
                allocation.extend({"time": stamp, "seller": a, "buyer": b, "energy_kwh": e}
                                  for a, b, e in book["allocation_kwh"])
        row = {"time": stamp}
        row.update({v: fed.value(f"lem/grid/{v}") for v in DSO_DOUBLES})
        row.update({v: fed.integer(f"lem/grid/{v}") for v in DSO_COUNTS + DSO_DAY_COUNTS})
        grid.append(row)
        wall = time.perf_counter()
        if wall - last_report[0] >= PROGRESS_EVERY_S or k == n_steps - 1:
            last_report[0] = wall
            print(f"progress {stamp} step {k + 1}/{n_steps}", flush=True)

    def finish() -> None:
        write_lem_results(
            fed.output_dir, s, table=community.table, households=pd.concat(households, ignore_index=True),
            settlement=pd.concat(settlement, ignore_index=True),
            orders=pd.DataFrame(orders, columns=["time", "participant", "side", "price", "quantity_kwh",
                                                 "accepted_kwh"]),
            clearing=pd.DataFrame(clearing, columns=["time", "price", "volume_kwh"]),
            allocation=pd.DataFrame(allocation, columns=["time", "seller", "buyer", "energy_kwh"]),
            grid=pd.DataFrame(grid), wall_time_s=time.perf_counter() - started, load_scale=community.load_scale)
        print(f"results written to {fed.output_dir}", flush=True)

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
