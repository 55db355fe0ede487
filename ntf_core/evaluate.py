"""Inference: scoring images with a detector, what ``ntf evaluate`` and ``ntf detect`` call, and the
embedding spaces the notebooks plot.

    score_samples(detector, cfg, samples)    P(fake) of image files (also stage 2's validation)
    evaluate_dirs(checkpoint, dirs)          AP / ROC-AUC / ACC / FPR / FNR per test folder (and the
                                             calibrated operating point's columns)
    detect(checkpoint, paths)                P(fake) per image file
    embed(trace, detector, cfg, samples)     e, z_hom, z_het and the auxiliary z of each image
    chunked(fn, x)                           a function of a tensor of images, 256 at a time

Every image is brought to the checkpoint's own input: center crop at its ``image_size`` (images
smaller than that are first enlarged), so a detector trained on 32 px ntf-mini crops or on 224 px
ProGAN crops scores images of any size the way it was trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as TF

from .augment import eval_transform, to_float
from .calibration import Calibration, protocol_row, sigmoid
from .checkpoints import load_checkpoint, load_detector
from .config import Config
from .data import Images, LayoutError, Sample, image_paths, scan, skipping_collate
from .metrics import detection_metrics
from .models import Detector, TraceModel


def chunked(fn, x: torch.Tensor, size: int = 256) -> torch.Tensor:
    """``fn`` applied to ``x`` in chunks of ``size`` along the first dimension, concatenated:
    scoring a tensor of images without holding every activation at once."""
    return torch.cat([fn(x[i : i + size]) for i in range(0, len(x), size)])


@torch.no_grad()
def score_samples(
    detector: Detector,
    cfg: Config,
    samples: list[Sample],
    device: str = "cpu",
    batch_size: int = 256,
    workers: int = 0,
    skipped: dict | None = None,
    logits: bool = False,
):
    """Probability of "fake" for each sample (sigmoid of the classifier's logit, eval-mode input of
    ``cfg``); the logit itself with ``logits=True``.

    A file that cannot be read raises ``BadImageError`` naming it; with a ``skipped`` dict, it is
    recorded there instead (``{path: problem}``) and its score is NaN."""
    was_training = detector.training
    detector.eval()
    scores = torch.full((len(samples),), float("nan"))
    dataset = Images(samples, eval_transform(cfg.image_size), skip_bad=skipped is not None)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=skipping_collate if skipped is not None else None,
    )
    for batch in loader:
        if skipped is not None:
            x, _, index, bad = batch
            skipped.update({str(samples[i].path): problem for i, problem in bad.items()})
        else:
            x, _, index = batch
        if x is not None:
            z = detector(to_float(x, device)).float().cpu()
            scores[index] = z if logits else torch.sigmoid(z)
    detector.train(was_training)
    return scores.numpy()


def _row_names(dirs: list[Path]) -> list[str]:
    """Each folder's name, with parents added until the names are unique (gan/dcgan vs
    multistep/dcgan)."""
    depth = 1
    while True:
        names = ["/".join(d.resolve().parts[-depth:]) for d in dirs]
        if len(set(names)) == len(names) or depth > 8:
            return names
        depth += 1


def evaluate_dirs(
    checkpoint,
    dirs,
    device: str = "cpu",
    batch_size: int = 256,
    real_dir=None,
    skipped: dict | None = None,
    target_fpr: float | None = None,
) -> dict[str, dict]:
    """Per-folder AP / ROC-AUC / ACC / FPR / FNR of a checkpoint; each folder is one test set in
    the CNNDetection layout (``0_real/`` and ``1_fake/``, possibly below one level of class
    folders). ``real_dir``: real images added to every folder that has none (UnivFD's diffusion
    sets, or a folder of a commercial generator's images). ``skipped``: a dict to record unreadable
    files in (``{path: problem}``) instead of stopping at the first.

    With ``target_fpr``, or when the checkpoint is calibrated (``ntf calibrate``), the rows are
    ``calibration.protocol_row``'s: also the TPR at the target FPR and, with a calibration, its
    threshold's accuracy, TPR and the FPR it realises on these reals (P(fake) then carries the
    calibration's temperature)."""
    det, cfg = load_detector(checkpoint)
    stored = load_checkpoint(checkpoint, "stage2").get("calibration")
    cal = Calibration.from_dict(stored) if stored else None
    protocol = cal is not None or target_fpr is not None
    det.to(device)
    dirs = [Path(d) for d in dirs]
    rows = {}
    for name, d in zip(_row_names(dirs), dirs):
        samples = scan(d, layout="cnndetection")
        if real_dir is not None and not any(s.label == 0 for s in samples):
            samples = scan(d, layout="cnndetection", real_dir=real_dir)
        labels = [s.label for s in samples]
        if 0 not in labels or 1 not in labels:
            raise LayoutError(
                f"{d}: a test folder needs both 0_real and 1_fake images "
                f"(found only {'real' if 0 in labels else 'fake'} ones)"
            )
        here = {} if skipped is not None else None
        scores = score_samples(det, cfg, samples, device, batch_size, skipped=here, logits=protocol)
        if skipped is not None:
            skipped.update(here)
        ok = _scored(checkpoint, samples, scores, here)
        kept = [lab for lab, k in zip(labels, ok) if k]
        if 0 not in kept or 1 not in kept:
            raise LayoutError(
                f"{d}: no readable {'real' if 0 not in kept else 'fake'} images left to score"
            )
        if protocol:
            # uncalibrated: the float32 sigmoid of torch's own scoring (ties where it saturates)
            z = scores[ok]
            p = (
                cal.p_fake(z)
                if cal is not None
                else sigmoid(z.astype(np.float32)).astype(np.float32)
            )
            rows[name] = protocol_row(kept, p, cal, target_fpr or 0.05)
        else:
            rows[name] = detection_metrics(kept, scores[ok])
    return rows


def detect(
    checkpoint, paths, device: str = "cpu", batch_size: int = 256, skipped: dict | None = None
) -> list[tuple[Path, float]]:
    """(path, probability of fake) for each image given or found in the folders given. With a
    ``skipped`` dict, unreadable files are recorded there (``{path: problem}``) and left out instead
    of stopping the run."""
    det, cfg = load_detector(checkpoint)
    det.to(device)
    files = image_paths(paths)
    samples = [Sample(f, -1, "") for f in files]
    here = {} if skipped is not None else None
    scores = score_samples(det, cfg, samples, device, batch_size, skipped=here)
    if skipped is not None:
        skipped.update(here)
    ok = _scored(checkpoint, samples, scores, here)
    return [(f, s) for f, s, k in zip(files, scores.tolist(), ok) if k]


def _scored(checkpoint, samples, scores, skipped) -> np.ndarray:
    """Which samples were scored (not skipped as unreadable); a NaN score of any other sample is an
    error: it comes from the detector, not from the file, and must never be dropped silently."""
    ok = np.array([str(s.path) not in (skipped or {}) for s in samples], dtype=bool)
    bad = np.isnan(scores) & ok
    if bad.any():
        raise ValueError(
            f"{checkpoint}: the detector scored {int(bad.sum())} image(s) NaN (first: "
            f"{samples[int(np.argmax(bad))].path}); is the checkpoint broken?"
        )
    return ok


SPACES = ("e", "z_hom", "z_het", "aux")


@torch.no_grad()
def embed(
    trace: TraceModel,
    detector: Detector | None,
    cfg: Config,
    samples: list[Sample],
    device: str = "cpu",
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """The four spaces of NTF for each sample: the encoder's e, stage 1's z_hom and z_het, stage 2's
    auxiliary z (the heads' outputs L2-normalised, as the losses see them; "aux" only when a
    detector is given, computed on the centre ``contrast_crop`` px of the input, the crop size it
    was trained on). With ``cfg.two_scales`` every space is of the images at their own
    ``contrast_crop`` px (e is then the auxiliary branch's, not the classifier's enlarged-input e).
    ``trace`` is the stage-1 model whose frozen encoder the detector carries (the het head is not in
    it)."""
    trace.eval().to(device)
    heads = {"z_hom": trace.hom, "z_het": trace.het}
    if detector is not None:
        heads["aux"] = detector.eval().to(device).aux
    # two scales (32 px images enlarged for the classifier only): every space at the images' own
    # size
    size = cfg.hom_input_size
    loader = DataLoader(Images(samples, eval_transform(size)), batch_size=batch_size)
    out = {k: [] for k in ("e", *heads)}
    for x, _, _ in loader:
        x = to_float(x, device)
        e = trace.encoder(x).float()
        out["e"].append(e.cpu())
        for k, head in heads.items():
            if k == "aux" and cfg.contrast_crop < size:  # aux was trained on contrast_crop px crops
                e_crop = trace.encoder(TF.center_crop(x, [cfg.contrast_crop])).float()
                out[k].append(F.normalize(head(e_crop), dim=1).cpu())
            else:
                out[k].append(F.normalize(head(e), dim=1).cpu())
    return {k: torch.cat(v).numpy() for k, v in out.items()}
