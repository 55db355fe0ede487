"""The protocol lab's experiments: the family matrix's folders, the traps and the flip rates, on
stand-in detectors whose behaviour is known."""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from ntf_core import lab
from ntf_core.calibration import threshold_at_fpr
from ntf_core.config import make_config
from ntf_core.data import scan
from ntf_core.mini import FAMILIES, cluster_of, mini_test_dirs


class MeanBrightness:
    """A 'detector' that calls bright images fake: known, fast and deterministic."""

    def score(self, x):
        return x.mean(dim=(1, 2, 3)).numpy()


class Sharpness:
    """Scores the high-frequency energy: blurring or down-scaling lowers it, JPEG changes it."""

    def score(self, x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3)).numpy()


def _crop(path, seed, label_dir, name):
    rng = np.random.default_rng(seed)
    label_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(label_dir / name)


def test_family_folders_pair_each_family_with_as_many_reals(tmp_path):
    root = tmp_path / "mini"
    for i in range(40):  # reals of 4 photographs
        _crop(root, i, root / "train" / "dcgan" / "0_real", f"photo{i % 4}-s64-y0-x{i}.png")
        _crop(root, 100 + i, root / "val" / "dcgan" / "0_real", f"v{i % 2}-s64-y0-x{i}.png")
    for k, g in enumerate(FAMILIES["diffusion"]):
        for i in range(6):
            _crop(
                root,
                1000 + 10 * k + i,
                root / "gen_train" / "diffusion" / g / "1_fake",
                f"{g}-{i}.png",
            )
        for i in range(2):
            _crop(
                root,
                2000 + 10 * k + i,
                root / "gen_val" / "diffusion" / g / "1_fake",
                f"{g}-{i}.png",
            )
    f = lab.family_folders("diffusion", tmp_path / "work", root=root)
    train = scan(f["train"], layout="cnndetection")
    assert sum(s.label == 1 for s in train) == 18 and sum(s.label == 0 for s in train) == 18
    # the reals are drawn across every training photograph
    assert {cluster_of(s.path) for s in train if s.label == 0} == {f"photo{i}" for i in range(4)}
    val = scan(f["val"], layout="cnndetection")
    assert sum(s.label == 1 for s in val) == 6 and sum(s.label == 0 for s in val) == 6
    few = lab.family_folders("diffusion", tmp_path / "w2", root=root, per_generator=2)
    assert sum(s.label == 1 for s in scan(few["train"], layout="cnndetection")) == 6
    with pytest.raises(FileNotFoundError, match="gen_train/gan"):
        lab.family_folders("gan", tmp_path / "w3", root=root)


def test_resample_from_sizes_is_deterministic_quantised_and_smoothing():
    x = torch.rand(6, 3, 32, 32)
    a, b = lab.resample_from_sizes(x, seed=3), lab.resample_from_sizes(x, seed=3)
    assert torch.equal(a, b) and a.shape == x.shape
    assert torch.equal(a * 255, (a * 255).round())  # 8-bit, as a file would be
    assert (Sharpness().score(a) < Sharpness().score(x)).all()  # resampling smooths noise
    assert not torch.equal(a, lab.resample_from_sizes(x, seed=4))


def test_threshold_sources_by_hand():
    dirs = {g: d for g, d in mini_test_dirs().items() if g in ("dcgan", "ddpm")}
    val_dir = make_config("mini").val_dir
    out = lab.threshold_sources(MeanBrightness(), val_dir, dirs, target_fpr=0.1, n_test=80)
    x, y, c = lab._test_set(dirs["dcgan"], 80)
    reals = MeanBrightness().score(x)[y == 0]
    thr = threshold_at_fpr(reals, 0.1)
    tuned = out["test reals (tuned on the test set)"]
    assert tuned["threshold"] == thr and tuned["FPR"] == pytest.approx((reals > thr).mean())
    assert tuned["FPR"] <= 0.1  # its promise holds on the data it was tuned on
    split = out["other test photographs (half tunes, half judges)"]
    photos = np.array(c)[y == 0]
    ids = sorted(set(photos.tolist()))
    halves = list(itertools.combinations(ids, len(ids) // 2))
    assert split["splits"] == len(halves)
    # by hand: tuned on each half of the photographs, judged on the other half's reals
    fprs = []
    for half in halves:
        t = threshold_at_fpr(reals[np.isin(photos, half)], 0.1)
        fprs.append((reals[~np.isin(photos, half)] > t).mean())
    assert split["FPR"] == pytest.approx(np.mean(fprs))
    assert split["FPR range"] == pytest.approx((min(fprs), max(fprs)))
    held = out["held-out reals (val photographs)"]
    val = [s for s in scan(val_dir, layout="cnndetection") if s.label == 0]
    from ntf_core.data import load_tensor

    t = threshold_at_fpr(MeanBrightness().score(load_tensor([s.path for s in val])), 0.1)
    assert held["threshold"] == pytest.approx(t) and held["FPR"] == pytest.approx(
        (reals > t).mean()
    )


def test_method_flip_rates_by_hand():
    g = torch.Generator().manual_seed(0)
    # noise at several contrasts: some above the threshold of the validation noise, some below
    x = 0.5 + (torch.rand(20, 3, 32, 32, generator=g) - 0.5) * torch.linspace(0.6, 1.0, 20).view(
        -1, 1, 1, 1
    )
    val = 0.5 + (torch.rand(40, 3, 32, 32, generator=g) - 0.5) * 0.8
    labels = [0] * 10 + [1] * 10
    out = lab.method_flip_rates({"sharp": Sharpness()}, val, x, labels, target_fpr=0.1)["sharp"]
    from ntf_core.protocol import REENCODINGS, reencode_tensor

    thr = threshold_at_fpr(Sharpness().score(val), 0.1)
    base = Sharpness().score(x) > thr
    for how in REENCODINGS:
        want = ((Sharpness().score(reencode_tensor(x, how)) > thr) != base).mean()
        assert out[how] == pytest.approx(want)
    flipped = [(Sharpness().score(reencode_tensor(x, how)) > thr) != base for how in REENCODINGS]
    assert out["any"] == pytest.approx(np.logical_or.reduce(flipped).mean())
    assert out["FPR"] == pytest.approx(base[:10].mean()) and out["TPR"] == pytest.approx(
        base[10:].mean()
    )
    assert out["resize 0.5x"] > 0  # halving smooths the sharp ones below the threshold


def test_one_class_perturbation_leaves_the_clean_row_alone():
    dirs = {"dcgan": mini_test_dirs()["dcgan"]}
    out = lab.one_class_perturbation(Sharpness(), dirs, quality=30, n_test=40, n_boot=50)["dcgan"]
    assert set(out) == {"clean", "JPEG 30 on fakes only", "JPEG 30 on both"}
    x, y, _ = lab._test_set(dirs["dcgan"], 40)
    from ntf_core.metrics import detection_metrics

    assert out["clean"]["AP"] == pytest.approx(detection_metrics(y, Sharpness().score(x))["AP"])
    # JPEG smooths the fakes only: a sharpness detector's AP falls below the both-JPEG condition
    assert out["JPEG 30 on fakes only"]["AP"] < out["JPEG 30 on both"]["AP"]
    lo, hi = out["clean"]["AP interval"]
    assert lo <= out["clean"]["AP"] <= hi


def test_resampling_trap_resamples_what_each_condition_says(monkeypatch):
    """The trap's reals (only) and the control's images (all) are resampled, and each test condition
    resamples what its name says: swapped masks or seeds fail the direct computation."""
    seen = {}
    monkeypatch.setattr(
        lab,
        "fit_and_score",
        lambda method, fits, y, tests, n_boot: seen.update(fits=fits, tests=tests),
    )
    train_dir, test_dir = make_config("mini").train_dir, mini_test_dirs()["sngan"]
    lab.resampling_trap(train_dir, {"sngan": test_dir}, n_train=20, n_test=10)
    x, y = lab._training_images(train_dir, 20)
    rx, real = lab.resample_from_sizes(x, seed=0), torch.as_tensor(y == 0)
    trap = seen["fits"]["trap (reals resampled)"]
    assert torch.equal(trap[real], rx[real]) and torch.equal(trap[~real], x[~real])
    assert torch.equal(seen["fits"]["control (both resampled)"], rx)
    xt, yt, _ = lab._test_set(test_dir, 10)
    rs, real = lab.resample_from_sizes(xt, seed=1), torch.as_tensor(yt == 0)
    reals_only = seen["tests"]["sngan: reals resampled"][0]
    assert torch.equal(reals_only[real], rs[real]) and torch.equal(reals_only[~real], xt[~real])
    assert torch.equal(seen["tests"]["sngan: both resampled"][0], rs)
    assert torch.equal(seen["tests"]["sngan: neither"][0], xt)


def test_resampling_trap_is_learned_and_the_control_is_not_fooled():
    """A spectrum detector trained on resampled reals and native fakes learns "resampled = real":
    its AP collapses once the test fakes are resampled too; the control's hardly moves."""
    rows = lab.resampling_trap(
        make_config("mini").train_dir,
        {"sngan": mini_test_dirs()["sngan"]},
        n_train=200,
        n_test=100,
        n_boot=20,
    )
    drop = {
        name: r["sngan: reals resampled"]["AP"] - r["sngan: both resampled"]["AP"]
        for name, r in rows.items()
    }
    assert drop["trap (reals resampled)"] > 0.3, drop
    assert drop["control (both resampled)"] < 0.15, drop


def test_content_floor_is_the_bootstrap_of_ntf_and_the_low_frequency_probe():
    """Both methods' per-folder APs equal a direct scoring (the probe fitted on the training set),
    the families hold only the folders given, and NTF clears the floor on its own generator."""
    from ntf_core.baselines import NTF, LowFrequencyProbe
    from ntf_core.config import SHIPPED_CHECKPOINTS
    from ntf_core.experiments import load_images
    from ntf_core.metrics import detection_metrics

    train_dir = make_config("mini").train_dir
    dirs = {g: mini_test_dirs()[g] for g in ("dcgan", "ddim")}
    boot = lab.content_floor(
        train_dir, dirs, SHIPPED_CHECKPOINTS / "stage2.pt", n_train=100, n_test=40, n_boot=50
    )
    probe = LowFrequencyProbe(seed=0).fit(*load_images(scan(train_dir, layout="cnndetection"), 100))
    ntf = NTF(SHIPPED_CHECKPOINTS / "stage2.pt")
    for name, det in (("NTF", ntf), ("low-freq probe", probe)):
        cells = boot["methods"][name]
        assert set(cells) == {"dcgan", "ddim", "gan average", "diffusion average", "average"}
        for g, d in dirs.items():
            x, y = load_images(scan(d, layout="cnndetection"), 40)
            assert cells[g]["mean"] == pytest.approx(detection_metrics(y, det.score(x))["AP"])
    diff = boot["differences"]["NTF - low-freq probe"]
    assert diff["average"]["mean"] == pytest.approx(
        boot["methods"]["NTF"]["average"]["mean"]
        - boot["methods"]["low-freq probe"]["average"]["mean"]
    )
    assert diff["dcgan"]["excludes_0"] and diff["dcgan"]["lo"] > 0
