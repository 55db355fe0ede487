"""Image transforms: stage-1 views, stage-2 training / evaluation inputs, the 32 px contrastive
crops.

Every transform maps a uint8 [3, H, W] tensor to a uint8 tensor; ``to_float`` scales to [0, 1] on
the device.

Choice (stage-1 views, the paper gives no list): random crops and horizontal flips only. Both move
pixels without resampling them, so the high-frequency traces that separate real from generated
images reach the encoder intact in both views. (Two exceptions, both explicit: an image smaller than
the crop is first enlarged, which does resample, and ``view_pad`` reflect-pads the borders so that a
full-size crop can still shift.) SimCLR's usual recipe is deliberately not used: random-resized-crop
interpolates (a low-pass filter), colour jitter and grey-scale change the colour statistics
generators get wrong, and blur erases exactly the traces the method is meant to learn.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def _crop(size: int, train: bool, pad: int = 0):
    if train:
        return v2.RandomCrop(size, padding=pad or None, pad_if_needed=True, padding_mode="reflect")
    return v2.CenterCrop(size)


def _upsize(size: int):
    """Images smaller than ``size`` are enlarged (shorter side = size); larger ones are never
    resampled."""

    def f(x):
        h, w = x.shape[-2:]
        if min(h, w) >= size:
            return x
        return v2.functional.resize(x, size, antialias=True)

    return f


def view_transform(view_size: int, pad: int = 0):
    """One stage-1 view: random crop + horizontal flip (see the module docstring for why nothing
    else).

    ``pad`` > 0 first reflect-pads each side by ``pad`` pixels, so that a crop as large as the image
    is still a random shift of up to ``pad`` px (the mini preset's 32 px images and 32 px views)."""
    return v2.Compose([_upsize(view_size), _crop(view_size, True, pad), v2.RandomHorizontalFlip()])


def train_transform(image_size: int):
    """Stage-2 classifier input during training: random crop + horizontal flip at ``image_size``."""
    return v2.Compose([_upsize(image_size), _crop(image_size, True), v2.RandomHorizontalFlip()])


def eval_transform(image_size: int):
    """Evaluation input: center crop at ``image_size`` (images smaller than that are first
    enlarged)."""
    return v2.Compose([_upsize(image_size), _crop(image_size, False)])


class TwoViews:
    """Stage 1: two independent random views of one image."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, x):
        return self.transform(x), self.transform(x)


def random_crops(
    x: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random ``size`` x ``size`` crop of each image of a batch [B, C, H, W] (stage 2's 32 px
    crops).

    With ``size`` equal to the image size this is the identity (the mini preset's 32 px images)."""
    b, _, h, w = x.shape
    if size > min(h, w):
        raise ValueError(f"random_crops: crop {size} px is larger than the {h}x{w} images")
    if (h, w) == (size, size):
        return x
    ys = torch.randint(0, h - size + 1, (b,), generator=generator).tolist()
    xs = torch.randint(0, w - size + 1, (b,), generator=generator).tolist()
    return torch.stack([img[:, y : y + size, x0 : x0 + size] for img, y, x0 in zip(x, ys, xs)])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] as uint8 (rounded, clamped): the inverse of ``to_float`` for
    image-file values."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def at_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float images [N, 3, H, W] in [0, 1] brought to ``size`` px as scoring does
    (``augment.eval_transform``: smaller ones enlarged, then a centre crop), through uint8 as the
    image files are (a perturbed float image is quantised to 8 bits on the way); images already at
    ``size`` px are returned as they are."""
    if images.shape[-1] == images.shape[-2] == size:
        return images
    return eval_transform(size)(to_uint8(images)).float() / 255


def to_float(x: torch.Tensor, device, channels_last: bool = False) -> torch.Tensor:
    x = x.to(device, non_blocking=True).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def blur_jpeg(p_blur: float = 0.5, p_jpeg: float = 0.5, sigma=(0.1, 1.0), quality=(30, 100)):
    """Wang et al. 2020's training augmentation (their "Blur+JPEG (0.5)"): with probability
    ``p_blur`` a Gaussian blur of random sigma, with probability ``p_jpeg`` a JPEG re-encoding of
    random quality, on uint8 images.

    Choice: Wang et al. draw sigma from [0, 3] px on 256 px images; on 32 px crops that range would
    erase the whole image, so the default here is [0.1, 1.0] px (about the same blur relative to the
    image's content)."""
    return v2.Compose(
        [
            v2.RandomApply([v2.GaussianBlur(5, sigma=sigma)], p=p_blur),
            v2.RandomApply([RandomJPEG(quality)], p=p_jpeg),
        ]
    )


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """A uint8 [3, H, W] image re-encoded as JPEG at ``quality`` with Pillow (4:2:0 chroma, as most
    files) and decoded again. (torchvision's own JPEG codec is deprecated since torchvision
    0.29.)"""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1).contiguous()


class RandomJPEG(torch.nn.Module):
    """JPEG re-encoding at a quality drawn uniformly from ``quality`` = (lo, hi), inclusive."""

    def __init__(self, quality=(30, 100)):
        super().__init__()
        self.lo, self.hi = quality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return jpeg(x, int(torch.randint(self.lo, self.hi + 1, ()).item()))


# -- robustness perturbations (Figure 5) -----------------------------------------------------------

PERTURBATIONS = {
    # kind: strengths, from none to strong, scaled to 32 px images (the paper's are for 224 px
    # crops)
    "blur": (0.0, 0.5, 1.0, 1.5, 2.0),  # Gaussian sigma in px
    "jpeg": (0, 95, 75, 50, 30),  # JPEG quality (0: not compressed)
    "noise": (0.0, 0.01, 0.02, 0.05, 0.1),  # Gaussian noise std on [0, 1] pixels
    # down-scale factor (antialiased), then back up (bilinear)
    "scale": (1.0, 0.75, 0.5, 0.25),
}


def perturb(x: torch.Tensor, kind: str, strength, seed: int = 0) -> torch.Tensor:
    """Float images [N, 3, H, W] in [0, 1] under one perturbation of Figure 5, at one strength
    (deterministic).

    Down-scaled images are enlarged back to their size, since a detector takes a fixed input
    size."""
    from torchvision.transforms.v2 import functional as TF

    if kind == "blur":
        if strength <= 0:
            return x
        k = min(2 * int(3 * strength + 0.5) + 1, 2 * (min(x.shape[-2:]) // 2) - 1)
        return TF.gaussian_blur(x, [k, k], [float(strength)] * 2)
    if kind == "jpeg":
        if not strength:
            return x
        return torch.stack([jpeg(img, int(strength)) for img in to_uint8(x)]).float() / 255
    if kind == "noise":
        if strength <= 0:
            return x
        g = torch.Generator().manual_seed(seed)
        return (x + strength * torch.randn(x.shape, generator=g)).clamp(0, 1)
    if kind == "scale":
        if strength >= 1:
            return x
        h, w = x.shape[-2:]
        small = TF.resize(
            x, [max(1, round(h * strength)), max(1, round(w * strength))], antialias=True
        )
        return TF.resize(small, [h, w], antialias=False).clamp(0, 1)
    raise ValueError(f"perturb: kind must be one of {sorted(PERTURBATIONS)}, got {kind!r}")
