"""A group of local-market players (households, prosumers, CHP producers) in one federate (model
:mod:`lec_cosim.models.lem_community`): each bids every market period and settles, and the group publishes
its members' powers per grid step."""

from __future__ import annotations

from pydantic import Field

from lec_cosim.components import Port, unit_of
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.lem_participants"
PHYSICAL = ("load_kw", "load_kvar", "pv_kw", "chp_kw", "net_kw")
SETTLEMENT = ("lem_bought_kwh", "lem_sold_kwh", "grid_import_kwh", "grid_export_kwh", "chp_kwh", "cost_eur",
              "income_eur")


class Settings(_Settings):
    participants: list[str] = Field(min_length=1)
    """The players of this group, in the order of its vectors."""
    block_steps: int = Field(1, ge=1)
    """Grid steps per publication of its power vectors (one value per player and step, step-major)."""
    periods_per_exchange: int = Field(1, ge=1)
    """Market periods per exchange: with more than one, each order message holds those periods' orders, each
    result their results, and the settlement vectors those periods' values (period-major)."""
    order_offset_s: float
    dispatch_offset_s: float
    physical_vectors: list[str]
    settlement_vectors: list[str]
    agent_players: list[str] = []
    """Players whose bid an agent decides: each reads it at its input port ``{player}.action`` every period,
    instead of bidding by its strategy (a CHP: price EUR/kWh, quantity kWh) or rule (a household: price EUR/kWh
    and the share of its net position of the period it bids, 0 to 1)."""


PORTS = (
    Port("{player}", "endpoint", "message", None, "each player's own endpoint: its market results arrive here",
         optional=True),
    Port("group", "endpoint", "message", None, "the endpoint all players share instead (one order message and one "
         "result for all)", optional=True),
    Port("{player}.action", "in", "vector", None, "an agent's bid for the player (agent_players): price EUR/kWh, "
         "then a CHP's quantity kWh or a household's share of its net position"),
    Port("orders", "target", "message", None, "the pool operator's endpoint (absent without the market)",
         optional=True),
    *(Port(v, "out", "vector", unit_of(v), "per player (and grid step of the block): " + v.replace("_", " "))
      for v in PHYSICAL),
    *(Port(v, "out", "vector", unit_of(v), "per player (and market period of the exchange), the period's settlement: " + v.replace("_", " "))
      for v in SETTLEMENT),
)
