"""Sample grids, stats.json and the data card (data_samples/README.md) of an ntf-mini build.

The card is a list of sections (``CARD_SECTIONS``), each a function from the build's facts
(``CardFacts``) to its Markdown lines; ``write_card`` gathers the facts, writes the grids, the
license files and stats.json, and joins the sections.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from sklearn.metrics import average_precision_score

from .. import __version__
from ..baselines import LowFrequencyProbe
from ..data import Sample, load_tensor, scan, stratified_subset
from ..experiments import load_images
from ..mini import (
    FAMILIES,
    KID_BLUR,
    KID_REF_AE,
    KID_REF_TRAIN,
    MULTISTEP,
    TRAIN_GENERATOR,
    manifest_counts,
    mini_test_dirs,
)
from ..viz import image_grid
from .common import as_float, config_dict, hardware, stage_results
from .encode import SIZE
from .photos import APT_PACKAGES

ARCHITECTURES = {
    "dcgan": "DCGAN: transposed convs + batch norm; BCE loss. **Training generator** "
    "(ProGAN's role)",
    "sngan": "nearest upsampling + 3x3 convs; spectrally normalised critic, hinge loss",
    "stylegan": "mapping MLP, learned constant, modulated/demodulated convs, noise, bilinear "
    "upsampling; spectrally normalised critic, generator weights averaged (EMA 0.999)",
    "ddpm": "latent diffusion (AE 32->8x8x8 + UNet2DModel), diffusers DDPMScheduler, 1000 "
    "ancestral steps",
    "ddim": "the same latent diffusion model, DDIMScheduler, 50 steps, eta = 0",
    "pndm": "the same latent diffusion model, PNDMScheduler, 50 steps",
    **MULTISTEP,
}


KID_HEADERS = ["images", "KID x 100", "std x 100"]


def kid_rows(kid: dict) -> list[tuple]:
    """The KID table: trivial fakes, then reference rows, then generators in family order (a
    reference table: no verdict, since a perfect generator would not beat the blurred crops either,
    see ``quality_lines``)."""
    order = [k for k in kid if k.startswith("trivial")] + [
        k for k in kid if k.startswith("reference")
    ]
    order += [g for fam in FAMILIES.values() for g in fam if g in kid]
    return [(k, f"{100 * kid[k][0]:.2f}", f"{100 * kid[k][1]:.2f}") for k in order]


def low_frequency_ap(root: Path) -> dict[str, float]:
    """The content-parity control: ``baselines.LowFrequencyProbe`` (per-channel mean and std + 4x4
    thumbnail, logistic regression) trained on the real train crops vs the training generator's, AP
    on every test folder."""
    probe = LowFrequencyProbe().fit(*load_images(scan(root / "train", layout="cnndetection")))
    ap = {}
    for generator, folder in mini_test_dirs(root).items():
        x, y = load_images(scan(folder, layout="cnndetection"))
        ap[generator] = float(average_precision_score(y, probe.score(x)))
    return ap


def quality_lines(kid: dict, low_freq: dict, kid_subsets: int, n_test: int) -> list[str]:
    """The data card's quality section: KID as a reference table, then the low-frequency control."""
    ref_train, ref_ae, blur = kid[KID_REF_TRAIN][0], kid[KID_REF_AE][0], kid[KID_BLUR][0]
    L = [
        "## Quality: KID to the real test crops (a reference table)",
        "",
        "Kernel inception distance (lower is closer to real) in the feature space of the ImageNet",
        "EfficientNet-Lite0 shipped in a PyPI wheel (pooled 1280-d features, images upsampled to "
        "128 px),",
        f"{kid_subsets} subsets of 500 per estimate, against the {n_test} real test crops. Two "
        "trivial fakes",
        "(Gaussian noise with the real pixels' mean and covariance; real crops blurred, downscaled "
        "4x and",
        "upsampled back) and two reference rows put the numbers in context.",
        "",
    ]
    L += markdown_lines(KID_HEADERS, kid_rows(kid))
    L += [
        "",
        "**Reading it.** KID here is a reference, not a pass mark. The real training crops "
        f"themselves score {100 * ref_train:.2f}, "
        + ("*worse* than" if ref_train > blur else "close to")
        + f" the blurred test crops ({100 * blur:.2f}): the test crops come from other "
        "photographs, so KID against them mostly measures scene content, which blurring keeps. A "
        "generator that reproduced its training photographs perfectly would score about "
        f'{100 * ref_train:.2f} and still not "beat" the blurred crops, so no verdict is drawn '
        "from that bar. The latent diffusion members cannot do better than their autoencoder's "
        f"reconstructions ({100 * ref_ae:.2f}).",
        "",
    ]
    L += [
        "## Content parity: what colour and coarse content alone explain",
        "",
        "A detector can separate real from fake by what a generator gets wrong about *content* "
        "(colours, brightness, composition) as well as by forensic traces. The control below "
        "(`ntf_core.baselines.LowFrequencyProbe`) sees only what survives heavy blurring: each "
        "image's per-channel mean and standard deviation and its 4x4 thumbnail (54 numbers), in a "
        f"logistic regression trained on real vs `{TRAIN_GENERATOR}` training crops. Its AP on a "
        "test folder says how much of that row colour and content alone explain; 0.5 is chance.",
        "",
    ]
    L += markdown_lines(
        ["family", "generator", "low-frequency probe AP"],
        [
            (fam, g, f"{low_freq[g]:.3f}")
            for fam, gs in FAMILIES.items()
            for g in gs
            if g in low_freq
        ],
    )
    high = [g for g, v in low_freq.items() if abs(v - 0.5) >= 0.1]  # below chance separates too
    L += [
        "",
        f"**Reading it.** On {', '.join(f'`{g}`' for g in high) or 'no folder'} colour and "
        "content alone separate real from fake far from chance, so a detector's AP on those rows "
        "is not all forensic trace; on the others (AP within 0.1 of 0.5) the probe finds little, "
        "and what a detector scores there is mostly not colour or composition.",
        "",
    ]
    return L


def difficulty_rows(ap: dict) -> list[tuple]:
    """(family, generator, AP) of the spectrum classifier trained on the training GAN only."""
    return [(fam, g, f"{ap[g]:.3f}") for fam, gs in FAMILIES.items() for g in gs]


def markdown_lines(headers, rows) -> list[str]:
    """A Markdown table as lines: the header, its rule, one line per row."""
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(map(str, r)) + " |" for r in rows
    ]


def _minutes(stage) -> float:
    """A stage result's wall-clock minutes (NaN for a missing stage)."""
    return float(stage["seconds"]) / 60 if stage and "seconds" in stage else float("nan")


def stratified_rows(split: dict, n: int) -> list[int]:
    """Rows of ``n`` real crops of a split drawn across its photographs
    (``data.stratified_subset``)."""
    names = [f"{m['photo']}-s0-y0-x{i}.png" for i, m in enumerate(json.loads(split["meta"]))]
    picked = stratified_subset([Sample(Path(nm), 0, "real") for nm in names], n)
    return sorted(int(s.path.stem.rsplit("-x", 1)[1]) for s in picked)


def refresh_quality_section(root: Path, card: Path | None = None) -> dict[str, float]:
    """Rewrite an existing data card's quality section (and its real-sample grid, drawn across
    photographs) from stats.json and the images on disk, without rebuilding ntf-mini; returns the
    low-frequency probe's APs."""
    stats = json.loads((root / "stats.json").read_text())
    low = low_frequency_ap(root)
    card = card or root / "README.md"
    text = card.read_text()
    start = text.index("## Quality")
    end = text.index("## Difficulty")
    lines = quality_lines(
        stats["kid"], low, stats["config"]["kid_subsets"], stats["config"]["n_test"]
    )
    card.write_text(text[:start] + "\n".join(lines) + "\n" + text[end:])
    test_reals = [
        s
        for s in scan(root / "test" / "gan" / TRAIN_GENERATOR, layout="cnndetection")
        if s.label == 0
    ]
    grid = load_tensor([s.path for s in stratified_subset(test_reals, 64)])
    image_grid(grid, nrow=8, upscale=2).save(
        root / "grids" / "real.png", format="PNG", compress_level=9
    )
    return low


# -- the data card, section by section ---------------------------------------------------------


@dataclass
class CardFacts:
    """What the card's sections print, gathered once by ``write_card``."""

    cfg: object  # the build's BuildConfig
    stats: dict  # what stats.json holds
    stages: dict  # stage results of the work folder, by stage name
    logs: dict  # the training logs of the stages that trained a model, by stage name
    rows: list  # the manifest rows
    n_train_reals: int
    photos: dict  # photo id -> split, package, path, license
    kid: dict
    spectrum_ap: dict
    low_freq: dict  # the low-frequency probe's AP per test folder
    grid_names: list  # "real", then the generators, in family order
    grid_folder: str  # the grids' folder, relative to the card


def header_section(f: CardFacts) -> list[str]:
    return [
        "# ntf-mini: the course's embedded benchmark (data card)",
        "",
        "A miniature of the CNNDetection world (Wang et al. 2020) that fits in a repository and "
        "runs on a laptop:",
        f"{SIZE}x{SIZE} RGB crops of **real camera photographs** and fakes from **nine generators "
        "that this project",
        "trains itself**: three GANs, three diffusion samplers and three multi-step chains. One "
        "GAN (`dcgan`)",
        "plays ProGAN's role: its fakes are the only fakes seen in training; every other generator "
        "is unseen.",
        "",
        "Rebuild (needs the Debian photo packages, never needed to follow the course):",
        "",
        "```bash",
        f"sudo apt-get install -y {' '.join(APT_PACKAGES)}",
        "python -m ntf_core.bench build            # resumable; deterministic given --seed on one "
        "machine",
        "```",
        "",
        f"This build: seed {f.cfg.seed}, on {f.stats['hardware']}, torch {f.stats['torch']}.",
        "",
    ]


def layout_section(f: CardFacts) -> list[str]:
    L = [
        "## Layout and counts",
        "",
        "```",
        "ntf-mini/",
        f"  train/{TRAIN_GENERATOR}/0_real, 1_fake",
        f"  val/{TRAIN_GENERATOR}/0_real, 1_fake",
        "  test/<family>/<generator>/0_real, 1_fake   (the same real test crops in every "
        "generator's folder)",
        "  gen_train/<family>/<generator>/1_fake     each generator's own training fakes",
        "  gen_val/<family>/<generator>/1_fake       ... and validation fakes (their reals: "
        "train/ and val/)",
        "  manifest.csv   path, label, split, family, generator, source_photo, crop_box, seed",
        "  stats.json     everything below, machine-readable",
        "  grids/  licenses/",
        "```",
        "",
        "| split | family | generator | real | fake |",
        "|---|---|---|---:|---:|",
    ]
    for split, fam, gen, n_real, n_fake in manifest_counts(f.rows):
        L.append(f"| {split} | {fam} | {gen} | {n_real} | {n_fake} |")
    L += [
        "",
        f"Files: {len(f.rows)} PNGs. Real crops: {f.n_train_reals} train, {f.cfg.n_val} val, "
        f"{f.cfg.n_test} test.",
        "",
        f"**Every generator's own training split** (`gen_train/`, `gen_val/`: {f.cfg.n_split_train}"
        f" + {f.cfg.n_split_val} fakes each) comes from the same trained model as its test fakes, "
        "drawn with other seeds, so no test fake is in it. It has no reals of its own: a detector "
        "trained on it takes its reals from `train/` and `val/` (other photographs than the test "
        "crops'). It is what the family matrix (notebook 09) trains on, one family at a time. "
        "Within a family the generators are not independent: `ddpm`, `ddim` and `pndm` are one "
        "latent diffusion model read by three samplers, and the multi-step chains reuse the GANs "
        "and that model (`mini.LDM_FOLDERS`).",
        "",
    ]
    return L


def real_images_section(f: CardFacts) -> list[str]:
    return [
        "## How the real images were made",
        "",
        f"{len(f.photos)} genuine camera photographs (landscapes, plants, animals, objects, "
        "buildings) from Debian",
        "wallpaper packages, each checked by eye and EXIF (list in `shared/DATA_SOURCES.md` and "
        "below). From each,",
        f"up to {f.cfg.per_photo} non-overlapping tiles of 64, 128 and 256 px (50 / 30 / 20 %) are "
        "cut and",
        "downscaled to 32 px with antialiased bilinear resizing (2x, 4x or 8x: this also erases "
        "the source JPEG's",
        "8x8 block grid). **Splits are by photo**: every crop of a photo is in one split only, so "
        "no scene",
        "leaks from training into test.",
        "",
        "**One encoding for all.** Every image, real or fake, leaves the pipeline as a float 32x32 "
        "image,",
        "is rounded to 8 bits the same way and written by one function "
        "(`ntf_core.bench.encode.save_png`):",
        "8-bit RGB PNG, zlib level 9, no ICC profile, EXIF, text or gamma chunk. "
        "`tests/test_bench.py`",
        "checks mode, bit depth, size, chunk list and zlib header are identical across real and "
        "fake files.",
        "",
    ]


def _generator_row(f: CardFacts, fam: str, g: str) -> str:
    """One row of the generators table: architecture, parameters, training steps and minutes."""
    cfg, stages = f.cfg, f.stages
    if fam == "gan":
        params = f.logs.get(g, {}).get("params_g", "")
        return (
            f"| {fam} | {g} | {ARCHITECTURES[g]} | {params} | {cfg.gan_steps} x "
            f"{cfg.gan_batch} | {_minutes(stages.get(g)):.1f} |"
        )
    if fam == "diffusion":
        minutes = _minutes(stages.get("autoencoder")) + _minutes(stages.get("denoiser"))
        return (
            f"| {fam} | {g} | {ARCHITECTURES[g]} | AE {f.logs['autoencoder']['params']} + UNet "
            f"{f.logs['denoiser']['params']} | AE {cfg.ae_steps} x 64, UNet {cfg.denoiser_steps} "
            f"x {cfg.denoiser_batch} | shared: {minutes:.1f} |"
        )
    return f"| {fam} | {g} | {ARCHITECTURES[g]} | (reuses the models above) | none | none |"


def generators_section(f: CardFacts) -> list[str]:
    L = [
        "## Generators",
        "",
        "| family | generator | how it synthesises | params | training steps | training minutes |",
        "|---|---|---|---:|---:|---:|",
    ]
    L += [_generator_row(f, fam, g) for fam, gs in FAMILIES.items() for g in gs]
    total = sum(_minutes(v) for v in f.stages.values())
    L += [
        "",
        f"Sampling every generator took {_minutes(f.stages.get('samples')):.1f} min (their own "
        f"training splits {_minutes(f.stages.get('splits')):.1f} min); the quality "
        f"checks {_minutes(f.stages.get('quality')):.1f} min; **all stages together {total:.0f} "
        f"min** (plus about 2 min to write the PNGs) on {f.stats['hardware']}. Stage times are "
        "wall-clock, measured on the development machine while other work shared its two cores: "
        "upper bounds for an unattended rebuild.",
        "",
    ]
    return L


def quality_section(f: CardFacts) -> list[str]:
    return quality_lines(f.kid, f.low_freq, f.cfg.kid_subsets, f.cfg.n_test)


def difficulty_section(f: CardFacts) -> list[str]:
    L = [
        "## Difficulty: a spectrum classifier trained on the training GAN only",
        "",
        "Average precision of `ntf_core.baselines.SpectrumClassifier` (logistic regression on log "
        "Fourier",
        "magnitudes of the noise residual; Frank et al. 2020 style), trained on real train crops "
        f"vs `{TRAIN_GENERATOR}`",
        "train fakes, tested on each generator's test folder. A high AP means the generator leaves "
        "a frequency",
        "trace that the training GAN shares; a low one, a generator this simple detector does not "
        "generalise to.",
        "",
    ]
    return L + markdown_lines(["family", "generator", "AP"], difficulty_rows(f.spectrum_ap))


def samples_section(f: CardFacts) -> list[str]:
    L = ["", "## Samples (64 test images each, shown at 2x)", ""]
    for name in f.grid_names:
        L.append(f"**{name}**  \n![{name}]({f.grid_folder}/{name}.png)  ")
    return L


def photographs_section(f: CardFacts) -> list[str]:
    L = [
        "",
        "## Photographs, splits, licenses and attribution",
        "",
        "Each package's full copyright file (authors and per-file licenses) is copied into "
        "`ntf-mini/licenses/`.",
        "",
        "| photo | split | package | license | file |",
        "|---|---|---|---|---|",
    ]
    for pid, p in sorted(f.photos.items(), key=lambda kv: (kv[1]["split"], kv[0])):
        L.append(f"| {pid} | {p['split']} | {p['package']} | {p['license']} | `{p['path']}` |")
    return L


def limits_section(f: CardFacts) -> list[str]:
    return [
        "",
        "## Limits, said plainly",
        "",
        "- 54 scenes is modest diversity; many crops per photo at several scales make up for "
        "count, not variety.",
        "- The photos are wallpapers: downscaled and re-encoded by their packagers, so "
        "camera-sensor noise is",
        "  weaker than in raw photographs. Our own 2x-8x downscaling weakens it further.",
        "- The generators are small and trained for minutes on a CPU: their fakes are far easier "
        "to tell from",
        "  real by eye than ProGAN's or Stable Diffusion's. What ntf-mini keeps is the *structure* "
        "of the",
        "  problem: one training generator, unseen generators of other families, and shared real "
        "images.",
        "- The three diffusion members share one denoiser and autoencoder; they differ by sampler "
        "only, as the",
        "  paper's DDIM / PNDM rows differ from DDPM mostly by sampler.",
        "",
    ]


# The data card, top to bottom.
CARD_SECTIONS = [
    header_section,
    layout_section,
    real_images_section,
    generators_section,
    quality_section,
    difficulty_section,
    samples_section,
    photographs_section,
    limits_section,
]


def _write_grids(grids: Path, names: list[str], reals, fakes) -> None:
    """A grid of 64 test images per name: real crops drawn across photographs, each generator's
    last 64 fakes."""
    grids.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name == "real":
            images = reals["test"]["images"][stratified_rows(reals["test"], 64)]
        else:
            images = fakes[name][-64:]
        image_grid(as_float(images), nrow=8, upscale=2).save(
            grids / f"{name}.png", format="PNG", compress_level=9
        )


def _copy_licenses(folder: Path, photos: dict) -> None:
    """Each photo package's Debian copyright file, as ``<package>.copyright``."""
    folder.mkdir(exist_ok=True)
    for pkg in sorted({p["package"] for p in photos.values()}):
        src = Path(f"/usr/share/doc/{pkg}/copyright")
        if src.exists():
            shutil.copyfile(src, folder / f"{pkg}.copyright")


def write_card(
    builder, reals, fakes, quality, rows, total_seconds: float, card: Path | None = None
) -> Path:
    """The grids, licenses and stats.json of a build under ``builder.out``, and its data card
    (``card``, default ``builder.out / "README.md"``); returns the card's path."""
    out, cfg = builder.out, builder.cfg
    grids = out / "grids"
    names = ["real"] + [n for fam in FAMILIES.values() for n in fam]
    _write_grids(grids, names, reals, fakes)

    stages = stage_results(builder.work)
    logs = {k: json.loads(v["log"]) for k, v in stages.items() if "log" in v}
    kid = json.loads(quality["kid"])
    ap = json.loads(quality["spectrum_ap"])
    counts = Counter((r["split"], r["family"], r["generator"], r["label"]) for r in rows)
    photos = json.loads(reals["photos"])
    _copy_licenses(out / "licenses", photos)

    stats = {
        "version": __version__,
        "config": config_dict(cfg),
        "hardware": hardware(cfg.device),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "total_minutes_this_run": total_seconds / 60,
        "total_minutes_all_stages": sum(_minutes(v) for v in stages.values()),
        "stage_minutes": {k: _minutes(v) for k, v in stages.items()},
        "counts": {"/".join(map(str, k)): v for k, v in sorted(counts.items())},
        "kid": kid,
        "spectrum_ap": ap,
        "photos": photos,
        "generator_params": {k: v.get("params_g", v.get("params")) for k, v in logs.items()},
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True))

    card = card or out / "README.md"
    facts = CardFacts(
        cfg=cfg,
        stats=stats,
        stages=stages,
        logs=logs,
        rows=rows,
        n_train_reals=len(reals["train"]["images"]),
        photos=photos,
        kid=kid,
        spectrum_ap=ap,
        low_freq=low_frequency_ap(out),
        grid_names=names,
        grid_folder=Path(os.path.relpath(grids, card.parent)).as_posix(),
    )
    card.write_text("\n".join(line for section in CARD_SECTIONS for line in section(facts)))
    return card
