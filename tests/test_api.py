"""The Python API: ``lec_cosim.run`` runs a federation as ``lec-cosim run`` does and returns its results;
``lec_cosim.load`` reads a run back; errors are exceptions naming what went wrong."""

import json

import pandas as pd
import pytest
from harness import no_process_mentions, shared_run, write_scenario

import lec_cosim
from lec_cosim.runs import RunFailed
from lec_cosim.scenario import ScenarioError, load_scenario


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The shipped day through the API, and the same scenario file through the CLI: the run other test files
    read too (``harness.shared_runs``; a federation costs its start-up, whatever its horizon)."""
    path, cli = shared_run(tmp_path_factory, "trondelag_arbitrage")
    result = lec_cosim.run(path, out=tmp_path_factory.mktemp("api") / "api")
    return path, result, cli


def without_wall_time(kpis: dict) -> dict:
    return {k: v for k, v in kpis.items() if "wall_time" not in k}


def test_run_returns_the_summary_and_the_tables(made):
    path, result, _ = made
    assert result.path.is_dir() and result.wall_s > 0
    assert result.summary == json.loads((result.path / "summary.json").read_text())
    assert result.kpis is result.summary["kpis"]
    assert set(result.tables) == {p.stem for p in result.path.glob("*.csv")} and "pcc" in result.tables
    pcc = result.tables["pcc"]
    hours = load_scenario(path).horizon_h
    assert isinstance(pcc, pd.DataFrame) and len(pcc) == hours * 4 == 96  # 15-minute grid steps
    assert pcc.equals(pd.read_csv(result.path / "pcc.csv"))
    assert result.scenario["name"] == load_scenario(path).name
    with pytest.raises(KeyError, match="no table 'nope'"):
        result.tables["nope"]


def test_the_cli_and_the_api_make_the_same_run(made):
    _, result, cli = made
    for name in result.tables:
        assert (result.path / f"{name}.csv").read_bytes() == (cli / f"{name}.csv").read_bytes(), name
    assert without_wall_time(result.kpis) == without_wall_time(json.loads((cli / "summary.json").read_text())["kpis"])


def test_load_reads_a_run_back_and_refuses_what_is_not_one(made, tmp_path):
    _, result, cli = made
    again = lec_cosim.load(cli)
    assert again.path == cli and again.wall_s is None
    assert without_wall_time(again.kpis) == without_wall_time(result.kpis)
    with pytest.raises(ScenarioError, match="not a lec-cosim run"):
        lec_cosim.load(tmp_path)
    (tmp_path / "INCOMPLETE.txt").write_text("This run did not complete: a reason\n")
    with pytest.raises(ScenarioError, match="not a complete run: This run did not complete: a reason"):
        lec_cosim.load(tmp_path)


def test_bad_input_raises_before_anything_is_written(tmp_path):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"battery.capacity_mwh": -1.0})
    with pytest.raises(ScenarioError, match="battery.capacity_mwh: Input should be greater than 0"):
        lec_cosim.run(path, out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trondelag_arbitrage.yaml"]
    with pytest.raises(ScenarioError, match="output directory exists; pass --force"):
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "notes.txt").write_text("mine\n")
        lec_cosim.run(write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 1}), out=tmp_path / "taken")


@pytest.mark.timeout(200)
def test_a_failed_run_raises_naming_where_it_is_kept(tmp_path):
    from pathlib import Path

    corpus = Path(__file__).parent / "bad_inputs" / "run_power_flow_diverges.yaml"
    with pytest.raises(RunFailed) as failure:
        lec_cosim.run(corpus, out=tmp_path / "out")
    failed = failure.value
    assert failed.federate == "dso" and failed.input_error[0] == "grid"
    assert failed.kept == tmp_path / "out.incomplete" and (failed.kept / "INCOMPLETE.txt").is_file()
    assert str(failed.kept) in str(failed) and not (tmp_path / "out").exists()
    assert no_process_mentions(str(tmp_path))
