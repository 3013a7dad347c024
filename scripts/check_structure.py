"""`make lint`: the package has no import cycle, and no module or class outgrows its limit.

Every import counts, those under ``TYPE_CHECKING`` too: a cycle hidden there still ties the
modules together for a reader. The layers' order is import-linter's to check (its contracts
are in pyproject.toml); this adds what it does not: cycles inside a layer, and sizes.

    python scripts/check_structure.py [package directory]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

#: A module stays under this many lines, and a class spans fewer than this.
MAX_MODULE_LINES = 700
MAX_CLASS_LINES = 600


def module_name(path: Path, root: Path) -> str:
    """``tap_usersnap.http.client`` of ``tap_usersnap/http/client.py``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The package's modules that ``tree`` imports (``from a import b``: ``a.b`` if a module)."""
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name.split(".")[0] == package and name in modules}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module, or of one importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def problems(root: Path) -> list[str]:
    """Every cycle, and every module or class over its limit, one line each."""
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(p, root): p for p in paths}
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in modules.items()}
    graph = {
        name: imports_of(tree, root.name, set(modules)) - {name} - _parents(name)
        for name, tree in trees.items()
    }
    found = [f"import cycle: {' -> '.join([*group, group[0]])}" for group in cycles(graph)]
    for name, path in modules.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines >= MAX_MODULE_LINES:
            found.append(f"{path}: {lines} lines, not under {MAX_MODULE_LINES}")
        for node in ast.walk(trees[name]):
            if isinstance(node, ast.ClassDef):
                span = (node.end_lineno or node.lineno) - node.lineno + 1
                if span >= MAX_CLASS_LINES:
                    found.append(
                        f"{path}:{node.lineno}: class {node.name} spans {span} lines, "
                        f"not under {MAX_CLASS_LINES}"
                    )
    return found


def _parents(name: str) -> set[str]:
    """A module's packages: importing a submodule runs their ``__init__``, not a cycle."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def main() -> int:
    """Print the problems; exit 1 if there is one."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "tap_usersnap")
    found = problems(root)
    for problem in found:
        print(problem)
    if not found:
        print(f"check_structure: {root.name}: no import cycle; modules and classes within limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
