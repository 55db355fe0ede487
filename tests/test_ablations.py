"""Figures 3 and 4 (ntf_core.ablations) on a tiny slice of ntf-mini with a small random CNN."""

from pathlib import Path

import pytest

from ntf_core.ablations import FIGURE3, _slug, ablations, family_summary
from ntf_core.checkpoints import load_checkpoint
from ntf_core.config import make_config
from ntf_core.data import scan
from ntf_core.mini import by_photo, make_folder, mini_test_dirs, photo_of


def test_photo_of_reads_crop_names_and_refuses_others():
    assert (
        photo_of("x/0_real/Bridge-by-Sander-Klootwijk-s128-y0264-x0384.png")
        == "Bridge-by-Sander-Klootwijk"
    )
    with pytest.raises(ValueError, match="dcgan-00001.png: not an ntf-mini crop name"):
        photo_of("x/1_fake/dcgan-00001.png")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    samples = scan(make_config("mini").train_dir, layout="cnndetection")
    crops = by_photo([s for s in samples if s.label == 0])
    reals = [s for photo in sorted(crops)[:4] for s in crops[photo][:16]]  # 4 photos x 16 crops
    train = make_folder(root / "train", reals, [s for s in samples if s.label == 1][:64])
    base = make_config(
        "mini",
        encoder="small_cnn",
        encoder_weights="",
        width=8,
        train_dir=str(train),
        val_dir="",
        epochs1=1,
        epochs2=1,
        batch_size=16,
        warmup_epochs=0,
        out=str(root / "runs"),
    )
    dirs = mini_test_dirs()
    tests = {g: dirs[g] for g in ("sngan", "ddim")}
    results = ablations(
        base, tests, dm_dir=dirs["ddpm"], n_fakes=16, n_test=8, few_photos=1, log=lambda m: None
    )
    return base, results


def test_every_variant_is_trained_and_scored_on_every_generator(tiny):
    _, results = tiny
    assert set(results["3"]) == set(FIGURE3)
    assert set(results["4a"]) == {"GAN fakes", "DM fakes"}
    assert set(results["4b"]) == {"1 photos", "all 4 photos"}
    for fig in results.values():
        for rec in fig.values():
            assert set(rec["rows"]) == {"sngan", "ddim"}
            assert all(r["n_real"] == 8 and r["n_fake"] == 8 for r in rec["rows"].values())


def test_figure3_variants_train_stage1_with_their_terms(tiny):
    base, results = tiny
    for name, overrides in FIGURE3.items():
        cfg = load_checkpoint(Path(base.out) / "3" / _slug(name) / "stage1.pt", "stage1")["config"]
        assert cfg["lam"] == overrides.get("lam", 0.1)
        assert cfg["het_weight"] == overrides.get("het_weight", 1.0)
    # L_hom alone: its stage-1 total is its L_hom; with every term, the total is larger than L_hom
    alone, full = results["3"]["w/o L_het, L_ort"]["stage1"], results["3"]["full NTF"]["stage1"]
    assert alone["total"] == pytest.approx(alone["hom"]) and full["total"] > full["hom"] + 1.0


def test_figure4_sizes_and_step_budget(tiny):
    base, results = tiny
    # 4a: stage 2 on 16 reals + 16 fakes, epochs scaled so the steps match stage 2 on the 128
    # training images
    for rec in results["4a"].values():
        assert (
            rec["n_stage2"] == 32
            and rec["overrides"]["epochs2"] == 4
            and rec["stage2"]["epoch"] == 4
        )
    # 4b: stage 1 on the 16 crops of one photo vs 16 crops spread over all four photos;
    # 64 / 16 = 4 x the epochs
    few, spread = results["4b"]["1 photos"], results["4b"]["all 4 photos"]
    assert few["n_stage1"] == spread["n_stage1"] == 16
    assert len(few["overrides"]["photos"]) == 1 and spread["overrides"]["photos"] == "all"
    assert few["stage1"]["epoch"] == 4 and few["n_stage2"] == 128
    data = Path(base.out) / "4b" / "data"
    assert len({photo_of(p) for p in (data / "1_photos" / "0_real").iterdir()}) == 1
    assert len({photo_of(p) for p in (data / "all_4_photos" / "0_real").iterdir()}) > 1


def test_figure4a_and_the_ld_figure_train_on_what_their_names_say(tiny):
    """4a's two stage-2 sets share their reals and differ only in the fakes (the training GAN's or
    the DM folder's); the L_d variants train stage 2 with L_ext switched off, or read e, on full
    NTF's stage 1."""
    base, _ = tiny
    data = Path(base.out) / "4a" / "data"
    names = {
        arm: {
            label: sorted(p.name for p in (data / arm / label).iterdir())
            for label in ("0_real", "1_fake")
        }
        for arm in ("GAN_fakes", "DM_fakes")
    }
    assert names["GAN_fakes"]["0_real"] == names["DM_fakes"]["0_real"]
    assert len(names["GAN_fakes"]["1_fake"]) == len(names["DM_fakes"]["1_fake"]) == 16
    assert all(n.startswith("dcgan-") for n in names["GAN_fakes"]["1_fake"])
    assert all(n.startswith("ddpm-") for n in names["DM_fakes"]["1_fake"])
    full_stage1 = Path(base.out) / "3" / _slug("full NTF") / "stage1.pt"
    for name, want in (("w/o L_ext", {"ext_weight": 0.0}), ("verdict on e", {"reading": "e"})):
        cfg = load_checkpoint(Path(base.out) / "L_d" / _slug(name) / "stage2.pt", "stage2")[
            "config"
        ]
        assert {k: cfg[k] for k in want} == want, name
        assert Path(cfg["stage1_checkpoint"]) == full_stage1, name


def test_figure4a_refuses_to_score_its_own_training_fakes(tmp_path):
    base = make_config("mini", out=str(tmp_path))
    dirs = mini_test_dirs()
    with pytest.raises(ValueError, match="cannot give 500 to train on and 400 to test"):
        ablations(
            base,
            {"ddpm": dirs["ddpm"]},
            dm_dir=dirs["ddpm"],
            figures=("4a",),
            n_fakes=500,
            n_test=400,
            full_stage1="unused.pt",
            log=lambda m: None,
        )


def test_family_summary_averages_each_family_per_variant(tiny):
    _, results = tiny
    summary = family_summary(results["3"], {"gan": ["sngan"], "diffusion": ["ddim"]}, "AP")
    assert list(summary) == ["gan", "diffusion", "average"]
    for variant, rec in results["3"].items():
        rows = rec["rows"]
        assert summary["gan"][variant] == rows["sngan"]["AP"]
        assert summary["average"][variant] == pytest.approx(
            (rows["sngan"]["AP"] + rows["ddim"]["AP"]) / 2
        )
