"""A map of the IEEE European LV feeder coloured by a run's grid extremes (``lec-cosim report``).

Reads a run folder of an IEEE-feeder federation (local market, three LECs): the tables the DSO
wrote (``bus_voltage_extremes.csv``, ``line_loading_peaks.csv``:
:class:`lec_cosim.models.grid_extremes.GridExtremes`), and from ``scenario.json`` the feeder folder
(``feeder.data_dir``, whose ``csv/Buscoords.csv`` places the buses, metres) and the voltage band
(``grid`` for the local market, ``dso`` for the three LECs). With ``feeder.copies`` the copies share
the coordinates: a bus shows the extremes over all copies, a line its largest peak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.models.grid_extremes import read_grid_extremes
from lec_cosim.models.ieee_eulv import FeederDataError, _read_ieee_csv

COORDINATES_FILE = Path("csv") / "Buscoords.csv"


class NoCoordinates(ValueError):
    """The run's feeder folder (``feeder.data_dir``) has no ``csv/Buscoords.csv`` (here, now)."""


@dataclass
class FeederMap:
    """What the map shows, per IEEE bus and line (copies merged), and the band it marks against."""

    buses: pd.DataFrame  # index bus: x_m, y_m, vm_min_pu, vm_max_pu, out_of_band
    lines: pd.DataFrame  # line, from_bus, to_bus, loading_max_percent, overloaded (feeder lines only)
    transformer: pd.DataFrame  # line, loading_max_percent, overloaded
    vm_min_limit_pu: float
    vm_max_limit_pu: float
    max_loading_percent: float
    copies: int
    coordinates: Path


def read_coordinates(data_dir: str | Path) -> pd.DataFrame:
    """``csv/Buscoords.csv`` of a feeder folder: index ``bus`` (int), columns ``x_m``, ``y_m``."""
    path = Path(data_dir) / COORDINATES_FILE
    try:
        table = _read_ieee_csv(path)
    except FileNotFoundError:
        raise NoCoordinates(f"{path}: no such file (the feeder's bus coordinates)") from None
    except FeederDataError as exc:
        raise ValueError(str(exc)) from None
    try:
        return pd.DataFrame({"x_m": table["x"].astype(float).to_numpy(), "y_m": table["y"].astype(float).to_numpy()},
                            index=pd.Index(table["Busname"].astype(int).to_numpy(), name="bus"))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: columns Busname, x, y of numbers expected ({exc})") from None


def _band(scenario: dict) -> tuple[float, float, float]:
    section = scenario.get("grid" if scenario.get("framework") == "local_market" else "dso") or {}
    return (float(section.get("vm_min_pu", 0.9)), float(section.get("vm_max_pu", 1.1)),
            float(section.get("max_loading_percent", 100.0)))


def feeder_map(run_dir: str | Path) -> FeederMap | None:
    """The map's data of a run; None when the run has no grid extremes (before they were recorded).

    Raises
    ------
    NoCoordinates
        The feeder folder the run names has no ``csv/Buscoords.csv`` (moved or on another machine).
    ValueError
        One line naming the file: unreadable tables or scenario, unreadable coordinates, or a bus
        of the tables without coordinates.
    """
    run_dir = Path(run_dir)
    tables = read_grid_extremes(run_dir)
    if tables is None:
        return None
    bus_table, line_table = tables
    try:
        scenario = json.loads((run_dir / "scenario.json").read_text())
        data_dir = scenario["feeder"].get("data_dir")
        if data_dir is None and scenario["feeder"].get("source"):
            raise NoCoordinates(f"{scenario['feeder']['source']}: no map (it is drawn from the IEEE feeder's bus "
                                "coordinates; the extremes are in bus_voltage_extremes.csv and line_loading_peaks.csv)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, NoCoordinates):
            raise
        raise ValueError(f"{run_dir / 'scenario.json'}: no feeder.data_dir to draw the map from ({exc})") from None
    coords = read_coordinates(data_dir)
    buses = bus_table.groupby("bus").agg(vm_min_pu=("vm_min_pu", "min"), vm_max_pu=("vm_max_pu", "max"),
                                         out_of_band=("out_of_band", "any"))
    unknown = sorted(set(buses.index) - set(coords.index))
    if unknown:
        raise ValueError(f"{Path(data_dir) / COORDINATES_FILE}: no coordinates for bus {unknown[0]} of "
                         f"{run_dir / 'bus_voltage_extremes.csv'}")
    buses = coords.join(buses, how="inner")
    is_line = line_table["kind"] == "line"
    lines = line_table[is_line].assign(line=line_table.loc[is_line, "line"].str.replace(r"^F\d+_", "", regex=True))
    lines = lines.groupby(["line", "from_bus", "to_bus"], as_index=False).agg(
        loading_max_percent=("loading_max_percent", "max"), overloaded=("overloaded", "any"))
    low, high, limit = _band(scenario)
    return FeederMap(buses=buses, lines=lines,
                     transformer=line_table.loc[~is_line, ["line", "loading_max_percent", "overloaded"]],
                     vm_min_limit_pu=low, vm_max_limit_pu=high, max_loading_percent=limit,
                     copies=int(bus_table["feeder"].max()), coordinates=Path(data_dir) / COORDINATES_FILE)


def caption(m: FeederMap) -> str:
    """The figure's caption, with the run's numbers."""
    n_out, n_over = int(m.buses["out_of_band"].sum()), int(m.lines["overloaded"].sum())
    trafo = m.transformer["loading_max_percent"].max()
    copies = f" Over the {m.copies} feeder copies: each bus's extremes and each line's peak over all copies." \
        if m.copies > 1 else ""
    return (f"Feeder map ({m.coordinates.name} of the run's feeder, metres): every bus coloured by its lowest (left) "
            f"and highest (right) phase voltage over the run, on one scale centred at 1 pu over the band "
            f"{m.vm_min_limit_pu:.2f}-{m.vm_max_limit_pu:.2f} pu; lines coloured by their peak loading (% of the "
            f"rating). Violations: {n_out} buses ever outside the band (black rings), {n_over} line sections ever "
            f"above {m.max_loading_percent:g} % (thick, red outline). The transformer (square, bus 1) peaked at "
            f"{trafo:.1f} %.{copies}")


def plot_feeder_map(m: FeederMap, output_png: str | Path, title: str | None = None) -> None:
    """Two panels (lowest and highest voltage per bus) over the lines' peak loading, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors, patheffects
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    b = m.buses
    x0, y0 = b["x_m"].min(), b["y_m"].min()
    x, y = b["x_m"] - x0, b["y_m"] - y0
    ends = m.lines[["from_bus", "to_bus"]].to_numpy(dtype=int)
    xy = np.stack([np.c_[x.reindex(ends[:, 0]), y.reindex(ends[:, 0])],
                   np.c_[x.reindex(ends[:, 1]), y.reindex(ends[:, 1])]], axis=1)
    loading = m.lines["loading_max_percent"].to_numpy(dtype=float)
    over = m.lines["overloaded"].to_numpy(dtype=bool)
    vnorm = colors.TwoSlopeNorm(vcenter=1.0, vmin=min(m.vm_min_limit_pu, 0.999), vmax=max(m.vm_max_limit_pu, 1.001))
    lnorm = colors.Normalize(vmin=0.0, vmax=max(m.max_loading_percent, float(np.nanmax(loading))))
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.9), sharex=True, sharey=True)  # 1100 px: shown at its own size
    for ax, column, label in zip(axes, ("vm_min_pu", "vm_max_pu"), ("lowest", "highest")):
        if over.any():
            ax.add_collection(LineCollection(xy[over], colors="#d62728", linewidths=4.5, zorder=1))
        lc = LineCollection(xy, array=loading, cmap="viridis", norm=lnorm, linewidths=np.where(over, 2.2, 1.1),
                            zorder=2)
        ax.add_collection(lc)
        points = ax.scatter(x, y, c=b[column], cmap="coolwarm", norm=vnorm, s=10, linewidths=0, zorder=3)
        bad = b["out_of_band"].to_numpy(dtype=bool)
        if bad.any():
            ax.scatter(x[bad], y[bad], s=55, facecolors="none", edgecolors="black", linewidths=1.1, zorder=4)
        if 1 in b.index:
            ax.plot(x.loc[1], y.loc[1], "s", ms=9, mfc="white", mec="black", zorder=5,
                    path_effects=[patheffects.withStroke(linewidth=2, foreground="white")])
        ax.set_title(f"{label} phase voltage per bus over the run", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.autoscale_view()
    axes[0].set_ylabel("y (m)")
    fig.colorbar(points, ax=axes, orientation="horizontal", fraction=0.05, pad=0.1, aspect=50,
                 label="bus voltage, lowest (left) and highest (right) phase over the run (pu)")
    bar = fig.colorbar(lc, ax=axes, orientation="vertical", fraction=0.03, pad=0.02,
                       label="peak line loading over the run (% of rating)")
    bar.ax.axhline(m.max_loading_percent, color="#d62728", lw=1.5)
    handles = [Line2D([], [], marker="o", mfc="none", mec="black", lw=0, ms=8,
                      label=f"bus outside {m.vm_min_limit_pu:.2f}-{m.vm_max_limit_pu:.2f} pu "
                            f"({int(b['out_of_band'].sum())})"),
               Line2D([], [], color="#d62728", lw=4,
                      label=f"line above {m.max_loading_percent:g} % ({int(over.sum())})"),
               Line2D([], [], marker="s", mfc="white", mec="black", lw=0, ms=8,
                      label=f"transformer, peak {m.transformer['loading_max_percent'].max():.1f} %")]
    axes[1].legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(output_png, dpi=100)
    plt.close(fig)
