"""The one encoding step that every ntf-mini image, real or fake, goes through.

A detector must not be able to tell real from fake by the file. So every image arrives here as a
float tensor [3, 32, 32] in [0, 1] and leaves as a PNG written with the same explicit arguments:
8-bit RGB, zlib level 9, no ICC profile, no EXIF, no text chunks, no gamma chunk.
``tests/test_bench.py`` checks that the files of every generator and of the real crops are identical
in mode, bit depth, size, chunk list and compression settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..augment import to_uint8

SIZE = 32
PNG_ARGS = {"format": "PNG", "compress_level": 9, "optimize": False}


def quantize(x: torch.Tensor) -> np.ndarray:
    """float [3, H, W] in [0, 1] -> uint8 [H, W, 3], rounding to nearest (the same rounding for
    every image)."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a [3, H, W] image tensor, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("image tensor holds NaN or inf")
    return to_uint8(x.detach().float()).permute(1, 2, 0).cpu().numpy()


def save_png(x: torch.Tensor, path: str | Path) -> None:
    if tuple(x.shape[-2:]) != (SIZE, SIZE):
        raise ValueError(f"{path}: ntf-mini images are {SIZE}x{SIZE}, got {tuple(x.shape[-2:])}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh Image from raw pixels carries no info dict, so nothing is inherited from a source
    # file.
    Image.fromarray(quantize(x), mode="RGB").save(path, **PNG_ARGS)


def png_chunks(path: str | Path) -> list[tuple[str, bytes]]:
    """The chunk types of a PNG file in order, with each chunk's first bytes (IHDR whole; IDAT's
    zlib header)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    chunks, i = [], 8
    while i < len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8].decode("latin-1")
        body = data[i + 8 : i + 8 + length]
        chunks.append((kind, body if kind == "IHDR" else body[:2]))
        i += 12 + length
    return chunks


def encoding_signature(path: str | Path) -> tuple:
    """What a format shortcut could key on: PIL mode and size, IHDR fields, chunk sequence, zlib
    header."""
    with Image.open(path) as im:
        mode, size, info = im.mode, im.size, tuple(sorted(im.info))
    chunks = png_chunks(path)
    kinds = tuple(k for k, _ in chunks)
    ihdr = chunks[0][1]  # width, height, bit depth, colour type, compression, filter, interlace
    zlib_header = next(b for k, b in chunks if k == "IDAT")
    return mode, size, info, kinds, ihdr, zlib_header
