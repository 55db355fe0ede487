"""Figures 3 and 4 (and the course's L_d figure) on ntf-mini at full size, the mini preset, three
seeds: every ablation variant trained per seed and scored on 400 images of each label of the nine
test folders (drawn across photographs, the same images for every seed). Writes the JSON notebook 05
reads (data_samples/results/ablations.json): per seed the results of
``ntf_core.ablations.ablations``, and per figure the photo-bootstrap intervals of AP (variants
paired against the figure's first variant).

Cost, and the one deviation it forces: Figures 3 and 4b retrain stage 1 for every variant and seed.
At the preset's 10 epochs that is 12 stage-1 runs (about 65 min on 2 cores), so these two figures
are run around a **3-epoch** stage 1 (``--short-epochs1``; every variant alike, full NTF included:
the e3 arm of benchmarks/selection.py, val AP 0.906 ± 0.044 against 0.919 ± 0.018 at 10 epochs,
both at the ablations' 32 px). Figures 4a and L_d only retrain stage 2 and stand on the preset's own
stage 1. Full NTF's stage 1 for seed s is the selection run's (``--full-stage1`` /
``--short-stage1``, patterns with {seed}); every other stage 1 and every stage 2 is trained here
and resumes from runs/ablations.

    OMP_NUM_THREADS=2 python benchmarks/ablations.py [--seeds 0 1 2]
    # one figure into the stored file:
    OMP_NUM_THREADS=2 python benchmarks/ablations.py --figures 4b --merge
"""

import argparse
import json
import time
from pathlib import Path

from ntf_core.ablations import ablations
from ntf_core.bootstrap import photo_bootstrap
from ntf_core.config import make_config
from ntf_core.experiments import report_groups
from ntf_core.mini import cluster_of, default_mini_root, mini_test_dirs

p = argparse.ArgumentParser()
p.add_argument("--out", default=str(default_mini_root().parent / "results" / "ablations.json"))
p.add_argument("--runs", default="runs/ablations")
p.add_argument("--figures", nargs="+", default=["3", "4a", "4b", "L_d"])
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument(
    "--full-stage1",
    default="runs/sel/e10_lr0.001_s{seed}/stage1.pt",
    help="full NTF's stage-1 checkpoint per seed for Figures 4a and L_d ({seed} pattern)",
)
p.add_argument("--short-epochs1", type=int, default=3, help="stage-1 epochs of Figures 3 and 4b")
p.add_argument(
    "--short-stage1",
    default="runs/sel/e3_lr0.001_s{seed}/stage1.pt",
    help="full NTF's stage-1 checkpoint per seed for Figures 3 and 4b (a --short-epochs1 run)",
)
p.add_argument("--n-boot", type=int, default=1000)
p.add_argument(
    "--image-size",
    type=int,
    default=32,
    help="stage 2's classifier input (the stored ablations are at one scale, 32 px: they were run "
    "before the preset took the paper's two scales, 64 px, and were not rerun since; "
    "docs/METHOD.md)",
)
p.add_argument(
    "--merge",
    action="store_true",
    help="keep the figures of an existing --out file that this run does not train "
    "(same seeds, n_test)",
)
a = p.parse_args()
t0 = time.perf_counter()
dirs = mini_test_dirs()
runs, scores, picked = {}, {}, {}
for seed in a.seeds:
    scores[seed], here = {}, {}
    runs[seed] = {}
    for figs, epochs1, full in (
        (["3", "4b"], a.short_epochs1, a.short_stage1),
        (["4a", "L_d"], None, a.full_stage1),
    ):
        figs = [f for f in figs if f in a.figures]
        if not figs:
            continue
        over = (
            {"epochs1": epochs1, "image_size": a.image_size}
            if epochs1
            else {"image_size": a.image_size}
        )
        out = f"{a.runs}/s{seed}" + (f"/e{epochs1}" if epochs1 else "")
        part_scores: dict = {}
        part = ablations(
            make_config("mini", seed=seed, out=out, **over),
            dirs,
            dm_dir=default_mini_root() / "gen_train" / "diffusion" / "ddpm",
            figures=figs,
            n_fakes=400,
            n_test=400,
            few_photos=10,
            full_stage1=full.format(seed=seed),
            scores=part_scores,
            picked=here,
        )
        # each call's full NTF stays with its own figures (3-epoch: 3 and 4b; preset: the rest)
        for f in figs:
            runs[seed][f], scores[seed][f] = part[f], part_scores[f]
    if picked and here != picked:
        raise RuntimeError(
            "the scored images differ between seeds; the paired bootstrap needs the same ones"
        )
    picked = here
labels = {g: [s.label for s in ps] for g, ps in picked.items()}
clusters = {g: [cluster_of(s.path) for s in ps] for g, ps in picked.items()}
fams = report_groups(dirs)
intervals = {}
for fig in [f for f in ("3", "4a", "4b", "L_d") if f in runs[a.seeds[0]]]:
    variants = list(runs[a.seeds[0]][fig])
    intervals[fig] = photo_bootstrap(
        labels,
        clusters,
        {v: [scores[s][fig][v] for s in a.seeds] for v in variants},
        fams,
        "AP",
        a.n_boot,
    )
runs = {str(s): r for s, r in runs.items()}
if a.merge and Path(a.out).exists():
    old = json.loads(Path(a.out).read_text())
    if old["seeds"] != a.seeds or old["n_test"] != 400 or old.get("n_boot", a.n_boot) != a.n_boot:
        raise SystemExit(
            f"--merge: {a.out} holds seeds {old['seeds']}, n_test {old['n_test']}, n_boot "
            f"{old.get('n_boot')}; this run {a.seeds}, 400, {a.n_boot}"
        )
    runs = {s: {**old["runs"][s], **r} for s, r in runs.items()}
    intervals = {**old.get("intervals", {}), **intervals}
Path(a.out).write_text(
    json.dumps(
        {"seeds": a.seeds, "n_test": 400, "n_boot": a.n_boot, "runs": runs, "intervals": intervals},
        indent=1,
    )
)
print(f"{a.out} written in {(time.perf_counter() - t0) / 60:.1f} min")
