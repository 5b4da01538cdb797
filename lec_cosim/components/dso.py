"""The DSO: the distribution grid's power flow every grid step, for any study, through the study's grid
adapter (``lec_cosim.adapters``: the balanced community grid, the three-phase IEEE feeder, the three-LEC grid).
Its ports are its adapter's."""

from __future__ import annotations

from pydantic import Field

from lec_cosim.components import Port
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.dso"


class Settings(_Settings):
    grid_adapter: str = Field(pattern=r"^[\w.]+:\w+$")
    """The adapter, ``"package.module:Class"``; what follows is what the adapters read."""
    block_steps: int = Field(1, ge=1)
    """IEEE feeder: grid steps per exchange (each input a block of steps)."""
    groups: dict[str, list[str]] = {}
    """IEEE feeder: the participant groups and their players, in the order of their vectors."""
    extra_loads_mw: list[str] = []
    """Community grid: input ports of loads a study adds on the LV busbar (MW)."""
    extra_loads_kw: list[str] = []
    """Three-LEC grid: input ports of loads a study adds at the homes (kW per household)."""
    household_limits: bool = False
    """Three-LEC grid: publish each household's import and export limits (``dso.limits_per: household``)."""


def ports(settings: dict) -> tuple[Port, ...]:
    """Its adapter's ports (each adapter's ``ports(settings)``)."""
    from lec_cosim.adapters import load_object

    return tuple(load_object(settings["grid_adapter"]).ports(settings))
