"""Pictures: image grids (PIL, so they render everywhere) and plotly figures."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def image_grid(images: torch.Tensor, nrow: int = 8, upscale: int = 1, pad: int = 1) -> Image.Image:
    """float [N, 3, H, W] in [0, 1] -> one PIL image, nrow per row, nearest-neighbour upscaled, white gaps."""
    n, _, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    H, W = h * upscale, w * upscale
    canvas = np.full((rows * (H + pad) + pad, nrow * (W + pad) + pad, 3), 255, np.uint8)
    pix = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    pix = pix.repeat(upscale, axis=1).repeat(upscale, axis=2)
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[pad + r * (H + pad):pad + r * (H + pad) + H, pad + c * (W + pad):pad + c * (W + pad) + W] = pix[i]
    return Image.fromarray(canvas)


def setup_plotly() -> None:
    """Render plotly figures natively in JupyterLab / VS Code, and through the CDN in classic notebooks."""
    import plotly.io as pio
    pio.renderers.default = "plotly_mimetype+notebook_connected"


def markdown_table(headers, rows, floatfmt: str = ".3f"):
    """A Markdown table (IPython displays it; nbval compares it as text)."""
    from IPython.display import Markdown
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def spectra_figure(spectra: dict, reference: str = "real", cols: int = 5, title: str = ""):
    """Heatmaps of each mean log spectrum minus the reference's: what a generator adds (red) or lacks (blue)."""
    import plotly.express as px
    names = [n for n in spectra if n != reference]
    diffs = np.stack([(spectra[n] - spectra[reference]).numpy() for n in names])
    lim = float(np.abs(diffs).max())
    fig = px.imshow(diffs, facet_col=0, facet_col_wrap=cols, color_continuous_scale="RdBu_r",
                    zmin=-lim, zmax=lim, title=title or f"mean log spectrum minus {reference}'s")
    for ann in fig.layout.annotations:
        ann.text = names[int(ann.text.split("=")[1])]
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    fig.update_layout(height=220 * ((len(names) + cols - 1) // cols) + 80, coloraxis_colorbar_title="Δ log|F|")
    return fig


def profiles_figure(profiles: dict, families: dict | None = None, title: str = ""):
    """Azimuthally averaged spectra, one line per image source, dashed by family."""
    import plotly.graph_objects as go
    fam_of = {g: f for f, gs in (families or {}).items() for g in gs}
    dash = {"gan": "solid", "diffusion": "dash", "multistep": "dot"}
    fig = go.Figure()
    for name, prof in profiles.items():
        fig.add_trace(go.Scatter(y=prof.numpy(), mode="lines", name=name,
                                 line={"dash": dash.get(fam_of.get(name), "solid"),
                                       "width": 4 if name == "real" else 2, "color": "black" if name == "real" else None}))
    fig.update_layout(title=title or "radial profile of the residual's mean log spectrum",
                      xaxis_title="spatial frequency (cycles per 32 px)", yaxis_title="mean log |F|", height=420)
    return fig


def png(image: Image.Image):
    """A PIL image as an IPython PNG display object (one mimetype, lossless, small in the stored notebook)."""
    import io
    from IPython.display import Image as IPyImage
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return IPyImage(data=buf.getvalue(), format="png")
