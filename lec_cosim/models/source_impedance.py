"""The 11 kV source of the IEEE European LV feeder: OpenDSS's ``Vsource`` impedance from its short-circuit currents.

The IEEE data give the source as OpenDSS does, by its three-phase and single-phase short-circuit
currents (``ISC3``, ``ISC1``) and OpenDSS's default X/R ratios; :func:`opendss_vsource_impedance_ohm`
turns them into sequence impedances with OpenDSS's own formulas. Both the check of the feeder's
tables (:mod:`lec_cosim.models.feeder_tables`: the currents must give an impedance) and the building
of the net (:mod:`lec_cosim.models.feeder_net`: the impedance becomes an explicit line) use it, so
it sits below both.
"""

from __future__ import annotations

import math

_SQRT3 = math.sqrt(3.0)

# OpenDSS defaults the IEEE data rely on (Vsource and Transformer, OpenDSS source code / manual)
OPENDSS_VSOURCE_X1R1 = 4.0
"""OpenDSS ``Vsource`` default X1/R1 (Source.csv / Master.dss give ISC3, ISC1 only)."""
OPENDSS_VSOURCE_X0R0 = 3.0
"""OpenDSS ``Vsource`` default X0/R0."""


def opendss_vsource_impedance_ohm(vn_kv: float, isc3_a: float, isc1_a: float,
                                  x1r1: float = OPENDSS_VSOURCE_X1R1,
                                  x0r0: float = OPENDSS_VSOURCE_X0R0) -> tuple[float, float, float, float]:
    """Sequence impedances of an OpenDSS ``Vsource`` given by ``ISC3``/``ISC1`` (``ZSpecType`` 2).

    Same formulas as OpenDSS ``TVsourceObj.RecalcElementData``: ``MVAsc3 = sqrt(3) kV Isc3``,
    ``|Z1| = kV^2 / MVAsc3`` split with X1/R1, and ``Z0`` (with X0/R0) solving
    ``|2 Z1 + Z0| = 3 V_LN / Isc1``. Z2 = Z1.

    Parameters
    ----------
    vn_kv : float
        Line-to-line base voltage, kV.
    isc3_a, isc1_a : float
        Three-phase and single-phase short-circuit currents, A.
    x1r1, x0r0 : float
        X/R ratios of the positive and zero sequence (OpenDSS defaults 4 and 3).

    Returns
    -------
    tuple of float
        ``(r1_ohm, x1_ohm, r0_ohm, x0_ohm)``.
    """
    mvasc3 = _SQRT3 * vn_kv * isc3_a / 1000.0
    x1 = vn_kv ** 2 / mvasc3 / math.sqrt(1.0 + 1.0 / x1r1 ** 2)
    r1 = x1 / x1r1
    a = 1.0 + x0r0 ** 2
    b = 4.0 * (r1 + x1 * x0r0)
    c = 4.0 * (r1 * r1 + x1 * x1) - (3.0 * vn_kv * 1000.0 / _SQRT3 / isc1_a) ** 2
    r0 = (-b + math.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    return r1, x1, r0, r0 * x0r0
