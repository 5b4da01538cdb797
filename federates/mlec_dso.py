"""DSO federate of the three-LEC scenario: three-phase power flow at every grid step, and the DSO loop.

At every grid step (t + 7 ms) it reads the members' powers, solves the IEEE European LV feeder
(``lec_cosim.models.multi_lec_grid.MultiLecGrid``) and publishes the grid's indicators and each
LEC's voltages and net import. With ``dso.limits`` it also publishes each LEC's import and export
limits (``OperatingEnvelope``), which the LEC_EMSs read at the next hour's start and respect from
then on: the most restrictive over the steps of the hour so far and, at the hour's last step,
also over its forecast of the next hour (the members' own load and PV, batteries idle: one power
flow per step). Limits from the measured hour alone come an hour late: a PV ramp in the morning
violated the band before any limit from it could act (measured on the shipped day: the one step
out of band, at 09:30, was no better with such a loop than without it).

In its last slot it writes each bus's lowest and highest voltage and each line's and the
transformer's peak loading over the run's grid steps (not the forecasts; ``bus_voltage_extremes.csv``,
``line_loading_peaks.csv``: :class:`lec_cosim.models.grid_extremes.GridExtremes`) into the run folder:
before the recorder's last slot, so before ``summary.json``.
"""

from __future__ import annotations

import numpy as np

from federates.common import Federate, main
from lec_cosim.models.grid_extremes import GridExtremes
from lec_cosim.models.multi_lec_ems import members_from_scenario, steps_per_hour
from lec_cosim.models.multi_lec_grid import MultiLecGrid, OperatingEnvelope
from lec_cosim.multi_lec_federation import GRID_COUNTS, GRID_DOUBLES


def build(fed: Federate):
    s = fed.scenario
    members = members_from_scenario(s)
    kinds = members.table["kind"].to_numpy()
    households, batteries = kinds == "household", kinds == "community_battery"
    grid = MultiLecGrid(members, vm_min_pu=s.dso.vm_min_pu, vm_max_pu=s.dso.vm_max_pu,
                        max_loading_percent=s.dso.max_loading_percent, step_h=members.dt_h,
                        data_dir=s.feeder.data_dir, solver=s.dso.solver)
    envelope = OperatingEnvelope.build(grid, margin_pu=s.dso.margin_pu) if s.dso.limits else None
    per_hour = steps_per_hour(members)
    n_steps = len(fed.step_times())
    hour_results = []
    extremes = GridExtremes(grid.lem_grid)

    def step(k: int, t: float) -> None:
        net = np.array(fed.vector("mlec/households/net_kw"))
        kvar = np.array(fed.vector("mlec/households/load_kvar"))
        if len(net) != len(kinds):
            raise RuntimeError(f"dso: step {k}: expected {len(kinds)} member powers, got {len(net)}")
        # The grid model counts a community battery positive when it discharges.
        result = grid.solve(net[households], kvar[households], -net[batteries])
        extremes.add(result.grid)
        g = result.grid
        for name in GRID_DOUBLES:
            fed.publish(f"mlec/grid/{name}", getattr(g, name))
        for name in GRID_COUNTS:
            fed.publish_int(f"mlec/grid/{name}", getattr(g, name))
        fed.publish("mlec/grid/lec_vm_min_pu", result.lec_vm_min_pu)
        fed.publish("mlec/grid/lec_vm_max_pu", result.lec_vm_max_pu)
        fed.publish("mlec/grid/lec_net_import_kw", result.lec_net_import_kw)
        if k % per_hour == 0:
            hour_results.clear()
        hour_results.append(result)
        if envelope is not None:
            imports, exports = envelope.period_limits(hour_results)
            if k % per_hour == per_hour - 1 and k + 1 < n_steps:
                forecast = [grid.solve_step(n) for n in range(k + 1, k + 1 + per_hour)]
                expected = envelope.period_limits(forecast)
                imports, exports = np.minimum(imports, expected[0]), np.minimum(exports, expected[1])
        else:
            imports = exports = np.full(len(members.lec_names), np.inf)
        fed.publish("mlec/grid/import_limit_kw", imports)
        fed.publish("mlec/grid/export_limit_kw", exports)
        if k == n_steps - 1:
            extremes.write(fed.output_dir)

    return step


if __name__ == "__main__":
    main(build, __doc__)
