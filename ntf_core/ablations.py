"""The paper's ablations, Figures 3 and 4, on any CNNDetection-layout data (ntf-mini in the course).

    results = ablations(make_config("mini", out="runs/ablations"), mini_test_dirs(), dm_dir=...)

Figure 3, the terms of L_tra (eq. 4): full NTF; without L_ort (lambda = 0); without L_het and L_ort
(het_weight = lambda = 0, L_hom alone). Stage 1 is trained for each variant, then stage 2 the same way on each.
Figure 4a, the fakes of stage 2: from the training GAN or from a diffusion model (stage 1 shared: full NTF's).
Figure 4b, the real images of stage 1: those of a few source photos, or as many images spread over all photos
(the course's stand-in for the paper's number of LSUN categories); stage 2 as in full NTF.
"L_d" (the course's, not the paper's): stage 2 without L_ext (gamma * L_ce alone), and with the verdict read from e
(``reading="e"``), both on full NTF's stage 1: does what L_ext trains reach the scores?

Choices, written down because the paper does not say them:
- ntf-mini has no diffusion training split. The DM fakes of Figure 4a are ``n_fakes`` fakes drawn at random from
  one DM test folder, and every detector of every figure is scored on ``n_test`` images of each label of each
  test folder drawn across source photographs (``data.stratified_subset``) from the images no detector trained
  on (n_fakes + n_test <= folder size is checked, and Figure 4a refuses n_test=None). Those draws use seed 0
  whatever ``base.seed``, so every seed is scored on the same images (paired); the training draws (Figure 4a's
  reals, Figure 4b's photographs) follow ``base.seed``, so the spread over seeds includes which photographs.
- A variant trained on fewer images gets proportionally more epochs, so that every variant takes about the same
  number of optimiser steps (whole batches) as full NTF (otherwise "fewer images" would also mean "less
  training"). Figure 4a's 400 reals are drawn at random from all training photographs.

Results: ``{figure: {variant: {"rows": {generator: metrics row}, "overrides": {...}, "stage1": last stage-1
epoch row, "stage2": last stage-2 epoch row, "n_stage1": n, "n_stage2": n}}}``, JSON-ready.
"""
from __future__ import annotations

import random
import re
import shutil
import time
from pathlib import Path

import numpy as np

from .config import Config
from .data import Sample, photo_of, scan, stratified_subset
from .metrics import detection_metrics
from .train import load_checkpoint, stage1, stage2, training_samples

FIGURE3 = {"full NTF": {}, "w/o L_ort": {"lam": 0.0}, "w/o L_het, L_ort": {"lam": 0.0, "het_weight": 0.0}}
# Not a figure of the paper: the terms of eq. 7 and what the verdict reads (stage 2 only, on full NTF's stage 1)
FIGURE_LD = {"w/o L_ext": {"ext_weight": 0.0}, "verdict on e": {"reading": "e"}}

def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def make_folder(dst, real: list[Sample], fake: list[Sample]) -> Path:
    """A fresh CNNDetection-layout folder ``dst/0_real``, ``dst/1_fake`` holding copies of the given images
    (file names must be unique per label: a second file of the same name is an error, never an overwrite)."""
    dst = Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    for name, samples in (("0_real", real), ("1_fake", fake)):
        (dst / name).mkdir(parents=True)
        for s in samples:
            target = dst / name / Path(s.path).name
            if target.exists():
                raise ValueError(f"{s.path}: another {name} image is also named {target.name}; make_folder "
                                 "needs unique file names (data with class sub-folders: one class at a time)")
            shutil.copy2(s.path, target)
    return dst


def test_subset(samples: list[Sample], n: int | None, exclude: set = frozenset(), seed: int = 0) -> list[Sample]:
    """``n`` images of each label of every group (generator / class) of ``samples``, drawn across source
    photographs from those not in ``exclude`` (paths trained on); all of them if ``n`` is None."""
    out = []
    for group in dict.fromkeys(s.group for s in samples):
        mine = [s for s in samples if s.group == group and s.path not in exclude]
        out += stratified_subset(mine, n, seed)
    return out


def _scaled_epochs(epochs: int, n_full: int, n: int, batch: int) -> int:
    """Epochs that give a run on ``n`` images about the optimiser steps of ``epochs`` on ``n_full`` images (the
    loader drops the last partial batch, so an epoch of n images is n // batch steps)."""
    if n < batch:
        raise ValueError(f"{n} training images are fewer than one batch of {batch}: lower batch_size")
    return max(epochs, round(epochs * (n_full // batch) / (n // batch)))


def _train(cfg: Config, stage1_train: Path | None, stage2_train: Path, stage1_checkpoint: str = "") -> Path:
    """Stage 1 on ``stage1_train`` (unless a stage-1 checkpoint is given), then stage 2 on ``stage2_train``."""
    if stage1_checkpoint:
        cfg = cfg.replace(stage1_checkpoint=stage1_checkpoint)
    else:
        stage1(cfg.replace(train_dir=str(stage1_train)))
    return stage2(cfg.replace(train_dir=str(stage2_train)))


def _record(ckpt2: Path, tests: dict, overrides: dict, scores: dict | None = None) -> dict:
    from .baselines import NTF
    ck2 = load_checkpoint(ckpt2, "stage2")
    ck1 = load_checkpoint(ck2["stage1"]["path"], "stage1")
    det = NTF(ckpt2)
    s = {g: det.score(x) for g, (x, _) in tests.items()}
    if scores is not None:
        scores.update(s)
    return {"rows": {g: detection_metrics(y, s[g]) for g, (_, y) in tests.items()},
            "overrides": overrides, "stage1": ck1["history"][-1] if ck1["history"] else {},
            "stage2": ck2["history"][-1], "n_stage1": ck1["data"]["n"], "n_stage2": ck2["data"]["n"]}


def ablations(base: Config, test_dirs: dict, dm_dir=None, figures=("3", "4a", "4b", "L_d"), n_fakes: int = 400,
              n_test: int | None = 400, few_photos: int = 10, full_stage1: str = "", log=print,
              scores: dict | None = None, picked: dict | None = None) -> dict:
    """Train and score every variant of ``figures``; runs go to ``base.out/<figure>/<variant>`` and resume there.

    base: the config every variant starts from (``base.train_dir``: the training reals and GAN fakes).
    test_dirs: ``{generator: folder}`` scored for every variant (``n_test`` of each label, ``test_subset``).
    dm_dir: the diffusion folder ``n_fakes`` of whose fakes (drawn with seed 0) train Figure 4a's DM variant.
    full_stage1: a stage-1 checkpoint to use as full NTF's (e.g. the shipped one) instead of training it.
    scores: a dict to receive every image's score, ``{figure: {variant: {generator: array}}}``.
    picked: a dict to receive the scored samples, ``{generator: [Sample, ...]}`` in the order of those scores.
    """
    from .experiments import load_images, pick
    out = Path(base.out)
    train = training_samples(base)
    reals = [s for s in train if s.label == 0]
    gan_fakes = [s for s in train if s.label == 1]
    dm_train: list[Sample] = []
    if "4a" in figures:  # checked before any training
        if dm_dir is None:
            raise ValueError("Figure 4a needs dm_dir, a folder of diffusion fakes to train on")
        dm = [s for s in scan(dm_dir, layout="cnndetection") if s.label == 1]
        if not n_test:
            raise ValueError("Figure 4a needs n_test: n_fakes of the DM folder's fakes are trained on, so only "
                             "a subset of the others may be scored")
        if n_fakes + n_test > len(dm):
            raise ValueError(f"{dm_dir}: {len(dm)} fakes cannot give {n_fakes} to train on and {n_test} to test")
        if n_fakes > min(len(reals), len(gan_fakes)):
            raise ValueError(f"n_fakes={n_fakes}: {base.train_dir} has {len(reals)} reals and {len(gan_fakes)} "
                             "fakes")
        dm_train = sorted(random.Random(0).sample(dm, n_fakes), key=lambda s: s.path)
    exclude = {s.path for s in dm_train}
    chosen = {g: pick(test_subset(scan(d, layout="cnndetection"), n_test, exclude)) for g, d in test_dirs.items()}
    if picked is not None:
        picked.update(chosen)
    tests = {g: load_images(ps) for g, ps in chosen.items()}
    results: dict = {}
    full_dir = out / "3" / _slug("full NTF")
    full_cfg = base.replace(out=str(full_dir))

    def run(fig, name, cfg, stage1_train, stage2_train, overrides, stage1_checkpoint=""):
        t0 = time.perf_counter()
        ckpt2 = _train(cfg, stage1_train, stage2_train, stage1_checkpoint)
        here = None if scores is None else scores.setdefault(fig, {}).setdefault(name, {})
        results.setdefault(fig, {})[name] = rec = _record(ckpt2, tests, overrides, here)
        rec["seconds"] = time.perf_counter() - t0
        ap = np.mean([r["AP"] for r in rec["rows"].values()])
        log(f"Figure {fig} / {name}: mean AP {ap:.3f} ({rec['seconds']:.0f} s)")

    if {"3", "4a", "L_d"} & set(figures):  # full NTF: Figure 3's and L_d's reference, Figure 4a's stage 1
        run("3", "full NTF", full_cfg, base.train_dir, base.train_dir, {}, full_stage1)
    if "3" in figures:
        for name, overrides in list(FIGURE3.items())[1:]:
            cfg = base.replace(out=str(out / "3" / _slug(name)), **overrides)
            run("3", name, cfg, base.train_dir, base.train_dir, overrides)
    stage1_ckpt = full_stage1 or str(full_dir / "stage1.pt")
    if "L_d" in figures:
        results["L_d"] = {"full NTF": results["3"]["full NTF"]}
        if scores is not None:
            scores["L_d"] = {"full NTF": scores["3"]["full NTF"]}
        for name, overrides in FIGURE_LD.items():
            run("L_d", name, base.replace(out=str(out / "L_d" / _slug(name)), **overrides), None, base.train_dir,
                overrides, stage1_ckpt)
    if "4a" in figures:
        epochs2 = _scaled_epochs(base.epochs2, len(train), 2 * n_fakes, base.batch_size)
        # reals drawn across every training photograph (the first n by name would be a handful of photographs)
        some_reals = stratified_subset(reals, n_fakes, base.seed)
        gan_train = sorted(random.Random(base.seed).sample(gan_fakes, n_fakes), key=lambda s: s.path)
        for name, fakes in (("GAN fakes", gan_train), ("DM fakes", dm_train)):
            folder = make_folder(out / "4a" / "data" / _slug(name), some_reals, fakes)
            overrides = {"epochs2": epochs2}
            run("4a", name, base.replace(out=str(out / "4a" / _slug(name)), **overrides), None, folder, overrides,
                stage1_ckpt)
    if "4b" in figures:
        photos = sorted({photo_of(s.path) for s in reals})
        if few_photos >= len(photos):
            raise ValueError(f"few_photos={few_photos}: the training set has only {len(photos)} source photos")
        few = set(random.Random(base.seed).sample(photos, few_photos))
        few_reals = [s for s in reals if photo_of(s.path) in few]
        spread = sorted(random.Random(base.seed).sample(reals, len(few_reals)), key=lambda s: s.path)
        overrides = {"epochs1": _scaled_epochs(base.epochs1, len(reals), len(few_reals), base.batch_size)}
        for name, chosen in ((f"{few_photos} photos", few_reals), (f"all {len(photos)} photos", spread)):
            folder = make_folder(out / "4b" / "data" / _slug(name), chosen, [])
            run("4b", name, base.replace(out=str(out / "4b" / _slug(name)), **overrides), folder, base.train_dir,
                {**overrides, "photos": sorted(few) if chosen is few_reals else "all"})
    return results


def family_summary(figure: dict, families: dict, column: str = "AP") -> dict[str, dict[str, float]]:
    """``{family average or "average": {variant: value}}`` of one figure's results: the grouped bars' data."""
    from .metrics import family_rows
    out: dict[str, dict[str, float]] = {}
    for variant, rec in figure.items():
        for name, row in family_rows(rec["rows"], families).items():
            if name.endswith("average"):
                out.setdefault(name.removesuffix(" average") or name, {})[variant] = row[column]
    return out
