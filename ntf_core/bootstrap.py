"""Intervals for detection results: a bootstrap that resamples test *photographs*, not crops.

ntf-mini's 800 real test crops come from 8 photographs, and a detector's false positives cluster by
photograph (4 % to 58 % per photo, notebook 08). Resampling crops as if they were independent would
pretend there are 800 independent reals; resampling the 8 photographs (each drawn photo brings all
its crops) says how much another draw of 8 photographs could move a number. Fakes are independent
samples of their generator and are resampled one by one, within each test folder. The same real
crops sit in every test folder, so one draw of photographs serves every folder of a replicate;
methods are scored on the same replicates, so differences are *paired*.

    # scores: {method: [ {folder: P(fake)} per seed ]}
    boot = photo_bootstrap(labels, clusters, scores)
    boot["methods"]["NTF"]["average"]  -> {"mean", "std", "lo", "hi", "seeds"}
    boot["differences"]["NTF - Wang2020"]["gan average"]  -> {"mean", "lo", "hi", "excludes_0"}

Each resampled test set is scored with scikit-learn's AP / ROC-AUC with ``sample_weight`` = how
often each image was drawn (the same numbers as scoring the duplicated set). With only 8 photographs
the percentile interval is approximate, and if anything too narrow (a bootstrap of k clusters
underestimates the spread by about sqrt((k - 1) / k), 7 % for k = 8): read an interval that barely
excludes 0 as a weak result. "mean" and "std" are over seeds (std with ddof 1; 0 for one seed);
"lo"/"hi" the 2.5 and 97.5 percentiles over replicates of the seed-averaged value, so the interval
is about the test photographs and fakes; the spread over seeds is the separate "std".
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score


def accuracy_at_half(y, scores, sample_weight=None) -> float:
    """Accuracy of the verdict "fake" when P(fake) >= 0.5 (``metrics.detection_metrics``' ACC)."""
    return accuracy_score(y, np.asarray(scores) >= 0.5, sample_weight=sample_weight)


METRICS = {"AP": average_precision_score, "AUC": roc_auc_score, "ACC": accuracy_at_half}


def _draw(rng, n: int, n_boot: int) -> np.ndarray:
    """[n_boot, n] counts: n draws with replacement from n items, per replicate."""
    return rng.multinomial(n, np.full(n, 1 / n), size=n_boot)


def replicate_weights(
    labels: dict, clusters: dict, n_boot: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """``{folder: [n_boot, n] int weights}``: reals by cluster, fakes image by image within their
    folder. labels / clusters: ``{folder: array}``. When every folder holds the same real clusters
    (ntf-mini: the same 8 photographs), one draw of them per replicate serves every folder (so
    differences between folders and methods are paired); otherwise each folder's real clusters are
    drawn on their own."""
    rng = np.random.default_rng(seed)
    for f, y in labels.items():
        if not (np.asarray(y) == 0).any() or not (np.asarray(y) == 1).any():
            raise ValueError(f"{f}: a test folder needs real and fake images to be resampled")
    real_sets = {f: sorted({c for c, y in zip(clusters[f], labels[f]) if y == 0}) for f in labels}
    shared = len({tuple(v) for v in real_sets.values()}) == 1
    common = next(iter(real_sets.values()))
    common_counts = _draw(rng, len(common), n_boot) if shared else None
    out = {}
    for f, y in labels.items():
        y = np.asarray(y)
        ids = real_sets[f]
        counts = common_counts if shared else _draw(rng, len(ids), n_boot)
        index = {c: i for i, c in enumerate(ids)}
        w = np.zeros((n_boot, len(y)), dtype=np.int64)
        reals = np.flatnonzero(y == 0)
        w[:, reals] = counts[:, [index[clusters[f][i]] for i in reals]]
        fakes = np.flatnonzero(y == 1)
        w[:, fakes] = _draw(rng, len(fakes), n_boot)
        out[f] = w
    return out


def _rows(values: dict[str, np.ndarray], groups: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Per-folder values plus the plain mean over each group's folders ("<group> average") and over
    all."""
    out = dict(values)
    for name, folders in groups.items():
        mine = [values[f] for f in folders if f in values]
        if mine:
            out[f"{name} average"] = np.mean(mine, axis=0)
    out["average"] = np.mean(list(values.values()), axis=0)
    return out


def photo_bootstrap(
    labels: dict,
    clusters: dict,
    scores: dict,
    groups: dict | None = None,
    metric: str = "AP",
    n_boot: int = 1000,
    seed: int = 0,
    reference: str | None = None,
) -> dict:
    """Seed means, seed stds and photo-bootstrap 95 % intervals of ``metric`` per folder and per
    group average for every method, and the paired differences ``reference - other`` (default: the
    first method).

    labels, clusters: ``{folder: array}`` (0 real / 1 fake; cluster ids, e.g. ``mini.cluster_of`` of
    each path); scores: ``{method: [{folder: scores} for each seed]}``; groups: ``{name: [folder,
    ...]}`` (families).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    fn = METRICS[metric]
    groups = groups or {}
    folders = list(labels)
    weights = replicate_weights(labels, clusters, n_boot, seed)
    point, boot = {}, {}
    for method, runs in scores.items():
        per_seed, per_rep = [], []
        for run in runs:
            per_seed.append(_rows({f: np.array(fn(labels[f], run[f])) for f in folders}, groups))
            per_rep.append(
                _rows(
                    {
                        f: np.array([fn(labels[f], run[f], sample_weight=w) for w in weights[f]])
                        for f in folders
                    },
                    groups,
                )
            )
        point[method] = {r: np.array([s[r] for s in per_seed]) for r in per_seed[0]}
        boot[method] = {r: np.mean([p[r] for p in per_rep], axis=0) for r in per_rep[0]}
    methods = {
        m: {
            r: {
                "mean": float(v.mean()),
                "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "lo": float(np.percentile(boot[m][r], 2.5)),
                "hi": float(np.percentile(boot[m][r], 97.5)),
                "seeds": len(v),
            }
            for r, v in rows.items()
        }
        for m, rows in point.items()
    }
    reference = reference or next(iter(scores))
    differences = {}
    for m in scores:
        if m == reference:
            continue
        d = {}
        for r in point[reference]:
            reps = boot[reference][r] - boot[m][r]
            lo, hi = float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))
            d[r] = {
                "mean": float(point[reference][r].mean() - point[m][r].mean()),
                "lo": lo,
                "hi": hi,
                "excludes_0": bool(lo > 0 or hi < 0),
            }
        differences[f"{reference} - {m}"] = d
    return {
        "metric": metric,
        "n_boot": n_boot,
        "seed": seed,
        "methods": methods,
        "differences": differences,
    }


def format_interval(cell: dict, percent: bool = True) -> str:
    """ "mean ± std [lo, hi]" of a ``photo_bootstrap`` cell (the ± only for several seeds)."""
    k = 100 if percent else 1
    spread = f" ± {k * cell['std']:.1f}" if cell.get("seeds", 1) > 1 else ""
    return f"{k * cell['mean']:.1f}{spread} [{k * cell['lo']:.1f}, {k * cell['hi']:.1f}]"


def verdict(cell: dict, names=("ahead", "behind")) -> str:
    """What a paired difference supports: the first name if its interval is above 0, the second if
    below, "within noise" if it holds 0."""
    return names[0] if cell["lo"] > 0 else names[1] if cell["hi"] < 0 else "within noise"


def interval_table(boot: dict, rows=None) -> tuple[list[str], list[list]]:
    """Headers and rows of a ``photo_bootstrap`` result: one row per folder / group average, one
    column per method, cells "mean ± std [lo, hi]" in %."""
    methods = list(boot["methods"])
    rows = rows or list(boot["methods"][methods[0]])
    return (
        ["", *methods],
        [[r, *(format_interval(boot["methods"][m][r]) for m in methods)] for r in rows],
    )


def difference_table(boot: dict, rows=None) -> tuple[list[str], list[list]]:
    """Headers and rows of the paired differences of a ``photo_bootstrap`` result: per row and
    difference, "mean [lo, hi]" in points and what the interval supports."""
    diffs = list(boot["differences"])
    rows = rows or list(boot["differences"][diffs[0]])
    cell = lambda d: (
        f"{100 * d['mean']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] {verdict(d)}"
    )
    return (["", *diffs], [[r, *(cell(boot["differences"][d][r]) for d in diffs)] for r in rows])


def cluster_rates(groups: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """Rates (e.g. an FPR: the share of real crops called fake) of groups of photographs, with 95 %
    intervals that resample each group's photographs (each drawn photograph brings all its crops),
    and the difference of the second group's rate minus the first's, the groups drawn independently
    (they hold different photographs).

    ``groups``: ``{name: (values, clusters)}``, values per crop (0/1 for a rate), clusters its
    photograph. Returns ``{name: {"mean", "lo", "hi", "photos"}, "<second> - <first>": {"mean",
    "lo", "hi", "excludes_0"}}`` (the difference of the first two groups only); with few photographs
    (5 unseen ones in pitfall 3a) the interval is approximate and, if anything, too narrow."""
    rng = np.random.default_rng(seed)
    out, reps = {}, []
    for name, (values, clusters) in groups.items():
        values, clusters = np.asarray(values, dtype=float), np.asarray(clusters)
        if len(values) == 0 or len(values) != len(clusters):
            raise ValueError(
                f"cluster_rates: group {name!r} has {len(values)} values and "
                f"{len(clusters)} clusters"
            )
        ids = sorted(set(clusters.tolist()))
        sums = np.array([values[clusters == c].sum() for c in ids])
        counts = np.array([(clusters == c).sum() for c in ids])
        w = _draw(rng, len(ids), n_boot)
        rep = (w @ sums) / (w @ counts)
        reps.append(rep)
        lo, hi = np.percentile(rep, [2.5, 97.5])
        out[name] = {
            "mean": float(sums.sum() / counts.sum()),
            "lo": float(lo),
            "hi": float(hi),
            "photos": len(ids),
        }
    if len(reps) >= 2:
        names = list(groups)
        d = reps[1] - reps[0]
        lo, hi = np.percentile(d, [2.5, 97.5])
        out[f"{names[1]} - {names[0]}"] = {
            "mean": out[names[1]]["mean"] - out[names[0]]["mean"],
            "lo": float(lo),
            "hi": float(hi),
            "excludes_0": bool(lo > 0 or hi < 0),
        }
    return out
