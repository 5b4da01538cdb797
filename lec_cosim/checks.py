"""What is checked before a run starts, beyond the scenario's schema: its data (each study's ``check_data``),
the IEEE feeder's tables, its broker.

``lec-cosim validate``, ``lec-cosim run`` and :func:`lec_cosim.run` call these, so "valid" means a run
would start. Each raises :class:`~lec_cosim.scenario.ScenarioError` with one line: file, field, reason.
"""

from __future__ import annotations

from lec_cosim.scenario import ScenarioError


def check_feeder(scenario) -> None:
    from lec_cosim.models.ieee_eulv import read_feeder_tables

    if getattr(scenario.feeder, "source", None) is not None:  # read and checked with the scenario
        return
    try:
        read_feeder_tables(scenario.feeder.data_dir)
    except (ValueError, KeyError, OSError) as exc:  # FeederDataError, and what pandas says of a broken table
        raise ScenarioError(f"{scenario.source_file}: feeder.data_dir: {exc}") from None


def check_data(scenario, *, agents_played: bool = False) -> None:
    """Load every data series once, so that data errors surface before any process starts (what each
    study loads: ``lec_cosim.studies.<kind>.check_data``).

    A scenario that hands roles to an agent (``agents:``) runs only in a learning environment
    (:mod:`lec_cosim.env`, which passes ``agents_played``): nobody would decide for them in a normal run."""
    from lec_cosim.studies import study_of

    study_of(scenario).check_data(scenario)
    agents = getattr(scenario, "agents", None)
    if agents and not agents_played:
        raise ScenarioError(f"{scenario.source_file}: agents: {', '.join(agents)} are decided by an external agent: "
                            "play this scenario through lec_cosim.env (LecEnv, LecParallelEnv), or remove agents")


def check_broker(scenario, *, on_this_host: bool | None = None) -> None:
    """The scenario's broker, and its hosts (``broker.hosts``): each federate placed on one host, and, where the
    whole federation runs here (``on_this_host``; default: when it has no hosts), every address one of this host's
    (a compose project brings its own)."""
    import socket

    hosts = scenario.broker.hosts
    if hosts:
        from lec_cosim.federation import federate_names, host_federates

        try:
            host_federates(federate_names(scenario), hosts)
        except ValueError as exc:
            raise ScenarioError(f"{scenario.source_file}: {exc}") from None
    if on_this_host is False or (on_this_host is None and hosts):
        return
    for field, address in [("broker.address", scenario.broker.address),
                           *(("broker.hosts", host.address) for host in hosts)]:
        try:
            with socket.socket() as probe:
                probe.bind((address, 0))
        except OSError as exc:
            where = "; lec-cosim run starts every process here: write the hosts' parts with lec-cosim runner and " \
                    "start each with lec-cosim launch on its host" if hosts else "; the broker must listen on it"
            raise ScenarioError(f"{scenario.source_file}: {field}: {address!r} is not an address of this host "
                                f"({exc.strerror or exc}){where}") from None
