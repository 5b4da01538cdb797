"""The multi-LEC members on the IEEE European LV feeder: three-phase power flow and per-LEC operating envelopes.

:class:`MultiLecGrid` places the members of :func:`lec_cosim.models.multi_lec.multi_lec_members` (55
households in three LECs, one community battery per LEC) on the feeder and evaluates one grid state
with the three-phase power flow of :class:`lec_cosim.models.lem_grid.LemGrid` (which it wraps; the
power-flow code, ratings, losses and violation counts are LemGrid's). :class:`OperatingEnvelope` turns
power flows into the DSO's per-LEC import and export limits for the next period ("dynamic operating
envelopes"). No HELICS here.

The parts live in modules by concept; every name of them is importable from here too:

* :mod:`lec_cosim.models.multi_lec_feeder`: :class:`MultiLecGrid` and :class:`MultiLecGridResult`
  (the members' elements on the feeder, one signed net power per household, the per-LEC
  indicators).
* :mod:`lec_cosim.models.operating_envelope`: :class:`OperatingEnvelope` (probes, slopes, the rules
  ``RULES``, ``PROBE_KW``, ``MARGIN_PU``) with its assumptions and the figures measured on the
  scenario day.
"""

from __future__ import annotations

from lec_cosim.models.multi_lec_feeder import MultiLecGrid, MultiLecGridResult, _vector  # noqa: F401
from lec_cosim.models.operating_envelope import (  # noqa: F401
    MARGIN_PU,
    PROBE_KW,
    RULES,
    OperatingEnvelope,
    _headroom_kw,
    _point_voltages,
)
