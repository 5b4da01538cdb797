"""The compose project of a scenario, run in real containers: the same results as ``lec-cosim run``.

A real docker engine (``dockerd`` from Debian's docker.io, started by :mod:`lec_cosim.container_image` if none
answers) builds the image from the runtime image (made once per machine and kept, with the base tarball
and the wheelhouse, as the cache: ``make test`` builds it beside the tests, this test waiting for it) and runs
the broker and every federate
of ``scenarios/trondelag_arbitrage.yaml`` each in its own container, on an internal network of a subnet
of their own. Needs root, as CI has. The test removes the containers, the network and the image it built.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import subprocess
import uuid
from importlib import metadata

import pytest
from harness import SCENARIOS, SHARED_RUNS, shared_run
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lec_cosim import container_image as ci
from lec_cosim.compose import DEFAULT_SUBNET, RESULTS_FOLDER, write_compose
from lec_cosim.scenario import load_scenario

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a docker engine and its images need root (CI runs as root)")

SCENARIO = SCENARIOS / "trondelag_arbitrage.yaml"
WALL_CLOCK = ("wall_time_s",)
"""The one entry of ``summary.json`` that is not a result: how long the run took."""


def route_network(line: str) -> ipaddress.IPv4Network:
    """The destination of a line of ``/proc/net/route`` (hexadecimal, little-endian) as a network."""
    fields = line.split()
    destination, mask = (ipaddress.IPv4Address(bytes.fromhex(field)[::-1]) for field in (fields[1], fields[7]))
    return ipaddress.IPv4Network(f"{destination}/{mask}")


def docker_lines(*arguments: str) -> list[str]:
    return ci._run([ci.DOCKER, *arguments]).stdout.split()


def test_the_containers_give_the_cli_runs_tables_and_kpis(tmp_path, tmp_path_factory):
    ci.ensure_runtime()
    subnet = ci.free_subnet(avoid=(DEFAULT_SUBNET,))  # the demo's stays free for make compose-demo
    out = tmp_path / "compose"
    compose_file = write_compose(load_scenario(SCENARIO), out, subnet=subnet)
    run_id = uuid.uuid4().hex[:10]
    tag, project = f"lec-cosim-test-{run_id}", f"lec_cosim_test_{run_id}"
    network = ci.compose_network(project)
    dangling = set(docker_lines("images", "--quiet", "--no-trunc", "--filter", "dangling=true"))
    seen = {}

    def inspect(project):
        seen["network"] = json.loads(ci._run([ci.DOCKER, "network", "inspect", network]).stdout)[0]
        ids = docker_lines("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project}")
        seen["containers"] = json.loads(ci._run([ci.DOCKER, "inspect", *ids]).stdout)
        # what a container on this network can route to (the federation's containers exit too soon to ask them)
        seen["routes"] = ci._run([ci.DOCKER, "run", "--rm", "--network", network, tag, "cat", "/proc/net/route"]).stdout
        seen["bridge"] = bridge = ci.bridge_interface(network)
        seen["rules"] = [ci._run(["iptables", "-C", *rule], check=False).returncode == 0 for rule in (
            ["INPUT", "-i", bridge, "-j", "DROP"],  # the host takes nothing from the network
            ["DOCKER-ISOLATION-STAGE-1", "!", "-d", subnet, "-i", bridge, "-j", "DROP"])]  # nor passes it on

    try:
        assert ci.build_image(compose_file, tag)
        exit_codes = ci.run_compose(compose_file, project=project, image=tag, on_up=inspect, timeout_s=600)
    finally:
        ci.remove_image(tag)

    services = ["broker", "market", "lec_ems", "households", "dso", "recorder"]
    assert exit_codes == {name: 0 for name in services}
    # One internal network (no route out of it) of the subnet drawn above, and every container on it alone,
    # at the address the compose file gave it, running the image built here.
    assert seen["network"]["Internal"] is True
    assert [c["Subnet"] for c in seen["network"]["IPAM"]["Config"]] == [subnet]
    # A container's routes: the subnet, and (engine 20.10) a default route to the network's bridge on the host,
    # which drops whatever comes in on it for itself or for elsewhere.
    routes = {route_network(line): line.split()[2] for line in seen["routes"].splitlines()[1:]}
    gateway = seen["network"]["IPAM"]["Config"][0]["Gateway"]
    assert set(routes) <= {ipaddress.IPv4Network(subnet), ipaddress.IPv4Network("0.0.0.0/0")}
    assert all(str(ipaddress.IPv4Address(bytes.fromhex(via)[::-1])) in ("0.0.0.0", gateway) for via in routes.values())
    assert seen["rules"] == [True, True]
    compose = ci._compose_document(compose_file)
    assert sorted(c["Config"]["Labels"]["com.docker.compose.service"] for c in seen["containers"]) == sorted(services)
    for container in seen["containers"]:
        name = container["Config"]["Labels"]["com.docker.compose.service"]
        assert container["Config"]["Image"] == tag
        assert list(container["NetworkSettings"]["Networks"]) == [network]
        assert (container["NetworkSettings"]["Networks"][network]["IPAMConfig"]["IPv4Address"]
                == compose["services"][name]["networks"]["federation"]["ipv4_address"])

    # Gone afterwards: the containers, the network, the image, and no layer of it left dangling.
    assert not docker_lines("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project}")
    assert network not in docker_lines("network", "ls", "--format", "{{.Name}}")
    assert ci._run(["iptables", "-C", "INPUT", "-i", seen["bridge"], "-j", "DROP"], check=False).returncode != 0
    assert ci.image_id(tag) is None
    assert set(docker_lines("images", "--quiet", "--no-trunc", "--filter", "dangling=true")) <= dangling

    # The results: every table byte for byte the CLI run's, and the KPIs equal (to 1e-9 relative).
    assert SHARED_RUNS["trondelag_arbitrage"] == ("trondelag_arbitrage", {}, [])
    _, direct = shared_run(tmp_path_factory, "trondelag_arbitrage")
    ours = out / RESULTS_FOLDER
    tables = sorted(path.name for path in ours.glob("*.csv"))
    assert tables == sorted(path.name for path in direct.glob("*.csv")) and "signals.csv" in tables
    for table in tables:
        assert (ours / table).read_bytes() == (direct / table).read_bytes(), table
    summary, theirs = (json.loads((folder / "summary.json").read_text()) for folder in (ours, direct))
    kpis, their_kpis = summary.pop("kpis"), theirs.pop("kpis")
    assert kpis.keys() == their_kpis.keys() and kpis["import_mwh"] > 0
    for name, value in kpis.items():
        if isinstance(value, float):
            assert math.isclose(value, their_kpis[name], rel_tol=1e-9), name
        else:
            assert value == their_kpis[name], name
    for entry in WALL_CLOCK:
        summary.pop(entry), theirs.pop(entry)
    assert summary == theirs


def test_the_runtime_images_of_the_last_two_dependency_sets_are_kept(monkeypatch):
    """Two environments of one machine with other dependency versions each keep their runtime image (they rebuilt
    each other's in turn, a minute or more each time); a third set's image goes, the newest other one stays."""
    listed = ("2026-12-07 15:40:02 +0000 UTC\tlatest\n2026-12-07 15:40:02 +0000 UTC\tbbbb\n"
              "2026-12-07 15:08:57 +0000 UTC\taaaa\n2026-12-06 09:12:00 +0000 UTC\tcccc\n"
              "2026-12-05 09:12:00 +0000 UTC\t<none>\n")
    commands = []

    def run(command, **_):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, listed if command[1:3] == ["image", "ls"] else "", "")

    monkeypatch.setattr(ci, "_run", run)
    ci._remove_old_runtimes(ci.runtime_tag("aaaa"))  # in use: aaaa; bbbb the newest other one
    assert [c for c in commands if c[1:3] == ["image", "rm"]] == [[ci.DOCKER, "image", "rm", ci.runtime_tag("cccc")]]
    assert ci.RUNTIMES_KEPT == 2


def test_the_runtime_image_holds_exactly_the_installed_versions_of_the_run_time_dependencies():
    pinned = ci.runtime_requirements()
    versions = dict(line.split("==") for line in pinned)
    # lec-cosim's own requirements, in the versions the host computes with (lec-cosim run's results)
    for requirement in metadata.requires("lec-cosim"):
        name = canonicalize_name(Requirement(requirement).name)
        if "extra ==" not in requirement:
            assert versions[name] == metadata.version(name), name
    # what only the host uses stays out: helics-cli's web server and database, pip, the test and docs extras
    assert not {"flask", "sqlalchemy", "requests", "pip", "pytest", "hypothesis", "mkdocs"} & set(versions)
    assert {"helics", "simbench", "pandapower", "highspy", "pyomo", "scikit-learn"} <= set(versions)

    image = ci.ensure_runtime()
    listed = ci._run([ci.DOCKER, "run", "--rm", "--network", "none", image, "python", "-c",
                      "from importlib import metadata; "
                      "print('\\n'.join(f'{d.metadata[\"Name\"]}=={d.version}' for d in metadata.distributions()))"])
    installed = {canonicalize_name(name): version
                 for name, version in (line.split("==") for line in listed.stdout.split())}
    assert installed == versions
