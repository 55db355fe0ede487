"""Tables 2-4 on ntf-mini at full size: NTF (the shipped mini checkpoint) and the three baselines, trained on
dcgan only, scored on the nine test generators; Wang2020 over three seeds. Writes the results JSON that
notebook 04 reads (data_samples/results/generalization.json).

    OMP_NUM_THREADS=2 python benchmarks/generalization.py [--seeds 0 1 2] [--wang-epochs 5]
"""
import argparse
import time

from ntf_core.config import SHIPPED_CHECKPOINTS, make_config
from ntf_core.data import default_mini_root, mini_test_dirs
from ntf_core.experiments import generalization, save_results

p = argparse.ArgumentParser()
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument("--wang-epochs", type=int, default=5)
p.add_argument("--out", default=str(default_mini_root().parent / "results" / "generalization.json"))
a = p.parse_args()
t0 = time.perf_counter()
results = generalization(make_config("mini").train_dir, mini_test_dirs(), {0: SHIPPED_CHECKPOINTS / "stage2.pt"},
                         seeds=a.seeds, wang_epochs=a.wang_epochs)
save_results(results, a.out)
print(f"{a.out} written in {(time.perf_counter() - t0) / 60:.1f} min")
