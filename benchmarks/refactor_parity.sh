#!/usr/bin/env bash
# Behaviour parity of a refactor: the same short runs of both stages (cached and uncached stage 2, every reading)
# through the `ntf` CLI, then a SHA-256 of every checkpoint's weights, its loss history, and `ntf evaluate` and
# `ntf detect` on a test folder. Run it on two commits (same machine, same thread count) and diff the outputs:
#     bash benchmarks/refactor_parity.sh > before.txt ; ... ; bash benchmarks/refactor_parity.sh > after.txt
# It reads checkpoints with torch alone, so it does not depend on the module layout it checks.
set -euo pipefail
PY=${PY:-.venv/bin/python}
NTF=${NTF:-.venv/bin/ntf}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mini=data_samples/ntf-mini
common=(--set max_images=96 --set batch_size=32 --set epochs1=1 --set epochs2=2 --set val_dir=$mini/val)
$NTF stage1 --preset mini --fresh "${common[@]}" --set out=$out/a >/dev/null
for reading in aux trace e; do
  $NTF stage2 --preset mini --fresh "${common[@]}" --set out=$out/a --set reading=$reading \
    --set stage1_checkpoint=$out/a/stage1.pt --set out=$out/$reading >/dev/null
done
# stage 2 on images, not cached features (the uncached path, one scale)
$NTF stage2 --preset mini --fresh "${common[@]}" --set cache_features=false --set image_size=32 \
  --set stage1_checkpoint=$out/a/stage1.pt --set out=$out/uncached >/dev/null
$PY - "$out" <<'PYEOF'
import hashlib, sys, torch
from pathlib import Path
root = Path(sys.argv[1])
for p in sorted(root.rglob("*.pt")):
    ck = torch.load(p, map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for k, v in sorted(ck["model"].items()):
        h.update(k.encode()); h.update(v.float().numpy().tobytes() if v.is_floating_point() else v.numpy().tobytes())
    hist = [{k: round(v, 6) for k, v in row.items() if k != "seconds"} for row in ck["history"]]
    print(p.relative_to(root), ck["kind"], ck["epoch"], h.hexdigest()[:16], hist)
PYEOF
for reading in aux trace e uncached; do
  $NTF evaluate --checkpoint $out/$reading/stage2.pt $mini/test/gan/sngan $mini/test/diffusion/ddim --json
done
$NTF detect --checkpoint $out/aux/stage2.pt $mini/test/gan/sngan/1_fake/sngan-0000{0,1,2}.png
