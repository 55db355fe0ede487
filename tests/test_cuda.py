"""The GPU fast path (skipped without CUDA; run by benchmarks/gpu_check.sh): both stages on CUDA
with bf16 autocast and channels_last, the compiled step, and bf16 losses close to float32 ones."""

import math

import pytest
import torch

from ntf_core import checkpoints, models, train
from ntf_core.config import make_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _cfg(tmp_path, **kw):
    return make_config(
        "mini",
        device="cuda",
        max_images=128,
        batch_size=64,
        epochs1=1,
        epochs2=1,
        val_dir="",
        warmup_epochs=0,
        out=str(tmp_path),
        **kw,
    )


def test_both_stages_train_on_cuda_with_bf16_and_channels_last(tmp_path):
    cfg = _cfg(tmp_path)
    assert cfg.amp and cfg.channels_last
    p1 = train.stage1(cfg, resume=False)
    p2 = train.stage2(cfg, resume=False)
    for p in (p1, p2):
        ck = checkpoints.load_checkpoint(p)
        assert all(math.isfinite(v) for k, v in ck["history"][-1].items() if isinstance(v, float))
        assert all(v.device.type == "cpu" for v in ck["model"].values())  # loadable without a GPU


def test_compiled_step_trains(tmp_path):
    cfg = _cfg(tmp_path, encoder="small_cnn", encoder_weights="", width=16, compile=True)
    p1 = train.stage1(cfg, resume=False)
    p2 = train.stage2(cfg, resume=False)
    for p in (p1, p2):
        assert math.isfinite(checkpoints.load_checkpoint(p)["history"][-1]["total"])


def test_bf16_losses_match_float32(tmp_path):
    cfg = _cfg(tmp_path)
    torch.manual_seed(0)
    model = models.build_trace_model(cfg).cuda()
    v1, v2 = torch.rand(2, 32, 3, 32, 32, device="cuda")
    idx = torch.arange(32, device="cuda")
    with torch.no_grad():
        f32 = train.stage1_losses(model, v1, v2, idx, cfg)
        bf16 = train.stage1_losses(
            model, v1, v2, idx, cfg, torch.autocast("cuda", dtype=torch.bfloat16)
        )
    for k in ("hom", "het", "total"):
        assert float(bf16[k]) == pytest.approx(float(f32[k]), rel=0.05, abs=0.02), k
