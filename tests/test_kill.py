"""Training killed with SIGKILL (no chance to clean up) resumes from its last checkpoint and ends
with the weights of an uninterrupted run; a kill during a checkpoint save leaves the previous
checkpoint intact."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import MINI

from ntf_core import checkpoints

CFG = dict(
    train_dir=str(MINI / "train"),
    val_dir="",
    max_images=512,
    batch_size=64,
    epochs1=8,
    encoder="small_cnn",
    encoder_weights="",
    width=16,
    view_size=28,
    view_pad=0,
    warmup_epochs=0,
    device="cpu",
)
RUN = (
    "import json, sys, torch; torch.set_num_threads(1); from ntf_core import train; "
    "from ntf_core.config import make_config; "
    "train.stage1(make_config('mini', **json.loads(sys.argv[1])))"
)


def _start(out):
    return subprocess.Popen(
        [sys.executable, "-c", RUN, json.dumps({**CFG, "out": str(out)})],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _weights(path):
    return checkpoints.load_checkpoint(path, "stage1")["model"]


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path):
    ref = _start(tmp_path / "ref")
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    ckpt = tmp_path / "killed" / "stage1.pt"
    proc = _start(tmp_path / "killed")
    deadline = time.time() + 300
    # wait for epoch 2's checkpoint, then kill in epoch 3
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and checkpoints.load_checkpoint(ckpt)["epoch"] >= 2:
            time.sleep(0.2)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: make CFG slower"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = checkpoints.load_checkpoint(ckpt)["epoch"]
    assert 2 <= done < CFG["epochs1"]
    resumed = _start(tmp_path / "killed")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = _weights(tmp_path / "ref" / "stage1.pt"), _weights(ckpt)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


SAVE_THEN_DIE = """
import os, signal, sys, torch
from ntf_core import checkpoints
path = sys.argv[1]
checkpoints.save_checkpoint(path, {"kind": "stage1", "epoch": 1})
real = torch.save
def dying_save(obj, f):
    real(obj, f)
    with open(f, "r+b") as fh:
        fh.truncate(os.path.getsize(f) // 2)   # half written...
    os.kill(os.getpid(), signal.SIGKILL)       # ...and killed before the rename
torch.save = dying_save
checkpoints.save_checkpoint(path, {"kind": "stage1", "epoch": 2})
"""


def test_a_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "stage1.pt"
    run = subprocess.run(
        [sys.executable, "-c", SAVE_THEN_DIE, str(path)], capture_output=True, timeout=120
    )
    assert run.returncode == -signal.SIGKILL
    assert checkpoints.load_checkpoint(path)["epoch"] == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "stage1.pt"]
    # the half file, never read
    assert leftovers and all(n.startswith(".stage1.pt.tmp") for n in leftovers)
    with pytest.raises(ValueError, match="not a readable NTF checkpoint"):
        checkpoints.load_checkpoint(tmp_path / leftovers[0])
