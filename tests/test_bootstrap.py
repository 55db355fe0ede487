"""The photo-cluster bootstrap: weights that resample photographs (shared by every folder) and
fakes, weighted AP equal to AP on the duplicated set, intervals that are degenerate where they must
be, paired differences."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from ntf_core.bootstrap import (
    accuracy_at_half,
    cluster_rates,
    difference_table,
    format_interval,
    interval_table,
    photo_bootstrap,
    replicate_weights,
    verdict,
)
from ntf_core.metrics import detection_metrics


def _world(seed=0, photos=4, per_photo=10, fakes=40, folders=("a", "b")):
    rng = np.random.default_rng(seed)
    y = np.array([0] * (photos * per_photo) + [1] * fakes)
    clusters = [f"photo{i // per_photo}" for i in range(photos * per_photo)] + [
        f"fake{i}" for i in range(fakes)
    ]
    labels = {f: y for f in folders}
    cl = {f: [c if c.startswith("photo") else f"{f}/{c}" for c in clusters] for f in folders}
    return rng, labels, cl


def test_weights_resample_whole_photographs_shared_across_folders():
    _, labels, cl = _world()
    w = replicate_weights(labels, cl, n_boot=50, seed=1)
    for f in labels:
        assert w[f].shape == (50, 80)
        reals = w[f][:, :40].reshape(50, 4, 10)
        assert (reals == reals[:, :, :1]).all()  # a photo's crops are drawn together
        assert (reals[:, :, 0].sum(1) == 4).all()  # 4 photos drawn per replicate
        assert (w[f][:, 40:].sum(1) == 40).all()  # 40 fakes drawn per replicate
    assert (w["a"][:, :40] == w["b"][:, :40]).all()  # the same photographs in every folder
    assert not (w["a"][:, 40:] == w["b"][:, 40:]).all()  # fakes drawn per folder


def test_weighted_ap_is_ap_of_the_duplicated_set():
    """photo_bootstrap's interval is the percentiles of AP on each replicate's duplicated set (the
    weights of replicate_weights): weights dropped, misaligned or of another draw move it."""
    rng, labels, cl = _world()
    s = rng.random(80)
    y, c = {"a": labels["a"]}, {"a": cl["a"]}
    w = replicate_weights(y, c, n_boot=5, seed=2)["a"]
    duplicated = []
    for row in w:
        idx = np.repeat(np.arange(80), row)  # each image as many times as it was drawn
        duplicated.append(average_precision_score(labels["a"][idx], s[idx]))
    cell = photo_bootstrap(y, c, {"m": [{"a": s}]}, n_boot=5, seed=2)["methods"]["m"]["a"]
    assert (cell["lo"], cell["hi"]) == pytest.approx(tuple(np.percentile(duplicated, [2.5, 97.5])))
    assert cell["mean"] == pytest.approx(average_precision_score(labels["a"], s))


def test_seed_mean_and_std_by_hand():
    """ "mean" and "std" are over seeds, std with ddof 1 (ddof 0, or a mean over replicates, would
    differ); group and overall averages are the plain mean of their folders."""
    rng, labels, cl = _world()
    runs = [{f: labels[f] * k / 4 + rng.random(80) for f in labels} for k in (1, 2, 3)]
    boot = photo_bootstrap(labels, cl, {"m": runs}, groups={"g": ["a"]}, n_boot=20)["methods"]["m"]
    for row, folders in (("a", ["a"]), ("g average", ["a"]), ("average", ["a", "b"])):
        aps = [np.mean([average_precision_score(labels[f], r[f]) for f in folders]) for r in runs]
        mean = sum(aps) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in aps) / 2)
        assert boot[row]["mean"] == pytest.approx(mean) and boot[row]["std"] == pytest.approx(std)
        assert boot[row]["seeds"] == 3


def test_intervals_paired_differences_and_seeds():
    rng, labels, cl = _world()
    perfect = {f: labels[f] + 0.0 for f in labels}
    noisy = [{f: labels[f] * 0.3 + rng.random(80) for f in labels} for _ in range(3)]
    boot = photo_bootstrap(
        labels, cl, {"perfect": [perfect], "noisy": noisy}, groups={"g": ["a"]}, n_boot=200
    )
    p = boot["methods"]["perfect"]
    assert p["average"] == {"mean": 1.0, "std": 0.0, "lo": 1.0, "hi": 1.0, "seeds": 1}
    n = boot["methods"]["noisy"]["average"]
    assert n["seeds"] == 3 and n["std"] > 0 and n["lo"] < n["mean"] < n["hi"] < 1
    assert set(boot["methods"]["noisy"]) == {"a", "b", "g average", "average"}
    d = boot["differences"]["perfect - noisy"]["average"]
    assert d["excludes_0"] and 0 < d["lo"] <= d["mean"] <= d["hi"]
    same = photo_bootstrap(labels, cl, {"x": noisy, "y": noisy}, n_boot=50)["differences"]["x - y"][
        "a"
    ]
    assert same == {"mean": 0.0, "lo": 0.0, "hi": 0.0, "excludes_0": False}
    assert format_interval(n).count("[") == 1 and "±" in format_interval(n)


def test_photo_clusters_widen_the_interval_when_errors_cluster():
    """When a detector's false alarms sit in one photograph, resampling photographs (not crops)
    gives a wider interval: the point of the cluster bootstrap."""
    rng, labels, cl = _world(photos=8, per_photo=20, fakes=160, folders=("a",))
    s = np.r_[
        np.where(np.arange(160) < 20, 0.9, 0.1) + 0.05 * rng.random(160),
        0.5 + 0.05 * rng.random(160),
    ]
    iid = {"a": [f"crop{i}" if c.startswith("photo") else c for i, c in enumerate(cl["a"])]}
    wide = photo_bootstrap(labels, cl, {"m": [{"a": s}]}, n_boot=300)["methods"]["m"]["a"]
    narrow = photo_bootstrap(labels, iid, {"m": [{"a": s}]}, n_boot=300)["methods"]["m"]["a"]
    assert wide["hi"] - wide["lo"] > 2 * (narrow["hi"] - narrow["lo"])


def test_unknown_metric_is_refused():
    _, labels, cl = _world()
    with pytest.raises(ValueError, match="metric must be one of"):
        photo_bootstrap(labels, cl, {"m": [{f: labels[f] + 0.0 for f in labels}]}, metric="F1")


def test_tables_say_what_the_intervals_support():
    assert (
        verdict({"lo": 0.01, "hi": 0.2}) == "ahead"
        and verdict({"lo": -0.2, "hi": -0.01}) == "behind"
    )
    assert verdict({"lo": -0.01, "hi": 0.2}) == "within noise"
    rng, labels, cl = _world()
    runs = {
        "a": [{f: labels[f] + 0.0 for f in labels}],
        "b": [{f: labels[f] * 0.2 + rng.random(80) for f in labels}],
        "c": [{f: labels[f] * 0.2 + rng.random(80) for f in labels}],
    }
    boot = photo_bootstrap(labels, cl, runs, n_boot=100)
    headers, rows = interval_table(boot)
    assert (
        headers == ["", "a", "b", "c"]
        and rows[-1][0] == "average"
        and rows[-1][1] == "100.0 [100.0, 100.0]"
    )
    headers, rows = difference_table(boot)
    assert headers == ["", "a - b", "a - c"] and rows[-1][1].endswith("ahead")


def test_folders_with_other_real_clusters_are_resampled_on_their_own_and_empty_ones_refused():
    _, labels, cl = _world()
    cl["b"] = [c.replace("photo", "other") for c in cl["b"]]
    w = replicate_weights(labels, cl, n_boot=30, seed=0)
    assert (w["a"][:, :40].sum(1) == 40).all() and (w["b"][:, :40].sum(1) == 40).all()
    assert not (w["a"][:, :40] == w["b"][:, :40]).all()
    with pytest.raises(ValueError, match="b: a test folder needs real and fake"):
        replicate_weights(
            {"a": labels["a"], "b": np.zeros(5)}, {"a": cl["a"], "b": ["x"] * 5}, n_boot=2
        )


def test_cluster_rates_resample_photographs_and_difference():
    """Rates by photograph: with one photograph all fake and one all real, a replicate is 0, 1/2 or
    1, so the interval spans [0, 1]; a difference is claimed only when its interval excludes 0."""
    mixed = ([1, 1, 0, 0], ["p1", "p1", "p2", "p2"])
    r = cluster_rates({"seen": mixed, "unseen": ([1, 1, 1], ["q1", "q2", "q2"])}, n_boot=500)
    assert r["seen"]["mean"] == 0.5 and (r["seen"]["lo"], r["seen"]["hi"]) == (0.0, 1.0)
    assert r["seen"]["photos"] == 2 and (r["unseen"]["lo"], r["unseen"]["hi"]) == (1.0, 1.0)
    d = r["unseen - seen"]
    assert d["mean"] == 0.5 and (d["lo"], d["hi"]) == (0.0, 1.0) and not d["excludes_0"]
    clear = cluster_rates(
        {"a": ([0] * 6, list("aabbcc")), "b": ([1] * 6, list("ddeeff"))}, n_boot=200
    )
    assert clear["b - a"]["excludes_0"] and clear["b - a"]["mean"] == 1.0


def test_cluster_rates_pool_crops_not_photographs_and_refuse_empty_groups():
    """The rate is the pooled share of crops (a photo with 3 crops weighs 3 times one with 1), not
    the mean of the per-photograph rates; an empty group is an error that names it."""
    r = cluster_rates({"g": ([1, 1, 1, 0], ["a", "a", "a", "b"])}, n_boot=100)
    assert r["g"]["mean"] == 0.75  # the mean of per-photo rates would be 0.5
    with pytest.raises(ValueError, match="group 'empty' has 0 values"):
        cluster_rates({"empty": ([], [])})


def test_accuracy_metric_matches_the_detection_metrics_and_its_weights():
    rng, labels, cl = _world()
    s = rng.random(80)
    boot = photo_bootstrap(
        {"a": labels["a"]}, {"a": cl["a"]}, {"m": [{"a": s}]}, metric="ACC", n_boot=100
    )
    cell = boot["methods"]["m"]["a"]
    # >= 0.5 is "fake", as there
    assert cell["mean"] == pytest.approx(detection_metrics(labels["a"], s)["ACC"])
    assert cell["lo"] <= cell["mean"] <= cell["hi"] and cell["lo"] < cell["hi"]
    w = np.arange(80) % 3  # a weight is a count of copies
    assert accuracy_at_half(labels["a"], s, sample_weight=w) == pytest.approx(
        detection_metrics(np.repeat(labels["a"], w), np.repeat(s, w))["ACC"]
    )
    assert accuracy_at_half([0, 1], [0.5, 0.5]) == 0.5  # exactly 0.5 is called fake
