"""Comparison detectors behind one interface: ``fit(images, labels)``, then ``score(images)`` =
P(fake).

``images`` are float tensors [N, 3, H, W] in [0, 1] (``data.mini_images`` / ``data.load_tensor``);
labels 0 = real, 1 = fake. Each class names the paper it stands for (``paper``) and says how ours
differs in its docstring. The three scikit-learn methods share ``LogisticOnFeatures`` and differ
only in their features.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .augment import at_size, blur_jpeg, to_uint8
from .checkpoints import load_detector
from .evaluate import chunked
from .models import make_encoder
from .spectra import log_spectrum


class LogisticOnFeatures:
    """A logistic regression on fixed features of each image: scikit-learn's L2-regularised
    ``LogisticRegression`` on standardised features (``StandardScaler``). A subclass says what the
    features are (``features(images)``: an array [N, D])."""

    def __init__(self, C: float, seed: int):
        self.model = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed)
        )

    def features(self, images: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def fit(self, images: torch.Tensor, labels) -> LogisticOnFeatures:
        self.model.fit(self.features(images), np.asarray(labels))
        return self

    def score(self, images: torch.Tensor) -> np.ndarray:
        return self.model.predict_proba(self.features(images))[:, 1]


class SpectrumClassifier(LogisticOnFeatures):
    """Frank et al. 2020-style: a logistic regression on log Fourier magnitudes of the noise
    residual.

    (Frank et al. classify DCT spectra, Gragnaniello et al. and Durall et al. Fourier ones; one
    linear model on the residual's log-magnitude spectrum stands for that family here.)

    Features are the centred log-magnitude spectrum of each image's luma residual
    (``spectra.log_spectrum``), flattened.
    """

    name, paper = "spectrum", "Frank et al. 2020 / Durall et al. 2020 style (Fourier, not DCT)"

    def __init__(self, C: float = 0.1, seed: int = 0):
        super().__init__(C, seed)

    @staticmethod
    def features(images: torch.Tensor) -> np.ndarray:
        return log_spectrum(images, residual=True).flatten(1).double().numpy()


class LowFrequencyProbe(LogisticOnFeatures):
    """A content-parity control, not a detector from the literature: a logistic regression on what
    survives heavy blurring, each image's per-channel mean and standard deviation and its 4x4
    thumbnail (54 numbers).

    Trained on real vs the training generator like every method here, it shows how much of each
    test row colour and coarse content alone explain: a row it scores well above chance is one where
    real and fake differ in more than forensic traces (ntf-mini's generators are small and their
    colours drift from the photographs').
    """

    name, paper = "low-freq probe", "content-parity control (colour statistics + 4x4 thumbnail)"

    def __init__(self, C: float = 1.0, seed: int = 0):
        super().__init__(C, seed)

    @staticmethod
    def features(images: torch.Tensor) -> np.ndarray:
        x = images.float()
        thumb = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.cat([x.mean((2, 3)), x.std((2, 3)), thumb], 1).double().numpy()


class LinearProbe(LogisticOnFeatures):
    """UnivFD-style (Ojha et al. 2023): a linear classifier on a frozen pretrained feature space.

    UnivFD probes CLIP ViT-L/14 features; offline we probe the ImageNet EfficientNet-Lite0 (the same
    encoder the mini NTF starts from), at the images' own resolution, in chunks of ``batch`` images.
    """

    name, paper = (
        "linear probe",
        "Ojha et al. 2023 (UnivFD), with ImageNet EfficientNet-Lite0 instead of CLIP",
    )

    def __init__(self, C: float = 1.0, seed: int = 0, batch: int = 256):
        self.encoder = make_encoder("efficientnet_lite0", "imagenet").eval()
        self.batch = batch
        super().__init__(C, seed)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        return chunked(self.encoder, images, self.batch).double().numpy()


class Wang2020:
    """Wang et al. 2020 (CNNDetection): an ImageNet-pretrained CNN fine-tuned end to end with binary
    cross-entropy, with blur and JPEG augmentation ("Blur+JPEG (0.5)").

    Differences, for CPU and ntf-mini's 32 px images: the encoder is EfficientNet-Lite0 (not
    ResNet-50); the blur sigma range is scaled to 32 px (``augment.blur_jpeg``); Adam at lr 1e-4 as
    in the paper, for ``epochs`` epochs (the budget is set by the caller to match NTF's).
    ``history`` holds the mean training loss of each epoch.
    """

    name, paper = (
        "Wang2020",
        "Wang et al. 2020 (CNNDetection), EfficientNet-Lite0 instead of ResNet-50",
    )

    def __init__(
        self,
        epochs: int = 5,
        lr: float = 1e-4,
        batch: int = 64,
        p_blur: float = 0.5,
        p_jpeg: float = 0.5,
        seed: int = 0,
    ):
        torch.manual_seed(seed)
        self.encoder = make_encoder("efficientnet_lite0", "imagenet")
        self.head = torch.nn.Linear(self.encoder.embed_dim, 1)
        self.augment = blur_jpeg(p_blur, p_jpeg)
        self.epochs, self.lr, self.batch, self.seed = epochs, lr, batch, seed
        self.history: list[float] = []

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(1)

    def fit(self, images: torch.Tensor, labels) -> Wang2020:
        y = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
        params = [*self.encoder.parameters(), *self.head.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        g = torch.Generator().manual_seed(self.seed)
        u8 = to_uint8(images)
        self.encoder.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(u8), generator=g)
            losses = []
            for i in range(0, len(order) - self.batch + 1, self.batch):
                idx = order[i : i + self.batch]
                x = torch.stack([self.augment(img) for img in u8[idx]]).float() / 255
                loss = torch.nn.functional.binary_cross_entropy_with_logits(self._logits(x), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            self.history.append(float(np.mean(losses)))
        self.encoder.eval()
        return self

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> np.ndarray:
        self.encoder.eval()
        return chunked(lambda x: torch.sigmoid(self._logits(x)), images).numpy()


class NTF:
    """The NTF detector of a stage-2 checkpoint behind the baselines' interface (``score`` only: NTF
    is trained by ``ntf stage1`` and ``ntf stage2``, or ``ntf_core.train``)."""

    name, paper = "NTF", "this course's implementation of the paper"

    def __init__(self, checkpoint):
        self.detector, self.cfg = load_detector(checkpoint)

    def fit(self, images, labels):
        raise NotImplementedError(
            "NTF trains in two stages: use `ntf stage1` and `ntf stage2` (ntf_core.train)"
        )

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> np.ndarray:
        x = at_size(images, self.cfg.image_size)
        return chunked(lambda batch: torch.sigmoid(self.detector(batch)), x).numpy()


class Enlarged:
    """A baseline that sees every image at ``size`` px (``at_size``): the two-scale measurement
    (benchmarks/two_scale.py) holds the classifier's input size equal for NTF and every baseline."""

    def __init__(self, method, size: int):
        self.method, self.size = method, size
        self.name, self.paper = f"{method.name} @{size}px", method.paper

    def fit(self, images: torch.Tensor, labels) -> Enlarged:
        self.method.fit(at_size(images, self.size), labels)
        return self

    def score(self, images: torch.Tensor) -> np.ndarray:
        return self.method.score(at_size(images, self.size))
