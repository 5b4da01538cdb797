"""The community battery's scenario: households, PV, the battery, the LEC's grid, prices and the LEC_EMS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from lec_cosim.schema.base import (
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    BrokerConfig,
    CalendarTime,
    FederationConfig,
    FilePath,
    OutputsConfig,
    ScenarioError,
    _plausible,
    _ScenarioBase,
    _source_and_outputs,
    _Strict,
    _unique,
    _validate,
    _VoltageBand,
)
from lec_cosim.schema.homes import HomeDevices


class Resolution(_Strict):
    """Step of each layer in minutes."""

    market_min: int = Field(60, gt=0)
    ems_min: int = Field(60, gt=0)
    grid_min: int = Field(15, gt=0)


class PVConfig(_Strict):
    kwp_per_household: float = Field(ge=0)
    _kwp = field_validator("kwp_per_household")(_plausible(0.0, 100.0, "kWp", " for one household"))
    profile_file: FilePath
    profile: str = "PV1"


class HouseholdsConfig(_Strict):
    count: int = Field(gt=0, le=100_000)
    load_profile_file: FilePath
    load_profiles: list[str] = Field(min_length=1)
    _unique_profiles = field_validator("load_profiles")(_unique)
    annual_consumption_kwh: float = Field(gt=0)
    _kwh = field_validator("annual_consumption_kwh")(
        _plausible(50.0, 200000.0, "kWh a year", " for one household; is it in MWh?"))
    power_factor: float = Field(0.97, ge=0.5, le=1, description="of the households' load (inductive)")
    pv: Optional[PVConfig] = None


class BatteryConfig(_Strict):
    capacity_mwh: float = Field(gt=0, le=1000, description="energy capacity; a community battery holds MWh, not GWh")
    power_mw: float = Field(gt=0, le=1000)
    efficiency: float = Field(gt=0, le=1, description="round-trip efficiency; one way is its square root")
    soc_initial: float = Field(0.5, ge=0, le=1, description="fraction of capacity at start and end of each day")
    soc_min: float = Field(0.0, ge=0, lt=1, strict=True, description="lowest state of charge, fraction of capacity")
    soc_max: float = Field(1.0, gt=0, le=1, strict=True, description="highest state of charge, fraction of capacity")

    @model_validator(mode="after")
    def _soc_window(self):
        if self.soc_min >= self.soc_max:
            raise ValueError("soc_min must be below soc_max")
        if not self.soc_min <= self.soc_initial <= self.soc_max:
            raise ValueError(f"soc_initial {self.soc_initial:g} lies outside soc_min..soc_max "
                             f"({self.soc_min:g}..{self.soc_max:g})")
        return self


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

    @model_validator(mode="after")
    def _resistive_part(self) -> "TransformerConfig":
        # vk is the short-circuit impedance, vkr its resistive part: a larger part has no reactance (a
        # negative square root; the power flow divided by zero)
        if self.vkr_percent >= self.vk_percent:
            raise ValueError(f"vkr_percent: {self.vkr_percent:g} % must be below vk_percent ({self.vk_percent:g} %), "
                             "of which it is the resistive part")
        return self


SOURCE_KINDS = ("pandapower", "simbench", "opendss", "ieee_eu_lv")
"""The feeder sources ``grid.source`` names (:func:`lec_cosim.models.feeder_source.load_feeder`); the IEEE feeder's
single-phase households are refused later, with the reason."""


class GridConfig(_VoltageBand):
    solver: Literal["pandapower", "power-grid-model", "opendss"] = Field(
        "pandapower", description="balanced power-flow backend: pandapower (with its lightsim2grid Newton-Raphson, "
        "~0.07 ms a step here), power-grid-model (~0.3 ms; the same results to ~1e-9 pu) or OpenDSS (dss-python)")
    ext_grid_vm_pu: Optional[float] = Field(1.0, gt=0.5, lt=1.5, description=(
        "the external grid's voltage set point; with source, unless given, the net's own"))
    vm_min_pu: float = Field(0.9, gt=0, description="voltage band; EN 50160: 0.9-1.1 pu")
    vm_max_pu: float = Field(1.1, gt=0)
    max_loading_percent: float = Field(100.0, gt=0, description="line and transformer rating")
    import_limit_mw: Optional[float] = Field(None, gt=0, strict=True, description=(
        "limit on the LEC's net import at the LV busbar (load - PV + battery; the transformer's and the MV "
        "line's losses not included): the EMS keeps its plan at or below it (a hard LP constraint; a scenario "
        "the battery cannot keep below it is refused)"))
    mv_line: Optional[LineConfig] = Field(None, description="the built-in grid's MV line (required without source)")
    transformer: Optional[TransformerConfig] = Field(
        None, description="the built-in grid's MV/LV transformer (required without source)")
    source: Optional[str] = Field(None, exclude_if=lambda value: value is None, description=(
        "the grid from a feeder source instead of mv_line and transformer: 'pandapower: FILE' (a net saved with "
        "pandapower.to_json), 'simbench: CODE' or 'opendss: FILE' (see `lec-cosim feeder`), balanced; the "
        "households spread over its loads, the PCC at its external grid"))
    battery_bus: Optional[str] = Field(None, exclude_if=lambda value: value is None, description=(
        "with source: the battery's bus, by its name in the net or as 'bus <index>' (default: the LV side of the "
        "transformer at the external grid)"))

    @model_validator(mode="after")
    def _band(self) -> "GridConfig":
        if self.vm_min_pu >= self.vm_max_pu:
            raise ValueError("vm_min_pu must be below vm_max_pu")
        return self

    @field_validator("source")
    @classmethod
    def _source_kind(cls, value):
        kind, _, rest = (part.strip() for part in (value or "").partition(":"))
        if value is not None and (kind not in SOURCE_KINDS or (kind != "ieee_eu_lv" and not rest)):
            raise ValueError(f"{value!r} is not a feeder source: give 'pandapower: FILE', 'simbench: CODE' or "
                             "'opendss: FILE'")
        return value

    @model_validator(mode="after")
    def _one_grid(self) -> "GridConfig":
        if self.source is None:
            for name in ("mv_line", "transformer"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required for the built-in grid (or give source, a feeder's net)")
            if self.battery_bus is not None:
                raise ValueError("battery_bus: names a bus of a source's net; the built-in grid has its battery on "
                                 "the LV busbar")
            if self.ext_grid_vm_pu is None:
                raise ValueError("ext_grid_vm_pu: the built-in grid needs a set point")
            return self
        for name in ("mv_line", "transformer"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: the net of source has its own lines and transformer (add an MV line to "
                                 "the net to model one)")
        if "ext_grid_vm_pu" not in self.model_fields_set:
            self.__dict__["ext_grid_vm_pu"] = None  # the net's own set point, unless one is asked for
        return self


class MarketConfig(_Strict):
    price_file: FilePath
    currency: str = "EUR"
    price_unit: Literal["EUR/MWh"] = "EUR/MWh"
    feed_in_tariff: Optional[float] = Field(
        None, description="export price in currency/MWh; null credits exports at the spot price"
    )

    @field_validator("feed_in_tariff")
    @classmethod
    def _per_mwh(cls, value):
        # the price file's check: a tariff in EUR/kWh read as EUR/MWh would scale every export credit by 1/1000
        if value is not None and (abs(value) > 5000.0 or 0.0 < abs(value) < 1.0):
            raise ValueError(f"{value:g} currency/MWh is implausible (expected 0 or 1 to 5000 "
                             "currency/MWh); is it in EUR/kWh?")
        return value


class EMSConfig(_Strict):
    objective: Literal["min_cost", "min_import"]
    solver: Literal["glpk", "highs"] = "glpk"
    throughput_penalty: float = Field(
        1e-6, ge=0, description="tie-breaker per MWh charged or discharged; removes idle cycling"
    )


class Scenario(_ScenarioBase, HomeDevices):
    """A community battery behind the LEC's transformer, planned against day-ahead prices."""

    kind: Literal["community_battery"] = Field(description="the study: a community battery (see KINDS)")
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    description: str = ""
    lec_name: str = Field("lec1", pattern=r"^[A-Za-z0-9_]+$")
    start: CalendarTime
    horizon_h: float = Field(gt=0)
    resolution: Resolution = Resolution()
    framework: Literal["decentralised"] = "decentralised"
    households: HouseholdsConfig
    battery: BatteryConfig
    grid: GridConfig
    market: MarketConfig
    ems: EMSConfig
    outputs: OutputsConfig = OutputsConfig()
    broker: BrokerConfig = BrokerConfig()
    federation: FederationConfig = FederationConfig()
    agents: list[str] = Field(
        [], exclude_if=lambda value: not value, description="roles an external agent decides (lec_cosim.env): "
        "lec_ems, the community battery's set-point at every EMS step, in place of the LEC_EMS's LP; a device "
        "kind's role at the homes (the EVs' charging power at every grid step, in place of their mode: see the "
        "EV section's agent role)")
    source_file: Optional[FilePath] = Field(None, exclude=True)

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
        if abs(horizon_min / res.market_min - round(horizon_min / res.market_min)) > 1e-9:
            # the market publishes each day's prices at its steps: a last part-step would have none
            raise ValueError("horizon_h: must be a whole number of market steps")
        if round(horizon_min / max(res.ems_min, res.market_min)) < 1:
            raise ValueError(f"horizon_h: {self.horizon_h:g} h is shorter than one EMS and market step")
        offered = ["lec_ems", *(d.agent_role for d in self.home_devices.values() if d.agent_role is not None)]
        for role in self.agents:
            if role not in offered:
                raise ValueError(f"agents: {role!r} is not a role of this scenario (its roles: {', '.join(offered)}; "
                                 "a device's role comes with its section)")
        if len(set(self.agents)) != len(self.agents):
            raise ValueError("agents: a role named twice")
        if "lec_ems" in self.agents and res.ems_min != res.grid_min:
            # the agent proxy sees the households' and the grid's values of its own steps only
            raise ValueError("agents: lec_ems decides every grid step: give resolution.ems_min equal to grid_min")
        return self

    @property
    def ems_step_s(self) -> int:
        return self.resolution.ems_min * 60

    @property
    def home_count(self) -> int:
        return self.households.count

    @property
    def load_forecasts(self) -> list[tuple[str, str]]:
        if self.grid.import_limit_mw is None:
            return []
        return [("grid.import_limit_mw", "the LEC_EMS plans the import limit")]


def read(data: dict, source: Path) -> Scenario:
    scenario = _validate(Scenario, data, source)
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
        **_source_and_outputs(scenario, source),
        **scenario.resolved_home_devices(base, source),
    }
    if scenario.grid.source is not None:
        from lec_cosim.models.feeder_source import resolve_source

        resolved = resolve_source(scenario.grid.source, base)
        kind, _, value = (part.strip() for part in resolved.partition(":"))
        if kind in ("pandapower", "opendss") and not Path(value).is_file():
            raise ScenarioError(f"{source}: grid.source: file not found: {value}")
        updates["grid"] = scenario.grid.model_copy(update={"source": resolved})
    scenario = scenario.model_copy(update=updates)
    for field, path in (
        ("households.load_profile_file", scenario.households.load_profile_file),
        ("households.pv.profile_file", scenario.households.pv.profile_file if scenario.households.pv else None),
        ("market.price_file", scenario.market.price_file),
    ):
        if path is not None and not path.is_file():
            raise ScenarioError(f"{source}: {field}: file not found: {path}")
    return scenario
