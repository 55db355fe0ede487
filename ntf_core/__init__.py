"""ntf_core: a small, faithful implementation of Natural Trace Forensics (NTF).

Data flows one way. Each module imports only from its own layer or the layers above it in this list,
never from a layer below it (``tests/test_layers.py`` parses every import, function-local ones too,
and also fails on any import cycle):

    facts        images, mini, metrics, calibration, bootstrap, losses, spectra, dist, course, site
    config       config, augment, toy
    data/models  data, models
    checkpoints  checkpoints                 save / load / export, what a run saw, resume checks
    inference    evaluate                    scoring images with a detector, the embedding spaces
    detectors    baselines, saliency, viz, portable, protocol
    training     train                       the two loops and what they alone use
    experiments  experiments                 the paper's tables and figures, on any data
    studies      ablations, pitfalls, lab, exercises   the notebooks' experiments and exercises
    recipe       bench.*                     builds ntf-mini (its facts are in ``mini``)
    command      cli                         ``ntf``: parses, then calls one function

``config`` and ``mini`` import no torch: reading a preset or ntf-mini's families is instant.
"""

__version__ = "0.1.0"

# The layers above, lowest first (what tests/test_layers.py enforces). ``bench`` stands for every
# module of the ntf_core.bench package.
LAYERS = [
    [
        "images",
        "mini",
        "metrics",
        "calibration",
        "bootstrap",
        "losses",
        "spectra",
        "dist",
        "course",
        "site",
    ],
    ["config", "augment", "toy"],
    ["data", "models"],
    ["checkpoints"],
    ["evaluate"],
    ["baselines", "saliency", "viz", "portable", "protocol"],
    ["train"],
    ["experiments"],
    ["ablations", "pitfalls", "lab", "exercises"],
    ["bench"],
    ["cli"],
]
