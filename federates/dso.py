"""DSO federate: a power flow of the LEC's feeder at every grid step.

Publishes the PCC's active and reactive power (into the LEC, MV side of the transformer) and
voltage, the LV busbar voltage, transformer loading, grid losses, the lowest and highest bus
voltage and the number of buses outside the voltage band and of overloaded lines/transformers.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.models.grid import LECGrid


OUTPUTS = ("pcc_p_mw", "pcc_q_mvar", "pcc_vm_pu", "lv_vm_pu", "trafo_loading_percent", "losses_mw", "losses_mvar",
           "vm_min_pu", "vm_max_pu")
"""The doubles it publishes: ports named as the grid result's fields."""
COUNTS = ("bus_violations", "line_overloads")


def build(fed: Federate):
    grid = LECGrid(fed.scenario.grid)
    doubles = {port: fed.key_of(port) for port in OUTPUTS}
    counts = {port: fed.key_of(port) for port in COUNTS}

    def step(k: int, t: float) -> None:
        result = grid.solve(load_p_mw=fed.read_port("load_p_mw"), load_q_mvar=fed.read_port("load_q_mvar"),
                            pv_p_mw=fed.read_port("pv_p_mw"), battery_p_mw=fed.read_port("battery_p_mw"))
        fields = {"pcc_p_mw": result.pcc_p_mw, "pcc_q_mvar": result.pcc_q_mvar, "pcc_vm_pu": result.pcc_vm_pu,
                  "lv_vm_pu": result.lv_vm_pu, "trafo_loading_percent": result.trafo_loading_percent,
                  "losses_mw": result.losses_mw, "losses_mvar": result.losses_mvar, "vm_min_pu": result.vm_min_pu,
                  "vm_max_pu": result.vm_max_pu}
        for port, key in doubles.items():
            fed.publish(key, fields[port])
        for port, key in counts.items():
            fed.publish_int(key, getattr(result, port))

    return step


if __name__ == "__main__":
    main(build, __doc__)
