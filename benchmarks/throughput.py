"""Training throughput of both stages: images per second of the real training step
(``train.stage1_losses`` / ``train.stage2_losses`` and one SGD step), for the mini and paper
presets, fed either with synthetic tensors already on the device or through the real loading path
(files -> decode -> augment -> DataLoader -> device).

    python benchmarks/throughput.py                    # CPU (or CUDA when present), both presets
    python benchmarks/throughput.py --short            # a few steps each: the CI smoke run
    python benchmarks/throughput.py --device cuda --batch-paper 256 --steps 30

Prints one table and appends one JSON line (device name, date, versions, rows) to
benchmarks/results.jsonl. Stage 1 counts both views: views/s = 2 x images/s. Weights are random
(speed does not depend on them, and no download is needed). The paper preset's loading path reads
256 px JPEGs written to a temporary folder (LSUN-like), the mini preset's reads ntf-mini's 32 px
PNGs with its preset's in-memory cache filled first (as in epochs 2+).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from ntf_core import data, models, train
from ntf_core.augment import TwoViews, to_float, train_transform, view_transform
from ntf_core.config import make_config
from ntf_core.data import Images
from ntf_core.models import Detector

RESULTS = Path(__file__).with_name("results.jsonl")


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    try:
        model = next(
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {torch.get_num_threads()} threads"


def jpeg_folder(root: Path, n: int, size: int = 256) -> Path:
    """``n`` random-content JPEGs of ``size`` px in a CNNDetection folder (decode cost like
    LSUN's)."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for label in ("0_real", "1_fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            small = torch.randint(
                0, 256, (size // 8, size // 8, 3), generator=g, dtype=torch.uint8
            ).numpy()
            Image.fromarray(small).resize((size, size), Image.BICUBIC).save(
                root / label / f"{i:05d}.jpg", quality=90
            )
    return root


def peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    # the process's peak RSS (Linux reports KiB)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(cfg, stage: int, source: str, steps: int, warmup: int) -> dict:
    device, amp, cl = train.device_and_autocast(cfg)
    cuda = device.startswith("cuda")
    trace = models.build_trace_model(cfg, pretrained=False)
    model = trace if stage == 1 else Detector(trace, cfg.head_dim)
    model = model.to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = train.make_optimizer(params, cfg, cfg.lr1, steps + warmup, 1)
    step_module = model if stage == 1 else train.Stage2Forward(model)
    if cfg.compile:
        step_module = torch.compile(step_module)
    b, s = cfg.batch_size, cfg.image_size if stage == 2 else cfg.view_size

    def batches():
        if source == "synthetic":
            x1 = torch.rand(b, 3, s, s, device=device)
            x2 = torch.rand(b, 3, s, s, device=device)
            labels = torch.arange(b, device=device) % 2
            if cl:
                x1, x2 = (x.contiguous(memory_format=torch.channels_last) for x in (x1, x2))
            while True:
                yield x1, x2, labels
        samples = data.training_samples(cfg, labels=(0,) if stage == 1 else (0, 1))
        tf = (
            TwoViews(view_transform(cfg.view_size, cfg.view_pad))
            if stage == 1
            else train_transform(cfg.image_size)
        )
        dataset = Images(samples, tf, cache=cfg.cache_images)
        if cfg.cache_images:
            for i in range(len(dataset)):
                dataset._load(i)
        epoch = 0
        while True:
            for x, labels, _ in train.epoch_loader(dataset, cfg, epoch):
                if stage == 1:
                    yield to_float(x[0], device, cl), to_float(x[1], device, cl), labels.to(device)
                else:
                    yield to_float(x, device, cl), None, labels.to(device)
            epoch += 1

    def one(x1, x2, labels):
        if stage == 1:
            terms = train.stage1_losses(
                step_module, x1, x2, torch.arange(len(x1), device=device), cfg, amp
            )
        else:
            terms = train.stage2_losses(step_module, x1, labels, cfg, amp)
        # the training step as train.stage1 / train.stage2 write it (kept the same by hand)
        values = {k: float(v.detach()) for k, v in terms.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(
                train.not_finite(values, f"throughput benchmark, {cfg.preset} stage {stage}")
            )
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        sched.step()

    it = batches()
    model.train()
    for _ in range(warmup):
        one(*next(it))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        one(*next(it))
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ips = steps * b / dt
    return {
        "preset": cfg.preset,
        "stage": stage,
        "input": source,
        "device": device,
        "encoder": cfg.encoder,
        "size": s,
        "batch": b,
        "steps": steps,
        "seconds": round(dt, 3),
        "images_per_s": round(ips, 1),
        "views_per_s": round(2 * ips, 1) if stage == 1 else None,
        "peak_mib": round(peak_mib(device), 1),
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--presets", nargs="+", default=["mini", "paper"])
    p.add_argument("--stages", nargs="+", type=int, default=[1, 2])
    p.add_argument("--inputs", nargs="+", default=["synthetic", "loader"])
    p.add_argument("--short", action="store_true", help="few steps, small paper batch (CI)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-mini", type=int, default=256)
    p.add_argument("--batch-paper", type=int, default=None, help="default: 256 on CUDA, 8 on CPU")
    p.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers of the paper preset's loader"
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the training step's module"
    )
    p.add_argument(
        "--no-save", action="store_true", help="do not append to benchmarks/results.jsonl"
    )
    a = p.parse_args(argv)
    cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
    device = "cuda" if cuda else "cpu"
    steps = a.steps or (2 if a.short else 10)
    warmup = 1 if a.short else 3
    paper_batch = a.batch_paper or (256 if cuda else (2 if a.short else 8))
    batch = {"mini": a.batch_mini if not a.short else 64, "paper": paper_batch}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in a.presets:
            extra = {}
            if preset == "paper":
                n = max(64, 2 * batch["paper"] * (steps + warmup + 1))
                extra = {
                    "train_dir": str(jpeg_folder(Path(tmp) / "paper", n)),
                    "workers": a.workers if a.workers is not None else min(8, os.cpu_count() or 1),
                }
            for stage in a.stages:
                for source in a.inputs:
                    # images through the step, not cached features (train.FrozenFeatures has no
                    # image step)
                    cfg = make_config(
                        preset,
                        device=device,
                        batch_size=batch[preset],
                        encoder_weights="",
                        compile=a.compile,
                        val_dir="",
                        cache_features=False,
                        **extra,
                    )
                    rows.append(measure(cfg, stage, source, steps, warmup))
                    r = rows[-1]
                    print(
                        f"{preset:6s} stage {stage} {source:9s} {device:4s} batch {r['batch']:4d}  "
                        f"{r['images_per_s']:9.1f} img/s"
                        + (f"  {r['views_per_s']:9.1f} views/s" if stage == 1 else " " * 18)
                        + f"  peak {r['peak_mib']:8.0f} MiB",
                        flush=True,
                    )
    import torchvision

    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "short": a.short,
        "compile": a.compile,
        "argv": sys.argv[1:] if argv is None else argv,
        "rows": rows,
    }
    for preset in a.presets:
        for stage in a.stages:
            got = {
                r["input"]: r["images_per_s"]
                for r in rows
                if r["preset"] == preset and r["stage"] == stage
            }
            if {"synthetic", "loader"} <= set(got):
                ratio = got["loader"] / got["synthetic"]
                print(f"{preset} stage {stage}: loader / synthetic = {ratio:.2f}")
    if not a.no_save:
        with open(RESULTS, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"appended to {RESULTS}")
    return rows


if __name__ == "__main__":
    main()
