"""The orders each kind of LEM participant sends for one hour: consumers, PV prosumers, CHP units.

The fixed rules of the participants who do not learn, and the one-block offer of a CHP at a given
price. Separate from the day and its clearing because the participants' federates build exactly
these orders, hour by hour, without the learner.

* **Consumers** are inelastic price takers: one bid per hour for their whole load at the retail
  tariff (the most they would pay, since the grid always sells at it). What the LEM does not
  serve is bought from the grid at retail.
* **Prosumers** net their PV against their load hour by hour: a deficit is bid at retail like a
  consumer; a surplus is offered at the feed-in tariff (their opportunity cost, since unsold
  surplus is injected at feed-in). A prosumer is never on both sides in one hour.
* **CHP units** offer their whole capacity as one block at their bid, never below their floor
  (:func:`lec_cosim.models.chp_cost.chp_bid_floor_eur_per_kwh`).
"""

from __future__ import annotations

import math

from lec_cosim.models.auction import Order
from lec_cosim.models.chp_cost import CHP_B_EUR_PER_KWH, chp_bid_floor_eur_per_kwh
from lec_cosim.models.tariffs import FEED_IN_EUR_PER_KWH, retail_tariff_eur_per_kwh


def _kwh(value, what):
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def consumer_orders(name: str, load_kwh: float, hour: int, scheme: str = "plain") -> list[Order]:
    """Orders of a consumer for one hour: its whole load bid at the retail tariff.

    Returns an empty list when the load is 0.
    """
    load = _kwh(load_kwh, "load_kwh")
    if load == 0:
        return []
    return [Order(name, "buy", retail_tariff_eur_per_kwh(hour, scheme), load)]


def prosumer_orders(name: str, load_kwh: float, pv_kwh: float, hour: int, scheme: str = "plain") -> list[Order]:
    """Orders of a PV prosumer for one hour: the deficit bid at retail, or the surplus offered at
    the feed-in tariff. Returns an empty list when load and PV balance.
    """
    net = _kwh(load_kwh, "load_kwh") - _kwh(pv_kwh, "pv_kwh")
    if net > 0:
        return [Order(name, "buy", retail_tariff_eur_per_kwh(hour, scheme), net)]
    if net < 0:
        return [Order(name, "sell", FEED_IN_EUR_PER_KWH, -net)]
    return []


def chp_orders(
    name: str,
    capacity_kw: float,
    price_eur_per_kwh: float,
    *,
    b_eur_per_kwh: float = CHP_B_EUR_PER_KWH,
) -> list[Order]:
    """Orders of a CHP for one hour: its whole capacity offered as one block at the bid price.

    Raises ``ValueError`` if the price is below the CHP's floor :func:`chp_bid_floor_eur_per_kwh`.
    """
    capacity = _kwh(capacity_kw, "capacity_kw")
    return [Order(name, "sell", _checked_price(name, capacity, price_eur_per_kwh, b_eur_per_kwh), capacity)]


def agent_chp_orders(name: str, capacity_kw: float, price_eur_per_kwh: float, quantity_kwh: float, *,
                     b_eur_per_kwh: float = CHP_B_EUR_PER_KWH) -> list[Order]:
    """Orders of a CHP whose offer an agent decides: ``quantity_kwh`` (up to its capacity for the hour) at the
    price, or no order for a quantity of 0.

    The price may not be below the floor at full output (:func:`chp_bid_floor_eur_per_kwh`), the highest floor of
    any output (the marginal cost grows with the output), so every accepted kWh earns at least what it costs.
    Raises ``ValueError`` for an offer outside these bounds (an agent's actions are bounded by them).
    """
    capacity = _kwh(capacity_kw, "capacity_kw")
    quantity = float(quantity_kwh)
    if not -1e-9 <= quantity <= capacity + 1e-9:
        raise ValueError(f"CHP {name!r}: offer of {quantity!r} kWh outside 0 to its capacity {capacity:g} kWh")
    if quantity <= 1e-9:
        return []
    return [Order(name, "sell", _checked_price(name, capacity, price_eur_per_kwh, b_eur_per_kwh),
                  min(quantity, capacity))]


def _checked_price(name: str, capacity: float, price_eur_per_kwh: float, b_eur_per_kwh: float) -> float:
    floor = chp_bid_floor_eur_per_kwh(capacity, b_eur_per_kwh)
    price = float(price_eur_per_kwh)
    if not price >= floor - 1e-12:
        raise ValueError(f"CHP {name!r}: offer {price!r} EUR/kWh below its opportunity cost {floor:.6g}")
    return price
