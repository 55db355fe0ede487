"""The NTF losses, eqs. 1-7 of the paper, one small function each, on L2-normalised features.

Notation: z_hom / z_het are the homogeneous / heterogeneous projections of stage 1, tau a
temperature. Every function L2-normalises its feature inputs itself (the paper's similarities are
cosines), so callers pass raw head outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def het_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Eq. 1, L_het: NT-Xent (SimCLR) over the 2N views of N images.

    z1, z2: [N, C], the heterogeneous features of two augmented views of the same N images. Each of
    the 2N views is an anchor; its positive is the other view of its image; the denominator holds
    the 2N - 1 other views. The mean over the 2N anchors is returned.
    """
    if z1.shape != z2.shape:
        raise ValueError(
            f"het_loss: the two views differ in shape, {tuple(z1.shape)} vs {tuple(z2.shape)}"
        )
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / tau
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, positive)


def hom_loss(z_hom: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Eq. 2, L_hom: the largest squared L2 distance between the hom features of two *different*
    images.

    z_hom: [M, C]; source: [M] image ids (the two views of one image share an id and are not
    compared). Choice: with every sample from one image there is no pair to compare and the loss is
    0 (not NaN).
    """
    z = F.normalize(z_hom, dim=1)
    d2 = (z[:, None, :] - z[None, :, :]).pow(2).sum(-1)
    different = source[:, None] != source[None, :]
    if not different.any():
        return z.sum() * 0.0  # keeps the graph, zero gradient
    return d2[different].max()


def hom_variance_floor(z_hom: torch.Tensor, floor: float) -> torch.Tensor:
    """Not in the paper: a remedy for eq. 2's trivial minimiser (every image mapped to one constant
    z_hom).

    VICReg's variance term (Bardes et al. 2022) on the L2-normalised hom features: the mean over the
    C dimensions of relu(floor - std_d), std_d the standard deviation of dimension d over the batch.
    It is 0 once every dimension varies by at least ``floor``, so L_hom can still pull the real
    images together, but no further than to a cluster of that width: z_hom must keep depending on
    the image. ``floor = 0`` gives 0 (eq. 2 as printed). For reference, 128-d unit vectors spread
    evenly have std_d of about 1 / sqrt(128) = 0.088.
    """
    z = F.normalize(z_hom, dim=1)
    std = torch.sqrt(z.var(dim=0) + 1e-8)
    return torch.relu(floor - std).mean()


ORT_MODES = ("signed", "abs", "square")


def ort_loss(z_hom: torch.Tensor, z_het: torch.Tensor, mode: str = "abs") -> torch.Tensor:
    """Eq. 3, L_ort: the cosine between each sample's hom and het features, averaged over samples.

    The printed equation averages the *signed* cosine (``mode="signed"``), whose minimum is -1: it
    rewards anti-aligned features rather than orthogonal ones. ``"abs"`` (|cos|) and ``"square"``
    (cos^2) are minimal exactly at orthogonality, which is what the text asks for. Default
    ``"abs"``, for orthogonality, not for AP: descending L_ort alone in the 2-D toy ends at mean
    |cos| 0.999 for "signed", 0.006 for "abs", 0.000 for "square"
    (benchmarks/ort_mode_experiment.txt), while on the validation split the three forms are within
    noise of each other in AP (three seeds each, docs/METHOD.md).
    """
    cos = F.cosine_similarity(z_hom, z_het, dim=1)
    if mode == "signed":
        return cos.mean()
    if mode == "abs":
        return cos.abs().mean()
    if mode == "square":
        return cos.pow(2).mean()
    raise ValueError(f"ort_loss: mode must be one of {ORT_MODES}, got {mode!r}")


def trace_loss(
    z_hom: torch.Tensor,
    z_het1: torch.Tensor,
    z_het2: torch.Tensor,
    source: torch.Tensor,
    tau: float = 0.1,
    lam: float = 0.1,
    ort_mode: str = "abs",
    het_weight: float = 1.0,
    hom_floor: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Eq. 4, L_tra = L_hom + L_het + lambda * L_ort (lambda = 0.1). Returns every term and the
    total.

    z_hom: [2N, C] hom features of both views (views of image i share ``source[i]``); z_het1 /
    z_het2: [N, C] het features of the first / second views, in the same image order as z_hom's two
    halves. ``het_weight`` (1 in eq. 4) exists for Figure 3's ablation "without L_het and L_ort"
    (het_weight = lam = 0); every term is still returned, so an ablated run logs what it no longer
    optimises. ``hom_floor`` > 0 adds the course's remedy for the collapse of z_hom,
    ``hom_variance_floor`` (term "var").
    """
    terms = {
        "hom": hom_loss(z_hom, source),
        "het": het_loss(z_het1, z_het2, tau),
        "ort": ort_loss(z_hom, torch.cat([z_het1, z_het2]), ort_mode),
        "var": hom_variance_floor(z_hom, hom_floor),
    }
    terms["total"] = terms["hom"] + het_weight * terms["het"] + lam * terms["ort"] + terms["var"]
    return terms


def extended_supcon_pairs(labels: torch.Tensor, n_hom: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Who is compared with whom in eq. 5: boolean [B, B + H] masks ``(self, positive)``.

    Rows are the B anchors; columns the B batch samples then the H hom features (label 0, real).
    ``self`` marks each anchor's own column (left out of the contrast set); ``positive`` the columns
    sharing its label. Every other column is a negative: it stays in the denominator only.
    """
    b = labels.shape[0]
    contrast_labels = torch.cat([labels, labels.new_zeros(n_hom)])
    self_mask = torch.zeros(b, b + n_hom, dtype=torch.bool, device=labels.device)
    self_mask[:, :b] = torch.eye(b, dtype=torch.bool, device=labels.device)
    return self_mask, (labels[:, None] == contrast_labels[None, :]) & ~self_mask


def extended_supcon_loss(
    z: torch.Tensor, labels: torch.Tensor, z_hom: torch.Tensor, tau: float = 0.1
) -> torch.Tensor:
    """Eq. 5, L_ext: supervised contrastive loss (SupCon's L_out) with stage-1 hom features as extra
    reals.

    z: [B, C] auxiliary-head features of the batch; labels: [B], 0 = real, 1 = fake; z_hom: [H, C]
    hom features from the frozen stage-1 head. Every batch sample is an anchor; its contrast set is
    the other B - 1 batch samples plus the H hom features, which count as real: positives for a real
    anchor, negatives for a fake one. For anchor i with positives P(i) and contrast set A(i):

        L_i = -1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p / tau) / sum_{a in A(i)} exp(z_i.z_a / tau))

    The printed eq. 5 omits the log; read as SupCon (Khosla et al. 2020), whose L_out it extends.
    The mean runs over anchors with at least one positive (a lone fake in a batch without other
    fakes has none).
    """
    anchors = F.normalize(z, dim=1)
    contrast = torch.cat([anchors, F.normalize(z_hom, dim=1)])
    self_mask, positive = extended_supcon_pairs(labels, z_hom.shape[0])
    logits = (anchors @ contrast.T / tau).masked_fill(self_mask, float("-inf"))  # [B, B + H]
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = positive.sum(1)
    has_pos = n_pos > 0
    if not has_pos.any():
        return z.sum() * 0.0
    mean_log_prob_pos = log_prob.masked_fill(~positive, 0.0).sum(1)[has_pos] / n_pos[has_pos]
    return -mean_log_prob_pos.mean()


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 6, L_ce: binary cross-entropy of the classifier head's logits (label 1 = fake)."""
    return F.binary_cross_entropy_with_logits(logits.reshape(-1), labels.float().reshape(-1))


def detector_loss(
    z: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    z_hom: torch.Tensor,
    tau: float = 0.1,
    gamma: float = 0.5,
    ext_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Eq. 7, L_d = L_ext + gamma * L_ce (gamma = 0.5). Returns every term and the total.

    ``ext_weight`` (1 in eq. 7) exists for the ablation "w/o L_ext"; L_ext is still computed and
    returned."""
    terms = {"ext": extended_supcon_loss(z, labels, z_hom, tau), "ce": bce_loss(logits, labels)}
    terms["total"] = ext_weight * terms["ext"] + gamma * terms["ce"]
    return terms
