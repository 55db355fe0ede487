"""Three small GANs that synthesise 32 px images in three different ways.

They stand in for the paper's GAN rows: each upsamples differently, and upsampling is where
generators leave their spectral fingerprints.

- ``dcgan``   transposed convolutions + batch norm (Radford et al. 2016). Plays ProGAN's role: its
              fakes are ntf-mini's training fakes.
- ``sngan``   nearest-neighbour upsampling + 3x3 convs; spectrally normalised critic, hinge loss
              (Miyato et al. 2018).
- ``stylegan`` a mapping network, a learned constant, style-modulated and demodulated convs with
              noise injection and bilinear upsampling (Karras et al. 2020, much reduced).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

Z_DIM = 64


class DCGANGenerator(nn.Module):
    def __init__(self, width: int = 48):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(Z_DIM, 4 * w, 4, 1, 0, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(True),  # 4
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(True),  # 8
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(True),  # 16
            nn.ConvTranspose2d(w, 3, 4, 2, 1),
            nn.Tanh(),  # 32
        )

    def forward(self, z):
        return self.net(z[:, :, None, None])


class SNGANGenerator(nn.Module):
    def __init__(self, width: int = 48):
        super().__init__()
        w = width
        self.fc = nn.Linear(Z_DIM, 4 * 4 * 4 * w)
        blocks = []
        for cin, cout in ((4 * w, 2 * w), (2 * w, 2 * w), (2 * w, w)):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(cin, cout, 3, 1, 1),
                nn.BatchNorm2d(cout),
                nn.ReLU(True),
            ]
        self.net = nn.Sequential(*blocks, nn.Conv2d(w, 3, 3, 1, 1), nn.Tanh())
        self.w = w

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 4 * self.w, 4, 4))


class ModulatedConv(nn.Module):
    """A 3x3 conv whose weights are scaled per sample by a style, then demodulated (StyleGAN2)."""

    def __init__(self, cin: int, cout: int, w_dim: int, k: int = 3, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.ones_(self.affine.bias)
        self.scale, self.k, self.demodulate = 1 / math.sqrt(cin * k * k), k, demodulate

    def forward(self, x, w):
        # Modulation scales the input channels and demodulation the output channels: the same result
        # as StyleGAN2's per-sample weights, without a grouped conv (which is slow on CPU).
        s = self.affine(w)  # [B, cin]
        weight = self.scale * self.weight
        out = F.conv2d(x * s[:, :, None, None], weight, padding=self.k // 2)
        # demodulation: 1 / ||w'||, w'[o, i] = weight[o, i] * s[i], per sample and output channel
        if self.demodulate:
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).T + 1e-8)  # [B, cout]
            out = out * d[:, :, None, None]
        return out


class StyleBlock(nn.Module):
    def __init__(self, cin, cout, w_dim):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x, w, noise):
        x = self.conv(x, w) + self.noise_strength * noise
        return F.leaky_relu(x + self.bias, 0.2)


class StyleGANGenerator(nn.Module):
    def __init__(self, width: int = 48, w_dim: int = 64):
        super().__init__()
        c = [4 * width, 2 * width, 2 * width, width]  # channels at 4, 8, 16, 32 px
        self.mapping = nn.Sequential(
            nn.Linear(Z_DIM, w_dim), nn.LeakyReLU(0.2), nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)
        )
        self.const = nn.Parameter(torch.randn(1, c[0], 4, 4))
        self.blocks = nn.ModuleList(
            [StyleBlock(c[0], c[0], w_dim)] + [StyleBlock(c[i], c[i + 1], w_dim) for i in range(3)]
        )
        self.to_rgb = nn.ModuleList(
            [ModulatedConv(ci, 3, w_dim, k=1, demodulate=False) for ci in c]
        )

    def forward(self, z):
        w = self.mapping(F.normalize(z, dim=1) * math.sqrt(z.shape[1]))
        x = self.const.expand(z.shape[0], -1, -1, -1)
        rgb = None
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
            # per-pixel noise from the global generator: seeded runs stay deterministic
            x = block(x, w, torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device))
            y = self.to_rgb[i](x, w)
            rgb = y if rgb is None else rgb + y
        return torch.tanh(rgb)


class Discriminator(nn.Module):
    """A strided conv critic shared by the three GANs; ``sn=True`` wraps every layer in spectral
    norm."""

    def __init__(self, width: int = 48, sn: bool = False, batchnorm: bool = True):
        super().__init__()
        w, wrap = width, (spectral_norm if sn else (lambda m: m))
        norm = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
        self.net = nn.Sequential(
            wrap(nn.Conv2d(3, w, 4, 2, 1)),
            nn.LeakyReLU(0.2, True),  # 16
            wrap(nn.Conv2d(w, 2 * w, 4, 2, 1)),
            norm(2 * w),
            nn.LeakyReLU(0.2, True),  # 8
            wrap(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
            norm(4 * w),
            nn.LeakyReLU(0.2, True),  # 4
            wrap(nn.Conv2d(4 * w, 1, 4, 1, 0)),
        )

    def forward(self, x):
        return self.net(x).flatten()


GANS = {
    # name: (generator, discriminator kwargs, loss, Adam betas, EMA decay of G's weights (0: none)),
    # each as its paper trains it. StyleGAN's critic is spectrally normalised here in place of its
    # R1 penalty: with an unregularised critic the 2000-step run collapsed to saturated noise
    # (KID x 100 37, worse than Gaussian noise's 30); with spectral norm and the generator EMA it
    # reached 27 (one run each, same steps).
    "dcgan": (DCGANGenerator, {"sn": False, "batchnorm": True}, "bce", (0.5, 0.999), 0.0),
    "sngan": (SNGANGenerator, {"sn": True, "batchnorm": False}, "hinge", (0.0, 0.9), 0.0),
    "stylegan": (StyleGANGenerator, {"sn": True, "batchnorm": False}, "bce", (0.0, 0.99), 0.999),
}


def diff_augment(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): colour, translation and cutout applied to *every* image the
    critic sees, real and fake, differentiably, so a small dataset does not let the critic memorise
    it."""
    b, dev = x.shape[0], x.device
    r = lambda *shape: torch.rand(*shape, generator=gen).to(dev)
    x = x + (r(b, 1, 1, 1) - 0.5)  # brightness (images in [-1, 1])
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r(b, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (r(b, 1, 1, 1) + 0.5) + mean  # contrast
    h, w = x.shape[-2:]
    shift = (r(2, b) * 9).long() - 4  # translation by up to 1/8 of the side, zero padded
    pad = F.pad(x, (4, 4, 4, 4))
    iy = (torch.arange(h, device=dev)[None] + 4 + shift[0][:, None]).clamp(0, h + 7)
    ix = (torch.arange(w, device=dev)[None] + 4 + shift[1][:, None]).clamp(0, w + 7)
    x = pad[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(3, device=dev)[None, :, None, None],
        iy[:, None, :, None],
        ix[:, None, None, :],
    ]
    cy, cx = (r(2, b) * torch.tensor([h, w], device=dev)[:, None]).long()  # cutout of half the side
    yy, xx = torch.arange(h, device=dev)[None], torch.arange(w, device=dev)[None]
    outside_rows = ((yy - cy[:, None]).abs() >= h // 4)[:, :, None]
    outside_cols = ((xx - cx[:, None]).abs() >= w // 4)[:, None, :]
    keep = outside_rows | outside_cols
    return x * keep[:, None].float()


def _d_loss(kind, real_logits, fake_logits):
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def _g_loss(kind, fake_logits):
    return -fake_logits.mean() if kind == "hinge" else F.softplus(-fake_logits).mean()


def train_gan(
    name: str,
    reals: torch.Tensor,
    steps: int,
    batch: int = 64,
    lr: float = 2e-4,
    width: int = 48,
    seed: int = 0,
    device: str = "cpu",
    ema: float | None = None,
    diffaug: bool = False,
    progress=None,
    on_step=None,
) -> tuple[nn.Module, dict]:
    """Train one GAN on real crops (float [N, 3, 32, 32] in [0, 1]); returns the generator and a
    log.

    ``ema`` > 0 returns an exponential moving average of the generator's weights (Karras et al.
    2018), which samples better than the last iterate (None: the GAN's own setting in ``GANS``);
    ``diffaug`` applies DiffAugment to the critic's inputs.
    """
    make_g, d_kwargs, loss, betas, own_ema = GANS[name]
    ema = own_ema if ema is None else ema
    torch.manual_seed(seed)
    g, d = make_g(width).to(device), Discriminator(width, **d_kwargs).to(device)
    g_ema = copy.deepcopy(g).eval() if ema > 0 else None
    aug = diff_augment if diffaug else (lambda x, gen=None: x)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=betas)
    data = (reals * 2 - 1).to(device)
    log = {"d_loss": [], "g_loss": []}
    start = time.perf_counter()
    for step in range(steps):
        x = data[torch.randint(len(data), (batch,), device=device)]
        flip = torch.rand(batch, 1, 1, 1, device=device) < 0.5  # horizontal flips
        x = torch.where(flip, x.flip(-1), x)
        z = torch.randn(batch, Z_DIM, device=device)
        fake = g(z)
        d_loss = _d_loss(loss, d(aug(x)), d(aug(fake.detach())))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = _g_loss(loss, d(aug(fake)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if g_ema is not None:
            with torch.no_grad():
                for pe, p in zip(g_ema.parameters(), g.parameters()):
                    pe.lerp_(p, 1 - ema)
                for be, b in zip(g_ema.buffers(), g.buffers()):
                    be.copy_(b)
        if on_step is not None:
            on_step(step, g_ema if g_ema is not None else g)
        if step % 50 == 0 or step == steps - 1:
            log["d_loss"].append((step, d_loss.item()))
            log["g_loss"].append((step, g_loss.item()))
        if progress is not None:
            progress(step, steps)
    log["seconds"] = time.perf_counter() - start
    log["params_g"] = sum(p.numel() for p in g.parameters())
    log["params_d"] = sum(p.numel() for p in d.parameters())
    return (g_ema if g_ema is not None else g).cpu().eval(), log


@torch.no_grad()
def sample_gan(g: nn.Module, n: int, seed: int, batch: int = 256) -> torch.Tensor:
    """n images, float [n, 3, 32, 32] in [0, 1]; deterministic given the seed."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the StyleGAN's noise inputs
    dev, was_training = next(g.parameters()).device, g.training
    g.eval()
    out = [
        g(torch.randn(min(batch, n - i), Z_DIM, generator=gen).to(dev)).cpu()
        for i in range(0, n, batch)
    ]
    g.train(was_training)
    return (torch.cat(out) + 1) / 2
