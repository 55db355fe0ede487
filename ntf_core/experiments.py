"""The paper's generalisation experiment (Tables 2-4) on any CNNDetection-layout data: every method
trained on the one training generator, scored on every test folder. What notebook 04 and
benchmarks/generalization.py call.

    results = generalization(train_dir, test_dirs, ntf_checkpoint, seeds=[0, 1, 2])
    save_results(results, "results.json"); results = load_results("results.json")

Results: ``{method: {seed: {generator: metrics row}}}`` with rows as in
``ntf_core.metrics.detection_metrics``. NTF is scored from a stage-2 checkpoint (one per seed, or
one for all); the baselines are trained here. Deterministic methods (spectrum, linear probe:
scikit-learn's lbfgs) are fitted once, whatever the seeds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from .augment import PERTURBATIONS, perturb
from .baselines import NTF, Enlarged, LinearProbe, LowFrequencyProbe, SpectrumClassifier, Wang2020
from .config import make_config
from .data import load_tensor, scan, stratified_subset
from .metrics import average_row, detection_metrics, family_rows
from .mini import FAMILIES, LDM_FOLDERS, cluster_of

METHODS = ("NTF", "spectrum", "linear probe", "Wang2020")
# not detectors: what colour and coarse content alone explain (data card)
CONTROLS = ("low-freq probe",)

# The paper's headline average APs (%) per family, trained on ProGAN (from the paper's abstract and
# tables): what ntf-mini's family averages are printed beside.
PAPER_FAMILY_AP = {"gan": 99.91, "diffusion": 91.16, "multistep": 97.32}


def report_groups(generators) -> dict[str, list[str]]:
    """The row groups of the results tables: ntf-mini's three families, then "shares the LDM"
    (``mini.LDM_FOLDERS``) and "other models", each restricted to ``generators`` (empty groups left
    out)."""
    gens = list(generators)
    groups = {
        **FAMILIES,
        "shares the LDM": list(LDM_FOLDERS),
        "other models": [g for g in gens if g not in LDM_FOLDERS],
    }
    return {k: [g for g in v if g in gens] for k, v in groups.items() if any(g in gens for g in v)}


def pick(samples, limit=None, seed: int = 0) -> list:
    """``limit`` samples of each label (reals first) drawn across source photographs
    (``data.stratified_subset``), or all of them."""
    return [
        s
        for lab in (0, 1)
        for s in stratified_subset([s for s in samples if s.label == lab], limit, seed)
    ]


def load_images(samples, limit=None, seed: int = 0):
    """Images of ``pick(samples, limit, seed)`` as one float tensor, and their labels."""
    picked = pick(samples, limit, seed)
    return load_tensor([s.path for s in picked]), np.array([s.label for s in picked])


def labels_and_clusters(test_dirs: dict, n_test: int | None = None) -> tuple[dict, dict]:
    """``({folder: labels}, {folder: cluster ids})`` of the images ``generalization`` scores in each
    folder, in the same order: what ``bootstrap.photo_bootstrap`` resamples (reals by source
    photograph)."""
    picked = {g: pick(scan(d, layout="cnndetection"), n_test) for g, d in test_dirs.items()}
    return (
        {g: np.array([s.label for s in p]) for g, p in picked.items()},
        {g: [cluster_of(s.path) for s in p] for g, p in picked.items()},
    )


def make_method(
    name: str, seed: int, wang_epochs: int, ntf_checkpoint=None, input_size: int | None = None
):
    """A detector by name; ``input_size``: a baseline sees every image enlarged to it
    (``baselines.Enlarged``, the two-scale comparison; NTF's own input size is its checkpoint's
    ``image_size``)."""
    if name == "NTF":
        return NTF(ntf_checkpoint)
    if input_size:
        return Enlarged(make_method(name, seed, wang_epochs), input_size)
    if name == "spectrum":
        return SpectrumClassifier(seed=seed)
    if name == "linear probe":
        return LinearProbe(seed=seed)
    if name == "Wang2020":
        return Wang2020(epochs=wang_epochs, seed=seed)
    if name == "low-freq probe":
        return LowFrequencyProbe(seed=seed)
    raise ValueError(f"unknown method {name!r}: choose from {METHODS + CONTROLS}")


def generalization(
    train_dir,
    test_dirs: dict,
    ntf_checkpoint,
    seeds=(0,),
    methods=METHODS,
    wang_epochs: int = 5,
    n_train: int | None = None,
    n_test: int | None = None,
    log=print,
    scores: dict | None = None,
    fitted: dict | None = None,
    input_size: int | None = None,
) -> dict:
    """Train each method on ``train_dir`` (real vs the training generator; ``n_train`` of each
    label), score each folder of ``test_dirs`` ({name: folder}; ``n_test`` of each label), subsets
    drawn across photographs. ``scores``: a dict to receive every image's score,
    ``{method: {seed: {folder: array}}}`` (for intervals); ``fitted``: a dict to receive every
    trained detector, ``{method: {seed: detector}}`` (for Figure 5); ``input_size``: the baselines'
    input size (``make_method``)."""
    x_train, y_train = load_images(scan(train_dir, layout="cnndetection"), n_train)
    tests = {
        name: load_images(scan(d, layout="cnndetection"), n_test) for name, d in test_dirs.items()
    }
    results = {}
    for method in methods:
        results[method] = {}
        # NTF and Wang2020 once per seed; the other methods are deterministic, fitted once
        for seed in seeds if method in ("NTF", "Wang2020") else seeds[:1]:
            if method == "NTF" and isinstance(ntf_checkpoint, dict) and seed not in ntf_checkpoint:
                continue  # NTF seeds are the checkpoints given
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            ckpt = None
            if method == "NTF":
                ckpt = ntf_checkpoint[seed] if isinstance(ntf_checkpoint, dict) else ntf_checkpoint
            detector = make_method(method, seed, wang_epochs, ckpt, input_size)
            if method != "NTF":
                detector.fit(x_train, y_train)
            by_folder = {g: detector.score(x) for g, (x, _) in tests.items()}
            if scores is not None:
                scores.setdefault(method, {})[seed] = by_folder
            if fitted is not None:
                fitted.setdefault(method, {})[seed] = detector
            results[method][seed] = {
                g: detection_metrics(y, by_folder[g]) for g, (_, y) in tests.items()
            }
            log(
                f"{method} seed {seed}: average AP {average_row(results[method][seed])['AP']:.3f} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    return results


def summary_table(
    results: dict, families: dict, column: str = "AP"
) -> tuple[list[str], list[list]]:
    """Headers and rows for a table of ``column`` (in %) per generator, family average and overall
    average, one column per method: "mean ± std over seeds" where a method has several seeds."""
    methods = list(results)
    rows_by_method = {m: [family_rows(r, families) for r in results[m].values()] for m in methods}
    names = list(rows_by_method[methods[0]][0])
    body = []
    for name in names:
        cells = []
        for m in methods:
            v = 100 * np.array([r[name][column] for r in rows_by_method[m]])
            cells.append(f"{v.mean():.1f} ± {v.std():.1f}" if len(v) > 1 else f"{v[0]:.1f}")
        fam = name.removesuffix(" average")
        quoted = column == "AP" and name.endswith(" average") and fam in PAPER_FAMILY_AP
        paper = f"{PAPER_FAMILY_AP[fam]:.2f}" if quoted else ""
        body.append([name, *cells, paper])
    return ["generator", *methods, f"paper NTF {column}"], body


def robustness(
    detectors: dict,
    test_dirs: dict,
    grid: dict | None = None,
    n_test: int | None = None,
    log=print,
    scores: dict | None = None,
) -> dict:
    """Figure 5: each fitted detector ({name: object with ``score``}) on every test folder
    (``n_test`` of each label, drawn across photographs), every image perturbed by each kind of
    ``grid`` ({kind: strengths}, default ``augment.PERTURBATIONS``) at each strength.

    Returns ``{kind: {str(strength): {method: row}}}``, rows averaged over the test folders
    (``average_row``); ``scores`` receives every image's score,
    ``{kind: {str(strength): {method: {folder: array}}}}``."""
    grid = grid or PERTURBATIONS
    tests = {
        name: load_images(scan(d, layout="cnndetection"), n_test) for name, d in test_dirs.items()
    }
    out = {}
    for kind, strengths in grid.items():
        out[kind] = {}
        for strength in strengths:
            t0 = time.perf_counter()
            perturbed = {g: (perturb(x, kind, strength), y) for g, (x, y) in tests.items()}
            s = {
                m: {g: det.score(x) for g, (x, _) in perturbed.items()}
                for m, det in detectors.items()
            }
            if scores is not None:
                scores.setdefault(kind, {})[str(strength)] = s
            out[kind][str(strength)] = {
                m: average_row(
                    {g: detection_metrics(y, s[m][g]) for g, (_, y) in perturbed.items()}
                )
                for m in detectors
            }
            log(
                f"{kind} {strength}: "
                + ", ".join(f"{m} {r['AP']:.3f}" for m, r in out[kind][str(strength)].items())
                + f" ({time.perf_counter() - t0:.0f} s)"
            )
    return out


def fit_baselines(
    train_dir,
    methods=("spectrum", "linear probe", "Wang2020"),
    seed: int = 0,
    wang_epochs: int = 5,
    n_train: int | None = None,
    input_size: int | None = None,
) -> dict:
    """The baselines of ``methods``, fitted on ``train_dir`` (real vs the training generator);
    ``input_size``: each sees its images enlarged to it (``make_method``), as NTF's checkpoint does
    its own ``image_size``."""
    x, y = load_images(scan(train_dir, layout="cnndetection"), n_train)
    return {m: make_method(m, seed, wang_epochs, input_size=input_size).fit(x, y) for m in methods}


def results_tag(image_size: int) -> str:
    """The suffix of the stored result files of a run at ``image_size`` (``data_samples/results/``):
    none at the mini preset's own input size, ``_<n>px`` for a comparison at another size
    (``generalization_32px.json``)."""
    return "" if image_size == make_config("mini").image_size else f"_{image_size}px"


def save_results(results: dict, path) -> None:
    """``generalization``'s results as JSON (seeds as strings)."""
    Path(path).write_text(
        json.dumps(
            {m: {str(s): r for s, r in seeds.items()} for m, seeds in results.items()}, indent=1
        )
    )


def load_results(path) -> dict:
    """Results written by ``save_results`` (seeds as ints again)."""
    raw = json.loads(Path(path).read_text())
    return {m: {int(s): r for s, r in seeds.items()} for m, seeds in raw.items()}


def selection_table(results: dict, arms=None) -> tuple[list[str], list[list]]:
    """Headers and rows of a model-selection table (benchmarks/selection.py's ``selection.json``):
    per arm the number of seeds, validation AP and ROC-AUC (mean ± std over seeds, ddof 1) and
    z_hom's collapse statistics on the validation crops. ``arms``: the arm names to show, in order
    (default: all)."""

    def mean_std(runs, get):
        v = np.array([get(r) for r in runs])
        return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"

    rows = []
    for name in arms or results:
        runs = list(results[name].values())
        rows.append(
            [
                name,
                len(runs),
                mean_std(runs, lambda r: r["val"]["AP"]),
                mean_std(runs, lambda r: r["val"]["AUC"]),
                mean_std(runs, lambda r: r["z_hom"]["cos_real"]),
                mean_std(runs, lambda r: r["z_hom"]["cos_fake"]),
                mean_std(runs, lambda r: r["z_hom"]["cos_means"]),
            ]
        )
    return (
        [
            "arm",
            "seeds",
            "val AP",
            "val AUC",
            "z_hom cos, reals",
            "z_hom cos, fakes",
            "cos(mean real, mean fake)",
        ],
        rows,
    )


# What each stored run of the course did to NTF: (notebook, where in the stored file, how it
# differs). The numbers are read from the files; these descriptions say how benchmarks/*.py ran.
NTF_PROTOCOLS = [
    (
        "03, 04 seed 0",
        ("generalization.json", "seed 0"),
        "the shipped stage 2, all 800 + 800 images of each test folder, 64 px input",
    ),
    (
        "04",
        ("generalization_intervals.json", "NTF"),
        "both stages retrained per seed (3), all test images, 64 px",
    ),
    (
        "06 (clean)",
        ("robustness.json", "NTF"),
        "the same 3 seeds, 200 + 200 images per folder drawn across photographs, 64 px",
    ),
    (
        "05 Figure 3",
        ("ablations.json", "3/full NTF"),
        "a 3-epoch stage 1 per seed, stage 2 on the full training set, 400 + 400 per folder, 32 px",
    ),
    (
        "05 Figure 4b",
        ("ablations.json", "4b/all 41 photos"),
        "the same, stage 1's crops spread over 41 photographs with matched steps, 32 px",
    ),
    (
        "05 L_d",
        ("ablations.json", "L_d/full NTF"),
        "each seed's own stage 1 (benchmarks/selection.py's), stage 2 on the full training set, "
        "400 + 400 per folder, 32 px",
    ),
    (
        "05 Figure 4a",
        ("ablations.json", "4a/GAN fakes"),
        "the shipped stage 1 at every seed, stage 2 on 400 dcgan fakes + 400 reals (epochs scaled "
        "to the same steps), 32 px",
    ),
    (
        "09 matrix",
        ("protocol_lab.json", "matrix/gan"),
        "the shipped stage 1, stage 2 on 1800 fakes of all three GANs (not dcgan alone), 64 px",
    ),
]


def ntf_protocols(results_dir) -> tuple[list[str], list[list]]:
    """Headers and rows of one table: NTF's average AP (%) over the nine test folders under every
    protocol of the course's stored runs (``NTF_PROTOCOLS``), so a reader sees why the numbers of
    notebooks 03-09 differ. A file that is missing gives "-"."""
    from .bootstrap import format_interval

    results_dir = Path(results_dir)

    def value(file, key):
        path = results_dir / file
        if not path.exists():
            return "-"
        data = json.loads(path.read_text())
        if key == "seed 0":
            rows = data["NTF"]["0"]
            return f"{100 * average_row(rows)['AP']:.1f}"
        if file == "generalization_intervals.json":
            return format_interval(data["AP"]["methods"]["NTF"]["average"])
        if file == "robustness.json":
            return format_interval(data["intervals"]["blur"]["0.0"]["NTF"])
        part, variant = key.split("/")
        if part == "matrix":
            cell = data["matrix"]["intervals"][variant]["methods"]["NTF"]["average"]
        else:
            cell = data["intervals"][part]["methods"][variant]["average"]
        return format_interval(cell)

    rows = [[nb, how, value(*where)] for nb, where, how in NTF_PROTOCOLS]
    return ["notebook", "protocol", "NTF average AP (%)"], rows
