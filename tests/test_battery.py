"""Unit tests of the community battery's primary controller (lec_cosim.models.battery.Battery).

Round-trip efficiency 0.81 makes the one-way efficiency exactly 0.9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lec_cosim.models.battery import Battery


def battery(soc=0.5, capacity=1.0, power=0.4, efficiency=0.81):
    return Battery(capacity_mwh=capacity, power_mw=power, efficiency=efficiency, soc_mwh=soc)


def test_one_way_efficiency_is_square_root_of_round_trip():
    assert battery(efficiency=0.81).one_way_efficiency == pytest.approx(0.9, abs=1e-15)
    assert battery(efficiency=0.95).one_way_efficiency == pytest.approx(math.sqrt(0.95), abs=1e-15)
    assert battery(efficiency=1.0).one_way_efficiency == 1.0


@pytest.mark.parametrize(
    "setpoint, expected",
    [
        (1.0, 0.4),     # charge request above the rating
        (-1.0, -0.4),   # discharge request above the rating
        (0.4, 0.4),     # exactly the rating
        (-0.4, -0.4),
        (0.25, 0.25),   # inside: unchanged
        (-0.25, -0.25),
        (0.0, 0.0),
    ],
)
def test_clamp_to_power_rating(setpoint, expected):
    # Half full, 15 minutes: the SoC limits (room 0.5 MWh -> 2.22 MW) do not bind.
    b = battery(soc=0.5)
    assert b.clamp(setpoint, 0.25) == pytest.approx(expected, abs=1e-15)
    assert b.soc_mwh == 0.5  # clamp does not change the state


def test_clamp_charging_near_full():
    # Room 0.05 MWh; over 0.25 h charging p MW stores 0.9 * p * 0.25 -> p <= 0.05 / 0.225 = 0.2222 MW.
    b = battery(soc=0.95)
    assert b.clamp(0.4, 0.25) == pytest.approx(0.05 / 0.225, rel=1e-12)
    assert b.clamp(0.1, 0.25) == pytest.approx(0.1)  # below the limit: unchanged
    assert b.clamp(-0.4, 0.25) == pytest.approx(-0.4)  # discharging is not limited by being full


def test_clamp_discharging_near_empty():
    # Stored 0.05 MWh delivers 0.9 * 0.05 = 0.045 MWh; over 0.25 h that is 0.18 MW.
    b = battery(soc=0.05)
    assert b.clamp(-0.4, 0.25) == pytest.approx(-0.18, rel=1e-12)
    assert b.clamp(-0.1, 0.25) == pytest.approx(-0.1)
    assert b.clamp(0.4, 0.25) == pytest.approx(0.4)  # charging is not limited by being empty


def test_clamp_limit_scales_with_duration():
    # Room 0.05 MWh: over 1 minute the energy limit allows 0.05 / (0.9 / 60) = 3.33 MW, so the
    # power rating binds; over 1 hour it allows only 0.0556 MW.
    b = battery(soc=0.95)
    assert b.clamp(1.0, 1 / 60) == pytest.approx(0.4)
    assert b.clamp(1.0, 1.0) == pytest.approx(0.05 / 0.9, rel=1e-12)


def test_clamp_full_and_empty():
    full, empty = battery(soc=1.0), battery(soc=0.0)
    assert full.clamp(0.3, 0.25) == 0.0
    assert full.clamp(-0.3, 0.25) == pytest.approx(-0.3)
    assert empty.clamp(-0.3, 0.25) == 0.0
    assert empty.clamp(0.3, 0.25) == pytest.approx(0.3)


def test_step_charge_bookkeeping():
    # 0.4 MW for 0.5 h stores 0.4 * 0.9 * 0.5 = 0.18 MWh.
    b = battery(soc=0.2)
    p = b.step(0.4, 0.5)
    assert p == pytest.approx(0.4)
    assert b.soc_mwh == pytest.approx(0.38, abs=1e-15)


def test_step_discharge_bookkeeping():
    # Delivering 0.36 MW for 0.5 h draws 0.36 / 0.9 * 0.5 = 0.2 MWh.
    b = battery(soc=0.5)
    p = b.step(-0.36, 0.5)
    assert p == pytest.approx(-0.36)
    assert b.soc_mwh == pytest.approx(0.3, abs=1e-15)


def test_round_trip_returns_efficiency_times_energy():
    # Charge 0.4 MW for 1 h (0.36 MWh stored), then discharge until empty: 0.9 * 0.36 = 0.324 MWh,
    # i.e. 0.81 of the 0.4 MWh drawn from the grid.
    b = battery(soc=0.0, power=0.4)
    drawn = b.step(0.4, 1.0) * 1.0
    delivered = 0.0
    for _ in range(10):
        delivered -= b.step(-0.4, 0.25) * 0.25
    assert drawn == pytest.approx(0.4)
    assert delivered == pytest.approx(0.81 * 0.4, rel=1e-12)
    assert b.soc_mwh == pytest.approx(0.0, abs=1e-12)


def test_step_near_full_fills_exactly():
    b = battery(soc=0.95)
    p = b.step(0.4, 0.25)
    assert p == pytest.approx(0.05 / 0.225, rel=1e-12)
    assert b.soc_mwh == pytest.approx(1.0, abs=1e-12)
    assert b.soc_mwh <= 1.0
    # Further charging is refused.
    assert b.step(0.4, 0.25) == 0.0
    assert b.soc_mwh == pytest.approx(1.0, abs=1e-12)


def test_step_near_empty_empties_exactly():
    b = battery(soc=0.05)
    p = b.step(-0.4, 0.25)
    assert p == pytest.approx(-0.18, rel=1e-12)
    assert b.soc_mwh == pytest.approx(0.0, abs=1e-12)
    assert b.soc_mwh >= 0.0
    assert b.step(-0.4, 0.25) == 0.0


def test_zero_setpoint_is_idle():
    b = battery(soc=0.37)
    assert b.step(0.0, 0.25) == 0.0
    assert b.soc_mwh == 0.37


@pytest.mark.parametrize("efficiency", [0.81, 0.95, 1.0])
def test_soc_never_leaves_bounds_and_matches_bookkeeping(efficiency):
    rng = np.random.default_rng(11)
    b = battery(soc=0.6, capacity=1.2, power=0.6, efficiency=efficiency)
    eta = math.sqrt(efficiency)
    for _ in range(3000):
        setpoint = rng.uniform(-1.5, 1.5)
        duration = rng.choice([1 / 60, 0.25, 1.0])
        before = b.soc_mwh
        p = b.step(setpoint, duration)
        assert 0.0 <= b.soc_mwh <= 1.2
        assert abs(p) <= 0.6 + 1e-12
        # Never farther from zero than the request, and in the same direction.
        assert p * setpoint >= 0.0 and abs(p) <= abs(setpoint) + 1e-12
        expected = before + (p * eta if p >= 0 else p / eta) * duration
        assert b.soc_mwh == pytest.approx(expected, abs=1e-12)


def test_soc_above_capacity_only_discharges():
    # A state outside the limits (e.g. a capacity fade) is brought back, not pushed further.
    b = battery(soc=1.1, capacity=1.0)
    assert b.clamp(0.3, 0.25) == 0.0
    assert b.step(-0.09, 1.0) == pytest.approx(-0.09)
    assert b.soc_mwh == pytest.approx(1.0, abs=1e-12)


def test_soc_window_limits_both_directions():
    # Window 0.2..0.8 MWh of 1 MWh, eta 0.81 (one way 0.9). From 0.7 MWh: room 0.1 MWh -> at most
    # 0.1 / (0.9 * 0.25) = 0.4444 MW charging for 0.25 h; from 0.3 MWh: 0.1 MWh above the floor
    # delivers 0.09 MWh -> at most 0.36 MW discharging.
    b = Battery(1.0, 1.0, 0.81, soc_mwh=0.7, soc_min_mwh=0.2, soc_max_mwh=0.8)
    assert b.clamp(1.0, 0.25) == pytest.approx(0.1 / 0.225, rel=1e-12)
    assert b.step(1.0, 0.25) == pytest.approx(0.1 / 0.225, rel=1e-12)
    assert b.soc_mwh == pytest.approx(0.8, abs=1e-12)
    b.soc_mwh = 0.3
    assert b.step(-1.0, 0.25) == pytest.approx(-0.36, rel=1e-12)
    assert b.soc_mwh == pytest.approx(0.2, abs=1e-12)
    assert b.step(-1.0, 0.25) == 0.0  # at the floor: nothing more to give
