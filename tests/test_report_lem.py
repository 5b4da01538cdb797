"""Tables and plots of LEM runs (lec_cosim.studies.local_market.report) on synthetic run directories of the contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lec_cosim.studies.local_market import report as rl

START = pd.Timestamp("2016-05-26 00:00:00+01:00")
HOURS = 24
BIHOURLY = [0.1924 if 9 <= h < 22 else 0.1023 for h in range(HOURS)]

# Distinct numbers per run so a value in the wrong column is caught. Every KPI is derived from
# the run's index k (1..4) by a different rule.
RUNS = {
    # name: (lem_enabled, tariff_scheme, chp_strategy, k)
    "base_plain": (False, "plain", None, 1),
    "base_bihourly": (False, "bihourly", None, 2),
    "lem_plain": (True, "plain", "aco", 3),
    "lem_bihourly": (True, "bihourly", "truthful", 4),
}


def expected_kpis(k: int, lem: bool, with_fitness: bool) -> dict:
    kpis = {
        "consumers_prosumers": {"cost_eur": 100 + k + 0.111, "income_eur": 20 + k + 0.222, "profit_eur": -(80 + 0.889)},
        "producers": {"cost_eur": 3 * k + 0.333, "income_eur": 5 * k + 0.444, "profit_eur": 2 * k + 0.111},
        "total": {"cost_eur": 200 + k + 0.555, "income_eur": 40 + k + 0.666, "profit_eur": -(160 - 0.111 * k)},
        "bus_violations": 30 + k,
        "bus_violations_reduced": 10 + k,
        "violated_buses": 50 + k,
        "violated_buses_reduced": 20 + k,
        "angle_violations": k,
        "line_overloads": 2 * k,
        "losses_kwh": 40 + k + 0.123,
        "losses_kvarh": 15 + k + 0.456,
        "dn_impact": 0.5 + k / 1000,
        "lem_volume_kwh": (300 + k + 0.789) if lem else 0.0,
        "load_kwh": 480.0,
        "pv_kwh": 1455.0,
        "chp_kwh": 60.0 * k if lem else 0.0,
        "grid_import_kwh": 200.0,
        "grid_export_kwh": 900.0,
        "vm_min_pu": 0.91 + k / 10000 + 0.00001,
        "vm_max_pu": 1.08 + k / 10000 + 0.00002,
    }
    if with_fitness:
        kpis["fitness"] = -1.5 - k / 100
    return kpis


def write_run(root, name, lem, scheme, strategy, k, with_fitness=None, skip=()):
    """A run directory following the contract exactly (all seven files)."""
    run = root / name
    run.mkdir()
    if with_fitness is None:
        with_fitness = strategy == "aco"
    summary = {
        "scenario": name,
        "framework": "local_market",
        "lem_enabled": lem,
        "tariff_scheme": scheme,
        "chp_strategy": strategy,
        "currency": "EUR",
        "start": START.isoformat(),
        "horizon_h": float(HOURS),
        "kpis": expected_kpis(k, lem, with_fitness),
    }
    if "summary.json" not in skip:
        (run / "summary.json").write_text(json.dumps(summary, indent=2))

    hours = pd.date_range(START, periods=HOURS, freq="h")
    times = [t.isoformat() for t in hours]
    h = np.arange(HOURS)
    retail = np.full(HOURS, 0.158) if scheme == "plain" else np.array(BIHOURLY)
    pv = np.clip(np.sin((h - 5) / 15 * np.pi), 0, None) * 190.0
    load = 15.0 + 10.0 * (h >= 17)
    chp = np.where((h >= 7) & (h < 20), 10.0 * k, 0.0) if lem else np.zeros(HOURS)
    lem_traded = np.where(pv > load, load, pv) * 0.8 if lem else np.zeros(HOURS)
    grid_import = np.clip(load - pv - chp, 0, None)
    grid_export = np.clip(pv + chp - load, 0, None)
    price = np.where(lem_traded > 0, 0.045 + 0.001 * k, np.nan)

    if "clearing.csv" not in skip:
        pd.DataFrame({"time": times, "price": price, "volume_kwh": lem_traded}).to_csv(run / "clearing.csv", index=False)
    if "orders.csv" not in skip:
        orders = []
        for t, r, v in zip(times, retail, lem_traded):
            orders.append({"time": t, "participant": "c1", "side": "buy", "price": r, "quantity_kwh": 20.0,
                           "accepted_kwh": v})
            orders.append({"time": t, "participant": "p1", "side": "sell", "price": 0.045, "quantity_kwh": 50.0,
                           "accepted_kwh": v})
        pd.DataFrame(orders).to_csv(run / "orders.csv", index=False)
    if "energy.csv" not in skip:
        pd.DataFrame({
            "time": times, "load_kwh": load, "pv_kwh": pv, "chp_kwh": chp, "lem_bought_kwh": lem_traded,
            "lem_sold_kwh": lem_traded, "grid_import_kwh": grid_import, "grid_export_kwh": grid_export,
        }).to_csv(run / "energy.csv", index=False)
    if "participants.csv" not in skip:
        pd.DataFrame({
            "participant": ["c1", "p1", "chp1"], "kind": ["consumer", "prosumer", "chp"], "bus": [34, 47, 155],
            "phase": ["a", "b", "abc"], "cost_eur": [5.0, 2.0, 0.27], "income_eur": [0.0, 4.0, 2.0],
            "profit_eur": [-5.0, 2.0, 1.73],
        }).to_csv(run / "participants.csv", index=False)
    if "grid.csv" not in skip:
        steps = pd.date_range(START, periods=4 * HOURS, freq="15min")
        pd.DataFrame({
            "time": [t.isoformat() for t in steps], "vm_min_pu": 0.95, "vm_max_pu": 1.05, "bus_violations": 0,
            "line_overloads": 0, "p_loss_kw": 1.0, "q_loss_kvar": 0.5,
        }).to_csv(run / "grid.csv", index=False)
    if "households.csv" not in skip:
        pd.DataFrame({
            "time": times[:2] * 2, "participant": ["c1", "c1", "p1", "p1"], "bus": [34, 34, 47, 47],
            "phase": ["a", "a", "b", "b"], "load_kw": 1.0, "pv_kw": [0.0, 0.0, 2.0, 2.0], "chp_kw": 0.0,
            "battery_kw": 0.0, "net_kw": [1.0, 1.0, -1.0, -1.0],
        }).to_csv(run / "households.csv", index=False)
    return run


@pytest.fixture
def runs(tmp_path):
    return {name: write_run(tmp_path, name, *spec) for name, spec in RUNS.items()}


def all_runs(runs):
    return [runs[n] for n in RUNS]


def parse_tables(markdown: str) -> list[pd.DataFrame]:
    """The markdown tables in the text, as frames of strings indexed by the first column."""
    tables, block = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            header, sep, *body = block
            assert all(set(c) <= set("-:") and c for c in sep)
            assert all(len(row) == len(header) for row in body)
            tables.append(pd.DataFrame(body, columns=header).set_index(header[0]))
            block = []
    return tables


def test_is_lem_run(runs, tmp_path):
    assert rl.is_lem_run(runs["lem_plain"]) and rl.is_lem_run(runs["base_plain"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"scenario": "x", "framework": "pandapower", "kpis": {}}))
    assert not rl.is_lem_run(other)
    assert not rl.is_lem_run(tmp_path / "does_not_exist")


def test_labels():
    def s(lem, scheme, strategy=None, scenario="x"):
        return {"scenario": scenario, "lem_enabled": lem, "tariff_scheme": scheme, "chp_strategy": strategy}

    assert rl.run_labels([s(False, "plain"), s(False, "bihourly"), s(True, "plain"), s(True, "bihourly")]) == [
        "Base 1", "Base 2", "Case 1", "Case 2"]
    # Unidentifiable: the scenario name.
    assert rl.run_labels([s(None, "plain", scenario="a"), s(True, "flat", scenario="b")]) == ["a", "b"]
    # Same case twice: by strategy, else by scenario.
    assert rl.run_labels([s(True, "plain", "truthful"), s(True, "plain", "aco")]) == [
        "Case 1 (truthful)", "Case 1 (aco)"]
    assert rl.run_labels([s(True, "plain", "aco", "r1"), s(True, "plain", "aco", "r2")]) == [
        "Case 1 (r1)", "Case 1 (r2)"]
    assert rl.run_labels([s(True, "plain", "aco", "r"), s(True, "plain", "aco", "r")]) == [
        "Case 1 (r) #1", "Case 1 (r) #2"]


def test_tables_ours_in_right_places(runs):
    text = rl.lem_compare_tables(all_runs(runs), builtin_paper=False)
    assert "Table II" in text and "Table III" in text
    t2, t3 = parse_tables(text)
    assert list(t2.columns) == ["Base 1 (ours)", "Base 2 (ours)", "Case 1 (ours)", "Case 2 (ours)"]
    assert list(t3.columns) == list(t2.columns)
    for name, (lem, _, strategy, k) in RUNS.items():
        label = rl.case_label({"lem_enabled": lem, "tariff_scheme": RUNS[name][1]})
        col = f"{label} (ours)"
        kp = expected_kpis(k, lem, strategy == "aco")
        for group, glabel in [("consumers_prosumers", "consumers & prosumers"), ("producers", "producers"),
                              ("total", "total")]:
            for key in ("cost", "income", "profit"):
                assert t2.loc[f"{glabel} {key} (EUR)", col] == f"{kp[group][key + '_eur']:.2f}"
        assert t2.loc["LEM volume (kWh)", col] == f"{kp['lem_volume_kwh']:.2f}"
        assert t2.loc["fitness (-)", col] == (f"{kp['fitness']:.4f}" if "fitness" in kp else "n/a")
        assert t3.loc["bus violations x grid steps, all buses (-)", col] == str(30 + k)
        assert t3.loc["bus violations x grid steps, reduced model (-)", col] == str(10 + k)
        assert t3.loc["buses outside the band, all buses (-)", col] == str(50 + k)
        assert t3.loc["buses outside the band, reduced model (-)", col] == str(20 + k)
        assert t3.loc["angle violations (-)", col] == str(k)
        assert t3.loc["line overloads x grid steps (-)", col] == str(2 * k)
        assert t3.loc["losses (kWh)", col] == f"{40 + k + 0.123:.2f}"
        assert t3.loc["losses (kvarh)", col] == f"{15 + k + 0.456:.2f}"
        assert t3.loc["DN impact (-)", col] == f"{0.5 + k / 1000:.4f}"
        assert t3.loc["V min (pu)", col] == f"{kp['vm_min_pu']:.4f}"
        assert t3.loc["V max (pu)", col] == f"{kp['vm_max_pu']:.4f}"
    # Spot checks of the formatting itself.
    assert t2.loc["producers cost (EUR)", "Case 1 (ours)"] == "9.33"
    assert t2.loc["consumers & prosumers profit (EUR)", "Base 1 (ours)"] == "-80.89"
    assert t2.loc["fitness (-)", "Case 1 (ours)"] == "-1.5300"
    assert t3.loc["V min (pu)", "Case 2 (ours)"] == "0.9104"
    assert t2.loc["LEM volume (kWh)", "Base 2 (ours)"] == "0.00"


def test_column_order_follows_input(runs):
    order = ["lem_bihourly", "base_plain"]
    t2, _ = parse_tables(rl.lem_compare_tables([runs[n] for n in order], builtin_paper=False))
    assert list(t2.columns) == ["Case 2 (ours)", "Base 1 (ours)"]


def test_builtin_paper_table_iii(runs):
    assert rl.PAPER_TABLE_III["Base 1"] == {"violated_buses_reduced": 14, "losses_kwh": 48.36}
    assert rl.PAPER_TABLE_III["Base 2"] == {"violated_buses_reduced": 14, "losses_kwh": 48.36}
    assert rl.PAPER_TABLE_III["Case 1"] == {"violated_buses_reduced": 0, "losses_kwh": 10.57}
    assert rl.PAPER_TABLE_III["Case 2"] == {"violated_buses_reduced": 5, "losses_kwh": 30.71}
    t2, t3 = parse_tables(rl.lem_compare_tables(all_runs(runs)))
    # No paper values of Table II are known: no paper columns there.
    assert not any("paper" in c for c in t2.columns)
    assert list(t3.columns) == ["Base 1 (ours)", "Base 1 (paper)", "Base 2 (ours)", "Base 2 (paper)",
                                "Case 1 (ours)", "Case 1 (paper)", "Case 2 (ours)", "Case 2 (paper)"]
    reduced, losses = "buses outside the band, reduced model (-)", "losses (kWh)"
    expected = {"Base 1": ("14", "48.36"), "Base 2": ("14", "48.36"), "Case 1": ("0", "10.57"),
                "Case 2": ("5", "30.71")}
    for label, (violations, loss) in expected.items():
        assert t3.loc[reduced, f"{label} (paper)"] == violations
        assert t3.loc[losses, f"{label} (paper)"] == loss
        for row in ("buses outside the band, all buses (-)", "angle violations (-)", "losses (kvarh)", "V min (pu)"):
            assert t3.loc[row, f"{label} (paper)"] == "n/a"
    # Ours stays next to it.
    assert t3.loc[losses, "Case 1 (ours)"] == "43.12"


def test_a_run_on_another_feeder_gets_no_paper_column(runs):
    """The paper's cases are on the IEEE feeder: a Case 1 run on a feeder.source is compared with nothing built in,
    only with values given for its scenario by name."""
    on_source = runs["lem_plain"]
    (on_source / "scenario.json").write_text(json.dumps({"feeder": {"source": "simbench: 1-LV-semiurb4--0-sw"}}))
    _, t3 = parse_tables(rl.lem_compare_tables([on_source]))
    assert list(t3.columns) == ["Case 1 (ours)"]
    _, t3 = parse_tables(rl.lem_compare_tables([on_source], paper={"lem_plain": {"losses_kwh": 1.5}}))
    assert t3.loc["losses (kWh)", "Case 1 (paper)"] == "1.50"


def test_paper_values_dict_nested_dotted_and_override(runs):
    paper = {
        "Case 1": {"producers": {"profit_eur": 12.345}, "total.cost_eur": 250, "fitness": None,
                   "losses_kwh": 11.0},
        "Base 2": {"consumers_prosumers": {"income_eur": "n/a"}, "lem_volume_kwh": 0},
    }
    t2, t3 = parse_tables(rl.lem_compare_tables(all_runs(runs), paper=paper))
    assert list(t2.columns) == ["Base 1 (ours)", "Base 2 (ours)", "Base 2 (paper)", "Case 1 (ours)",
                                "Case 1 (paper)", "Case 2 (ours)"]
    assert t2.loc["producers profit (EUR)", "Case 1 (paper)"] == "12.35"
    assert t2.loc["total cost (EUR)", "Case 1 (paper)"] == "250.00"
    assert t2.loc["fitness (-)", "Case 1 (paper)"] == "n/a"
    assert t2.loc["producers cost (EUR)", "Case 1 (paper)"] == "n/a"
    assert t2.loc["consumers & prosumers income (EUR)", "Base 2 (paper)"] == "n/a"
    assert t2.loc["LEM volume (kWh)", "Base 2 (paper)"] == "0.00"
    # The given losses override the built-in 10.57; the built-in violations stay.
    assert t3.loc["losses (kWh)", "Case 1 (paper)"] == "11.00"
    assert t3.loc["buses outside the band, reduced model (-)", "Case 1 (paper)"] == "0"
    assert t3.loc["losses (kWh)", "Case 2 (paper)"] == "30.71"


def test_paper_values_file_and_scenario_key(runs, tmp_path):
    path = tmp_path / "paper.json"
    path.write_text(json.dumps({"lem_plain": {"producers": {"income_eur": 7.5}}}))
    t2, t3 = parse_tables(rl.lem_compare_tables([runs["lem_plain"]], paper=path, builtin_paper=False))
    assert list(t2.columns) == ["Case 1 (ours)", "Case 1 (paper)"]
    assert t2.loc["producers income (EUR)", "Case 1 (paper)"] == "7.50"
    assert list(t3.columns) == ["Case 1 (ours)"]
    yaml_path = tmp_path / "paper.yaml"
    yaml_path.write_text("Case 1:\n  dn_impact: 0.25\n")
    _, t3 = parse_tables(rl.lem_compare_tables([runs["lem_plain"]], paper=yaml_path))
    assert t3.loc["DN impact (-)", "Case 1 (paper)"] == "0.2500"
    assert t3.loc["losses (kWh)", "Case 1 (paper)"] == "10.57"


def test_duplicate_cases_get_distinct_columns(tmp_path):
    a = write_run(tmp_path, "case1_truthful", True, "plain", "truthful", 1)
    b = write_run(tmp_path, "case1_aco", True, "plain", "aco", 2)
    t2, t3 = parse_tables(rl.lem_compare_tables([a, b]))
    assert list(t2.columns) == ["Case 1 (truthful) (ours)", "Case 1 (aco) (ours)"]
    # Both are Case 1 for the paper's values.
    assert list(t3.columns) == ["Case 1 (truthful) (ours)", "Case 1 (truthful) (paper)", "Case 1 (aco) (ours)",
                                "Case 1 (aco) (paper)"]
    assert t3.loc["losses (kWh)", "Case 1 (aco) (paper)"] == "10.57"
    assert t2.loc["fitness (-)", "Case 1 (truthful) (ours)"] == "n/a"
    assert t2.loc["fitness (-)", "Case 1 (aco) (ours)"] == "-1.5200"


def test_missing_kpi_and_nan_are_na(tmp_path):
    run = write_run(tmp_path, "r", True, "plain", None, 1)
    summary = json.loads((run / "summary.json").read_text())
    del summary["kpis"]["angle_violations"]
    del summary["kpis"]["producers"]
    summary["kpis"]["dn_impact"] = float("nan")  # json writes NaN
    (run / "summary.json").write_text(json.dumps(summary))
    t2, t3 = parse_tables(rl.lem_compare_tables([run], builtin_paper=False))
    assert t3.loc["angle violations (-)", "Case 1 (ours)"] == "n/a"
    assert t3.loc["DN impact (-)", "Case 1 (ours)"] == "n/a"
    assert t2.loc["producers profit (EUR)", "Case 1 (ours)"] == "n/a"


def test_table_errors(runs, tmp_path):
    with pytest.raises(ValueError, match="no run directories"):
        rl.lem_compare_tables([])
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"scenario": "x", "framework": "pandapower", "kpis": {}}))
    with pytest.raises(ValueError, match="not a local_market run"):
        rl.lem_compare_tables([runs["lem_plain"], other])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError) as err:
        rl.lem_compare_tables([empty])
    assert str(err.value) == f"{empty}: missing summary.json"


def test_frames(runs):
    t2, t3 = rl.lem_compare_frames(all_runs(runs))
    assert t2.loc["producers.profit_eur", ("Case 2", "ours")] == pytest.approx(8.111)
    assert t3.loc["losses_kwh", ("Case 2", "paper")] == pytest.approx(30.71)
    assert math.isnan(t2.loc["fitness", ("Base 1", "ours")])


def png_ok(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(runs, tmp_path):
    prices = tmp_path / "prices.png"
    rl.plot_lem_prices(all_runs(runs), prices)  # base runs are skipped
    assert png_ok(prices)
    prices2 = tmp_path / "prices2.png"
    rl.plot_lem_prices([runs["lem_plain"]], prices2, tariffs={"plain": [0.158] * 24, "flat": [0.12] * 24})
    assert png_ok(prices2)
    energy = tmp_path / "energy.png"
    rl.plot_lem_energy(runs["lem_bihourly"], energy)
    assert png_ok(energy)
    energy_base = tmp_path / "energy_base.png"
    rl.plot_lem_energy(runs["base_plain"], energy_base)
    assert png_ok(energy_base)
    panels = tmp_path / "runs.png"
    rl.plot_lem_runs(all_runs(runs), panels)
    assert png_ok(panels)
    base_only = tmp_path / "base_only.png"  # the prices panel shows the tariffs only
    rl.plot_lem_runs([runs["base_plain"]], base_only)
    assert png_ok(base_only)


def test_plot_all_nan_prices(tmp_path):
    run = write_run(tmp_path, "r", True, "bihourly", None, 1)
    clearing = pd.read_csv(run / "clearing.csv")
    clearing["price"] = np.nan
    clearing["volume_kwh"] = 0.0
    clearing.to_csv(run / "clearing.csv", index=False)
    out = tmp_path / "p.png"
    rl.plot_lem_prices([run], out)
    assert png_ok(out)


@pytest.mark.parametrize(
    ("func", "missing"),
    [
        (lambda run, out: rl.plot_lem_prices([run], out), "clearing.csv"),
        (lambda run, out: rl.plot_lem_energy(run, out), "energy.csv"),
        (lambda run, out: rl.plot_lem_runs([run], out), "energy.csv"),
        (lambda run, out: rl.plot_lem_runs([run], out), "clearing.csv"),
        (lambda run, out: rl.plot_lem_energy(run, out), "summary.json"),
        (lambda run, out: rl.plot_lem_prices([run], out), "summary.json"),
    ],
)
def test_plot_missing_file(tmp_path, func, missing):
    run = write_run(tmp_path, "broken", True, "plain", None, 1, skip=(missing,))
    out = tmp_path / "out.png"
    with pytest.raises(ValueError) as err:
        func(run, out)
    message = str(err.value)
    assert message == f"{run}: missing {missing}"
    assert "\n" not in message
    assert not out.exists()


def test_plot_missing_column_and_no_lem_run(runs, tmp_path):
    run = write_run(tmp_path, "cols", True, "plain", None, 1)
    pd.read_csv(run / "energy.csv").drop(columns=["chp_kwh"]).to_csv(run / "energy.csv", index=False)
    with pytest.raises(ValueError, match=r"cols: energy\.csv lacks column\(s\) chp_kwh"):
        rl.plot_lem_energy(run, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no LEM run"):
        rl.plot_lem_prices([runs["base_plain"], runs["base_bihourly"]], tmp_path / "y.png")


def test_hours_parse_offsets():
    times = pd.Series(["2016-05-26T00:00:00+01:00", "2016-05-26T01:00:00+01:00", "2016-05-27T00:00:00+01:00"])
    np.testing.assert_allclose(rl._hours(times), [0.0, 1.0, 24.0])
    naive = pd.Series(["2016-05-26 05:00:00", "2016-05-26 05:15:00"])
    np.testing.assert_allclose(rl._hours(naive), [5.0, 5.25])
