"""What the recipe (``build``) and its data card (``card``) both read: a stage result file, the
build's configuration as a plain dict, the machine it ran on, and the uint8 -> float conversion of
the stored images.

Each stage of the recipe leaves one file ``<work>/<stage>.pt`` (``stage_path``); the card reads them
all back (``stage_results``) for its timings and model sizes.
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

import torch


def stage_path(work: Path, stage: str) -> Path:
    """Where the stage named ``stage`` leaves its result in the work folder ``work``."""
    return Path(work) / f"{stage}.pt"


def load_stage(path: Path) -> dict:
    """One stage result, as ``build`` saved it (tensors on the CPU)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def stage_results(work: Path) -> dict[str, dict]:
    """Every stage result in the work folder ``work``, by stage name."""
    return {p.stem: load_stage(p) for p in Path(work).glob("*.pt")}


def as_float(images: torch.Tensor) -> torch.Tensor:
    """Stored uint8 images as float in [0, 1] (the inverse of ``augment.to_uint8``)."""
    return images.float() / 255.0


def config_dict(cfg) -> dict:
    """A ``build.BuildConfig`` as a plain dict (the work folder's fingerprint, stats.json's
    config)."""
    return dataclasses.asdict(cfg)


def hardware(device: str = "cpu") -> str:
    """The machine a build ran on, in words: the GPU's name, or the CPU model and torch's thread
    count."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.processor() or "unknown model"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} CPU ({model}), {torch.get_num_threads()} threads"
