"""`ntf evaluate` and `ntf detect` on a tiny checkpoint: per-folder tables, probabilities, clear
errors."""

import json
import shutil

import numpy as np
import pytest
import torch
import torchvision
from conftest import MINI
from PIL import Image

from ntf_core import train
from ntf_core.checkpoints import load_detector
from ntf_core.cli import main
from ntf_core.config import SHIPPED_CHECKPOINTS, make_config
from ntf_core.data import LayoutError, scan
from ntf_core.evaluate import evaluate_dirs
from ntf_core.metrics import detection_metrics
from ntf_core.mini import mini_test_dirs


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    cfg = make_config(
        "mini",
        train_dir=str(MINI / "train"),
        val_dir="",
        max_images=64,
        batch_size=32,
        epochs1=1,
        epochs2=1,
        encoder="small_cnn",
        encoder_weights="",
        width=8,
        view_size=28,
        out=str(out),
    )
    train.stage1(cfg)
    return train.stage2(cfg)


@pytest.fixture(scope="module")
def small_tests(tmp_path_factory):
    """Two 20+20 image test folders copied from ntf-mini, one with a class level (0_real under a
    class)."""
    root = tmp_path_factory.mktemp("tests")
    source = mini_test_dirs()
    dirs = []
    for gen, nested in (("sngan", False), ("ddim", True)):
        d = root / gen
        for label_dir in ("0_real", "1_fake"):
            target = d / ("cls" if nested else "") / label_dir
            target.mkdir(parents=True)
            for f in sorted((source[gen] / label_dir).iterdir())[:20]:
                shutil.copy(f, target)
        dirs.append(d)
    return dirs


def test_evaluate_prints_the_per_generator_table(ckpt, small_tests, capsys):
    assert main(["evaluate", "--checkpoint", str(ckpt), *map(str, small_tests)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "generator",
        *("AP", "AUC", "ACC", "FPR", "FNR", "TPR@5%"),  # at 0.5, then at the target FPR
        *("ACC", "cal", "FPR", "cal", "TPR", "cal"),  # at a calibrated threshold: "-" without one
        *("real", "fake"),
    ]
    assert lines[1].split()[7:10] == ["-", "-", "-"]
    assert [ln.split()[0] for ln in lines[1:]] == ["sngan", "ddim", "average"]
    assert all(ln.split()[-2:] == ["20", "20"] for ln in lines[1:3])


def test_evaluate_json_matches_scoring_by_hand(ckpt, small_tests, capsys):
    assert main(["evaluate", "--checkpoint", str(ckpt), "--json", str(small_tests[0])]) == 0
    out = json.loads(capsys.readouterr().out)
    samples = scan(small_tests[0])
    det, cfg = load_detector(ckpt)
    # by hand: decode, enlarge the 32 px crops to the checkpoint's image_size (64: square images, so
    # no crop is left to take), sigmoid of the logit
    u8 = torch.stack(
        [
            torch.from_numpy(np.array(Image.open(s.path).convert("RGB"))).permute(2, 0, 1)
            for s in samples
        ]
    )
    assert cfg.image_size == 64 and u8.shape[-2:] == (32, 32)
    x = torchvision.transforms.v2.functional.resize(u8, [64, 64], antialias=True).float() / 255
    with torch.no_grad():
        scores = torch.sigmoid(det.eval()(x)).numpy()
    want = detection_metrics([s.label for s in samples], scores)
    assert {k: out["rows"]["sngan"][k] for k in want} == pytest.approx(want, abs=1e-6)
    assert out["rows"]["sngan"]["target FPR"] == 0.05 and "TPR@FPR" in out["rows"]["sngan"]


def test_detect_scores_files_and_folders_of_any_size(ckpt, small_tests, tmp_path, capsys):
    """A large image is center-cropped (never resized) to the checkpoint's input, then the sigmoid
    of the logit: another crop, a resize or a missing sigmoid changes its P(fake)."""
    big = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(
        big
    )
    assert main(["detect", "--checkpoint", str(ckpt), "--json", str(big), str(small_tests[0])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 41 and out[0]["path"] == str(big)
    assert all(0.0 <= o["p_fake"] <= 1.0 for o in out)
    # by hand, with the shipped detector (the tiny one scores every crop alike, to 1e-4): the
    # 64 x 64 centre of the 300 x 200 decoded image, in [0, 1], sigmoid of the logit
    shipped = SHIPPED_CHECKPOINTS / "stage2.pt"
    assert main(["detect", "--checkpoint", str(shipped), "--json", str(big)]) == 0
    got = json.loads(capsys.readouterr().out)[0]["p_fake"]
    det, cfg = load_detector(shipped)
    u8 = torch.from_numpy(np.array(Image.open(big).convert("RGB"))).permute(2, 0, 1)
    assert cfg.image_size == 64 and u8.shape == (3, 300, 200)
    centre = u8[:, 150 - 32 : 150 + 32, 100 - 32 : 100 + 32].float() / 255
    with torch.no_grad():
        assert got == pytest.approx(float(torch.sigmoid(det.eval()(centre[None]))), abs=1e-5)


def test_clear_errors(ckpt, small_tests, tmp_path, capsys):
    fake_only = tmp_path / "fakeonly" / "1_fake"
    shutil.copytree(small_tests[0] / "1_fake", fake_only)
    assert main(["evaluate", "--checkpoint", str(ckpt), str(fake_only.parent)]) == 2
    assert "fakeonly: a test folder needs both 0_real and 1_fake" in capsys.readouterr().err
    # UnivFD style: a fake-only folder paired with a folder of reals
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--json",
                "--real-dir",
                str(small_tests[0] / "0_real"),
                str(fake_only.parent),
            ]
        )
        == 0
    )
    row = json.loads(capsys.readouterr().out)["rows"]["fakeonly"]
    assert (row["n_real"], row["n_fake"]) == (20, 20)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), str(small_tests[0])]) == 2
    assert "none.pt: no such checkpoint" in capsys.readouterr().err
    stage1 = ckpt.parent / "stage1.pt"
    assert main(["detect", "--checkpoint", str(stage1), str(small_tests[0])]) == 2
    assert "is a stage1 checkpoint, expected stage2" in capsys.readouterr().err
    broken = tmp_path / "broken" / "0_real"
    broken.mkdir(parents=True)
    (broken / "x.png").write_bytes(b"garbage")
    assert main(["detect", "--checkpoint", str(ckpt), str(broken)]) == 2
    assert "x.png" in capsys.readouterr().err
    with pytest.raises(LayoutError, match="nowhere: no such folder"):
        evaluate_dirs(ckpt, [tmp_path / "nowhere"])


def test_labels_and_clusters_follow_the_order_generalization_scores():
    """The bootstrap's labels and photo ids line up with the images scored: same subset, same
    order."""
    from ntf_core.data import scan
    from ntf_core.experiments import labels_and_clusters, load_images, pick
    from ntf_core.mini import cluster_of, mini_test_dirs

    d = {"ddim": mini_test_dirs()["ddim"]}
    labels, clusters = labels_and_clusters(d, 40)
    samples = pick(scan(d["ddim"], layout="cnndetection"), 40)
    _, y = load_images(scan(d["ddim"], layout="cnndetection"), 40)
    assert (labels["ddim"] == y).all() and clusters["ddim"] == [cluster_of(s.path) for s in samples]
    assert len(set(clusters["ddim"][:40])) == 8  # 40 reals from all 8 test photographs


def test_ntf_protocols_reads_every_stored_run_and_marks_a_missing_one(tmp_path):
    import json
    import shutil

    from ntf_core.experiments import NTF_PROTOCOLS, ntf_protocols
    from ntf_core.metrics import average_row
    from ntf_core.mini import default_mini_root

    results = default_mini_root().parent / "results"
    headers, rows = ntf_protocols(results)
    assert len(rows) == len(NTF_PROTOCOLS) and all(r[2] != "-" for r in rows)
    seed0 = json.loads((results / "generalization.json").read_text())["NTF"]["0"]
    assert rows[0][2] == f"{100 * average_row(seed0)['AP']:.1f}"
    shutil.copy(results / "ablations.json", tmp_path)
    _, partial = ntf_protocols(tmp_path)
    assert [r[2] == "-" for r in partial] == [not r[0].startswith("05") for r in partial]
