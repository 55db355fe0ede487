import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    roc_auc_score,
)

from ntf_core.metrics import (
    average_row,
    calibration,
    collapse_stats,
    detection_metrics,
    family_rows,
    format_table,
    knn_separability,
    oracle_accuracy,
)


def test_hand_computed_case():
    # reals 0.1, 0.6 (one false positive); fakes 0.4 (one false negative), 0.9
    m = detection_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert m["ACC"] == 0.5 and m["FPR"] == 0.5 and m["FNR"] == 0.5
    # ranking fake, real, fake, real -> precision 1 at recall .5, 2/3 at recall 1 -> AP = .5*1 +
    # .5*2/3
    assert m["AP"] == pytest.approx(0.5 + 1 / 3)


def test_a_score_exactly_at_the_threshold_is_called_fake():
    """The module documents "fake" as score >= threshold: a ``>`` would call both 0.5s real."""
    m = detection_metrics([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.8])
    assert (m["FPR"], m["FNR"], m["ACC"]) == (0.5, 0.0, 0.75)
    m = detection_metrics([0, 1, 0, 1], [0.1, 0.7, 0.7, 0.9], threshold=0.7)
    assert (m["FPR"], m["FNR"]) == (0.5, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1)
    m = detection_metrics(y, s)
    tn, fp, fn, tp = confusion_matrix(y, s >= 0.5).ravel()
    assert m["AP"] == pytest.approx(average_precision_score(y, s))
    assert m["ACC"] == pytest.approx(accuracy_score(y, s >= 0.5))
    assert m["FPR"] == pytest.approx(fp / (fp + tn)) and m["FNR"] == pytest.approx(fn / (fn + tp))


def test_average_is_weighted_by_images_and_table_prints_it():
    a = {"AP": 1.0, "AUC": 1.0, "ACC": 1.0, "FPR": 0.0, "FNR": 0.0, "n_real": 10, "n_fake": 10}
    b = {"AP": 0.5, "AUC": 0.5, "ACC": 0.5, "FPR": 1.0, "FNR": 0.0, "n_real": 30, "n_fake": 30}
    avg = average_row({"a": a, "b": b})
    assert (
        avg["AP"] == pytest.approx(0.625)
        and avg["FPR"] == pytest.approx(0.75)
        and avg["n_real"] == 40
    )
    text = format_table({"a": a, "b": b})
    assert text.splitlines()[-1].split()[:4] == ["average", "62.5", "62.5", "62.5"]
    # a row stored before AUC existed averages and prints as missing, not as an error
    old = {k: v for k, v in a.items() if k != "AUC"}
    assert np.isnan(average_row({"a": old})["AUC"]) and "nan" in format_table({"a": old})


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="equal length"):
        detection_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        detection_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        detection_metrics([0, 1], [0.5, float("nan")])


def test_family_rows_follow_the_paper_layout():
    r = lambda ap, n: {"AP": ap, "ACC": ap, "FPR": 0.0, "FNR": 0.0, "n_real": n, "n_fake": n}
    rows = {"g1": r(1.0, 10), "g2": r(0.5, 30), "d1": r(0.8, 10), "extra": r(0.2, 10)}
    out = family_rows(rows, {"gan": ["g1", "g2"], "diffusion": ["d1", "missing"]})
    assert list(out) == ["g1", "g2", "gan average", "d1", "diffusion average", "extra", "average"]
    assert out["gan average"]["AP"] == pytest.approx(0.625)
    assert out["diffusion average"]["AP"] == pytest.approx(0.8)
    assert out["average"]["AP"] == pytest.approx((10 + 15 + 8 + 2) / 60)


@pytest.mark.parametrize("seed", range(4))
def test_oracle_accuracy_is_the_best_of_every_threshold(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(0.4 + 0.2 * y, 0.2), 2)  # ties on purpose
    acc, t = oracle_accuracy(y, s)
    brute = max(((s >= u) == y).mean() for u in [*np.unique(s), np.inf])
    assert acc == pytest.approx(brute)
    assert ((s >= t) == y).mean() == pytest.approx(acc)
    assert acc >= detection_metrics(y, s)["ACC"]


def test_calibration_hand_computed():
    # bin 0 (scores .05, .15 -> bins 0 and 1), bin 9 (.95, .95)
    y = [0, 1, 1, 1]
    s = [0.05, 0.15, 0.95, 0.95]
    c = calibration(y, s, bins=10)
    assert [b["bin"] for b in c["bins"]] == [0, 1, 9]
    # ECE = 1/4*|0-.05| + 1/4*|1-.15| + 2/4*|1-.95|
    assert c["ece"] == pytest.approx(0.25 * 0.05 + 0.25 * 0.85 + 0.5 * 0.05)
    perfect = calibration([0, 1], [0.0, 1.0])
    assert perfect["ece"] == 0.0 and perfect["bins"][-1]["hi"] == 1.0


def test_auc_against_scikit_learn_and_collapse_stats_by_hand():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.3 * y
    assert detection_metrics(y, s)["AUC"] == pytest.approx(roc_auc_score(y, s))
    # reals: (1, 0) and (0, 1) -> pairwise cos 0; fakes: (1, 1) twice -> cos 1; means (.5, .5) and
    # (1, 1): cos 1
    c = collapse_stats([[2, 0], [0, 3]], [[1, 1], [2, 2]])
    assert c == pytest.approx({"cos_real": 0.0, "cos_fake": 1.0, "cos_means": 1.0})
    c = collapse_stats([[1, 0], [1, 0]], [[-1, 0], [-1, 0]])
    assert c["cos_means"] == pytest.approx(-1.0)


def test_knn_separability_against_scikit_learn_and_its_limits():
    """5-NN, cosine distance, 5 shuffled stratified folds seeded by ``seed``: a change of k, metric,
    folds or seed moves the score off the direct scikit-learn computation."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    # weak signal, rows of very different norms (cosine and euclidean neighbours differ)
    x = (rng.normal(size=(80, 6)) + 0.6 * y[:, None]) * rng.uniform(0.1, 10, (80, 1))
    for kw in ({}, {"k": 7, "folds": 3, "seed": 3}):  # the defaults: k 5, 5 folds, seed 0
        k, folds, seed = kw.get("k", 5), kw.get("folds", 5), kw.get("seed", 0)
        accs = []
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            knn = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(x[train], y[train])
            accs.append((knn.predict(x[test]) == y[test]).mean())
        assert knn_separability(x, y, **kw) == pytest.approx(np.mean(accs)), kw
    # two tight clusters in different directions: apart; labels unrelated to the features: mixed
    apart = np.r_[
        [1, 0, 0] + 0.05 * rng.normal(size=(50, 3)), [0, 1, 0] + 0.05 * rng.normal(size=(50, 3))
    ]
    assert knn_separability(apart, np.repeat([0, 1], 50)) == 1.0
    noise = rng.normal(size=(400, 8))
    assert knn_separability(noise, rng.permutation(np.repeat([0, 1], 200))) == pytest.approx(
        0.5, abs=0.08
    )
