"""Run the course headless: every notebook under notebooks/, in order, and never wait forever.

    python -m ntf_core.course [--out build/course] [-p NAME VALUE ...] [--only 00_the_data]
                              [--cell-timeout 600] [--no-retry]

Executed copies go to ``--out``; the notebooks in the repository are not touched (unless ``--out
notebooks``, which is how the stored outputs are refreshed). ``-p`` overrides a parameter in every
notebook that has it (papermill's injection: a cell tagged ``injected-parameters`` after the one
tagged ``parameters``).

How a run is kept from hanging (docs/RELIABILITY.md tells the story of the notebook-02 hang):

- every cell has a time limit (``--cell-timeout``; nbclient stops waiting for the kernel's reply
  after it);
- a watchdog thread kills the kernel if a cell outlives that limit by a grace period anyway (a
  client stuck outside nbclient's own timeout), and nbclient notices a dead kernel within a second;
- the kernel talks over local IPC sockets, not TCP;
- a failure names the notebook, the cell (its number and first line) and what happened, the partial
  executed copy is written, the process exits non-zero, and the course runner retries a notebook
  that timed out or whose kernel died once (a cell that raised is not retried: it would raise
  again).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 600  # seconds; the slowest default cell takes about 60 s on 2 CPU cores
# seconds past the cell limit before the watchdog kills the kernel itself
WATCHDOG_GRACE = 60
START_TIMEOUT = 120  # seconds for the kernel to answer its first message
FAILED = NOTEBOOKS.parent / "build" / "failed"  # where a failed `make store` puts its partial copy


def notebooks(only=None) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not only or p.stem in only or p.stem[:2] in only]


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class NotebookRunError(RuntimeError):
    """A notebook did not run to its end; ``kind`` is 'error' (a cell raised), 'timeout' (a cell
    outlived its limit), 'hung' (the watchdog had to kill the kernel) or 'kernel died'."""

    def __init__(
        self, notebook: str, kind: str, cell: int | None, n_cells: int, first_line: str, detail: str
    ):
        self.notebook, self.kind, self.cell, self.n_cells = notebook, kind, cell, n_cells
        self.first_line, self.detail = first_line, detail
        super().__init__(notebook, kind, cell)

    # derived, so a detail added later (where the partial copy went) shows too
    def __str__(self) -> str:
        where = (
            f"code cell {self.cell + 1} of {self.n_cells} ({self.first_line!r})"
            if self.cell is not None
            else "kernel start"
        )
        return f"{self.notebook}: {where}: {self.kind}. {self.detail}".rstrip()

    @property
    def retryable(self) -> bool:
        return self.kind != "error"


@dataclass
class RunResult:
    notebook: str
    seconds: float
    cells: int
    cell_seconds: list[float] = field(default_factory=list)


def _first_line(source: str) -> str:
    lines = [
        ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("# NBVAL")
    ]
    return (lines[0].strip() if lines else "")[:70]


def kernel_stacks(pid: int | None, timeout: float = 20) -> str:
    """The Python stacks of every thread of process ``pid`` (py-spy, when installed); '' when
    unavailable."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if pid is None or not Path(exe).exists():
        return ""
    try:
        done = subprocess.run(
            [exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=timeout
        )
        lines = (done.stdout or done.stderr).strip().splitlines()
        return "\n".join(
            lines[:80] + ([f"... ({len(lines) - 80} more lines)"] if len(lines) > 80 else [])
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"(py-spy failed: {err})"


def _kernel_pid(km) -> int | None:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    return getattr(process, "pid", None)


class Watchdog(threading.Thread):
    """Kills the kernel when one cell runs longer than ``limit`` seconds (None: never). Arm it per
    cell.

    It also remembers the kernel's descendants after every cell (``track``): kaleido's Chromium
    starts a session of its own, so killing the kernel's process group would not reach it."""

    def __init__(self, pid: int | None, limit: float | None):
        super().__init__(daemon=True)
        self.pid, self.limit = pid, limit
        self.deadline: float | None = None
        self.fired = False
        self.stacks = ""
        self.family: set[tuple[int, float]] = set()
        self._stop = threading.Event()

    def arm(self, limit: float | None = None):
        limit = self.limit if limit is None else limit
        self.deadline = None if limit is None else time.monotonic() + limit

    def disarm(self):
        self.deadline = None

    def stop(self):
        self._stop.set()

    def track(self):
        self.family |= descendants(self.pid)

    def run(self):
        while not self._stop.wait(1.0):
            deadline = self.deadline  # read once: disarm() may clear it meanwhile
            if deadline is not None and time.monotonic() > deadline:
                self.fired = True
                self.stacks = kernel_stacks(self.pid)
                self.track()
                kill_kernel(self.pid, self.family)
                return


def execute(
    nb_path: Path,
    out_path: Path | None = None,
    parameters: dict | None = None,
    *,
    cell_timeout: float | None = CELL_TIMEOUT,
    kernel: str = "python3",
    progress: bool = True,
    cwd: Path | None = None,
) -> RunResult:
    """Run one notebook top to bottom in a fresh kernel and write the executed copy to ``out_path``.

    Raises ``NotebookRunError`` (after writing the partial copy) when a cell raises, outlives
    ``cell_timeout`` seconds (None or 0: no limit), or the kernel dies."""
    from tqdm.auto import tqdm

    nb_path = Path(nb_path)
    nb, code = _load(nb_path, parameters, kernel)
    limit = cell_timeout or None
    sockets = tempfile.mkdtemp(prefix="ntf-kernel-")
    client = _client(nb, limit, kernel, sockets, cwd or nb_path.parent)
    watchdog = Watchdog(None, None if limit is None else limit + WATCHDOG_GRACE)
    result = RunResult(nb_path.stem, 0.0, len(code))
    start = time.perf_counter()
    bar = tqdm(
        total=len(code),
        desc=nb_path.stem,
        unit="cell",
        disable=not progress,
        leave=True,
        bar_format="{desc}: {n_fmt}/{total_fmt} cells [{elapsed}<{remaining}]{postfix}",
    )
    failure: NotebookRunError | None = None
    current: int | None = None
    try:
        client.reset_execution_trackers()
        with client.setup_kernel():
            watchdog.pid = _kernel_pid(client.km)
            watchdog.start()
            watchdog.arm(START_TIMEOUT + WATCHDOG_GRACE)  # the first reply, too, may never come
            try:
                info = client.wait_for_reply(client.kc.kernel_info())
            # nbclient asserts on a slow kernel_info reply; never let that escape
            except Exception as err:
                raise TimeoutError(
                    f"the kernel did not answer its first message: {type(err).__name__} {err}"
                ) from err
            finally:
                watchdog.disarm()
            if info:
                nb.metadata["language_info"] = info["content"]["language_info"]
            for k, index in enumerate(code):
                current = k
                cell = nb.cells[index]
                t0 = time.perf_counter()
                watchdog.arm()
                try:
                    problem = _run_cell(client, cell, index, watchdog, limit)
                finally:
                    watchdog.disarm()
                    watchdog.track()
                if problem:
                    kind, detail = problem
                    failure = _failure(nb_path, kind, k, len(code), cell, detail)
                result.cell_seconds.append(time.perf_counter() - t0)
                if failure:
                    break
                bar.update(1)
    except (RuntimeError, TimeoutError) as err:  # the kernel never started, or died between cells
        if failure is None:
            kind = "hung" if watchdog.fired else "kernel died"
            failure = NotebookRunError(nb_path.stem, kind, current, len(code), "", str(err))
    finally:
        watchdog.stop()
        bar.close()
        # nbclient shut the kernel down; this takes stragglers too
        kill_kernel(watchdog.pid, watchdog.family)
        shutil.rmtree(sockets, ignore_errors=True)
        result.seconds = time.perf_counter() - start
        if out_path is not None:
            written = _write_copy(nb, nb_path, Path(out_path), failed=failure is not None)
            if failure:
                failure.detail += f"\nThe partial executed copy: {written}"
    if failure:
        raise failure
    return result


def _load(nb_path: Path, parameters: dict | None, kernel: str):
    """The notebook, parameterised by papermill when ``parameters`` are given, with every stored
    output cleared (a partial copy must not show outputs of cells that never ran); and its code
    cells' indices."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    if parameters:
        from papermill.parameterize import parameterize_notebook

        nb.metadata.setdefault("papermill", {})
        for cell in nb.cells:  # papermill reads every cell's tags
            cell.metadata.setdefault("tags", [])
        nb = parameterize_notebook(nb, parameters, kernel_name=kernel)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for index in code:
        nb.cells[index].outputs, nb.cells[index].execution_count = [], None
    return nb, code


def _client(nb, limit: float | None, kernel: str, sockets: str, cwd: Path):
    """nbclient's own (async) kernel client: a blocking one would let an iopub wait starve the cell
    timeout. Unix sockets instead of TCP: nothing listens on a port, and ipykernel has no
    "unencrypted TCP" to warn about."""
    from nbclient import NotebookClient
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(sockets, "k")
    return NotebookClient(
        nb,
        config=config,
        timeout=limit,
        startup_timeout=START_TIMEOUT,
        kernel_name=kernel,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd)}},
    )


def _run_cell(client, cell, index: int, watchdog: Watchdog, limit: float | None):
    """Execute one cell; None when it succeeded, else (kind of failure, detail)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    try:
        client.execute_cell(cell, index)
    except CellExecutionError as err:
        return "error", f"{err.ename}: {err.evalue}"[:500]
    except CellTimeoutError:
        stacks = kernel_stacks(watchdog.pid)
        return "timeout", f"No reply within {limit:.0f} s." + _stacks_note(stacks)
    except DeadKernelError:
        if not watchdog.fired:
            return "kernel died", "The kernel process exited."
        detail = f"The kernel was killed {WATCHDOG_GRACE} s after the {limit:.0f} s cell limit."
        return "hung", detail + _stacks_note(watchdog.stacks)
    return None


def _write_copy(nb, nb_path: Path, out_path: Path, failed: bool) -> Path:
    """Write the executed (or partial) copy atomically: a reader never sees half a notebook. A
    failed `make store` (the copy would replace the stored notebook) writes to FAILED instead."""
    import nbformat

    if failed and out_path.resolve() == nb_path.resolve():
        out_path = FAILED / out_path.name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp{os.getpid()}")
    nbformat.write(static_copy(nb), str(tmp))
    os.replace(tmp, out_path)
    return out_path


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_TYPES = ("text/html", "image/png", "image/svg+xml", "text/markdown")


def static_copy(nb):
    """An executed notebook as stored and exported: a widget view is dead without its kernel, so
    where an output also carries a static form (``viz.WithStaticCopy``) only that is kept; no widget
    state is saved."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data and any(t in data for t in STATIC_TYPES):
                del data[WIDGET_VIEW]
    return nb


def descendants(pid: int | None) -> set[tuple[int, float]]:
    """(pid, start time) of every live descendant of ``pid``; the start time tells a reused pid
    apart."""
    if pid is None:
        return set()
    import psutil

    try:
        return {(p.pid, p.create_time()) for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


def kill_kernel(pid: int | None, family: set[tuple[int, float]] = frozenset()) -> None:
    """SIGKILL the kernel's process group (jupyter_client starts each kernel in a session of its
    own: the kernel and whatever it forked, such as DataLoader workers) and every descendant seen
    earlier that left the group (kaleido's Chromium)."""
    import psutil

    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for child, started in family:
        try:
            proc = psutil.Process(child)
            if proc.create_time() == started:
                proc.kill()
        except psutil.Error:
            pass


def fill_placeholders(value, tmp):
    """``{tmp}`` in (nested) notebook parameters -> the run's temporary folder
    (tests/notebook_ci_params.json)."""
    if isinstance(value, dict):
        return {k: fill_placeholders(v, tmp) for k, v in value.items()}
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


def _failure(nb_path, kind, k, n, cell, detail) -> NotebookRunError:
    return NotebookRunError(nb_path.stem, kind, k, n, _first_line(cell.source), detail)


def _stacks_note(stacks: str) -> str:
    return f"\nKernel stacks (py-spy):\n{stacks}" if stacks else ""


def run(
    out: Path,
    parameters: dict | None = None,
    only=None,
    kernel: str = "python3",
    cell_timeout: float | None = CELL_TIMEOUT,
    retry: bool = True,
    progress: bool = True,
) -> list[RunResult]:
    """Every notebook (or those in ``only``) in order; a notebook that timed out or lost its kernel
    is run once more. Raises the first ``NotebookRunError`` that a retry did not cure."""
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks(only):
        for attempt in (1, 2):
            try:
                done.append(
                    execute(
                        nb,
                        out / nb.name,
                        parameters,
                        cell_timeout=cell_timeout,
                        kernel=kernel,
                        progress=progress,
                    )
                )
                break
            except NotebookRunError as err:
                if attempt == 2 or not retry or not err.retryable:
                    raise
                print(f"{err}\nretrying {nb.name} once ...", file=sys.stderr, flush=True)
    return done


def summary(results: list[RunResult]) -> str:
    lines = [f"{'notebook':<22} {'cells':>5} {'seconds':>8}"]
    lines += [f"{r.notebook:<22} {r.cells:>5} {r.seconds:>8.1f}" for r in results]
    lines.append(
        f"{'total':<22} {sum(r.cells for r in results):>5} {sum(r.seconds for r in results):>8.1f}"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ntf_core.course",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=Path("build/course"))
    ap.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE")
    )
    ap.add_argument(
        "--only", nargs="+", default=None, help="notebook stems or their two-digit numbers"
    )
    ap.add_argument(
        "--cell-timeout",
        type=float,
        default=CELL_TIMEOUT,
        help=(
            f"seconds one cell may take (default {CELL_TIMEOUT}; "
            "0: no limit, for paper-scale reruns)"
        ),
    )
    ap.add_argument(
        "--no-retry", action="store_true", help="do not rerun a notebook that timed out"
    )
    args = ap.parse_args(argv)
    if not notebooks(args.only):
        print(f"no notebooks matched in {NOTEBOOKS}", file=sys.stderr)
        return 2
    try:
        results = run(
            args.out,
            {k: _value(v) for k, v in args.parameter},
            args.only,
            cell_timeout=args.cell_timeout,
            retry=not args.no_retry,
        )
    except NotebookRunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
