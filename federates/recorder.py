"""Recorder federate: observes every publication at each grid step and writes the run's results.

It runs last in each step (largest phase offset), so it sees the values of that step from all
other federates, and prints progress lines (simulated time, steps, speed) as it goes.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import pandas as pd

from federates.common import Federate, Progress, main
from lec_cosim.results import write_results



def build(fed: Federate):
    s = fed.scenario
    lec = s.lec_name
    started = time.perf_counter()
    n_steps = len(fed.step_times())
    columns = {
        "price": "market/price_eur_per_mwh",
        "export_price": "market/export_price_eur_per_mwh",
        "setpoint_mw": f"{lec}/ems/battery_setpoint_mw",
        "planned_soc_mwh": f"{lec}/ems/planned_soc_mwh",
        "load_p_mw": f"{lec}/households/p_mw",
        "load_q_mvar": f"{lec}/households/q_mvar",
        "pv_p_mw": f"{lec}/pv/p_mw",
        "battery_p_mw": f"{lec}/battery/p_mw",
        "soc_mwh": f"{lec}/battery/soc_mwh",
        "pcc_p_mw": f"{lec}/pcc/p_mw",
        "pcc_q_mvar": f"{lec}/pcc/q_mvar",
        "pcc_vm_pu": f"{lec}/pcc/vm_pu",
        "lv_vm_pu": f"{lec}/lv_busbar/vm_pu",
        "trafo_loading_percent": f"{lec}/transformer/loading_percent",
        "losses_mw": f"{lec}/grid/losses_mw",
        "losses_mvar": f"{lec}/grid/losses_mvar",
        "vm_min_pu": f"{lec}/grid/vm_min_pu",
        "vm_max_pu": f"{lec}/grid/vm_max_pu",
    }
    counts = {
        "bus_violations": f"{lec}/grid/bus_violations",
        "line_overloads": f"{lec}/grid/line_overloads",
    }
    records = {name: [] for name in [*columns, *counts]}
    times: list[dt.datetime] = []
    progress = Progress(s.start, n_steps)

    def step(k: int, t: float) -> None:
        times.append(s.start + dt.timedelta(seconds=t))
        for name, key in columns.items():
            records[name].append(fed.value(key))
        for name, key in counts.items():
            records[name].append(fed.integer(key))
        progress.step(k, t)

    def finish() -> None:
        grid = pd.DataFrame({"time": [t.isoformat() for t in times], **records})
        write_results(grid, s, fed.output_dir, wall_time_s=time.perf_counter() - started)
        print(f"results written to {fed.output_dir}", file=sys.stdout, flush=True)

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
