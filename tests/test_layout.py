"""The package's layout: data flows one way (statistics -> networks -> LP -> index -> runs ->
outputs), nothing low imports the API, and there is no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "model" / "chokepoint"
VOCABULARY = {"errors", "cases", "chemistry", "focal", "network", "countries", "yamlio",
              "publish", "shipped", "phases", "digests", "lifeline"}
#: Folder or module -> its place in the flow; a module imports only from places up to its own.
RANK = {**{v: 0 for v in VOCABULARY}, "statistics": 1, "networks": 2, "lp": 3, "index": 4,
        "runs": 5, "outputs": 6, "api": 7, "cli": 7, "bench": 7, "__init__": 7}


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(parts)] = p
    return out


def rank(module: str) -> int:
    head = module.split(".")[0]
    return RANK[head]


def imports(module: str, path: Path, top_level_only: bool) -> set[str]:
    """Package-internal modules ``module`` imports (``a.b``, relative to the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")[:-1]
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[:len(pkg) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            names = [".".join(target + [a.name]) for a in node.names]
            known = modules()
            for n in names:
                out.add(n if n in known or n + ".__init__" in known else ".".join(target))
    return {m for m in out if m}


def test_every_module_has_a_place_in_the_flow():
    for module in modules():
        assert module.split(".")[0] in RANK, f"{module}: give it a place in RANK"


def test_imports_only_point_downstream():
    wrong = []
    for module, path in modules().items():
        for target in imports(module, path, top_level_only=False):
            if target.split(".")[0] in RANK and rank(target) > rank(module):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_circle():
    graph = {m.removesuffix(".__init__"): {t.removesuffix(".__init__")
                                           for t in imports(m, p, top_level_only=True)}
             for m, p in modules().items()}
    seen, stack, circles = set(), [], []

    def visit(m):
        if m in stack:
            circles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in graph.get(m, ()):
            visit(t)
        stack.pop()

    for m in graph:
        visit(m)
    assert circles == []
