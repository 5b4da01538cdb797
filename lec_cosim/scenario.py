"""Scenario files: one validated YAML file drives the whole federation.

This module reads a file (strict YAML: no duplicated key, no impossible date; UTF-8 only) and hands it to the
reader of its ``kind:`` (:data:`KINDS`); the schema itself, one pydantic model per study, lives in each
study's folder (``lec_cosim/studies/<kind>/schema.py``, what they share in :mod:`lec_cosim.schema`), and its
names are importable from here as they always were. All paths inside a scenario are relative to the scenario
file. ``load_scenario`` resolves them, so the returned object can be serialised and handed to federates running
in any directory.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

from lec_cosim.schema.base import *  # noqa: F403 (the schema's names, where the code has always found them)
from lec_cosim.schema.base import (  # noqa: F401
    _EUR_PER_KWH,
    CALENDAR_YEARS,
    MIN_STALL_TIMEOUT_S,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    STALL_TIMEOUT_S,
    ScenarioError,
    _kind,
    _validate,
)
from lec_cosim.schema.ieee_feeder import *  # noqa: F403
from lec_cosim.studies import KINDS as _STUDY_KINDS
from lec_cosim.studies.community_battery.schema import *  # noqa: F403
from lec_cosim.studies.community_battery.schema import Scenario
from lec_cosim.studies.local_market.schema import *  # noqa: F403
from lec_cosim.studies.local_market.schema import LemScenario
from lec_cosim.studies.three_lecs.schema import *  # noqa: F403
from lec_cosim.studies.three_lecs.schema import FRAMEWORKS, MultiLecScenario  # noqa: F401


def is_multi_lec(scenario) -> bool:
    """Whether a loaded scenario is a multi-LEC one (frameworks decentralised, distributed, p2p)."""
    return isinstance(scenario, MultiLecScenario)


def _guess_kind(data: dict) -> str:
    """The kind a scenario without ``kind:`` most likely is (for the message that asks to add it)."""
    if data.get("framework") == "local_market" or "participants" in data:
        return "local_market"
    if "lecs" in data or data.get("framework") in ("distributed", "p2p"):
        return "three_lecs"
    return "community_battery"


def scenario_from_dict(data: dict, source: Path) -> Scenario | LemScenario | MultiLecScenario:
    """Validate a parsed scenario by its ``kind:``; relative paths are taken from ``source``'s folder."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: (top level): expected a mapping of scenario fields")
    kind = data.get("kind")
    if kind is None:
        raise ScenarioError(f"{source}: kind: missing; add `kind: {_guess_kind(data)}` (the study this scenario is; "
                            f"one of {', '.join(KINDS)})")
    if kind not in KINDS:
        raise ScenarioError(f"{source}: kind: {kind!r} is no study of lec-cosim; one of {', '.join(KINDS)}")
    return KINDS[kind](data, source)


KINDS = {kind: importlib.import_module(f"lec_cosim.studies.{kind}.schema").read for kind in _STUDY_KINDS}
"""The studies a scenario can be (its ``kind:``), each with the reader that validates and resolves it."""


class _ScenarioLoader(yaml.SafeLoader):
    """YAML as a scenario needs it: a key given twice is an error (PyYAML keeps the last one silently), an
    impossible date (2019-02-30) is an error at its line, and ``1e3`` and ``1.5e3`` are numbers (YAML 1.1 wants
    ``1.5e+3``)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: PyYAML says so itself
                    continue
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice (first on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{self.construct_scalar(node)!r} is not a calendar date: {exc}", node.start_mark) from None


_ScenarioLoader.add_constructor("tag:yaml.org,2002:timestamp", _ScenarioLoader.construct_yaml_timestamp)
_ScenarioLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _utf16_without_bom(raw: bytes) -> bool:
    """Whether ``raw`` reads as UTF-16 text without a byte-order mark: mostly ASCII, so one byte of every two
    (the high one) is NUL, and it decodes."""
    if len(raw) < 4 or len(raw) % 2:
        return False
    for high, encoding in ((raw[1::2], "utf-16-le"), (raw[0::2], "utf-16-be")):
        if high.count(0) >= 0.9 * len(high):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                continue
            return True
    return False


def _scenario_text(path: Path) -> str:
    """The text of a scenario file: UTF-8 (a byte-order mark allowed), no binary."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ScenarioError(f"{path}: (file): a folder, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(raw):
        raise ScenarioError(f"{path}: (file): UTF-16 text; save the scenario as UTF-8")
    if b"\x00" in raw:
        raise ScenarioError(f"{path}: (file): a binary file (NUL bytes), not a YAML scenario")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(f"{path}: line {line}: not UTF-8 text (byte {exc.start}); save the scenario as "
                            "UTF-8") from None
    if not text.strip():
        raise ScenarioError(f"{path}: (file): the file is empty; a scenario is a mapping of fields")
    return text


def read_strict_yaml(path: Path):
    """A scenario-like file's data: UTF-8 text, strict YAML (no key twice); one-line errors naming the file."""
    text = _scenario_text(path)
    try:
        return yaml.load(text, Loader=_ScenarioLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(syntax)"
        raise ScenarioError(f"{path}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: (syntax): invalid YAML: nested too deeply") from None


_PRELOADED: dict[str, tuple] = {}
"""Scenarios a run's fork server read for the federates it forks (:func:`preload_scenario`): path -> (the file's
state, the scenario). Only a fork server fills it; each forked federate takes its entry (its own copy of it) once."""


def preload_scenario(path: str | Path) -> None:
    """Read the scenario at ``path`` now, for the next :func:`load_scenario` of the same unchanged file in this process
    or a process forked from it (:func:`lec_cosim.forkserver.warm`)."""
    from lec_cosim.models.timeseries import file_state

    path = Path(path)
    _PRELOADED[str(path)] = (file_state(path), load_scenario(path))


def load_scenario(path: str | Path) -> Scenario | LemScenario:
    """Read and validate a scenario YAML (or the JSON a federate receives)."""
    path = Path(path)
    kept = _PRELOADED.pop(str(path), None) if _PRELOADED else None
    if kept is not None:
        from lec_cosim.models.timeseries import file_state

        if kept[0] is not None and kept[0] == file_state(path):
            return kept[1]
    data = read_strict_yaml(path)
    if isinstance(data, dict) and data.get("source_file"):
        # A resolved scenario written by the generator: its paths are absolute already.
        source = Path(data.pop("source_file"))
        scenario = scenario_from_dict(data, path)
        return scenario.model_copy(update={"source_file": source})
    return scenario_from_dict(data, path)


def write_scenario_variant(base: str | Path, changes: dict, directory: str | Path, name: str | None = None) -> Path:
    """A copy of the scenario file ``base`` with ``changes`` applied, saved in ``directory``; returns its path.

    ``changes`` maps dotted keys (``"battery.capacity_mwh"``, ``"broker.address"``) to values; a
    missing section is created. The data paths become absolute, so the copy works from anywhere.
    With ``name``, the copy gets that scenario name; its file is ``<name>.yaml``.
    """
    base = Path(base).resolve()
    data = yaml.safe_load(base.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})  # an optional section the base leaves out
        node[leaf] = value

    def absolute(node) -> None:
        """Every data path (a ``*_file`` or ``*_dir`` field, at any depth, and the file of a feeder ``source``)
        made absolute."""
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and key.endswith(("_file", "_dir")) and isinstance(value, str) and value:
                    node[key] = str((base.parent / value).resolve())
                elif key == "source" and isinstance(value, str):
                    from lec_cosim.models.feeder_source import resolve_source

                    node[key] = resolve_source(value, base.parent)
                else:
                    absolute(value)

    absolute(data)
    if name:
        data["name"] = name
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
