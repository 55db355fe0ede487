"""ntf-mini's diffusion family: a small latent diffusion model sampled with diffusers' schedulers.

Pixel-space diffusion trains at ~35 img/s on the 2-core development CPU, too slow for a recipe that
must rebuild in under two hours; a denoiser on an 8x8 latent is ~16x cheaper. So, as in LDM
(Rombach et al. 2022):

1. an autoencoder compresses 32x32x3 images to 8x8xC latents (``AutoEncoder``, L1
   reconstruction);
2. a diffusers ``UNet2DModel`` learns to predict the noise on scaled latents (DDPM training, eq. 14
   of Ho 2020);
3. the same denoiser is sampled with three schedulers, which leave different traces: ``ddpm`` (1000
   ancestral steps), ``ddim`` (50 deterministic steps, eta = 0) and ``pndm`` (50 pseudo-numerical
   steps).

``sdedit`` (Meng et al. 2022) partially noises the latent of an existing image and denoises it
again; the multi-step family uses it to push GAN images through the diffusion model.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, PNDMScheduler, UNet2DModel

SCHEDULERS = {
    "ddpm": (DDPMScheduler, 1000),
    "ddim": (DDIMScheduler, 50),
    "pndm": (PNDMScheduler, 50),
}


class AutoEncoder(nn.Module):
    def __init__(self, latent_channels: int = 8, width: int = 64):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1),
            nn.SiLU(),
            nn.Conv2d(w, w, 4, 2, 1),
            nn.SiLU(),  # 16
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.SiLU(),  # 8
            nn.Conv2d(2 * w, latent_channels, 3, 1, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * w, 3, 1, 1),
            nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * w, w, 3, 1, 1),
            nn.SiLU(),  # 16
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(w, w, 3, 1, 1),
            nn.SiLU(),  # 32
            nn.Conv2d(w, 3, 3, 1, 1),
        )
        # 1 / std of the latents, set after training (LDM)
        self.register_buffer("scale", torch.ones(()))

    def encode(self, x01):
        return self.encoder(x01 * 2 - 1) * self.scale

    def decode(self, z):
        return ((self.decoder(z / self.scale) + 1) / 2).clamp(0, 1)


def _batches(data, steps, batch, seed, device):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = data[torch.randint(len(data), (batch,), generator=gen)]
        x = torch.where(torch.rand(batch, 1, 1, 1, generator=gen) < 0.5, x.flip(-1), x)
        yield x.to(device)


def train_autoencoder(reals, steps, batch=64, lr=1e-3, seed=0, device="cpu", progress=None):
    torch.manual_seed(seed)
    ae = AutoEncoder().to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    start, losses = time.perf_counter(), []
    for step, x in enumerate(_batches(reals, steps, batch, seed, device)):
        loss = F.l1_loss(ae.decode(ae.encode(x)), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append((step, loss.item()))
        if progress:
            progress(step, steps)
    with torch.no_grad():
        ae.scale.fill_(1.0 / ae.encoder(reals[:1024].to(device) * 2 - 1).std())
    return ae.cpu().eval(), {
        "l1": losses,
        "seconds": time.perf_counter() - start,
        "params": sum(p.numel() for p in ae.parameters()),
    }


def make_unet(latent_channels: int = 8) -> UNet2DModel:
    return UNet2DModel(
        sample_size=8,
        in_channels=latent_channels,
        out_channels=latent_channels,
        layers_per_block=1,
        block_out_channels=(64, 128),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
    )


def make_scheduler(name: str):
    """The training noise schedule (cosine, 1000 steps) under the named sampler.

    Clipping of the predicted x0, measured on 300 samples (KID x 100 to the real test crops, lower
    is better): DDIM and PNDM run unclipped, as diffusers' latent pipelines do (DDIM: 12 unclipped,
    17 clipped to +-3, 19 clipped to +-1). DDPM's ancestral sampler keeps diffusers' default
    clipping, widened to +-3 for unit-variance latents: unclipped, its first steps under the cosine
    schedule (beta ~ 0.999) blow up (KID 28), and +-1 distorts the latents (11) where +-3 does not
    (9). PNDM runs without its Runge-Kutta warm-up (``skip_prk_steps=True``, PLMS only, as Stable
    Diffusion runs it).
    """
    clip = (
        {"clip_sample": True, "clip_sample_range": 3.0}
        if name == "ddpm"
        else {"clip_sample": False}
    )
    base = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", **clip)
    cls, _ = SCHEDULERS[name]
    extra = {"skip_prk_steps": True} if name == "pndm" else {}
    return cls.from_config(base.config, **extra)


def train_denoiser(ae, reals, steps, batch=128, lr=2e-4, seed=0, device="cpu", progress=None):
    torch.manual_seed(seed)
    ae = ae.to(device)
    unet, sched = make_unet(ae.encoder[-1].out_channels).to(device), make_scheduler("ddpm")
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    lr_at = lambda s: min(1.0, (s + 1) / 200)  # short warm-up
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(seed + 1)
    start, losses = time.perf_counter(), []
    for step, x in enumerate(_batches(reals, steps, batch, seed, device)):
        with torch.no_grad():
            z0 = ae.encode(x)
        noise = torch.randn(z0.shape, generator=gen).to(device)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(z0),), generator=gen).to(device)
        loss = F.mse_loss(unet(sched.add_noise(z0, noise, t), t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sch.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append((step, loss.item()))
        if progress:
            progress(step, steps)
    ae.cpu()
    return unet.cpu().eval(), {
        "mse": losses,
        "seconds": time.perf_counter() - start,
        "params": sum(p.numel() for p in unet.parameters()),
    }


@torch.no_grad()
def _denoise(unet, sched, z, timesteps, gen):
    for t in timesteps:
        eps = unet(z, t).sample
        kwargs = {"generator": gen} if isinstance(sched, DDPMScheduler) else {}
        z = sched.step(eps, t, z, **kwargs).prev_sample
    return z


@torch.no_grad()
def sample(
    ae, unet, scheduler: str, n: int, seed: int, batch: int = 400, steps: int | None = None
) -> torch.Tensor:
    """n images from pure noise with the named scheduler (``steps`` default: its own); float
    [n, 3, 32, 32].

    Each batch starts from a fresh scheduler: PNDM keeps its multistep history (the last model
    outputs) inside the scheduler, so a reused one would carry the end of one batch's trajectory
    into the start of the next (and mis-size a smaller last batch)."""
    gen, out = torch.Generator().manual_seed(seed), []
    c = unet.config.in_channels
    for i in range(0, n, batch):
        sched = make_scheduler(scheduler)
        sched.set_timesteps(steps or SCHEDULERS[scheduler][1])
        z = torch.randn(min(batch, n - i), c, 8, 8, generator=gen) * sched.init_noise_sigma
        out.append(ae.decode(_denoise(unet, sched, z, sched.timesteps, gen)))
    return torch.cat(out)


@torch.no_grad()
def sdedit(
    ae, unet, images: torch.Tensor, strength: float, seed: int, steps: int = 50
) -> torch.Tensor:
    """Noise the latents of ``images`` to ``strength`` x T and denoise them again with DDIM
    (SDEdit)."""
    sched = make_scheduler("ddim")
    sched.set_timesteps(steps)
    timesteps = sched.timesteps[sched.timesteps <= int(strength * sched.config.num_train_timesteps)]
    gen = torch.Generator().manual_seed(seed)
    z0 = ae.encode(images)
    z = sched.add_noise(z0, torch.randn(z0.shape, generator=gen), timesteps[:1].repeat(len(z0)))
    return ae.decode(_denoise(unet, sched, z, timesteps, gen))
