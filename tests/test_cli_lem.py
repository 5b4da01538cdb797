"""The CLI with local-market scenarios, as a user meets it: validate, one-line input errors, train-bidders.

Bad input must give exit code 2 and one line on stderr naming the file, the field and the reason, without
a traceback; ``run`` must fail before it creates the results folder or starts any process. ``validate`` of the
shipped scenarios, ``train-bidders`` and the runs refused for their learned-bids file run as
``python -m lec_cosim`` processes, as a user runs them; the other refusals through the CLI's own ``main``
in the test process (the same exit code and stderr, without a second of imports for each one line).

The learning run with the DN-impact penalty starts in the background when the module starts, so
that it overlaps the other tests; the last test collects it. It learns the first four hours of the
day only: the DN model of a whole day costs 168 three-phase power flows (~30 s), four hours 28.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from harness import SCENARIOS, cli_in_process, processes_mentioning, write_scenario

from lec_cosim.models.bidding import FEED_IN_EUR_PER_KWH, retail_tariff_eur_per_kwh

CLI = [sys.executable, "-m", "lec_cosim"]
LEM_SCENARIOS = ("ieee_eu_lv_base_plain", "ieee_eu_lv_base_bihourly", "ieee_eu_lv_lem_plain", "ieee_eu_lv_lem_bihourly")
CHPS = [f"CHP{k}" for k in range(1, 7)]
TRAIN = ["--iterations", "5", "--ants", "4", "--runs", "2"]


def cli(*args, timeout=120):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False)


def assert_input_error(result, path, *fragments):
    """Exit 2, nothing but one ``error: FILE: ...`` line on stderr, naming every fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"error: {path}: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line



PENALTY_HOURS = 4


def training_copy(directory, dn_penalty: bool, horizon_h: int = 24):
    """ieee_eu_lv_lem_plain with the DN penalty on or off; its default bids file is in ``directory``
    (never the shipped one, should a run forget --output)."""
    directory.mkdir(parents=True, exist_ok=True)
    return write_scenario(directory, "ieee_eu_lv_lem_plain", {
        "learning.dn_penalty": dn_penalty, "horizon_h": horizon_h,
        "market.learned_bids_file": str(directory / "default_bids.json")})


def run_all(commands: dict, timeout=120) -> dict:
    """Run several CLI commands at once; returns name -> CompletedProcess."""
    started = {name: subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, args in commands.items()}
    done = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=timeout)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done


@pytest.fixture(scope="module", autouse=True)
def dn_penalty_training(tmp_path_factory):
    """``train-bidders`` with the DN-impact penalty, started at once in the background."""
    directory = tmp_path_factory.mktemp("dn_penalty")
    path = training_copy(directory, dn_penalty=True, horizon_h=PENALTY_HOURS)
    output = directory / "bids.json"
    process = subprocess.Popen(CLI + ["train-bidders", str(path), *TRAIN, "--output", str(output)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process, output
    if process.poll() is None:
        process.kill()
    process.communicate()


# --- validate -----------------------------------------------------------------------------------------


def test_validate_accepts_the_four_local_market_scenarios():
    for name in LEM_SCENARIOS:
        path = SCENARIOS / f"{name}.yaml"
        result = cli("validate", path)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, result.stdout
        assert lines[0].startswith(f"{path}: valid scenario '{name}' (local market, 24 h from 2016-05-26T00:00:00")
        assert ("LEM on" if "_lem_" in name else "LEM off") in lines[0]
        assert name.rsplit("_", 1)[1] + " tariff" in lines[0]


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("base, changes, field, reason", [
    ("ieee_eu_lv_lem_plain", {"market.tariff_scheme": "hourly"}, "market.tariff_scheme", "'plain' or 'bihourly'"),
    ("ieee_eu_lv_lem_plain", {"resolution.market_min": 30}, "resolution.market_min", "60"),
    ("ieee_eu_lv_base_plain", {"participants.federates": 0}, "participants.federates", "greater than or equal to 1"),
    ("ieee_eu_lv_lem_plain", {"grid.vm_min_pu": 1.1, "grid.vm_max_pu": 1.1}, "grid", "vm_min_pu must be below vm_max_pu"),
    ("ieee_eu_lv_lem_plain", {"grid.vm_min_pu": 1.05, "grid.vm_max_pu": 0.95}, "grid", "vm_min_pu must be below vm_max_pu"),
    ("ieee_eu_lv_lem_plain", {"market.learned_bids_file": None}, "market.learned_bids_file", "chp_strategy aco"),
    ("ieee_eu_lv_base_plain", {"start": "2016-05-26T06:00:00"}, "start", "midnight"),
], ids=["tariff", "market_min", "federates", "band_equal", "band_inverted", "aco_without_bids", "start_time"])
def test_a_bad_field_is_one_line_naming_file_field_and_reason(tmp_path, base, changes, field, reason, capsys):
    path = write_scenario(tmp_path, base, changes)
    out = tmp_path / "out"
    for command in (["validate", path], ["run", path, "--out", out]):
        assert_input_error(cli_in_process(capsys, *command), path, f": {field}: ", reason)
    assert not out.exists()


def test_learned_bids_file_problems_stop_run_before_any_process_starts(tmp_path):
    shipped = json.loads((SCENARIOS / "learned" / "ieee_eu_lv_lem_plain_bids.json").read_text())
    low = json.loads(json.dumps(shipped))
    low["bids_eur_per_kwh"]["CHP3"][7] = FEED_IN_EUR_PER_KWH - 0.015  # below the CHP floor 0.045
    short = json.loads(json.dumps(shipped))
    short["bids_eur_per_kwh"]["CHP2"] = short["bids_eur_per_kwh"]["CHP2"][:23]
    high = json.loads(json.dumps(shipped))
    high["bids_eur_per_kwh"]["CHP1"][12] = 0.19  # above the plain retail tariff: learnt for bi-hourly?
    files = {"missing": None, "low": json.dumps(low), "short": json.dumps(short), "garbage": "{not json",
             "high": json.dumps(high)}
    expected = {"missing": ("not found", "train-bidders"), "low": ("CHP3", "0.0450", "opportunity cost"),
                "short": ("CHP2", "24"), "garbage": ("not a learned-bids file",),
                "high": ("CHP1", "hour 12", "plain retail tariff 0.1580")}
    paths, commands = {}, {}
    for case, text in files.items():
        directory = tmp_path / case
        directory.mkdir()
        bids = directory / "bids.json"
        if text is not None:
            bids.write_text(text)
        paths[case] = write_scenario(directory, "ieee_eu_lv_lem_plain", {"market.learned_bids_file": str(bids)})
        commands[case] = ["run", paths[case], "--out", directory / "out"]
    for case, result in run_all(commands).items():
        bids = tmp_path / case / "bids.json"
        assert_input_error(result, paths[case], f": market.learned_bids_file: {bids}: ", *expected[case])
        assert result.stdout == ""  # not even the "running ..." line
        assert not (tmp_path / case / "out").exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_a_day_outside_the_2016_pv_data_is_a_one_line_data_error(tmp_path, capsys):
    starts = {"late": "2017-05-26T00:00:00", "early": "2015-12-31T00:00:00"}
    paths = {}
    for case, start in starts.items():
        (tmp_path / case).mkdir()
        paths[case] = write_scenario(tmp_path / case, "ieee_eu_lv_lem_plain", {"start": start})
    results = {case: cli_in_process(capsys, "run", paths[case], "--out", tmp_path / case / "out") for case in starts}
    # "valid" only if run would start
    checks = {case: cli_in_process(capsys, "validate", paths[case]) for case in starts}
    for case, start in starts.items():
        for result in (results[case], checks[case]):
            line = assert_input_error(result, paths[case], ": data: ", "2016", start[:10])
            assert "PV" in line
        assert not (tmp_path / case / "out").exists()


# --- train-bidders ------------------------------------------------------------------------------------


def test_train_bidders_needs_a_scenario_with_the_lem_on(tmp_path, capsys):
    names = ("ieee_eu_lv_base_plain", "ieee_eu_lv_base_bihourly", "trondelag_arbitrage")
    results = {name: cli_in_process(capsys, "train-bidders", SCENARIOS / f"{name}.yaml", *TRAIN, "--output",
                                    tmp_path / f"{name}.json") for name in names}
    for name in names[:2]:
        assert_input_error(results[name], SCENARIOS / f"{name}.yaml", ": market.enabled: ", "LEM on")
    assert_input_error(results["trondelag_arbitrage"], SCENARIOS / "trondelag_arbitrage.yaml", ": kind: ",
                       "needs a local_market scenario, not community_battery")
    assert list(tmp_path.iterdir()) == []


def load_bids(path):
    payload = json.loads(path.read_text())
    assert sorted(payload["bids_eur_per_kwh"]) == CHPS
    return payload


def check_bids(payload, hours=24, scheme="plain"):
    """Bounds, the fitness bookkeeping and the history of a saved learning result."""
    retail = retail_tariff_eur_per_kwh(np.arange(hours), scheme)
    for name in CHPS:
        bids = np.asarray(payload["bids_eur_per_kwh"][name])
        assert bids.shape == (hours,)
        assert np.all(bids >= FEED_IN_EUR_PER_KWH - 1e-12), name  # the CHP floor, 0.045
        assert np.all(bids <= retail + 1e-12), name
    assert payload["fitness"] == pytest.approx(payload["components"]["fitness"], abs=1e-9)
    assert payload["fitness"] <= payload["truthful_components"]["fitness"] + 1e-12
    history = np.asarray(payload["history_best_so_far"])
    assert history.shape == (2, 5)  # runs x iterations
    assert np.all(np.diff(history, axis=1) <= 1e-12)  # best so far never gets worse
    assert payload["run_fitness"] == pytest.approx(list(history[:, -1]))
    assert payload["fitness"] == pytest.approx(history[:, -1].min())
    assert (payload["iterations"], payload["ants"], payload["runs"]) == (5, 4, 2)


def test_train_bidders_is_reproducible_bounded_and_beats_truthful(tmp_path, dn_penalty_training):
    path = training_copy(tmp_path, dn_penalty=False)
    outputs = {name: tmp_path / "tmp" / f"{name}.json" for name in ("seed1", "seed1_again", "seed2")}
    seeds = {"seed1": 1, "seed1_again": 1, "seed2": 2}
    results = run_all({name: ["train-bidders", path, *TRAIN, "--seed", seeds[name], "--output", output]
                       for name, output in outputs.items()})
    for name, result in results.items():
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert f"seed {seeds[name]}" in result.stdout
        assert "learned bids of 6 CHPs for ieee_eu_lv_lem_plain" in result.stdout
        assert str(outputs[name].resolve()) in result.stdout
    assert not (tmp_path / "default_bids.json").exists()

    first, again, other = (load_bids(outputs[name]) for name in ("seed1", "seed1_again", "seed2"))
    for payload, seed in ((first, 1), (again, 1), (other, 2)):
        check_bids(payload)
        assert payload["seed"] == seed and payload["dn_penalty"] is False and payload["strategy"] == "aco"
        assert payload["components"]["dn_penalty"] == 0.0
        assert payload["scenario"] == "ieee_eu_lv_lem_plain"
    for key in ("bids_eur_per_kwh", "history_best_so_far", "fitness", "components", "run_fitness"):
        assert first[key] == again[key], key  # identical, not only close
    assert first["history_best_so_far"] != other["history_best_so_far"]
    assert first["bids_eur_per_kwh"] != other["bids_eur_per_kwh"]

    # The file is what the federation accepts for chp_strategy aco.
    from lec_cosim.models.lem_community import (
        community_from_scenario,
        read_learned_bids,
    )
    from lec_cosim.scenario import load_scenario

    bids = read_learned_bids(outputs["seed1"], community_from_scenario(load_scenario(path)))
    assert sorted(bids) == CHPS

    # --- with the DN-impact penalty (started in the background by the module fixture) ---
    process, output = dn_penalty_training
    stdout, stderr = process.communicate(timeout=150)
    assert process.returncode == 0, stderr
    assert "DN-impact model:" in stdout and "power flows" in stdout
    penalised = load_bids(output)
    check_bids(penalised, hours=PENALTY_HOURS)
    assert penalised["dn_penalty"] is True
    assert penalised["components"]["dn_penalty"] > 0
    assert penalised["truthful_components"]["dn_penalty"] > 0
    for components in (penalised["components"], penalised["truthful_components"]):
        assert components["fitness"] == pytest.approx(
            -components["mean_profit_eur"] + components["std_profit_eur"] + components["not_cleared_penalty"]
            + components["dn_penalty"], abs=1e-9)
