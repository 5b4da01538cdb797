"""Modules a federate process never uses, loaded only if something uses them: plotting and state estimation.

``import pandapower`` imports its plotting package (``pandapower.create`` takes a helper from
``pandapower.plotting.geo``; the package's ``__init__`` imports every plotting module, matplotlib's ``pyplot``,
plotly's wrappers), ``pandapower.control`` imports ``matplotlib.pyplot`` (and so the ``matplotlib`` package,
its colour maps and settings), and pandapower's ``__init__`` imports ``pandapower.estimation``, which imports
``scipy.stats``: about 0.85 s of CPU in every DSO process (and any federate that builds a feeder), for figures no
federate draws (the CLI draws the reports) and a state estimation none runs (measured 2026-12-07, 2 cores:
``import pandapower`` 1.16 s of CPU with pyplot and pandapower's plotting deferred, 0.81 s with ``matplotlib`` and
``pandapower.estimation`` deferred too). :func:`defer_plotting` puts a stand-in for each of :data:`DEFERRED` in
``sys.modules`` when it is first imported. A stand-in holds what the import system reads (``__spec__``,
``__path__``: so ``pandapower.plotting.geo`` imports as a real submodule) and runs the real module's code into
itself at the first other attribute asked of it: code that uses pyplot, pandapower's plotting or its estimation
gets the real module, only later. No computation changes: the power flow never touches these modules.

Only federate programs call it (:func:`federates.common.main`), in their own process: never a process that
draws, nor the threads of an in-process federation.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
import types

DEFERRED = ("pandapower.plotting", "matplotlib", "matplotlib.pyplot", "pandapower.estimation")
_LOCK = threading.RLock()  # two threads asking a stand-in at once run its module once


def defer_plotting() -> None:
    """Stand-ins for :data:`DEFERRED` not imported yet (see the module's doc): a finder ahead of Python's own
    gives them, so the import system binds each to its parent package as it would the real module."""
    if not any(isinstance(finder, _DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferringFinder())


class _DeferringFinder:
    def find_spec(self, name, path=None, target=None):
        if name not in DEFERRED:
            return None
        real = importlib.machinery.PathFinder.find_spec(name, path, target)
        if real is None or real.loader is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, _DeferringLoader(real), origin=real.origin,
                                              is_package=real.submodule_search_locations is not None)
        spec.has_location = real.has_location
        if real.submodule_search_locations is not None:  # a package: its submodules import as usual
            spec.submodule_search_locations = list(real.submodule_search_locations)
        return spec


class _Deferred(types.ModuleType):
    """A stand-in: the real module's code runs into it at the first attribute asked that it does not hold."""

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):  # what the import system probes: not a use
            raise AttributeError(attr)
        with _LOCK:
            if type(self) is _Deferred:
                real = self.__dict__["__spec__"].loader.real
                self.__class__ = types.ModuleType
                self.__spec__, self.__loader__ = real, real.loader
                real.loader.exec_module(self)
        return getattr(self, attr)


class _DeferringLoader:
    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return _Deferred(spec.name)

    def exec_module(self, module) -> None:
        pass  # the real module runs at its first use (_Deferred.__getattr__)
