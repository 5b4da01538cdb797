"""An in-process federation (federates as threads on HELICS's inproc core) gives a normal run's results.

The same federate programs run unchanged as threads (:mod:`lec_cosim.inproc`): a local-market day in one
process writes CSVs byte-identical to the same day run with a broker and a process per federate, and a
federate that fails ends the in-process federation promptly with its error, leaving no thread behind.
"""

import json
import sys
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


def test_a_thread_printing_while_another_solves_with_highs_keeps_its_output(tmp_path):
    """Pyomo's HiGHS interface swapped the process's sys.stdout during each solve and closed the swap afterwards:
    a federate thread printing meanwhile wrote into another's capture, then failed on the closed file."""
    import numpy as np
    import pyomo.common.tee as tee

    from lec_cosim.inproc import ThreadStreams, pyomo_capture_off
    from lec_cosim.models.battery_lp import BatteryLP

    out, _ = ThreadStreams.install()
    before = tee.OVERRIDE_CAPTURE_OUTPUT
    pyomo_capture_off(True)  # as an in-process federation does while it runs
    done, errors, printed = threading.Event(), [], []

    def printer():
        with open(tmp_path / "printer.log", "w") as log:
            out.files[threading.get_ident()] = log
            try:
                for i in range(2_000_000):  # bounded: stops with the solves or after 2,000,000 lines
                    if done.is_set():
                        break
                    print(f"line {i}")
                    printed.append(i)
            except Exception as exc:  # noqa: BLE001 - the failure under test
                errors.append(repr(exc))
            finally:
                out.files.pop(threading.get_ident(), None)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: the printer runs inside the solver's windows
    thread = threading.Thread(target=printer)
    thread.start()
    try:
        lp = BatteryLP(24, step_h=1.0, capacity_mwh=1.0, power_mw=0.5, efficiency=0.95, solver="highs")
        for _ in range(50):
            plan = lp.solve(np.full(24, 0.3), np.linspace(0, 0.5, 24), np.linspace(20, 60, 24), np.full(24, 10.0),
                            soc_initial_mwh=0.5)
    finally:
        done.set()
        thread.join()
        sys.setswitchinterval(switch)
        pyomo_capture_off(False)
    assert tee.OVERRIDE_CAPTURE_OUTPUT == before  # restored for the process's own Pyomo solves
    assert errors == []
    lines = (tmp_path / "printer.log").read_text().splitlines()
    assert len(lines) == len(printed) > 0 and lines[-1] == f"line {printed[-1]}"
    assert plan.table.soc_mwh.iloc[-1] == pytest.approx(0.5, abs=1e-6)


def test_a_federate_waits_at_its_close_for_its_own_core_only(tmp_path, monkeypatch):
    """A closing federate waits for its core to leave (so that HELICS's clean-up at the process's exit has nothing
    left to wait for) when the core is its alone: never for a core shared with federates still running. The real
    HELICS function, watched."""
    import federates.common as common
    from lec_cosim.inproc import InprocFederation

    waited = []
    real = common.h.helicsCoreWaitForDisconnect
    monkeypatch.setattr(common.h, "helicsCoreWaitForDisconnect",
                        lambda core, ms: waited.append(ms) or real(core, ms))
    scenario = load_scenario(write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 3}))
    for shared in (False, True):
        waited.clear()
        with InprocFederation(scenario, tmp_path / f"shared_{shared}", shared_core=shared) as federation:
            federation.wait(120)
            names = list(federation.configs)
        assert (tmp_path / f"shared_{shared}" / "summary.json").is_file()
        assert waited == ([] if shared else [common.CORE_LEAVE_MS] * len(names)) and len(names) > 1
    assert common._federates_per_core("--broker_address=tcp://127.0.0.1:23500") == 1  # HELICS's default
    assert common._federates_per_core("--federates=1 --federates=3") == 3
