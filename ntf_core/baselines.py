"""Comparison detectors behind one interface: ``fit(images, labels)`` then ``score(images)`` = P(fake)."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .spectra import log_spectrum


class SpectrumClassifier:
    """Frank et al. 2020-style: a logistic regression on log Fourier magnitudes of the noise residual.

    Features are the centred log-magnitude spectrum of each image's luma residual (``spectra.log_spectrum``),
    flattened; the classifier is scikit-learn's L2-regularised logistic regression on standardised features.
    """

    def __init__(self, C: float = 0.1, seed: int = 0):
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, random_state=seed))

    @staticmethod
    def features(images: torch.Tensor) -> np.ndarray:
        return log_spectrum(images, residual=True).flatten(1).double().numpy()

    def fit(self, images: torch.Tensor, labels) -> "SpectrumClassifier":
        self.model.fit(self.features(images), np.asarray(labels))
        return self

    def score(self, images: torch.Tensor) -> np.ndarray:
        return self.model.predict_proba(self.features(images))[:, 1]
