"""Market-platform federate over a real broker: three test LEC_EMSs send positions, the platform clears.

Bi-hourly tariff: 0.1023 EUR/kWh off-peak; feed-in 0.045 plus the scenario's wheeling fee of
0.005. Hour 0: lec1 needs 10 kWh, lec2 and lec3 offer 6 and 2: the short side sets the price at
retail; lec1 buys 8 and imports 2. Hour 1: lec1 offers 3, lec2 needs 1, lec3 sends nothing: the
price is feed-in plus the fee; lec1 sells 1 and exports 2; lec3 is not on the platform that hour.
"""

import json

import pytest
from harness import TestFederate, arrive_all, enter_all, federate_under_test, write_scenario

from lec_cosim.scenario import load_scenario
from lec_cosim.studies.three_lecs.wiring import (
    EMS_PLAN_OFFSET_S,
    EMS_SETTLE_OFFSET_S,
    MS_PERIOD_S,
    PLATFORM_ENDPOINT,
    ems_endpoint,
)

POSITIONS = {0: {"lec1": 10.0, "lec2": -6.0, "lec3": -2.0}, 1: {"lec1": -3.0, "lec2": 1.0}}
EXPECTED = {  # hour -> price, {lec: (bought, sold, grid import, grid export, payment, wheeling)}
    0: (0.1023, {"lec1": (8, 0, 2, 0, 0.1023 * 8, 0), "lec2": (0, 6, 0, 0, -0.1023 * 6, 0.005 * 6),
                 "lec3": (0, 2, 0, 0, -0.1023 * 2, 0.005 * 2)}),
    1: (0.05, {"lec1": (0, 1, 0, 2, -0.05, 0.005), "lec2": (1, 0, 0, 0, 0.05, 0)}),
}


@pytest.mark.timeout(120)
def test_platform_clears_the_positions_it_receives_and_answers_each_lec(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_three_lecs", {"horizon_h": 2}))
    answers, records = {}, {}
    with federate_under_test("platform", scenario, tmp_path / "run", 4) as port:
        lecs = {lec: TestFederate(f"ems_{lec}", port, period=MS_PERIOD_S, offset=0.0, endpoints=[ems_endpoint(lec)])
                for lec in ("lec1", "lec2", "lec3")}
        observer = TestFederate("observer", port, period=MS_PERIOD_S, offset=EMS_SETTLE_OFFSET_S,
                                subscriptions=[("mlec/platform/record", "string")])
        enter_all(*lecs.values(), observer)
        for hour in range(2):
            start = hour * 3600.0
            observer.request(start)
            arrive_all(lecs.values(), start + EMS_PLAN_OFFSET_S)
            for lec, position in POSITIONS[hour].items():
                lecs[lec].send(ems_endpoint(lec), PLATFORM_ENDPOINT, {"hour": hour, "lec": lec, "position_kwh": position})
            arrive_all(lecs.values(), start + EMS_SETTLE_OFFSET_S)
            for lec, fed in lecs.items():
                answers[hour, lec] = fed.receive(ems_endpoint(lec))
            observer.arrive(start)
            records[hour] = observer.json_value("mlec/platform/record")
        for fed in [*lecs.values(), observer]:
            fed.close()

    for hour, (price, expected) in EXPECTED.items():
        assert records[hour]["price_eur_per_kwh"] == pytest.approx(price, abs=1e-12)
        assert {a["lec"] for a in records[hour]["lecs"]} == set(expected)
        for lec in ("lec1", "lec2", "lec3"):
            if lec not in expected:
                assert answers[hour, lec] == []  # no position, no answer
                continue
            [(source, answer)] = answers[hour, lec]
            assert source == PLATFORM_ENDPOINT and answer["hour"] == hour
            assert answer["position_kwh"] == POSITIONS[hour][lec]
            got = tuple(answer[k] for k in ("bought_kwh", "sold_kwh", "grid_import_kwh", "grid_export_kwh",
                                           "payment_eur", "wheeling_eur"))
            assert got == pytest.approx(expected[lec], abs=1e-9)
        assert sum(a["payment_eur"] for a in records[hour]["lecs"]) == pytest.approx(0.0, abs=1e-12)
    json.dumps(records)  # the record is plain JSON
