"""The paper's two scales, measured once on the dcgan *validation* split: the classifier on the
image enlarged to 64 px, the auxiliary branch (L_ext) and the hom features on the 32 px image
itself, against the mini preset's single 32 px scale; the baselines alike (``baselines.Enlarged``:
fitted and scored on the enlarged images). ntf-mini's images are 32 px, so the larger input carries
no new pixels: what can change is how the ImageNet encoder, pretrained at 224 px, responds to a less
tiny input.

NTF's arms share each seed's stage 1 (the preset's, ``--stage1`` pattern; a missing one is trained)
and retrain stage 2 only. Writes data_samples/results/two_scale.json ({method: {size: {seed: val
metrics}}}) after every run and prints the table (mean ± std over seeds; the paired per-seed
difference 64 - 32 px).

    OMP_NUM_THREADS=2 python benchmarks/two_scale.py [--seeds 0 1 2] \\
        [--methods NTF "linear probe" spectrum]
    # after generalization.py at 64 (the preset) and at --image-size 32: each method's paired
    # 64 - 32 px difference on the test folders, from the stored scores
    python benchmarks/two_scale.py --test
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ntf_core.baselines import Enlarged
from ntf_core.bootstrap import photo_bootstrap
from ntf_core.checkpoints import load_detector
from ntf_core.config import make_config
from ntf_core.data import scan
from ntf_core.evaluate import score_samples
from ntf_core.experiments import load_images, make_method, report_groups, results_tag
from ntf_core.metrics import detection_metrics
from ntf_core.mini import default_mini_root, mini_test_dirs
from ntf_core.train import stage1, stage2

OUT = default_mini_root().parent / "results" / "two_scale.json"
SIZES = (32, 64)


def ntf_val(seed: int, size: int, stage1_pattern: str, runs: Path) -> dict:
    ck1 = Path(stage1_pattern.format(seed=seed))
    if not ck1.exists():  # the preset's stage 1, trained where the pattern points
        stage1(make_config("mini", seed=seed, out=str(ck1.parent), stage1_checkpoint=str(ck1)))
    cfg = make_config(
        "mini",
        seed=seed,
        image_size=size,
        out=str(runs / f"s{seed}" / f"px{size}"),
        stage1_checkpoint=str(ck1),
    )
    det, cfg = load_detector(stage2(cfg))
    val = scan(cfg.val_dir, layout="cnndetection")
    return detection_metrics([s.label for s in val], score_samples(det, cfg, val)) | {
        "stage1": str(ck1)
    }


def test_differences(n_boot: int = 500) -> dict:
    """Each method at 64 px minus itself at 32 px on the nine test folders (the same images, the
    same photo resamples: ``bootstrap.photo_bootstrap``), from generalization*_scores.npz; AP
    points."""
    res = OUT.parent
    z = {size: np.load(res / f"generalization{results_tag(size)}_scores.npz") for size in SIZES}
    labels = {k.split("|")[1]: z[32][k] for k in z[32] if k.startswith("labels|")}
    clusters = {k.split("|")[1]: list(z[32][k]) for k in z[32] if k.startswith("clusters|")}
    methods = sorted({k.split("|")[0] for k in z[32] if k.count("|") == 2})
    out = {}
    for m in methods:
        runs = {
            size: [
                {g: z[size][f"{m}|{seed}|{g}"].astype(np.float32) for g in labels}
                for seed in sorted(
                    {k.split("|")[1] for k in z[size] if k.startswith(f"{m}|")}, key=int
                )
            ]
            for size in SIZES
        }
        b = photo_bootstrap(
            labels,
            clusters,
            {"64": runs[64], "32": runs[32]},
            report_groups(mini_test_dirs()),
            "AP",
            n_boot,
            reference="64",
        )
        out[m] = b["differences"]["64 - 32"]
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=["NTF", "linear probe", "spectrum"])
    p.add_argument(
        "--stage1",
        default="runs/gen/s{seed}/stage1.pt",
        help="each seed's stage 1 ({seed} pattern)",
    )
    p.add_argument("--runs", default="runs/two_scale")
    p.add_argument("--wang-epochs", type=int, default=5)
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--test", action="store_true", help="the test folders' paired 64 - 32 px differences"
    )
    a = p.parse_args()
    if a.test:
        diffs = test_differences()
        (OUT.parent / "two_scale_test.json").write_text(json.dumps(diffs, indent=1))
        print("| method | GAN | diffusion | multi-step | all nine |\n|---|---|---|---|---|")
        for m, d in diffs.items():
            print(
                f"| {m} | "
                + " | ".join(
                    f"{100 * d[r]['mean']:+.1f} [{100 * d[r]['lo']:+.1f}, {100 * d[r]['hi']:+.1f}]"
                    for r in ("gan average", "diffusion average", "multistep average", "average")
                )
                + " |"
            )
        raise SystemExit
    out = Path(a.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    cfg = make_config("mini")
    data = None
    for method in a.methods:
        for size in SIZES:
            # the others: deterministic
            for seed in a.seeds if method in ("NTF", "Wang2020") else a.seeds[:1]:
                if str(seed) in results.get(method, {}).get(str(size), {}):
                    continue
                t0 = time.perf_counter()
                if method == "NTF":
                    m = ntf_val(seed, size, a.stage1, Path(a.runs))
                else:
                    if data is None:
                        data = (
                            load_images(scan(cfg.train_dir, layout="cnndetection")),
                            load_images(scan(cfg.val_dir, layout="cnndetection")),
                        )
                    (x, y), (xv, yv) = data
                    det = make_method(method, seed, a.wang_epochs)
                    det = (Enlarged(det, size) if size != 32 else det).fit(x, y)
                    m = detection_metrics(yv, det.score(xv))
                rec = {k: m[k] for k in ("AP", "AUC", "ACC", "stage1") if k in m} | {
                    "seconds": time.perf_counter() - t0
                }
                results.setdefault(method, {}).setdefault(str(size), {})[str(seed)] = rec
                out.write_text(json.dumps(results, indent=1))
                print(
                    f"{method} {size} px seed {seed}: val AP {rec['AP']:.4f} AUC {rec['AUC']:.4f} "
                    f"({rec['seconds']:.0f} s)",
                    flush=True,
                )
    print(
        "| method | seeds | val AP, 32 px | val AP, 64 px | 64 - 32 px (paired by seed) |\n"
        "|---|---:|---:|---:|---:|"
    )
    for method, by_size in results.items():
        seeds = sorted(set(by_size.get("32", {})) & set(by_size.get("64", {})), key=int)
        if not seeds:
            continue
        ap = {s: np.array([by_size[s][k]["AP"] for k in seeds]) for s in ("32", "64")}
        d = ap["64"] - ap["32"]
        sd = lambda v: v.std(ddof=1) if len(v) > 1 else 0.0
        print(
            f"| {method} | {len(seeds)} | {ap['32'].mean():.3f} ± {sd(ap['32']):.3f} | "
            f"{ap['64'].mean():.3f} ± {sd(ap['64']):.3f} | {d.mean():+.3f} ± {sd(d):.3f} |"
        )
