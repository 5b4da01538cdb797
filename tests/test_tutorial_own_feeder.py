"""The tutorial docs/tutorials/own-feeder.md runs as written: its commands are the tested ones.

Every ```sh block of the page is run, line by line, in the order of the page, with the repository's root as it
would be a reader's: a working copy in a temporary folder whose ``.venv`` (the venv running the tests) and
``data`` entries are links to the repository's, and whose ``scenarios/own_feeder_lem.yaml`` is a copy of the
shipped file. So the commands run unchanged, and what they write (``results/...``) lands in the temporary folder.

* A command that is a plain ``.venv/bin/lec-cosim ...`` runs in this process (``lec_cosim.cli.main`` with the
  working copy as the working folder): a process would cost seconds of imports each. Any other line (one with
  ``;`` or a command other than lec-cosim) runs in a shell, as a reader's would: the bad-input command
  ``...; echo "exit code $?"`` shows the shell's exit code.
* A block marked ``<!-- test: smart_meters_kw.csv in W -->`` (or ``... without Church Close 4b``) runs in a
  working copy whose meter file is the shipped one with every value times 1000 (or without that household's
  column), as the page says.
* The ```text block after a command is what it printed: line by line, ``…`` standing for any text within a
  line and a line ``...`` for any lines. Without a closing ``...`` the output ends there.
* The ```yaml block is the shipped scenario, character for character; the ```dss and ```csv blocks are
  excerpts of the example's files.

Then the run's own numbers: the energies balance, the load is the meter file's, every household of the file is
a player with its readings, the DSO's voltages lie in a narrow band around the source's 1.02 pu. One federation
run of 24 h at 15-minute grid steps.
"""

import contextlib
import hashlib
import importlib.util
import io
import json
import re
import shlex
import subprocess
import sys

import pandas as pd
import pytest
from harness import ROOT

PAGE = ROOT / "docs" / "tutorials" / "own-feeder.md"
EXAMPLE = ROOT / "data" / "examples" / "own_feeder"
SCENARIO = ROOT / "scenarios" / "own_feeder_lem.yaml"
METERS = "smart_meters_kw.csv"
BLOCK = re.compile(r"(?:<!-- test: (?P<marker>[^>]*?) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
SHELL = set(";|&<>$`")


def blocks() -> list[tuple[str | None, str, str]]:
    """(marker, language, body) of every fenced block of the page, in order."""
    return [(m["marker"], m["lang"], m["body"]) for m in BLOCK.finditer(PAGE.read_text())]


def meters_in_w(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("time").mul(1000.0).round(3).reset_index()


MARKERS = {
    None: None,
    f"{METERS} in W": meters_in_w,
    f"{METERS} without Church Close 4b": lambda frame: frame.drop(columns="Church Close 4b"),
}


def working_copy(folder, change=None):
    """A reader's repository root in ``folder``: the venv and the data linked, the scenario copied; the example's
    meter file changed by ``change`` (a function of its table) if given."""
    folder.mkdir()
    (folder / ".venv").symlink_to(sys.prefix)  # the venv running the tests: the repository's .venv
    (folder / "scenarios").mkdir()
    (folder / "scenarios" / SCENARIO.name).write_text(SCENARIO.read_text())
    data = folder / "data"
    data.mkdir()
    for entry in (ROOT / "data").iterdir():
        if entry.name != "examples":
            (data / entry.name).symlink_to(entry)
    example = data / "examples" / "own_feeder"
    example.mkdir(parents=True)
    for entry in EXAMPLE.iterdir():
        if entry.name == METERS and change is not None:
            change(pd.read_csv(entry, dtype={"time": str})).to_csv(example / METERS, index=False)
        else:
            (example / entry.name).symlink_to(entry)
    return folder


def run_line(line: str, folder) -> tuple[int, str, str]:
    """Run one command of the page in ``folder``: (exit code, stdout, stderr)."""
    argv = shlex.split(line)
    if argv[0] == ".venv/bin/lec-cosim" and not SHELL & set(line):
        from lec_cosim.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv[1:])
        return code, out.getvalue(), err.getvalue()
    done = subprocess.run(line, shell=True, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)
    return done.returncode, done.stdout, ""


def shows(expected: str, actual: str, whole: bool = True) -> None:
    """``actual`` holds ``expected`` (``…`` any text within a line, a line ``...`` any lines); ``whole``: from its
    first line, and to its last unless ``expected`` ends with ``...``."""
    lines = actual.splitlines()
    i, skipping = 0, not whole
    for want in expected.splitlines():
        if want == "...":
            skipping = True
            continue
        pattern = re.compile(".*?".join(re.escape(part) for part in want.split("…")))
        if skipping:
            while i < len(lines) and not pattern.fullmatch(lines[i]):
                i += 1
        assert i < len(lines) and pattern.fullmatch(lines[i]), f"the page shows {want!r}; the output is:\n{actual}"
        i += 1
        skipping = False
    if whole and not skipping:
        assert i == len(lines), f"the output goes on after what the page shows:\n{actual}"


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """Every command of the page run in order: a list of (line, marker, exit code, stdout, stderr, text block
    shown after it or None), and the good working copy."""
    tmp = tmp_path_factory.mktemp("own_feeder_tutorial")
    copies = {}
    found = blocks()
    runs = []
    for k, (marker, lang, body) in enumerate(found):
        if lang != "sh":
            continue
        assert marker in MARKERS, f"the page marks a block {marker!r}; the test knows {sorted(map(str, MARKERS))}"
        if marker not in copies:
            copies[marker] = working_copy(tmp / f"copy{len(copies)}", MARKERS[marker])
        shown = found[k + 1][2] if k + 1 < len(found) and found[k + 1][1] == "text" else None
        lines = body.strip().splitlines()
        for j, line in enumerate(lines):
            assert not line.endswith("\\"), "one command per line"
            code, out, err = run_line(line, copies[marker])
            runs.append((line, marker, code, out, err, shown if j == len(lines) - 1 else None))
    return runs, copies[None]


def test_the_page_shows_the_commands_a_reader_needs(tutorial):
    runs, _ = tutorial
    lines = [line for line, *_ in runs]
    for needed in ('lec-cosim feeder "opendss: data/examples/own_feeder/Master.dss" --check',
                   "lec-cosim validate scenarios/own_feeder_lem.yaml", "lec-cosim run scenarios/own_feeder_lem.yaml",
                   "lec-cosim report results/own_feeder"):
        assert any(needed in line for line in lines), needed
    assert {marker for _, marker, *_ in runs} == set(MARKERS)


def test_every_command_prints_what_the_page_shows(tutorial):
    runs, _ = tutorial
    for line, marker, code, out, err, shown in runs:
        if marker is None:
            assert code == 0, f"{line}: exit {code}\n{out}{err}"
        if shown is not None:
            shows(shown, out + err)


def test_a_bad_meter_file_is_one_line_and_exit_2(tutorial):
    runs, _ = tutorial
    bad = {marker: (line, code, out, err) for line, marker, code, out, err, _ in runs if marker is not None}
    line, code, out, err = bad[f"{METERS} in W"]
    assert line.endswith('; echo "exit code $?"') and code == 0  # the shell's: echo's
    assert out.splitlines()[-1] == "exit code 2" and len(out.splitlines()) == 2
    assert out.startswith("error: ") and "implausible (expected 0 to 50 kW)" in out
    line, code, out, err = bad[f"{METERS} without Church Close 4b"]
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and "column 'Church Close 4b' missing" in err


def test_the_feeder_is_the_opendss_model(tutorial):
    runs, _ = tutorial
    out = next(out for line, _, _, out, _, _ in runs if " feeder " in line and "--check" in line)
    deviation = float(re.search(r"largest voltage difference (\S+) pu against OpenDSS's own solution", out)[1])
    assert deviation < 1e-6
    assert "connection points 15: 4 on phase a, 4 three-phase, 4 on phase b, 3 on phase c" in out
    assert "note:" not in out  # every line code has its rating


def test_the_run_is_the_meter_files_households(tutorial):
    """Energies balance, the load is the meter file's, every household of the file is a player with its readings,
    the voltages lie in a narrow band around the source's 1.02 pu."""
    _, copy = tutorial
    out = copy / "results" / "own_feeder"
    kpis = json.loads((out / "summary.json").read_text())["kpis"]
    meters = pd.read_csv(EXAMPLE / METERS, index_col="time", parse_dates=True)
    day = meters.loc["2016-06-06"]
    assert len(day) == 96
    supply = kpis["pv_kwh"] + kpis["chp_kwh"] + kpis["grid_import_kwh"]
    assert kpis["load_kwh"] + kpis["grid_export_kwh"] == pytest.approx(supply, rel=1e-9)
    assert kpis["load_kwh"] == pytest.approx(day.to_numpy().sum() * 0.25, rel=1e-9)  # kW x 15 min
    assert kpis["pv_kwh"] > 0 and kpis["chp_kwh"] > 0 and kpis["lem_volume_kwh"] > 0

    players = pd.read_csv(out / "participants.csv")
    homes = players[players["kind"] != "chp"]
    names = [re.sub(r"[^A-Za-z0-9_-]+", "_", c) for c in meters.columns]
    assert len(meters.columns) == 16 and list(homes["participant"]) == names
    assert (homes["kind"] == "prosumer").sum() == 8 and (players["kind"] == "chp").sum() == 1
    powers = pd.read_csv(out / "households.csv", parse_dates=["time"])
    load = powers.pivot(index="time", columns="participant", values="load_kw")[names]
    assert load.shape == (96, 16)
    assert (load.to_numpy() - day.to_numpy()).max() == pytest.approx(0.0, abs=1e-9)
    assert (load.to_numpy() - day.to_numpy()).min() == pytest.approx(0.0, abs=1e-9)

    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == 96
    assert (0.99 < grid["vm_min_pu"]).all() and (grid["vm_min_pu"] < grid["vm_max_pu"]).all()
    assert (grid["vm_max_pu"] < 1.05).all()
    assert grid["vm_min_pu"].min() == pytest.approx(kpis["vm_min_pu"], abs=1e-12)
    assert grid["vm_max_pu"].max() == pytest.approx(kpis["vm_max_pu"], abs=1e-12)
    assert kpis["bus_violations"] == 0 and kpis["line_overloads"] == 0
    assert (copy / "results" / "own_feeder.html").read_text().startswith("<!DOCTYPE html>")


def test_the_yaml_block_is_the_shipped_scenario_and_the_excerpts_are_the_files():
    found = blocks()
    yaml_blocks = [body for _, lang, body in found if lang == "yaml"]
    assert yaml_blocks == [SCENARIO.read_text()]
    dss = [body for _, lang, body in found if lang == "dss"]
    csv = [body for _, lang, body in found if lang == "csv"]
    assert len(dss) == 1 and len(csv) == 2
    shows(dss[0], (EXAMPLE / "Master.dss").read_text(), whole=False)
    shows(csv[0], (EXAMPLE / METERS).read_text())
    shows(csv[1], (EXAMPLE / "households.csv").read_text())


def test_the_meter_file_is_what_its_script_writes_and_the_data_are_checksummed():
    spec = importlib.util.spec_from_file_location("make_smart_meters", EXAMPLE / "make_smart_meters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.smart_meters().to_csv(index=False, float_format="%.3f", lineterminator="\n")
    assert text == (EXAMPLE / METERS).read_text()
    sums = (ROOT / "data" / "SHA256SUMS").read_text().splitlines()
    for name in ("Master.dss", "households.csv", METERS, "make_smart_meters.py"):
        digest = hashlib.sha256((EXAMPLE / name).read_bytes()).hexdigest()
        assert f"{digest}  examples/own_feeder/{name}" in sums, name
    assert "examples/own_feeder/" in (ROOT / "data" / "README.md").read_text()

