"""An in-process federation (federates as threads on HELICS's inproc core) gives a normal run's results.

The same federate programs run unchanged as threads (:mod:`lec_cosim.inproc`): a local-market day in one
process writes CSVs byte-identical to the same day run with a broker and a process per federate, and a
federate that fails ends the in-process federation promptly with its error, leaving no thread behind.
"""

import json
import threading
import time

import pytest
from harness import write_scenario

from lec_cosim.inproc import InprocFederation, run_inproc
from lec_cosim.launch import FederationError
from lec_cosim.runs import execute
from lec_cosim.scenario import load_scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inproc")
    return load_scenario(write_scenario(folder, "ieee_eu_lv_lem_plain", {"horizon_h": 8}))


def test_inproc_results_are_byte_identical_to_a_process_run(scenario, tmp_path):
    execute(scenario, tmp_path / "processes")
    run_inproc(scenario, tmp_path / "threads", timeout_s=300)
    csvs = sorted(p.name for p in (tmp_path / "processes").glob("*.csv"))
    assert {"settlement.csv", "grid.csv", "clearing.csv"} <= set(csvs)
    for name in csvs:
        assert (tmp_path / "threads" / name).read_bytes() == (tmp_path / "processes" / name).read_bytes(), name
    ours = json.loads((tmp_path / "threads" / "summary.json").read_text())
    theirs = json.loads((tmp_path / "processes" / "summary.json").read_text())
    assert {k: v for k, v in ours.items() if k != "wall_time_s"} == \
        {k: v for k, v in theirs.items() if k != "wall_time_s"}
    assert ours["kpis"]["lem_volume_kwh"] > 0
    # each federate's output went to its own log, as in a process run
    assert "finished: dso" in (tmp_path / "threads" / "logs" / "dso.log").read_text()


def test_a_failing_federate_ends_the_inproc_federation_with_its_error(scenario, tmp_path):
    before = set(threading.enumerate())
    federation = InprocFederation(scenario, tmp_path / "run")
    config = federation.config("market")
    data = json.loads(config.read_text())
    data["lec_cosim"]["inject_fault_at_s"] = 3 * 3600.0
    config.write_text(json.dumps(data))
    started = time.monotonic()
    with pytest.raises(FederationError) as failed, federation:
        federation.wait(timeout_s=120)
    assert failed.value.federate == "market"
    assert "injected fault at 10800" in str(failed.value)
    assert time.monotonic() - started < 120  # ended by the error, not by the timeout
    assert not (tmp_path / "run" / "summary.json").exists()
    time.sleep(0.5)
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith("federate ")]
    assert not left, left


def test_an_inproc_federation_needs_an_empty_folder(scenario, tmp_path):
    (tmp_path / "keep.txt").write_text("a user's file")
    with pytest.raises(FileExistsError):
        InprocFederation(scenario, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "a user's file"
