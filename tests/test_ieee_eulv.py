"""IEEE European LV Test Feeder model (lec_cosim.models.ieee_eulv) against the IEEE OpenDSS reference.

The reference solution (``data/ieee_eulv/reference_solution_opendss/``) is the IEEE-published OpenDSS
result: bus voltages at minutes 1, 566 and 1440 and the transformer secondary powers for every minute of
the day. The issue's tolerances are 0.002 pu for every phase voltage and 1 % for the transformer power.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.ieee_eulv import DEFAULT_DATA_DIR, build_ieee_eulv

REF = DEFAULT_DATA_DIR / "reference_solution_opendss"
V_TOL_PU = 0.002      # the tolerance
P_TOL_REL = 0.01      # the tolerance (1 %), also applied to Q
# The model reproduces the reference far inside the tolerances (measured: max 7e-6 pu; P within
# 0.10 % and Q within 0.21 % on all 1440 minutes, 0.05 % on the sampled ones; the reference's magnitudes
# are printed to 6 digits, ~4e-6 pu). These tighter bounds catch a model
# change that would still pass the tolerances, e.g. an ideal source without the OpenDSS source
# impedance (1.0e-3 pu off at minute 566) or pandapower's default Dyn zero sequence (4.9e-4 pu off).
V_TIGHT_PU = 5e-5
P_TIGHT_REL = 3e-3
SNAPSHOTS = [(1, "0001_offpeak"), (566, "0566_onpeak"), (1440, "1440_end")]
TIMESERIES_STEP_MIN = 60  # hourly over the day (and the two snapshot minutes): pandapower takes ~0.2 s a flow


@pytest.fixture(scope="module")
def feeder():
    return build_ieee_eulv()


def _ieee_loads() -> pd.DataFrame:
    return pd.read_csv(DEFAULT_DATA_DIR / "csv" / "Loads.csv", comment="#", skipinitialspace=True)


def _reference_voltages_pu(tag: str) -> pd.DataFrame:
    ref = pd.read_csv(REF / f"snapshot_minute{tag}_bus_voltages.csv")
    base_v = ref["BasekV"].to_numpy() * 1000.0 / np.sqrt(3.0)
    vm = np.c_[ref["Magnitude1"], ref["Magnitude2"], ref["Magnitude3"]] / base_v[:, None]
    names = ["SourceBus" if b == "SOURCEBUS" else str(int(b)) for b in ref["Bus"]]
    return pd.DataFrame(vm, index=names, columns=["a", "b", "c"])


def test_element_counts_and_topology(feeder):
    net = feeder.net
    lv = net.bus[net.bus.vn_kv == 0.416]
    assert len(lv) == 906
    assert sorted(lv.name.astype(int)) == list(range(1, 907))
    assert (lv.index == lv.name.astype(int)).all()  # pandapower index = IEEE bus number
    # source side: SourceBus (11 kV, transformer HV) and the auxiliary bus of the ideal source EMF
    assert len(net.bus) == 908 and (net.bus.vn_kv == 11.0).sum() == 2
    feeder_lines = net.line[net.line.name.str.startswith("LINE")]
    assert len(feeder_lines) == 905 and len(net.line) == 906  # + the source impedance
    assert len(net.trafo) == 1
    tr = net.trafo.iloc[0]
    assert (tr.vector_group, tr.sn_mva, tr.vn_hv_kv, tr.vn_lv_kv) == ("Dyn", 0.8, 11.0, 0.416)
    assert net.bus.at[tr.hv_bus, "name"] == "SourceBus" and net.bus.at[tr.lv_bus, "name"] == "1"
    assert tr.vkr_percent == pytest.approx(0.4) and np.sqrt(tr.vk_percent ** 2 - tr.vkr_percent ** 2) == \
        pytest.approx(4.0)
    assert len(net.ext_grid) == 1 and net.ext_grid.vm_pu.iloc[0] == 1.05
    # radial: 906 LV buses, 905 lines, all connected
    assert len(set(feeder_lines.from_bus) | set(feeder_lines.to_bus)) == 906


def test_loads_on_their_phase_with_profile_k(feeder):
    """55 single-phase loads on the IEEE bus and phase; LOADk follows profile_k (not the lexicographic
    numbering of some circulating copies)."""
    ieee = _ieee_loads()
    al = feeder.net.asymmetric_load
    assert len(al) == 55 and list(al.name) == [f"LOAD{k}" for k in range(1, 56)]
    assert list(al.bus) == list(ieee.Bus)
    assert list(feeder.load_phase) == [p.strip().lower() for p in ieee.phases]
    profiles = pd.read_csv(DEFAULT_DATA_DIR / "load_profiles_1min_100.csv").set_index("minute")
    for minute in (1, 566, 1440):
        feeder.set_minute(minute)
        p = al[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy() * 1000.0
        q = al[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy() * 1000.0
        col = np.array(["abc".index(ph) for ph in feeder.load_phase])
        rows = np.arange(55)
        expected = profiles.loc[minute, [f"profile_{k}" for k in range(1, 56)]].to_numpy(dtype=float)
        np.testing.assert_allclose(p[rows, col], expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(q[rows, col], expected * np.tan(np.arccos(0.95)), rtol=1e-12, atol=1e-12)
        off = np.ones_like(p, dtype=bool)
        off[rows, col] = False
        assert not p[off].any() and not q[off].any()
    # the numbering trap: LOAD2 at minute 1 is profile_2 (0.044 kW), not profile_10 (0.057 kW)
    feeder.set_minute(1)
    assert al.at[1, "p_b_mw"] * 1000.0 == pytest.approx(0.044)


@pytest.mark.parametrize("minute,tag", SNAPSHOTS)
def test_snapshot_voltages_match_opendss_reference(feeder, minute, tag):
    ref = _reference_voltages_pu(tag)
    res = feeder.solve_minute(minute)
    assert len(ref) == 907  # SourceBus + 906 LV buses
    err = (res.vm_pu.loc[ref.index] - ref).abs()
    worst = float(err.to_numpy().max())
    assert worst <= V_TOL_PU, f"minute {minute}: max |dV| {worst:.6f} pu at bus {err.max(axis=1).idxmax()}"
    assert worst <= V_TIGHT_PU, f"minute {minute}: max |dV| {worst:.2e} pu (issue tolerance met, model drifted)"


def test_transformer_secondary_power_over_the_day(feeder):
    ts = pd.read_csv(REF / "timeseries_transformer_secondary_powers_1min.csv")
    assert len(ts) == 1440
    minutes = (ts["hour"] * 3600 + ts["t(sec)"]).to_numpy() // 60  # "hour" + seconds within the hour
    assert list(minutes) == list(range(1, 1441))
    ref_p = ts[["P1 (kW)", "P2 (kW)", "P3 (kW)"]].to_numpy()
    ref_q = ts[["Q1 (kvar)", "Q2 (kvar)", "Q3 (kvar)"]].to_numpy()
    sample = np.arange(TIMESERIES_STEP_MIN, 1441, TIMESERIES_STEP_MIN)
    sample = np.union1d(sample, [1, 566])
    results = [feeder.solve_minute(m, init="results") for m in sample]
    for label, got, ref in [("P", np.array([r.trafo_lv_p_kw for r in results]), ref_p[sample - 1]),
                            ("Q", np.array([r.trafo_lv_q_kvar for r in results]), ref_q[sample - 1])]:
        assert (np.sign(got) == np.sign(ref)).all()  # both: positive into the transformer at the LV side
        rel = np.abs(got - ref) / np.abs(ref)
        worst = float(rel.max())
        where = np.unravel_index(rel.argmax(), rel.shape)
        msg = f"{label}: max rel. error {worst:.3%} at minute {sample[where[0]]}, phase {'abc'[where[1]]}"
        assert worst <= P_TOL_REL, msg
        assert worst <= P_TIGHT_REL, msg


def _feeder_copy(tmp_path, table: str, edit):
    """The feeder folder copied to ``tmp_path`` with one file edited."""
    import shutil

    folder = tmp_path / "feeder"
    shutil.copytree(DEFAULT_DATA_DIR, folder, ignore=shutil.ignore_patterns("opendss", "reference_solution_opendss"))
    path = folder / table
    path.write_text(edit(path.read_text()))
    return folder


@pytest.mark.parametrize("table, edit, message", [
    ("csv/Lines.csv", lambda t: t.replace("LINE2,2,3,ABC,0.11511,m,4c_70", "LINE2,2,3,ABC,0.11511,m,4c_71"),
     r"Lines.csv: line 4: line code '4c_71' of LINE2 is not in LineCodes.csv"),
    ("csv/Lines.csv", lambda t: t.replace("LINE2,2,3,ABC,0.11511,", "LINE2,2,3,ABC,0,"),
     r"Lines.csv: line 4: length 0.0 of LINE2 is not a positive finite number"),
    ("csv/Lines.csv", lambda t: t.replace("LINE2,2,3,ABC,0.11511,", "LINE2,2,3,ABC,inf,"),
     r"Lines.csv: line 4: length inf of LINE2 is not a positive finite number"),
    ("csv/Lines.csv", lambda t: t.replace("LINE2,2,3,", "LINE2,2,999,"),
     r"Lines.csv: line 4: Bus2 999 of LINE2 is not a bus of Buscoords.csv"),
    # a blank line counts: LOAD3 is on line 7 of the file once one is added after LOAD1
    ("csv/Loads.csv", lambda t: t.replace("\nLOAD2,", "\n\nLOAD2,").replace("LOAD3,1,70,", "LOAD3,1,5300,"),
     r"Loads.csv: line 7: bus 5300 of LOAD3 is not a bus of Buscoords.csv"),
    ("csv/Buscoords.csv", lambda t: t.replace("\n2,", "\n1,", 1),
     r"Buscoords.csv: line 4: bus 1 appears twice"),
    ("csv/Loads.csv", lambda t: t.replace("LOAD2,1,47,B,", "LOAD2,1,47,D,"),
     r"Loads.csv: line 5: phase 'D' of LOAD2 is not A, B or C"),
    ("csv/Loads.csv", lambda t: t.replace("Shape_2\n", "Shape_200\n"),
     r"Loads.csv: line 5: load shape 'Shape_200' of LOAD2 has no profile_k column"),
    ("load_profiles_1min_100.csv", lambda t: t.replace("\n3,00:03:00,", "\n3,00:03:00,x", 1),
     r"load_profiles_1min_100.csv: line 4: profile_1 is 'x\d", ),
    ("load_profiles_1min_100.csv", lambda t: t.replace("profile_2,", "profile_1,", 1),
     r"load_profiles_1min_100.csv: line 1: column 'profile_1' appears twice"),
])
def test_inconsistent_feeder_tables_are_named_by_file_and_line(tmp_path, table, edit, message):
    from lec_cosim.models.ieee_eulv import FeederDataError, read_feeder_tables

    folder = _feeder_copy(tmp_path, table, edit)
    with pytest.raises(FeederDataError, match=message):
        read_feeder_tables(folder)
    with pytest.raises(FeederDataError, match=message):  # the model is never built from such tables
        build_ieee_eulv(folder)


def test_the_shipped_feeder_tables_are_consistent():
    from lec_cosim.models.ieee_eulv import read_feeder_tables

    read_feeder_tables(DEFAULT_DATA_DIR)  # raises on the first inconsistency
