"""Figure 5 on ntf-mini: NTF (the shipped mini checkpoint) and the baselines (fitted once, seed 0) under blur,
JPEG, noise and down-scaling, averaged over the nine test generators. Writes the JSON notebook 06 reads
(data_samples/results/robustness.json).

    OMP_NUM_THREADS=2 python benchmarks/robustness.py [--n-test 200] [--wang-epochs 5]
"""
import argparse
import json
import time

from ntf_core.baselines import NTF
from ntf_core.config import SHIPPED_CHECKPOINTS, make_config
from ntf_core.data import default_mini_root, mini_test_dirs
from ntf_core.experiments import fit_baselines, robustness

p = argparse.ArgumentParser()
p.add_argument("--n-test", type=int, default=200, help="images of each label per test generator")
p.add_argument("--wang-epochs", type=int, default=5)
p.add_argument("--out", default=str(default_mini_root().parent / "results" / "robustness.json"))
a = p.parse_args()
t0 = time.perf_counter()
detectors = {"NTF": NTF(SHIPPED_CHECKPOINTS / "stage2.pt"),
             **fit_baselines(make_config("mini").train_dir, wang_epochs=a.wang_epochs)}
print(f"baselines fitted in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
results = robustness(detectors, mini_test_dirs(), n_test=a.n_test)
with open(a.out, "w") as f:
    json.dump({"n_test": a.n_test, "wang_epochs": a.wang_epochs, "results": results}, f, indent=1)
print(f"{a.out} written in {(time.perf_counter() - t0) / 60:.1f} min")
