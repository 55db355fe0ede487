"""Grad-CAM++ (Chattopadhay et al. 2018, via pytorch-grad-cam) on the NTF detector: which regions of
an image drive its "fake" logit (Figure 6 of the paper).

The map lives at the resolution of the layer it is taken from. The default layer is
EfficientNet-Lite0's block 2 (1/4 of the input: 16x16 for the mini detector's 64 px input, 8x8 at 32
px) or ResNet-50's last block (7x7 for 224 px inputs); maps are upsampled to the input size by
pytorch-grad-cam. ``gradcam_pp(..., size=)`` first brings the images to the detector's input as
scoring does (``augment.at_size``: ntf-mini's 32 px images enlarged to 64), so the map explains the
verdict the detector actually gives.
"""

from __future__ import annotations

import numpy as np
import torch

from .augment import at_size
from .models import EfficientNetLite0, ResNet50, SmallCNN


def default_layer(detector) -> torch.nn.Module:
    enc = detector.encoder
    if isinstance(enc, EfficientNetLite0):
        return enc.net._blocks[2]  # 1/4 of the input size: 16x16 at 64 px
    if isinstance(enc, ResNet50):
        return enc.net.layer4[-1]
    if isinstance(enc, SmallCNN):
        return enc.net[-6]  # the last ReLU before pooling: 1/4 of the input size
    raise ValueError(f"no default Grad-CAM++ layer for {type(enc).__name__}; pass layer=")


class _Logit:
    """pytorch-grad-cam target: the detector's logit for "fake" (sign +1) or for "real" (sign
    -1)."""

    def __init__(self, sign: float):
        self.sign = sign

    def __call__(self, output):
        return self.sign * output


def gradcam_pp(
    detector, images: torch.Tensor, layer=None, target: str = "fake", size: int | None = None
) -> np.ndarray:
    """Grad-CAM++ maps [N, H, W] in [0, 1] of ``images`` [N, 3, H, W] for the "fake" (or "real")
    logit.

    With ``size`` (the checkpoint's ``image_size``), the images are first brought to that input as
    scoring does (``augment.at_size``) and the maps are at that size: draw them over
    ``at_size(images, size)``."""
    from pytorch_grad_cam import GradCAMPlusPlus

    if target not in ("fake", "real"):
        raise ValueError(f"target must be 'fake' or 'real', got {target!r}")
    detector.eval()
    sign = 1.0 if target == "fake" else -1.0
    # the encoder is frozen (no parameter needs a gradient), so the input must: otherwise no
    # gradient reaches the layer's activations
    x = (images if size is None else at_size(images, size)).detach().clone().requires_grad_(True)
    with GradCAMPlusPlus(model=detector, target_layers=[layer or default_layer(detector)]) as cam:
        maps = cam(input_tensor=x, targets=[_Logit(sign)] * len(images))
    detector.zero_grad(set_to_none=True)  # leave no gradients behind on the heads
    return maps


def centre_share(maps: np.ndarray, border: int | None = None) -> np.ndarray:
    """Per map, the share of its total saliency inside the central square ``border`` px from each
    edge (default: a quarter of the side, so the square is half the side and a uniform map gives
    0.25)."""
    border = maps.shape[-1] // 4 if border is None else border
    inner = maps[:, border:-border, border:-border].sum((1, 2))
    return inner / np.maximum(maps.sum((1, 2)), 1e-12)


def ring_share(maps: np.ndarray, width: int) -> np.ndarray:
    """Per map, the share of its total saliency in the outer ring ``width`` px wide (a uniform map
    gives the ring's share of the area, ``1 - (side - 2 width)^2 / side^2``)."""
    if not 0 < 2 * width < maps.shape[-1]:
        raise ValueError(f"ring width {width}: must be at least 1 and leave an inner square")
    maps = np.asarray(maps, dtype=np.float64)
    inner = maps[:, width:-width, width:-width].sum((1, 2))
    return 1 - inner / np.maximum(maps.sum((1, 2)), 1e-12)


def border_probe(
    detector, images: torch.Tensor, size: int, pad: int, width: int, target: str = "fake"
) -> dict:
    """Is a bright border in the maps the image's content or the network's edge? The same images
    at the detector's input (``size``), mapped as they are and reflect-padded by ``pad`` px on every
    side (the map then cropped back to the image). Zero padding inside the convolutions makes the
    edge of whatever the network reads special; if the ring's share of saliency follows the edge
    out into the reflected margin, the border effect belongs to the network, not to the image.

    Grad-CAM++ scales each map to its own minimum and maximum; the padded map is cropped back to the
    image and scaled again over the image alone, as the plain map is (otherwise a minimum in the
    margin would add a uniform floor and pull the share towards the area's).

    Returns ``area`` (the ring's share of the area) and, per map, the ring's share of saliency
    ``plain`` and ``padded``."""
    import torch.nn.functional as F

    x = at_size(images, size)
    plain = gradcam_pp(detector, x, target=target)
    padded = gradcam_pp(detector, F.pad(x, (pad,) * 4, mode="reflect"), target=target)
    padded = padded[:, pad:-pad, pad:-pad]
    lo = padded.min(axis=(1, 2), keepdims=True)
    padded = (padded - lo) / np.maximum(padded.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
    side = x.shape[-1]
    return {
        "area": 1 - (side - 2 * width) ** 2 / side**2,
        "plain": ring_share(plain, width),
        "padded": ring_share(padded, width),
    }
