"""Generate the HELICS federation from a scenario: federate configs and the helics-cli runner.

Each study gives its federates as plans (:mod:`lec_cosim.wiring`); this module turns them into the
HELICS config of each federate and ``runner.json``, with its broker or broker hierarchy.

A run has one broker, or with ``sub_brokers=k`` a root broker and k sub-brokers between it and
the federates (dealt to them in turn). With ``broker.hosts`` in the scenario the hierarchy spans
hosts: the root broker on ``broker.address``, one sub-broker on each host, listening on that
host's address, and its federates beside it; ``hosts/ADDRESS.json`` is each host's part of
``runner.json`` (``lec-cosim launch`` starts it there; ``broker_config/README.md``).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

from lec_cosim.manifest import write_manifest
from lec_cosim.ports import NoFreePorts, free_broker_port, release_broker_ports  # noqa: F401
from lec_cosim.scenario import BrokerConfig, Scenario
from lec_cosim.schema.base import is_loopback
from lec_cosim.wiring import GRANT_TIMEOUT_S, FederatePlan, Signal  # noqa: F401
from lec_cosim.wiring import federate_config as _config


def plan(scenario) -> list[FederatePlan]:
    """The federates of the scenario's federation, in start order (its study's plan), each held to its kind's
    declaration (:func:`lec_cosim.components.check_plan`: settings, ports, types): what the configs, the runner
    and the interface listing are written from."""
    from lec_cosim.components import check_plan
    from lec_cosim.studies import study_of

    plans = study_of(scenario).plan(scenario)
    for federate in plans:
        check_plan(federate)
    return plans


def federate_config(scenario, name: str, port: int, run_dir: Path) -> dict:
    """HELICS JSON config of one federate of the scenario's federation (its broker at ``port``)."""
    federate = next((f for f in plan(scenario) if f.name == name), None)
    if federate is None:
        raise KeyError(f"no federate {name!r} in scenario {scenario.name!r}")
    return _config(federate, core_init_string(scenario.broker, port), Path(run_dir))


def broker_executable() -> str:
    """The real ``helics_broker`` binary shipped in the helics wheel.

    The ``helics_broker`` on PATH is a Python shim that starts this binary as a child; killing
    the shim would leave the broker running, so we start the binary itself.
    """
    import helics

    shipped = Path(helics.__file__).parent / "install" / "bin" / "helics_broker"
    if shipped.is_file():
        return str(shipped)
    return shutil.which("helics_broker", path=str(Path(sys.executable).parent)) or "helics_broker"


LOOPBACK = BrokerConfig()


def _key(broker: BrokerConfig) -> list[str]:
    """The broker key option every broker, core and stock app of the federation carries (if any)."""
    return [f"--brokerkey={broker.key}"] if broker.key else []


def _listening(broker: BrokerConfig) -> list[str]:
    """The options every broker of a federation shares: where it listens, and its key."""
    tick = [f"--tick={round(broker.heartbeat_s * 1000)}ms"] if broker.heartbeat_s is not None else []
    return [f"--local_interface=tcp://{broker.address}", *_key(broker), *tick]


def core_init_string(broker: BrokerConfig, port: int) -> str:
    """A federate core's ``coreInitString``: the broker at ``broker.address:port``, with its key."""
    return " ".join(["--federates=1", f"--broker_address=tcp://{broker.address}:{port}", *_key(broker)])


def broker_command(port: int, n_federates: int, broker: BrokerConfig = LOOPBACK,
                   loglevel: str = "warning") -> list[str]:
    return [broker_executable(), f"-f{n_federates}", "--coretype=zmq", f"--port={port}", *_listening(broker),
            f"--loglevel={loglevel}", "--name=lec_cosim_broker"]


ROOT_LOGLEVEL_OVER_HOSTS = "connections"
"""The root broker's log level when the federation spans hosts: it logs each broker that registers with it, so
the root's host, which may run no federate, can tell a sub-broker that never joined (:mod:`lec_cosim.launch`)."""


def root_broker_command(port: int, n_federates: int, sub_brokers: int, broker: BrokerConfig = LOOPBACK,
                        loglevel: str = "warning") -> list[str]:
    """The root of a hierarchy: enters initialisation once all ``sub_brokers`` have joined.

    ``-f`` still counts every federate of the federation (through the sub-brokers), so a
    federate pointed at the root by mistake cannot stand in for a missing sub-broker.
    ``--globaltime``: with HELICS 3.6.1's default (distributed) time coordination, a message
    sent at H + 4 ms to a federate of another sub-broker that serves several federates was
    not there when that federate was granted H + 5 ms (the three-LEC platform's answers; one
    sub-broker per federate, or values only, were fine). The root's global clock delivers it,
    but never grants an interruptible federate waiting for an update: ours are uninterruptible.
    Known limit: HELICS 3.6.1's global coordinator stops granting after some 32,700 grants (its sequence
    counter overflows, GMLC-TDC/HELICS#2795; seen in a learning environment, see lec_cosim.inproc), so a long
    run through sub-brokers (a year) would stall there (not tried yet); a day is far below that.
    """
    return broker_command(port, n_federates, broker, loglevel) + [f"--subbrokers={sub_brokers}", "--globaltime"]


def sub_broker_command(index: int, port: int, root_port: int, n_federates: int,
                       broker: BrokerConfig = LOOPBACK, host: str | None = None) -> list[str]:
    """Sub-broker ``index`` (from 1) on ``port``, serving ``n_federates`` under the root at ``root_port``.

    The root address carries its port, so HELICS keeps ``--port`` as the sub-broker's own port
    (without it, ``--port`` would be taken as the root's). ``host``: the address the sub-broker listens
    on and announces to the root (default: the root's, one host); the root connects back to it there.
    """
    own = broker if host is None else broker.at(host)
    return [broker_executable(), f"-f{n_federates}", "--coretype=zmq", f"--port={port}",
            f"--broker_address=tcp://{broker.address}:{root_port}", *_listening(own), "--loglevel=warning",
            f"--name=lec_cosim_sub_broker_{index}"]


def broker_port_span(n_federates: int) -> int:
    """Ports a ZMQ broker takes from its own up: its own pair, a margin, and a pair per federate core."""
    return 8 + 2 * n_federates


def deal_federates(names: list[str], sub_brokers: int) -> list[list[str]]:
    """The federates of each sub-broker, dealt in turn (federate i to sub-broker i mod k).

    Raises ``ValueError`` unless every sub-broker gets a federate at least.
    """
    if not 1 <= sub_brokers <= len(names):
        raise ValueError(f"sub_brokers must be from 0 to {len(names)} (the federation's federates), "
                         f"not {sub_brokers}")
    return [names[i::sub_brokers] for i in range(sub_brokers)]


HOSTS_PORT = 23500
"""The root broker's port when the federation spans hosts (the sub-brokers' follow it): a free port can be
drawn on this host only, and a fixed one is the port to open in the hosts' firewalls."""
HOSTS_FOLDER = "hosts"
"""Where ``write_federation`` puts each host's part of ``runner.json`` (``ADDRESS.json``)."""


def host_federates(names: list[str], hosts) -> list[list[str]]:
    """The federates of each host of ``broker.hosts``, in runner order: as the scenario places them, or dealt in turn.

    Raises
    ------
    ValueError
        A placed federate the federation does not have, a federate placed on no host, a host without
        federates, or more hosts than federates.
    """
    if hosts[0].federates is None:
        if len(hosts) > len(names):
            raise ValueError(f"broker.hosts: {len(hosts)} hosts for {len(names)} federates; each host needs one")
        return deal_federates(names, len(hosts))
    placed = {name for host in hosts for name in host.federates}
    unknown = sorted(placed - set(names))
    if unknown:
        raise ValueError(f"broker.hosts: no federate {', '.join(unknown)} in this federation (it has "
                         f"{', '.join(names)})")
    missing = [name for name in names if name not in placed]
    if missing:
        raise ValueError(f"broker.hosts: {', '.join(missing)} placed on no host")
    empty = [host.address for host in hosts if not host.federates]
    if empty:
        raise ValueError(f"broker.hosts: {', '.join(empty)} has no federate (a sub-broker serves one at least)")
    return [[name for name in names if name in host.federates] for host in hosts]


def federate_command(name: str, config: Path) -> list[str]:
    """Command line of the federate program ``name``; its module is named in its config."""
    module = json.loads(Path(config).read_text())["lec_cosim"]["module"]
    return [sys.executable, "-m", module, "--config", str(config)]


def federate_names(scenario) -> list[str]:
    return [f.name for f in plan(scenario)]


def write_federation(scenario: Scenario, run_dir: Path, port: int | None = None, sub_brokers: int = 0,
                     manifest: bool = True, inproc_broker: str | None = None, transform=None,
                     shared_core: bool = False) -> dict:
    """Write ``scenario.json``, ``configs/*.json`` and ``runner.json`` into ``run_dir``.

    Parameters
    ----------
    port
        The broker's port; in a hierarchy the root's, with the sub-brokers' ports right above
        it. None: a free block of ports.
    sub_brokers
        0: one broker for all federates. k >= 1: a root broker (runner entry ``broker``) and
        k sub-brokers (``sub_broker_1`` ...), the federates dealt to them in turn and each
        federate's core pointed at its sub-broker. At most one per federate. With ``broker.hosts``
        in the scenario, one sub-broker per host (0 or their number): each listens on its host's
        address, its federates run there (runner entries' ``host``), and ``hosts/ADDRESS.json``
        holds each host's entries; the ports start at :data:`HOSTS_PORT` unless every address is
        loopback or ``port`` is given.
    manifest
        Write ``manifest.json`` (hashes every data file; off where no run follows).
    inproc_broker
        The name of an in-process broker (:mod:`lec_cosim.inproc`): every federate's core is HELICS's
        ``inproc`` core of that broker, no port is reserved and no ``runner.json`` is written (the
        federation lives in one process; helics-cli cannot start it).
    transform
        With ``inproc_broker``: a function of the plans returning those to write (a long-lived learning
        environment's episode control, :func:`lec_cosim.wiring.with_episode_control`).
    shared_core
        With ``inproc_broker``: all federates on one ``inproc`` core instead of a core each. A time grant
        then passes through one core's thread instead of a federate's core, the broker and the others'
        cores: faster where federates act in turn (a local-market env step: 5.7 instead of 7.5 ms), slower
        where many act at the same time (the three-LEC pool day: 2 x the time; measured 2026-12-06).

    Returns the runner description (as written to ``runner.json``; with ``inproc_broker`` only returned).
    """
    run_dir = Path(run_dir).resolve()
    federates = plan(scenario)
    if inproc_broker is not None:
        federates = transform(federates) if transform is not None else federates
        (run_dir / "configs").mkdir(parents=True, exist_ok=True)
        (run_dir / "scenario.json").write_text(scenario.to_json())
        for federate in federates:
            # HELICS's own console lines would land unattributed in the caller's output; each federate's error
            # reaches its log through run_federate
            config = _config(federate, f"--federates={len(federates) if shared_core else 1} --broker={inproc_broker} "
                             "--consoleloglevel=no_print", run_dir, core_type="inproc")
            # a core named for this federation: without a name HELICS may hand a federate a core of this process
            # that is still there (the last episode's, on its way out), whose broker is gone (start-up hangs)
            core = "core" if shared_core else federate.name
            config.update(coreName=f"{inproc_broker}_{core}", loglevel="no_print")
            (run_dir / "configs" / f"{federate.name}.json").write_text(json.dumps(config, indent=2))
        if manifest:
            write_manifest(run_dir, scenario)
        return {"name": scenario.name, "broker": inproc_broker,
                "federates": [{"name": f.name, "config": str(run_dir / "configs" / f"{f.name}.json")}
                              for f in federates]}
    names = [f.name for f in federates]
    hosts = scenario.broker.hosts
    if hosts and sub_brokers not in (0, len(hosts)):
        raise ValueError(f"sub_brokers: broker.hosts gives one sub-broker per host ({len(hosts)}), not {sub_brokers}")
    groups = host_federates(names, hosts) if hosts else deal_federates(names, sub_brokers) if sub_brokers else []
    group_hosts = [host.address for host in hosts] if hosts else [None] * len(groups)
    spans = [broker_port_span(len(names) if not groups else 0)] + [broker_port_span(len(g)) for g in groups]
    if port is None:
        on_this_host = all(is_loopback(a) is True for a in [scenario.broker.address, *(h.address for h in hosts)])
        port = HOSTS_PORT if hosts and not on_this_host else free_broker_port(scenario.broker.address, span=sum(spans))
    (run_dir / "configs").mkdir(parents=True, exist_ok=True)
    (run_dir / "scenario.json").write_text(scenario.to_json())
    root_host = scenario.broker.address if hosts else "localhost"
    federate_host = dict.fromkeys(names, root_host)
    if groups:
        entries = [{"name": "broker", "directory": ".", "host": root_host,
                    "exec": shlex.join(root_broker_command(port, len(names), len(groups), scenario.broker,
                                                           ROOT_LOGLEVEL_OVER_HOSTS if hosts else "warning"))}]
        federate_port, federate_broker = {}, {}
        sub_port = port + spans[0]
        for index, (group, span, host) in enumerate(zip(groups, spans[1:], group_hosts), start=1):
            entries.append({"name": f"sub_broker_{index}", "directory": ".", "host": host or root_host,
                            "exec": shlex.join(sub_broker_command(index, sub_port, port, len(group), scenario.broker,
                                                                  host))})
            # a federate reaches its sub-broker at the address the sub-broker listens on (its own host's)
            own = scenario.broker if host is None else scenario.broker.at(host)
            federate_port.update({name: sub_port for name in group})
            federate_broker.update(dict.fromkeys(group, own))
            federate_host.update(dict.fromkeys(group, host or root_host))
            sub_port += span
    else:
        entries = [{"name": "broker", "directory": ".", "host": root_host,
                    "exec": shlex.join(broker_command(port, len(names), scenario.broker))}]
        federate_port = dict.fromkeys(names, port)
        federate_broker = dict.fromkeys(names, scenario.broker)
    for federate in federates:
        path = run_dir / "configs" / f"{federate.name}.json"
        config = _config(federate, core_init_string(federate_broker[federate.name], federate_port[federate.name]),
                         run_dir)
        path.write_text(json.dumps(config, indent=2))
        entries.append({"name": federate.name, "directory": ".", "host": federate_host[federate.name],
                        "exec": shlex.join([sys.executable, "-m", federate.module, "--config", str(path)])})
    runner = {"name": scenario.name, "broker": False, "federates": entries}
    (run_dir / "runner.json").write_text(json.dumps(runner, indent=2))
    if hosts:
        # each host's part, a runner file of its own: helics run --path (or lec-cosim launch) starts it there
        shutil.rmtree(run_dir / HOSTS_FOLDER, ignore_errors=True)  # another federation's parts, written here before
        (run_dir / HOSTS_FOLDER).mkdir()
        for address in dict.fromkeys(entry["host"] for entry in entries):
            part = {"name": f"{scenario.name} on {address}", "broker": False,
                    "federates": [entry for entry in entries if entry["host"] == address]}
            (run_dir / HOSTS_FOLDER / f"{address}.json").write_text(json.dumps(part, indent=2))
    if manifest:
        write_manifest(run_dir, scenario)
    return runner
