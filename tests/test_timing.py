"""Timing records (``lec_cosim.timing``): a federate stalled in a time request, then failing, keeps them.

The local market's DSO federate runs over a real broker with two test participant groups (as in
``test_federate_lem_dso.py``, one HELICS step per grid step). The groups play two steps and then hold
back: the DSO blocks in its request for the third slot. While it is blocked, its timing files must
already hold both slots (written by the background flusher, not at the end) and say it is waiting for
the third slot. The groups then publish vectors one value short: the DSO fails in its third slot, and
its timing keeps that slot as its last row and says it failed.
"""

from __future__ import annotations

import json
import subprocess
import time

import helics as h
import numpy as np
import pandas as pd
import pytest
from harness import TestFederate, enter_all, write_scenario

from lec_cosim.federation import broker_command, federate_command, federate_config, free_broker_port
from lec_cosim.scenario import load_scenario
from lec_cosim.studies.local_market.wiring import (
    DISPATCH_OFFSET_S,
    DSO_COUNTS,
    DSO_DAY_COUNTS,
    DSO_DOUBLES,
    DSO_OFFSET_S,
    groups,
)
from lec_cosim.timing import SLOT_COLUMNS, TimingLog, read_timing

VECTORS = ("load_kw", "load_kvar", "pv_kw", "chp_kw", "net_kw")


def wait_for(condition, what: str, timeout_s: float = 60.0):
    """Poll ``condition()`` until it returns something truthy (its value); fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def json_state(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.timeout(180)
def test_a_stalled_then_failing_federate_keeps_its_timing(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "ieee_eu_lv_base_plain", {
        "horizon_h": 2, "participants.federates": 2, "resolution.exchange": "step"}))
    members = groups(scenario)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "scenario.json").write_text(scenario.to_json())
    port = free_broker_port()
    config = federate_config(scenario, "dso", port, run_dir)
    config["lec_cosim"]["stay_for_query"] = False
    config_path = run_dir / "dso.json"
    config_path.write_text(json.dumps(config))
    broker = subprocess.Popen(broker_command(port, 1 + len(members)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    log = (run_dir / "dso.log").open("w")
    dso = subprocess.Popen(federate_command("dso", config_path), stdout=log, stderr=subprocess.STDOUT)
    stand_ins = []
    try:
        stand_ins = [TestFederate(f"test_{g}", port, period=900.0, offset=DISPATCH_OFFSET_S,
                                  publications=[(f"lem/{g}/{v}", "vector") for v in VECTORS]) for g in members]
        enter_all(*stand_ins)
        # two grid steps with nothing injected, then the third step's slot, where the groups hold back
        for k in range(3):
            for fed in stand_ins:
                fed.request(k * 900.0)
            for fed, (g, names) in zip(stand_ins, members.items()):
                fed.arrive(k * 900.0)
                if k < 2:
                    for v in VECTORS:
                        fed.publish(f"lem/{g}/{v}", np.zeros(len(names)))
        csv_path, json_path = run_dir / "timing" / "dso.csv", run_dir / "timing" / "dso.json"
        third = 2 * 900.0 + DSO_OFFSET_S
        stalled = wait_for(lambda: (s := json_state(json_path)) and s["state"] == "waiting"
                           and s["state_slot_time_s"] == third and s, "the DSO to wait for its third slot")
        wait_for(lambda: len(pd.read_csv(csv_path)) == 2, "two rows")
        rows = pd.read_csv(csv_path)
        assert dso.poll() is None  # still blocked in the time request: the rows came from the flusher
        assert tuple(rows.columns) == SLOT_COLUMNS
        assert list(rows["slot"]) == [0, 1]
        assert list(rows["slot_time_s"]) == [DSO_OFFSET_S, 900.0 + DSO_OFFSET_S]
        n_values = len(DSO_DOUBLES) + len(DSO_COUNTS) + len(DSO_DAY_COUNTS)
        assert list(rows["values_published"]) == [n_values, n_values] and list(rows["messages_sent"]) == [0, 0]
        assert (rows["work_s"] > 0).all() and (rows["wait_s"] >= 0).all()
        assert rows["granted_at_s"].is_monotonic_increasing and (rows["granted_at_s"] >= 0).all()
        assert stalled["slots_done"] == 2 and stalled["slots_planned"] == 8
        assert stalled["period_s"] == 900.0 and stalled["offset_s"] == DSO_OFFSET_S
        # start-up: created, then its model built (ready), then in executing mode, in that order
        assert 0 < stalled["created_s"] < stalled["ready_s"] <= stalled["startup_s"]
        assert stalled["state_since_s"] >= rows["granted_at_s"].iloc[-1] + rows["work_s"].iloc[-1] - 1e-6

        # the third step: every vector one value short, which the DSO refuses in its slot
        for fed, (g, names) in zip(stand_ins, members.items()):
            for v in VECTORS:
                fed.publish(f"lem/{g}/{v}", np.zeros(len(names) - 1))
            fed.request(3 * 900.0)
        assert dso.wait(timeout=60) == 1
        assert "values per step" in (run_dir / "dso.log").read_text()
    finally:
        for fed in stand_ins:
            try:
                fed.granted()
            except h.HelicsException:  # the DSO's global error ended the federation
                pass
            h.helicsFederateFree(fed.fed)
        for process in (dso, broker):
            if process.poll() is None:
                process.kill()
            process.wait()
        log.close()

    failed = json.loads(json_path.read_text())
    assert failed["state"] == "failed" and failed["state_slot_time_s"] == third and failed["slots_done"] == 3
    timing = read_timing(run_dir)
    rows = timing.slots
    assert list(rows["federate"]) == ["dso"] * 3 and list(rows["slot"]) == [0, 1, 2]
    # the failing slot is the last row: granted, worked until it raised, published nothing
    last = rows.iloc[-1]
    assert last["slot_time_s"] == third and last["work_s"] > 0 and last["values_published"] == 0
    assert failed["work_s"] == pytest.approx(rows["work_s"].sum(), abs=1e-5)
    assert failed["wait_s"] == pytest.approx(rows["wait_s"].sum(), abs=1e-5)
    assert not (run_dir / "bus_voltage_extremes.csv").exists()  # written only in the last slot


def test_the_flusher_writes_while_the_federate_is_busy_and_close_writes_the_rest(tmp_path):
    log = TimingLog(tmp_path, "busy", flush_every_s=0.05)
    entered = time.perf_counter()
    log.start(ready_unix_s=time.time(), entered_perf_s=entered, period_s=60.0, offset_s=0.001, slots_planned=3)
    csv_path = tmp_path / "timing" / "busy.csv"
    assert csv_path.read_text() == ",".join(SLOT_COLUMNS) + "\n"  # the header at once
    log.add(0, 0.001, entered + 0.5, 0.25, 0.125, 2, 3)
    log.state = ("working", 60.001, entered + 1.0)
    # the main thread does not write: the flusher does, on its own
    wait_for(lambda: csv_path.read_text().count("\n") == 2, "the flusher to write the first row", 10)
    wait_for(lambda: json.loads(log.json_path.read_text())["state"] == "working", "the state", 10)
    log.add(1, 60.001, entered + 1.0, 0.5, 0.25, 0, 1)
    log.close(stepping_s=2.0)
    rows = pd.read_csv(csv_path)
    assert rows.values.tolist() == [[0, 0.001, 0.5, 0.25, 0.125, 2, 3], [1, 60.001, 1.0, 0.5, 0.25, 0, 1]]
    info = json.loads(log.json_path.read_text())
    assert info["state"] == "done" and info["slots_done"] == 2 and info["slots_planned"] == 3
    assert info["work_s"] == 0.375 and info["wait_s"] == 0.75 and info["stepping_s"] == 2.0
    assert info["federate"] == "busy" and info["offset_s"] == 0.001
