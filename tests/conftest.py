import os
from pathlib import Path

import numpy as np
from PIL import Image

# On a machine without chromium, notebooks still run (their figures lose only the static PNG); the
# warning that says so is for people, and would make nbval see a stderr line the stored outputs
# lack. Kernels inherit this.
os.environ.setdefault("NTF_STATIC_WARNING", "0")

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "data_samples" / "ntf-mini"


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def smooth_photo(seed: int, w: int = 420, h: int = 300) -> Image.Image:
    """A photo-like fixture: smooth random colour fields plus a little noise."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 30 + 1, w // 30 + 1, 3)).astype(np.uint8)
    big = np.asarray(
        Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64
    )
    return Image.fromarray(np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8))


def write_fixture_photos(folder: Path, n: int = 5) -> list[str]:
    """n JPEG 'photos' carrying an ICC profile and EXIF, as real camera files do."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    paths = []
    for i in range(n):
        exif = Image.Exif()
        exif[0x010F] = "FixtureCam"
        p = folder / f"photo{i}.jpg"
        smooth_photo(i).save(p, quality=92, icc_profile=icc, exif=exif)
        paths.append(str(p))
    return paths
