r"""The forensics protocol lab at full size (what notebooks 06 and 09 and the README read):
data_samples/results/protocol_lab.json, one entry per part, each part rerun on its own.

    OMP_NUM_THREADS=2 python benchmarks/protocol_lab.py --parts calibration flips traps matrix

- calibration: the shipped detector calibrated on the validation reals at 5 % FPR (``ntf
  calibrate``, with a temperature from the labelled validation set); the FPR its threshold realises
  on the 800 test reals (the same in every folder) against the target, with a 95 % interval that
  resamples the eight test photographs (``bootstrap.cluster_rates``), and ``ntf evaluate``'s columns
  per test folder.
- flips: every method (NTF: stage 2 at seeds 0, 1, 2 on the shipped stage 1, seed 0 being the
  shipped stage 2; Wang2020 at seeds 0, 1, 2; the deterministic spectrum classifier and linear probe
  once), each calibrated at 5 % FPR on the validation reals, on all 800 real test crops and 100
  fakes of every test folder drawn at random: the share whose decision each re-encoding flips,
  and the FPR its threshold realises on the test reals.
- traps: the four traps of notebook 09 at full size.
- matrix: the family matrix (``lab.family_matrix``): every method trained on each family's own
  training split in turn, three seeds, scored on 400 images of each label of every test folder
  (drawn across photographs).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ntf_core import lab
from ntf_core.baselines import NTF
from ntf_core.config import SHIPPED_CHECKPOINTS, make_config
from ntf_core.data import mini_images
from ntf_core.experiments import fit_baselines
from ntf_core.mini import default_mini_root, mini_test_dirs
from ntf_core.train import stage2

RESULTS = default_mini_root().parent / "results" / "protocol_lab.json"
SEEDS = (0, 1, 2)


def ntf_seeds(out: Path) -> dict:
    """Stage-2 checkpoints at SEEDS on the shipped stage 1 (seed 0: the shipped stage 2)."""
    ckpts = {0: SHIPPED_CHECKPOINTS / "stage2.pt"}
    for seed in SEEDS[1:]:
        cfg = make_config(
            "mini",
            seed=seed,
            out=str(out / f"ntf-s{seed}"),
            stage1_checkpoint=str(SHIPPED_CHECKPOINTS / "stage1.pt"),
        )
        ckpts[seed] = stage2(cfg)
    return ckpts


def part_calibration(out: Path) -> dict:
    mini = make_config("mini")
    return lab.calibration_report(
        SHIPPED_CHECKPOINTS / "stage2.pt", mini.val_dir, mini.val_dir, mini_test_dirs(), out
    )


def part_flips(out: Path, wang_epochs: int) -> dict:
    mini = make_config("mini")
    ckpts = ntf_seeds(out)
    size = NTF(ckpts[0]).cfg.image_size
    by_seed = {}
    for seed in SEEDS:
        methods = ("spectrum", "linear probe", "Wang2020") if seed == 0 else ("Wang2020",)
        by_seed[seed] = {
            "NTF": NTF(ckpts[seed]),
            **fit_baselines(
                mini.train_dir, methods, seed=seed, wang_epochs=wang_epochs, input_size=size
            ),
        }
        print(f"flips: seed {seed} fitted", flush=True)
    return lab.flips_report(by_seed, mini_images("val", label=0), mini_test_dirs(), 100, None)


def part_traps(out: Path) -> dict:
    mini = make_config("mini")
    dirs = mini_test_dirs()
    ntf = NTF(SHIPPED_CHECKPOINTS / "stage2.pt")
    spectrum = fit_baselines(mini.train_dir, ("spectrum",), input_size=ntf.cfg.image_size)
    return lab.traps_report(
        ntf,
        spectrum["spectrum"],
        mini.train_dir,
        mini.val_dir,
        dirs,
        {g: dirs[g] for g in ("dcgan", "ddpm")},
        SHIPPED_CHECKPOINTS / "stage2.pt",
    )


def part_matrix(out: Path, wang_epochs: int, methods) -> dict:
    base = make_config("mini")
    return lab.family_matrix(
        base,
        SHIPPED_CHECKPOINTS / "stage1.pt",
        out / "matrix",
        seeds=SEEDS,
        methods=tuple(methods),
        n_test=400,
        wang_epochs=wang_epochs,
        input_size=NTF(SHIPPED_CHECKPOINTS / "stage2.pt").cfg.image_size,
        log=lambda m: print(m, flush=True),
    )


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return o


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["calibration", "flips", "traps", "matrix"])
    ap.add_argument("--out", type=Path, default=Path("runs/protocol_lab"))
    ap.add_argument("--wang-epochs", type=int, default=5)
    ap.add_argument(
        "--matrix-methods",
        nargs="+",
        default=["NTF", "spectrum", "linear probe"],
        help="the stored matrix leaves out Wang2020: nine fine-tuning runs of EfficientNet-Lite0 "
        "were more than this 2-core session could spend; add it to rerun",
    )
    ap.add_argument("--results", type=Path, default=RESULTS)
    a = ap.parse_args()
    stored = json.loads(a.results.read_text()) if a.results.exists() else {}
    for part in a.parts:
        t0 = time.perf_counter()
        if part == "calibration":
            stored[part] = part_calibration(a.out)
        elif part == "flips":
            stored[part] = part_flips(a.out, a.wang_epochs)
        elif part == "traps":
            stored[part] = part_traps(a.out)
        elif part == "matrix":
            stored[part] = part_matrix(a.out, a.wang_epochs, a.matrix_methods)
        else:
            raise SystemExit(f"unknown part {part!r}")
        stored.setdefault("minutes", {})[part] = (time.perf_counter() - t0) / 60
        a.results.parent.mkdir(parents=True, exist_ok=True)
        a.results.write_text(json.dumps(_jsonable(stored), indent=1, sort_keys=True))
        print(f"[{part}] {stored['minutes'][part]:.1f} min -> {a.results}", flush=True)


if __name__ == "__main__":
    main()
