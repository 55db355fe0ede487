"""Every notebook runs headless through the course runner with small CI parameters (nbval then
checks the stored outputs)."""

import json
from pathlib import Path

import nbformat
import pytest

from ntf_core.course import NotebookRunError, execute, fill_placeholders, notebooks

PARAMS = json.loads((Path(__file__).parent / "notebook_ci_params.json").read_text())


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_with_ci_parameters(nb, tmp_path):
    """Through the course runner, so a test never waits forever either: a cell limit of 20 minutes,
    the watchdog behind it, and a failure that names the cell. These small runs take about a minute
    a cell at most; 05's training cell once took over 10 on 2 cores shared with two other heavy
    jobs."""
    try:
        execute(
            nb,
            tmp_path / nb.name,
            fill_placeholders(PARAMS.get(nb.stem, {}), tmp_path),
            cell_timeout=1200,
            progress=False,
        )
    except NotebookRunError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_is_well_formed(nb):
    """A parameters cell, stored outputs from one top-to-bottom run, no stored errors (what nbval
    relies on)."""
    cells = [
        c
        for c in nbformat.read(nb, as_version=4).cells
        if c.cell_type == "code" and c.source.strip()
    ]
    assert any("parameters" in c.metadata.get("tags", []) for c in cells), (
        "no cell tagged 'parameters'"
    )
    counts = [c.execution_count for c in cells]
    assert None not in counts, "cells without stored outputs: run the notebook and save it"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), (
        "cells were not run top to bottom once"
    )
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)


def test_every_notebook_has_ci_parameters_that_it_declares():
    for nb in notebooks():
        params = PARAMS.get(nb.stem, {})
        source = next(
            c.source
            for c in nbformat.read(nb, as_version=4).cells
            if "parameters" in c.metadata.get("tags", [])
        )
        for name in params:
            assert f"{name} =" in source, (
                f"{nb.name}: CI parameter {name!r} is not in its parameters cell"
            )


def _broken_tables(text: str) -> list[str]:
    """Rows of the Markdown tables in ``text`` (the header too) whose count of cell separators
    (unescaped ``|``) differs from the delimiter row's: a stray pipe in a cell breaks the whole
    table on GitHub and on the course site."""
    import re

    count = lambda line: len(re.findall(r"(?<!\\)\|", line))
    lines, bad = text.splitlines(), []
    for i, line in enumerate(lines):
        if i and re.match(r"^\|\s*:?-{3,}", line):
            j, n = i + 1, count(line)
            bad += [lines[i - 1]] if count(lines[i - 1]) != n else []
            while j < len(lines) and lines[j].startswith("|"):
                bad += [lines[j]] if count(lines[j]) != n else []
                j += 1
    return bad


def test_a_broken_table_is_found():
    assert _broken_tables("| a | b |\n|---|---|\n| 1 | 2 |\n| \\|x\\| | 3 |") == []
    assert _broken_tables("| a | sum of |d| |\n|---|---|\n| 1 | 2 |") == ["| a | sum of |d| |"]


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_every_markdown_table_keeps_its_columns(nb):
    """In the notebook's text and in its stored Markdown outputs (what GitHub and the site show)."""
    for i, c in enumerate(nbformat.read(nb, as_version=4).cells):
        texts = [c.source] if c.cell_type == "markdown" else []
        texts += ["".join(o["data"]["text/markdown"]) for o in c.get("outputs", [])
                  if "text/markdown" in o.get("data", {})]  # fmt: skip
        for text in texts:
            assert not _broken_tables(text), f"cell {i}: {_broken_tables(text)[:2]}"


def test_every_markdown_file_keeps_its_tables():
    root = Path(__file__).parent.parent
    for md in [root / "README.md", *root.glob("docs/*.md"), *root.glob("data_samples/**/*.md")]:
        assert not _broken_tables(md.read_text()), f"{md}: {_broken_tables(md.read_text())[:2]}"
