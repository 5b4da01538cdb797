"""The three-LEC planner (``multi_lec_ems.rest_of_day_problem`` and its batteries), solved by hand.

Tiny communities of one to three members per LEC over two or three hours, built here as plain
tables (no feeder data), planned by ``solve_centralised`` and checked against optima worked out
in the comments. Prices are the scenario's (``scenarios/ieee_eu_lv_three_lecs.yaml``): bi-hourly
retail 0.1023 EUR/kWh before 09:00 and 0.1924 from 09:00 to 22:00 (plain: 0.158 all day), feed-in
0.045; wheeling 0.001 EUR/kWh per kW; DSO limits soft at 0.5 EUR/kWh. A plan starts at
``first_hour`` of a horizon that starts at midnight and ends with every pooled battery at 50 %.
The solver's tie-breaks (1e-6) move the numbers by about 1e-5, hence the tolerances.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lec_cosim.models.exchange import balance_mismatch_kw, solve_centralised
from lec_cosim.models.multi_lec import MultiLecMembers
from lec_cosim.models.multi_lec_ems import curtailment_split, pooled_batteries, rest_of_day_problem
from lec_cosim.scenario import load_scenario

SCENARIO = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "ieee_eu_lv_three_lecs.yaml")
PLAIN = SCENARIO.model_copy(update={"tariff": SCENARIO.tariff.model_copy(update={"scheme": "plain"})})
OFF_PEAK, PEAK, FEED_IN = 0.1023, 0.1924, 0.045
TOL = 1e-4


def member(name, lec, *, load=None, pv=None, kwh=0.0, kw=0.0, efficiency=0.0, kind="household"):
    """One member row; ``load`` and ``pv`` map an hour to its kW (a number, or one value per grid step)."""
    return {"member": name, "lec": lec, "kind": kind, "load": load or {}, "pv": pv or {}, "battery_kwh": kwh,
            "battery_kw": kw, "battery_efficiency": efficiency}


def battery(lec, kwh, kw, efficiency):
    return member(f"{lec}_battery", lec, kwh=kwh, kw=kw, efficiency=efficiency, kind="community_battery")


def community(rows, *, hours, grid_min=60, neighbours=()):
    """A MultiLecMembers of ``hours`` hours from midnight with the given members."""
    per_hour = 60 // grid_min

    def profile(by_hour):
        values = np.zeros(hours * per_hour)
        for hour, kw in by_hour.items():
            values[hour * per_hour:(hour + 1) * per_hour] = kw
        return values

    table = pd.DataFrame([{k: v for k, v in r.items() if k not in ("load", "pv")} for r in rows])
    lecs = pd.DataFrame({"lec": list(dict.fromkeys(r["lec"] for r in rows))})
    load = np.array([profile(r["load"]) for r in rows])
    return MultiLecMembers(table=table, lecs=lecs, neighbours=list(neighbours), grid_min=grid_min,
                           start=pd.Timestamp("2016-05-26"), load_kw=load, load_kvar=0.3 * load,
                           pv_kw=np.array([profile(r["pv"]) for r in rows]), load_scale=1.0)


def plan(members, scenario=SCENARIO, *, first_hour, home_batteries=True, soc_kwh=None, **options):
    batteries = pooled_batteries(members, home_batteries=home_batteries)
    soc = 0.5 * batteries.energy_kwh if soc_kwh is None else np.asarray(soc_kwh, dtype=float)
    problem = rest_of_day_problem(members, scenario, first_hour=first_hour, soc_kwh=soc, batteries=batteries,
                                  **options)
    result = solve_centralised(problem)
    assert np.max(np.abs(balance_mismatch_kw(problem, result))) < 1e-6
    return problem, result


# --- PV stored for a dearer hour, with the battery's losses --------------------------------------------


def morning(grid_min=60):
    """One LEC, one prosumer and a 10 kWh / 5 kW community battery (round trip 0.81: 0.9 per leg).

    Hours 7, 8, 9 of a 10-hour horizon: PV 5 kW against 1 kW of load at 7 (a 4 kW surplus), then
    2 kW and 3 kW of load and no PV. With 15-minute steps the load of hour 8 is 1, 3, 2, 2 kW
    (mean 2) and the PV of hour 7 is 4, 6, 5, 5 kW (mean 5): the planner works in hourly means.
    """
    if grid_min == 60:
        load, pv = {7: 1.0, 8: 2.0, 9: 3.0}, {7: 5.0}
    else:
        load, pv = {7: 1.0, 8: [1.0, 3.0, 2.0, 2.0], 9: 3.0}, {7: [4.0, 6.0, 5.0, 5.0]}
    return community([member("H1", "lec1", load=load, pv=pv), battery("lec1", 10.0, 5.0, 0.81)],
                     hours=10, grid_min=grid_min)


@pytest.mark.parametrize("grid_min", [60, 15])
def test_pv_surplus_is_stored_for_the_peak_hour_less_the_battery_losses(grid_min):
    """Bi-hourly: 07:00 and 08:00 cost 0.1023, 09:00 costs 0.1924; the battery starts and ends at 5 kWh.

    A kWh of PV stored at 7 comes back as 0.81 kWh: worth 0.81 * 0.1924 = 0.156 at 9 and
    0.81 * 0.1023 = 0.083 at 8, both more than the 0.045 of feeding it in. So all 4 kW of surplus
    are stored at 7 (within 5 kW): 5 + 0.9 * 4 = 8.6 kWh. The dear hour first: covering its 3 kW
    takes 3 / 0.9 = 3.333 kWh; the other 0.2667 kWh give 0.9 * 0.2667 = 0.24 kW at 8, which
    imports 2 - 0.24 = 1.76 kW. (Charging from the grid at 0.1023 for 9 would pay, 0.1023 / 0.81
    = 0.126 < 0.1924, but the PV already covers hour 9.) Cost 1.76 * 0.1023 = 0.180048 EUR.
    """
    members = morning(grid_min)
    problem, result = plan(members, first_hour=7)
    assert problem.n_steps == 3 and problem.net_demand_kw[0] == pytest.approx([-4.0, 2.0, 3.0])
    assert problem.import_price_eur_per_kwh[0] == pytest.approx([OFF_PEAK, OFF_PEAK, PEAK])
    assert problem.export_price_eur_per_kwh[0] == pytest.approx([FEED_IN] * 3)
    assert problem.battery_capacity_kwh[0] == 10.0 and problem.battery_efficiency[0] == 0.81
    assert result.charge_kw[0] == pytest.approx([4.0, 0.0, 0.0], abs=TOL)
    assert result.discharge_kw[0] == pytest.approx([0.0, 0.24, 3.0], abs=TOL)
    assert result.soc_kwh[0] == pytest.approx([8.6, 8.6 - 0.24 / 0.9, 5.0], abs=TOL)
    assert result.import_kw[0] == pytest.approx([0.0, 1.76, 0.0], abs=TOL)
    assert result.export_kw[0] == pytest.approx([0.0, 0.0, 0.0], abs=TOL)
    assert result.total_cost_eur == pytest.approx(1.76 * OFF_PEAK, abs=TOL)


def test_with_one_price_all_day_the_stored_pv_only_saves_imports():
    """Plain tariff (0.158 every hour): still worth storing (0.81 * 0.158 = 0.128 > 0.045).

    The 3.6 kWh stored at 7 come back as 3.24 kWh over hours 8 and 9, whichever way they are
    split (same price), so 5 - 3.24 = 1.76 kWh are imported: 1.76 * 0.158 = 0.27808 EUR.
    """
    problem, result = plan(morning(), PLAIN, first_hour=7)
    assert problem.import_price_eur_per_kwh[0] == pytest.approx([0.158] * 3)
    assert result.charge_kw[0, 0] == pytest.approx(4.0, abs=TOL)
    assert result.discharge_kw[0, 1:].sum() == pytest.approx(3.24, abs=TOL)
    assert result.import_kw[0].sum() == pytest.approx(1.76, abs=TOL)
    assert result.total_cost_eur == pytest.approx(1.76 * 0.158, abs=TOL)


def test_a_plan_from_a_later_hour_starts_from_the_present_energy():
    """At 9:00 with 8.6 kWh left of the 10 (the morning's plan not followed at 8), the battery must
    end the day at 5 kWh: it discharges 3.6 kWh, 0.9 * 3.6 = 3.24 kW, of which 3 cover the load and
    0.24 go out at feed-in (discharging is the only way down). Cost -0.24 * 0.045 = -0.0108 EUR."""
    problem, result = plan(morning(), first_hour=9, soc_kwh=[8.6])
    assert problem.n_steps == 1 and problem.soc_initial[0] == pytest.approx(0.86)
    assert result.discharge_kw[0] == pytest.approx([3.24], abs=TOL)
    assert result.export_kw[0] == pytest.approx([0.24], abs=TOL)
    assert result.total_cost_eur == pytest.approx(-0.24 * FEED_IN, abs=TOL)


# --- a full battery: export, then curtailment ----------------------------------------------------


def noon(grid_min=60):
    """One LEC, two prosumers (PV 4.2 and 2.8 kW at 10:00, load 1 kW in all; 3 kW of load at 11:00)
    and a 2 kWh / 5 kW community battery, lossless. Hours 10 and 11 of a 12-hour horizon: peak."""
    return community([member("H1", "lec1", load={10: 0.5, 11: 2.0}, pv={10: 4.2}),
                      member("H2", "lec1", load={10: 0.5, 11: 1.0}, pv={10: 2.8}),
                      battery("lec1", 2.0, 5.0, 1.0)], hours=12, grid_min=grid_min)


def test_a_full_battery_leaves_the_rest_of_the_surplus_to_export():
    """Surplus 7 - 1 = 6 kW at 10:00. The battery (1 of 2 kWh) takes 1 kWh and is full; it gives it
    back at 11:00 (saving 0.1924 rather than 0.045), which imports 3 - 1 = 2 kW. The other 5 kW
    are fed in: cost 2 * 0.1924 - 5 * 0.045 = 0.1598 EUR. Nothing is curtailed."""
    problem, result = plan(noon(), first_hour=10)
    assert problem.curtailable_kw[0] == pytest.approx([7.0, 0.0])
    assert result.charge_kw[0] == pytest.approx([1.0, 0.0], abs=TOL)
    assert result.discharge_kw[0] == pytest.approx([0.0, 1.0], abs=TOL)
    assert result.soc_kwh[0] == pytest.approx([2.0, 1.0], abs=TOL)
    assert result.export_kw[0] == pytest.approx([5.0, 0.0], abs=TOL)
    assert result.import_kw[0] == pytest.approx([0.0, 2.0], abs=TOL)
    assert result.curtailed_kw[0] == pytest.approx([0.0, 0.0], abs=TOL)
    assert result.total_cost_eur == pytest.approx(2 * PEAK - 5 * FEED_IN, abs=TOL)


def test_a_full_battery_under_an_export_limit_curtails_and_the_members_share_it_by_their_pv():
    """The DSO lets the LEC feed in 2 kW. Of the 6 kW surplus the full battery takes 1, 2 go out,
    and 3 kW are curtailed (losing 0.045 each, against 0.5 beyond the limit): cost
    2 * 0.1924 - 2 * 0.045 = 0.2948 EUR, no excess. The members curtail in proportion to their
    PV at the step: 3 * 4.2 / 7 = 1.8 and 3 * 2.8 / 7 = 1.2 kW; the battery member none."""
    members = noon()
    problem, result = plan(members, first_hour=10, export_limit_kw=[2.0])
    assert problem.grid_export_limit_kw[0] == pytest.approx([2.0, 2.0])
    assert result.charge_kw[0] == pytest.approx([1.0, 0.0], abs=TOL)
    assert result.export_kw[0] == pytest.approx([2.0, 0.0], abs=TOL)
    assert result.curtailed_kw[0] == pytest.approx([3.0, 0.0], abs=TOL)
    assert result.limit_excess_kw[0] == pytest.approx([0.0, 0.0], abs=TOL)
    assert result.total_cost_eur == pytest.approx(2 * PEAK - 2 * FEED_IN, abs=TOL)
    assert curtailment_split(members, 10, [3.0]) == pytest.approx([1.8, 1.2, 0.0], abs=1e-12)
    # A curtailment above the PV of the step is capped at all of it; an hour without PV curtails nothing.
    assert curtailment_split(members, 10, [9.0]) == pytest.approx([4.2, 2.8, 0.0], abs=1e-12)
    assert curtailment_split(members, 11, [3.0]) == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)


def test_curtailment_follows_each_members_pv_within_the_hour():
    """15-minute steps: at one step H1 has 3 kW of PV and H2 1 kW; 2 kW of LEC curtailment are split
    1.5 / 0.5. Another LEC's members are untouched by lec1's curtailment."""
    members = community([member("H1", "lec1", pv={10: [3.0, 4.2, 4.2, 4.2]}),
                         member("H2", "lec1", pv={10: [1.0, 2.8, 2.8, 2.8]}),
                         member("H3", "lec2", pv={10: 5.0})], hours=12, grid_min=15)
    assert curtailment_split(members, 40, [2.0, 0.0]) == pytest.approx([1.5, 0.5, 0.0], abs=1e-12)
    assert curtailment_split(members, 41, [2.0, 1.0]) == pytest.approx([1.2, 0.8, 1.0], abs=1e-12)


# --- the community battery alone, or pooled with the home batteries ----------------------------------


def evening():
    """One LEC: a prosumer with a 4 kWh / 2 kW home battery, a consumer with another, and a
    10 kWh / 5 kW community battery (all two hours, lossless). Hours 8 (off-peak) and 9 (peak)
    of a 10-hour horizon: an 8 kW surplus at 8 (PV 9, loads 0.5 + 0.5), 8 kW of load at 9."""
    return community([member("P", "lec1", load={8: 0.5, 9: 4.0}, pv={8: 9.0}, kwh=4.0, kw=2.0, efficiency=1.0),
                      member("C", "lec1", load={8: 0.5, 9: 4.0}, kwh=4.0, kw=2.0, efficiency=1.0),
                      battery("lec1", 10.0, 5.0, 1.0)], hours=10)


def test_home_batteries_pooled_with_the_community_battery_store_the_whole_surplus():
    """Community battery alone (P2P: the homes run their own): 5 kW, so 5 of the 8 kW are stored and
    3 fed in at 8; at 9 the 5 kWh come back and 3 kW are imported: 3 * 0.1924 - 3 * 0.045 = 0.4422
    EUR. Pooled (decentralised, distributed): 18 kWh / 9 kW at 9 kWh, room for all 8 kWh: nothing
    bought or sold, cost 0. The pooled set-point splits by power: 5/9 to the community battery,
    2/9 to each home battery, which keeps every battery at the same state of charge."""
    members = evening()
    alone = pooled_batteries(members, home_batteries=False)
    pooled = pooled_batteries(members, home_batteries=True)
    assert (alone.energy_kwh[0], alone.power_kw[0]) == (10.0, 5.0)
    assert (pooled.energy_kwh[0], pooled.power_kw[0]) == (18.0, 9.0)
    assert alone.share == pytest.approx([0.0, 0.0, 1.0])
    assert pooled.share == pytest.approx([2 / 9, 2 / 9, 5 / 9])
    assert pooled.split(members, [8.0]) == pytest.approx([16 / 9, 16 / 9, 40 / 9])

    _, community_only = plan(members, first_hour=8, home_batteries=False)
    assert community_only.charge_kw[0] == pytest.approx([5.0, 0.0], abs=TOL)
    assert community_only.discharge_kw[0] == pytest.approx([0.0, 5.0], abs=TOL)
    assert community_only.export_kw[0] == pytest.approx([3.0, 0.0], abs=TOL)
    assert community_only.import_kw[0] == pytest.approx([0.0, 3.0], abs=TOL)
    assert community_only.total_cost_eur == pytest.approx(3 * PEAK - 3 * FEED_IN, abs=TOL)

    _, with_homes = plan(members, first_hour=8, home_batteries=True)
    assert with_homes.charge_kw[0] == pytest.approx([8.0, 0.0], abs=TOL)
    assert with_homes.discharge_kw[0] == pytest.approx([0.0, 8.0], abs=TOL)
    assert with_homes.soc_kwh[0] == pytest.approx([17.0, 9.0], abs=TOL)
    assert with_homes.import_kw[0] == pytest.approx([0.0, 0.0], abs=TOL)
    assert with_homes.export_kw[0] == pytest.approx([0.0, 0.0], abs=TOL)
    assert with_homes.total_cost_eur == pytest.approx(0.0, abs=TOL)
    # Each battery's part of the pooled set-point keeps it at the pool's state of charge: 17/18.
    energy = members.table["battery_kwh"].to_numpy()
    after = 0.5 * energy + pooled.split(members, [with_homes.charge_kw[0, 0]])
    assert after / energy == pytest.approx([17 / 18] * 3, abs=TOL)


# --- three LECs: the neighbour graph, the agents' view, the DSO's limits -----------------------------


def three_lecs():
    """lec1 has a 10 kW surplus at 10:00, lec2 a 6 kW deficit, lec3 4 kW of load; no batteries.
    lec1 - lec2 and lec2 - lec3 are neighbours (lec1 and lec3 are not). One hour: hour 10 of 11."""
    return community([member("A", "lec1", load={10: 1.0}, pv={10: 11.0}), member("B", "lec2", load={10: 6.0}),
                      member("C", "lec3", load={10: 4.0})], hours=11,
                     neighbours=[("lec1", "lec2"), ("lec2", "lec3")])


def test_neighbours_exchange_the_surplus_at_the_wheeling_cost():
    """Sending p kW from lec1 saves its receiver 0.1924 and costs lec1 0.045 of feed-in: a margin of
    0.1474 against the marginal wheeling 2 * 0.001 * p per edge. lec2 takes 6 kW (0.012 < 0.1474);
    lec3's 4 kW pass two edges: at 4 kW on lec2 - lec3 and 10 kW on lec1 - lec2 the marginal cost is
    2 * 0.001 * (10 + 4) = 0.028 < 0.1474, so all 10 kW go: 6 to lec2, 4 on to lec3.
      lec1: -0 feed-in + half of 0.001 * 10**2 = 0.05 EUR;
      lec2: half of 0.1 + half of 0.001 * 4**2 = 0.05 + 0.008 = 0.058 EUR;  lec3: 0.008 EUR.
    Without edges each plans alone: lec1 feeds in 10 kW (-0.45), lec2 and lec3 import 6 and 4 kW
    at 0.1924 (1.1544 and 0.7696 EUR)."""
    members = three_lecs()
    problem, result = plan(members, first_hour=10)
    assert problem.edges == ((0, 1), (1, 2))
    assert problem.net_demand_kw[:, 0] == pytest.approx([-10.0, 6.0, 4.0])
    assert result.exchange_kw[:, 0] == pytest.approx([10.0, 4.0], abs=1e-3)
    assert result.import_kw[:, 0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-3)
    assert result.export_kw[:, 0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-3)
    assert result.cost_eur == pytest.approx([0.05, 0.058, 0.008], abs=TOL)

    _, alone = plan(members, first_hour=10, with_edges=False)
    assert alone.exchange_kw.shape == (0, 1)
    assert alone.export_kw[:, 0] == pytest.approx([10.0, 0.0, 0.0], abs=TOL)
    assert alone.import_kw[:, 0] == pytest.approx([0.0, 6.0, 4.0], abs=TOL)
    assert alone.cost_eur == pytest.approx([-10 * FEED_IN, 6 * PEAK, 4 * PEAK], abs=TOL)


def test_one_agents_problem_holds_only_its_own_lec_and_the_dso_limits():
    """``only_lec``: what one LEC_EMS knows (its own demand and PV; the others' rows are zeros).
    A DSO import limit of 2 kW on lec3 (soft): its 4 kW still come through the feeder (an exchange
    is no physical relief), 2 kW beyond the limit, reported and not billed."""
    members = three_lecs()
    mine = rest_of_day_problem(members, SCENARIO, first_hour=10, soc_kwh=[0.0, 0.0, 0.0],
                               batteries=pooled_batteries(members, home_batteries=True), only_lec=1)
    assert mine.net_demand_kw[:, 0] == pytest.approx([0.0, 6.0, 0.0])
    assert mine.curtailable_kw[:, 0] == pytest.approx([0.0, 0.0, 0.0])
    _, result = plan(members, first_hour=10, import_limit_kw=[math.inf, math.inf, 2.0])
    assert result.limit_excess_kw[:, 0] == pytest.approx([0.0, 0.0, 2.0], abs=TOL)
    assert result.cost_eur == pytest.approx([0.05, 0.058, 0.008], abs=TOL)  # the penalty is not money
