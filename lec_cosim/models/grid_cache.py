"""The IEEE feeder's three-phase grid with the fixed-point flow, compiled once and loaded without pandapower.

Why: a DSO federate's start-up was the critical path of every local-market run: importing pandapower (~1.9 s on
the project's 2-core machine, its plotting and estimation packages with it), building the IEEE net (~0.7 s) and
the fixed point's reduced model from pandapower's sequence networks, before the first grid step; 2.7-3.4 s of a
week's 4.7 s. What a flow needs after that is arrays: :func:`lem_grid` keeps the built :class:`LemGrid` (and its
:class:`~lec_cosim.models.fixed_point_backend.FixedPointPowerFlow`) without the pandapower net in a cache file,
and the next run with the same inputs loads it in milliseconds.

The entry (:mod:`lec_cosim.models.disk_cache`) is named by a hash of everything the grid is built from: the
grid's arguments (the participants' table, the voltage band, limits, step, solver, source strength), the feeder
data files' contents, the source of the model modules (:func:`~lec_cosim.models.disk_cache.model_sources`, all of them: the grid is built
by several; a change of the code is a new entry) and the versions of Python, numpy, scipy, pandas, pandapower and power-grid-model; ``LEC_COSIM_NO_CACHE=1`` builds every time.

A loaded grid has no net until something asks for ``grid.net``: then it is built (pandapower imported) from the
stored arguments, the same net, e.g. for the fixed point's fallback to power-grid-model on a state it cannot
settle. Only the fixed-point flow on the IEEE feeder (``feeder`` None) is compiled; anything else is built as
before.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from lec_cosim.models import disk_cache
from lec_cosim.models.feeder_lines import LINE_RATINGS_FILE
from lec_cosim.models.feeder_tables import feeder_folder_files
from lec_cosim.models.fixed_point_backend import FixedPointPowerFlow
from lec_cosim.models.three_phase_feeder import LemGrid

__all__ = ["lem_grid"]

LOG = logging.getLogger(__name__)
FORMAT = 1
"""Of the cache file's content; part of its name."""


class CompiledLemGrid(LemGrid):
    """A :class:`LemGrid` loaded from the cache: its net is built on first use, from the stored arguments."""

    @property
    def net(self):
        if self._compiled_net is None:
            LOG.info("building the feeder's net from its arguments (a compiled grid had none)")
            self._compiled_net = LemGrid(**self._build_arguments).net
        return self._compiled_net

    @net.setter
    def net(self, value) -> None:
        self._compiled_net = value

    def _engine(self, powers):
        if self._compiled_net is None:  # nobody holds a net that could have changed: the compiled engine is it
            return self._pgm
        return super()._engine(powers)

    def _rows(self, table: str) -> int:
        if self._compiled_net is None:
            return self._compiled_rows[table]
        return super()._rows(table)


class CompiledFixedPoint(FixedPointPowerFlow):
    """The fixed point of a compiled grid: its net is the grid's (for the fallback), built on first use."""

    @property
    def net(self):
        return self._grid.net

    @net.setter
    def net(self, value) -> None:  # set by the constructor only, which a compiled engine never runs
        raise AttributeError("a compiled engine's net is its grid's")

    def _scales(self) -> dict[str, np.ndarray]:
        if self._grid._compiled_net is None:  # the net's in_service and scaling, as compiled
            return self._compiled_scales
        return super()._scales()

    def _table_powers(self, table_name: str):
        if self._grid._compiled_net is None:  # a table the grid does not set keeps its compiled powers
            return self._compiled_powers[table_name]
        return super()._table_powers(table_name)


def _key(arguments: dict) -> str:
    table = arguments["table"]
    text = io.StringIO()
    table.to_csv(text)
    plain = {k: (str(v) if isinstance(v, Path) else v) for k, v in arguments.items() if k != "table"}
    data_dir = Path(arguments["data_dir"])
    # the feeder's files, the line ratings the grid reads from the project's data whatever the data_dir, the code
    files = [*sorted({*feeder_folder_files(data_dir), Path(LINE_RATINGS_FILE)}), *disk_cache.model_sources()]
    # pandapower's version by its metadata: importing it is what a compiled grid saves
    return disk_cache.content_key(json.dumps(
        {"format": FORMAT, "arguments": plain, "table": text.getvalue(), "files": [str(f) for f in files],
         "python": sys.version, "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
         "pandapower": version("pandapower"), "power-grid-model": version("power-grid-model")},
        sort_keys=True, default=str), files)


def _compiled_state(grid: LemGrid, arguments: dict) -> dict:
    """What is pickled of ``grid`` and its engine: all but the net (nor a thread pool, nor threads' engines)."""
    set_by_grid = grid._phase_powers()
    engine = grid._engine(set_by_grid)  # the fixed point built now: its reduction is most of the build
    if not isinstance(engine, FixedPointPowerFlow):
        raise TypeError("only a fixed-point grid is compiled")
    state = {**grid.__dict__, "net": None, "_pool": None, "_flow_copies": [], "_pgm": None, "_recent": None,
             "_block_scratch": {}}  # no steps solved before kept (they hold the engine and blocks of results)
    engine_state = {**engine.__dict__, "_fallback": None, "_compiled_scales": engine._scales(),
                    "_compiled_powers": {table: engine._table_powers(table)
                                         for table in engine._tables if table not in set_by_grid}}
    engine_state.pop("net", None)
    rows = {table: len(grid.net[table]) for table in ("asymmetric_load", "asymmetric_sgen")}
    return {"format": FORMAT, "grid": state, "engine": engine_state, "rows": rows, "arguments": arguments}


def _loaded(blob: bytes) -> CompiledLemGrid:
    content = pickle.loads(blob)
    if content.get("format") != FORMAT:
        raise ValueError("another format")
    grid = CompiledLemGrid.__new__(CompiledLemGrid)
    state = dict(content["grid"])
    state.pop("net", None)
    grid.__dict__.update(state)
    grid._compiled_net = None
    grid._compiled_rows = content["rows"]
    grid._build_arguments = content["arguments"]
    engine = CompiledFixedPoint.__new__(CompiledFixedPoint)
    engine.__dict__.update(content["engine"])
    engine._grid = grid
    grid._pgm = engine
    return grid


def lem_grid(**arguments) -> LemGrid:
    """``LemGrid(**arguments)``: loaded from the cache for the fixed-point flow on the IEEE feeder (``feeder``
    None), compiled into it when not there yet; built as usual otherwise."""
    if (arguments.get("solver") != "fixed-point" or arguments.get("feeder") is not None
            or arguments.get("table") is None or arguments.get("line_ratings") is not None
            or not disk_cache.enabled()):  # ratings given as a table or file: not keyed by their content
        return LemGrid(**arguments)
    arguments = {k: v for k, v in arguments.items() if k != "feeder"}
    arguments.setdefault("data_dir", LemGrid.__init__.__kwdefaults__["data_dir"])
    key = _key(arguments)
    blob = disk_cache.load("grids", key)
    if blob is not None:
        try:
            return _loaded(blob)
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is built again and replaced
            LOG.warning("grid cache entry %s unreadable (%s: %s): building the grid", key, type(exc).__name__, exc)
    grid = LemGrid(**arguments)
    disk_cache.store("grids", key, _compiled_state(grid, arguments))
    return grid
