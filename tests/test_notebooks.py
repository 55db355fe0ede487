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
