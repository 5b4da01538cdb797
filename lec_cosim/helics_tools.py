"""Stock HELICS apps in our federations: helics_recorder beside them, helics_player instead of a federate."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from lec_cosim.federation import _key, broker_executable
from lec_cosim.interface import federation_interface, publication_types
from lec_cosim.scenario import BrokerConfig

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
