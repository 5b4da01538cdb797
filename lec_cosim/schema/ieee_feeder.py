"""What the studies on the IEEE European LV feeder share: its data folder, its time steps and PV sizing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from lec_cosim.schema.base import (
    FilePath,
    ScenarioError,
    _Strict,
)

FEEDER_HOUSEHOLDS = 55
"""The IEEE European LV feeder's households (its loads LOAD1 to LOAD55)."""


class LemResolution(_Strict):
    """Step of the market and of the grid in minutes. The LEM is hourly (the paper's day-ahead pool)."""

    market_min: Literal[60] = 60
    grid_min: int = Field(15, gt=0)


class FeederConfig(_Strict):
    data_dir: FilePath = Field(description="folder of the IEEE European LV test feeder data (csv/, load profiles)")
    load_peak_kw: Optional[float] = Field(
        140.0, gt=0, description="scale the 55 IEEE load profiles so that their aggregate hourly peak is "
        "this many kW (the paper's load peak); null keeps the published profiles (38.9 kW)"
    )


class PVSizingConfig(_Strict):
    profile_file: FilePath
    peak_kw: float = Field(194.0, gt=0, description="aggregate hourly PV peak of the 42 prosumers on the day")


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
