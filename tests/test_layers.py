"""The package's layers, read from its source: every import (at the top, inside functions, under
TYPE_CHECKING, and ``importlib.import_module`` of a literal name) points down the table below or
sideways inside one layer, and no modules import each other in a cycle. docs/design.md explains
the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vidcolor"

# Lowest first. A module belongs to the longest prefix that names it; the root package ("api")
# names only itself, so a new top-level module must be placed here by hand.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "vidcolor.version",
            "vidcolor.errors",
            "vidcolor.durable",
            "vidcolor.timecode",
            "vidcolor.formats",
            "vidcolor.frames",
            "vidcolor.color",
            "vidcolor.allocator",
            "vidcolor.hints",
            "vidcolor.references",
            "vidcolor.options",
        ),
    ),
    ("media", ("vidcolor.media",)),
    ("models", ("vidcolor.models",)),
    ("stages", ("vidcolor.stages",)),
    ("guidance", ("vidcolor.guidance",)),
    ("pipeline", ("vidcolor.pipeline",)),
    ("batch", ("vidcolor.batch",)),
    ("cluster", ("vidcolor.cluster",)),
    ("tools", ("vidcolor.evaluate", "vidcolor.train", "vidcolor.benchmark")),
    ("preview", ("vidcolor.preview",)),
    ("cli", ("vidcolor.cli", "vidcolor.__main__")),
    # The package's own __init__ is the public API: it reaches the pipeline lazily, on attribute
    # access, so importing any submodule does not run anything above core.
    ("api", ("vidcolor",)),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module a dotted import name lands in (``vidcolor.x.y`` may be a name inside vidcolor.x)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _import_module_name(node: ast.AST) -> str | None:
    """The module an ``importlib.import_module("...")`` call with a literal name imports."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    name = node.args[0].value
    return name if called == "import_module" and isinstance(name, str) else None


def _imports(module: str, path: Path) -> set[str]:
    """Every vidcolor module ``module`` imports, with the packages above each (their __init__ runs
    too), except the lazy root package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif (dynamic := _import_module_name(node)) is not None:
            names.add(dynamic)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.update(f"{source}.{a.name}" for a in node.names)
    found = set()
    for name in names:
        if name != "vidcolor" and not name.startswith("vidcolor."):
            continue
        target = _resolve(name)
        while target not in ("vidcolor", ""):
            found.add(target)
            target = target.rpartition(".")[0]
        if _resolve(name) == "vidcolor":
            found.add("vidcolor")
    found.discard(module)
    # A module's own parent packages are already running when it is imported.
    parent = module.rpartition(".")[0]
    while parent:
        found.discard(parent)
        parent = parent.rpartition(".")[0]
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            below = module.startswith(prefix + ".") and prefix != "vidcolor"
            if (module == prefix or below) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return rank


def _unknown_sources() -> list[str]:
    """Imports naming a vidcolor module that does not exist (say, a relative import left behind by
    a move): the table above would silently read them as their parent package."""
    bad = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    sources = [".".join(base + ([node.module] if node.module else []))]
                else:
                    sources = [node.module or ""]
            elif isinstance(node, ast.Import):
                sources = [a.name for a in node.names]
            else:
                continue
            bad += [f"{module} imports {s}" for s in sources if s.startswith("vidcolor") and s not in MODULES]
    return bad


def test_every_imported_module_exists() -> None:
    assert _unknown_sources() == []


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_imports_point_down() -> None:
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
        for m, deps in GRAPH.items()
        for d in sorted(deps)
        if layer_of(d) > layer_of(m)
    ]
    assert upward == []


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle()
    assert cycle is None, " -> ".join(cycle or [])


def test_a_module_missing_from_the_table_is_caught() -> None:
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("vidcolor.somewhere_new")
    call = ast.parse('importlib.import_module("vidcolor.cli")', mode="eval").body
    assert _import_module_name(call) == "vidcolor.cli"


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("vidcolor.pipeline.run", "vidcolor.cli"), ("vidcolor.guidance.guide", "vidcolor.pipeline")],
)
def test_the_table_catches_an_upward_import(module: str, forbidden: str) -> None:
    assert layer_of(forbidden) > layer_of(module)
