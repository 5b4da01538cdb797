"""EV-charging federate: the community's EVs charging at home, uncontrolled, following the price, or as an agent
decides.

Each grid step it hands the fleet model (:mod:`lec_cosim.models.ev_charging`) the step's start (and, in smart
mode, the day-ahead prices received so far) and publishes the fleet's power, the energy still missing at
departures so far and the sessions ended. With settings ``agent_decides`` it reads each EV's power for the step
at its port ``action`` instead, and publishes what the agent will know of the next step (``outlook``). At the end
it writes ``ev_sessions.csv`` (one row per session).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from federates.common import Federate, main
from lec_cosim.files import write_text_atomic
from lec_cosim.models.ev_charging import OUTLOOK_FIELDS, MobilityStatistics, PriceForecast, fleet_of


def build(fed: Federate):
    s, ev, options = fed.scenario, fed.options.ev, fed.options
    stats = MobilityStatistics.from_folder(ev.mobility_dir)
    smart, follows_market = ev.mode == "smart", "price" in fed.ports.get("in", {})
    homes = options.homes
    home_of = [i * homes // ev.count for i in range(ev.count)] if homes else []
    run, drawn = {}, {}  # drawn: the sessions of each day played (a learning environment plays days again)

    def begin(day_s: float, length_s: float) -> None:
        """The fleet and the prices known of a run from ``day_s`` (seconds from the scenario's start) for
        ``length_s``: the whole run, or a learning environment's episode, which plays that day as its own run."""
        prices = PriceForecast(options.market_step_s)
        if options.tariff_eur_per_mwh is not None:  # known for the whole horizon in advance
            prices.add_day(0.0, options.tariff_eur_per_mwh[int(round(day_s / options.market_step_s)):])
        run.update(day_s=day_s, length_s=length_s, prices=prices,
                   fleet=fleet_of(ev, s.start + dt.timedelta(seconds=day_s), length_s, fed.period_s, stats, drawn))

    begin(0.0, s.end_s)

    def step(k: int, t: float) -> None:
        fleet, prices, t = run["fleet"], run["prices"], t - run["day_s"]  # t: from the run's start
        if follows_market and fed.port_updated("price"):
            prices.add_day(t, fed.read_port("price"), until_s=run["length_s"])  # no further than the run
        if options.agent_decides and not fed.port_updated("action"):  # never the last step's action again
            raise RuntimeError(f"no charging decision from the agent for the step at {t:g} s")
        decided = np.asarray(fed.read_port("action")) if options.agent_decides else None
        fed.publish_port("ev_p_mw", fleet.step(t, prices if smart else None, decided) / 1000.0)
        fed.publish_port("ev_unmet_kwh", fleet.unmet_kwh)
        fed.publish_port("ev_sessions_ended", fleet.sessions_ended)
        if homes:
            home_kw = np.zeros(homes)
            np.add.at(home_kw, home_of[:len(fleet.power_kw_by_ev)], fleet.power_kw_by_ev)
            fed.publish_port("ev_home_kw", home_kw)
        if options.agent_decides:  # what the agent knows of the next step when it decides it
            outlook = fleet.outlook(t + fed.period_s)
            for column, name in enumerate(OUTLOOK_FIELDS):
                fed.publish_port(name, outlook[:, column])

    def reset() -> None:
        """A learning environment's next episode (announced at the port ``episode``): the fleet of a run from the
        episode's day, so that an episode of day D plays as a run from D does."""
        control = fed.read_port("episode")
        begin(float(control["day_s"]), float(control["length_s"]))

    def finish() -> None:
        start = s.start + dt.timedelta(seconds=run["day_s"])
        table = pd.DataFrame(run["fleet"].session_table(), columns=["ev", "arrival_s", "departure_s",
                                                                   "energy_needed_kwh", "delivered_kwh", "unmet_kwh"])
        for column in ("arrival", "departure"):
            table.insert(table.columns.get_loc(f"{column}_s"), column,
                         [(start + dt.timedelta(seconds=x)).isoformat() for x in table[f"{column}_s"]])
            table = table.drop(columns=f"{column}_s")
        write_text_atomic(fed.output_dir / "ev_sessions.csv", table.to_csv(index=False))

    step.reset = reset
    step.finish = finish
    return step


if __name__ == "__main__":
    main(build, __doc__)
