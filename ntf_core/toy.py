"""A 2-D toy of stage 1: what each term of L_tra does to features, with no encoder in the way.

Each of ``n_images`` images has two views; every view owns a free 2-D hom feature and a free 2-D het
feature (the parameters). Gradient descent on one term, or on L_tra, moves them; the trajectory
shows the term's pull:

    L_hom  pulls every hom feature of every image to one point (the "shared" trace of real images);
    L_het  pairs each image's two views and pushes different images apart on the circle;
    L_ort  turns each sample's het feature perpendicular to its hom feature (in 2-D: onto one line).

The losses are the real ones from ``ntf_core.losses``; only the features are toys. ``losses=``
swaps in your own version of a term (the exercises of notebooks 01 and 05 do), without editing the
library.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import extended_supcon_loss, het_loss, hom_loss, ort_loss

TERMS = ("hom", "het", "ort", "tra")
LIBRARY_LOSSES = {"hom": hom_loss, "het": het_loss, "ort": ort_loss}


def toy_run(
    term: str = "tra",
    n_images: int = 6,
    steps: int = 150,
    lr: float = 0.05,
    tau: float = 0.5,
    lam: float = 0.1,
    ort_mode: str = "abs",
    seed: int = 0,
    dim: int = 2,
    losses: dict | None = None,
) -> dict:
    """Descend one term ("hom", "het", "ort") or L_tra ("tra") from a random start.

    ``losses``: {term: function} replacing the library's eq. 2 (``"hom"``: f(z_hom, source)), eq. 1
    (``"het"``: f(z1, z2, tau)) or eq. 3 (``"ort"``: f(z_hom, z_het, ort_mode)); L_tra is always eq.
    4's sum of the three in use (with the library's, the value of ``losses.trace_loss``).

    Returns ``hom`` / ``het``: unit features [steps + 1, 2 * n_images, dim] along the way (views of
    image i at rows i and n_images + i), ``source`` [2 * n_images] and ``loss`` [steps + 1], the
    term's value at each step.
    """
    if term not in TERMS:
        raise ValueError(f"toy_run: term must be one of {TERMS}, got {term!r}")
    unknown = set(losses or {}) - set(LIBRARY_LOSSES)
    if unknown:
        raise ValueError(
            f"toy_run: losses can replace {sorted(LIBRARY_LOSSES)}, not {sorted(unknown)}"
        )
    fn = {**LIBRARY_LOSSES, **(losses or {})}
    g = torch.Generator().manual_seed(seed)
    # start in a cone around the first axis: two exactly opposite unit features (cos = -1) sit at
    # the maximum of their squared distance, where its gradient vanishes, and eq. 2 would never pull
    # them together
    start = torch.zeros(dim)
    start[0] = 1.0
    z_hom = (start + 0.6 * torch.randn(2 * n_images, dim, generator=g)).requires_grad_()
    z_het = (start + 0.6 * torch.randn(2 * n_images, dim, generator=g)).requires_grad_()
    source = torch.arange(n_images).repeat(2)

    def value():
        terms = {
            "hom": lambda: fn["hom"](z_hom, source),
            "het": lambda: fn["het"](z_het[:n_images], z_het[n_images:], tau),
            "ort": lambda: fn["ort"](z_hom, z_het, ort_mode),
        }
        if term != "tra":
            return terms[term]()
        return terms["hom"]() + terms["het"]() + lam * terms["ort"]()  # eq. 4

    (homs, hets), values = descend([z_hom, z_het], value, steps, lr)
    return {"hom": homs, "het": hets, "source": source, "loss": values}


def descend(features: list, value, steps: int, lr: float) -> tuple[list, torch.Tensor]:
    """``steps`` steps of SGD (momentum 0.9) on ``value()`` over the free ``features``; returns each
    feature tensor's unit rows at every step ([steps + 1, ...] each) and the value at every step."""
    opt = torch.optim.SGD(features, lr=lr, momentum=0.9)
    seen, values = [], []
    for step in range(steps + 1):
        loss = value()
        seen.append([F.normalize(z.detach(), dim=1).clone() for z in features])
        values.append(float(loss.detach()))
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [torch.stack(path) for path in zip(*seen)], torch.tensor(values)


def toy_summary(run: dict) -> dict:
    """Numbers that say what happened at the end of a toy run.

    hom_spread: the largest squared distance between two images' hom features (eq. 2's value);
    het_pair_cos: mean cosine between the two views of an image; het_other_cos: mean cosine between
    different images' het features; abs_cos_hom_het: mean |cos| between a sample's hom and het
    features.
    """
    hom, het, src = run["hom"][-1], run["het"][-1], run["source"]
    n = len(src) // 2
    same = src[:, None] == src[None, :]
    cos_het = het @ het.T
    return {
        "hom_spread": float(((hom[:, None] - hom[None]) ** 2).sum(-1)[~same].max()),
        "het_pair_cos": float((het[:n] * het[n:]).sum(1).mean()),
        "het_other_cos": float(cos_het[~same].mean()),
        "abs_cos_hom_het": float((hom * het).sum(1).abs().mean()),
    }


def ext_run(
    n_real: int = 6,
    n_fake: int = 6,
    n_hom: int = 3,
    steps: int = 100,
    lr: float = 0.05,
    tau: float = 0.1,
    seed: int = 0,
    dim: int = 2,
    loss=None,
) -> dict:
    """Eq. 5 on toy features: free ``dim``-d auxiliary features of ``n_real`` real and ``n_fake``
    fake images, and ``n_hom`` *fixed* hom features (stage 1 is frozen) around one direction, the
    natural trace. Gradient descent on ``loss(z, labels, z_hom, tau)`` (default: the library's
    ``losses.extended_supcon_loss``; pass your own variant) moves only the image features.

    Returns ``z`` (unit features [steps + 1, n_real + n_fake, dim]), ``hom`` [n_hom, dim],
    ``labels`` and ``loss`` [steps + 1]."""
    loss = loss or extended_supcon_loss
    g = torch.Generator().manual_seed(seed)
    trace = torch.zeros(dim)
    trace[0] = 1.0
    hom = F.normalize(trace + 0.2 * torch.randn(n_hom, dim, generator=g), dim=1)
    z = torch.randn(n_real + n_fake, dim, generator=g).requires_grad_()
    labels = torch.tensor([0] * n_real + [1] * n_fake)
    (zs,), values = descend([z], lambda: loss(z, labels, hom, tau), steps, lr)
    return {"z": zs, "hom": hom, "labels": labels, "loss": values}


def ext_summary(run: dict) -> dict:
    """Where eq. 5 left the images: the mean cosine of the real and of the fake features to the
    natural trace (the hom features' mean direction), at the start and at the end."""
    trace = F.normalize(run["hom"].mean(0), dim=0)
    real = run["labels"] == 0
    out = {}
    for when, z in (("start", run["z"][0]), ("end", run["z"][-1])):
        cos = z @ trace
        out[f"real cos to trace, {when}"] = float(cos[real].mean())
        out[f"fake cos to trace, {when}"] = float(cos[~real].mean())
    return out
