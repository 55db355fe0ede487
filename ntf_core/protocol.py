"""The forensics protocol for one detector file (a stage-2 checkpoint or its ONNX export): what
``ntf calibrate``, ``ntf detect`` and ``ntf evaluate --stability`` call (the calibrated columns of
``ntf evaluate`` are ``evaluate.evaluate_dirs``'s).

    calibrate(model, reals, fpr=0.05, labelled=None, out=None, onnx=None)
        the threshold at a target false-positive rate on held-out reals (``calibration``), an
        optional temperature, written into a copy of the model (and of its ONNX export)
    verdicts(model, paths)          P(fake) and real / unsure / fake for each image
    stability(model, paths)         each image's scores under re-encodings, and which flip its
                                    verdict
    REENCODINGS, reencode(image, how)

A model without a calibration works as before: P(fake) is the sigmoid of its logit, the verdict is
"fake" at P(fake) >= 0.5 (``metrics.detection_metrics``'s ACC), and there is no "unsure".
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .calibration import Calibration, calibrate_scores, sigmoid
from .images import LayoutError, image_paths, open_image

# Re-encodings a photograph meets between a camera and a detector (messengers, social networks,
# thumbnails). Resizing uses Pillow's bilinear filter; the scorer then brings the image back to the
# detector's input the way it brings any image (a smaller one is enlarged, then centre-cropped).
REENCODINGS = {
    "JPEG 95": ("JPEG", 95),
    "JPEG 75": ("JPEG", 75),
    "JPEG 50": ("JPEG", 50),
    "WebP 80": ("WEBP", 80),
    "resize 0.5x": ("resize", 0.5),
    "resize 2x": ("resize", 2.0),
}


def reencode(im: Image.Image, how: str) -> Image.Image:
    """``im`` (RGB) after one of ``REENCODINGS``: saved and read back in memory, or resized."""
    if how not in REENCODINGS:
        raise ValueError(f"re-encoding {how!r}: choose from {', '.join(REENCODINGS)}")
    kind, value = REENCODINGS[how]
    if kind == "WEBP" and not _webp():
        raise RuntimeError(
            "this Pillow was built without WebP support: the WebP re-encoding needs it"
        )
    if kind == "resize":
        w, h = im.size
        return im.resize((max(1, round(w * value)), max(1, round(h * value))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format=kind, quality=value)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def reencode_tensor(x, how: str):
    """Float images [N, 3, S, S] in [0, 1] after ``reencode``, brought back to S px the way
    scoring brings any image (``augment.eval_transform``): what a detector scoring tensors sees of
    the re-encoded files."""
    import torch

    from .augment import eval_transform, to_uint8

    size = x.shape[-1]
    back = eval_transform(size)
    out = []
    for img in to_uint8(x):
        im = reencode(Image.fromarray(img.permute(1, 2, 0).numpy()), how)
        out.append(back(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)))
    return torch.stack(out).float() / 255


def _webp() -> bool:
    from PIL import features

    return bool(features.check("webp"))


# -- one model file, .pt or .onnx --------------------------------------------------------------


def _is_onnx(model) -> bool:
    return str(model).lower().endswith(".onnx")


def load_calibration(model) -> Calibration | None:
    """The calibration stored in a checkpoint (``calibration`` entry) or an ONNX file's metadata,
    or None."""
    if _is_onnx(model):
        from .portable import OnnxDetector

        d = OnnxDetector(model).meta.get("calibration")
    else:
        from .checkpoints import load_checkpoint

        d = load_checkpoint(model, "stage2").get("calibration")
    return Calibration.from_dict(d) if d else None


class Scorer:
    """Logits of image files from a ``.pt`` stage-2 checkpoint (torch) or an ``.onnx`` export
    (onnxruntime only)."""

    def __init__(self, model, device: str = "cpu", batch_size: int = 256):
        self.model, self.device, self.batch_size = str(model), device, batch_size
        if _is_onnx(model):
            from .portable import OnnxDetector

            self.onnx = OnnxDetector(model)
            self.weights_sha256 = self.onnx.meta.get("weights_sha256", "")
        else:
            from .checkpoints import load_detector, weights_hash

            self.onnx = None
            self.det, self.cfg = load_detector(model)
            self.det.to(device)
            self.weights_sha256 = weights_hash(self.det)

    def logits(self, files: list[Path], skipped: dict | None = None) -> np.ndarray:
        """One logit per file (NaN for a file recorded in ``skipped``)."""
        if self.onnx is not None:
            return self.onnx.score_files(files, 64, skipped, logits=True)
        from .data import Sample
        from .evaluate import score_samples

        samples = [Sample(Path(f), -1, "") for f in files]
        return score_samples(
            self.det, self.cfg, samples, self.device, self.batch_size, skipped=skipped, logits=True
        )


def _labelled(folder) -> tuple[list[Path], np.ndarray]:
    """Files and labels (0 real, 1 fake) of a CNNDetection-layout folder."""
    from .data import scan

    samples = scan(folder, layout="cnndetection")
    return [s.path for s in samples], np.array([s.label for s in samples])


def _reals(folder) -> list[Path]:
    """The real images of ``folder``: its ``0_real`` folders if it has any, else all its images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of real images")
    inside = [p for p in sorted(folder.rglob("0_real")) if p.is_dir()]
    files = image_paths(inside or [folder])
    if not files:
        raise LayoutError(f"{folder}: holds no images")
    return files


def calibrate(
    model, reals, fpr: float = 0.05, labelled=None, out=None, onnx=None, device: str = "cpu"
) -> tuple[Calibration, list[Path]]:
    """Calibrate ``model`` (``.pt`` or ``.onnx``) on the real images of ``reals`` (held-out: never
    the test reals) at the target ``fpr``; with ``labelled`` (a folder with 0_real / 1_fake) also
    fit a temperature. Writes the calibrated copy to ``out`` (default: ``<model>.calibrated.pt`` or
    ``.onnx``) and, for a ``.pt`` model, its ONNX export to ``onnx`` when given. Returns the
    calibration and the paths written."""
    from .calibration import calibrate_scores

    if onnx is not None and _is_onnx(model):
        raise ValueError(f"{model}: already ONNX; --onnx is for a .pt checkpoint's export")
    scorer = Scorer(model, device)
    real_logits = _finite(scorer.logits(_reals(reals)), model)
    val_logits = val_y = None
    if labelled is not None:
        files, val_y = _labelled(labelled)
        if len(set(val_y.tolist())) < 2:
            raise LayoutError(f"{labelled}: a temperature needs both 0_real and 1_fake images")
        val_logits = _finite(scorer.logits(files), model)
    try:
        cal = calibrate_scores(
            real_logits,
            fpr,
            val_logits,
            val_y,
            reals=str(reals),
            labelled=str(labelled or ""),
            weights_sha256=scorer.weights_sha256,
        )
    except ValueError as err:  # too few reals for the target: say which folder
        raise ValueError(f"{reals}: {err}") from None
    model = Path(model)
    out = Path(out) if out else model.with_name(f"{model.stem}.calibrated{model.suffix}")
    written = [_write_calibrated(model, out, cal)]
    if onnx is not None:
        from .portable import export_onnx

        written.append(export_onnx(out, onnx))
    return cal, written


def _finite(logits: np.ndarray, model) -> np.ndarray:
    if np.isnan(logits).any():
        raise ValueError(f"{model}: the detector scored an image NaN; is the model broken?")
    return logits


def _scores_of(files, logits, skipped: dict | None, model) -> list[int]:
    """Indices of the files that were scored: a NaN of a file not recorded in ``skipped`` (as
    unreadable) comes from the detector and is an error, never dropped silently."""
    keep = []
    for i, (f, z) in enumerate(zip(files, logits)):
        if np.isnan(z):
            if skipped is None or str(f) not in skipped:
                raise ValueError(f"{model}: the detector scored {f} NaN; is the model broken?")
            continue
        keep.append(i)
    return keep


def _write_calibrated(model: Path, out: Path, cal: Calibration) -> Path:
    """A copy of ``model`` carrying ``cal``: a checkpoint's ``calibration`` entry, or an ONNX
    model's metadata."""
    if out.resolve() == model.resolve():
        raise ValueError(f"{out}: the calibrated copy must not overwrite the model it comes from")
    if _is_onnx(model):
        import onnx

        from .portable import META_KEY

        m = onnx.load(str(model))
        for prop in m.metadata_props:
            if prop.key == META_KEY:
                prop.value = json.dumps({**json.loads(prop.value), "calibration": cal.to_dict()})
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(m, str(out))
        return out
    from .checkpoints import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(model, "stage2")
    save_checkpoint(out, {**ckpt, "calibration": cal.to_dict()})
    return out


# -- verdicts, evaluation, stability -----------------------------------------------------------


def called_fake(p, cal: Calibration | None) -> np.ndarray:
    """The binary decision: above the calibrated threshold, or P(fake) >= 0.5 without one."""
    p = np.asarray(p, dtype=np.float64)
    return p > cal.threshold if cal is not None else p >= 0.5


def _p_fake(logits, cal: Calibration | None) -> np.ndarray:
    """P(fake): the calibration's, or (uncalibrated) the sigmoid in float32, as the detector's own
    torch scoring computes it."""
    if cal is not None:
        return cal.p_fake(logits)
    return sigmoid(np.asarray(logits, dtype=np.float32)).astype(np.float32)


def verdicts(model, paths, device: str = "cpu", skipped: dict | None = None) -> list[dict]:
    """``{"path", "p_fake"}`` for each readable image given or found in the folders given, with
    ``"verdict"`` (real / unsure / fake) when the model is calibrated."""
    scorer, cal = Scorer(model, device), load_calibration(model)
    files = image_paths(paths)
    z = scorer.logits(files, skipped)
    p = _p_fake(z, cal)
    out = []
    for i in _scores_of(files, z, skipped, model):
        f, pf = files[i], p[i]
        row = {"path": str(f), "p_fake": float(pf)}
        if cal is not None:
            row["verdict"] = str(cal.verdicts(pf))
        out.append(row)
    return out


def stability(model, paths, device: str = "cpu", skipped: dict | None = None) -> list[dict]:
    """For each image: its P(fake), its P(fake) after each of ``REENCODINGS``, the spread (max -
    min over all of them) and the re-encodings that flip its decision (``called_fake``)."""
    scorer, cal = Scorer(model, device), load_calibration(model)
    files = image_paths(paths)
    z = scorer.logits(files, skipped)
    keep = _scores_of(files, z, skipped, model)
    files, base = [files[i] for i in keep], _p_fake(z[keep], cal)
    variants = {}
    with tempfile.TemporaryDirectory(prefix="ntf-stability-") as tmp:
        for how in REENCODINGS:
            written = []
            for i, f in enumerate(files):
                # lossless PNG: the scorer reads exactly the re-encoded pixels
                dst = Path(tmp) / f"{i:06d}.png"
                reencode(open_image(f), how).save(dst)
                written.append(dst)
            variants[how] = _p_fake(scorer.logits(written), cal)
    decided = called_fake(base, cal)
    out = []
    for i, f in enumerate(files):
        scores = {how: float(v[i]) for how, v in variants.items()}
        allp = [base[i], *scores.values()]
        out.append(
            {
                "path": str(f),
                "p_fake": float(base[i]),
                "reencoded": scores,
                "spread": float(max(allp) - min(allp)),
                "flips": [h for h, v in variants.items() if called_fake(v[i], cal) != decided[i]],
            }
        )
    return out


def flip_rates(per_image: list[dict]) -> dict[str, float]:
    """Share of images whose decision each re-encoding flips, and "any" of them."""
    n = max(len(per_image), 1)
    rates = {how: sum(how in r["flips"] for r in per_image) / n for how in REENCODINGS}
    rates["any"] = sum(bool(r["flips"]) for r in per_image) / n
    return rates


def stability_dirs(
    model, dirs, device: str = "cpu", skipped: dict | None = None
) -> dict[str, dict]:
    """``flip_rates`` per folder (every image of it, reals and fakes), with the median spread;
    with ``skipped``, unreadable files are recorded there and left out."""
    from .evaluate import _row_names

    dirs = [Path(d) for d in dirs]
    out = {}
    for name, d in zip(_row_names(dirs), dirs):
        per_image = stability(model, [d], device, skipped)
        out[name] = {
            **flip_rates(per_image),
            "median spread": float(np.median([r["spread"] for r in per_image])),
            "n": len(per_image),
        }
    return out


__all__ = [
    "REENCODINGS",
    "Calibration",
    "Scorer",
    "calibrate",
    "calibrate_scores",
    "called_fake",
    "flip_rates",
    "load_calibration",
    "reencode",
    "reencode_tensor",
    "stability",
    "stability_dirs",
    "verdicts",
]
