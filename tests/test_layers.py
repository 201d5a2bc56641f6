"""The package's layering, read from the source with `ast` (nothing is imported).

Why: an import cycle or an upward import makes each next change cost twice (issue 22),
and none of them shows until someone tries to move a module. These tests read every
module under `qgtm/` and fail, naming the modules and the line, when:

- the imports between `qgtm` modules form a cycle (a shortest cycle is printed);
- a layer imports one above it (DESIGN.md, "Dependency direction"): `qgtm.core`
  imports nothing of ours outside `qgtm.core`; `qgtm.tui` and `qgtm.publish` import
  only `qgtm.core` and themselves; nothing under `qgtm.engine` imports the terminal,
  the publisher, the CLI, Textual or Rich; nothing under `qgtm.engine` outside
  `qgtm.engine.live` imports `qgtm.engine.live` (live drives the components; the
  components do not know it exists);
- inside the engine, a package imports one later in the data flow or a sibling in
  the same layer (`ENGINE_LAYERS`, from DESIGN.md's flow: data -> features ->
  strategies -> portfolio -> risk -> execution, with backtest/, learn/ and live/
  driving them). Strategies and portfolio are siblings: the aggregator and the
  allocators take `Signal`s from `qgtm.core`, not the strategy package;
- `qgtm.core` or `qgtm.tui` imports an engine library (`ENGINE_LIBRARIES`: duckdb,
  polars, numba, alpaca, ...) at module level: attaching a terminal must not load
  them (issue 22). Inside a function (loaded only when that function runs) or under
  `if TYPE_CHECKING:` (never loaded; for annotations) is allowed;
- a file is longer than `LONG_FILE_LINES` lines and its module docstring does not say
  why. The convention: the docstring contains the words "long because" and the reason,
  e.g. "This file is long because the table and its booking must be read together."

What counts as an import (decisions, so a reader can argue with them):
- every `import` / `from ... import` anywhere in the module: module level, inside
  functions and methods, under `try`. A deferred import does not remove a cycle, it
  only moves the failure from import time to call time;
- imports under `if TYPE_CHECKING:` count too, for cycles and for layers. Such an
  import never runs, but it says the module needs its importer's concrete type: the
  cycles issue 22 measured (live/daemon <-> control, publish/app <-> bots, ...) were
  all of this kind. The fix is the lower module stating what it needs (a `Protocol`
  or plain arguments), not hiding the import;
- relative imports are resolved against the module's package;
- `from pkg import name` imports `pkg.name` when that is a module of ours, else `pkg`;
- a package's `__init__` is the node `pkg`; importing `pkg.mod` is an edge to
  `pkg.mod` only (our `__init__` files hold docstrings and nothing else).
- an import by a computed name (`importlib.import_module`) is not seen; the only one,
  in live/wire.py, rebuilds a result class the daemon names (issue 22 removes it).

`KNOWN_*` list the violations measured on main that another helper is removing in
parallel (owner in the comment). Each entry fails the test once it is no longer
needed, so the lists only shrink; the lead empties them after merging. Do not add to
them: fix the import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qgtm"
LONG_FILE_LINES = 600
LONG_FILE_PHRASE = "long because"

# Inside the engine, the layers of the data flow, lowest first. A package may import
# its own modules and those of lower layers; packages in one layer (a set) do not
# import each other. Modules directly under `qgtm/engine/` count as packages of their
# own name. A package missing here fails `test_every_engine_package_has_a_layer`.
ENGINE_LAYERS: list[set[str]] = [
    {"state_schema"},  # state.sqlite's tables and migrations: plain DDL, used by all
    {"audit", "outbox", "lock"},  # the append-only records; one engine per data dir
    {"data"},
    {"features"},
    {"strategies", "portfolio"},  # joined by core's Signal, by backtest/ and live/
    {"state"},  # the book's durable state (holds a portfolio Book)
    {"risk"},
    {"execution"},
    {"decision"},  # issue 22's one decision function, if it lands as engine/decision.py
    {"backtest"},
    {"learn"},  # decay, retraining and shadow runs use backtest statistics
    {"live"},
]

# Imported by the engine only: the terminal and core must not load them at import
# time (issue 22: attaching loads neither duckdb, polars, numba nor alpaca).
ENGINE_LIBRARIES = {
    "alpaca",
    "apscheduler",
    "duckdb",
    "numba",
    "polars",
    "prometheus_client",
    "scipy",
    "statsmodels",
}

# Import edges (importer, imported) that lie on a cycle on main and are being removed.
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()

# (importer, imported) pairs that break a layer rule, as named in the failure message.
KNOWN_LAYER_VIOLATIONS: set[tuple[str, str]] = set()

# Files above LONG_FILE_LINES lines without "long because" in their docstring.
KNOWN_LONG_FILES: set[str] = set()


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target: who imports what, where, and when it runs."""

    importer: str
    imported: str
    line: int
    type_checking_only: bool  # under `if TYPE_CHECKING:`: never runs
    deferred: bool  # inside a function: runs when the function is called


def module_name(path: Path) -> str:
    """`qgtm/engine/live/daemon.py` -> `qgtm.engine.live.daemon`; a package's
    `__init__.py` is the package itself."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def our_modules() -> dict[str, Path]:
    """Every module under qgtm/, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST, type_checking: bool = False, deferred: bool = False):
    """Yield (import statement, under TYPE_CHECKING, inside a function) for every import
    below `node`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, type_checking, deferred
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _statements(ast.Module([stmt], []), True, deferred)
            for stmt in child.orelse:
                yield from _statements(ast.Module([stmt], []), type_checking, deferred)
        else:
            inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _statements(child, type_checking, deferred or inner)


def _from_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module a `from X import ...` reads from (relative ones resolved)."""
    if node.level == 0:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def imports_of(name: str, path: Path) -> list[Import]:
    """Every import in one module, resolved to absolute dotted names (ours or not)."""
    modules = our_modules()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node, type_checking, deferred in _statements(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _from_base(node, name, path.name == "__init__.py")
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in dict.fromkeys(targets):
            found.append(Import(name, target, node.lineno, type_checking, deferred))
    return found


@cache
def all_imports() -> tuple[Import, ...]:
    """Every import in every module under qgtm/."""
    return tuple(imp for name, path in our_modules().items() for imp in imports_of(name, path))


def ours(target: str) -> str | None:
    """The module of ours a dotted import target names (its longest existing prefix)."""
    modules = our_modules()
    parts = target.split(".")
    while parts:
        if (candidate := ".".join(parts)) in modules:
            return candidate
        parts.pop()
    return None


def import_graph(imports: tuple[Import, ...] | list[Import]) -> dict[str, set[str]]:
    """importer -> the modules of ours it imports."""
    graph: dict[str, set[str]] = {name: set() for name in our_modules()}
    for imp in imports:
        target = ours(imp.imported)
        if target is not None and target != imp.importer:
            graph.setdefault(imp.importer, set()).add(target)
            graph.setdefault(target, set())
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in sorted(graph):
        if root in index:
            continue
        enter(root)
        work = [(root, iter(sorted(graph[root])))]
        while work:
            node, successors = work[-1]
            succ = next(successors, None)
            if succ is not None:
                if succ not in index:
                    enter(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                elif succ in on_stack:
                    low[node] = min(low[node], index[succ])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle inside one strongly connected component, as [a, ..., a]."""
    best: list[str] = []
    for start in sorted(component):
        parents: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in parents:
            following = []
            for node in frontier:
                for succ in sorted(graph[node] & component):
                    if succ not in parents:
                        parents[succ] = node
                        following.append(succ)
            frontier = following
        path = [start]
        while (node := parents[path[-1]]) != start:
            path.append(node)
        path = [start, *reversed(path)]
        if not best or len(path) < len(best):
            best = path
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component of the graph."""
    return [shortest_cycle(graph, component) for component in strongly_connected(graph)]


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def engine_package(module: str) -> str:
    """`qgtm.engine.live.daemon` -> `live`; `qgtm.engine.audit` -> `audit`."""
    return module.split(".")[2] if module.count(".") >= 2 else ""


def layer_rule_broken(imp: Import) -> str | None:
    """The layer rule one import breaks, or None."""
    importer, imported = imp.importer, imp.imported
    top = imported.split(".")[0]
    terminal_or_core = _under(importer, "qgtm.core") or _under(importer, "qgtm.tui")
    loads_now = not (imp.deferred or imp.type_checking_only)  # a library's types cost nothing
    if terminal_or_core and top in ENGINE_LIBRARIES and loads_now:
        return "the terminal and core do not load an engine library at import time"
    if _under(importer, "qgtm.core"):
        if imported.startswith("qgtm.") and not _under(imported, "qgtm.core"):
            return "qgtm.core imports nothing of ours outside qgtm.core"
    elif _under(importer, "qgtm.tui") or _under(importer, "qgtm.publish"):
        own = ".".join(importer.split(".")[:2])
        if imported.startswith("qgtm.") and not (
            _under(imported, "qgtm.core") or _under(imported, own)
        ):
            return f"{own} imports only qgtm.core and {own} of ours"
    elif _under(importer, "qgtm.engine"):
        if top in {"textual", "rich"}:
            return "nothing under qgtm.engine imports Textual or Rich"
        for upper in ("qgtm.tui", "qgtm.publish", "qgtm.cli"):
            if _under(imported, upper):
                return f"nothing under qgtm.engine imports {upper}"
        if imported.startswith("qgtm.engine."):
            return _engine_rule_broken(importer, imported)
    return None


def _engine_rule_broken(importer: str, imported: str) -> str | None:
    if _under(imported, "qgtm.engine.live") and not _under(importer, "qgtm.engine.live"):
        return "nothing under qgtm.engine outside live/ imports qgtm.engine.live"
    rank = {package: i for i, layer in enumerate(ENGINE_LAYERS) for package in layer}
    mine, theirs = engine_package(importer), engine_package(imported)
    if mine == theirs or mine not in rank or theirs not in rank:
        return None  # same package; an unplaced one fails its own test
    if rank[theirs] > rank[mine]:
        return f"engine/{mine} sits below engine/{theirs} in the data flow"
    if rank[theirs] == rank[mine]:
        return f"engine/{mine} and engine/{theirs} are siblings: neither imports the other"
    return None


def layer_violations(imports: tuple[Import, ...]) -> dict[tuple[str, str], str]:
    """(importer, imported module) -> the rule it breaks, for every import in qgtm/."""
    broken: dict[tuple[str, str], str] = {}
    for imp in imports:
        rule = layer_rule_broken(imp)
        if rule is not None:
            imported = ours(imp.imported) or imp.imported.split(".")[0]
            broken.setdefault((imp.importer, imported), f"{rule} (line {imp.line})")
    return broken


def long_files_without_reason() -> set[str]:
    """Files under qgtm/ above LONG_FILE_LINES lines whose module docstring does not
    contain LONG_FILE_PHRASE."""
    found: set[str] = set()
    for path in our_modules().values():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) <= LONG_FILE_LINES:
            continue
        docstring = " ".join((ast.get_docstring(ast.parse(text)) or "").lower().split())
        if LONG_FILE_PHRASE not in docstring:
            found.add(path.relative_to(ROOT).as_posix())
    return found


# --- the rules ---------------------------------------------------------------------


def test_no_import_cycle_between_qgtm_modules() -> None:
    graph = import_graph(all_imports())
    for importer, imported in KNOWN_CYCLE_EDGES:
        graph.get(importer, set()).discard(imported)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_layer_imports_one_above_it() -> None:
    broken = layer_violations(all_imports())
    new = {pair: rule for pair, rule in broken.items() if pair not in KNOWN_LAYER_VIOLATIONS}
    assert not new, "layer violations:\n" + "\n".join(
        f"{a} imports {b}: {rule}" for (a, b), rule in sorted(new.items())
    )


def test_every_engine_package_has_a_layer() -> None:
    placed = set().union(*ENGINE_LAYERS)
    packages = {engine_package(m) for m in our_modules() if m.startswith("qgtm.engine.")}
    assert packages <= placed, f"place these in ENGINE_LAYERS: {sorted(packages - placed)}"


def test_long_files_say_why_they_are_long() -> None:
    new = long_files_without_reason() - KNOWN_LONG_FILES
    assert not new, (
        f"files above {LONG_FILE_LINES} lines need '{LONG_FILE_PHRASE} ...' in their "
        f"module docstring, or a split: {sorted(new)}"
    )


# --- the allow-lists only shrink -----------------------------------------------------


def test_known_cycle_edges_are_still_on_a_cycle() -> None:
    graph = import_graph(all_imports())
    components = strongly_connected(graph)
    stale = {
        (a, b)
        for a, b in KNOWN_CYCLE_EDGES
        if b not in graph.get(a, set()) or not any({a, b} <= c for c in components)
    }
    assert not stale, f"no longer on a cycle: remove from KNOWN_CYCLE_EDGES: {sorted(stale)}"


def test_known_layer_violations_are_still_there() -> None:
    gone = KNOWN_LAYER_VIOLATIONS - set(layer_violations(all_imports()))
    assert not gone, f"fixed: remove from KNOWN_LAYER_VIOLATIONS: {sorted(gone)}"


def test_known_long_files_are_still_long() -> None:
    gone = KNOWN_LONG_FILES - long_files_without_reason()
    assert not gone, f"fixed: remove from KNOWN_LONG_FILES: {sorted(gone)}"


# --- the reader itself ----------------------------------------------------------------


def test_a_cycle_is_reported_as_its_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a"}}

    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_an_acyclic_graph_has_no_cycle() -> None:
    graph = {"a": {"b", "c"}, "b": {"c"}, "c": set()}

    assert cycles(graph) == []


def test_imports_are_read_in_functions_under_type_checking_and_relative(
    tmp_path: Path,
) -> None:
    source = tmp_path / "control.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import wire\n"
        "if TYPE_CHECKING:\n"
        "    from .daemon import TradingDaemon\n"
        "def serve():\n"
        "    import polars\n"
    )

    found = {
        (i.imported, i.type_checking_only, i.deferred)
        for i in imports_of("qgtm.engine.live.control", source)
    }

    assert found == {
        ("typing", False, False),
        ("qgtm.engine.live.wire", False, False),
        ("qgtm.engine.live.daemon", True, False),
        ("polars", False, True),
    }


def test_an_upward_import_breaks_a_rule_and_a_downward_one_does_not() -> None:
    def rule(
        importer: str, imported: str, deferred: bool = False, types_only: bool = False
    ) -> str | None:
        return layer_rule_broken(Import(importer, imported, 1, types_only, deferred))

    assert rule("qgtm.engine.risk.admin", "qgtm.engine.live.lock") is not None
    assert rule("qgtm.engine.data.store", "qgtm.engine.execution.keys") is not None
    assert rule("qgtm.tui.app", "qgtm.engine.live.engine") is not None
    assert rule("qgtm.core.types", "qgtm.tui.app") is not None
    assert rule("qgtm.engine.backtest.report", "rich.table") is not None
    assert rule("qgtm.tui.widgets.table_panel", "polars") is not None
    assert rule("qgtm.tui.widgets.table_panel", "polars", deferred=True) is None
    assert rule("qgtm.tui.widgets.table_panel", "polars", types_only=True) is None
    assert rule("qgtm.tui.app", "qgtm.engine.live.engine", types_only=True) is not None
    assert rule("qgtm.engine.live.daemon", "qgtm.engine.risk.manager") is None
    assert rule("qgtm.tui.app", "qgtm.core.snapshot") is None
