"""Run the course headless: every notebook under notebooks/, in order, through papermill.

    python -m ntf_core.course [--out build/course] [-p NAME VALUE ...] [--only 00_the_data]

Executed copies go to ``--out``; the notebooks in the repository are not touched. ``-p`` overrides a parameter
in every notebook that has it (papermill injects it after the cell tagged ``parameters``).
"""
from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebooks(only=None) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not only or p.stem in only or p.stem[:2] in only]


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run(out: Path, parameters: dict | None = None, only=None, kernel: str = "python3") -> list[Path]:
    import papermill as pm
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks(only):
        start = time.perf_counter()
        target = out / nb.name
        print(f"running {nb.name} ...", flush=True)
        pm.execute_notebook(str(nb), str(target), parameters=parameters or {}, kernel_name=kernel,
                            cwd=str(nb.parent), progress_bar=False)
        print(f"  done in {time.perf_counter() - start:.0f} s -> {target}", flush=True)
        done.append(target)
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ntf_core.course", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("build/course"))
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--only", nargs="+", default=None, help="notebook stems or their two-digit numbers")
    args = ap.parse_args(argv)
    if not notebooks(args.only):
        print(f"no notebooks matched in {NOTEBOOKS}", file=sys.stderr)
        return 2
    run(args.out, {k: _value(v) for k, v in args.parameter}, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
