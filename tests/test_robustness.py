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
    from conftest import MINI

    from ntf_core.baselines import NTF
    from ntf_core.config import SHIPPED_CHECKPOINTS
    from ntf_core.experiments import fit_baselines, robustness
    from ntf_core.mini import mini_test_dirs

    detectors = {
        "NTF": NTF(SHIPPED_CHECKPOINTS / "stage2.pt"),
        **fit_baselines(MINI / "train", methods=("spectrum",), n_train=32),
    }
    dirs = {g: d for g, d in mini_test_dirs().items() if g in ("dcgan", "ddim")}
    r = robustness(
        detectors, dirs, grid={"blur": (0.0, 1.0), "jpeg": (0, 50)}, n_test=8, log=lambda m: None
    )
    assert list(r) == ["blur", "jpeg"] and list(r["jpeg"]) == ["0", "50"]
    row = r["blur"]["1.0"]["NTF"]
    assert set(row) >= {"AP", "ACC", "FPR", "FNR"} and (row["n_real"], row["n_fake"]) == (16, 16)
