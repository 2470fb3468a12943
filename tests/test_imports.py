"""The import graph of ``l2s/``, read statically (``ast``): no cycle, and no import that runs from the models or
the vocoders up into the pipeline that assembles them.

Every import counts, at module level or inside a function (a deferred import still ties the two modules
together). ``from l2s.a import b`` is an edge to ``l2s.a.b`` when that is a module, else to ``l2s.a``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

L2S = Path(__file__).resolve().parents[1] / "l2s"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(L2S.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> Dict[str, Set[str]]:
    """``{module: the l2s modules it imports}`` for every module under ``l2s/``."""
    modules = {module_name(p): p for p in L2S.rglob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``[]``."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def test_the_graph_is_read():
    graph = import_graph()
    assert len(graph) > 100
    assert "l2s.hub" in graph["l2s.arch"]  # a deferred import counts
    assert "l2s.models.vsr.conformer" in graph["l2s.models.vsr.model"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_l2s():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_models_and_vocoders_do_not_import_the_pipeline():
    upward = sorted(f"{name} -> {dep}" for name, deps in import_graph().items() for dep in deps
                    if name.startswith(("l2s.models", "l2s.vocoder", "l2s.diffusion"))
                    and dep.startswith(("l2s.pipeline", "l2s.cli", "l2s.train")))
    assert upward == []
