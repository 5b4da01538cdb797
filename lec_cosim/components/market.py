"""The market operator: day-ahead prices from the scenario's price file (model :mod:`lec_cosim.models.prices`)."""

from __future__ import annotations

from lec_cosim.components import Port

PROGRAM = "federates.market"
PORTS = (
    Port("day_ahead_price", "out", "vector", "EUR/MWh",
         "the next day's import prices, one per market step, every 24 h (in the scenario's currency)"),
    Port("day_ahead_export_price", "out", "vector", "EUR/MWh", "the next day's export prices, the same way"),
    Port("price", "out", "double", "EUR/MWh", "the import price of the current market step"),
    Port("export_price", "out", "double", "EUR/MWh", "the export price of the current market step"),
)
