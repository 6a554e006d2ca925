"""House rules for the library code, checked on the source with ``ast`` (nothing is imported).

The library is the packages ``recommender``, ``segmentation``, ``personalization_core`` and
``shop`` (migrations excluded: Django writes them). Its code stays in pieces a newcomer can read:

* no file is longer than :data:`MAX_FILE_LINES` lines;
* no function or method is longer than :data:`MAX_FUNCTION_LINES` lines (from its ``def`` line,
  decorators excluded, to its last line);
* no module imports itself back through other library modules: the graph of imports between
  library modules, module-level and inside functions alike (imports under
  ``if TYPE_CHECKING:`` are left out: they never run), has no cycle.

Each failure names every offender, so one run shows all there is to split.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("recommender", "segmentation", "personalization_core", "shop")
MAX_FILE_LINES = 650
MAX_FUNCTION_LINES = 80


def library_files() -> list[Path]:
    """Every ``.py`` file of the library packages, migrations excluded."""
    files = []
    for package in PACKAGES:
        files += [p for p in sorted((REPO / package).rglob("*.py")) if "migrations" not in p.parts]
    return files


def module_name(path: Path) -> str:
    """``recommender/services/training.py`` -> ``recommender.services.training`` (a package's
    ``__init__.py`` is the package)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` that can run (not under ``if TYPE_CHECKING:``)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            yield from _imports(child)
        return
    for child in ast.iter_child_nodes(node):
        yield from _imports(child)


def imported_modules(name: str, is_package: bool, tree: ast.Module, modules: set[str]) -> set[str]:
    """The library modules (of ``modules``) that the import statements of module ``name`` name:
    ``from a import b`` names module ``a.b`` when there is one, else module ``a``; ``import a.b.c``
    of a name inside module ``a.b`` names ``a.b``; relative imports are resolved."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = library_files()
    modules = {module_name(p) for p in files}
    return {module_name(p): imported_modules(module_name(p), p.name == "__init__.py", parse(p), modules) for p in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each group of modules that import each other
    (strongly connected components, Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not a cycle")  # pragma: no cover


def test_no_file_is_longer_than_the_limit() -> None:
    long = {}
    for path in library_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_FILE_LINES:
            long[str(path.relative_to(REPO))] = n
    assert not long, f"files over {MAX_FILE_LINES} lines (split them by responsibility): {long}"


def test_no_function_is_longer_than_the_limit() -> None:
    long = {}
    for path in library_files():
        for fn in functions(parse(path)):
            n = fn.end_lineno - fn.lineno + 1
            if n > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them by responsibility): {long}"


def test_no_import_cycle_among_the_library_modules() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_cycle_finder_reports_the_path_of_each_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": set()}
    assert cycles(graph) == [["d", "e", "d"], ["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_resolved_to_library_modules() -> None:
    modules = {"pkg", "pkg.sub", "pkg.sub.mod", "pkg.sub.other", "pkg.top"}
    source = """
from typing import TYPE_CHECKING
import os
import pkg.top
from pkg.sub import other, some_function
from . import mod
from .. import top
if TYPE_CHECKING:
    from pkg import never_runs
def f():
    from pkg.sub.mod import late
"""
    found = imported_modules("pkg.sub.here", False, ast.parse(source), modules | {"pkg.sub.here"})
    assert found == {"pkg.top", "pkg.sub.other", "pkg.sub", "pkg.sub.mod"}
    assert imported_modules("pkg.sub", True, ast.parse("from . import mod\nfrom .mod import x"), modules) == {
        "pkg.sub.mod"
    }
