"""Figs. 3 and 4 of Lezama et al. for local-market runs: LEM prices, energy per period, both in one figure.

Separate from the tables (:mod:`lec_cosim.studies.local_market.report_tables`): everything here draws with
matplotlib (imported only when a figure is drawn, with the ``Agg`` backend) and reads the runs'
``clearing.csv`` and ``energy.csv``, which the tables never need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.bidding import (
    FEED_IN_EUR_PER_KWH,
    SCHEMES,
    retail_tariff_eur_per_kwh,
)
from lec_cosim.studies.local_market.report_runs import (
    CLEARING_COLUMNS,
    ENERGY_COLUMNS,
    _read_lem_summary,
    read_run_csv,
    run_labels,
)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def _hours(times: pd.Series) -> np.ndarray:
    """Hours since midnight of the first period's day (wall-clock offsets kept as written)."""
    try:
        parsed = pd.to_datetime(times, format="ISO8601")
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):  # mixed UTC offsets
        parsed = pd.to_datetime(times, format="ISO8601", utc=True)
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)
    origin = parsed.iloc[0].normalize()
    return ((parsed - origin) / pd.Timedelta(hours=1)).to_numpy(dtype=float)


def _hour_ticks(ax, x_max: float) -> None:
    """Ticks every 3 h over a day or two, then every whole number of days (at most ~16 ticks)."""
    step = 3.0 if x_max <= 48 else 24.0 * max(1, math.ceil(x_max / 24.0 / 16))
    ax.set_xticks(np.arange(0, x_max + 1e-9, step))


def _hour_label(x_max: float) -> str:
    return "hour of day (h)" if x_max <= 24 else "hours from midnight of the first day (h)"


def _period_h(hours: np.ndarray) -> float:
    steps = np.diff(hours)
    return float(np.median(steps)) if len(steps) else 1.0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_prices(ax, run_dirs: Sequence[str | Path], tariffs: Mapping[str, Sequence[float]] | None,
                 require_lem: bool) -> None:
    summaries = [_read_lem_summary(run) for run in run_dirs]
    labels = run_labels(summaries)
    x_max = 24.0
    drawn = 0
    for run, summary, label in zip(run_dirs, summaries, labels):
        if not summary.get("lem_enabled"):
            continue
        clearing = read_run_csv(run, "clearing.csv", CLEARING_COLUMNS)
        if clearing.empty:
            raise ValueError(f"{run}: clearing.csv has no rows")
        hours = _hours(clearing["time"])
        end = hours[-1] + _period_h(hours)
        price = pd.to_numeric(clearing["price"], errors="coerce").to_numpy(dtype=float)
        ax.step(np.append(hours, end), np.append(price, price[-1]), where="post", lw=2, label=f"{label} LEM price")
        x_max = max(x_max, end)
        drawn += 1
    if require_lem and not drawn:
        raise ValueError(f"no LEM run (lem_enabled true) among {', '.join(str(r) for r in run_dirs)}")
    hours = np.arange(math.ceil(x_max) + 1)
    schemes = sorted({s.get("tariff_scheme") for s in summaries if s.get("tariff_scheme") in SCHEMES},
                     key=SCHEMES.index)
    tariffs = dict(tariffs or {})
    for scheme in schemes:
        if scheme not in tariffs:
            tariffs[scheme] = retail_tariff_eur_per_kwh(hours[:-1], scheme)
    for scheme, values in tariffs.items():
        values = np.asarray(values, dtype=float)
        if len(values) == 24 and x_max > 24:  # the hours of a day, repeated over a multi-day run
            values = np.resize(values, math.ceil(x_max))
        x = np.arange(len(values) + 1)
        ax.step(x, np.append(values, values[-1]), where="post", ls="--", color="grey" if scheme == "plain" else "k",
                lw=1, label=f"retail tariff ({scheme})")
    ax.axhline(FEED_IN_EUR_PER_KWH, ls=":", color="tab:green", lw=1.2, label=f"feed-in tariff ({FEED_IN_EUR_PER_KWH})")
    ax.set_ylabel("price (EUR/kWh)")
    ax.set_xlim(0, x_max)
    _hour_ticks(ax, x_max)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _draw_energy(ax, run_dir: str | Path, title: str | None = None) -> None:
    energy = read_run_csv(run_dir, "energy.csv", ENERGY_COLUMNS)
    if energy.empty:
        raise ValueError(f"{run_dir}: energy.csv has no rows")
    hours = _hours(energy["time"])
    period = _period_h(hours)
    width = 0.4 * period
    mid = hours + period / 2
    ax.bar(mid - width / 2, energy.grid_import_kwh, width, color="tab:red", label="grid import (bought)")
    ax.bar(mid - width / 2, -energy.grid_export_kwh, width, color="tab:orange", label="grid export (sold)")
    ax.bar(mid + width / 2, energy.lem_bought_kwh, width, color="tab:blue", label="LEM bought")
    ax.bar(mid + width / 2, -energy.lem_sold_kwh, width, color="tab:cyan", label="LEM sold")
    ax.plot(mid, energy.pv_kwh, "-o", ms=3, color="gold", label="PV output")
    ax.plot(mid, energy.chp_kwh, "-s", ms=3, color="tab:purple", label="CHP output")
    ax.plot(mid, energy.load_kwh, "--", color="k", lw=1, label="load")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel(f"energy per {period:g} h (kWh)")
    x_max = max(24.0, hours[-1] + period)
    ax.set_xlim(0, x_max)
    _hour_ticks(ax, x_max)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=10)


def _save(fig, output_png: str | Path) -> None:
    plt = _pyplot()
    fig.tight_layout()
    fig.savefig(output_png, dpi=120)
    plt.close(fig)


def plot_lem_prices(run_dirs: Sequence[str | Path], output_png: str | Path,
                    tariffs: Mapping[str, Sequence[float]] | None = None) -> None:
    """Fig. 3 analogue: LEM clearing price per period of each LEM run (step plot), to a PNG.

    Reference lines: the retail tariff of each tariff scheme among the runs (hourly values from
    :func:`lec_cosim.models.bidding.retail_tariff_eur_per_kwh`, or ``tariffs[scheme]`` per hour
    of day if given) and the feed-in tariff. Runs without the LEM are skipped; ValueError if none
    is left. Periods where nothing traded (empty price) leave a gap.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    try:
        _draw_prices(ax, run_dirs, tariffs, require_lem=True)
        ax.set_xlabel(_hour_label(ax.get_xlim()[1]))
        ax.set_title("LEM clearing price", fontsize=10)
    except Exception:
        plt.close(fig)
        raise
    _save(fig, output_png)


def plot_lem_energy(run_dir: str | Path, output_png: str | Path) -> None:
    """Fig. 4 analogue for one run: per period, energy bought (up) and sold (down) on the grid and
    in the LEM (bars) with PV, CHP output and load (lines), to a PNG."""
    plt = _pyplot()
    summary = _read_lem_summary(run_dir)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    try:
        _draw_energy(ax, run_dir, title=f"{run_labels([summary])[0]}: energy per period")
        ax.set_xlabel(_hour_label(ax.get_xlim()[1]))
    except Exception:
        plt.close(fig)
        raise
    _save(fig, output_png)


def plot_lem_runs(run_dirs: Sequence[str | Path], output_png: str | Path,
                  tariffs: Mapping[str, Sequence[float]] | None = None) -> None:
    """Multi-panel figure: the prices panel (Fig. 3) over one energy panel (Fig. 4) per run."""
    if not run_dirs:
        raise ValueError("no run directories given")
    summaries = [_read_lem_summary(run) for run in run_dirs]
    labels = run_labels(summaries)
    plt = _pyplot()
    fig, axes = plt.subplots(len(run_dirs) + 1, 1, figsize=(11, 3.2 * (len(run_dirs) + 1)), sharex=True)
    try:
        _draw_prices(axes[0], run_dirs, tariffs, require_lem=False)
        axes[0].set_title("LEM clearing price and tariffs", fontsize=10)
        for ax, run, label in zip(axes[1:], run_dirs, labels):
            _draw_energy(ax, run, title=f"{label}: energy per period")
        axes[-1].set_xlabel(_hour_label(max(ax.get_xlim()[1] for ax in axes)))
    except Exception:
        plt.close(fig)
        raise
    _save(fig, output_png)

