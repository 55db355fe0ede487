"""The pitfalls of notebook 08 (ntf_core.pitfalls) on small slices of ntf-mini."""

import numpy as np
import pytest
import torch

from ntf_core.config import make_config
from ntf_core.data import load_tensor, scan
from ntf_core.experiments import pick
from ntf_core.metrics import calibration, oracle_accuracy
from ntf_core.mini import by_photo, make_folder, mini_test_dirs, photo_of
from ntf_core.pitfalls import (
    _jpeg_where,
    format_shortcut,
    per_photo_fpr,
    photo_memory,
    threshold_report,
    traceless_folder,
)


class Brightness:
    """A stand-in detector: P(fake) is the mean brightness of the image."""

    def score(self, x):
        return x.mean(dim=(1, 2, 3)).numpy()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A training folder with 3 photographs x 8 real crops and 24 fakes; a second folder with 2
    other photos."""
    root = tmp_path_factory.mktemp("pit")
    samples = scan(make_config("mini").train_dir, layout="cnndetection")
    crops = by_photo([s for s in samples if s.label == 0])
    photos = sorted(crops)
    fakes = [s for s in samples if s.label == 1]
    train = make_folder(root / "train", [s for p in photos[:3] for s in crops[p][:8]], fakes[:24])
    other = make_folder(
        root / "other", [s for p in photos[3:5] for s in crops[p][:10]], fakes[24:30]
    )
    return train, other


def test_jpeg_where_touches_only_the_masked_images():
    x = load_tensor([s.path for s in scan(mini_test_dirs()["dcgan"], layout="cnndetection")[:4]])
    out = _jpeg_where(x, np.array([True, False, True, False]), 50)
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])
    assert (out[0] - x[0]).abs().mean() > 1e-3 and (out[2] - x[2]).abs().mean() > 1e-3


def test_format_shortcut_is_learned_when_the_fakes_carry_no_trace(tmp_path):
    """'Fakes' that are real crops too: the only cue left is the format, and the shortcut detector
    takes it."""
    train = traceless_folder(make_config("mini").train_dir, tmp_path / "train", n=200)
    test = traceless_folder(make_config("mini").val_dir, tmp_path / "test", n=100)
    rows = format_shortcut(train, {"t": test}, quality=30, n_train=None, n_test=None)
    assert set(rows) == {"honest (all PNG)", "shortcut (reals JPEG)"}
    for r in rows.values():
        assert list(r) == ["t: reals JPEG, fakes PNG", "t: all PNG", "t: reals PNG, fakes JPEG"]
        assert all(v["n_real"] == 100 and v["n_fake"] == 100 for v in r.values())
    cut, honest = rows["shortcut (reals JPEG)"], rows["honest (all PNG)"]
    # as trained the shortcut looks like a detector; with the formats swapped it is worse than
    # chance
    assert cut["t: reals JPEG, fakes PNG"]["AP"] > 0.7
    assert cut["t: reals PNG, fakes JPEG"]["AP"] < 0.45
    # real vs real: nothing to learn without the shortcut
    assert 0.35 < honest["t: all PNG"]["AP"] < 0.65
    for r in (*cut.values(), *honest.values()):  # a photo-bootstrap interval around each AP
        lo, hi = r["AP interval"]
        assert lo <= r["AP"] <= hi and lo < hi


def test_threshold_report_agrees_with_the_metrics():
    dirs = {g: mini_test_dirs()[g] for g in ("dcgan", "ddpm")}
    report, pooled = threshold_report(Brightness(), dirs, n_test=20, bins=5)
    assert len(pooled["labels"]) == len(pooled["scores"]) == 80
    for g, r in report.items():
        scored = pick(scan(dirs[g], layout="cnndetection"), 20)  # what threshold_report scored
        x = load_tensor([s.path for s in scored])
        y = [0] * 20 + [1] * 20
        s = Brightness().score(x)
        assert (r["oracle ACC"], r["oracle threshold"]) == pytest.approx(oracle_accuracy(y, s))
        assert r["ECE"] == pytest.approx(calibration(y, s, 5)["ece"])
        assert r["oracle ACC"] >= r["ACC"]
        assert r["AP interval"][0] <= r["AP"] <= r["AP interval"][1]
        assert (
            r["ACC interval"][0] <= r["ACC"] <= r["ACC interval"][1]
            and r["ACC interval"][0] < r["ACC interval"][1]
        )


def test_photo_memory_splits_every_photo_in_half(small, monkeypatch):
    """The probe is fitted on every other real crop of each training photograph and scored on the
    rest: a split that reuses fitted crops, or drops some, fails here."""
    from ntf_core import pitfalls

    train, other = small
    paths_of, fitted, scored = {}, [], []

    def loading(paths):  # remember which files each tensor was loaded from
        x = load_tensor(paths)
        paths_of[id(x)] = [str(p) for p in paths]
        return x

    fit, score = pitfalls.LinearProbe.fit, pitfalls.LinearProbe.score
    monkeypatch.setattr(pitfalls, "load_tensor", loading)
    monkeypatch.setattr(
        pitfalls.LinearProbe,
        "fit",
        lambda self, x, y: fitted.append(paths_of[id(x)]) or fit(self, x, y),
    )
    monkeypatch.setattr(
        pitfalls.LinearProbe,
        "score",
        lambda self, x: scored.append(paths_of[id(x)]) or score(self, x),
    )
    out = photo_memory(train, [other])
    reals = lambda d: sorted(str(s.path) for s in scan(d) if s.label == 0)
    fit_reals = [p for p in fitted[0] if "/0_real/" in p]
    assert len(fitted) == 1 and len(scored) == 2
    both = set(fit_reals) & set(scored[0])
    assert not both, f"{len(both)} crops both fitted on and held out"
    assert sorted(fit_reals + scored[0]) == reals(train)  # and together they are every crop
    assert sorted(scored[1]) == reals(other)
    for photo in {photo_of(p) for p in fit_reals}:  # half of each photograph's crops each
        assert [photo_of(p) for p in fit_reals].count(photo) == 4
        assert [photo_of(p) for p in scored[0]].count(photo) == 4
    seen, unseen, diff = out.values()
    assert (seen["n"], seen["photos"]) == (12, 3) and (unseen["n"], unseen["photos"]) == (20, 2)
    assert all(0 <= r["FPR"] <= 1 and 0 <= r["mean P(fake)"] <= 1 for r in (seen, unseen))
    for r in (seen, unseen):  # the interval resamples photographs and holds the rate
        assert r["FPR interval"][0] <= r["FPR"] <= r["FPR interval"][1]
    assert diff["FPR"] == pytest.approx(unseen["FPR"] - seen["FPR"])
    assert diff["FPR interval"][0] <= diff["FPR"] <= diff["FPR interval"][1]


def test_per_photo_fpr_counts_each_crop_once(small, tmp_path):
    train, other = small
    twice = make_folder(tmp_path / "again", [s for s in scan(other) if s.label == 0], [])
    out = per_photo_fpr(Brightness(), [other, twice], min_crops=10)
    assert len(out) == 2 and all(r["n"] == 10 for r in out.values())
    for photo, r in out.items():
        crops = [s.path for s in scan(other) if s.label == 0 and photo_of(s.path) == photo]
        assert r["FPR"] == pytest.approx(
            float((Brightness().score(load_tensor(crops)) >= 0.5).mean())
        )
    assert per_photo_fpr(Brightness(), [other], min_crops=11) == {}


def test_traceless_folder_halves_are_equal_on_odd_photographs(tmp_path):
    out = traceless_folder(make_config("mini").train_dir, tmp_path / "t", n=200)
    reals, fakes = len(list((out / "0_real").iterdir())), len(list((out / "1_fake").iterdir()))
    assert reals == fakes == 200


def test_photo_crops_draws_k_crops_of_each_photograph():
    from ntf_core.config import make_config
    from ntf_core.mini import photo_of
    from ntf_core.pitfalls import photo_crops

    val = make_config("mini").val_dir
    crops = photo_crops([val], ["Path", "Wine-by-Jakkub-Mede"], k=3)
    assert list(crops) == ["Path", "Wine-by-Jakkub-Mede"]
    for photo, paths in crops.items():
        assert len(paths) == 3 and {photo_of(p) for p in paths} == {photo}
    assert photo_crops([val], ["Path"], k=3) == {"Path": crops["Path"]}  # seeded
