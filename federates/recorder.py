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
    """Records every input port at every slot, as a column named by the port (the study names them)."""
    s = fed.scenario
    started = time.perf_counter()
    n_steps = len(fed.step_times())
    ports = list(fed.ports["in"])
    records = {port: [] for port in ports}
    times: list[dt.datetime] = []
    progress = Progress(s.start, n_steps)

    def step(k: int, t: float) -> None:
        times.append(s.start + dt.timedelta(seconds=t))
        for port in ports:
            records[port].append(fed.read_port(port))
        progress.step(k, t)

    def finish() -> None:
        grid = pd.DataFrame({"time": [t.isoformat() for t in times], **records})
        write_results(grid, s, fed.output_dir, wall_time_s=time.perf_counter() - started)
        print(f"results written to {fed.output_dir}", file=sys.stdout, flush=True)

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
