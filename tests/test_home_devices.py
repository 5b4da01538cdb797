"""Devices at the homes (lec_cosim.home_devices): ``attach`` wires a device kind it has never heard of into a
study's federation (here heat pumps, which lec-cosim does not ship), and a study that takes devices says how
many homes it has. The EV component's own federations are in tests/test_ev_charging.py."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest

from lec_cosim.home_devices import DevicePlan, HomeDevice, HomeSite, attach
from lec_cosim.schema.homes import HomeDevices
from lec_cosim.wiring import FederatePlan, Signal


class HeatPumps(HomeDevice):
    noun: ClassVar[str] = "heat pump"

    def plan(self, name: str, site: HomeSite) -> DevicePlan:
        published = [Signal(f"{site.prefix}/{name}/p_mw", unit="MW", port="hp_p_mw"),
                     Signal(f"{site.prefix}/{name}/cop", port="cop")]
        if site.per_home:
            published.append(Signal(f"{site.prefix}/{name}/home_kw", "vector", "kW", port="hp_home_kw"))
        federate = FederatePlan("heat_pumps", "federates.heat_pumps", site.period_s, site.offset_s, published, [])
        return DevicePlan(federate, "hp_home_kw" if site.per_home else "hp_p_mw", ("hp_p_mw", "cop"),
                          "somewhere:heat_pump_kpis")


def a_federation() -> list[FederatePlan]:
    return [FederatePlan("households", "federates.household", 900, 0.002, [Signal("lec/households/p_mw")]),
            FederatePlan("dso", "federates.dso", 900, 0.003, [], [Signal("lec/households/p_mw")],
                         settings={"grid_adapter": "a:Grid"}),
            FederatePlan("recorder", "federates.recorder", 900, 0.004)]


def site(per_home: bool) -> HomeSite:
    return HomeSite("lec", 900, 0.0025, 3600, homes=12, per_home=per_home, tariff_eur_per_mwh=(50.0,) * 24)


def test_without_devices_the_federation_is_unchanged():
    plans = a_federation()
    attached = attach({}, plans, site(False))
    assert attached.plans == plans and attached.recorded == [] and attached.recorder_settings == {}


@pytest.mark.parametrize("per_home,load,setting", [(False, "hp_p_mw", "extra_loads_mw"),
                                                   (True, "hp_home_kw", "extra_loads_kw")])
def test_a_device_starts_before_the_dso_whose_grid_adds_its_load(per_home, load, setting):
    attached = attach({"heat_pump": HeatPumps(count=5)}, a_federation(), site(per_home))
    assert [p.name for p in attached.plans] == ["households", "heat_pumps", "dso", "recorder"]
    devices, dso = attached.plans[1], attached.plans[2]
    assert devices.offset_s == 0.0025 and devices.period_s == 900
    assert [s.port for s in dso.subscriptions] == [None, load]  # the households' load, then the device's
    assert dso.settings == {"grid_adapter": "a:Grid", setting: [load]}
    assert [s.key for s in attached.recorded] == ["lec/heat_pump/p_mw", "lec/heat_pump/cop"]
    assert attached.recorder_settings == {"added_columns": ["hp_p_mw", "cop"],
                                          "added_kpis": ["somewhere:heat_pump_kpis"]}


def test_a_study_that_takes_devices_says_how_many_homes_it_has():
    with pytest.raises(TypeError, match="home_count"):
        class Forgetful(HomeDevices):
            kind: Literal["forgetful"] = "forgetful"

    class Street(HomeDevices):
        kind: Literal["street"] = "street"

        @property
        def home_count(self) -> int:
            return 12

    assert Street().home_devices == {}  # no section given: no device
