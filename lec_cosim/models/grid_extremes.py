"""Each bus's lowest and highest voltage and each line's and transformer's peak loading over a run.

The DSOs of the IEEE-feeder federations (their grid adapters ``lec_cosim/adapters/ieee_feeder.py`` and
``three_lec_grid.py``) feed every grid step's :class:`lec_cosim.models.lem_grid.LemGridResult` to a :class:`GridExtremes` and
write its two tables into the run folder; ``lec-cosim report`` draws them on the feeder map
(:mod:`lec_cosim.feeder_map`). Light on purpose (numpy and pandas only): the report reads the tables
without importing the power-flow stack.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.files import write_text_atomic
from lec_cosim.models.feeder_copies import feeder_of_bus, ieee_bus

BUS_EXTREMES_FILE = "bus_voltage_extremes.csv"
BUS_EXTREMES_COLUMNS = ("feeder", "bus", "vm_min_pu", "vm_max_pu", "steps_out_of_band", "out_of_band")
LINE_PEAKS_FILE = "line_loading_peaks.csv"
LINE_PEAKS_COLUMNS = ("feeder", "line", "kind", "from_bus", "to_bus", "loading_max_percent", "steps_overloaded",
                      "overloaded")


class GridExtremes:
    """Each bus's lowest and highest phase voltage and each line's and transformer's peak loading over a run.

    The DSO :meth:`add` s every grid step's :class:`~lec_cosim.models.lem_grid.LemGridResult` (not
    forecasts), or :meth:`add_block` s an exchange's steps at once, and :meth:`write` s the two tables at the end. Only the per-bus and per-line arrays
    each result already holds are read (minima, maxima and comparisons over ~900 elements: about
    15 microseconds a step, against ~1.6 ms for the step's power flow).

    Tables (one row per element; ``feeder`` is the copy, 1 without ``feeder.copies``; ``bus``,
    ``from_bus``, ``to_bus`` are IEEE bus numbers within the feeder):

    - ``bus_voltage_extremes.csv``, columns :data:`BUS_EXTREMES_COLUMNS`: ``vm_min_pu`` /
      ``vm_max_pu`` the lowest / highest phase-to-neutral voltage over the three phases and all
      steps, ``steps_out_of_band`` the steps in which any phase was outside ``[vm_min_pu,
      vm_max_pu]`` of the grid (summed over the buses: the run's ``bus_violations``), and
      ``out_of_band`` whether it ever was.
    - ``line_loading_peaks.csv``, columns :data:`LINE_PEAKS_COLUMNS`: every feeder line section
      (``kind`` ``line``) and transformer (``kind`` ``transformer``, ``from_bus`` empty: its HV side
      is the 11 kV source, ``to_bus`` 1) with ``loading_max_percent`` its highest phase current in %
      of its rating over the run (the transformer's as in ``LemGridResult``),
      ``steps_overloaded`` the steps above ``max_loading_percent`` (summed: the run's
      ``line_overloads``) and ``overloaded`` whether it ever was.
    """

    def __init__(self, grid):
        """``grid``: the :class:`~lec_cosim.models.lem_grid.LemGrid` whose results will be added."""
        self.vm_min_limit_pu, self.vm_max_limit_pu = grid.vm_min_pu, grid.vm_max_pu
        self.max_loading_percent = grid.max_loading_percent
        self._bus_feeder, self._bus = feeder_of_bus(grid.lv_buses), ieee_bus(grid.lv_buses)
        self._line_names = grid.line_names
        self._line_feeder = feeder_of_bus(grid.line_from_bus)
        self._line_ends = ieee_bus(grid.line_from_bus), ieee_bus(grid.line_to_bus)
        self._trafo_names = grid.trafo_names
        self._trafo_lv_bus = ieee_bus(grid._trafo_lv_bus)  # the grid's, not its net's: a compiled grid has none
        n_bus, n_line, n_trafo = grid.lv_buses.size, len(grid.line_names), len(grid.trafo_names)
        self.vm_min_pu, self.vm_max_pu = np.full(n_bus, np.inf), np.full(n_bus, -np.inf)
        self.bus_steps_out_of_band = np.zeros(n_bus, dtype=np.int64)
        self.line_loading_max_percent = np.full(n_line, -np.inf)
        self.line_steps_overloaded = np.zeros(n_line, dtype=np.int64)
        self.trafo_loading_max_percent = np.full(n_trafo, -np.inf)
        self.trafo_steps_overloaded = np.zeros(n_trafo, dtype=np.int64)
        self.steps = 0

    def add(self, result) -> None:
        """Take one grid step's power flow into the extremes."""
        vm = result.vm_pu_values  # phase by phase: ~20 x faster than .min(axis=1) on a column-major frame
        low = np.minimum(np.minimum(vm[:, 0], vm[:, 1]), vm[:, 2])
        high = np.maximum(np.maximum(vm[:, 0], vm[:, 1]), vm[:, 2])
        np.minimum(self.vm_min_pu, low, out=self.vm_min_pu)
        np.maximum(self.vm_max_pu, high, out=self.vm_max_pu)
        self.bus_steps_out_of_band += (low < self.vm_min_limit_pu) | (high > self.vm_max_limit_pu)
        lines = result.line_loading_values
        np.maximum(self.line_loading_max_percent, lines, out=self.line_loading_max_percent)
        self.line_steps_overloaded += lines > self.max_loading_percent
        trafos = np.asarray(result.trafo_loadings_percent, dtype=float)
        np.maximum(self.trafo_loading_max_percent, trafos, out=self.trafo_loading_max_percent)
        self.trafo_steps_overloaded += trafos > self.max_loading_percent
        self.steps += 1

    def add_block(self, block) -> None:
        """Take a block of grid steps (a :class:`~lec_cosim.models.grid_indicators.LemGridBlock`) into the
        extremes: the same tables as :meth:`add` of each step in turn (minima, maxima and counts, in any order)."""
        vm = block.vm_pu_values  # (step, bus, phase)
        low, high = block.vm_bus_min_pu, block.vm_bus_max_pu  # each bus's lowest and highest phase, if at hand
        if low is None or high is None:
            low = np.minimum(np.minimum(vm[:, :, 0], vm[:, :, 1]), vm[:, :, 2])
            high = np.maximum(np.maximum(vm[:, :, 0], vm[:, :, 1]), vm[:, :, 2])
        np.minimum(self.vm_min_pu, low.min(axis=0), out=self.vm_min_pu)
        np.maximum(self.vm_max_pu, high.max(axis=0), out=self.vm_max_pu)
        self.bus_steps_out_of_band += ((low < self.vm_min_limit_pu) | (high > self.vm_max_limit_pu)).sum(axis=0)
        lines = block.line_loading_values
        np.maximum(self.line_loading_max_percent, lines.max(axis=0), out=self.line_loading_max_percent)
        self.line_steps_overloaded += (lines > self.max_loading_percent).sum(axis=0)
        trafos = np.asarray(block.trafo_loadings_percent, dtype=float)
        np.maximum(self.trafo_loading_max_percent, trafos.max(axis=0), out=self.trafo_loading_max_percent)
        self.trafo_steps_overloaded += (trafos > self.max_loading_percent).sum(axis=0)
        self.steps += len(vm)

    def bus_table(self) -> pd.DataFrame:
        """``bus_voltage_extremes.csv`` as a frame (columns :data:`BUS_EXTREMES_COLUMNS`)."""
        return pd.DataFrame({"feeder": self._bus_feeder, "bus": self._bus, "vm_min_pu": self.vm_min_pu,
                             "vm_max_pu": self.vm_max_pu, "steps_out_of_band": self.bus_steps_out_of_band,
                             "out_of_band": self.bus_steps_out_of_band > 0}, columns=list(BUS_EXTREMES_COLUMNS))

    def line_table(self) -> pd.DataFrame:
        """``line_loading_peaks.csv`` as a frame (columns :data:`LINE_PEAKS_COLUMNS`): lines, then transformers."""
        n_trafo = len(self._trafo_names)
        lines = pd.DataFrame({"feeder": self._line_feeder, "line": self._line_names, "kind": "line",
                              "from_bus": self._line_ends[0], "to_bus": self._line_ends[1],
                              "loading_max_percent": self.line_loading_max_percent,
                              "steps_overloaded": self.line_steps_overloaded})
        trafos = pd.DataFrame({"feeder": np.arange(1, n_trafo + 1), "line": self._trafo_names, "kind": "transformer",
                               "from_bus": pd.array([None] * n_trafo, dtype="Int64"),
                               "to_bus": self._trafo_lv_bus,
                               "loading_max_percent": self.trafo_loading_max_percent,
                               "steps_overloaded": self.trafo_steps_overloaded})
        table = pd.concat([lines, trafos], ignore_index=True)
        table["from_bus"] = table["from_bus"].astype("Int64")
        table["overloaded"] = table["steps_overloaded"] > 0
        return table[list(LINE_PEAKS_COLUMNS)]

    def write(self, run_dir: str | Path) -> tuple[Path, Path]:
        """Write both tables into ``run_dir`` (each whole or not at all); returns their paths."""
        if self.steps == 0:
            raise ValueError("no grid step was added: no extremes to write")
        run_dir = Path(run_dir)
        return (write_text_atomic(run_dir / BUS_EXTREMES_FILE, self.bus_table().to_csv(index=False)),
                write_text_atomic(run_dir / LINE_PEAKS_FILE, self.line_table().to_csv(index=False)))


def read_grid_extremes(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The two tables :meth:`GridExtremes.write` wrote into ``run_dir``; None when it has neither."""
    run_dir = Path(run_dir)
    paths = run_dir / BUS_EXTREMES_FILE, run_dir / LINE_PEAKS_FILE
    if not any(p.is_file() for p in paths):
        return None
    tables = []
    for path, columns in zip(paths, (BUS_EXTREMES_COLUMNS, LINE_PEAKS_COLUMNS)):
        try:
            table = pd.read_csv(path, float_precision="round_trip")  # the very numbers written
        except (OSError, pd.errors.EmptyDataError) as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from None
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"{path}: column {missing[0]!r} missing")
        tables.append(table)
    return tables[0], tables[1]
