"""Reading image files without torch: what ``ntf_core.data`` builds on, and what the torch-free
``ntf detect`` path (``ntf_core.portable``) uses alone, so that it starts in a fraction of a second.

``open_image`` converts every mode to 8-bit RGB (alpha composited on white, 16-bit scaled down, CMYK
and palette converted) and turns unreadable files into a ``BadImageError`` naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


class BadImageError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


class LayoutError(ValueError):
    """A folder that is not in any layout we read; the message says what was expected."""


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file as 8-bit RGB, or raise ``BadImageError`` saying why not."""
    path = Path(path)
    if not path.exists():
        raise BadImageError(path, "no such file")
    if path.is_dir():
        raise BadImageError(path, "is a folder, not an image")
    if path.stat().st_size == 0:
        raise BadImageError(path, "empty file (0 bytes)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                try:
                    return to_rgb(im)
                except ValueError:
                    raise BadImageError(path, f"unsupported image mode {mode!r}") from None
    except PermissionError:
        raise BadImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise BadImageError(path, "not an image file PIL can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImageError(path, f"too large to open safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImageError(path, f"corrupt or truncated image ({err})") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Transparency is composited on white; 16/32-bit greys are scaled,
    not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return Image.fromarray((a / top * 255).round().clip(0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "F":  # float images: [0, 1] if they fit there, else taken as 0-255
        a = np.asarray(im, dtype=np.float64)
        a = a * 255 if a.max() <= 1.0 else a
        return Image.fromarray(a.round().clip(0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


def image_paths(paths) -> list[Path]:
    """The image files among ``paths``; folders are searched recursively. Unknown paths are
    errors."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
            )
            if not found:
                raise LayoutError(f"{p}: no images in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out
