"""The course runner never waits forever: cell limits, the kernel watchdog, clear failures, one
retry."""

import os
import time

import nbformat
import pytest

from ntf_core import course


def _notebook(tmp_path, *sources, name="nb.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_a_clean_run_records_every_cell_and_leaves_no_kernel(tmp_path):
    nb = _notebook(tmp_path, "import os; pid = os.getpid()", "print(pid)")
    out = tmp_path / "out.ipynb"
    result = course.execute(nb, out, progress=False)
    assert result.cells == 2 and len(result.cell_seconds) == 2
    executed = nbformat.read(out, as_version=4)
    pid = int(executed.cells[1].outputs[0]["text"])
    time.sleep(0.5)
    assert not _alive(pid), "the kernel outlived its notebook"


def test_parameters_are_injected_after_the_parameters_cell(tmp_path):
    nb = _notebook(tmp_path, "n = 1", "print(n * 10)")
    raw = nbformat.read(nb, as_version=4)
    raw.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(raw, nb)
    out = tmp_path / "out.ipynb"
    course.execute(nb, out, {"n": 7}, progress=False)
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[1].metadata["tags"] == ["injected-parameters"]
    assert executed.cells[2].outputs[0]["text"].strip() == "70"


def test_a_cell_over_its_limit_fails_naming_notebook_and_cell_and_writes_the_partial_copy(tmp_path):
    nb = _notebook(tmp_path, "x = 1", "import time\ntime.sleep(60)", "y = 2", name="slow.ipynb")
    # an output stored by an earlier run of cell 3
    stored = nbformat.read(nb, as_version=4)
    stored.cells[2].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="from last week\n")
    ]
    nbformat.write(stored, nb)
    out = tmp_path / "out.ipynb"
    start = time.perf_counter()
    with pytest.raises(course.NotebookRunError) as err:
        course.execute(nb, out, cell_timeout=3, progress=False)
    assert time.perf_counter() - start < 40
    e = err.value
    assert (e.kind, e.cell, e.n_cells, e.first_line) == ("timeout", 1, 3, "import time")
    assert "slow: code cell 2 of 3 ('import time'): timeout" in str(e) and e.retryable
    partial = nbformat.read(out, as_version=4)
    assert partial.cells[0].execution_count == 1
    # never ran: shows nothing
    assert partial.cells[2].outputs == [] and partial.cells[2].execution_count is None


def test_a_cell_that_raises_is_an_error_with_its_message_and_is_not_retried(tmp_path):
    nb = _notebook(tmp_path, "raise ValueError('bad input: x.png')")
    with pytest.raises(course.NotebookRunError) as err:
        course.execute(nb, tmp_path / "out.ipynb", progress=False)
    assert err.value.kind == "error" and not err.value.retryable
    assert "ValueError: bad input: x.png" in str(err.value)


def test_a_dead_kernel_is_reported_not_waited_for(tmp_path):
    nb = _notebook(tmp_path, "import os\nos._exit(1)", "x = 1")
    start = time.perf_counter()
    with pytest.raises(course.NotebookRunError) as err:
        course.execute(nb, tmp_path / "out.ipynb", cell_timeout=120, progress=False)
    assert err.value.kind == "kernel died" and err.value.cell == 0
    assert time.perf_counter() - start < 60


def test_the_watchdog_kills_a_kernel_whose_cell_outlives_the_limit(tmp_path):
    """The backstop behind nbclient's own timeout: here nbclient is told to wait forever
    (timeout=None) and the watchdog alone must end the cell; nbclient then sees the dead kernel."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(_notebook(tmp_path, "import time\ntime.sleep(120)"), as_version=4)
    client = NotebookClient(nb, timeout=None, kernel_name="python3", shutdown_kernel="immediate")
    dog = course.Watchdog(None, limit=2)
    start = time.perf_counter()
    try:
        with client.setup_kernel():
            dog.pid = course._kernel_pid(client.km)
            dog.start()
            dog.arm()
            with pytest.raises(DeadKernelError):
                client.execute_cell(nb.cells[0], 0)
    finally:
        dog.stop()
    assert dog.fired and dog.pid is not None and not _alive(dog.pid)
    assert time.perf_counter() - start < 60


def test_the_course_retries_a_timed_out_notebook_once(tmp_path, monkeypatch, capsys):
    flag = tmp_path / "first-attempt-done"
    src = (
        f"import pathlib, time\np = pathlib.Path({str(flag)!r})\n"
        "if not p.exists():\n    p.touch(); time.sleep(60)"
    )
    nb = _notebook(tmp_path, src, name="00_flaky.ipynb")
    monkeypatch.setattr(course, "NOTEBOOKS", tmp_path)
    results = course.run(tmp_path / "out", cell_timeout=3, progress=False)
    assert [r.notebook for r in results] == ["00_flaky"]
    assert "retrying 00_flaky.ipynb once" in capsys.readouterr().err
    assert nb.exists()


def test_the_course_gives_up_after_one_retry_and_the_cli_exits_non_zero(
    tmp_path, monkeypatch, capsys
):
    _notebook(tmp_path, "import time\ntime.sleep(60)", name="00_stuck.ipynb")
    monkeypatch.setattr(course, "NOTEBOOKS", tmp_path)
    code = course.main(["--out", str(tmp_path / "out"), "--cell-timeout", "2"])
    err = capsys.readouterr().err
    assert code == 1
    # the try and the retry
    assert err.count("00_stuck: code cell 1 of 1 ('import time'): timeout") == 2


def test_static_copy_keeps_a_widgets_fallback_and_drops_its_dead_view():
    nb = nbformat.v4.new_notebook()
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={course.WIDGET_VIEW: view, "text/html": "<b>x</b>", "text/plain": "VBox()"},
        ),
        nbformat.v4.new_output("display_data", data={course.WIDGET_VIEW: view, "text/plain": "W"}),
    ]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {}}
    out = course.static_copy(nb)
    assert "widgets" not in out.metadata
    assert course.WIDGET_VIEW not in out.cells[0].outputs[0]["data"]
    assert course.WIDGET_VIEW in out.cells[0].outputs[1]["data"]  # no fallback: left as it was


def test_a_child_that_left_the_kernels_session_dies_with_the_kernel(tmp_path):
    """kaleido's Chromium starts a session of its own; killing the kernel's process group alone
    would miss it."""
    nb = _notebook(
        tmp_path,
        "import subprocess\np = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "print(p.pid)",
        "x = 1",
    )
    out = tmp_path / "out.ipynb"
    course.execute(nb, out, progress=False)
    pid = int(nbformat.read(out, as_version=4).cells[0].outputs[0]["text"])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)


def test_a_failed_run_in_place_keeps_the_stored_notebook(tmp_path, monkeypatch):
    """`make store` writes over notebooks/: a failing cell must not replace the stored outputs with
    half of them."""
    nb = _notebook(tmp_path, "x = 1", "raise RuntimeError('boom')", name="03_x.ipynb")
    before = nb.read_text()
    monkeypatch.setattr(course, "FAILED", tmp_path / "failed")
    with pytest.raises(course.NotebookRunError) as err:
        course.execute(nb, nb, progress=False)
    assert nb.read_text() == before
    assert (tmp_path / "failed" / "03_x.ipynb").exists()
    assert str(tmp_path / "failed" / "03_x.ipynb") in str(err.value)
