"""Which reading of eq. 3 should be the default? A small measured experiment.

For each mode of ``ort_loss`` (signed = the printed equation, abs = |cos|, square = cos^2):
  1. the 2-D toy (ntf_core.toy), descending L_ort alone: the mean |cos(z_hom, z_het)| it ends at;
  2. stage 1 on ntf-mini (mini preset, fewer epochs), then stage 2: on the real validation crops the
     mean cos and |cos| between z_hom and z_het, and the detector's average AP over the nine test
     generators.

    OMP_NUM_THREADS=2 python benchmarks/ort_mode_experiment.py \\
        [--epochs1 4] [--epochs2 5] [--out runs/ort]
"""

import argparse
import json
import time

import torch

from ntf_core import checkpoints, train
from ntf_core.checkpoints import load_detector
from ntf_core.config import make_config
from ntf_core.data import scan
from ntf_core.evaluate import embed, evaluate_dirs
from ntf_core.losses import ORT_MODES
from ntf_core.metrics import average_row
from ntf_core.mini import default_mini_root
from ntf_core.toy import toy_run, toy_summary

p = argparse.ArgumentParser()
p.add_argument("--epochs1", type=int, default=4)
p.add_argument("--epochs2", type=int, default=5)
p.add_argument("--out", default="runs/ort")
a = p.parse_args()

mini = default_mini_root()
tests = sorted(d for d in (mini / "test").glob("*/*") if d.is_dir())
val = scan(mini / "val")
val_real = [s for s in val if s.label == 0]
results = {}
for mode in ORT_MODES:
    t0 = time.perf_counter()
    toy = toy_summary(toy_run("ort", ort_mode=mode, steps=200))
    cfg = make_config(
        "mini", ort_mode=mode, epochs1=a.epochs1, epochs2=a.epochs2, out=f"{a.out}/{mode}"
    )
    p1, p2 = train.stage1(cfg), train.stage2(cfg)
    trace, _, _ = checkpoints.load_trace_model(p1)
    det, _ = load_detector(p2)
    sp = embed(trace, det, cfg, val_real)
    cos = (torch.from_numpy(sp["z_hom"]) * torch.from_numpy(sp["z_het"])).sum(1)
    avg = average_row(evaluate_dirs(p2, tests))
    results[mode] = {
        "toy_abs_cos": toy["abs_cos_hom_het"],
        "val_cos": float(cos.mean()),
        "val_abs_cos": float(cos.abs().mean()),
        "test_avg_AP": avg["AP"],
        "test_avg_ACC": avg["ACC"],
        "minutes": (time.perf_counter() - t0) / 60,
    }
    print(mode, json.dumps(results[mode]), flush=True)

print(
    f"\n{'mode':8}{'toy |cos|':>11}{'val cos':>10}{'val |cos|':>11}"
    f"{'test AP':>9}{'test ACC':>10}{'min':>6}"
)
for mode, r in results.items():
    print(
        f"{mode:8}{r['toy_abs_cos']:11.3f}{r['val_cos']:10.3f}{r['val_abs_cos']:11.3f}{r['test_avg_AP']:9.3f}"
        f"{r['test_avg_ACC']:10.3f}{r['minutes']:6.1f}"
    )
