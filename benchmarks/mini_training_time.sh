#!/usr/bin/env bash
# The mini training time: `ntf stage1` then `ntf stage2` with the mini preset on ntf-mini, wall-clock, on this machine.
#   bash benchmarks/mini_training_time.sh [OUT]        (default OUT: runs/mini-time; results appended to
#   benchmarks/mini_training_time.txt)
set -euo pipefail
out=${1:-runs/mini-time}
ntf=${NTF:-.venv/bin/ntf}
log=benchmarks/mini_training_time.txt
t0=$(date +%s)
$ntf stage1 --preset mini --fresh --set out="$out" | grep -v "^\[stage1\] epoch [2-9]/"
t1=$(date +%s)
$ntf stage2 --preset mini --fresh --set out="$out" | tail -2
t2=$(date +%s)
$ntf evaluate --checkpoint "$out/stage2.pt" data_samples/ntf-mini/test/*/* > "$out/evaluate.txt"
t3=$(date +%s)
{
  echo "# $(date -u +%F) $(nproc) cores, $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
  echo "ntf stage1 --preset mini: $((t1 - t0)) s"
  echo "ntf stage2 --preset mini: $((t2 - t1)) s"
  echo "both: $((t2 - t0)) s (bar: 900 s)"
  echo "ntf evaluate (9 test folders): $((t3 - t2)) s"
  cat "$out/evaluate.txt"
} | tee -a "$log"
