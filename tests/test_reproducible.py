"""The same scenario gives the same results, run after run, and every run records its manifest."""

import json
import subprocess
import sys

import pytest
from harness import SHARED_RUNS, shared_run, write_scenario

CLI = [sys.executable, "-m", "lec_cosim"]
# scenario -> the run of it other test files read too (harness.SHARED_RUNS): the first run of the two
CASES = {"trondelag_arbitrage": "trondelag_arbitrage", "ieee_eu_lv_lem_plain": "lem_hourly_12h"}


def kpis_without_wall_time(tree: dict) -> dict:
    return {k: kpis_without_wall_time(v) if isinstance(v, dict) else v for k, v in tree.items() if "wall_time" not in k}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(CASES))
def test_two_runs_write_identical_results_and_a_manifest(tmp_path, tmp_path_factory, name):
    """The shared run of the scenario, and a second run of the same file made here."""
    base, _, extra = SHARED_RUNS[CASES[name]]
    assert base == name
    path, first = shared_run(tmp_path_factory, CASES[name])
    second = tmp_path / "run2"
    done = subprocess.run(CLI + ["run", str(path), "--out", str(second), "--quiet", *extra], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=250)
    assert done.returncode == 0, done.stdout
    outs = [first, second]
    csvs = sorted(p.name for p in first.glob("*.csv"))
    assert len(csvs) >= 3 and csvs == sorted(p.name for p in second.glob("*.csv"))
    for csv in csvs:
        assert (first / csv).read_bytes() == (second / csv).read_bytes(), csv
    summaries = [json.loads((out / "summary.json").read_text()) for out in outs]
    assert kpis_without_wall_time(summaries[0]["kpis"]) == kpis_without_wall_time(summaries[1]["kpis"])

    manifests = [json.loads((out / "manifest.json").read_text()) for out in outs]
    for manifest in manifests:
        assert manifest["scenario"] == json.loads((first / "scenario.json").read_text())["name"]
        assert len(manifest["scenario_sha256"]) == 64 and manifest["versions"]["helics"] != "not installed"
        assert "run" in manifest["command"] and str(path) in manifest["command"]
        assert all(len(h) == 64 for files in manifest["data_sha256"].values() for h in files.values())
    assert manifests[0]["scenario_sha256"] == manifests[1]["scenario_sha256"]
    assert manifests[0]["data_sha256"] == manifests[1]["data_sha256"] and manifests[0]["data_sha256"]
    # the seed: the local market's ACO training has one; the community battery draws nothing at random
    if name == "ieee_eu_lv_lem_plain":
        assert manifests[0]["seed"] == json.loads((first / "scenario.json").read_text())["learning"]["seed"]
        assert "learning.seed" in manifests[0]["seed_drives"]
    else:
        assert manifests[0]["seed"] is None and manifests[0]["seed_drives"].startswith("nothing")


def test_the_manifest_hashes_the_files_a_feeder_source_reads(tmp_path):
    """An OpenDSS model is its master file and the files it redirects to: the manifest holds every file of its
    folder, so a changed line code shows in the manifest; a SimBench grid is the package's (its version)."""
    import shutil

    from harness import ROOT

    from lec_cosim.manifest import data_hashes, file_sha256, manifest
    from lec_cosim.scenario import load_scenario

    model = tmp_path / "model"
    shutil.copytree(ROOT / "data" / "examples" / "own_feeder", model)
    path = write_scenario(tmp_path, "own_feeder_lem", {"feeder.source": f"opendss: {model / 'Master.dss'}",
                                                        "feeder.households.mapping_file": str(model / "households.csv"),
                                                        "feeder.households.load_file": str(model / "smart_meters_kw.csv")})
    hashes = data_hashes(load_scenario(path))["feeder.source"]
    assert set(hashes) == {p.name for p in model.iterdir() if p.is_file()} and "Master.dss" in hashes
    assert hashes["Master.dss"] == file_sha256(model / "Master.dss")
    simbench = manifest(load_scenario(write_scenario(tmp_path, "simbench_lv_urban6_three_lecs", {})))
    assert "feeder.source" not in simbench["data_sha256"] and simbench["versions"]["simbench"] != "not installed"


def test_the_manifest_names_the_continuous_auction_s_seed():
    """A continuous double auction draws each hour's arrival order from p2p.arrival_seed: its manifest says so; the
    pool of the same day draws nothing, and the seed only counts where the p2p framework runs the auction."""
    from harness import ROOT

    from lec_cosim.manifest import manifest
    from lec_cosim.scenario import load_scenario

    cda = load_scenario(ROOT / "scenarios" / "ieee_eu_lv_three_lecs_cda.yaml")
    drawn = manifest(cda, command=["test"])
    assert drawn["seed"] == cda.p2p.arrival_seed == 0 and "p2p.arrival_seed" in drawn["seed_drives"]
    other = cda.model_copy(update={"p2p": cda.p2p.model_copy(update={"arrival_seed": 11})})
    assert manifest(other, command=["test"])["seed"] == 11
    for name in ("ieee_eu_lv_three_lecs.yaml", "ieee_eu_lv_three_lecs_pool.yaml"):
        plain = manifest(load_scenario(ROOT / "scenarios" / name), command=["test"])
        assert plain["seed"] is None and plain["seed_drives"].startswith("nothing")
    decentralised = cda.model_copy(update={"framework": "decentralised"})
    assert manifest(decentralised, command=["test"])["seed"] is None
