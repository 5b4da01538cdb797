"""Checks on the results of a three-LEC run that more than one test file makes (any horizon, hourly grid steps).

:func:`check_every_lec_hour_settles_its_metered_energy` holds under every framework;
:func:`check_negotiated_plans_equal_the_centralised_optimum` under the distributed one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.exchange import solve_centralised
from lec_cosim.models.forecast import forecasts_from_scenario
from lec_cosim.models.multi_lec_ems import (
    hourly_tariffs,
    members_from_scenario,
    planning_window,
    pooled_batteries,
    rest_of_day_problem,
)
from lec_cosim.scenario import load_scenario


def check_every_lec_hour_settles_its_metered_energy(run: Path, balance_atol_kwh: float = 1e-9) -> None:
    """Every LEC and hour: the settlement's net energy is the members' metered energy, it balances grid and
    exchange (to ``balance_atol_kwh``), its cost is the tariff's, money between LECs only moves among them, and the
    KPIs add up."""
    s = pd.read_csv(run / "settlement.csv")
    m = pd.read_csv(run / "members.csv")
    metered = m.assign(hour=m["step"]).groupby(["hour", "lec"])["net_kw"].sum()  # hourly steps: kW = kWh
    np.testing.assert_allclose(s.set_index(["hour", "lec"])["net_kwh"].sort_index(), metered.sort_index(), atol=1e-6)
    balance = s["net_kwh"] - s["exchange_in_kwh"] + s["exchange_out_kwh"]
    np.testing.assert_allclose(balance, s["grid_import_kwh"] - s["grid_export_kwh"], atol=balance_atol_kwh)
    assert ((s["grid_import_kwh"] == 0) | (s["grid_export_kwh"] == 0)).all()
    scenario = load_scenario(run / "scenario.json")
    retail, feed_in = hourly_tariffs(members_from_scenario(scenario), scenario.tariff.scheme,
                                     scenario.tariff.feed_in_eur_per_kwh)
    expected = (retail[s["hour"]] * s["grid_import_kwh"] - feed_in[s["hour"]] * s["grid_export_kwh"]
                + s["exchange_payment_eur"] + s["wheeling_eur"])
    np.testing.assert_allclose(s["cost_eur"], expected, atol=1e-9)
    # Payments between LECs only move money among them.
    assert s.groupby("hour")["exchange_payment_eur"].sum().abs().max() < 1e-9
    k = json.loads((run / "summary.json").read_text())["kpis"]
    assert k["total_cost_eur"] == pytest.approx(s["cost_eur"].sum())
    for lec in scenario.lec_names:
        rows = s[s["lec"] == lec]
        outside = rows["grid_import_kwh"].sum() + rows["exchange_in_kwh"].sum()
        assert k["lecs"][lec]["self_sufficiency"] == pytest.approx(1 - outside / rows["load_kwh"].sum())


def check_negotiated_plans_equal_the_centralised_optimum(run: Path) -> None:
    """Every hour, the LEC_EMSs' negotiated decisions equal one QP over all the LECs' data.

    The centralised problem of hour h is built by the same model function the federates use, from
    the batteries' energy each LEC_EMS reported at the start of the hour; when they planned on a forecast
    (``ems.forecast``), on every LEC's forecast made at h: the optimum of the forecast problem.
    """
    scenario = load_scenario(run / "scenario.json")
    members = members_from_scenario(scenario)
    batteries = pooled_batteries(members, home_batteries=True)
    forecasts = forecasts_from_scenario(scenario, members)
    records = {}
    for line in (run / "ems_records.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[(record["hour"], record["lec"])] = record
    exchanges = pd.read_csv(run / "exchanges.csv")
    lecs = scenario.lec_names
    hours = round(scenario.horizon_h)
    assert {hour for hour, _ in records} == set(range(hours))
    for hour in range(hours):
        soc = [records[(hour, lec)]["soc_start_kwh"] for lec in lecs]
        window = planning_window(members, scenario, hour)
        net, pv = forecasts.all_lecs(hour, window.stop - hour)
        central = solve_centralised(rest_of_day_problem(members, scenario, first_hour=hour, soc_kwh=soc,
                                                        batteries=batteries, net_demand_kw=net, curtailable_kw=pv))
        for i, lec in enumerate(lecs):
            r = records[(hour, lec)]
            assert r["pooled_charge_kw"] == pytest.approx(central.charge_kw[i, 0] - central.discharge_kw[i, 0],
                                                          abs=0.05), (hour, lec)
            assert r["planned_import_kw"] == pytest.approx(central.import_kw[i, 0], abs=0.05), (hour, lec)
        for e, (a, b) in enumerate(members.neighbours):
            sent = exchanges[(exchanges["hour"] == hour) & (exchanges["lec"] == a) & (exchanges["counterpart"] == b)]
            agreed = float(sent["sold_kwh"].iloc[0] - sent["bought_kwh"].iloc[0])
            assert agreed == pytest.approx(central.exchange_kw[e, 0], abs=0.02), (hour, a, b)
