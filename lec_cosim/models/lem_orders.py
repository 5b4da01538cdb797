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

import functools
import math

import numpy as np

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


def household_orders(names, kinds, load_kwh, pv_kwh, hour: int, scheme: str = "plain") -> list[list[Order]]:
    """:func:`consumer_orders` and :func:`prosumer_orders` of many households for one hour at once, the same orders
    to the last digit: one list per household, in the order of ``names``.

    Parameters
    ----------
    names, kinds : sequence of str
        The households and their kinds (``consumer`` or ``prosumer``).
    load_kwh, pv_kwh : array_like
        Their load and PV of the hour, kWh, finite and >= 0 (a consumer's PV is not read).
    """
    kinds = np.asarray(kinds)
    unknown = sorted(set(kinds.tolist()) - {"consumer", "prosumer"})
    if unknown:
        raise ValueError(f"not a household kind: {unknown}")
    load, pv = np.asarray(load_kwh, dtype=float), np.asarray(pv_kwh, dtype=float)
    prosumer = kinds == "prosumer"
    bad_load = ~(np.isfinite(load) & (load >= 0))
    bad_pv = prosumer & ~(np.isfinite(pv) & (pv >= 0))
    if bad_load.any() or bad_pv.any():  # the first bad household's error, as one at a time would raise it
        j = int(np.argmax(bad_load | bad_pv))
        _kwh(float(load[j]), "load_kwh")
        _kwh(float(pv[j]), "pv_kwh")
    retail = retail_tariff_eur_per_kwh(hour, scheme)
    orders = []
    for name, net in zip(names, np.where(kinds == "consumer", load, load - pv).tolist()):
        orders.append([Order(name, "buy", retail, net)] if net > 0 else
                      [Order(name, "sell", FEED_IN_EUR_PER_KWH, -net)] if net < 0 else [])
    return orders


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


def agent_household_orders(name: str, load_kwh: float, pv_kwh: float, price_eur_per_kwh: float,
                           share: float) -> list[Order]:
    """Orders of a household (consumer or PV prosumer) whose bid an agent decides: its net position in the hour
    sets the side (a deficit is bought, a surplus sold, as :func:`prosumer_orders`) and the most it can bid; the
    agent decides the price and the ``share`` of the position it bids (0 to 1, clipped). No order for a balanced
    hour or a share of 0.

    The household's own rule bids its whole deficit at retail and offers its whole surplus at the feed-in
    tariff: those prices with a share of 1 give exactly :func:`prosumer_orders` (and :func:`consumer_orders`
    for a household without PV).
    """
    net = _kwh(load_kwh, "load_kwh") - _kwh(pv_kwh, "pv_kwh")
    price, share = float(price_eur_per_kwh), float(share)
    if not math.isfinite(price) or not math.isfinite(share):
        raise ValueError(f"household {name!r}: a bid of a share {share!r} at {price!r} EUR/kWh is not finite")
    share = min(max(share, 0.0), 1.0)
    if net == 0 or share == 0:
        return []
    quantity = share * abs(net)  # a share of 1 is the position itself, to the last digit
    return [Order(name, "buy" if net > 0 else "sell", price, quantity)]


@functools.lru_cache(maxsize=256)
def _bid_floor(capacity: float, b_eur_per_kwh: float) -> float:
    """:func:`chp_bid_floor_eur_per_kwh` of one CHP, computed once (a CHP offers every hour at the same capacity)."""
    return chp_bid_floor_eur_per_kwh(capacity, b_eur_per_kwh)


def _checked_price(name: str, capacity: float, price_eur_per_kwh: float, b_eur_per_kwh: float) -> float:
    floor = _bid_floor(capacity, b_eur_per_kwh)
    price = float(price_eur_per_kwh)
    if not price >= floor - 1e-12:
        raise ValueError(f"CHP {name!r}: offer {price!r} EUR/kWh below its opportunity cost {floor:.6g}")
    return price
