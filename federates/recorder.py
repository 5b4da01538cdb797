"""Recorder federate: observes every step and writes the run's results, for any study.

A thin shell around the study's record (``lec_cosim.adapters``), named in its config (``record``). It
runs last in each step (largest phase offset), so it sees the values of that step from all other
federates; it hands them to the record by port, prints progress lines (simulated time, steps,
speed), and at the end has the record write the results contract. With ``query_exchanges`` it asks
every other federate the ``exchanges`` query at its last step, while they still wait for their final
slot, and hands the answers to the record.
"""

from __future__ import annotations

import time

from federates.common import Federate, Progress, main
from federates.topology import query_exchanges
from lec_cosim.adapters import load_object

STARTED = time.perf_counter()


def build(fed: Federate):
    s = fed.scenario
    record = load_object(fed.options.record)(s, fed.settings)
    inputs = fed.inputs()
    steps = fed.step_times()
    progress = Progress(s.start, len(steps))
    replies: dict = {}

    def step(k: int, t: float) -> None:
        record.add(k, t, inputs)
        progress.step(k, t)
        if fed.options.query_exchanges and k == len(steps) - 1:
            others = [name for name in fed.options.federates if name != fed.name]
            replies.update({fed.name: fed.exchange_log.as_dict(), **query_exchanges(fed.fed, others)})

    def finish() -> None:
        record.write(fed.output_dir, wall_time_s=time.perf_counter() - STARTED,
                     replies=replies if fed.options.query_exchanges else None)
        print(f"results written to {fed.output_dir}", flush=True)

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
