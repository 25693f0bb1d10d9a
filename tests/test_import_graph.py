"""No import cycles in bnnctl, function-local imports included.

import-linter's layers contract (pyproject.toml) says which way imports go
between packages; this test says that, module by module, they never come back.
Every module is parsed (not imported): each ``import`` and ``from ... import``
anywhere in it, at module level or inside a function, is an edge, except
those under ``if TYPE_CHECKING:`` (they never run). ``from bnnctl.x import y``
is an edge to the submodule ``bnnctl.x.y`` where there is one, else to
``bnnctl.x``; importing a package is an edge to its ``__init__``. Importing
``bnnctl.x.y`` also runs ``bnnctl/x/__init__.py`` first, so it is an edge to
that ``__init__`` too, unless the importer is inside ``bnnctl.x`` (whose
``__init__`` is then already running): a package that re-exports from above
the modules that use it is a cycle. A strongly connected component of more
than one module is a cycle: the test names one loop through it with the line
of each import.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import bnnctl

Edge = tuple[str, str, int]  # (importer, imported, line)


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file for every .py under ``root`` (a package's ``__init__.py`` is the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, outside the bodies of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch runs
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` is, or the innermost module that contains it (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(root: Path, package: str) -> list[Edge]:
    """(importer, imported, line) for every import between modules of ``package``."""
    modules = module_files(root, package)
    edges: list[Edge] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in sorted(_imports(ast.parse(path.read_text(), str(path))), key=lambda n: n.lineno):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_resolve(alias.name, modules) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importer's package, one level up per extra dot
                    here = module if is_package else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        here = here.rpartition(".")[0]
                    base = f"{here}.{base}" if base else here
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else _resolve(base, modules))
            for target in targets:
                if target is None or target == module:
                    continue
                edges.append((module, target, node.lineno))
                parts = target.split(".")
                for depth in range(1, len(parts)):  # the packages Python runs before the target
                    package = ".".join(parts[:depth])
                    if package in modules and not (module == package or module.startswith(package + ".")):
                        edges.append((module, package, node.lineno))
    return edges


def strongly_connected(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Tarjan's components (iterative: no recursion limit), each sorted; only those of two or more modules."""
    graph: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b, _ in edges:
        graph[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def describe_cycle(component: list[str], edges: list[Edge], files: dict[str, Path]) -> str:
    """One loop through ``component``, each step with where the import is: 'a (a.py:3) -> b (b.py:9) -> a'."""
    inside = set(component)
    first_edge: dict[tuple[str, str], int] = {}
    for a, b, line in edges:
        if a in inside and b in inside:
            first_edge.setdefault((a, b), line)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in parent:  # breadth first, back to start: the shortest loop through it
        nxt = []
        for a in frontier:
            for x, b in first_edge:
                if x == a and b not in parent:
                    parent[b] = a
                    nxt.append(b)
        frontier = nxt
    before = []  # the modules between start and its return to start, walked back from the end
    node = parent[start]
    while node != start:
        before.append(node)
        node = parent[node]
    loop = [start, *reversed(before)]
    steps = []
    for a, b in zip(loop, [*loop[1:], start], strict=True):
        steps.append(f"{a} ({files[a].name}:{first_edge[(a, b)]})")
    return " -> ".join([*steps, start]) + f"  [component: {', '.join(component)}]"


def find_cycles(root: Path, package: str) -> list[str]:
    """Each import cycle of ``package``, described; empty when there is none."""
    files = module_files(root, package)
    edges = import_edges(root, package)
    return [describe_cycle(c, edges, files) for c in strongly_connected(list(files), edges)]


def test_bnnctl_has_no_import_cycles():
    root = Path(bnnctl.__file__).parent
    cycles = find_cycles(root, "bnnctl")
    assert not cycles, "import cycles (function-local imports count):\n" + "\n".join(cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_detector_reports_a_planted_cycle_and_ignores_type_checking(tmp_path):
    root = tmp_path / "fakepkg"
    _write(
        root,
        {
            "__init__.py": "",
            "a.py": "from fakepkg.sub import b\n",
            "sub/__init__.py": "",
            "sub/b.py": """
                def late():
                    from fakepkg import c  # function-local: still an edge
                    return c
            """,
            "c.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from fakepkg import d  # never runs: no edge
                import fakepkg.a
            """,
            "d.py": "from . import c\n",  # d -> c only: not in the cycle
        },
    )
    edges = {(a, b) for a, b, _ in import_edges(root, "fakepkg")}
    assert ("fakepkg.a", "fakepkg.sub.b") in edges  # from a package import a submodule: the submodule
    assert ("fakepkg.sub.b", "fakepkg.c") in edges and ("fakepkg.c", "fakepkg.a") in edges
    assert ("fakepkg.c", "fakepkg.d") not in edges and ("fakepkg.d", "fakepkg.c") in edges
    cycles = find_cycles(root, "fakepkg")
    assert len(cycles) == 1
    assert cycles[0].startswith("fakepkg.a (a.py:1) -> fakepkg.sub.b (b.py:3) -> fakepkg.c (c.py:6) -> fakepkg.a")
    assert "fakepkg.d" not in cycles[0]

    (root / "c.py").write_text("import fakepkg.sub\n")  # the loop cut: c imports the package, not a
    assert find_cycles(root, "fakepkg") == []


def test_a_package_that_re_exports_from_above_its_users_is_a_cycle(tmp_path):
    root = tmp_path / "fakepkg"
    _write(
        root,
        {
            "__init__.py": "",
            "floor/__init__.py": "from fakepkg.floor.types import T\n",
            "floor/types.py": "T = int\n",
            "top.py": "from fakepkg.floor.types import T\n",  # runs floor/__init__.py first
        },
    )
    edges = {(a, b) for a, b, _ in import_edges(root, "fakepkg")}
    assert ("fakepkg.top", "fakepkg.floor") in edges  # the package the import runs first
    assert ("fakepkg.floor", "fakepkg.floor") not in edges and ("fakepkg.floor.types", "fakepkg") not in edges
    assert find_cycles(root, "fakepkg") == []

    (root / "floor" / "__init__.py").write_text("from fakepkg.floor.types import T\nfrom fakepkg.top import T\n")
    [cycle] = find_cycles(root, "fakepkg")
    assert cycle.startswith("fakepkg.floor (__init__.py:2) -> fakepkg.top (top.py:1) -> fakepkg.floor")
