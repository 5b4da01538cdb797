"""The scenario sections of the devices at the homes (:mod:`lec_cosim.home_devices`), shared by every study
that has homes: one optional section per device kind, none by default.

A study's scenario derives from :class:`HomeDevices` and says how many homes it has (``home_count``) and
which of its settings plan on a forecast of the homes' load (``load_forecasts``): a device's load is in no
forecast, so a scenario with both is refused. Its reader resolves the devices' files with
:meth:`HomeDevices.resolved_home_devices` and its wiring attaches them with
:func:`lec_cosim.home_devices.attach`. A new device kind is one field here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, model_serializer, model_validator

from lec_cosim.components.ev_charging import EVChargingConfig
from lec_cosim.home_devices import HomeDevice
from lec_cosim.schema.base import _Strict


class HomeDevices(_Strict):
    """The devices a scenario adds at its homes."""

    ev: Optional[EVChargingConfig] = Field(None, description=(
        "home EV charging at the households (none: no EVs); smart mode follows the prices the study gives its "
        "homes (the day-ahead prices of the community battery, the retail tariff of the three LECs)"))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        if "kind" in cls.model_fields and cls.home_count is HomeDevices.home_count:
            raise TypeError(f"{cls.__name__}: a scenario with home devices says how many homes it has (home_count)")

    @property
    def home_count(self) -> int | None:
        """How many homes the study has: at most one device of a kind each (every study says; None while they are
        not known, as a feeder source's households until its study reads the source and checks again)."""
        raise NotImplementedError

    @property
    def load_forecasts(self) -> list[tuple[str, str]]:
        """``(field, what plans on it)`` for each setting of the scenario that plans on a forecast of the
        homes' load, which the devices' load is not in."""
        return []

    @property
    def home_devices(self) -> dict[str, HomeDevice]:
        """The devices the scenario has, by section name."""
        return {name: getattr(self, name) for name in HomeDevices.model_fields if getattr(self, name) is not None}

    @model_validator(mode="after")
    def _devices_fit_the_homes(self):
        for name, device in self.home_devices.items():
            if self.home_count is not None and device.count > self.home_count:
                raise ValueError(f"{name}.count: {device.count} {device.noun}s for {self.home_count} homes; at most "
                                 f"one {device.noun} per home")
            if self.load_forecasts:
                field, planner = self.load_forecasts[0]
                raise ValueError(f"{name}: {planner} ({field}) on a forecast without the {device.noun}s, which "
                                 "it does not see; leave out one of the two")
        return self

    @model_serializer(mode="wrap")
    def _devices_given_last(self, handler):
        """The scenario as written: a device section only when given, after the study's own sections (a
        scenario without devices reads as it did before devices existed). Lossless because every device
        section defaults to none; a study's scenario defines no serializer of its own (it would replace this)."""
        data = handler(self)
        devices = {name: data.pop(name) for name in HomeDevices.model_fields if name in data}
        return {**data, **{name: value for name, value in devices.items() if value is not None}}

    def resolved_home_devices(self, base: Path, source: Path) -> dict[str, HomeDevice]:
        """Each device's section with its files taken relative to ``base``, and checked."""
        return {name: device.resolved(name, base, source) for name, device in self.home_devices.items()}
