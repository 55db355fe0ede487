"""The course as a static site, and plain nbconvert exports, both readable offline.

    python -m ntf_core.site [--out build/site] [--export build/export]

``build/site/`` gets an index page (the README: the notebook table and the results), one page per
stored notebook (never executed here: the stored outputs are the content) and the docs, with
interactive plotly figures and typeset equations. Every script and font is served from ``assets/``
inside the site, so it works from a USB stick or any static host: plotly.js from the installed
plotly package, MathJax 2.7.9 from Debian's libjs-mathjax and fonts-mathjax. ``build/export/`` gets
what stock nbconvert makes of each notebook (its lab template) with MathJax pointed at a local copy
instead of its CDN: figures show there through the PNG stored beside each plotly figure.
``tests/test_site.py`` opens both in headless Chromium with every non-loopback request blocked.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TEMPLATES = Path(__file__).resolve().parent / "site_template"
PLOTLY = "application/vnd.plotly.v1+json"
# nbconvert's own choice, served locally
MATHJAX_CONFIG = "MathJax.js?config=TeX-AMS_CHTML-full,Safe"
# MathJax 2.7.9 from Debian (libjs-mathjax + fonts-mathjax; `.ci/run` installs them): the parts that
# TeX input with CommonHTML output loads, 1.6 MB. (The jupyter-server-mathjax wheel lacks the TeX
# fonts: 404s.)
MATHJAX_ROOT = Path("/usr/share/javascript/mathjax")
MATHJAX_PARTS = (
    "MathJax.js",
    "config/TeX-AMS_CHTML-full.js",
    "config/Safe.js",
    "extensions",
    "jax/input/TeX",
    "jax/output/CommonHTML",
    "jax/element",
    "localization/en",
    "fonts/HTML-CSS/TeX/woff",
)
DOCS = ("docs/METHOD.md", "docs/PERFORMANCE.md", "docs/RELIABILITY.md", "data_samples/README.md")

CSS = (
    "\nbody { margin: 0; }\n"
    ".ntf-nav { max-width: 1100px; margin: 0 auto; padding: 10px 20px; "
    "font: 14px/1.5 system-ui, sans-serif; }\n"
    ".ntf-nav a { margin-right: 1.2em; }\n"
    ".ntf-page { max-width: 980px; margin: 0 auto; padding: 0 20px 40px; "
    "font: 16px/1.55 system-ui, sans-serif; }\n"
    ".ntf-page table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }\n"
    ".ntf-page th, .ntf-page td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; "
    "vertical-align: top; }\n"
    ".ntf-page pre { background: #f6f6f6; padding: 10px; overflow-x: auto; }\n"
    ".ntf-page code { background: #f6f6f6; padding: 0 3px; }\n"
    ".ntf-plotly { min-height: 300px; }\n"
)


def copy_mathjax(dest: Path) -> None:
    if not (MATHJAX_ROOT / "MathJax.js").exists():
        raise SystemExit(
            f"no MathJax at {MATHJAX_ROOT}: apt-get install libjs-mathjax fonts-mathjax"
        )
    for part in MATHJAX_PARTS:
        src, dst = MATHJAX_ROOT / part, dest / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        # Debian's font symlinks become files
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def stored_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def count_figures(nb_path: Path) -> int:
    """How many plotly figures a stored notebook holds (what a reader must see drawn)."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    return sum(
        PLOTLY in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )


def _nav(pages: list[tuple[str, str]], i: int | None) -> str:
    links = ['<a href="index.html">course index</a>']
    if i is not None and i > 0:
        links.append(f'<a href="{pages[i - 1][0]}">&larr; {html.escape(pages[i - 1][1])}</a>')
    if i is not None and i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} &rarr;</a>')
    return " ".join(links)


def _rewrite_links(text: str) -> str:
    """Repository links in Markdown -> the site's pages (notebooks and docs); other links are left
    alone."""
    text = re.sub(r"\((?:\.\./)?notebooks/(\d\d_\w+)\.ipynb\)", r"(\1.html)", text)
    for doc in DOCS:
        text = text.replace(f"({doc})", f"({_doc_page(doc)})").replace(
            f"(../{doc})", f"({_doc_page(doc)})"
        )
    # the README's notebook table
    return re.sub(r"`(\d\d_[a-z_]+)`(?=\s*\|)", r"[`\1`](\1.html)", text)


def _doc_page(doc: str) -> str:
    return doc.replace("/", "_").replace(".md", ".html").lower()


def _copy_images(markdown_text: str, source_dir: Path, out: Path) -> str:
    """Images a Markdown file shows by relative path are copied into the site (under files/, by
    their path in the repository) and the links rewritten, so that a doc page shows them too."""

    def copy(match):
        alt, ref = match.group(1), match.group(2)
        src = (source_dir / ref).resolve()
        if "://" in ref or not src.is_file() or ROOT not in src.parents:
            return match.group(0)
        rel = src.relative_to(ROOT)
        (out / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, out / "files" / rel)
        return f"![{alt}](files/{rel.as_posix()})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", copy, markdown_text)


def _markdown_page(title: str, markdown_text: str, nav: str) -> str:
    import mistune

    body = mistune.create_markdown(plugins=["table"], escape=False)(_rewrite_links(markdown_text))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="assets/site.css"></head>'
        f'<body><nav class="ntf-nav">{nav}</nav>'
        f'<main class="ntf-page">{body}</main></body></html>\n'
    )


def build_site(out: Path = ROOT / "build" / "site") -> dict:
    """Write the site; returns {page: number of plotly figures} for the notebook pages."""
    from nbconvert import HTMLExporter

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    assets = out / "assets"
    assets.mkdir(parents=True)
    shutil.copy(plotly_js(), assets / "plotly.min.js")
    copy_mathjax(assets / "mathjax")
    (assets / "site.css").write_text(CSS)

    nbs = stored_notebooks()
    pages = [(f"{p.stem}.html", p.stem) for p in nbs]
    from traitlets.config import Config

    config = Config()
    # nbconvert's HTML order, with plotly's JSON first (drawn live here) and no widget views (no
    # kernel here)
    config.NbConvertBase.display_data_priority = [
        PLOTLY,
        "application/javascript",
        "text/html",
        "text/markdown",
        "image/svg+xml",
        "text/latex",
        "image/png",
        "image/jpeg",
        "text/plain",
    ]
    exporter = HTMLExporter(
        config=config,
        template_name="ntf",
        extra_template_basedirs=[str(TEMPLATES)],
        mathjax_url=f"assets/mathjax/{MATHJAX_CONFIG}",
    )
    figures = {}
    for i, nb in enumerate(nbs):
        body, _ = exporter.from_filename(str(nb), resources={"ntf_nav": _nav(pages, i)})
        (out / pages[i][0]).write_text(body)
        figures[pages[i][0]] = count_figures(nb)
    readme = _copy_images((ROOT / "README.md").read_text(), ROOT, out)
    (out / "index.html").write_text(_markdown_page("ntf: the course", readme, _nav(pages, None)))
    for doc in DOCS:
        if (ROOT / doc).exists():
            text = _copy_images((ROOT / doc).read_text(), (ROOT / doc).parent, out)
            (out / _doc_page(doc)).write_text(_markdown_page(doc, text, _nav(pages, None)))
    return figures


def build_export(out: Path = ROOT / "build" / "export") -> dict:
    """Stock nbconvert (lab template) of every stored notebook, MathJax from ``out/mathjax`` instead
    of a CDN and no require.js (no output of ours needs it). The same as ``jupyter nbconvert --to
    html --HTMLExporter.mathjax_url=mathjax/MathJax.js?config=... notebooks/*.ipynb``."""
    from nbconvert import HTMLExporter

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_mathjax(out / "mathjax")
    exporter = HTMLExporter(
        mathjax_url=f"mathjax/{MATHJAX_CONFIG}", require_js_url="data:text/javascript,"
    )
    figures = {}
    for nb in stored_notebooks():
        body, _ = exporter.from_filename(str(nb))
        (out / f"{nb.stem}.html").write_text(body)
        figures[f"{nb.stem}.html"] = count_figures(nb)
    return figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ntf_core.site",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    ap.add_argument(
        "--export", type=Path, default=ROOT / "build" / "export", help="where the plain exports go"
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    site = build_site(args.out)
    export = build_export(args.export)
    print(
        f"site: {len(site)} notebook pages, {sum(site.values())} interactive figures "
        f"-> {args.out}/index.html"
    )
    print(f"plain exports: {len(export)} pages -> {args.export}")
    print(f"built in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
