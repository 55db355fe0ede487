"""The forensics protocol: thresholds chosen on held-out reals, temperatures, verdicts, re-encoding
stability, and the CLI commands built on them."""

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve

from ntf_core.calibration import (
    Calibration,
    calibrate_scores,
    fit_temperature,
    protocol_row,
    sigmoid,
    threshold_at_fpr,
    tpr_at_fpr,
)
from ntf_core.cli import main
from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.evaluate import detect, evaluate_dirs
from ntf_core.mini import default_mini_root, mini_test_dirs
from ntf_core.protocol import (
    REENCODINGS,
    flip_rates,
    load_calibration,
    reencode,
    reencode_tensor,
    stability,
    verdicts,
)

CKPT = SHIPPED_CHECKPOINTS / "stage2.pt"


# -- the threshold --------------------------------------------------------------------------------


def test_threshold_is_the_conformal_quantile_by_hand():
    # n = 100 scores 0..99, a = 5 %: k = ceil(0.95 * 101) = 96, threshold = 96th smallest = 95;
    # above it: 96, 97, 98, 99
    s = np.random.default_rng(0).permutation(100).astype(float)
    assert threshold_at_fpr(s, 0.05) == 95.0
    assert (s > threshold_at_fpr(s, 0.05)).mean() == 0.04
    # n = 19 is the fewest that can pin 5 %: k = ceil(0.95 * 20) = 19, the largest
    assert threshold_at_fpr(np.arange(19.0), 0.05) == 18.0


def test_too_few_reals_for_the_target_is_an_error():
    with pytest.raises(ValueError, match="at least 19 are needed"):
        threshold_at_fpr(np.arange(10.0), 0.05)
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_at_fpr(np.arange(10.0), 0.0)


def test_realised_fpr_on_calibration_reals_is_within_sampling_error_of_the_target():
    rng = np.random.default_rng(1)
    n, a = 2000, 0.05
    reals = rng.normal(size=n)
    cal = calibrate_scores(reals, a)
    # on the calibration reals themselves: n - k above the threshold, k = ceil((1 - a)(n + 1)), so
    # a - 2/n < realised <= a (distinct scores)
    assert a - 2 / n < cal.realised_fpr <= a
    # on new reals of the same kind the expected FPR is at most a and close to it: 300 fresh
    # calibrations, each judged on fresh reals
    fprs = []
    for _ in range(300):
        c = calibrate_scores(rng.normal(size=200), a)
        fprs.append((c.p_fake(rng.normal(size=2000)) > c.threshold).mean())
    se = np.std(fprs) / math.sqrt(len(fprs))
    assert abs(np.mean(fprs) - a) < 3 * se + 1 / 201


def test_unsure_band_and_verdicts():
    cal = calibrate_scores(np.linspace(-3, 3, 999), 0.05)
    p = np.array([0.0, cal.unsure_below, (cal.unsure_below + cal.threshold) / 2, cal.threshold, 1])
    assert cal.unsure_below < cal.threshold
    assert list(cal.verdicts(p)) == ["real", "real", "unsure", "unsure", "fake"]
    # at most a of the reals are called fake, at most 2a are not called real
    verdict = cal.verdicts(cal.p_fake(np.linspace(-3, 3, 999)))
    assert (verdict == "fake").mean() <= 0.05 and (verdict != "real").mean() <= 0.10


def test_temperature_recovers_an_overconfidence_factor():
    rng = np.random.default_rng(2)
    true_logit = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < sigmoid(true_logit)).astype(int)
    assert fit_temperature(3 * true_logit, y) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(true_logit, y) == pytest.approx(1.0, rel=0.1)
    # the temperature keeps the order: the threshold's FPR on the reals does not move
    cal1 = calibrate_scores(true_logit[y == 0], 0.1)
    cal3 = calibrate_scores(3 * true_logit[y == 0], 0.1, 3 * true_logit, y)
    assert cal3.temperature == pytest.approx(3.0, rel=0.1)
    assert cal1.realised_fpr == cal3.realised_fpr


def test_protocol_row_against_scikit_learn():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(300, int), np.ones(200, int)]
    p = sigmoid(rng.normal(size=500) + 1.5 * y)
    cal = Calibration(target_fpr=0.1, threshold=0.7, unsure_below=0.6)
    row = protocol_row(y, p, cal)
    assert row["AUC"] == pytest.approx(roc_auc_score(y, p))
    fpr, tpr, _ = roc_curve(y, p)
    assert row["TPR@FPR"] == pytest.approx(tpr[fpr <= 0.1].max())
    assert row["target FPR"] == 0.1
    assert row["FPR cal"] == pytest.approx((p[y == 0] > 0.7).mean())
    assert row["TPR cal"] == pytest.approx((p[y == 1] > 0.7).mean())
    assert row["ACC cal"] == pytest.approx(((p > 0.7) == y).mean())
    # without a calibration: no calibrated columns, TPR at the given target
    plain = protocol_row(y, p, None, target_fpr=0.2)
    assert "ACC cal" not in plain and plain["TPR@FPR"] == tpr_at_fpr(y, p, 0.2)


def test_calibration_round_trips_through_a_dict():
    cal = calibrate_scores(np.arange(100.0), 0.05, reals="here")
    assert Calibration.from_dict({**cal.to_dict(), "future field": 1}) == cal


# -- a real detector file --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """The shipped detector calibrated on 100 ntf-mini validation reals (through the CLI), with its
    ONNX export."""
    d = tmp_path_factory.mktemp("cal")
    reals = d / "reals"
    reals.mkdir()
    for f in sorted((default_mini_root() / "val" / "dcgan" / "0_real").iterdir())[::5]:
        shutil.copy(f, reals / f.name)
    rc = main(
        [
            "calibrate",
            "--checkpoint",
            str(CKPT),
            "--reals",
            str(reals),
            "--fpr",
            "0.1",
            "--out",
            str(d / "cal.pt"),
            "--onnx",
            str(d / "cal.onnx"),
        ]
    )
    assert rc == 0
    return d / "cal.pt", d / "cal.onnx", reals


def test_calibrate_writes_copies_that_carry_the_threshold(calibrated):
    pt, onnx, reals = calibrated
    cal = load_calibration(pt)
    assert cal.n_reals == 100 and cal.target_fpr == 0.1 and cal.temperature == 1.0
    assert load_calibration(onnx) == cal
    assert load_calibration(CKPT) is None  # the original is untouched
    # realised on its own calibration reals: within 2/n below the target
    p = np.array([r["p_fake"] for r in verdicts(pt, [reals])])
    assert 0.1 - 2 / 100 < (p > cal.threshold).mean() <= 0.1
    assert (p > cal.threshold).mean() == pytest.approx(cal.realised_fpr)


def test_verdicts_of_checkpoint_and_onnx_agree(calibrated, capsys):
    pt, onnx, _ = calibrated
    files = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[:8]
    a, b = verdicts(pt, files), verdicts(onnx, files)
    assert [r["verdict"] for r in a] == [r["verdict"] for r in b]
    assert [r["p_fake"] for r in a] == pytest.approx([r["p_fake"] for r in b], abs=1e-5)
    assert main(["detect", "--json", "--checkpoint", str(onnx), *map(str, files)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["verdict"] for r in rows} <= {"real", "unsure", "fake"}


def test_calibrated_onnx_detect_never_imports_torch(calibrated):
    import subprocess
    import sys

    _, onnx, _ = calibrated
    f = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[0]
    code = (
        "import json, sys; from ntf_core.cli import main; "
        f"rc = main(['detect', '--json', '--checkpoint', {str(onnx)!r}, {str(f)!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert row["verdict"] == verdicts(onnx, [f])[0]["verdict"]


def test_a_nan_score_is_an_error_not_a_dropped_image(monkeypatch, calibrated):
    import ntf_core.protocol as protocol

    pt, _, _ = calibrated
    monkeypatch.setattr(
        protocol.Scorer, "logits", lambda self, files, skipped=None: np.full(len(files), np.nan)
    )
    f = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[0]
    with pytest.raises(ValueError, match="scored .* NaN"):
        verdicts(pt, [f])
    with pytest.raises(ValueError, match="scored .* NaN"):
        stability(pt, [f])


def test_uncalibrated_checkpoint_works_as_before(capsys):
    files = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[:3]
    assert main(["detect", "--checkpoint", str(CKPT), *map(str, files)]) == 0
    lines = capsys.readouterr().out.splitlines()
    want = [f"{s:.4f}  {f}" for f, s in detect(CKPT, files)]
    assert lines == want  # no verdict column without a threshold
    # evaluate_dirs' rows without a target FPR are detection_metrics' as before
    row = evaluate_dirs(CKPT, [mini_test_dirs()["dcgan"]])["dcgan"]
    assert set(row) == {"AP", "AUC", "ACC", "FPR", "FNR", "n_real", "n_fake"}


def test_evaluate_reports_the_calibrated_operating_point(calibrated, tmp_path):
    pt, _, _ = calibrated
    folder = tmp_path / "t"
    src = mini_test_dirs()["dcgan"]
    for label in ("0_real", "1_fake"):
        (folder / label).mkdir(parents=True)
        for f in sorted((src / label).iterdir())[::20]:
            shutil.copy(f, folder / label / f.name)
    row = evaluate_dirs(pt, [folder])["t"]
    p = np.array([r["p_fake"] for r in verdicts(pt, [folder / "0_real"])])
    assert row["FPR cal"] == pytest.approx((p > load_calibration(pt).threshold).mean())
    assert row["target FPR"] == 0.1
    assert {"TPR@FPR", "ACC cal", "TPR cal", "unsure"} <= set(row)


# -- re-encoding -----------------------------------------------------------------------------------


def test_reencodings_do_what_they_say():
    rng = np.random.default_rng(4)
    im = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    assert reencode(im, "resize 0.5x").size == (16, 16)
    assert reencode(im, "resize 2x").size == (64, 64)
    errors = {
        q: np.abs(np.asarray(reencode(im, f"JPEG {q}"), float) - np.asarray(im)).mean()
        for q in (95, 75, 50)
    }
    assert 0 < errors[95] < errors[75] < errors[50]  # lower quality, larger change
    assert np.abs(np.asarray(reencode(im, "WebP 80"), float) - np.asarray(im)).mean() > 0


def test_reencode_tensor_matches_the_file_path(tmp_path):
    import torch

    from ntf_core.data import load_tensor

    files = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[:4]
    x = load_tensor(files)
    for how in REENCODINGS:
        for i, f in enumerate(files):
            reencode(Image.open(f).convert("RGB"), how).save(tmp_path / f"{i}.png")
        from_files = [tmp_path / f"{i}.png" for i in range(len(files))]
        from ntf_core.augment import eval_transform
        from ntf_core.data import Images, Sample

        ds = Images([Sample(p, 1, "") for p in from_files], eval_transform(32))
        want = torch.stack([ds[i][0] for i in range(len(ds))]).float() / 255
        assert torch.equal(reencode_tensor(x, how), want), how


def test_stability_reports_flips_consistent_with_the_scores(calibrated):
    pt, _, _ = calibrated
    cal = load_calibration(pt)
    files = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[:6]
    rows = stability(pt, files)
    assert len(rows) == 6
    for r in rows:
        assert set(r["reencoded"]) == set(REENCODINGS)
        fake = r["p_fake"] > cal.threshold
        assert r["flips"] == [h for h, p in r["reencoded"].items() if (p > cal.threshold) != fake]
        allp = [r["p_fake"], *r["reencoded"].values()]
        assert r["spread"] == pytest.approx(max(allp) - min(allp))
    rates = flip_rates(rows)
    assert rates["any"] == sum(bool(r["flips"]) for r in rows) / 6


def test_flip_rates_by_hand():
    rows = [
        {"flips": ["JPEG 50"]},
        {"flips": []},
        {"flips": ["JPEG 50", "resize 2x"]},
        {"flips": []},
    ]
    rates = flip_rates(rows)
    assert rates["JPEG 50"] == 0.5 and rates["resize 2x"] == 0.25 and rates["any"] == 0.5
    assert rates["JPEG 95"] == 0.0


def test_cli_stability_and_bad_calibration_input(calibrated, tmp_path, capsys):
    pt, _, _ = calibrated
    f = sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[0]
    assert main(["detect", "--stability", "--checkpoint", str(pt), str(f)]) == 0
    out = capsys.readouterr().out
    assert "spread" in out and "flips:" in out and str(f) in out
    few = tmp_path / "few"
    few.mkdir()
    shutil.copy(f, few / f.name)
    assert main(["calibrate", "--checkpoint", str(CKPT), "--reals", str(few)]) == 2
    err = capsys.readouterr().err
    assert f"{few}: 1 real images cannot pin a 5 % false-positive rate" in err
    assert main(["calibrate", "--checkpoint", str(CKPT), "--reals", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err
