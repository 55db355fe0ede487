"""The exercises check themselves: every reference solution holds, every wrong answer below is told
it does not (with the reason), a placeholder is "not answered yet", and notebooks 01-09 each hold
at least two exercises that CI runs with their solutions."""

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from ntf_core import exercises, toy
from ntf_core.config import make_config
from ntf_core.course import notebooks
from ntf_core.exercises import EXERCISES, Book, evaluate
from ntf_core.losses import hom_loss, trace_loss
from ntf_core.mini import default_mini_root
from ntf_core.models import build_detector

RESULTS = default_mini_root().parent / "results"
PARAMS = json.loads((Path(__file__).parent / "notebook_ci_params.json").read_text())


class Brightness:
    """A stand-in detector with NTF's ``score``: P(fake) grows with the mean of the centre."""

    def score(self, images):
        s = images.shape[-1]
        centre = images[:, :, s // 4 : s - s // 4, s // 4 : s - s // 4]
        return torch.sigmoid(8 * (centre.mean((1, 2, 3)) - 0.5)).numpy()


def _crop_paths(photos, crops_each):
    return [f"/x/{p}-s64-y{8 * i}-x0.png" for p in photos for i in range(crops_each)]


@pytest.fixture(scope="module")
def contexts():
    g = torch.Generator().manual_seed(0)
    names = ["real"] * 30 + ["dcgan"] * 15 + ["ddpm"] * 15
    centre = torch.randn(16, generator=g)
    spaces = {
        k: torch.cat(
            [centre + 0.5 * torch.randn(30, 16, generator=g), torch.randn(30, 16, generator=g)]
        ).numpy()
        for k in ("e", "z_hom", "z_aux")
    }
    coords = {k: torch.randn(60, 2, generator=g).numpy() for k in spaces}
    cfg = make_config("mini", encoder="small_cnn", encoder_weights="", width=8)
    detector = build_detector(cfg).eval()
    images = torch.rand(12, 3, 16, 16, generator=g)
    return {
        "01.1": {"steps": 20},
        "01.2": {},
        "02.1": {"spaces": spaces, "names": names},
        "02.2": {"coords": coords, "names": names, "spaces": spaces},
        "03.1": {},
        "03.2": {"detector": detector, "x": torch.rand(4, 3, 32, 32, generator=g)},
        "04.1": {},
        "04.2": {"intervals": json.loads((RESULTS / "generalization_intervals.json").read_text())},
        "05.1": {"steps": 20},
        "05.2": {"intervals": json.loads((RESULTS / "ablations.json").read_text())["intervals"]},
        "06.1": {"images": images},
        "06.2": {"ntf": Brightness(), "images": images},
        "07.1": {
            "maps": {
                "real": np.random.default_rng(0).random((5, 8, 8)),
                "dcgan": np.random.default_rng(1).random((5, 8, 8)) ** 3,
            },
            "width": 1,
        },
        "07.2": {"ntf": Brightness(), "images": images},
        "08.1": {"real_scores": np.random.default_rng(2).beta(2, 8, 200)},
        "08.2": {
            "train_paths": _crop_paths(["aa", "bb", "cc"], 6),
            "test_paths": _crop_paths(["dd", "ee"], 6),
        },
        "09.1": {},
        "09.2": {"matrix": json.loads((RESULTS / "protocol_lab.json").read_text())["matrix"]},
    }


def test_every_exercise_has_a_context_here(contexts):
    assert set(contexts) == set(EXERCISES)


@pytest.mark.parametrize("id", list(EXERCISES))
def test_the_reference_solution_holds(id, contexts):
    outcome = evaluate(id, exercises.solve(id, **contexts[id]), **contexts[id])
    assert outcome.ok is True, str(outcome)


@pytest.mark.parametrize("id", list(EXERCISES))
def test_a_placeholder_is_not_answered_yet(id, contexts):
    def placeholder(*args): ...  # a student's function before they write it

    assert evaluate(id, None, **contexts[id]).ok is None
    if id in FUNCTION_ANSWERS:
        assert evaluate(id, placeholder, **contexts[id]).ok is None


def _signed_end(steps):
    run = toy.toy_run("ort", ort_mode="signed", steps=steps)
    return float((run["hom"][-1] * run["het"][-1]).sum(1).mean())


def _with_same_image_pairs(z, source):
    zn = torch.nn.functional.normalize(z, dim=1)
    d2 = (zn[:, None] - zn[None]).pow(2).sum(-1)
    return d2[~torch.eye(len(z), dtype=torch.bool)].mean()


def _unnormalised_p(detector, x):
    with torch.no_grad():
        e = detector.encoder(x)
        return torch.sigmoid(detector.classifier(detector.aux(e) / detector.tau).squeeze(1))


def _roc_auc(y, s):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, s)


def _always_95(x, quality):
    from ntf_core.augment import jpeg

    return jpeg(x, 95)


def _score_change(ntf, images):
    from ntf_core.augment import perturb

    return float(np.abs(ntf.score(perturb(images, "jpeg", 50)) - ntf.score(images)).mean())


def _centre_shares(maps, width):
    from ntf_core.saliency import centre_share

    return {k: float(centre_share(np.asarray(m), width).mean()) for k, m in maps.items()}


WRONG = {
    "01.1": [(hom_loss, "that is the max"), (_with_same_image_pairs, "views of one image")],
    "01.2": [
        (lambda c: {"final_cos": 0.0, "why": "a"}, "the mean signed cosine"),
        (lambda c: {"final_cos": _signed_end(200), "why": "a"}, "the reason is not"),
    ],
    "02.1": [
        (
            lambda c: exercises._proximity_ap(
                c["spaces"]["z_hom"], np.asarray(c["names"]) != "real", -1
            ),
            "grow with the distance",
        ),
        (lambda c: 0.5, "score each image"),
    ],
    "02.2": [(lambda c: {k: 0.5 for k in c["coords"]}, "mean 5-NN accuracy on the map")],
    "03.1": [
        (lambda c: [".-+++", "-.-++", "+-.++"], "hom feature counts as real"),
        (lambda c: [".+++ +", "-.---", "+-.++"], "different labels"),
    ],
    "03.2": [(lambda c: _unnormalised_p(**c), "normalise the auxiliary feature")],
    "04.1": [(_roc_auc, "ROC-AUC")],
    "04.2": [(lambda c: {"gan": "ahead", "diffusion": "ahead", "multistep": "ahead"}, "interval")],
    "05.1": [
        (lambda c: toy.toy_summary(toy.toy_run("tra", steps=c["steps"]))["abs_cos_hom_het"], "full")
    ],
    "05.2": [
        (
            lambda c: {
                "difference": 100 * exercises.solve("05.2", **c)["difference"],
                "within_noise": True,
            },
            "divide by 100",
        ),
        (lambda c: {**exercises.solve("05.2", **c), "within_noise": False}, "hold 0"),
        (
            lambda c: {
                "difference": -exercises.solve("05.2", **c)["difference"],
                "within_noise": True,
            },
            "mind the sign",
        ),
    ],
    "06.1": [(_always_95, "levels")],
    "06.2": [(lambda c: _score_change(**c), "compare verdicts")],
    "07.1": [(lambda c: _centre_shares(**c), "inner square")],
    "07.2": [(lambda c: -exercises.solve("07.2", **c) - 0.01, "occluded minus original")],
    "08.1": [
        (lambda s, a: float(np.quantile(s, a)), "of them fake"),
        (lambda s, a: float(np.max(s)), "gives away"),
    ],
    "08.2": [(lambda a, b: set(), "by crop")],
    "09.1": [(lambda c: 100, "find the smallest n"), (lambda c: 98, "too few")],
    "09.2": [(lambda c: ("gan", "gan"), "not NTF's lowest")],
}
FUNCTION_ANSWERS = {"01.1", "04.1", "06.1", "08.1", "08.2"}


@pytest.mark.parametrize("id", list(EXERCISES))
def test_wrong_answers_fail_and_say_why(id, contexts):
    assert WRONG.get(id), f"exercise {id} has no wrong answer tested"
    for wrong, reason in WRONG[id]:
        answer = wrong if id in FUNCTION_ANSWERS else wrong(contexts[id])
        outcome = evaluate(id, answer, **contexts[id])
        assert outcome.ok is False, f"a wrong answer passed: {outcome}"
        assert reason in outcome.text, outcome.text


def test_eq5_pairs_accept_the_symbols_the_notebook_prints():
    assert evaluate("03.1", ["·−+++", "−·−−−", "+−·++"]).ok is True


def test_the_students_exception_is_an_outcome_not_a_traceback(contexts):
    def broken(z, source):
        return z.nonexistent

    outcome = evaluate("01.1", broken, **contexts["01.1"])
    assert outcome.ok is False and "AttributeError" in outcome.text


def test_a_book_with_solutions_raises_when_a_reference_fails(monkeypatch, capsys):
    ex = EXERCISES["09.1"]
    monkeypatch.setitem(
        EXERCISES, "09.1", exercises.Exercise(**{**ex.__dict__, "solution": lambda: 5})
    )
    with pytest.raises(AssertionError, match="reference solution fails"):
        Book(solutions=True).check("09.1")
    Book(solutions=False).check("09.1", None)
    assert "not answered yet" in capsys.readouterr().out


def test_book_solution_prints_the_reference(capsys):
    Book.solution("08.1")
    assert "conformal" in capsys.readouterr().out


def test_toy_takes_loss_functions_and_its_sum_is_eq_4():
    run = toy.toy_run("tra", steps=0, tau=0.5, lam=0.1)
    g = torch.Generator().manual_seed(0)  # the toy's own start, rebuilt
    start = torch.zeros(2)
    start[0] = 1.0
    z_hom = start + 0.6 * torch.randn(12, 2, generator=g)
    z_het = start + 0.6 * torch.randn(12, 2, generator=g)
    want = trace_loss(z_hom, z_het[:6], z_het[6:], torch.arange(6).repeat(2), 0.5, 0.1)["total"]
    assert float(run["loss"][0]) == pytest.approx(float(want), abs=1e-6)
    calls = []

    def my_hom(z, source):
        calls.append(len(z))
        return hom_loss(z, source) * 0

    flat = toy.toy_run("hom", steps=3, losses={"hom": my_hom})
    assert calls == [12] * 4 and torch.equal(flat["hom"][0], flat["hom"][-1])
    with pytest.raises(ValueError, match="can replace"):
        toy.toy_run(losses={"tra": my_hom})


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebooks_01_to_09_hold_two_exercises_that_ci_solves(nb):
    if nb.stem < "01":
        pytest.skip("notebook 00 is a tour of the data")
    source = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells)
    ids = set(re.findall(r"\.check\(\"(\d\d\.\d)\"", source))
    assert len(ids) >= 2, f"{nb.name}: {len(ids)} exercise(s)"
    assert ids <= set(EXERCISES) and all(i.startswith(nb.stem[:2]) for i in ids)
    assert PARAMS[nb.stem].get("solutions") is True, f"{nb.name}: CI must run the solutions"


def test_the_readme_lists_every_exercise_as_registered():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for ex in EXERCISES.values():
        assert f"| {ex.id} | {ex.title} | {ex.teaches} |" in readme, f"README: exercise {ex.id}"


def test_the_eq5_toy_ties_reals_to_the_trace_and_takes_a_loss():
    with_hom = toy.ext_summary(toy.ext_run(steps=100))
    assert with_hom["real cos to trace, end"] > 0.95 > with_hom["real cos to trace, start"]
    assert with_hom["fake cos to trace, end"] < with_hom["real cos to trace, end"] - 0.3

    def zero(z, labels, z_hom, tau):
        return (z * 0).sum()

    still = toy.ext_run(steps=5, loss=zero)
    assert torch.equal(still["z"][0], still["z"][-1])  # the features moved only by the given loss
