"""Community battery with its primary controller."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Battery:
    """A battery that follows power set-points within its power and energy limits.

    Sign convention (load convention, as pandapower's ``storage``): ``p_mw > 0`` charges.
    Charging ``p`` MW for ``h`` hours stores ``p * sqrt(eta) * h`` MWh; discharging ``p`` MW
    (delivered to the grid) draws ``p / sqrt(eta) * h`` MWh, with ``eta`` the round-trip
    efficiency.

    Parameters
    ----------
    capacity_mwh, power_mw : float
        Usable energy and power rating (both directions).
    efficiency : float
        Round-trip efficiency in (0, 1].
    soc_mwh : float
        Present state of charge.
    soc_min_mwh, soc_max_mwh : float, optional
        The window the state of charge stays in (default: empty to full).
    """

    capacity_mwh: float
    power_mw: float
    efficiency: float
    soc_mwh: float
    soc_min_mwh: float = 0.0
    soc_max_mwh: float | None = None

    def __post_init__(self):
        if self.soc_max_mwh is None:
            self.soc_max_mwh = self.capacity_mwh

    @property
    def one_way_efficiency(self) -> float:
        return math.sqrt(self.efficiency)

    def clamp(self, setpoint_mw: float, duration_h: float) -> float:
        """Largest feasible power no farther from ``setpoint_mw`` than the request.

        Clamps to the power rating and to what the state of charge allows over ``duration_h``.
        """
        p = min(max(setpoint_mw, -self.power_mw), self.power_mw)
        if p > 0:
            room_mwh = max(self.soc_max_mwh - self.soc_mwh, 0.0)
            p = min(p, room_mwh / (self.one_way_efficiency * duration_h))
        elif p < 0:
            stored_mwh = max(self.soc_mwh - self.soc_min_mwh, 0.0)
            p = max(p, -stored_mwh * self.one_way_efficiency / duration_h)
        return p

    def step(self, setpoint_mw: float, duration_h: float) -> float:
        """Apply a set-point for ``duration_h`` hours; returns the power actually drawn (MW)."""
        p = self.clamp(setpoint_mw, duration_h)
        if p >= 0:
            self.soc_mwh += p * self.one_way_efficiency * duration_h
        else:
            self.soc_mwh += p / self.one_way_efficiency * duration_h
        self.soc_mwh = min(max(self.soc_mwh, self.soc_min_mwh), self.soc_max_mwh)
        return p


def stored_energy_value_eur(change, price, round_trip_efficiency: float) -> float:
    """What a change of a battery's stored energy is worth at ``price`` (EUR per unit of ``change``'s energy): a
    gain can deliver only its one-way share of it, a loss costs more than itself to put back. So a battery that
    ends anywhere but where it began is never worth more than ending there (a learning episode's end)."""
    one_way = math.sqrt(round_trip_efficiency)
    return change * price * one_way if change > 0 else change * price / one_way
