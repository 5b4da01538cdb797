"""The three-phase IEEE European LV feeder for the DSO component: a power flow at every grid step.

The injections come from participant groups (settings ``groups``: group -> its players, in order),
each publishing its players' ``load_kw``, ``load_kvar``, ``pv_kw`` and ``chp_kw`` as one vector per
exchange, step-major over the ``block_steps`` grid steps of the exchange; the adapter reads group
``g``'s vector ``v`` at the input port ``g/v``. It solves the exchange's grid steps as one block
(:meth:`lec_cosim.models.lem_grid.LemGrid.solve_block`: each step's numbers those of solving it alone) and
returns the lowest and highest phase voltage, the counts of buses outside the voltage band (all
906 and the 110 of the paper's reduced model), of angle violations and of overloaded lines and
transformer, the active and reactive losses, the power through the transformer and the step's DN
impact (the paper's penalty: counts + loss energies), and the distinct buses outside the band so
far. With one grid step per exchange each is a number (the plan types the counts as integers),
else a vector with a value per step.

In its last slot it writes each bus's lowest and highest voltage and each line's and the
transformer's peak loading over the run (``bus_voltage_extremes.csv``, ``line_loading_peaks.csv``:
:class:`lec_cosim.models.grid_extremes.GridExtremes`) into the run folder (settings ``output_dir``):
before the recorder's last slot, so before ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lec_cosim.adapters import read_array

DOUBLES = ("vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "dn_impact", "trafo_p_kw")
COUNTS = ("bus_violations", "bus_violations_reduced", "angle_violations", "line_overloads")
DAY_COUNTS = ("violated_buses_so_far", "violated_buses_so_far_reduced")
"""Distinct buses outside the voltage band since the start (all LV buses / the reduced model's)."""
OUTPUTS = DOUBLES + COUNTS + DAY_COUNTS
"""Its output ports: named as the fields of the grid's result (and the two running counts)."""
INJECTIONS = ("load_kw", "load_kvar", "pv_kw", "chp_kw")
"""What it reads of each group."""


class IeeeFeederGrid:
    @staticmethod
    def ports(settings: dict) -> tuple:
        """Each group's vectors in (``<group>/<vector>``, kW or kvar per player and grid step of the block); the
        grid's values out, one per exchange (a vector of the block's grid steps with ``block_steps`` > 1)."""
        from lec_cosim.adapters import MEANINGS
        from lec_cosim.components import Port, unit_of

        block = int(settings.get("block_steps", 1)) > 1
        return (*(Port(f"{{group}}/{v}", "in", "vector", unit_of(v),
                       f"each group's players' {v.replace('_', ' ')}, per grid step") for v in INJECTIONS),
                Port("{group}/net_kw", "in", "vector", "kW", "connected by the local-market wiring, not read"),
                *(Port(v, "out", "vector" if block else "double", unit_of(v), MEANINGS[v]) for v in DOUBLES),
                *(Port(v, "out", "vector" if block else "integer", None, MEANINGS[v])
                  for v in COUNTS + DAY_COUNTS))

    def __init__(self, scenario, settings: dict):
        # imported here: the compiler reads ports() without loading the grid engines
        from lec_cosim.models.feeder_source import feeder_of
        from lec_cosim.models.grid_extremes import GridExtremes
        from lec_cosim.models.lem_community import community_from_scenario
        from lec_cosim.models.grid_cache import lem_grid

        s = scenario
        community = community_from_scenario(s)
        g = s.grid
        # the fixed-point grid of the IEEE feeder comes compiled from the cache when it was built before: no
        # pandapower in this process then (its import and the net were most of this federate's start-up)
        self.grid = grid = lem_grid(
            feeder=feeder_of(s), table=community.table, data_dir=s.feeder.data_dir, vm_min_pu=g.vm_min_pu,
            vm_max_pu=g.vm_max_pu,
            max_loading_percent=g.max_loading_percent, va_max_deviation_degree=g.va_max_deviation_degree,
            violation_model=g.dn_impact_counts, step_h=s.grid_step_s / 3600.0, solver=g.solver,
            source_strength=getattr(s.feeder, "source_strength", 1.0), flow_threads=g.flow_threads)
        group_members: dict[str, list[str]] = settings["groups"]
        self.names = [m for members in group_members.values() for m in members]
        column = {name: i for i, name in enumerate(self.names)}
        # columns of the gathered values in the grid's own order: set_injections then takes plain arrays
        self.hh_cols, self.pv_cols, self.chp_cols = (
            [column[n] for n in grid_names] for grid_names in (grid.household_names, grid.prosumer_names,
                                                               grid.chp_names))
        self.input_ports = {v: [f"{group}/{v}" for group in group_members] for v in INJECTIONS}
        self._in_reduced = np.asarray(grid.bus_in_reduced, dtype=bool)
        self._violated = np.zeros(len(grid.lv_buses), dtype=bool)  # per LV bus: outside the band so far
        self.extremes = GridExtremes(grid)
        self.block = int(settings.get("block_steps", 1))  # grid steps per exchange
        self.last_slot = int(round(s.end_s / (s.grid_step_s * self.block))) - 1
        self.output_dir = Path(settings.get("output_dir", "."))

    def reset(self) -> None:
        """A new episode (a learning environment's): no bus violated so far, no extremes yet."""
        from lec_cosim.models.grid_extremes import GridExtremes

        self._violated[:] = False
        self.extremes = GridExtremes(self.grid)
        self.last_slot = -1  # episodes write no extremes tables: an episode's window is not the run

    def gather(self, inputs, vector: str) -> np.ndarray:
        """(block, participants): each group publishes its members' values step by step."""
        values = np.hstack([np.reshape(read_array(inputs, port), (self.block, -1)) for port in self.input_ports[vector]])
        if values.shape[1] != len(self.names):
            raise RuntimeError(f"{vector}: {values.shape[1]} values per step for {len(self.names)} participants")
        return values

    @property
    def violated(self) -> set[int]:
        """The LV buses (pandapower numbers) outside the voltage band so far."""
        return {int(b) for b in self.grid.lv_buses[self._violated]}

    def step(self, k: int, t_s: float, inputs) -> dict:
        load_kw, load_kvar, pv_kw, chp_kw = (self.gather(inputs, v) for v in INJECTIONS)
        # the exchange's grid steps in one call, as arrays over the steps (LemGrid.solve_block_chunks: each step's
        # numbers those of solving it alone; with grid.flow_threads, that many flows at a time), taken a chunk of
        # steps at a time as they are solved: the extremes and the running counts reduce each chunk, and only the
        # outputs (a number per step) are joined
        parts = []
        for chunk in self.grid.solve_block_chunks(load_kw[:, self.hh_cols], load_kvar[:, self.hh_cols],
                                                  pv_kw[:, self.pv_cols], chp_kw[:, self.chp_cols]):
            self.extremes.add_block(chunk)
            so_far = chunk.violated_so_far(self._violated)  # (step, bus)
            self._violated = so_far[-1].copy()
            part = {name: getattr(chunk, name) for name in DOUBLES + COUNTS}
            part["violated_buses_so_far"] = so_far.sum(axis=1)
            part["violated_buses_so_far_reduced"] = (so_far & self._in_reduced).sum(axis=1)
            parts.append(part)
        values = {name: np.concatenate([p[name] for p in parts]) for name in OUTPUTS}
        if k == self.last_slot:
            self.extremes.write(self.output_dir)
        if self.block == 1:  # numbers, as the plan types them: floats and integers
            return {name: float(values[name][0]) if name in DOUBLES else int(values[name][0]) for name in OUTPUTS}
        return {name: np.asarray(values[name], dtype=float) for name in OUTPUTS}
