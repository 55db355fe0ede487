"""Do the two halves of the committed pndm test fakes differ?

The recipe drew the 800 pndm test fakes in two batches of 400 through one PNDMScheduler, whose
multistep history was never reset: the second batch began its trajectory with the first batch's
last model outputs (fixed since: ``bench.diffusion.sample`` starts each batch afresh; the committed
fakes are kept). This measures what that did to the test folder:

- KID x 100 of each half to the 800 real test crops (the data card's encoder and estimator);
- the shipped detector's AP on each half against the same 800 reals, and the difference, with a
  95 % interval that resamples the real photographs and the fakes of each half.

    OMP_NUM_THREADS=2 python benchmarks/pndm_halves.py   # about a minute; prints and writes a .txt
"""

from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from ntf_core.bench import kid
from ntf_core.checkpoints import load_detector
from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.data import Sample, load_tensor
from ntf_core.evaluate import score_samples
from ntf_core.mini import cluster_of, default_mini_root, read_manifest
from ntf_core.models import EfficientNetLite0

OUT = Path(__file__).with_suffix(".txt")
N_BOOT = 2000


def main() -> str:
    root = default_mini_root()
    folder = "test/diffusion/pndm/"
    rows = [r for r in read_manifest(root) if r["path"].startswith(folder)]
    reals = sorted(root / r["path"] for r in rows if int(r["label"]) == 0)
    fakes = sorted(root / r["path"] for r in rows if int(r["label"]) == 1)  # pndm-00000...: drawn
    assert len(fakes) == 800 and len(reals) == 800, (len(fakes), len(reals))
    halves = {"first 400": fakes[:400], "second 400": fakes[400:]}

    enc = EfficientNetLite0(pretrained=True).eval()
    ref = kid.features(enc, load_tensor(reals))
    lines = ["KID x 100 to the 800 real test crops (50 subsets of 400):"]
    for name, paths in halves.items():
        k, s = kid.kid(kid.features(enc, load_tensor(paths)), ref, subsets=50, subset_size=400)
        lines.append(f"  {name}: {100 * k:.2f} +- {100 * s:.2f}")

    det, cfg = load_detector(SHIPPED_CHECKPOINTS / "stage2.pt")
    torch.manual_seed(0)
    real_scores = score_samples(det, cfg, [Sample(p, 0, "real") for p in reals])
    fake_scores = {
        n: score_samples(det, cfg, [Sample(p, 1, "pndm") for p in ps]) for n, ps in halves.items()
    }

    def ap(real_w, fake_s, fake_w):
        y = np.r_[np.zeros(len(real_scores)), np.ones(len(fake_s))]
        return average_precision_score(
            y, np.r_[real_scores, fake_s], sample_weight=np.r_[real_w, fake_w]
        )

    photos = np.array([cluster_of(p) for p in reals])
    names = sorted(set(photos))
    rng = np.random.default_rng(0)
    diffs, aps = [], {n: [] for n in halves}
    for _ in range(N_BOOT):
        counts = dict(zip(names, rng.multinomial(len(names), [1 / len(names)] * len(names))))
        real_w = np.array([counts[p] for p in photos], float)
        reps = {}
        for n, s in fake_scores.items():
            fake_w = np.bincount(rng.integers(0, len(s), len(s)), minlength=len(s)).astype(float)
            reps[n] = ap(real_w, s, fake_w)
            aps[n].append(reps[n])
        diffs.append(reps["first 400"] - reps["second 400"])
    lines.append("Shipped detector, AP % against the 800 real test crops [95 % interval]:")
    ones = np.ones(len(real_scores))
    point = {n: ap(ones, s, np.ones(len(s))) for n, s in fake_scores.items()}
    for n in halves:
        lo, hi = np.percentile(aps[n], [2.5, 97.5])
        lines.append(f"  {n}: {100 * point[n]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    d = point["first 400"] - point["second 400"]
    verdict = "within noise" if lo <= 0 <= hi else "the interval excludes 0"
    lines.append(f"  first - second: {100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], {verdict}")
    text = "\n".join(lines)
    OUT.write_text(text + "\n")
    return text


if __name__ == "__main__":
    print(main())
