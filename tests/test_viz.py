"""Figures that read everywhere: a static PNG beside each plotly figure, a kernel-free embedding
explorer, a widget with a static copy, and no wait on a missing browser."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from ntf_core import viz


def test_the_embedding_explorer_switches_spaces_without_a_kernel():
    rng = np.random.default_rng(0)
    names = ["real"] * 5 + ["dcgan"] * 5 + ["ddpm"] * 5
    coords = {k: rng.normal(size=(15, 2)) for k in ("e", "z_hom", "aux")}
    fig = viz.embedding_explorer(coords, names, {"gan": ["dcgan"], "diffusion": ["ddpm"]})
    assert len(fig.data) == 3 * 3  # one trace per source per space
    assert [t.visible is not False for t in fig.data] == [True] * 3 + [False] * 6
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["e", "z_hom", "aux"]
    second = buttons[1].args[0]["visible"]
    assert second == [False] * 3 + [True] * 3 + [False] * 3
    np.testing.assert_allclose(fig.data[3].x, coords["z_hom"][:5, 0])  # the z_hom reals, not e's


def test_a_widget_carries_its_static_copy_beside_its_view():
    ipywidgets = pytest.importorskip("ipywidgets")
    wrapped = viz.WithStaticCopy(ipywidgets.Label("live"), "<p>first view</p>")
    bundle = wrapped._repr_mimebundle_()
    assert bundle["text/html"] == "<p>first view</p>"
    assert "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.skipif(
    not (shutil.which("chromium") or os.environ.get("CI")), reason="needs Debian's chromium"
)
def test_a_plotly_figure_displays_as_json_and_png(monkeypatch):
    import plotly.graph_objects as go
    import plotly.io as pio

    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)  # restored after the test
    viz.setup_plotly()
    assert pio.renderers.default == "plotly_mimetype+png"
    bundle = pio.renderers._build_mime_bundle(go.Figure(go.Scatter(y=[1, 3, 2])).to_dict())
    assert set(bundle) >= {"application/vnd.plotly.v1+json", "image/png"}
    assert bundle["image/png"][:8] in ("iVBORw0K",)  # base64 of a PNG signature


@pytest.mark.parametrize("browser", ["/nonexistent/chromium", "/bin/false"])
def test_no_working_browser_means_no_static_copy_and_no_wait(browser):
    """A missing browser, or one that exits at once (kaleido's server thread then dies while every
    render would wait on it for good): a warning, plotly's JSON alone, and no wait."""
    start = time.perf_counter()
    code = (
        "import warnings; warnings.simplefilter('always'); from ntf_core import viz; "
        "print(viz.static_images_available())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BROWSER_PATH": browser, "NTF_STATIC_WARNING": "1"},
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr
    assert "plotly figures get no static PNG copy" in done.stderr  # said, not silent
    assert time.perf_counter() - start < 60


def test_check_readings_passes_close_values_and_names_the_ones_that_moved():
    ok = viz.check_readings({"AP": (0.6231, 0.622), "FPR": (0.598, 0.604)}, True, atol=0.01)
    assert ok == "Within 0.01 of the stored run: AP 0.622; FPR 0.604."
    with pytest.raises(AssertionError, match="FPR: 0.5800 now, 0.604 stored"):
        viz.check_readings({"AP": (0.622, 0.622), "FPR": (0.58, 0.604)}, True, atol=0.01)
    with pytest.raises(AssertionError, match="AP"):
        viz.check_readings({"AP": (float("nan"), 0.622)}, True, atol=0.01)
    many = {str(i): (0.5, 0.5) for i in range(9)}
    assert (
        viz.check_readings(many, True, atol=0.02)
        == "All 9 readings are within 0.02 of the stored run."
    )
    assert "not compared" in viz.check_readings({"AP": (0.1, 0.9)}, False, atol=0.01)


def test_one_colour_per_method_and_distinct_colours_for_the_rest():
    c = viz.colours(["w/o L_ort", "NTF", "Wang2020", "full NTF", "spectrum"])
    assert c["NTF"] == viz.METHOD_COLOURS["NTF"] and c["Wang2020"] == viz.METHOD_COLOURS["Wang2020"]
    others = [c["w/o L_ort"], c["full NTF"]]
    assert len(set(others)) == 2 and not set(others) & set(viz.METHOD_COLOURS.values())
    fig = viz.grouped_bars({"a": {"NTF": 0.7, "spectrum": 0.6}}, "t")
    assert [b.marker.color for b in fig.data] == [c["NTF"], c["spectrum"]]
    assert any(
        a.text == "chance" and a.xref == "paper" and a.x == 1.0 for a in fig.layout.annotations
    )


def test_a_chance_line_in_a_lower_panel_is_labelled_against_that_panel():
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1)
    fig.add_bar(x=["a"], y=[70], row=1, col=1)
    fig.add_bar(x=["a"], y=[0.7], row=2, col=1)
    viz.chance_line(fig, 0.5, row=2, col=1)
    (label,) = [a for a in fig.layout.annotations if a.text == "chance"]
    assert label.yref == "y2" and label.y == 0.5
    assert [s.yref for s in fig.layout.shapes] == ["y2"]


def test_pairs_figure_writes_the_symbol_in_every_cell_and_sets_hom_apart():
    from ntf_core.losses import extended_supcon_pairs

    labels = __import__("torch").tensor([0, 1, 0])
    self_mask, positive = extended_supcon_pairs(labels, 2)
    fig = viz.pairs_figure(self_mask, positive, labels, n_hom=2)
    text = np.asarray(fig.data[0].text)
    assert text.shape == (3, 5)
    assert list(text[1]) == ["−", "·", "−", "−", "−"]  # a fake anchor: the hom features repel
    assert list(text[0]) == ["·", "−", "+", "+", "+"]
    assert any(s.type == "line" and s.x0 == 2.5 for s in fig.layout.shapes)


def test_family_panels_put_each_family_beside_the_reals_only():
    rng = np.random.default_rng(0)
    names = ["real"] * 4 + ["dcgan"] * 3 + ["sngan"] * 3 + ["ddpm"] * 3
    fams = {"gan": ["dcgan", "sngan"], "diffusion": ["ddpm"]}
    fig = viz.family_panels(rng.normal(size=(13, 2)), names, fams)
    by_axis = {}
    for t in fig.data:
        by_axis.setdefault(t.xaxis, []).append(t.name)
    assert by_axis == {"x": ["dcgan", "sngan", "real"], "x2": ["ddpm", "real"]}
    colours = {t.name: t.marker.color for t in fig.data}
    assert colours["dcgan"] != colours["sngan"]
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.xaxis2.matches == "x"
    assert fig.layout.yaxis2.matches == "y"


def test_image_grid_writes_captions_under_the_images():
    import torch

    x = torch.zeros(2, 3, 8, 8)
    plain = np.asarray(viz.image_grid(x, nrow=2, upscale=4))
    captioned = np.asarray(viz.image_grid(x, nrow=2, upscale=4, captions=["0.12", "0.99"]))
    assert captioned.shape[0] == plain.shape[0] + 14
    band = captioned[1 + 32 :, :, :]
    assert (band < 128).any()  # the text is drawn in the band under the images
    assert viz.colourbar_strip(label="x").size[0] == 276


def test_markdown_table_escapes_a_pipe_inside_a_cell():
    """``|cos|`` in a header or a cell stays one cell (unescaped, it splits the table)."""
    text = viz.markdown_table(["source", "mean |cos|"], [["real", 0.25], ["a|b", "x"]]).data
    assert text.splitlines() == [
        "| source | mean \\|cos\\| |",
        "|---|---|",
        "| real | 0.250 |",
        "| a\\|b | x |",
    ]
