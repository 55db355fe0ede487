"""Fourier views of images: where generators' upsampling leaves its periodic fingerprints.

Following Durall et al. 2020 / Frank et al. 2020 / Corvi et al. 2023, spectra are taken of the
grey-level image or of its high-pass residual (the image minus a 3x3 mean blur), which removes the
scene's 1/f energy and leaves the fine traces a generator adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_GREY = torch.tensor([0.299, 0.587, 0.114])


def grey(images: torch.Tensor) -> torch.Tensor:
    """float [N, 3, H, W] -> [N, H, W] luma."""
    return torch.einsum("nchw,c->nhw", images.float(), _GREY.to(images.device))


def highpass(x: torch.Tensor) -> torch.Tensor:
    """[N, H, W] minus its 3x3 box blur (reflect padding): the noise residual."""
    blurred = F.avg_pool2d(F.pad(x[:, None], (1, 1, 1, 1), mode="reflect"), 3, stride=1)[:, 0]
    return x - blurred


def log_spectrum(images: torch.Tensor, residual: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Per-image centred log-magnitude spectrum [N, H, W] of the luma (or of its high-pass
    residual)."""
    x = grey(images)
    x = highpass(x) if residual else x - x.mean(dim=(1, 2), keepdim=True)
    mag = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1)).abs()
    return torch.log(mag + eps)


def mean_log_spectrum(images: torch.Tensor, residual: bool = True) -> torch.Tensor:
    """The average of per-image log spectra [H, W]: the classic 'fingerprint' picture of a
    generator."""
    return log_spectrum(images, residual).mean(0)


def radial_profile(spectrum: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """Azimuthal mean of a centred [H, W] spectrum by integer radius from the centre (0 = DC)."""
    h, w = spectrum.shape
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    r = torch.sqrt(yy.float() ** 2 + xx.float() ** 2).round().long().flatten()
    n = bins or int(min(h, w) // 2 + 1)
    keep = r < n
    sums = torch.zeros(n).index_add_(0, r[keep], spectrum.flatten().float()[keep])
    counts = torch.zeros(n).index_add_(0, r[keep], torch.ones(int(keep.sum())))
    return sums / counts
