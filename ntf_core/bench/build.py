"""The ntf-mini recipe: real crops from verified photographs, fakes from generators trained here, quality checks.

``python -m ntf_core.bench build`` runs the stages below in order. Each stage leaves its result in a work
folder; a rerun skips what is already there, so an interrupted build resumes at the stage it was in. Given the
seed, the build is deterministic on a given machine and thread count (CPU; CUDA kernels are not bitwise stable).

    reals      cut 32 px crops from the photographs, split by photo
    dcgan, sngan, stylegan             train the three GANs
    autoencoder, denoiser              train the latent diffusion model
    samples    draw every generator's fakes (and the multi-step chains)
    write      encode every image to PNG in the CNNDetection layout, with manifest.csv
    quality    KID of each generator and of two trivial fakes; the spectrum classifier's difficulty table
    card       sample grids and the data card (README.md)
"""
from __future__ import annotations

import csv
import dataclasses
import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import diffusion, gans, multistep, photos
from .encode import save_png

FAMILIES = {
    "gan": ["dcgan", "sngan", "stylegan"],
    "diffusion": ["ddpm", "ddim", "pndm"],
    "multistep": ["gan_gan", "gan_dm", "dm_gan"],
}
# the KID table's rows besides the generators (the data card and notebook 00 read them by these names)
GAUSS = "trivial: Gaussian (real pixel mean + covariance)"
BLUR = "trivial: real crops blurred (4x down, up)"
REF_TRAIN = "reference: real train crops (other photos)"
REF_AE = "reference: autoencoder reconstructions of train crops"
TRAIN_GENERATOR = "dcgan"  # plays ProGAN's role: the only generator whose fakes are seen in training
MULTISTEP = {
    "gan_gan": "a StyleGAN image with a feathered SNGAN-made rectangle pasted in (GAN-GAN swap)",
    "gan_dm": "an SNGAN image noised to t = 0.5 T in the latent diffusion model and re-denoised with DDIM (SDEdit)",
    "dm_gan": "a DDIM image with a feathered StyleGAN-made rectangle pasted in (DM-GAN swap)",
}


@dataclass
class BuildConfig:
    seed: int = 0
    per_photo: int = 100  # crops per photo at most, across scales
    n_test: int = 800  # real test crops, and fakes per test generator
    n_val: int = 500  # real val crops, and training-GAN val fakes
    gan_steps: int = 2000
    gan_batch: int = 64
    gan_width: int = 48
    ae_steps: int = 1500
    denoiser_steps: int = 4000
    denoiser_batch: int = 128
    sdedit_strength: float = 0.5
    sampler_steps: int | None = None  # None: each scheduler's own (DDPM 1000, DDIM / PNDM 50); tests use a few
    kid_subsets: int = 50
    device: str = "cpu"
    photo_paths: list[str] | None = None  # None: the 54 verified photos; tests pass fixture images


PRESETS = {
    "full": BuildConfig(),
    # minutes-free smoke preset for tests: a handful of steps, tiny counts (fixture photos)
    "tiny": BuildConfig(per_photo=12, n_test=16, n_val=8, gan_steps=3, gan_batch=8, gan_width=8, ae_steps=3,
                        denoiser_steps=3, denoiser_batch=8, kid_subsets=2, sampler_steps=4),
}


def _save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a half-written stage result


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _f(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0


def _seed(cfg: BuildConfig, stage: str) -> int:
    return cfg.seed * 1000 + sum(ord(c) * (i + 1) for i, c in enumerate(stage)) % 997


class Builder:
    def __init__(self, out: Path, work: Path, cfg: BuildConfig, log=print):
        self.out, self.work, self.cfg, self.log = Path(out), Path(work), cfg, log
        self.work.mkdir(parents=True, exist_ok=True)
        # Stage results are reused by name, so a work folder serves one configuration only.
        fingerprint = {k: v for k, v in config_dict(cfg).items() if k != "device"}
        saved = self.work / "config.json"
        if saved.exists():
            before = json.loads(saved.read_text())
            if before != fingerprint:
                diff = sorted(k for k in set(before) | set(fingerprint) if before.get(k) != fingerprint.get(k))
                raise SystemExit(f"{self.work} holds stage results of another configuration (differs in: "
                                 f"{', '.join(diff)}). Use another --work folder, or delete this one to rebuild.")
        else:
            saved.write_text(json.dumps(fingerprint, indent=1, sort_keys=True))

    # -- stage plumbing -----------------------------------------------------------------------------------
    def _stage(self, name: str, fn):
        path = self.work / f"{name}.pt"
        if path.exists():
            self.log(f"[{name}] done earlier, reusing {path}")
            return _load(path)
        self.log(f"[{name}] running")
        start = time.perf_counter()
        torch.manual_seed(_seed(self.cfg, name))
        result = fn()
        result["seconds"] = time.perf_counter() - start
        _save(result, path)
        self.log(f"[{name}] finished in {result['seconds']:.0f} s")
        return result

    def _bar(self, name):
        bar = tqdm(desc=name, leave=False, mininterval=5)

        def update(step, total):
            bar.total = total
            bar.update(1)
            if step == total - 1:
                bar.close()
        return update

    # -- stages -------------------------------------------------------------------------------------------
    def reals(self):
        def run():
            cfg = self.cfg
            chosen = ([photos.Photo("fixture", p) for p in cfg.photo_paths] if cfg.photo_paths
                      else photos.verified_photos())
            missing = photos.missing_photos(chosen)
            if missing:
                raise SystemExit(f"{len(missing)} source photos are missing, e.g. {missing[0]}.\nInstall them with: "
                                 f"apt-get install -y {' '.join(photos.APT_PACKAGES)}")
            rng = np.random.default_rng(cfg.seed)
            order = rng.permutation(len(chosen))
            crops_by_photo = {}
            for i in order:
                ph = chosen[i]
                pixels = photos.load_photo(ph.path)
                plan = photos.plan_crops(ph, pixels.shape[1], pixels.shape[2], cfg.per_photo, cfg.seed)
                crops_by_photo[ph.photo_id] = (ph, plan, torch.stack([_u8(photos.crop_to_float(pixels, c))
                                                                      for c in plan]))
            # split by photo: test first, then val, the rest train; no photo is in two splits
            split_of, counts = {}, {"test": 0, "val": 0}
            for pid, (_, plan, _) in crops_by_photo.items():
                split = next((s for s, need in (("test", cfg.n_test), ("val", cfg.n_val)) if counts[s] < need),
                             "train")
                split_of[pid] = split
                if split != "train":
                    counts[split] += len(plan)
            out = {}
            for split, need in (("train", None), ("val", cfg.n_val), ("test", cfg.n_test)):
                meta, imgs = [], []
                for pid, (ph, plan, tensors) in crops_by_photo.items():
                    if split_of[pid] == split:
                        meta += [{"photo": ph.photo_id, "package": ph.package, "path": ph.path,
                                  "box": list(c.box), "name": c.name} for c in plan]
                        imgs.append(tensors)
                imgs = torch.cat(imgs)
                if need is not None:  # val and test hold exactly n_val / n_test crops
                    if len(imgs) < need:
                        raise SystemExit(f"only {len(imgs)} {split} crops for the {need} asked for")
                    keep = np.sort(rng.choice(len(imgs), need, replace=False))
                    imgs, meta = imgs[keep], [meta[k] for k in keep]
                out[split] = {"images": imgs, "meta": json.dumps(meta)}
            out["photos"] = json.dumps({pid: {"split": s, "package": crops_by_photo[pid][0].package,
                                              "path": crops_by_photo[pid][0].path,
                                              "license": photos.LICENSES.get(crops_by_photo[pid][0].package, "")}
                                        for pid, s in split_of.items()})
            return out
        return self._stage("reals", run)

    def gan(self, name, reals):
        def run():
            g, log = gans.train_gan(name, _f(reals["train"]["images"]), self.cfg.gan_steps, self.cfg.gan_batch,
                                    width=self.cfg.gan_width, seed=_seed(self.cfg, name), device=self.cfg.device,
                                    progress=self._bar(name))
            return {"state": g.state_dict(), "log": json.dumps(log)}
        return self._stage(name, run)

    def load_gan(self, name, state):
        g = gans.GANS[name][0](self.cfg.gan_width)
        g.load_state_dict(state)
        return g.eval()

    def autoencoder(self, reals):
        def run():
            ae, log = diffusion.train_autoencoder(_f(reals["train"]["images"]), self.cfg.ae_steps,
                                                  seed=_seed(self.cfg, "ae"), device=self.cfg.device,
                                                  progress=self._bar("autoencoder"))
            return {"state": ae.state_dict(), "log": json.dumps(log)}
        return self._stage("autoencoder", run)

    def load_ae(self, state):
        ae = diffusion.AutoEncoder()
        ae.load_state_dict(state)
        return ae.eval()

    def denoiser(self, reals, ae):
        def run():
            unet, log = diffusion.train_denoiser(ae, _f(reals["train"]["images"]), self.cfg.denoiser_steps,
                                                 self.cfg.denoiser_batch, seed=_seed(self.cfg, "denoiser"),
                                                 device=self.cfg.device, progress=self._bar("denoiser"))
            return {"state": unet.state_dict(), "log": json.dumps(log)}
        return self._stage("denoiser", run)

    def samples(self, reals, gen_models, ae, unet):
        cfg = self.cfg

        def run():
            n_train = len(reals["train"]["images"])
            out = {}
            # the training GAN also supplies the training and validation fakes
            n = {TRAIN_GENERATOR: n_train + cfg.n_val + cfg.n_test}
            for name, g in gen_models.items():
                out[name] = _u8(gans.sample_gan(g, n.get(name, cfg.n_test), seed=_seed(cfg, "sample-" + name)))
                self.log(f"  sampled {name}")
            for name in FAMILIES["diffusion"]:
                out[name] = _u8(diffusion.sample(ae, unet, name, cfg.n_test, seed=_seed(cfg, "sample-" + name),
                                                 steps=cfg.sampler_steps))
                self.log(f"  sampled {name}")
            s = lambda name: _seed(cfg, "ms-" + name)
            fresh = lambda g, name: gans.sample_gan(gen_models[g], cfg.n_test, seed=s(name + g))
            out["gan_gan"] = _u8(multistep.blend_region(fresh("stylegan", "gan_gan"), fresh("sngan", "gan_gan"),
                                                        seed=s("gan_gan")))
            out["gan_dm"] = _u8(diffusion.sdedit(ae, unet, fresh("sngan", "gan_dm"), cfg.sdedit_strength,
                                                 seed=s("gan_dm"), steps=cfg.sampler_steps or 50))
            ddim_bg = diffusion.sample(ae, unet, "ddim", cfg.n_test, seed=s("dm_gan-bg"), steps=cfg.sampler_steps)
            out["dm_gan"] = _u8(multistep.blend_region(ddim_bg, fresh("stylegan", "dm_gan"), seed=s("dm_gan")))
            self.log("  sampled the multi-step chains")
            return out
        return self._stage("samples", run)

    # -- output -------------------------------------------------------------------------------------------
    def write(self, reals, fakes):
        """PNG files in the CNNDetection layout, and manifest.csv (one row per file)."""
        cfg, root = self.cfg, self.out
        if root.exists() and any(root.iterdir()):
            if not (root / "manifest.csv").exists():
                raise SystemExit(f"{root} is not empty and holds no ntf-mini manifest.csv: refusing to overwrite "
                                 "it (is it another dataset?). Choose an empty or new --out folder.")
            for sub in ("train", "val", "test"):
                shutil.rmtree(root / sub, ignore_errors=True)
        rows = []

        def put(split_dir, label, images, meta_or_gen, split, family, generator, seed):
            folder = root / split_dir / ("0_real" if label == 0 else "1_fake")
            for i, img in enumerate(images):
                if label == 0:
                    m = meta_or_gen[i]
                    fname, photo, box = f"{m['name']}.png", m["photo"], " ".join(map(str, m["box"]))
                else:
                    fname, photo, box = f"{generator}-{i:05d}.png", "", ""
                save_png(_f(img), folder / fname)
                rows.append({"path": f"{split_dir}/{folder.name}/{fname}", "label": label, "split": split,
                             "family": family, "generator": generator, "source_photo": photo, "crop_box": box,
                             "seed": seed})

        meta = {s: json.loads(reals[s]["meta"]) for s in ("train", "val", "test")}
        tg = fakes[TRAIN_GENERATOR]
        n_train, n_val = len(reals["train"]["images"]), cfg.n_val
        put(f"train/{TRAIN_GENERATOR}", 0, reals["train"]["images"], meta["train"], "train", "real", "real", cfg.seed)
        put(f"train/{TRAIN_GENERATOR}", 1, tg[:n_train], None, "train", "gan", TRAIN_GENERATOR,
            _seed(cfg, "sample-" + TRAIN_GENERATOR))
        put(f"val/{TRAIN_GENERATOR}", 0, reals["val"]["images"], meta["val"], "val", "real", "real", cfg.seed)
        put(f"val/{TRAIN_GENERATOR}", 1, tg[n_train:n_train + n_val], None, "val", "gan", TRAIN_GENERATOR,
            _seed(cfg, "sample-" + TRAIN_GENERATOR))
        for family, names in FAMILIES.items():
            for name in names:
                images = fakes[name][-cfg.n_test:]  # the training GAN's test fakes are its last n_test samples
                put(f"test/{family}/{name}", 0, reals["test"]["images"], meta["test"], "test", "real", "real",
                    cfg.seed)
                put(f"test/{family}/{name}", 1, images, None, "test", family, name,
                    _seed(cfg, ("ms-" if family == "multistep" else "sample-") + name))
        with open(root / "manifest.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        self.log(f"[write] {len(rows)} images under {root}")
        return rows

    def quality(self, reals, fakes, ae):
        def run():
            from ..baselines import SpectrumClassifier
            from ..models import EfficientNetLite0
            from . import kid as K
            from sklearn.metrics import average_precision_score

            cfg = self.cfg
            enc = EfficientNetLite0(pretrained=True).eval()
            real_test = _f(reals["test"]["images"])
            ref = K.features(enc, real_test)
            train_real = _f(reals["train"]["images"])
            n = cfg.n_test
            candidates = {
                GAUSS: K.gaussian_fakes(train_real, n, cfg.seed),
                BLUR: K.blurred_fakes(train_real[-n:]),
                REF_TRAIN: train_real[-n:],
                REF_AE: ae.decode(ae.encode(train_real[-n:])).detach(),
            }
            for names in FAMILIES.values():
                for name in names:
                    candidates[name] = _f(fakes[name][-n:])
            kids = {}
            for key, images in candidates.items():
                kids[key] = K.kid(K.features(enc, images), ref, subsets=cfg.kid_subsets, seed=cfg.seed)
                self.log(f"  KID {key}: {kids[key][0]:.4f} +- {kids[key][1]:.4f}")
            # difficulty: a spectrum classifier trained on the training GAN only, AP on every test generator
            n_train = len(train_real)
            clf = SpectrumClassifier(seed=cfg.seed).fit(
                torch.cat([train_real, _f(fakes[TRAIN_GENERATOR][:n_train])]), [0] * n_train + [1] * n_train)
            real_scores = clf.score(real_test)
            ap = {}
            for names in FAMILIES.values():
                for name in names:
                    s = np.concatenate([real_scores, clf.score(_f(fakes[name][-n:]))])
                    ap[name] = float(average_precision_score([0] * n + [1] * n, s))
            return {"kid": json.dumps(kids), "spectrum_ap": json.dumps(ap)}
        return self._stage("quality", run)

    # -- everything ---------------------------------------------------------------------------------------
    def run(self, card=None):
        t0 = time.perf_counter()
        reals = self.reals()
        gen_models = {name: self.load_gan(name, self.gan(name, reals)["state"]) for name in FAMILIES["gan"]}
        ae = self.load_ae(self.autoencoder(reals)["state"])
        unet = diffusion.make_unet(ae.encoder[-1].out_channels)
        unet.load_state_dict(self.denoiser(reals, ae)["state"])
        unet.eval()
        fakes = self.samples(reals, gen_models, ae, unet)
        fakes = {k: v for k, v in fakes.items() if k != "seconds"}
        quality = self.quality(reals, fakes, ae)
        rows = self.write(reals, fakes)
        from .card import write_card
        write_card(self, reals, fakes, quality, rows, total_seconds=time.perf_counter() - t0, card=card)
        return rows


def hardware(device: str = "cpu") -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.processor() or "unknown model"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} CPU ({model}), {torch.get_num_threads()} threads"


def config_dict(cfg: BuildConfig) -> dict:
    return dataclasses.asdict(cfg)
