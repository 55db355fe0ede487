"""The package's layers (``ntf_core.LAYERS``) hold: every import of one ntf_core module by another,
function-local ones included, points to its own layer or a lower one; there is no import cycle;
nothing outside the recipe (the library's other modules, notebooks, tests, benchmarks) imports its
build module, and the library's other modules import none of it but ``cli``'s ``ntf bench`` entry;
and the config and ntf-mini's facts import no torch."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ntf_core

ROOT = Path(ntf_core.__file__).resolve().parent
REPO = ROOT.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The ntf_core modules ``module`` imports anywhere in its body (``from . import x`` counts as
    ``x``)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "ntf_core"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "ntf_core":
                target = node.module
            else:
                continue
            # ``from ntf_core import train`` imports a module (``from . import bench`` a package);
            # ``from .config import Config`` a name
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if is_module(sub) else target)
    return out


def is_module(name: str) -> bool:
    path = ROOT.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        edges[name] = imported_modules(
            ast.parse(path.read_text()), name, path.name == "__init__.py"
        )
    return edges


def layer_of(module: str) -> int:
    short = module.removeprefix("ntf_core").lstrip(".")
    if short == "":
        return -1  # the package itself (__version__, LAYERS): below everything
    key = "bench" if short.split(".")[0] == "bench" else short
    for i, names in enumerate(ntf_core.LAYERS):
        if key in names:
            return i
    raise AssertionError(f"{module} is in no layer of ntf_core.LAYERS: add it there")


def test_every_module_has_a_layer():
    for module in graph():
        layer_of(module)


def test_imports_point_down_or_sideways():
    upward = [
        f"{src} (layer {layer_of(src)}) imports {dst} (layer {layer_of(dst)})"
        for src, dsts in graph().items()
        for dst in dsts
        if dst != src and layer_of(dst) > layer_of(src)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt == node or nxt not in edges:
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize(
    "source, imported",
    [
        ("def f():\n    from .train import stage1\n", "ntf_core.train"),
        ("from . import train\n", "ntf_core.train"),
        ("from ntf_core import bench\n", "ntf_core.bench"),
        ("from .bench import build\n", "ntf_core.bench.build"),
        ("import ntf_core.experiments\n", "ntf_core.experiments"),
    ],
)
def test_the_layer_check_would_catch_an_upward_import(source, imported):
    found = imported_modules(ast.parse(source), "ntf_core.config", False)
    assert found == {imported}
    assert layer_of(imported) > layer_of("ntf_core.config")


def sources_outside_the_recipe():
    """(name, syntax tree) of every Python file outside the recipe and its test, and of every
    notebook's code cells (IPython's ``%`` and ``!`` lines left out)."""
    files = [
        *ROOT.rglob("*.py"),
        *(REPO / "benchmarks").glob("*.py"),
        *(REPO / "tests").glob("*.py"),
    ]
    for path in sorted(files):
        if path.parent.name == "bench" and path.parent.parent == ROOT:
            continue
        if path.name in ("test_bench.py", "test_layers.py"):
            continue
        yield str(path.relative_to(REPO)), ast.parse(path.read_text())
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        lines = [
            line
            for c in cells
            if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines()
            if not line.lstrip().startswith(("%", "!"))
        ]
        yield str(nb.relative_to(REPO)), ast.parse("\n".join(lines))


def test_nothing_outside_the_recipe_imports_its_build_module():
    sources = dict(sources_outside_the_recipe())
    assert "notebooks/00_the_data.ipynb" in sources and "ntf_core/experiments.py" in sources
    offenders = [
        name
        for name, tree in sources.items()
        if "ntf_core.bench.build" in imported_modules(tree, "ntf_core.outside", False)
    ]
    assert not offenders, offenders


def test_the_library_reaches_the_recipe_only_through_the_cli():
    users = {
        src
        for src, dsts in graph().items()
        if not src.startswith("ntf_core.bench")
        and any(d == "ntf_core.bench" or d.startswith("ntf_core.bench.") for d in dsts)
    }
    assert users <= {"ntf_core.cli"}, users


@pytest.mark.parametrize("module", ["ntf_core.config", "ntf_core.mini", "ntf_core.images"])
def test_module_imports_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} imports torch"
