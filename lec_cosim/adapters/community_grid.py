"""The community battery's grid for the DSO component: the balanced LEC grid behind its transformer."""

from __future__ import annotations

import numpy as np

OUTPUTS = ("pcc_p_mw", "pcc_q_mvar", "pcc_vm_pu", "lv_vm_pu", "trafo_loading_percent", "losses_mw", "losses_mvar",
           "vm_min_pu", "vm_max_pu", "bus_violations", "line_overloads")
"""Its output ports: named as the fields of the grid's result."""


INPUTS = {"load_p_mw": "the households' active load", "load_q_mvar": "their reactive load",
          "pv_p_mw": "their PV generation", "battery_p_mw": "the community battery's power (+ charges)"}
"""What it reads of the households."""


class CommunityGrid:
    """The households' load, PV and battery, and any loads a study adds (input ports named in the settings'
    ``extra_loads_mw``, active power at unity power factor on the LV busbar: the devices at the homes,
    ``lec_cosim.home_devices``)."""

    @staticmethod
    def ports(settings: dict) -> tuple:
        from lec_cosim.adapters import MEANINGS
        from lec_cosim.components import Port, unit_of

        return (*(Port(name, "in", "double", unit_of(name), meaning) for name, meaning in INPUTS.items()),
                *(Port(name, "in", "double", "MW", "a load a study adds (extra_loads_mw)")
                  for name in settings.get("extra_loads_mw", [])),
                *(Port(name, "out", "integer" if name in ("bus_violations", "line_overloads") else "double",
                       unit_of(name), MEANINGS[name]) for name in OUTPUTS))

    def __init__(self, scenario, settings: dict):
        from lec_cosim.models.grid import LECGrid  # here: the compiler reads ports() without pandapower

        self.grid = LECGrid(scenario.grid)
        self.extra_loads: list[str] = list(settings.get("extra_loads_mw", []))

    def step(self, k: int, t_s: float, inputs) -> dict:
        load_p_mw = inputs.read("load_p_mw")
        for port in self.extra_loads:
            load_p_mw += inputs.read(port)
        result = self.grid.solve(load_p_mw=load_p_mw, load_q_mvar=inputs.read("load_q_mvar"),
                                 pv_p_mw=inputs.read("pv_p_mw"), battery_p_mw=inputs.read("battery_p_mw"))
        return {port: getattr(result, port) for port in OUTPUTS}


FEEDER_INPUTS = {"connection_load_p_mw": "the households' active load at each connection point of the feeder",
                 "connection_load_q_mvar": "their reactive load there", "connection_pv_p_mw": "their PV there",
                 "battery_p_mw": INPUTS["battery_p_mw"]}
"""On a feeder source: what it reads of the households (vectors in the order of the feeder's connection points)."""
FEEDER_OUTPUTS = (*OUTPUTS, "max_line_loading_percent")


class FeederCommunityGrid:
    """The community on a feeder source (``grid.source``; :class:`lec_cosim.models.battery_feeder.FeederLECGrid`):
    the households' load and PV at their connection points, the battery at its bus, and any loads a study adds
    (``extra_loads_mw``, active power at unity power factor) shared over the connection points as the households
    are."""

    @staticmethod
    def ports(settings: dict) -> tuple:
        from lec_cosim.adapters import MEANINGS
        from lec_cosim.components import Port, unit_of

        return (*(Port(name, "in", "double" if name == "battery_p_mw" else "vector",
                       unit_of(name) if name == "battery_p_mw" else None, meaning)
                  for name, meaning in FEEDER_INPUTS.items()),
                *(Port(name, "in", "double", "MW", "a load a study adds (extra_loads_mw)")
                  for name in settings.get("extra_loads_mw", [])),
                *(Port(name, "out", "integer" if name in ("bus_violations", "line_overloads") else "double",
                       unit_of(name), MEANINGS[name]) for name in FEEDER_OUTPUTS))

    def __init__(self, scenario, settings: dict):
        from lec_cosim.models.battery_feeder import FeederLECGrid, community_of

        community = community_of(scenario)
        self.grid = FeederLECGrid(community, scenario.grid)
        self.extra_loads: list[str] = list(settings.get("extra_loads_mw", []))
        self._share = community.households.to_numpy(dtype=float) / float(community.households.sum())

    def step(self, k: int, t_s: float, inputs) -> dict:
        load_p = np.asarray(inputs.read("connection_load_p_mw"), dtype=float)
        extra = sum(inputs.read(port) for port in self.extra_loads)
        if extra:
            load_p = load_p + extra * self._share
        result = self.grid.solve(load_p, inputs.read("connection_load_q_mvar"), inputs.read("connection_pv_p_mw"),
                                 inputs.read("battery_p_mw"))
        return {port: getattr(result, port) for port in FEEDER_OUTPUTS}
