"""The test harness itself: a federate under test that fails at start fails its test at once, with its error,
instead of leaving the test's own federates waiting for it in HELICS for ever."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

FAILING = '''
from harness import SCENARIOS, TestFederate, enter_all, federate_under_test
from lec_cosim.scenario import load_scenario


def test_with_a_bad_setting(tmp_path):
    scenario = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    with federate_under_test("households", scenario, tmp_path / "run", 1, settings={"bogus": 1}) as port:
        fed = TestFederate("ems", port, period=900, offset=0.001)
        enter_all(fed)


def test_after_it(tmp_path):
    TestFederate("late", 1, period=900, offset=0.0)
'''


def test_a_federate_under_test_that_fails_at_start_fails_its_test_with_its_error(tmp_path):
    (tmp_path / "test_failing.py").write_text(FAILING)
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())  # the suite's session hooks
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=TESTS.parent, env={**os.environ, "PYTHONPATH": str(TESTS)},
                          capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "2 failed" in out, out
    assert "federates.household config: bogus: Extra inputs are not permitted" in out
    assert "left this process's HELICS federates stranded" in out  # the next test fails, never waits
