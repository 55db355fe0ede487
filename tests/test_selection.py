"""benchmarks/selection.py's lock: one run trains a stage-1 checkpoint, a second waits for it, but
never forever, and a killed holder leaves nothing that blocks the next run."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import load_benchmark

HOLD = """
import fcntl, os, sys, time
f, deadline = open(sys.argv[1], "a+"), time.monotonic() + 20
while True:  # never waits forever: a lock still held after 20 s ends the helper with "busy"
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except BlockingIOError:
        if time.monotonic() > deadline:
            print("busy", flush=True)
            sys.exit(1)
        time.sleep(0.05)
f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def selection():
    return load_benchmark("selection")


def hold(lock: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``lock`` for ``seconds`` (it reads "busy" and exits, rather than
    wait, if the lock is still taken 20 s on)."""
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
    assert time.monotonic() - t0 < 10  # taken at once, not after the 20 s timeout


def test_the_lock_is_released_when_the_body_fails(selection, tmp_path):
    lock = tmp_path / "stage1.lock"
    with pytest.raises(RuntimeError):
        with selection.holding(lock, timeout_s=1):
            raise RuntimeError("training failed")
    with selection.holding(lock, timeout_s=0.1, poll_s=0.05):
        pass


def test_results_are_merged_never_overwritten_and_an_arm_runs_once(
    selection, tmp_path, monkeypatch
):
    """Each record is added to the results file as it stands on disk (another run's records
    survive), and an arm already recorded is not run again."""
    out = tmp_path / "selection.json"
    monkeypatch.setattr(selection, "OUT", out)
    monkeypatch.setattr(selection, "RUNS", tmp_path / "runs")
    ran = []
    monkeypatch.setattr(
        selection, "run_arm", lambda s1, s2, seed, reading, t: ran.append(seed) or {"seed": seed}
    )
    assert selection.run_and_record("e0", {}, 0, "aux") == {"seed": 0}
    other = json.loads(out.read_text())
    other["another run's arm"] = {"0": {"seed": 0}}  # written meanwhile by a second process
    out.write_text(json.dumps(other))
    assert selection.run_and_record("e0", {}, 1, "aux") == {"seed": 1}
    assert selection.run_and_record("e0", {}, 0, "aux") is None  # recorded: not run again
    assert ran == [0, 1]
    assert json.loads(out.read_text()) == {
        "e0 reading=aux": {"0": {"seed": 0}, "1": {"seed": 1}},
        "another run's arm": {"0": {"seed": 0}},
    }
