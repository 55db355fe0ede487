"""Thresholds that transfer: a detector's operating point chosen on held-out real images, never on
test data, and an optional temperature that makes its probabilities honest.

    cal = calibrate_scores(real_logits, target_fpr=0.05)          # threshold only
    cal = calibrate_scores(real_logits, 0.05, val_logits, val_y)  # + temperature
    cal.p_fake(logits); cal.verdicts(p)                           # "real" / "unsure" / "fake"
    protocol_row(labels, p, cal)                                  # the columns of ``ntf evaluate``

Choices, written down because no detector paper ships them:

- **Threshold at a target false-positive rate (FPR) on reals alone.** A forensic verdict is judged
  first by how often it accuses a real photograph; fakes of tomorrow's generator are unknown, reals
  are not. With n calibration reals and target a, the threshold is the k-th smallest real score,
  k = ceil((1 - a)(n + 1)) (the split-conformal quantile): for a new real image exchangeable with
  the calibration reals, P(score > threshold) <= a, and with distinct scores it is at least
  a - 1/(n + 1). It needs n >= 1/a - 1 reals (19 for 5 %); fewer is an error.
- **The "unsure" band.** Scores above the threshold are "fake" (at most a of reals); scores at or
  below the threshold at twice the target (2a, capped at 50 %) are "real"; between the two,
  "unsure". So at most a of reals are called fake and at most 2a are not called real: the band is
  sized by the reals, not by a guess of how fakes score.
- **Temperature (optional).** P(fake) = sigmoid(logit / T) with T fitted by minimising the
  log-loss on a labelled validation set (Guo et al. 2017, "On calibration of modern neural
  networks"). T > 0 keeps the order of scores, so AP, ROC-AUC, ACC at 0.5 and the threshold's
  FPR do not move; only what "P(fake) = 0.9" means does. The threshold is stored on the
  temperature-scaled P(fake), the number ``ntf detect`` prints.

No torch here: the numbers come from ``protocol`` (torch or onnxruntime) and from tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# scipy and scikit-learn are imported where used: ``ntf detect`` on an ONNX model starts fast

VERDICTS = ("real", "unsure", "fake")


def sigmoid(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow warnings


def threshold_at_fpr(real_scores, target_fpr: float) -> float:
    """The k-th smallest of the n real scores, k = ceil((1 - a)(n + 1)): an image is called fake
    when its score is *above* it, so at most a of new reals are (split-conformal quantile)."""
    s = np.sort(np.asarray(real_scores, dtype=np.float64))
    if not 0 < target_fpr < 1:
        raise ValueError(f"target FPR {target_fpr}: must be between 0 and 1")
    if s.ndim != 1 or np.isnan(s).any():
        raise ValueError("real scores must be a 1-d array without NaN")
    n = len(s)
    # rounded first: (1 - 0.18) * 150 is 122.99999999999999 in floating point, not 123
    k = math.ceil(round((1 - target_fpr) * (n + 1), 9))
    if k > n:
        need = math.ceil(1 / target_fpr - 1)
        raise ValueError(
            f"{n} real images cannot pin a {100 * target_fpr:g} % false-positive rate: "
            f"at least {need} are needed"
        )
    return float(s[k - 1])


def fit_temperature(logits, labels) -> float:
    """T > 0 minimising the mean log-loss of sigmoid(logit / T) on labelled data (searched over
    log T in [-5, 5], i.e. T from 0.007 to 148)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if z.shape != y.shape or not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise ValueError("temperature: need 1-d logits and labels with both 0 (real) and 1 (fake)")

    def nll(log_t):
        u = z / math.exp(log_t)
        # log(1 + exp(-u)) for fakes, log(1 + exp(u)) for reals, stably
        return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -u, u))))

    return float(math.exp(minimize_scalar(nll, bounds=(-5, 5), method="bounded").x))


@dataclass
class Calibration:
    """A detector's operating point, stored with its checkpoint (``calibration`` entry) or in its
    ONNX metadata."""

    target_fpr: float
    threshold: float  # on P(fake) after temperature: "fake" when above
    unsure_below: float  # "real" at or below this, "unsure" in between (threshold at 2 x target)
    temperature: float = 1.0
    n_reals: int = 0  # calibration reals
    realised_fpr: float = float("nan")  # on the calibration reals themselves
    reals: str = ""  # where they came from
    labelled: str = ""  # the temperature's validation set, if any
    weights_sha256: str = ""  # the detector it belongs to

    def p_fake(self, logits) -> np.ndarray:
        return sigmoid(np.asarray(logits, dtype=np.float64) / self.temperature)

    def verdicts(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return np.where(
            p > self.threshold, "fake", np.where(p > self.unsure_below, "unsure", "real")
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def calibrate_scores(
    real_logits,
    target_fpr: float = 0.05,
    val_logits=None,
    val_labels=None,
    **provenance,
) -> Calibration:
    """The calibration of a detector from the logits of held-out reals (and, for the temperature,
    of a labelled validation set). ``provenance``: ``reals=``, ``labelled=``,
    ``weights_sha256=``."""
    t = 1.0 if val_logits is None else fit_temperature(val_logits, val_labels)
    p = sigmoid(np.asarray(real_logits, dtype=np.float64) / t)
    thr = threshold_at_fpr(p, target_fpr)
    low = threshold_at_fpr(p, min(2 * target_fpr, 0.5))
    return Calibration(
        target_fpr=float(target_fpr),
        threshold=thr,
        unsure_below=min(low, thr),
        temperature=t,
        n_reals=len(p),
        realised_fpr=float((p > thr).mean()),
        **provenance,
    )


def tpr_at_fpr(labels, scores, target_fpr: float) -> float:
    """The true-positive rate at the target FPR read off these data's own ROC curve (the best
    threshold *for this test set*: an upper bound, not an operating point one could have chosen)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(labels), np.asarray(scores))
    ok = fpr <= target_fpr + 1e-12
    return float(tpr[ok].max())


def protocol_row(labels, p, cal: Calibration | None, target_fpr: float = 0.05) -> dict:
    """``metrics.detection_metrics`` (AP, ROC-AUC, ACC / FPR / FNR at 0.5) plus "TPR@FPR" (at the
    target, read off this test set's ROC) and, with a calibration, the calibrated threshold's
    accuracy, TPR and *realised* FPR on these test reals, beside its target."""
    from .metrics import detection_metrics

    y = np.asarray(labels, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    target = cal.target_fpr if cal is not None else target_fpr
    row = {**detection_metrics(y, p), "target FPR": target, "TPR@FPR": tpr_at_fpr(y, p, target)}
    if cal is not None:
        fake = p > cal.threshold
        row.update(
            {
                "ACC cal": float((fake == (y == 1)).mean()),
                "FPR cal": float(fake[y == 0].mean()),
                "TPR cal": float(fake[y == 1].mean()),
                "unsure": float((cal.verdicts(p) == "unsure").mean()),
            }
        )
    return row


PROTOCOL_COLUMNS = ("AP", "AUC", "ACC", "FPR", "FNR", "TPR@FPR", "ACC cal", "FPR cal", "TPR cal")


def protocol_average(rows: dict[str, dict]) -> dict:
    """The folders' rows averaged, weighted by their images (as ``metrics.average_row``), for every
    column all rows have."""
    w = np.array([r["n_real"] + r["n_fake"] for r in rows.values()], dtype=float)
    keys = [c for c in next(iter(rows.values())) if all(c in r for r in rows.values())]
    out = {
        c: float(np.dot(w, [r[c] for r in rows.values()]) / w.sum())
        for c in keys
        if c not in ("n_real", "n_fake")
    }
    out["n_real"] = sum(r["n_real"] for r in rows.values())
    out["n_fake"] = sum(r["n_fake"] for r in rows.values())
    return out


def format_protocol(rows: dict[str, dict]) -> str:
    """``ntf evaluate``'s table: one line per folder and their average (weighted by images, as
    ``metrics.average_row``), values in %, a dash where a column needs a calibration the
    checkpoint lacks; the target FPR in the TPR column's name."""
    target = next(iter(rows.values())).get("target FPR", 0.05)
    name_w = max(12, *(len(n) for n in rows))
    head = [
        c.replace("FPR", f"{100 * target:g}%") if c == "TPR@FPR" else c for c in PROTOCOL_COLUMNS
    ]
    lines = [
        f"{'generator':<{name_w}}" + "".join(f"{c:>9}" for c in head) + f"{'real':>7}{'fake':>7}"
    ]
    for name, r in {**rows, "average": protocol_average(rows)}.items():
        cells = "".join(
            f"{100 * r[c]:9.1f}" if c in r and not math.isnan(r[c]) else f"{'-':>9}"
            for c in PROTOCOL_COLUMNS
        )
        lines.append(f"{name:<{name_w}}{cells}{r['n_real']:7d}{r['n_fake']:7d}")
    return "\n".join(lines)
