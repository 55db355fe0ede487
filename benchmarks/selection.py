"""Model selection for the mini preset on the dcgan *validation* split only (no test folder is read
here).

Each arm is a stage-1 setting and a stage-2 setting, trained at every seed; the score is the
validation AP and ROC-AUC of the last stage-2 epoch (no early stopping), and the collapse statistics
of z_hom on the validation crops. Results go to data_samples/results/selection.json (written after
every run, so a stopped run keeps what it finished); runs live in runs/sel/ and resume there.
docs/METHOD.md holds the tables this prints.

    # 3 readings on the 10-epoch stage 1
    OMP_NUM_THREADS=2 python benchmarks/selection.py --group readings
    OMP_NUM_THREADS=2 python benchmarks/selection.py --group stage1 --reading aux
    # eq. 3: signed, square (abs: stage1)
    OMP_NUM_THREADS=2 python benchmarks/selection.py --group ort
    # print every table, train nothing
    OMP_NUM_THREADS=2 python benchmarks/selection.py --table

Seed 0 of the preset's own stage 1 (10 epochs at lr1 0.001) is the checkpoint shipped before this
selection (data_samples/checkpoints/mini/stage1.pt as of commit 992706f8, float16), kept in
runs/sel/ as a copy.
"""

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ntf_core.checkpoints import load_checkpoint, load_detector, load_trace_model
from ntf_core.config import SHIPPED_CHECKPOINTS, make_config
from ntf_core.data import scan
from ntf_core.evaluate import embed, score_samples
from ntf_core.experiments import selection_table
from ntf_core.metrics import collapse_stats, detection_metrics
from ntf_core.mini import default_mini_root
from ntf_core.train import stage1, stage2

RUNS = Path("runs/sel")
OUT = default_mini_root().parent / "results" / "selection.json"

# stage-1 settings (overrides of the mini preset)
STAGE1 = {
    "e10_lr0.001": {},  # the preset before this selection
    "e3_lr0.001": {"epochs1": 3},
    "e3_lr0.01": {"epochs1": 3, "lr1": 0.01},
    # no stage 1: the ImageNet encoder, fresh heads
    "e0": {"epochs1": 0},
    # the collapse remedy (losses.hom_variance_floor)
    "e3_floor0.05": {"epochs1": 3, "hom_floor": 0.05},
    "e3_signed": {"epochs1": 3, "ort_mode": "signed"},  # eq. 3 as printed
    "e3_square": {"epochs1": 3, "ort_mode": "square"},
    "e10_floor0.05": {"hom_floor": 0.05},
}

GROUPS = {  # (stage-1 arm, stage-2 overrides) per group
    "readings": [("e10_lr0.001", {"reading": r}) for r in ("aux", "trace", "e")],
    "readings_e3": [("e3_lr0.001", {"reading": r}) for r in ("aux", "trace", "e")],
    "stage1": [(s, {}) for s in ("e0", "e3_lr0.001", "e3_lr0.01", "e10_lr0.001")],
    "remedy": [(s, {}) for s in ("e3_floor0.05",)],  # beside e3_lr0.001 (same 3 epochs, no floor)
    "ext": [("e3_lr0.001", {"ext_weight": 0.0})],
    # eq. 3's readings beside e3_lr0.001 (abs, the default)
    "ort": [(s, {}) for s in ("e3_signed", "e3_square")],
}


def arm_name(s1: str, s2: dict) -> str:
    return s1 + "".join(f" {k}={v}" for k, v in sorted(s2.items()))


LOCK_TIMEOUT_S = 2 * 3600  # a 10-epoch mini stage 1 takes about 10 min on 2 CPU cores


@contextlib.contextmanager
def holding(lock: Path, timeout_s: float = LOCK_TIMEOUT_S, poll_s: float = 10.0):
    """Hold an exclusive ``flock`` on the file ``lock`` for the ``with`` body.

    The kernel drops the lock when its holder exits, so a killed run leaves nothing stale behind.
    A lock held by a running process is waited for at most ``timeout_s`` seconds; then a
    TimeoutError names the file and the holder's PID (which the holder writes into the file), so
    that two runs of this script never train one checkpoint twice and never wait forever."""
    deadline = time.monotonic() + timeout_s
    with open(lock, "a+") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    holder = f.read().strip() or "unknown"
                    raise TimeoutError(
                        f"{lock}: held by process {holder} for more than {timeout_s:g} s; "
                        f"wait for it, stop it, or raise --lock-timeout"
                    ) from None
                time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def stage1_checkpoint(s1: str, seed: int, lock_timeout_s: float = LOCK_TIMEOUT_S) -> Path:
    """The stage-1 checkpoint of an arm and seed, trained here if missing (``holding`` a lock file
    keeps two processes of this script from training the same one: the second waits, within
    ``lock_timeout_s``)."""
    path = RUNS / f"{s1}_s{seed}" / "stage1.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with holding(path.with_suffix(".lock"), lock_timeout_s):
        if s1 == "e10_lr0.001" and seed == 0 and not path.exists():
            shutil.copy2(SHIPPED_CHECKPOINTS / "stage1.pt", path)
        if (
            not path.exists()
            or load_checkpoint(path)["epoch"] < make_config("mini", **STAGE1[s1]).epochs1
        ):
            stage1(make_config("mini", seed=seed, out=str(path.parent), **STAGE1[s1]))
    return path


def run_arm(
    s1: str, s2: dict, seed: int, reading: str, lock_timeout_s: float = LOCK_TIMEOUT_S
) -> dict:
    t0 = time.perf_counter()
    ck1 = stage1_checkpoint(s1, seed, lock_timeout_s)
    s2 = {"reading": reading, **s2}
    out = RUNS / f"{s1}_s{seed}" / "-".join(f"{k}={v}" for k, v in sorted(s2.items()))
    # the selection ran at one scale (32 px), the preset before its fifth step took the two scales
    # (64 px)
    cfg = make_config(
        "mini",
        seed=seed,
        out=str(out),
        stage1_checkpoint=str(ck1),
        image_size=32,
        **STAGE1[s1],
        **s2,
    )
    ck2 = stage2(cfg)
    det, cfg = load_detector(ck2)
    val = scan(cfg.val_dir, layout="cnndetection")
    labels = np.array([s.label for s in val])
    m = detection_metrics(labels, score_samples(det, cfg, val))
    trace, _, _ = load_trace_model(ck1)
    z = embed(trace, det, cfg, val)
    h1, h2 = load_checkpoint(ck1)["history"], load_checkpoint(ck2)["history"]
    return {
        "val": {k: m[k] for k in ("AP", "AUC", "ACC")},
        "z_hom": collapse_stats(z["z_hom"][labels == 0], z["z_hom"][labels == 1]),
        "aux": collapse_stats(z["aux"][labels == 0], z["aux"][labels == 1]),
        "stage1": h1[-1] if h1 else {},
        "stage2": h2[-1],
        "seconds": time.perf_counter() - t0,
    }


def table(results: dict) -> str:
    headers, rows = selection_table(results)
    return "\n".join(
        ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
        + ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    )


def read_results() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def run_and_record(
    s1: str, s2: dict, seed: int, reading: str, lock_timeout_s: float = LOCK_TIMEOUT_S
) -> dict | None:
    """Run one arm at one seed unless the results already hold it, and add it to them. The arm's
    lock keeps a second run of this script off the same arm; the results file is re-read and
    replaced whole under its own lock, so two runs on different arms never drop each other's
    records."""
    name = arm_name(s1, {"reading": reading, **s2})
    RUNS.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{name}_s{seed}")
    with holding(RUNS / f"{slug}.lock", lock_timeout_s):
        if str(seed) in read_results().get(name, {}):
            return None
        rec = run_arm(s1, s2, seed, reading, lock_timeout_s)
        with holding(RUNS / "selection.json.lock", lock_timeout_s, poll_s=1.0):
            results = read_results()
            results.setdefault(name, {})[str(seed)] = rec
            tmp = OUT.with_name(OUT.name + ".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            os.replace(tmp, OUT)
    return rec


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--group", choices=sorted(GROUPS), action="append", default=[])
    p.add_argument(
        "--reading", default="aux", help="stage-2 reading for groups that do not set one"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--table", action="store_true")
    p.add_argument(
        "--stage1-only", nargs="+", default=[], metavar="ARM", help="train these stage-1 arms only"
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=LOCK_TIMEOUT_S,
        metavar="S",
        help="seconds to wait for another run training the same stage 1 (default: %(default)s)",
    )
    a = p.parse_args()
    for s1 in a.stage1_only:
        for seed in a.seeds:
            stage1_checkpoint(s1, seed, a.lock_timeout)
    for group in a.group:
        for s1, s2 in GROUPS[group]:
            name = arm_name(s1, {"reading": a.reading, **s2})
            for seed in a.seeds:
                rec = run_and_record(s1, s2, seed, a.reading, a.lock_timeout)
                if rec is None:  # already in the results (this run's or another's)
                    continue
                print(
                    f"{name} seed {seed}: val AP {rec['val']['AP']:.4f} "
                    f"AUC {rec['val']['AUC']:.4f} "
                    f"z_hom cos real {rec['z_hom']['cos_real']:.3f} "
                    f"fake {rec['z_hom']['cos_fake']:.3f} "
                    f"({rec['seconds']:.0f} s)",
                    flush=True,
                )
    print(table(read_results()))
