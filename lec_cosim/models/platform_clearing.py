"""The inter-LEC platform: the LECs' residuals for one period cleared in a double auction, with wheeling.

The residuals the LECs' P2P pools leave (:mod:`lec_cosim.models.lec_pool`) meet on a platform
before the rest goes to the upstream grid; the sellers' offers carry the wheeling fee. Used by the
"P2P inside the LEC" framework and by the inter-LEC trading framework (the platform federate), so
separate from either LEC's own pool. The platform's price follows the rule of the pool's module
docstring, with export + wheeling in place of the export price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lec_cosim.models.auction import clear_double_auction
from lec_cosim.models.home_plan import _nonnegative
from lec_cosim.models.lec_pool import _price, _split, member_orders


@dataclass(frozen=True, eq=False)
class PlatformResult:
    """Outcome of the inter-LEC platform for one period. Per-LEC dicts are keyed by LEC name.

    Attributes
    ----------
    price_eur_per_kwh : float or None
        The platform's uniform price, ``None`` when nothing trades.
    volume_kwh : float
        Energy traded between LECs, kWh.
    bought_kwh, sold_kwh : dict of str to float
        Energy each LEC bought from / sold to other LECs on the platform, kWh.
    grid_import_kwh, grid_export_kwh : dict of str to float
        The unmatched rest of each LEC's need / surplus, exchanged with the upstream grid, kWh.
    payment_eur : dict of str to float
        Paid to the platform: price x (bought - sold), EUR (negative: received). Sums to zero.
    wheeling_eur : dict of str to float
        Wheeling fee x sold: what each selling LEC owes the network operator for the energy it
        delivered over the grid, EUR. Outside the platform's budget (not in ``payment_eur``).
    """

    price_eur_per_kwh: float | None
    volume_kwh: float
    bought_kwh: dict[str, float]
    sold_kwh: dict[str, float]
    grid_import_kwh: dict[str, float]
    grid_export_kwh: dict[str, float]
    payment_eur: dict[str, float]
    wheeling_eur: dict[str, float]


def clear_platform(
    positions_kwh: Mapping[str, float],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
    wheeling_fee_eur_per_kwh: float = 0.0,
) -> PlatformResult:
    """Clear the inter-LEC platform for one period (merit-order double auction).

    Every LEC in ``positions_kwh`` with a need bids for it at the import price; every LEC with a
    surplus offers it at the export price + the wheeling fee. The wheeling fee is thus carried by
    the sellers: their offer includes it, so any clearing price covers it (price >= export +
    wheeling), and a seller's income net of the fee is never below what the grid would pay. The
    buyers pay the uniform price only; platform payments are energy at the uniform price and sum
    to zero across the LECs. The fee itself is reported as ``wheeling_eur`` of the sellers. If
    export + wheeling exceeds the import price, nothing trades.

    The price is the import price when need exceeds surplus, export + wheeling when surplus
    exceeds need, and their midpoint when the two are equal (:mod:`lec_cosim.models.lec_pool`).

    Parameters
    ----------
    positions_kwh : mapping of str to float
        Every participating LEC's residual of the period, kWh (positive: needs energy, negative:
        surplus, 0: on the platform without an order). An LEC not in the mapping is not on the
        platform and does not appear in the result.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        The upstream grid's prices, EUR/kWh.
    wheeling_fee_eur_per_kwh : float
        Network charge per kWh traded between LECs, >= 0.

    Returns
    -------
    PlatformResult
    """
    fee = _nonnegative(wheeling_fee_eur_per_kwh, "wheeling_fee_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    orders = member_orders(
        positions_kwh, import_price_eur_per_kwh=import_price_eur_per_kwh, export_price_eur_per_kwh=p_exp + fee
    )
    result = clear_double_auction(orders, solver="merit_order")
    bought, sold, grid_import, grid_export = _split(orders, result)
    zero = dict.fromkeys(positions_kwh, 0.0)
    bought, sold = {**zero, **bought}, {**zero, **sold}
    grid_import, grid_export = {**zero, **grid_import}, {**zero, **grid_export}
    price = result.price_eur_per_kwh
    platform_price = 0.0 if price is None else price
    return PlatformResult(
        price_eur_per_kwh=price,
        volume_kwh=float(result.volume_kwh),
        bought_kwh=bought,
        sold_kwh=sold,
        grid_import_kwh=grid_import,
        grid_export_kwh=grid_export,
        payment_eur={lec: platform_price * (bought[lec] - sold[lec]) for lec in zero},
        wheeling_eur={lec: fee * sold[lec] for lec in zero},
    )
