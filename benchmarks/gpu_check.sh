#!/usr/bin/env bash
# Issue 5's prepared GPU check, at most 8 minutes on one H100/H200: the CUDA tests and the loss/training tests,
# notebooks 01-03 through papermill on CUDA with small parameters, then the throughput benchmark at paper
# settings (ResNet-50, 224 px, bf16, batch 256). Everything it prints goes to $OUT/gpu_check.log (or
# benchmarks/gpu_check.log); the benchmark appends its JSON line to benchmarks/results.jsonl (and $OUT/).
#   bash benchmarks/gpu_check.sh          (needs .venv, i.e. `make setup`, or PY=python)
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PY:-.venv/bin/python}
out=${OUT:-benchmarks}
log=$out/gpu_check.log
mkdir -p "$out"
exec > >(tee -a "$log") 2>&1
echo "# gpu_check $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
t0=$(date +%s)
timeout 180 "$py" -m pytest -q -x tests/test_cuda.py tests/test_losses.py; echo "tests rc=$? ($(( $(date +%s) - t0 )) s)"
t1=$(date +%s)
tmp=$(mktemp -d)
run='"device": "cuda", "max_images": 256, "batch_size": 128, "out": "'$tmp'/run"'
for nb in 01_natural_traces 02_embedding_space 03_the_detector; do
  case $nb in
    01_*) params=(-p retrain True -y "overrides: {$run, \"epochs1\": 1}") ;;
    02_*) params=(-p n_per_set 100) ;;
    03_*) params=(-p retrain True -y "overrides: {$run, \"epochs2\": 1, \"stage1_checkpoint\": \"$tmp/run/stage1.pt\"}") ;;
  esac
  (cd notebooks && timeout 120 "../$py" -m papermill "$nb.ipynb" "$tmp/$nb.ipynb" "${params[@]}") >"$tmp/$nb.log" 2>&1
  rc=$?; echo "notebook $nb rc=$rc"; [ $rc = 0 ] || tail -5 "$tmp/$nb.log"
done
echo "notebooks: $(( $(date +%s) - t1 )) s"
timeout 240 "$py" benchmarks/throughput.py --device cuda --presets paper mini --steps 20 --workers 12
[ "$out" != benchmarks ] && cp benchmarks/results.jsonl "$out/" 2>/dev/null
echo "total: $(( $(date +%s) - t0 )) s"
