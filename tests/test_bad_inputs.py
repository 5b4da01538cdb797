"""The corpus of broken inputs (``tests/bad_inputs``): each gets one clear line, exit code 2, nothing run.

``expected.yaml`` names, for every broken scenario, what its error line must say besides the file:
the field or row and the reason. Scenarios, price and profile files, learnt-bids files and feeder
folders of all three kinds of federation are in it. ``validate`` finds all but the ``run_*``
cases before anything starts; those (a power flow with no solution) only show while running, and
``run`` reports them as input errors all the same.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lec_cosim.cli import main

CORPUS = Path(__file__).parent / "bad_inputs"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def test_the_corpus_is_big_enough_and_complete():
    assert len(EXPECTED) >= 30
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml")
    assert len(list(CORPUS.glob("*.csv"))) >= 5  # broken data files, not only scenarios


FOUND_BEFORE_RUNNING = sorted(name for name in EXPECTED if not name.startswith("run_"))
FOUND_WHILE_RUNNING = sorted(name for name in EXPECTED if name.startswith("run_"))


@pytest.mark.parametrize("name", FOUND_BEFORE_RUNNING)
def test_one_clear_line_and_exit_code_2(name, capsys):
    code = main(["validate", str(CORPUS / name)])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert name in lines[0]  # the file
    for needle in EXPECTED[name]:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("name", ["negative_capacity.yaml", "prices_nan.yaml", "lem_bids_broken.yaml",
                                  "mlec_band_inverted.yaml"])
def test_run_refuses_before_writing_anything(name, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "lec_cosim.cli", "run", str(CORPUS / name), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_debug_shows_the_traceback():
    done = subprocess.run([sys.executable, "-m", "lec_cosim.cli", "--debug", "validate",
                           str(CORPUS / "prices_gap.yaml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" in done.stderr and "evenly spaced" in done.stderr


@pytest.mark.parametrize("name", FOUND_WHILE_RUNNING)
@pytest.mark.timeout(120)
def test_an_input_error_found_while_running_is_one_line_and_exit_code_2(name, tmp_path):
    assert main(["validate", str(CORPUS / name)]) == 0  # nothing to see before it runs
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "lec_cosim.cli", "run", str(CORPUS / name), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=100)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert name in lines[0] and "Traceback" not in done.stderr
    for needle in EXPECTED[name]:
        assert needle in lines[0], (needle, lines[0])
    # the run that found it is kept apart, marked incomplete; nothing looks like a result
    assert not out.exists()
    incomplete = tmp_path / "out.incomplete"
    assert (incomplete / "INCOMPLETE.txt").is_file() and not (incomplete / "summary.json").exists()
    assert str(incomplete) in lines[0]


def test_debug_shows_the_federate_traceback_of_an_input_error_found_while_running(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lec_cosim.cli", "--debug", "run",
                           str(CORPUS / "run_power_flow_diverges.yaml"), "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 2
    # the DSO's own traceback, from its log (the federates inherit --debug), then the one line
    assert "Traceback" in done.stderr and "raise PowerFlowError(" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" in (tmp_path / "out.incomplete" / "logs" / "dso.log").read_text()
