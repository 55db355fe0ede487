"""The paper's metrics (Tables 1-3): AP, ACC, FPR, FNR per test generator, and their average.

Scores are probabilities of "fake" (label 1); a prediction is "fake" when the score is >=
``threshold``. AP and ROC-AUC come from scikit-learn; ACC / FPR / FNR are the plain counts (FPR:
reals called fake, FNR: fakes called real). AP's chance level is the share of fakes (0.5 in
ntf-mini's balanced folders); AUC's is always 0.5.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

COLUMNS = ("AP", "AUC", "ACC", "FPR", "FNR")


def detection_metrics(labels, scores, threshold: float = 0.5) -> dict:
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-d and of equal length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    pred = s >= threshold
    real, fake = y == 0, y == 1
    both = real.any() and fake.any()
    return {
        "AP": float(average_precision_score(y, s)) if both else float("nan"),
        "AUC": float(roc_auc_score(y, s)) if both else float("nan"),
        "ACC": float((pred == y.astype(bool)).mean()),
        "FPR": float(pred[real].mean()) if real.any() else float("nan"),
        "FNR": float((~pred[fake]).mean()) if fake.any() else float("nan"),
        "n_real": int(real.sum()),
        "n_fake": int(fake.sum()),
    }


def average_row(rows: dict[str, dict]) -> dict:
    """Average of the per-generator rows weighted by their number of images (the tables' last row).

    Choice: weighted by images, so that a generator's weight is its share of the test data; with
    ntf-mini's equal-sized sets this equals the plain mean the paper prints.
    """
    w = np.array([r["n_real"] + r["n_fake"] for r in rows.values()], dtype=float)
    out = {}
    for c in COLUMNS:
        # rows stored before AUC existed
        v = np.array([r.get(c, np.nan) for r in rows.values()], dtype=float)
        ok = ~np.isnan(v)
        out[c] = float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")
    out["n_real"] = int(sum(r["n_real"] for r in rows.values()))
    out["n_fake"] = int(sum(r["n_fake"] for r in rows.values()))
    return out


def format_table(rows: dict[str, dict], percent: bool = True) -> str:
    """A plain-text table, one line per generator plus the average, values in % as in the paper."""
    k = 100 if percent else 1
    name_w = max(12, *(len(n) for n in rows))
    lines = [
        f"{'generator':<{name_w}}" + "".join(f"{c:>8}" for c in COLUMNS) + f"{'real':>7}{'fake':>7}"
    ]
    for name, r in {**rows, "average": average_row(rows)}.items():
        lines.append(
            f"{name:<{name_w}}"
            + "".join(f"{k * r.get(c, float('nan')):8.1f}" for c in COLUMNS)
            + f"{r['n_real']:7d}{r['n_fake']:7d}"
        )
    return "\n".join(lines)


def knn_separability(features, labels, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """How well real and fake separate in a feature space: the 5-fold cross-validated accuracy of a
    k-NN classifier with cosine distance (0.5 = mixed, 1.0 = apart), balanced classes assumed."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(
        cross_val_score(KNeighborsClassifier(k, metric="cosine"), features, labels, cv=cv).mean()
    )


def family_rows(rows: dict[str, dict], families: dict[str, list[str]]) -> dict[str, dict]:
    """The paper's table layout: each family's generators, then that family's weighted average
    (named ``"<family> average"``), then the overall average. ``families``: {family: [generator,
    ...]}; generators of ``rows`` in no family are listed after the families, before the overall
    average."""
    out, seen = {}, set()
    for fam, gens in families.items():
        mine = {g: rows[g] for g in gens if g in rows}
        if mine:
            out.update(mine)
            out[f"{fam} average"] = average_row(mine)
            seen |= set(mine)
    out.update({g: r for g, r in rows.items() if g not in seen})
    out["average"] = average_row(rows)
    return out


def oracle_accuracy(labels, scores) -> tuple[float, float]:
    """Accuracy at the best threshold (an oracle: it looks at the test labels) and that threshold.

    The gap between this and ACC at 0.5 says how much of a detector's error is a misplaced threshold
    rather than a bad ranking (which AP measures). Thresholds tried: every distinct score (predict
    fake if >= t) and +inf.
    """
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(s)
    s_sorted, y_sorted = s[order], y[order]
    # threshold at s_sorted[i]: samples i.. are called fake; correct = reals below i + fakes from i
    # on
    reals_below = np.concatenate([[0], np.cumsum(y_sorted == 0)])
    fakes_from = np.concatenate([np.cumsum((y_sorted == 1)[::-1])[::-1], [0]])
    correct = reals_below + fakes_from
    # ties move together
    starts = np.concatenate([[0], np.flatnonzero(np.diff(s_sorted)) + 1, [len(s)]])
    best = starts[np.argmax(correct[starts])]
    threshold = float(s_sorted[best]) if best < len(s) else float("inf")
    return float(correct[best] / len(s)), threshold


def calibration(labels, scores, bins: int = 10) -> dict:
    """Expected calibration error and the reliability diagram's data, for P(fake) scores.

    Equal-width bins on [0, 1]; in each, the mean score (confidence) and the fraction of fakes
    (frequency). ECE = sum over bins of (bin share of samples) * |frequency - confidence|. Empty
    bins are left out.
    """
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    idx = np.minimum((s * bins).astype(int), bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            conf, freq = float(s[m].mean()), float(y[m].mean())
            rows.append(
                {
                    "bin": b,
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "n": int(m.sum()),
                    "confidence": conf,
                    "frequency": freq,
                }
            )
            ece += m.mean() * abs(freq - conf)
    return {"ece": float(ece), "bins": rows}


def collapse_stats(z_real, z_fake) -> dict:
    """How much a feature space still depends on the image: the mean pairwise cosine of the real
    features, of the fake features, and the cosine of the real and the fake mean feature. All three
    near 1: the head maps every image, real or fake, to one point (the collapse eq. 2 allows).
    Features: [N, C] arrays, normalised here."""

    def unit(z):
        z = np.asarray(z, dtype=float)
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    def mean_pairwise(z):
        n = len(z)
        s = z.sum(0)
        # sum over i != j of z_i . z_j, without the n x n matrix
        return float((s @ s - n) / (n * (n - 1)))

    r, f = unit(z_real), unit(z_fake)
    mr, mf = r.mean(0), f.mean(0)
    return {
        "cos_real": mean_pairwise(r),
        "cos_fake": mean_pairwise(f),
        "cos_means": float(mr @ mf / (np.linalg.norm(mr) * np.linalg.norm(mf))),
    }
