"""Grad-CAM++ (Chattopadhay et al. 2018, via pytorch-grad-cam) on the NTF detector: which regions of an image
drive its "fake" logit (Figure 6 of the paper).

The map lives at the resolution of the layer it is taken from. The default layer is the last one with an 8x8
map for 32 px inputs (EfficientNet-Lite0 block 2) or ResNet-50's last block (7x7 for 224 px inputs); maps are
upsampled to the image size by pytorch-grad-cam.
"""
from __future__ import annotations

import numpy as np
import torch

from .models import EfficientNetLite0, ResNet50, SmallCNN


def default_layer(detector) -> torch.nn.Module:
    enc = detector.encoder
    if isinstance(enc, EfficientNetLite0):
        return enc.net._blocks[2]  # 1/4 of the input size: 8x8 at 32 px
    if isinstance(enc, ResNet50):
        return enc.net.layer4[-1]
    if isinstance(enc, SmallCNN):
        return enc.net[-6]  # the last ReLU before pooling: 1/4 of the input size
    raise ValueError(f"no default Grad-CAM++ layer for {type(enc).__name__}; pass layer=")


class _Logit:
    """pytorch-grad-cam target: the detector's logit for "fake" (sign +1) or for "real" (sign -1)."""

    def __init__(self, sign: float):
        self.sign = sign

    def __call__(self, output):
        return self.sign * output


def gradcam_pp(detector, images: torch.Tensor, layer=None, target: str = "fake") -> np.ndarray:
    """Grad-CAM++ maps [N, H, W] in [0, 1] of ``images`` [N, 3, H, W] for the "fake" (or "real") logit."""
    from pytorch_grad_cam import GradCAMPlusPlus
    if target not in ("fake", "real"):
        raise ValueError(f"target must be 'fake' or 'real', got {target!r}")
    detector.eval()
    sign = 1.0 if target == "fake" else -1.0
    # the encoder is frozen (no parameter needs a gradient), so the input must: otherwise no gradient reaches
    # the layer's activations
    x = images.detach().clone().requires_grad_(True)
    with GradCAMPlusPlus(model=detector, target_layers=[layer or default_layer(detector)]) as cam:
        maps = cam(input_tensor=x, targets=[_Logit(sign)] * len(images))
    detector.zero_grad(set_to_none=True)  # leave no gradients behind on the heads
    return maps


def centre_share(maps: np.ndarray, border: int = 8) -> np.ndarray:
    """Per map, the share of its total saliency inside the central square (``border`` px from each edge)."""
    inner = maps[:, border:-border, border:-border].sum((1, 2))
    return inner / np.maximum(maps.sum((1, 2)), 1e-12)
