"""The forensics protocol lab (notebook 09): how to judge a detector, as experiments one can point
at any detector.

- ``family_matrix``: every method trained on one family's fakes at a time (GAN, diffusion,
  multi-step: each generator's own training split, ``gen_train/``) and scored on every family; the
  paper's Figure 4a generalised to a 3 x 3 matrix, with photo-bootstrap intervals.
- ``resampling_trap``: reals of many sizes resized to the input, fakes born at it: a detector learns
  the resampling; its control resizes both classes the same way.
- ``one_class_perturbation``: JPEG on the test fakes only moves AP and ACC in ways JPEG on both
  classes does not.
- ``threshold_sources``: a threshold tuned on the test set promises its target FPR exactly; chosen
  on held-out reals, or tuned on other test photographs, it realises what a user will see.
- ``content_floor``: the low-frequency probe (per-channel mean and std, a 4 x 4 thumbnail) as a
  detector: the floor a real detector must clear, with paired differences.
- ``method_flip_rates``: how often re-encoding flips each method's verdict at its calibrated
  threshold (notebook 06).

Choices, written down because no paper fixes them:

- The family matrix's training set per family: all n_split_train fakes of each of its three
  generators (1800 at full size) against as many real training crops drawn across the training
  photographs (seeded); stage 2 stands on one stage 1 (the shipped one: stage 1 sees reals only, so
  it does not depend on the family) and takes as many optimiser steps as the shipped stage 2 (epochs
  scaled, as Figure 4a's). A method's seeds vary its own training only.
- A "family" is not a set of independent models: ``ddpm``, ``ddim`` and ``pndm`` are one latent
  diffusion model read by three samplers, and the multi-step chains reuse the GANs and that model
  (``mini.LDM_FOLDERS``). The diagonal of the matrix is in-distribution (same generators as
  training, other samples); the off-diagonal cells are the generalisation.
- Every threshold is chosen at a 5 % target FPR with ``calibration.threshold_at_fpr``.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import torch

from .ablations import _scaled_epochs, stage1_then_stage2
from .bootstrap import photo_bootstrap
from .calibration import threshold_at_fpr
from .config import Config
from .data import Sample, load_tensor, scan, stratified_subset
from .experiments import METHODS, generalization, labels_and_clusters, pick
from .metrics import detection_metrics
from .mini import FAMILIES, cluster_of, default_mini_root, make_folder
from .pitfalls import _intervals, _jpeg_where, _test_set, fit_and_score
from .protocol import REENCODINGS, reencode_tensor

# -- the family matrix ---------------------------------------------------------------------------


def family_folders(
    family: str,
    work,
    seed: int = 0,
    root=None,
    n_val_reals: int = 300,
    per_generator: int | None = None,
) -> dict:
    """CNNDetection folders to train (``train``) and validate (``val``) a detector on one family's
    own splits: every ``gen_train/<family>/*`` fake (or ``per_generator`` of each, at random)
    against as many real training crops drawn across photographs; ``gen_val`` fakes against
    ``n_val_reals`` validation crops (at most as many as the fakes)."""
    root = Path(root) if root else default_mini_root()
    out = {}
    for split, reals_dir, n_reals in (
        ("train", root / "train", None),
        ("val", root / "val", n_val_reals),
    ):
        fakes = []
        for g in FAMILIES[family]:
            folder = root / f"gen_{split}" / family / g
            mine = scan(folder, layout="cnndetection") if folder.is_dir() else []
            if per_generator and len(mine) > per_generator:
                mine = sorted(random.Random(seed).sample(mine, per_generator), key=lambda s: s.path)
            fakes += mine
        if not fakes:
            raise FileNotFoundError(
                f"{root}/gen_{split}/{family}: no fakes (a build from before the per-generator "
                "splits; rebuild ntf-mini with `python -m ntf_core.bench build`)"
            )
        reals = [s for s in scan(reals_dir, layout="cnndetection") if s.label == 0]
        reals = stratified_subset(reals, min(n_reals or len(fakes), len(fakes)), seed)
        out[split] = make_folder(Path(work) / family / split, reals, fakes)
    return out


def family_matrix(
    base: Config,
    stage1_checkpoint,
    work,
    seeds=(0, 1, 2),
    methods=METHODS,
    train_families=tuple(FAMILIES),
    n_test: int | None = None,
    wang_epochs: int = 5,
    n_boot: int = 1000,
    input_size: int | None = None,
    per_generator: int | None = None,
    log=print,
) -> dict:
    """Every method of ``methods`` trained on each family of ``train_families`` in turn (NTF: stage
    2 of ``base`` on ``stage1_checkpoint``, one per seed) and scored on every test folder
    (``n_test`` of each label, across photographs); ``per_generator``: fewer training fakes of
    each generator (quick runs). Returns ``{"rows": {train family: generalization
    results}, "intervals": {train family: photo_bootstrap result with the family averages},
    "n_train": {family: images}}``."""
    work = Path(work)
    test_dirs = {g: default_mini_root() / "test" / f / g for f, gs in FAMILIES.items() for g in gs}
    labels, clusters = labels_and_clusters(test_dirs, n_test)
    full_n = len(scan(base.train_dir, layout="cnndetection"))
    if base.max_images:
        full_n = min(full_n, 2 * base.max_images)
    out = {"rows": {}, "intervals": {}, "n_train": {}}
    for fam in train_families:
        folders = family_folders(fam, work / "data", seed=0, per_generator=per_generator)
        n_train = len(scan(folders["train"], layout="cnndetection"))
        out["n_train"][fam] = n_train
        # as many optimiser steps as stage 2 of ``base`` on its own training set
        epochs2 = _scaled_epochs(base.epochs2, full_n, min(n_train, full_n), base.batch_size)
        ckpts = {}
        if "NTF" in methods:
            for seed in seeds:
                cfg = base.replace(
                    seed=seed,
                    epochs2=epochs2,
                    val_dir=str(folders["val"]),
                    out=str(work / "runs" / fam / f"seed{seed}"),
                )
                ckpts[seed] = stage1_then_stage2(
                    cfg, None, folders["train"], str(stage1_checkpoint)
                )
        scores: dict = {}
        out["rows"][fam] = generalization(
            folders["train"],
            test_dirs,
            ckpts,
            seeds=tuple(seeds),
            methods=methods,
            wang_epochs=wang_epochs,
            n_test=n_test,
            log=lambda m, fam=fam: log(f"[trained on {fam}] {m}"),
            scores=scores,
            input_size=input_size,
        )
        out["intervals"][fam] = photo_bootstrap(
            labels,
            clusters,
            {m: list(scores[m].values()) for m in methods},
            groups=dict(FAMILIES),
            n_boot=n_boot,
        )
    return out


def matrix_cells(matrix: dict, method: str) -> dict[str, dict[str, dict]]:
    """``{train family: {test family: bootstrap cell}}`` of one method (the family averages)."""
    return {
        train: {test: boot["methods"][method][f"{test} average"] for test in FAMILIES}
        for train, boot in matrix["intervals"].items()
    }


# -- trap 1: resampling --------------------------------------------------------------------------


def resample_from_sizes(x: torch.Tensor, sizes=(40, 96), seed: int = 0) -> torch.Tensor:
    """Float images [N, 3, S, S] as if they had come in at sizes drawn uniformly from ``sizes``
    (inclusive) and been resized to the S px input: each is resized to its drawn size and back
    (bilinear, antialiased), then quantised to 8 bits."""
    from torchvision.transforms.v2 import functional as TF

    from .augment import to_uint8

    g = torch.Generator().manual_seed(seed)
    drawn = torch.randint(sizes[0], sizes[1] + 1, (len(x),), generator=g).tolist()
    s = x.shape[-1]
    out = [
        TF.resize(TF.resize(img, [n, n], antialias=True), [s, s], antialias=True)
        for img, n in zip(x, drawn)
    ]
    return to_uint8(torch.stack(out).clamp(0, 1)).float() / 255


def resampling_trap(
    train_dir,
    test_dirs: dict,
    method: str = "spectrum",
    n_train: int | None = 1000,
    n_test: int | None = 400,
    sizes=(40, 96),
    n_boot: int = 1000,
) -> dict:
    """Trap 1. Two detectors of ``method`` trained on the same images: *trap* sees the reals
    resampled from many sizes (``resample_from_sizes``) and the fakes as born; *control* sees both
    classes resampled the same way. Both score each folder three ways: reals resampled only (as the
    trap was trained), both resampled, neither. Returns ``{detector: {"<folder>: <test>": metrics
    row with "AP interval"}}``."""
    x, y = _training_images(train_dir, n_train)
    tests = {}
    for g, d in test_dirs.items():
        xt, yt, ct = _test_set(d, n_test)
        rs = resample_from_sizes(xt, sizes, seed=1)
        tests[f"{g}: reals resampled"] = (torch.where(_is(yt, 0), rs, xt), yt, ct)
        tests[f"{g}: both resampled"] = (rs, yt, ct)
        tests[f"{g}: neither"] = (xt, yt, ct)
    rx = resample_from_sizes(x, sizes, seed=0)
    fits = {
        "trap (reals resampled)": torch.where(_is(y, 0), rx, x),
        "control (both resampled)": rx,
    }
    return fit_and_score(method, fits, y, tests, n_boot)


def _is(y, label) -> torch.Tensor:
    """A [N, 1, 1, 1] mask of the images with ``label``, to pick between two image tensors."""
    return torch.as_tensor(np.asarray(y) == label).view(-1, 1, 1, 1)


def _training_images(train_dir, n_train):
    picked = pick(scan(train_dir, layout="cnndetection"), n_train)
    return load_tensor([s.path for s in picked]), np.array([s.label for s in picked])


# -- trap 2: perturbing one class only -----------------------------------------------------------


def one_class_perturbation(
    detector, test_dirs: dict, quality: int = 75, n_test: int | None = 400, n_boot: int = 1000
) -> dict:
    """Trap 2. One fixed ``detector`` (``score(images)``) scores each folder clean, with the fakes
    alone saved as JPEG at ``quality`` (as some robustness tables do), and with every image saved
    so. Returns ``{folder: {condition: {"AP", "ACC", "AP interval", "ACC interval"}}}``."""
    out = {}
    for g, d in test_dirs.items():
        x, y, c = _test_set(d, n_test)
        conditions = {
            "clean": x,
            f"JPEG {quality} on fakes only": _jpeg_where(x, y == 1, quality),
            f"JPEG {quality} on both": _jpeg_where(x, np.ones_like(y, bool), quality),
        }
        scores = {k: detector.score(v) for k, v in conditions.items()}
        ap = _intervals(y, c, scores, "AP", n_boot)
        acc = _intervals(y, c, scores, "ACC", n_boot)
        out[g] = {
            k: {
                "AP": detection_metrics(y, s)["AP"],
                "ACC": detection_metrics(y, s)["ACC"],
                "AP interval": ap[k],
                "ACC interval": acc[k],
            }
            for k, s in scores.items()
        }
    return out


# -- trap 3: where the threshold comes from ------------------------------------------------------


def threshold_sources(
    detector, val_reals_dir, test_dirs: dict, target_fpr: float = 0.05, n_test: int | None = None
) -> dict:
    """Trap 3. Thresholds at ``target_fpr`` for one fixed ``detector``, from three sources, each
    judged by the FPR it realises on the real test crops and its accuracy over every test folder:

    - "test reals (tuned on the test set)": its promise holds by construction;
    - "held-out reals (val photographs)": the protocol (``ntf calibrate``);
    - "other test photographs": tuned on half of the test photographs, judged on the other half,
      over every such split (the spread a new set of photographs brings).

    Returns ``{source: {"threshold", "FPR", "FPR range" (over splits, else None), "ACC"}}``."""
    reals = [s for s in scan(val_reals_dir, layout="cnndetection") if s.label == 0]
    val_scores = detector.score(load_tensor([s.path for s in reals]))
    tests = {g: _test_set(d, n_test) for g, d in test_dirs.items()}
    scores = {g: detector.score(x) for g, (x, _, _) in tests.items()}
    first = next(iter(tests))
    real_scores = scores[first][tests[first][1] == 0]  # the same real crops sit in every folder
    photos = np.array(tests[first][2])[tests[first][1] == 0]

    def judged(thr, keep_photos=None) -> tuple[float, float]:
        """(FPR on the test reals of ``keep_photos`` or all, ACC over every folder)"""
        fpr_mask = np.ones(len(real_scores), bool)
        if keep_photos is not None:
            fpr_mask = np.isin(photos, list(keep_photos))
        fpr = float((real_scores[fpr_mask] > thr).mean())
        accs = []
        for g, (_, y, c) in tests.items():
            keep = np.ones(len(y), bool)
            if keep_photos is not None:
                keep = (y == 1) | np.isin(np.array(c), list(keep_photos))
            accs.append(float(((scores[g][keep] > thr) == (y[keep] == 1)).mean()))
        return fpr, float(np.mean(accs))

    out = {}
    for name, thr in (
        ("test reals (tuned on the test set)", threshold_at_fpr(real_scores, target_fpr)),
        ("held-out reals (val photographs)", threshold_at_fpr(val_scores, target_fpr)),
    ):
        fpr, acc = judged(thr)
        out[name] = {"threshold": thr, "FPR": fpr, "FPR range": None, "ACC": acc}
    ids = sorted(set(photos.tolist()))
    fprs, accs = [], []
    for half in itertools.combinations(ids, len(ids) // 2):
        rest = [p for p in ids if p not in half]
        thr = threshold_at_fpr(real_scores[np.isin(photos, half)], target_fpr)
        fpr, acc = judged(thr, rest)
        fprs.append(fpr)
        accs.append(acc)
    out["other test photographs (half tunes, half judges)"] = {
        "threshold": float("nan"),
        "FPR": float(np.mean(fprs)),
        "FPR range": (float(np.min(fprs)), float(np.max(fprs))),
        "ACC": float(np.mean(accs)),
        "splits": len(fprs),
    }
    return out


# -- trap 4: the content floor -------------------------------------------------------------------


def content_floor(
    train_dir,
    test_dirs: dict,
    ntf_checkpoint,
    n_train: int | None = None,
    n_test: int | None = None,
    n_boot: int = 1000,
) -> dict:
    """Trap 4. The low-frequency probe (``baselines.LowFrequencyProbe``: colour and coarse content
    alone) trained like any detector on ``train_dir``, beside NTF, on every folder of
    ``test_dirs``: a ``photo_bootstrap`` result with the paired differences NTF - probe."""
    scores: dict = {}
    generalization(
        train_dir,
        test_dirs,
        ntf_checkpoint,
        methods=("NTF", "low-freq probe"),
        n_train=n_train,
        n_test=n_test,
        scores=scores,
        log=lambda m: None,
    )
    labels, clusters = labels_and_clusters(test_dirs, n_test)
    return photo_bootstrap(
        labels,
        clusters,
        {m: list(s.values()) for m, s in scores.items()},
        groups={f: [g for g in gs if g in test_dirs] for f, gs in FAMILIES.items()},
        n_boot=n_boot,
    )


# -- re-encoding, per method ---------------------------------------------------------------------


def method_flip_rates(
    detectors: dict, val_reals, test_images, labels=None, target_fpr: float = 0.05
) -> dict[str, dict]:
    """For each detector (``score(images)``): its threshold at ``target_fpr`` on ``val_reals``
    (float images of held-out real crops), then the share of ``test_images`` whose decision each of
    ``protocol.REENCODINGS`` flips, and "any". With ``labels`` (0 real, 1 fake) also the FPR that
    threshold realises on the test reals and its TPR on the test fakes, before re-encoding.
    Returns ``{method: {re-encoding: rate, "any": rate, "threshold": t[, "FPR", "TPR"]}}``."""
    variants = {how: reencode_tensor(test_images, how) for how in REENCODINGS}
    out = {}
    for name, det in detectors.items():
        thr = threshold_at_fpr(det.score(val_reals), target_fpr)
        base = det.score(test_images) > thr
        flips = {how: (det.score(v) > thr) != base for how, v in variants.items()}
        out[name] = {how: float(f.mean()) for how, f in flips.items()}
        out[name]["any"] = float(np.logical_or.reduce(list(flips.values())).mean())
        out[name]["threshold"] = float(thr)
        if labels is not None:
            y = np.asarray(labels)
            out[name]["FPR"] = float(base[y == 0].mean())
            out[name]["TPR"] = float(base[y == 1].mean())
    return out


# -- the lab's parts, as notebook 09 and benchmarks/protocol_lab.py run them ---------------------


def calibration_report(checkpoint, reals, labelled, test_dirs: dict, work, fpr=0.05) -> dict:
    """``ntf calibrate`` on ``reals`` (with a temperature from ``labelled``), then ``ntf
    evaluate``'s rows for every test folder and the FPR the threshold realises on the test reals
    with a 95 % interval that resamples their photographs (``bootstrap.cluster_rates``; the same
    real crops sit in every folder, so one number)."""
    from .bootstrap import cluster_rates
    from .evaluate import evaluate_dirs
    from .protocol import calibrate, verdicts

    copy = Path(work) / "calibrated.pt"
    cal, _ = calibrate(checkpoint, reals, fpr, labelled=labelled, out=copy)
    rows = evaluate_dirs(copy, list(test_dirs.values()))
    rows = dict(zip(test_dirs, rows.values()))
    p = verdicts(copy, [next(iter(test_dirs.values())) / "0_real"])
    fake = [r["p_fake"] > cal.threshold for r in p]
    photos = [cluster_of(r["path"]) for r in p]
    realised = cluster_rates({"test reals": (fake, photos)})["test reals"]
    return {"calibration": cal.to_dict(), "rows": rows, "realised FPR on test reals": realised}


def flips_report(
    detectors_by_seed: dict,
    val_reals,
    test_dirs: dict,
    n_fakes: int | None,
    n_reals: int | None = None,
    target_fpr=0.05,
) -> dict:
    """``method_flip_rates`` of every seed's detectors (``{seed: {method: detector}}``) on
    ``n_fakes`` fakes of every test folder and ``n_reals`` real test crops (``spread_sample``)."""
    x, picked = spread_sample(test_dirs, n_fakes, n_reals)
    labels = [s.label for s in picked]
    by_method: dict = {}
    for seed, detectors in detectors_by_seed.items():
        for name, r in method_flip_rates(detectors, val_reals, x, labels, target_fpr).items():
            by_method.setdefault(name, {})[str(seed)] = r
    return {"n_images": len(picked), "n_real": labels.count(0), "by_method": by_method}


def traps_report(
    ntf,
    spectrum,
    train_dir,
    val_dir,
    test_dirs: dict,
    resampling_dirs: dict,
    ntf_checkpoint,
    n_train: int | None = 1000,
    n_test: int | None = 400,
    n_boot: int = 1000,
    target_fpr: float = 0.05,
) -> dict:
    """The four traps: ``resampling_trap`` on ``resampling_dirs``; ``one_class_perturbation`` of
    ``ntf`` and a fitted ``spectrum`` classifier; ``threshold_sources`` (at ``target_fpr``) and
    ``content_floor`` of NTF (``ntf_checkpoint``) on every folder of ``test_dirs``."""
    return {
        "resampling": resampling_trap(
            train_dir, resampling_dirs, n_train=n_train, n_test=n_test, n_boot=n_boot
        ),
        "one-class JPEG": {
            name: one_class_perturbation(det, test_dirs, 75, n_test=n_test, n_boot=n_boot)
            for name, det in (("NTF", ntf), ("spectrum", spectrum))
        },
        "threshold sources": threshold_sources(ntf, val_dir, test_dirs, target_fpr, n_test),
        "content floor": content_floor(
            train_dir, test_dirs, ntf_checkpoint, n_train=n_train, n_test=n_test, n_boot=n_boot
        ),
    }


def spread_sample(
    test_dirs: dict, n_fakes: int | None, n_reals: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, list[Sample]]:
    """``n_fakes`` fakes of every folder and ``n_reals`` of the real test crops (None: all; the
    same real crops sit in every folder, so each is taken once), drawn across photographs: float
    images and their samples, reals first."""
    first = next(iter(test_dirs.values()))
    reals = [s for s in scan(first, layout="cnndetection") if s.label == 0]
    picked = stratified_subset(reals, n_reals, seed)
    for d in test_dirs.values():
        fakes = [s for s in scan(d, layout="cnndetection") if s.label == 1]
        picked += stratified_subset(fakes, n_fakes, seed)
    return load_tensor([s.path for s in picked]), picked


__all__ = [
    "calibration_report",
    "flips_report",
    "traps_report",
    "content_floor",
    "family_folders",
    "family_matrix",
    "matrix_cells",
    "method_flip_rates",
    "one_class_perturbation",
    "resample_from_sizes",
    "resampling_trap",
    "spread_sample",
    "threshold_sources",
]
