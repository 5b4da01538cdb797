"""The feeder map's data (``lec_cosim.feeder_map``) from real power flows on two copies of the IEEE feeder.

Copy 2 carries 1.6 times copy 1's evening load, so its voltages sag further: the map, which shares the
IEEE coordinates between copies, must show each bus's extremes over both copies and each line's larger
peak, placed at the coordinates of ``Buscoords.csv``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from harness import ROOT
from PIL import Image

from lec_cosim.feeder_map import NoCoordinates, caption, feeder_map, plot_feeder_map, read_coordinates
from lec_cosim.models.feeder_copies import replicate_participants
from lec_cosim.models.grid_extremes import GridExtremes
from lec_cosim.models.ieee_eulv import _read_ieee_csv
from lec_cosim.models.lem_community import build_community
from lec_cosim.models.lem_grid import LemGrid

DATA = ROOT / "data" / "ieee_eulv"
PV_FILE = ROOT / "data" / "pv" / "simbench_PV_profiles_2016_15min.csv"
EVENING, NOON = 76, 48
HEAVIER = 1.6  # copy 2's load, times copy 1's


def write_run(run, data_dir, band=(0.95, 1.05)):
    run.mkdir(exist_ok=True)
    (run / "scenario.json").write_text(json.dumps({
        "framework": "local_market", "feeder": {"data_dir": str(data_dir), "copies": 2},
        "grid": {"vm_min_pu": band[0], "vm_max_pu": band[1], "max_loading_percent": 100.0}}))


def test_two_copies_merge_per_ieee_bus_and_line(tmp_path):
    community = build_community(DATA, "2016-05-26", PV_FILE, grid_min=15)
    table = replicate_participants(community.table, 2)
    grid = LemGrid(table=table, vm_min_pu=0.95, vm_max_pu=1.05)
    names = table["participant"].to_numpy()
    kinds = np.tile(community.kinds, 2)
    scale = np.repeat([1.0, HEAVIER], len(community.kinds))
    hh, pros = kinds != "chp", kinds == "prosumer"
    extremes = GridExtremes(grid)
    results = []
    for step in (EVENING, NOON):
        load = np.tile(community.load_kw[:, step], 2) * scale
        kvar = np.tile(community.load_kvar[:, step], 2) * scale
        grid.set_injections(load_kw=pd.Series(load[hh], index=names[hh]),
                            load_kvar=pd.Series(kvar[hh], index=names[hh]),
                            pv_kw=pd.Series(np.tile(community.pv_kw[:, step], 2)[pros], index=names[pros]))
        results.append(grid.solve())
        extremes.add(results[-1])
    run = tmp_path / "run"
    write_run(run, DATA)
    extremes.write(run)

    buses = pd.read_csv(run / "bus_voltage_extremes.csv", float_precision="round_trip")
    lines = pd.read_csv(run / "line_loading_peaks.csv", float_precision="round_trip")
    assert len(buses) == 2 * 906 and list(buses.groupby("feeder").size()) == [906, 906]
    assert list(buses.loc[buses["feeder"] == 2, "bus"]) == list(range(1, 907))  # IEEE numbers within the copy
    trafos = lines[lines["kind"] == "transformer"]
    assert len(lines) == 2 * 905 + 2 and list(trafos["feeder"]) == [1, 2] and list(trafos["to_bus"]) == [1, 1]
    # the heavier copy sags further and loads its transformer more
    by_copy = buses.pivot(index="bus", columns="feeder", values="vm_min_pu")
    assert (by_copy[2] <= by_copy[1] + 1e-12).mean() > 0.95 and by_copy[2].min() < by_copy[1].min() - 0.005
    assert trafos["loading_max_percent"].iat[1] > trafos["loading_max_percent"].iat[0]

    m = feeder_map(run)
    assert m.copies == 2 and (m.vm_min_limit_pu, m.vm_max_limit_pu) == (0.95, 1.05)
    coords = read_coordinates(DATA)
    assert list(m.buses.index) == list(coords.index) == list(range(1, 907))
    np.testing.assert_array_equal(m.buses[["x_m", "y_m"]], coords[["x_m", "y_m"]])
    ieee = _read_ieee_csv(DATA / "csv" / "Buscoords.csv")
    assert m.buses.at[1, "x_m"] == float(ieee["x"].iat[0]) == 390872.663
    # per IEEE bus: the lowest over both copies' phases and steps, from the flows themselves
    vm = np.stack([r.vm_pu.to_numpy() for r in results])  # (step, 2 x 906 buses, phase)
    lowest = np.minimum(vm[:, :906].min(axis=(0, 2)), vm[:, 906:].min(axis=(0, 2)))
    highest = np.maximum(vm[:, :906].max(axis=(0, 2)), vm[:, 906:].max(axis=(0, 2)))
    np.testing.assert_array_equal(m.buses["vm_min_pu"], lowest)
    np.testing.assert_array_equal(m.buses["vm_max_pu"], highest)
    out = m.buses["out_of_band"]
    assert out.any() and ((m.buses.loc[out, "vm_min_pu"] < 0.95) | (m.buses.loc[out, "vm_max_pu"] > 1.05)).all()
    # per IEEE line: the larger peak of its two sections, at the ends Lines.csv gives
    assert len(m.lines) == 905
    loading = np.max([r.line_loading_percent.to_numpy() for r in results], axis=0)
    merged = np.maximum(loading[:905], loading[905:])
    np.testing.assert_array_equal(m.lines.set_index("line").loc[[f"LINE{i}" for i in range(1, 906)],
                                                                "loading_max_percent"], merged)
    assert m.lines["overloaded"].any() == (merged > 100.0).any()
    text = caption(m)
    assert f"{int(out.sum())} buses ever outside the band" in text and "Over the 2 feeder copies" in text
    assert f"peaked at {trafos['loading_max_percent'].max():.1f} %" in text

    png = tmp_path / "map.png"
    plot_feeder_map(m, png, title="two copies")
    image = Image.open(io.BytesIO(png.read_bytes()))
    assert image.size == (1100, 590)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 300  # a map in two colour scales, not a blank canvas

    # the feeder folder the run names is gone (the run was made elsewhere): say so, do not guess
    write_run(run, tmp_path / "elsewhere")
    with pytest.raises(NoCoordinates, match="Buscoords.csv: no such file"):
        feeder_map(run)
