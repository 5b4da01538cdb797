"""The agent proxy: takes the decisions of the roles a scenario hands to an external agent (``agents:``).

A study's wiring gives it, per role, an output port ``{role}.action`` (the study's action fields in their
units: a vector, or a double for one field) that the role's own federate reads instead of deciding, and the
input ports of what the role observes. Its slot in every decision period comes before the role acts on it
(the local market's CHPs: +0.5 ms, before their orders; the battery's LEC_EMS: its own slot, +1 ms; a device at
the homes, the EVs' charging: the LEC_EMS's slot, before the devices at +2.5 ms). In a learning environment
(:mod:`lec_cosim.env`) the environment itself is this federate; as a program (``federates/agent.py``, in a
normal run) it stops the run with an input error.
"""

from __future__ import annotations

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.agent"


class Settings(_Settings):
    roles: list[str] = Field(min_length=1)
    """The roles it decides for, in the order of the environment's agents."""
    role_group: dict[str, str] = {}
    """Whose vectors hold a role's own values (its participant group, for the local market)."""
    role_index: dict[str, int] = {}
    """A role's index in its group's vectors."""
    decision_period_s: float = Field(gt=0)
    """Seconds between two decisions of a role (the market period)."""


PORTS = (
    Port("{role}.action", "out", "any", None, "a role's decision for the period (its study's action fields: a "
         "vector, or a double for one field)"),
    Port("{role}.{value}", "out", "any", None, "what the role's own federate publishes besides its decision (NaN: "
         "an agent does not say)", optional=True),
    Port("episode_control", "out", "string", None, "a long-lived environment's episode control, read by every "
         "other federate at its port episode", optional=True),
    Port("{observed*}", "in", "any", None, "what the roles observe (prices, their own settlement, the DSO's "
         "values), as the study's wiring connects them"),
)
