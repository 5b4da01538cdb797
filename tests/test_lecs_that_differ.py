"""LECs that differ (``lecs.each`` of the three-LEC scenario): what each override changes in the members, that it
changes nothing else, and the one-line errors of a bad override.

Real data: the IEEE European LV feeder and the SimBench PV of 2016-05-26 at hourly steps (the members of a day
build in a few seconds; every check here compares two such builds to the bit). The federations on a diverse day
run in ``tests/test_end_to_end_mlec_diverse.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from harness import ROOT, check_refused_in_one_line, write_scenario

from lec_cosim.models import multi_lec as ml
from lec_cosim.models.multi_lec_ems import members_from_scenario
from lec_cosim.scenario import load_scenario

DIVERSE = ROOT / "scenarios" / "ieee_eu_lv_three_lecs_diverse.yaml"
EACH = {"lec1": {"pv_scale": 1.5, "home_battery_kwh": 13.5, "home_battery_kw": 6.75},
        "lec2": {"pv_scale": 0.0, "home_battery_kwh": 0, "home_battery_kw": 0},
        "lec3": {"load_scale": 1.2}}
HOUSEHOLD_COLUMNS = ["member", "lec", "kind", "bus", "reduced_bus", "phase", "load_profile"]


@pytest.fixture(scope="module")
def alike():
    return ml.multi_lec_members(grid_min=60)


@pytest.fixture(scope="module")
def differ():
    return ml.multi_lec_members(grid_min=60, each=EACH)


def rows(members, lec: str, kind: str = "household") -> np.ndarray:
    table = members.table
    return ((table["lec"] == lec) & (table["kind"] == kind)).to_numpy()


def test_an_lec_left_out_or_given_its_common_values_is_built_to_the_bit(alike):
    same = ml.multi_lec_members(grid_min=60, each={"lec1": {}, "lec2": {"pv_scale": 1.0, "load_scale": 1.0,
                                                                         "home_battery_kwh": 10, "home_battery_kw": 5,
                                                                         "community_battery_hours": 2}})
    pd.testing.assert_frame_equal(same.table, alike.table, check_exact=True)
    pd.testing.assert_frame_equal(same.lecs, alike.lecs, check_exact=True)
    for name in ("load_kw", "load_kvar", "pv_kw"):
        assert np.array_equal(getattr(same, name), getattr(alike, name)), name


def test_pv_scale_multiplies_the_lecs_pv_and_zero_removes_it(alike, differ):
    lec1, lec2, lec3 = rows(alike, "lec1"), rows(alike, "lec2"), rows(alike, "lec3")
    np.testing.assert_allclose(differ.table["pv_kwp"][lec1], 1.5 * alike.table["pv_kwp"][lec1], rtol=1e-15)
    np.testing.assert_allclose(differ.pv_kw[lec1], 1.5 * alike.pv_kw[lec1], rtol=1e-15)
    assert alike.table["pv_kwp"][lec1].max() == pytest.approx(8.525, abs=1e-3)  # 12.79 kWp in lec1
    assert (differ.table["pv_kwp"][lec2] == 0).all() and (differ.pv_kw[lec2] == 0).all()
    assert (differ.table["pv_profile"][lec2] == "").all()
    assert np.array_equal(differ.pv_kw[lec3], alike.pv_kw[lec3])  # lec3's PV is not touched
    table = differ.lec_table().set_index("lec")
    assert table.at["lec2", "prosumers"] == 0 and table.at["lec2", "pv_kwh"] == 0
    assert table.at["lec1", "prosumers"] == 15 and table.at["lec1", "pv_kwp"] == pytest.approx(1.5 * 127.88, abs=0.01)


def test_home_batteries_are_resized_on_the_same_households_or_removed(alike, differ):
    had = alike.table["battery_kwh"].gt(0).to_numpy() & (alike.table["kind"] == "household").to_numpy()
    lec1, lec2, lec3 = (rows(alike, name) & had for name in ("lec1", "lec2", "lec3"))
    assert lec1.sum() == 7 and lec2.sum() == 5 and lec3.sum() == 8
    assert (differ.table["battery_kwh"][lec1] == 13.5).all() and (differ.table["battery_kw"][lec1] == 6.75).all()
    assert (differ.table["battery_kwh"][rows(alike, "lec2")] == 0).all()
    assert (differ.table["battery_kw"][rows(alike, "lec2")] == 0).all()
    assert (differ.table["battery_kwh"][lec3] == 10).all() and (differ.table["battery_kw"][lec3] == 5).all()
    # no battery appears where there was none
    assert (differ.table["battery_kwh"][~had & (differ.table["kind"] == "household").to_numpy()] == 0).all()
    table = differ.lec_table().set_index("lec")
    assert table["home_batteries"].to_dict() == {"lec1": 7, "lec2": 0, "lec3": 8}
    assert table["home_battery_kwh"].to_dict() == {"lec1": 94.5, "lec2": 0.0, "lec3": 80.0}


def test_load_scale_multiplies_the_lecs_load_and_sizes_its_community_battery(alike, differ):
    lec3 = rows(alike, "lec3")
    np.testing.assert_allclose(differ.load_kw[lec3], 1.2 * alike.load_kw[lec3], rtol=1e-15)
    np.testing.assert_allclose(differ.load_kvar[lec3], 1.2 * alike.load_kvar[lec3], rtol=1e-15)
    others = ~lec3
    assert np.array_equal(differ.load_kw[others], alike.load_kw[others])
    assert np.array_equal(differ.load_kvar[others], alike.load_kvar[others])
    battery = differ.table.set_index("member")
    # lec3's mean load, 28.30 kW, times 1.2 and two hours: 68 kWh (57 kWh unscaled); lec1 and lec2 as before
    assert battery.at["lec3_battery", "battery_kwh"] == round(2 * 1.2 * 28.30) == 68.0
    assert battery.at["lec3_battery", "battery_kw"] == 34.0
    assert (battery.at["lec1_battery", "battery_kwh"], battery.at["lec2_battery", "battery_kwh"]) == (52.0, 36.0)


def test_nothing_else_changes(alike, differ):
    pd.testing.assert_frame_equal(differ.table[HOUSEHOLD_COLUMNS], alike.table[HOUSEHOLD_COLUMNS])
    assert differ.neighbours == alike.neighbours and differ.load_scale == alike.load_scale
    assert list(differ.table["battery_efficiency"]) == list(alike.table["battery_efficiency"])
    same = ["root_bus", "households", "phase_a", "phase_b", "phase_c", "community_battery_bus"]
    pd.testing.assert_frame_equal(differ.lecs[same], alike.lecs[same])


def test_community_battery_hours_per_lec_and_zero_is_none(alike):
    members = ml.multi_lec_members(grid_min=60, each={"lec2": {"community_battery_hours": 0},
                                                      "lec3": {"community_battery_hours": 3, "home_battery_kwh": 15}})
    battery = members.table.set_index("member")
    assert (battery.at["lec2_battery", "battery_kwh"], battery.at["lec2_battery", "battery_kw"]) == (0.0, 0.0)
    assert (battery.at["lec3_battery", "battery_kwh"], battery.at["lec3_battery", "battery_kw"]) == (85.0, 85.0 / 3)
    assert battery.at["lec1_battery", "battery_kwh"] == 52.0


def test_the_model_refuses_an_unknown_lec_or_field():
    with pytest.raises(ValueError, match="each: unknown LEC 'lec4'"):
        ml.multi_lec_members(grid_min=60, each={"lec4": {"pv_scale": 2}})
    with pytest.raises(ValueError, match="each.lec1: unknown field 'pv_kwp'"):
        ml.multi_lec_members(grid_min=60, each={"lec1": {"pv_kwp": 2}})


def test_the_shipped_diverse_scenario_builds_the_documented_lecs():
    s = load_scenario(DIVERSE)
    assert set(s.lecs.each) == {"lec1", "lec2"}  # lec3 keeps the common values
    table = members_from_scenario(s.model_copy(update={"resolution": s.resolution.model_copy(
        update={"grid_min": 60})})).lec_table().set_index("lec")
    assert table["prosumers"].to_dict() == {"lec1": 15, "lec2": 0, "lec3": 17}
    assert table["home_batteries"].to_dict() == {"lec1": 7, "lec2": 0, "lec3": 8}
    assert table["home_battery_kwh"].to_dict() == {"lec1": 94.5, "lec2": 0.0, "lec3": 80.0}
    assert table["pv_kwp"].round(1).to_dict() == {"lec1": 191.8, "lec2": 0.0, "lec3": 144.9}
    assert table["community_battery_kwh"].to_dict() == {"lec1": 52.0, "lec2": 36.0, "lec3": 57.0}


BAD = [
    ({"lecs.each": {"lec4": {"pv_scale": 2}}}, "lecs.each", "unknown LEC 'lec4'; the LECs are lec1, lec2, lec3"),
    ({"lecs.each": {"lec1": {"pv_scale": -1}}}, "lecs.each.lec1.pv_scale", "greater than or equal to 0"),
    ({"lecs.each": {"lec1": {"pv_scale": 50}}}, "lecs.each.lec1.pv_scale", "less than or equal to 5"),
    ({"lecs.each": {"lec1": {"load_scale": 0}}}, "lecs.each.lec1.load_scale", "greater than 0"),
    ({"lecs.each": {"lec1": {"pv_kwp": 12}}}, "lecs.each.lec1.pv_kwp", "Extra inputs are not permitted"),
    ({"lecs.each": {"lec1": {"pv_scale": "lots"}}}, "lecs.each.lec1.pv_scale", "valid number"),
    ({"lecs.each": {"lec2": {"home_battery_kwh": 0}}}, "lecs.each.lec2",
     "a home battery of 0 kWh and 5 kW: give both or set both to 0"),
    ({"lecs.each": {"lec1": {"home_battery_kwh": 13.5, "home_battery_kw": 5}}}, "lecs.each.lec1",
     "store 2.7 h, the community battery 2 h"),
    ({"lecs.each": ["lec1"]}, "lecs.each", "valid dictionary"),
]


@pytest.mark.parametrize("changes,field,reason", BAD)
def test_a_bad_override_is_one_line_naming_file_and_field_and_exit_2(tmp_path, capsys, changes, field, reason):
    check_refused_in_one_line(tmp_path, capsys, "ieee_eu_lv_three_lecs", changes, f"{field}: ", reason)


def test_an_override_of_other_fields_leaves_the_common_battery_pair_alone(tmp_path):
    """The give-both rule judges the home battery an override sizes: with no home batteries in common
    (``home_battery_kwh: 0``) an LEC that only scales its PV is valid, and has none."""
    path = write_scenario(tmp_path, "ieee_eu_lv_three_lecs",
                          {"lecs.home_battery_kwh": 0, "lecs.each": {"lec1": {"pv_scale": 2}}})
    lecs = load_scenario(path).lecs
    assert lecs.home_battery("lec1") == (0.0, 5.0)


def test_on_a_source_feeder_the_overrides_change_only_their_lec():
    """The feeder-source variant (SimBench urban6, 111 households) applies ``each`` by the same rules."""
    import datetime as dt

    from lec_cosim.models.feeder_community import build_feeder_community
    from lec_cosim.models.feeder_source import load_feeder

    feeder, day = load_feeder("simbench: 1-LV-urban6--0-sw"), dt.datetime(2016, 5, 26)
    community = build_feeder_community(feeder, day, ROOT / "data" / "pv" / "simbench_PV_profiles_2016_15min.csv",
                                       grid_min=60, pv_peak_kw=194.0, pv_sizing_day="2016-05-26", chp_count=0)
    alike = ml.multi_lec_members_on_feeder(feeder, community, day)
    differ = ml.multi_lec_members_on_feeder(feeder, community, day, each={
        "lec2": {"pv_scale": 0, "home_battery_kwh": 0, "home_battery_kw": 0, "load_scale": 0.5}})
    lec2 = rows(alike, "lec2")
    assert alike.table["pv_kwp"][lec2].sum() > 0 and alike.table["battery_kwh"][lec2].sum() > 0
    assert (differ.table["pv_kwp"][lec2] == 0).all() and (differ.pv_kw[lec2] == 0).all()
    assert (differ.table["battery_kwh"][lec2] == 0).all()
    assert differ.load_kw[lec2] == pytest.approx(0.5 * alike.load_kw[lec2], rel=1e-15)
    for name in ("load_kw", "load_kvar", "pv_kw"):
        assert np.array_equal(getattr(differ, name)[~lec2], getattr(alike, name)[~lec2]), name
    battery = differ.table.set_index("member")["battery_kwh"]
    before = alike.table.set_index("member")["battery_kwh"]
    # two hours of the halved mean load of the horizon, rounded to a kWh
    assert battery["lec2_battery"] == round(2 * 0.5 * alike.load_kw[lec2].mean(axis=1).sum())
    assert battery["lec2_battery"] < before["lec2_battery"]
    assert (battery["lec1_battery"], battery["lec3_battery"]) == (before["lec1_battery"], before["lec3_battery"])
