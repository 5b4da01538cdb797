"""The local electricity market: players on the IEEE European LV feeder trading in an hourly pool, the
CHP producers bidding with learnt strategies (Lezama et al.)."""

from __future__ import annotations

KIND = "local_market"
TITLE = "Local electricity market"
DESCRIPTION = ("Players on the IEEE European LV feeder trading in an hourly pool (Lezama et al.), Tables II and "
               "III. One column per run.")
OVERRIDES: tuple[str, ...] = ()
VALUE_PLAYERS: tuple[str, ...] = ()  # its market clears messages, it publishes no values a file could replace
ROW_HEADERS = 1
NO_FEEDER_MAP: str | None = None  # its DSO writes the feeder's extremes: the report draws the map
FIGURE_CAPTION = ("Top: LEM clearing price with the retail and feed-in tariffs (Fig. 3 analogue). Below, per run: "
                  "energy bought (up) and sold (down) on the grid and in the LEM, with PV, CHP output and load "
                  "(Fig. 4 analogue).")


def plan(scenario):
    from lec_cosim.studies.local_market.wiring import plan

    return plan(scenario)


def describe(scenario) -> str:
    return (f"local market, {scenario.horizon_h:g} h from {scenario.start.isoformat()}, LEM "
            f"{'on' if scenario.market.enabled else 'off'}, {scenario.market.tariff_scheme} tariff")


def done(kpis: dict, summary: dict) -> str:
    return (f"LEM volume {kpis['lem_volume_kwh']:.1f} kWh, community cost {kpis['total']['cost_eur']:.2f} EUR, "
            f"income {kpis['total']['income_eur']:.2f} EUR, losses {kpis['losses_kwh']:.2f} kWh, bus violations "
            f"{kpis['bus_violations']}, voltage {kpis['vm_min_pu']:.4f}-{kpis['vm_max_pu']:.4f} pu")


def recognise(summary: dict) -> bool:
    return summary.get("framework") == "local_market"


def compare(runs, paper=None) -> str:
    from lec_cosim.studies.local_market.report import lem_compare_tables

    return lem_compare_tables(runs, paper=paper)


def plot(runs, output) -> None:
    from lec_cosim.studies.local_market.report import plot_lem_runs

    plot_lem_runs(runs, output)


def tables(runs, paper=None) -> list[tuple]:
    from lec_cosim.studies.local_market.report import (
        TABLE_II_ROWS,
        TABLE_III_ROWS,
        lem_compare_frames,
        lem_table_cells,
    )

    table_ii, table_iii = lem_compare_frames(list(runs), paper=paper)
    return [
        ("kpi-local-market-ii", "Table II analogue: costs, incomes and profits (from summary.json)",
         *lem_table_cells(table_ii, TABLE_II_ROWS)),
        ("kpi-local-market-iii", "Table III analogue: distribution network (from summary.json)",
         *lem_table_cells(table_iii, TABLE_III_ROWS)),
    ]


def run_labels(summaries: list[dict], runs) -> list[str]:
    from lec_cosim.studies.local_market.report import run_labels

    return run_labels(summaries)


def check_training(scenario, source) -> None:
    """``lec-cosim train-bidders`` learns the CHP producers' bids: only with the LEM on; its data checked
    (not the learnt bids: they are what it is about to write)."""
    from lec_cosim.scenario import ScenarioError

    if not scenario.market.enabled:
        raise ScenarioError(f"{source}: market.enabled: train-bidders needs the LEM on")
    _check_market_data(scenario, bids=False)


def check_data(scenario) -> None:
    from lec_cosim.checks import check_feeder

    check_feeder(scenario)
    community = _check_market_data(scenario)
    if scenario.feeder.source is not None:
        _check_source_grid(scenario, community)


def _check_source_grid(scenario, community) -> None:
    """The DSO's grid on a ``feeder.source`` built and solved once with the community's first step, as the DSO
    will: what the grid model refuses (no rating, transformers, zero-sequence data) is one line before any
    process starts, not a federate's crash."""
    from lec_cosim.models.feeder_source import feeder_of
    from lec_cosim.models.lem_grid import LemGrid
    from lec_cosim.scenario import ScenarioError

    g = scenario.grid
    try:
        grid = LemGrid(feeder_of(scenario), community.table, vm_min_pu=g.vm_min_pu, vm_max_pu=g.vm_max_pu,
                       max_loading_percent=g.max_loading_percent, va_max_deviation_degree=g.va_max_deviation_degree,
                       violation_model=g.dn_impact_counts, step_h=scenario.grid_step_s / 3600.0, solver=g.solver,
                       source_strength=getattr(scenario.feeder, "source_strength", 1.0))
        kinds = community.table["kind"].to_numpy()
        grid.set_injections(load_kw=community.load_kw[kinds != "chp", 0],
                            load_kvar=community.load_kvar[kinds != "chp", 0],
                            pv_kw=community.pv_kw[kinds == "prosumer", 0])
        grid.solve()
    except Exception as exc:  # any refusal or failure of the grid model: the DSO would fail the same way
        raise ScenarioError(f"{scenario.source_file}: feeder.source: the grid model cannot take it: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None


def run_name(scenario) -> str:
    """Its results folder's default name (``results/<run_name>``)."""
    return scenario.name


def _check_market_data(scenario, *, bids: bool = True):
    """The participants' data, and with ``bids`` the learnt bids of the ACO strategy; returns the community."""
    from lec_cosim.models.lem_community import (
        BidsFileError,
        community_from_scenario,
        read_learned_bids,
    )
    from lec_cosim.scenario import ScenarioError

    try:
        community = community_from_scenario(scenario)
        if bids and scenario.market.enabled and scenario.market.chp_strategy == "aco":
            read_learned_bids(scenario.market.learned_bids_file, community, scenario.market.tariff_scheme)
    except BidsFileError as exc:
        raise ScenarioError(f"{scenario.source_file}: market.learned_bids_file: {exc}") from None
    except (ValueError, KeyError, OSError) as exc:
        raise ScenarioError(f"{scenario.source_file}: data: {exc}") from None
    unknown = [name for name in scenario.agents if name not in community.names]
    if unknown:
        raise ScenarioError(f"{scenario.source_file}: agents: {', '.join(unknown)}: no player of this community")
    return community


def agent_roles(scenario, **options):
    """The roles of ``agents:`` as a learning environment sees them (:mod:`lec_cosim.env`). The local market's
    roles take no options (a learning environment's ``role_options``)."""
    from lec_cosim.studies.local_market.agents import LocalMarketRoles

    if options:
        raise ValueError(f"role_options: {', '.join(sorted(options))}: the local market's roles take no options")
    return LocalMarketRoles(scenario)


def scenario_for_day(scenario, day):
    """The scenario played from another day, with the same community (a learning environment's episode)."""
    from lec_cosim.studies.local_market.agents import scenario_for_day

    return scenario_for_day(scenario, day)


def scenario_for_days(scenario, first, days):
    """The scenario spanning ``days`` days' episodes from ``first`` (a long-lived learning environment's)."""
    from lec_cosim.studies.local_market.agents import scenario_for_days

    return scenario_for_days(scenario, first, days)
