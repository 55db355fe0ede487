"""The two training loops of NTF, a plain loop each (in the spirit of torchvision's references/classification),
with checkpoints every epoch and exact resume.

    stage1(cfg)   real images only: E + hom/het heads trained with L_tra (eq. 4)
    stage2(cfg)   E and the hom head frozen: auxiliary head + classifier trained with L_d (eq. 7)

Exact resume: every epoch re-seeds the RNGs from (seed, epoch, rank) and the sampler shuffles by (seed, epoch),
so epoch k depends only on the weights, optimizer and scheduler state saved after epoch k - 1; a run stopped
and resumed ends bit-identical to an uninterrupted one on the same device and thread count (tested on CPU).
Launch with ``torchrun --nproc_per_node N -m ntf_core.cli stage1 ...`` for N processes (see dist.py).
"""
from __future__ import annotations

import hashlib
import math
import os
import platform
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
from .config import Config, from_dict, stage1_path
from .data import Images, Sample, scan, skipping_collate, stratified_subset
from .losses import detector_loss, trace_loss
from .models import Detector, TraceModel, make_encoder

# config fields that may differ between a checkpoint and its resumed run (they do not change the numbers;
# ``device`` does, through kernels and bf16 autocast, so exactness holds on one device type and thread count)
RUN_ONLY = {"device", "out", "stage1_checkpoint", "cache_images", "val_dir", "compile"}
# fields stage 1 never reads: a stage-1 checkpoint resumes whatever they are
STAGE2_ONLY = {"reading", "ext_weight", "cache_features", "gamma", "lr2", "epochs2", "contrast_crop", "image_size"}


# -- checkpoints -----------------------------------------------------------------------------------------------

def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import torchvision
    try:
        ntf = version("ntf_core")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        ntf = "source"
    return {"ntf_core": ntf, "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "python": platform.python_version()}


def fingerprint(samples: list[Sample], root) -> dict:
    """Which images a run saw: count and a SHA-256 of (relative path, label, size in bytes) of each file."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{Path(s.path).relative_to(root).as_posix()}\t{s.label}\t{os.path.getsize(s.path)}\n".encode())
    return {"dir": str(root), "n": len(samples), "sha256": h.hexdigest()}


def weights_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state (names and float32 values): which stage-1 weights a stage-2 run stands on."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes() if v.is_floating_point()
                 else v.cpu().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path, obj: dict) -> None:
    """Write atomically: a temporary file in the same folder, then a rename (never a half-written checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, kind: str | None = None) -> dict:
    """A checkpoint written by this module, loaded with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        lines = str(err).splitlines() or [""]
        why = next((ln.strip() for ln in lines if "Unsupported global" in ln), lines[0])
        raise ValueError(f"{path}: not a readable NTF checkpoint ({type(err).__name__}: {why[:300]})") from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt:
        raise ValueError(f"{path}: not an NTF checkpoint (no 'kind' entry)")
    if kind is not None and ckpt["kind"] != kind:
        raise ValueError(f"{path}: is a {ckpt['kind']} checkpoint, expected {kind}")
    return ckpt


def export_checkpoint(src, dst, half: bool = True) -> Path:
    """A small copy of a checkpoint for inference and for stage 2: no optimizer or scheduler state, and float
    weights stored as float16 when ``half`` (they are cast back to float32 on loading). It cannot be resumed."""
    ckpt = load_checkpoint(src)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler")}
    if half:
        slim["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    slim["exported"] = {"from": str(src), "dtype": "float16" if half else "float32"}
    save_checkpoint(dst, slim)
    return Path(dst)


# -- data ------------------------------------------------------------------------------------------------------

def training_samples(cfg: Config, labels=(0, 1)) -> list[Sample]:
    """The training images of ``cfg.train_dir`` with the given labels (``max_images`` of each, drawn across
    source photographs by ``data.stratified_subset`` with seed 0, so every seed trains on the same images)."""
    samples = scan(cfg.train_dir, layout="cnndetection")
    out = []
    for lab in labels:
        chosen = [s for s in samples if s.label == lab]
        if not chosen:
            raise ValueError(f"{cfg.train_dir}: no {'real (0_real)' if lab == 0 else 'fake (1_fake)'} images")
        out += stratified_subset(chosen, cfg.max_images or None)
    return out


def _loader(dataset, cfg: Config, epoch: int) -> DataLoader:
    per_rank = cfg.batch_size // dist.world()
    if cfg.batch_size % dist.world():
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {dist.world()} processes")
    if per_rank < 2 or per_rank * dist.world() > len(dataset):
        raise ValueError(f"batch_size {cfg.batch_size} does not fit {len(dataset)} training images "
                         f"on {dist.world()} process(es)")
    sampler = DistributedSampler(dataset, num_replicas=dist.world(), rank=dist.rank(), shuffle=True,
                                 seed=cfg.seed, drop_last=True)
    sampler.set_epoch(epoch)
    return DataLoader(dataset, batch_size=per_rank, sampler=sampler, drop_last=True, num_workers=cfg.workers,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


def _seed_epoch(cfg: Config, epoch: int) -> None:
    torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1_009 + dist.rank())


# -- models and optimisation -----------------------------------------------------------------------------------

def build_trace_model(cfg: Config, pretrained: bool = True) -> TraceModel:
    weights = cfg.encoder_weights if pretrained else ""
    return TraceModel(make_encoder(cfg.encoder, weights or None, cfg.width), cfg.head_dim, cfg.head_hidden or None)


def build_detector(cfg: Config) -> Detector:
    """An empty detector of ``cfg``'s shape, to load a stage-2 state dict into (no weights are fetched)."""
    return Detector(build_trace_model(cfg, pretrained=False), cfg.head_dim, cfg.reading, cfg.tau)


def make_optimizer(params, cfg: Config, lr: float, steps_per_epoch: int, epochs: int):
    """SGD (momentum 0.9, lr 0.1, weight decay 1e-3) with a per-step cosine schedule after a linear warm-up.

    Choice: the paper names SGD, lr and "attenuation" but no schedule; cosine annealing to 0 is the usual
    companion of SimCLR/SupCon training. Warm-up (0 epochs in the paper preset) steadies lr 0.1 on small batches.
    """
    opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    total, warm = steps_per_epoch * epochs, steps_per_epoch * cfg.warmup_epochs

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(t, 1.0))).item())
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _device_setup(cfg: Config):
    device = dist.setup(cfg.device)
    cuda = device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (cuda and cfg.amp) else nullcontext()
    return device, cuda, amp


def _wrap(model: nn.Module, device: str) -> nn.Module:
    if not dist.is_dist():
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    if device.startswith("cuda"):
        # BatchNorm statistics over the global batch on GPUs; on CPU (gloo) SyncBatchNorm is unsupported by
        # torch and each rank normalises with its own batch's statistics, as plain DDP does.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DDP(model, device_ids=[torch.device(device).index])
    return DDP(model)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _check_resume(ckpt: dict, cfg: Config, data: dict, path) -> None:
    # fields added to Config since the checkpoint was written read as their defaults (from_dict)
    skip = RUN_ONLY | (STAGE2_ONLY if ckpt["kind"] == "stage1" else set())
    old = {k: v for k, v in from_dict(ckpt["config"]).to_dict().items() if k not in skip}
    new = {k: v for k, v in cfg.to_dict().items() if k not in skip}
    diff = {k: (old.get(k), new.get(k)) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    if diff:
        raise ValueError(f"{path}: the checkpoint was made with another config {diff} (checkpoint, now); "
                         "pass --fresh to start over, or another out= folder")
    if "optimizer" not in ckpt:
        raise ValueError(f"{path}: an exported checkpoint (no optimizer state) cannot be resumed; "
                         "pass --fresh to start over, or another out= folder")
    if ckpt["data"]["sha256"] != data["sha256"]:
        raise ValueError(f"{path}: the training images changed since this checkpoint ({ckpt['data']['n']} then, "
                         f"{data['n']} now); pass --fresh to start over")


def _log(msg: str) -> None:
    if dist.rank() == 0:
        print(msg, flush=True)


def _progress(iterable, desc: str, total: int):
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, total=total, disable=dist.rank() != 0 or not sys.stderr.isatty()
                and os.environ.get("NTF_PROGRESS") != "1", leave=False)


def _resume(path, kind: str, cfg: Config, data: dict, model: nn.Module, opt, sched, check=None):
    """Load a resumable checkpoint of ``kind`` into model / optimizer / scheduler after checking that it fits
    (``check(ckpt)`` may refuse it further); returns (first epoch to run, history, seconds so far)."""
    ckpt = load_checkpoint(path, kind)
    _check_resume(ckpt, cfg, data, path)
    if check is not None:
        check(ckpt)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    total = cfg.epochs1 if kind == "stage1" else cfg.epochs2
    _log(f"[{kind}] resuming {path} after epoch {ckpt['epoch']}/{total}")
    return ckpt["epoch"], ckpt["history"], ckpt["seconds"]


def _optimise(terms: dict, opt, sched, sums: dict, where: str = "") -> None:
    """One SGD step on ``terms["total"]``; adds every term to the epoch's running sums. A loss that is not finite
    stops training with an error naming ``where`` (stage, epoch, step) and the term(s), before any weight changes."""
    values = {k: float(v.detach()) for k, v in terms.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f"{where}: loss term(s) {', '.join(bad)} not finite ({values}); training stopped "
                                 "(the last checkpoint holds the previous epoch): lower the learning rate, or "
                                 "check the input images")
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()
    sched.step()
    for k, v in values.items():
        sums[k] = sums.get(k, 0.0) + v


def _epoch_row(epoch: int, sched, seconds: float, sums: dict, n_steps: int) -> dict:
    return {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "seconds": seconds,
            **{k: dist.mean_over_ranks(v / n_steps) for k, v in sums.items()}}


def _save(path, kind: str, cfg: Config, model: nn.Module, opt, sched, history: list, seconds: float, data: dict,
          **extra) -> None:
    """The checkpoint after an epoch (rank 0 only): everything an exact resume needs, and what the run saw."""
    if dist.rank() == 0:
        save_checkpoint(path, {"kind": kind, "config": cfg.to_dict(), "model": model.state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "epoch": history[-1]["epoch"] if history else 0, "history": history,
                               "seconds": seconds,
                               "versions": versions(), "data": data, **extra})


# -- the two steps (what one batch does; also what the DDP test compares) ---------------------------------------

def stage1_losses(model: nn.Module, v1: torch.Tensor, v2: torch.Tensor, index: torch.Tensor, cfg: Config,
                  amp=None) -> dict[str, torch.Tensor]:
    """L_tra of one batch: both views through E and the heads, features of all ranks gathered, then eq. 4.

    Choice: the image index is the source id of eq. 2, so the two views of an image are never compared.
    """
    n = v1.shape[0]
    with amp or nullcontext():
        z_hom, z_het = model(torch.cat([v1, v2]))
    z_hom, z_het = z_hom.float(), z_het.float()
    g = dist.gather
    source = torch.cat([g(index), g(index)])
    return trace_loss(torch.cat([g(z_hom[:n]), g(z_hom[n:])]), g(z_het[:n]), g(z_het[n:]), source,
                      tau=cfg.tau, lam=cfg.lam, ort_mode=cfg.ort_mode, het_weight=cfg.het_weight,
                      hom_floor=cfg.hom_floor)


class Stage2Step(nn.Module):
    """One stage-2 forward: the verdict's logits on the full input (``Detector.logit``), auxiliary features of
    the 32 px crops, and the frozen hom features of every image (eq. 5 keeps the real ones). A module so that
    DDP can wrap it. When the crop is the whole input (ntf-mini's 32 px images), one aux(e) serves both.
    ``features=True``: the batch is already the frozen e (``FrozenFeatures``), not images; with two scales
    (``x_crop`` the e of the 32 px image, ``x`` of the enlarged one) the hom features are the crop's, the scale
    stage 1 was trained at."""

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


def stage2_losses(step: nn.Module, x: torch.Tensor, labels: torch.Tensor, cfg: Config,
                  amp=None) -> dict[str, torch.Tensor]:
    """L_d of one batch (eq. 7). Choice: the z_hom that join the contrast set are those of the global batch's
    real images, from the frozen stage-1 encoder and hom head on the full input (the paper does not say which
    real images' hom features are used), or with ``cfg.two_scales`` on the 32 px image, the scale stage 1 saw.
    A batch of two-scale cached features ([B, 2, D]: classifier e, auxiliary e) is split here."""
    if not cfg.cache_features:
        x_crop = random_crops(x, cfg.contrast_crop)
    elif cfg.two_scales:
        if x.dim() != 3:
            raise ValueError(f"two_scales: expected cached features [B, 2, D], got {tuple(x.shape)}")
        x, x_crop = x[:, 0], x[:, 1]
    else:
        x_crop = x
    with amp or nullcontext():
        logits, z, z_hom = step(x, x_crop)
    g = dist.gather
    all_labels = g(labels)
    z_hom_real = g(z_hom.float())[all_labels == 0]
    return detector_loss(g(z.float()), g(logits.float()), all_labels, z_hom_real, tau=cfg.tau, gamma=cfg.gamma,
                         ext_weight=cfg.ext_weight)


@torch.no_grad()
def score_samples(detector: Detector, cfg: Config, samples: list[Sample], device: str = "cpu",
                  batch_size: int = 256, workers: int = 0, skipped: dict | None = None):
    """Probability of "fake" for each sample (sigmoid of the classifier's logit, eval-mode input of ``cfg``).

    A file that cannot be read raises ``BadImageError`` naming it; with a ``skipped`` dict, it is recorded there
    instead (``{path: problem}``) and its score is NaN."""
    was_training = detector.training
    detector.eval()
    scores = torch.full((len(samples),), float("nan"))
    dataset = Images(samples, eval_transform(cfg.image_size), skip_bad=skipped is not None)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                        collate_fn=skipping_collate if skipped is not None else None)
    for batch in loader:
        if skipped is not None:
            x, _, index, bad = batch
            skipped.update({str(samples[i].path): problem for i, problem in bad.items()})
        else:
            x, _, index = batch
        if x is not None:
            scores[index] = torch.sigmoid(detector(to_float(x, device)).float()).cpu()
    detector.train(was_training)
    return scores.numpy()


# -- stage 1 ---------------------------------------------------------------------------------------------------

def stage1(cfg: Config, resume: bool = True) -> Path:
    """Train E + hom/het heads on the real training images with L_tra; returns the checkpoint path."""
    device, cuda, amp = _device_setup(cfg)
    path = stage1_path(cfg)
    samples = training_samples(cfg, labels=(0,))
    data = fingerprint(samples, cfg.train_dir)
    dataset = Images(samples, TwoViews(view_transform(cfg.view_size, cfg.view_pad)), cache=cfg.cache_images)
    torch.manual_seed(cfg.seed)
    model = build_trace_model(cfg).to(device)
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps = len(_loader(dataset, cfg, 0))
    opt, sched = make_optimizer(model.parameters(), cfg, cfg.lr1, steps, cfg.epochs1)
    start, history, seconds = 0, [], 0.0
    if resume and path.exists():
        start, history, seconds = _resume(path, "stage1", cfg, data, model, opt, sched)
    ddp = _wrap(torch.compile(model) if cfg.compile else model, device)
    for epoch in range(start, cfg.epochs1):
        t0 = time.perf_counter()
        _seed_epoch(cfg, epoch)
        ddp.train()
        sums: dict[str, float] = {}
        loader = _loader(dataset, cfg, epoch)
        batches = _progress(loader, f"stage1 {epoch + 1}/{cfg.epochs1}", len(loader))
        for i, ((v1, v2), _, index) in enumerate(batches):
            v1 = to_float(v1, device, cuda and cfg.channels_last)
            v2 = to_float(v2, device, cuda and cfg.channels_last)
            _optimise(stage1_losses(ddp, v1, v2, index.to(device), cfg, amp), opt, sched, sums,
                      f"stage 1, epoch {epoch + 1}, step {i + 1}")
        seconds += time.perf_counter() - t0
        row = _epoch_row(epoch, sched, seconds, sums, len(loader))
        history.append(row)
        _log(f"[stage1] epoch {epoch + 1}/{cfg.epochs1}  " + "  ".join(
            f"{k} {row[k]:.4f}" for k in ("total", "hom", "het", "ort", "var")[:5 if cfg.hom_floor else 4])
            + f"  ({seconds:.0f} s)")
        _save(path, "stage1", cfg, _unwrap(model), opt, sched, history, seconds, data)
    if cfg.epochs1 == 0:  # the "no stage 1" control: the untouched encoder and freshly initialised heads
        _save(path, "stage1", cfg, _unwrap(model), opt, sched, history, seconds, data)
    return path


# -- stage 2 ---------------------------------------------------------------------------------------------------

def load_trace_model(path, cfg: Config | None = None) -> tuple[TraceModel, Config, dict]:
    """The stage-1 model of a checkpoint (and its config); ``cfg`` must agree on the encoder's shape."""
    ckpt = load_checkpoint(path, "stage1")
    c1 = from_dict(ckpt["config"])
    if cfg is not None:
        for k in ("encoder", "width", "head_dim", "head_hidden"):
            if getattr(cfg, k) != getattr(c1, k):
                raise ValueError(f"{path}: stage 1 used {k}={getattr(c1, k)!r}, this config has "
                                 f"{getattr(cfg, k)!r}")
    model = build_trace_model(c1, pretrained=False)
    model.load_state_dict(ckpt["model"])
    return model, c1, ckpt


class FrozenFeatures(torch.utils.data.Dataset):
    """Stage 2's training set as frozen encoder outputs: e of every image and of its mirror image, computed once.

    Valid only where stage 2's inputs are whole images, maybe flipped, so that E, frozen and in eval mode, only
    ever sees 2 inputs per image. Two cases, both ntf-mini's 32 px images:

    * one scale: images of exactly ``image_size`` px and a ``contrast_crop`` at least that large (the crop is the
      whole image); one e per view serves the classifier and the auxiliary branch;
    * two scales (the paper's classifier on the large input, auxiliary branch on 32 px crops): images of exactly
      ``contrast_crop`` px and a larger ``image_size``: the classifier's e is of the image enlarged to
      ``image_size`` (``augment.eval_transform``, what scoring does), the auxiliary branch's e of the image itself.
      Items are then ``[2, D]``: (classifier e, auxiliary e); ``e_crop`` holds the second (``crops=False``, for
      scoring only: not computed, items are the classifier's e).

    Then an epoch costs the heads only (about 5 s instead of 60 on 2 CPU cores), with the same loss, optimiser
    and sampler; the random flip is drawn here (global RNG, re-seeded every epoch). Config ``cache_features``
    (the mini preset's default); anything else gets an error that says why not."""

    def __init__(self, detector: Detector, samples: list[Sample], cfg: Config, device: str = "cpu",
                 batch_size: int = 256, flips: bool = True, crops: bool = True):
        two_scale = cfg.image_size > cfg.contrast_crop
        native = cfg.contrast_crop if two_scale else cfg.image_size
        images = Images(samples, lambda x: x, cache=cfg.cache_images)
        enlarge = eval_transform(cfg.image_size)
        feats, crop_feats = [], []

        def e_of(u8):  # [B, views, D]: e of each image (and of its mirror)
            v = to_float(u8, device)
            return torch.stack([detector.encoder(w) for w in ([v, v.flip(-1)] if flips else [v])], 1)
        with torch.no_grad():
            for x, _, _ in DataLoader(images, batch_size=batch_size, collate_fn=_same_size(cfg, samples, native)):
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
                raise ValueError(
                    f"{samples[i].path}: {x.shape[-1]}x{x.shape[-2]} px, but cache_features needs every training "
                    f"and validation image at exactly {size} px (image_size {cfg.image_size}, contrast_crop "
                    f"{cfg.contrast_crop}: the images must be the {'contrast crop' if size < cfg.image_size else 'classifier input'}"
                    ", or stage 2 would crop or resize them, which cannot be cached); set cache_features=false")
        return torch.stack([b[0] for b in batch]), torch.tensor([b[1] for b in batch]), [b[2] for b in batch]
    return collate


@torch.no_grad()
def natural_trace(detector: Detector, cfg: Config, samples: list[Sample], device: str = "cpu",
                  batch_size: int = 256) -> torch.Tensor:
    """The natural trace t of the "trace" reading: the mean of the L2-normalised stage-1 hom features of the real
    training images (eval-mode input), L2-normalised. Choice: the paper does not say what "the natural traces"
    are at test time; their mean direction is the one point every real image was pulled towards (eq. 2)."""
    reals = [s for s in samples if s.label == 0]
    loader = DataLoader(Images(reals, eval_transform(cfg.hom_input_size), cache=cfg.cache_images),
                        batch_size=batch_size)
    total = torch.zeros(detector.natural_trace.shape[0], device=device)
    for x, _, _ in loader:
        total += F.normalize(detector.hom(detector.encoder(to_float(x, device))).float(), dim=1).sum(0)
    return F.normalize(total, dim=0)


def stage2(cfg: Config, resume: bool = True) -> Path:
    """Freeze the stage-1 encoder and hom head, train the auxiliary head + classifier with L_d."""
    from .metrics import detection_metrics
    device, cuda, amp = _device_setup(cfg)
    path = Path(cfg.out) / "stage2.pt"
    trace, _, ckpt1 = load_trace_model(stage1_path(cfg), cfg)
    samples = training_samples(cfg, labels=(0, 1))
    data = fingerprint(samples, cfg.train_dir)
    val = scan(cfg.val_dir, layout="cnndetection") if cfg.val_dir and dist.rank() == 0 else None
    torch.manual_seed(cfg.seed)
    detector = Detector(trace, cfg.head_dim, cfg.reading, cfg.tau).to(device)
    if cfg.reading == "trace" and not (resume and path.exists()):  # a resumed run has it in its checkpoint
        detector.natural_trace.copy_(natural_trace(detector, cfg, samples, device))
    if cuda and cfg.channels_last:
        detector = detector.to(memory_format=torch.channels_last)
    if cfg.cache_features:
        dataset = FrozenFeatures(detector, samples, cfg, device)
        val_feats = None if val is None else FrozenFeatures(detector, val, cfg, device, flips=False, crops=False)
    else:
        dataset = Images(samples, train_transform(cfg.image_size), cache=cfg.cache_images)
    params = [p for p in detector.parameters() if p.requires_grad]
    steps = len(_loader(dataset, cfg, 0))
    opt, sched = make_optimizer(params, cfg, cfg.lr2, steps, cfg.epochs2)
    start, history, seconds = 0, [], 0.0
    stage1_id = {"path": str(stage1_path(cfg)), "data": ckpt1["data"], "epoch": ckpt1["epoch"],
                 "weights_sha256": weights_hash(trace)}

    def same_stage1(ckpt):
        if ckpt.get("stage1", {}).get("weights_sha256") != stage1_id["weights_sha256"]:
            raise ValueError(f"{path}: was trained on other stage-1 weights than {stage1_id['path']}; "
                             "pass --fresh to train stage 2 again, or another out= folder")
    if resume and path.exists():
        start, history, seconds = _resume(path, "stage2", cfg, data, detector, opt, sched, check=same_stage1)
    step = Stage2Step(detector, features=cfg.cache_features)
    step = _wrap(torch.compile(step) if cfg.compile else step, device)
    for epoch in range(start, cfg.epochs2):
        t0 = time.perf_counter()
        _seed_epoch(cfg, epoch)
        step.train()
        sums: dict[str, float] = {}
        loader = _loader(dataset, cfg, epoch)
        batches = _progress(loader, f"stage2 {epoch + 1}/{cfg.epochs2}", len(loader))
        for i, (x, labels, _) in enumerate(batches):
            x = x.to(device) if cfg.cache_features else to_float(x, device, cuda and cfg.channels_last)
            _optimise(stage2_losses(step, x, labels.to(device), cfg, amp), opt, sched, sums,
                      f"stage 2, epoch {epoch + 1}, step {i + 1}")
        seconds += time.perf_counter() - t0
        row = _epoch_row(epoch, sched, seconds, sums, len(loader))
        if val is not None:
            scores = (val_feats.scores(detector, device).numpy() if cfg.cache_features
                      else score_samples(detector, cfg, val, device=device))
            m = detection_metrics([s.label for s in val], scores)
            row.update({f"val_{k}": m[k] for k in ("AP", "AUC", "ACC")})
        history.append(row)
        _log(f"[stage2] epoch {epoch + 1}/{cfg.epochs2}  " + "  ".join(
            f"{k} {row[k]:.4f}" for k in ("total", "ext", "ce", "val_AP", "val_ACC") if k in row)
            + f"  ({seconds:.0f} s)")
        _save(path, "stage2", cfg, detector, opt, sched, history, seconds, data, stage1=stage1_id)
    return path
