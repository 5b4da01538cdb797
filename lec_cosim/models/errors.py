"""Errors the scenario causes, found only while solving: the user changes the scenario, not the code."""

from __future__ import annotations


class InfeasibleInput(Exception):
    """The scenario asks for something with no solution (a schedule no battery can keep, a grid
    with no operating point).

    ``field`` names the part of the scenario to change. Federates report these as input errors,
    and ``lec-cosim run`` exits with the input-error code (2), naming the scenario file and field.
    """

    field = "(scenario)"
