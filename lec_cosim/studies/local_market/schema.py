"""The local market's scenario: the players on the IEEE feeder, the hourly pool, tariffs, learnt bids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from lec_cosim.schema.base import (
    _EUR_PER_KWH,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    BrokerConfig,
    CalendarDay,
    CalendarTime,
    FederationConfig,
    FilePath,
    OutputsConfig,
    ScenarioError,
    _ScenarioBase,
    _source_and_outputs,
    _Strict,
    _validate,
    _VoltageBand,
)
from lec_cosim.schema.feeder_source import SourceFeederConfig, feeder_and_pv
from lec_cosim.schema.ieee_feeder import LemResolution, PVSizingConfig


class LemExchangeResolution(LemResolution):
    exchange: Literal["period", "day", "step"] = Field(
        "period", description="how often the participants, the market, the DSO and the recorder exchange values: "
        "once per market period, each value a vector of the period's grid steps (the grid is still solved every "
        "grid step; nothing in this federation reacts within an hour, so the results are the same and a quarter "
        "of the time requests go); once per day (day: the participants send the day's hourly orders at once, "
        "as to a day-ahead market with hourly products, the market clears each hour's pool and answers them "
        "all, the DSO solves the day's grid steps in one block: the same results, 24 x fewer time requests and "
        "messages; the players' orders must not depend on the day's earlier outcomes, so no agents); or at every "
        "grid step (for federates added to react within the hour)")


class LemFeederConfig(SourceFeederConfig):
    copies: int = Field(1, ge=1, le=200, description="identical copies of the feeder, each with its own 800 kVA "
                        "transformer, under the one 11 kV source: 55 x copies households and 6 x copies CHPs in "
                        "one market (scale studies); copy c's participants are named F<c>_LOADk, F<c>_CHPi")
    # the default left out of scenario.json, which stays as it was before the field existed
    source_strength: float = Field(1.0, gt=0, le=1000, exclude_if=lambda value: value == 1.0,
                                   description="the 11 kV source's short-circuit power as a "
                                   "multiple of the IEEE feeder's (3 kA, 57 MVA): its impedance is divided by this. "
                                   "The IEEE source carries some 20 copies; 182 copies' power flow diverges on it")

    @model_validator(mode="after")
    def _copies_of_ieee(self) -> "LemFeederConfig":
        if self.source is not None and self.copies != 1:
            raise ValueError("copies: copies are of the IEEE feeder; a source feeder has one")
        if self.source is not None and self.source_strength != 1.0:
            raise ValueError("source_strength: of the IEEE feeder's source; a source feeder has its own")
        return self


class CHPConfig(_Strict):
    count: int = Field(6, ge=0, le=100, description="CHP units; on a source feeder at spread households' buses "
                       "(the IEEE feeder has the paper's 6)")
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
    messages: Literal["per_player", "per_group"] = Field(
        "per_player", description="how orders and market results travel: one message per player from its own "
        "endpoint (per_player), or one per participant federate for all its players (per_group: the same book, "
        "clearing and results with two messages an hour per group instead of two per player)")


class LemMarketConfig(_Strict):
    enabled: bool = Field(description="false: no LEM (the base cases); true: the market operator clears an hourly pool")
    tariff_scheme: Literal["plain", "bihourly"]
    solver: Literal["merit_order", "glpk", "highs"] = "merit_order"
    chp_strategy: Literal["truthful", "aco"] = "truthful"
    learned_bids_file: Optional[FilePath] = Field(
        None, description="bids written by `lec-cosim train-bidders`; required for chp_strategy aco"
    )
    write_allocation: Optional[bool] = Field(
        None, exclude_if=lambda value: value is None,
        description="whether the results hold allocation.csv, the pool's bilateral allocation x_ij: a row per "
        "seller, buyer and hour, ~6 M a day with 1,045 households, ~450 M (25 GB) with 10,010. Default: written up "
        "to 2,500 participants (40 feeder copies), not above; the market and the recorder keep x_ij as its "
        "factors (sold_i, bought_j, volume) either way")


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
    solver: Literal["power-grid-model", "pandapower", "opendss", "fixed-point"] = Field(
        "power-grid-model", description="three-phase power-flow backend: power-grid-model, pandapower, OpenDSS "
        "(dss-python) or fixed-point (the project's own: a fixed point on the loads' currents over pandapower's "
        "sequence networks reduced to the loaded buses, factorised once; ~5 x faster than power-grid-model on "
        "one feeder, for long runs; not for feeder copies or a feeder.source); the results agree within ~1e-7 pu")
    flow_threads: int = Field(1, ge=1, le=16, exclude_if=lambda value: value == 1, description=(
        "power flows the DSO runs at once, each in a thread on its own copy of the power-grid-model engine (whose "
        "calculation releases Python's lock): for large grids (feeder copies), where the flows are the critical "
        "path; the same results to the last digit. 1 (default): one at a time"))

    @model_validator(mode="after")
    def _threads_need_power_grid_model(self):
        if self.flow_threads > 1 and self.solver != "power-grid-model":
            raise ValueError(f"flow_threads: runs power-grid-model in threads; solver is {self.solver}")
        return self


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
    agents: list[str] = Field(
        [], exclude_if=lambda value: not value, description="players, by name (CHP producers, households), whose "
        "bids an external agent decides (lec_cosim.env): each bids what the agent proxy federate publishes for it")
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
        if self.feeder.source is not None and self.grid.solver in ("pandapower", "fixed-point"):
            raise ValueError(f"grid.solver: {self.grid.solver} builds on pandapower's three-phase model, which is not "
                             "set up for a feeder.source (its source and transformer data); use power-grid-model or "
                             "opendss")
        if self.feeder.copies > 1 and self.grid.solver == "fixed-point":
            raise ValueError("grid.solver: fixed-point reduces the grid to its loaded buses in a dense matrix, made for "
                             "one feeder; use power-grid-model for feeder.copies")
        if self.feeder.source is None and self.participants.chp.count != 6:
            raise ValueError("participants.chp.count: the IEEE feeder has the paper's 6 CHPs (give feeder.source for "
                             "another community)")
        if self.market.chp_strategy == "aco" and self.market.learned_bids_file is None:
            raise ValueError("market.learned_bids_file: needed for chp_strategy aco (write it with train-bidders)")
        if len(set(self.agents)) != len(self.agents):
            raise ValueError("agents: a player is named twice")
        if self.agents and not self.market.enabled:
            raise ValueError("agents: the agents bid in the LEM; it needs market.enabled: true")
        if res.exchange == "day" and abs(self.horizon_h / 24 - round(self.horizon_h / 24)) > 1e-9:
            raise ValueError(f"horizon_h: {self.horizon_h:g} h is not a whole number of days, which "
                             "resolution.exchange: day needs (or exchange: period)")
        if self.agents and (res.market_min != 60 or res.exchange != "period"):
            # an agent decides hourly offers and sees the hour's grid steps together (one vector per value)
            raise ValueError("agents: agents need resolution.market_min 60 and resolution.exchange period")
        if self.agents and self.feeder.source is None:  # the IEEE feeder's players (a source's: with its data)
            from lec_cosim.models.feeder_copies import copy_name

            players = {copy_name(name, c) for c in range(1, self.feeder.copies + 1)
                       for name in [f"LOAD{k}" for k in range(1, 56)] + [f"CHP{k}" for k in range(1, 7)]}
            unknown = [name for name in self.agents if name not in players]
            if unknown:
                raise ValueError(f"agents: {', '.join(unknown)}: no player of the IEEE feeder (households LOAD1 to "
                                 "LOAD55, CHP producers CHP1 to CHP6)")
        return self


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


def read(data: dict, source: Path) -> LemScenario:
    scenario = _validate(LemScenario, data, source)
    feeder, pv, _ = feeder_and_pv(scenario, scenario.participants.pv, "participants.pv.profile_file", source)
    _lem_days_within_pv_data(scenario, pv.profile_file, source)
    market = scenario.market
    if market.learned_bids_file is not None:
        market = market.model_copy(
            update={"learned_bids_file": (source.parent / market.learned_bids_file).resolve()})
    return scenario.model_copy(update={
        "feeder": feeder, "participants": scenario.participants.model_copy(update={"pv": pv}), "market": market,
        **_source_and_outputs(scenario, source)})
