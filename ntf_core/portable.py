"""The detector without torch: a stage-2 checkpoint exported to ONNX and scored by onnxruntime.

    ntf export --checkpoint runs/mini/stage2.pt --onnx detector.onnx   # once, with torch
    ntf detect --checkpoint detector.onnx photo.jpg        # numpy, Pillow and onnxruntime only

Why: on a 2-core CPU ``import torch, torchvision`` alone takes 3.4 s, so ``ntf detect`` on a ``.pt``
checkpoint needs 4.5 s from a cold start; on the exported model it needs about 0.2 s
(docs/PERFORMANCE.md).

The exported graph is the detector's forward (encoder + classifier, float32, any batch size) and
carries the checkpoint's ``image_size`` in its metadata. Preprocessing repeats
``augment.eval_transform``: the same centre crop, so images at least ``image_size`` on their shorter
side get exactly the torch path's input; a smaller image is first enlarged (shorter side =
``image_size``) with Pillow's bilinear filter, where torchvision's may differ by a grey level here
and there. No module imported here imports torch, except ``export_onnx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .images import BadImageError, image_paths, open_image

META_KEY = "ntf_core"
_SESSIONS: dict = {}  # (path, modification time) -> onnxruntime session


def export_onnx(checkpoint, dst, opset: int = 17) -> Path:
    """Write the detector of a stage-2 ``checkpoint`` as ONNX to ``dst`` (needs torch and the onnx
    package)."""
    import json

    import onnx
    import torch

    from .checkpoints import load_checkpoint, load_detector, weights_hash

    det, cfg = load_detector(checkpoint)
    calibration = load_checkpoint(checkpoint, "stage2").get("calibration")
    det.eval()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(2, 3, cfg.image_size, cfg.image_size)
    import warnings

    with warnings.catch_warnings():  # the TorchScript-based exporter announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            det,
            (x,),
            str(dst),
            dynamo=False,
            opset_version=opset,
            input_names=["image"],
            output_names=["logit"],
            dynamic_axes={"image": {0: "n"}, "logit": {0: "n"}},
        )
    model = onnx.load(str(dst))
    meta = {
        "image_size": cfg.image_size,
        "preset": cfg.preset,
        "encoder": cfg.encoder,
        "from": str(checkpoint),
        "weights_sha256": weights_hash(det),
    }
    if calibration:  # a calibrated checkpoint's threshold travels with its export
        meta["calibration"] = calibration
    model.metadata_props.add(key=META_KEY, value=json.dumps(meta))
    onnx.save(model, str(dst))
    return dst


class OnnxDetector:
    """P(fake) of image files from an ONNX file written by ``export_onnx``."""

    def __init__(self, path):
        import json

        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        key = (str(self.path.resolve()), self.path.stat().st_mtime_ns)
        try:
            if key not in _SESSIONS:  # one session per file: `ntf detect` reads its metadata first
                _SESSIONS[key] = ort.InferenceSession(
                    str(self.path), providers=["CPUExecutionProvider"]
                )
            self.session = _SESSIONS[key]
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(
                f"{self.path}: not a readable ONNX model ({str(err).splitlines()[0][:200]})"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise ValueError(
                f"{self.path}: an ONNX model without ntf_core's metadata; make it with "
                "`ntf export --checkpoint stage2.pt --onnx detector.onnx`"
            )
        self.meta = json.loads(meta[META_KEY])
        self.image_size = int(self.meta["image_size"])

    def preprocess(self, path) -> np.ndarray:
        """The detector's input for one file: float32 [3, S, S] in [0, 1]
        (``augment.eval_transform``)."""
        im, s = open_image(path), self.image_size
        w, h = im.size
        if min(w, h) < s:  # torchvision's resize(x, s): shorter side s, longer side truncated
            w, h = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
            im = im.resize((w, h), Image.BILINEAR)
        a = np.asarray(im)
        # torchvision's center_crop
        top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        return a[top : top + s, left : left + s].transpose(2, 0, 1).astype(np.float32) / 255.0

    def score_files(
        self, paths, batch_size: int = 64, skipped: dict | None = None, logits: bool = False
    ) -> np.ndarray:
        """P(fake) per file (the logit with ``logits=True``). An unreadable file raises
        ``BadImageError``; with a ``skipped`` dict it is recorded there (``{path: problem}``) and
        scored NaN."""
        scores = np.full(len(paths), np.nan)
        for i in range(0, len(paths), batch_size):
            xs, at = [], []
            for j, p in enumerate(paths[i : i + batch_size], start=i):
                try:
                    xs.append(self.preprocess(p))
                    at.append(j)
                except BadImageError as err:
                    if skipped is None:
                        raise
                    skipped[str(p)] = err.problem
            if xs:
                logit = (
                    self.session.run(None, {"image": np.stack(xs)})[0]
                    .reshape(-1)
                    .astype(np.float64)
                )
                scores[at] = logit if logits else 1.0 / (1.0 + np.exp(-logit))
        return scores


def detect(
    onnx_path, paths, batch_size: int = 64, skipped: dict | None = None
) -> list[tuple[Path, float]]:
    """(path, probability of fake) for each image given or found in the folders given
    (``evaluate.detect``'s contract, without torch)."""
    det = OnnxDetector(onnx_path)
    files = image_paths(paths)
    scores = det.score_files(files, batch_size, skipped)
    return [(f, float(s)) for f, s in zip(files, scores) if not np.isnan(s)]
