"""Market-platform federate: clears the LECs' hourly positions among them; the rest goes to the grid.

At H + 4 ms it reads every position the LECs on the platform sent (H + 1 ms or H + 3 ms), clears
them (``lec_cosim.models.p2p.clear_platform``: LECs short of energy bid the retail tariff, LECs
with a surplus offer at feed-in plus the wheeling fee), answers each LEC and publishes the record.
An LEC that sent nothing is not on the platform that hour.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.models.multi_lec_ems import hourly_tariffs, members_from_scenario
from lec_cosim.models.p2p import clear_platform


def build(fed: Federate):
    s = fed.scenario
    members = members_from_scenario(s)
    retail, feed_in = hourly_tariffs(members, s.tariff.scheme, s.tariff.feed_in_eur_per_kwh)

    def clear(hour: int) -> None:
        positions = {}
        for _, payload in fed.receive(fed.endpoint("platform")):
            if payload["hour"] != hour:
                raise RuntimeError(f"platform: position of {payload['lec']} for hour {payload['hour']} in hour {hour}")
            positions[payload["lec"]] = float(payload["position_kwh"])
        result = clear_platform(positions, import_price_eur_per_kwh=retail[hour], export_price_eur_per_kwh=feed_in[hour],
                                wheeling_fee_eur_per_kwh=s.platform.wheeling_fee_eur_per_kwh)
        answers = []
        for lec in positions:
            answer = {"hour": hour, "lec": lec, "position_kwh": positions[lec],
                      "price_eur_per_kwh": result.price_eur_per_kwh,
                      **{k: getattr(result, k)[lec] for k in ("bought_kwh", "sold_kwh", "grid_import_kwh",
                                                              "grid_export_kwh", "payment_eur", "wheeling_eur")}}
            answers.append(answer)
            fed.send(fed.endpoint("platform"), fed.target("lecs", lec), answer)
        fed.publish_port("record", {"hour": hour, "price_eur_per_kwh": result.price_eur_per_kwh,
                                                  "lecs": answers})

    return lambda hour, _: clear(hour)  # one step per market hour, at H + 4 ms (the config's offset)


if __name__ == "__main__":
    main(build, __doc__)
