"""Do the two halves of the committed pndm test fakes differ?

The recipe drew the 800 pndm test fakes in two batches of 400 through one PNDMScheduler, whose
multistep history was never reset: the second batch began its trajectory with the first batch's
last model outputs (fixed since: ``bench.diffusion.sample`` starts each batch afresh; the committed
fakes are kept). ddim's folder, drawn the same way by a sampler that keeps no state between steps'
calls, is the control. For each folder:

- KID x 100 between its first and second 400 fakes, and of each half to the 800 real test crops
  (the data card's encoder and estimator; "+-" is the spread over 50 random subsets, not an
  interval: with 400 fakes and subsets of 400 the fakes are never resampled);
- the shipped detector's ROC-AUC (chance 50 %, whatever the class balance) and AP (against all 800
  reals, so at 400 fakes chance is 33.3 %) on each half, and the first-minus-second difference with
  a 95 % interval that resamples the real photographs and the fakes of each half.

    OMP_NUM_THREADS=2 python benchmarks/pndm_halves.py   # about 2 min; prints and writes a .txt
"""

from pathlib import Path

import numpy as np
import torch

from ntf_core.bench import kid
from ntf_core.bootstrap import METRICS as BOOT_METRICS
from ntf_core.bootstrap import replicate_weights
from ntf_core.checkpoints import load_detector
from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.data import Sample, load_tensor
from ntf_core.evaluate import score_samples
from ntf_core.mini import cluster_of, default_mini_root, read_manifest
from ntf_core.models import EfficientNetLite0

OUT = Path(__file__).with_suffix(".txt")
N_BOOT = 2000
METRICS = {m: BOOT_METRICS[m] for m in ("AUC", "AP")}


def folder_files(root: Path, generator: str) -> tuple[list[Path], list[Path]]:
    """(real, fake) files of a test folder, fakes in draw order (``<generator>-00000.png`` ...)."""
    folder = f"test/diffusion/{generator}/"
    rows = [r for r in read_manifest(root) if r["path"].startswith(folder)]
    reals = sorted(root / r["path"] for r in rows if int(r["label"]) == 0)
    fakes = sorted(root / r["path"] for r in rows if int(r["label"]) == 1)
    assert len(fakes) == 800 and len(reals) == 800, (generator, len(fakes), len(reals))
    return reals, fakes


def halves_report(generator: str, enc, det, cfg, root: Path) -> list[str]:
    reals, fakes = folder_files(root, generator)
    halves = {"first 400": fakes[:400], "second 400": fakes[400:]}
    feats = {n: kid.features(enc, load_tensor(ps)) for n, ps in halves.items()}
    ref = kid.features(enc, load_tensor(reals))
    lines = [f"{generator}:"]
    k, s = kid.kid(feats["first 400"], feats["second 400"], subsets=50, subset_size=200)
    lines.append(
        f"  KID x 100, first 400 vs second 400 (subsets of 200): {100 * k:.2f} +- {100 * s:.2f}"
    )
    mixed = torch.randperm(800, generator=torch.Generator().manual_seed(0))[:400]
    feats["random 400 of the 800"] = torch.cat(list(feats.values()))[mixed]
    for n, f in feats.items():
        k, s = kid.kid(f, ref, subsets=50, subset_size=400)
        lines.append(f"  KID x 100, {n} vs the 800 real test crops: {100 * k:.2f} +- {100 * s:.2f}")
    del feats["random 400 of the 800"]

    torch.manual_seed(0)
    real_s = score_samples(det, cfg, [Sample(p, 0, "real") for p in reals])
    fake_s = {
        n: score_samples(det, cfg, [Sample(p, 1, generator) for p in ps])
        for n, ps in halves.items()
    }

    # the two halves as two folders sharing the same reals: one draw of the real photographs per
    # replicate serves both, the fakes are drawn image by image (bootstrap.replicate_weights)
    labels = {n: np.r_[np.zeros(len(real_s)), np.ones(len(s))] for n, s in fake_s.items()}
    scores = {n: np.r_[real_s, s] for n, s in fake_s.items()}
    photos = [cluster_of(p) for p in reals]
    clusters = {n: photos + [str(p) for p in ps] for n, ps in halves.items()}
    weights = replicate_weights(labels, clusters, N_BOOT, seed=0)

    def metric(fn, n, w=None):
        return fn(labels[n], scores[n], sample_weight=w)

    reps = {
        m: {n: np.array([metric(fn, n, w) for w in weights[n]]) for n in halves}
        for m, fn in METRICS.items()
    }
    for m, fn in METRICS.items():
        chance = "50 %" if m == "AUC" else "33.3 %"
        lines.append(
            f"  shipped detector, {m} % against the 800 real test crops (chance {chance}):"
        )
        point = {n: metric(fn, n) for n in halves}
        for n in halves:
            lo, hi = np.percentile(reps[m][n], [2.5, 97.5])
            lines.append(f"    {n}: {100 * point[n]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
        lo, hi = np.percentile(reps[m]["first 400"] - reps[m]["second 400"], [2.5, 97.5])
        d = point["first 400"] - point["second 400"]
        verdict = "within noise" if lo <= 0 <= hi else "the interval excludes 0"
        lines.append(
            f"    first - second: {100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], {verdict}"
        )
    return lines


def main() -> str:
    root = default_mini_root()
    enc = EfficientNetLite0(pretrained=True).eval()
    det, cfg = load_detector(SHIPPED_CHECKPOINTS / "stage2.pt")
    lines = []
    for generator in ("pndm", "ddim"):  # ddim: the control, a sampler without multistep state
        lines += halves_report(generator, enc, det, cfg, root)
    text = "\n".join(lines)
    OUT.write_text(text + "\n")
    return text


if __name__ == "__main__":
    print(main())
