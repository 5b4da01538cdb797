"""The inter-LEC platform: clears the LECs' offers each hour (model :mod:`lec_cosim.models.exchange`)."""

from __future__ import annotations

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.mlec_platform"


class Settings(_Settings):
    lecs: list[str] = Field(min_length=1)
    """The LECs it serves, in order."""


PORTS = (
    Port("platform", "endpoint", "message", None, "where the LEC_EMSs' offers arrive"),
    Port("lecs", "target", "message", None, "each LEC_EMS's endpoint, for its answer"),
    Port("record", "out", "string", None, "the hour's clearing (JSON), for the recorder"),
)
