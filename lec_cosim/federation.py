"""Generate the HELICS federation from a scenario: federate configs and the helics-cli runner.

Time is in seconds from the scenario start. Within one step the data flow is ordered by small
phase offsets, so that each federate is granted its time only after its inputs for that instant
were published (HELICS delivers a value stamped t to federates granted a time later than t):

    market (+0 ms) -> LEC_EMS (+1 ms) -> households (+2 ms) -> DSO (+3 ms) -> recorder (+4 ms)

Every federate is ``uninterruptible`` (granted exactly the times it requests), requests its real
last step (never MAXTIME), and sets ``terminate_on_error`` so that one failure ends them all.

A run has one broker, or with ``sub_brokers=k`` a root broker and k sub-brokers between it and
the federates (dealt to them in turn); ``broker_config/README.md`` shows how to spread such a
hierarchy over hosts.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lec_cosim.manifest import write_manifest
from lec_cosim.scenario import BrokerConfig, Scenario, is_multi_lec

PHASE_OFFSET_S = {"market": 0.0, "lec_ems": 0.001, "households": 0.002, "dso": 0.003, "recorder": 0.004}
GRANT_TIMEOUT_S = 30.0
FEDERATE_MODULES = {
    "market": "federates.market",
    "lec_ems": "federates.lec_ems",
    "households": "federates.household",
    "dso": "federates.dso",
    "recorder": "federates.recorder",
}


@dataclass(frozen=True)
class Signal:
    """A published value: HELICS key, type and unit."""

    key: str
    type: str = "double"
    unit: str | None = None

    def publication(self) -> dict:
        pub = {"key": self.key, "type": self.type, "global": True}
        if self.unit:
            pub["unit"] = self.unit
        return pub

    def subscription(self) -> dict:
        sub = {"key": self.key, "type": self.type}
        if self.unit:
            sub["unit"] = self.unit
        return sub


def signals(scenario: Scenario) -> dict[str, list[Signal]]:
    """Publications of each federate; the interface of the federation."""
    lec = scenario.lec_name
    return {
        "market": [
            Signal("market/day_ahead_price_eur_per_mwh", "vector"),
            Signal("market/day_ahead_export_price_eur_per_mwh", "vector"),
            Signal("market/price_eur_per_mwh"),
            Signal("market/export_price_eur_per_mwh"),
        ],
        "lec_ems": [
            Signal(f"{lec}/ems/battery_setpoint_mw", unit="MW"),
            Signal(f"{lec}/ems/planned_soc_mwh", unit="MWh"),
        ],
        "households": [
            Signal(f"{lec}/households/p_mw", unit="MW"),
            Signal(f"{lec}/households/q_mvar", unit="MVAR"),
            Signal(f"{lec}/pv/p_mw", unit="MW"),
            Signal(f"{lec}/battery/p_mw", unit="MW"),
            Signal(f"{lec}/battery/soc_mwh", unit="MWh"),
        ],
        "dso": [
            Signal(f"{lec}/pcc/p_mw", unit="MW"),
            Signal(f"{lec}/pcc/q_mvar", unit="MVAR"),
            Signal(f"{lec}/pcc/vm_pu"),
            Signal(f"{lec}/lv_busbar/vm_pu"),
            Signal(f"{lec}/transformer/loading_percent"),
            Signal(f"{lec}/grid/losses_mw", unit="MW"),
            Signal(f"{lec}/grid/losses_mvar", unit="MVAR"),
            Signal(f"{lec}/grid/vm_min_pu"),
            Signal(f"{lec}/grid/vm_max_pu"),
            Signal(f"{lec}/grid/bus_violations", "integer"),
            Signal(f"{lec}/grid/line_overloads", "integer"),
        ],
        "recorder": [],
    }


def subscriptions(scenario: Scenario) -> dict[str, list[Signal]]:
    pubs = signals(scenario)
    market_now = [s for s in pubs["market"] if s.type != "vector"]
    return {
        "market": [],
        "lec_ems": [s for s in pubs["market"] if s.type == "vector"],
        "households": [pubs["lec_ems"][0]],
        "dso": pubs["households"][:4],
        "recorder": market_now + pubs["lec_ems"] + pubs["households"] + pubs["dso"],
    }


def periods_s(scenario: Scenario) -> dict[str, int]:
    return {
        "market": scenario.market_step_s,
        "lec_ems": scenario.ems_step_s,
        "households": scenario.grid_step_s,
        "dso": scenario.grid_step_s,
        "recorder": scenario.grid_step_s,
    }


PORT_FIRST, PORT_END = 20000, 32768
"""Broker ports are drawn below Linux's ephemeral range (32768 and up), where outgoing connections of other
runs would otherwise take them between our check and the broker's bind."""
PORT_UNIT = 16
"""Ports are reserved in aligned units of this many: a block of ``span`` ports takes whole units."""
PORT_LOCKS = Path("/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir()) / "lec-cosim-ports"
"""One lock file per unit; a unit is reserved while a process holds an exclusive ``flock`` on its file. A
fixed place (not ``$TMPDIR``, which differs between sessions), open to every user (sticky, like /tmp)."""


class NoFreePorts(RuntimeError):
    """No block of free broker ports could be reserved (all taken, or the lock folder is not usable)."""
_RESERVED: dict[int, list] = {}
"""This process's reservations: first port -> the open, locked unit files."""


def free_broker_port(host: str = "127.0.0.1", span: int = 16) -> int:
    """Reserve a block of ``span`` free ports for a broker (and its cores); returns the first.

    The ZMQ broker listens on its port and the next; it hands the ports above to the federates'
    cores. A block is free when nothing listens on its ports, and it is *reserved*: every unit of
    :data:`PORT_UNIT` ports it covers is locked (``flock``) by this process until
    :func:`release_broker_ports` (``run_federation`` calls it at the end of a run) or until the process
    ends, when the kernel drops the locks. Two runs, in this process or in any other process of this
    machine, therefore never draw overlapping blocks, however close together they start: random
    draws alone collided (five draws from the ~800 blocks collided in 1.4 % of tries, and parallel runs
    could both find a block free before either broker had bound it).
    """
    try:
        PORT_LOCKS.mkdir(exist_ok=True)
        if PORT_LOCKS.stat().st_uid == os.getuid():
            PORT_LOCKS.chmod(0o1777)  # the umask cut mkdir's mode: every user creates lock files here
    except OSError as exc:
        raise NoFreePorts(f"cannot use the port lock folder {PORT_LOCKS}: {exc.strerror or exc}") from None
    units = -(-int(span) // PORT_UNIT)
    n_units = (PORT_END - PORT_FIRST) // PORT_UNIT
    if not 1 <= units <= n_units:
        raise ValueError(f"a block of {span} ports does not fit in {PORT_FIRST}-{PORT_END - 1}")
    rng = random.SystemRandom()
    for _ in range(4 * n_units):
        first = rng.randrange(0, n_units - units + 1)
        held = _lock_units(range(first, first + units))
        if held is None:
            continue
        port = PORT_FIRST + first * PORT_UNIT
        if _bindable(host, range(port, port + span)):
            _RESERVED[port] = held
            return port
        for handle in held:
            handle.close()
    raise NoFreePorts(f"no free block of {span} broker ports in {PORT_FIRST}-{PORT_END - 1} (or no lock file in "
                      f"{PORT_LOCKS} could be taken)")


def release_broker_ports(port: int) -> None:
    """Give back a block reserved by :func:`free_broker_port` (nothing if this process holds none at ``port``)."""
    for handle in _RESERVED.pop(port, []):
        handle.close()


def _lock_units(units) -> list | None:
    """Lock every unit's file (none already locked by anyone, this process included), or None."""
    import fcntl

    held = []
    for unit in units:
        path = PORT_LOCKS / f"{unit}.lock"
        try:  # read-only: flock needs no write access, so users share the lock files
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:  # not ours to take
            break
        try:
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, 0o666)  # the umask cut the mode
        except OSError:
            pass
        handle = os.fdopen(fd)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            break
        held.append(handle)
    else:
        return held
    for handle in held:
        handle.close()
    return None


def _bindable(host: str, ports) -> bool:
    """Whether nothing (of ours or another program's) listens on any of ``ports``."""
    sockets = []
    try:
        for p in ports:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind((host, p))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def federate_config(scenario: Scenario, name: str, port: int, run_dir: Path) -> dict:
    """HELICS JSON config of one federate; our own settings live under ``lec_cosim``."""
    if is_multi_lec(scenario):
        from lec_cosim import multi_lec_federation

        federate = next((f for f in multi_lec_federation.plan(scenario) if f.name == name), None)
        if federate is None:
            raise KeyError(f"no federate {name!r} in scenario {scenario.name!r}")
        return multi_lec_federation.federate_config(scenario, federate, port, Path(run_dir))
    if scenario.framework == "local_market":
        from lec_cosim import lem_federation

        federate = next((f for f in lem_federation.plan(scenario) if f.name == name), None)
        if federate is None:
            raise KeyError(f"no federate {name!r} in scenario {scenario.name!r}")
        return lem_federation.federate_config(scenario, federate, port, Path(run_dir))
    return {
        "name": name,
        "coreType": "zmq",
        "coreInitString": core_init_string(scenario.broker, port),
        "period": periods_s(scenario)[name],
        "offset": PHASE_OFFSET_S[name],
        "uninterruptible": True,
        "terminate_on_error": True,
        "grant_timeout": GRANT_TIMEOUT_S,
        "ignore_time_mismatch_warnings": True,  # we request 100 ns before each slot on purpose
        "publications": [s.publication() for s in signals(scenario)[name]],
        "subscriptions": [s.subscription() for s in subscriptions(scenario)[name]],
        "lec_cosim": {
            "scenario": str(run_dir / "scenario.json"),
            "output_dir": str(run_dir),
        },
    }


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
    return [f"--local_interface=tcp://{broker.address}", *_key(broker)]


def core_init_string(broker: BrokerConfig, port: int) -> str:
    """A federate core's ``coreInitString``: the broker at ``broker.address:port``, with its key."""
    return " ".join(["--federates=1", f"--broker_address=tcp://{broker.address}:{port}", *_key(broker)])


def broker_command(port: int, n_federates: int, broker: BrokerConfig = LOOPBACK) -> list[str]:
    return [broker_executable(), f"-f{n_federates}", "--coretype=zmq", f"--port={port}", *_listening(broker),
            "--loglevel=warning", "--name=lec_cosim_broker"]


def root_broker_command(port: int, n_federates: int, sub_brokers: int, broker: BrokerConfig = LOOPBACK) -> list[str]:
    """The root of a hierarchy: enters initialisation once all ``sub_brokers`` have joined.

    ``-f`` still counts every federate of the federation (through the sub-brokers), so a
    federate pointed at the root by mistake cannot stand in for a missing sub-broker.
    ``--globaltime``: with HELICS 3.6.1's default (distributed) time coordination, a message
    sent at H + 4 ms to a federate of another sub-broker that serves several federates was
    not there when that federate was granted H + 5 ms (the three-LEC platform's answers; one
    sub-broker per federate, or values only, were fine). The root's global clock delivers it,
    but never grants an interruptible federate waiting for an update: ours are uninterruptible.
    """
    return broker_command(port, n_federates, broker) + [f"--subbrokers={sub_brokers}", "--globaltime"]


def sub_broker_command(index: int, port: int, root_port: int, n_federates: int,
                       broker: BrokerConfig = LOOPBACK) -> list[str]:
    """Sub-broker ``index`` (from 1) on ``port``, serving ``n_federates`` under the root at ``root_port``.

    The root address carries its port, so HELICS keeps ``--port`` as the sub-broker's own port
    (without it, ``--port`` would be taken as the root's).
    """
    return [broker_executable(), f"-f{n_federates}", "--coretype=zmq", f"--port={port}",
            f"--broker_address=tcp://{broker.address}:{root_port}", *_listening(broker), "--loglevel=warning",
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


def federate_command(name: str, config: Path) -> list[str]:
    """Command line of a federate program; the module is named in its config (or by its name)."""
    module = json.loads(Path(config).read_text()).get("lec_cosim", {}).get("module") or FEDERATE_MODULES[name]
    return [sys.executable, "-m", module, "--config", str(config)]


def federate_names(scenario) -> list[str]:
    if is_multi_lec(scenario):
        from lec_cosim import multi_lec_federation

        return [f.name for f in multi_lec_federation.plan(scenario)]
    if scenario.framework == "local_market":
        from lec_cosim import lem_federation

        return [f.name for f in lem_federation.plan(scenario)]
    return list(FEDERATE_MODULES)


def write_federation(scenario: Scenario, run_dir: Path, port: int | None = None, sub_brokers: int = 0,
                     manifest: bool = True) -> dict:
    """Write ``scenario.json``, ``configs/*.json`` and ``runner.json`` into ``run_dir``.

    Parameters
    ----------
    port
        The broker's port; in a hierarchy the root's, with the sub-brokers' ports right above
        it. None: a free block of ports.
    sub_brokers
        0: one broker for all federates. k >= 1: a root broker (runner entry ``broker``) and
        k sub-brokers (``sub_broker_1`` ...), the federates dealt to them in turn and each
        federate's core pointed at its sub-broker. At most one per federate.
    manifest
        Write ``manifest.json`` (hashes every data file; off where no run follows).

    Returns the runner description (as written to ``runner.json``).
    """
    run_dir = Path(run_dir).resolve()
    names = federate_names(scenario)
    groups = deal_federates(names, sub_brokers) if sub_brokers else []
    spans = [broker_port_span(len(names) if not groups else 0)] + [broker_port_span(len(g)) for g in groups]
    port = free_broker_port(scenario.broker.address, span=sum(spans)) if port is None else port
    (run_dir / "configs").mkdir(parents=True, exist_ok=True)
    (run_dir / "scenario.json").write_text(scenario.to_json())
    if groups:
        entries = [{"name": "broker", "directory": ".", "host": "localhost",
                    "exec": shlex.join(root_broker_command(port, len(names), len(groups), scenario.broker))}]
        federate_port = {}
        sub_port = port + spans[0]
        for index, (group, span) in enumerate(zip(groups, spans[1:]), start=1):
            entries.append({"name": f"sub_broker_{index}", "directory": ".", "host": "localhost",
                            "exec": shlex.join(sub_broker_command(index, sub_port, port, len(group), scenario.broker))})
            federate_port.update({name: sub_port for name in group})
            sub_port += span
    else:
        entries = [{"name": "broker", "directory": ".", "host": "localhost",
                    "exec": shlex.join(broker_command(port, len(names), scenario.broker))}]
        federate_port = dict.fromkeys(names, port)
    for name in names:
        path = run_dir / "configs" / f"{name}.json"
        path.write_text(json.dumps(federate_config(scenario, name, federate_port[name], run_dir), indent=2))
        entries.append({"name": name, "directory": ".", "host": "localhost",
                        "exec": shlex.join(federate_command(name, path))})
    runner = {"name": scenario.name, "broker": False, "federates": entries}
    (run_dir / "runner.json").write_text(json.dumps(runner, indent=2))
    if manifest:
        write_manifest(run_dir, scenario)
    return runner


HELICS_RECORDER_OUTPUT = "helics_recorder.txt"


def helics_app(name: str) -> str:
    """A HELICS app binary of the helics wheel (``helics_recorder``, ``helics_player``), or from PATH."""
    return str(Path(broker_executable()).with_name(name))


def _app_connection(broker: BrokerConfig, port) -> list[str]:
    """Options that connect a stock HELICS app to the federation's broker."""
    return ["--coretype=zmq", f"--broker={broker.address}", f"--brokerport={port}", *_key(broker)]


def attach_helics_recorder(run_dir: Path, scenario, keys: list[str]) -> Path:
    """Add stock ``helics_recorder`` to a written federation, capturing the publications ``keys``.

    The recorder subscribes to the keys from a generated config (``helics_recorder.json``), joins
    the one broker (which then waits for one more federate) and writes every value it receives
    with its time to ``run_dir/helics_recorder.txt`` (HELICS's player format). ``keys == ["all"]``
    captures every publication. Raises ``ValueError`` for a key the federation does not publish.
    """
    from lec_cosim.interface import federation_interface, publication_types

    run_dir = Path(run_dir).resolve()
    published = publication_types(federation_interface(scenario))
    keys = list(published) if keys == ["all"] else keys
    unknown = [k for k in keys if k not in published]
    if unknown:
        raise ValueError(f"not published by this federation: {', '.join(unknown)} (see lec-cosim interface)")
    runner = json.loads((run_dir / "runner.json").read_text())
    brokers = [e for e in runner["federates"] if "broker" in e["name"]]
    if len(brokers) != 1:
        raise ValueError("helics_recorder joins a single broker (no --sub-brokers)")
    command = shlex.split(brokers[0]["exec"])
    count = next(i for i, part in enumerate(command) if part.startswith("-f"))
    command[count] = f"-f{int(command[count][2:]) + 1}"
    brokers[0]["exec"] = shlex.join(command)
    port = next(part.split("=", 1)[1] for part in command if part.startswith("--port="))
    config = run_dir / "configs" / "helics_recorder.json"
    # the subscriptions in a config file: the app's --tag option mangled the keys (HELICS 3.6.1)
    config.write_text(json.dumps({"subscriptions": [{"key": k, "type": published[k]} for k in keys]}, indent=2))
    runner["federates"].append({"name": "helics_recorder", "directory": ".", "host": "localhost", "exec": shlex.join([
        helics_app("helics_recorder"), "--name=helics_recorder", *_app_connection(scenario.broker, port),
        f"--stop={scenario.end_s:g}s", "-o", str(run_dir / HELICS_RECORDER_OUTPUT),
        str(config)])})
    (run_dir / "runner.json").write_text(json.dumps(runner, indent=2))
    return run_dir / HELICS_RECORDER_OUTPUT


def check_helics_player(scenario, federate: str, player_file: Path) -> None:
    """Raise ``ValueError`` unless ``player_file`` can stand in for ``federate`` (see below)."""
    from lec_cosim.interface import federation_interface

    interface = {fed["name"]: fed for fed in federation_interface(scenario)["federates"]}
    if federate not in interface:
        raise ValueError(f"no federate {federate!r} in this federation ({', '.join(interface)})")
    if interface[federate]["endpoints"] or interface[federate]["subscriptions"]:
        raise ValueError(f"{federate} exchanges messages or reads values: a player cannot stand in for it")
    played = {line.split()[1] for line in Path(player_file).read_text().splitlines()
              if line.strip() and not line.startswith("#") and len(line.split()) > 2}
    missing = [p["key"] for p in interface[federate]["publications"] if p["key"] not in played]
    if missing:
        raise ValueError(f"no values for {', '.join(missing)}")


def replace_with_helics_player(run_dir: Path, scenario, federate: str, player_file: Path) -> None:
    """Replace one federate of a written federation by stock ``helics_player`` playing ``player_file``.

    The file is in HELICS's player format (``time key type value``, what ``helics_recorder``
    writes): the player publishes every key at its time, so a recorded market (its prices) can
    stand in for the market federate. Only federates that publish values and exchange no messages
    can be replaced; every key the federate publishes must be in the file.
    """
    run_dir = Path(run_dir).resolve()
    player_file = Path(player_file).resolve()
    check_helics_player(scenario, federate, player_file)
    runner = json.loads((run_dir / "runner.json").read_text())
    port = next(part.split("=", 1)[1] for part in shlex.split(runner["federates"][0]["exec"])
                if part.startswith("--port="))
    if any(e["name"].startswith("sub_broker") for e in runner["federates"]):
        raise ValueError("helics_player joins a single broker (no --sub-brokers)")
    entry = next(e for e in runner["federates"] if e["name"] == federate)
    entry["name"] = f"{federate}_player"
    entry["exec"] = shlex.join([helics_app("helics_player"), f"--name={federate}_player",
                                *_app_connection(scenario.broker, port), f"--stop={scenario.end_s:g}s",
                                str(player_file)])
    (run_dir / "configs" / f"{federate}.json").unlink(missing_ok=True)
    (run_dir / "runner.json").write_text(json.dumps(runner, indent=2))
