"""The two trainers on a tiny slice of ntf-mini: losses go down, checkpoints round-trip, resume is
exact, and two gloo processes compute what one process computes on the same global batch."""

import math
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from conftest import MINI

from ntf_core import checkpoints, data, evaluate, models, train
from ntf_core.augment import TwoViews, eval_transform, view_transform
from ntf_core.config import make_config
from ntf_core.data import Images


def tiny(tmp, **kw):
    base = dict(
        train_dir=str(MINI / "train"),
        val_dir="",
        max_images=64,
        batch_size=32,
        epochs1=3,
        epochs2=2,
        out=str(tmp),
        encoder="small_cnn",
        encoder_weights="",
        width=8,
        view_size=28,
        view_pad=0,
        warmup_epochs=0,
    )
    return make_config("mini", **{**base, **kw})


def test_make_optimizer_warms_up_linearly_then_anneals_by_cosine(tmp_path):
    """lr x (step + 1) / warm over the warm-up steps, then lr x (1 + cos(pi t)) / 2 with t from 0 to
    1 over the remaining steps: a warm-up starting at 0, ignored or counted in epochs (not steps),
    or a cosine run over all the steps, moves one of these learning rates."""
    cfg = tiny(tmp_path, warmup_epochs=2)
    opt, sched = train.make_optimizer(
        [torch.nn.Parameter(torch.zeros(1))], cfg, lr=0.1, steps_per_epoch=5, epochs=10
    )
    assert opt.defaults["momentum"] == cfg.momentum
    assert opt.defaults["weight_decay"] == cfg.weight_decay
    lrs = []  # the lr of each of the 50 steps (opt.step, then sched.step, as in training)
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    warm = 2 * 5
    assert lrs[:warm] == pytest.approx([0.1 * (i + 1) / warm for i in range(warm)])
    assert lrs[0] == pytest.approx(0.01) and lrs[warm - 1] == pytest.approx(0.1)
    assert lrs[warm] == pytest.approx(0.1)  # the cosine starts at the full lr
    assert lrs[30] == pytest.approx(0.05)  # half-way through the 40 cosine steps
    # (the library takes the cosine in float32)
    assert lrs[-1] == pytest.approx(0.05 * (1 + math.cos(math.pi * 39 / 40)), rel=1e-4)
    assert lrs[-1] < 1e-3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny stage-1 and stage-2 run shared by the tests that only read their checkpoints."""
    out = tmp_path_factory.mktemp("run")
    cfg = tiny(out, val_dir=str(MINI / "val"), max_images=96)
    return cfg, train.stage1(cfg), train.stage2(cfg)


def test_stage1_and_stage2_lower_their_losses(trained):
    cfg, p1, p2 = trained
    h1 = checkpoints.load_checkpoint(p1, "stage1")["history"]
    assert [r["epoch"] for r in h1] == [1, 2, 3]
    assert h1[-1]["total"] < h1[0]["total"] and h1[-1]["het"] < h1[0]["het"]
    h2 = checkpoints.load_checkpoint(p2, "stage2")["history"]
    assert h2[-1]["total"] < h2[0]["total"]
    assert {"ext", "ce", "val_AP", "val_ACC"} <= set(h2[-1])


@pytest.mark.parametrize("term", ["hom", "het", "ort"])
def test_each_stage1_term_can_be_minimised(term, tmp_path):
    """Descending one term alone on a fixed batch lowers it: each loss has a usable gradient through
    E and heads."""
    cfg = tiny(tmp_path)
    torch.manual_seed(0)
    model = models.build_trace_model(cfg)
    # random heads are already near-orthogonal in 128-d: start from correlated ones instead
    if term == "ort":
        model.het.load_state_dict(model.hom.state_dict())
        for p in model.het.parameters():
            p.data.add_(0.3 * p.data.std() * torch.randn_like(p))
    ds = Images(data.training_samples(cfg, (0,))[:16], TwoViews(view_transform(cfg.view_size)))
    (v1, v2), _, idx = next(iter(torch.utils.data.DataLoader(ds, batch_size=16)))
    v1, v2 = v1.float() / 255, v2.float() / 255
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    values = []
    for _ in range(15):
        loss = train.stage1_losses(model, v1, v2, idx, cfg)[term]
        values.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert values[-1] < 0.7 * values[0], values


def test_stage2_freezes_encoder_and_hom_head(trained):
    cfg, p1, p2 = trained
    det, _ = checkpoints.load_detector(p2)
    s1 = checkpoints.load_checkpoint(p1, "stage1")["model"]
    s2 = det.state_dict()
    for k, v in s1.items():
        if k.startswith(("encoder.", "hom.")):
            # BatchNorm running stats included: E stayed in eval mode
            assert torch.equal(s2[k], v), k
    det.train()
    assert not det.encoder.training and not det.hom.training and det.aux.training
    assert all(not p.requires_grad for p in det.encoder.parameters())


def test_checkpoint_round_trip_and_errors(trained, tmp_path):
    cfg, p1, p2 = trained
    ck = checkpoints.load_checkpoint(p2, "stage2")
    assert ck["config"]["max_images"] == 96 and ck["versions"]["torch"] == torch.__version__
    assert ck["data"]["n"] == 192 and len(ck["data"]["sha256"]) == 64
    model, c1, _ = checkpoints.load_trace_model(p1)
    assert c1.width == 8
    with pytest.raises(ValueError, match="stage1 checkpoint, expected stage2"):
        checkpoints.load_checkpoint(p1, "stage2")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: not a readable NTF checkpoint"):
        checkpoints.load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        checkpoints.load_checkpoint(tmp_path / "missing.pt")
    assert not list(p1.parent.glob(".*tmp*"))  # atomic writes leave no temporaries


def _params(path):
    return checkpoints.load_checkpoint(path)["model"]


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_resume_is_exact(stage, tmp_path, monkeypatch):
    """Stopping after epoch 1 and resuming gives bit-identical weights to an uninterrupted run."""
    straight, broken = tiny(tmp_path / "a"), tiny(tmp_path / "b")
    if stage == "stage2":
        for c in (straight, broken):
            train.stage1(c.replace(epochs1=1))
        straight, broken = straight.replace(epochs1=1), broken.replace(epochs1=1)
    ref = getattr(train, stage)(straight)

    real_save = checkpoints.save_checkpoint

    def save_then_stop(path, obj):
        real_save(path, obj)
        if obj["kind"] == stage and obj["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        getattr(train, stage)(broken)
    monkeypatch.setattr(train, "save_checkpoint", real_save)
    assert checkpoints.load_checkpoint(tmp_path / "b" / f"{stage}.pt")["epoch"] == 1
    resumed = getattr(train, stage)(broken)
    a, b = _params(ref), _params(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and a different config refuses to resume
    with pytest.raises(ValueError, match="another config"):
        getattr(train, stage)(broken.replace(lr1=0.05, lr2=0.05))


# -- two processes on gloo -------------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batches(cfg):
    torch.manual_seed(1)
    n = 16
    v1, v2 = torch.rand(n, 3, 28, 28), torch.rand(n, 3, 28, 28)
    x, labels = torch.rand(n, 3, 32, 32), torch.tensor([0, 1] * (n // 2))
    return v1, v2, torch.arange(n), x, labels


def _models(cfg):
    torch.manual_seed(0)
    trace = models.build_trace_model(cfg)
    det = train.Detector(models.build_trace_model(cfg), cfg.head_dim)
    # BatchNorm on running statistics: per-rank batch statistics differ without SyncBatchNorm (CUDA)
    trace.eval()
    return trace, det


def _losses_and_grads(cfg, trace, det, sl):
    v1, v2, idx, x, labels = (t[sl] for t in _batches(cfg))
    out = {}
    t1 = train.stage1_losses(trace, v1, v2, idx, cfg)
    t1["total"].backward()
    step = train.Stage2Forward(det)
    step = train.wrap_for_ranks(step, "cpu")
    t2 = train.stage2_losses(step, x, labels, cfg)
    t2["total"].backward()
    out["loss"] = {
        f"s{i}_{k}": float(v.detach()) for i, t in ((1, t1), (2, t2)) for k, v in t.items()
    }
    out["grad"] = {
        n: p.grad.clone()
        for n, p in list(trace.named_parameters()) + list(det.named_parameters())
        if p.grad is not None
    }
    return out


def _rank_main(rank, port, cfg, q):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    train.dist.setup("cpu")
    trace, det = _models(cfg)
    ddp_trace = train.wrap_for_ranks(trace, "cpu")
    half = slice(rank * 8, rank * 8 + 8)
    out = _losses_and_grads(cfg, ddp_trace, det, half)
    # numpy, not tensors: a tensor sent through a Queue is shared by file descriptor, which dies
    # with this process
    q.put(
        (rank, out["loss"], {k.removeprefix("module."): v.numpy() for k, v in out["grad"].items()})
    )
    train.dist.cleanup()


def test_two_gloo_ranks_equal_one_process(tmp_path):
    cfg = tiny(tmp_path, image_size=32)  # stage 2's losses on batches of 32 px images (one scale)
    trace, det = _models(cfg)
    one = _losses_and_grads(cfg, trace, det, slice(0, 16))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, port, cfg, q)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    for rank, loss, grad in results:
        assert loss.keys() == one["loss"].keys()
        for k in loss:
            assert loss[k] == pytest.approx(one["loss"][k], rel=1e-5, abs=1e-6), (rank, k)
        assert grad.keys() == one["grad"].keys()
        for k in grad:
            torch.testing.assert_close(
                torch.from_numpy(grad[k]),
                one["grad"][k],
                rtol=1e-4,
                atol=1e-6,
                msg=f"rank {rank} {k}",
            )


def test_torchrun_two_processes_train_stage1(tmp_path):
    """The real launcher: `torchrun --nproc_per_node 2` runs stage 1 end to end and writes one
    checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "ntf_core.cli",
        "stage1",
        "--set",
        f"train_dir={MINI / 'train'}",
        "--set",
        "max_images=64",
        "--set",
        "batch_size=32",
        "--set",
        "epochs1=1",
        "--set",
        "encoder=small_cnn",
        "--set",
        "encoder_weights=",
        "--set",
        "width=8",
        "--set",
        "view_size=28",
        "--set",
        f"out={tmp_path}",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = checkpoints.load_checkpoint(tmp_path / "stage1.pt", "stage1")
    assert ck["epoch"] == 1 and len(ck["history"]) == 1
    assert r.stdout.count("[stage1] epoch 1/1") == 1  # only rank 0 logs


def test_export_is_small_loads_and_refuses_to_resume(trained, tmp_path):
    cfg, p1, p2 = trained
    from ntf_core.cli import main

    assert main(["export", "--checkpoint", str(p2), "--out", str(tmp_path / "s2.pt")]) == 0
    slim = checkpoints.load_checkpoint(tmp_path / "s2.pt", "stage2")
    assert "optimizer" not in slim and slim["exported"]["dtype"] == "float16"
    assert (tmp_path / "s2.pt").stat().st_size < 0.6 * p2.stat().st_size
    from ntf_core.checkpoints import load_detector

    det, _ = load_detector(tmp_path / "s2.pt")
    full, _ = load_detector(p2)
    x = torch.rand(4, 3, 32, 32)
    # float16 weights, float32 compute
    torch.testing.assert_close(det(x), full(x), atol=2e-2, rtol=2e-2)
    checkpoints.export_checkpoint(p1, tmp_path / "run" / "stage1.pt")
    with pytest.raises(ValueError, match="exported checkpoint .* cannot be resumed"):
        train.stage1(cfg.replace(out=str(tmp_path / "run")))


def test_stage2_refuses_to_resume_on_other_stage1_weights(tmp_path):
    cfg = tiny(tmp_path, epochs1=1, epochs2=1)
    train.stage1(cfg)
    train.stage2(cfg)
    assert train.stage2(cfg) == tmp_path / "stage2.pt"  # finished and same stage 1: nothing to do
    train.stage1(cfg.replace(seed=1), resume=False)  # a new stage 1 in the same folder
    with pytest.raises(ValueError, match="other stage-1 weights"):
        train.stage2(cfg)


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_a_nan_loss_stops_training_naming_step_and_term(stage, tmp_path, monkeypatch):
    cfg = tiny(tmp_path, epochs1=1, epochs2=1)
    if stage == "stage2":
        train.stage1(cfg)
    name, term = ("stage1_losses", "het") if stage == "stage1" else ("stage2_losses", "ext")
    real, calls = getattr(train, name), []

    def poisoned(*a, **kw):
        terms = real(*a, **kw)
        calls.append(1)
        if len(calls) == 2:  # the second step of the first epoch
            terms[term] = terms[term] * float("nan")
            terms["total"] = terms["total"] + terms[term]
        return terms

    monkeypatch.setattr(train, name, poisoned)
    with pytest.raises(
        FloatingPointError,
        match=rf"stage {stage[-1]}, epoch 1, step 2: loss term\(s\) {term}, total",
    ):
        getattr(train, stage)(cfg)
    assert not (tmp_path / f"{stage}.pt").exists()  # nothing half-trained was saved


def test_stage2_refuses_a_stage1_checkpoint_of_another_architecture(trained, tmp_path):
    cfg, p1, _ = trained
    other = cfg.replace(out=str(tmp_path), stage1_checkpoint=str(p1), width=16)
    with pytest.raises(ValueError, match=r"stage1\.pt: stage 1 used width=8, this config has 16"):
        train.stage2(other)
    with pytest.raises(
        ValueError, match="stage 1 used encoder='small_cnn', this config has 'efficientnet_lite0'"
    ):
        train.stage2(other.replace(encoder="efficientnet_lite0", width=8))


@pytest.mark.parametrize("reading", ["aux", "trace", "e"])
def test_l_ext_reaches_the_scores_unless_the_verdict_reads_e(reading, tmp_path):
    """The causal test of the mechanism: stage 2 with L_ext and stage 2 with gamma * L_ce alone,
    from the same stage 1 and seed, give different scores when the verdict reads the auxiliary head
    ("aux", "trace"), and the very same scores when it reads e (L_ext then trains a head nothing
    reads)."""
    cfg = tiny(tmp_path, max_images=48, reading=reading, epochs1=1, epochs2=2)
    ck1 = train.stage1(cfg)
    val = data.training_samples(cfg)[:24] + data.training_samples(cfg)[-24:]
    scores = {}
    for w in (1.0, 0.0):
        c = cfg.replace(ext_weight=w, out=str(tmp_path / f"ext{w}"), stage1_checkpoint=str(ck1))
        det = models.build_detector(c)
        state = checkpoints.load_checkpoint(train.stage2(c), "stage2")["model"]
        # the trace is stored where it is read
        assert ("natural_trace" in state) == (reading == "trace")
        if reading == "trace":
            assert state["natural_trace"].norm() == pytest.approx(1.0, abs=1e-5)
        det.load_state_dict(state)
        scores[w] = evaluate.score_samples(det, c, val)
    if reading == "e":
        assert (scores[1.0] == scores[0.0]).all()
    else:
        assert abs(scores[1.0] - scores[0.0]).max() > 1e-3


def test_epochs1_zero_is_the_untouched_encoder(tmp_path):
    """The "does stage 1 help?" control: epochs1 = 0 writes a checkpoint holding the initial
    weights."""
    cfg = tiny(tmp_path, epochs1=0)
    ck = checkpoints.load_checkpoint(train.stage1(cfg), "stage1")
    torch.manual_seed(cfg.seed)
    fresh = models.build_trace_model(cfg)
    assert ck["epoch"] == 0 and ck["history"] == []
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in ck["model"].items())
    train.stage2(cfg)  # and stage 2 stands on it


def test_frozen_features_are_the_encoder_outputs_and_refuse_what_they_cannot_cache(
    trained, tmp_path
):
    """cache_features: e of each image and of its mirror, the very values E gives; random crops
    cannot be cached."""
    cfg, p1, _ = trained
    cfg = cfg.replace(image_size=32)  # one scale: the 32 px image is both branches' input
    trace, _, _ = checkpoints.load_trace_model(p1)
    det = train.Detector(trace, cfg.head_dim, cfg.reading).eval()
    samples = data.training_samples(cfg)[:6]
    feats = train.FrozenFeatures(det, samples, cfg)
    x = torch.stack([Images(samples, lambda v: v)[i][0] for i in range(6)]).float() / 255
    with torch.no_grad():
        assert torch.allclose(feats.e[:, 0], det.encoder(x), atol=1e-5)
        assert torch.allclose(feats.e[:, 1], det.encoder(x.flip(-1)), atol=1e-5)
    with pytest.raises(
        ValueError,
        match=r"exactly 16 px \(image_size 32, contrast_crop 16: the images must be the "
        "contrast crop",
    ):
        train.FrozenFeatures(det, samples, cfg.replace(contrast_crop=16))
    with pytest.raises(
        ValueError,
        match=r"exactly 64 px \(image_size 64, contrast_crop 64: the images must be the "
        "classifier input",
    ):
        train.FrozenFeatures(det, samples, cfg.replace(image_size=64, contrast_crop=64))


def test_two_scale_features_are_the_enlarged_and_the_native_image(trained):
    """Two scales (classifier on the image enlarged to 64 px, auxiliary branch and hom on the 32 px
    image): each item is (classifier e, auxiliary e), the very values E gives on eval_transform(64)
    and on the image."""
    cfg, p1, _ = trained
    trace, _, _ = checkpoints.load_trace_model(p1)
    det = train.Detector(trace, cfg.head_dim, cfg.reading).eval()
    samples = data.training_samples(cfg)[:4]
    feats = train.FrozenFeatures(det, samples, cfg.replace(image_size=64))
    u8 = torch.stack([Images(samples, lambda v: v)[i][0] for i in range(4)])
    big = eval_transform(64)(u8).float() / 255
    with torch.no_grad():
        assert torch.allclose(feats.e[:, 0], det.encoder(big), atol=1e-5)
        assert torch.allclose(feats.e[:, 1], det.encoder(big.flip(-1)), atol=1e-4)
        assert torch.allclose(feats.e_crop[:, 0], det.encoder(u8.float() / 255), atol=1e-5)
    assert feats[0][0].shape == (2, feats.e.shape[-1])


def test_two_scale_step_reads_each_slot_where_it_belongs(trained):
    """A two-scale batch [B, 2, D]: the verdict reads the classifier's e (slot 0), L_ext's z and the
    hom features the auxiliary e (slot 1). Swapping the slots changes the verdict and z."""
    cfg, p1, _ = trained
    c = cfg.replace(image_size=64)
    trace, _, _ = checkpoints.load_trace_model(p1)
    det = train.Detector(trace, c.head_dim, c.reading).eval()
    step = train.Stage2Forward(det, features=True)
    torch.manual_seed(0)
    x = torch.randn(6, 2, trace.encoder.embed_dim)
    with torch.no_grad():
        logits, z, z_hom = step(x[:, 0], x[:, 1])
        assert torch.allclose(logits, det.logit(x[:, 0])) and torch.allclose(z, det.aux(x[:, 1]))
        assert torch.allclose(z_hom, det.hom(x[:, 1]))
        assert not torch.allclose(logits, det.logit(x[:, 1]))
    terms = train.stage2_losses(step, x, torch.tensor([0, 1] * 3), c)
    assert torch.isfinite(terms["total"])
    with pytest.raises(ValueError, match=r"two_scales: expected cached features \[B, 2, D\]"):
        train.stage2_losses(step, x[:, 0], torch.tensor([0, 1] * 3), c)


def test_two_scale_stage2_scores_the_enlarged_input(trained, tmp_path):
    """A two-scale stage 2 trains (its loss falls), and the validation AP it logs from cached
    features is that of its checkpoint scored from image files (enlarged to 64 px by score_samples):
    training and scoring agree."""
    cfg, p1, _ = trained
    c = cfg.replace(image_size=64, out=str(tmp_path), stage1_checkpoint=str(p1), epochs2=3)
    h = checkpoints.load_checkpoint(train.stage2(c), "stage2")["history"]
    assert h[-1]["total"] < h[0]["total"]
    from ntf_core.metrics import detection_metrics

    val = train.scan(c.val_dir, layout="cnndetection")
    det = models.build_detector(c)
    det.load_state_dict(checkpoints.load_checkpoint(tmp_path / "stage2.pt", "stage2")["model"])
    ap = detection_metrics([s.label for s in val], evaluate.score_samples(det, c, val))["AP"]
    assert ap == pytest.approx(h[-1]["val_AP"], abs=1e-6)


def test_cached_and_uncached_stage2_learn_alike(trained, tmp_path):
    """The cache changes the cost of an epoch, not what is learnt: both reach a similar loss and
    validation AP, and the validation AP it logs from cached features is the AP of the checkpoint
    scored from images."""
    cfg, p1, p2 = trained
    c = cfg.replace(cache_features=False, out=str(tmp_path), stage1_checkpoint=str(p1))
    cached = checkpoints.load_checkpoint(p2, "stage2")["history"][-1]
    plain = checkpoints.load_checkpoint(train.stage2(c), "stage2")["history"][-1]
    assert cfg.cache_features and abs(cached["total"] - plain["total"]) < 0.3
    assert abs(cached["val_AP"] - plain["val_AP"]) < 0.15
    from ntf_core.metrics import detection_metrics

    val = train.scan(cfg.val_dir, layout="cnndetection")
    det = models.build_detector(cfg)
    det.load_state_dict(checkpoints.load_checkpoint(p2, "stage2")["model"])
    ap = detection_metrics([s.label for s in val], evaluate.score_samples(det, cfg, val))["AP"]
    assert ap == pytest.approx(cached["val_AP"], abs=1e-6)


def test_frozen_features_flip_about_half_the_time(trained):
    cfg, p1, _ = trained
    cfg = cfg.replace(image_size=32)  # one scale: items are e of the image or of its mirror
    trace, _, _ = checkpoints.load_trace_model(p1)
    feats = train.FrozenFeatures(
        train.Detector(trace, cfg.head_dim).eval(), data.training_samples(cfg)[:4], cfg
    )
    torch.manual_seed(0)
    flipped = [bool(torch.equal(feats[i % 4][0], feats.e[i % 4, 1])) for i in range(400)]
    assert 150 < sum(flipped) < 250


def test_a_compiled_model_is_saved_as_the_plain_model(tmp_path, monkeypatch):
    """With ``compile=True`` the loops call torch.compile's wrapper, whose weights are named
    ``_orig_mod.*``; the checkpoints must hold the plain model's weights, which stage 2 loads. A
    stand-in wrapper of the same shape replaces torch.compile (no compiler needed on CPU)."""

    class Compiled(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self._orig_mod = module

        def forward(self, *args):
            return self._orig_mod(*args)

    monkeypatch.setattr(torch, "compile", Compiled)
    cfg = tiny(tmp_path, compile=True, epochs1=1, epochs2=1)
    p1 = train.stage1(cfg)
    plain = models.build_trace_model(cfg, pretrained=False).state_dict().keys()
    assert checkpoints.load_checkpoint(p1, "stage1")["model"].keys() == plain
    p2 = train.stage2(cfg)  # loads stage 1's weights into a plain model
    assert not any(k.startswith("_orig_mod") for k in checkpoints.load_checkpoint(p2)["model"])


def test_the_training_losses_are_eqs_4_and_7_on_the_right_features(trained):
    """The loops' losses, by hand: eq. 4 with the config's tau, lambda and eq. 3 reading, the image
    index as eq. 2's source; eq. 7 with the config's gamma and tau, and only the *real* images' hom
    features as the extra positives of eq. 5."""
    from ntf_core.losses import bce_loss, extended_supcon_loss, het_loss, hom_loss, ort_loss

    cfg, p1, _ = trained
    trace, _, _ = checkpoints.load_trace_model(p1)
    trace.eval()
    c1 = cfg.replace(tau=0.3, lam=0.2, ort_mode="square")
    torch.manual_seed(0)
    s = c1.view_size
    v1, v2, index = torch.rand(3, 3, s, s), torch.rand(3, 3, s, s), torch.tensor([5, 2, 9])
    terms = train.stage1_losses(trace, v1, v2, index, c1)
    with torch.no_grad():
        zh, zt = trace(torch.cat([v1, v2]))
    hand = {
        "hom": hom_loss(zh, index.repeat(2)),
        "het": het_loss(zt[:3], zt[3:], 0.3),
        "ort": ort_loss(zh, zt, "square"),
    }
    for k, v in hand.items():
        assert terms[k].item() == pytest.approx(v.item(), rel=1e-5, abs=1e-7), k
    total = hand["hom"] + hand["het"] + 0.2 * hand["ort"]
    assert terms["total"].item() == pytest.approx(total.item(), rel=1e-5)
    # one image: its two views are not two images, so eq. 2 has no pair to compare
    one = train.stage1_losses(trace, v1[:1], v2[:1], index[:1], c1)
    assert one["hom"].item() == 0.0 and hom_loss(zh[[0, 3]], torch.arange(2)).item() > 0

    c2 = cfg.replace(tau=0.3, gamma=0.2, cache_features=True, image_size=cfg.contrast_crop)
    assert not c2.two_scales
    det = train.Detector(trace, c2.head_dim, c2.reading).eval()
    x = torch.randn(6, trace.encoder.embed_dim)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    terms = train.stage2_losses(train.Stage2Forward(det, features=True), x, y, c2)
    with torch.no_grad():
        z, z_hom = det.aux(x), det.hom(x)
        ext = extended_supcon_loss(z, y, z_hom[y == 0], 0.3)
        ce = bce_loss(det.logit(x, z), y)
        wrong = extended_supcon_loss(z, y, z_hom[y == 1], 0.3)  # the fakes' hom features
    assert terms["ext"].item() == pytest.approx(ext.item(), rel=1e-5)
    assert abs(wrong.item() - ext.item()) > 1e-3
    assert terms["ce"].item() == pytest.approx(ce.item(), rel=1e-5)
    assert terms["total"].item() == pytest.approx((ext + 0.2 * ce).item(), rel=1e-5)
