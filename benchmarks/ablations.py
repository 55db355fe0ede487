"""Figures 3 and 4 (and the course's L_d figure) on ntf-mini at full size, the mini preset, three seeds: every
ablation variant trained per seed and scored on 400 images of each label of the nine test folders (drawn across
photographs, the same images for every seed). Writes the JSON notebook 05 reads
(data_samples/results/ablations.json): per seed the results of ``ntf_core.ablations.ablations``, and per figure
the photo-bootstrap intervals of AP (variants paired against the figure's first variant).

Full NTF's stage 1 for seed s is the generalisation run's (``--full-stage1``, a pattern with {seed}; trained by
benchmarks/generalization.py); every other stage 1 and every stage 2 is trained here and resumes from runs/ablations.

    OMP_NUM_THREADS=2 python benchmarks/ablations.py [--seeds 0 1 2]
"""
import argparse
import json
import time
from pathlib import Path

from ntf_core.ablations import ablations
from ntf_core.bench.build import FAMILIES
from ntf_core.bootstrap import photo_bootstrap
from ntf_core.config import make_config
from ntf_core.data import cluster_of, default_mini_root, mini_test_dirs

p = argparse.ArgumentParser()
p.add_argument("--out", default=str(default_mini_root().parent / "results" / "ablations.json"))
p.add_argument("--runs", default="runs/ablations")
p.add_argument("--figures", nargs="+", default=["3", "4a", "4b", "L_d"])
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument("--full-stage1", default="runs/gen/s{seed}/stage1.pt",
               help='full NTF\'s stage-1 checkpoint per seed ({seed} pattern; "": train it here)')
p.add_argument("--n-boot", type=int, default=1000)
a = p.parse_args()
t0 = time.perf_counter()
dirs = mini_test_dirs()
runs, scores, picked = {}, {}, {}
for seed in a.seeds:
    scores[seed], here = {}, {}
    runs[seed] = ablations(make_config("mini", seed=seed, out=f"{a.runs}/s{seed}"), dirs, dm_dir=dirs["ddpm"],
                           figures=a.figures, n_fakes=400, n_test=400, few_photos=10,
                           full_stage1=a.full_stage1.format(seed=seed), scores=scores[seed], picked=here)
    if picked and here != picked:
        raise RuntimeError("the scored images differ between seeds; the paired bootstrap needs the same ones")
    picked = here
labels = {g: [s.label for s in ps] for g, ps in picked.items()}
clusters = {g: [cluster_of(s.path) for s in ps] for g, ps in picked.items()}
fams = {**FAMILIES, "shares the LDM": ["ddpm", "ddim", "pndm", "gan_dm", "dm_gan"],
        "other models": ["dcgan", "sngan", "stylegan", "gan_gan"]}
intervals = {}
for fig in runs[a.seeds[0]]:
    variants = list(runs[a.seeds[0]][fig])
    intervals[fig] = photo_bootstrap(labels, clusters, {v: [scores[s][fig][v] for s in a.seeds] for v in variants},
                                     fams, "AP", a.n_boot)
Path(a.out).write_text(json.dumps({"seeds": a.seeds, "n_test": 400, "runs": {str(s): r for s, r in runs.items()},
                                   "intervals": intervals}, indent=1))
print(f"{a.out} written in {(time.perf_counter() - t0) / 60:.1f} min")
