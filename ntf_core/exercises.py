"""Exercises that check themselves: two for every notebook from 01 to 09.

Each exercise is a task built on the notebook's parameters and the library; it has

* ``check(answer, **context)``: whether the answer holds, as ``(ok, sentence)``; the sentence says
  why not (the cell of eq. 5 you got wrong, the pairs your mean left in) rather than just "wrong";
* ``solution(**context)``: a reference answer, kept here, out of the notebook's sight.

A notebook makes one ``Book(solutions)`` and calls ``book.check("01.1", answer, **context)`` in the
cell after the student's. That prints one line: "not answered yet", "holds" or "does not hold
yet", with the sentence. ``book.solution("01.1")`` prints the reference answer's source when you are
stuck. With ``solutions=True`` (CI's parameter) the reference answer is checked in place of the
student's, and a reference that fails its own check raises: CI shows every solution passes, and
``tests/test_exercises.py`` shows that wrong answers fail.

An unanswered exercise is an answer of ``None`` (or ``...``), or a function that returns ``None``:
the placeholders in the notebooks.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class NotAnswered(Exception):
    """The answer is still the notebook's placeholder."""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    teaches: str
    check: Callable[..., tuple[bool, str]]
    solution: Callable[..., Any]


EXERCISES: dict[str, Exercise] = {}


def exercise(id: str, title: str, teaches: str, solution: Callable[..., Any]):
    """Register the decorated ``check`` as exercise ``id``."""

    def register(check):
        if id in EXERCISES:
            raise ValueError(f"exercise {id} is registered twice")
        EXERCISES[id] = Exercise(id, title, teaches, check, solution)
        return check

    return register


def _given(answer):
    if answer is None or answer is Ellipsis:
        raise NotAnswered
    return answer


def _call(fn, *args, **kwargs):
    """The student's function on the check's inputs; its placeholder (returning None) is not an
    answer yet."""
    if not callable(_given(fn)):
        raise TypeError(f"the answer should be a function, got {type(fn).__name__}")
    out = fn(*args, **kwargs)
    return _given(out)


def _number(x) -> float:
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise TypeError(
                f"the answer should be one number, got a tensor of shape {tuple(x.shape)}"
            )
        return float(x.detach())
    return float(x)


@dataclass
class Outcome:
    """What ``Book.check`` found: ok is None for an exercise not answered yet."""

    id: str
    ok: bool | None
    text: str

    def __str__(self) -> str:
        ex = EXERCISES[self.id]
        head = {None: "not answered yet", True: "holds", False: "does not hold yet"}[self.ok]
        return f"Exercise {self.id} ({ex.title}) {head}: {self.text}"


def evaluate(id: str, answer, **context) -> Outcome:
    """Run exercise ``id``'s check on ``answer``; the student's own exception is an outcome too."""
    ex = EXERCISES[id]
    try:
        ok, text = ex.check(answer, **context)
    except NotAnswered:
        return Outcome(
            id, None, "replace the placeholder with your answer and run this cell again."
        )
    except Exception as err:  # the student's code raised: say what, not a traceback
        return Outcome(id, False, f"your answer raised {type(err).__name__}: {err}")
    return Outcome(id, bool(ok), text)


def solve(id: str, **context):
    """Exercise ``id``'s reference answer, given the parts of ``context`` its solution takes."""
    fn = EXERCISES[id].solution
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        context = {k: v for k, v in context.items() if k in params}
    return fn(**context)


class Book:
    """The exercises of one notebook run: ``check`` prints each outcome; with ``solutions`` the
    reference answers are checked instead and must hold."""

    def __init__(self, solutions: bool = False):
        self.solutions = solutions

    def check(self, id: str, answer=None, **context) -> None:
        """Print whether ``answer`` holds (``evaluate`` returns the same as a value)."""
        if id not in EXERCISES:
            raise KeyError(f"no exercise {id!r}; there are {', '.join(EXERCISES)}")
        if self.solutions:
            answer = solve(id, **context)
        outcome = evaluate(id, answer, **context)
        if self.solutions and not outcome.ok:
            raise AssertionError(f"the reference solution fails its own check: {outcome}")
        print(("(reference solution) " if self.solutions else "") + str(outcome))

    @staticmethod
    def solution(id: str) -> None:
        """Print the reference answer of exercise ``id`` (try first: the check says why not)."""
        ex = EXERCISES[id]
        print(f"Exercise {id} ({ex.title}): {ex.teaches}\n")
        print(textwrap.dedent(inspect.getsource(ex.solution)))


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


def _against(answer, want: float, tol: float, wrong: str, right: str) -> tuple[bool, str]:
    """A one-number answer against the reference: ``right`` when within ``tol``, else what was
    given and ``wrong`` (the reference and how to get it)."""
    got = _number(_given(answer))
    if _close(got, want, tol):
        return True, right
    return False, f"you gave {got:+.4f}; {wrong}"


# == 01 · natural traces ===========================================================================


def _mean_hom_loss(z_hom, source):
    """Eq. 2 with a mean in place of the max: the mean squared distance between the L2-normalised
    hom features of every pair of *different* images."""
    z = F.normalize(z_hom, dim=1)
    d2 = (z[:, None, :] - z[None, :, :]).pow(2).sum(-1)
    return d2[source[:, None] != source[None, :]].mean()


def _solution_01_1(**context):
    def mean_hom_loss(z_hom, source):
        z = F.normalize(z_hom, dim=1)
        d2 = (z[:, None, :] - z[None, :, :]).pow(2).sum(-1)  # every pair's squared distance
        different = source[:, None] != source[None, :]  # leave out the views of one image
        return d2[different].mean()

    return mean_hom_loss


@exercise(
    "01.1",
    "eq. 2 as a mean",
    "eq. 2's max pulls the farthest pair in first; a mean spreads its pull over every pair and "
    "closes the worst gap later (both end at one point)",
    _solution_01_1,
)
def _check_01_1(answer, steps: int = 200):
    from .losses import hom_loss
    from .toy import toy_run, toy_summary

    g = torch.Generator().manual_seed(1)
    source = torch.arange(4).repeat(2)
    for _ in range(3):
        z = torch.randn(8, 5, generator=g).requires_grad_()
        got = _number(_call(answer, z, source))
        want = float(_mean_hom_loss(z.detach(), source))
        if _close(got, want, 1e-5):
            continue
        zn = F.normalize(z.detach(), dim=1)
        d2 = (zn[:, None] - zn[None]).pow(2).sum(-1)
        everything = float(d2[~torch.eye(8, dtype=torch.bool)].mean())
        raw = (z.detach()[:, None] - z.detach()[None]).pow(2).sum(-1)
        hint = (
            "that is the max, eq. 2 as printed: take the mean"
            if _close(got, float(hom_loss(z, source)), 1e-5)
            else "you also averaged pairs of two views of one image: keep only different source ids"
            if _close(got, everything, 1e-5)
            else "normalise the features to unit length first (eq. 2 compares directions)"
            if _close(got, float(raw[source[:, None] != source[None, :]].mean()), 1e-4)
            else "compare only pairs of different images, on L2-normalised features"
        )
        return (
            False,
            f"on a batch of 4 images x 2 views you gave {got:.4f}, the mean is {want:.4f}: {hint}.",
        )
    out = answer(torch.randn(8, 5, generator=g).requires_grad_(), source)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return (
            False,
            "the value is right but carries no gradient: compute it with torch operations.",
        )
    early = min(10, steps)
    runs = {
        "mean": toy_run("hom", steps=steps, losses={"hom": answer}),
        "max": toy_run("hom", steps=steps),
    }
    spread = {
        k: [toy_summary({**r, "hom": r["hom"][: t + 1]})["hom_spread"] for t in (early, steps)]
        for k, r in runs.items()
    }
    return True, (
        f"your mean matches on 3 batches. In the toy the largest squared distance between two "
        f"images' hom features is, after {early} steps, {spread['mean'][0]:.3f} with the mean and "
        f"{spread['max'][0]:.3f} with eq. 2's max, after {steps} steps {spread['mean'][1]:.4f} and "
        f"{spread['max'][1]:.4f}: the max pulls the farthest pair in first."
    )


TOY_STEPS_01_2 = 200  # the signed cosine has reached its end by then (after 20 it is still near 0)


def _solution_01_2():
    from .toy import toy_run

    end = toy_run("ort", ort_mode="signed", steps=200)
    final_cos = float((end["hom"][-1] * end["het"][-1]).sum(1).mean())  # unit features: dot = cos
    return {"final_cos": final_cos, "why": "b"}


_WHY_01_2 = {
    "a": "orthogonal features would leave the signed mean at 0, yet it keeps falling below 0",
    "c": "features collapsed onto each other would have cos +1, the signed cosine's maximum",
}


@exercise(
    "01.2",
    "descend the printed eq. 3",
    "the printed, signed L_ort is lowest at cos = -1 (anti-parallel), not at orthogonality: "
    "why the course descends the absolute cosine",
    _solution_01_2,
)
def _check_01_2(answer):
    answer = _given(answer)
    final_cos, why = _given(answer.get("final_cos")), _given(answer.get("why"))
    want, steps = _solution_01_2()["final_cos"], TOY_STEPS_01_2
    if not _close(_number(final_cos), want, 0.02):
        return False, (
            f"the mean signed cosine between each sample's hom and het features at the end of "
            f"toy_run('ort', ort_mode='signed', steps={steps}) is {want:.3f}, you gave "
            f"{_number(final_cos):.3f}."
        )
    if str(why).strip().lower() != "b":
        return (
            False,
            f"the number is right, the reason is not: {_WHY_01_2.get(str(why), 'pick a, b or c')}.",
        )
    return True, (
        f"the signed cosine ends at {want:.3f}: the printed eq. 3 turns het against hom instead of "
        "perpendicular to it, so the course's default is |cos| (ort_mode='abs')."
    )


# == 02 · the embedding space =====================================================================


def _proximity_ap(z, is_fake, sign: int = 1):
    """AP of the cosine distance to the reals' normalised mean (``sign=-1``: of its negative, the
    similarity)."""
    from sklearn.metrics import average_precision_score

    z = F.normalize(torch.as_tensor(np.asarray(z), dtype=torch.float64), dim=1)
    is_fake = np.asarray(is_fake, dtype=bool)
    centre = F.normalize(z[~is_fake].mean(0), dim=0)
    return float(average_precision_score(is_fake, sign * (1 - z @ centre).numpy()))


def _solution_02_1(spaces, names):
    from sklearn.metrics import average_precision_score

    is_fake = np.asarray(names) != "real"
    z = F.normalize(torch.as_tensor(np.asarray(spaces["z_hom"]), dtype=torch.float64), dim=1)
    trace = F.normalize(z[~is_fake].mean(0), dim=0)  # the natural trace: the real crops' mean
    distance = 1 - z @ trace  # cosine distance to it: large = far from real = fake
    return float(average_precision_score(is_fake, distance.numpy()))


@exercise(
    "02.1",
    "proximity to the natural trace",
    "the paper's verdict, 'proximity to the natural traces', as a score that no fake has trained",
    _solution_02_1,
)
def _check_02_1(answer, spaces, names):
    got = _number(_given(answer))
    is_fake = np.asarray(names) != "real"
    want = _proximity_ap(spaces["z_hom"], is_fake)
    if _close(got, want, 1e-4):
        others = {k: _proximity_ap(v, is_fake) for k, v in spaces.items() if k != "z_hom"}
        listed = ", ".join(f"{k} {v:.3f}" for k, v in others.items())
        return True, (
            f"AP {want:.3f} in z_hom (chance is the share of fakes, {is_fake.mean():.3f}); the "
            f"same score in the other spaces: {listed}."
        )
    hint = (
        "the score must grow with the distance (fakes are the positives), not with the similarity"
        if _close(got, _proximity_ap(spaces["z_hom"], is_fake, sign=-1), 1e-4)
        else "score each image by 1 - cos(z, t), t the normalised mean z_hom of the real crops"
    )
    return False, f"you gave {got:.4f}, the AP is {want:.4f}: {hint}."


def _solution_02_2(coords, names):
    from .metrics import knn_separability

    names = np.asarray(names)
    out = {}
    for space, xy in coords.items():
        accuracies = []
        for gen in dict.fromkeys(n for n in names if n != "real"):
            keep = (names == "real") | (names == gen)  # as many reals as fakes: balanced
            accuracies.append(knn_separability(xy[keep], (names[keep] == gen).astype(int)))
        out[space] = float(np.mean(accuracies))  # the mean over generators, as in the table above
    return out


@exercise(
    "02.2",
    "does the map keep what the space holds?",
    "a 2-D map is a picture of neighbours, not of the space: measure both before reading clusters",
    _solution_02_2,
)
def _check_02_2(answer, coords, names, spaces):
    answer = _given(answer)
    want = _solution_02_2(coords, names)
    missing = set(want) - set(answer)
    if missing:
        return False, f"give one number for every space; missing: {', '.join(sorted(missing))}."
    wrong = [k for k in want if not _close(_number(_given(answer[k])), want[k], 1e-6)]
    if wrong:
        k = wrong[0]
        return False, (
            f"in {k} the mean 5-NN accuracy on the map is {want[k]:.3f}, you gave "
            f"{_number(answer[k]):.3f}: for each generator, knn_separability on the 2-D "
            "coordinates of the real crops and that generator's fakes (fake = 1), then the mean."
        )
    full = _solution_02_2(spaces, names)
    listed = "; ".join(f"{k} {full[k]:.3f} -> {want[k]:.3f}" for k in want)
    return True, f"mean 5-NN accuracy over the generators, in the space -> on its map: {listed}."


# == 03 · the detector ============================================================================

PAIRS_03_LABELS, PAIRS_03_HOM = (0, 1, 0), 2


def _solution_03_1():
    # rows: the anchors real, fake, real; columns: the same three, then the two hom features (real)
    return [".-+++", "-.---", "+-.++"]


@exercise(
    "03.1",
    "eq. 5's pairs by hand",
    "hom features are extra positives for a real anchor and negatives for a fake one",
    _solution_03_1,
)
def _check_03_1(answer):
    from .losses import extended_supcon_pairs

    if any(r is None for r in _given(answer)):
        raise NotAnswered
    # the table and the figure above write "−" and "·": read them as "-" and "."
    rows = [str(r).replace(" ", "").replace("−", "-").replace("·", ".") for r in answer]
    labels = torch.tensor(PAIRS_03_LABELS)
    self_mask, positive = extended_supcon_pairs(labels, PAIRS_03_HOM)
    names = ["real anchor 0", "fake anchor 1", "real anchor 2", "hom feature 0", "hom feature 1"]
    if len(rows) != 3 or any(len(r) != 5 for r in rows):
        return False, "give three rows (the anchors) of five symbols (+ - .) each."
    for i, row in enumerate(rows):
        for j, sym in enumerate(row):
            want = "." if self_mask[i, j] else "+" if positive[i, j] else "-"
            if sym != want:
                why = (
                    "an anchor is left out of its own contrast set"
                    if want == "."
                    else "same label: they attract (numerator and denominator)"
                    if want == "+"
                    else "a hom feature counts as real, so it repels a fake anchor"
                    if j >= 3
                    else "different labels: they only repel (denominator)"
                )
                column = names[j] if j >= 3 else f"sample {j}"
                return False, (
                    f"{names[i]} with column {j} ({column}): you wrote {sym!r}, eq. 5 says "
                    f"{want!r}: {why}."
                )
    return True, "every cell agrees with losses.extended_supcon_pairs."


def _solution_03_2(detector, x):
    with torch.no_grad():
        e = detector.encoder(x)  # the frozen stage-1 embedding
        z = F.normalize(detector.aux(e), dim=1)  # the auxiliary head, the space L_ext shapes
        logit = detector.classifier(z / detector.tau).squeeze(1)  # the classifier reads z / tau
    return torch.sigmoid(logit)


@exercise(
    "03.2",
    "the verdict by hand",
    "the verdict runs encoder -> auxiliary head -> classifier: the head L_ext trains is on its "
    "path",
    _solution_03_2,
)
def _check_03_2(answer, detector, x):
    got = _given(answer)
    got = torch.as_tensor(got, dtype=torch.float32).reshape(-1)
    with torch.no_grad():
        want = torch.sigmoid(detector(x)).reshape(-1)
    if got.shape != want.shape:
        return False, f"give one P(fake) per image ({len(want)}), not {tuple(got.shape)}."
    if torch.allclose(got, want, atol=1e-4):
        return (
            True,
            f"P(fake) {', '.join(f'{p:.3f}' for p in want.tolist())}, as detector(x) gives.",
        )
    with torch.no_grad():
        raw = torch.sigmoid(detector.classifier(detector.aux(detector.encoder(x)) / detector.tau))
    hint = (
        "normalise the auxiliary feature to unit length before the classifier"
        if torch.allclose(got, raw.reshape(-1), atol=1e-4)
        else "give probabilities (the sigmoid of the logit)"
        if torch.allclose(torch.sigmoid(got), want, atol=1e-4)
        else "go e = encoder(x), z = normalize(aux(e)), logit = classifier(z / tau)"
    )
    return (
        False,
        f"yours differ from detector(x) by up to {float((got - want).abs().max()):.3f}: {hint}.",
    )


# == 04 · generalisation ==========================================================================


def _solution_04_1():
    def average_precision(labels, scores):
        labels, scores = np.asarray(labels), np.asarray(scores)
        order = np.argsort(-scores)  # the most fake-looking first
        hits = labels[order] == 1
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)  # precision at each rank
        return float(precision[hits].mean())  # averaged at the rank of every fake

    return average_precision


@exercise(
    "04.1",
    "average precision by hand",
    "AP is the precision at the rank of each fake, averaged: a ranking measure, blind to "
    "thresholds",
    _solution_04_1,
)
def _check_04_1(answer):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(4)
    cases = [
        (np.array([0, 1, 1, 0, 1]), np.array([0.1, 0.9, 0.3, 0.35, 0.8]))
    ]  # one pair misranked
    for n in (20, 200):
        y = rng.integers(0, 2, n)
        y[:2] = (0, 1)
        cases.append((y, rng.random(n) + 0.3 * y))
    for y, s in cases:
        got, want = _number(_call(answer, y, s)), average_precision_score(y, s)
        if not _close(got, want, 1e-9):
            hint = (
                "that is the ROC-AUC (pairs ranked right), not the AP"
                if _close(got, roc_auc_score(y, s), 1e-9)
                else "rank by descending score; average the precision at the fakes' ranks only"
            )
            return (
                False,
                f"on {len(y)} images you gave {got:.4f}, scikit-learn's AP is {want:.4f}: {hint}.",
            )
    return True, "matches sklearn.metrics.average_precision_score on 3 rankings (no tied scores)."


def _solution_04_2(intervals):
    from .bootstrap import verdict

    diffs = intervals["AP"]["differences"]["NTF - spectrum"]
    return {
        family: verdict(diffs[f"{family} average"]) for family in ("gan", "diffusion", "multistep")
    }


@exercise(
    "04.2",
    "ahead, behind or within noise?",
    "a paired difference is ahead or behind only when its whole interval is",
    _solution_04_2,
)
def _check_04_2(answer, intervals):
    answer = _given(answer)
    want = _solution_04_2(intervals)
    for family, v in want.items():
        got = str(_given(answer.get(family))).strip().lower()
        if got != v:
            cell = intervals["AP"]["differences"]["NTF - spectrum"][f"{family} average"]
            return False, (
                f"{family}: NTF - spectrum is {100 * cell['mean']:+.1f} points, 95 % interval "
                f"[{100 * cell['lo']:+.1f}, {100 * cell['hi']:+.1f}]; you said {got!r}, the "
                f"interval says {v!r}."
            )
    return True, "; ".join(f"{k}: {v}" for k, v in want.items()) + "."


# == 05 · ablations ===============================================================================


def _zero_ort(z_hom, z_het, mode):
    return (z_hom * 0).sum()


def _solution_05_1(steps: int = 200):
    from .toy import toy_run, toy_summary

    def no_ort(z_hom, z_het, mode):  # L_ort removed: a zero that keeps the graph
        return (z_hom * 0).sum()

    return toy_summary(toy_run("tra", steps=steps, losses={"ort": no_ort}))["abs_cos_hom_het"]


@exercise(
    "05.1",
    "Figure 3 in the toy",
    "removing a term is an experiment: in the toy, at lambda = 0.1, L_ort barely moves the end "
    "state, as Figure 3's difference is within noise",
    _solution_05_1,
)
def _check_05_1(answer, steps: int = 200):
    from .toy import toy_run, toy_summary

    got = _number(_given(answer))
    want = toy_summary(toy_run("tra", steps=steps, losses={"ort": _zero_ort}))["abs_cos_hom_het"]
    full = toy_summary(toy_run("tra", steps=steps))["abs_cos_hom_het"]
    if not _close(got, want, 1e-4):
        hint = (
            "that is full L_tra's value: pass losses={'ort': f} with f returning a zero"
            if _close(got, full, 1e-4)
            else "run toy_run('tra', losses={'ort': f}) and read toy_summary's abs_cos_hom_het"
        )
        return False, f"you gave {got:.4f}, without L_ort the toy ends at {want:.4f}: {hint}."
    return True, (
        f"without L_ort the mean |cos(hom, het)| ends at {want:.3f}, with it at {full:.3f}, after "
        f"{steps} steps: at lambda = 0.1 the term is a light pull beside L_het's."
    )


def _solution_05_2(intervals):
    cell = intervals["3"]["differences"]["full NTF - w/o L_ort"]["average"]
    return {"difference": cell["mean"], "within_noise": cell["lo"] <= 0 <= cell["hi"]}


@exercise(
    "05.2",
    "is L_ort's effect noise?",
    "a mean difference is read with its interval: a gain whose interval holds 0 is within noise",
    _solution_05_2,
)
def _check_05_2(answer, intervals):
    answer = _given(answer)
    want = _solution_05_2(intervals)
    got = _number(_given(answer.get("difference")))
    if not _close(got, want["difference"], 1e-4):
        hint = (
            " (in AP, not in points: divide by 100)"
            if _close(got, 100 * want["difference"], 0.01)
            else " (the stored difference is full NTF minus the variant: mind the sign)"
            if _close(got, -want["difference"], 1e-4)
            else ""
        )
        return (
            False,
            f"the average difference is {want['difference']:.4f}, you gave {got:.4f}{hint}.",
        )
    if bool(_given(answer.get("within_noise"))) != want["within_noise"]:
        cell = intervals["3"]["differences"]["full NTF - w/o L_ort"]["average"]
        return False, f"the interval is [{cell['lo']:.4f}, {cell['hi']:.4f}]: does it hold 0?"
    said = "within noise" if want["within_noise"] else "outside noise"
    return True, f"{100 * want['difference']:+.1f} AP points, {said}."


# == 06 · robustness ==============================================================================


def _solution_06_1():
    import io

    from PIL import Image

    def jpeg_roundtrip(x, quality):  # x: uint8 [3, H, W]
        buffer = io.BytesIO()
        Image.fromarray(x.permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)  # the file, decoded again
        return torch.from_numpy(np.array(Image.open(buffer).convert("RGB"))).permute(2, 0, 1)

    return jpeg_roundtrip


@exercise(
    "06.1",
    "a JPEG round trip",
    "a perturbation is a file written and read back; the decoder, not just the quality, sets what "
    "the detector sees",
    _solution_06_1,
)
def _check_06_1(answer, images):
    from .augment import jpeg, to_uint8

    x = to_uint8(images[:4])
    for quality in (90, 50):
        for img in x:
            got = torch.as_tensor(_call(answer, img.clone(), quality))
            want = jpeg(img, quality)
            if got.shape != want.shape:
                return False, f"give a [3, H, W] image back, not {tuple(got.shape)}."
            diff = float((got.float() - want.float()).abs().max())
            if diff > 1:
                return False, (
                    f"at quality {quality} your pixels differ from augment.jpeg's by up to "
                    f"{diff:.0f} "
                    "levels: Pillow's JPEG with default 4:2:0 chroma, saved and decoded to RGB."
                )
    change = float((jpeg(x[0], 50).float() - x[0].float()).abs().mean())
    return (
        True,
        f"matches augment.jpeg; quality 50 moves a pixel by {change:.1f} levels on average.",
    )


def _solution_06_2(ntf, images):
    from .augment import perturb

    before = ntf.score(images) > 0.5
    after = ntf.score(perturb(images, "jpeg", 50)) > 0.5
    return float((before != after).mean())


@exercise(
    "06.2",
    "a flip rate",
    "stability needs no labels: the share of verdicts that change when only the file changes",
    _solution_06_2,
)
def _check_06_2(answer, ntf, images):
    want = _solution_06_2(ntf, images)
    return _against(
        answer,
        want,
        1e-6,
        f"the share of the {len(images)} images whose verdict at 0.5 changes under JPEG 50 is "
        f"{want:.4f}: compare verdicts (score > 0.5), not scores.",
        f"{100 * want:.1f} % of the {len(images)} verdicts flip under JPEG 50.",
    )


# == 07 · saliency ================================================================================


def _solution_07_1(maps, width):
    shares = {}
    for source, m in maps.items():
        m = np.asarray(m, dtype=np.float64)
        inner = m[:, width:-width, width:-width].sum((1, 2))
        total = np.maximum(m.sum((1, 2)), 1e-12)  # an all-zero map: its ring holds all of nothing
        shares[source] = float((1 - inner / total).mean())  # the ring's share, per map
    return shares


@exercise(
    "07.1",
    "the border's share",
    "a visual impression (the border lights up) becomes a number beside its baseline, the "
    "ring's area",
    _solution_07_1,
)
def _check_07_1(answer, maps, width):
    from .saliency import ring_share

    answer = _given(answer)
    side = next(iter(maps.values())).shape[-1]
    area = 1 - (side - 2 * width) ** 2 / side**2
    for source, m in maps.items():
        want = float(ring_share(m, width).mean())
        got = _number(_given(answer.get(source)))
        if not _close(got, want, 1e-4):
            return False, (
                f"{source}: the ring {width} px wide holds {want:.3f} of the saliency, you gave "
                f"{got:.3f}: per map, 1 - (the sum over the inner square inside the ring) / "
                "(the sum over the whole map), then the mean over maps."
            )
    shares = {k: float(ring_share(m, width).mean()) for k, m in maps.items()}
    above = sum(v > area for v in shares.values())
    return True, (
        f"the ring is {area:.2f} of the area; it holds more than that in {above} of {len(shares)} "
        f"sources (from {min(shares.values()):.2f} to {max(shares.values()):.2f})."
    )


def _solution_07_2(ntf, images):
    x = images.clone()
    side = x.shape[-1]
    a, b = side // 4, side - side // 4
    x[:, :, a:b, a:b] = 0.5  # the central square (half the side) greyed out
    return float((ntf.score(x) - ntf.score(images)).mean())


@exercise(
    "07.2",
    "occlusion",
    "an explanation you can test: hide the centre and see whether the verdict moves",
    _solution_07_2,
)
def _check_07_2(answer, ntf, images):
    want = _solution_07_2(ntf, images)
    return _against(
        answer,
        want,
        1e-5,
        f"greying the central half-side square changes the mean P(fake) by {want:+.4f}: "
        "occluded minus original, averaged over the images.",
        f"the mean P(fake) moves by {want:+.3f} when the centre is hidden.",
    )


# == 08 · pitfalls ================================================================================


def _solution_08_1():
    def threshold_for(real_scores, fpr):
        s = np.sort(np.asarray(real_scores))
        k = math.ceil((1 - fpr) * (len(s) + 1))  # split-conformal: at most fpr of new reals above
        return float(s[min(k, len(s)) - 1])

    return threshold_for


@exercise(
    "08.1",
    "a threshold at a target FPR",
    "a threshold is chosen on held-out reals for a false-positive rate, not left at 0.5",
    _solution_08_1,
)
def _check_08_1(answer, real_scores):
    rng = np.random.default_rng(8)
    cases = [(rng.beta(2, 5, 400), 0.05), (rng.random(150), 0.1), (np.asarray(real_scores), 0.05)]
    for s, a in cases:
        t = _number(_call(answer, s.copy(), a))
        realised = float((s > t).mean())
        if realised > a:
            return (
                False,
                f"on {len(s)} reals at a {a:.0%} target your threshold {t:.3f} calls "
                f"{realised:.1%} of them fake.",
            )
        if realised < a - 2 / len(s) - 1 / (len(s) + 1):
            return False, (
                f"on {len(s)} reals at a {a:.0%} target your threshold {t:.3f} calls only "
                f"{realised:.1%} fake: it gives away true positives; take the smallest that keeps "
                f"the rate at {a:.0%}."
            )
    s = np.asarray(real_scores)
    t = _number(answer(s.copy(), 0.05))
    return True, (
        f"on the validation reals the 5 % threshold is P(fake) > {t:.3f} (0.5 calls "
        f"{(s > 0.5).mean():.1%} of them fake)."
    )


def _solution_08_2():
    from .mini import photo_of

    def shared_photos(train_paths, test_paths):
        return {photo_of(p) for p in train_paths} & {photo_of(p) for p in test_paths}

    return shared_photos


@exercise(
    "08.2",
    "a split that leaks",
    "crops of one photograph are near duplicates: a split by crop puts the same photograph on both "
    "sides",
    _solution_08_2,
)
def _check_08_2(answer, train_paths, test_paths):
    import random

    from .mini import photo_of

    def reference(a, b):
        return {photo_of(p) for p in a} & {photo_of(p) for p in b}

    crops = list(train_paths) + list(test_paths)
    random.Random(0).shuffle(crops)
    half = len(crops) // 2
    for a, b, what in (
        (train_paths, test_paths, "ntf-mini's split"),
        (crops[:half], crops[half:], "a split by crop"),
    ):
        got = set(_call(answer, list(a), list(b)))
        want = reference(a, b)
        if got != want:
            return (
                False,
                f"{what}: the photographs on both sides are {len(want)}, you found {len(got)}: "
                "compare mini.photo_of of each path.",
            )
    leak = reference(crops[:half], crops[half:])
    photos = {photo_of(p) for p in crops}
    shipped = reference(train_paths, test_paths)
    return True, (
        f"ntf-mini's split shares {len(shipped)} photograph(s); splitting its crops at random puts "
        f"{len(leak)} of {len(photos)} photographs on both sides."
    )


# == 09 · the protocol lab ========================================================================


def _solution_09_1(fpr=0.01):
    return math.ceil(1 / fpr - 1)  # k = ceil((1 - a)(n + 1)) <= n  <=>  n >= 1 / a - 1


@exercise(
    "09.1",
    "how many reals pin an FPR?",
    "a conformal threshold needs at least 1/a - 1 held-out reals: a 1 % promise needs 99",
    _solution_09_1,
)
def _check_09_1(answer):
    from .calibration import threshold_at_fpr

    n = int(_number(_given(answer)))
    want = _solution_09_1()
    scores = np.linspace(0, 1, max(n, 1))
    try:
        threshold_at_fpr(scores, 0.01)
        enough = True
    except ValueError:
        enough = False
    if n != want:
        said = "enough" if enough else "too few"
        return False, f"{n} reals are {said}; find the smallest n with ceil(0.99 (n + 1)) <= n."
    return True, f"{want} reals: the threshold is then the largest of them; 98 cannot pin 1 %."


def _solution_09_2(matrix):
    from .lab import matrix_cells

    cells = matrix_cells(matrix, "NTF")  # {trained on: {tested on: interval cell}}
    off = {(a, b): c["mean"] for a, row in cells.items() for b, c in row.items() if a != b}
    return min(off, key=off.get)


@exercise(
    "09.2",
    "the hardest transfer",
    "the off-diagonal cells of the family matrix are the generalisation claims",
    _solution_09_2,
)
def _check_09_2(answer, matrix):
    from .lab import matrix_cells

    got = tuple(_given(answer))
    want = _solution_09_2(matrix)
    cells = matrix_cells(matrix, "NTF")
    if got != want:
        mean = cells.get(got[0], {}).get(got[1], {}).get("mean") if len(got) == 2 else None
        was = f" (AP {100 * mean:.1f} %)" if mean is not None else ""
        return False, (
            f"{got}{was} is not NTF's lowest off-diagonal cell; give (trained on, tested on)."
        )
    return (
        True,
        f"trained on {want[0]}, tested on {want[1]}: AP "
        f"{100 * cells[want[0]][want[1]]['mean']:.1f} %.",
    )
