#!/usr/bin/env bash
# The prepared GPU check, about 8 minutes on one H100/H200 (hard limits below add up to 540 s): the CUDA
# tests and the loss tests, notebooks 01-03 through papermill on CUDA with small parameters, then the throughput
# benchmark at paper settings (ResNet-50, 224 px, bf16, batch 256) and mini. Everything it prints goes to
# $OUT/gpu_check.log (default benchmarks/gpu_check.log); the benchmark appends its JSON line to
# benchmarks/results.jsonl (copied to $OUT/ too). Exit status: non-zero if any part failed.
#   bash benchmarks/gpu_check.sh          (needs .venv, i.e. `make setup`, or PY=/path/to/python)
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PY:-.venv/bin/python}   # papermill runs with --cwd, so a relative path or a bare name both work
out=${OUT:-benchmarks}
mkdir -p "$out"
exec > >(tee -a "$out/gpu_check.log") 2>&1
fail=0
echo "# gpu_check $(date -u +%FT%TZ) with $py"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
t0=$(date +%s)
timeout 150 "$py" -m pytest -q -x tests/test_cuda.py tests/test_losses.py
rc=$?; echo "tests rc=$rc ($(( $(date +%s) - t0 )) s)"; [ $rc = 0 ] || fail=1
t1=$(date +%s)
tmp=$(mktemp -d)
run='"device": "cuda", "max_images": 256, "batch_size": 128, "out": "'$tmp'/run"'
for nb in 01_natural_traces 02_embedding_space 03_the_detector; do
  case $nb in
    01_*) params=(-p retrain True -y "overrides: {$run, \"epochs1\": 1}") ;;
    02_*) params=(-p n_per_set 100) ;;
    03_*) params=(-p retrain True -y "overrides: {$run, \"epochs2\": 1, \"stage1_checkpoint\": \"$tmp/run/stage1.pt\"}") ;;
  esac
  timeout 80 "$py" -m papermill --cwd notebooks "notebooks/$nb.ipynb" "$tmp/$nb.ipynb" "${params[@]}" \
    >"$tmp/$nb.log" 2>&1
  rc=$?; echo "notebook $nb rc=$rc"; [ $rc = 0 ] || { fail=1; tail -5 "$tmp/$nb.log"; }
done
echo "notebooks: $(( $(date +%s) - t1 )) s"
timeout 150 "$py" benchmarks/throughput.py --device cuda --presets paper mini --steps 20 --workers 12
rc=$?; echo "throughput rc=$rc"; [ $rc = 0 ] || fail=1
[ "$out" != benchmarks ] && cp benchmarks/results.jsonl "$out/"
echo "total: $(( $(date +%s) - t0 )) s, fail=$fail"
exit $fail
