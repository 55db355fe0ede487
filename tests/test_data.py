"""ntf_core.data on tiny fixture trees of every layout we read, and on files that go wrong."""

import numpy as np
import pytest
import torch
from PIL import Image

from ntf_core import data, mini


def img(path, color=(10, 20, 30), size=(8, 8), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)
    return path


def test_cnndetection_layouts(tmp_path):
    # Wang2020 training tree: progan_train/<class>/0_real|1_fake
    for cls in ("cat", "car"):
        img(tmp_path / "progan_train" / cls / "0_real" / "a.png")
        img(tmp_path / "progan_train" / cls / "1_fake" / "b.png")
        img(tmp_path / "progan_train" / cls / "1_fake" / "c.jpg")
    # test sets with and without class folders
    img(tmp_path / "test" / "stylegan" / "bedroom" / "0_real" / "a.png")
    img(tmp_path / "test" / "stylegan" / "bedroom" / "1_fake" / "a.png")
    img(tmp_path / "test" / "deepfake" / "0_real" / "a.png")
    img(tmp_path / "test" / "deepfake" / "1_fake" / "a.png")
    (tmp_path / "test" / "deepfake" / "1_fake" / "notes.txt").write_text("not an image, ignored")

    assert data.detect_layout(tmp_path / "progan_train") == "cnndetection"
    train = data.Images.from_folder(tmp_path / "progan_train")
    assert len(train) == 6 and sorted(train.labels) == [0, 0, 1, 1, 1, 1]
    assert train.groups == ["car", "cat"]
    test = data.Images.from_folder(tmp_path / "test")
    assert test.groups == ["deepfake", "stylegan/bedroom"]
    x, y, i = test[0]
    assert x.dtype == torch.uint8 and x.shape[0] == 3 and y in (0, 1) and i == 0
    # pointing at one label folder directly works too
    assert data.scan(tmp_path / "test" / "deepfake" / "1_fake")[0].label == 1


def test_univfd_pairs_fake_only_folders_with_a_real_folder(tmp_path):
    for gen in ("glide_100_10", "ldm_200"):
        img(tmp_path / "diffusion_datasets" / gen / "1_fake" / "f.png")
    img(tmp_path / "diffusion_datasets" / "laion" / "0_real" / "r1.png")
    img(tmp_path / "diffusion_datasets" / "laion" / "0_real" / "r2.png")
    ds = data.Images.from_folder(
        tmp_path / "diffusion_datasets" / "ldm_200",
        real_dir=tmp_path / "diffusion_datasets" / "laion",
    )
    assert sorted(ds.labels) == [0, 0, 1]


def test_genimage_layout(tmp_path):
    for gen in ("ADM", "Midjourney"):
        for split in ("train", "val"):
            img(tmp_path / gen / split / "ai" / "x.png")
            img(tmp_path / gen / split / "nature" / "y.JPEG")
    assert data.detect_layout(tmp_path) == "genimage"
    val = data.Images.from_folder(tmp_path, split="val")
    assert (
        len(val) == 4 and val.groups == ["ADM", "Midjourney"] and sorted(val.labels) == [0, 0, 1, 1]
    )
    assert len(data.Images.from_folder(tmp_path)) == 8


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
        (
            lambda p: p.write_bytes(
                open(img(p.parent / "full.jpg", size=(64, 64)), "rb").read()[:200]
            ),
            "truncated",
        ),
    ],
)
def test_bad_files_are_named(tmp_path, make, problem):
    p = tmp_path / "bad.jpg"
    make(p)
    with pytest.raises(data.BadImageError, match=problem) as err:
        data.open_image(p)
    assert str(p) in str(err.value)


def test_missing_file_and_folders(tmp_path):
    with pytest.raises(data.BadImageError, match="no such file"):
        data.open_image(tmp_path / "nope.png")
    with pytest.raises(data.LayoutError, match="no such folder"):
        data.scan(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    img(tmp_path / "plain" / "a.png")
    with pytest.raises(data.LayoutError, match="0_real/1_fake"):
        data.scan(tmp_path / "plain")
    (tmp_path / "empty" / "0_real").mkdir(parents=True)
    with pytest.raises(data.LayoutError, match="holds no images"):
        data.scan(tmp_path / "empty")


def test_skip_bad_lists_what_it_skipped(tmp_path):
    img(tmp_path / "0_real" / "good.png")
    (tmp_path / "1_fake").mkdir()
    (tmp_path / "1_fake" / "bad.png").write_bytes(b"")
    ds = data.Images.from_folder(tmp_path, drop_bad=True)
    assert len(ds) == 1 and [e.path.name for e in ds.skipped] == ["bad.png"]


def test_modes_convert_to_rgb_correctly(tmp_path):
    grey = img(tmp_path / "g.png", (100,), mode="L")
    assert data.open_image(grey).getpixel((0, 0)) == (100, 100, 100)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red -> white background
    rgba.save(tmp_path / "a.png")
    assert data.open_image(tmp_path / "a.png").getpixel((0, 0)) == (255, 255, 255)
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # CMYK red
    cmyk.save(tmp_path / "c.jpg")
    r, g, b = data.open_image(tmp_path / "c.jpg").getpixel((0, 0))
    assert r > 200 and g < 60 and b < 60
    sixteen = Image.fromarray(np.full((4, 4), 25700, np.uint16))  # 25700 / 65535 = 100 / 255
    sixteen.save(tmp_path / "s.png")
    # scaled, not clipped
    assert data.open_image(tmp_path / "s.png").getpixel((0, 0)) == (100, 100, 100)


def test_load_tensor_and_resize(tmp_path):
    a = img(tmp_path / "a.png", (255, 0, 0), size=(8, 8))
    b = img(tmp_path / "b.png", (0, 0, 255), size=(16, 16))
    with pytest.raises(ValueError, match="differ in size"):
        data.load_tensor([a, b])
    x = data.load_tensor([a, b], size=8)
    assert x.shape == (2, 3, 8, 8) and x[0, 0].min() == 1.0 and x[1, 2].min() == 1.0


def test_tiny_and_oversized_images(tmp_path, monkeypatch):
    one = img(tmp_path / "one.png", (1, 2, 3), size=(1, 1))
    assert data.open_image(one).getpixel((0, 0)) == (1, 2, 3)
    big = img(tmp_path / "big.png", size=(20, 20))
    # 400 px: over twice the limit, PIL's hard error
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)
    with pytest.raises(data.BadImageError, match="too large") as err:
        data.open_image(big)
    assert "big.png" in str(err.value)
    # between 1x and 2x: PIL only warns; we refuse too
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)
    with pytest.raises(data.BadImageError, match="too large"):
        data.open_image(big)


def test_a_200_real_subset_covers_all_8_test_photographs():
    """Subsets are drawn across source photographs: 200 of the 800 real test crops, 25 from each of
    the 8 photographs (the first 200 by file name came from 2), the same for a seed, another for
    another seed."""
    from conftest import MINI

    samples = data.scan(MINI / "test" / "gan" / "dcgan", layout="cnndetection")
    reals = [s for s in samples if s.label == 0]
    assert len(mini.by_photo(reals)) == 8
    assert len(mini.by_photo(reals[:200])) < 8  # what "the first n" did
    sub = data.stratified_subset(samples, 200)
    sub_reals = [s for s in sub if s.label == 0]
    per_photo = {p: len(c) for p, c in mini.by_photo(sub_reals).items()}
    assert len(sub_reals) == 200 and len(per_photo) == 8 and set(per_photo.values()) == {25}
    assert sum(s.label == 1 for s in sub) == 200
    assert (
        sub == data.stratified_subset(samples, 200) != data.stratified_subset(samples, 200, seed=1)
    )
    assert data.stratified_subset(samples, None) == samples
    # uneven photographs: every photograph gets a crop before any gets a second
    uneven = [
        data.Sample(f"p{i}-s64-y0-x{j}.png", 0, "g")
        for i, n in enumerate([1, 5, 20])
        for j in range(n)
    ]
    assert sorted(mini.photo_of(s.path) for s in data.stratified_subset(uneven, 3)) == [
        "p0",
        "p1",
        "p2",
    ]
    assert len(data.stratified_subset(uneven, 11)) == 11
