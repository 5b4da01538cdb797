"""DSO federate of a local-market run: a three-phase power flow of the IEEE European LV feeder at
every grid step, with the injections the participants published (after the market cleared). With
``resolution.exchange: period`` it is granted once per hour and solves the hour's grid steps in
turn, publishing one vector (a value per step) per indicator.

Publishes the lowest and highest phase voltage, the counts of buses outside the voltage band
(all 906 and the 110 of the paper's reduced model), of angle violations and of overloaded lines
and transformer, the active and reactive losses, the power through the transformer and the
step's DN impact (the paper's penalty: counts + loss energies).

In its last slot it writes each bus's lowest and highest voltage and each line's and the
transformer's peak loading over the run (``bus_voltage_extremes.csv``, ``line_loading_peaks.csv``:
:class:`lec_cosim.models.grid_extremes.GridExtremes`) into the run folder: before the recorder's last
slot, so before ``summary.json``.
"""

from __future__ import annotations

import numpy as np

from federates.common import Federate, main
from lec_cosim.lem_federation import DSO_COUNTS, DSO_DAY_COUNTS, DSO_DOUBLES, groups
from lec_cosim.models.grid_extremes import GridExtremes
from lec_cosim.models.lem_community import community_from_scenario
from lec_cosim.models.lem_grid import LemGrid


def build(fed: Federate):
    s = fed.scenario
    community = community_from_scenario(s)
    g = s.grid
    grid = LemGrid(table=community.table, data_dir=s.feeder.data_dir, vm_min_pu=g.vm_min_pu, vm_max_pu=g.vm_max_pu,
                   max_loading_percent=g.max_loading_percent, va_max_deviation_degree=g.va_max_deviation_degree,
                   violation_model=g.dn_impact_counts, step_h=s.grid_step_s / 3600.0, solver=g.solver)
    group_members = groups(s)
    names = [m for members in group_members.values() for m in members]
    column = {name: i for i, name in enumerate(names)}
    # columns of the gathered values in the grid's own order: set_injections then takes plain arrays
    hh_cols, pv_cols, chp_cols = ([column[n] for n in grid_names]
                                  for grid_names in (grid.household_names, grid.prosumer_names, grid.chp_names))

    reduced_buses = set(int(b) for b in grid.lv_buses[grid.bus_in_reduced])
    violated: set[int] = set()
    extremes = GridExtremes(grid)
    last_slot = len(fed.step_times()) - 1
    block = int(fed.settings.get("block_steps", 1))  # grid steps per exchange (lem_federation.block_steps)

    def gather(vector: str) -> np.ndarray:
        """(block, participants): each group publishes its members' values step by step."""
        parts = [np.reshape(fed.vector(f"lem/{group}/{vector}"), (block, -1)) for group in group_members]
        values = np.hstack(parts)
        if values.shape[1] != len(names):
            raise RuntimeError(f"{vector}: {values.shape[1]} values per step for {len(names)} participants")
        return values

    def step(k: int, t: float) -> None:
        load_kw, load_kvar, pv_kw, chp_kw = (gather(v) for v in ("load_kw", "load_kvar", "pv_kw", "chp_kw"))
        rows = []
        for j in range(block):
            grid.set_injections(load_kw=load_kw[j, hh_cols], load_kvar=load_kvar[j, hh_cols],
                                pv_kw=pv_kw[j, pv_cols], chp_kw=chp_kw[j, chp_cols])
            result = grid.solve()
            extremes.add(result)
            violated.update(result.violated_buses)
            row = {name: getattr(result, name) for name in DSO_DOUBLES + DSO_COUNTS}
            row["violated_buses_so_far"] = len(violated)
            row["violated_buses_so_far_reduced"] = len(violated & reduced_buses)
            rows.append(row)
        if block == 1:
            for name in DSO_DOUBLES:
                fed.publish(f"lem/grid/{name}", rows[0][name])
            for name in DSO_COUNTS + DSO_DAY_COUNTS:
                fed.publish_int(f"lem/grid/{name}", rows[0][name])
        else:
            for name in DSO_DOUBLES + DSO_COUNTS + DSO_DAY_COUNTS:
                fed.publish(f"lem/grid/{name}", np.array([row[name] for row in rows], dtype=float))
        if k == last_slot:
            extremes.write(fed.output_dir)

    return step


if __name__ == "__main__":
    main(build, __doc__)
