"""Scenario schema: one validated YAML file drives the whole federation.

All paths inside a scenario are relative to the scenario file. ``load_scenario`` resolves them,
so the returned object can be serialised and handed to federates running in any directory.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ScenarioError(ValueError):
    """Bad input, reported to the user as one line: file, field and reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resolution(_Strict):
    """Step of each layer in minutes."""

    market_min: int = Field(60, gt=0)
    ems_min: int = Field(60, gt=0)
    grid_min: int = Field(15, gt=0)


class PVConfig(_Strict):
    kwp_per_household: float = Field(ge=0)
    profile_file: Path
    profile: str = "PV1"


class HouseholdsConfig(_Strict):
    count: int = Field(gt=0)
    load_profile_file: Path
    load_profiles: list[str] = Field(min_length=1)
    annual_consumption_kwh: float = Field(gt=0)
    power_factor: float = Field(0.97, gt=0, le=1)
    pv: Optional[PVConfig] = None


class BatteryConfig(_Strict):
    capacity_mwh: float = Field(gt=0)
    power_mw: float = Field(gt=0)
    efficiency: float = Field(gt=0, le=1, description="round-trip efficiency; one way is its square root")
    soc_initial: float = Field(0.5, ge=0, le=1, description="fraction of capacity at start and end of each day")


class LineConfig(_Strict):
    length_km: float = Field(gt=0)
    r_ohm_per_km: float = Field(ge=0)
    x_ohm_per_km: float = Field(ge=0)
    c_nf_per_km: float = Field(0.0, ge=0)
    max_i_ka: float = Field(gt=0)


class TransformerConfig(_Strict):
    sn_mva: float = Field(gt=0)
    vn_hv_kv: float = Field(gt=0)
    vn_lv_kv: float = Field(gt=0)
    vk_percent: float = Field(gt=0)
    vkr_percent: float = Field(ge=0)
    pfe_kw: float = Field(0.0, ge=0)
    i0_percent: float = Field(0.0, ge=0)


class GridConfig(_Strict):
    solver: Literal["pandapower"] = "pandapower"
    ext_grid_vm_pu: float = Field(1.0, gt=0.5, lt=1.5)
    vm_min_pu: float = Field(0.9, gt=0, description="voltage band; EN 50160: 0.9-1.1 pu")
    vm_max_pu: float = Field(1.1, gt=0)
    max_loading_percent: float = Field(100.0, gt=0, description="line and transformer rating")
    mv_line: LineConfig
    transformer: TransformerConfig


    @model_validator(mode="after")
    def _band(self) -> "GridConfig":
        if self.vm_min_pu >= self.vm_max_pu:
            raise ValueError("vm_min_pu must be below vm_max_pu")
        return self


class MarketConfig(_Strict):
    price_file: Path
    currency: str = "EUR"
    price_unit: Literal["EUR/MWh"] = "EUR/MWh"
    feed_in_tariff: Optional[float] = Field(
        None, description="export price in currency/MWh; null credits exports at the spot price"
    )


class EMSConfig(_Strict):
    objective: Literal["min_cost", "min_import"]
    solver: Literal["glpk", "highs"] = "glpk"
    throughput_penalty: float = Field(
        1e-6, ge=0, description="tie-breaker per MWh charged or discharged; removes idle cycling"
    )


class OutputsConfig(_Strict):
    directory: Optional[Path] = None


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    lec_name: str = Field("lec1", pattern=r"^[A-Za-z0-9_]+$")
    start: dt.datetime
    horizon_h: float = Field(gt=0)
    resolution: Resolution = Resolution()
    framework: Literal["decentralised"] = "decentralised"
    households: HouseholdsConfig
    battery: BatteryConfig
    grid: GridConfig
    market: MarketConfig
    ems: EMSConfig
    outputs: OutputsConfig = OutputsConfig()
    source_file: Optional[Path] = Field(None, exclude=True)

    @field_validator("start")
    @classmethod
    def _naive_start(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            raise ValueError("give local standard time without a UTC offset")
        return value

    @model_validator(mode="after")
    def _consistent_steps(self) -> "Scenario":
        res = self.resolution
        day_min = 24 * 60
        for field in ("market_min", "ems_min", "grid_min"):
            if day_min % getattr(res, field):
                raise ValueError(f"resolution.{field}: must divide a day (1440 min)")
        if res.ems_min % res.grid_min:
            raise ValueError("resolution.ems_min: must be a multiple of resolution.grid_min")
        horizon_min = self.horizon_h * 60
        if abs(horizon_min / res.ems_min - round(horizon_min / res.ems_min)) > 1e-9:
            raise ValueError("horizon_h: must be a whole number of EMS steps")
        return self

    # Derived quantities, in seconds of simulated time (HELICS time unit).
    @property
    def end_s(self) -> float:
        return self.horizon_h * 3600.0

    @property
    def grid_step_s(self) -> int:
        return self.resolution.grid_min * 60

    @property
    def ems_step_s(self) -> int:
        return self.resolution.ems_min * 60

    @property
    def market_step_s(self) -> int:
        return self.resolution.market_min * 60

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        data["source_file"] = str(self.source_file) if self.source_file else None
        return json.dumps(data, indent=2)


def _location(err: dict) -> str:
    return ".".join(str(part) for part in err["loc"] if part != "__root__") or "(top level)"


def scenario_from_dict(data: dict, source: Path) -> Scenario:
    """Validate a parsed scenario; relative paths are taken from ``source``'s folder."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: (top level): expected a mapping of scenario fields")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        location = _location(err)
        if not err["loc"] and ": " in message:
            # Checks across fields name the field themselves, as "field: reason".
            location, message = message.split(": ", 1)
        raise ScenarioError(f"{source}: {location}: {message}") from None
    base = source.parent
    hh = scenario.households
    updates = {
        "households": hh.model_copy(
            update={
                "load_profile_file": (base / hh.load_profile_file).resolve(),
                "pv": hh.pv.model_copy(update={"profile_file": (base / hh.pv.profile_file).resolve()})
                if hh.pv
                else None,
            }
        ),
        "market": scenario.market.model_copy(
            update={"price_file": (base / scenario.market.price_file).resolve()}
        ),
        "source_file": source.resolve(),
    }
    if scenario.outputs.directory is not None:
        updates["outputs"] = OutputsConfig(directory=(base / scenario.outputs.directory).resolve())
    scenario = scenario.model_copy(update=updates)
    for field, path in (
        ("households.load_profile_file", scenario.households.load_profile_file),
        ("households.pv.profile_file", scenario.households.pv.profile_file if scenario.households.pv else None),
        ("market.price_file", scenario.market.price_file),
    ):
        if path is not None and not path.is_file():
            raise ScenarioError(f"{source}: {field}: file not found: {path}")
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML (or the JSON a federate receives)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(syntax)"
        raise ScenarioError(f"{path}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if isinstance(data, dict) and data.get("source_file"):
        # A resolved scenario written by the generator: its paths are absolute already.
        source = Path(data.pop("source_file"))
        scenario = scenario_from_dict(data, path)
        return scenario.model_copy(update={"source_file": source})
    return scenario_from_dict(data, path)
