"""EV-charging federate: the community's EVs charging at home, uncontrolled or following the price.

Each grid step it hands the fleet model (:mod:`lec_cosim.models.ev_charging`) the step's start (and, in smart
mode, the day-ahead prices received so far) and publishes the fleet's power, the energy still missing at
departures so far and the sessions ended. At the end it writes ``ev_sessions.csv`` (one row per session).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from federates.common import Federate, main
from lec_cosim.files import write_text_atomic
from lec_cosim.models.ev_charging import (
    EVFleet,
    MobilityStatistics,
    PriceForecast,
    draw_sessions,
)


def build(fed: Federate):
    s, ev = fed.scenario, fed.options.ev
    sessions = draw_sessions(MobilityStatistics.from_folder(ev.mobility_dir), ev.count, s.start, s.end_s,
                             ev.seed, ev.consumption_kwh_per_km, ev.battery_kwh)
    fleet = EVFleet(sessions, ev.charger_kw, fed.period_s, ev.mode)
    prices = PriceForecast(fed.options.market_step_s)
    if fed.options.tariff_eur_per_mwh is not None:  # known for the whole horizon in advance
        prices.add_day(0.0, fed.options.tariff_eur_per_mwh)
    smart, follows_market = ev.mode == "smart", "price" in fed.ports.get("in", {})
    homes = fed.options.homes
    home_of = [i * homes // ev.count for i in range(ev.count)] if homes else []

    def step(k: int, t: float) -> None:
        if follows_market and fed.port_updated("price"):
            prices.add_day(t, fed.read_port("price"))
        fed.publish_port("ev_p_mw", fleet.step(t, prices if smart else None) / 1000.0)
        fed.publish_port("ev_unmet_kwh", fleet.unmet_kwh)
        fed.publish_port("ev_sessions_ended", fleet.sessions_ended)
        if homes:
            home_kw = np.zeros(homes)
            np.add.at(home_kw, home_of[:len(fleet.power_kw_by_ev)], fleet.power_kw_by_ev)
            fed.publish_port("ev_home_kw", home_kw)

    def finish() -> None:
        table = pd.DataFrame(fleet.session_table(), columns=["ev", "arrival_s", "departure_s", "energy_needed_kwh",
                                                            "delivered_kwh", "unmet_kwh"])
        for column in ("arrival", "departure"):
            table.insert(table.columns.get_loc(f"{column}_s"), column,
                         [(s.start + dt.timedelta(seconds=x)).isoformat() for x in table[f"{column}_s"]])
            table = table.drop(columns=f"{column}_s")
        write_text_atomic(fed.output_dir / "ev_sessions.csv", table.to_csv(index=False))

    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
