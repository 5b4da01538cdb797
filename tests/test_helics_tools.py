"""Stock HELICS tools on our federations: helics_recorder captures a run (``--record``)."""

import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from harness import write_scenario

CLI = [sys.executable, "-m", "lec_cosim"]


def read_recording(path) -> dict[str, list[tuple[float, str]]]:
    """helics_recorder's text file: ``time tag [type] "value"`` per line, by tag."""
    values: dict[str, list[tuple[float, str]]] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = shlex.split(line)
        values.setdefault(parts[1], []).append((float(parts[0]), parts[-1]))
    return values


@pytest.mark.timeout(200)
def test_helics_recorder_captures_what_our_recorder_wrote(tmp_path):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 4})
    out = tmp_path / "out"
    done = subprocess.run(CLI + ["run", str(path), "--out", str(out), "--quiet", "--record", "lec1/pcc/p_mw",
                                 "--record", "market/price_eur_per_mwh"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = read_recording(out / "helics_recorder.txt")
    pcc = pd.read_csv(out / "pcc.csv")
    p_mw = np.array([float(v) for _, v in recorded["lec1/pcc/p_mw"]])
    assert len(p_mw) == len(pcc) == 16  # every grid step, in order
    np.testing.assert_allclose(p_mw, pcc["p_mw"].to_numpy(), rtol=0, atol=5.1e-7)  # written with 6 decimals
    times = [t for t, _ in recorded["lec1/pcc/p_mw"]]
    assert times == sorted(times) and times[-1] < 4 * 3600
    prices = [float(v) for _, v in recorded["market/price_eur_per_mwh"]]
    ems = pd.read_csv(out / "ems.csv")
    np.testing.assert_allclose(prices, ems["price"].to_numpy()[:len(prices)], rtol=0, atol=5.1e-7)
    assert len(prices) == 4


def test_record_names_only_published_keys(tmp_path):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 1})
    done = subprocess.run(CLI + ["run", str(path), "--out", str(tmp_path / "out"), "--record", "lec1/nothing"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--record" in done.stderr and "lec1/nothing" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


MARKET_KEYS = ("market/day_ahead_price_eur_per_mwh", "market/day_ahead_export_price_eur_per_mwh",
               "market/price_eur_per_mwh", "market/export_price_eur_per_mwh")


@pytest.mark.timeout(200)
def test_helics_player_replaces_the_market_with_a_recorded_price_series(tmp_path):
    """Record the market's publications with helics_recorder, then run again with helics_player
    playing them instead of the market federate: the same EMS plan, the same grid, the same KPIs. Six hours: the
    day-ahead prices arrive at once, every hour of the plan follows them."""
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 6})
    recorded, played = tmp_path / "recorded", tmp_path / "played"
    record = [arg for key in MARKET_KEYS for arg in ("--record", key)]
    done = subprocess.run(CLI + ["run", str(path), "--out", str(recorded), "--quiet", *record],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    tape = recorded / "helics_recorder.txt"
    assert set(read_recording(tape)) == set(MARKET_KEYS)
    done = subprocess.run(CLI + ["run", str(path), "--out", str(played), "--quiet", "--play-market", str(tape)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    runner = (played / "runner.json").read_text()
    assert "helics_player" in runner and "federates.market" not in runner
    for name in ("ems.csv", "pcc.csv", "grid.csv"):
        assert (played / name).read_bytes() == (recorded / name).read_bytes(), name


def test_play_market_checks_its_file_before_anything_is_written(tmp_path):
    path = write_scenario(tmp_path, "trondelag_arbitrage", {"horizon_h": 1})
    tape = tmp_path / "tape.txt"
    tape.write_text('#time tag type value\n0 market/price_eur_per_mwh double "30"\n')
    done = subprocess.run(CLI + ["run", str(path), "--out", str(tmp_path / "out"), "--play-market", str(tape)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--play-market" in done.stderr and "day_ahead_price_eur_per_mwh" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
