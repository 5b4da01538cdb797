"""``lec-cosim compose``: the compose services are the runner's federation, each in its own container.

No docker engine is needed. The structure tests map the generated files back to the host
(container folders to host folders, the broker's compose address to the scenario's) and find
exactly the runner file and configs that ``write_federation`` writes for the same scenario, so
the two launch paths cannot drift. The run test starts the services' commands on this machine
with every container address mapped to a loopback alias of its own (Linux routes all of
127.0.0.0/8 to ``lo``): the federation completes with ``lec-cosim run``'s KPIs, and each
process was seen listening on its own alias only, so the broker reached every core at the
address the core announced, as it must across containers. ``tests/test_containers.py`` runs
the same in real containers.
"""

import ipaddress
import json
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from harness import ROOT, SCENARIOS, SHARED_RUNS, cli_in_process, shared_run, write_scenario
from lec_cosim.compose import (
    BROKER_PORT,
    CONTAINER_BROKER,
    CONTAINER_FEDERATION,
    CONTAINER_INPUTS,
    CONTAINER_PYTHON,
    CONTAINER_RESULTS,
    CONTAINER_ROOT,
    DEFAULT_SUBNET,
    LOCAL_DOCKERFILE,
    NETWORK,
    generate_compose,
    write_compose,
)
from lec_cosim.container_image import RUNTIME_IMAGE
from lec_cosim.federation import broker_executable, write_federation
from lec_cosim.launch import run_federation
from lec_cosim.scenario import load_scenario

CLI = [sys.executable, "-m", "lec_cosim"]
DEFAULT_SCENARIO = SCENARIOS / "trondelag_arbitrage.yaml"
DEMO = ROOT / "broker_config" / "compose_demo"
ONE_OF_EACH_KIND = ["trondelag_arbitrage", "ieee_eu_lv_lem_plain", "ieee_eu_lv_three_lecs"]
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


def cli(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=120)


def read_compose(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def service_addresses(compose: dict) -> dict[str, str]:
    return {name: service["networks"][NETWORK]["ipv4_address"] for name, service in compose["services"].items()}


def to_host(text: str, folders: dict[str, Path], addresses: dict[str, str]) -> str:
    """The documented mapping back to the host: container folders to host folders, addresses to addresses.

    ``folders`` maps ``federation``, ``results`` and ``inputs`` to their host folders; the rest
    of ``/lec-cosim`` is the project itself.
    """
    for container, host in ((CONTAINER_FEDERATION, folders["federation"]), (CONTAINER_RESULTS, folders["results"]),
                            (CONTAINER_INPUTS, folders["inputs"]), (CONTAINER_ROOT, ROOT)):
        text = text.replace(str(container), str(host))
    return IPV4.sub(lambda m: addresses.get(m.group(0), m.group(0)), text)


def host_command(command: list[str], folders, addresses) -> list[str]:
    programs = {CONTAINER_PYTHON: sys.executable, CONTAINER_BROKER: broker_executable()}
    return [programs[command[0]], *(to_host(part, folders, addresses) for part in command[1:])]


def option(command: list[str], name: str) -> str:
    return next(part.split("=", 1)[1] for part in command if part.startswith(f"{name}="))


@pytest.mark.parametrize("kind", ONE_OF_EACH_KIND)
def test_the_services_are_the_runner_entries_of_the_same_scenario(tmp_path, kind):
    scenario = load_scenario(SCENARIOS / f"{kind}.yaml")
    out = tmp_path / "compose"
    compose_file = write_compose(scenario, out)
    runner_dir = tmp_path / "runner"
    runner = write_federation(scenario, runner_dir, port=BROKER_PORT, manifest=False)

    compose = read_compose(compose_file)
    services = compose["services"]
    entries = {entry["name"]: entry for entry in runner["federates"]}
    assert list(services) == list(entries) and list(services)[0] == "broker"

    # One private network with a fixed subnet; every service on it alone, at its own address.
    network = compose["networks"]
    assert list(network) == [NETWORK] and network[NETWORK]["internal"] is True
    subnet = ipaddress.IPv4Network(network[NETWORK]["ipam"]["config"][0]["subnet"])
    assert subnet == ipaddress.IPv4Network(DEFAULT_SUBNET) and subnet.is_private
    addresses = service_addresses(compose)
    assert all(list(service["networks"]) == [NETWORK] for service in services.values())
    assert len(set(addresses.values())) == len(services)
    assert all(ipaddress.IPv4Address(a) in subnet for a in addresses.values())
    assert network[NETWORK]["ipam"]["config"][0]["gateway"] not in addresses.values()

    # Each command is the runner's, modulo the mapping; the broker listens on its own address.
    folders = {"federation": runner_dir.resolve(), "results": runner_dir.resolve(), "inputs": tmp_path / "none"}
    back = {addresses["broker"]: scenario.broker.address}
    for name, service in services.items():
        assert host_command(service["command"], folders, back) == shlex.split(entries[name]["exec"]), name
        assert service["restart"] == "no" and service["image"] == "lec-cosim"
        if name == "broker":
            assert "depends_on" not in service and "volumes" not in service
        else:
            assert service["depends_on"] == ["broker"]
            assert service["volumes"] == [f"./federation:{CONTAINER_FEDERATION}:ro", f"./results:{CONTAINER_RESULTS}"]
    broker = services["broker"]["command"]
    assert broker[0] == CONTAINER_BROKER
    assert option(broker, "--local_interface") == f"tcp://{addresses['broker']}"
    assert option(broker, "--port") == str(BROKER_PORT)

    # Configs: the runner's, plus each core listening on (and announcing) its own service address.
    assert sorted(p.stem for p in (out / "federation" / "configs").iterdir()) == sorted(list(services)[1:])
    for name in list(services)[1:]:
        ours = json.loads((out / "federation" / "configs" / f"{name}.json").read_text())
        theirs = json.loads((runner_dir / "configs" / f"{name}.json").read_text())
        init = ours["coreInitString"].split()
        assert option(init, "--broker_address") == f"tcp://{addresses['broker']}:{BROKER_PORT}"
        assert init[-1] == f"--local_interface=tcp://{addresses[name]}"
        assert ours["lec_cosim"]["output_dir"] == str(CONTAINER_RESULTS)
        ours["coreInitString"] = " ".join(init[:-1])
        assert json.loads(to_host(json.dumps(ours), folders, back)) == theirs, name
    ours = (out / "federation" / "scenario.json").read_text()
    assert json.loads(to_host(ours, folders, back)) == json.loads((runner_dir / "scenario.json").read_text())

    # The image: built from the project root with the generated Dockerfile.
    build = services["broker"]["build"]
    assert all(service["build"] == build for service in services.values())
    assert (compose_file.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == out / "Dockerfile"
    dockerfile = (out / "Dockerfile").read_text().splitlines()
    for line in ("FROM python:3.11-slim", f"WORKDIR {CONTAINER_ROOT}", "RUN pip install -e .", "COPY data data",
                 "COPY scenarios scenarios", f" && {CONTAINER_BROKER} --version"):
        assert line in dockerfile
    local = LOCAL_DOCKERFILE.splitlines()  # what lec_cosim.container_image builds instead, without a registry
    for line in (f"FROM {RUNTIME_IMAGE}", f"WORKDIR {CONTAINER_ROOT}", f"ENV PYTHONPATH={CONTAINER_ROOT}",
                 "COPY lec_cosim lec_cosim", "COPY federates federates", "COPY data data", "COPY scenarios scenarios"):
        assert line in local
    assert not [line for line in local if line.startswith("RUN")]  # nothing runs in that build: no network
    # the build context is the project root: its .dockerignore sends what the Dockerfiles copy, no more
    copied = {part for text in (dockerfile, local) for line in text if line.startswith("COPY")
              for part in line.split()[1:-1]}
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and sorted(line[1:] for line in ignore if line.startswith("!")) == sorted(copied)

    # No host path anywhere: every absolute path is the image's (the compose file's host paths are
    # relative to it).
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for absolute in re.findall(r'(?:^|[\s"\[=])(/[^\s",\]:]+)', text):
                assert absolute.startswith((str(CONTAINER_ROOT), "/opt/helics/")), (path, absolute)
    assert not (out / "inputs").exists()  # shipped data: in the image


def test_the_scenarios_broker_key_is_kept_and_its_address_becomes_the_broker_services(tmp_path):
    scenario = load_scenario(write_scenario(tmp_path, "trondelag_arbitrage",
                                            {"broker.address": "192.168.1.5", "broker.key": "k3y"}))
    out = tmp_path / "compose"
    compose = read_compose(write_compose(scenario, out))
    broker = service_addresses(compose)["broker"]
    assert "--brokerkey=k3y" in compose["services"]["broker"]["command"]
    for config in (out / "federation" / "configs").glob("*.json"):
        init = json.loads(config.read_text())["coreInitString"].split()
        assert "--brokerkey=k3y" in init and f"--broker_address=tcp://{broker}:{BROKER_PORT}" in init
    assert json.loads((out / "federation" / "scenario.json").read_text())["broker"] == {"address": broker,
                                                                                        "key": "k3y"}
    generated = [out / "docker-compose.yml", *(out / "federation").rglob("*.json")]
    assert not [p for p in generated if "192.168.1.5" in p.read_text()]  # the copied scenario file keeps it


def test_the_top_level_compose_file_is_the_generated_demo_of_the_default_scenario():
    files = generate_compose(load_scenario(DEFAULT_SCENARIO), DEMO, compose_file=ROOT / "docker-compose.yml")
    # results/ (empty but for a .gitignore) is the project's ignored results/ pattern: not shipped
    files = {path: content for path, content in files.items() if not path.is_relative_to(DEMO / "results")}
    assert ROOT / "docker-compose.yml" in files
    for path, content in files.items():
        assert isinstance(content, str), path  # shipped data only: nothing to copy
        assert path.read_text() == content, (
            f"{path} is stale; regenerate: lec-cosim compose {DEFAULT_SCENARIO.relative_to(ROOT)} "
            f"-o {DEMO.relative_to(ROOT)} --compose-file docker-compose.yml --force")
    shipped = {p for p in DEMO.rglob("*") if p.is_file() and not p.is_relative_to(DEMO / "results")}
    assert shipped == {p for p in files if p.is_relative_to(DEMO)}
    services = read_compose(ROOT / "docker-compose.yml")["services"]
    assert services["recorder"]["volumes"] == [f"./broker_config/compose_demo/federation:{CONTAINER_FEDERATION}:ro",
                                               f"./broker_config/compose_demo/results:{CONTAINER_RESULTS}"]


def test_bad_input_is_one_line_and_leaves_nothing_half_written(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_SCENARIO.read_text().replace("efficiency: 0.95", "efficiency: 1.5")
                   .replace("../data", str(ROOT / "data")))
    out = tmp_path / "compose"

    def refused(result, *phrases):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert all(phrase in lines[0] for phrase in phrases), lines[0]

    # the first as the process a user runs, the others through the CLI's main here (a process costs its imports)
    refused(cli("compose", bad, "-o", out), str(bad), "battery.efficiency")
    for args, phrases in [(("compose", DEFAULT_SCENARIO, "-o", out, "--subnet", "10.9.0.0/30"),
                           ("subnet", "the federation needs 6")),
                          (("compose", DEFAULT_SCENARIO, "-o", out, "--subnet", "8.8.8.0/24"),
                           ("not a private network",)),
                          (("compose", DEFAULT_SCENARIO, "-o", ROOT), ("holds the lec-cosim project",))]:
        refused(cli_in_process(capsys, *args), *phrases)
    assert sorted(tmp_path.iterdir()) == [bad]  # nor DIR, nor DIR.partial

    assert cli_in_process(capsys, "compose", DEFAULT_SCENARIO, "-o", out).returncode == 0
    written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "results" / "summary.json").write_text("{}")
    refused(cli_in_process(capsys, "compose", DEFAULT_SCENARIO, "-o", out), str(out), "--force")
    assert (out / "results" / "summary.json").exists()

    # --force replaces the whole folder, results too, with the same bytes as before: no
    # timestamps, no free-port draw.
    result = cli_in_process(capsys, "compose", DEFAULT_SCENARIO, "-o", out, "--force")
    assert result.returncode == 0, result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "compose"]

    elsewhere = tmp_path / "docker-compose.yml"
    elsewhere.write_text("services: {}\n")
    refused(cli("compose", DEFAULT_SCENARIO, "-o", tmp_path / "other", "--compose-file", elsewhere),
            str(elsewhere), "--force")
    assert elsewhere.read_text() == "services: {}\n" and not (tmp_path / "other").exists()


class ListeningSockets(threading.Thread):
    """Polls which (address, port) each process of a run listens on, until stopped.

    A process is told by its command line: ``marks`` maps a service name to a text only its
    command line holds.
    """

    def __init__(self, marks: dict[str, str]):
        super().__init__(daemon=True)
        self.marks = marks
        self.seen: dict[str, set[tuple[str, int]]] = {name: set() for name in marks}
        self.stop = threading.Event()

    @staticmethod
    def _listening() -> dict[str, tuple[str, int]]:
        """Socket inode -> (address, port) of every IPv4 TCP socket listening in this network namespace."""
        found = {}
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                address, port = fields[1].split(":")
                found[fields[9]] = (str(ipaddress.IPv4Address(bytes.fromhex(address)[::-1])), int(port, 16))
        return found

    def _processes(self) -> dict[str, int]:
        pids = {}
        for pid in Path("/proc").iterdir():
            if pid.name.isdigit():
                try:
                    command = (pid / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                pids.update({name: int(pid.name) for name, mark in self.marks.items() if mark in command})
        return pids

    def run(self) -> None:
        while not self.stop.is_set():
            listening = self._listening()
            for name, pid in self._processes().items():
                try:
                    links = [link.readlink().name for link in Path(f"/proc/{pid}/fd").iterdir()]
                except OSError:
                    continue
                inodes = {link[len("socket:["):-1] for link in links if link.startswith("socket:[")}
                self.seen[name] |= {listening[inode] for inode in inodes if inode in listening}
            time.sleep(0.02)


def kpis_match(ours: dict, theirs: dict) -> bool:
    return ours.keys() == theirs.keys() and all(
        abs(a - b) <= 1e-9 if isinstance(a, float) and isinstance(b, float) else a == b
        for a, b in ((ours[k], theirs[k]) for k in ours))


def test_the_services_run_the_federation_each_on_its_own_address(tmp_path, tmp_path_factory):
    # A user's scenario outside the project, with one data file of its own: copied into inputs/.
    prices = tmp_path / "my_prices.csv"
    shutil.copyfile(ROOT / "data" / "prices" / "NO1_dayahead_2019_hourly_EUR_per_MWh.csv", prices)
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"market.price_file": str(prices)})
    # the same scenario run directly: the shipped day's run other test files read too (its prices the same file)
    assert SHARED_RUNS["trondelag_arbitrage"] == ("trondelag_arbitrage", {}, [])
    direct_scenario, direct = shared_run(tmp_path_factory, "trondelag_arbitrage")
    assert Path(load_scenario(direct_scenario).market.price_file).read_bytes() == prices.read_bytes()
    out = tmp_path / "compose"
    result = cli("compose", scenario, "-o", out)
    assert result.returncode == 0, result.stderr
    assert (out / "inputs" / "market.price_file" / prices.name).read_bytes() == prices.read_bytes()
    assert (out / "inputs" / "source_file" / scenario.name).read_bytes() == scenario.read_bytes()
    compose = read_compose(out / "docker-compose.yml")
    assert f"./inputs:{CONTAINER_INPUTS}:ro" in compose["services"]["market"]["volumes"]

    # Every container address becomes a loopback alias of its own, in a /24 of 127/8 drawn at
    # random (so that runs of this test at the same time keep apart) and never 127.0.0.1:
    # a process listening there instead of on its alias would be seen below.
    aliases = ipaddress.IPv4Network(f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}.0/24")
    subnet = ipaddress.IPv4Network(compose["networks"][NETWORK]["ipam"]["config"][0]["subnet"])
    assert subnet.prefixlen == aliases.prefixlen
    addresses = service_addresses(compose)
    alias = {a: str(aliases[int(ipaddress.IPv4Address(a)) - int(subnet.network_address)]) for a in addresses.values()}
    folders = {"federation": out / "federation", "results": out / "results", "inputs": out / "inputs"}
    for path in [out / "federation" / "scenario.json", *(out / "federation" / "configs").glob("*.json")]:
        path.write_text(to_host(path.read_text(), folders, alias))
    host = tmp_path / "host"
    host.mkdir()
    entries = [{"name": name, "directory": ".", "exec": shlex.join(host_command(service["command"], folders, alias))}
               for name, service in compose["services"].items()]
    (host / "runner.json").write_text(json.dumps({"name": "compose_on_loopback", "federates": entries}))

    marks = {name: f"{out / 'federation' / 'configs' / name}.json\0" for name in addresses if name != "broker"}
    marks["broker"] = f"--local_interface=tcp://{alias[addresses['broker']]}\0"
    sockets = ListeningSockets(marks)
    sockets.start()
    try:
        run_federation(host, timeout_s=180)
    finally:
        sockets.stop.set()
        sockets.join()
    ours = json.loads((out / "results" / "summary.json").read_text())["kpis"]
    theirs = json.loads((direct / "summary.json").read_text())["kpis"]
    assert kpis_match(ours, theirs), (ours, theirs)
    broker_alias = alias[addresses["broker"]]
    assert (broker_alias, BROKER_PORT) in sockets.seen["broker"]
    for name, seen in sockets.seen.items():
        assert seen and {address for address, _ in seen} == {alias[addresses[name]]}, (name, seen)


def test_a_feeder_sources_model_is_copied_for_the_containers(tmp_path):
    """A user's OpenDSS model outside the project: its folder goes into the project's inputs (the master file and
    what it redirects to) and the containers' scenario reads it there; no host path is left in what they read."""
    model = tmp_path / "my model"
    shutil.copytree(ROOT / "data" / "examples" / "own_feeder", model)
    path = write_scenario(tmp_path, "own_feeder_lem", {"feeder.source": f"opendss: {model / 'Master.dss'}"})
    out = tmp_path / "compose"
    write_compose(load_scenario(path), out)
    scenario = json.loads((out / "federation" / "scenario.json").read_text())
    assert scenario["feeder"]["source"] == f"opendss: {CONTAINER_INPUTS}/feeder.source/my model/Master.dss"
    copied = out / "inputs" / "feeder.source" / "my model"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in model.iterdir())
    assert (copied / "Master.dss").read_bytes() == (model / "Master.dss").read_bytes()
    assert str(tmp_path) not in (out / "federation" / "scenario.json").read_text()
