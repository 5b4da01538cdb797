"""The community's households with PV and the community battery (models :mod:`lec_cosim.models.household`,
:mod:`lec_cosim.models.battery`)."""

from __future__ import annotations

from lec_cosim.components import Port

PROGRAM = "federates.household"
PORTS = (
    Port("setpoint_mw", "in", "double", "MW", "the LEC_EMS's battery set-point"),
    Port("load_p_mw", "out", "double", "MW", "the households' active load"),
    Port("load_q_mvar", "out", "double", "MVAR", "their reactive load"),
    Port("pv_p_mw", "out", "double", "MW", "their PV generation"),
    Port("battery_p_mw", "out", "double", "MW", "the battery's power as it could follow the set-point (+ charges)"),
    Port("soc_mwh", "out", "double", "MWh", "the battery's state of charge after the step"),
    Port("connection_load_p_mw", "out", "vector", None, "on a feeder source: the households' active load at each "
         "connection point of the feeder, MW", optional=True),
    Port("connection_load_q_mvar", "out", "vector", None, "on a feeder source: their reactive load there, MVAR",
         optional=True),
    Port("connection_pv_p_mw", "out", "vector", None, "on a feeder source: their PV generation there, MW",
         optional=True),
)
