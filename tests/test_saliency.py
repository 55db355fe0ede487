"""Grad-CAM++ on the detector: maps of the right shape, for the requested logit, on every
encoder."""

import numpy as np
import pytest
import torch

from ntf_core.augment import at_size
from ntf_core.checkpoints import load_detector
from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.data import mini_images
from ntf_core.models import Detector, SmallCNN, TraceModel
from ntf_core.saliency import centre_share, default_layer, gradcam_pp


def test_gradcam_on_the_shipped_detector():
    det, cfg = load_detector(SHIPPED_CHECKPOINTS / "stage2.pt")
    x = mini_images("test", generator="stylegan", label=1, limit=3)
    s = cfg.image_size
    fake, real = (
        gradcam_pp(det, x, target="fake", size=s),
        gradcam_pp(det, x, target="real", size=s),
    )
    assert fake.shape == (3, s, s) and 0 <= fake.min() and fake.max() <= 1 + 1e-6
    assert not np.allclose(fake, real)  # the two logits' gradients point at different evidence
    assert all(p.grad is None for p in det.parameters())  # no gradients left behind
    # size= is the detector's own input, as scoring builds it; without it the images go in as they
    # are
    np.testing.assert_allclose(fake, gradcam_pp(det, at_size(x, s)), atol=1e-5)
    assert gradcam_pp(det, x).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="'fake' or 'real'"):
        gradcam_pp(det, x, target="both")


def test_gradcam_on_the_small_cnn_and_centre_share():
    det = Detector(TraceModel(SmallCNN(8)))
    assert isinstance(default_layer(det), torch.nn.ReLU)
    assert gradcam_pp(det, torch.rand(2, 3, 32, 32)).shape == (2, 32, 32)
    m = np.zeros((2, 32, 32))
    m[0, 8:24, 8:24] = 1.0  # all in the centre
    m[1] = 1.0  # uniform: the centre's area share, 16*16 / 32*32
    np.testing.assert_allclose(centre_share(m), [1.0, 0.25])
    m64 = np.zeros((1, 64, 64))
    m64[0, 16:48, 16:48] = 1.0  # the border scales with the map: a quarter of its side
    np.testing.assert_allclose(centre_share(m64), [1.0])
    np.testing.assert_allclose(centre_share(m64, border=8), [1.0])


def test_ring_share_against_hand_counts_and_the_border_probe():
    from ntf_core.saliency import border_probe, ring_share

    m = np.ones((3, 8, 8))
    m[1] = 0.0
    m[1, 0, :] = 1.0  # all on the top edge
    m[2, 2:6, 2:6] = 0.0  # a hollow square: 48 of its 64 cells lit, 28 of them in the ring
    np.testing.assert_allclose(ring_share(m, 1), [28 / 64, 1.0, 28 / 48])
    det = Detector(TraceModel(SmallCNN(8))).eval()
    x = torch.rand(2, 3, 32, 32)
    probe = border_probe(det, x, size=32, pad=4, width=4)
    assert probe["area"] == pytest.approx(1 - 24**2 / 32**2)
    assert probe["plain"].shape == probe["padded"].shape == (2,)
    np.testing.assert_allclose(probe["plain"], ring_share(gradcam_pp(det, x), 4), atol=1e-6)
    assert not np.allclose(probe["plain"], probe["padded"])  # the padded maps are other maps
