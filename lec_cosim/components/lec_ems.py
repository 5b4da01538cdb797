"""The community battery's LEC_EMS: the day-ahead LP (model :mod:`lec_cosim.models.ems`)."""

from __future__ import annotations

from lec_cosim.components import Port

PROGRAM = "federates.lec_ems"
PORTS = (
    Port("day_ahead_price", "in", "vector", "EUR/MWh",
         "the next day's import prices, in the scenario's currency (it plans on their arrival)"),
    Port("day_ahead_export_price", "in", "vector", "EUR/MWh", "the next day's export prices"),
    Port("setpoint_mw", "out", "double", "MW", "the battery's set-point for the step (+ charges)"),
    Port("planned_soc_mwh", "out", "double", "MWh", "the state of charge the plan expects after the step"),
)
