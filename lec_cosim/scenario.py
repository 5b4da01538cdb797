"""Scenario schema: one validated YAML file drives the whole federation.

All paths inside a scenario are relative to the scenario file. ``load_scenario`` resolves them,
so the returned object can be serialised and handed to federates running in any directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import (
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


class _VoltageBand(_Strict):
    """A ``vm_min_pu`` below a ``vm_max_pu``."""

    @model_validator(mode="after")
    def _band(self):
        if self.vm_min_pu >= self.vm_max_pu:
            raise ValueError("vm_min_pu must be below vm_max_pu")
        return self


class GridConfig(_VoltageBand):
    solver: Literal["pandapower", "power-grid-model"] = Field(
        "pandapower", description="balanced power-flow backend: pandapower (with its lightsim2grid Newton-Raphson, "
        "~0.07 ms a step here) or power-grid-model (~0.3 ms; the same results to ~1e-9 pu)")
    ext_grid_vm_pu: float = Field(1.0, gt=0.5, lt=1.5)
    vm_min_pu: float = Field(0.9, gt=0, description="voltage band; EN 50160: 0.9-1.1 pu")
    vm_max_pu: float = Field(1.1, gt=0)
    max_loading_percent: float = Field(100.0, gt=0, description="line and transformer rating")
    import_limit_mw: Optional[float] = Field(None, gt=0, strict=True, description=(
        "limit on the LEC's net import at the LV busbar (load - PV + battery; the transformer's and the MV "
        "line's losses not included): the EMS keeps its plan at or below it (a hard LP constraint; a scenario "
        "the battery cannot keep below it is refused)"))
    mv_line: LineConfig
    transformer: TransformerConfig


    @model_validator(mode="after")
    def _band(self) -> "GridConfig":
        if self.vm_min_pu >= self.vm_max_pu:
            raise ValueError("vm_min_pu must be below vm_max_pu")
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


class OutputsConfig(_Strict):
    directory: Optional[FilePath] = None


class BrokerConfig(_Strict):
    """Where the federation's broker listens; the federates reach it there."""

    address: str = Field("127.0.0.1", description=(
        "IPv4 address or host name the broker listens on. 127.0.0.1 (default) keeps the federation on this "
        "machine; an address of one of this host's network interfaces opens it to that network (set key)"))
    key: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description=(
        "broker key: brokers and federates without it are refused (--brokerkey)"))

    @field_validator("address")
    @classmethod
    def _one_address(cls, address: str) -> str:
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


class Scenario(_ScenarioBase):
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
        return self

    @property
    def ems_step_s(self) -> int:
        return self.resolution.ems_min * 60


# --- local electricity market on the IEEE European LV feeder (framework: local_market) ----------


class LemResolution(_Strict):
    """Step of the market and of the grid in minutes. The LEM is hourly (the paper's day-ahead pool)."""

    market_min: Literal[60] = 60
    grid_min: int = Field(15, gt=0)


class LemExchangeResolution(LemResolution):
    exchange: Literal["period", "step"] = Field(
        "period", description="how often the participants, the DSO and the recorder exchange values: once per "
        "market period, each value a vector of the period's grid steps (the grid is still solved every grid "
        "step; nothing in this federation reacts within an hour, so the results are the same and a quarter of "
        "the time requests go), or at every grid step (for federates added to react within the hour)")


class FeederConfig(_Strict):
    data_dir: FilePath = Field(description="folder of the IEEE European LV test feeder data (csv/, load profiles)")
    load_peak_kw: Optional[float] = Field(
        140.0, gt=0, description="scale the 55 IEEE load profiles so that their aggregate hourly peak is "
        "this many kW (the paper's load peak); null keeps the published profiles (38.9 kW)"
    )


class LemFeederConfig(FeederConfig):
    copies: int = Field(1, ge=1, le=40, description="identical copies of the feeder, each with its own 800 kVA "
                        "transformer, under the one 11 kV source: 55 x copies households and 6 x copies CHPs in "
                        "one market (scale studies); copy c's participants are named F<c>_LOADk, F<c>_CHPi")


class PVSizingConfig(_Strict):
    profile_file: FilePath
    peak_kw: float = Field(194.0, gt=0, description="aggregate hourly PV peak of the 42 prosumers on the day")


class CHPConfig(_Strict):
    capacity_kw: float = Field(10.0, gt=0)
    b_eur_per_kwh: float = Field(0.20, gt=0, description="cost coefficient b of the marginal cost 2*b*sqrt(G/MW)")
    _b = field_validator("b_eur_per_kwh")(_EUR_PER_KWH)


class LemPVSizingConfig(PVSizingConfig):
    sizing_day: Optional[CalendarDay] = Field(
        None, description="2016 day whose aggregate hourly PV peak is peak_kw (default: the start day); needed "
        "for a horizon that starts on a day without sun (2016-01-01 has no PV in the data)")


class ParticipantsConfig(_Strict):
    pv: LemPVSizingConfig
    chp: CHPConfig = CHPConfig()
    federates: int = Field(1, ge=1, le=61,
                           description="participant federates; the 61 players are dealt to them in turn")


class LemMarketConfig(_Strict):
    enabled: bool = Field(description="false: no LEM (the base cases); true: the market operator clears an hourly pool")
    tariff_scheme: Literal["plain", "bihourly"]
    solver: Literal["merit_order", "glpk", "highs"] = "merit_order"
    chp_strategy: Literal["truthful", "aco"] = "truthful"
    learned_bids_file: Optional[FilePath] = Field(
        None, description="bids written by `lec-cosim train-bidders`; required for chp_strategy aco"
    )


class LearningConfig(_Strict):
    iterations: int = Field(500, gt=0)
    ants: int = Field(20, gt=0)
    runs: int = Field(10, gt=0)
    seed: int = Field(1, ge=0)
    dn_penalty: bool = Field(True, description="include the distribution-network impact in the fitness")


class LemGridConfig(_VoltageBand):
    vm_min_pu: float = Field(0.9, gt=0, description="voltage band; EN 50160: 0.9-1.1 pu")
    vm_max_pu: float = Field(1.1, gt=0)
    max_loading_percent: float = Field(100.0, gt=0, description="of the line and transformer ratings")
    va_max_deviation_degree: float = Field(5.0, gt=0, description="angle band around the transformer LV bus")
    dn_impact_counts: Literal["reduced", "full"] = Field(
        "reduced", description="violation counts in the DN impact: the paper's 110-bus reduced model or all 906 buses"
    )
    solver: Literal["power-grid-model", "pandapower"] = Field(
        "power-grid-model", description="three-phase power-flow backend (the results agree within ~1e-7 pu)")


class LemScenario(_ScenarioBase):
    """A local electricity market among the IEEE European LV feeder's households (Lezama et al.)."""

    kind: Literal["local_market"] = Field(description="the study: a local electricity market (see KINDS)")
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    description: str = ""
    framework: Literal["local_market"] = "local_market"
    start: CalendarTime = Field(description="first day of the PV data (2016) and PV sizing day; the IEEE loads "
                               "are one typical day, repeated every day")
    horizon_h: float = Field(24.0, gt=0, description="whole hours from start, up to the end of the PV data "
                             "(2016-12-31 24:00); PV follows the calendar, loads and CHP bids repeat daily")
    resolution: LemExchangeResolution = LemExchangeResolution()
    feeder: LemFeederConfig
    participants: ParticipantsConfig
    market: LemMarketConfig
    learning: LearningConfig = LearningConfig()
    grid: LemGridConfig = LemGridConfig()
    outputs: OutputsConfig = OutputsConfig()
    broker: BrokerConfig = BrokerConfig()
    federation: FederationConfig = FederationConfig()
    source_file: Optional[FilePath] = Field(None, exclude=True)

    @field_validator("start")
    @classmethod
    def _midnight(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            raise ValueError("give local standard time without a UTC offset")
        if value.time() != dt.time(0):
            raise ValueError("the IEEE load profiles start at midnight; start at 00:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "LemScenario":
        res = self.resolution
        if 60 % res.grid_min:
            raise ValueError("resolution.grid_min: must divide an hour (the PV data are 15-min, loads 1-min)")
        if res.market_min % res.grid_min or 1440 % res.market_min:
            raise ValueError("resolution.market_min: must be a multiple of grid_min and divide a day")
        if abs(self.horizon_h * 60 / res.market_min - round(self.horizon_h * 60 / res.market_min)) > 1e-9:
            raise ValueError("horizon_h: must be a whole number of market periods")
        if round(self.horizon_h * 60 / res.market_min) < 1:
            raise ValueError(f"horizon_h: {self.horizon_h:g} h is shorter than one market period")
        if self.market.chp_strategy == "aco" and self.market.learned_bids_file is None:
            raise ValueError("market.learned_bids_file: needed for chp_strategy aco (write it with train-bidders)")
        return self


# --- three LECs on the IEEE European LV feeder (framework: decentralised | distributed | p2p) ----


FRAMEWORKS = ("decentralised", "distributed", "p2p")
"""The frameworks of a multi-LEC scenario (the ``Literal`` of ``MultiLecScenario.framework``)."""


class LecsConfig(_Strict):
    count: int = Field(3, ge=2, le=5, description="LECs the 55 households are split into along the feeder's branches")
    home_battery_kwh: float = Field(10.0, ge=0)
    home_battery_kw: float = Field(5.0, ge=0)
    community_battery_hours: float = Field(2.0, ge=0, description="community battery energy in hours of its LEC's "
                                           "mean load; its power is that mean load")
    battery_efficiency: float = Field(0.95, gt=0, le=1, description="round trip")
    neighbour_max_distance_m: float = Field(50.0, gt=0, description="LECs whose households come this close along "
                                            "the feeder are neighbours")
    on_platform: Optional[list[str]] = Field(
        None, description="decentralised and p2p: LECs that join the market platform (default all); the others "
        "trade with the grid only")
    _unique_lecs = field_validator("on_platform")(_unique)


class TariffConfig(_Strict):
    scheme: Literal["plain", "bihourly"] = "bihourly"
    feed_in_eur_per_kwh: float = Field(0.045, ge=0)
    _feed_in = field_validator("feed_in_eur_per_kwh")(_EUR_PER_KWH)


class PlatformConfig(_Strict):
    wheeling_fee_eur_per_kwh: float = Field(0.005, ge=0, description="added to the sellers' offers between LECs")
    _fee = field_validator("wheeling_fee_eur_per_kwh")(_EUR_PER_KWH)


class NegotiationConfig(_Strict):
    wheeling_eur_per_kwh2: float = Field(1e-3, gt=0, description="quadratic cost of an exchange between neighbours")
    edge_capacity_kw: float = Field(100.0, gt=0)
    rho_eur_per_kwh2: Optional[float] = Field(None, gt=0, description="ADMM penalty; default 3 x wheeling")
    tol_kw: float = Field(0.01, gt=0, description="primal residual tolerance")
    max_iterations: int = Field(300, ge=1, le=900, description="iteration cap per market period")


class P2PConfig(_Strict):
    fairness_fee_eur_per_kwh: float = Field(0.02, ge=0, description="import fee on the previous period's largest "
                                            "importer of each LEC (Moret and Pinson 2018)")
    over_cap_fee_eur_per_kwh: float = Field(0.10, ge=0, description="paid on a member's import above its cap")
    _fees = field_validator("fairness_fee_eur_per_kwh", "over_cap_fee_eur_per_kwh")(_EUR_PER_KWH)
    member_import_cap_kw: Optional[float] = Field(None, gt=0, description="import cap of every member without a "
                                                  "DSO limit (null: none)")


class DsoConfig(_VoltageBand):
    limits: bool = Field(False, description="the DSO publishes per-LEC import and export limits from its power "
                         "flow, which the EMSs respect in the next market period")
    vm_min_pu: float = Field(0.9, gt=0)
    vm_max_pu: float = Field(1.1, gt=0)
    max_loading_percent: float = Field(100.0, gt=0)
    margin_pu: float = Field(0.005, ge=0, description="kept inside the band by the limits")
    limit_penalty_eur_per_kwh: float = Field(0.5, gt=0, description="EMS cost of a kWh beyond a DSO limit "
                                             "(soft limits: a plan stays feasible)")
    solver: Literal["power-grid-model", "pandapower"] = Field(
        "power-grid-model", description="three-phase power-flow backend (the results agree within ~1e-7 pu)")

    @model_validator(mode="after")
    def _margin_inside_band(self) -> "DsoConfig":
        half = (self.vm_max_pu - self.vm_min_pu) / 2
        if self.margin_pu >= half:
            raise ValueError(f"margin_pu: {self.margin_pu:g} pu leaves no band: it must be below half the band "
                             f"{self.vm_min_pu:g}-{self.vm_max_pu:g} pu ({half:g} pu)")
        return self


class MultiLecScenario(_ScenarioBase):
    """Three (or N) LECs on the IEEE European LV feeder under one of three frameworks (Rana et al. 2022)."""

    kind: Literal["three_lecs"] = Field(description="the study: several LECs under one framework (see KINDS)")
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    description: str = ""
    framework: Literal["decentralised", "distributed", "p2p"]
    start: CalendarTime = Field(description="day of the PV data (2016); the IEEE loads are one typical day")
    horizon_h: float = Field(24.0, gt=0, le=24)
    resolution: LemResolution = LemResolution()
    feeder: FeederConfig
    pv: PVSizingConfig
    lecs: LecsConfig = LecsConfig()
    tariff: TariffConfig = TariffConfig()
    platform: PlatformConfig = PlatformConfig()
    negotiation: NegotiationConfig = NegotiationConfig()
    p2p: P2PConfig = P2PConfig()
    dso: DsoConfig = DsoConfig()
    outputs: OutputsConfig = OutputsConfig()
    broker: BrokerConfig = BrokerConfig()
    federation: FederationConfig = FederationConfig()
    source_file: Optional[FilePath] = Field(None, exclude=True)

    _midnight = field_validator("start")(LemScenario._midnight.__func__)

    @model_validator(mode="after")
    def _consistent(self) -> "MultiLecScenario":
        res = self.resolution
        if 60 % res.grid_min:
            raise ValueError("resolution.grid_min: must divide an hour (the PV data are 15-min, loads 1-min)")
        if abs(self.horizon_h - round(self.horizon_h)) > 1e-9:
            raise ValueError("horizon_h: must be a whole number of hours")
        if round(self.horizon_h) < 1:
            raise ValueError(f"horizon_h: {self.horizon_h:g} h is shorter than one hour")
        return self

    @property
    def lec_names(self) -> list[str]:
        return [f"lec{k + 1}" for k in range(self.lecs.count)]

    @property
    def platform_lecs(self) -> list[str]:
        """LECs on the market platform (decentralised and p2p)."""
        return self.lec_names if self.lecs.on_platform is None else list(self.lecs.on_platform)


def _source_and_outputs(scenario: _ScenarioBase, source: Path) -> dict:
    """Updates every scenario kind needs: its source file, and its output folder taken from there."""
    updates = {"source_file": source.resolve()}
    if scenario.outputs.directory is not None:
        updates["outputs"] = OutputsConfig(directory=(source.parent / scenario.outputs.directory).resolve())
    return updates


def _ieee_feeder_and_pv(scenario, pv: PVSizingConfig, pv_field: str, source: Path):
    """The feeder and PV settings of an IEEE-feeder scenario with their paths resolved and checked."""
    base = source.parent
    feeder = scenario.feeder.model_copy(update={"data_dir": (base / scenario.feeder.data_dir).resolve()})
    pv = pv.model_copy(update={"profile_file": (base / pv.profile_file).resolve()})
    if not (feeder.data_dir / "csv" / "Lines.csv").is_file():
        raise ScenarioError(f"{source}: feeder.data_dir: not an IEEE European LV data folder: {feeder.data_dir}")
    if not pv.profile_file.is_file():
        raise ScenarioError(f"{source}: {pv_field}: file not found: {pv.profile_file}")
    return feeder, pv


def _lem_days_within_pv_data(scenario: LemScenario, pv_file: Path, source: Path) -> None:
    """A horizon that starts within the PV data must end within it, and the PV sizing day must have sun.

    A start or sizing day outside the data is left to the data check (``data: ...``), as is a file
    that cannot be read.
    """
    from lec_cosim.models.lem_participants import pv_data_span, pv_day_profiles

    try:
        first, end = (t.to_pydatetime() for t in pv_data_span(pv_file))
    except (ValueError, KeyError, OSError, IndexError):
        return
    stop = scenario.start + dt.timedelta(hours=scenario.horizon_h)
    if first <= scenario.start < end < stop:
        most = (end - scenario.start) // dt.timedelta(hours=1)
        raise ScenarioError(
            f"{source}: horizon_h: {scenario.horizon_h:g} h from {scenario.start.isoformat()} run to "
            f"{stop.isoformat()}, past the end of the PV data ({pv_file.name} ends at {end.isoformat()}); "
            f"at most {most} h from this start")
    sizing = scenario.participants.pv.sizing_day
    field = "participants.pv.sizing_day" if sizing is not None else "start"
    day = dt.datetime.combine(sizing or scenario.start.date(), dt.time(0))
    if first <= day < end:
        try:
            sunless = float(pv_day_profiles(day.date().isoformat(), pv_file).to_numpy().max()) <= 0.0
        except (ValueError, KeyError):
            return
        if sunless:
            raise ScenarioError(
                f"{source}: {field}: no PV at all on {day.date()} in {pv_file.name}, so the PV cannot be sized "
                f"to participants.pv.peak_kw on it; give participants.pv.sizing_day (e.g. 2016-05-26)")


def _lem_scenario_from_dict(data: dict, source: Path) -> LemScenario:
    scenario = _validate(LemScenario, data, source)
    feeder, pv = _ieee_feeder_and_pv(scenario, scenario.participants.pv, "participants.pv.profile_file", source)
    _lem_days_within_pv_data(scenario, pv.profile_file, source)
    market = scenario.market
    if market.learned_bids_file is not None:
        market = market.model_copy(
            update={"learned_bids_file": (source.parent / market.learned_bids_file).resolve()})
    return scenario.model_copy(update={
        "feeder": feeder, "participants": scenario.participants.model_copy(update={"pv": pv}), "market": market,
        **_source_and_outputs(scenario, source)})


def _multi_lec_scenario_from_dict(data: dict, source: Path) -> MultiLecScenario:
    scenario = _validate(MultiLecScenario, data, source)
    unknown = sorted(set(scenario.platform_lecs) - set(scenario.lec_names))
    if unknown:
        raise ScenarioError(f"{source}: lecs.on_platform: unknown LEC {unknown[0]!r}; the LECs are "
                            f"{', '.join(scenario.lec_names)}")
    feeder, pv = _ieee_feeder_and_pv(scenario, scenario.pv, "pv.profile_file", source)
    return scenario.model_copy(update={"feeder": feeder, "pv": pv, **_source_and_outputs(scenario, source)})


def is_multi_lec(scenario) -> bool:
    """Whether a loaded scenario is a multi-LEC one (frameworks decentralised, distributed, p2p)."""
    return isinstance(scenario, MultiLecScenario)


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


def _battery_scenario_from_dict(data: dict, source: Path) -> Scenario:
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
    }
    scenario = scenario.model_copy(update=updates)
    for field, path in (
        ("households.load_profile_file", scenario.households.load_profile_file),
        ("households.pv.profile_file", scenario.households.pv.profile_file if scenario.households.pv else None),
        ("market.price_file", scenario.market.price_file),
    ):
        if path is not None and not path.is_file():
            raise ScenarioError(f"{source}: {field}: file not found: {path}")
    return scenario


KINDS = {"community_battery": _battery_scenario_from_dict, "local_market": _lem_scenario_from_dict,
         "three_lecs": _multi_lec_scenario_from_dict}
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


def load_scenario(path: str | Path) -> Scenario | LemScenario:
    """Read and validate a scenario YAML (or the JSON a federate receives)."""
    path = Path(path)
    text = _scenario_text(path)
    try:
        data = yaml.load(text, Loader=_ScenarioLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(syntax)"
        raise ScenarioError(f"{path}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: (syntax): invalid YAML: nested too deeply") from None
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

    def absolute(node: dict | None, key: str) -> None:
        if node and node.get(key):
            node[key] = str((base.parent / node[key]).resolve())

    if data.get("kind") == "three_lecs":
        absolute(data["feeder"], "data_dir")
        absolute(data["pv"], "profile_file")
    elif data.get("kind") == "local_market":
        absolute(data["feeder"], "data_dir")
        absolute(data["participants"]["pv"], "profile_file")
        absolute(data["market"], "learned_bids_file")
    else:  # the community battery
        absolute(data["households"], "load_profile_file")
        absolute(data["households"].get("pv"), "profile_file")
        absolute(data["market"], "price_file")
    if name:
        data["name"] = name
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
