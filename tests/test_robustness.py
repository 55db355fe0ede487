"""Figure 5's perturbations and the robustness experiment."""

import pytest
import torch

from ntf_core.augment import PERTURBATIONS, perturb
from ntf_core.data import mini_images

X = mini_images("val", limit=16)


@pytest.mark.parametrize("kind", sorted(PERTURBATIONS))
def test_each_perturbation_starts_at_identity_and_grows_with_strength(kind):
    strengths = PERTURBATIONS[kind]
    assert torch.equal(perturb(X, kind, strengths[0]), X)
    change = [float((perturb(X, kind, s) - X).abs().mean()) for s in strengths[1:]]
    assert change[0] > 0 and change == sorted(change), change
    out = perturb(X, kind, strengths[-1])
    assert out.shape == X.shape and out.dtype == X.dtype and 0 <= out.min() and out.max() <= 1


def test_noise_is_deterministic_and_unknown_kinds_fail():
    assert torch.equal(perturb(X, "noise", 0.05, seed=3), perturb(X, "noise", 0.05, seed=3))
    with pytest.raises(ValueError, match="kind must be one of"):
        perturb(X, "rotate", 1)


def test_robustness_experiment_shape():
    """Each cell is the detector on the images perturbed at that strength: a robustness that scored
    the clean images, another strength or another kind fails the direct computation here."""
    from conftest import MINI

    from ntf_core.baselines import NTF
    from ntf_core.config import SHIPPED_CHECKPOINTS
    from ntf_core.data import scan
    from ntf_core.experiments import fit_baselines, load_images, robustness
    from ntf_core.metrics import average_row, detection_metrics
    from ntf_core.mini import mini_test_dirs

    detectors = {
        "NTF": NTF(SHIPPED_CHECKPOINTS / "stage2.pt"),
        **fit_baselines(MINI / "train", methods=("spectrum",), n_train=32),
    }
    dirs = {g: d for g, d in mini_test_dirs().items() if g in ("dcgan", "ddim")}
    scores = {}
    r = robustness(
        detectors,
        dirs,
        grid={"blur": (0.0, 1.0), "jpeg": (0, 50)},
        n_test=8,
        log=lambda m: None,
        scores=scores,
    )
    assert list(r) == ["blur", "jpeg"] and list(r["jpeg"]) == ["0", "50"]
    row = r["blur"]["1.0"]["NTF"]
    assert set(row) >= {"AP", "ACC", "FPR", "FNR"} and (row["n_real"], row["n_fake"]) == (16, 16)
    tests = {g: load_images(scan(d, layout="cnndetection"), 8) for g, d in dirs.items()}
    for kind, strength in (("blur", 1.0), ("jpeg", 50)):
        for m, det in detectors.items():
            direct = {g: det.score(perturb(x, kind, strength)) for g, (x, _) in tests.items()}
            for g, s in direct.items():
                assert scores[kind][str(strength)][m][g] == pytest.approx(s, abs=1e-6)
            want = average_row({g: detection_metrics(y, direct[g]) for g, (_, y) in tests.items()})
            assert r[kind][str(strength)][m] == pytest.approx(want, abs=1e-9)
    # and the perturbation does reach the scores
    clean, blurred = scores["blur"]["0.0"]["NTF"]["dcgan"], scores["blur"]["1.0"]["NTF"]["dcgan"]
    assert abs(clean - blurred).max() > 1e-3
