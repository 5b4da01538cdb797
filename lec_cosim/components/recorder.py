"""The recorder: observes every grid step last and writes the run's results through the study's record
(``lec_cosim.adapters``; each study's ``results.py``). It reads any value a study connects to it."""

from __future__ import annotations

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.recorder"


class Settings(_Settings):
    record: str = Field(pattern=r"^[\w.]+:\w+$")
    """The study's record, ``"package.module:Class"``; what follows is what the records read."""
    query_exchanges: bool = False
    """Ask every other federate the ``exchanges`` query at the last step (who sent what to whom)."""
    federates: list[str] = []
    """The federates to ask (with ``query_exchanges``)."""
    block_steps: int = Field(1, ge=1)
    periods_per_exchange: int = Field(1, ge=1)
    """Local market: market periods per exchange (its settlement vectors period-major, its books bundled)."""
    groups: dict[str, list[str]] = {}
    grid_counts: list[str] = []
    columns: dict[str, list[str]] = {}
    tables: list[str] = []
    added_columns: list[str] = []
    """Input ports of the devices a study added at its homes (``lec_cosim.home_devices``), one column each."""
    added_kpis: list[str] = []
    """Their KPI functions, ``"module:function"``: each called with the recorded table and the scenario, its
    KPIs join the summary's."""


PORTS = (
    Port("{value*}", "in", "any", None, "any value a study records (its record names them)"),
    Port("book", "endpoint", "message", None, "local market: the pool operator's cleared books", optional=True),
)
