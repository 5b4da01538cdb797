"""P2P inside the LEC: home energy management, the LEC's P2P pool, fairness and the inter-LEC platform.

After Moret and Pinson, "Energy collectives: a community and fairness based approach to future
electricity markets", IEEE Trans. Power Syst. 34(5), 2019 (preprint 2018). In an energy collective
the members trade with each other first and with the grid only for what the collective cannot
balance itself. This module holds the pieces of that framework for one market period (one hour);
the LEC EMS federate strings them together, each piece in its own module (every public name
importable from here too):

1. **Home plan** (:func:`plan_home`, in :mod:`lec_cosim.models.home_plan`). Every member runs a
   home energy-management LP over the remaining steps: grid import and export at the given
   prices, a home battery, an import cap set by the LEC (import above it pays a fee) and the
   fairness fee on all import. The plan's ``net_kw`` of the coming step is the member's position.
2. **P2P pool** (:func:`member_orders`, :func:`clear_lec_pool`, in :mod:`lec_cosim.models.lec_pool`,
   which also explains the prices of the pool and the platform). A member with a positive net
   energy bids for it at the import (retail) price, a member with a surplus offers it at the
   export (feed-in) price: the prices at which the grid would otherwise serve them. The pool is
   a uniform-price double auction (:func:`lec_cosim.models.auction.clear_double_auction`,
   merit-order path). What it does not match the LEC buys or sells upstream for the member; the
   LEC's residual is ``lec_net_kwh``.
3. **Fairness and caps** (:func:`member_caps_and_fees`, in :mod:`lec_cosim.models.import_fairness`).
   The LEC EMS shares the LEC's import limit equally among the members as import caps and charges
   the fairness fee to the member(s) who imported most in the previous period.
4. **Inter-LEC platform** (:func:`clear_platform`, in :mod:`lec_cosim.models.platform_clearing`).
   The LECs' residuals meet on a platform (a second double auction) before the rest goes to the
   upstream grid. Used by the "P2P inside the LEC" framework and by the inter-LEC trading
   framework.

The market period is one hour, so kW and kWh per period are the same numbers in the pool and on
the platform. No HELICS here: plain Python, NumPy and SciPy.
"""

from __future__ import annotations

from lec_cosim.models.home_plan import (  # noqa: F401
    THROUGHPUT_PENALTY_EUR_PER_KWH,
    HomePlan,
    plan_home,
)
from lec_cosim.models.import_fairness import member_caps_and_fees  # noqa: F401
from lec_cosim.models.lec_pool import PoolResult, clear_lec_pool, member_orders  # noqa: F401
from lec_cosim.models.platform_clearing import PlatformResult, clear_platform  # noqa: F401
