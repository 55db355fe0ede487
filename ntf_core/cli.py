"""The ``ntf`` command: thin, it only parses and calls into ntf_core.

    ntf stage1   [--preset mini|paper] [--set NAME=VALUE ...] [--fresh]
                 train stage 1 (resumes by default)
    ntf stage2   [--preset mini|paper] [--set NAME=VALUE ...] [--fresh]
                 train stage 2 on a stage-1 checkpoint
    ntf evaluate --checkpoint CKPT DIR... [--json] [--real-dir R] [--skip-bad]
                 AP / ACC / FPR / FNR per folder
    ntf detect   --checkpoint CKPT|MODEL.onnx PATH... [--json] [--skip-bad]
                 P(fake) per image (folders: all images)
    ntf export   --checkpoint CKPT [--out FILE [--float32]] [--onnx MODEL.onnx]
                 a small copy for inference (no optimizer, float16), and/or the detector as ONNX
                 for `ntf detect` without torch
    ntf bench build [...]   build (or resume) the ntf-mini benchmark (python -m ntf_core.bench)
    ntf course [...]        run every notebook headless, never hanging (python -m ntf_core.course)

Several processes: ``torchrun --nproc_per_node N -m ntf_core.cli stage1 ...``. Config fields:
ntf_core/config.py.
"""

# Each command imports what it calls inside its own function: `ntf detect` on an ONNX file must
# start without importing torch (0.2 s instead of 4.5 s on 2 cores), and `ntf --help` without
# importing anything heavy.
from __future__ import annotations

import argparse
import json
import sys

from .config import make_config, parse_sets
from .images import BadImageError, LayoutError


def _train_parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"ntf {name}")
    p.add_argument(
        "--preset",
        default="mini",
        help="mini (CPU, ntf-mini) or paper (GPU, ResNet-50); default mini",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a config field, e.g. --set epochs1=5 --set out=runs/try (repeatable)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="ignore an existing checkpoint in out/ and start over"
    )
    return p


def _run_stage(stage: str, argv) -> int:
    a = _train_parser(stage).parse_args(argv)
    cfg = make_config(a.preset, **parse_sets(a.sets))
    from . import train

    path = getattr(train, stage)(cfg, resume=not a.fresh)
    from . import dist

    if dist.rank() == 0:
        print(f"[{stage}] checkpoint: {path}")
    dist.cleanup()
    return 0


def _evaluate(argv) -> int:
    p = argparse.ArgumentParser(prog="ntf evaluate")
    p.add_argument("--checkpoint", required=True, help="a stage-2 checkpoint (stage2.pt)")
    p.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="test folders with 0_real/ and 1_fake/ (one row each)",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument(
        "--real-dir",
        default=None,
        help="real images for folders that hold only fakes (UnivFD style)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--skip-bad", action="store_true", help="score around unreadable files, then list them"
    )
    a = p.parse_args(argv)
    from .evaluate import evaluate_dirs
    from .metrics import average_row, format_table

    skipped = {} if a.skip_bad else None
    try:
        rows = evaluate_dirs(
            a.checkpoint, a.dirs, a.device, a.batch_size, real_dir=a.real_dir, skipped=skipped
        )
    finally:  # what was skipped is worth knowing even when the evaluation then fails
        _report_skipped("evaluate", skipped)
    print(
        json.dumps({"rows": rows, "average": average_row(rows), "skipped": skipped or {}}, indent=1)
        if a.json
        else format_table(rows)
    )
    return 0


def _report_skipped(cmd: str, skipped: dict | None) -> None:
    if skipped:
        lines = "\n".join(f"  {path}: {problem}" for path, problem in skipped.items())
        print(f"ntf {cmd}: skipped {len(skipped)} unreadable file(s):\n{lines}", file=sys.stderr)


def _detect(argv) -> int:
    p = argparse.ArgumentParser(prog="ntf detect")
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a stage-2 checkpoint (stage2.pt), or its ONNX export "
        "(.onnx: runs without torch, fast start)",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="cpu", help="torch device (.pt checkpoints only)")
    p.add_argument(
        "--skip-bad", action="store_true", help="score around unreadable files, then list them"
    )
    a = p.parse_args(argv)
    skipped = {} if a.skip_bad else None
    try:
        if a.checkpoint.lower().endswith(".onnx"):
            from .portable import detect as detect_onnx

            out = detect_onnx(a.checkpoint, a.paths, skipped=skipped)
        else:
            from .evaluate import detect

            out = detect(a.checkpoint, a.paths, a.device, skipped=skipped)
    finally:
        _report_skipped("detect", skipped)
    if not out:
        raise ValueError("no readable image among the paths given")
    if a.json:
        print(json.dumps([{"path": str(f), "p_fake": s} for f, s in out], indent=1))
    else:
        for f, s in out:
            print(f"{s:.4f}  {f}")
    return 0


def _export(argv) -> int:
    p = argparse.ArgumentParser(prog="ntf export")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", help="a slim .pt copy: no optimizer state, float16 weights")
    p.add_argument(
        "--float32", action="store_true", help="keep float32 weights in --out (default: float16)"
    )
    p.add_argument("--onnx", help="the stage-2 detector as ONNX, for `ntf detect` without torch")
    a = p.parse_args(argv)
    if not (a.out or a.onnx):
        p.error("give --out, --onnx, or both")
    written = []
    if a.out:
        from .checkpoints import export_checkpoint

        written.append(export_checkpoint(a.checkpoint, a.out, half=not a.float32))
    if a.onnx:
        from .portable import export_onnx

        written.append(export_onnx(a.checkpoint, a.onnx))
    for out in written:
        print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd, rest = (argv[0], argv[1:]) if argv else (None, [])
    if cmd == "bench":
        from .bench.__main__ import main as sub

        return sub(rest)
    if cmd == "course":
        from .course import main as sub

        return sub(rest)
    commands = {
        "stage1": lambda r: _run_stage("stage1", r),
        "stage2": lambda r: _run_stage("stage2", r),
        "evaluate": _evaluate,
        "detect": _detect,
        "export": _export,
    }
    if cmd not in commands:
        print(__doc__.strip(), file=sys.stderr if cmd not in (None, "-h", "--help") else sys.stdout)
        return 0 if cmd in (None, "-h", "--help") else 2
    try:
        return commands[cmd](rest)
    except (
        ValueError,
        FileNotFoundError,
        LayoutError,
        BadImageError,
        RuntimeError,
        FloatingPointError,
    ) as err:
        print(f"ntf {cmd}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
