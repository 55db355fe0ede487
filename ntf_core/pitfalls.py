"""Three traps of fake-image detection, each a small experiment (notebook 08 shows them on
ntf-mini).

- ``format_shortcut``: a detector trained where reals and fakes differ in file format learns the
  format.
- ``traceless_folder``: the control for it, "fakes" that are real crops, so the format is the only
  cue.
- ``threshold_report``: AP (ranking) vs accuracy at 0.5 vs the oracle threshold, and calibration
  (ECE).
- ``photo_memory``: "real" learned as "one of these photographs": seen vs unseen photographs' crops,
  FPRs and their difference with intervals that resample photographs.
- ``per_photo_fpr``: how often a detector calls the real crops of each photograph fake.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .augment import perturb
from .baselines import LinearProbe
from .bootstrap import cluster_rates, photo_bootstrap
from .data import load_tensor, scan, stratified_subset
from .experiments import load_images, make_method, pick
from .metrics import calibration, detection_metrics, oracle_accuracy
from .mini import by_photo, cluster_of, make_folder


def _jpeg_where(x: torch.Tensor, mask, quality: int) -> torch.Tensor:
    """A copy of ``x`` with the images where ``mask`` is true saved and read back as JPEG at
    ``quality``."""
    mask = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
    out = x.clone()
    if mask.any():
        out[mask] = perturb(x[mask], "jpeg", quality)
    return out


def _test_set(folder, n: int | None):
    """Images, labels and photograph ids of ``n`` images of each label of ``folder``, drawn across
    photographs."""
    picked = pick(scan(folder, layout="cnndetection"), n)
    return (
        load_tensor([s.path for s in picked]),
        np.array([s.label for s in picked]),
        [cluster_of(s.path) for s in picked],
    )


def _intervals(y, clusters, scores: dict, metric: str, n_boot: int) -> dict:
    """``{name: (lo, hi)}``: photo-bootstrap 95 % intervals of ``metric`` for score arrays of the
    same images (reals resampled by source photograph, fakes one by one:
    ``bootstrap.photo_bootstrap``)."""
    boot = photo_bootstrap(
        {"t": y},
        {"t": clusters},
        {n: [{"t": s}] for n, s in scores.items()},
        metric=metric,
        n_boot=n_boot,
    )
    return {n: (m["t"]["lo"], m["t"]["hi"]) for n, m in boot["methods"].items()}


def format_shortcut(
    train_dir,
    test_dirs: dict,
    quality: int = 90,
    n_train: int | None = 1000,
    n_test: int | None = 400,
    method: str = "spectrum",
    n_boot: int = 1000,
) -> dict:
    """Pitfall 1. Two detectors of ``method`` trained on the same images of ``train_dir``: *honest*
    sees them all as PNG, *shortcut* sees the reals saved as JPEG at ``quality`` (as camera photos
    are) and the fakes as PNG (as generators write them). Both score each folder of ``test_dirs``
    three ways: reals JPEG / fakes PNG (as the shortcut was trained), all PNG, and reals PNG / fakes
    JPEG (the formats swapped).

    Returns ``{detector: {"<folder>: <test>": metrics row}}``; each row also holds
    ``"AP interval"``, the photo-bootstrap 95 % interval of its AP (``n_boot`` replicates; the
    detectors are deterministic, so the interval is about the test photographs and images only). In
    the traceless control the "fakes" are real crops too, and resampling them one by one ignores
    that they share photographs: read its intervals as too narrow."""
    x, y = load_images(scan(train_dir, layout="cnndetection"), n_train)
    tests = {}
    for g, d in test_dirs.items():
        xt, yt, ct = _test_set(d, n_test)
        tests.update(
            {
                f"{g}: reals JPEG, fakes PNG": (_jpeg_where(xt, yt == 0, quality), yt, ct),
                f"{g}: all PNG": (xt, yt, ct),
                f"{g}: reals PNG, fakes JPEG": (_jpeg_where(xt, yt == 1, quality), yt, ct),
            }
        )
    fits = {
        "honest (all PNG)": x,
        "shortcut (reals JPEG)": _jpeg_where(x, y == 0, quality),
    }
    return fit_and_score(method, fits, y, tests, n_boot)


def fit_and_score(method: str, fits: dict, y, tests: dict, n_boot: int) -> dict:
    """One detector of ``method`` per training set of ``fits`` (``{name: images}``, labels ``y``),
    each scored on every test set of ``tests`` (``{name: (images, labels, photographs)}``):
    ``{detector: {test: metrics row with "AP interval"}}`` (photo bootstrap, ``n_boot``)."""
    out = {}
    for name, x_fit in fits.items():
        torch.manual_seed(0)
        det = make_method(method, seed=0, wang_epochs=1).fit(x_fit, y)
        out[name] = {}
        for t, (xs, yt, ct) in tests.items():
            s = det.score(xs)
            out[name][t] = {
                **detection_metrics(yt, s),
                "AP interval": _intervals(yt, ct, {t: s}, "AP", n_boot)[t],
            }
    return out


def traceless_folder(src_dir, dst, n: int | None = None) -> Path:
    """A control for pitfall 1: a CNNDetection folder ``dst`` whose "fakes" are real crops too (the
    real images of ``src_dir`` dealt alternately into 0_real and 1_fake, ``n`` of each at most), so
    no generator trace separates the two labels and only what is done to them (their file format)
    can. The 2n crops are drawn across source photographs and each photograph's crops are dealt
    alternately, so both labels show the same photographs."""
    reals = [s for s in scan(src_dir, layout="cnndetection") if s.label == 0]
    half: dict[int, list] = {0: [], 1: []}
    k = 0
    for crops in by_photo(stratified_subset(reals, 2 * n if n else None)).values():
        for s in crops:  # one counter across photographs: the halves differ by at most one crop
            half[k % 2].append(s)
            k += 1
    return make_folder(dst, half[0][:n] if n else half[0], half[1][:n] if n else half[1])


def threshold_report(
    detector, test_dirs: dict, n_test: int | None = None, bins: int = 10, n_boot: int = 1000
) -> tuple[dict, dict]:
    """Pitfall 2. Per test folder: AP and ACC at 0.5 with their photo-bootstrap 95 % intervals
    (``n_boot`` replicates; a fixed detector, so the intervals are about the test photographs and
    images), the oracle accuracy and its threshold, and ECE; plus the pooled labels and scores of
    every folder (for a reliability diagram). ``detector`` has ``score(images)``."""
    report, labels, scores = {}, [], []
    for g, d in test_dirs.items():
        x, y, clusters = _test_set(d, n_test)
        s = detector.score(x)
        m = detection_metrics(y, s)
        acc, thr = oracle_accuracy(y, s)
        report[g] = {
            "AP": m["AP"],
            "AP interval": _intervals(y, clusters, {g: s}, "AP", n_boot)[g],
            "ACC": m["ACC"],
            "ACC interval": _intervals(y, clusters, {g: s}, "ACC", n_boot)[g],
            "oracle ACC": acc,
            "oracle threshold": thr,
            "ECE": calibration(y, s, bins)["ece"],
        }
        labels.append(y)
        scores.append(s)
    return report, {"labels": np.concatenate(labels), "scores": np.concatenate(scores)}


def photo_memory(train_dir, unseen_dirs, n_fakes: int | None = None, seed: int = 0) -> dict:
    """Pitfall 3a. A linear probe trained on every other real crop of each training photograph (and
    as many fakes of ``train_dir``), then asked about real crops only: the held-out crops of the
    *same* photographs, and the crops of the photographs of ``unseen_dirs`` (e.g. the validation
    folder). If the probe had learned nothing about the photographs themselves, both would be called
    fake equally often."""
    samples = scan(train_dir, layout="cnndetection")
    fit_real, held_out = [], []
    for crops in by_photo([s for s in samples if s.label == 0]).values():
        fit_real += crops[0::2]
        held_out += crops[1::2]
    fakes = stratified_subset([s for s in samples if s.label == 1], n_fakes or len(fit_real), seed)
    unseen = [s for d in unseen_dirs for s in scan(d, layout="cnndetection") if s.label == 0]
    x = load_tensor([s.path for s in fit_real + fakes])
    y = np.array([0] * len(fit_real) + [1] * len(fakes))
    probe = LinearProbe(seed=seed).fit(x, y)
    out, calls = {}, {}
    for name, group in (
        ("held-out crops of the training photographs", held_out),
        ("crops of unseen photographs", unseen),
    ):
        p = probe.score(load_tensor([s.path for s in group]))
        calls[name] = ((p >= 0.5).astype(int), [cluster_of(s.path) for s in group])
        out[name] = {
            "n": len(group),
            "photos": len(by_photo(group)),
            "mean P(fake)": float(p.mean()),
            "FPR": float((p >= 0.5).mean()),
        }
    rates = cluster_rates(calls, seed=seed)  # intervals that resample photographs
    for name in calls:
        out[name]["FPR interval"] = (rates[name]["lo"], rates[name]["hi"])
    diff = rates[" - ".join(reversed(list(calls)))]
    out["unseen - seen"] = {
        "FPR": diff["mean"],
        "FPR interval": (diff["lo"], diff["hi"]),
        "excludes 0": diff["excludes_0"],
    }
    return out


def _real_crops(real_dirs) -> list:
    """The real crops under ``real_dirs``, each once however many folders hold it (ntf-mini's real
    test crops sit in every generator's folder)."""
    seen, reals = set(), []
    for d in real_dirs:
        for s in scan(d, layout="cnndetection"):
            if s.label == 0 and s.path.name not in seen:
                seen.add(s.path.name)
                reals.append(s)
    return reals


def per_photo_fpr(detector, real_dirs, min_crops: int = 20) -> dict[str, dict]:
    """Pitfall 3b. For each source photograph with at least ``min_crops`` real crops under
    ``real_dirs`` (each crop counted once, however many folders hold it): how many crops, and the
    share the detector calls fake."""
    out = {}
    reals = _real_crops(real_dirs)
    for photo, crops in sorted(by_photo(reals).items()):
        if len(crops) >= min_crops:
            p = detector.score(load_tensor([s.path for s in crops]))
            out[photo] = {
                "n": len(crops),
                "FPR": float((p >= 0.5).mean()),
                "mean P(fake)": float(p.mean()),
            }
    return out


def photo_crops(real_dirs, photos, k: int = 4, seed: int = 0) -> dict[str, list]:
    """For each photograph of ``photos``, ``k`` of its real crops under ``real_dirs`` (each crop
    once, drawn at random with ``seed``, in file-name order): thumbnails that show what a
    photograph looks like."""
    import random

    groups = by_photo(_real_crops(real_dirs))
    return {  # one generator per photograph: its crops do not depend on the others asked for
        p: sorted(
            (
                s.path
                for s in random.Random(f"{seed}:{p}").sample(groups[p], min(k, len(groups[p])))
            ),
            key=str,
        )
        for p in photos
    }
