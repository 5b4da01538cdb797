"""Recorder federate of the three-LEC federations: reads every step, queries the federation, writes results.

At every grid step (t + 8 ms) it reads the members' powers, the grid's indicators and the records
the LEC_EMSs and the platform published. At its last step, while every other federate still
waits for its final slot, it asks each of them the ``exchanges`` query through the broker, then
writes the results contract (``lec_cosim.results_mlec``).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from federates.common import Federate, Progress, main
from federates.topology import query_exchanges
from lec_cosim.models.multi_lec_ems import members_from_scenario
from lec_cosim.multi_lec_federation import GRID_COUNTS, GRID_DOUBLES, GRID_VECTORS, HOUSEHOLD_VECTORS
from lec_cosim.results_mlec import MultiLecRecord

STARTED = time.perf_counter()


def build(fed: Federate):
    s = fed.scenario
    members = members_from_scenario(s)
    record = MultiLecRecord(s, members)
    others = [name for name in fed.settings["federates"] if name != fed.name]
    steps = fed.step_times()
    result = SimpleNamespace(replies=None)
    progress = Progress(s.start, len(steps))

    def step(k: int, t: float) -> None:
        for lec in members.lec_names:
            key = f"mlec/{lec}/ems/record"
            if fed.updated(key):
                record.add_ems_record(fed.json_value(key))
        if "mlec/platform/record" in fed.subs and fed.updated("mlec/platform/record"):
            record.add_platform_record(fed.json_value("mlec/platform/record"))
        households = {v: fed.vector(f"mlec/households/{v}") for v in HOUSEHOLD_VECTORS}
        grid = {v: fed.value(f"mlec/grid/{v}") for v in GRID_DOUBLES}
        grid.update({v: fed.integer(f"mlec/grid/{v}") for v in GRID_COUNTS})
        lecs = {v.removeprefix("lec_"): fed.vector(f"mlec/grid/{v}") for v in GRID_VECTORS}
        record.add_step(k, households, grid, lecs)
        progress.step(k, t)
        if k == len(steps) - 1:
            result.replies = {fed.name: fed.exchange_log.as_dict(), **query_exchanges(fed.fed, others)}

    def finish() -> None:
        summary = record.write(fed.output_dir, replies=result.replies, wall_time_s=time.perf_counter() - STARTED)
        k = summary["kpis"]
        print(f"recorder: cost {k['total_cost_eur']:.2f} EUR, losses {k['losses_kwh']:.2f} kWh, "
              f"{k['messages']} messages", flush=True)

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
