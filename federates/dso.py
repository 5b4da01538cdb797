"""DSO federate: the distribution grid's power flow at every step, for any study.

A thin shell around the study's grid adapter (``lec_cosim.adapters``), named in its config
(``grid_adapter``): each step it hands the adapter its inputs by port and publishes what the adapter
returns on the output ports of the same names. The balanced community grid, the three-phase IEEE
feeder and the three-LEC grid are adapters; this program is the same for all.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.adapters import load_object


def build(fed: Federate):
    adapter = load_object(fed.options.grid_adapter)(fed.scenario, fed.settings)
    inputs = fed.inputs()
    outputs = set(fed.ports.get("out", {}))

    def step(k: int, t: float) -> None:
        published = adapter.step(k, t, inputs)
        unknown, missing = set(published) - outputs, outputs - set(published)
        if unknown or missing:  # a port left out would leave its subscribers reading a stale or default value
            raise RuntimeError(f"grid adapter {fed.options.grid_adapter} returned "
                               + (f"{sorted(unknown)}, which are not output ports of this DSO" if unknown else
                                  f"nothing for its output ports {sorted(missing)}"))
        for port, value in published.items():
            fed.publish_port(port, value)

    if hasattr(adapter, "finish"):
        step.finish = adapter.finish
    if hasattr(adapter, "reset"):  # a learning environment's next episode (Federate.run_episodes)
        step.reset = adapter.reset
    return step


if __name__ == "__main__":
    main(build, __doc__)
