"""Issue 6's bad-input matrix, through ntf_core.data, `ntf detect` (checkpoint and ONNX paths) and
`ntf evaluate`: odd image modes are converted, unreadable files are named, `--skip-bad` scores
around them and lists them, and no bare traceback reaches the user."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from ntf_core import data
from ntf_core import evaluate as ev
from ntf_core.cli import main
from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.mini import mini_test_dirs
from ntf_core.portable import export_onnx

CKPT = str(SHIPPED_CHECKPOINTS / "stage2.pt")
BAD = {
    "truncated.jpg": "corrupt or truncated",
    "text.jpg": "not an image file",
    "zero.png": "empty file",
    "bomb.png": "too large to open safely",
}


@pytest.fixture(autouse=True)
def small_bomb_limit(monkeypatch):
    """A 64x64 image stands in for a decompression bomb (> 2 x the limit); ntf-mini's 32x32 crops
    stay below it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A CNNDetection test folder: 4 good + 6 odd-mode reals (all readable), 4 good fakes + 4
    unreadable files."""
    root = tmp_path_factory.mktemp("bad") / "set"
    src = mini_test_dirs()["dcgan"]
    for label in ("0_real", "1_fake"):
        (root / label).mkdir(parents=True)
        for p in sorted((src / label).iterdir())[:4]:
            shutil.copy(p, root / label / p.name)
    real = root / "0_real"
    base = Image.open(next(real.iterdir())).convert("RGB")
    base.convert("L").save(real / "grey.png")
    base.convert("CMYK").save(real / "cmyk.jpg", quality=95)
    rgba = base.convert("RGBA")
    rgba.putalpha(0)
    rgba.save(real / "transparent.png")
    pal = base.convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(real / "palette.png", transparency=0)
    Image.fromarray(np.full((32, 32), 65535, dtype=np.uint16)).save(real / "sixteen.png")
    base.resize((1, 1)).save(real / "one_pixel.png")
    fake = root / "1_fake"
    full = fake / "full.jpg.tmp"
    base.save(full, format="JPEG")
    (fake / "truncated.jpg").write_bytes(full.read_bytes()[:200])
    full.unlink()
    (fake / "text.jpg").write_text("hello, I am text")
    (fake / "zero.png").write_bytes(b"")
    base.resize((64, 64)).save(fake / "bomb.png")
    return root


def test_odd_modes_convert_to_rgb(folder):
    real = folder / "0_real"
    for name in (
        "grey.png",
        "cmyk.jpg",
        "transparent.png",
        "palette.png",
        "sixteen.png",
        "one_pixel.png",
    ):
        im = data.open_image(real / name)
        assert im.mode == "RGB", name
    # alpha 0 over white
    assert np.all(np.asarray(data.open_image(real / "transparent.png")) == 255)
    # 16-bit full scale, not clipped
    assert np.all(np.asarray(data.open_image(real / "sixteen.png")) == 255)
    g = np.asarray(data.open_image(real / "grey.png")).astype(int)
    assert np.all(g[..., 0] == g[..., 1]) and np.all(g[..., 1] == g[..., 2])


@pytest.mark.parametrize("name", sorted(BAD))
def test_unreadable_files_are_named(folder, name):
    with pytest.raises(data.BadImageError, match=BAD[name]) as err:
        data.open_image(folder / "1_fake" / name)
    assert name in str(err.value)


def test_unreadable_permissions_are_named(tmp_path, monkeypatch, capsys):
    p = tmp_path / "locked.png"
    Image.new("RGB", (8, 8)).save(p)
    p.chmod(0)
    # root reads any file: make the open fail the way it fails for everybody else
    if os.geteuid() == 0:
        real_open = Image.open

        def locked(fp, *a, **kw):
            if str(fp) == str(p):
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(fp, *a, **kw)

        monkeypatch.setattr(Image, "open", locked)
    with pytest.raises(data.BadImageError, match="locked.png: permission denied"):
        data.open_image(p)
    good = next(mini_test_dirs()["dcgan"].rglob("*.png"))
    assert main(["detect", "--skip-bad", "--checkpoint", CKPT, str(p), str(good)]) == 0
    assert "locked.png: permission denied" in capsys.readouterr().err


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return str(export_onnx(CKPT, tmp_path_factory.mktemp("m") / "d.onnx"))


@pytest.mark.parametrize("model", ["checkpoint", "onnx"])
def test_detect_stops_at_a_bad_file_or_skips_and_lists(folder, model, onnx_model, capsys):
    ckpt = CKPT if model == "checkpoint" else onnx_model
    assert main(["detect", "--checkpoint", ckpt, str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ntf detect: error: ") and "Traceback" not in err
    assert any(f"{name}: {problem}" in err for name, problem in BAD.items())
    assert main(["detect", "--json", "--skip-bad", "--checkpoint", ckpt, str(folder)]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert len(rows) == 14 and all(0 <= r["p_fake"] <= 1 for r in rows)
    assert f"skipped {len(BAD)} unreadable file(s)" in err
    for name, problem in BAD.items():
        assert f"{name}: {problem}" in err


def test_both_paths_give_the_same_scores_on_odd_modes(folder, onnx_model, capsys):
    main(["detect", "--json", "--checkpoint", CKPT, str(folder / "0_real")])
    torch_rows = json.loads(capsys.readouterr().out)
    main(["detect", "--json", "--checkpoint", onnx_model, str(folder / "0_real")])
    onnx_rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in torch_rows] == [r["path"] for r in onnx_rows]
    # one_pixel.png is enlarged: Pillow vs torchvision bilinear
    for a, b in zip(torch_rows, onnx_rows):
        assert a["p_fake"] == pytest.approx(
            b["p_fake"], abs=1e-5 if "one_pixel" not in a["path"] else 0.05
        )


def test_evaluate_skips_and_counts(folder, capsys):
    assert main(["evaluate", "--checkpoint", CKPT, str(folder)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["evaluate", "--json", "--skip-bad", "--checkpoint", CKPT, str(folder)]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    (row,) = report["rows"].values()
    assert (row["n_real"], row["n_fake"]) == (10, 4)
    assert sorted(os.path.basename(p) for p in report["skipped"]) == sorted(BAD)
    assert f"skipped {len(BAD)} unreadable file(s)" in err


def test_folders_and_paths_that_go_wrong(folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "flat").mkdir()
    shutil.copy(next((folder / "0_real").iterdir()), tmp_path / "flat" / "a.png")
    cases = [
        (["detect", "--checkpoint", CKPT, str(tmp_path / "nope.png")], "no such file or folder"),
        (["detect", "--checkpoint", CKPT, str(tmp_path / "empty")], "no images in this folder"),
        (
            ["evaluate", "--checkpoint", CKPT, str(tmp_path / "empty")],
            "found no 0_real/ or 1_fake/",
        ),
        (["evaluate", "--checkpoint", CKPT, str(tmp_path / "flat")], "found no 0_real/ or 1_fake/"),
        (
            ["evaluate", "--checkpoint", CKPT, str(folder / "0_real")],
            "needs both 0_real and 1_fake",
        ),
        (["detect", "--checkpoint", str(tmp_path / "nope.pt"), str(folder)], "no such checkpoint"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    # every file unreadable: --skip-bad still fails, saying so
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "zero.png").write_bytes(b"")
    assert main(["detect", "--skip-bad", "--checkpoint", CKPT, str(only_bad)]) == 2
    assert "no readable image" in capsys.readouterr().err


def test_a_nan_from_the_detector_is_an_error_not_a_skipped_file(folder, monkeypatch, capsys):
    monkeypatch.setattr(ev, "score_samples", lambda *a, **kw: np.full(len(a[2]), np.nan))
    for argv in (
        ["detect", "--skip-bad", "--checkpoint", CKPT, str(folder / "0_real")],
        ["evaluate", "--skip-bad", "--checkpoint", CKPT, str(folder)],
    ):
        assert main(argv) == 2
        assert "the detector scored" in capsys.readouterr().err
