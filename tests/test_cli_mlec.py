"""The CLI with the three-LEC scenario: framework and DSO-loop overrides, errors, the comparison table."""

import json
from pathlib import Path

import pytest
from harness import write_scenario

from lec_cosim.cli import main as cli
from lec_cosim.studies.three_lecs.report import mlec_compare_table

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scenarios" / "ieee_eu_lv_three_lecs.yaml"


@pytest.mark.parametrize("args, expected", [
    ([], "framework decentralised, DSO limits off"),
    (["--framework", "distributed"], "framework distributed, DSO limits off"),
    (["--framework", "p2p", "--dso-limits"], "framework p2p, DSO limits on"),
])
def test_validate_shows_the_framework_and_loop_it_would_run(capsys, args, expected):
    assert cli(["validate", str(SHIPPED), *args]) == 0
    assert expected in capsys.readouterr().out


def test_framework_override_on_another_scenario_kind_is_an_input_error(capsys):
    lem = ROOT / "scenarios" / "ieee_eu_lv_lem_plain.yaml"
    assert cli(["validate", str(lem), "--framework", "distributed"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {lem}: framework: --framework applies to three_lecs scenarios only, not local_market"


def test_unknown_framework_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["validate", str(SHIPPED), "--framework", "central"])
    assert exit_.value.code == 2


def test_runner_writes_the_framework_s_federates(tmp_path):
    for framework, expected in (
        ("decentralised", {"lec_ems_1", "lec_ems_2", "lec_ems_3", "platform", "households", "dso", "recorder"}),
        ("distributed", {"lec_ems_1", "lec_ems_2", "lec_ems_3", "households", "dso", "recorder"}),
    ):
        target = tmp_path / framework / "runner.json"
        assert cli(["runner", str(SHIPPED), "-o", str(target), "--framework", framework]) == 0
        names = {f["name"] for f in json.loads(target.read_text())["federates"]} - {"broker"}
        assert names == expected
        scenario = json.loads((target.parent / "scenario.json").read_text())
        assert scenario["framework"] == framework


def test_an_lec_off_the_platform_has_no_platform_link(tmp_path):
    path = write_scenario(tmp_path, "ieee_eu_lv_three_lecs", {"lecs.on_platform": ["lec1", "lec3"]})
    target = tmp_path / "run" / "runner.json"
    assert cli(["runner", str(path), "-o", str(target)]) == 0
    configs = {p.stem: json.loads(p.read_text()) for p in (target.parent / "configs").glob("*.json")}
    assert configs["platform"]["lec_cosim"]["lecs"] == ["lec1", "lec3"]
    assert configs["lec_ems_2"]["lec_cosim"]["on_platform"] is False
    assert configs["lec_ems_1"]["lec_cosim"]["on_platform"] is True


def _summary(directory: Path, framework: str, cost: float, iterations) -> Path:
    directory.mkdir(parents=True)
    lecs = {lec: {"cost_eur": cost / 3, "cost_per_member_eur": cost / 3 / n, "self_sufficiency": 0.5}
            for lec, n in (("lec1", 19), ("lec2", 13), ("lec3", 23))}
    kpis = {"lecs": lecs, "total_cost_eur": cost, "cost_per_member_eur": cost / 55, "self_sufficiency": 0.6,
            "exchanged_kwh": 1.0, "curtailed_kwh": 0.0, "grid_import_kwh": 600.0, "grid_export_kwh": 300.0,
            "trafo_peak_kw": 210.0, "vm_min_pu": 0.95, "vm_max_pu": 1.1, "bus_violations": 7,
            "steps_with_bus_violations": 1, "line_overloads": 800, "losses_kwh": 37.5, "messages": 144,
            "iterations_total": iterations, "iterations_max": iterations and iterations // 24, "wall_time_s": 90.0}
    (directory / "summary.json").write_text(json.dumps({"framework": framework, "dso_limits": False, "kpis": kpis}))
    return directory


def test_compare_prints_one_table_over_the_runs(tmp_path, capsys):
    runs = [_summary(tmp_path / "a", "decentralised", 77.33, None), _summary(tmp_path / "b", "distributed", 77.32, 960)]
    assert cli(["compare", *map(str, runs)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == mlec_compare_table(runs)
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in out.splitlines()[2:]}
    assert lines["cost, all LECs (EUR)"] == ["77.33", "77.32"]
    assert lines["negotiation iterations (total)"] == ["-", "960"]
    assert lines["cost per member lec2 (EUR)"] == [f"{77.33 / 3 / 13:.3f}", f"{77.32 / 3 / 13:.3f}"]
    assert out.splitlines()[0].split("|")[2].strip() == "decentralised"


def test_compare_refuses_to_mix_three_lec_runs_with_others(tmp_path, capsys):
    run = _summary(tmp_path / "a", "decentralised", 77.0, None)
    other = tmp_path / "b"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"framework": "local_market", "kpis": {}}))
    assert cli(["compare", str(run), str(other)]) == 2
    assert "cannot mix runs of different studies (local_market, three_lecs)" in capsys.readouterr().err
