"""The course site and the plain nbconvert exports in a real browser (headless Debian chromium via
playwright).

Every page is opened over a loopback HTTP server with every request to any other host blocked and
recorded, and the site once more straight from disk (file://, the USB-stick case). A page passes
when every stored plotly figure is drawn (the site: plotly's rendered containers; the exports: the
static PNGs, all decoded), every equation is typeset (MathJax's own count, no MathJax error, no raw
TeX left in the text), no console error was logged and no request left the machine. Skipped without
chromium or playwright, except on CI (CI=true), where that is a failure: `.ci/run` installs
chromium.

    .venv/bin/python tests/test_site.py     # the same checks, printing a count per page
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ntf_core import site

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
RAW_TEX = re.compile(r"\$[^$\n]*\\[a-zA-Z]+|\\mathcal|\\frac\{")


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if CHROMIUM is None or sync_playwright is None:
        why = "needs Debian's chromium and the playwright package"
        if os.environ.get("CI"):
            pytest.fail(why + " (on CI both are installed by .ci/run)")
        pytest.skip(why)
    return sync_playwright


@functools.lru_cache(maxsize=1)
def built(tmp: str) -> tuple[Path, Path, dict, dict]:
    """A fresh site and export under ``tmp``; or, with NTF_SITE_DIR=build (``make test-site``), what
    ``make site`` left in build/site and build/export."""
    prebuilt = os.environ.get("NTF_SITE_DIR")
    if prebuilt:
        out = Path(prebuilt)
        figures = {f"{p.stem}.html": site.count_figures(p) for p in site.stored_notebooks()}
        assert (out / "site" / "index.html").exists(), f"no site in {out}/site: run make site first"
        return out / "site", out / "export", figures, figures
    out = Path(tmp)
    return (
        out / "site",
        out / "export",
        site.build_site(out / "site"),
        site.build_export(out / "export"),
    )


class Server:
    """build/… over http://127.0.0.1:<free port>, in a thread, for one test."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


PAGE_STATE = (
    """async () => {
  if (window.MathJax && MathJax.Hub) {   // typesetting done, or 30 s: """
    """whatever is left untypeset then fails
    await Promise.race([new Promise(done => MathJax.Hub.Queue(done)),
                        new Promise(done => setTimeout(done, 30000))]);
  }
  const plots = [...document.querySelectorAll('.ntf-plotly')];
  const imgs = [...document.querySelectorAll('.jp-OutputArea-output img')];
  const md = [...document.querySelectorAll('.jp-MarkdownOutput, .ntf-page')]"""
    """.map(e => e.innerText).join('\\n');
  return {
    plots: plots.length,
    plots_drawn: plots.filter(d => d.querySelector('.main-svg')).length,
    imgs: imgs.length,
    imgs_drawn: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    math: window.MathJax && MathJax.Hub ? MathJax.Hub.getAllJax().length : 0,
    math_frames: document.querySelectorAll('span.MathJax, span.MathJax_SVG, """
    """span.MathJax_CHTML').length,
    math_errors: document.querySelectorAll('.MathJax_Error, merror, .mjx-merror').length,
    markdown_text: md,
  };
}"""
)


def check_pages(browser, base: str, pages: list[str], expected_figures: dict, mode: str) -> dict:
    """Open each page; returns {page: counts}; asserts nothing, records problems in
    counts['problems']."""
    results = {}
    for page_name in pages:
        context = browser.new_context()
        outside, errors = [], []

        def route(r, request, outside=outside):
            url = urlparse(request.url)
            if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOOPBACK:
                outside.append(request.url)
                return r.abort()
            return r.continue_()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.on("requestfailed", lambda r, errors=errors: errors.append(f"failed: {r.url}"))
        page.on(
            "response",
            lambda r, errors=errors: (
                errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None
            ),
        )
        page.goto(f"{base}/{page_name}", wait_until="load", timeout=60_000)
        state = page.evaluate(PAGE_STATE)
        context.close()
        want = expected_figures.get(page_name, 0)
        problems = []
        if mode == "site" and not (state["plots"] == want and state["plots_drawn"] == want):
            problems.append(
                f"{state['plots_drawn']} of {want} plotly figures drawn "
                f"({state['plots']} containers)"
            )
        if mode == "export" and not (state["imgs_drawn"] == state["imgs"] >= want):
            problems.append(
                f"{state['imgs_drawn']} of {state['imgs']} images drawn, {want} figures stored"
            )
        if state["math"] != state["math_frames"] or state["math_errors"]:
            problems.append(
                f"{state['math_frames']} of {state['math']} equations typeset, "
                f"{state['math_errors']} MathJax errors"
            )
        raw = RAW_TEX.findall(state.pop("markdown_text"))
        if raw:
            problems.append(f"raw TeX left in the text: {raw[:3]}")
        if errors:
            problems.append(f"console errors: {errors[:3]}")
        if outside:
            problems.append(f"requests to other hosts: {outside[:3]}")
        results[page_name] = {**state, "figures": want, "problems": problems}
    return results


def run_checks(
    root: Path, pages: list[str], figures: dict, mode: str, file_url: bool = False
) -> dict:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
            ],
        )
        try:
            if file_url:
                return check_pages(browser, root.resolve().as_uri(), pages, figures, mode)
            server = Server(root)
            try:
                return check_pages(browser, server.url, pages, figures, mode)
            finally:
                server.close()
        finally:
            browser.close()


def _assert_clean(results: dict):
    bad = {page: r["problems"] for page, r in results.items() if r["problems"]}
    assert not bad, bad


def _mathjax_or_skip():
    if not (site.MATHJAX_ROOT / "MathJax.js").exists():
        if os.environ.get("CI"):
            pytest.fail("CI installs libjs-mathjax; MathJax is missing")
        pytest.skip("needs Debian's libjs-mathjax and fonts-mathjax")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    _browser_or_skip()
    _mathjax_or_skip()
    return built(str(tmp_path_factory.mktemp("site")))


def test_site_pages_draw_every_figure_and_equation_offline(builds):
    site_dir, _, figures, _ = builds
    pages = ["index.html", *figures, *sorted(p.name for p in site_dir.glob("d*_*.html"))]
    results = run_checks(site_dir, pages, figures, "site")
    _assert_clean(results)
    assert sum(r["plots_drawn"] for r in results.values()) == sum(figures.values()) > 0
    assert sum(r["math"] for r in results.values()) > 0


def test_site_works_from_disk_without_a_server(builds):
    site_dir, _, figures, _ = builds
    results = run_checks(
        site_dir,
        ["index.html", "01_natural_traces.html", "02_embedding_space.html"],
        figures,
        "site",
        file_url=True,
    )
    _assert_clean(results)
    assert (
        results["01_natural_traces.html"]["math"] > 0
        and results["02_embedding_space.html"]["plots_drawn"] > 0
    )


def test_plain_nbconvert_exports_show_every_figure_and_equation(builds):
    _, export_dir, _, figures = builds
    results = run_checks(export_dir, list(figures), figures, "export")
    _assert_clean(results)
    assert sum(r["math"] for r in results.values()) > 0


def test_stored_plotly_figures_carry_a_static_png():
    """What GitHub and nbviewer need: every stored plotly figure has its PNG in the same output, no
    output loads a script from a CDN, and no dead widget view is stored without a static copy."""
    import nbformat

    for nb_path in site.stored_notebooks():
        nb = nbformat.read(nb_path, as_version=4)
        assert "widgets" not in nb.metadata, nb_path.name
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            for out in cell.outputs:
                data = out.get("data", {})
                where = f"{nb_path.name}, code cell {i + 1}"
                if site.PLOTLY in data:
                    assert "image/png" in data, f"{where}: plotly figure without a PNG"
                assert "cdn." not in str(data.get("text/html", "")), (
                    f"{where}: HTML loads from a CDN"
                )
                if "application/vnd.jupyter.widget-view+json" in data:
                    pytest.fail(f"{where}: a widget view without its kernel shows nothing")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        site_dir, export_dir, figs, export_figs = built(tmp)
        for name, (root, pages, f, mode, file_url) in {
            "site (http)": (site_dir, ["index.html", *figs], figs, "site", False),
            "site (file)": (site_dir, ["index.html", *figs], figs, "site", True),
            "exports": (export_dir, list(export_figs), export_figs, "export", False),
        }.items():
            res = run_checks(root, pages, f, mode, file_url)
            drawn = (
                f"plotly figures drawn {sum(r['plots_drawn'] for r in res.values())}"
                if mode == "site"
                else f"images drawn {sum(r['imgs_drawn'] for r in res.values())} of "
                f"{sum(r['imgs'] for r in res.values())}"
            )
            print(
                f"{name}: {len(res)} pages, {drawn} (plotly figures stored: {sum(f.values())}), "
                f"equations typeset {sum(r['math_frames'] for r in res.values())} of "
                f"{sum(r['math'] for r in res.values())}, pages with problems "
                f"{sum(bool(r['problems']) for r in res.values())}"
            )
            for page, r in res.items():
                if r["problems"]:
                    print("  ", page, r["problems"])


def test_every_script_and_stylesheet_is_served_by_the_site_itself(tmp_path):
    """Without a browser: every <script src> and <link href> of every page is a file inside the
    site."""
    _mathjax_or_skip()
    figures = site.build_site(tmp_path / "site")
    pages = sorted((tmp_path / "site").glob("*.html"))
    assert {f"{p.stem}.html" for p in site.stored_notebooks()} <= {p.name for p in pages}
    index = (tmp_path / "site" / "index.html").read_text()
    for page in figures:
        assert f'href="{page}"' in index, f"the index does not link {page}"
    for page in pages:
        for ref in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.read_text()):
            path = ref.split("?")[0]
            assert "://" not in ref and (tmp_path / "site" / path).is_file(), f"{page.name}: {ref}"
