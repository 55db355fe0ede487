"""Folders of real and fake images -> datasets of (image, label) with their generator names.

Layouts read (``detect_layout`` tells them apart; every one is also what ``ntf evaluate DIR``
accepts):

- ``cnndetection`` (Wang et al. 2020, and ntf-mini): any folder whose sub-folders named ``0_real`` /
  ``1_fake`` hold the images, at any depth: ``progan_train/<class>/0_real``,
  ``test/<generator>[/<class>]/1_fake``, ``ntf-mini/test/<family>/<generator>/0_real``. The path
  between the root and ``0_real`` names the group (generator, or generator/class).
- ``univfd`` (Ojha et al. 2023 diffusion sets): ``<root>/<generator>/1_fake`` folders without reals,
  plus one or more real-only folders (``laion/0_real``, ``imagenet/0_real``): pass ``real_dir=`` to
  pair them, as UnivFD's evaluation does.
- ``genimage`` (Zhu et al. 2023): ``<generator>/{train,val}/{ai,nature}``; ``nature`` = real, ``ai``
  = fake.

Images are opened by ``open_image``, which converts every mode to 8-bit RGB (alpha composited on
white, 16-bit scaled down, CMYK and palette converted) and turns unreadable files into a
``BadImageError`` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config
from .images import (  # noqa: F401  (re-exported: the torch-free half of reading images)
    IMAGE_EXTENSIONS,
    BadImageError,
    LayoutError,
    image_paths,
    open_image,
    to_rgb,
)
from .mini import cluster_of, default_mini_root, read_manifest

REAL, FAKE = "0_real", "1_fake"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 0 real, 1 fake
    group: str  # generator (or generator/class) the sample belongs to


def _images_in(folder: Path) -> list[Path]:
    try:
        return sorted(
            p
            for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
    except PermissionError:
        raise LayoutError(f"{folder}: permission denied") from None


def detect_layout(root: str | os.PathLike) -> str:
    root = Path(root)
    if not root.exists():
        raise LayoutError(f"{root}: no such folder")
    if not root.is_dir():
        raise LayoutError(f"{root}: is a file, not a folder")
    names = {p.name for p in root.rglob("*") if p.is_dir()}
    if REAL in names or FAKE in names or root.name in (REAL, FAKE):
        return "cnndetection"
    if "ai" in names or "nature" in names:
        return "genimage"
    raise LayoutError(
        f"{root}: found no 0_real/1_fake folders (CNNDetection layout) and no ai/nature folders "
        "(GenImage layout); see ntf_core.data for the layouts read"
    )


def scan_cnndetection(root: str | os.PathLike) -> list[Sample]:
    """Every image under a ``0_real`` or ``1_fake`` folder below ``root`` (or ``root`` itself)."""
    root = Path(root)
    samples = []
    label_dirs = (
        [root]
        if root.name in (REAL, FAKE)
        else sorted(p for p in root.rglob("*") if p.is_dir() and p.name in (REAL, FAKE))
    )
    for d in label_dirs:
        rel = d.parent.relative_to(root) if d != root else Path(".")
        group = rel.as_posix() if rel.as_posix() != "." else root.name
        samples += [Sample(p, 0 if d.name == REAL else 1, group) for p in _images_in(d)]
    return samples


def scan_genimage(root: str | os.PathLike, split: str | None = None) -> list[Sample]:
    """GenImage: ``<generator>/<split>/{ai,nature}``; ``split`` = "train" / "val" / None (both)."""
    root = Path(root)
    samples = []
    for d in sorted(p for p in root.rglob("*") if p.is_dir() and p.name in ("ai", "nature")):
        parts = d.relative_to(root).parts
        if split is not None and (len(parts) < 2 or parts[-2] != split):
            continue
        group = "/".join(parts[:-2]) or root.name
        samples += [Sample(p, 1 if d.name == "ai" else 0, group) for p in _images_in(d)]
    return samples


def scan(
    root: str | os.PathLike,
    layout: str = "auto",
    split: str | None = None,
    real_dir: str | os.PathLike | None = None,
) -> list[Sample]:
    """All samples of a folder in a known layout; raises ``LayoutError`` with the reason when none
    are found.

    ``real_dir`` (UnivFD style): a folder of real images (or holding ``0_real``) added to every
    fake-only group.
    """
    if not Path(root).is_dir():
        raise LayoutError(
            f"{root}: no such folder"
            if not Path(root).exists()
            else f"{root}: is a file, not a folder"
        )
    layout = detect_layout(root) if layout == "auto" else layout
    if layout in ("cnndetection", "univfd"):
        samples = scan_cnndetection(root)
    elif layout == "genimage":
        samples = scan_genimage(root, split)
    else:
        raise LayoutError(f"unknown layout {layout!r}: use auto, cnndetection, univfd or genimage")
    if real_dir is not None:
        real_dir = Path(real_dir)
        reals_folder = real_dir / REAL if (real_dir / REAL).is_dir() else real_dir
        reals = _images_in(reals_folder)
        if not reals:
            raise LayoutError(f"{reals_folder}: no images in the real folder")
        fake_only = sorted({s.group for s in samples} - {s.group for s in samples if s.label == 0})
        samples += [Sample(p, 0, g) for g in fake_only for p in reals]
    if not samples:
        if layout in ("cnndetection", "univfd") and not any(
            p.is_dir() and p.name in (REAL, FAKE) for p in [Path(root), *Path(root).rglob("*")]
        ):
            raise LayoutError(
                f"{root}: found no {REAL}/ or {FAKE}/ folders below it (CNNDetection layout: put "
                f"real images in {REAL}/ and generated ones in {FAKE}/)"
            )
        raise LayoutError(f"{root}: the {layout} layout was recognised but it holds no images")
    return samples


class Images(torch.utils.data.Dataset):
    """The one Dataset of the course: ``(transform(image), label, index)`` for a list of samples,
    the image a uint8 tensor [3, H, W] (``transform`` None: the image itself).
    ``Images.from_folder`` scans a folder first.

    ``cache`` keeps decoded images in memory (small datasets). ``skip_bad``: a file that cannot be
    read gives ``(None, problem, index)`` instead of raising ``BadImageError`` (``skipping_collate``
    then leaves it out of the batch and reports it)."""

    def __init__(
        self,
        samples: list[Sample],
        transform: Callable | None = None,
        cache: bool = False,
        skip_bad: bool = False,
    ):
        self.samples, self.transform, self.cache = samples, transform, {} if cache else None
        self.skip_bad = skip_bad
        self.skipped: list[BadImageError] = []

    @classmethod
    def from_folder(
        cls,
        root,
        transform: Callable | None = None,
        layout: str = "auto",
        split: str | None = None,
        real_dir=None,
        groups: Sequence[str] | None = None,
        drop_bad: bool = False,
        cache: bool = False,
    ) -> Images:
        """The images of a folder in any layout ``scan`` reads, maybe only those of ``groups``.
        ``drop_bad`` opens every file once now and leaves out those that fail (listed in
        ``skipped``); without it, an unreadable file raises ``BadImageError`` when it is read."""
        samples = scan(root, layout, split, real_dir)
        if groups is not None:
            samples = [s for s in samples if s.group in set(groups)]
        skipped = []
        if drop_bad:
            good = []
            for s in samples:
                try:
                    open_image(s.path)
                    good.append(s)
                except BadImageError as err:
                    skipped.append(err)
            samples = good
        dataset = cls(samples, transform, cache=cache)
        dataset.skipped = skipped
        return dataset

    def __len__(self):
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def groups(self) -> list[str]:
        return sorted({s.group for s in self.samples})

    def _load(self, i):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        from torchvision.transforms.v2.functional import pil_to_tensor

        x = pil_to_tensor(open_image(self.samples[i].path))
        if self.cache is not None:
            self.cache[i] = x
        return x

    def __getitem__(self, i):
        try:
            x = self._load(i)
        except BadImageError as err:
            if not self.skip_bad:
                raise
            return None, err.problem, i
        return (self.transform(x) if self.transform else x), self.samples[i].label, i


def skipping_collate(batch):
    """Collate for ``Images(skip_bad=True)``: (images, labels, indices) of the readable samples, and
    ``{index: problem}`` of the others."""
    good = [b for b in batch if b[0] is not None]
    bad = {b[2]: b[1] for b in batch if b[0] is None}
    if not good:
        return None, None, None, bad
    return (
        torch.stack([b[0] for b in good]),
        torch.tensor([b[1] for b in good]),
        torch.tensor([b[2] for b in good]),
        bad,
    )


def load_tensor(paths: Sequence[str | os.PathLike], size: int | None = None) -> torch.Tensor:
    """Images as float [N, 3, H, W] in [0, 1]; all must share one size unless ``size`` resizes
    them."""
    from torchvision.transforms.v2 import functional as TF

    out = []
    for p in paths:
        x = TF.to_dtype(TF.pil_to_tensor(open_image(p)), torch.float32, scale=True)
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            x = TF.resize(x, [size, size], antialias=True)
        out.append(x)
    shapes = {tuple(x.shape) for x in out}
    if len(shapes) > 1:
        raise ValueError(
            f"images differ in size ({sorted(shapes)[:3]}...): pass size= to resize them"
        )
    return torch.stack(out)


# -- ntf-mini --------------------------------------------------------------------------------------


def mini_images(
    split: str,
    generator: str | None = None,
    label: int | None = None,
    root=None,
    limit: int | None = None,
) -> torch.Tensor:
    """ntf-mini images as a float tensor, selected from the manifest (all 32x32, so no resize).

    ``generator`` is a manifest name ("real", "dcgan", "ddim", ...); ``label`` 0 or 1; ``limit``: at
    most n of each label, drawn across source photographs (``stratified_subset``, seed 0).
    """
    root = Path(root) if root else default_mini_root()
    rows = [
        r
        for r in read_manifest(root)
        if r["split"] == split
        and (generator is None or r["generator"] == generator)
        and (label is None or r["label"] == label)
    ]
    seen, picked = set(), []
    for r in rows:  # the real test crops sit in every generator's folder: take each crop once
        key = (r["label"], Path(r["path"]).name) if r["label"] == 0 else r["path"]
        if key not in seen:
            seen.add(key)
            picked.append(Sample(root / r["path"], r["label"], r["generator"]))
    if not picked:
        raise ValueError(
            f"no ntf-mini images for split={split!r} generator={generator!r} label={label!r}"
        )
    return load_tensor([s.path for s in stratified_subset(picked, limit)])


def training_samples(cfg: Config, labels=(0, 1)) -> list[Sample]:
    """The training images of ``cfg.train_dir`` with the given labels (``max_images`` of each, drawn
    across source photographs by ``stratified_subset`` with seed 0, so every seed trains on the same
    images)."""
    samples = scan(cfg.train_dir, layout="cnndetection")
    out = []
    for lab in labels:
        chosen = [s for s in samples if s.label == lab]
        if not chosen:
            raise ValueError(
                f"{cfg.train_dir}: no {'real (0_real)' if lab == 0 else 'fake (1_fake)'} images"
            )
        out += stratified_subset(chosen, cfg.max_images or None)
    return out


def stratified_subset(samples: list[Sample], n: int | None, seed: int = 0) -> list[Sample]:
    """At most ``n`` samples of each label, drawn across clusters (``cluster_of``): photographs are
    dealt in a seeded random order, one crop each per round (crops chosen at random within a
    photograph), until ``n``; so 200 of ntf-mini's 800 real test crops come from all 8 test
    photographs, 25 each, never from the first two by file name. Fakes (one cluster each) are a
    plain random sample. Kept in the order of ``samples``; ``n`` None or at least the label's count:
    every sample of that label."""
    import random

    rng = random.Random(seed)
    keep: set[int] = set()
    for label in dict.fromkeys(s.label for s in samples):
        idx = [i for i, s in enumerate(samples) if s.label == label]
        if not n or n >= len(idx):
            keep.update(idx)
            continue
        groups: dict[str, list[int]] = {}
        for i in idx:
            groups.setdefault(cluster_of(samples[i].path), []).append(i)
        queues = [rng.sample(g, len(g)) for g in groups.values()]
        rng.shuffle(queues)
        chosen: list[int] = []
        while len(chosen) < n:
            for q in queues:
                if q and len(chosen) < n:
                    chosen.append(q.pop())
        keep.update(chosen)
    return [s for i, s in enumerate(samples) if i in keep]
