"""Tables 2-4 on ntf-mini at full size, with seeds and intervals: NTF (one stage-1 + stage-2 run per seed, the
mini preset as selected on validation, docs/METHOD.md), the three baselines and the low-frequency control, all
trained on dcgan only and scored on the nine test generators.

Writes what notebook 04 and the README read:
  data_samples/results/generalization.json            {method: {seed: {generator: metrics row}}}
  data_samples/results/generalization_intervals.json  photo-bootstrap intervals of AP and AUC, per generator,
                                                      family and overall, and the paired NTF - baseline differences
  data_samples/results/generalization_scores.npz      every image's score (float16), labels and photo ids
and, with --robustness, Figure 5 for the same fitted detectors (every seed), on 200 images of each label per test
folder drawn across photographs, what notebook 06 reads:
  data_samples/results/robustness.json                {kind: {strength: {method: {"mean", "std", "lo", "hi"}}}}
                                                      of the average AP over the nine folders, photo bootstrap,
                                                      and the paired differences "NTF - <baseline>" alike

    OMP_NUM_THREADS=2 python benchmarks/generalization.py --ntf runs/gen/s{seed}/stage2.pt [--seeds 0 1 2] [--robustness]

``--ntf`` is a pattern with ``{seed}``; a missing checkpoint is trained (both stages, mini preset) first.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from ntf_core.bootstrap import photo_bootstrap
from ntf_core.config import make_config
from ntf_core.data import default_mini_root, mini_test_dirs
from ntf_core.experiments import (
    CONTROLS,
    METHODS,
    generalization,
    labels_and_clusters,
    report_groups,
    robustness,
    save_results,
)
from ntf_core.train import stage1, stage2

RESULTS = default_mini_root().parent / "results"


def ntf_checkpoints(pattern: str, seeds) -> dict:
    out = {}
    for seed in seeds:
        path = Path(pattern.format(seed=seed))
        if not path.exists():
            cfg = make_config("mini", seed=seed, out=str(path.parent))
            stage1(cfg)
            stage2(cfg)
        out[seed] = path
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ntf", default="runs/gen/s{seed}/stage2.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--wang-epochs", type=int, default=5)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--robustness", action="store_true", help="also Figure 5 with the same detectors")
    p.add_argument("--robustness-n-test", type=int, default=200)
    a = p.parse_args()
    t0 = time.perf_counter()
    dirs = mini_test_dirs()
    scores: dict = {}
    fitted: dict = {}
    results = generalization(make_config("mini").train_dir, dirs, ntf_checkpoints(a.ntf, a.seeds), seeds=a.seeds,
                             methods=METHODS + CONTROLS, wang_epochs=a.wang_epochs, scores=scores, fitted=fitted)
    save_results(results, RESULTS / "generalization.json")
    labels, clusters = labels_and_clusters(dirs)
    np.savez_compressed(RESULTS / "generalization_scores.npz", **{
        f"{m}|{seed}|{g}": s.astype(np.float16) for m, by_seed in scores.items() for seed, r in by_seed.items()
        for g, s in r.items()}, **{f"labels|{g}": y for g, y in labels.items()},
        **{f"clusters|{g}": np.array(c) for g, c in clusters.items()})
    runs = {m: [scores[m][s] for s in sorted(scores[m])] for m in scores}
    intervals = {metric: photo_bootstrap(labels, clusters, runs, report_groups(dirs), metric, a.n_boot, reference="NTF")
                 for metric in ("AP", "AUC")}
    (RESULTS / "generalization_intervals.json").write_text(json.dumps(intervals, indent=1))
    print(f"generalisation written in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    if a.robustness:
        detectors = {f"{m}|{seed}": det for m in METHODS for seed, det in fitted[m].items()}
        rob_scores: dict = {}
        rows = robustness(detectors, dirs, n_test=a.robustness_n_test, scores=rob_scores)
        labels, clusters = labels_and_clusters(dirs, a.robustness_n_test)
        results, intervals, differences = {}, {}, {}
        for kind, by_strength in rob_scores.items():
            results[kind], intervals[kind] = {}, {}
            for strength, by_det in by_strength.items():
                seeds_of = {m: sorted(fitted[m]) for m in METHODS}
                # the rows of Figure 5: each column the mean over seeds of the average over the nine folders
                results[kind][strength] = {m: {c: float(np.mean([rows[kind][strength][f"{m}|{s}"][c] for s in ss]))
                                               for c in ("AP", "AUC", "ACC", "FPR", "FNR")}
                                           for m, ss in seeds_of.items()}
                runs = {m: [by_det[f"{m}|{s}"] for s in ss] for m, ss in seeds_of.items()}
                boot = photo_bootstrap(labels, clusters, runs, None, "AP", 200, reference="NTF")
                intervals[kind][strength] = {m: boot["methods"][m]["average"] for m in METHODS}
                differences.setdefault(kind, {})[strength] = {d: v["average"] for d, v in boot["differences"].items()}
        (RESULTS / "robustness.json").write_text(json.dumps(
            {"n_test": a.robustness_n_test, "wang_epochs": a.wang_epochs, "seeds": a.seeds, "n_boot": 200,
             "results": results, "intervals": intervals, "differences": differences}, indent=1))
        print(f"robustness written in {(time.perf_counter() - t0) / 60:.1f} min")
