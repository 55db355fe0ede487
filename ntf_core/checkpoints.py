"""Checkpoints: saving, loading and exporting them, what they record of a run, and the checks a
resumed run must pass.

    save_checkpoint(path, obj)          atomic: a reader never sees half a file
    load_checkpoint(path, "stage2")     ``weights_only=True``; every error names the file
    load_trace_model(path)              the stage-1 model of a checkpoint, ready to use
    load_detector(path)                 the detector of a stage-2 checkpoint, in eval mode
    export_checkpoint(src, dst)         a float16 copy for inference and stage 2 (no optimizer)

A training checkpoint holds ``kind`` (stage1 / stage2), the config, the model, optimizer and
scheduler state, the epoch, the loss history, the seconds spent, the package versions, and ``data``:
which images the run saw (``fingerprint``). A stage-2 checkpoint also names the stage-1 weights it
stands on (``weights_hash``).
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch
import torch.nn as nn

from .config import Config, from_dict
from .data import Sample
from .models import Detector, TraceModel, build_detector, build_trace_model

# config fields that may differ between a checkpoint and its resumed run (they do not change the
# numbers; ``device`` does, through kernels and bf16 autocast, so exactness holds on one device type
# and thread count)
RUN_ONLY = {"device", "out", "stage1_checkpoint", "cache_images", "val_dir", "compile"}
# fields stage 1 never reads: a stage-1 checkpoint resumes whatever they are
STAGE2_ONLY = {
    "reading",
    "ext_weight",
    "cache_features",
    "gamma",
    "lr2",
    "epochs2",
    "contrast_crop",
    "image_size",
}


def atomic_save(obj, path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then a rename: an interrupted save
    never leaves a half-written file, and a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def save_checkpoint(path, obj: dict) -> None:
    """Write a checkpoint atomically (``atomic_save``)."""
    atomic_save(obj, path)


def load_checkpoint(path, kind: str | None = None) -> dict:
    """A checkpoint written by this module, loaded with ``weights_only=True``; errors name the
    file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        lines = str(err).splitlines() or [""]
        why = next((ln.strip() for ln in lines if "Unsupported global" in ln), lines[0])
        raise ValueError(
            f"{path}: not a readable NTF checkpoint ({type(err).__name__}: {why[:300]})"
        ) from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt:
        raise ValueError(f"{path}: not an NTF checkpoint (no 'kind' entry)")
    if kind is not None and ckpt["kind"] != kind:
        raise ValueError(f"{path}: is a {ckpt['kind']} checkpoint, expected {kind}")
    return ckpt


def export_checkpoint(src, dst, half: bool = True) -> Path:
    """A small copy of a checkpoint for inference and for stage 2: no optimizer or scheduler state,
    and float weights stored as float16 when ``half`` (they are cast back to float32 on loading). It
    cannot be resumed."""
    ckpt = load_checkpoint(src)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler")}
    if half:
        slim["model"] = {
            k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()
        }
    slim["exported"] = {"from": str(src), "dtype": "float16" if half else "float32"}
    save_checkpoint(dst, slim)
    return Path(dst)


def load_trace_model(path, cfg: Config | None = None) -> tuple[TraceModel, Config, dict]:
    """The stage-1 model of a checkpoint (and its config); ``cfg`` must agree on the encoder's
    shape."""
    ckpt = load_checkpoint(path, "stage1")
    c1 = from_dict(ckpt["config"])
    if cfg is not None:
        for k in ("encoder", "width", "head_dim", "head_hidden"):
            if getattr(cfg, k) != getattr(c1, k):
                then, now = getattr(c1, k), getattr(cfg, k)
                raise ValueError(f"{path}: stage 1 used {k}={then!r}, this config has {now!r}")
    model = build_trace_model(c1, pretrained=False)
    model.load_state_dict(ckpt["model"])
    return model, c1, ckpt


def load_detector(path) -> tuple[Detector, Config]:
    """The detector of a stage-2 checkpoint, in eval mode, and its config."""
    ckpt = load_checkpoint(path, "stage2")
    cfg = from_dict(ckpt["config"])
    det = build_detector(cfg)
    det.load_state_dict(ckpt["model"])
    return det.eval(), cfg


# -- what a checkpoint records of its run ----------------------------------------------------------


def versions() -> dict:
    """The versions of this package, torch, torchvision and Python."""
    from importlib.metadata import PackageNotFoundError, version

    import torchvision

    try:
        ntf = version("ntf_core")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        ntf = "source"
    return {
        "ntf_core": ntf,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "python": platform.python_version(),
    }


def fingerprint(samples: list[Sample], root) -> dict:
    """Which images a run saw: count and a SHA-256 of (relative path, label, size in bytes) of each
    file."""
    h = hashlib.sha256()
    for s in samples:
        rel = Path(s.path).relative_to(root).as_posix()
        h.update(f"{rel}\t{s.label}\t{os.path.getsize(s.path)}\n".encode())
    return {"dir": str(root), "n": len(samples), "sha256": h.hexdigest()}


def weights_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state (names and float32 values): which stage-1 weights a stage-2 run
    stands on."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        if v.is_floating_point():
            h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
        else:
            h.update(v.cpu().numpy().tobytes())
    return h.hexdigest()


def check_resume(ckpt: dict, cfg: Config, data: dict, path) -> None:
    """Refuse to resume from ``ckpt`` when its config (besides ``RUN_ONLY`` fields, and for stage 1
    the ``STAGE2_ONLY`` ones) or its training images (``data``, a ``fingerprint``) differ from this
    run's, or when it is an export without optimizer state."""
    # fields added to Config since the checkpoint was written read as their defaults (from_dict)
    skip = RUN_ONLY | (STAGE2_ONLY if ckpt["kind"] == "stage1" else set())
    old = {k: v for k, v in from_dict(ckpt["config"]).to_dict().items() if k not in skip}
    new = {k: v for k, v in cfg.to_dict().items() if k not in skip}
    diff = {
        k: (old.get(k), new.get(k)) for k in old.keys() | new.keys() if old.get(k) != new.get(k)
    }
    if diff:
        raise ValueError(
            f"{path}: the checkpoint was made with another config {diff} (checkpoint, now); "
            "pass --fresh to start over, or another out= folder"
        )
    if "optimizer" not in ckpt:
        raise ValueError(
            f"{path}: an exported checkpoint (no optimizer state) cannot be resumed; "
            "pass --fresh to start over, or another out= folder"
        )
    if ckpt["data"]["sha256"] != data["sha256"]:
        raise ValueError(
            f"{path}: the training images changed since this checkpoint ({ckpt['data']['n']} then, "
            f"{data['n']} now); pass --fresh to start over"
        )
