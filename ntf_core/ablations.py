"""The paper's ablations, Figures 3 and 4, on any CNNDetection-layout data (ntf-mini in the course).

    results = ablations(make_config("mini", out="runs/ablations"), mini_test_dirs(), dm_dir=...)

Each figure is one function below, and every variant of every figure goes through one runner,
``run_variant``: train stage 1 then stage 2 (``stage1_then_stage2``), score the test images, record.

- Figure 3, the terms of L_tra (eq. 4), ``figure3_loss_terms``: full NTF (``full_ntf``); without
  L_ort (lambda = 0); without L_het and L_ort (het_weight = lambda = 0, L_hom alone). Stage 1 is
  trained for each variant, then stage 2 the same way on each.
- Figure 4a, the fakes of stage 2, ``figure4a_stage2_fakes``: from the training GAN or from a
  diffusion model (stage 1 shared: full NTF's).
- Figure 4b, the real images of stage 1, ``figure4b_stage1_reals``: those of a few source photos, or
  as many images spread over all photos (the course's stand-in for the paper's number of LSUN
  categories); stage 2 as in full NTF.
- "L_d" (the course's, not the paper's), ``figure_ld_stage2_terms``: stage 2 without L_ext
  (gamma * L_ce alone), and with the verdict read from e (``reading="e"``), both on full NTF's
  stage 1: does what L_ext trains reach the scores?

Choices, written down because the paper does not say them:

- The DM fakes of Figure 4a are ``n_fakes`` fakes drawn at random from a diffusion model's own
  training split (ntf-mini's ``gen_train/diffusion/ddpm``: the same model as the ``ddpm`` test
  folder, other samples), and every detector of every figure is scored on ``n_test`` images of each
  label of each test folder drawn across source photographs (``data.stratified_subset``). Given a
  folder of test fakes instead, the fakes trained on are left out of scoring. Those draws use seed 0
  whatever ``base.seed``, so every seed is scored on the same images (paired); the training draws
  (Figure 4a's reals, Figure 4b's photographs) follow ``base.seed``, so the spread over seeds
  includes which photographs.
- A variant trained on fewer images gets proportionally more epochs, so that every variant takes
  about the same number of optimiser steps (whole batches) as full NTF (otherwise "fewer images"
  would also mean "less training"). Figure 4a's reals are drawn at random from all training
  photographs.

Results: ``{figure: {variant: {"rows": {generator: metrics row}, "overrides": {...}, "stage1":
last stage-1 epoch row, "stage2": last stage-2 epoch row, "n_stage1": n, "n_stage2": n, "seconds":
s}}}``, JSON-ready.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .baselines import NTF
from .checkpoints import load_checkpoint
from .config import Config
from .data import Sample, scan, stratified_subset, training_samples
from .experiments import load_images, pick
from .metrics import detection_metrics, family_rows
from .mini import make_folder, photo_of
from .train import stage1, stage2

FIGURE3 = {
    "full NTF": {},
    "w/o L_ort": {"lam": 0.0},
    "w/o L_het, L_ort": {"lam": 0.0, "het_weight": 0.0},
}
# Not a figure of the paper: the terms of eq. 7 and what the verdict reads (stage 2 only, on full
# NTF's stage 1)
FIGURE_LD = {"w/o L_ext": {"ext_weight": 0.0}, "verdict on e": {"reading": "e"}}


def _slug(name: str) -> str:
    """A variant's name as a folder name: ``"w/o L_ort"`` -> ``"w_o_L_ort"``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def test_subset(
    samples: list[Sample], n: int | None, exclude: set = frozenset(), seed: int = 0
) -> list[Sample]:
    """``n`` images of each label of every group (generator / class) of ``samples``, drawn across
    source photographs from those not in ``exclude`` (paths trained on); all of them if ``n`` is
    None."""
    out = []
    for group in dict.fromkeys(s.group for s in samples):
        mine = [s for s in samples if s.group == group and s.path not in exclude]
        out += stratified_subset(mine, n, seed)
    return out


def _scaled_epochs(epochs: int, n_full: int, n: int, batch: int) -> int:
    """Epochs that give a run on ``n`` images about the optimiser steps of ``epochs`` on ``n_full``
    images (the loader drops the last partial batch, so an epoch of n images is n // batch
    steps)."""
    if n < batch:
        raise ValueError(
            f"{n} training images are fewer than one batch of {batch}: lower batch_size"
        )
    return max(epochs, round(epochs * (n_full // batch) / (n // batch)))


def stage1_then_stage2(
    cfg: Config,
    stage1_train: Path | str | None,
    stage2_train: Path | str,
    stage1_checkpoint: str = "",
) -> Path:
    """Stage 1 on ``stage1_train`` (unless a stage-1 checkpoint is given), then stage 2 on
    ``stage2_train``; both resume in ``cfg.out``. Returns the stage-2 checkpoint."""
    if stage1_checkpoint:
        cfg = cfg.replace(stage1_checkpoint=stage1_checkpoint)
    else:
        stage1(cfg.replace(train_dir=str(stage1_train)))
    return stage2(cfg.replace(train_dir=str(stage2_train)))


@dataclass
class AblationRun:
    """What every variant of every figure shares: the config they start from, the folder their runs
    go to, the training images of ``base.train_dir`` split by label, the test images they are scored
    on, and where their results, scores and log lines go."""

    base: Config
    out: Path
    reals: list[Sample]
    gan_fakes: list[Sample]
    tests: dict  # {generator: (images, labels)}
    results: dict
    scores: dict | None
    log: Callable[[str], object]


def _record(ckpt2: Path, tests: dict, overrides: dict, scores: dict | None = None) -> dict:
    """One variant's entry of the results: its metrics on every test folder, the last epoch row of
    each stage and their training-set sizes. ``scores`` receives each test folder's scores."""
    ck2 = load_checkpoint(ckpt2, "stage2")
    ck1 = load_checkpoint(ck2["stage1"]["path"], "stage1")
    detector = NTF(ckpt2)
    s = {g: detector.score(x) for g, (x, _) in tests.items()}
    if scores is not None:
        scores.update(s)
    return {
        "rows": {g: detection_metrics(y, s[g]) for g, (_, y) in tests.items()},
        "overrides": overrides,
        "stage1": ck1["history"][-1] if ck1["history"] else {},
        "stage2": ck2["history"][-1],
        "n_stage1": ck1["data"]["n"],
        "n_stage2": ck2["data"]["n"],
    }


def run_variant(
    run: AblationRun,
    figure: str,
    name: str,
    overrides: dict,
    *,
    stage2_train: Path | str,
    stage1_train: Path | str | None = None,
    stage1_checkpoint: str = "",
    noted: dict | None = None,
) -> None:
    """Train one variant in ``run.out/<figure>/<variant>`` (``base`` with ``overrides``: stage 1 on
    ``stage1_train`` or from ``stage1_checkpoint``, then stage 2 on ``stage2_train``), score it on
    the test images and store its entry in ``run.results[figure][name]`` (and its scores in
    ``run.scores``). ``noted``: more to record under the entry's "overrides" than the config
    takes."""
    t0 = time.perf_counter()
    cfg = run.base.replace(out=str(run.out / figure / _slug(name)), **overrides)
    ckpt2 = stage1_then_stage2(cfg, stage1_train, stage2_train, stage1_checkpoint)
    scores = None if run.scores is None else run.scores.setdefault(figure, {}).setdefault(name, {})
    entry = _record(ckpt2, run.tests, {**overrides, **(noted or {})}, scores)
    run.results.setdefault(figure, {})[name] = entry
    entry["seconds"] = time.perf_counter() - t0
    mean_ap = np.mean([r["AP"] for r in entry["rows"].values()])
    run.log(f"Figure {figure} / {name}: mean AP {mean_ap:.3f} ({entry['seconds']:.0f} s)")


def full_ntf(run: AblationRun, full_stage1: str = "") -> None:
    """Full NTF, every term of the loss, both stages on ``base.train_dir`` (stage 1 from
    ``full_stage1`` when given): Figure 3's first variant, the reference of L_d, and the stage 1 of
    Figure 4a and L_d. Recorded under Figure 3."""
    train_dir = run.base.train_dir
    run_variant(
        run,
        "3",
        "full NTF",
        {},
        stage1_train=train_dir,
        stage2_train=train_dir,
        stage1_checkpoint=full_stage1,
    )


def figure3_loss_terms(run: AblationRun) -> None:
    """Figure 3, the terms of L_tra: each variant of ``FIGURE3`` after full NTF (``full_ntf``),
    stage 1 trained with its terms, then stage 2 on it."""
    train_dir = run.base.train_dir
    for name, overrides in list(FIGURE3.items())[1:]:
        run_variant(run, "3", name, overrides, stage1_train=train_dir, stage2_train=train_dir)


def figure_ld_stage2_terms(run: AblationRun, stage1_checkpoint: str) -> None:
    """The course's "L_d" figure: full NTF's entry (shared with Figure 3), then each variant of
    ``FIGURE_LD``, stage 2 only, on full NTF's stage 1 (``stage1_checkpoint``)."""
    run.results["L_d"] = {"full NTF": run.results["3"]["full NTF"]}
    if run.scores is not None:
        run.scores["L_d"] = {"full NTF": run.scores["3"]["full NTF"]}
    for name, overrides in FIGURE_LD.items():
        run_variant(
            run,
            "L_d",
            name,
            overrides,
            stage2_train=run.base.train_dir,
            stage1_checkpoint=stage1_checkpoint,
        )


def figure4a_stage2_fakes(
    run: AblationRun, stage1_checkpoint: str, dm_fakes: list[Sample], n_fakes: int
) -> None:
    """Figure 4a, the fakes of stage 2: stage 2 on ``n_fakes`` reals and ``n_fakes`` fakes, those of
    the training GAN (drawn at random) or ``dm_fakes``, on full NTF's stage 1
    (``stage1_checkpoint``); epochs scaled to full NTF's stage-2 steps."""
    base = run.base
    n_train = len(run.reals) + len(run.gan_fakes)
    epochs2 = _scaled_epochs(base.epochs2, n_train, 2 * n_fakes, base.batch_size)
    # reals drawn across every training photograph (the first n by name would be a handful of them)
    some_reals = stratified_subset(run.reals, n_fakes, base.seed)
    gan_train = sorted(
        random.Random(base.seed).sample(run.gan_fakes, n_fakes), key=lambda s: s.path
    )
    for name, fakes in (("GAN fakes", gan_train), ("DM fakes", dm_fakes)):
        folder = make_folder(run.out / "4a" / "data" / _slug(name), some_reals, fakes)
        run_variant(
            run,
            "4a",
            name,
            {"epochs2": epochs2},
            stage2_train=folder,
            stage1_checkpoint=stage1_checkpoint,
        )


def figure4b_stage1_reals(run: AblationRun, few_photos: int) -> None:
    """Figure 4b, the reals of stage 1: stage 1 on the real crops of ``few_photos`` training
    photographs (drawn at random), or on as many crops drawn from all of them; stage 2 on
    ``base.train_dir``; stage-1 epochs scaled to full NTF's stage-1 steps."""
    base = run.base
    reals = run.reals
    photos = sorted({photo_of(s.path) for s in reals})
    if few_photos >= len(photos):
        raise ValueError(
            f"few_photos={few_photos}: the training set has only {len(photos)} source photos"
        )
    few = set(random.Random(base.seed).sample(photos, few_photos))
    few_reals = [s for s in reals if photo_of(s.path) in few]
    spread = sorted(random.Random(base.seed).sample(reals, len(few_reals)), key=lambda s: s.path)
    overrides = {
        "epochs1": _scaled_epochs(base.epochs1, len(reals), len(few_reals), base.batch_size)
    }
    for name, chosen in (
        (f"{few_photos} photos", few_reals),
        (f"all {len(photos)} photos", spread),
    ):
        folder = make_folder(run.out / "4b" / "data" / _slug(name), chosen, [])
        run_variant(
            run,
            "4b",
            name,
            overrides,
            stage1_train=folder,
            stage2_train=base.train_dir,
            noted={"photos": sorted(few) if chosen is few_reals else "all"},
        )


def _dm_training_fakes(
    dm_dir, n_fakes: int, n_test: int | None, train_dir, reals: list, gan_fakes: list, test_dirs
) -> list[Sample]:
    """Figure 4a's ``n_fakes`` diffusion fakes of ``dm_dir`` (drawn with seed 0), after checking
    that the folder and the training set hold enough images. ``dm_dir`` is best a training split
    (ntf-mini's ``gen_train/diffusion/ddpm``); a folder of test fakes still works, its trained-on
    fakes then left out of scoring (``n_fakes + n_test`` must fit in it)."""
    if dm_dir is None:
        raise ValueError("Figure 4a needs dm_dir, a folder of diffusion fakes to train on")
    dm = [s for s in scan(dm_dir, layout="cnndetection") if s.label == 1]
    tested = {
        Path(s.path).resolve() for d in test_dirs.values() for s in scan(d, layout="cnndetection")
    }
    carved = any(Path(s.path).resolve() in tested for s in dm)
    if carved and not n_test:
        raise ValueError(
            "Figure 4a needs n_test: n_fakes of the DM folder's fakes are trained on, so only "
            "a subset of the others may be scored"
        )
    if n_fakes + (n_test if carved else 0) > len(dm):
        raise ValueError(
            f"{dm_dir}: {len(dm)} fakes cannot give {n_fakes} to train on"
            + (f" and {n_test} to test" if carved else "")
        )
    if n_fakes > min(len(reals), len(gan_fakes)):
        raise ValueError(
            f"n_fakes={n_fakes}: {train_dir} has {len(reals)} reals and {len(gan_fakes)} fakes"
        )
    return sorted(random.Random(0).sample(dm, n_fakes), key=lambda s: s.path)


def ablations(
    base: Config,
    test_dirs: dict,
    dm_dir=None,
    figures=("3", "4a", "4b", "L_d"),
    n_fakes: int = 400,
    n_test: int | None = 400,
    few_photos: int = 10,
    full_stage1: str = "",
    log=print,
    scores: dict | None = None,
    picked: dict | None = None,
) -> dict:
    """Train and score every variant of ``figures``; runs go to ``base.out/<figure>/<variant>`` and
    resume there.

    base: the config every variant starts from (``base.train_dir``: the training reals and GAN
        fakes).
    test_dirs: ``{generator: folder}`` scored for every variant (``n_test`` of each label,
        ``test_subset``).
    dm_dir: the diffusion folder ``n_fakes`` of whose fakes (drawn with seed 0) train Figure 4a's
        DM variant (ntf-mini: ``gen_train/diffusion/ddpm``, ddpm's own training split).
    full_stage1: a stage-1 checkpoint to use as full NTF's (e.g. the shipped one) instead of
        training it.
    scores: a dict to receive every image's score, ``{figure: {variant: {generator: array}}}``.
    picked: a dict to receive the scored samples, ``{generator: [Sample, ...]}`` in the order of
        those scores.

    Full NTF is trained (under Figure 3) whenever Figure 3, 4a or L_d is asked for; then Figure 3,
    L_d, 4a and 4b, in that order.
    """
    train = training_samples(base)
    reals = [s for s in train if s.label == 0]
    gan_fakes = [s for s in train if s.label == 1]
    # Figure 4a's DM fakes are checked and drawn before any training, and never scored
    dm_fakes: list[Sample] = []
    if "4a" in figures:
        dm_fakes = _dm_training_fakes(
            dm_dir, n_fakes, n_test, base.train_dir, reals, gan_fakes, test_dirs
        )
    exclude = {s.path for s in dm_fakes}
    chosen = {
        g: pick(test_subset(scan(d, layout="cnndetection"), n_test, exclude))
        for g, d in test_dirs.items()
    }
    if picked is not None:
        picked.update(chosen)
    tests = {g: load_images(samples) for g, samples in chosen.items()}
    run = AblationRun(base, Path(base.out), reals, gan_fakes, tests, {}, scores, log)

    if {"3", "4a", "L_d"} & set(figures):
        full_ntf(run, full_stage1)
    if "3" in figures:
        figure3_loss_terms(run)
    full_ntf_stage1 = full_stage1 or str(run.out / "3" / _slug("full NTF") / "stage1.pt")
    if "L_d" in figures:
        figure_ld_stage2_terms(run, full_ntf_stage1)
    if "4a" in figures:
        figure4a_stage2_fakes(run, full_ntf_stage1, dm_fakes, n_fakes)
    if "4b" in figures:
        figure4b_stage1_reals(run, few_photos)
    return run.results


def family_summary(figure: dict, families: dict, column: str = "AP") -> dict[str, dict[str, float]]:
    """``{family average or "average": {variant: value}}`` of one figure's results: the grouped
    bars' data."""
    out: dict[str, dict[str, float]] = {}
    for variant, entry in figure.items():
        for name, row in family_rows(entry["rows"], families).items():
            if name.endswith("average"):
                out.setdefault(name.removesuffix(" average") or name, {})[variant] = row[column]
    return out
