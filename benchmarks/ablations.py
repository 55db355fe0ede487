"""Figures 3 and 4 on ntf-mini at full size (the mini preset): every ablation variant trained and scored on the
last 400 images of each label of the nine test folders. Writes the results JSON that notebook 05 reads
(data_samples/results/ablations.json). Full NTF's stage 1 is the shipped checkpoint, made by `make checkpoints`
with the same preset and code (stored in float16); `--full-stage1 ""` trains it here too (about 6 more minutes).
Every other stage 1 and every stage 2 is trained here. Runs resume from runs/ablations when stopped.

    OMP_NUM_THREADS=2 python benchmarks/ablations.py        # about 40 min on 2 busy CPU cores
"""
import argparse
import json
import time

from ntf_core.ablations import ablations
from ntf_core.config import SHIPPED_CHECKPOINTS, make_config
from ntf_core.data import default_mini_root, mini_test_dirs

p = argparse.ArgumentParser()
p.add_argument("--out", default=str(default_mini_root().parent / "results" / "ablations.json"))
p.add_argument("--runs", default="runs/ablations")
p.add_argument("--figures", nargs="+", default=["3", "4a", "4b"])
p.add_argument("--full-stage1", default=str(SHIPPED_CHECKPOINTS / "stage1.pt"),
               help='full NTF\'s stage-1 checkpoint (default: the shipped one; "": train it)')
a = p.parse_args()
t0 = time.perf_counter()
dirs = mini_test_dirs()
results = ablations(make_config("mini", out=a.runs), dirs, dm_dir=dirs["ddpm"], figures=a.figures,
                    n_fakes=400, n_test=400, few_photos=10, full_stage1=a.full_stage1)
with open(a.out, "w") as f:
    json.dump(results, f, indent=1)
print(f"{a.out} written in {(time.perf_counter() - t0) / 60:.1f} min")
