"""The ``ntf`` command: thin, it only parses and calls into ntf_core.

    ntf stage1   [--preset mini|paper] [--set NAME=VALUE ...] [--fresh]
                 train stage 1 (resumes by default)
    ntf stage2   [--preset mini|paper] [--set NAME=VALUE ...] [--fresh]
                 train stage 2 on a stage-1 checkpoint
    ntf evaluate --checkpoint CKPT DIR... [--fpr 0.05] [--stability] [--json] [--real-dir R]
                 AP, ROC-AUC, ACC@0.5, TPR at the target FPR per folder; a calibrated checkpoint's
                 ACC, TPR and realised FPR at its threshold; --stability: re-encoding flip rates
    ntf detect   --checkpoint CKPT|MODEL.onnx PATH... [--stability] [--json] [--skip-bad]
                 P(fake) per image (folders: all images), and a verdict real / unsure / fake when
                 the model is calibrated; --stability: the scores under re-encodings, and flips
    ntf calibrate --checkpoint CKPT|MODEL.onnx --reals DIR [--labelled DIR] [--fpr 0.05]
                 [--out COPY] [--onnx COPY.onnx]
                 the threshold at a target false-positive rate on held-out reals (+ temperature),
                 written into a calibrated copy
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
    p.add_argument(
        "--fpr",
        type=float,
        default=0.05,
        help="target false-positive rate of the TPR@FPR column (a calibrated checkpoint's own "
        "target replaces it); default 0.05",
    )
    p.add_argument(
        "--stability",
        action="store_true",
        help="also re-encode every image (JPEG 95/75/50, WebP, 0.5x / 2x) and report how often "
        "each flips the verdict, per folder",
    )
    a = p.parse_args(argv)
    from .calibration import format_protocol, protocol_average
    from .evaluate import evaluate_dirs

    skipped = {} if a.skip_bad else None
    try:
        rows = evaluate_dirs(
            a.checkpoint,
            a.dirs,
            a.device,
            a.batch_size,
            real_dir=a.real_dir,
            skipped=skipped,
            target_fpr=a.fpr,
        )
    finally:  # what was skipped is worth knowing even when the evaluation then fails
        _report_skipped("evaluate", skipped)
    flips = None
    if a.stability:
        from .protocol import stability_dirs

        flips = stability_dirs(a.checkpoint, a.dirs, a.device, skipped)
    if a.json:
        out = {"rows": rows, "average": protocol_average(rows), "skipped": skipped or {}}
        if flips is not None:
            out["stability"] = flips
        print(json.dumps(out, indent=1))
        return 0
    print(format_protocol(rows))
    if flips is not None:
        print("\nverdicts flipped by re-encoding (% of the folder's images):")
        print(_flip_table(flips))
    return 0


def _flip_table(flips: dict[str, dict]) -> str:
    from .protocol import REENCODINGS

    cols = [*REENCODINGS, "any"]
    w = max(12, *(len(n) for n in flips))
    lines = [f"{'folder':<{w}}" + "".join(f"{c:>13}" for c in cols)]
    for name, r in flips.items():
        lines.append(f"{name:<{w}}" + "".join(f"{100 * r[c]:13.1f}" for c in cols))
    return "\n".join(lines)


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
    p.add_argument(
        "--stability",
        action="store_true",
        help="re-encode each image (JPEG 95/75/50, WebP, 0.5x / 2x): the spread of its scores and "
        "which re-encodings flip its verdict",
    )
    a = p.parse_args(argv)
    from .protocol import load_calibration

    if a.stability or load_calibration(a.checkpoint) is not None:
        return _detect_protocol(a)
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


def _detect_protocol(a) -> int:
    """``ntf detect`` on a calibrated model (verdicts) or with ``--stability``."""
    from .protocol import load_calibration, stability, verdicts

    skipped = {} if a.skip_bad else None
    try:
        rows = (stability if a.stability else verdicts)(a.checkpoint, a.paths, a.device, skipped)
    finally:
        _report_skipped("detect", skipped)
    if not rows:
        raise ValueError("no readable image among the paths given")
    cal = load_calibration(a.checkpoint)
    if a.stability and cal is not None:  # the verdict of each image before re-encoding
        for r in rows:
            r["verdict"] = str(cal.verdicts(r["p_fake"]))
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        line = f"{r['p_fake']:.4f}  " + (f"{r['verdict']:<7} " if "verdict" in r else "")
        if a.stability:
            flips = ", ".join(r["flips"]) or "none"
            line += f"spread {r['spread']:.3f}  flips: {flips:<30} "
        print(line + r["path"])
    return 0


def _calibrate(argv) -> int:
    p = argparse.ArgumentParser(
        prog="ntf calibrate",
        description="Choose the verdict threshold on held-out real images (never the test set).",
    )
    p.add_argument("--checkpoint", required=True, help="stage2.pt, or its ONNX export")
    p.add_argument(
        "--reals",
        required=True,
        help="held-out real images: a folder (its 0_real folders if it has any, else every image)",
    )
    p.add_argument(
        "--labelled",
        default=None,
        help="a validation folder with 0_real/ and 1_fake/: also fit a temperature on it",
    )
    p.add_argument("--fpr", type=float, default=0.05, help="target false-positive rate (0.05)")
    p.add_argument("--out", default=None, help="the calibrated copy (default: NAME.calibrated.pt)")
    p.add_argument("--onnx", default=None, help="also export the calibrated copy as ONNX")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    from .protocol import calibrate

    cal, written = calibrate(
        a.checkpoint, a.reals, a.fpr, a.labelled, a.out, a.onnx, device=a.device
    )
    print(
        f"threshold P(fake) > {cal.threshold:.4f} at a target FPR of {100 * cal.target_fpr:g} % "
        f"({cal.n_reals} reals; {100 * cal.realised_fpr:.1f} % of them above it); "
        f"unsure above {cal.unsure_below:.4f}; temperature {cal.temperature:.3f}"
    )
    for out in written:
        print(f"wrote {out}")
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
        "calibrate": _calibrate,
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
