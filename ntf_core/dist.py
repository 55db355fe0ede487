"""Multi-process training with torchrun: the few helpers the trainers need.

The contrastive losses compare every sample with every other one, so with N ranks each rank must see
the embeddings of the whole global batch. ``gather`` concatenates them with an autograd-aware
all-gather, whose backward sends each rank the gradient of its own slice (summed over the ranks'
identical losses); DDP's gradient averaging then divides by N again, so the update equals one
process on the global batch (tested on two gloo processes). The older public route,
``torch.distributed.nn.all_gather``, is deprecated in torch 2.14.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as tdist


def is_dist() -> bool:
    return tdist.is_available() and tdist.is_initialized()


def rank() -> int:
    return tdist.get_rank() if is_dist() else 0


def world() -> int:
    return tdist.get_world_size() if is_dist() else 1


def setup(device: str) -> str:
    """Initialise the process group when launched by torchrun (nccl on CUDA, gloo on CPU); returns
    the device."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        # before the process group, so that NCCL binds each rank to its own GPU
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not is_dist():
        tdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def cleanup():
    if is_dist():
        tdist.destroy_process_group()


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [n, ...] of every rank along dim 0, in rank order, keeping gradients
    (identity alone; the functional-collectives all-gather, whose backward is a reduce-scatter
    sum)."""
    if not is_dist():
        return x
    from torch.distributed._functional_collectives import all_gather_tensor_autograd

    return all_gather_tensor_autograd(x.contiguous(), 0, tdist.group.WORLD)


def mean_over_ranks(value: float) -> float:
    if not is_dist():
        return value
    t = torch.tensor(
        [value], dtype=torch.float64, device="cuda" if tdist.get_backend() == "nccl" else "cpu"
    )
    tdist.all_reduce(t)
    return float(t) / world()
