"""DSO federate: a power flow of the LEC's feeder at every grid step.

Publishes the PCC's active and reactive power (into the LEC, MV side of the transformer) and
voltage, the LV busbar voltage, transformer loading, grid losses, the lowest and highest bus
voltage and the number of buses outside the voltage band and of overloaded lines/transformers.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.models.grid import LECGrid


def build(fed: Federate):
    s = fed.scenario
    lec = s.lec_name
    grid = LECGrid(s.grid)

    def step(k: int, t: float) -> None:
        result = grid.solve(
            load_p_mw=fed.value(f"{lec}/households/p_mw"),
            load_q_mvar=fed.value(f"{lec}/households/q_mvar"),
            pv_p_mw=fed.value(f"{lec}/pv/p_mw"),
            battery_p_mw=fed.value(f"{lec}/battery/p_mw"),
        )
        fed.publish(f"{lec}/pcc/p_mw", result.pcc_p_mw)
        fed.publish(f"{lec}/pcc/q_mvar", result.pcc_q_mvar)
        fed.publish(f"{lec}/pcc/vm_pu", result.pcc_vm_pu)
        fed.publish(f"{lec}/lv_busbar/vm_pu", result.lv_vm_pu)
        fed.publish(f"{lec}/transformer/loading_percent", result.trafo_loading_percent)
        fed.publish(f"{lec}/grid/losses_mw", result.losses_mw)
        fed.publish(f"{lec}/grid/losses_mvar", result.losses_mvar)
        fed.publish(f"{lec}/grid/vm_min_pu", result.vm_min_pu)
        fed.publish(f"{lec}/grid/vm_max_pu", result.vm_max_pu)
        fed.publish_int(f"{lec}/grid/bus_violations", result.bus_violations)
        fed.publish_int(f"{lec}/grid/line_overloads", result.line_overloads)

    return step


if __name__ == "__main__":
    main(build, __doc__)
