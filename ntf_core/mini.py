"""ntf-mini's facts, without torch: its generator families, its training generator, where it lives,
its manifest, and how its real crops name their source photograph.

Everything that reads ntf-mini (the notebooks, the tests, the benchmarks, the recipe in
``ntf_core.bench`` that builds it) imports these from here. The recipe decides nothing here; this
module only describes what the recipe writes.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections import Counter
from pathlib import Path

# The nine test generators by family, in the order every table of the course prints them.
FAMILIES = {
    "gan": ["dcgan", "sngan", "stylegan"],
    "diffusion": ["ddpm", "ddim", "pndm"],
    "multistep": ["gan_gan", "gan_dm", "dm_gan"],
}
GENERATORS = [g for names in FAMILIES.values() for g in names]
# plays ProGAN's role: the only generator whose fakes are seen in training
TRAIN_GENERATOR = "dcgan"
# the multi-step chains, as the data card describes them
MULTISTEP = {
    "gan_gan": "a StyleGAN image with a feathered SNGAN-made rectangle pasted in (GAN-GAN swap)",
    "gan_dm": "an SNGAN image noised to t = 0.5 T in the latent diffusion model and re-denoised "
    "with DDIM (SDEdit)",
    "dm_gan": "a DDIM image with a feathered StyleGAN-made rectangle pasted in (DM-GAN swap)",
}
# the five test folders made with, or passed through, ntf-mini's one latent diffusion model: a
# "family" of diffusion models here is one model under three samplers (Figure 4a's caveat)
LDM_FOLDERS = ("ddpm", "ddim", "pndm", "gan_dm", "dm_gan")

# The rows of the KID table besides the generators (the data card and notebook 00 read them by these
# names).
KID_GAUSS = "trivial: Gaussian (real pixel mean + covariance)"
KID_BLUR = "trivial: real crops blurred (4x down, up)"
KID_REF_TRAIN = "reference: real train crops (other photos)"
KID_REF_AE = "reference: autoencoder reconstructions of train crops"


def default_mini_root() -> Path:
    """data_samples/ntf-mini of this checkout (or $NTF_MINI)."""
    env = os.environ.get("NTF_MINI")
    return (
        Path(env) if env else Path(__file__).resolve().parent.parent / "data_samples" / "ntf-mini"
    )


def read_manifest(root: str | os.PathLike | None = None) -> list[dict]:
    """The rows of an ntf-mini folder's ``manifest.csv`` (one per image file), ``label`` as an
    int."""
    root = Path(root) if root else default_mini_root()
    path = root / "manifest.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no manifest; is {root} an ntf-mini folder? "
            "(build one with `python -m ntf_core.bench build`)"
        )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["label"] = int(r["label"])
    return rows


def manifest_counts(rows: list[dict]) -> list[tuple]:
    """(split, family, generator, n_real, n_fake) per folder of ntf-mini, in manifest order."""
    folders = Counter((r["split"], r["path"].rsplit("/", 2)[0], r["label"]) for r in rows)
    fam = {
        (r["split"], r["path"].rsplit("/", 2)[0]): (r["family"], r["generator"])
        for r in rows
        if r["label"] == 1
    }
    return [(s, *fam[(s, d)], folders[(s, d, 0)], folders[(s, d, 1)]) for (s, d) in fam]


def mini_test_dirs(root=None) -> dict[str, Path]:
    """``{generator: test/<family>/<generator>}`` of an ntf-mini folder, in the manifest's order."""
    root = Path(root) if root else default_mini_root()
    dirs = {}
    for r in read_manifest(root):
        if r["split"] == "test" and r["label"] == 1 and r["generator"] not in dirs:
            dirs[r["generator"]] = root / Path(r["path"]).parent.parent
    return dirs


_CROP_NAME = re.compile(r"^(?P<photo>.+)-s\d+-y\d+-x\d+$")


def photo_of(path) -> str:
    """The source photo of an ntf-mini real crop, from its file name
    ``<photo>-s<size>-y<y>-x<x>.png``."""
    m = _CROP_NAME.match(Path(path).stem)
    if not m:
        raise ValueError(f"{path}: not an ntf-mini crop name (<photo>-s<size>-y<y>-x<x>.png)")
    return m["photo"]


def cluster_of(path) -> str:
    """The cluster an image is resampled and stratified by: its source photograph for an ntf-mini
    real crop (``photo_of``), the file itself for anything else (a fake, or an image of another
    dataset)."""
    try:
        return photo_of(path)
    except ValueError:
        return str(path)


def by_photo(samples: list) -> dict[str, list]:
    """Samples (anything with a ``path``) grouped by their source photograph (``cluster_of``: a file
    not named like an ntf-mini crop is a group of its own), in the order given."""
    out: dict[str, list] = {}
    for s in samples:
        out.setdefault(cluster_of(s.path), []).append(s)
    return out


def make_folder(dst, real: list, fake: list) -> Path:
    """A fresh CNNDetection-layout folder ``dst/0_real``, ``dst/1_fake`` holding copies of the given
    samples' files (file names must be unique per label: a second file of the same name is an error,
    never an overwrite)."""
    dst = Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    for name, samples in (("0_real", real), ("1_fake", fake)):
        (dst / name).mkdir(parents=True)
        for s in samples:
            target = dst / name / Path(s.path).name
            if target.exists():
                raise ValueError(
                    f"{s.path}: another {name} image is also named {target.name}; make_folder "
                    "needs unique file names (data with class sub-folders: one class at a time)"
                )
            shutil.copy2(s.path, target)
    return dst
