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
    text = (f"{scenario.horizon_h:g} h from {scenario.start.isoformat()}, objective {scenario.ems.objective}, "
            f"solver {scenario.ems.solver}")
    return text if scenario.grid.source is None else f"{text}, grid {scenario.grid.source}"


def done(kpis: dict, summary: dict) -> str:
    line = (f"import {kpis['import_mwh']:.3f} MWh, export {kpis['export_mwh']:.3f} MWh, cost "
            f"{kpis['energy_cost']:.2f} {summary['currency']}, PCC voltage {kpis['vm_min_pu']:.4f}-"
            f"{kpis['vm_max_pu']:.4f} pu")
    if "grid_vm_min_pu" in kpis:  # on a feeder source: its extremes
        line += (f", feeder voltage {kpis['grid_vm_min_pu']:.4f}-{kpis['grid_vm_max_pu']:.4f} pu, line loading up "
                 f"to {kpis['max_line_loading_percent']:.1f} %")
    return line


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
NO_FEEDER_MAP = ("the community-battery grid is a balanced model whose DSO records the grid's extremes, not each "
                 "bus's voltage")


def run_labels(summaries: list[dict], runs) -> list[str]:
    return [f"{s.get('scenario', run.name)} ({s.get('objective', '?')})" for s, run in zip(summaries, runs)]


def check_data(scenario) -> None:
    from lec_cosim.models.household import HouseholdFleet
    from lec_cosim.models.prices import PriceFeed
    from lec_cosim.models.timeseries import DataError
    from lec_cosim.scenario import ScenarioError

    try:
        fleet = HouseholdFleet.from_scenario(scenario)
        fleet.power(scenario.start, scenario.grid_step_s, int(scenario.end_s // scenario.grid_step_s))
        prices = PriceFeed.from_scenario(scenario).prices(scenario.start, scenario.market_step_s,
                                                          int(scenario.end_s // scenario.market_step_s))
    except DataError as exc:
        raise ScenarioError(f"{scenario.source_file}: data: {exc}") from None
    if scenario.grid.source is not None:
        _check_feeder_grid(scenario, fleet)
    if scenario.grid.import_limit_mw is not None:  # the only constraint that can leave the EMS without a plan
        from lec_cosim.models.ems import DayAheadPlanner, ImportLimitInfeasible

        try:
            DayAheadPlanner(scenario).plan_horizon(prices)
        except ImportLimitInfeasible as exc:
            raise ScenarioError(f"{scenario.source_file}: {exc.field}: {exc}") from None


def _check_feeder_grid(scenario, fleet) -> None:
    """The grid on ``grid.source``: the source read, the community placed on it and its first step solved, as the
    DSO will; what it cannot take is one line naming the field before any process starts, not a federate's crash."""
    from lec_cosim.models.battery_feeder import FeederLECGrid, community_of, point_powers
    from lec_cosim.models.feeder_model import FeederSourceError
    from lec_cosim.models.timeseries import DataError
    from lec_cosim.scenario import ScenarioError

    where = scenario.source_file
    try:
        community = community_of(scenario)
    except FeederSourceError as exc:
        raise ScenarioError(f"{where}: {getattr(exc, 'field', 'grid.source')}: {' '.join(str(exc).split())}") from None
    try:
        powers = point_powers(scenario, community, scenario.grid_step_s, 1, fleet)
        grid = FeederLECGrid(community, scenario.grid)
        grid.solve(powers["load_p_mw"][0], powers["load_q_mvar"][0], powers["pv_p_mw"][0], 0.0)
    except DataError as exc:
        raise ScenarioError(f"{where}: data: {exc}") from None
    except Exception as exc:  # any refusal or failure of the grid model: the DSO would fail the same way
        raise ScenarioError(f"{where}: grid.source: the grid model cannot take it: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None


def run_name(scenario) -> str:
    """Its results folder's default name (``results/<run_name>``)."""
    return scenario.name


def agent_roles(scenario, **options):
    """The roles of ``agents:`` as a learning environment sees them (:mod:`lec_cosim.env`); ``options``: the
    environment's ``role_options``, a role's own options by its name."""
    from lec_cosim.studies.community_battery.agents import CommunityBatteryRoles

    return CommunityBatteryRoles(scenario, **options)


def scenario_for_day(scenario, day):
    from lec_cosim.studies.community_battery.agents import scenario_for_day

    return scenario_for_day(scenario, day)


def scenario_for_days(scenario, first, days):
    from lec_cosim.studies.community_battery.agents import scenario_for_days

    return scenario_for_days(scenario, first, days)
