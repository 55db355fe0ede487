"""python -m ntf_core.bench build [--preset full] [--out data_samples/ntf-mini]
[--work build/ntf-mini-work]"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from .build import PRESETS, Builder

DEFAULT_OUT = Path("data_samples/ntf-mini")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ntf_core.bench", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or resume building) ntf-mini")
    b.add_argument("--preset", choices=sorted(PRESETS), default="full")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT)
    b.add_argument(
        "--work",
        type=Path,
        default=Path("build/ntf-mini-work"),
        help="stage results; delete it to rebuild from scratch",
    )
    b.add_argument(
        "--card",
        type=Path,
        default=None,
        help="data card path (default: data_samples/README.md for the default --out, "
        "else OUT/README.md)",
    )
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--device", default=None, help="cpu (default, deterministic) or cuda")
    b.add_argument(
        "--photos", nargs="+", default=None, help="other source photos (default: the 54 verified)"
    )
    args = ap.parse_args(argv)
    cfg = PRESETS[args.preset]
    overrides = {
        k: v
        for k, v in (("seed", args.seed), ("device", args.device), ("photo_paths", args.photos))
        if v is not None
    }
    cfg = dataclasses.replace(cfg, **overrides)
    torch.use_deterministic_algorithms(True, warn_only=True)
    card = args.card
    if card is None:
        card = args.out.parent / "README.md" if args.out == DEFAULT_OUT else args.out / "README.md"
    Builder(args.out, args.work, cfg).run(card=card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
