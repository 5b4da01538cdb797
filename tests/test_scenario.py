"""Unit tests of scenario loading and validation (lec_cosim.scenario)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from lec_cosim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
DATA = ROOT / "data"
SHIPPED = sorted(SCENARIOS.glob("trondelag_*.yaml"))
LEM_SHIPPED = sorted(p for p in [*SCENARIOS.glob("ieee_eu_lv_base_*.yaml"), *SCENARIOS.glob("ieee_eu_lv_lem_*.yaml")]
                     if not p.stem.endswith(("_week", "_year")))  # the multi-day ones: tests/test_lem_multiday.py


def test_the_community_battery_scenarios_are_shipped():
    assert {"trondelag_arbitrage.yaml", "trondelag_arbitrage_year.yaml",
            "trondelag_self_consumption.yaml"} <= {p.name for p in SHIPPED}


def test_the_four_lem_scenarios_are_shipped_and_differ_in_lem_and_tariff_only():
    assert [p.stem for p in LEM_SHIPPED] == [
        "ieee_eu_lv_base_bihourly", "ieee_eu_lv_base_plain", "ieee_eu_lv_lem_bihourly", "ieee_eu_lv_lem_plain",
    ]
    loaded = {p.stem: load_scenario(p) for p in LEM_SHIPPED}
    for name, s in loaded.items():
        assert s.framework == "local_market" and s.horizon_h == 24 and s.start == dt.datetime(2016, 5, 26)
        assert s.feeder.data_dir == (DATA / "ieee_eulv").resolve() and s.feeder.load_peak_kw == 140
        assert s.participants.pv.peak_kw == 194 and s.participants.chp.capacity_kw == 10
        assert s.market.enabled == ("_lem_" in name)
        assert s.market.tariff_scheme == name.rsplit("_", 1)[1]
        assert s.grid.vm_min_pu == 0.9 and s.grid.vm_max_pu == 1.1 and s.grid_step_s == 900
        if s.market.enabled:
            assert s.market.chp_strategy == "aco" and s.market.learned_bids_file.is_file()
    strip = {"name", "description", "market", "source_file"}
    dumps = {n: {k: v for k, v in s.model_dump().items() if k not in strip} for n, s in loaded.items()}
    assert all(d == dumps["ieee_eu_lv_base_plain"] for d in dumps.values())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path):
    s = load_scenario(path)
    assert s.name == path.stem
    assert s.source_file == path.resolve()
    # Data paths are resolved against the scenario's folder and exist.
    assert s.households.load_profile_file == (DATA / "household" / "simbench_H0_household_profiles_2016_15min.csv").resolve()
    assert s.households.pv.profile_file == (DATA / "pv" / "simbench_PV_profiles_2016_15min.csv").resolve()
    assert s.market.price_file == (DATA / "prices" / "NO1_dayahead_2019_hourly_EUR_per_MWh.csv").resolve()
    assert s.battery.capacity_mwh == 1.2 and s.battery.power_mw == 0.6 and s.battery.efficiency == 0.95
    # an agent in the LEC_EMS's place decides every grid step (lec_ems needs ems_min == grid_min); the LP plans hourly
    assert s.grid_step_s == 900 and s.ems_step_s == (900 if "lec_ems" in s.agents else 3600) and s.market_step_s == 3600
    assert s.start.tzinfo is None


def test_shipped_scenario_details():
    arbitrage = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    assert arbitrage.start == dt.datetime(2019, 5, 26)
    assert arbitrage.end_s == 24 * 3600
    assert arbitrage.ems.objective == "min_cost" and arbitrage.ems.solver == "glpk"
    assert arbitrage.ems.throughput_penalty == 1e-6
    assert arbitrage.market.feed_in_tariff is None
    assert load_scenario(SCENARIOS / "trondelag_self_consumption.yaml").ems.objective == "min_import"
    year = load_scenario(SCENARIOS / "trondelag_arbitrage_year.yaml")
    assert year.start == dt.datetime(2019, 1, 1) and year.end_s == 8760 * 3600


def test_json_round_trip(tmp_path):
    # A federate receives the resolved scenario as JSON and must get the same object back.
    original = load_scenario(SCENARIOS / "trondelag_arbitrage.yaml")
    path = tmp_path / "resolved.json"
    path.write_text(original.to_json())
    again = load_scenario(path)
    assert again == original
    assert again.source_file == original.source_file


# ----------------------------------------------------------------------------------------------
# Broken scenarios
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def base():
    """The arbitrage scenario as a dict, with absolute data paths so it can live in tmp_path."""
    data = yaml.safe_load((SCENARIOS / "trondelag_arbitrage.yaml").read_text())
    data["households"]["load_profile_file"] = str(DATA / "household" / "simbench_H0_household_profiles_2016_15min.csv")
    data["households"]["pv"]["profile_file"] = str(DATA / "pv" / "simbench_PV_profiles_2016_15min.csv")
    data["market"]["price_file"] = str(DATA / "prices" / "NO1_dayahead_2019_hourly_EUR_per_MWh.csv")
    return data


def write_yaml(tmp_path, data, name="broken.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_error(path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    assert message.startswith(f"{path}: "), "errors name the file first"
    return message


def test_valid_copy_in_tmp_path_loads(tmp_path, base):
    s = load_scenario(write_yaml(tmp_path, base, "ok.yaml"))
    assert s.source_file == (tmp_path / "ok.yaml").resolve()


def edit(data, dotted, value=None, delete=False):
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value


@pytest.mark.parametrize(
    "field, value, delete, expected",
    [
        ("battery.capacity_mwh", None, True, "battery.capacity_mwh: Field required"),
        ("households.count", None, True, "households.count: Field required"),
        ("ems", None, True, "ems: Field required"),
        ("battery.power_mw", "lots", False, "battery.power_mw: Input should be a valid number"),
        ("households.count", 12.5, False, "households.count: Input should be a valid integer"),
        ("households.load_profiles", "H0-A", False, "households.load_profiles: Input should be a valid list"),
        ("battery.capacity_mwh", -1.2, False, "battery.capacity_mwh: Input should be greater than 0"),
        ("battery.capacity_mwh", 0, False, "battery.capacity_mwh: Input should be greater than 0"),
        ("battery.efficiency", 1.5, False, "battery.efficiency: Input should be less than or equal to 1"),
        ("battery.soc_initial", -0.1, False, "battery.soc_initial: Input should be greater than or equal to 0"),
        ("ems.objective", "max_profit", False, "ems.objective: Input should be 'min_cost' or 'min_import'"),
        ("ems.solver", "cplex", False, "ems.solver: Input should be 'glpk' or 'highs'"),
        ("grid.ext_grid_vm_pu", 2.0, False, "grid.ext_grid_vm_pu: Input should be less than 1.5"),
        ("grid.transformer.sn_mva", -1, False, "grid.transformer.sn_mva: Input should be greater than 0"),
        ("battery.chemistry", "LFP", False, "battery.chemistry: Extra inputs are not permitted"),
        ("name", "has space", False, "name: String should match pattern"),
        ("horizon_h", 0, False, "horizon_h: Input should be greater than 0"),
    ],
)
def test_field_errors_name_file_and_field(tmp_path, base, field, value, delete, expected):
    edit(base, field, value, delete)
    path = write_yaml(tmp_path, base)
    message = load_error(path)
    assert message.startswith(f"{path}: {expected}"), message


@pytest.mark.parametrize(
    "resolution, expected",
    [
        ({"market_min": 60, "ems_min": 60, "grid_min": 7}, "resolution.grid_min: must divide a day (1440 min)"),
        ({"market_min": 60, "ems_min": 50, "grid_min": 10}, "resolution.ems_min: must divide a day (1440 min)"),
        ({"market_min": 100, "ems_min": 60, "grid_min": 15}, "resolution.market_min: must divide a day (1440 min)"),
        ({"market_min": 60, "ems_min": 60, "grid_min": 40},
         "resolution.ems_min: must be a multiple of resolution.grid_min"),
    ],
)
def test_inconsistent_resolution(tmp_path, base, resolution, expected):
    base["resolution"] = resolution
    path = write_yaml(tmp_path, base)
    message = load_error(path)
    assert message == f"{path}: {expected}"


def test_zero_resolution(tmp_path, base):
    base["resolution"]["grid_min"] = 0
    message = load_error(write_yaml(tmp_path, base))
    assert "resolution.grid_min: Input should be greater than 0" in message


def test_horizon_not_whole_ems_steps(tmp_path, base):
    base["horizon_h"] = 1.5
    message = load_error(write_yaml(tmp_path, base))
    assert message.endswith(": horizon_h: must be a whole number of EMS steps")


@pytest.mark.parametrize(
    "field",
    ["market.price_file", "households.load_profile_file", "households.pv.profile_file"],
)
def test_missing_data_file(tmp_path, base, field):
    edit(base, field, "no_such_file.csv")
    path = write_yaml(tmp_path, base)
    message = load_error(path)
    assert message == f"{path}: {field}: file not found: {(tmp_path / 'no_such_file.csv').resolve()}"


def test_relative_data_paths_resolve_against_the_scenario_folder(tmp_path, base):
    (tmp_path / "prices.csv").write_text((DATA / "prices" / "NO1_dayahead_2019_hourly_EUR_per_MWh.csv").read_text())
    base["market"]["price_file"] = "prices.csv"
    sub = tmp_path / "sub"
    sub.mkdir()
    base_outputs = copy.deepcopy(base)
    base_outputs["outputs"] = {"directory": "../runs"}
    s = load_scenario(write_yaml(tmp_path, base_outputs, "ok.yaml"))
    assert s.market.price_file == (tmp_path / "prices.csv").resolve()
    assert s.outputs.directory == (tmp_path.parent / "runs").resolve()
    # The same file from a different folder: the price file is now missing.
    message = load_error(write_yaml(sub, base, "moved.yaml"))
    assert "market.price_file: file not found" in message


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("name: x\nbattery: {capacity_mwh: 1.2\n  power_mw: [0.6\n")
    message = load_error(path)
    assert message.startswith(f"{path}: line 3: invalid YAML: ")


def test_timezone_aware_start(tmp_path, base):
    path = write_yaml(tmp_path, base)
    text = path.read_text()
    assert "start: 2019-05-26 00:00:00\n" in text
    path.write_text(text.replace("start: 2019-05-26 00:00:00\n", "start: 2019-05-26T00:00:00+01:00\n"))
    message = load_error(path)
    assert message == f"{path}: start: give local standard time without a UTC offset"


def test_top_level_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- name\n- start\n")
    assert load_error(path) == f"{path}: (top level): expected a mapping of scenario fields"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_error(path) == f"{path}: (file): the file is empty; a scenario is a mapping of fields"


def test_unreadable_file(tmp_path):
    path = tmp_path / "absent.yaml"
    assert load_error(path) == f"{path}: cannot read: No such file or directory"


# --- the three-LEC scenario (frameworks decentralised, distributed, p2p) ----------------------

THREE_LECS = SCENARIOS / "ieee_eu_lv_three_lecs.yaml"


def test_three_lec_scenario_is_shipped_with_its_defaults():
    s = load_scenario(THREE_LECS)
    assert type(s).__name__ == "MultiLecScenario"
    assert s.framework == "decentralised" and s.lec_names == ["lec1", "lec2", "lec3"]
    assert s.platform_lecs == ["lec1", "lec2", "lec3"] and s.dso.limits is False
    assert s.feeder.data_dir == (DATA / "ieee_eulv").resolve() and s.pv.profile_file.is_file()
    assert s.grid_step_s == 900 and s.market_step_s == 3600 and s.end_s == 86400


@pytest.mark.parametrize("framework", ["decentralised", "distributed", "p2p"])
def test_three_lec_scenario_runs_under_each_framework_by_one_field(tmp_path, framework):
    data = yaml.safe_load(THREE_LECS.read_text())
    data["framework"] = framework
    data["feeder"]["data_dir"] = str(DATA / "ieee_eulv")
    data["pv"]["profile_file"] = str(DATA / "pv" / "simbench_PV_profiles_2016_15min.csv")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_scenario(path).framework == framework


@pytest.mark.parametrize("change, expected", [
    ({"framework": "central"}, "framework: Input should be 'decentralised', 'distributed' or 'p2p'"),
    ({"lecs": {"on_platform": ["lec1", "lec9"]}}, "lecs.on_platform: unknown LEC 'lec9'"),
    ({"lecs": {"battery_efficiency": 1.2}}, "lecs.battery_efficiency: Input should be less than or equal to 1"),
    ({"dso": {"vm_min_pu": 1.1, "vm_max_pu": 0.9}}, "dso: vm_min_pu must be below vm_max_pu"),
    ({"negotiation": {"max_iterations": 5000}}, "negotiation.max_iterations: Input should be less than or equal"),
])
def test_three_lec_scenario_errors_name_file_and_field(tmp_path, change, expected):
    data = yaml.safe_load(THREE_LECS.read_text())
    data["feeder"]["data_dir"] = str(DATA / "ieee_eulv")
    data["pv"]["profile_file"] = str(DATA / "pv" / "simbench_PV_profiles_2016_15min.csv")
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)
