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
    keys = {port: fed.key_of(port) for port in ("day_ahead_price", "day_ahead_export_price", "price", "export_price")}

    def step(k: int, t: float) -> None:
        if t % DAY_S == 0:
            day = table.iloc[k : k + per_day]
            fed.publish(keys["day_ahead_price"], day["price"].to_numpy())
            fed.publish(keys["day_ahead_export_price"], day["export_price"].to_numpy())
        fed.publish(keys["price"], table["price"].iat[k])
        fed.publish(keys["export_price"], table["export_price"].iat[k])

    return step


if __name__ == "__main__":
    main(build, __doc__)
