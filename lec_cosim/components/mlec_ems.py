"""A LEC_EMS of the three-LEC study, its framework a strategy (``ems``): plan alone and offer the rest to
the platform (decentralised), negotiate with its neighbours (distributed), or run its LEC's market of
member bids (p2p). Models :mod:`lec_cosim.models.multi_lec_ems`, :mod:`lec_cosim.models.admm_agent`,
:mod:`lec_cosim.models.p2p`."""

from __future__ import annotations

from typing import Literal

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.mlec_ems"


class Settings(_Settings):
    lec: str
    """The LEC it manages."""
    ems: Literal["plan_alone", "negotiate", "run_market"]
    """Its strategy (the framework's, ``lec_cosim.studies.three_lecs.wiring.DESIGNS``)."""
    on_platform: bool
    """Offers its residual to the inter-LEC platform each hour."""
    members_bid: bool
    """The HEMSs plan their home batteries and bid (p2p); otherwise it pools them with the community battery."""
    pool: Literal["clear_orders", "settle_book", "clear_continuous"] = "clear_orders"
    """run_market: clear the members' orders itself, settle the book its LEC's pool operator cleared, or match
    them itself in a continuous double auction (the arrival order from the scenario's ``p2p.arrival_seed``)."""
    plan_offset_s: float
    settle_offset_s: float
    admm_slot_s: float | None = None
    """negotiate: the spacing of the negotiation's iterations within the hour."""
    clear_offset_s: float | None = None
    """run_market: when it clears (or settles) its LEC's market in the hour."""


PORTS = (
    Port("meter", "endpoint", "message", None, "where the households' measurement arrives at every hour's start: "
         "the energy in its pooled batteries, which it plans the hour from (the run's first hour from the known "
         "initial state)"),
    Port("import_limit_kw", "in", "vector", "kW", "the DSO's import limit per LEC (with dso.limits)", optional=True),
    Port("export_limit_kw", "in", "vector", "kW", "the DSO's export limit per LEC (with dso.limits)", optional=True),
    Port("import_limit_day_kw", "in", "vector", "kW", "with dso.limits_per household: each LEC's import limit for "
         "every hour from the DSO's forecast (LEC by LEC), for the plan's later hours", optional=True),
    Port("export_limit_day_kw", "in", "vector", "kW", "the same for export", optional=True),
    Port("household_import_limit_kw", "in", "vector", "kW", "run_market with dso.limits_per household: the DSO's "
         "import limit per household, its members' caps", optional=True),
    Port("ems", "endpoint", "message", None, "where the platform's answers and neighbours' proposals arrive",
         optional=True),
    Port("market", "endpoint", "message", None, "run_market: where its members' bids arrive", optional=True),
    Port("platform", "target", "message", None, "the platform's endpoint", optional=True),
    Port("lecs", "target", "message", None, "negotiate: each neighbour LEC_EMS's endpoint", optional=True),
    Port("members", "target", "message", None, "run_market: each member's endpoint", optional=True),
    Port("pooled_charge_kw", "out", "double", "kW", "the pooled batteries' charging power for the hour"),
    Port("curtail_kw", "out", "double", "kW", "PV its LEC curtails in the hour"),
    Port("record", "out", "string", None, "its hour (JSON): plan, offers, trades, cost, for the recorder"),
    Port("member_caps", "out", "string", None, "run_market, for the agent proxy: each member's import cap and fees "
         "of the hour (JSON, as sent to the members)", optional=True),
)
