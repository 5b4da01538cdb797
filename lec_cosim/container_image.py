"""The container image of ``lec-cosim compose``, built on this machine without a registry, and the engine to run it.

No image registry is reachable where lec-cosim is developed and tested, so nothing is pulled. The image is
built in three cached steps, each only when its inputs changed:

1. **base** (:func:`ensure_base`): a Debian bookworm root file system, ``debootstrap --variant=minbase``
   with ``python3`` (Debian's CPython 3.11, the ABI of the cp311 manylinux wheels), without apt's
   package cache and lists, documentation, manual pages and translations; kept as a tarball in
   :data:`CACHE` and imported with ``docker import`` as ``lec-cosim-base:<key>``, where the key hashes
   what goes into it. A removed base image is imported again from the tarball in seconds.
2. **wheelhouse** (:func:`ensure_wheelhouse`): ``pip wheel`` of lec-cosim's run-time dependencies in
   the versions installed in this Python (so that the containers compute with the same packages as
   ``lec-cosim run`` here), and of pip itself, into ``CACHE/wheels-<key>/``.
3. **runtime** (:func:`ensure_runtime`): the base with a virtual environment in ``/opt/lec-cosim``
   holding the wheels, installed by pip run from its own wheel (``--no-index``) in a container
   without network (``--network none``), and committed as ``lec-cosim-runtime:<key>``, labelled with its
   key, and tagged :data:`RUNTIME_IMAGE`. The wheels are bind-mounted, so neither they nor pip end up in the
   image. This is the expensive step (1.5 to 3 minutes on 2 shared cores), done once per machine and dependency
   set: the images of the last :data:`RUNTIMES_KEPT` sets are kept, so that two environments of one machine
   with other versions (a clean clone's new ``.venv`` and an older work tree's) do not rebuild it in turn.

The image a compose project runs is, here, :data:`lec_cosim.compose.LOCAL_DOCKERFILE` on top of the runtime
image instead of the generated Dockerfile (which installs from a registry; the same layout: the project's
``lec_cosim``, ``federates``, ``data`` and
``scenarios`` copied to ``/lec-cosim`` and put on ``PYTHONPATH``, as in a checkout, so the models find
``data/`` beside their package); :func:`build_image` builds it in seconds, with ``--network none``.

What the project leaves out of the image, and why it is safe: the ``cli`` extra of helics (helics-cli's
web server and database: flask, sqlalchemy, requests, ...; the containers run the ``helics_broker``
binary and federate programs, never ``helics run``), the ``test``, ``docs`` and ``rl`` extras, and pip.
Everything lec-cosim itself requires stays, the 380 MB of SimBench grids included (``simbench:`` feeder
sources read them in the DSO federate).

What :func:`ensure_engine` changes on the machine (as root): it installs Debian's ``docker.io`` (engine
20.10, containerd, runc, iptables), ``debootstrap`` and ``docker-compose`` (1.29, the Python one, which
speaks the engine's API 1.41) if missing, and starts ``dockerd`` in the background if no engine answers,
logging to :data:`DOCKERD_LOG`, with :data:`DOCKERD_OPTIONS`: no default ``docker0`` bridge and no IP
forwarding, so that the only networks are the compose projects' own (``internal: true``: the engine's
iptables rules drop what would leave them; :func:`close_to_host` adds one dropping what they send to the
host while a project runs). Images live in ``/var/lib/docker``, the cached tarball and wheelhouses in
:data:`CACHE`.

Run as ``python -m lec_cosim.container_image COMMAND``: ``engine``, ``runtime`` (engine, base,
wheelhouse and runtime image), or ``run COMPOSE_FILE`` (all that, the project image, then the compose
project until every container has exited; prints where the results are and their KPIs, and removes
the containers and the network).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lec_cosim.compose import (
    CONTAINER_BROKER,
    CONTAINER_RESULTS,
    IMAGE,
    LOCAL_DOCKERFILE,
    NETWORK,
    RUNTIME_IMAGE,
)

CACHE = Path(os.environ.get("LEC_COSIM_IMAGE_CACHE", "/var/cache/lec-cosim"))
"""The base tarball and the wheelhouses: outside the project, so they outlive a work tree."""
DOCKERD_LOG = Path("/var/log/lec-cosim/dockerd.log")
HOST_PACKAGES = ("docker.io", "debootstrap", "docker-compose")
STORAGE_DRIVERS = ("overlay2", "vfs")
"""Tried in this order: overlay2 shares the image's layers between containers; vfs copies them (slow, large),
the fall-back where the kernel lacks overlayfs."""
DOCKERD_OPTIONS = ("--bridge=none", "--ip-forward=false")
"""No default bridge (nothing we run uses it) and no forwarding between interfaces: a container reaches only
the other containers on its compose network."""
ENGINE_WAIT_S = 60.0

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3",)
TRIMMED = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
           "usr/share/locale")
"""Emptied in the base root file system: apt's downloads and lists, documentation and translations."""
BASE_IMAGE = "lec-cosim-base"
RUNTIME_KEY_LABEL = "org.lec-cosim.runtime-key"
RUNTIMES_KEPT = 2
"""Runtime images kept, one per dependency set (``lec-cosim-runtime:<key>``, 1.35 GB each): the newest, the one
in use among them."""
VENV = "/opt/lec-cosim"
EXTRAS_LEFT_OUT = {"helics": {"cli"}}
"""Extras lec-cosim asks for that the containers never use: helics-cli serves ``helics run`` on the host."""

DOCKER = "docker"
COMPOSE = "docker-compose"


class ContainerError(RuntimeError):
    """A step of building or running the containers failed; the message says which and where to look."""


def _run(command: list[str], *, timeout: float | None = None, check: bool = True, **kwargs):
    """``command`` with its output captured; a failure raises :class:`ContainerError` with its stderr."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise ContainerError(f"{' '.join(command[:3])} ... failed ({result.returncode}):\n"
                             f"{(result.stderr or result.stdout).strip()[-3000:]}")
    return result


@contextlib.contextmanager
def _locked(name: str):
    """An exclusive lock (flock) across processes, for one step on this machine: two test processes or
    demos building the same image at once take turns, the second finding the first one's result."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


# --- the engine ---------------------------------------------------------------------------------------------

def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise ContainerError(f"{what} needs root (run as root, as CI does)")


def ensure_host_packages(packages: tuple[str, ...] = HOST_PACKAGES) -> None:
    """Install ``packages`` (default :data:`HOST_PACKAGES`) from Debian's archive, those not installed yet."""
    missing = [package for package in packages
               if _run(["dpkg-query", "-W", "-f=${Status}", package], check=False).stdout != "install ok installed"]
    if not missing:
        return
    _require_root(f"installing {', '.join(missing)}")
    _run(["apt-get", "update", "-qq"], timeout=600)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], timeout=1200,
         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def engine_running() -> bool:
    """Whether a docker engine answers on its socket."""
    try:
        return _run([DOCKER, "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


PIDFILES = {"dockerd": Path("/var/run/docker.pid"), "containerd": Path("/var/run/docker/containerd/containerd.pid")}
"""The pid files of ``dockerd`` and of the ``containerd`` it starts; a stale one keeps a new engine from starting."""


def _remove_stale_pidfiles() -> None:
    """Remove the pid files of a killed engine (its processes gone, or zombies nobody reaped): ``dockerd``
    refuses to start, and waits in vain for its ``containerd``, while a pid file names a process that exists.

    Raises
    ------
    ContainerError
        A live ``dockerd`` does not answer (it may be starting, or stuck): not ours to stop.
    """
    for program, pidfile in PIDFILES.items():
        try:
            pid = int(pidfile.read_text().strip())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            state = command = None  # no file, or its process is gone
        if program == "dockerd" and state not in (None, "Z") and program in command:
            raise ContainerError(f"dockerd (pid {pid}) runs but does not answer; see {DOCKERD_LOG}")
        if state is None or state == "Z" or program not in command:
            pidfile.unlink(missing_ok=True)


_STARTED: list[subprocess.Popen] = []  # the engine this process started, referenced for as long as it runs


def _start_dockerd(dockerd: str, driver: str, wait_s: float) -> str | None:
    """Start ``dockerd`` with ``driver`` and wait for it to answer; None if it does, else what it logged."""
    _remove_stale_pidfiles()
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(DOCKERD_LOG, "a") as log:
        log.write(f"--- lec-cosim starts dockerd --storage-driver={driver} at {time.ctime()}\n")
        log.flush()
        begins = log.tell()
        process = subprocess.Popen([dockerd, f"--storage-driver={driver}", *DOCKERD_OPTIONS],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)  # outlives this process
    deadline = time.monotonic() + wait_s
    while process.poll() is None and time.monotonic() < deadline:
        if engine_running():
            _STARTED.append(process)
            return None
        time.sleep(0.5)
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)
    with open(DOCKERD_LOG) as log:
        log.seek(begins)
        return log.read()


def ensure_engine(wait_s: float = ENGINE_WAIT_S) -> str:
    """A running docker engine: the one that answers, or ``dockerd`` started in the background.

    The first storage driver of :data:`STORAGE_DRIVERS` is tried twice (a first start after a killed
    engine may fail on what it left behind); the next one only when the engine's storage could not be
    set up with it.

    Returns
    -------
    str
        The engine's storage driver.

    Raises
    ------
    ContainerError
        ``dockerd`` did not start within ``wait_s`` (its log is :data:`DOCKERD_LOG`).
    """
    with _locked("engine"):
        running = engine_running()
        ensure_host_packages(("docker-compose",) if running else HOST_PACKAGES)  # an engine of other origin is kept
        if not running:
            _require_root("starting dockerd")
            dockerd = shutil.which("dockerd", path=f"/usr/sbin:/usr/bin:{os.environ.get('PATH', '')}")
            if dockerd is None:
                raise ContainerError("dockerd not found after installing docker.io")
            logged = None
            for driver in STORAGE_DRIVERS:
                for _ in range(2):
                    logged = _start_dockerd(dockerd, driver, wait_s)
                    if logged is None or "graphdriver" in logged:
                        break
                if logged is None or "graphdriver" not in logged:
                    break
            if logged is not None:
                raise ContainerError(f"dockerd did not start; the end of {DOCKERD_LOG}:\n{logged[-2000:]}")
    return _run([DOCKER, "info", "--format", "{{.Driver}}"]).stdout.strip()


def image_id(reference: str) -> str | None:
    """The id of the local image ``reference``, or None."""
    result = _run([DOCKER, "image", "inspect", "--format", "{{.Id}}", reference], check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def remove_image(reference: str) -> None:
    """Remove the local image ``reference`` if there is one."""
    if image_id(reference):
        _run([DOCKER, "image", "rm", reference])


# --- 1. the base image --------------------------------------------------------------------------------------

def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (its sources), so debootstrap reaches what apt reaches."""
    for sources in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if sources.is_file() and sources.suffix in ("", ".list", ".sources"):
            for uri in re.findall(r"(?:URIs:|^deb)\s+(?:\[[^]]*\]\s+)?(\S+)", sources.read_text(), re.M):
                if uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
    return DEFAULT_MIRROR


def base_key() -> str:
    return _key("base-v1", SUITE, "minbase", BASE_PACKAGES, TRIMMED)


def base_tag() -> str:
    return f"{BASE_IMAGE}:{base_key()}"


def ensure_base_tarball() -> Path:
    """The base root file system as a tarball in :data:`CACHE`, made with debootstrap if missing (about a minute).

    Returns
    -------
    pathlib.Path
        ``CACHE/base-<key>.tar``.
    """
    tarball = CACHE / f"base-{base_key()}.tar"
    if tarball.is_file():
        return tarball
    _require_root("debootstrap")
    ensure_host_packages(("debootstrap",))
    work = Path(tempfile.mkdtemp(prefix="base-", dir=CACHE))
    try:
        rootfs = work / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs),
              debian_mirror()], timeout=1800)
        for folder in TRIMMED:
            for entry in (rootfs / folder).glob("*"):
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        partial = work / tarball.name
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
        partial.replace(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def ensure_base() -> str:
    """The base image, imported from its tarball (made first if missing) unless present.

    Returns
    -------
    str
        Its tag, ``lec-cosim-base:<key>``.
    """
    tag = base_tag()
    if image_id(tag) is None:
        _run([DOCKER, "import", "--message", f"debootstrap {SUITE} minbase + {' '.join(BASE_PACKAGES)}",
              str(ensure_base_tarball()), tag], timeout=600)
    return tag


# --- 2. the wheelhouse --------------------------------------------------------------------------------------

def runtime_requirements() -> list[str]:
    """lec-cosim's run-time dependencies and theirs, pinned to the versions installed in this Python.

    Starts from lec-cosim's own requirements without extras (``pyproject.toml``'s ``dependencies``; the
    extras of :data:`EXTRAS_LEFT_OUT` dropped) and follows each installed distribution's requirements whose
    markers hold here.

    Returns
    -------
    list of str
        ``name==version`` lines, sorted by name.

    Raises
    ------
    ContainerError
        A dependency is not installed in this Python (install lec-cosim first: ``make venv``).
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    extras_done: dict[str, set[str]] = {}
    try:  # pyproject.toml's dependencies as installed (make venv installs again when it changes)
        roots = [Requirement(line) for line in metadata.requires("lec-cosim") or []]
    except metadata.PackageNotFoundError:
        raise ContainerError(f"lec-cosim is not installed in {sys.executable} (make venv)") from None
    pending = [r for r in roots if r.marker is None or r.marker.evaluate({"extra": ""})]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras) - EXTRAS_LEFT_OUT.get(name, set())
        if name in pinned and extras <= extras_done[name]:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ContainerError(f"{requirement.name} is not installed in {sys.executable}; "
                                 "install lec-cosim there first (make venv)") from None
        pinned[name] = distribution.version
        extras_done[name] = extras_done.get(name, set()) | extras
        for line in distribution.requires or []:
            child = Requirement(line)
            environments = [{"extra": extra} for extra in sorted(extras_done[name])] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                pending.append(child)
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]


def _pip_version() -> str:
    from importlib import metadata

    return metadata.version("pip")


def ensure_wheelhouse(requirements: list[str] | None = None) -> Path:
    """The wheels of ``requirements`` (default :func:`runtime_requirements`) and of pip, built here if missing.

    Returns
    -------
    pathlib.Path
        ``CACHE/wheels-<key>/``, holding the wheels and ``requirements.txt``.
    """
    requirements = requirements if requirements is not None else runtime_requirements()
    pip = f"pip=={_pip_version()}"
    folder = CACHE / f"wheels-{_key('wheels-v1', requirements, pip, sys.implementation.cache_tag)}"
    if (folder / "requirements.txt").is_file():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=CACHE))
    try:
        listed = partial / "requirements.txt.in"
        listed.write_text("\n".join([*requirements, pip]) + "\n")
        # --no-deps: the list is already closed under dependencies (pip install in the image checks it)
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
              "-r", str(listed), "-w", str(partial)], timeout=1800)
        listed.unlink()
        (partial / "requirements.txt").write_text("\n".join(requirements) + "\n")
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


# --- 3. the runtime image -----------------------------------------------------------------------------------

def _install_script() -> str:
    python = f"{VENV}/bin/python"
    return " && ".join([
        f"python3 -m venv --without-pip {VENV}",
        # pip runs from its wheel (a zip with a __main__): it installs the wheels and stays out of the image
        f'{python} "$(echo /wheels/pip-*.whl)/pip" install --no-index --find-links /wheels --no-cache-dir '
        "--disable-pip-version-check --no-warn-script-location --quiet -r /wheels/requirements.txt",
        # the real broker binary of the helics wheel (the helics_broker script is a Python shim around it), at
        # the fixed path the compose files name; --version fails the build if it is missing or does not run
        f"mkdir -p {Path(CONTAINER_BROKER).parent}",
        f"ln -s \"$({python} -c 'import helics, pathlib; "
        f"print(pathlib.Path(helics.__file__).parent / \"install/bin/helics_broker\")')\" {CONTAINER_BROKER}",
        f"{CONTAINER_BROKER} --version",
    ])


def runtime_key(requirements: list[str]) -> str:
    return _key("runtime-v1", base_key(), requirements, _pip_version(), _install_script())


def runtime_tag(key: str) -> str:
    """The runtime image of the dependency set ``key``."""
    return f"{RUNTIME_IMAGE}:{key}"


def _label(reference: str, label: str) -> str | None:
    result = _run([DOCKER, "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', reference],
                  check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_runtime() -> str:
    """The engine running and the runtime image up to date with this Python's dependencies.

    Returns
    -------
    str
        The image, ``lec-cosim-runtime:<key>`` (also tagged :data:`RUNTIME_IMAGE` now).

    Raises
    ------
    ContainerError
        A step failed: debootstrap, ``pip wheel``, or the installation in the container (its output is in
        the message).
    """
    ensure_engine()
    with _locked("image"):
        requirements = runtime_requirements()
        key = runtime_key(requirements)
        tag = runtime_tag(key)
        latest = _label(RUNTIME_IMAGE, RUNTIME_KEY_LABEL)
        if latest and latest != key and image_id(runtime_tag(latest)) is None:
            _run([DOCKER, "tag", RUNTIME_IMAGE, runtime_tag(latest)])  # made before images were kept per key
        if _label(tag, RUNTIME_KEY_LABEL) != key:
            if latest == key:
                _run([DOCKER, "tag", RUNTIME_IMAGE, tag])
            else:
                _build_runtime(requirements, key, tag)
        if latest != key:
            _run([DOCKER, "tag", tag, RUNTIME_IMAGE])
        _remove_old_runtimes(tag)
    return tag


def _build_runtime(requirements: list[str], key: str, tag: str) -> None:
    base = ensure_base()
    wheels = ensure_wheelhouse(requirements)
    builder = f"lec-cosim-runtime-build-{uuid.uuid4().hex[:12]}"
    _run([DOCKER, "create", "--name", builder, "--network", "none", "--volume", f"{wheels}:/wheels:ro",
          base, "sh", "-c", _install_script()])
    try:
        installed = _run([DOCKER, "start", "--attach", builder], check=False, timeout=1800)
        if installed.returncode != 0:
            raise ContainerError(f"installing the wheels into {tag} failed:\n"
                                 f"{(installed.stdout + installed.stderr).strip()[-3000:]}")
        changes = [f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1", f"LABEL {RUNTIME_KEY_LABEL}={key}", 'CMD ["python"]']
        _run([DOCKER, "commit", "--message", "lec-cosim's dependencies from wheels, installed without network",
              *(part for change in changes for part in ("--change", change)), builder, tag], timeout=600)
    finally:
        _run([DOCKER, "rm", "--force", builder], check=False)


def _remove_old_runtimes(kept: str) -> None:
    """Remove the runtime images of other dependency sets but the newest :data:`RUNTIMES_KEPT` - 1 (an image
    a container or another image still builds on stays)."""
    listed = _run([DOCKER, "image", "ls", RUNTIME_IMAGE, "--format", "{{.CreatedAt}}\t{{.Tag}}"]).stdout
    others = sorted((line.split("\t") for line in listed.splitlines() if "\t" in line), reverse=True)
    tags = [runtime_tag(name) for _, name in others if name not in ("latest", "<none>")]
    for old in [tag for tag in tags if tag != kept][RUNTIMES_KEPT - 1:]:
        _run([DOCKER, "image", "rm", old], check=False)


# --- the project image and its compose project --------------------------------------------------------------

def _compose_document(compose_file: Path) -> dict:
    import yaml

    return yaml.safe_load(Path(compose_file).read_text())


def build_image(compose_file: Path, tag: str) -> str:
    """Build the image of a generated compose project (its ``build`` section) as ``tag``, without network.

    Returns
    -------
    str
        The image's id.
    """
    compose_file = Path(compose_file).resolve()
    build = _compose_document(compose_file)["x-lec-cosim"]["build"]
    context = (compose_file.parent / build["context"]).resolve()
    runtime = ensure_runtime()
    replaced = image_id(tag)
    # the project's own Dockerfile installs from a registry: here the same layout on the runtime image, this
    # Python's own (another environment of the machine may have moved RUNTIME_IMAGE to its own since)
    with tempfile.TemporaryDirectory() as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(LOCAL_DOCKERFILE.replace(f"FROM {RUNTIME_IMAGE}\n", f"FROM {runtime}\n", 1))
        _run([DOCKER, "build", "--quiet", "--network", "none", "--tag", tag, "--file", str(dockerfile),
              str(context)], timeout=900)
    built = image_id(tag)
    if replaced and replaced != built:
        _run([DOCKER, "image", "rm", replaced], check=False)  # the tag's image before, unless a container uses it
    return built


def compose_network(project: str) -> str:
    """The name docker-compose gives the federation network of ``project``."""
    return f"{project}_{NETWORK}"


def _compose(compose_file: Path, project: str, override: Path | None, *arguments: str, **kwargs):
    files = ["-f", str(compose_file)] + (["-f", str(override)] if override else [])
    return _run([COMPOSE, "--ansi", "never", "-p", project, *files, *arguments], **kwargs)


def bridge_interface(network: str) -> str:
    """The host's bridge interface of a docker network (``br-`` and the start of its id)."""
    return "br-" + _run([DOCKER, "network", "inspect", "--format", "{{.Id}}", network]).stdout.strip()[:12]


def close_to_host(network: str) -> list[str]:
    """Drop what the containers of ``network`` send to this machine itself.

    An internal network has no way out (the engine drops what would be forwarded from its bridge to any
    other destination), but engine 20.10 still gives its containers a default route to the bridge, the
    host's end of the network, and the host would accept packets for its own addresses there. The
    federation needs only its own containers, so the host takes nothing from the bridge. Their traffic
    among themselves is bridged, never delivered to the host, and is unaffected.

    Returns
    -------
    list of str
        The rule (``iptables`` arguments after ``-I``/``-D``), to delete when the network goes.
    """
    rule = ["INPUT", "-i", bridge_interface(network), "-j", "DROP"]
    _run(["iptables", "-I", *rule])
    return rule


def run_compose(compose_file: Path, *, project: str, image: str | None = None, timeout_s: float = 900.0,
                on_up=None) -> dict[str, int]:
    """Start a generated compose project, wait until every container has exited, and remove them and the network.

    While it runs, the host accepts nothing from the project's network (:func:`close_to_host`).

    Parameters
    ----------
    compose_file : pathlib.Path
        A compose file written by :func:`lec_cosim.compose.write_compose`; its image must exist.
    project : str
        The compose project name (lower-case letters, digits and ``_``): its containers and network carry it.
    image : str, optional
        The image every service runs instead of the file's (an override file; e.g. a tag of one's own).
    timeout_s : float
        Stop the containers and fail after this many seconds.
    on_up : callable, optional
        Called with ``project`` once the containers are up (e.g. to inspect the network).

    Returns
    -------
    dict
        Service name -> its container's exit code (all 0).

    Raises
    ------
    ContainerError
        A container exited with an error (the others are stopped at once) or the time ran out; the message
        holds the end of the containers' logs.
    """
    if not re.fullmatch(r"[a-z0-9_]+", project):
        raise ValueError(f"project: {project!r}: use lower-case letters, digits and _")
    compose_file = Path(compose_file).resolve()
    services = list(_compose_document(compose_file)["services"])
    with tempfile.TemporaryDirectory() as tmp:
        override = None
        if image is not None:
            override = Path(tmp) / "image.yml"
            override.write_text(json.dumps({"services": {name: {"image": image} for name in services}}))
        closed = None
        try:
            # created, closed to the host, then started: no container runs before the host drops its traffic
            _compose(compose_file, project, override, "up", "--no-start", "--no-build", timeout=600)
            closed = close_to_host(compose_network(project))
            _compose(compose_file, project, override, "start", timeout=600)
            if on_up is not None:
                on_up(project)
            ids = _compose(compose_file, project, override, "ps", "--quiet").stdout.split()
            deadline = time.monotonic() + timeout_s
            while True:
                states = [line.split() for line in _run(
                    [DOCKER, "inspect", "--format",
                     '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{.State.ExitCode}}',
                     *ids]).stdout.splitlines()]
                failed = [(name, int(code)) for name, status, code in states if status == "exited" and code != "0"]
                if failed or time.monotonic() > deadline:
                    _compose(compose_file, project, override, "stop", "--timeout", "5", check=False, timeout=120)
                    logs = _compose(compose_file, project, override, "logs", "--no-color", "--tail", "30",
                                    check=False, timeout=120)
                    why = (f"{', '.join(f'{name} exited with {code}' for name, code in failed)}" if failed
                           else f"not done after {timeout_s:.0f} s")
                    raise ContainerError(f"compose project {project}: {why}; the containers' last lines:\n"
                                         f"{logs.stdout[-6000:]}")
                if all(status in ("exited", "dead") for _, status, _ in states):
                    return {name: int(code) for name, _, code in states}
                time.sleep(0.5)
        finally:
            _compose(compose_file, project, override, "down", "--remove-orphans", "--timeout", "5", check=False,
                     timeout=300)
            if closed is not None:
                _run(["iptables", "-D", *closed], check=False)


def free_subnet(within: str = "10.235.0.0/16", avoid: tuple[str, ...] = ()) -> str:
    """A /24 of ``within`` that overlaps no docker network, no route of this machine and none of ``avoid``.

    Drawn at random, so that test runs at the same time on one machine are unlikely to draw the same one.
    """
    taken = [ipaddress.IPv4Network(subnet) for subnet in avoid]
    networks = _run([DOCKER, "network", "ls", "--quiet"]).stdout.split()
    if networks:
        for subnet in _run([DOCKER, "network", "inspect", "--format",
                            "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *networks]).stdout.split():
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.IPv4Network(subnet, strict=False))
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        destination, mask = (ipaddress.IPv4Address(bytes.fromhex(f)[::-1]) for f in (fields[1], fields[7]))
        if int(mask):
            taken.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    free = [subnet for subnet in ipaddress.IPv4Network(within).subnets(new_prefix=24)
            if not any(subnet.overlaps(other) for other in taken)]
    if not free:
        raise ContainerError(f"no free /24 left in {within}")
    return str(random.choice(free))


def results_folder(compose_file: Path) -> Path:
    """The host folder the recorder's results land in, from the compose file's bind mounts."""
    compose_file = Path(compose_file).resolve()
    for volume in _compose_document(compose_file)["services"]["recorder"]["volumes"]:
        host, container = volume.split(":")[:2]
        if container == str(CONTAINER_RESULTS):
            return (compose_file.parent / host).resolve()
    raise ContainerError(f"{compose_file}: the recorder has no results folder")


def run(compose_file: Path, *, project: str = "lec_cosim_demo") -> Path:
    """Build the image of a generated compose project as :data:`lec_cosim.compose.IMAGE` (kept) and run it to the
    end (``make compose-demo``); its results folder must be empty.

    Returns
    -------
    pathlib.Path
        The results folder.
    """
    driver = ensure_engine()
    ensure_runtime()
    build_image(compose_file, IMAGE)
    results = results_folder(compose_file)
    if [path for path in results.iterdir() if path.name != ".gitignore"]:  # not mixed with, nor lost to, this run
        raise ContainerError(f"{results}: holds an earlier run's results; empty it, or generate the project "
                             "again (lec-cosim compose ... --force)")
    started = time.monotonic()
    run_compose(compose_file, project=project)
    print(f"compose project {project} ran in {time.monotonic() - started:.0f} s (engine storage driver {driver}); "
          f"containers and network removed")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lec_cosim.container_image", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("engine", help="install docker.io, debootstrap and docker-compose if missing; start dockerd")
    commands.add_parser("runtime", help="the engine, and the runtime image (base, wheels, dependencies), cached")
    ran = commands.add_parser("run", help="build a generated compose project's image and run it to the end")
    ran.add_argument("compose_file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "engine":
            print(f"docker engine running (storage driver {ensure_engine()}; log {DOCKERD_LOG} if started here)")
        elif args.command == "runtime":
            started = time.monotonic()
            image = ensure_runtime()
            size = int(_run([DOCKER, "image", "inspect", "--format", "{{.Size}}", image]).stdout)
            print(f"{image}: {size / 1e6:.0f} MB, up to date ({time.monotonic() - started:.0f} s)")
        else:
            results = run(args.compose_file)
            kpis = json.loads((results / "summary.json").read_text())["kpis"]
            print(f"results in {results}; KPIs:")
            for name, value in kpis.items():
                print(f"  {name}: {value}")
    except ContainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
