"""The ntf-mini recipe: determinism, one encoding for real and fake, KID, and the shipped
benchmark's promises."""

import csv
import filecmp
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch
from conftest import MINI, write_fixture_photos

from ntf_core.bench import diffusion, encode, kid, multistep
from ntf_core.bench.__main__ import main as bench_main


def photos_of(work):
    return json.loads((work / "config.json").read_text())["photo_paths"]


def build_tiny(photos, out):
    assert (
        bench_main(
            [
                "build",
                "--preset",
                "tiny",
                "--out",
                str(out / "ntf-mini"),
                "--work",
                str(out / "work"),
                "--photos",
                *photos,
            ]
        )
        == 0
    )
    return out / "ntf-mini"


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory):
    paths = write_fixture_photos(tmp_path_factory.mktemp("photos"))
    a = build_tiny(paths, tmp_path_factory.mktemp("a"))
    b = build_tiny(paths, tmp_path_factory.mktemp("b"))
    return a, b


def test_tiny_build_is_deterministic(tiny_builds):
    a, b = tiny_builds
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    files = [p.relative_to(a) for p in a.rglob("*.png") if "grids" not in p.parts]
    assert len(files) > 100
    mismatch = [f for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
    assert mismatch == []


def test_an_interrupted_build_resumes_to_the_same_result(tiny_builds, tmp_path):
    """Stage results are reused; a build that lost its later stages (as if killed) redoes them
    identically."""
    a, b = tiny_builds
    work = b.parent / "work"
    for stage in ("stylegan", "samples", "splits", "quality"):
        (work / f"{stage}.pt").unlink()
    assert (
        bench_main(
            [
                "build",
                "--preset",
                "tiny",
                "--out",
                str(b),
                "--work",
                str(work),
                "--photos",
                *photos_of(work),
            ]
        )
        == 0
    )
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    files = [p.relative_to(a) for p in a.rglob("*.png") if "grids" not in p.parts]
    assert all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def test_tiny_build_layout_and_splits(tiny_builds):
    a, _ = tiny_builds
    rows = list(csv.DictReader(open(a / "manifest.csv")))
    assert {r["split"] for r in rows} == {"train", "val", "test", "gen_train", "gen_val"}
    for r in rows:
        assert (a / r["path"]).is_file()
        assert r["path"].split("/")[-2] == ("0_real" if r["label"] == "0" else "1_fake")
    splits_of_photo = defaultdict(set)
    for r in rows:
        if r["label"] == "0":
            splits_of_photo[r["source_photo"]].add(r["split"])
    assert all(len(s) == 1 for s in splits_of_photo.values()), "a photo appears in two splits"
    gens = {r["generator"] for r in rows if r["split"] == "test" and r["label"] == "1"}
    assert len(gens) == 9
    # every generator's own training and validation fakes (tiny preset: 6 + 2), fakes only, and
    # never one of its test fakes
    c = Counter(
        (r["split"], r["generator"], r["label"]) for r in rows if r["split"].startswith("gen")
    )
    assert c == {(s, g, "1"): n for g in gens for s, n in (("gen_train", 6), ("gen_val", 2))}
    test_pixels = {
        (a / r["path"]).read_bytes() for r in rows if r["split"] == "test" and r["label"] == "1"
    }
    assert not any(
        (a / r["path"]).read_bytes() in test_pixels for r in rows if r["split"] == "gen_train"
    )
    assert "| gen_train | diffusion | ddpm | 0 | 6 |" in (a / "README.md").read_text()
    stats = json.loads((a / "stats.json").read_text())
    assert set(stats["spectrum_ap"]) == gens
    card = (a / "README.md").read_text()
    assert card.startswith("# ntf-mini") and "](grids/dcgan.png)" in card


def test_every_draw_of_the_recipe_has_its_own_seed():
    """The test fakes and each generator's training split are drawn with seeds from these keys
    (``Builder._generate``): no two may coincide, or a training fake would repeat a test fake."""
    from ntf_core.bench.build import BuildConfig, stage_seed
    from ntf_core.mini import FAMILIES

    keys = []
    for family, names in FAMILIES.items():
        for name in names:
            if family == "multistep":
                gans = {"gan_gan": ("stylegan", "sngan"), "gan_dm": ("sngan",)}.get(
                    name, ("stylegan",)
                )
                here = [f"ms-{name}", *(f"ms-{name}{g}" for g in gans)]
                here += ["ms-dm_gan-bg"] if name == "dm_gan" else []
            else:
                here = [f"sample-{name}"]
            keys += [prefix + k for prefix in ("", "split-") for k in here]
    seeds = [stage_seed(BuildConfig(seed=0), k) for k in keys]
    assert len(keys) == 28 and len(set(seeds)) == len(seeds)


def _signatures(root, per_folder=None):
    sigs = {}
    for folder in sorted({p.parent for p in root.rglob("*.png") if "grids" not in p.parts}):
        for p in sorted(folder.glob("*.png"))[:per_folder]:
            sigs.setdefault(encode.encoding_signature(p), []).append(p)
    return sigs


def test_real_and_fake_files_share_one_encoding(tiny_builds):
    """The fixture photos carry an ICC profile and EXIF: none of it may reach the real crops."""
    sigs = _signatures(tiny_builds[0])
    assert len(sigs) == 1, {k: v[:2] for k, v in sigs.items()}
    mode, size, info, chunks, ihdr, zlib_header = next(iter(sigs))
    assert mode == "RGB" and size == (32, 32) and info == () and chunks == ("IHDR", "IDAT", "IEND")


def test_a_work_folder_serves_one_configuration_and_out_is_never_another_dataset(
    tiny_builds, tmp_path
):
    a, _ = tiny_builds
    work, photos = a.parent / "work", photos_of(a.parent / "work")
    with pytest.raises(SystemExit, match="another configuration.*seed"):
        bench_main(
            [
                "build",
                "--preset",
                "tiny",
                "--seed",
                "1",
                "--out",
                str(tmp_path / "x"),
                "--work",
                str(work),
                "--photos",
                *photos,
            ]
        )
    other = tmp_path / "someone-elses-dataset"
    (other / "train" / "0_real").mkdir(parents=True)
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        bench_main(
            [
                "build",
                "--preset",
                "tiny",
                "--out",
                str(other),
                "--work",
                str(work),
                "--photos",
                *photos,
            ]
        )
    assert (other / "train" / "0_real").is_dir()


def test_mmd_matches_hand_computation():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    k = lambda a, b: (a @ b / 2 + 1) ** 3
    kxx = 2 * k(x[0], x[1]) / 2  # off-diagonal mean
    kyy = 2 * k(y[0], y[1]) / 2
    kxy = sum(k(a, b) for a in x for b in y) / 4
    assert kid.mmd2_poly(x, y) == pytest.approx(float(kxx + kyy - 2 * kxy))


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(600, 16, generator=g, dtype=torch.float64),
        torch.randn(600, 16, generator=g, dtype=torch.float64),
    )
    same, _ = kid.kid(a, b, subsets=10, subset_size=300)
    shifted, _ = kid.kid(a, b + 0.5, subsets=10, subset_size=300)
    assert abs(same) < 0.02 < shifted


def test_trivial_fakes():
    g = torch.Generator().manual_seed(0)
    reals = torch.rand(400, 3, 4, 4, generator=g) * 0.5 + 0.25
    fakes = kid.gaussian_fakes(reals, 4000, seed=1)
    assert fakes.shape == (4000, 3, 4, 4)
    assert torch.allclose(fakes.mean(0), reals.mean(0), atol=0.02)
    blurred = kid.blurred_fakes(torch.rand(2, 3, 32, 32, generator=g))
    assert blurred.shape == (2, 3, 32, 32)
    const = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(kid.blurred_fakes(const), const, atol=1e-5)


@pytest.mark.parametrize("scheduler", ["pndm", "ddim"])
def test_every_sampling_batch_starts_from_a_fresh_scheduler(scheduler):
    """A batch's images depend on its own noise only: with a reused PNDMScheduler the second
    batch continued the first one's multistep history (and a smaller last batch was mis-sized)."""
    torch.manual_seed(0)
    ae, unet = diffusion.AutoEncoder(latent_channels=4, width=8).eval(), diffusion.make_unet(4)
    unet.eval()
    out = diffusion.sample(ae, unet, scheduler, n=5, seed=3, batch=2, steps=6)  # 2 + 2 + 1
    assert out.shape == (5, 3, 32, 32) and torch.isfinite(out).all()
    gen = torch.Generator().manual_seed(3)
    for i, size in ((0, 2), (2, 2), (4, 1)):
        sched = diffusion.make_scheduler(scheduler)
        sched.set_timesteps(6)
        z = torch.randn(size, 4, 8, 8, generator=gen) * sched.init_noise_sigma
        alone = ae.decode(diffusion._denoise(unet, sched, z, sched.timesteps, gen))
        assert torch.allclose(out[i : i + size], alone, atol=1e-5), f"batch at {i}"


def test_blend_region_keeps_the_background_outside_the_mask():
    bg, donor = torch.zeros(8, 3, 32, 32), torch.ones(8, 3, 32, 32)
    out = multistep.blend_region(bg, donor, seed=0)
    assert out.min() >= 0 and out.max() <= 1
    frac = out[:, 0].mean(dim=(1, 2))
    assert ((frac > 0.1) & (frac < 0.6)).all()  # a 12-20 px rectangle of a 32 px image
    assert (out.flatten(1) == 0).any(dim=1).all()  # and background remains untouched somewhere


def test_save_png_refuses_wrong_sizes_and_nan(tmp_path):
    with pytest.raises(ValueError, match="32x32"):
        encode.save_png(torch.zeros(3, 16, 16), tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        encode.save_png(torch.full((3, 32, 32), float("nan")), tmp_path / "x.png")


# -- the shipped benchmark -------------------------------------------------------------------------
shipped = pytest.mark.skipif(
    not (MINI / "manifest.csv").exists(), reason="data_samples/ntf-mini not built"
)


@shipped
def test_shipped_counts_and_splits():
    rows = list(csv.DictReader(open(MINI / "manifest.csv")))
    c = Counter((r["split"], r["generator"], r["label"]) for r in rows)
    assert c[("train", "real", "0")] >= 3000 and c[("train", "dcgan", "1")] >= 3000
    assert c[("val", "real", "0")] >= 500 and c[("val", "dcgan", "1")] >= 500
    test_gens = {g for (s, g, lab) in c if s == "test" and lab == "1"}
    assert len(test_gens) >= 8
    assert all(c[("test", g, "1")] >= 800 for g in test_gens)
    real_test = {Path(r["path"]).name for r in rows if r["split"] == "test" and r["label"] == "0"}
    assert len(real_test) >= 800
    photo_splits = defaultdict(set)
    for r in rows:
        if r["label"] == "0":
            photo_splits[r["source_photo"]].add(r["split"])
    assert all(len(s) == 1 for s in photo_splits.values())
    missing = [r["path"] for r in rows if not (MINI / r["path"]).is_file()]
    assert missing == []


@shipped
def test_shipped_real_and_fake_share_one_encoding():
    sigs = _signatures(MINI, per_folder=60)
    assert len(sigs) == 1, {k: [str(p) for p in v[:2]] for k, v in sigs.items()}


@shipped
def test_shipped_size_under_80_mb():
    total = sum(p.stat().st_size for p in MINI.parent.rglob("*") if p.is_file())
    assert total < 80e6, f"data_samples/ holds {total / 1e6:.1f} MB"
