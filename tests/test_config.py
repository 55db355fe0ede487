import pytest

from ntf_core.config import Config, from_dict, make_config, parse_sets


def test_presets():
    paper = make_config("paper")
    assert (paper.encoder, paper.image_size, paper.contrast_crop, paper.epochs1, paper.epochs2) == (
        "resnet50",
        224,
        32,
        200,
        10,
    )
    assert (paper.lr1, paper.lr2, paper.momentum, paper.weight_decay, paper.lam, paper.gamma) == (
        0.1,
        0.1,
        0.9,
        1e-3,
        0.1,
        0.5,
    )
    mini = make_config("mini")
    assert mini.encoder == "efficientnet_lite0" and mini.train_dir.endswith("ntf-mini/train")
    # the paper's two scales, selected on validation: classifier on 64 px, auxiliary branch and hom
    # on 32 px
    assert (mini.image_size, mini.contrast_crop, mini.two_scales, mini.hom_input_size) == (
        64,
        32,
        True,
        32,
    )


def test_overrides_are_typed_from_strings():
    cfg = make_config("mini", **parse_sets(["epochs1=3", "lr1=0.05", "amp=false", "out=runs/x"]))
    assert (cfg.epochs1, cfg.lr1, cfg.amp, cfg.out) == (3, 0.05, False, "runs/x")
    assert make_config("mini", epochs1=4).epochs1 == 4  # python values pass through


def test_bad_overrides_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown config field 'epoch1'.*epochs1"):
        make_config("mini", epoch1=3)
    with pytest.raises(ValueError, match="epochs1: cannot read 'three' \\(str\\) as int"):
        make_config("mini", epochs1="three")
    with pytest.raises(ValueError, match="name=value"):
        parse_sets(["epochs1"])
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge")


def test_python_values_are_checked_and_paths_become_strings(tmp_path):
    import numpy as np

    cfg = make_config(
        "mini", out=tmp_path / "run", epochs1=np.int64(3), lr1=np.float32(0.5), amp=np.bool_(False)
    )
    assert cfg.out == str(tmp_path / "run") and type(cfg.epochs1) is int and type(cfg.lr1) is float
    assert cfg.amp is False
    with pytest.raises(ValueError, match="epochs1: cannot read 2.5 \\(float\\) as int"):
        make_config("mini", epochs1=2.5)
    with pytest.raises(ValueError, match="amp: cannot read 1 \\(int\\) as bool"):
        make_config("mini", amp=1)


def test_round_trip_through_a_dict():
    cfg = make_config("mini", seed=3)
    assert from_dict(cfg.to_dict()) == cfg
    assert from_dict({**cfg.to_dict(), "removed_field": 1}) == cfg
    assert isinstance(from_dict({}), Config)
