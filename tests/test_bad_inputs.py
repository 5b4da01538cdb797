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
from harness import cli_in_process

from lec_cosim.cli import main

CORPUS = Path(__file__).parent / "bad_inputs"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())


def test_the_corpus_is_big_enough_and_complete():
    assert len(EXPECTED) >= 150
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml")
    assert len(list(CORPUS.glob("*.csv"))) >= 30  # broken data files, not only scenarios
    assert len([p for p in CORPUS.iterdir() if p.is_dir()]) >= 10  # broken feeder folders


def test_every_case_expects_a_field_or_row_and_a_reason():
    for name, needles in EXPECTED.items():
        # the file name alone proves nothing: each case names its field or row and why, besides the file
        assert len(needles) >= 2, name
        assert not any(needle in name for needle in needles), name


def _error_line(name: str, stderr: str) -> str:
    """The one error line, with the scenario's own path taken out (so the file name cannot satisfy a needle)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    assert str(CORPUS / name) in lines[0]  # the file
    return lines[0].replace(str(CORPUS / name), "<scenario>")


FOUND_BEFORE_RUNNING = sorted(name for name in EXPECTED if not name.startswith("run_"))
FOUND_WHILE_RUNNING = sorted(name for name in EXPECTED if name.startswith("run_"))


@pytest.mark.parametrize("name", FOUND_BEFORE_RUNNING)
def test_one_clear_line_and_exit_code_2(name, capsys):
    code = main(["validate", str(CORPUS / name)])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    line = _error_line(name, captured.err)
    for needle in EXPECTED[name]:
        assert needle in line, (needle, line)


@pytest.mark.parametrize("name", ["negative_capacity.yaml", "prices_nan.yaml", "lem_bids_broken.yaml",
                                  "mlec_band_inverted.yaml", "number_boolean_on.yaml", "utf16.yaml",
                                  "lem_feeder_trafo_zero_rating.yaml", "mlec_pv_percent.yaml"])
def test_run_refuses_before_writing_anything(name, tmp_path, capsys):
    out = tmp_path / "out"
    done = cli_in_process(capsys, "run", CORPUS / name, "--out", out)  # as a process: the run_* cases below
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_debug_shows_the_traceback():
    done = subprocess.run([sys.executable, "-m", "lec_cosim", "--debug", "validate",
                           str(CORPUS / "prices_gap.yaml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" in done.stderr and "evenly spaced" in done.stderr


@pytest.mark.parametrize("name", FOUND_WHILE_RUNNING)
@pytest.mark.timeout(120)
def test_an_input_error_found_while_running_is_one_line_and_exit_code_2(name, tmp_path):
    assert main(["validate", str(CORPUS / name)]) == 0  # nothing to see before it runs
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "lec_cosim", "run", str(CORPUS / name), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=100)
    assert done.returncode == 2, done.stderr
    line = _error_line(name, done.stderr)
    for needle in EXPECTED[name]:
        assert needle in line, (needle, line)
    # the run that found it is kept apart, marked incomplete; nothing looks like a result
    assert not out.exists()
    incomplete = tmp_path / "out.incomplete"
    assert (incomplete / "INCOMPLETE.txt").is_file() and not (incomplete / "summary.json").exists()
    assert str(incomplete) in line


def test_debug_shows_the_federate_traceback_of_an_input_error_found_while_running(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lec_cosim", "--debug", "run",
                           str(CORPUS / "run_power_flow_diverges.yaml"), "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 2
    # the DSO's own traceback, from its log (the federates inherit --debug), then the one line
    assert "Traceback" in done.stderr and "raise PowerFlowError(" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" in (tmp_path / "out.incomplete" / "logs" / "dso.log").read_text()
