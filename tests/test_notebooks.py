"""Every notebook runs headless through papermill with small CI parameters (nbval then checks stored outputs)."""
import json
from pathlib import Path

import nbformat
import pytest

from ntf_core.course import notebooks

PARAMS = json.loads((Path(__file__).parent / "notebook_ci_params.json").read_text())


def _fill(value, tmp):
    """CI parameters may write only under the test's temporary folder, named ``{tmp}`` in the JSON."""
    if isinstance(value, dict):
        return {k: _fill(v, tmp) for k, v in value.items()}
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_with_ci_parameters(nb, tmp_path):
    import papermill as pm
    out = tmp_path / nb.name
    # execution_timeout: a cell of these small runs takes under a minute; once (2026-11-28) a kernel reply was
    # lost and papermill waited forever, so a lost reply now fails the test after 10 minutes instead
    pm.execute_notebook(str(nb), str(out), parameters=_fill(PARAMS.get(nb.stem, {}), tmp_path), kernel_name="python3",
                        cwd=str(nb.parent), progress_bar=False, execution_timeout=600, start_timeout=120)
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: p.stem)
def test_notebook_is_well_formed(nb):
    """A parameters cell, stored outputs from one top-to-bottom run, no stored errors (what nbval relies on)."""
    cells = [c for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code" and c.source.strip()]
    assert any("parameters" in c.metadata.get("tags", []) for c in cells), "no cell tagged 'parameters'"
    counts = [c.execution_count for c in cells]
    assert None not in counts, "cells without stored outputs: run the notebook and save it"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), "cells were not run top to bottom once"
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)


def test_every_notebook_has_ci_parameters_that_it_declares():
    for nb in notebooks():
        params = PARAMS.get(nb.stem, {})
        source = next(c.source for c in nbformat.read(nb, as_version=4).cells
                      if "parameters" in c.metadata.get("tags", []))
        for name in params:
            assert f"{name} =" in source, f"{nb.name}: CI parameter {name!r} is not in its parameters cell"
