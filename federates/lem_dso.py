"""DSO federate of a local-market run: a three-phase power flow of the IEEE European LV feeder at
every grid step, with the injections the participants published (after the market cleared).

Publishes the lowest and highest phase voltage, the counts of buses outside the voltage band
(all 906 and the 110 of the paper's reduced model), of angle violations and of overloaded lines
and transformer, the active and reactive losses, the power through the transformer and the
step's DN impact (the paper's penalty: counts + loss energies).
"""

from __future__ import annotations

import pandas as pd

from federates.common import Federate, main
from lec_cosim.lem_federation import DSO_COUNTS, DSO_DOUBLES, groups
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
    kinds = community.table.set_index("participant").loc[names, "kind"].to_numpy()
    households, prosumers, chps = kinds != "chp", kinds == "prosumer", kinds == "chp"

    reduced_buses = set(int(b) for b in grid.lv_buses[grid.bus_in_reduced])
    violated: set[int] = set()

    def gather(vector: str) -> pd.Series:
        values = [v for group in group_members for v in fed.vector(f"lem/{group}/{vector}")]
        if len(values) != len(names):
            raise RuntimeError(f"{vector}: {len(values)} values for {len(names)} participants")
        return pd.Series(values, index=names)

    def step(k: int, t: float) -> None:
        load_kw, load_kvar, pv_kw, chp_kw = (gather(v) for v in ("load_kw", "load_kvar", "pv_kw", "chp_kw"))
        grid.set_injections(load_kw=load_kw[households], load_kvar=load_kvar[households], pv_kw=pv_kw[prosumers],
                            chp_kw=chp_kw[chps])
        result = grid.solve()
        violated.update(result.violated_buses)
        fed.publish_int("lem/grid/violated_buses_so_far", len(violated))
        fed.publish_int("lem/grid/violated_buses_so_far_reduced", len(violated & reduced_buses))
        for name in DSO_DOUBLES:
            fed.publish(f"lem/grid/{name}", getattr(result, name))
        for name in DSO_COUNTS:
            fed.publish_int(f"lem/grid/{name}", getattr(result, name))

    return step


if __name__ == "__main__":
    main(build, __doc__)
