"""The three-LEC scenario under each framework, end to end: real broker, real federates, real results.

One day of the shipped scenario with hourly grid steps (the shipped file has 15-minute steps; an
hour keeps the four runs at about half a minute each). Checked on the results every run writes:
energy balances, money, the DSO loop, the negotiation against the centralised optimum, and the
shape of each federation as read from the running federation by HELICS queries. The same checks hold
on a SimBench grid (``scenarios/simbench_lv_urban6_three_lecs.yaml``: 111 households in LECs split by
its topology), run under the framework whose federation depends most on the feeder: distributed (the
neighbour graph, and the negotiated plans against the centralised optimum). The p2p federation's member
endpoints on that grid are checked on its plan (``tests/test_feeder_three_lecs.py``): a run costs as much
as two of the IEEE feeder's. The decentralised (with and without the DSO loop) and p2p runs are shared with
other test files (``harness.shared_runs``: ``lec-cosim run`` of the same scenario file, the framework given on the
command line); the two distributed runs are in-process federations (the same federate programs on HELICS's
in-process core and broker), whose results are those of ``lec-cosim run`` byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from harness import SHARED_RUNS, shared_run
from mlec_checks import (
    check_every_lec_hour_settles_its_metered_energy,
    check_negotiated_plans_equal_the_centralised_optimum,
)

from lec_cosim.inproc import run_inproc
from lec_cosim.models.multi_lec_ems import (
    hourly_tariffs,
    members_from_scenario,
    pooled_batteries,
)
from lec_cosim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "scenarios" / "ieee_eu_lv_three_lecs.yaml"
SIMBENCH = ROOT / "scenarios" / "simbench_lv_urban6_three_lecs.yaml"
LECS = ["lec1", "lec2", "lec3"]
EMS = ["lec_ems_1", "lec_ems_2", "lec_ems_3"]


def scenario_file(directory: Path, shipped: Path = SHIPPED) -> Path:
    data = yaml.safe_load(shipped.read_text())
    data["resolution"]["grid_min"] = 60
    if "data_dir" in data["feeder"]:
        data["feeder"]["data_dir"] = str((shipped.parent / data["feeder"]["data_dir"]).resolve())
    data["pv"]["profile_file"] = str((shipped.parent / data["pv"]["profile_file"]).resolve())
    path = directory / "three_lecs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def scenario_path(tmp_path_factory) -> Path:
    return scenario_file(tmp_path_factory.mktemp("scenario"))


def _run(tmp_path_factory, scenario_path, framework) -> Path:
    """The federation in this process (``lec_cosim.inproc``: the same federate programs and configs as threads on
    HELICS's in-process core, results byte-identical to ``lec-cosim run``, ``tests/test_inproc.py``): these runs
    are read for their results and the federation's shape, and the ADMM's thousands of messages cost a third of
    the wall time without a process per federate (a SimBench day: 6 s against 20 s, 2026-12-06)."""
    out = tmp_path_factory.mktemp(framework) / "run"
    run_inproc(load_scenario(scenario_path).model_copy(update={"framework": framework}), out, timeout_s=300)
    return out


def _shared(tmp_path_factory, name: str) -> Path:
    """A run other test files read too: the shipped scenario at hourly grid steps, as :func:`scenario_file`
    writes it, run by ``lec-cosim run`` with ``--framework`` (and ``--dso-limits``) on the command line (the
    framework :func:`_run` sets in the scenario)."""
    shipped, changes, extra = SHARED_RUNS[name]
    assert (shipped, changes, extra[0]) == (SHIPPED.stem, {"resolution.grid_min": 60}, "--framework"), name
    return shared_run(tmp_path_factory, name)[1]


@pytest.fixture(scope="module")
def decentralised(tmp_path_factory):
    return _shared(tmp_path_factory, "three_lecs_decentralised")


@pytest.fixture(scope="module")
def distributed(tmp_path_factory, scenario_path):
    return _run(tmp_path_factory, scenario_path, "distributed")


@pytest.fixture(scope="module")
def p2p(tmp_path_factory):
    return _shared(tmp_path_factory, "three_lecs_p2p")


@pytest.fixture(scope="module")
def decentralised_with_dso(tmp_path_factory):
    return _shared(tmp_path_factory, "three_lecs_dso_limits")


@pytest.fixture(scope="module")
def simbench_path(tmp_path_factory) -> Path:
    return scenario_file(tmp_path_factory.mktemp("simbench"), SIMBENCH)


@pytest.fixture(scope="module")
def simbench_distributed(tmp_path_factory, simbench_path):
    return _run(tmp_path_factory, simbench_path, "distributed")


@pytest.fixture(params=["decentralised", "distributed", "p2p", "simbench_distributed"])
def run(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["distributed", "simbench_distributed"])
def negotiated(request):
    """A distributed run on the IEEE feeder or on the SimBench grid."""
    return request.getfixturevalue(request.param)


def read(run_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / name)


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


# --- physics and money, every framework --------------------------------------------------------


def test_members_powers_add_up_and_batteries_stay_within_their_energy(run):
    m = read(run, "members.csv")
    np.testing.assert_allclose(m["net_kw"], m["load_kw"] - m["pv_kw"] + m["battery_kw"], atol=1e-6)
    scenario = load_scenario(run / "scenario.json")
    table = members_from_scenario(scenario).table.set_index("member")
    capacity = m["member"].map(table["battery_kwh"])
    assert (m["soc_kwh"] >= -1e-9).all() and (m["soc_kwh"] <= capacity + 1e-9).all()
    assert (m["curtailed_kw"] >= -1e-9).all() and (m["pv_kw"] >= -1e-9).all()
    # The batteries do work: every LEC's batteries charge at midday and give it back later.
    batteries = m[capacity > 0].groupby("step")["battery_kw"].sum()
    assert batteries.max() > 20 and batteries.min() < -20


def test_transformer_carries_the_members_net_power_plus_losses(run):
    m = read(run, "members.csv").groupby("step")["net_kw"].sum()
    grid = read(run, "grid.csv").set_index("step")
    np.testing.assert_allclose(grid["trafo_p_kw"], m + grid["p_loss_kw"], atol=0.05)


def test_every_lec_hour_settles_its_metered_energy(run):
    check_every_lec_hour_settles_its_metered_energy(run)


def test_the_frameworks_cost_about_the_same_day_and_the_batteries_pay(decentralised, distributed, p2p):
    # Without any battery the day costs the retail and feed-in settlement of the members' own net.
    scenario = load_scenario(decentralised / "scenario.json")
    members = members_from_scenario(scenario)
    retail, feed_in = hourly_tariffs(members, "bihourly", 0.045)
    net = members.net_demand_kw  # per LEC, hourly steps
    no_battery = float(np.sum(retail * np.maximum(net, 0) - feed_in * np.maximum(-net, 0)))
    costs = {name: summary(r)["kpis"]["total_cost_eur"] for name, r in
             (("decentralised", decentralised), ("distributed", distributed), ("p2p", p2p))}
    for name, cost in costs.items():
        assert cost < no_battery - 5, (name, cost, no_battery)
    # The joint optimum (distributed) is never dearer than each LEC planning alone, to rounding.
    assert costs["distributed"] <= costs["decentralised"] + 0.01


# --- distributed: the negotiation ----------------------------------------------------------------


def test_negotiation_converges_every_hour_and_reports_its_residuals(negotiated):
    n = read(negotiated, "negotiation.csv")
    assert list(n["hour"]) == list(range(24)) and n["converged"].all()
    assert (n["iterations"] >= 2).all() and (n["iterations"] <= 300).all()
    assert (n["primal_residual_kw"] <= 0.01).all()
    r = read(negotiated, "negotiation_residuals.csv")
    assert set(r["lec"]) == set(LECS)
    # Both ends of an edge compute the same residuals from the same two proposals.
    a = r[(r["lec"] == "lec1") & (r["neighbour"] == "lec2")].set_index(["hour", "iteration"])
    b = r[(r["lec"] == "lec2") & (r["neighbour"] == "lec1")].set_index(["hour", "iteration"])
    np.testing.assert_allclose(a["primal_residual_kw"], b.loc[a.index, "primal_residual_kw"], rtol=1e-9, atol=1e-12)
    k = summary(negotiated)["kpis"]
    assert k["iterations_total"] == n["iterations"].sum() and k["negotiation_converged"] is True


def test_negotiated_plans_equal_the_centralised_optimum_every_hour(negotiated):
    check_negotiated_plans_equal_the_centralised_optimum(negotiated)


# --- p2p: the LEC markets ---------------------------------------------------------------------------


def test_p2p_pools_balance_and_price_between_feed_in_and_retail(p2p):
    t = read(p2p, "p2p_trades.csv")
    pools = t.groupby(["hour", "lec"])
    np.testing.assert_allclose(pools["bought_kwh"].sum(), pools["sold_kwh"].sum(), atol=1e-9)
    traded = t[t["bought_kwh"] > 0]
    assert len(traded) > 0, "no member traded inside its LEC all day"
    scenario = load_scenario(p2p / "scenario.json")
    retail, _ = hourly_tariffs(members_from_scenario(scenario), "bihourly", 0.045)
    assert (traded["price_eur_per_kwh"] >= 0.045 - 1e-12).all()
    assert (traded["price_eur_per_kwh"] <= retail[traded["hour"]] + 1e-12).all()
    # Every member's own order is what the pool and the grid split between them.
    np.testing.assert_allclose(t["net_kwh"], t["bought_kwh"] - t["sold_kwh"] + t["grid_import_kwh"]
                               - t["grid_export_kwh"], atol=1e-9)


def test_p2p_fairness_fee_falls_on_the_previous_hours_largest_importer(p2p):
    t = read(p2p, "p2p_trades.csv")
    for (hour, lec), rows in t[t["hour"] > 0].groupby(["hour", "lec"]):
        before = t[(t["hour"] == hour - 1) & (t["lec"] == lec)]
        largest = before.loc[before["grid_import_kwh"].idxmax()]
        payers = set(rows.loc[rows["import_fee_eur_per_kwh"] > 0, "member"])
        if largest["grid_import_kwh"] > 0:
            assert largest["member"] in payers and rows["import_fee_eur_per_kwh"].max() == pytest.approx(0.02)
        else:
            assert not payers


# --- the DSO loop --------------------------------------------------------------------------------


def test_dso_limits_reach_the_ems_plans_in_the_next_hour(decentralised_with_dso, decentralised):
    lecs = read(decentralised_with_dso, "lecs.csv")
    assert np.isfinite(lecs["import_limit_kw"]).all() and (lecs["export_limit_kw"] >= 0).all()
    assert not np.isfinite(read(decentralised, "lecs.csv")["import_limit_kw"]).any()
    records = [json.loads(line) for line in (decentralised_with_dso / "ems_records.jsonl").read_text().splitlines()]
    per_hour = lecs.groupby(["step", "lec"])["export_limit_kw"].first()
    for r in records:
        if r["hour"] == 0:
            assert r["export_limit_kw"] is None  # nothing from the DSO yet
            continue
        # The limits an EMS planned hour h with are what the DSO published at the last step of hour h - 1.
        assert r["export_limit_kw"] == pytest.approx(per_hour[(r["hour"] - 1, r["lec"])])
        assert r["planned_export_kw"] <= r["export_limit_kw"] + r["limit_excess_kw"] + 1e-6
    with_loop, without = summary(decentralised_with_dso)["kpis"], summary(decentralised)["kpis"]
    assert with_loop["losses_kwh"] > 0 and without["losses_kwh"] > 0
    assert with_loop["bus_violations"] <= without["bus_violations"]


# --- the state-of-charge loop: every LEC_EMS plans from the energy the households measured -------------


def pooled_energy_at_hour_starts(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    """Each LEC's pooled batteries (those its LEC_EMS plans) per grid step from members.csv (energy after the
    step, power), and their energy at every hour's start as the households left it (the hour before's last
    step; the initial half-full batteries at hour 0), by (lec, hour)."""
    scenario = load_scenario(run_dir / "scenario.json")
    members = members_from_scenario(scenario)
    batteries = pooled_batteries(members, home_batteries=scenario.framework != "p2p")
    pooled = set(members.table["member"][batteries.pooled])
    m = read(run_dir, "members.csv")
    m = m[m["member"].isin(pooled)]
    per_hour = int(round(3600 / scenario.grid_step_s))
    ends = m[m["step"] % per_hour == per_hour - 1].groupby(["lec", "step"])["soc_kwh"].sum()
    start = {(lec, 0): 0.5 * energy for lec, energy in zip(members.lec_names, batteries.energy_kwh)}
    start |= {(lec, step // per_hour + 1): soc for (lec, step), soc in ends.items()}
    return m, start


def check_plans_start_from_the_measured_energy(run_dir: Path) -> pd.DataFrame:
    """Every LEC_EMS planned every hour from its pooled batteries' energy as measured at the hour's start
    (members.csv, printed to 10 digits), and ems_soc.csv says so; returns ems_soc.csv."""
    _, start = pooled_energy_at_hour_starts(run_dir)
    soc = read(run_dir, "ems_soc.csv")
    assert len(soc) == len(records_of(run_dir)) and set(soc["lec"]) == set(LECS)
    for row in soc.itertuples():
        assert row.measured_soc_start_kwh == pytest.approx(start[(row.lec, row.hour)], abs=1e-6)
        assert row.soc_start_kwh == pytest.approx(row.measured_soc_start_kwh, abs=1e-9)
        assert row.soc_start_gap_kwh == pytest.approx(row.measured_soc_start_kwh - row.planned_soc_start_kwh,
                                                      abs=1e-8)  # three values printed to 10 digits
    planned_end = soc.set_index(["lec", "hour"])["planned_soc_end_kwh"]
    for row in soc[soc["hour"] > 0].itertuples():  # the plan of the hour before, carried forward
        assert row.planned_soc_start_kwh == planned_end[(row.lec, row.hour - 1)]
    return soc


def records_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "ems_records.jsonl").read_text().splitlines()]


def test_ems_plans_start_from_the_energy_the_households_measured(run):
    """Where no battery clips its share of a pooled set-point (the shipped day), the measurement is the plan."""
    soc = check_plans_start_from_the_measured_energy(run)
    assert soc["soc_start_gap_kwh"].abs().max() < 1e-9


@pytest.fixture(scope="module")
def small_home_batteries(tmp_path_factory, scenario_path) -> Path:
    """Twelve hours of the decentralised day with home batteries of 2 kWh / 5 kW (0.4 hours) beside community
    batteries of two hours: the LEC_EMS splits its pooled set-point in proportion to power, so the home batteries
    run empty (discharging at night) or full first and the households clip their share."""
    data = yaml.safe_load(scenario_path.read_text())
    data.update(framework="decentralised", horizon_h=12)
    data["lecs"]["home_battery_kwh"] = 2
    variant = tmp_path_factory.mktemp("small_home_batteries") / "small_home_batteries.yaml"
    variant.write_text(yaml.safe_dump(data))
    out = variant.parent / "run"
    run_inproc(load_scenario(variant), out, timeout_s=300)
    return out


def test_a_battery_that_clips_its_set_point_moves_the_next_plan(small_home_batteries):
    """The pool ends hours off its plan (the old LEC_EMS, which carried its plan forward, would have planned
    from there); every next plan starts from the measured energy, and the measured energy is the batteries' own
    balance of what they ran."""
    soc = check_plans_start_from_the_measured_energy(small_home_batteries)
    gaps = soc.set_index(["lec", "hour"])["soc_start_gap_kwh"]
    # measured 2026-12-07: 14 of the 36 LEC-hours start more than 1 Wh off the plan, lec3's hour 4 by 5.85 kWh
    assert gaps.abs().max() == pytest.approx(5.85, abs=0.01) and gaps.abs().idxmax() == ("lec3", 4)
    assert (gaps.abs() > 1e-3).sum() == 14 and (gaps > -1e-3).all()  # the pool held more than planned: it clipped
    # a home battery ran empty or full while its LEC's pool did not
    members, start = pooled_energy_at_hour_starts(small_home_batteries)
    homes = members[members["kind"] == "household"]
    assert ((homes["soc_kwh"] < 1e-9) | (homes["soc_kwh"] > 2 - 1e-9)).any()
    # energy balance of each LEC's pooled batteries over every hour: what they ran, through their efficiency
    scenario = load_scenario(small_home_batteries / "scenario.json")
    leg = np.sqrt(scenario.lecs.battery_efficiency)
    stored = np.where(members["battery_kw"] > 0, members["battery_kw"] * leg, members["battery_kw"] / leg)
    per_hour = int(round(3600 / scenario.grid_step_s))
    gained = pd.Series(stored * scenario.grid_step_s / 3600).groupby(
        [members["lec"].to_numpy(), (members["step"] // per_hour).to_numpy()]).sum()
    for (lec, hour), kwh in gained.items():
        assert start[(lec, hour + 1)] - start[(lec, hour)] == pytest.approx(kwh, abs=1e-6)


# --- the topology, as read from the running federation -------------------------------------------


def graph(run_dir: Path) -> dict:
    return json.loads((run_dir / "federation_graph.json").read_text())


def message_links(run_dir: Path) -> set:
    return {(m["source"], m["destination"]) for m in graph(run_dir)["messages"] if m["count"] > 0}


def value_links(run_dir: Path) -> set:
    return {(v["source"], v["destination"]) for v in graph(run_dir)["values"]}


def test_every_federate_answered_the_query(run):
    names = {config.stem for config in (run / "configs").glob("*.json")}  # the federation's federates
    if (run / "runner.json").is_file():  # a lec-cosim run: its runner starts the same ones, and a broker
        assert {f["name"] for f in json.loads((run / "runner.json").read_text())["federates"]} == names | {"broker"}
    assert set(graph(run)["federates"]) == names
    for name, reply in graph(run)["federates"].items():
        assert reply["federate"] == name


def test_the_households_measure_every_lec_emss_batteries_every_hour(run):
    """The measurements are messages (a value would loop households <-> LEC_EMS in HELICS time requests), one
    per LEC_EMS and hour but the first (the known initial state), from the households' meter endpoint; they are
    not among the frameworks' messages."""
    g = graph(run)
    assert {(m["source"], m["destination"], m["count"]) for m in g["measurements"]} == {
        ("households", e, 23) for e in EMS}
    assert {m["source"] for m in g["federates"]["households"]["messages"]} >= {"mlec/households/meter"}
    assert summary(run)["kpis"]["messages"] == sum(m["count"] for m in g["messages"])


def test_decentralised_lecs_trade_through_the_platform_only(decentralised):
    links = message_links(decentralised)
    assert links == {(e, "platform") for e in EMS} | {("platform", e) for e in EMS}
    counts = {(m["source"], m["destination"]): m["count"] for m in graph(decentralised)["messages"]}
    assert all(counts[(e, "platform")] == 24 for e in EMS)


def test_distributed_has_no_supervisor_and_emss_talk_to_neighbours_only(negotiated):
    g = graph(negotiated)
    assert "platform" not in g["federates"]
    scenario = load_scenario(negotiated / "scenario.json")
    neighbours = members_from_scenario(scenario).neighbours
    expected = {(f"lec_ems_{a[3:]}", f"lec_ems_{b[3:]}") for a, b in neighbours}
    expected |= {(b, a) for a, b in expected}
    assert message_links(negotiated) == expected
    # Nobody else sends anything to a LEC_EMS: no messages, and no values (without the DSO loop).
    assert not any(b in EMS for _, b in value_links(negotiated))
    assert all(a in EMS for a, b in message_links(negotiated) if b in EMS)
    # Every proposal went to a neighbour as often as the negotiation iterated.
    total = read(negotiated, "negotiation.csv")["iterations"].sum()
    assert all(m["count"] == total for m in g["messages"])


def test_p2p_households_trade_through_their_own_lec_market(p2p):
    g = graph(p2p)
    scenario = load_scenario(p2p / "scenario.json")
    table = members_from_scenario(scenario).table
    lec_of = table[table["kind"] == "household"].set_index("member")["lec"]
    member_messages = [m for m in g["federates"]["households"]["messages"] if m["source"].startswith("mlec/member/")]
    assert len(member_messages) == len(lec_of)  # every member sent orders
    for m in member_messages:
        member = m["source"].rsplit("/", 1)[1]
        assert m["destination"] == f"mlec/{lec_of[member]}/market" and m["count"] == 24
    for k, ems in enumerate(EMS, start=1):
        sent = g["federates"][ems]["messages"]
        to_members = {m["destination"] for m in sent if m["destination"].startswith("mlec/member/")}
        assert to_members == {f"mlec/member/{name}" for name in lec_of[lec_of == f"lec{k}"].index}
        assert {m["destination"] for m in sent} - to_members == {"mlec/platform"}
    assert message_links(p2p) >= {("platform", e) for e in EMS}
    assert not any(a in EMS and b in EMS for a, b in message_links(p2p))
