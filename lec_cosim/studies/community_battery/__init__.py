"""The community battery: households with PV and a community battery behind an MV/LV transformer,
its LEC_EMS scheduling the battery day-ahead (Rana et al., Sec. IV)."""

from __future__ import annotations

KIND = "community_battery"
TITLE = "Community battery"
DESCRIPTION = ("An LEC of households with PV and a community battery behind an MV/LV transformer, the battery "
               "scheduled day-ahead (Rana et al., Sec. IV). One row per run.")
OVERRIDES: tuple[str, ...] = ()
VALUE_PLAYERS = ("market",)
FIGURE_CAPTION = ("PCC active power (into the LEC) and PCC voltage of each run, per grid step "
                  "(Rana et al., Figs. 11-12).")


def plan(scenario):
    from lec_cosim.studies.community_battery.wiring import plan

    return plan(scenario)


def describe(scenario) -> str:
    return (f"{scenario.horizon_h:g} h from {scenario.start.isoformat()}, objective {scenario.ems.objective}, "
            f"solver {scenario.ems.solver}")


def done(kpis: dict, summary: dict) -> str:
    return (f"import {kpis['import_mwh']:.3f} MWh, export {kpis['export_mwh']:.3f} MWh, cost "
            f"{kpis['energy_cost']:.2f} {summary['currency']}, PCC voltage {kpis['vm_min_pu']:.4f}-"
            f"{kpis['vm_max_pu']:.4f} pu")


def recognise(summary: dict) -> bool:
    kpis = summary.get("kpis")
    return isinstance(kpis, dict) and "objective" in summary and "import_mwh" in kpis


def compare(runs, paper=None) -> str:
    from lec_cosim.studies.community_battery.report import compare_table

    return compare_table(runs)


def plot(runs, output) -> None:
    from lec_cosim.studies.community_battery.report import plot_runs

    plot_runs(runs, output)


def tables(runs, paper=None) -> list[tuple]:
    from lec_cosim.studies.community_battery.report import compare_cells

    header, rows = compare_cells(list(runs))
    return [("kpi-community-battery", "KPIs per run (from summary.json)", header, rows)]


ROW_HEADERS = 2
"""Its KPI table names a row by two cells: the run and its objective."""
NO_FEEDER_MAP = "the community-battery grid is a balanced two-bus model without coordinates"


def run_labels(summaries: list[dict], runs) -> list[str]:
    return [f"{s.get('scenario', run.name)} ({s.get('objective', '?')})" for s, run in zip(summaries, runs)]


def check_data(scenario) -> None:
    from lec_cosim.models.household import HouseholdFleet
    from lec_cosim.models.prices import PriceFeed
    from lec_cosim.models.timeseries import DataError
    from lec_cosim.scenario import ScenarioError

    try:
        HouseholdFleet.from_scenario(scenario).power(scenario.start, scenario.grid_step_s,
                                                     int(scenario.end_s // scenario.grid_step_s))
        prices = PriceFeed.from_scenario(scenario).prices(scenario.start, scenario.market_step_s,
                                                          int(scenario.end_s // scenario.market_step_s))
    except DataError as exc:
        raise ScenarioError(f"{scenario.source_file}: data: {exc}") from None
    if scenario.grid.import_limit_mw is not None:  # the only constraint that can leave the EMS without a plan
        from lec_cosim.models.ems import DayAheadPlanner, ImportLimitInfeasible

        try:
            DayAheadPlanner(scenario).plan_horizon(prices)
        except ImportLimitInfeasible as exc:
            raise ScenarioError(f"{scenario.source_file}: {exc.field}: {exc}") from None


def run_name(scenario) -> str:
    """Its results folder's default name (``results/<run_name>``)."""
    return scenario.name
