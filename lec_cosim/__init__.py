"""lec-cosim: HELICS co-simulation of local energy communities in distribution grids.

``lec_cosim.run(scenario, out=...)`` runs a scenario's federation and returns its results;
``lec_cosim.load(run_dir)`` reads a run back (:mod:`lec_cosim.api`).
"""

__version__ = "0.1.0"
__all__ = ["load", "run"]


def __getattr__(name):
    # on first use: every federate process imports a module of this package, and pandas is not for free
    if name in __all__:
        from lec_cosim import api

        return getattr(api, name)
    raise AttributeError(f"module 'lec_cosim' has no attribute {name!r}")
