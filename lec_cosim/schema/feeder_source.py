"""What the studies on a feeder share when it may come from any source: the IEEE feeder or ``feeder.source``.

A study's ``feeder`` section names the IEEE European LV feeder (``data_dir``) or any other feeder (``source``:
SimBench, a pandapower net, an OpenDSS model; :mod:`lec_cosim.models.feeder_source`) with the households
placed on its loads (``households``). :func:`feeder_and_pv` resolves its paths and reads the source once, so a
bad one is one line naming the scenario and the field before any process starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, model_validator

from lec_cosim.schema.base import FilePath, ScenarioError, _Strict
from lec_cosim.schema.ieee_feeder import FeederConfig, _ieee_feeder_and_pv


class HouseholdsConfig(_Strict):
    mapping_file: Optional[FilePath] = Field(
        None, description="CSV household,connection: the households and the feeder load each takes (default: one "
        "household per load of the feeder, named as it)")
    load_file: Optional[FilePath] = Field(
        None, description="the households' own loads: CSV of a time column (local time) and one column of kW per "
        "household (default: the feeder source's profiles)")
    pv_share: float = Field(0.76, ge=0, le=1, description="share of the households with PV (the IEEE feeder's "
                            "42 of 55), spread over the phases and along the feeder")
    power_factor: float = Field(0.95, gt=0, le=1, description="of the loads of a load_file (lagging)")


class SourceFeederConfig(FeederConfig):
    # absent from a written scenario when not given: the IEEE feeder's scenario.json reads as before sources existed
    data_dir: Optional[FilePath] = Field(
        None, exclude_if=lambda value: value is None, description="folder of the IEEE European LV test feeder data "
        "(csv/, load profiles): the paper's feeder and households; or give source")
    source: Optional[str] = Field(
        None, exclude_if=lambda value: value is None, description="any other feeder: 'simbench: CODE', 'pandapower: "
        "FILE' or 'opendss: FILE' (see `lec-cosim feeder`); the households sit on its loads (households)")
    households: Optional[HouseholdsConfig] = Field(None, exclude_if=lambda value: value is None,
                                                   description="with source: the households on its loads")

    @model_validator(mode="after")
    def _one_feeder(self) -> "SourceFeederConfig":
        if (self.data_dir is None) == (self.source is None):
            raise ValueError("give data_dir (the IEEE European LV feeder) or source (any other feeder), one of them")
        if self.source is None and self.households is not None:
            raise ValueError("households: they place households on a source's loads; the IEEE feeder's are the "
                             "paper's")
        if self.source is not None and "load_peak_kw" not in self.model_fields_set:
            self.__dict__["load_peak_kw"] = None  # a source's loads as they are, unless a peak is asked for
        return self


def _source_feeder_and_pv(scenario, pv, pv_field: str, source: Path):
    """The feeder of a scenario with ``feeder.source``, its files resolved and the source read (refused with one
    line naming the scenario and the field), and the PV settings."""
    from lec_cosim.models.feeder_model import FeederSourceError
    from lec_cosim.models.feeder_source import load_feeder, resolve_source

    base = source.parent
    f = scenario.feeder
    resolved = resolve_source(f.source, base)
    households = f.households or HouseholdsConfig()
    households = households.model_copy(update={
        name: (base / getattr(households, name)).resolve() for name in ("mapping_file", "load_file")
        if getattr(households, name) is not None})
    for name in ("mapping_file", "load_file"):
        path = getattr(households, name)
        if path is not None and not path.is_file():
            raise ScenarioError(f"{source}: feeder.households.{name}: file not found: {path}")
    try:
        feeder = load_feeder(resolved)
    except (FeederSourceError, ValueError, OSError) as error:  # the IEEE tables' own errors are ValueErrors
        raise ScenarioError(f"{source}: feeder.source: {' '.join(str(error).split())}") from None
    if households.mapping_file is None:
        count = len(feeder.connections)
    else:
        from lec_cosim.models.feeder_households import place_households

        try:
            count = len(place_households(feeder, households.mapping_file))
        except FeederSourceError as error:
            raise ScenarioError(f"{source}: feeder.households.mapping_file: {error}") from None
    pv = pv.model_copy(update={"profile_file": (base / pv.profile_file).resolve()})
    if not pv.profile_file.is_file():
        raise ScenarioError(f"{source}: {pv_field}: file not found: {pv.profile_file}")
    return f.model_copy(update={"source": resolved, "households": households}), pv, count


def feeder_and_pv(scenario, pv, pv_field: str, source: Path):
    """The feeder and PV settings of a scenario on the IEEE feeder or on a source, paths resolved and checked,
    and the number of households a source holds (None for the IEEE feeder: its 55)."""
    if scenario.feeder.source is not None:
        return _source_feeder_and_pv(scenario, pv, pv_field, source)
    return (*_ieee_feeder_and_pv(scenario, pv, pv_field, source), None)
