"""Bidding in the day-ahead LEM: tariffs, participants' orders, CHP profits and ACO-learnt bids.

After Lezama, Faia and Vale, "Bidding in Local Electricity Markets Considering Low Voltage Grid
Constraints". 61 players (13 consumers, 42 PV prosumers, 6 CHP producers of 10 kW) trade in an
hourly day-ahead LEM cleared as a symmetric pool (:mod:`lec_cosim.models.auction`). Consumers and
prosumers follow fixed rules; the CHP producers learn their bids with ant colony optimisation.

The pieces, each in its own module with the readings of the points the paper leaves open that
concern it; every public name of them is importable from here too:

* :mod:`lec_cosim.models.tariffs`: feed-in and retail (plain or bi-hourly) tariffs;
* :mod:`lec_cosim.models.chp_cost`: the CHPs' production cost (b = 0.20, G in MW) and bid floor;
* :mod:`lec_cosim.models.lem_orders`: consumers', prosumers' and CHPs' orders for one hour;
* :mod:`lec_cosim.models.lem_day`: one day of the participants (:class:`LemDay`), its bid bounds
  and its book;
* :mod:`lec_cosim.models.lem_day_clearing`: the whole day cleared at once for a batch of bids
  (:func:`day_profit`, :class:`DayResult`);
* :mod:`lec_cosim.models.bid_fitness`: the fitness, with the DN-impact penalty, and the
  :class:`BiddingProblem`;
* :mod:`lec_cosim.models.ant_colony`: ACO_R and :func:`train_aco`.

The market period is one hour, so kW and kWh per period are the same numbers. No HELICS here.
"""

from __future__ import annotations

from lec_cosim.models.ant_colony import TrainingResult, acor_minimize, train_aco  # noqa: F401
from lec_cosim.models.bid_fitness import (  # noqa: F401
    NOT_CLEARED_PENALTY,
    BatchDnPenalty,
    BiddingProblem,
    DnPenalty,
    fitness,
    fitness_components,
)
from lec_cosim.models.chp_cost import (  # noqa: F401
    CHP_B_EUR_PER_KWH,
    CHP_CAPACITY_KW,
    chp_bid_floor_eur_per_kwh,
    chp_marginal_cost_eur_per_kwh,
    chp_production_cost_eur,
)
from lec_cosim.models.lem_day import HOURS, LemDay, day_orders, synthetic_day  # noqa: F401
from lec_cosim.models.lem_day_clearing import DayResult, day_profit  # noqa: F401
from lec_cosim.models.lem_orders import chp_orders, consumer_orders, prosumer_orders  # noqa: F401
from lec_cosim.models.tariffs import (  # noqa: F401
    BIHOURLY_OFF_PEAK_EUR_PER_KWH,
    BIHOURLY_PEAK_EUR_PER_KWH,
    FEED_IN,
    FEED_IN_EUR_PER_KWH,
    PEAK_END_HOUR,
    PEAK_START_HOUR,
    PLAIN_EUR_PER_KWH,
    SCHEMES,
    retail_tariff_eur_per_kwh,
)

STRATEGIES = ("truthful", "aco")
