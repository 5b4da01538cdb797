"""The pool operator: clears a pool of orders each market period (model :mod:`lec_cosim.models.auction`);
the local market's, and the three-LEC p2p study's LEC markets with ``p2p.market: pool_operator``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.lem_market"


class Settings(_Settings):
    solver: Literal["merit_order", "glpk", "highs"]
    """How it clears: the merit order, or the LP with GLPK or HiGHS (the same optimum; the LP is the check)."""
    bidder_allocation: bool = True
    """Whether each bidder's result carries its bilateral allocation x_ij (kWh by counterpart). The book sent to
    ``book`` always does; a study whose bidders do not read it saves the largest part of the messages."""
    periods_per_step: int = Field(1, ge=1)
    """Market periods it clears at each step: with more than one (a day's hours), each order message holds the
    orders of those periods, each answer and the book their results, and its values are vectors (one per period)."""


def ports(settings: dict) -> tuple[Port, ...]:
    """Its values are numbers, or vectors of the step's periods with ``periods_per_step`` > 1."""
    values = "vector" if int(settings.get("periods_per_step", 1)) > 1 else "double"
    return (
        Port("orders", "endpoint", "message", None, "where the members' orders arrive"),
        Port("results", "target", "message", None, "each member's endpoint, for its result (price, bought, sold)"),
        Port("book", "target", "message", None, "the recorder's endpoint, for the cleared book", optional=True),
        Port("price_eur_per_kwh", "out", values, "EUR/kWh", "the clearing price of the period (NaN: none)"),
        Port("volume_kwh", "out", values, "kWh", "the energy traded in the period"),
    )
