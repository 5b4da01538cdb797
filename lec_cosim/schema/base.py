"""What every scenario kind shares: strict types, calendar times, paths, plausibility ranges, the broker,
the watchdog and the outputs; the error type and the one-line messages of a failed validation."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from pathlib import Path
from typing import Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import Annotated


class ScenarioError(ValueError):
    """Bad input, reported to the user as one line: file, field and reason."""


NAME_MAX_LENGTH = 100
"""Longest scenario name: it names the results folder (with suffixes such as ``_distributed_dso.incomplete``),
and a file name has at most 255 bytes."""
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
"""A plain file name: letters, digits, ``_``, ``.`` and ``-``, not starting with ``.`` or ``-`` (so never ``.``
or ``..``, nor a hidden or option-like name)."""


def _calendar(value, *, day: bool):
    """A date and time (``day``: a day) from YAML (a timestamp or a date) or from JSON (an ISO string);
    nothing else: pydantic would read the number 20190526 as seconds since 1970."""
    what, form = ("day", "YYYY-MM-DD") if day else ("date and time", "YYYY-MM-DD HH:MM")
    if isinstance(value, str):
        try:
            value = (dt.date if day else dt.datetime).fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a calendar {what} ({form}): {exc}") from None
    if isinstance(value, dt.datetime):
        if not day:
            return value
        if value.time() != dt.time(0):
            raise ValueError(f"expected a day ({form}), not a time of day ({value.isoformat()})")
        return value.date()
    if isinstance(value, dt.date):
        return value if day else dt.datetime.combine(value, dt.time(0))
    raise ValueError(f"expected a {what} ({form}), not {_kind(value)}")


def _file_path(value):
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return Path(value)
    raise ValueError(f"expected a file or folder path, not {_kind(value)}")


def _kind(value) -> str:
    """What a wrong value is, for a message: ``the boolean true``, ``the text 'abc'``, ``a list``."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)


CalendarTime = Annotated[dt.datetime, BeforeValidator(lambda value: _calendar(value, day=False))]
CalendarDay = Annotated[dt.date, BeforeValidator(lambda value: _calendar(value, day=True))]
FilePath = Annotated[Path, BeforeValidator(_file_path)]


class _Strict(BaseModel):
    # strict: a boolean or a text is never taken for a number (YAML reads `on` as true, pydantic's lax mode
    # then as 1.0); finite: inf and nan are no capacity, price or horizon.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _unique(names: Optional[list[str]]) -> Optional[list[str]]:
    twice = next((n for i, n in enumerate(names or []) if n in names[:i]), None)
    if twice is not None:
        raise ValueError(f"{twice!r} appears twice")
    return names


def _plausible(low: float, high: float, unit: str, hint: str = ""):
    """A field validator refusing values outside ``[low, high]``: a number in the wrong unit, most often."""

    def check(cls, value):
        if value is not None and not low <= value <= high:
            raise ValueError(f"{value:g} {unit} is implausible (expected {low:g} to {high:g} {unit}){hint}")
        return value

    return classmethod(check)


_EUR_PER_KWH = _plausible(0.0, 1.0, "EUR/kWh", "; is it in EUR/MWh or ct/kWh?")


CALENDAR_YEARS = (1900, 2199)
"""The years a simulation may span: its series are pandas timestamps, which end in 2262 (dates past 9999 do not
exist at all)."""


class _ScenarioBase(_Strict):
    """What every scenario kind derives from its ``horizon_h``, ``resolution`` and ``source_file``."""

    @model_validator(mode="after")
    def _within_the_calendar(self):
        first, last = CALENDAR_YEARS
        if not first <= self.start.year <= last:
            raise ValueError(f"start: the year {self.start.year} is outside {first}-{last}")
        hours_left = (dt.datetime(last + 1, 1, 1) - self.start) / dt.timedelta(hours=1)
        if self.horizon_h > hours_left:
            raise ValueError(f"horizon_h: {self.horizon_h:g} h from {self.start.isoformat()} end after {last}")
        return self

    # Derived quantities, in seconds of simulated time (HELICS time unit).
    @property
    def end_s(self) -> float:
        return self.horizon_h * 3600.0

    @property
    def grid_step_s(self) -> int:
        return self.resolution.grid_min * 60

    @property
    def market_step_s(self) -> int:
        return self.resolution.market_min * 60

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        data["source_file"] = str(self.source_file) if self.source_file else None
        return json.dumps(data, indent=2)


class _VoltageBand(_Strict):
    """A ``vm_min_pu`` below a ``vm_max_pu``."""

    @model_validator(mode="after")
    def _band(self):
        if self.vm_min_pu >= self.vm_max_pu:
            raise ValueError("vm_min_pu must be below vm_max_pu")
        return self


class OutputsConfig(_Strict):
    directory: Optional[FilePath] = None


def _host_address(address: str) -> str:
    """One IPv4 address or host name that peers reach a broker at (never 0.0.0.0)."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        if re.fullmatch(r"[0-9.]+", address):
            raise ValueError(f"{address!r} is not an IPv4 address") from None
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", address):
            raise ValueError(f"{address!r} is neither an IPv4 address nor a host name") from None
        return address
    if ip.is_unspecified:  # a broker on all interfaces announces loopback to its peers (broker_config/README.md)
        raise ValueError("give the one address peers reach the broker at, not 0.0.0.0")
    return address


HostAddress = Annotated[str, AfterValidator(_host_address)]
"""An address peers reach a broker at: checked by :func:`_host_address`."""


def is_loopback(address: str) -> bool | None:
    """Whether an address is this machine's loopback (None: a host name other than localhost, not known here)."""
    try:
        return ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        return True if address == "localhost" else None


class HostConfig(_Strict):
    """A federate host: one sub-broker listening on its address, and the federates that run there."""

    address: HostAddress = Field(description="IPv4 address (or host name) of the host: its sub-broker listens there, "
                                             "and the root broker and its federates reach it there")
    federates: Optional[list[str]] = Field(None, exclude_if=lambda value: value is None, description=(
        "the federates that run on this host (lec-cosim interface lists them); give them on every host or on none "
        "(then they are dealt to the hosts in turn)"))


class BrokerConfig(_Strict):
    """Where the federation's broker listens; the federates reach it there."""

    address: HostAddress = Field("127.0.0.1", description=(
        "IPv4 address or host name the broker listens on. 127.0.0.1 (default) keeps the federation on this "
        "machine; an address of one of this host's network interfaces opens it to that network (set key). With "
        "hosts, the root broker's host"))
    key: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "broker key: brokers and federates without it are refused (--brokerkey)"))
    hosts: list[HostConfig] = Field(default_factory=list, exclude_if=lambda value: not value, description=(
        "spread the federation over hosts: the root broker on address, one sub-broker on each host here with its "
        "federates (an address alone is a host whose federates are dealt in turn); lec-cosim runner writes each "
        "host's part (hosts/ADDRESS.json) and lec-cosim launch starts it there; empty (default): one host"))
    heartbeat_s: Optional[float] = Field(None, ge=0.5, le=300.0, exclude_if=lambda value: value is None, description=(
        "every broker's heartbeat, s (HELICS's --tick): a peer silent for two heartbeats is pinged, and lost if it "
        "does not answer by the next, so over hosts a host gone ends the federation within a few heartbeats; "
        "null (default): HELICS's own, 5 s (a host gone noticed after some 20-30 s)"))

    def at(self, address: str) -> BrokerConfig:
        """The same broker settings for a broker listening on ``address`` (a sub-broker's host, a container)."""
        return self.model_copy(update={"address": address, "hosts": []})

    @field_validator("hosts", mode="before")
    @classmethod
    def _addresses_alone(cls, hosts):
        if isinstance(hosts, list):
            return [{"address": host} if isinstance(host, str) else host for host in hosts]
        return hosts

    @model_validator(mode="after")
    def _hosts(self):
        addresses = [host.address for host in self.hosts]
        twice = sorted({a for a in addresses if addresses.count(a) > 1})
        if twice:
            raise ValueError(f"hosts: {', '.join(twice)} given twice: one sub-broker per host")
        placed = [host.federates is not None for host in self.hosts]
        if any(placed) and not all(placed):
            raise ValueError("hosts: give federates on every host or on none (then they are dealt in turn)")
        loopback = [is_loopback(address) for address in [self.address, *addresses]]
        if self.hosts and None not in loopback and len(set(loopback)) > 1:
            raise ValueError(f"hosts: the root broker's address {self.address} and the hosts' "
                             f"({', '.join(addresses)}) must all be of this machine (127.x) or none: give the root's "
                             "host address as broker.address (--broker-address)")
        named = [name for host in self.hosts for name in host.federates or []]
        twice = sorted({name for name in named if named.count(name) > 1})
        if twice:
            raise ValueError(f"hosts: {', '.join(twice)} placed on more than one host")
        return self


STALL_TIMEOUT_S = 120.0
"""Default stall time: longer than any single step of the shipped studies takes (the longest, a day's plan
or an hour's negotiation, takes seconds), short enough that a stuck run ends in minutes."""
MIN_STALL_TIMEOUT_S = 5.0
"""Shortest stall time: the watchdog asks twice a second and waits 2 s for an answer."""


class FederationConfig(_Strict):
    """How the launcher (``lec-cosim run``) supervises the federation."""

    stall_timeout_s: Optional[float] = Field(STALL_TIMEOUT_S, ge=MIN_STALL_TIMEOUT_S, description=(
        "end the run when no federate's time advances for this many wall seconds, naming the federate that "
        "holds the others and the simulated time (null: never; --stall-timeout overrides it)"))


def _source_and_outputs(scenario: _ScenarioBase, source: Path) -> dict:
    """Updates every scenario kind needs: its source file, and its output folder taken from there."""
    updates = {"source_file": source.resolve()}
    if scenario.outputs.directory is not None:
        updates["outputs"] = OutputsConfig(directory=(source.parent / scenario.outputs.directory).resolve())
    return updates


def _location(err: dict) -> str:
    return ".".join(str(part) for part in err["loc"] if part != "__root__") or "(top level)"


_TYPE_ERRORS = {"float_type", "int_type", "bool_type", "string_type", "int_from_float", "finite_number",
                "literal_error", "dict_type", "list_type", "model_type", "date_type", "datetime_type"}
"""pydantic errors whose message is clearer with the value that was given."""


def _validate(model, data: dict, source: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] in _TYPE_ERRORS and "input" in err:
            message = f"{message}, not {_kind(err['input'])}"
            if isinstance(err["input"], bool):
                message += " (YAML reads yes/no/on/off/true/false as booleans)"
        location = _location(err)
        named = re.match(r"([a-z_][a-z0-9_.]*): (.*)", message, re.S)
        if named:
            # Checks across fields name the field themselves, as "field: reason" (within the section at loc).
            location = named.group(1) if not err["loc"] else f"{location}.{named.group(1)}"
            message = named.group(2)
        raise ScenarioError(f"{source}: {location}: {message}") from None
