"""Kubernetes manifests of a compose project: the same federation as pods, beside ``docker-compose.yml``.

``lec-cosim compose SCENARIO -o DIR --kubernetes`` writes them into ``DIR/kubernetes/`` from what the compose
generator (:func:`lec_cosim.compose.generate_compose`) made of the scenario's ``write_federation`` output: its
services' commands, its ``federation/`` files byte for byte, the data it copies into ``inputs/``, the image
name. Nothing here describes the federation a second time. ``kubectl apply --server-side -f DIR/kubernetes/``
creates (server-side: a client-side apply keeps a copy of each object in a 256 KiB annotation, and a large
federation's configs are bigger)::

    1-federation.yaml   a ConfigMap per file of federation/ (scenario.json, configs/NAME.json; one each, since
                        a ConfigMap holds at most 1 MiB), one for inputs/ if the scenario has data the image
                        lacks, and the PersistentVolumeClaim PREFIX-results
    2-broker.yaml       the Service PREFIX-broker (the broker's two ZMQ ports) and the broker's Job
    3-federates.yaml    a Job per federate, in runner order

Objects are named ``PREFIX-...`` with PREFIX the scenario's name as a DNS label, and labelled
``app.kubernetes.io/name: lec-cosim``, ``instance: PREFIX``, ``component: <runner entry>``; no namespace is
set (``kubectl -n``).

Addresses: a ZMQ broker connects back to each federate's core at the address the core announces, so a core
must listen on its pod's own address, known only when the pod starts. The federates' configs come from a
ConfigMap (a mounted file: no ``$(VAR)`` expands there), so each federate's container arguments carry the
address instead: ``--local-interface tcp://$(POD_IP)`` (the Downward API's ``status.podIP`` as the env var
``POD_IP``, which Kubernetes expands in arguments) and ``--broker-address tcp://PREFIX-broker:PORT``, the
Service's DNS name; the federate program puts both in place of the compose addresses in its config's
``coreInitString`` (:mod:`federates.common`). The broker listens on its own pod's address the same way. Before
its federate starts, each pod's init container waits until the broker's Service accepts connections (at most
:data:`BROKER_WAIT_S`): a HELICS core gives up on a broker it cannot reach within 30 s, and the broker's pod
may take longer to be scheduled and to pull its image.

Results: every federate writes into the results folder (the recorder its tables, each federate its
``timing/`` files), the claim PREFIX-results mounted there in every federate's pod, which may run on any node:
hence ``ReadWriteMany`` (:data:`RESULTS_SIZE`, the cluster's default storage class). Jobs are never retried
(``backoffLimit: 0``): a federate that failed cannot rejoin its federation. Generating twice gives the same
bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path, PurePosixPath

import yaml

FOLDER = "kubernetes"
"""Where ``lec-cosim compose --kubernetes`` writes the manifests, inside the compose project's folder."""
BROKER_WAIT_S = 600
"""How long a federate's pod waits for the broker's Service to accept connections before it fails."""
RESULTS_SIZE = "1Gi"
"""The results claim's request. A day of ``trondelag_arbitrage`` wrote 124 kB (timing files included), so its year
some 45 MB (estimated, not run); the tables grow with the feeder: raise it for long runs of large feeders."""
CONFIGMAP_BYTES = 1024 * 1024
"""What a ConfigMap may hold at most (its data and binaryData together)."""
NAME_BYTES = 63
"""A DNS-1123 label's length at most: every object's name."""
POD_IP = "POD_IP"
LABEL = "app.kubernetes.io"

WAIT_FOR_BROKER = """\
import socket, sys, time
host, port, wait_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + wait_s
while True:
    try:
        socket.create_connection((host, port), timeout=5).close()
        break
    except OSError as exc:
        if time.monotonic() > end:
            sys.exit(f"error: the broker's Service {host}:{port} did not accept a connection in {wait_s:g} s: {exc}")
        time.sleep(1)
"""
"""The init container's program (``python -c``, arguments HOST PORT SECONDS): it returns once the broker accepts a
TCP connection, and fails after SECONDS. The broker's ZMQ socket drops a connection closed before ZMQ's greeting
(the broker logged nothing at its warning level in ``tests/test_kubernetes.py``'s run)."""


def dns_label(text: str) -> str:
    """``text`` as a DNS-1123 label's characters: lower case, every run of other characters one ``-``, trimmed."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def name_prefix(scenario_name: str, longest_suffix: int) -> str:
    """The objects' common prefix: the scenario's name as a DNS label that starts with a letter (a Service's
    name must), cut so that ``PREFIX-SUFFIX`` fits in a label; a cut name ends in a hash of the whole name, so
    two long names with one beginning stay apart."""
    prefix = dns_label(scenario_name)
    if not prefix[:1].isalpha():
        prefix = f"lec-cosim-{prefix}".rstrip("-")
    room = NAME_BYTES - 1 - longest_suffix
    if room < 16:  # a prefix cut that short would be a stub: the runner entries' names are what is too long
        raise ValueError(f"kubernetes: a runner entry's name is {longest_suffix} characters as a DNS label: too "
                         f"long for names of at most {NAME_BYTES}")
    if len(prefix) > room:
        digest = hashlib.sha256(scenario_name.encode()).hexdigest()[:6]
        prefix = f"{prefix[:room - len(digest) - 1].rstrip('-')}-{digest}"
    return prefix


class _Dumper(yaml.SafeDumper):
    """Block style for text of several lines (the configs in the ConfigMaps), where YAML allows it."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _documents(header: list[str], documents: list[dict]) -> str:
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=120,
                         allow_unicode=True)
    return "".join(f"# {line}".rstrip() + "\n" for line in header) + body


def _config_map(name: str, labels: dict, files: dict[str, bytes]) -> dict:
    """A ConfigMap of ``files`` (key -> content): text under ``data``, anything else under ``binaryData``."""
    size = sum(len(content) for content in files.values())
    if size > CONFIGMAP_BYTES:
        raise ValueError(f"kubernetes: {name}: {size} bytes, more than a ConfigMap holds ({CONFIGMAP_BYTES})")
    data, binary = {}, {}
    for key, content in files.items():
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode("ascii")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            **({"data": data} if data else {}), **({"binaryData": binary} if binary else {})}


def _input_files(inputs: dict[str, Path]) -> dict[str, bytes]:
    """Path under the inputs folder -> content of every file of ``inputs`` (a file, or a folder's files)."""
    found = {}
    for relative, host in inputs.items():
        host = Path(host)
        paths = sorted(p for p in host.rglob("*") if p.is_file()) if host.is_dir() else [host]
        for path in paths:
            inside = PurePosixPath(relative) / path.relative_to(host).as_posix() if host.is_dir() else relative
            found[str(inside)] = path.read_bytes()
    return found


def manifests(scenario_name: str, *, origin: str, image: str, port: int, commands: dict[str, list[str]],
              federation: PurePosixPath, federation_files: dict[str, str], inputs: PurePosixPath,
              input_files: dict[str, Path], results: PurePosixPath) -> dict[str, str]:
    """The manifests of a compose project's federation: file name (in :data:`FOLDER`) -> YAML text.

    Parameters
    ----------
    scenario_name : str
        Names the objects (:func:`name_prefix`).
    origin : str
        The scenario's file, as the compose file names it (for the header).
    image : str
        The compose project's image.
    port : int
        The broker's port: it listens there and on the next (ZMQ), the Service exposes both.
    commands : dict
        Runner entry -> its command in the image, the compose services' (``broker`` first; the broker's
        ``--local_interface`` is replaced by its pod's address).
    federation, federation_files
        Where the federation's files are in the containers, and each one's path there -> its text.
    inputs, input_files
        Where the data the image lacks is in the containers, and each file or folder's path there -> the host
        file or folder (copied into a ConfigMap).
    results : PurePosixPath
        The results folder in the containers (the federates' ``output_dir``).

    Raises
    ------
    ValueError
        A file larger than a ConfigMap holds, names that are not DNS labels once cut, or commands that are not
        a broker's and federates'.
    """
    names = list(commands)
    if names[:1] != ["broker"]:
        raise ValueError(f"kubernetes: the runner's first entry is the broker, not {names[:1]}")
    inputs_bytes = _input_files(input_files)
    federation_keys = {relative: dns_label(PurePosixPath(relative).with_suffix("").as_posix())
                       for relative in federation_files}
    jobs, maps = [*map(dns_label, names)], [*federation_keys.values(), "inputs"]
    for kind, suffixes in (("runner entries", jobs), ("federation files", maps)):
        twice = sorted({suffix for suffix in suffixes if suffixes.count(suffix) > 1})
        if twice:  # two Jobs or two ConfigMaps of one name
            raise ValueError(f"kubernetes: {kind} of one name as DNS labels: {', '.join(twice)}")
    prefix = name_prefix(scenario_name, max(map(len, [*jobs, *maps, "results"])))

    def labels(component: str) -> dict[str, str]:
        return {f"{LABEL}/name": "lec-cosim", f"{LABEL}/instance": prefix, f"{LABEL}/component": component,
                f"{LABEL}/managed-by": "lec-cosim"}

    service = f"{prefix}-broker"
    claim = f"{prefix}-results"
    ports = [port, port + 1]

    # 1: what the pods read and where they write
    config_maps = [_config_map(f"{prefix}-{federation_keys[relative]}", labels("federation"),
                               {PurePosixPath(relative).name: text.encode()}) for relative, text in
                   federation_files.items()]
    input_keys = {}
    if inputs_bytes:
        input_keys = {relative: re.sub(r"[^-._A-Za-z0-9]", "_", relative.replace("/", "--"))
                      for relative in inputs_bytes}
        if len(set(input_keys.values())) < len(input_keys):
            raise ValueError(f"kubernetes: input files of one ConfigMap key: {', '.join(inputs_bytes)}")
        config_maps.append(_config_map(f"{prefix}-inputs", labels("inputs"),
                                       {input_keys[relative]: content for relative, content in
                                        inputs_bytes.items()}))
    volume_claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim, "labels": labels("results")},
                    "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": RESULTS_SIZE}}}}

    volumes = [{"name": "federation", "projected": {"sources": [
        {"configMap": {"name": f"{prefix}-{federation_keys[relative]}",
                       "items": [{"key": PurePosixPath(relative).name, "path": relative}]}}
        for relative in federation_files]}}]
    mounts = [{"name": "federation", "mountPath": str(federation), "readOnly": True}]
    if inputs_bytes:
        volumes.append({"name": "inputs", "configMap": {"name": f"{prefix}-inputs", "items": [
            {"key": key, "path": relative} for relative, key in input_keys.items()]}})
        mounts.append({"name": "inputs", "mountPath": str(inputs), "readOnly": True})
    volumes.append({"name": "results", "persistentVolumeClaim": {"claimName": claim}})
    mounts.append({"name": "results", "mountPath": str(results)})

    pod_ip = [{"name": POD_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    own_address = f"tcp://$({POD_IP})"

    def job(entry: str, container: dict, init_containers: list[dict] | None = None,
            pod_volumes: list[dict] | None = None) -> dict:
        pod = {"restartPolicy": "Never",
               # no <SERVICE>_PORT variables: HELICS reads HELICS_BROKER_PORT and HELICS_BROKER_ADDRESS from its
               # environment, which a Service named helics-broker would set
               "enableServiceLinks": False,
               "automountServiceAccountToken": False}
        if init_containers:
            pod["initContainers"] = init_containers
        # the image is built, not pulled by its bare name from a registry (as :latest it would always be pulled)
        pod["containers"] = [{"name": dns_label(entry), "image": image, "imagePullPolicy": "IfNotPresent",
                              **container, "env": pod_ip}]
        if pod_volumes:
            pod["volumes"] = pod_volumes
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": f"{prefix}-{dns_label(entry)}", "labels": labels(entry)},
                "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels(entry)}, "spec": pod}}}

    # 2: the broker, listening on its pod's address, behind a Service of fixed name and ports
    program, *arguments = commands["broker"]
    interface = [i for i, part in enumerate(arguments) if part.startswith("--local_interface=")]
    if len(interface) != 1:
        raise ValueError(f"kubernetes: the broker's command has no one --local_interface: {commands['broker']}")
    arguments[interface[0]] = f"--local_interface={own_address}"
    broker = job("broker", {"command": [program], "args": arguments,
                            "ports": [{"name": f"zmq-{p}", "containerPort": p} for p in ports]})
    broker_service = {"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": service, "labels": labels("broker")},
                      "spec": {"selector": {f"{LABEL}/instance": prefix, f"{LABEL}/component": "broker"},
                               "ports": [{"name": f"zmq-{p}", "port": p, "targetPort": p, "protocol": "TCP"}
                                         for p in ports]}}

    # 3: the federates, each with its core on its pod's address and the broker at the Service's name
    federates = []
    for entry in names[1:]:
        program, *arguments = commands[entry]
        if "--config" not in arguments:
            raise ValueError(f"kubernetes: runner entry {entry} is no federate program: {commands[entry]}")
        wait = {"name": "wait-for-broker", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": [program, "-c", WAIT_FOR_BROKER, service, str(port), str(BROKER_WAIT_S)]}
        federates.append(job(entry, {"command": [program], "args": [
            *arguments, "--local-interface", own_address, "--broker-address", f"tcp://{service}:{port}"],
            "volumeMounts": mounts}, [wait], volumes))

    generated = f"Generated by `lec-cosim compose --kubernetes` from {origin}; regenerate rather than edit."
    return {
        "1-federation.yaml": _documents([
            generated,
            "The federation's files for its pods, and where they write. Start the whole federation with",
            "",
            "  kubectl apply --server-side -f THIS_FOLDER/  (add -n NAMESPACE; the image built and reachable by the nodes:",
            "                                           docs/deployment/index.md, Kubernetes)",
            "",
            "A ConfigMap per file of the compose project's federation/ (the same bytes; the pods' command lines",
            f"replace the compose addresses in the configs), mounted read-only at {federation}"
            + (f"; inputs/ at {inputs}." if inputs_bytes else "."),
            f"The claim {claim} is mounted at {results} in every federate's pod, on any node:",
            "ReadWriteMany (set spec.storageClassName if the cluster's default storage class does not offer it).",
        ], [*config_maps, volume_claim]),
        "2-broker.yaml": _documents([
            generated,
            f"The broker, listening on its pod's address ($({POD_IP})), reached by the federates at the Service",
            f"{service} (ZMQ: ports {ports[0]} and {ports[1]}).",
        ], [broker_service, broker]),
        "3-federates.yaml": _documents([
            generated,
            f"A Job per federate: its core listens on its pod's address (--local-interface tcp://$({POD_IP})),",
            f"the broker is at tcp://{service}:{port}; an init container waits for the broker first.",
            f"Every federate writes into the claim {claim}, the recorder its results.",
        ], federates),
    }
