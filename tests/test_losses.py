"""Eqs. 1-7 against hand computations written independently (plain loops), known limits and
gradchecks."""

import math

import pytest
import torch
import torch.nn.functional as F

from ntf_core import losses


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=1)


def nt_xent_by_hand(z1, z2, tau):
    z = [F.normalize(v, dim=0) for v in torch.cat([z1, z2])]
    n2, total = len(z), 0.0
    for i in range(n2):
        pos = (i + n2 // 2) % n2
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / tau) / den)
    return total / n2


def ext_supcon_by_hand(z, labels, z_hom, tau):
    a = [F.normalize(v, dim=0) for v in z]
    c = a + [F.normalize(v, dim=0) for v in z_hom]
    cl = list(labels.tolist()) + [0] * len(z_hom)
    out = []
    for i in range(len(a)):
        others = [k for k in range(len(c)) if k != i]
        pos = [k for k in others if cl[k] == cl[i]]
        if not pos:
            continue
        den = sum(math.exp(float(a[i] @ c[k]) / tau) for k in others)
        out.append(-sum(math.log(math.exp(float(a[i] @ c[p]) / tau) / den) for p in pos) / len(pos))
    return sum(out) / len(out)


def test_het_loss_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    z1, z2 = (
        torch.randn(3, 4, generator=g, dtype=torch.float64),
        torch.randn(3, 4, generator=g, dtype=torch.float64),
    )
    assert float(losses.het_loss(z1, z2, 0.5)) == pytest.approx(
        nt_xent_by_hand(z1, z2, 0.5), rel=1e-10
    )


def test_het_loss_limit_identical_views_orthogonal_images():
    z = torch.eye(3, dtype=torch.float64)  # 3 images, orthogonal; both views identical
    tau = 0.2
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 4 * math.exp(0)))
    assert float(losses.het_loss(z, z, tau)) == pytest.approx(expected, rel=1e-12)


def test_hom_loss_limits_and_same_image_pairs_ignored():
    same = unit([1, 0], [1, 0], [1, 0])
    assert float(losses.hom_loss(same, torch.tensor([0, 1, 2]))) == pytest.approx(0.0, abs=1e-12)
    z = unit([1, 0], [0, 1], [-1, 0])
    # images 0 and 2 are opposite (distance^2 = 4) but they are views of one image: not compared
    assert float(losses.hom_loss(z, torch.tensor([0, 1, 0]))) == pytest.approx(2.0)
    assert float(losses.hom_loss(z, torch.tensor([0, 1, 2]))) == pytest.approx(4.0)
    # one image only: no pair, no NaN
    assert float(losses.hom_loss(z, torch.tensor([5, 5, 5]))) == 0.0


def test_ort_loss_modes():
    """Eq. 3 per mode; samples of opposite cosines catch |mean cos| or (mean cos)^2 written in
    place of the mean of |cos| or of cos^2."""
    a, b = unit([1, 0], [0, 1]), unit([0, 1], [1, 0])
    for mode in losses.ORT_MODES:
        assert float(losses.ort_loss(a, b, mode)) == pytest.approx(0.0, abs=1e-12)
    anti = -a
    assert float(losses.ort_loss(a, anti, "signed")) == pytest.approx(-1.0)
    assert float(losses.ort_loss(a, anti, "abs")) == pytest.approx(1.0)
    assert float(losses.ort_loss(a, unit([1, 1], [1, 1]), "square")) == pytest.approx(0.5)
    # per-sample cosines +1 and -1: the mean of |cos| (and of cos^2) is 1, while |mean cos| (and
    # (mean cos)^2) would be 0; the signed mean cancels to 0
    hom, het = unit([1, 0], [1, 0]), unit([1, 0], [-1, 0])
    assert float(losses.ort_loss(hom, het, "abs")) == pytest.approx(1.0)
    assert float(losses.ort_loss(hom, het, "square")) == pytest.approx(1.0)
    assert float(losses.ort_loss(hom, het, "signed")) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="mode"):
        losses.ort_loss(a, b, "cosine")


def test_trace_loss_is_the_weighted_sum():
    g = torch.Generator().manual_seed(1)
    zh, z1, z2 = (torch.randn(k, 8, generator=g) for k in (6, 3, 3))
    t = losses.trace_loss(zh, z1, z2, torch.tensor([0, 1, 2, 0, 1, 2]), tau=0.3, lam=0.1)
    assert float(t["total"]) == pytest.approx(float(t["hom"] + t["het"] + 0.1 * t["ort"]))
    # Figure 3's ablation: without L_het and L_ort only L_hom is left, and no gradient reaches the
    # het features
    z1.requires_grad_(True)
    t = losses.trace_loss(
        zh, z1, z2, torch.tensor([0, 1, 2, 0, 1, 2]), tau=0.3, lam=0.0, het_weight=0.0
    )
    assert float(t["total"]) == pytest.approx(float(t["hom"])) and float(t["het"]) > 0
    t["total"].backward()
    assert z1.grad is None or not z1.grad.any()


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 0], [1, 1, 1, 0, 0], [0, 1, 0, 1, 1]])
def test_extended_supcon_matches_hand_computation(labels):
    g = torch.Generator().manual_seed(2)
    z, zh = (
        torch.randn(5, 6, generator=g, dtype=torch.float64),
        torch.randn(3, 6, generator=g, dtype=torch.float64),
    )
    labels = torch.tensor(labels)
    got = float(losses.extended_supcon_loss(z, labels, zh, 0.3))
    assert got == pytest.approx(ext_supcon_by_hand(z, labels, zh, 0.3), rel=1e-10)


def test_extended_supcon_one_positive_and_no_positive():
    # a real anchor, a fake, and one hom feature: the real's only positive is the hom feature
    z, zh = unit([1, 0], [0, 1]), unit([1, 0])
    tau = 0.5
    real_term = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0)))
    # the fake has no positive (no other fake) and is left out of the mean
    assert float(losses.extended_supcon_loss(z, torch.tensor([0, 1]), zh, tau)) == pytest.approx(
        real_term
    )
    lone_fake = losses.extended_supcon_loss(unit([1, 0]), torch.tensor([1]), zh, tau)
    assert float(lone_fake) == 0.0 and not torch.isnan(lone_fake)


def test_extended_supcon_is_permutation_invariant_and_hom_pulls_reals():
    g = torch.Generator().manual_seed(3)
    z, zh = (
        torch.randn(8, 5, generator=g, dtype=torch.float64),
        torch.randn(4, 5, generator=g, dtype=torch.float64),
    )
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    perm = torch.randperm(8, generator=g)
    a = losses.extended_supcon_loss(z, labels, zh, 0.2)
    b = losses.extended_supcon_loss(z[perm], labels[perm], zh[torch.randperm(4, generator=g)], 0.2)
    assert float(a) == pytest.approx(float(b), rel=1e-12)
    # reals aligned with the hom features give a lower loss than reals opposite to them
    hom = unit([1, 0, 0], [1, 0.1, 0])
    reals_near, reals_far = unit([1, 0, 0], [1, 0.05, 0]), unit([-1, 0, 0], [-1, 0.05, 0])
    fakes = unit([0, 1, 0], [0, 1, 0.1])
    lab = torch.tensor([0, 0, 1, 1])
    near = losses.extended_supcon_loss(torch.cat([reals_near, fakes]), lab, hom, 0.5)
    far = losses.extended_supcon_loss(torch.cat([reals_far, fakes]), lab, hom, 0.5)
    assert float(near) < float(far)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    z1 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    zh = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 1])
    assert torch.autograd.gradcheck(lambda a, b: losses.het_loss(a, b, 0.5), (z1, z2))
    assert torch.autograd.gradcheck(
        lambda a, h: losses.extended_supcon_loss(a, labels, h, 0.5), (z1, zh)
    )
    assert torch.autograd.gradcheck(lambda a, b: losses.ort_loss(a, b, "square"), (z1, z2))
    assert torch.autograd.gradcheck(lambda a: losses.hom_loss(a, torch.tensor([0, 1, 2])), (z1,))


def test_bce_and_detector_loss():
    """Eqs. 6-7 by hand; non-default gamma and tau catch a detector_loss that ignores either."""
    logits, labels = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1, 0, 1])
    p = torch.sigmoid(logits)
    by_hand = -(torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(p[2])) / 3
    assert float(losses.bce_loss(logits, labels)) == pytest.approx(float(by_hand), rel=1e-6)
    g = torch.Generator().manual_seed(5)
    z, zh = torch.randn(3, 4, generator=g), torch.randn(2, 4, generator=g)
    t = losses.detector_loss(z, logits, labels, zh, gamma=0.5)
    assert float(t["total"]) == pytest.approx(float(t["ext"] + 0.5 * t["ce"]))
    # gamma and tau other than the defaults must reach the terms: a gamma or tau ignored (or
    # swapped) changes ext or total
    t = losses.detector_loss(z, logits, labels, zh, tau=0.3, gamma=0.2)
    ext = ext_supcon_by_hand(z, labels, zh, 0.3)
    assert float(t["ext"]) == pytest.approx(ext, rel=1e-5)
    assert float(t["ce"]) == pytest.approx(float(by_hand), rel=1e-6)
    assert float(t["total"]) == pytest.approx(ext + 0.2 * float(by_hand), rel=1e-5)
    t = losses.detector_loss(z, logits, labels, zh, tau=0.3, gamma=0.2, ext_weight=0.0)
    assert float(t["total"]) == pytest.approx(0.2 * float(by_hand), rel=1e-6)


def _unit(n, same=False):
    z = torch.ones(n, 8, dtype=torch.float64) if same else torch.randn(n, 8, dtype=torch.float64)
    return torch.nn.functional.normalize(z, dim=1).requires_grad_(True)


@pytest.mark.parametrize(
    "case", ["all real", "all fake", "one sample", "identical features", "one image"]
)
def test_degenerate_batches_give_finite_losses_and_gradients(case):
    n = 1 if case == "one sample" else 4
    same = case == "identical features"
    z, z_hom, z1, z2 = _unit(n, same), _unit(2 * n, same), _unit(n, same), _unit(n, same)
    labels = {"all real": torch.zeros(n), "all fake": torch.ones(n)}.get(
        case, torch.arange(n) % 2
    ).long()
    source = (
        torch.zeros(2 * n, dtype=torch.long) if case == "one image" else torch.arange(n).repeat(2)
    )
    # an all-fake batch brings no real hom features
    hom = z_hom[:0] if case == "all fake" else z_hom
    tra = losses.trace_loss(z_hom, z1, z2, source)
    det = losses.detector_loss(z, torch.zeros(n), labels, hom)
    (tra["total"] + det["total"]).backward()
    assert all(torch.isfinite(v) for v in [*tra.values(), *det.values()]), (tra, det)
    for t in (z, z_hom, z1, z2):
        assert t.grad is not None and torch.isfinite(t.grad).all()


def test_hom_variance_floor_hand_computed_and_off_by_default():
    # two unit vectors per batch: dims 0 and 1 take values {1, 0} and {0, 1}; std (ddof 1) =
    # sqrt(0.5) each, dim 2 is always 0 -> std 0 (+ the 1e-8 inside the sqrt)
    z = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    std = math.sqrt(0.5)
    got = float(losses.hom_variance_floor(z, floor=0.8))
    assert got == pytest.approx(((0.8 - std) * 2 + (0.8 - 1e-4)) / 3, abs=1e-6)
    assert float(losses.hom_variance_floor(z, floor=0.0)) == 0.0
    # a collapsed batch (one vector repeated) pays the whole floor in every dimension; a spread one
    # pays nothing
    collapsed = torch.ones(8, 4)
    assert float(losses.hom_variance_floor(collapsed, 0.1)) == pytest.approx(0.1 - 1e-4, abs=1e-6)
    assert float(losses.hom_variance_floor(torch.eye(4).repeat(2, 1), 0.1)) == 0.0
    # inside L_tra it is the "var" term, added with weight 1 only when the floor is on
    zh = torch.ones(4, 4) + 0.01 * torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    z1, z2 = torch.randn(2, 4), torch.randn(2, 4)
    on = losses.trace_loss(zh, z1, z2, torch.tensor([0, 1, 0, 1]), hom_floor=0.2)
    off = losses.trace_loss(zh, z1, z2, torch.tensor([0, 1, 0, 1]))
    assert float(on["var"]) > 0.1 and float(off["var"]) == 0.0
    assert float(on["total"] - off["total"]) == pytest.approx(float(on["var"]), abs=1e-5)


def test_ext_weight_zero_leaves_only_the_classifier_loss():
    g = torch.Generator().manual_seed(3)
    z, logits = torch.randn(6, 8, generator=g), torch.randn(6, generator=g)
    labels, z_hom = torch.tensor([0, 0, 0, 1, 1, 1]), torch.randn(3, 8, generator=g)
    t = losses.detector_loss(z, logits, labels, z_hom, ext_weight=0.0)
    assert float(t["total"]) == pytest.approx(0.5 * float(t["ce"])) and float(t["ext"]) > 0
