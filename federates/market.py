"""Market operator federate: streams day-ahead spot and export prices.

At the start of each day it publishes the day's prices as vectors (one value per market step);
at every market step it publishes the current price.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.models.prices import PriceFeed

DAY_S = 86400


def build(fed: Federate):
    scenario = fed.scenario
    times = fed.step_times()
    table = PriceFeed.from_scenario(scenario).prices(scenario.start, fed.period_s, len(times))
    per_day = int(DAY_S // fed.period_s)

    def step(k: int, t: float) -> None:
        if t % DAY_S == 0:
            day = table.iloc[k : k + per_day]
            fed.publish("market/day_ahead_price_eur_per_mwh", day["price"].to_numpy())
            fed.publish("market/day_ahead_export_price_eur_per_mwh", day["export_price"].to_numpy())
        fed.publish("market/price_eur_per_mwh", table["price"].iat[k])
        fed.publish("market/export_price_eur_per_mwh", table["export_price"].iat[k])

    return step


if __name__ == "__main__":
    main(build, __doc__)
