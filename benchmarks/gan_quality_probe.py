"""How many steps, and which training tricks, do ntf-mini's GANs need to beat the trivial fakes on
KID?

Trains one GAN (``--gan``) in several variants on the real train crops of an ntf-mini build's work
folder and prints KID x 100 to the real test crops at checkpoints, beside the trivial fakes' KID.
Meant for a GPU (one process per GAN, in parallel); on CPU use few steps.

    python benchmarks/gan_quality_probe.py --reals build/ntf-mini-work/reals.pt \\
        --gan dcgan --steps 8000
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ntf_core.bench import gans
from ntf_core.bench import kid as K
from ntf_core.models import EfficientNetLite0

VARIANTS = {"base": {"ema": 0.0}, "ema+diffaug": {"ema": 0.999, "diffaug": True}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reals", required=True)
    ap.add_argument("--gan", choices=sorted(gans.GANS), required=True)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    r = torch.load(args.reals, weights_only=True)
    f = lambda u: u.float() / 255
    train, test = f(r["train"]["images"]), f(r["test"]["images"])
    enc = EfficientNetLite0().eval().to(dev)
    feats = lambda x: K.features(enc, x.to(dev)).cpu()
    ref = feats(test)
    results = {
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
        "gan": args.gan,
        "trivial": {
            "gauss": K.kid(feats(K.gaussian_fakes(train, 800, 0)), ref, 20),
            "blur4": K.kid(feats(K.blurred_fakes(train[-800:])), ref, 20),
            "train_reals": K.kid(feats(train[-800:]), ref, 20),
        },
        "runs": {},
    }
    print(args.gan, results["trivial"], flush=True)
    for name in args.variants:
        kw = VARIANTS[name]
        curve, t0 = [], time.perf_counter()

        def on_step(step, g, curve=curve, t0=t0, name=name):  # bind this run's values (B023)
            if (step + 1) % args.every == 0:
                k = K.kid(feats(gans.sample_gan(g, 800, seed=1)), ref, 20)
                curve.append((step + 1, k[0], time.perf_counter() - t0))
                print(
                    f"{args.gan} {name} step {step + 1}: KID x100 {100 * k[0]:.2f}  "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )

        gans.train_gan(
            args.gan, train, args.steps, 64, width=48, seed=0, device=dev, on_step=on_step, **kw
        )
        results["runs"][name] = curve
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
