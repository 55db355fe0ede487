"""The shape of ntf_core's code, for a before/after table of a refactor: modules, lines, the longest
functions, imports that point up the layers of ``ntf_core.LAYERS``, import cycles, function-local
imports of our own modules, and lines over 100 columns.

    python benchmarks/code_shape.py                    # this checkout
    python benchmarks/code_shape.py --root /tmp/old    # another checkout, by this checkout's layers
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import ntf_core  # noqa: E402


def shape(root: Path) -> dict:
    pkg = root / "ntf_core"
    files = sorted(pkg.rglob("*.py"))
    lines = long_lines = local_imports = 0
    functions = []
    edges: dict[str, set[str]] = {}
    for path in files:
        text = path.read_text()
        tree = ast.parse(text)
        lines += len(text.splitlines())
        long_lines += sum(len(line) > 100 for line in text.splitlines())
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name}"))
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (
                        inner.level or (inner.module or "").startswith("ntf_core")
                    ):
                        local_imports += 1
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("ntf_core")
            ):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    found.add(
                        sub
                        if (root / sub.replace(".", "/")).with_suffix(".py").exists()
                        else target
                    )
        edges[name] = found - {name}
    upward = sorted(f"{s} -> {d}" for s, ds in edges.items() for d in ds if layer(d) > layer(s))
    cycles = sorted(
        {
            " <-> ".join(sorted((s, d)))
            for s, ds in edges.items()
            for d in ds
            if s in edges.get(d, ())
        }
    )
    functions.sort(reverse=True)
    return {
        "modules": len(files),
        "lines": lines,
        "lines over 100 columns": long_lines,
        "longest functions": ", ".join(f"{n} ({k})" for k, n in functions[:4]),
        "upward edges": len(upward),
        "which": "; ".join(upward) or "none",
        "two-module cycles": len(cycles),
        "cycles": "; ".join(cycles) or "none",
        "function-local imports of ntf_core": local_imports,
        "train.py lines": len((pkg / "train.py").read_text().splitlines()),
    }


def layer(module: str) -> int:
    short = module.removeprefix("ntf_core").lstrip(".")
    if short == "":
        return -1
    key = "bench" if short.split(".")[0] == "bench" else short
    return next((i for i, names in enumerate(ntf_core.LAYERS) if key in names), 99)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--root", default=str(REPO))
    for k, v in shape(Path(p.parse_args().root)).items():
        print(f"{k}: {v}")
