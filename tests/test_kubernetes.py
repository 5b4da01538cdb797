"""``lec-cosim compose --kubernetes``: the compose project's federation as Kubernetes manifests, a Job per process.

No cluster is needed, nor used: none was available. The structure tests read the manifests as a cluster would
(every document of every file, ``yaml.safe_load_all``) and find the runner's federation in them: a Job per runner
entry running the compose service's command, the compose project's federation files byte for byte in ConfigMaps,
every federate's core on its pod's address and pointed at the broker's Service, names Kubernetes accepts, no host
path, the same bytes from every generation. The run test plays the pods on this machine: each pod's address a
loopback alias of its own (Linux routes all of 127.0.0.0/8 to ``lo``), the Service's name the broker pod's
alias, the ConfigMaps' files written where the pods mount them; each federate's init container, then its
container's command, with ``$(POD_IP)`` expanded as Kubernetes expands it. The federates' configs keep the
compose project's addresses (10.235.0.x, on no interface here), so the federation completes only through the
``--local-interface`` and ``--broker-address`` on their command lines: it gives ``lec-cosim run``'s KPIs, and
every process listened on its own pod's address only.
"""

import base64
import ipaddress
import json
import random
import re
import shlex
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from harness import ROOT, SCENARIOS, shared_run, write_scenario
from test_compose import (
    CLI,
    DEFAULT_SCENARIO,
    ONE_OF_EACH_KIND,
    ListeningSockets,
    host_command,
    kpis_match,
    to_host,
)

from federates.common import checked_core_options, with_core_options
from lec_cosim.compose import (
    BROKER_PORT,
    CONTAINER_FEDERATION,
    CONTAINER_INPUTS,
    CONTAINER_RESULTS,
    CONTAINER_ROOT,
    IMAGE,
    write_compose,
)
from lec_cosim.federation import write_federation
from lec_cosim.kubernetes import (
    BROKER_WAIT_S,
    CONFIGMAP_BYTES,
    FOLDER,
    WAIT_FOR_BROKER,
    manifests,
    name_prefix,
)
from lec_cosim.launch import run_federation
from lec_cosim.scenario import load_scenario

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # a Service's name
PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # IANA_SVC_NAME: at most 15, a letter, no "--"
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
CONFIGMAP_KEY = re.compile(r"[-._A-Za-z0-9]+")
POD_IP = "$(POD_IP)"


def read_manifests(out: Path) -> list[dict]:
    """Every document of every manifest in ``out/kubernetes``, in ``kubectl apply -f``'s order (by file name)."""
    files = sorted((out / FOLDER).iterdir())
    assert [p.name for p in files] == ["1-federation.yaml", "2-broker.yaml", "3-federates.yaml"]
    return [document for path in files for document in yaml.safe_load_all(path.read_text())]


def of_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def container(job: dict) -> dict:
    (only,) = pod(job)["containers"]
    return only


def command(job: dict) -> list[str]:
    return [*container(job)["command"], *container(job).get("args", [])]


def file_content(config_map: dict, key: str) -> bytes:
    if key in config_map.get("data", {}):
        return config_map["data"][key].encode()
    return base64.b64decode(config_map["binaryData"][key])


def mounted_files(documents: list[dict], job: dict) -> dict[str, bytes]:
    """Path in the container -> content of every ConfigMap file a Job's pod mounts."""
    config_maps = of_kind(documents, "ConfigMap")
    volumes = {v["name"]: v for v in pod(job).get("volumes", [])}
    found = {}
    for mount in container(job).get("volumeMounts", []):
        volume = volumes[mount["name"]]
        sources = [s["configMap"] for s in volume["projected"]["sources"]] if "projected" in volume else \
            [volume["configMap"]] if "configMap" in volume else []
        for source in sources:
            for item in source["items"]:
                found[f"{mount['mountPath']}/{item['path']}"] = file_content(config_maps[source["name"]], item["key"])
    return found


def walk(node, path=()):
    """Every (path, key, value) of a parsed document's mappings."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, i))


@pytest.mark.parametrize("kind", ONE_OF_EACH_KIND)
def test_every_runner_entry_is_one_job_running_its_compose_services_command(tmp_path, kind):
    scenario = load_scenario(SCENARIOS / f"{kind}.yaml")
    out = tmp_path / "project"
    write_compose(scenario, out, kubernetes=True)
    documents = read_manifests(out)
    runner = write_federation(scenario, tmp_path / "runner", port=BROKER_PORT, manifest=False)
    entries = [entry["name"] for entry in runner["federates"]]
    services = yaml.safe_load((out / "docker-compose.yml").read_text())["services"]

    assert Counter(d["kind"] for d in documents) == {"ConfigMap": len(entries), "PersistentVolumeClaim": 1,
                                                    "Service": 1, "Job": len(entries)}  # scenario.json + configs
    jobs = of_kind(documents, "Job")
    components = [job["metadata"]["labels"]["app.kubernetes.io/component"] for job in jobs.values()]
    assert components == entries  # exactly one Job per runner entry, in runner order
    for job, entry in zip(jobs.values(), entries):
        assert job["spec"]["template"]["metadata"]["labels"] == job["metadata"]["labels"]
        assert job["spec"]["backoffLimit"] == 0 and pod(job)["restartPolicy"] == "Never"
        assert pod(job)["enableServiceLinks"] is False
        for each in [*pod(job).get("initContainers", []), container(job)]:
            assert each["image"] == IMAGE and each["imagePullPolicy"] == "IfNotPresent"
        # the Downward API's pod address, the one variable the arguments use
        assert container(job)["env"] == [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        assert all(re.findall(r"\$\(([^)]*)\)", part) in ([], ["POD_IP"]) for part in command(job))
        compose = services[entry]["command"]
        if entry == "broker":
            assert command(job) == [part if not part.startswith("--local_interface=") else
                                    f"--local_interface=tcp://{POD_IP}" for part in compose]
            assert "volumes" not in pod(job) and "initContainers" not in pod(job)
        else:
            assert command(job)[:-4] == compose
            assert command(job)[-4:-2] == ["--local-interface", f"tcp://{POD_IP}"]

    # The broker's Service: the broker's pod alone, its port and the next (ZMQ), under a DNS-1035 name.
    (service,) = of_kind(documents, "Service").values()
    name = service["metadata"]["name"]
    assert DNS_1035_LABEL.fullmatch(name)
    broker_job = jobs[name]
    selected = [job for job in jobs.values()
                if service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()]
    assert selected == [broker_job]
    assert [p["port"] for p in service["spec"]["ports"]] == [BROKER_PORT, BROKER_PORT + 1]
    assert f"--port={BROKER_PORT}" in command(broker_job)
    for job in list(jobs.values())[1:]:
        assert command(job)[-2:] == ["--broker-address", f"tcp://{name}:{BROKER_PORT}"]
        (wait,) = pod(job)["initContainers"]
        assert wait["command"] == ["python", "-c", WAIT_FOR_BROKER, name, str(BROKER_PORT), str(BROKER_WAIT_S)]

    # The ConfigMaps' files are the compose project's federation files, byte for byte, where compose mounts them;
    # the claim is where the federates write.
    federation = {f"{CONTAINER_FEDERATION}/{p.relative_to(out / 'federation').as_posix()}": p.read_bytes()
                  for p in (out / "federation").rglob("*") if p.is_file()}
    (claim,) = of_kind(documents, "PersistentVolumeClaim").values()
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for job in list(jobs.values())[1:]:
        assert mounted_files(documents, job) == federation
        mounts = {m["mountPath"]: m for m in container(job)["volumeMounts"]}
        assert mounts[str(CONTAINER_FEDERATION)]["readOnly"] is True
        (results,) = [v for v in pod(job)["volumes"] if v["name"] == mounts[str(CONTAINER_RESULTS)]["name"]]
        assert results["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]

    # Names Kubernetes accepts; labels on everything.
    for document in documents:
        metadata = document["metadata"]
        assert DNS_LABEL.fullmatch(metadata["name"]) and len(metadata["name"]) <= 63, metadata["name"]
        assert "namespace" not in metadata
        assert metadata["labels"]["app.kubernetes.io/instance"] == name.removesuffix("-broker")
        assert all(LABEL_VALUE.fullmatch(v) and len(v) <= 63 for v in metadata["labels"].values()), metadata
    for job in jobs.values():
        for each in [*pod(job).get("initContainers", []), container(job), *pod(job).get("volumes", [])]:
            assert DNS_LABEL.fullmatch(each["name"]) and len(each["name"]) <= 63, each["name"]
    for _, key, value in walk(documents):
        if key == "ports":
            for port in value:
                assert PORT_NAME.fullmatch(port["name"]) and len(port["name"]) <= 15 and "--" not in port["name"]
                assert re.search("[a-z]", port["name"])
        if key in ("data", "binaryData"):
            assert all(CONFIGMAP_KEY.fullmatch(k) for k in value)

    # No host path anywhere: no hostPath volume, and every absolute path is the image's.
    assert not [path for path, key, _ in walk(documents) if key == "hostPath"]
    for path in (out / FOLDER).iterdir():
        text = path.read_text()
        assert str(tmp_path) not in text and str(ROOT) not in text
        for absolute in re.findall(r'(?:^|[\s"\[=])(/[^\s",\]:]+)', text, flags=re.MULTILINE):
            assert absolute.startswith((str(CONTAINER_ROOT), "/opt/helics/")), (path, absolute)


def test_the_cli_writes_the_same_bytes_every_time_and_refuses_a_federation_over_hosts(tmp_path):
    """Nothing depends on time, on the output folder or on a free-port draw; hosts are for the machines a
    federation over hosts names, which Kubernetes does not let a user pick: one line, exit 2, nothing written."""
    refused = tmp_path / "over_hosts"
    runs = [subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for args in (("compose", DEFAULT_SCENARIO, "-o", tmp_path / "cli", "--kubernetes"),
                         ("compose", DEFAULT_SCENARIO, "-o", refused, "--kubernetes", "--hosts", "127.0.0.2"))]
    (out, err), (_, refusal) = [run.communicate(timeout=120) for run in runs]
    assert runs[0].returncode == 0, err
    assert f"kubectl apply --server-side -f {tmp_path / 'cli' / FOLDER}/" in out
    assert runs[1].returncode == 2 and len(refusal.strip().splitlines()) == 1, refusal
    assert refusal.startswith(f"error: {DEFAULT_SCENARIO}: --kubernetes: a federation over hosts"), refusal
    assert not refused.exists()

    write_compose(load_scenario(DEFAULT_SCENARIO), tmp_path / "api", kubernetes=True)
    write_compose(load_scenario(DEFAULT_SCENARIO), tmp_path / "api", kubernetes=True, force=True)
    written = [{p.name: p.read_bytes() for p in (tmp_path / folder / FOLDER).iterdir()} for folder in ("cli", "api")]
    assert written[0] == written[1] and len(written[0]) == 3


def test_data_the_image_lacks_is_in_a_configmap_mounted_where_compose_mounts_it(tmp_path):
    """A user's scenario outside the project and a price file of their own: copied into a ConfigMap, byte for byte,
    at the paths of the compose project's inputs/."""
    prices = tmp_path / "my prices.csv"
    prices.write_bytes((ROOT / "data" / "prices" / "NO1_dayahead_2019_hourly_EUR_per_MWh.csv").read_bytes())
    scenario = write_scenario(tmp_path, "trondelag_arbitrage", {"market.price_file": str(prices)})
    out = tmp_path / "project"
    write_compose(load_scenario(scenario), out, kubernetes=True)
    documents = read_manifests(out)
    inputs = {f"{CONTAINER_INPUTS}/{p.relative_to(out / 'inputs').as_posix()}": p.read_bytes()
              for p in (out / "inputs").rglob("*") if p.is_file()}
    assert len(inputs) == 2  # the scenario file and the prices
    for job in list(of_kind(documents, "Job").values())[1:]:
        mounted = mounted_files(documents, job)
        assert {path: content for path, content in mounted.items() if path.startswith(f"{CONTAINER_INPUTS}/")} == inputs


def test_names_are_cut_to_labels_and_a_configmap_holds_at_most_a_mebibyte():
    long = "a_scenario_whose_name_goes_on_and_on_well_past_what_a_dns_label_may_hold"
    prefixes = {name_prefix(long + tail, len("configs-participants-1")) for tail in ("_1", "_2")}
    assert len(prefixes) == 2 and all(len(p) + 1 + len("configs-participants-1") <= 63 for p in prefixes)
    assert name_prefix("2019 day", 10) == "lec-cosim-2019-day" and name_prefix("Trondelag Day", 10) == "trondelag-day"

    def generate(federation_files):
        return manifests("big", origin="big.yaml", image=IMAGE, port=BROKER_PORT,
                         commands={"broker": ["/opt/helics/bin/helics_broker", "--local_interface=tcp://10.0.0.2"],
                                   "dso": ["python", "-m", "federates.dso", "--config", "/c/dso.json"]},
                         federation=CONTAINER_FEDERATION, federation_files=federation_files, inputs=CONTAINER_INPUTS,
                         input_files={}, results=CONTAINER_RESULTS)

    assert len(generate({"configs/dso.json": "x" * CONFIGMAP_BYTES})) == 3
    with pytest.raises(ValueError, match=r"^kubernetes: big-configs-dso: 1048577 bytes, more than a ConfigMap holds"):
        generate({"configs/dso.json": "x" * (CONFIGMAP_BYTES + 1)})


def test_a_federates_core_options_replace_the_configs_own():
    init = "--federates=1 --broker_address=tcp://10.235.0.2:23500 --brokerkey=k3y --local_interface=tcp://10.235.0.4"
    options = checked_core_options("tcp://10.1.2.3", "tcp://lec-broker:23500")
    assert with_core_options(init, options) == ("--federates=1 --brokerkey=k3y --local_interface=tcp://10.1.2.3 "
                                                "--broker_address=tcp://lec-broker:23500")
    assert with_core_options("--federates=1", checked_core_options("tcp://10.1.2.3")) == \
        "--federates=1 --local_interface=tcp://10.1.2.3"
    assert checked_core_options() == {}


def test_a_bad_core_option_is_one_line_and_exit_2_before_the_federate_joins(tmp_path):
    config = tmp_path / "recorder.json"  # never read: the options are refused first
    refusals = [(("--local-interface", f"tcp://{POD_IP}"), ("--local-interface: '$(POD_IP)' is neither an IPv4 "
                 "address nor a host name; a Kubernetes $(VARIABLE) left as it was: is it in the container's env?")),
                (("--local-interface", "tcp://0.0.0.0"), "--local-interface: 'tcp://0.0.0.0': give the one address"),
                (("--local-interface", "10.1.2.3"), "--local-interface: '10.1.2.3' is not tcp://ADDRESS"),
                (("--local-interface", "tcp://10.1.2.3:5"), "is not tcp://ADDRESS: no port"),
                (("--broker-address", "tcp://broker"), "--broker-address: 'tcp://broker' is not tcp://HOST:PORT"),
                (("--broker-address", "tcp://broker:70000"), "give the broker's port (1 to 65535)")]
    started = [subprocess.Popen([sys.executable, "-m", "federates.recorder", "--config", str(config), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args, _ in refusals]
    for proc, (_, phrase) in zip(started, refusals):
        _, err = proc.communicate(timeout=120)
        lines = err.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: recorder: "), err
        assert phrase in lines[0], lines[0]


def test_the_init_container_waits_for_the_broker_and_gives_up_with_one_line():
    with socket.socket() as probe:  # a port nobody listens on, for now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waiting = subprocess.Popen([sys.executable, "-c", WAIT_FOR_BROKER, "127.0.0.1", str(port), "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert waiting.poll() is None  # refused so far: still waiting
    with socket.create_server(("127.0.0.1", port)):
        assert waiting.wait(timeout=30) == 0
    gave_up = subprocess.run([sys.executable, "-c", WAIT_FOR_BROKER, "127.0.0.1", str(port), "0.5"],
                             capture_output=True, text=True, timeout=30, check=False)
    assert gave_up.returncode == 1 and len(gave_up.stderr.strip().splitlines()) == 1
    assert gave_up.stderr.startswith(f"error: the broker's Service 127.0.0.1:{port} did not accept a connection in "
                                     "0.5 s"), gave_up.stderr


def test_the_jobs_run_the_federation_each_on_its_pods_address(tmp_path, tmp_path_factory):
    scenario, direct = shared_run(tmp_path_factory, "trondelag_arbitrage")
    out = tmp_path / "project"
    write_compose(load_scenario(scenario), out, kubernetes=True)
    documents = read_manifests(out)
    jobs = of_kind(documents, "Job")
    (service,) = of_kind(documents, "Service")

    # Each pod's address a loopback alias in a /24 of 127/8 drawn at random (runs of this test at once keep apart),
    # never 127.0.0.1: a core listening there instead of on its pod's address would be seen below.
    aliases = ipaddress.IPv4Network(f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}.0/24")
    pod_ip = {job: str(aliases[i]) for i, job in enumerate(jobs, start=2)}
    broker_ip = pod_ip[service]

    # The pods' files: what each federate's pod mounts, from the manifests (the same in every federate's pod),
    # with the image's folders mapped to this machine's.
    pods = tmp_path / "pods"
    folders = {"federation": pods / "federation", "results": pods / "results", "inputs": pods / "inputs"}
    folders["results"].mkdir(parents=True)
    for path, content in mounted_files(documents, list(jobs.values())[1]).items():
        host = Path(to_host(path, folders, {}))
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(to_host(content.decode(), folders, {}))
    configs = sorted((folders["federation"] / "configs").glob("*.json"))
    for config in configs:  # still the compose addresses, on no interface of this machine
        init = json.loads(config.read_text())["coreInitString"].split()
        assert "--broker_address=tcp://10.235.0.2:23500" in init
        assert [part for part in init if part.startswith("--local_interface=tcp://10.235.0.")], init

    def as_on_this_machine(name: str, argv: list[str]) -> list[str]:
        """A container's command on this machine: $(POD_IP) as Kubernetes expands it, the Service's name as the
        cluster's DNS resolves it, the image's programs and folders as this machine's."""
        expanded = [part.replace(POD_IP, pod_ip[name]).replace(service, broker_ip) for part in argv]
        return host_command(expanded, folders, {})

    entries = []
    for name, job in jobs.items():
        main = as_on_this_machine(name, command(job))
        if "initContainers" in pod(job):  # the init container first, then the container, as the kubelet runs them
            (wait,) = pod(job)["initContainers"]
            main = ["sh", "-c", f"{shlex.join(as_on_this_machine(name, wait['command']))} && exec {shlex.join(main)}"]
        entries.append({"name": job["metadata"]["labels"]["app.kubernetes.io/component"], "directory": ".",
                        "exec": shlex.join(main)})
    host = tmp_path / "host"
    host.mkdir()
    (host / "runner.json").write_text(json.dumps({"name": "kubernetes_on_loopback", "federates": entries}))

    # a process told by its command line: a federate's holds its config, the broker's its address
    marks = {name: f"{to_host(args[args.index('--config') + 1], folders, {})}\0"
             for name, args in ((name, command(job)) for name, job in jobs.items()) if name != service}
    marks[service] = f"--local_interface=tcp://{broker_ip}\0"
    sockets = ListeningSockets(marks)
    sockets.start()
    try:
        run_federation(host, timeout_s=180)
    finally:
        sockets.stop.set()
        sockets.join()
    ours = json.loads((folders["results"] / "summary.json").read_text())["kpis"]
    theirs = json.loads((direct / "summary.json").read_text())["kpis"]
    assert kpis_match(ours, theirs), (ours, theirs)
    assert (broker_ip, BROKER_PORT) in sockets.seen[service]
    for name, seen in sockets.seen.items():
        assert seen and {address for address, _ in seen} == {pod_ip[name]}, (name, seen)
