"""The README's results tables, printed from the stored results (data_samples/results/), so that
every number in the README comes from a file a benchmark wrote. Paste the output into README.md
after a rerun.

    python benchmarks/readme_tables.py
    python benchmarks/readme_tables.py --image-size 32  # single-scale comparison (docs/METHOD.md)
"""

import argparse
import json

from ntf_core.bootstrap import format_interval, verdict
from ntf_core.config import make_config
from ntf_core.experiments import results_tag
from ntf_core.mini import default_mini_root

R = default_mini_root().parent / "results"
ROWS = {
    "gan average": "GAN (dcgan*, sngan, stylegan)",
    "diffusion average": "diffusion (ddpm, ddim, pndm)",
    "multistep average": "multi-step (gan_gan, gan_dm, dm_gan)",
    "shares the LDM average": "the five that share one latent diffusion model",
    "other models average": "the four others (dcgan*, sngan, stylegan, gan_gan)",
    "average": "all nine",
}
PAPER = {"gan average": "99.91", "diffusion average": "91.16", "multistep average": "97.32"}


def generalization(tag: str = ""):
    boot = json.loads((R / f"generalization{tag}_intervals.json").read_text())
    for metric in ("AP", "AUC"):
        b = boot[metric]
        methods = list(b["methods"])
        print(f"\n{metric} (%): mean ± std over seeds [95 % photo-bootstrap interval]\n")
        print(
            "| test generators | "
            + " | ".join(methods)
            + (" | paper's NTF |" if metric == "AP" else " |")
        )
        print("|---" * (len(methods) + 1 + (metric == "AP")) + "|")
        for r, label in ROWS.items():
            cells = [format_interval(b["methods"][m][r]) for m in methods]
            print(
                f"| {label} | "
                + " | ".join(cells)
                + (f" | {PAPER.get(r, '')} |" if metric == "AP" else " |")
            )
        print(f"\nNTF − each method, {metric} points, paired [95 % interval]: what it supports\n")
        diffs = list(b["differences"])
        print("| test generators | " + " | ".join(diffs) + " |")
        print("|---" * (len(diffs) + 1) + "|")
        for r, label in ROWS.items():
            cells = [
                f"{100 * d['mean']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] "
                f"{verdict(d, ('NTF ahead', 'NTF behind'))}"
                for d in (b["differences"][k][r] for k in diffs)
            ]
            print(f"| {label} | " + " | ".join(cells) + " |")


def robustness(tag: str = ""):
    rob = json.loads((R / f"robustness{tag}.json").read_text())
    print(
        "\nRobustness: AP at the strongest setting of each perturbation, and the share of each "
        "method's margin above chance (AP − 50) that is left\n"
    )
    res = rob["results"]
    methods = list(next(iter(next(iter(res.values())).values())))
    print("| perturbation | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for kind, by_s in res.items():
        clean, last = next(iter(by_s)), list(by_s)[-1]
        cells = []
        for m in methods:
            c, x = by_s[clean][m]["AP"], by_s[last][m]["AP"]
            iv = rob.get("intervals")  # a run stored before intervals existed has none
            shown = format_interval(iv[kind][last][m]) if iv else f"{100 * x:.1f}"
            kept = (
                f"{100 * (x - 0.5) / (c - 0.5):.0f} % kept"
                if c - 0.5 >= 0.05
                else "clean margin < 5 points"
            )
            cells.append(f"{100 * c:.1f} → {shown} ({kept})")
        print(f"| {kind} {last} | " + " | ".join(cells) + " |")
    diffs = rob.get("differences")  # stored since the paired differences were added
    if diffs:
        names = list(next(iter(next(iter(diffs.values())).values())))
        print("\nNTF − each baseline at the strongest setting, AP points, paired [95 % interval]\n")
        print("| perturbation | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for kind, by_s in diffs.items():
            last = list(by_s)[-1]
            cells = [
                f"{100 * d['mean']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] "
                f"{verdict(d, ('NTF ahead', 'NTF behind'))}"
                for d in (by_s[last][n] for n in names)
            ]
            print(f"| {kind} {last} | " + " | ".join(cells) + " |")


def ablations():
    abl = json.loads((R / "ablations.json").read_text())
    print(
        f"\nAblations ({len(abl['seeds'])} seeds), average AP over the nine folders, and each "
        "variant minus the figure's first, paired\n"
    )
    print("| figure | variant | average AP | − first variant |")
    print("|---|---|---|---|")
    for fig, b in abl["intervals"].items():
        first = next(iter(b["methods"]))
        for v, rows in b["methods"].items():
            d = b["differences"].get(f"{first} - {v}", {}).get("average")
            diff = (
                ""
                if d is None
                else (
                    f"{-100 * d['mean']:+.1f} [{-100 * d['hi']:+.1f}, {-100 * d['lo']:+.1f}] "
                    f"{verdict({'lo': -d['hi'], 'hi': -d['lo']}, ('higher', 'lower'))}"
                )
            )
            print(f"| {fig} | {v} | {format_interval(rows['average'])} | {diff} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--image-size", type=int, default=make_config("mini").image_size)
    a = p.parse_args()
    tag = results_tag(a.image_size)
    if tag:
        generalization(tag)
        robustness(tag)
        raise SystemExit
    for part in (generalization, robustness, ablations):
        try:
            part()
        except (FileNotFoundError, KeyError) as err:
            print(f"\n({part.__name__}: {getattr(err, 'filename', err)} missing)")
