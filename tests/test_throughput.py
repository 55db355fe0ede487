"""benchmarks/throughput.py in its short (CI) mode: both presets, both stages, both inputs, on
CPU."""

import json

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("throughput")


def test_short_run_measures_every_combination(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results.jsonl")
    rows = bench.main(["--short", "--device", "cpu"])
    assert {(r["preset"], r["stage"], r["input"]) for r in rows} == {
        (p, s, i) for p in ("mini", "paper") for s in (1, 2) for i in ("synthetic", "loader")
    }
    for r in rows:
        assert r["images_per_s"] > 0 and r["peak_mib"] > 0
        assert (
            r["views_per_s"] == pytest.approx(2 * r["images_per_s"], abs=0.2)
            if r["stage"] == 1
            else r["views_per_s"] is None
        )
    assert {r["size"] for r in rows if r["preset"] == "paper"} == {224}
    record = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert record["short"] and record["rows"] == rows and "threads" in record["device"]
    # a guard, not the target ratio (0.5, measured by the full run in docs/PERFORMANCE.md): two
    # timed steps are noisy, but a loader that starves the mini preset's step (e.g. decoding every
    # epoch again) falls far below
    for stage in (1, 2):
        got = {
            r["input"]: r["images_per_s"]
            for r in rows
            if r["preset"] == "mini" and r["stage"] == stage
        }
        assert got["loader"] >= 0.25 * got["synthetic"], got
