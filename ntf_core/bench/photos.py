"""The 54 verified camera photographs behind ntf-mini's real images, and how they become
32 px crops.

Each path in ``PHOTO_PATHS`` was checked by eye (and by EXIF where present) to be a genuine camera
photograph; the packages also hold renders and illustrations, which are *not* used.
The Debian packages are needed only to rebuild ntf-mini, never to follow the course.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as TF

APT_PACKAGES = (
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "lxqt-themes",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "palapeli-data",
)

LICENSES = {
    "mate-backgrounds": "GPL-2+",
    "plasma-workspace-wallpapers": "GPL-2+",
    "lomiri-wallpapers-16.04": "CC-BY-4.0 / CC-BY-SA-4.0 / CC0, per file (see its copyright file)",
    "lomiri-wallpapers-20.04": "CC (see its copyright file)",
    "lxqt-themes": "LGPL-2.1+ / CC-BY-SA-3.0 (see its copyright file)",
    "palapeli-data": "GPL-2+",
}

_MATE = "/usr/share/backgrounds/mate/nature/"
_PLASMA = "/usr/share/wallpapers/{}/contents/images/{}"
_LOMIRI = "/usr/share/backgrounds/"
_LXQT = "/usr/share/lxqt/wallpapers/"
_PALAPELI = "/usr/share/palapeli/collection/"

PHOTO_PATHS: dict[str, list[str]] = {
    "mate-backgrounds": [
        _MATE + f + ".jpg"
        for f in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ],
    "plasma-workspace-wallpapers": [
        _PLASMA.format(n, "2560x1600.jpg" if n == "ColorfulCups" else "2560x1440.jpg")
        for n in (
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ],
    "lomiri-wallpapers-16.04": [
        _LOMIRI + f + ".jpg"
        for f in (
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "greentock_by_Peter_Nerlich",
            "seeding_by_Clements_Engelhardt",
            "aitzgorri_by_Aitzol_Berasategi",
            "Dragonfly_by_Bolly",
            "friends_by_Aitzol_Berasategi",
            "sunset_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "Picture_0B_by_freespace",
            "life_by_Aitzol_Berasategi",
            "analogpattern_by_Peter_Nerlich",
            "Bridge_by_Sander_Klootwijk",
        )
    ],
    "lomiri-wallpapers-20.04": [_LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg"],
    "lxqt-themes": [
        _LXQT + f
        for f in (
            "Butterfly-Kenneth-Wimer.jpg",
            "Valendas.png",
            "after-the-rain.jpg",
            "appleflower.png",
            "beam.png",
            "butterfly.png",
            "cloud.png",
            "drop.png",
            "flowers.png",
            "fog.jpg",
            "this-is-not-windows.jpg",
        )
    ],
    "palapeli-data": [
        _PALAPELI + f + ".jpg"
        for f in (
            "cincinnati-bridge",
            "european-honey-bee",
            "panther-chameleon-female",
            "castle-maintenon",
            "citrus-fruits",
        )
    ],
}


@dataclass(frozen=True)
class Photo:
    package: str
    path: str

    @property
    def photo_id(self) -> str:
        """A short, stable, file-name-safe id: the file stem (or the wallpaper's folder for
        plasma)."""
        p = Path(self.path)
        stem = p.parts[-4] if self.package == "plasma-workspace-wallpapers" else p.stem
        return "".join(c if c.isalnum() else "-" for c in stem)

    @property
    def license(self) -> str:
        return LICENSES[self.package]


def verified_photos() -> list[Photo]:
    return [Photo(pkg, path) for pkg, paths in PHOTO_PATHS.items() for path in paths]


def missing_photos(photos: list[Photo]) -> list[str]:
    return [p.path for p in photos if not Path(p.path).is_file()]


def load_photo(path: str | Path) -> torch.Tensor:
    """Pixels only, as a uint8 [3, H, W] tensor: EXIF orientation applied, ICC profile and metadata
    dropped."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


# Crop sizes (px in the source photo) and the share of a photo's crops taken at each: every crop is
# then downscaled to 32 px, by 2x, 4x or 8x. Downscaling with antialiasing by >= 2x also washes out
# the 8x8 JPEG block grid of the source files, so real crops do not carry a JPEG signature that
# fakes lack.
SCALES = {64: 0.5, 128: 0.3, 256: 0.2}


@dataclass(frozen=True)
class Crop:
    photo: Photo
    size: int
    top: int
    left: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), PIL's convention."""
        return (self.left, self.top, self.left + self.size, self.top + self.size)

    @property
    def name(self) -> str:
        return f"{self.photo.photo_id}-s{self.size}-y{self.top:04d}-x{self.left:04d}"


def _rng(seed: int, *keys) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed,) + keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def plan_crops(photo: Photo, height: int, width: int, per_photo: int, seed: int) -> list[Crop]:
    """Non-overlapping grid tiles at each scale (tiles of different scales may overlap), drawn at
    random."""
    crops = []
    for size, share in SCALES.items():
        rows, cols = height // size, width // size
        cells = rows * cols
        n = min(cells, round(per_photo * share))
        if n == 0:
            continue
        # centre the grid in the photo, then draw cells without replacement
        oy, ox = (height - rows * size) // 2, (width - cols * size) // 2
        for cell in _rng(seed, photo.photo_id, size).choice(cells, size=n, replace=False):
            r, c = divmod(int(cell), cols)
            crops.append(Crop(photo, size, oy + r * size, ox + c * size))
    return crops


def crop_to_float(pixels: torch.Tensor, crop: Crop, out: int = 32) -> torch.Tensor:
    """Cut one crop and downscale it (antialiased bilinear) to a float [3, out, out] image in
    [0, 1]."""
    patch = (
        pixels[:, crop.top : crop.top + crop.size, crop.left : crop.left + crop.size].float()
        / 255.0
    )
    return TF.resize(patch, [out, out], antialias=True).clamp(0, 1)
