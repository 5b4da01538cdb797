"""Production cost of the LEM's CHP units: marginal cost, an hour's cost and the lowest offer (bid floor).

Separate from the bidding because the same cost rule settles the CHPs in the market federate, the
participants and the reports, not only the learner.

"Production cost 2*b*sqrt(G)" with b = 0.20 EUR/kWh is read as the *marginal* cost at output G,
with G in MW (numerically): MC(G) = 2*b*sqrt(G_kW / 1000) EUR/kWh. With G in kW a 10 kW unit
would cost 1.26 EUR/kWh, eight times the retail tariff, and could never sell; in MW it costs
0.040 EUR/kWh at full output, the fuel cost of a gas CHP. The production cost of an hour at
constant output G is the integral C(G) = (4/3)*b*G*sqrt(G/1000) EUR (G in kW, one hour), so
C(10 kW) = 0.2667 EUR. A CHP offers its whole capacity as one block, and its price floor (the
truthful bid) is its opportunity cost: the higher of the marginal cost at full output,
MC(capacity) = 0.040, and the feed-in tariff 0.045 EUR/kWh (what its energy fetches outside the
LEM: without a LEM, the base cases, it sells to the grid at feed-in). Every accepted kWh then
earns at least its marginal cost, so truthful bidding never loses money, and every offer in the
pool is at or above feed-in, so the price lies between feed-in and retail. In the LEM cases a CHP
produces exactly what the LEM accepts (it does not sell to the grid).
"""

from __future__ import annotations

import numpy as np

from lec_cosim.models.tariffs import FEED_IN_EUR_PER_KWH

CHP_B_EUR_PER_KWH = 0.20
CHP_CAPACITY_KW = 10.0


def chp_marginal_cost_eur_per_kwh(output_kw, b_eur_per_kwh: float = CHP_B_EUR_PER_KWH):
    """Marginal production cost MC(G) = 2*b*sqrt(G / 1000) of a CHP at output G kW, EUR/kWh.

    G enters in MW (module docstring): 0.040 EUR/kWh at 10 kW with b = 0.20.
    """
    g = np.asarray(output_kw, dtype=float)
    if np.any(g < 0):
        raise ValueError("CHP output must be >= 0 kW")
    cost = 2.0 * b_eur_per_kwh * np.sqrt(g / 1000.0)
    return float(cost) if cost.ndim == 0 else cost


def chp_production_cost_eur(energy_kwh, b_eur_per_kwh: float = CHP_B_EUR_PER_KWH):
    """Production cost of one hour at constant output, the integral of the marginal cost, EUR.

    C(G) = (4/3) * b * G * sqrt(G / 1000) for G kWh produced in the hour (0.2667 EUR for 10 kWh).
    """
    g = np.asarray(energy_kwh, dtype=float)
    if np.any(g < 0):
        raise ValueError("CHP energy must be >= 0 kWh")
    cost = (4.0 / 3.0) * b_eur_per_kwh * g * np.sqrt(g / 1000.0)
    return float(cost) if cost.ndim == 0 else cost


def chp_bid_floor_eur_per_kwh(capacity_kw, b_eur_per_kwh: float = CHP_B_EUR_PER_KWH,
                              feed_in_eur_per_kwh: float = FEED_IN_EUR_PER_KWH):
    """Lowest offer price of a CHP (the truthful bid), EUR/kWh: its opportunity cost, the higher of
    its marginal cost at full output and the feed-in tariff (module docstring)."""
    floor = np.maximum(chp_marginal_cost_eur_per_kwh(capacity_kw, b_eur_per_kwh), feed_in_eur_per_kwh)
    return float(floor) if np.ndim(floor) == 0 else floor
