"""`ntf detect` on one image from a cold start (a new process each time), on the shipped mini
checkpoint and on its ONNX export (the target: under 1 s). Prints the median of --repeat runs of
each and appends a JSON line to benchmarks/results.jsonl.

    python benchmarks/detect_cold_start.py [--repeat 5]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from ntf_core.config import SHIPPED_CHECKPOINTS
from ntf_core.mini import mini_test_dirs

p = argparse.ArgumentParser()
p.add_argument("--repeat", type=int, default=5)
a = p.parse_args()
ntf = shutil.which("ntf") or str(Path(sys.executable).with_name("ntf"))
image = str(sorted((mini_test_dirs()["dcgan"] / "1_fake").iterdir())[0])
with tempfile.TemporaryDirectory() as tmp:
    onnx = Path(tmp) / "detector.onnx"
    subprocess.run(
        [
            ntf,
            "export",
            "--checkpoint",
            str(SHIPPED_CHECKPOINTS / "stage2.pt"),
            "--onnx",
            str(onnx),
        ],
        check=True,
        capture_output=True,
        timeout=600,  # nothing may wait forever: an export takes seconds
    )
    rows = {}
    for name, model in (
        ("stage2.pt (torch)", SHIPPED_CHECKPOINTS / "stage2.pt"),
        ("detector.onnx", onnx),
    ):
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            out = subprocess.run(
                [ntf, "detect", "--checkpoint", str(model), image],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,  # one cold start takes seconds
            ).stdout.split()[0]
            times.append(time.perf_counter() - t0)
        rows[name] = {
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "p_fake": out,
        }
        print(
            f"{name:20s} median {rows[name]['median_s']:.2f} s  "
            f"(min {rows[name]['min_s']:.2f} s)  P(fake) {out}"
        )
record = {
    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    "benchmark": "detect_cold_start",
    "repeat": a.repeat,
    "rows": rows,
}
with open(Path(__file__).with_name("results.jsonl"), "a") as f:
    f.write(json.dumps(record) + "\n")
