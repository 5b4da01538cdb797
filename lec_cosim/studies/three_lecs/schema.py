"""The three-LEC scenario: LECs on the IEEE feeder under one framework, their tariffs, platform, negotiation,
p2p markets and the DSO's limits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, PrivateAttr, field_validator, model_validator

from lec_cosim.schema.base import (
    _EUR_PER_KWH,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    BrokerConfig,
    CalendarTime,
    FederationConfig,
    FilePath,
    OutputsConfig,
    ScenarioError,
    _ScenarioBase,
    _source_and_outputs,
    _Strict,
    _unique,
    _validate,
    _VoltageBand,
)
from lec_cosim.schema.feeder_source import SourceFeederConfig, feeder_and_pv
from lec_cosim.schema.homes import HomeDevices
from lec_cosim.schema.ieee_feeder import (
    FEEDER_HOUSEHOLDS,
    LemResolution,
    PVSizingConfig,
)
from lec_cosim.studies.local_market.schema import LemScenario

FRAMEWORKS = ("decentralised", "distributed", "p2p")
"""The frameworks of a multi-LEC scenario (the ``Literal`` of ``MultiLecScenario.framework``)."""


class LecComposition(_Strict):
    """What sets one LEC apart from the others (``lecs.each.<lec>``): every field left out is the common value."""

    pv_scale: float = Field(1.0, ge=0, le=5, description="factor on the kWp of this LEC's prosumers (the common kWp "
                            "that pv.peak_kw sizes); 0: no PV in this LEC. Which households are prosumers stays "
                            "the same")
    load_scale: float = Field(1.0, gt=0, le=5, description="factor on this LEC's households' load (kW and kvar), "
                              "on top of the common factor of feeder.load_peak_kw; the LEC's community battery is "
                              "sized on the scaled load")
    home_battery_kwh: Optional[float] = Field(None, ge=0, description="energy of each home battery of this LEC, kWh "
                                              "(0: none; default lecs.home_battery_kwh). The same households have "
                                              "them: every second prosumer along the feeder")
    home_battery_kw: Optional[float] = Field(None, ge=0, description="power of each home battery of this LEC, kW "
                                             "(0: none; default lecs.home_battery_kw)")
    community_battery_hours: Optional[float] = Field(None, ge=0, description="energy of this LEC's community "
                                                     "battery in hours of its mean load, h (0: none; default "
                                                     "lecs.community_battery_hours)")


class LecsConfig(_Strict):
    count: int = Field(3, ge=2, le=5, description="LECs the households are split into along the feeder's branches")
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
    each: dict[str, LecComposition] = Field(
        {}, exclude_if=lambda value: not value, description="per LEC (by name: lec1, lec2, ...), what differs "
        "from the common values above: PV and load scale, home and community battery sizes (default: nothing, "
        "every LEC alike)")
    _unique_lecs = field_validator("on_platform")(_unique)

    @model_validator(mode="after")
    def _each_names_an_lec(self) -> "LecsConfig":
        names = [f"lec{k + 1}" for k in range(self.count)]
        for name, lec in self.each.items():
            if name not in names:
                raise ValueError(f"each: unknown LEC {name!r}; the LECs are {', '.join(names)}")
            kwh, kw = self.home_battery(name)
            sized = lec.home_battery_kwh is not None or lec.home_battery_kw is not None  # else the common pair's
            if sized and (kwh > 0) != (kw > 0):
                raise ValueError(f"each.{name}: a home battery of {kwh:g} kWh and {kw:g} kW: give both or set both "
                                 f"to 0 (none)")
            hours = self.community_battery_hours_of(name)
            touched = any(getattr(lec, key) is not None
                          for key in ("home_battery_kwh", "home_battery_kw", "community_battery_hours"))
            if touched and kw > 0 and hours > 0 and abs(kwh / kw - hours) > 1e-9:
                # The LEC_EMS pools its batteries and splits a set-point by power (models.multi_lec_ems): they
                # stay at one state of charge only if each stores the same hours of its power.
                raise ValueError(f"each.{name}: home batteries of {kwh:g} kWh / {kw:g} kW store {kwh / kw:g} h, the "
                                 f"community battery {hours:g} h: the LEC_EMS pools them, so they must store the "
                                 f"same hours")
        return self

    def composition(self, lec: str) -> LecComposition:
        """What is particular to ``lec`` (the common values where ``each`` says nothing)."""
        return self.each.get(lec, _COMMON)

    def home_battery(self, lec: str) -> tuple[float, float]:
        """Energy (kWh) and power (kW) of each home battery of ``lec``."""
        mine = self.composition(lec)
        return (self.home_battery_kwh if mine.home_battery_kwh is None else mine.home_battery_kwh,
                self.home_battery_kw if mine.home_battery_kw is None else mine.home_battery_kw)

    def community_battery_hours_of(self, lec: str) -> float:
        mine = self.composition(lec)
        return self.community_battery_hours if mine.community_battery_hours is None else mine.community_battery_hours


_COMMON = LecComposition()
"""An LEC that ``lecs.each`` leaves out: every value the common one."""


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
    warm_start: bool = Field(
        True, exclude_if=lambda value: value,  # the default: a run without it writes the scenario it always wrote
        description="each hour's negotiation starts from the exchanges and prices the last hour agreed (its "
        "window moved on by an hour) instead of from zero: the shipped day needs 70 iterations instead of 1,082, "
        "for the same optimum within tol_kw; false: every hour starts cold")
    over_relaxation: float = Field(
        1.6, ge=1.0, lt=2.0, exclude_if=lambda value: value == 1.6,  # defaults are left out of scenario.json
        description="ADMM over-relaxation alpha (Boyd et al. 2011, 3.4.3): each update takes the average of the "
        "two proposals alpha times and the last agreement 1 - alpha times; 1: plain ADMM")
    adaptive_rho: bool = Field(
        True, exclude_if=lambda value: value,
        description="residual balancing (Boyd et al. 2011, 3.4.1): each edge's rho doubles or halves in a "
        "negotiation's first 50 iterations when one residual, in units of its tolerance, is ten times the other; "
        "false: rho_eur_per_kwh2 throughout")


class P2PConfig(_Strict):
    fairness_fee_eur_per_kwh: float = Field(0.02, ge=0, description="import fee on the previous period's largest "
                                            "importer of each LEC (Moret and Pinson 2018)")
    over_cap_fee_eur_per_kwh: float = Field(0.10, ge=0, description="paid on a member's import above its cap")
    _fees = field_validator("fairness_fee_eur_per_kwh", "over_cap_fee_eur_per_kwh")(_EUR_PER_KWH)
    member_import_cap_kw: Optional[float] = Field(None, gt=0, description="import cap of every member without a "
                                                  "DSO limit (null: none)")
    market: Literal["ems", "pool_operator", "continuous"] = Field(
        "ems", description="each LEC's P2P market: the hourly uniform-price pool cleared by its LEC_EMS (ems), or "
        "by one pool-operator federate per LEC running the local market's component federates/lem_market.py "
        "(pool_operator), to which the members send their orders and which answers them and sends the LEC_EMS the "
        "book (both clear the same pool, so the results agree); or a continuous double auction run by the LEC_EMS "
        "(continuous): the members' orders reach an order book one by one in a random arrival order and trade by "
        "price-time priority, each trade at the resting order's price (lec_cosim.models.continuous_auction)")
    arrival_seed: int = Field(
        0, ge=0, exclude_if=lambda value: value == 0,  # a run without it writes the scenario it always wrote
        description="market continuous: seed of the orders' arrival order, drawn anew for every hour and LEC "
        "from (seed, hour, LEC index); the same seed gives the same run")


class DsoConfig(_VoltageBand):
    limits: bool = Field(False, description="the DSO publishes per-LEC import and export limits from its power "
                         "flow, which the EMSs respect in the next market period")
    vm_min_pu: float = Field(0.9, gt=0)
    vm_max_pu: float = Field(1.1, gt=0)
    max_loading_percent: float = Field(100.0, gt=0)
    margin_pu: float = Field(0.005, ge=0, description="kept inside the band by the limits")
    limit_penalty_eur_per_kwh: float = Field(0.5, gt=0, description="EMS cost of a kWh beyond a DSO limit "
                                             "(soft limits: a plan stays feasible)")
    solver: Literal["power-grid-model", "pandapower", "opendss"] = Field(
        "power-grid-model", description="three-phase power-flow backend: power-grid-model, pandapower or OpenDSS "
        "(dss-python); the results agree within ~1e-7 pu")
    # both left out of a scenario that keeps the default, so a run without them writes the scenario it always wrote
    limits_per: Literal["lec", "household"] = Field(
        "lec", exclude_if=lambda value: value == "lec", description="with limits: per LEC from voltages only "
        "(lec), or per household (its connection point) from voltages and line and transformer loadings "
        "(household; lec_cosim.models.household_envelope): the LEC_EMSs plan within the sum of their households' "
        "limits, each household curtails its PV to its export limit, the p2p HEMSs get their own import limit as "
        "their cap")
    sharing: Literal["equal", "proportional"] = Field(
        "equal", exclude_if=lambda value: value == "equal", description="limits_per household: how a common "
        "branch's capacity is shared between the households behind it: the same limit each (equal) or in "
        "proportion to each household's need at the step (proportional); both by progressive filling")

    @model_validator(mode="after")
    def _per_household_needs_limits(self) -> "DsoConfig":
        if self.limits_per == "household" and not self.limits:
            raise ValueError("limits_per: household limits are the DSO loop's: set dso.limits: true as well")
        if self.sharing != "equal" and self.limits_per != "household":
            raise ValueError(f"sharing: {self.sharing} shares household limits: set dso.limits_per: household")
        return self

    @model_validator(mode="after")
    def _margin_inside_band(self) -> "DsoConfig":
        half = (self.vm_max_pu - self.vm_min_pu) / 2
        if self.margin_pu >= half:
            raise ValueError(f"margin_pu: {self.margin_pu:g} pu leaves no band: it must be below half the band "
                             f"{self.vm_min_pu:g}-{self.vm_max_pu:g} pu ({half:g} pu)")
        return self


class EmsConfig(_Strict):
    """What the LEC_EMSs and the p2p HEMSs plan on (``lec_cosim.models.forecast``) and how far ahead."""

    forecast: Literal["perfect", "persistence", "seasonal_naive", "learned"] = Field(
        "perfect", description="the households' load and PV the EMSs and HEMSs plan on: the true profiles "
        "(perfect), the last metered hour held (persistence), the same hour of the previous day or week "
        "(seasonal_naive), or gradient boosting on calendar features and lagged values trained on the days before "
        "the run's start (learned). The true profiles drive the grid whatever the forecast")
    seasonal_period_h: Literal[24, 168] = Field(24, description="seasonal_naive: the period, a day or a week")
    training_days: int = Field(28, ge=7, le=120, description="learned: days before the run's start it is trained "
                               "on (its lags reach a week further back)")
    lookahead_h: int = Field(
        24, ge=1, le=168, description="hours every EMS and HEMS plans ahead at each market period (a rolling "
        "horizon, ending at the initial state of charge); cut at the run's end, so a one-day run plans the rest "
        "of its day")


MAX_HOUSEHOLD_LIMITS_H = 7 * 24
"""The longest run with the DSO's limits per household: its grid adapter forecasts every step's state when it starts
and publishes every hour's LEC limits each step (``lec_cosim.adapters.three_lec_grid``), which a year would make a
quarter of an hour of start-up and gigabytes of values."""


class MultiLecScenario(_ScenarioBase, HomeDevices):
    """Three (or N) LECs on the IEEE European LV feeder under one of three frameworks (Rana et al. 2022)."""

    kind: Literal["three_lecs"] = Field(description="the study: several LECs under one framework (see KINDS)")
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    description: str = ""
    framework: Literal["decentralised", "distributed", "p2p"]
    start: CalendarTime = Field(description="day of the PV data (2016); the IEEE loads are one typical day, a "
                                "source's dated loads are those of this day")
    horizon_h: float = Field(24.0, gt=0, description="hours from start: up to a year, as far as the PV data "
                             "(and a feeder source's loads) reach")
    resolution: LemResolution = LemResolution()
    feeder: SourceFeederConfig
    pv: PVSizingConfig
    lecs: LecsConfig = LecsConfig()
    tariff: TariffConfig = TariffConfig()
    platform: PlatformConfig = PlatformConfig()
    negotiation: NegotiationConfig = NegotiationConfig()
    p2p: P2PConfig = P2PConfig()
    dso: DsoConfig = DsoConfig()
    ems: EmsConfig = Field(
        EmsConfig(), exclude_if=lambda value: value == EmsConfig(),  # a run without it writes the scenario it wrote
        description="what the LEC_EMSs and HEMSs plan on (perfect foresight by default, or a forecast) and how far "
        "ahead")
    outputs: OutputsConfig = OutputsConfig()
    broker: BrokerConfig = BrokerConfig()
    federation: FederationConfig = FederationConfig()
    agents: list[str] = Field(
        [], exclude_if=lambda value: not value, description="p2p: households, by name, whose home battery an "
        "external agent decides every hour (lec_cosim.env); their HEMS bids what the agent's set-point gives")
    source_file: Optional[FilePath] = Field(None, exclude=True)
    _source_households: Optional[int] = PrivateAttr(None)

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
        if self.feeder.source is not None and self.dso.solver == "pandapower":
            raise ValueError("dso.solver: pandapower's three-phase flow is not set up for a feeder.source (its "
                             "source and transformer data); use power-grid-model or opendss")
        if self.ems.forecast != "perfect":
            self._forecast_has_history()
        if len(set(self.agents)) != len(self.agents):
            raise ValueError("agents: a household is named twice")
        if self.agents and self.framework != "p2p":
            raise ValueError(f"agents: only p2p has roles an agent can take (its HEMSs plan their home batteries), "
                             f"not {self.framework}")
        if self.agents and self.ems.forecast != "perfect":
            raise ValueError(f"agents: an agent's role observes and defaults to its HEMS's plan on the true profiles; "
                             f"with ems.forecast {self.ems.forecast} it would not be its HEMS's: use forecast perfect")
        if self.dso.limits_per == "household" and self.horizon_h > MAX_HOUSEHOLD_LIMITS_H:
            raise ValueError(f"dso.limits_per: household limits are forecast for the whole run when it starts (a power "
                             f"flow per step): at most {MAX_HOUSEHOLD_LIMITS_H} h, not {self.horizon_h:g} h; use "
                             "limits_per: lec for longer runs")
        if self.agents and self.feeder.source is None:  # a source's households are known with its data
            households = {f"LOAD{k}" for k in range(1, FEEDER_HOUSEHOLDS + 1)}
            unknown = [name for name in self.agents if name not in households]
            if unknown:
                raise ValueError(f"agents: {', '.join(unknown)}: no household of the IEEE feeder (LOAD1 to "
                                 f"LOAD{FEEDER_HOUSEHOLDS})")
        return self

    def _forecast_has_history(self) -> None:
        """A forecast needs metered days before the start: the IEEE feeder's PV data begin on 1 January 2016."""
        from lec_cosim.models.forecast import history_hours
        from lec_cosim.models.lem_participants import PV_PROFILE_YEAR

        ems = self.ems
        if self.feeder.source is not None:
            raise ValueError(f"ems.forecast: {ems.forecast} needs the households' history before the start, which a "
                             f"feeder.source does not give yet; use perfect")
        days = -(-history_hours(ems.forecast, seasonal_period_h=ems.seasonal_period_h,
                                training_days=ems.training_days) // 24)
        first = self.start.date() - dt.timedelta(days=days)
        if first.year != PV_PROFILE_YEAR:
            raise ValueError(f"ems.forecast: {ems.forecast} needs {days} days of PV data before the start "
                             f"({first.isoformat()}), but the PV data begin on {PV_PROFILE_YEAR}-01-01")

    @property
    def lec_names(self) -> list[str]:
        return [f"lec{k + 1}" for k in range(self.lecs.count)]

    @property
    def home_count(self) -> int | None:
        """The feeder's households: the IEEE feeder's 55, or those placed on a source (counted when the scenario
        is read: :func:`read`; None before)."""
        return FEEDER_HOUSEHOLDS if self.feeder.source is None else self._source_households

    @property
    def load_forecasts(self) -> list[tuple[str, str]]:
        return [("dso.limits", "the DSO sets its limits for the next hour")] if self.dso.limits else []

    @property
    def platform_lecs(self) -> list[str]:
        """LECs on the market platform (decentralised and p2p)."""
        return self.lec_names if self.lecs.on_platform is None else list(self.lecs.on_platform)


def read(data: dict, source: Path) -> MultiLecScenario:
    scenario = _validate(MultiLecScenario, data, source)
    unknown = sorted(set(scenario.platform_lecs) - set(scenario.lec_names))
    if unknown:
        raise ScenarioError(f"{source}: lecs.on_platform: unknown LEC {unknown[0]!r}; the LECs are "
                            f"{', '.join(scenario.lec_names)}")
    feeder, pv, households = feeder_and_pv(scenario, scenario.pv, "pv.profile_file", source)
    if households is not None:
        scenario._source_households = households
        try:
            scenario._devices_fit_the_homes()  # now that the homes are known
        except ValueError as error:
            raise ScenarioError(f"{source}: {error}") from None
    updates = {"feeder": feeder, "pv": pv, **_source_and_outputs(scenario, source),
               **scenario.resolved_home_devices(source.parent, source)}
    read = scenario.model_copy(update=updates)
    read._source_households = households
    return read
