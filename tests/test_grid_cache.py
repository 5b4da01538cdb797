"""The compiled grid (lec_cosim/models/grid_cache.py) and the disk cache (lec_cosim/models/disk_cache.py).

A grid loaded from the cache must solve every state as the grid built from pandapower does, to the last digit,
without importing pandapower; its net is built only when something needs it (the fallback to power-grid-model);
any change of its inputs is another entry; an unreadable entry is built again. A profile file is parsed and
checked once for all processes, again when its content changes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_pgm_backend import DATA, STEPS, community  # noqa: F401 (a fixture)

from lec_cosim.models import disk_cache
from lec_cosim.models.grid_cache import CompiledLemGrid, lem_grid
from lec_cosim.models.lem_grid import LemGrid

ROOT = DATA.parent.parent
LEVELS = (0.3, 1.0, 3.2)  # light, as built, and the evening below 0.9 pu (violations)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEC_COSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LEC_COSIM_NO_CACHE", raising=False)
    return tmp_path / "cache"


def _arguments(community, **changes):  # noqa: F811
    return {"feeder": None, "table": community.table, "data_dir": DATA, "step_h": 0.25, "solver": "fixed-point",
            "violation_model": "reduced", **changes}


def _block(grid, community):  # noqa: F811
    """Each step of STEPS at each of LEVELS, in the grid's order of participants: (steps, participants) arrays."""
    row = {name: j for j, name in enumerate(community.names)}
    cols = [[row[n] for n in names] for names in (grid.household_names, grid.prosumer_names, grid.chp_names)]
    steps = [(k, level) for k in STEPS for level in LEVELS]
    load = np.array([community.load_kw[cols[0], k] * level for k, level in steps])
    kvar = np.array([community.load_kvar[cols[0], k] * level for k, level in steps])
    pv = np.array([community.pv_kw[cols[1], k] * level for k, level in steps])
    chp = np.full((len(steps), len(cols[2])), 10.0)
    return load, kvar, pv, chp


def _same(a, b) -> None:
    for x, y in zip(a, b, strict=True):
        for field in ("vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "trafo_p_kw", "dn_impact",
                      "bus_violations", "bus_violations_reduced", "angle_violations", "line_overloads",
                      "violated_buses"):
            assert getattr(x, field) == getattr(y, field), field
        assert np.array_equal(x.vm_pu_values, y.vm_pu_values)
        assert np.array_equal(x.line_loading_values, y.line_loading_values)


def test_a_compiled_grid_solves_as_the_built_one_to_the_last_digit(cache, community):  # noqa: F811
    built = lem_grid(**_arguments(community))
    assert type(built) is LemGrid and len(list((cache / "grids").glob("*.pickle"))) == 1
    compiled = lem_grid(**_arguments(community))
    assert type(compiled) is CompiledLemGrid and compiled._compiled_net is None
    block = _block(built, community)
    expected, got = built.solve_steps(*block), compiled.solve_steps(*block)
    assert any(r.bus_violations > 0 for r in got) and any(r.trafo_p_kw < 0 for r in got)  # violations, reverse flow
    _same(got, expected)
    assert compiled._compiled_net is None  # no net was needed
    assert compiled.household_names == built.household_names and compiled.line_names == built.line_names


def test_a_compiled_grid_runs_without_pandapower(cache, community):  # noqa: F811
    lem_grid(**_arguments(community))  # compiled into the cache
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from lec_cosim.models.grid_cache import lem_grid\n"
        "from lec_cosim.models.lem_community import build_community\n"
        f"c = build_community({str(DATA)!r}, '2016-05-26', {str(ROOT / 'data/pv/simbench_PV_profiles_2016_15min.csv')!r},"
        " grid_min=15)\n"
        f"g = lem_grid(feeder=None, table=c.table, data_dir={str(DATA)!r}, step_h=0.25, solver='fixed-point',"
        " violation_model='reduced')\n"
        "n = (len(g.household_names), len(g.prosumer_names), len(g.chp_names))\n"
        "r = g.solve_steps(np.full((1, n[0]), 2.0), np.full((1, n[0]), 0.5), np.ones((1, n[1])), np.ones((1, n[2])))\n"
        "print(json.dumps([type(g).__name__, 'pandapower' in sys.modules, r[0].vm_min_pu]))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "LEC_COSIM_CACHE": str(cache)}).stdout
    kind, pandapower, vm_min = json.loads(out.strip().splitlines()[-1])
    assert kind == "CompiledLemGrid" and pandapower is False and 0.9 < vm_min < 1.05


def test_the_fallback_of_a_compiled_grid_builds_its_net(cache, community):  # noqa: F811
    built = lem_grid(**_arguments(community))
    compiled = lem_grid(**_arguments(community))
    block = _block(built, community)
    for grid in (built, compiled):
        grid.solve_steps(*(a[:1] for a in block))  # the engine built
        grid._pgm.max_iterations = 2  # too few for any state: each step goes to power-grid-model
    expected, got = built.solve_steps(*block), compiled.solve_steps(*block)
    assert compiled._compiled_net is not None and compiled._pgm._fallback is not None
    _same(got, expected)


def test_other_inputs_are_other_entries_and_an_unreadable_one_is_built_again(cache, community):  # noqa: F811
    lem_grid(**_arguments(community))
    lem_grid(**_arguments(community, vm_max_pu=1.08))
    entries = sorted((cache / "grids").glob("*.pickle"))
    assert len(entries) == 2
    narrow = lem_grid(**_arguments(community, vm_max_pu=1.08))
    assert type(narrow) is CompiledLemGrid and narrow.vm_max_pu == 1.08
    for entry in entries:
        entry.write_bytes(b"not a pickle")
    again = lem_grid(**_arguments(community))
    assert type(again) is LemGrid  # built, and the entry replaced
    assert type(lem_grid(**_arguments(community))) is CompiledLemGrid


def test_without_the_cache_the_grid_is_built_every_time(cache, community, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LEC_COSIM_NO_CACHE", "1")
    assert type(lem_grid(**_arguments(community))) is LemGrid
    assert type(lem_grid(**_arguments(community))) is LemGrid
    assert not cache.exists()
    # and another flow than the fixed point is never compiled
    monkeypatch.delenv("LEC_COSIM_NO_CACHE")
    assert type(lem_grid(**_arguments(community, solver="power-grid-model"))) is LemGrid
    assert not list(cache.glob("grids/*"))


def test_a_file_is_read_once_for_all_processes_and_again_when_it_changes(cache, tmp_path):
    path = tmp_path / "profile.csv"
    path.write_text("a,b\n1,2\n")
    calls = []

    def read():
        calls.append(1)
        return {"rows": path.read_text().splitlines()}

    first = disk_cache.file_result("test", path, "request", read, __file__)
    again = disk_cache.file_result("test", path, "request", read, __file__)
    assert first == again == {"rows": ["a,b", "1,2"]} and len(calls) == 1
    assert disk_cache.file_result("test", path, "another request", read, __file__) == first and len(calls) == 2
    path.write_text("a,b\n1,3\n")
    assert disk_cache.file_result("test", path, "request", read, __file__) == {"rows": ["a,b", "1,3"]}
    assert len(calls) == 3
    for entry in (cache / "test").glob("*.pickle"):
        entry.write_bytes(b"\x80garbage")
    assert disk_cache.file_result("test", path, "request", read, __file__) == {"rows": ["a,b", "1,3"]}
    assert len(calls) == 4

    def broken():
        raise ValueError("bad file")

    path.write_text("x\n")
    with pytest.raises(ValueError, match="bad file"):
        disk_cache.file_result("test", path, "request", broken, __file__)
    assert disk_cache.file_result("test", path, "request", read, __file__) == {"rows": ["x"]}  # nothing was kept


def test_a_table_the_grid_does_not_set_keeps_its_powers_in_a_compiled_grid(community):  # noqa: F811
    """A balanced load added to the net (a table the grid's injections do not cover) is compiled with its powers:
    the loaded grid solves as the built one without building its net."""
    import pickle

    import pandapower as pp

    from lec_cosim.models.grid_cache import _compiled_state, _loaded

    arguments = _arguments(community)
    arguments.pop("feeder")
    built = LemGrid(**arguments)
    bus = int(built.net.asymmetric_load["bus"].iloc[0])
    pp.create_load(built.net, bus, p_mw=0.012, q_mvar=0.004)
    compiled = _loaded(pickle.dumps(_compiled_state(built, arguments)))
    block = _block(built, community)
    _same(compiled.solve_steps(*block), built.solve_steps(*block))
    assert compiled._compiled_net is None


def test_what_cannot_be_kept_costs_only_the_computation(cache, tmp_path):
    """A value that does not pickle, or a cache folder that cannot be made, is not kept: no error for the caller,
    no half-written entry."""
    import threading

    disk_cache.store("test", "lock", threading.Lock())
    assert disk_cache.load("test", "lock") is None
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the folder would be")
    disk_cache.store("test", "value", {"a": 1})
    assert disk_cache.load("test", "value") is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_only_the_most_recently_used_entries_of_a_kind_are_kept(cache, monkeypatch):
    import os
    import time

    monkeypatch.setattr(disk_cache, "KEPT_PER_KIND", 3)
    for k in range(3):
        disk_cache.store("test", f"entry{k}", k)
        os.utime(disk_cache.entry("test", f"entry{k}"), (time.time() - 100 + k, time.time() - 100 + k))
    assert disk_cache.load("test", "entry0") is not None  # the oldest, used again: kept
    disk_cache.store("test", "entry3", 3)
    kept = sorted(p.stem for p in (cache / "test").glob("*.pickle"))
    assert kept == ["entry0", "entry2", "entry3"]  # entry1, the least recently used, went


def test_a_community_is_built_once_for_all_federates_and_again_when_its_data_change(cache, tmp_path, monkeypatch):
    """Every federate of a local-market run builds the same community: kept in the cache, equal to a fresh build to
    the last digit; another argument, or a changed file of the feeder's folder, is another entry."""
    import dataclasses
    import shutil

    import pandas as pd

    from lec_cosim.models import lem_community
    from lec_cosim.models.lem_participants import PV_PROFILE_FILE

    data = tmp_path / "ieee"
    shutil.copytree(DATA, data)
    builds = []
    real = lem_community._built_community
    monkeypatch.setattr(lem_community, "_built_community", lambda **a: builds.append(a) or real(**a))

    def community_of(**changes):
        return lem_community.build_community(data, "2016-05-26", PV_PROFILE_FILE, horizon_h=48, **changes)

    def same(a, b):
        for field in dataclasses.fields(a):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if isinstance(x, pd.DataFrame):
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            elif isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and np.array_equal(x, y), field.name
            else:
                assert x == y, field.name

    first = community_of()
    kept = community_of()
    assert len(builds) == 1
    same(first, kept)
    same(kept, real(**builds[0]))
    community_of(pv_peak_kw=150.0)
    assert len(builds) == 2
    loads = data / "csv" / "Loads.csv"
    loads.write_text(loads.read_text().replace("0.95", "0.9"))  # the households' power factor
    changed = community_of()
    assert len(builds) == 3 and not np.array_equal(changed.load_kvar, first.load_kvar)
    # a file changed while this process had read it: read again, not the process's earlier table kept as the new one
    pv = tmp_path / "pv.csv"
    shutil.copyfile(PV_PROFILE_FILE, pv)
    before = lem_community.build_community(data, "2016-05-26", pv, horizon_h=48)
    lines = [line.split(",") for line in pv.read_text().splitlines()]
    for cells in lines[1:]:  # PV1's shape halved: the others' sizing leaves it changed
        cells[1] = repr(float(cells[1]) / 2)
    pv.write_text("\n".join(",".join(cells) for cells in lines) + "\n")
    after = lem_community.build_community(data, "2016-05-26", pv, horizon_h=48)
    monkeypatch.setenv("LEC_COSIM_NO_CACHE", "1")
    same(after, lem_community.build_community(data, "2016-05-26", pv, horizon_h=48))
    assert not np.array_equal(after.pv_kw, before.pv_kw)
