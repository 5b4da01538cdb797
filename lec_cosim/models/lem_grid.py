"""The LEM participants on the IEEE European LV feeder: three-phase grid state and DN impact.

:class:`LemGrid` places the 61 players of :mod:`lec_cosim.models.lem_participants` on the feeder of
:mod:`lec_cosim.models.ieee_eulv` and evaluates one grid state with pandapower's ``runpp_3ph``:
voltage band, voltage angle and thermal-limit violations, losses, and the distribution-network (DN)
impact of Lezama, Faia and Vale ("Bidding in Local Electricity Markets Considering Low Voltage Grid
Constraints"). :class:`LinearDnImpactModel` is a fast surrogate of the same DN impact as a function of
the CHP outputs only, for the bid learner (:mod:`lec_cosim.models.bidding`), which evaluates ~10^5
candidate bid sets. No HELICS here.

The parts live in modules by concept; every public name of them (and the private ones other
modules or tests use) is importable from here too:

* :mod:`lec_cosim.models.three_phase_feeder`: :class:`LemGrid`, the feeder with the participants'
  loads, PV and CHPs on it, its injections and its two power-flow backends (``SOLVERS``).
* :mod:`lec_cosim.models.grid_indicators`: the limits (``VM_MIN_PU``, ``VM_MAX_PU``,
  ``MAX_LOADING_PERCENT``, ``VA_MAX_DEVIATION_DEGREE``), :class:`LemGridResult`, :class:`LemGridBlock` (a block
  of grid steps' indicators as arrays) and :func:`dn_impact`.
* :mod:`lec_cosim.models.feeder_lines`: the line ratings (:func:`read_line_ratings`) and the
  reduced-model line of every section.
* :mod:`lec_cosim.models.day_injections`: :class:`HourlyInjections`, :func:`hourly_injections` and
  the loads' reactive power (:func:`reactive_power_kvar`).
* :mod:`lec_cosim.models.linear_dn_impact`: :class:`LinearDnImpactModel`, its secant sensitivities,
  violation pre-filters and quadratic losses, with the measured speed and accuracy.
"""

from __future__ import annotations

from lec_cosim.models.day_injections import (  # noqa: F401
    LOAD_POWER_FACTOR,
    HourlyInjections,
    _as_series,
    hourly_injections,
    reactive_power_kvar,
)
from lec_cosim.models.feeder_lines import (  # noqa: F401
    LINE_RATINGS_FILE,
    _reduced_line_ids,
    read_line_ratings,
)
from lec_cosim.models.grid_indicators import (  # noqa: F401
    BLOCK_SCALARS,
    MAX_LOADING_PERCENT,
    VA_MAX_DEVIATION_DEGREE,
    VIOLATION_MODELS,
    VM_MAX_PU,
    VM_MIN_PU,
    LemGridBlock,
    LemGridResult,
    _GridState,
    _wrap_degree,
    dn_impact,
)
from lec_cosim.models.linear_dn_impact import (  # noqa: F401
    COMPONENTS,
    LinearDnImpactModel,
    _branch_currents,
    _Grouping,
    _grouping,
    _loss_coefficients,
    _Threshold,
    _threshold,
)
from lec_cosim.models.three_phase_feeder import _SQRT3, SOLVERS, LemGrid  # noqa: F401
