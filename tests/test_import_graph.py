"""No import cycles inside ``lec_cosim``: every import counts, also one inside a function.

A cycle is a design error hidden by a lazy import (federation.py imported the three studies'
builders inside functions, and they imported it back), so the check reads the source, not what
Python happens to import first.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lec_cosim"


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
