"""A failing federate never hangs the federation: every federate kind crashed or killed mid-run.

Each case runs a real federation through ``lec-cosim run``: a federate either raises at a random
simulated time (a fault injected through its config) or is killed with SIGKILL while the federation
steps. The run must end within 10 s of the fault, the CLI must exit 1 naming that federate (and the
injected error, for a crash), the run must be kept as ``OUT.incomplete``, and no broker or federate
process may be left. The random times come from a fixed seed, printed in the test ids.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from harness import parent_pid, processes_mentioning, write_scenario

CLI = [sys.executable, "-m", "lec_cosim.cli"]
SEED = 20261130
KINDS = {  # federation -> its scenario and changes, the federates to fail, and the horizon to run
    "trondelag_arbitrage": ("trondelag_arbitrage", {}, ["market", "lec_ems", "households", "dso", "recorder"], 24),
    "ieee_eu_lv_lem_plain": ("ieee_eu_lv_lem_plain", {}, ["participants_1", "market", "dso", "recorder"], 24),
    # three LECs at hourly grid steps: the platform's market, and the EMSs' ADMM negotiation over messages
    "three_lecs_decentralised": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60},
                                 ["lec_ems_2", "platform", "households", "dso", "recorder"], 24),
    "three_lecs_distributed": ("ieee_eu_lv_three_lecs", {"resolution.grid_min": 60, "framework": "distributed"},
                               ["lec_ems_1"], 24),
}
rng = random.Random(SEED)
CRASHES = [(kind, name, rng.randrange(1, horizon) * 3600.0 + rng.choice([0, 900, 1800]))
           for kind, (_, _, names, horizon) in KINDS.items() for name in names]



def start(tmp_path, scenario: str, horizon_h: float, extra=()):
    path = write_scenario(tmp_path, scenario, {"horizon_h": horizon_h})
    out = tmp_path / "out"
    return out, subprocess.Popen(CLI + ["run", str(path), "--out", str(out), *extra], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind,federate,at_s", CRASHES, ids=[f"{k}-{f}-{t:g}s" for k, f, t in CRASHES])
def test_a_crash_ends_the_federation_and_names_the_federate(tmp_path, kind, federate, at_s):
    # the CLI writes the federation, then we arm the fault in the federate's config before it starts:
    # runner written by `runner`, run by the launcher, as `run` does
    from lec_cosim.federation import write_federation
    from lec_cosim.launch import FederationError, run_federation
    from lec_cosim.scenario import load_scenario

    scenario, changes, _, horizon_h = KINDS[kind]
    path = write_scenario(tmp_path, scenario, {"horizon_h": horizon_h, **changes})
    run_dir = tmp_path / "run"
    write_federation(load_scenario(path), run_dir)
    config_path = run_dir / "configs" / f"{federate}.json"
    config = json.loads(config_path.read_text())
    config["lec_cosim"]["inject_fault_at_s"] = at_s
    config_path.write_text(json.dumps(config))
    started = time.perf_counter()
    with pytest.raises(FederationError) as failure:
        run_federation(run_dir, timeout_s=60)
    assert str(failure.value).startswith(f"federate {federate} failed: {federate}: RuntimeError: injected fault at"), \
        str(failure.value)
    assert time.perf_counter() - started < 40  # start-up (a few s) plus the steps before the fault plus < 10 s
    time.sleep(0.5)
    assert processes_mentioning(str(run_dir)) == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("federate", ["dso", "households", "lec_ems"])
def test_a_killed_federate_ends_the_run_within_10_s(tmp_path, federate):
    out, proc = start(tmp_path, "trondelag_arbitrage_year", 24 * 60)
    line = ""
    while not line.startswith("  "):  # a progress line: stepping
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    staging = out.with_name("out.partial")
    # the federate itself: a child of the launcher (a fork it makes, e.g. to start glpsol, shares its command line)
    victim = [pid for pid in processes_mentioning(str(staging / "configs" / f"{federate}.json"))
              if parent_pid(pid) == proc.pid]
    assert len(victim) == 1
    os.kill(victim[0], signal.SIGKILL)
    killed = time.perf_counter()
    _, err = proc.communicate(timeout=30)
    assert time.perf_counter() - killed < 10
    assert proc.returncode == 1 and f"federate {federate} failed" in err
    reason = (out.with_name("out.incomplete") / "INCOMPLETE.txt").read_text()
    assert "did not complete" in reason
    assert f"(log: {out.with_name('out.incomplete') / 'logs' / federate}.log)" in reason  # where the log now is
    time.sleep(0.5)
    assert processes_mentioning(str(staging)) == [] and processes_mentioning(str(out)) == []


@pytest.mark.parametrize("scenario,framework", [("trondelag_arbitrage", None), ("ieee_eu_lv_lem_plain", None),
                                                ("ieee_eu_lv_three_lecs", "decentralised"),
                                                ("ieee_eu_lv_three_lecs", "distributed"),
                                                ("ieee_eu_lv_three_lecs", "p2p")])
def test_every_federate_of_every_federation_ends_with_the_federation(tmp_path, scenario, framework):
    """What the tests above rely on, in every generated config: an error anywhere stops everyone, and a
    federate never waits for a grant for ever."""
    from harness import SCENARIOS

    from lec_cosim.federation import federate_names, write_federation
    from lec_cosim.scenario import load_scenario

    loaded = load_scenario(SCENARIOS / f"{scenario}.yaml")
    if framework:
        loaded = loaded.model_copy(update={"framework": framework})
    write_federation(loaded, tmp_path, manifest=False)
    names = federate_names(loaded)
    assert len(names) >= 4
    for name in names:
        config = json.loads((tmp_path / "configs" / f"{name}.json").read_text())
        assert config["terminate_on_error"] is True, name
        assert 0 < config["grant_timeout"] <= 60, name
        assert config["uninterruptible"] is True, name  # see broker_config/README.md: --globaltime
