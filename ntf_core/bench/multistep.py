"""ntf-mini's multi-step fakes: two generators chained, the analogue of the paper's GAN-GAN /
GAN-DM / DM-DM face swaps (a generated face pasted into a generated scene, or a generated image
re-synthesised).

- ``blend_region``: a rectangle of a donor image pasted into a background image through a soft
  mask, as a face swap pastes a face; the seam is feathered so the region is not outlined by a hard
  edge.
- SDEdit (``diffusion.sdedit``): a GAN image noised half-way in the latent diffusion model and
  denoised again.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF


def region_masks(
    n: int, size: int, seed: int, min_side: int = 12, max_side: int = 20, sigma: float = 1.5
):
    """n soft rectangular masks [n, 1, size, size] in [0, 1], one random rectangle each, edges
    blurred."""
    gen = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 1, size, size)
    sides = torch.randint(min_side, max_side + 1, (n, 2), generator=gen)
    for i, (h, w) in enumerate(sides.tolist()):
        top = int(torch.randint(0, size - h + 1, (1,), generator=gen))
        left = int(torch.randint(0, size - w + 1, (1,), generator=gen))
        masks[i, :, top : top + h, left : left + w] = 1.0
    return TF.gaussian_blur(masks, kernel_size=7, sigma=sigma)


def blend_region(background: torch.Tensor, donor: torch.Tensor, seed: int) -> torch.Tensor:
    """Paste a random feathered rectangle of ``donor`` into ``background`` (both float
    [n, 3, H, W])."""
    if background.shape != donor.shape:
        raise ValueError(
            f"background {tuple(background.shape)} and donor {tuple(donor.shape)} differ in shape"
        )
    m = region_masks(len(background), background.shape[-1], seed)
    return (background * (1 - m) + donor * m).clamp(0, 1)
