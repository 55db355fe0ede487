"""Pictures: image grids (PIL, so they render everywhere) and plotly figures."""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
import torch
from PIL import Image

from .augment import perturb, to_uint8
from .metrics import calibration

# One colour per method across the whole course (Okabe and Ito's palette: distinguishable with every
# common colour-vision deficiency); any other series takes the rest of the palette in turn.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442"]
TOL_EXTRA = ["#882255", "#44AA99", "#117733", "#999933", "#332288", "#AA4499"]  # Paul Tol's muted
METHOD_COLOURS = {
    "NTF": "#0072B2",
    "Wang2020": "#D55E00",
    "linear probe": "#009E73",
    "spectrum": "#E69F00",
    "low-freq probe": "#999999",
}
# what each perturbation's strength means (the x axis of Figure 5)
STRENGTH_UNITS = {
    "blur": "Gaussian sigma (px)",
    "jpeg": "JPEG quality (0: none)",
    "noise": "noise std (pixels in [0, 1])",
    "scale": "down-scale factor",
}


def colours(series) -> dict[str, str]:
    """A colour for every series name: a method's own (``METHOD_COLOURS``), the others the rest of
    the palette in order."""
    spare = [c for c in OKABE_ITO + TOL_EXTRA if c not in METHOD_COLOURS.values()]
    out, i = {}, 0
    for name in series:
        if name in METHOD_COLOURS:
            out[name] = METHOD_COLOURS[name]
        else:
            out[name] = spare[i % len(spare)]
            i += 1
    return out


def chance_line(fig, y: float = 50.0, text: str = "chance", **where) -> None:
    """A dotted line at ``y`` labelled in the right margin, where no data is drawn; ``where``
    (``row=``, ``col=``) puts both in one panel of a subplot figure, the label against that panel's
    y axis."""
    fig.add_hline(y=y, line_dash="dot", line_color="grey", **where)
    yref = "y"
    if where:
        yaxis = fig.get_subplot(where.get("row", 1), where.get("col", 1)).yaxis
        yref = yaxis.plotly_name.replace("axis", "")  # "yaxis2" -> "y2"
    fig.add_annotation(
        x=1.0,
        xref="paper",
        xanchor="left",
        y=y,
        yref=yref,
        text=text,
        showarrow=False,
        font={"color": "grey", "size": 11},
    )
    fig.update_layout(margin={"r": 90})


def image_grid(
    images: torch.Tensor,
    nrow: int = 8,
    upscale: int = 1,
    pad: int = 1,
    captions: list[str] | None = None,
) -> Image.Image:
    """float [N, 3, H, W] in [0, 1] -> one PIL image, nrow per row, nearest-neighbour upscaled,
    white gaps; ``captions``: a text under each image (Pillow's built-in font), centred when it fits
    the image's width, else from its left edge (leave the next captions empty for it)."""
    from PIL import ImageDraw, ImageFont

    n, _, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    H, W = h * upscale, w * upscale
    band = 14 if captions else 0
    canvas = np.full((rows * (H + band + pad) + pad, nrow * (W + pad) + pad, 3), 255, np.uint8)

    pix = to_uint8(images).permute(0, 2, 3, 1).numpy()
    pix = pix.repeat(upscale, axis=1).repeat(upscale, axis=2)
    for i in range(n):
        r, c = divmod(i, nrow)
        top = pad + r * (H + band + pad)
        canvas[top : top + H, pad + c * (W + pad) : pad + c * (W + pad) + W] = pix[i]
    image = Image.fromarray(canvas)
    if captions:
        draw, font = ImageDraw.Draw(image), ImageFont.load_default()
        for i, text in enumerate(captions[:n]):
            r, c = divmod(i, nrow)
            y = pad + r * (H + band + pad) + H + 1
            left = pad + c * (W + pad)
            if draw.textlength(str(text), font=font) <= W:  # centred under its image
                draw.text((left + W / 2, y), str(text), fill=(0, 0, 0), font=font, anchor="ma")
            else:  # longer: from the image's left edge, over the neighbours' (empty) captions
                draw.text((left, y), str(text), fill=(0, 0, 0), font=font, anchor="la")
    return image


def colourbar_strip(width: int = 256, height: int = 14, label: str = "") -> Image.Image:
    """The saliency overlay's colour scale (``saliency_overlay``) as a strip, 0 at the left and 1
    at the right, with its ends and ``label`` written under it: a colourbar for image grids."""
    from PIL import ImageDraw, ImageFont

    m = torch.linspace(0, 1, width)[None, :].repeat(height, 1)
    grey = torch.full((1, 3, height, width), 0.5)
    strip = saliency_overlay(grey, m[None].numpy())[0]
    canvas = Image.new("RGB", (width + 20, height + 18), "white")
    canvas.paste(Image.fromarray(to_uint8(strip[None])[0].permute(1, 2, 0).numpy()), (10, 2))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    draw.text((10, height + 4), "0", fill=(0, 0, 0), font=font)
    draw.text((width + 10, height + 4), "1", fill=(0, 0, 0), font=font, anchor="ra")
    draw.text((10 + width / 2, height + 4), label, fill=(0, 0, 0), font=font, anchor="ma")
    return canvas


PROBE_SECONDS = 90


@functools.cache
def static_images_available() -> bool:
    """True when kaleido can draw PNGs here: it drives a headless Chrome or Chromium (``apt-get
    install chromium``).

    Checked once per process, and never by waiting forever: kaleido's sync server runs in a thread,
    and when its browser cannot start that thread dies while every later render waits for it. So
    look for a browser first, then draw one tiny figure with a time limit; only a figure that came
    back turns static images on."""
    return _start_kaleido()


def _start_kaleido() -> bool:
    import atexit
    import os
    import threading
    import time
    import warnings

    def off(why: str) -> bool:
        # the test suite's kernels (tests/conftest.py)
        if os.environ.get("NTF_STATIC_WARNING", "1") == "0":
            return False
        warnings.warn(
            f"plotly figures get no static PNG copy: {why}. "
            "GitHub, nbviewer and plain exports will show "
            "them blank; `apt-get install chromium` fixes it",
            stacklevel=3,
        )
        return False

    try:
        import kaleido
        import plotly.graph_objects as go
        from choreographer.browsers.chromium import Chromium
    except ImportError as err:
        return off(f"{err.name} is not installed")
    browser = os.environ.get("BROWSER_PATH") or Chromium.find_browser(skip_local=False)
    if not browser or not os.path.isfile(browser):
        return off(f"no Chrome or Chromium found{f' at {browser}' if browser else ''}")
    # plotly.js comes from the installed plotly package; no MathJax (none of our figures has TeX,
    # and kaleido's default would be fetched from a CDN); one render may take 60 s at most
    kaleido.start_sync_server(mathjax=False, timeout=60, silence_warnings=True)
    # plotly passes per-call browser options that a running server cannot take, and kaleido warns on
    # every figure
    warnings.filterwarnings("ignore", message="The kopts argument is ignored if using a server")
    answer = {}

    def probe():
        try:
            answer["png"] = go.Figure().to_image(format="png", width=20, height=20)
        except Exception as err:  # the browser would not start, or crashed
            answer["error"] = err

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    server = getattr(kaleido, "_global_server", None)
    deadline = time.monotonic() + PROBE_SECONDS
    while worker.is_alive() and time.monotonic() < deadline:
        worker.join(0.5)
        thread = getattr(server, "_thread", None)
        # the server died: its queue will never answer
        if thread is not None and not thread.is_alive():
            break
    if "png" not in answer:
        # never hand plotly, or kaleido's own exit hook, a server that cannot answer
        if server is not None:
            server._initialized = False
        return off(f"kaleido could not draw ({answer.get('error', 'its browser did not answer')})")
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    return True


def setup_plotly(static: bool = True) -> None:
    """Every plotly figure becomes one output with two forms of the same picture: plotly's JSON,
    which JupyterLab and the course site (``make site``) draw interactively with a local plotly.js,
    and a PNG drawn by kaleido, which GitHub, nbviewer and an nbconvert export show without
    JavaScript. No form loads anything from a CDN."""
    import plotly.io as pio

    if static and static_images_available():
        pio.renderers["png"].width = 900
        pio.renderers.default = "plotly_mimetype+png"
    else:
        pio.renderers.default = "plotly_mimetype"


def markdown_table(headers, rows, floatfmt: str = ".3f"):
    """A Markdown table (IPython displays it; nbval compares it as text). A ``|`` inside a cell is
    escaped, so it cannot split the cell (``|cos|`` in a header would break the whole table)."""
    from IPython.display import Markdown

    cell = lambda v: (format(v, floatfmt) if isinstance(v, float) else str(v)).replace("|", "\\|")
    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def check_readings(readings: dict, stored_run: bool, atol: float) -> str:
    """Check what a notebook's text reads from a table against the run its outputs were stored from.

    ``readings``: ``{name: (value now, value stored)}``. The third decimal of some tables moves with
    the CPU's arithmetic (FFTs, solvers, neighbour searches), so nbval cannot compare them as text;
    their cell is not compared, and this check holds the readings instead: each must be within
    ``atol`` of the stored value when ``stored_run`` (the notebook runs at the parameters its
    outputs were stored with), else nothing is compared. Raises ``AssertionError`` naming the
    readings that moved; returns a sentence quoting the stored values, the same on every CPU."""
    if not stored_run:
        return "Other parameters than the stored run's: the readings are not compared."
    moved = {k: (now, then) for k, (now, then) in readings.items() if not abs(now - then) <= atol}
    if moved:
        detail = ", ".join(
            f"{k}: {now:.4f} now, {then:.3f} stored" for k, (now, then) in moved.items()
        )
        raise AssertionError(f"readings moved more than {atol} from the stored run: {detail}")
    if len(readings) > 8:
        return f"All {len(readings)} readings are within {atol} of the stored run."
    quoted = "; ".join(f"{k} {then:.3f}" for k, (_, then) in readings.items())
    return f"Within {atol} of the stored run: {quoted}."


def spectra_figure(spectra: dict, reference: str = "real", cols: int = 5, title: str = ""):
    """Heatmaps of each mean log spectrum minus the reference's: what a generator adds (red) or
    lacks (blue)."""
    import plotly.express as px

    names = [n for n in spectra if n != reference]
    diffs = np.stack([(spectra[n] - spectra[reference]).numpy() for n in names])
    lim = float(np.abs(diffs).max())
    fig = px.imshow(
        diffs,
        facet_col=0,
        facet_col_wrap=cols,
        color_continuous_scale="RdBu_r",
        zmin=-lim,
        zmax=lim,
        title=title or f"mean log spectrum minus {reference}'s",
    )
    for ann in fig.layout.annotations:
        ann.text = names[int(ann.text.split("=")[1])]
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    fig.update_layout(
        height=220 * ((len(names) + cols - 1) // cols) + 80, coloraxis_colorbar_title="Δ log|F|"
    )
    return fig


def profiles_figure(profiles: dict, families: dict | None = None, title: str = ""):
    """Azimuthally averaged spectra, one line per image source, dashed by family."""
    import plotly.graph_objects as go

    fam_of = {g: f for f, gs in (families or {}).items() for g in gs}
    dash = {"gan": "solid", "diffusion": "dash", "multistep": "dot"}
    group = {
        "gan": "GAN (solid)",
        "diffusion": "diffusion (dashed)",
        "multistep": "multi-step (dotted)",
    }
    # within a family a colour per generator, across families a dash style: readable without colour
    in_family = {
        g: _IN_FAMILY[i % len(_IN_FAMILY)]
        for gs in (families or {}).values()
        for i, g in enumerate(gs)
    }
    colour = {**colours([n for n in profiles if n != "real" and n not in in_family]), **in_family}
    fig = go.Figure()
    for name, prof in profiles.items():
        family = fam_of.get(name)
        fig.add_trace(
            go.Scatter(
                y=prof.numpy(),
                mode="lines",
                name=name,
                legendgroup=family or name,
                legendgrouptitle_text=group.get(
                    family, "real photographs" if name == "real" else ""
                ),
                line={
                    "dash": dash.get(family, "solid"),
                    "width": 4 if name == "real" else 2,
                    "color": "black" if name == "real" else colour[name],
                },
            )
        )
    fig.update_layout(
        title=title or "radial profile of the residual's mean log spectrum",
        xaxis_title="spatial frequency (cycles per 32 px)",
        yaxis_title="mean log |F|",
        height=620,
    )
    return fig


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png(image: Image.Image):
    """A PIL image as an IPython PNG display object (one mimetype, lossless, small in the stored
    notebook)."""
    from IPython.display import Image as IPyImage

    return IPyImage(data=_png_bytes(image), format="png")


def toy_figure(
    runs: dict, title: str = "the 2-D toy: start (faint) and end (solid) of each descent"
):
    """One column per toy run (``{name: ntf_core.toy.toy_run(...)}``): hom features (top), het
    features (bottom) on the unit circle, coloured by image, at the start (faint) and at the end
    (solid)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    names = list(runs)
    fig = make_subplots(
        rows=2,
        cols=len(names),
        subplot_titles=[f"{n}: z_hom" for n in names] + [f"{n}: z_het" for n in names],
        horizontal_spacing=0.03,
        vertical_spacing=0.08,
    )
    t = np.linspace(0, 2 * np.pi, 100)
    for c, name in enumerate(names, start=1):
        run = runs[name]
        src = run["source"].numpy()
        for r, key in enumerate(("hom", "het"), start=1):
            fig.add_trace(
                go.Scatter(
                    x=np.cos(t),
                    y=np.sin(t),
                    mode="lines",
                    line={"color": "#ddd"},
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=r,
                col=c,
            )
            for when, opacity in ((0, 0.25), (-1, 1.0)):
                z = run[key][when].numpy()
                fig.add_trace(
                    go.Scatter(
                        x=z[:, 0],
                        y=z[:, 1],
                        mode="markers",
                        showlegend=False,
                        opacity=opacity,
                        marker={"size": 9, "color": [qualitative.Plotly[s % 10] for s in src]},
                        hovertext=[f"image {s}" for s in src],
                    ),
                    row=r,
                    col=c,
                )
    fig.update_xaxes(range=[-1.2, 1.2], showticklabels=False).update_yaxes(
        range=[-1.2, 1.2], showticklabels=False, scaleanchor="x"
    )
    fig.update_layout(height=520, width=260 * len(names) + 60, title=title)
    return fig


def curves_figure(history: list[dict], keys, title: str = "", log_y: bool = False):
    """Training curves: one line per logged term of a checkpoint's per-epoch ``history``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    epochs = [r["epoch"] for r in history]
    for k in keys:
        fig.add_trace(go.Scatter(x=epochs, y=[r[k] for r in history], mode="lines+markers", name=k))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="loss (epoch mean)", height=380)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def show_source(fn):
    """A function's source as a Markdown code block: the equation's code beside the equation."""
    import inspect

    from IPython.display import Markdown

    return Markdown(f"```python\n{inspect.getsource(fn).rstrip()}\n```")


def pairs_figure(self_mask, positive, labels, n_hom: int, title: str = "eq. 5: who attracts whom"):
    """The extended SupCon's pairs as a picture: rows are anchors, columns the contrast set (batch,
    then hom). Each cell carries its symbol as well as its colour, so it reads without colour
    vision: "+" blue = positive (attract), "−" vermillion = negative (repel, denominator only),
    "·" grey = the anchor itself. A line and a label set the hom columns apart."""
    import plotly.graph_objects as go

    labels = [int(v) for v in labels]
    z = np.where(np.asarray(self_mask), 0, np.where(np.asarray(positive), 1, -1))
    text = np.where(z == 1, "+", np.where(z == -1, "−", "·"))
    rows = [f"{'real' if v == 0 else 'fake'} {i}" for i, v in enumerate(labels)]
    cols = rows + [f"hom {j}" for j in range(n_hom)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=cols,
            y=rows,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 22, "color": "white"},
            zmin=-1,
            zmax=1,
            showscale=False,
            xgap=2,
            ygap=2,
            colorscale=[[0, "#D55E00"], [0.5, "#bbbbbb"], [1, "#0072B2"]],
        )
    )
    b = len(labels)
    fig.add_vline(x=b - 0.5, line_width=4, line_color="black")
    fig.add_annotation(
        x=b - 0.5 + n_hom / 2,
        y=-0.75,
        text="stage-1 hom features (count as real)",
        showarrow=False,
        yanchor="bottom",
    )
    fig.update_yaxes(autorange="reversed", title="anchor")
    fig.update_xaxes(title="contrast set: + attract, − repel, · the anchor itself")
    fig.update_xaxes(matches="x")  # one map: every panel over the same ranges
    fig.update_yaxes(matches="y")
    fig.update_layout(
        title=title, height=440, legend={"orientation": "h", "y": -0.05, "yanchor": "top"}
    )
    return fig


def umap_2d(
    features: np.ndarray, seed: int = 0, n_neighbors: int = 15, metric: str = "cosine"
) -> np.ndarray:
    """A 2-D UMAP of ``features`` (deterministic for a seed; umap-learn compiles itself on the first
    call)."""
    import umap

    return umap.UMAP(
        n_neighbors=n_neighbors, min_dist=0.1, metric=metric, random_state=seed, n_jobs=1
    ).fit_transform(features)


# within a family each generator has its own colour; across families, its own marker
_FAMILY_SYMBOL = {"gan": "circle", "diffusion": "diamond", "multistep": "x"}
_IN_FAMILY = ["#E69F00", "#0072B2", "#CC79A7"]


def _source_style(families: dict | None) -> dict[str, dict]:
    style = {"real": {"color": "#333333", "symbol": "circle", "size": 4, "opacity": 0.7}}
    for family, gens in (families or {}).items():
        for i, g in enumerate(gens):
            style[g] = {
                "color": _IN_FAMILY[i % len(_IN_FAMILY)],
                "symbol": _FAMILY_SYMBOL.get(family, "circle"),
                "size": 6,
                "opacity": 0.75,
            }
    return style


def embedding_figure(
    coords: np.ndarray, names: list[str], title: str = "", families: dict | None = None
):
    """Scatter of 2-D points, one trace per source name: real crops in grey, each family's
    generators by marker (circle GAN, diamond diffusion, x multi-step) and, within a family, by a
    colour-blind-safe colour; equal aspect (a UMAP's axes share one scale)."""
    import plotly.graph_objects as go

    style = _source_style(families)
    names = np.asarray(names)
    fig = go.Figure()
    for name in dict.fromkeys(names):
        m = names == name
        fig.add_trace(
            go.Scattergl(
                x=coords[m, 0],
                y=coords[m, 1],
                mode="markers",
                name=str(name),
                marker=style.get(str(name), {"size": 6}),
            )
        )
    fig.update_layout(
        title=title,
        height=560,
        xaxis={"showticklabels": False, "title": "UMAP 1"},
        yaxis={"showticklabels": False, "title": "UMAP 2", "scaleanchor": "x", "scaleratio": 1},
    )
    return fig


def family_panels(coords: np.ndarray, names: list[str], families: dict, title: str = ""):
    """One small panel per family over the same 2-D map: the real crops (grey) and that family's
    generators only, so no more than four sources share a panel; equal aspect, shared axes."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    style = _source_style(families)
    names = np.asarray(names)
    fams = list(families)
    fig = make_subplots(
        rows=1,
        cols=len(fams),
        subplot_titles=fams,
        shared_xaxes=True,
        shared_yaxes=True,
        horizontal_spacing=0.03,
    )
    for c, family in enumerate(fams, start=1):
        for name in [*families[family], "real"]:  # the reals last, on top, small and grey
            m = names == name
            if not m.any():
                continue
            fig.add_trace(
                go.Scattergl(
                    x=coords[m, 0],
                    y=coords[m, 1],
                    mode="markers",
                    name=name,
                    marker=style[name],
                    legendgroup=name,
                    showlegend=name != "real" or c == 1,
                ),
                row=1,
                col=c,
            )
        fig.update_xaxes(showticklabels=False, row=1, col=c)
        fig.update_yaxes(showticklabels=False, row=1, col=c)
    fig.update_xaxes(matches="x")  # one map: every panel over the same ranges,
    fig.update_yaxes(matches="y")
    fig.update_layout(yaxis={"scaleanchor": "x", "scaleratio": 1})  # at equal aspect
    fig.update_layout(
        title=title, height=440, legend={"orientation": "h", "y": -0.05, "yanchor": "top"}
    )
    return fig


def embedding_explorer(
    coords: dict, names: list[str], families: dict | None = None, title: str = "UMAP of"
):
    """One plotly figure that explores every space without a kernel: a menu picks the space (e,
    z_hom, z_het, aux); clicking a legend entry hides or shows a generator, double-clicking isolates
    it. It is drawn with plotly's own JavaScript, so it works in JupyterLab, on the course site and
    in any exported copy (its static PNG shows the first space). An earlier ipywidgets version hung
    headless runs; see docs/RELIABILITY.md."""
    spaces = list(coords)
    figs = [embedding_figure(coords[k], names, f"{title} {k}", families) for k in spaces]
    fig = figs[0]
    n = len(fig.data)
    for f in figs[1:]:
        for trace in f.data:
            fig.add_trace(trace.update(visible=False, showlegend=True))
    buttons = [
        dict(
            label=k,
            method="update",
            args=[
                {"visible": [j // n == i for j in range(n * len(spaces))]},
                {"title.text": f"{title} {k}"},
            ],
        )
        for i, k in enumerate(spaces)
    ]
    fig.update_layout(
        updatemenus=[
            dict(
                buttons=buttons,
                direction="down",
                x=0,
                xanchor="left",
                y=1.12,
                yanchor="top",
                showactive=True,
            )
        ],
        legend_title_text="click: hide/show; double-click: only this",
    )
    return fig


def robustness_figure(results: dict, metric: str = "AP"):
    """Figure 5's layout: one panel per perturbation, ``metric`` (%) of each method against
    strength."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = list(results)
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=kinds, shared_yaxes=True)
    methods = list(next(iter(next(iter(results.values())).values())))
    colors = colours(methods)
    for c, kind in enumerate(kinds, start=1):
        strengths = list(results[kind])
        for m in methods:
            fig.add_trace(
                go.Scatter(
                    x=strengths,
                    y=[100 * results[kind][s][m][metric] for s in strengths],
                    mode="lines+markers",
                    name=m,
                    legendgroup=m,
                    showlegend=c == 1,
                    line={"color": colors[m]},
                ),
                row=1,
                col=c,
            )
        fig.add_hline(y=50, line_dash="dot", line_color="grey", row=1, col=c)
        unit = STRENGTH_UNITS.get(kind, "strength")
        fig.update_xaxes(type="category", title_text=unit, row=1, col=c)
    fig.update_yaxes(title_text=f"{metric} (%)", range=[0, 100], row=1, col=1)
    fig.add_annotation(  # inside the first panel, above its line, left of any falling curve
        x=0.02,
        xref="x domain",
        xanchor="left",
        y=50,
        yref="y",
        yanchor="bottom",
        text="chance",
        showarrow=False,
        font={"color": "grey", "size": 11},
    )
    fig.update_layout(
        height=380, title=f"{metric} averaged over the nine test generators, under perturbation"
    )
    return fig


class WithStaticCopy:
    """A widget that also carries a static copy of its first view (``text/html``). A live JupyterLab
    kernel draws the widget (its renderer outranks HTML); a stored or exported notebook has no
    kernel, so the course runner (``ntf_core.course``) drops the dead widget view and GitHub,
    nbconvert and the course site show the copy."""

    def __init__(self, widget, static_html: str):
        self.widget, self.static_html = widget, static_html

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        return {**bundle, "text/html": self.static_html}


def perturbation_explorer(detectors: dict, images: dict, grid: dict):
    """ipywidgets: pick an image (source, index), a perturbation and its strength; see the image and
    every detector's P(fake) update live. ``images``: {source name: float tensor [N, 3, H, W]}.
    Static copy: the first view (first source, image 0, first perturbation at its first
    strength)."""
    import ipywidgets as W
    from IPython.display import display

    source = W.Dropdown(options=list(images), description="image of")
    index = W.IntSlider(0, 0, min(len(v) for v in images.values()) - 1, description="index")
    kind = W.Dropdown(options=list(grid), description="perturb")
    strength = W.SelectionSlider(options=[str(s) for s in grid[kind.value]], description="strength")
    out = W.Output()

    def view():
        x = images[source.value][index.value : index.value + 1]
        s = float(strength.value) if kind.value != "jpeg" else int(float(strength.value))
        xp = perturb(x, kind.value, s)
        rows = [[n, float(d.score(x)[0]), float(d.score(xp)[0])] for n, d in detectors.items()]
        return image_grid(torch.cat([x, xp]), nrow=2, upscale=6), rows

    headers = ["detector", "P(fake), original", "P(fake), perturbed"]

    def on_kind(_):
        strength.options = [str(s) for s in grid[kind.value]]

    def redraw(*_):
        grid_image, rows = view()
        with out:
            out.clear_output(wait=True)
            display(png(grid_image))
            display(markdown_table(headers, rows))

    kind.observe(on_kind, "value")
    for w in (source, index, kind, strength):
        w.observe(redraw, "value")
    redraw()
    grid_image, rows = view()
    thumb = base64.b64encode(_png_bytes(grid_image)).decode()
    table = "".join(f"<tr><td>{n}</td><td>{a:.3f}</td><td>{b:.3f}</td></tr>" for n, a, b in rows)
    static = (
        "<p><em>Static copy of the explorer (run the notebook for the live widget): "
        f"{source.value} image {index.value}, {kind.value} at {strength.value}, "
        "original (left) and perturbed (right).</em></p>"
        f'<img alt="original and perturbed image" src="data:image/png;base64,{thumb}">'
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in headers)}</tr>{table}</table>"
    )
    return WithStaticCopy(W.VBox([W.HBox([source, index]), W.HBox([kind, strength]), out]), static)


def saliency_overlay(images: torch.Tensor, maps, alpha: float = 0.6) -> torch.Tensor:
    """Images [N, 3, H, W] with saliency maps [N, H, W] in [0, 1] laid over them in red-yellow
    ("hot")."""
    m = torch.as_tensor(np.asarray(maps), dtype=images.dtype)[:, None]
    heat = torch.cat([(2 * m).clamp(0, 1), (2 * m - 1).clamp(0, 1), torch.zeros_like(m)], dim=1)
    return ((1 - alpha * m) * images + alpha * m * heat).clamp(0, 1)


def grouped_bars(
    groups: dict,
    title: str = "",
    y_title: str = "AP (%)",
    chance: float | None = 50.0,
    percent: bool = True,
    intervals: dict | None = None,
    barmode: str = "group",
    x_title: str | None = None,
):
    """Grouped bar chart: ``groups`` is {x label: {series: value}}; values in [0, 1] shown in % when
    ``percent``. A dotted line marks ``chance`` (the paper's Figures 3 and 4 layout). ``intervals``:
    {x label: {series: (lo, hi)}}, drawn as error bars (e.g. a photo-bootstrap interval).
    ``barmode="overlay"`` when each x label has one series only (a colour that marks a kind)."""
    import plotly.graph_objects as go

    series = list(dict.fromkeys(s for g in groups.values() for s in g))
    k = 100 if percent else 1

    def bar(s):
        y = [k * groups[g][s] if s in groups[g] else None for g in groups]
        err = None
        if intervals is not None:  # a group without this series gets no bar and no error bar
            lo = [k * intervals[g][s][0] if s in intervals.get(g, {}) else None for g in groups]
            hi = [k * intervals[g][s][1] if s in intervals.get(g, {}) else None for g in groups]
            err = {
                "type": "data",
                "symmetric": False,
                "array": [None if v is None or h is None else h - v for h, v in zip(hi, y)],
                "arrayminus": [None if v is None or m is None else v - m for v, m in zip(y, lo)],
            }
        return go.Bar(name=s, x=list(groups), y=y, error_y=err, marker_color=colour[s])

    colour = colours(series)
    fig = go.Figure([bar(s) for s in series])
    if chance is not None:
        chance_line(fig, chance)
    fig.update_layout(
        barmode=barmode,
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=380,
        yaxis_range=[0, 100] if percent else None,
    )
    return fig


def reliability_figure(labels, scores, bins: int = 10, title: str = ""):
    """Reliability diagram: fraction of fakes against mean P(fake) per bin
    (``metrics.calibration``), with the diagonal of perfect calibration and, underneath, how many
    images fall in each bin."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cal = calibration(labels, scores, bins)
    b = cal["bins"]
    fig = make_subplots(
        rows=2, cols=1, row_heights=[0.75, 0.25], shared_xaxes=True, vertical_spacing=0.05
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "grey"},
            name="perfectly calibrated",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[r["confidence"] for r in b],
            y=[r["frequency"] for r in b],
            mode="lines+markers",
            name=f"detector (ECE {cal['ece']:.3f})",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=[(r["lo"] + r["hi"]) / 2 for r in b],
            y=[r["n"] for r in b],
            width=1 / bins,
            name="images per bin",
            marker_color="lightgrey",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="fraction fake", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="images", row=2, col=1)
    fig.update_xaxes(title_text="mean P(fake) in the bin", range=[0, 1], row=2, col=1)
    fig.update_layout(height=480, title=title)
    return fig


def matrix_figure(cells: dict, title: str = "", metric: str = "AP (%)"):
    """Heatmaps of train family x test family, one panel per method: ``cells`` is ``{method:
    {train family: {test family: {"mean", "lo", "hi"}}}}`` (``lab.matrix_cells``), values in [0, 1]
    shown in %, each cell labelled "mean [lo, hi]". One colour scale for every panel (cividis,
    readable with any colour vision), 50 % (chance) to 100 %."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    methods = list(cells)
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, horizontal_spacing=0.06)
    for i, m in enumerate(methods, start=1):
        trains = list(cells[m])
        tests = list(next(iter(cells[m].values())))
        z = [[100 * cells[m][tr][te]["mean"] for te in tests] for tr in trains]
        text = [
            [
                f"{100 * c['mean']:.1f}<br>[{100 * c['lo']:.1f}, {100 * c['hi']:.1f}]"
                for c in (cells[m][tr][te] for te in tests)
            ]
            for tr in trains
        ]
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=tests,
                y=trains,
                text=text,
                texttemplate="%{text}",
                colorscale="Cividis",
                zmin=50,
                zmax=100,
                showscale=i == len(methods),
                colorbar={"title": metric},
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(title_text="tested on", row=1, col=i)
        fig.update_yaxes(
            title_text="trained on" if i == 1 else None, autorange="reversed", row=1, col=i
        )
    fig.update_layout(title=title, height=360)
    return fig
