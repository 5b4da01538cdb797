"""Session hooks of the test suite."""

import os
import sys

SLOWEST_FIRST = (
    # Test files in the order the test processes take them up, slowest first (summed test durations of
    # ``make test``, 2026-12-07, less what the in-process refusals saved); every other file follows in its usual
    # order. ``make test`` runs a file to a test process (pytest-xdist, --dist loadfile), each process taking the
    # next file as it nears the end of its last:
    # by default xdist hands out the files with the most tests first, which left the slowest files, a few tests
    # each, to the end, and one process working alone for the last minutes. Slowest first, the small files last
    # fill the gaps and both processes end together. The containers' test waits for the runtime image ``make test``
    # builds beside the tests (minutes when the dependencies changed), so it comes early, not last.
    "test_fault_injection.py", "test_containers.py", "test_sweep.py", "test_run_outcomes.py", "test_multi_host.py",
    "test_backend_kpis.py", "test_env_api.py", "test_end_to_end_mlec.py", "test_bad_inputs_properties.py",
    "test_forkserver.py", "test_parallel_runs.py", "test_end_to_end.py", "test_report_html.py", "test_env_p2p.py",
    "test_pgm_backend.py", "test_helics_tools.py", "test_feeder_sources.py", "test_feeder_copies.py",
    "test_bad_inputs.py", "test_env_ev.py", "test_reproducible.py", "test_cli.py", "test_broker_hierarchy.py",
    "test_ev_charging.py", "test_tutorial_own_feeder.py", "test_cli_lem.py", "test_long_run.py", "test_kubernetes.py",
    "test_end_to_end_mlec_forecasts.py", "test_federate_lem_dso.py", "test_api.py", "test_federate_mlec_ems.py",
    "test_community_battery_feeder.py", "test_long_horizon_mlec.py", "test_ieee_eulv.py", "test_import_graph.py",
    "test_compose.py", "test_household_limits.py", "test_feeder_lem.py", "test_federate_lem_market.py",
)


def pytest_configure(config):
    """Keep the order below under pytest-xdist (``--loadscope-reorder``, its default, sorts files by their number of
    tests)."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """The files of :data:`SLOWEST_FIRST` first, in its order; a file's tests, and the other files, as collected."""
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_unconfigure(config):
    """A test whose federate under test failed at start leaves its own HELICS federates waiting for it
    (``harness.STRANDED``): every HELICS call on them, and HELICS's own clean-up at exit, would block for
    ever. The test has failed and the summary is printed; end the process without that clean-up."""
    harness = sys.modules.get("harness")
    if harness is not None and harness.STRANDED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
