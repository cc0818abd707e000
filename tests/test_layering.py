"""No import cycle between the rooms of `segmenter` (issue 27).

A room is a subpackage (engines, profiles, batch, views, toolkit, writers) or a top-level module
(audio, vad, cli, ...). Every import in a module's source counts, also one inside a function (a
deferred import is still a dependency: `ModelFiles.onnx_file` once ran the toolkit's export from
inside a method). The rooms' graph must have no cycle.
"""

import ast
from collections import defaultdict
from pathlib import Path

import segmenter

PACKAGE = Path(segmenter.__file__).parent


def _room(module: str) -> str:
    """The room of `segmenter.a.b`: `a` (`segmenter` itself for the package's __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (imports for type hints only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def _is_module(package: str, name: str) -> bool:
    """Whether `package.name` is a module or subpackage (not a name defined in the package)."""
    folder = PACKAGE.parent.joinpath(*package.split("."))
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The segmenter modules one source file imports, resolved to absolute names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "segmenter")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "segmenter":
                continue
            if node.module is None or target == "segmenter":  # `from . import x`: modules x
                found.update(f"{target}.{a.name}" for a in node.names if _is_module(target, a.name))
            else:
                found.add(target)
    return found


def room_graph() -> dict[str, set[str]]:
    """Which rooms each room imports from (itself left out)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        source = _room(_module_name(path))
        for target in _imports(path):
            if _room(target) not in (source, "segmenter"):
                graph[source].add(_room(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle found by a depth-first walk, as the rooms on it."""
    found, state, stack = [], {}, []

    def visit(room: str) -> None:
        state[room] = "open"
        stack.append(room)
        for other in sorted(graph.get(room, ())):
            if state.get(other) == "open":
                found.append([*stack[stack.index(other) :], other])
            elif other not in state:
                visit(other)
        stack.pop()
        state[room] = "done"

    for room in sorted(graph):
        if room not in state:
            visit(room)
    return found


def test_no_import_cycle_between_rooms():
    assert cycles(room_graph()) == []


def test_the_walk_finds_a_cycle_where_there_is_one():
    """The check itself can fail: a made-up graph with a cycle through three rooms."""
    graph = {"engines": {"toolkit"}, "toolkit": {"vad"}, "vad": {"engines"}, "cli": {"vad"}}
    assert cycles(graph) == [["vad", "engines", "toolkit", "vad"]]
    assert "engines" in room_graph()["vad"]  # and the real graph is read (vad imports engines)
