"""Three LECs that differ (``scenarios/ieee_eu_lv_three_lecs_diverse.yaml``: lec1 PV-rich with larger home batteries,
lec2 without PV or home batteries, lec3 as in the identical-LEC scenario), end to end.

The shipped scenario's first HOURS hours with hourly grid steps, as in-process federations (``lec_cosim.inproc``:
the same federate programs on HELICS's in-process core). The horizon reaches into the day because the LECs differ
only when the sun is up: lec1 has a surplus from about 8:00 while lec2 has none. Checked on the results: energy
and money balances of every LEC and hour under the distributed and the decentralised framework, the negotiated
plans against the centralised optimum every hour (the checks of ``tests/test_end_to_end_mlec.py``), and that
the LECs now trade: through the platform (decentralised) and by negotiation (distributed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlec_checks import (
    check_every_lec_hour_settles_its_metered_energy,
    check_negotiated_plans_equal_the_centralised_optimum,
)

from lec_cosim.inproc import run_inproc
from lec_cosim.scenario import load_scenario, write_scenario_variant

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scenarios" / "ieee_eu_lv_three_lecs_diverse.yaml"
HOURS = 12


@pytest.fixture(scope="module")
def scenario_path(tmp_path_factory) -> Path:
    return write_scenario_variant(SHIPPED, {"horizon_h": HOURS, "resolution.grid_min": 60},
                                  tmp_path_factory.mktemp("diverse"))


def _run(tmp_path_factory, scenario_path: Path, framework: str) -> Path:
    out = tmp_path_factory.mktemp(framework) / "run"
    run_inproc(load_scenario(scenario_path).model_copy(update={"framework": framework}), out, timeout_s=300)
    return out


@pytest.fixture(scope="module")
def distributed(tmp_path_factory, scenario_path) -> Path:
    return _run(tmp_path_factory, scenario_path, "distributed")


@pytest.fixture(scope="module")
def decentralised(tmp_path_factory, scenario_path) -> Path:
    return _run(tmp_path_factory, scenario_path, "decentralised")


def kpis(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())["kpis"]


@pytest.mark.parametrize("framework", ["distributed", "decentralised"])
def test_every_lec_hour_settles_its_metered_energy(request, framework):
    # the CSV keeps 10 significant digits: the tens of kWh these LECs exchange in an hour are written to 5e-9 kWh
    check_every_lec_hour_settles_its_metered_energy(request.getfixturevalue(framework), balance_atol_kwh=1e-7)


def test_negotiated_plans_equal_the_centralised_optimum_every_hour(distributed):
    check_negotiated_plans_equal_the_centralised_optimum(distributed)
    negotiation = pd.read_csv(distributed / "negotiation.csv")
    assert len(negotiation) == HOURS and negotiation["converged"].all()


def test_the_lecs_trade_on_the_platform_and_by_negotiation(decentralised, distributed):
    platform, negotiated = kpis(decentralised), kpis(distributed)
    # The identical LECs trade 0 kWh on the platform; here lec1's midday surplus goes to lec2.
    assert platform["exchanged_kwh"] > 20
    assert negotiated["exchanged_kwh"] > 20
    exchanges = pd.read_csv(decentralised / "exchanges.csv")
    by_lec = exchanges.groupby("lec")[["bought_kwh", "sold_kwh"]].sum()
    assert by_lec.at["lec1", "sold_kwh"] > 10 and by_lec.at["lec2", "bought_kwh"] > 10
    assert by_lec.at["lec2", "sold_kwh"] < 1e-6  # an LEC without PV or home batteries has little to sell
    # The joint optimum is never dearer than each LEC planning alone, to rounding.
    assert negotiated["total_cost_eur"] <= platform["total_cost_eur"] + 0.01
