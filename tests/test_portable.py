"""`ntf detect` without torch: the ONNX export scores exactly like the checkpoint, and never imports
torch."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ntf_core.cli import main
from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.evaluate import detect
from ntf_core.mini import mini_test_dirs
from ntf_core.portable import OnnxDetector, export_onnx

CKPT = SHIPPED_CHECKPOINTS / "stage2.pt"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_onnx(CKPT, tmp_path_factory.mktemp("onnx") / "detector.onnx")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """ntf-mini crops (32 px, the input size), a larger image (centre-cropped) and a smaller one
    (enlarged)."""
    d = tmp_path_factory.mktemp("img")
    crops = sorted((mini_test_dirs()["stylegan"] / "1_fake").iterdir())[:6]
    big = Image.open(crops[0]).resize((57, 41), Image.NEAREST)
    big.save(d / "big.png")
    Image.open(crops[1]).resize((20, 26), Image.BICUBIC).save(d / "small.png")
    return crops, d / "big.png", d / "small.png"


def test_onnx_scores_equal_the_checkpoint(model, images):
    crops, big, small = images
    same = [*crops, big]
    ref = np.array([s for _, s in detect(CKPT, same)])
    got = OnnxDetector(model).score_files(same)
    assert got == pytest.approx(ref, abs=1e-5)
    # an image smaller than the input is enlarged by Pillow here, by torchvision there: close, not
    # equal
    assert OnnxDetector(model).score_files([small])[0] == pytest.approx(
        detect(CKPT, [small])[0][1], abs=0.03
    )


def test_preprocess_matches_eval_transform(model, images):
    from torchvision.transforms.v2.functional import pil_to_tensor

    from ntf_core.augment import eval_transform, to_float
    from ntf_core.data import open_image

    _, big, _ = images
    det = OnnxDetector(model)
    ref = to_float(eval_transform(det.image_size)(pil_to_tensor(open_image(big))), "cpu")
    assert torch.equal(torch.from_numpy(det.preprocess(big)), ref)


def test_cli_detect_on_onnx_never_imports_torch(model, images):
    crops, _, _ = images
    code = (
        "import json, sys; from ntf_core.cli import main; "
        f"rc = main(['detect', '--json', '--checkpoint', {str(model)!r}, {str(crops[0])!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert row["p_fake"] == pytest.approx(detect(CKPT, [crops[0]])[0][1], abs=1e-5)


def test_bad_models_are_refused_by_name(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx: not a readable ONNX model"):
        OnnxDetector(junk)
    img = next((mini_test_dirs()["dcgan"] / "1_fake").iterdir())
    assert main(["detect", "--checkpoint", str(junk), str(img)]) == 2
    assert "junk.onnx: not a readable ONNX model" in capsys.readouterr().err
    assert main(["detect", "--checkpoint", str(tmp_path / "missing.onnx"), str(img)]) == 2
    assert "missing.onnx: no such ONNX file" in capsys.readouterr().err


def test_onnx_without_our_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["logit"])],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, [1])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(tmp_path / "other.onnx"),
    )
    with pytest.raises(ValueError, match="without ntf_core's metadata"):
        OnnxDetector(tmp_path / "other.onnx")


def test_export_cli_writes_both(tmp_path, capsys):
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(CKPT),
                "--onnx",
                str(tmp_path / "d.onnx"),
                "--out",
                str(tmp_path / "s.pt"),
            ]
        )
        == 0
    )
    assert (tmp_path / "d.onnx").is_file() and (tmp_path / "s.pt").is_file()
    assert OnnxDetector(tmp_path / "d.onnx").meta["preset"] == "mini"
