"""What a run leaves behind: a complete results folder, or a marked incomplete one; never a half-written result.

A run works in ``OUT.partial`` and becomes ``OUT`` only when complete. A failed or interrupted run
(here: a timeout, and a SIGTERM of ``lec-cosim run`` itself) becomes ``OUT.incomplete`` with
``INCOMPLETE.txt`` naming the reason and every federate's log; an existing ``OUT`` survives it, and
no federate or broker process is left, even when ``lec-cosim run`` is killed with SIGKILL.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import (
    cli_in_process,
    no_process_mentions,
    parent_pid,
    processes_mentioning,
    shared_run,
    small_disk,
    start_year_run,
    wait_until,
    write_scenario,
)

CLI = [sys.executable, "-m", "lec_cosim"]
FEDERATES = {"market", "lec_ems", "households", "dso", "recorder", "broker"}



@pytest.fixture
def finished(tmp_path, tmp_path_factory):
    """A scenario and a complete earlier run of it in ``out``: a copy of the shipped day's run that other test
    files read too (``harness.shared_runs``; its runner.json and configs name the shared run's folder)."""
    path, made = shared_run(tmp_path_factory, "trondelag_arbitrage")
    out = tmp_path / "out"
    shutil.copytree(made, out)
    return path, out


def moved_into_place(out: Path) -> None:
    """A complete run is in ``out`` alone, and its runner.json names ``out`` (``helics run --path`` works)."""
    assert not out.with_name(f"{out.name}.partial").exists() and not out.with_name(f"{out.name}.incomplete").exists()
    runner = json.loads((out / "runner.json").read_text())
    assert ".partial" not in json.dumps(runner) and str(out) in json.dumps(runner)


@pytest.mark.timeout(200)
def test_a_complete_run_replaces_the_old_one_only_with_force(finished, tmp_path_factory):
    path, out = finished
    moved_into_place(shared_run(tmp_path_factory, "trondelag_arbitrage")[1])  # the run copied into out
    summary = (out / "summary.json").read_text()
    refused = subprocess.run(CLI + ["run", str(path), "--out", str(out)], capture_output=True, text=True)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (out / "summary.json").read_text() == summary
    again = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--quiet", "--force"], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    moved_into_place(out)  # the new run, where the old one was
    assert json.loads((out / "summary.json").read_text())["kpis"] == json.loads(summary)["kpis"]


@pytest.mark.timeout(200)
def test_a_failed_run_is_kept_apart_and_marked(finished):
    path, out = finished
    before = (out / "summary.json").read_text()
    # stopped in its start-up: a day's run takes ~1.5 s with its fork server started early (a 1.5 s limit raced its end)
    failed = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--force", "--timeout", "0.5", "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "did not finish within 0.5 s" in failed.stderr
    assert "Traceback" not in failed.stderr
    incomplete = out.with_name("out.incomplete")
    assert "did not finish within" in (incomplete / "INCOMPLETE.txt").read_text()
    assert {p.stem for p in (incomplete / "logs").glob("*.log")} == FEDERATES
    assert not (incomplete / "summary.json").exists()
    assert (out / "summary.json").read_text() == before  # --force replaces only with a complete run
    assert no_process_mentions(str(incomplete.parent / "out.partial"))


@pytest.mark.timeout(200)
def test_sigkill_of_the_cli_takes_the_federation_with_it(tmp_path):
    out, proc = start_year_run(tmp_path)
    staging = tmp_path / "year.partial"
    broker = json.loads((staging / "runner.json").read_text())["federates"][0]["exec"]
    port = next(part for part in broker.split() if part.startswith("--port="))

    def federation() -> list[int]:  # the federates name their configs; the broker, its port
        return processes_mentioning(str(staging)) + processes_mentioning(port)

    # the launcher's own children and its fork server's (a federate's passing fork, e.g. to start glpsol, shares its
    # command line): the broker, the watchdog (its own process: it names the run folder too) and the federates
    servers = [pid for pid in processes_mentioning("lec_cosim.forkserver") if parent_pid(pid) == proc.pid]
    assert len(servers) == 1
    children = [pid for pid in federation() if parent_pid(pid) in (proc.pid, *servers) and pid not in servers]
    assert len(children) == len(FEDERATES) + 1
    assert len([pid for pid in children if pid in processes_mentioning("lec_cosim.watchdog")]) == 1
    # the federates and the watchdog are the fork server's (tests/test_forkserver.py): the kill must reach its
    # children too
    assert len([pid for pid in children if parent_pid(pid) in servers]) == len(FEDERATES - {"broker"}) + 1
    proc.kill()  # no handler runs: the kernel's parent-death signal must end the children
    proc.wait(timeout=10)
    assert wait_until(lambda: federation() == [], timeout_s=10)
    assert not out.exists()  # never moved into place: nothing looks complete
    assert (staging / "INCOMPLETE.txt").is_file()  # written before the run started, removed only when complete
    # the next run on this --out keeps the killed one's logs as the incomplete run it was
    short = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 2})
    again = subprocess.run(CLI + ["run", str(short), "--out", str(out), "--quiet"], capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    kept = tmp_path / "year.incomplete"
    assert {p.stem for p in (kept / "logs").glob("*.log")} == FEDERATES
    assert "trondelag_arbitrage_year" in (kept / "runner.json").read_text()


@pytest.mark.timeout(200)
def test_a_second_run_on_the_same_out_is_refused_and_killing_the_first_keeps_its_logs(tmp_path):
    """One year run for both (each started a year run of its own before): a second run on its --out is refused
    and the first goes on; SIGTERM of the first ``lec-cosim run`` then ends its federation, keeps its logs and
    frees the folder for the next run."""
    out, first = start_year_run(tmp_path)
    path = tmp_path / "trondelag_arbitrage_year.yaml"
    second = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--quiet"], capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"another lec-cosim run (PID {first.pid}) is writing this results folder" in second.stderr
    assert first.poll() is None  # undisturbed: still stepping in its own staging folder
    staging = tmp_path / "year.partial"
    assert (staging / "runner.json").is_file() and (staging / "INCOMPLETE.txt").is_file()
    # the first run, interrupted now, still ends as itself and then frees the folder for the next run
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 128 + signal.SIGTERM and "interrupted (SIGTERM)" in err  # 143, as a shell reports it
    assert err.count("\n") == 1
    incomplete = tmp_path / "year.incomplete"
    assert "interrupted (SIGTERM)" in (incomplete / "INCOMPLETE.txt").read_text()
    assert {p.stem for p in (incomplete / "logs").glob("*.log")} == FEDERATES
    assert not out.exists() and not staging.exists()
    assert no_process_mentions(str(staging))
    assert not (tmp_path / ".year.lock").exists()


def test_force_never_removes_a_folder_lec_cosim_did_not_write(tmp_path, capsys):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 2})
    mine = tmp_path / "my_thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work\n")
    for target in (mine, tmp_path):  # a mistyped --out, and the working folder itself
        done = cli_in_process(capsys, "run", path, "--out", target, "--force", "--quiet")
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "is not a lec-cosim run folder" in done.stderr and "nothing was removed" in done.stderr
    assert (mine / "chapter1.tex").read_text() == "years of work\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_thesis", "trondelag_arbitrage.yaml"]
    # a folder beside it named like our staging folder is the user's too
    (tmp_path / "run.partial").mkdir()
    (tmp_path / "run.partial" / "notes.txt").write_text("mine\n")
    done = cli_in_process(capsys, "run", path, "--out", tmp_path / "run", "--quiet")
    assert done.returncode == 2 and "run.partial" in done.stderr and "nothing was removed" in done.stderr
    assert (tmp_path / "run.partial" / "notes.txt").is_file()


def test_out_naming_a_file_is_an_input_error(tmp_path, capsys):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 2})
    (tmp_path / "taken").write_text("a file\n")
    done = cli_in_process(capsys, "run", path, "--out", tmp_path / "taken", "--force")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "a file, not a folder" in done.stderr
    assert (tmp_path / "taken").read_text() == "a file\n"
    too_long = tmp_path / ("x" * 250)
    done = cli_in_process(capsys, "run", path, "--out", too_long)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "too long" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "trondelag_arbitrage.yaml"]


@pytest.fixture(scope="module")
def read_by_head(tmp_path_factory):
    """``lec-cosim run ... | head -1`` into a folder named with blanks, a quote and non-ASCII letters (one run for
    the two tests below): its scenario, its folder, and what the run left as it ended (exit code, stderr,
    whether it is complete and not incomplete)."""
    tmp = tmp_path_factory.mktemp("outcomes")
    path = write_scenario(tmp, "trondelag_arbitrage", {"horizon_h": 3})
    out = tmp / "résultats d'été ü"
    proc = subprocess.Popen(CLI + ["run", str(path), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first_line = proc.stdout.readline()
    proc.stdout.close()  # as head does after its line
    err = proc.stderr.read()
    code = proc.wait(timeout=120)
    complete = (out / "summary.json").is_file() and not out.with_name(f"{out.name}.incomplete").exists()
    return path, out, first_line, code, err, complete


def test_a_reader_that_goes_away_does_not_fail_the_run(read_by_head):
    """``lec-cosim run ... | head -1``: the progress and result lines find no reader; the run completes all the same."""
    _, _, first_line, code, err, complete = read_by_head
    assert first_line.startswith("running")
    assert code == 0 and err == "", err
    assert complete


@pytest.mark.timeout(200)
def test_a_finished_run_in_a_folder_with_any_name_runs_again_under_stock_helics(read_by_head, tmp_path):
    """Blanks, a quote and non-ASCII letters: JSON escapes them and a shell quotes them, so the finished run's
    files must still name the final folder (they named OUT.partial, and ``helics run --path`` failed)."""
    _, out, _, code, err, _ = read_by_head
    assert code == 0, err
    runner = json.loads((out / "runner.json").read_text())
    assert ".partial" not in json.dumps(runner, ensure_ascii=False)
    for entry in runner["federates"][1:]:
        config = shlex.split(entry["exec"])[-1]
        assert config.startswith(str(out)) and os.path.isfile(config), entry["exec"]
        settings = json.loads(open(config).read())["lec_cosim"]
        assert settings["output_dir"] == str(out) and os.path.isfile(settings["scenario"])
    kpis = json.loads((out / "summary.json").read_text())["kpis"]
    (out / "summary.json").unlink()
    helics = os.path.join(os.path.dirname(sys.executable), "helics")
    again = subprocess.run([helics, "run", "--path", str(out / "runner.json")], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((out / "summary.json").read_text())["kpis"] == kpis


@pytest.mark.timeout(200)
def test_a_full_disk_is_one_line_and_the_run_stays_marked_incomplete(tmp_path, capsys):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 24})
    # nothing fits: refused before anything runs, nothing left behind
    with small_disk(tmp_path / "tiny", "4k") as disk:
        done = cli_in_process(capsys, "run", path, "--out", disk / "out", "--quiet")
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
        assert list(disk.iterdir()) == []
    # the run starts, then the disk fills up: the federate that cannot write ends it, the folder says why
    with small_disk(tmp_path / "small", "96k") as disk:
        done = subprocess.run(CLI + ["run", str(path), "--out", str(disk / "out"), "--quiet"], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
        kept = [p for p in disk.iterdir() if p.name.startswith("out.")]
        assert len(kept) == 1 and (kept[0] / "INCOMPLETE.txt").is_file() and str(kept[0]) in done.stderr
        assert not (disk / "out").exists()
        assert no_process_mentions(str(disk))


def test_a_read_only_results_folder_is_one_line_and_exit_code_2(tmp_path, capsys):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 2})
    with small_disk(tmp_path / "ro", "64k", read_only=True) as disk:
        done = cli_in_process(capsys, "run", path, "--out", disk / "out")
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "Read-only file system" in done.stderr and "--out" in done.stderr and "Traceback" not in done.stderr


def test_refused_results_folders_are_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 2})
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out, reason in ((tmp_path / "link", "a symbolic link"), (".", "the current folder"),
                        (str(tmp_path), "the current folder or one above it")):
        done = cli_in_process(capsys, "run", path, "--out", out, "--force")
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and reason in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target", "trondelag_arbitrage.yaml", "work"]
    assert list(work.iterdir()) == [] and list((tmp_path / "target").iterdir()) == []


def test_a_run_that_cannot_reserve_its_ports_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Set-up failing after the staging folder was made (here no port can be reserved: the lock folder is on a
    read-only disk) removes it again: a leftover would block every later run on this --out."""
    from lec_cosim import ports
    from lec_cosim.cli import main

    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 2})
    with small_disk(tmp_path / "locks", "64k", read_only=True) as disk:
        monkeypatch.setattr(ports, "PORT_LOCKS", disk / "lec-cosim-ports")
        code = main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "broker ports" in err and "Read-only file system" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locks", "trondelag_arbitrage.yaml"]
