"""benchmarks/selection.py's lock: one run trains a stage-1 checkpoint, a second waits for it, but
never forever, and a killed holder leaves nothing that blocks the next run."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import load_benchmark

HOLD = """
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def selection():
    return load_benchmark("selection")


def hold(lock: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``lock`` for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_times_out_naming_the_file_and_the_holder(selection, tmp_path):
    lock = tmp_path / "stage1.lock"
    proc = hold(lock, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            with selection.holding(lock, timeout_s=0.5, poll_s=0.1):
                pytest.fail("entered a lock another process holds")
        assert 0.4 < time.monotonic() - t0 < 5
        assert str(lock) in str(e.value) and str(proc.pid) in str(e.value)
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_is_taken_when_its_holder_finishes_or_is_killed(selection, tmp_path):
    lock = tmp_path / "stage1.lock"
    t0 = time.monotonic()
    proc = hold(lock, 1.0)  # finishes by itself
    with selection.holding(lock, timeout_s=20, poll_s=0.05):
        assert time.monotonic() - t0 >= 1.0  # not before the holder let go
        assert lock.read_text() == str(os.getpid())
    assert proc.wait(timeout=10) == 0
    proc = hold(lock, 60)
    proc.kill()  # a killed run: its PID is still in the file, its lock is gone
    proc.wait()
    t0 = time.monotonic()
    with selection.holding(lock, timeout_s=20, poll_s=0.05):
        pass
    assert time.monotonic() - t0 < 1


def test_the_lock_is_released_when_the_body_fails(selection, tmp_path):
    lock = tmp_path / "stage1.lock"
    with pytest.raises(RuntimeError):
        with selection.holding(lock, timeout_s=1):
            raise RuntimeError("training failed")
    with selection.holding(lock, timeout_s=0.1, poll_s=0.05):
        pass
