"""Imports go downward only: the loop and its config below ``multisplit/``, both below ``study/``.

Every ``import`` in the package is read from the source (those inside functions too, since a lazy
import is still a dependency), resolved to a ``trainwise.*`` module and checked against the layers:

    top        cli, api, catalog, study/*        (may import anything below)
    multisplit multisplit/*                      (the loop, config, ...; never study/)
    base       everything else: train.py, config.py, tasks.py, data/, models/, sampling/, ...
"""

from __future__ import annotations

import ast
from pathlib import Path

import trainwise

ROOT = Path(trainwise.__file__).parent
TOP = {"trainwise.cli", "trainwise.api", "trainwise.catalog", "trainwise.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The trainwise modules ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("trainwise")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("trainwise"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names if (ROOT.parent / f"{mod}.{a.name}".replace(".", "/")).exists()
                        or (ROOT.parent / (f"{mod}.{a.name}".replace(".", "/") + ".py")).exists()}
    return out


def layer(mod: str) -> int:
    if mod in TOP or mod.startswith("trainwise.study"):
        return 2
    if mod.startswith("trainwise.multisplit"):
        return 1
    return 0


def all_imports() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(ROOT.rglob("*.py"))}


def test_imports_only_go_down_the_layers():
    upward = sorted(f"{m} imports {d}" for m, deps in all_imports().items() for d in deps
                    if m != "trainwise" and layer(d) > layer(m))
    assert upward == []


def test_study_uses_multisplit_through_its_package_only():
    inside = sorted(f"{m} imports {d}" for m, deps in all_imports().items() if layer(m) == 2
                    for d in deps if d.startswith("trainwise.multisplit."))
    assert inside == []


def test_no_import_cycles_between_modules():
    graph = {m: {d for d in deps if d != m} for m, deps in all_imports().items() if m != "trainwise"}
    # a package's __init__ re-exporting its modules is not a cycle of the code's layering
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not m.startswith(d + ".")}
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen or m not in graph:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph[m]):
            visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert cycles == []
