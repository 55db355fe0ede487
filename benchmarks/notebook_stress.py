"""Run notebooks many times in a row, each in a fresh kernel, and count clean and hung runs.

    .venv/bin/python benchmarks/notebook_stress.py --notebook 02 --runs 20
    # the whole default course, once
    .venv/bin/python benchmarks/notebook_stress.py --course 1
    # tests' small parameters
    .venv/bin/python benchmarks/notebook_stress.py --notebook 02 --runs 3 --ci

Every run goes through ``ntf_core.course.execute`` without its retry, so a hang counts as a hang.
The cell limit is short (``--cell-timeout``, default 300 s, five times the slowest default cell) so
that a hang costs minutes, not hours; the kernel's stacks at that moment are printed (py-spy).
Results: a table on stdout, appended with the date and versions to
``benchmarks/notebook_stress.txt``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ntf_core import course  # noqa: E402

RESULTS = ROOT / "benchmarks" / "notebook_stress.txt"


def one_run(nb: Path, params: dict, cell_timeout: float, out: Path) -> tuple[str, float, str]:
    start = time.perf_counter()
    try:
        course.execute(nb, out / nb.name, params, cell_timeout=cell_timeout, progress=False)
        return "clean", time.perf_counter() - start, ""
    except course.NotebookRunError as err:
        return err.kind, time.perf_counter() - start, str(err)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--notebook", default=None, help="one notebook stem or number, run --runs times"
    )
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument(
        "--course", type=int, default=0, help="also run the whole default course this many times"
    )
    ap.add_argument(
        "--ci", action="store_true", help="use tests/notebook_ci_params.json instead of defaults"
    )
    ap.add_argument("--cell-timeout", type=float, default=300)
    ap.add_argument(
        "--no-record", action="store_true", help="do not append to benchmarks/notebook_stress.txt"
    )
    args = ap.parse_args(argv)
    ci = json.loads((ROOT / "tests" / "notebook_ci_params.json").read_text()) if args.ci else {}

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plan = []
        if args.notebook:
            (nb,) = course.notebooks([args.notebook])
            plan += [(nb.stem, [nb])] * args.runs
        plan += [("course", course.notebooks())] * args.course
        for i, (name, nbs) in enumerate(plan, start=1):
            status, seconds, detail = "clean", 0.0, ""
            for nb in nbs:
                params = course.fill_placeholders(ci.get(nb.stem, {}), tmp)
                status, s, detail = one_run(nb, params, args.cell_timeout, tmp)
                seconds += s
                if status != "clean":
                    break
            rows.append((name, status, seconds))
            print(f"run {i:>2}/{len(plan)} {name}: {status} in {seconds:.0f} s", flush=True)
            if detail:
                print(detail, flush=True)

    counts = {
        name: Counter(s for n, s, _ in rows if n == name)
        for name in dict.fromkeys(n for n, _, _ in rows)
    }
    lines = [
        f"## {dt.datetime.now().isoformat(timespec='minutes')}  "
        f"python {platform.python_version()}, "
        + ", ".join(
            f"{p} {version(p)}"
            for p in (
                "ipykernel",
                "jupyter_client",
                "nbclient",
                "pyzmq",
                "ipywidgets",
                "umap-learn",
                "numba",
            )
        ),
        f"parameters: {'CI' if args.ci else 'defaults'}; "
        f"cell limit {args.cell_timeout:.0f} s; no retries",
        "| what | runs | clean | hung or timed out | failed | median s | max s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in counts.items():
        secs = sorted(s for n, _, s in rows if n == name)
        bad = c["hung"] + c["timeout"] + c["kernel died"]
        lines.append(
            f"| {name} | {sum(c.values())} | {c['clean']} | {bad} | {c['error']} | "
            f"{secs[len(secs) // 2]:.0f} | {secs[-1]:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write(table + "\n\n")
    return 0 if all(s == "clean" for _, s, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
