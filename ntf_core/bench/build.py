"""The ntf-mini recipe: real crops from verified photographs, fakes from generators trained here,
quality checks.

``python -m ntf_core.bench build`` runs the stages below in order. Each stage leaves its result in a
work folder; a rerun skips what is already there, so an interrupted build resumes at the stage it
was in. Given the seed, the build is deterministic on a given machine and thread count (CPU; CUDA
kernels are not bitwise stable).

    reals      cut 32 px crops from the photographs, split by photo
    dcgan, sngan, stylegan             train the three GANs
    autoencoder, denoiser              train the latent diffusion model
    samples    draw every generator's test fakes (and the multi-step chains)
    splits     draw every generator's own training and validation fakes (other seeds)
    write      encode every image to PNG in the CNNDetection layout, with manifest.csv
    quality    KID of each generator and of two trivial fakes; the spectrum classifier's
               difficulty table
    card       sample grids and the data card (README.md)
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from tqdm.auto import tqdm

from ..augment import to_uint8
from ..baselines import SpectrumClassifier
from ..checkpoints import atomic_save
from ..mini import (
    FAMILIES,
    KID_BLUR,
    KID_GAUSS,
    KID_REF_AE,
    KID_REF_TRAIN,
    TRAIN_GENERATOR,
)
from ..models import EfficientNetLite0
from . import diffusion, gans, kid, multistep, photos
from .card import write_card
from .common import as_float, config_dict, load_stage, stage_path
from .encode import save_png


@dataclass
class BuildConfig:
    seed: int = 0
    per_photo: int = 100  # crops per photo at most, across scales
    n_test: int = 800  # real test crops, and fakes per test generator
    n_val: int = 500  # real val crops, and training-GAN val fakes
    # every generator's own training and validation fakes (the family matrix, Figure 4a's DM fakes)
    n_split_train: int = 600
    n_split_val: int = 100
    gan_steps: int = 2000
    gan_batch: int = 64
    gan_width: int = 48
    ae_steps: int = 1500
    denoiser_steps: int = 4000
    denoiser_batch: int = 128
    sdedit_strength: float = 0.5
    # None: each scheduler's own (DDPM 1000, DDIM / PNDM 50); tests use a few
    sampler_steps: int | None = None
    kid_subsets: int = 50
    device: str = "cpu"
    photo_paths: list[str] | None = None  # None: the 54 verified photos; tests pass fixture images


PRESETS = {
    "full": BuildConfig(),
    # minutes-free smoke preset for tests: a handful of steps, tiny counts (fixture photos)
    "tiny": BuildConfig(
        per_photo=12,
        n_test=16,
        n_val=8,
        n_split_train=6,
        n_split_val=2,
        gan_steps=3,
        gan_batch=8,
        gan_width=8,
        ae_steps=3,
        denoiser_steps=3,
        denoiser_batch=8,
        kid_subsets=2,
        sampler_steps=4,
    ),
}


def stage_seed(cfg: BuildConfig, stage: str) -> int:
    """The seed of one stage (or one sampling run) of a build, from the build's seed and the
    stage's name."""
    return cfg.seed * 1000 + sum(ord(c) * (i + 1) for i, c in enumerate(stage)) % 997


class Builder:
    """Runs the recipe's stages into a work folder (``work``) and writes ntf-mini to ``out``."""

    def __init__(self, out: Path, work: Path, cfg: BuildConfig, log=print):
        self.out, self.work, self.cfg, self.log = Path(out), Path(work), cfg, log
        self.work.mkdir(parents=True, exist_ok=True)
        # Stage results are reused by name, so a work folder serves one configuration only.
        fingerprint = {k: v for k, v in config_dict(cfg).items() if k != "device"}
        saved = self.work / "config.json"
        if saved.exists():
            before = json.loads(saved.read_text())
            if before != fingerprint:
                diff = sorted(
                    k for k in set(before) | set(fingerprint) if before.get(k) != fingerprint.get(k)
                )
                raise SystemExit(
                    f"{self.work} holds stage results of another configuration (differs in: "
                    f"{', '.join(diff)}). Use another --work folder, or delete this one to rebuild."
                )
        else:
            saved.write_text(json.dumps(fingerprint, indent=1, sort_keys=True))

    # -- stage plumbing -------------------------------------------------------------------------
    def _stage(self, name: str, make, *args):
        """The result of stage ``name``: reused from the work folder, or ``make(*args)`` seeded and
        saved there."""
        path = stage_path(self.work, name)
        if path.exists():
            self.log(f"[{name}] done earlier, reusing {path}")
            return load_stage(path)
        self.log(f"[{name}] running")
        start = time.perf_counter()
        torch.manual_seed(stage_seed(self.cfg, name))
        result = make(*args)
        result["seconds"] = time.perf_counter() - start
        atomic_save(result, path)
        self.log(f"[{name}] finished in {result['seconds']:.0f} s")
        return result

    def _progress_bar(self, name):
        """A ``progress(step, total)`` callback drawing a tqdm bar, closed after the last step."""
        bar = tqdm(desc=name, leave=False, mininterval=5)

        def update(step, total):
            bar.total = total
            bar.update(1)
            if step == total - 1:
                bar.close()

        return update

    # -- stages -------------------------------------------------------------------------------
    def reals(self):
        return self._stage("reals", self._cut_crops)

    def _cut_crops(self):
        """32 px crops of every photo, split by photo; val and test hold exactly n_val / n_test."""
        cfg = self.cfg
        if cfg.photo_paths:
            chosen = [photos.Photo("fixture", p) for p in cfg.photo_paths]
        else:
            chosen = photos.verified_photos()
        missing = photos.missing_photos(chosen)
        if missing:
            raise SystemExit(
                f"{len(missing)} source photos are missing, e.g. {missing[0]}.\nInstall them with: "
                f"apt-get install -y {' '.join(photos.APT_PACKAGES)}"
            )
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(chosen))
        crops_by_photo = {}
        for i in order:
            ph = chosen[i]
            pixels = photos.load_photo(ph.path)
            plan = photos.plan_crops(ph, pixels.shape[1], pixels.shape[2], cfg.per_photo, cfg.seed)
            images = torch.stack([to_uint8(photos.crop_to_float(pixels, c)) for c in plan])
            crops_by_photo[ph.photo_id] = (ph, plan, images)
        split_of = self._split_by_photo(
            {pid: len(plan) for pid, (_, plan, _) in crops_by_photo.items()}
        )
        out = {}
        for split, need in (("train", None), ("val", cfg.n_val), ("test", cfg.n_test)):
            meta, imgs = [], []
            for pid, (ph, plan, tensors) in crops_by_photo.items():
                if split_of[pid] == split:
                    meta += [
                        {
                            "photo": ph.photo_id,
                            "package": ph.package,
                            "path": ph.path,
                            "box": list(c.box),
                            "name": c.name,
                        }
                        for c in plan
                    ]
                    imgs.append(tensors)
            imgs = torch.cat(imgs)
            if need is not None:  # val and test hold exactly n_val / n_test crops
                if len(imgs) < need:
                    raise SystemExit(f"only {len(imgs)} {split} crops for the {need} asked for")
                keep = np.sort(rng.choice(len(imgs), need, replace=False))
                imgs, meta = imgs[keep], [meta[k] for k in keep]
            out[split] = {"images": imgs, "meta": json.dumps(meta)}
        out["photos"] = json.dumps(
            {
                pid: {
                    "split": s,
                    "package": crops_by_photo[pid][0].package,
                    "path": crops_by_photo[pid][0].path,
                    "license": photos.LICENSES.get(crops_by_photo[pid][0].package, ""),
                }
                for pid, s in split_of.items()
            }
        )
        return out

    def _split_by_photo(self, crops_per_photo: dict[str, int]) -> dict[str, str]:
        """The split of each photo, in the order given: photos fill test first, then val, the rest
        is train; no photo is in two splits."""
        split_of, counts = {}, {"test": 0, "val": 0}
        for pid, n_crops in crops_per_photo.items():
            wanted = (("test", self.cfg.n_test), ("val", self.cfg.n_val))
            split = next((s for s, need in wanted if counts[s] < need), "train")
            split_of[pid] = split
            if split != "train":
                counts[split] += n_crops
        return split_of

    def gan(self, name, reals):
        return self._stage(name, self._train_gan, name, reals)

    def _train_gan(self, name, reals):
        g, log = gans.train_gan(
            name,
            as_float(reals["train"]["images"]),
            self.cfg.gan_steps,
            self.cfg.gan_batch,
            width=self.cfg.gan_width,
            seed=stage_seed(self.cfg, name),
            device=self.cfg.device,
            progress=self._progress_bar(name),
        )
        return {"state": g.state_dict(), "log": json.dumps(log)}

    def load_gan(self, name, state):
        g = gans.GANS[name][0](self.cfg.gan_width)
        g.load_state_dict(state)
        return g.eval()

    def autoencoder(self, reals):
        return self._stage("autoencoder", self._train_autoencoder, reals)

    def _train_autoencoder(self, reals):
        ae, log = diffusion.train_autoencoder(
            as_float(reals["train"]["images"]),
            self.cfg.ae_steps,
            seed=stage_seed(self.cfg, "ae"),
            device=self.cfg.device,
            progress=self._progress_bar("autoencoder"),
        )
        return {"state": ae.state_dict(), "log": json.dumps(log)}

    def load_ae(self, state):
        ae = diffusion.AutoEncoder()
        ae.load_state_dict(state)
        return ae.eval()

    def denoiser(self, reals, ae):
        return self._stage("denoiser", self._train_denoiser, reals, ae)

    def _train_denoiser(self, reals, ae):
        unet, log = diffusion.train_denoiser(
            ae,
            as_float(reals["train"]["images"]),
            self.cfg.denoiser_steps,
            self.cfg.denoiser_batch,
            seed=stage_seed(self.cfg, "denoiser"),
            device=self.cfg.device,
            progress=self._progress_bar("denoiser"),
        )
        return {"state": unet.state_dict(), "log": json.dumps(log)}

    def samples(self, reals, gen_models, ae, unet):
        return self._stage("samples", self._draw_samples, reals, gen_models, ae, unet)

    def _draw_samples(self, reals, gen_models, ae, unet):
        """Every generator's fakes as uint8: n_test per test generator; the training GAN also draws
        the training and validation fakes (its test fakes are its last n_test)."""
        cfg = self.cfg
        n = {TRAIN_GENERATOR: len(reals["train"]["images"]) + cfg.n_val + cfg.n_test}
        out = {}
        for names in FAMILIES.values():
            for name in names:
                out[name] = self._generate(name, n.get(name, cfg.n_test), "", gen_models, ae, unet)
                self.log(f"  sampled {name}")
        return out

    def _generate(self, name, n, prefix, gen_models, ae, unet):
        """``n`` fakes (uint8) of generator ``name``; every random draw is seeded by the build's
        seed, ``prefix`` and what is drawn (the test fakes: no prefix; each generator's training
        split: "split-"): every draw has its own seed key (``stage_seed`` of the 28 keys: 28
        distinct seeds, checked for seed 0 by tests/test_bench.py)."""
        cfg = self.cfg

        def seed(key):
            return stage_seed(cfg, prefix + key)

        if name in gen_models:
            return to_uint8(gans.sample_gan(gen_models[name], n, seed=seed("sample-" + name)))
        # Batches of 400 for the test fakes, and one batch for each generator's training and
        # validation fakes (drawn together, then split), as they were drawn (the batching decides
        # the order of the random draws). The committed pndm test fakes predate
        # diffusion.sample's fresh scheduler per batch: their second 400 were drawn with PNDM's
        # multistep history carried over from the first 400 (the data card says so).
        batch = 400 if not prefix else n
        if name in FAMILIES["diffusion"]:
            return to_uint8(
                diffusion.sample(
                    ae,
                    unet,
                    name,
                    n,
                    seed=seed("sample-" + name),
                    steps=cfg.sampler_steps,
                    batch=batch,
                )
            )

        def gan_images(gan):
            """Fresh images of the GAN ``gan`` for this multi-step chain."""
            return gans.sample_gan(gen_models[gan], n, seed=seed("ms-" + name + gan))

        if name == "gan_gan":  # a StyleGAN image with an SNGAN-made rectangle pasted in
            images = multistep.blend_region(
                gan_images("stylegan"), gan_images("sngan"), seed=seed("ms-gan_gan")
            )
        elif name == "gan_dm":  # an SNGAN image re-denoised by the latent diffusion model
            images = diffusion.sdedit(
                ae,
                unet,
                gan_images("sngan"),
                cfg.sdedit_strength,
                seed=seed("ms-gan_dm"),
                steps=cfg.sampler_steps or 50,
            )
        elif name == "dm_gan":  # a DDIM image with a StyleGAN-made rectangle pasted in
            background = diffusion.sample(
                ae, unet, "ddim", n, seed=seed("ms-dm_gan-bg"), steps=cfg.sampler_steps, batch=batch
            )
            images = multistep.blend_region(
                background, gan_images("stylegan"), seed=seed("ms-dm_gan")
            )
        else:
            raise ValueError(f"{name}: not one of ntf-mini's generators")
        return to_uint8(images)

    def splits(self, gen_models, ae, unet):
        return self._stage("splits", self._draw_splits, gen_models, ae, unet)

    def _draw_splits(self, gen_models, ae, unet):
        """Each generator's own training and validation fakes (n_split_train + n_split_val, the
        first n_split_train for training), from the same models as its test fakes but other seeds:
        what the family matrix trains on."""
        n = self.cfg.n_split_train + self.cfg.n_split_val
        out = {}
        for names in FAMILIES.values():
            for name in names:
                out[name] = self._generate(name, n, "split-", gen_models, ae, unet)
                self.log(f"  split of {name}")
        return out

    # -- output -------------------------------------------------------------------------------
    def write(self, reals, fakes, splits=None):
        """PNG files in the CNNDetection layout, and manifest.csv (one row per file); with
        ``splits``, each generator's training and validation fakes in ``gen_train/`` and
        ``gen_val/`` (fakes only: their reals are those of ``train/`` and ``val/``)."""
        cfg, root = self.cfg, self.out
        if root.exists() and any(root.iterdir()):
            if not (root / "manifest.csv").exists():
                raise SystemExit(
                    f"{root} is not empty and holds no ntf-mini manifest.csv: refusing to "
                    "overwrite it (is it another dataset?). Choose an empty or new --out folder."
                )
            for sub in ("train", "val", "test", "gen_train", "gen_val"):
                shutil.rmtree(root / sub, ignore_errors=True)
        rows = []

        def write_folder(split_dir, label, images, meta, split, family, generator, seed):
            """PNGs of ``images`` in ``split_dir/0_real`` (label 0, named by their crop
            ``meta``) or ``split_dir/1_fake`` (label 1, named by generator and index), one
            manifest row each."""
            folder = root / split_dir / ("0_real" if label == 0 else "1_fake")
            for i, img in enumerate(images):
                if label == 0:
                    m = meta[i]
                    fname, photo, box = f"{m['name']}.png", m["photo"], " ".join(map(str, m["box"]))
                else:
                    fname, photo, box = f"{generator}-{i:05d}.png", "", ""
                save_png(as_float(img), folder / fname)
                rows.append(
                    {
                        "path": f"{split_dir}/{folder.name}/{fname}",
                        "label": label,
                        "split": split,
                        "family": family,
                        "generator": generator,
                        "source_photo": photo,
                        "crop_box": box,
                        "seed": seed,
                    }
                )

        meta = {s: json.loads(reals[s]["meta"]) for s in ("train", "val", "test")}
        train_fakes = fakes[TRAIN_GENERATOR]
        train_fakes_seed = stage_seed(cfg, "sample-" + TRAIN_GENERATOR)
        n_train, n_val = len(reals["train"]["images"]), cfg.n_val
        train_dir, val_dir = f"train/{TRAIN_GENERATOR}", f"val/{TRAIN_GENERATOR}"
        write_folder(
            train_dir, 0, reals["train"]["images"], meta["train"], "train", "real", "real", cfg.seed
        )
        write_folder(
            train_dir,
            1,
            train_fakes[:n_train],
            None,
            "train",
            "gan",
            TRAIN_GENERATOR,
            train_fakes_seed,
        )
        write_folder(
            val_dir, 0, reals["val"]["images"], meta["val"], "val", "real", "real", cfg.seed
        )
        write_folder(
            val_dir,
            1,
            train_fakes[n_train : n_train + n_val],
            None,
            "val",
            "gan",
            TRAIN_GENERATOR,
            train_fakes_seed,
        )
        for family, names in FAMILIES.items():
            for name in names:
                # the training GAN's test fakes are its last n_test samples
                images = fakes[name][-cfg.n_test :]
                seed = stage_seed(cfg, ("ms-" if family == "multistep" else "sample-") + name)
                test_dir = f"test/{family}/{name}"
                test_reals = reals["test"]["images"]
                write_folder(
                    test_dir, 0, test_reals, meta["test"], "test", "real", "real", cfg.seed
                )
                write_folder(test_dir, 1, images, None, "test", family, name, seed)
        for family, names in FAMILIES.items() if splits else ():
            for name in names:
                seed = stage_seed(
                    cfg, "split-" + ("ms-" if family == "multistep" else "sample-") + name
                )
                images = splits[name]
                for split, part in (
                    ("gen_train", images[: cfg.n_split_train]),
                    ("gen_val", images[cfg.n_split_train :]),
                ):
                    write_folder(
                        f"{split}/{family}/{name}", 1, part, None, split, family, name, seed
                    )
        with open(root / "manifest.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        self.log(f"[write] {len(rows)} images under {root}")
        return rows

    def quality(self, reals, fakes, ae):
        return self._stage("quality", self._measure_quality, reals, fakes, ae)

    def _measure_quality(self, reals, fakes, ae):
        """KID of every generator and of the trivial and reference rows against the real test
        crops; the difficulty table: a spectrum classifier trained on the training GAN only, AP on
        every test generator."""
        cfg = self.cfg
        enc = EfficientNetLite0(pretrained=True).eval()
        real_test = as_float(reals["test"]["images"])
        ref = kid.features(enc, real_test)
        train_real = as_float(reals["train"]["images"])
        n = cfg.n_test
        candidates = {
            KID_GAUSS: kid.gaussian_fakes(train_real, n, cfg.seed),
            KID_BLUR: kid.blurred_fakes(train_real[-n:]),
            KID_REF_TRAIN: train_real[-n:],
            KID_REF_AE: ae.decode(ae.encode(train_real[-n:])).detach(),
        }
        for names in FAMILIES.values():
            for name in names:
                candidates[name] = as_float(fakes[name][-n:])
        kids = {}
        for key, images in candidates.items():
            kids[key] = kid.kid(
                kid.features(enc, images), ref, subsets=cfg.kid_subsets, seed=cfg.seed
            )
            self.log(f"  KID {key}: {kids[key][0]:.4f} +- {kids[key][1]:.4f}")
        n_train = len(train_real)
        clf = SpectrumClassifier(seed=cfg.seed).fit(
            torch.cat([train_real, as_float(fakes[TRAIN_GENERATOR][:n_train])]),
            [0] * n_train + [1] * n_train,
        )
        real_scores = clf.score(real_test)
        ap = {}
        for names in FAMILIES.values():
            for name in names:
                s = np.concatenate([real_scores, clf.score(as_float(fakes[name][-n:]))])
                ap[name] = float(average_precision_score([0] * n + [1] * n, s))
        return {"kid": json.dumps(kids), "spectrum_ap": json.dumps(ap)}

    # -- everything -----------------------------------------------------------------------------
    def run(self, card=None):
        """Every stage, then the PNGs and manifest, then the data card; returns the manifest
        rows."""
        t0 = time.perf_counter()
        reals = self.reals()
        gen_models = {
            name: self.load_gan(name, self.gan(name, reals)["state"]) for name in FAMILIES["gan"]
        }
        ae = self.load_ae(self.autoencoder(reals)["state"])
        unet = diffusion.make_unet(ae.encoder[-1].out_channels)
        unet.load_state_dict(self.denoiser(reals, ae)["state"])
        unet.eval()
        fakes = self.samples(reals, gen_models, ae, unet)
        fakes = {k: v for k, v in fakes.items() if k != "seconds"}
        splits = self.splits(gen_models, ae, unet)
        splits = {k: v for k, v in splits.items() if k != "seconds"}
        quality = self.quality(reals, fakes, ae)
        rows = self.write(reals, fakes, splits)
        write_card(
            self, reals, fakes, quality, rows, total_seconds=time.perf_counter() - t0, card=card
        )
        return rows
