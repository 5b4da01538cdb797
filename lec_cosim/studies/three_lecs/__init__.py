"""Three LECs on the IEEE European LV feeder, or on any feeder source, under one of three frameworks:
decentralised, distributed (neighbours negotiate) and p2p inside each LEC (Rana et al., Sec. III-B)."""

from __future__ import annotations

KIND = "three_lecs"
TITLE = "Three LECs"
DESCRIPTION = ("The feeder's households in three LECs under the frameworks decentralised, distributed and p2p "
               "(Rana et al., Sec. III-B). One column per run.")
OVERRIDES = ("framework", "dso_limits")
VALUE_PLAYERS: tuple[str, ...] = ()
ROW_HEADERS = 1
NO_FEEDER_MAP: str | None = None  # its DSO writes the feeder's extremes: the report draws the map
FEDERATION_DAYS = 1
"""A learning environment's long-lived federation plays its episodes on one day (a run plays any horizon up to a
year); several days are played one federation per episode."""
FIGURE_CAPTION = ("Top: what each LEC paid over the run. Middle: the LECs' hourly grid import (up), export "
                  "(down) and exchanges between LECs. Bottom: the feeder's lowest and highest bus voltage per "
                  "grid step, with the DSO's band.")


def plan(scenario):
    from lec_cosim.studies.three_lecs.wiring import plan

    return plan(scenario)


def describe(scenario) -> str:
    return (f"{scenario.lecs.count} LECs, framework {scenario.framework}, DSO limits "
            f"{'on' if scenario.dso.limits else 'off'}, {scenario.horizon_h:g} h from {scenario.start.isoformat()}")


def done(kpis: dict, summary: dict) -> str:
    iterations = f", {kpis['iterations_total']} ADMM iterations" if kpis["iterations_total"] else ""
    return (f"cost {kpis['total_cost_eur']:.2f} EUR ({kpis['cost_per_member_eur']:.2f} per member), "
            f"self-sufficiency {100 * kpis['self_sufficiency']:.1f} %, transformer peak {kpis['trafo_peak_kw']:.1f} "
            f"kW, losses {kpis['losses_kwh']:.2f} kWh, bus violations {kpis['bus_violations']}, "
            f"{kpis['messages']} messages{iterations}")


def recognise(summary: dict) -> bool:
    from lec_cosim.scenario import FRAMEWORKS

    kpis = summary.get("kpis")
    return summary.get("framework") in FRAMEWORKS and isinstance(kpis, dict) and "lecs" in kpis


def compare(runs, paper=None) -> str:
    from lec_cosim.studies.three_lecs.report import mlec_compare_table

    return mlec_compare_table(runs)


def plot(runs, output) -> None:
    from lec_cosim.studies.three_lecs.report import plot_mlec_runs

    plot_mlec_runs(runs, output)


def tables(runs, paper=None) -> list[tuple]:
    from lec_cosim.studies.three_lecs.report import mlec_compare_cells

    header, rows = mlec_compare_cells(list(runs))
    return [("kpi-three-lecs", "KPIs per run (from summary.json)", header, rows)]


def run_labels(summaries: list[dict], runs) -> list[str]:
    from lec_cosim.studies.three_lecs.report import distinct_run_labels

    return distinct_run_labels(summaries)


def check_data(scenario) -> None:
    from lec_cosim.checks import check_feeder
    from lec_cosim.models.feeder_model import FeederSourceError
    from lec_cosim.models.feeder_source import feeder_of
    from lec_cosim.models.multi_lec_ems import members_from_scenario
    from lec_cosim.scenario import ScenarioError

    check_feeder(scenario)
    try:
        feeder = feeder_of(scenario)
    except (FeederSourceError, ValueError, OSError) as exc:
        raise ScenarioError(f"{scenario.source_file}: feeder.source: {' '.join(str(exc).split())}") from None
    try:
        members = members_from_scenario(scenario, feeder)
    except (ValueError, KeyError, OSError) as exc:
        raise ScenarioError(f"{scenario.source_file}: data: {' '.join(str(exc).split())}") from None
    if feeder is not None:
        _check_source_grid(scenario, members, feeder)


def _check_source_grid(scenario, members, feeder) -> None:
    """The DSO's grid on a ``feeder.source`` built and solved once with the members' first step, as the DSO
    will: what the grid model refuses is one line before any process starts, not a federate's crash."""
    from lec_cosim.adapters.three_lec_grid import dso_grid
    from lec_cosim.scenario import ScenarioError

    try:
        dso_grid(scenario, members, feeder).solve_step(0)
    except Exception as exc:  # any refusal or failure of the grid model: the DSO would fail the same way
        raise ScenarioError(f"{scenario.source_file}: feeder.source: the grid model cannot take it: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None


def run_name(scenario) -> str:
    """Its results folder's default name: one scenario runs under every framework, with and without limits."""
    dso = ""
    if scenario.dso.limits:
        dso = "_dso" if scenario.dso.limits_per == "lec" else f"_dso_household_{scenario.dso.sharing}"
    forecast = scenario.ems.forecast
    return f"{scenario.name}_{scenario.framework}{dso}{'' if forecast == 'perfect' else f'_{forecast}'}"


def agent_roles(scenario, **options):
    """The roles of ``agents:`` as a learning environment sees them (:mod:`lec_cosim.env`): p2p HEMSs."""
    from lec_cosim.studies.three_lecs.agents import HemsRoles

    return HemsRoles(scenario, **options)


def scenario_for_day(scenario, day):
    from lec_cosim.studies.three_lecs.agents import scenario_for_day

    return scenario_for_day(scenario, day)


def scenario_for_days(scenario, first, days):
    from lec_cosim.studies.three_lecs.agents import scenario_for_days

    return scenario_for_days(scenario, first, days)
