"""Both 24 h scenarios through the CLI, as a user runs them, and the same through stock ``helics run``."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pandapower as pp
import pytest

from harness import SCENARIOS, shared_runs
from lec_cosim.models.ems import schedule_battery
from lec_cosim.models.household import HouseholdFleet
from lec_cosim.models.prices import PriceFeed
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim"]
NAMES = ("trondelag_arbitrage", "trondelag_self_consumption")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both shipped scenarios, unchanged, through the CLI at once (runs other test files read too: see
    ``harness.shared_runs``); returns {name: results directory}."""
    made = shared_runs(tmp_path_factory, *NAMES)
    return {name: made[name][1] for name in NAMES}


def load(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary, pd.read_csv(run_dir / "ems.csv"), pd.read_csv(run_dir / "pcc.csv"), pd.read_csv(run_dir / "signals.csv")


@pytest.mark.parametrize("name", NAMES)
def test_results_contract(runs, name):
    summary, ems, pcc, grid = load(runs[name])
    assert list(ems.columns) == ["time", "price", "export_price", "load_mw", "pv_mw", "charge_mw",
                                 "discharge_mw", "soc_mwh", "import_mw"]
    assert list(pcc.columns)[:4] == ["time", "p_mw", "q_mvar", "vm_pu"]
    assert len(ems) == 24 and len(pcc) == 96
    assert ems.time.iloc[0] == "2019-05-26T00:00:00" and pcc.time.iloc[-1] == "2019-05-26T23:45:00"
    assert summary["scenario"] == name and summary["framework"] == "decentralised"
    assert summary["ems_step_h"] == 1.0
    assert summary["battery"] == {"capacity_mwh": 1.2, "power_mw": 0.6, "efficiency": 0.95, "soc_min": 0.0,
                                  "soc_max": 1.0}
    assert summary["import_limit_mw"] is None
    assert summary["kpis"]["steps_above_import_limit"] is None and summary["kpis"]["max_import_above_limit_mw"] is None
    assert set(summary["kpis"]) >= {"import_mwh", "export_mwh", "energy_cost", "peak_import_mw",
                                    "self_consumption_ratio", "vm_min_pu", "vm_max_pu"}
    assert set(summary["versions"]) >= {"lec_cosim", "helics", "pandapower", "solver"}
    assert summary["versions"]["solver"]["name"] == "glpk"
    assert summary["wall_time_s"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_energy_balance_every_step(runs, name):
    summary, ems, pcc, grid = load(runs[name])
    eta = math.sqrt(0.95)
    # Battery: SoC change of every grid step is the power through one-way efficiency.
    soc_before = np.concatenate(([0.6], grid.soc_mwh.to_numpy()[:-1]))
    p = grid.battery_p_mw.to_numpy()
    np.testing.assert_allclose(grid.soc_mwh - soc_before, np.where(p > 0, p * eta, p / eta) * 0.25, atol=1e-9)
    # PCC: the MV-side flow is the LEC's net load plus transformer losses, which stay small.
    net = grid.load_p_mw - grid.pv_p_mw + grid.battery_p_mw
    trafo_losses = grid.pcc_p_mw - net
    assert trafo_losses.min() >= 0.0025 and trafo_losses.max() < 0.02
    assert (grid.losses_mw >= trafo_losses - 1e-12).all()
    # EMS rows: means of the grid steps they hold; import = load - pv + charge - discharge.
    hourly = net.to_numpy().reshape(24, 4).mean(axis=1)
    np.testing.assert_allclose(ems.import_mw, hourly, atol=1e-12)
    np.testing.assert_allclose(ems.import_mw, ems.load_mw - ems.pv_mw + ems.charge_mw - ems.discharge_mw, atol=1e-12)
    # Energy: imports minus exports equal load minus PV plus battery losses over the day.
    k = summary["kpis"]
    battery_in = (ems.charge_mw - ems.discharge_mw).sum()
    assert k["import_mwh"] - k["export_mwh"] == pytest.approx(ems.load_mw.sum() - ems.pv_mw.sum() + battery_in, abs=1e-9)
    assert battery_in > 0  # 5 % round-trip losses


@pytest.mark.parametrize("name", NAMES)
def test_battery_returns_to_its_start(runs, name):
    _, ems, _, grid = load(runs[name])
    assert ems.soc_mwh.iloc[-1] == pytest.approx(0.6, abs=1e-6)
    assert grid.soc_mwh.min() >= -1e-9 and grid.soc_mwh.max() <= 1.2 + 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_realised_cost_equals_the_day_ahead_optimum(runs, name):
    """The federation delivers the LP's optimum: perfect forecasts and a battery that can follow."""
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    summary, ems, _, _ = load(runs[name])
    forecast = HouseholdFleet.from_scenario(scenario).power(scenario.start, 3600, 24)
    prices = PriceFeed.from_scenario(scenario).prices(scenario.start, 3600, 24)
    optimum = schedule_battery(forecast.load_p_mw, forecast.pv_p_mw, prices.price, prices.export_price,
                               step_h=1.0, capacity_mwh=1.2, power_mw=0.6, efficiency=0.95,
                               soc_initial_mwh=0.6, objective=scenario.ems.objective)
    key = "energy_cost" if scenario.ems.objective == "min_cost" else "import_mwh"
    assert summary["kpis"][key] == pytest.approx(optimum.objective, abs=1e-6)


def test_arbitrage_is_cheaper_and_self_consumption_imports_less(runs):
    arb = load(runs["trondelag_arbitrage"])[0]["kpis"]
    sc = load(runs["trondelag_self_consumption"])[0]["kpis"]
    assert arb["energy_cost"] <= sc["energy_cost"]
    assert sc["import_mwh"] <= arb["import_mwh"]
    # The paper's finding: arbitrage makes new PCC peaks and wider voltage swings.
    assert arb["pcc_peak_p_mw"] > sc["pcc_peak_p_mw"]
    assert arb["vm_max_pu"] - arb["vm_min_pu"] > sc["vm_max_pu"] - sc["vm_min_pu"]


@pytest.mark.parametrize("name", NAMES)
def test_pcc_voltage_equals_a_direct_pandapower_run(runs, name):
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    _, _, pcc, grid = load(runs[name])
    g = scenario.grid
    net = pp.create_empty_network()
    src, bus_pcc = pp.create_bus(net, vn_kv=22.0), pp.create_bus(net, vn_kv=22.0)
    lv = pp.create_bus(net, vn_kv=0.4)
    pp.create_ext_grid(net, src, vm_pu=g.ext_grid_vm_pu)
    pp.create_line_from_parameters(net, src, bus_pcc, **g.mv_line.model_dump())
    pp.create_transformer_from_parameters(net, bus_pcc, lv, **g.transformer.model_dump())
    load_idx = pp.create_load(net, lv, p_mw=0.0, q_mvar=0.0)
    for row, vm in zip(grid.itertuples(), pcc.vm_pu):
        net.load.at[load_idx, "p_mw"] = row.load_p_mw - row.pv_p_mw + row.battery_p_mw
        net.load.at[load_idx, "q_mvar"] = row.load_q_mvar
        pp.runpp(net, tolerance_mva=1e-10)
        assert vm == pytest.approx(net.res_bus.vm_pu.at[bus_pcc], abs=1e-6)


def test_stock_helics_run_gives_the_same_results(runs, tmp_path):
    runner = tmp_path / "runner.json"
    subprocess.run(CLI + ["runner", str(SCENARIOS / "trondelag_arbitrage.yaml"), "-o", str(runner)], check=True)
    helics = shutil.which("helics", path=str(Path(sys.executable).parent))
    result = subprocess.run([helics, "run", "--path", str(runner)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for table in ("ems.csv", "pcc.csv", "grid.csv", "signals.csv"):
        ours = pd.read_csv(runs["trondelag_arbitrage"] / table)
        theirs = pd.read_csv(tmp_path / table)
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0, atol=1e-12)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["kpis"] == json.loads((runs["trondelag_arbitrage"] / "summary.json").read_text())["kpis"]


def test_compare_and_plot_commands(runs, tmp_path):
    dirs = [str(runs[name]) for name in NAMES]
    table = subprocess.run(CLI + ["compare", *dirs], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("| run | objective | import MWh")
    arb = json.loads((runs["trondelag_arbitrage"] / "summary.json").read_text())["kpis"]
    assert lines[2].startswith("| trondelag_arbitrage | min_cost | " + f"{arb['import_mwh']:.3f} | {arb['export_mwh']:.3f} | {arb['energy_cost']:.2f} |")
    assert lines[3].startswith("| trondelag_self_consumption | min_import |")
    png = tmp_path / "pcc.png"
    plot = subprocess.run(CLI + ["plot", *dirs, "-o", str(png)], capture_output=True, text=True, timeout=120)
    assert plot.returncode == 0, plot.stderr
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] == 840 and image.shape[1] == 1200  # 10 x 7 in at 120 dpi
    # Not blank: the two runs' lines put many distinct colours on the canvas.
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 50
    missing = subprocess.run(CLI + ["compare", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nothing: no such run directory" in missing.stderr
