"""The two training loops of NTF, a plain loop each (in the spirit of torchvision's
references/classification and nanoGPT's train.py: the step in plain sight), with a checkpoint every
epoch and exact resume.

    stage1(cfg)   real images only: E + hom/het heads trained with L_tra (eq. 4)
    stage2(cfg)   E and the hom head frozen: auxiliary head + classifier trained with L_d (eq. 7)

Exact resume: every epoch re-seeds the RNGs from (seed, epoch, rank) and the sampler shuffles by
(seed, epoch), so epoch k depends only on the weights, optimizer and scheduler state saved after
epoch k - 1; a run stopped and resumed ends bit-identical to an uninterrupted one on the same device
and thread count (tested on CPU). For N processes (see dist.py):

    torchrun --nproc_per_node N -m ntf_core.cli stage1 ...

Everything here serves the two loops; checkpoints live in ``checkpoints``, scoring in ``evaluate``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from . import dist
from .augment import (
    TwoViews,
    eval_transform,
    random_crops,
    to_float,
    train_transform,
    view_transform,
)
from .checkpoints import (
    check_resume,
    fingerprint,
    load_checkpoint,
    load_trace_model,
    save_checkpoint,
    versions,
    weights_hash,
)
from .config import Config, stage1_path
from .data import Images, Sample, scan, training_samples
from .evaluate import score_samples
from .losses import detector_loss, trace_loss
from .metrics import detection_metrics
from .models import Detector, build_trace_model

# -- stage 1 ---------------------------------------------------------------------------------------


def stage1(cfg: Config, resume: bool = True) -> Path:
    """Train E + hom/het heads on the real training images with L_tra; returns the checkpoint
    path."""
    device, amp, channels_last = device_and_autocast(cfg)
    path = stage1_path(cfg)
    samples = training_samples(cfg, labels=(0,))
    data = fingerprint(samples, cfg.train_dir)
    dataset = Images(
        samples, TwoViews(view_transform(cfg.view_size, cfg.view_pad)), cache=cfg.cache_images
    )
    torch.manual_seed(cfg.seed)
    trace = build_trace_model(cfg).to(device)
    if channels_last:
        trace = trace.to(memory_format=torch.channels_last)
    opt, sched = make_optimizer(
        trace.parameters(), cfg, cfg.lr1, len(epoch_loader(dataset, cfg, 0)), cfg.epochs1
    )
    start, history, seconds = 0, [], 0.0
    if resume and path.exists():
        start, history, seconds = resume_from(path, "stage1", cfg, data, trace, opt, sched)
    # what the loop calls: the model, maybe compiled, wrapped for several processes under torchrun
    # (the checkpoints save ``trace`` itself)
    model = wrap_for_ranks(torch.compile(trace) if cfg.compile else trace, device)
    shown = (
        ("total", "hom", "het", "ort", "var") if cfg.hom_floor else ("total", "hom", "het", "ort")
    )
    for epoch in range(start, cfg.epochs1):
        t0 = time.perf_counter()
        seed_epoch(cfg, epoch)
        model.train()
        sums: dict[str, float] = {}
        loader = epoch_loader(dataset, cfg, epoch)
        batches = progress(loader, f"stage1 {epoch + 1}/{cfg.epochs1}")
        for step, ((v1, v2), _, index) in enumerate(batches):
            v1, v2 = to_float(v1, device, channels_last), to_float(v2, device, channels_last)
            # L_tra (eq. 4) and its terms, over the features of every rank
            terms = stage1_losses(model, v1, v2, index.to(device), cfg, amp)
            # reading the values waits for the GPU; a term that is not finite stops the run here,
            # before any weight changes
            values = {k: float(v.detach()) for k, v in terms.items()}
            if not all(math.isfinite(v) for v in values.values()):
                where = f"stage 1, epoch {epoch + 1}, step {step + 1}"
                raise FloatingPointError(not_finite(values, where))
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            sched.step()
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
        seconds += time.perf_counter() - t0
        history.append(epoch_row(epoch, sched, seconds, sums, len(loader)))
        log_epoch("stage1", epoch, cfg.epochs1, history[-1], shown)
        save_epoch(path, "stage1", cfg, trace, opt, sched, history, seconds, data)
    if cfg.epochs1 == 0:
        # the "no stage 1" control: the untouched encoder and freshly initialised heads
        save_epoch(path, "stage1", cfg, trace, opt, sched, history, seconds, data)
    return path


def stage1_losses(
    model: nn.Module, v1: torch.Tensor, v2: torch.Tensor, index: torch.Tensor, cfg: Config, amp=None
) -> dict[str, torch.Tensor]:
    """L_tra of one batch: both views through E and the heads, features of all ranks gathered, then
    eq. 4.

    Choice: the image index is the source id of eq. 2, so the two views of an image are never
    compared.
    """
    n = v1.shape[0]
    with amp or nullcontext():
        z_hom, z_het = model(torch.cat([v1, v2]))
    z_hom, z_het = z_hom.float(), z_het.float()
    # every rank's features (dist.gather: identity in one process); views ordered [view 1 of all,
    # view 2 of all]
    index = dist.gather(index)
    z_hom_all = torch.cat([dist.gather(z_hom[:n]), dist.gather(z_hom[n:])])
    return trace_loss(
        z_hom_all,
        dist.gather(z_het[:n]),
        dist.gather(z_het[n:]),
        torch.cat([index, index]),
        tau=cfg.tau,
        lam=cfg.lam,
        ort_mode=cfg.ort_mode,
        het_weight=cfg.het_weight,
        hom_floor=cfg.hom_floor,
    )


# -- stage 2 ---------------------------------------------------------------------------------------


def stage2(cfg: Config, resume: bool = True) -> Path:
    """Freeze the stage-1 encoder and hom head, train the auxiliary head + classifier with L_d."""
    device, amp, channels_last = device_and_autocast(cfg)
    path = Path(cfg.out) / "stage2.pt"
    trace, _, ckpt1 = load_trace_model(stage1_path(cfg), cfg)
    samples = training_samples(cfg, labels=(0, 1))
    data = fingerprint(samples, cfg.train_dir)
    val = scan(cfg.val_dir, layout="cnndetection") if cfg.val_dir and dist.rank() == 0 else None
    torch.manual_seed(cfg.seed)
    detector = Detector(trace, cfg.head_dim, cfg.reading, cfg.tau).to(device)
    if cfg.reading == "trace" and not (resume and path.exists()):
        # the natural trace t of the "trace" reading (a resumed run has it in its checkpoint)
        detector.natural_trace.copy_(natural_trace(detector, cfg, samples, device))
    if channels_last:
        detector = detector.to(memory_format=torch.channels_last)
    val_feats = None
    if cfg.cache_features:
        # E is frozen: its outputs are computed once, and an epoch trains the heads on them
        dataset = FrozenFeatures(detector, samples, cfg, device)
        if val is not None:
            val_feats = FrozenFeatures(detector, val, cfg, device, flips=False, crops=False)
    else:
        dataset = Images(samples, train_transform(cfg.image_size), cache=cfg.cache_images)
    params = [p for p in detector.parameters() if p.requires_grad]
    opt, sched = make_optimizer(
        params, cfg, cfg.lr2, len(epoch_loader(dataset, cfg, 0)), cfg.epochs2
    )
    start, history, seconds = 0, [], 0.0
    stage1_id = {
        "path": str(stage1_path(cfg)),
        "data": ckpt1["data"],
        "epoch": ckpt1["epoch"],
        "weights_sha256": weights_hash(trace),
    }
    if resume and path.exists():
        check = functools.partial(same_stage1, stage1_id=stage1_id, path=path)
        start, history, seconds = resume_from(
            path, "stage2", cfg, data, detector, opt, sched, check
        )
    # what the loop calls: stage 2's forward pass, maybe compiled, wrapped for several processes
    # under torchrun (the checkpoints save ``detector`` itself)
    forward = Stage2Forward(detector, features=cfg.cache_features)
    forward = wrap_for_ranks(torch.compile(forward) if cfg.compile else forward, device)
    for epoch in range(start, cfg.epochs2):
        t0 = time.perf_counter()
        seed_epoch(cfg, epoch)
        forward.train()
        sums: dict[str, float] = {}
        loader = epoch_loader(dataset, cfg, epoch)
        batches = progress(loader, f"stage2 {epoch + 1}/{cfg.epochs2}")
        for step, (x, labels, _) in enumerate(batches):
            # images, or with cache_features the frozen encoder's outputs e
            x = x.to(device) if cfg.cache_features else to_float(x, device, channels_last)
            # L_d (eq. 7) and its terms, over the global batch
            terms = stage2_losses(forward, x, labels.to(device), cfg, amp)
            # reading the values waits for the GPU; a term that is not finite stops the run here,
            # before any weight changes
            values = {k: float(v.detach()) for k, v in terms.items()}
            if not all(math.isfinite(v) for v in values.values()):
                where = f"stage 2, epoch {epoch + 1}, step {step + 1}"
                raise FloatingPointError(not_finite(values, where))
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            sched.step()
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
        seconds += time.perf_counter() - t0
        row = epoch_row(epoch, sched, seconds, sums, len(loader))
        if val is not None:
            row.update(validate(detector, cfg, val, val_feats, device))
        history.append(row)
        log_epoch("stage2", epoch, cfg.epochs2, row, ("total", "ext", "ce", "val_AP", "val_ACC"))
        save_epoch(
            path, "stage2", cfg, detector, opt, sched, history, seconds, data, stage1=stage1_id
        )
    return path


class Stage2Forward(nn.Module):
    """Stage 2's forward pass on one batch: the verdict's logits on the full input
    (``Detector.logit``), auxiliary features of the 32 px crops, and the frozen hom features of
    every image (eq. 5 keeps the real ones). A module so that DDP can wrap it. When the crop is the
    whole input (ntf-mini's 32 px images), one aux(e) serves both. ``features=True``: the batch is
    already the frozen e (``FrozenFeatures``), not images; with two scales (``x_crop`` the e of the
    32 px image, ``x`` of the enlarged one) the hom features are the crop's, the scale stage 1 was
    trained at."""

    def __init__(self, detector: Detector, features: bool = False):
        super().__init__()
        self.detector, self.features = detector, features

    def forward(self, x, x_crop):
        d = self.detector
        with torch.no_grad():
            e = x if self.features else d.encoder(x)
            e_crop = e if x_crop is x else x_crop if self.features else d.encoder(x_crop)
            z_hom = d.hom(e_crop if self.features else e)
        z_crop = d.aux(e_crop)
        z_full = z_crop if x_crop is x else None
        return d.logit(e, z_full), z_crop, z_hom


def stage2_losses(
    forward: nn.Module, x: torch.Tensor, labels: torch.Tensor, cfg: Config, amp=None
) -> dict[str, torch.Tensor]:
    """L_d of one batch (eq. 7). Choice: the z_hom that join the contrast set are those of the
    global batch's real images, from the frozen stage-1 encoder and hom head on the full input (the
    paper does not say which real images' hom features are used), or with ``cfg.two_scales`` on the
    32 px image, the scale stage 1 saw. A batch of two-scale cached features ([B, 2, D]: classifier
    e, auxiliary e) is split here."""
    if not cfg.cache_features:
        x_crop = random_crops(x, cfg.contrast_crop)
    elif cfg.two_scales:
        if x.dim() != 3:
            raise ValueError(
                f"two_scales: expected cached features [B, 2, D], got {tuple(x.shape)}"
            )
        x, x_crop = x[:, 0], x[:, 1]
    else:
        x_crop = x
    with amp or nullcontext():
        logits, z, z_hom = forward(x, x_crop)
    labels = dist.gather(labels)  # every rank's batch (identity in one process)
    z_hom_real = dist.gather(z_hom.float())[labels == 0]
    return detector_loss(
        dist.gather(z.float()),
        dist.gather(logits.float()),
        labels,
        z_hom_real,
        tau=cfg.tau,
        gamma=cfg.gamma,
        ext_weight=cfg.ext_weight,
    )


class FrozenFeatures(torch.utils.data.Dataset):
    """Stage 2's training set as frozen encoder outputs: e of every image and of its mirror image,
    computed once.

    Valid only where stage 2's inputs are whole images, maybe flipped, so that E, frozen and in eval
    mode, only ever sees 2 inputs per image. Two cases, both ntf-mini's 32 px images:

    * one scale: images of exactly ``image_size`` px and a ``contrast_crop`` at least that large
      (the crop is the whole image); one e per view serves the classifier and the auxiliary branch;
    * two scales (the paper's classifier on the large input, auxiliary branch on 32 px crops):
      images of exactly ``contrast_crop`` px and a larger ``image_size``: the classifier's e is of
      the image enlarged to ``image_size`` (``augment.eval_transform``, what scoring does), the
      auxiliary branch's e of the image itself. Items are then ``[2, D]``: (classifier e, auxiliary
      e); ``e_crop`` holds the second (``crops=False``, for scoring only: not computed, items are
      the classifier's e).

    Then an epoch costs the heads only (about 5 s instead of 60 on 2 CPU cores), with the same loss,
    optimiser and sampler; the random flip is drawn here (global RNG, re-seeded every epoch). Config
    ``cache_features`` (the mini preset's default); anything else gets an error that says why
    not."""

    def __init__(
        self,
        detector: Detector,
        samples: list[Sample],
        cfg: Config,
        device: str = "cpu",
        batch_size: int = 256,
        flips: bool = True,
        crops: bool = True,
    ):
        two_scale = cfg.image_size > cfg.contrast_crop
        native = cfg.contrast_crop if two_scale else cfg.image_size
        images = Images(samples, lambda x: x, cache=cfg.cache_images)
        enlarge = eval_transform(cfg.image_size)
        feats, crop_feats = [], []

        def e_of(u8):  # [B, views, D]: e of each image (and of its mirror)
            v = to_float(u8, device)
            return torch.stack(
                [detector.encoder(w) for w in ([v, v.flip(-1)] if flips else [v])], 1
            )

        with torch.no_grad():
            for x, _, _ in DataLoader(
                images, batch_size=batch_size, collate_fn=_same_size(cfg, samples, native)
            ):
                if two_scale and crops:
                    crop_feats.append(e_of(x).float().cpu())
                feats.append(e_of(enlarge(x) if two_scale else x).float().cpu())
        self.e = torch.cat(feats)
        self.e_crop = torch.cat(crop_feats) if two_scale and crops else None
        self.labels = [s.label for s in samples]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        flip = int(torch.rand(()) < 0.5)
        if self.e_crop is None:
            return self.e[i, flip], self.labels[i], i
        return torch.stack([self.e[i, flip], self.e_crop[i, flip]]), self.labels[i], i

    @torch.no_grad()
    def scores(self, detector: Detector, device: str = "cpu") -> torch.Tensor:
        """P(fake) of every image, unflipped (what ``score_samples`` gives, from the cached e)."""
        was_training = detector.training
        detector.eval()
        p = torch.sigmoid(detector.logit(self.e[:, 0].to(device)).float()).cpu()
        detector.train(was_training)
        return p


def _same_size(cfg: Config, samples: list[Sample], size: int):
    def collate(batch):
        for x, _, i in batch:
            if tuple(x.shape[-2:]) != (size, size):
                which = "contrast crop" if size < cfg.image_size else "classifier input"
                raise ValueError(
                    f"{samples[i].path}: {x.shape[-1]}x{x.shape[-2]} px, but cache_features needs "
                    f"every training and validation image at exactly {size} px (image_size "
                    f"{cfg.image_size}, contrast_crop {cfg.contrast_crop}: the images must be the "
                    f"{which}, or stage 2 would crop or resize them, which cannot be cached); "
                    "set cache_features=false"
                )
        return (
            torch.stack([b[0] for b in batch]),
            torch.tensor([b[1] for b in batch]),
            [b[2] for b in batch],
        )

    return collate


@torch.no_grad()
def natural_trace(
    detector: Detector,
    cfg: Config,
    samples: list[Sample],
    device: str = "cpu",
    batch_size: int = 256,
) -> torch.Tensor:
    """The natural trace t of the "trace" reading: the mean of the L2-normalised stage-1 hom
    features of the real training images (eval-mode input), L2-normalised. Choice: the paper does
    not say what "the natural traces" are at test time; their mean direction is the one point every
    real image was pulled towards (eq. 2)."""
    reals = [s for s in samples if s.label == 0]
    loader = DataLoader(
        Images(reals, eval_transform(cfg.hom_input_size), cache=cfg.cache_images),
        batch_size=batch_size,
    )
    total = torch.zeros(detector.natural_trace.shape[0], device=device)
    for x, _, _ in loader:
        total += F.normalize(
            detector.hom(detector.encoder(to_float(x, device))).float(), dim=1
        ).sum(0)
    return F.normalize(total, dim=0)


def same_stage1(ckpt: dict, stage1_id: dict, path) -> None:
    """Refuse to resume a stage-2 checkpoint trained on other stage-1 weights than this run's."""
    if ckpt.get("stage1", {}).get("weights_sha256") != stage1_id["weights_sha256"]:
        raise ValueError(
            f"{path}: was trained on other stage-1 weights than {stage1_id['path']}; "
            "pass --fresh to train stage 2 again, or another out= folder"
        )


# -- what both loops use ---------------------------------------------------------------------------


def make_optimizer(params, cfg: Config, lr: float, steps_per_epoch: int, epochs: int):
    """SGD (momentum 0.9, lr 0.1, weight decay 1e-3) with a per-step cosine schedule after a linear
    warm-up.

    Choice: the paper names SGD, lr and "attenuation" but no schedule; cosine annealing to 0 is the
    usual companion of SimCLR/SupCon training. Warm-up (0 epochs in the paper preset) steadies lr
    0.1 on small batches.
    """
    opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    total, warm = steps_per_epoch * epochs, steps_per_epoch * cfg.warmup_epochs

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(t, 1.0))).item())

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def epoch_loader(dataset, cfg: Config, epoch: int) -> DataLoader:
    """One epoch's batches of this rank: ``batch_size // ranks`` samples each, shuffled by (seed,
    epoch), the last partial batch dropped."""
    per_rank = cfg.batch_size // dist.world()
    if cfg.batch_size % dist.world():
        raise ValueError(
            f"batch_size {cfg.batch_size} is not divisible by the {dist.world()} processes"
        )
    if per_rank < 2 or per_rank * dist.world() > len(dataset):
        raise ValueError(
            f"batch_size {cfg.batch_size} does not fit {len(dataset)} training images "
            f"on {dist.world()} process(es)"
        )
    sampler = DistributedSampler(
        dataset,
        num_replicas=dist.world(),
        rank=dist.rank(),
        shuffle=True,
        seed=cfg.seed,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    return DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        drop_last=True,
        num_workers=cfg.workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def seed_epoch(cfg: Config, epoch: int) -> None:
    """Re-seed the global RNG from (seed, epoch, rank): what makes a resumed run exact."""
    torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1_009 + dist.rank())


def device_and_autocast(cfg: Config):
    """The device of this rank (the process group set up under torchrun), bf16 autocast on CUDA when
    ``cfg.amp`` (else a no-op context), and whether to use channels-last memory."""
    device = dist.setup(cfg.device)
    cuda = device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (cuda and cfg.amp) else nullcontext()
    return device, amp, cuda and cfg.channels_last


def wrap_for_ranks(model: nn.Module, device: str) -> nn.Module:
    """DistributedDataParallel around ``model`` under torchrun; the model itself in one process."""
    if not dist.is_dist():
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.startswith("cuda"):
        # BatchNorm statistics over the global batch on GPUs; on CPU (gloo) SyncBatchNorm is
        # unsupported by torch and each rank normalises with its own batch's statistics, as plain
        # DDP does.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DDP(model, device_ids=[torch.device(device).index])
    return DDP(model)


def not_finite(values: dict, where: str) -> str:
    """The error message of a loss term that is not finite (``where``: stage, epoch, step)."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    return (
        f"{where}: loss term(s) {', '.join(bad)} not finite ({values}); training stopped (the last "
        "checkpoint holds the previous epoch): lower the learning rate, or check the input images"
    )


def epoch_row(epoch: int, sched, seconds: float, sums: dict, n_steps: int) -> dict:
    """The history row of an epoch: its number, the learning rate, the seconds so far, and each loss
    term's mean over the epoch's steps and the ranks."""
    return {
        "epoch": epoch + 1,
        "lr": sched.get_last_lr()[0],
        "seconds": seconds,
        **{k: dist.mean_over_ranks(v / n_steps) for k, v in sums.items()},
    }


def resume_from(path, kind: str, cfg: Config, data: dict, model: nn.Module, opt, sched, check=None):
    """Load a resumable checkpoint of ``kind`` into model / optimizer / scheduler after checking
    that it fits (``check(ckpt)`` may refuse it further); returns (first epoch to run, history,
    seconds so far)."""
    ckpt = load_checkpoint(path, kind)
    check_resume(ckpt, cfg, data, path)
    if check is not None:
        check(ckpt)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    total = cfg.epochs1 if kind == "stage1" else cfg.epochs2
    log(f"[{kind}] resuming {path} after epoch {ckpt['epoch']}/{total}")
    return ckpt["epoch"], ckpt["history"], ckpt["seconds"]


def save_epoch(
    path,
    kind: str,
    cfg: Config,
    model: nn.Module,
    opt,
    sched,
    history: list,
    seconds: float,
    data: dict,
    **extra,
) -> None:
    """The checkpoint after an epoch (rank 0 only): everything an exact resume needs, and what the
    run saw."""
    if dist.rank() == 0:
        save_checkpoint(
            path,
            {
                "kind": kind,
                "config": cfg.to_dict(),
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": history[-1]["epoch"] if history else 0,
                "history": history,
                "seconds": seconds,
                "versions": versions(),
                "data": data,
                **extra,
            },
        )


def validate(detector: Detector, cfg: Config, val: list[Sample], val_feats, device: str) -> dict:
    """Validation AP, ROC-AUC and accuracy at 0.5 of the detector on ``val`` (from the cached e of
    ``val_feats`` when given, else by scoring the files)."""
    if val_feats is not None:
        scores = val_feats.scores(detector, device).numpy()
    else:
        scores = score_samples(detector, cfg, val, device=device)
    m = detection_metrics([s.label for s in val], scores)
    return {f"val_{k}": m[k] for k in ("AP", "AUC", "ACC")}


def log_epoch(stage: str, epoch: int, epochs: int, row: dict, terms) -> None:
    """One line per epoch: the mean of each of ``terms`` found in the history row, and the seconds
    so far."""
    shown = "  ".join(f"{k} {row[k]:.4f}" for k in terms if k in row)
    log(f"[{stage}] epoch {epoch + 1}/{epochs}  {shown}  ({row['seconds']:.0f} s)")


def log(msg: str) -> None:
    """Print on rank 0 only."""
    if dist.rank() == 0:
        print(msg, flush=True)


def progress(loader, desc: str):
    """A tqdm bar over an epoch's batches on rank 0 in a terminal (or with NTF_PROGRESS=1)."""
    from tqdm.auto import tqdm

    return tqdm(
        loader,
        desc=desc,
        total=len(loader),
        disable=dist.rank() != 0
        or (not sys.stderr.isatty() and os.environ.get("NTF_PROGRESS") != "1"),
        leave=False,
    )
