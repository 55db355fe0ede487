r"""Tables 2-4 on ntf-mini at full size, with seeds and intervals: NTF (one stage-1 + stage-2 run
per seed, the mini preset as selected on validation, docs/METHOD.md), the three baselines and the
low-frequency control, all trained on dcgan only and scored on the nine test generators.

Writes what notebook 04 and the README read, in data_samples/results/:

- generalization.json: ``{method: {seed: {generator: metrics row}}}``;
- generalization_intervals.json: photo-bootstrap intervals of AP and AUC, per generator, family and
  overall, and the paired NTF - baseline differences;
- generalization_scores.npz: every image's score (float16), labels and photo ids;

and, with --robustness, Figure 5 for the same fitted detectors (every seed), on 200 images of each
label per test folder drawn across photographs, what notebook 06 reads:

- robustness.json: ``{kind: {strength: {method: {"mean", "std", "lo", "hi"}}}}`` of the average AP
  over the nine folders, photo bootstrap, and the paired differences "NTF - <baseline>" alike.

The stored results were made by (the mini preset's two scales: every classifier input 64 px)

    OMP_NUM_THREADS=2 python benchmarks/generalization.py --ntf 'runs/gen64/s{seed}/stage2.pt' \
        --stage1 'runs/gen/s{seed}/stage1.pt' --robustness

and the single-scale comparison (every method at 32 px: generalization_32px*.json / .npz,
robustness_32px.json) by

    OMP_NUM_THREADS=2 python benchmarks/generalization.py --image-size 32 \
        --ntf 'runs/gen/s{seed}/stage2.pt' --stage1 'runs/gen/s{seed}/stage1.pt' --robustness

``--ntf`` is a pattern with ``{seed}``; a missing checkpoint is trained (both stages, mini preset;
stage 1 where ``--stage1`` points, when given) first.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ntf_core.bootstrap import photo_bootstrap
from ntf_core.config import make_config
from ntf_core.experiments import (
    CONTROLS,
    METHODS,
    generalization,
    labels_and_clusters,
    report_groups,
    results_tag,
    robustness,
    save_results,
)
from ntf_core.mini import default_mini_root, mini_test_dirs
from ntf_core.train import stage1, stage2

RESULTS = default_mini_root().parent / "results"


def ntf_checkpoints(pattern: str, seeds, image_size: int, stage1_pattern: str = "") -> dict:
    out = {}
    for seed in seeds:
        path = Path(pattern.format(seed=seed))
        if not path.exists():
            ck1 = {"stage1_checkpoint": stage1_pattern.format(seed=seed)} if stage1_pattern else {}
            cfg = make_config("mini", seed=seed, out=str(path.parent), image_size=image_size, **ck1)
            stage1(cfg)  # resumes, or returns at once when that stage 1 is complete
            stage2(cfg)
        out[seed] = path
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ntf", default="runs/gen/s{seed}/stage2.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--wang-epochs", type=int, default=5)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument(
        "--robustness", action="store_true", help="also Figure 5 with the same detectors"
    )
    p.add_argument("--robustness-n-test", type=int, default=200)
    p.add_argument(
        "--image-size",
        type=int,
        default=make_config("mini").image_size,
        help="the classifier's input size for every method (default the preset's 64: the paper's "
        "two scales, NTF's auxiliary branch staying on the 32 px image; another size writes "
        "*_<n>px files)",
    )
    p.add_argument(
        "--stage1",
        default="",
        help="NTF's stage 1 per seed ({seed} pattern) for checkpoints trained here",
    )
    a = p.parse_args()
    tag = results_tag(a.image_size)
    t0 = time.perf_counter()
    dirs = mini_test_dirs()
    scores: dict = {}
    fitted: dict = {}
    results = generalization(
        make_config("mini").train_dir,
        dirs,
        ntf_checkpoints(a.ntf, a.seeds, a.image_size, a.stage1),
        seeds=a.seeds,
        methods=METHODS + CONTROLS,
        wang_epochs=a.wang_epochs,
        scores=scores,
        fitted=fitted,
        input_size=a.image_size,
    )
    save_results(results, RESULTS / f"generalization{tag}.json")
    labels, clusters = labels_and_clusters(dirs)
    np.savez_compressed(
        RESULTS / f"generalization{tag}_scores.npz",
        **{
            f"{m}|{seed}|{g}": s.astype(np.float16)
            for m, by_seed in scores.items()
            for seed, r in by_seed.items()
            for g, s in r.items()
        },
        **{f"labels|{g}": y for g, y in labels.items()},
        **{f"clusters|{g}": np.array(c) for g, c in clusters.items()},
    )
    runs = {m: [scores[m][s] for s in sorted(scores[m])] for m in scores}
    intervals = {
        metric: photo_bootstrap(
            labels, clusters, runs, report_groups(dirs), metric, a.n_boot, reference="NTF"
        )
        for metric in ("AP", "AUC")
    }
    (RESULTS / f"generalization{tag}_intervals.json").write_text(json.dumps(intervals, indent=1))
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
                # the rows of Figure 5: each column the mean over seeds of the average over the
                # nine folders
                results[kind][strength] = {
                    m: {
                        c: float(np.mean([rows[kind][strength][f"{m}|{s}"][c] for s in ss]))
                        for c in ("AP", "AUC", "ACC", "FPR", "FNR")
                    }
                    for m, ss in seeds_of.items()
                }
                runs = {m: [by_det[f"{m}|{s}"] for s in ss] for m, ss in seeds_of.items()}
                boot = photo_bootstrap(labels, clusters, runs, None, "AP", 200, reference="NTF")
                intervals[kind][strength] = {m: boot["methods"][m]["average"] for m in METHODS}
                differences.setdefault(kind, {})[strength] = {
                    d: v["average"] for d, v in boot["differences"].items()
                }
        (RESULTS / f"robustness{tag}.json").write_text(
            json.dumps(
                {
                    "n_test": a.robustness_n_test,
                    "wang_epochs": a.wang_epochs,
                    "seeds": a.seeds,
                    "n_boot": 200,
                    "results": results,
                    "intervals": intervals,
                    "differences": differences,
                },
                indent=1,
            )
        )
        print(f"robustness written in {(time.perf_counter() - t0) / 60:.1f} min")
