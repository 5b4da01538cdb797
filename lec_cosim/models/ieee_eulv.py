"""IEEE PES European LV Test Feeder as an unbalanced three-phase pandapower model.

The feeder: 11 kV source, one 11/0.416 kV 800 kVA Dyn transformer, 906 LV buses, 905 three-phase lines
and 55 single-phase residential loads driven by the IEEE 1-minute load profiles (one day). The model is
built from the IEEE CSV set in ``data/ieee_eulv/csv`` (see ``data/ieee_eulv/README.md``) by
:func:`build_ieee_eulv`; :meth:`IEEEEuropeanLV.set_minute` / :meth:`IEEEEuropeanLV.set_loads_kw` set the
55 loads (P from the profile, Q from PF 0.95) and :func:`run_pf_3ph` runs pandapower's ``runpp_3ph`` and
returns per-bus per-phase voltages and the transformer's LV-side per-phase P/Q. No HELICS here.

The parts live in modules by concept; every public name of them (and the private ones other
modules or tests use) is importable from here too:

* :mod:`lec_cosim.models.feeder_tables`: reading the feeder folder's tables and load profiles and
  checking them (:func:`read_feeder_tables`, :func:`read_load_profiles_kw`, :func:`read_source`,
  :class:`FeederDataError`), without pandapower.
* :mod:`lec_cosim.models.source_impedance`: the OpenDSS ``Vsource`` impedance from the short-circuit
  currents (:func:`opendss_vsource_impedance_ohm`).
* :mod:`lec_cosim.models.feeder_net`: the pandapower net (:func:`build_ieee_eulv`,
  :class:`IEEEEuropeanLV`), its power flow (:func:`run_pf_3ph`) and its validation against the IEEE
  OpenDSS reference solution.
"""

from __future__ import annotations

from lec_cosim.models.feeder_net import (  # noqa: F401
    _HAVE_NUMBA,
    IDEAL_EXT_GRID_S_SC_MVA,
    PHASES,
    SOURCE_EMF_BUS_INDEX,
    SOURCE_EMF_BUS_NAME,
    SOURCE_IMPEDANCE_LINE_NAME,
    TRAFO_MAG0_PERCENT,
    IEEEEuLVResult,
    IEEEEuropeanLV,
    build_ieee_eulv,
    run_pf_3ph,
)
from lec_cosim.models.feeder_tables import (  # noqa: F401
    _PHASE_FROM_IEEE,
    DEFAULT_DATA_DIR,
    FeederDataError,
    FeederTables,
    _check_physics,
    _fail_at,
    _number,
    _numeric,
    _read_ieee_csv,
    _source_line,
    read_feeder_tables,
    read_load_profiles_kw,
    read_source,
)
from lec_cosim.models.source_impedance import (  # noqa: F401
    _SQRT3,
    OPENDSS_VSOURCE_X0R0,
    OPENDSS_VSOURCE_X1R1,
    opendss_vsource_impedance_ohm,
)
