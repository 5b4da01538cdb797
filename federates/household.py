"""Households federate: the LEC's households (load, PV) and its community battery.

At every grid step it plays back the aggregate load and PV, lets the battery's primary
controller follow the EMS set-point within its power and energy limits, and publishes the
resulting powers and state of charge.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.models.battery import Battery
from lec_cosim.models.household import HouseholdFleet


def build(fed: Federate):
    s = fed.scenario
    times = fed.step_times()
    fleet = HouseholdFleet.from_scenario(s)
    power = fleet.power(s.start, fed.period_s, len(times))
    load_p, load_q, pv_p = (power[c].to_numpy() for c in ("load_p_mw", "load_q_mvar", "pv_p_mw"))
    b = s.battery
    battery = Battery(b.capacity_mwh, b.power_mw, b.efficiency, soc_mwh=b.soc_initial * b.capacity_mwh,
                      soc_min_mwh=b.soc_min * b.capacity_mwh, soc_max_mwh=b.soc_max * b.capacity_mwh)
    step_h = fed.period_s / 3600.0
    keys = {port: fed.key_of(port) for port in ("load_p_mw", "load_q_mvar", "pv_p_mw", "battery_p_mw", "soc_mwh")}
    by_point = {}
    if s.grid.source is not None:  # on a feeder: also each connection point's share, for the DSO
        from lec_cosim.models.battery_feeder import community_of, point_powers

        powers = point_powers(s, community_of(s), fed.period_s, len(times), fleet)
        by_point = {fed.key_of(f"connection_{name}"): powers[name] for name in ("load_p_mw", "load_q_mvar", "pv_p_mw")}

    def step(k: int, t: float) -> None:
        p_battery = battery.step(fed.read_port("setpoint_mw"), step_h)
        fed.publish(keys["load_p_mw"], load_p[k])
        fed.publish(keys["load_q_mvar"], load_q[k])
        fed.publish(keys["pv_p_mw"], pv_p[k])
        fed.publish(keys["battery_p_mw"], p_battery)
        fed.publish(keys["soc_mwh"], battery.soc_mwh)
        for key, values in by_point.items():
            fed.publish(key, values[k])

    def reset() -> None:  # a learning environment's next episode: the battery as the scenario starts it
        battery.soc_mwh = b.soc_initial * b.capacity_mwh

    step.reset = reset
    return step


if __name__ == "__main__":
    main(build, __doc__)
