"""What is checked before a run starts, beyond the scenario's schema: its data, its learnt bids, its broker.

``lec-cosim validate``, ``lec-cosim run`` and :func:`lec_cosim.run` call these, so "valid" means a run
would start. Each raises :class:`~lec_cosim.scenario.ScenarioError` with one line: file, field, reason.
"""

from __future__ import annotations

from lec_cosim.scenario import ScenarioError


def check_lem_data(scenario, *, bids: bool = True) -> None:
    from lec_cosim.models.lem_community import (
        BidsFileError,
        community_from_scenario,
        read_learned_bids,
    )

    try:
        community = community_from_scenario(scenario)
        if bids and scenario.market.enabled and scenario.market.chp_strategy == "aco":
            read_learned_bids(scenario.market.learned_bids_file, community, scenario.market.tariff_scheme)
    except BidsFileError as exc:
        raise ScenarioError(f"{scenario.source_file}: market.learned_bids_file: {exc}") from None
    except (ValueError, KeyError, OSError) as exc:
        raise ScenarioError(f"{scenario.source_file}: data: {exc}") from None


def check_feeder(scenario) -> None:
    from lec_cosim.models.ieee_eulv import read_feeder_tables

    try:
        read_feeder_tables(scenario.feeder.data_dir)
    except (ValueError, KeyError, OSError) as exc:  # FeederDataError, and what pandas says of a broken table
        raise ScenarioError(f"{scenario.source_file}: feeder.data_dir: {exc}") from None


def check_data(scenario) -> None:
    """Load every data series once, so that data errors surface before any process starts (what each
    study loads: ``lec_cosim.studies.<kind>.check_data``)."""
    from lec_cosim.studies import study_of

    study_of(scenario).check_data(scenario)


def check_three_lec_data(scenario) -> None:
    from lec_cosim.models.multi_lec_ems import members_from_scenario

    check_feeder(scenario)
    try:
        members_from_scenario(scenario)
    except (ValueError, KeyError, OSError) as exc:
        raise ScenarioError(f"{scenario.source_file}: data: {exc}") from None


def check_community_data(scenario) -> None:
    from lec_cosim.models.household import HouseholdFleet
    from lec_cosim.models.prices import PriceFeed
    from lec_cosim.models.timeseries import DataError

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


def check_broker(scenario) -> None:
    """The scenario's broker address is one of this host's (a compose project brings its own)."""
    import socket

    address = scenario.broker.address
    try:
        with socket.socket() as probe:
            probe.bind((address, 0))
    except OSError as exc:
        raise ScenarioError(f"{scenario.source_file}: broker.address: {address!r} is not an address of this host "
                            f"({exc.strerror or exc}); the broker must listen on it") from None
