"""Probe: how the KID table of the ntf-mini data card depends on the encoder's input size.

The data card's KID upsamples the 32 px crops to 128 px before EfficientNet-Lite0. This probe
recomputes the table at several input sizes from the shipped PNGs, for the trivial fakes (several
blur strengths), the real-train reference and every generator, all against the real test crops.
Run:

    OMP_NUM_THREADS=2 python benchmarks/kid_resolution_probe.py [--sizes 32 64 128] [--subsets 20]
"""

import argparse
import time

import torch

from ntf_core.bench import kid as K
from ntf_core.data import mini_images
from ntf_core.mini import FAMILIES
from ntf_core.models import EfficientNetLite0

p = argparse.ArgumentParser()
p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
p.add_argument("--subsets", type=int, default=20)
p.add_argument("--n", type=int, default=800)
a = p.parse_args()

torch.manual_seed(0)
enc = EfficientNetLite0(pretrained=True).eval()
test_real = mini_images("test", label=0, limit=a.n)
train_real = mini_images("train", label=0)
sets = {"gauss": K.gaussian_fakes(train_real, a.n, 0), "real_train": train_real[-a.n :]}
for f in (2, 4, 8):
    sets[f"blur{f}"] = K.blurred_fakes(train_real[-a.n :], f)
for names in FAMILIES.values():
    for g in names:
        sets[g] = mini_images("test", generator=g, label=1, limit=a.n)

print("KID x 100 against the real test crops")
print("set".ljust(12) + "".join(f"{s:>10d}px" for s in a.sizes))
rows = {k: [] for k in sets}
for s in a.sizes:
    K.FEATURE_SIZE = s
    t = time.perf_counter()
    ref = K.features(enc, test_real)
    for k, x in sets.items():
        rows[k].append(100 * K.kid(K.features(enc, x), ref, subsets=a.subsets)[0])
    print(f"# {s}px: {time.perf_counter() - t:.0f} s", flush=True)
for k, v in rows.items():
    print(k.ljust(12) + "".join(f"{x:12.2f}" for x in v))
