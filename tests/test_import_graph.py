"""No import cycles inside ``lec_cosim``: every import counts, also one inside a function. And the local-market
federation's processes import no heavy module they do not use.

A cycle is a design error hidden by a lazy import (federation.py imported the three studies'
builders inside functions, and they imported it back), so the check reads the source, not what
Python happens to import first.

A federation's start-up is its processes' imports and model building, on the machine's few cores at once: every
heavy module a federate imports and does not need costs the whole federation that long (pandapower's state
estimation, scipy.stats, was 0.3 s of CPU in the DSO, matplotlib 0.1 s). That check runs the federation, each
process under ``PYTHONPROFILEIMPORTTIME``, and reads what each one imported (imports inside functions included).
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

from harness import write_scenario

from lec_cosim.deferred_imports import DEFERRED

PACKAGE = Path(__file__).resolve().parents[1] / "lec_cosim"

NEVER_IN_A_FEDERATE = ("matplotlib", "scipy.stats", "pandapower.estimation", "pyomo", "sklearn", "torch")
"""What none of the local-market federation's federates uses (deferred stand-ins, :mod:`lec_cosim.deferred_imports`,
do not count: their code runs only if used)."""
NO_GRID_ENGINE = ("pandapower", "power_grid_model", "dss", "numba", "scipy")
"""What only the DSO uses: the participants, the market and the recorder compute no power flow."""
HEAVY_FOR = {"dso": NEVER_IN_A_FEDERATE, "market": NEVER_IN_A_FEDERATE + NO_GRID_ENGINE,
             "participants_1": NEVER_IN_A_FEDERATE + NO_GRID_ENGINE, "recorder": NEVER_IN_A_FEDERATE + NO_GRID_ENGINE}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``lec_cosim`` modules it imports (``from a import b`` counts ``a.b`` when that is a module)."""
    known = modules()
    graph = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                # ``from lec_cosim import federation`` depends on that module, not on the package's __init__
                targets = submodules if all(m in known for m in submodules) else [node.module] + submodules
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name] |= {t for t in targets if t in known and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert "lec_cosim.federation" in graph["lec_cosim.cli"] or "lec_cosim.federation" in graph["lec_cosim.interface"]
    assert graph["lec_cosim.wiring"] == set()  # what every study's plan is made of depends on nothing of ours


def test_the_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_lec_cosim():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def imported_modules(log: str) -> set[str]:
    """The modules ``-X importtime`` (``PYTHONPROFILEIMPORTTIME``) reported in a process's output."""
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and not line.rstrip().endswith("imported package"):
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def heavy_imports(modules: set[str], heavy: tuple[str, ...], deferred=DEFERRED) -> list[str]:
    """The modules of ``heavy`` (or their submodules) among ``modules``, stand-ins of ``deferred`` aside."""
    real = modules - set(deferred)
    return sorted(h for h in heavy if any(m == h or m.startswith(h + ".") for m in real))


def test_imported_modules_are_read_from_the_importtime_report():
    log = ("import time: self [us] | cumulative | imported package\n"
           "import time:       526 |    3625167 | pandapower\n"
           "import time:        91 |     573283 |                     matplotlib.pyplot\n"
           "federate dso: 4 slots\n")
    assert imported_modules(log) == {"pandapower", "matplotlib.pyplot"}
    deferred = ("matplotlib", "matplotlib.pyplot")
    assert heavy_imports({"pandapower.create", "matplotlib", "matplotlib.pyplot"}, ("pandapower", "matplotlib"),
                         deferred) == ["pandapower"]
    assert heavy_imports({"matplotlib", "matplotlib.colors"}, ("matplotlib",), deferred) == ["matplotlib"]


def test_the_local_market_federates_import_no_heavy_module_they_do_not_use(tmp_path):
    scenario = write_scenario(tmp_path, "ieee_eu_lv_lem_plain", {"horizon_h": 2})
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "lec_cosim", "run", str(scenario), "--out", str(out), "--quiet"],
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    found = {}
    for federate, heavy in HEAVY_FOR.items():
        modules = imported_modules((out / "logs" / f"{federate}.log").read_text())
        assert "helics" in modules and "numpy" in modules  # the report was read
        found[federate] = heavy_imports(modules, heavy)
    assert "pandapower" in imported_modules((out / "logs" / "dso.log").read_text())  # it builds the feeder with it
    assert found == {federate: [] for federate in HEAVY_FOR}
