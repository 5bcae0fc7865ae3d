"""Execute the tutorials and their solutions, and render them to HTML (``make tutorials``).

    python tutorials/render.py --out build/tutorials            # full size; refreshes tutorials/thumbnails/
    python tutorials/render.py --out build/tutorials --small    # SPHERES_TUTORIAL_SIZE=small

Each ``tutorials/0N_*.py`` and ``tutorials/solutions/0N_*.py`` (jupytext percent format) is converted to a
notebook, executed top to bottom in a fresh kernel whose working directory is the file's folder, and
written as an executed ``.ipynb`` and a standalone ``.html`` under ``--out`` (solutions under
``--out/solutions``). A failed cell (an error or a failed check) stops the run with exit status 1. The
lessons save the thumbnails of their key figures into ``tutorials/thumbnails/`` (or into
``$SPHERES_TUTORIAL_OUT``). ``tests/test_tutorials.py`` executes the files with :func:`execute`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TIMEOUT_S = 600  # per cell


def lessons() -> list[Path]:
    """The tutorials, in order."""
    return sorted(HERE.glob("0[1-9]_*.py"))


def solutions() -> list[Path]:
    """The solutions, one per tutorial, same names."""
    return sorted((HERE / "solutions").glob("0[1-9]_*.py"))


def _client(path: Path) -> NotebookClient:
    path = Path(path).resolve()
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    return NotebookClient(jupytext.read(path), timeout=TIMEOUT_S, kernel_name="python3",
                          resources={"metadata": {"path": str(path.parent)}})


async def execute_async(path: Path) -> nbformat.NotebookNode:
    """:func:`execute` as a coroutine (to run several notebooks at once, one event loop each)."""
    client = _client(path)
    await client.async_execute()
    return client.nb


def execute(path: Path) -> nbformat.NotebookNode:
    """Convert the jupytext file ``path`` to a notebook and run it in a fresh ``python3`` kernel.

    The kernel inherits this process's environment (``SPHERES_TUTORIAL_SIZE``, ``SPHERES_TUTORIAL_OUT``)
    with this checkout's root first on ``PYTHONPATH``, and runs in the file's folder.

    Raises:
      nbclient.exceptions.CellExecutionError: a cell raised (including a failed ``assert``).
    """
    client = _client(path)
    client.execute()
    return client.nb


def render(path: Path, out_dir: Path) -> tuple[Path, float]:
    """Execute ``path`` and write ``out_dir/<stem>.ipynb`` and ``.html``; return the HTML path and seconds."""
    from nbconvert import HTMLExporter

    start = time.perf_counter()
    nb = execute(path)
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / f"{path.stem}.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nb)
    html = out_dir / f"{path.stem}.html"
    html.write_text(body, encoding="utf-8")
    return html, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "tutorials"), help="output folder (default build/tutorials)")
    parser.add_argument("--small", action="store_true", help="run with SPHERES_TUTORIAL_SIZE=small")
    args = parser.parse_args(argv)
    if args.small:
        os.environ["SPHERES_TUTORIAL_SIZE"] = "small"
    out = Path(args.out)
    total = 0.0
    for path, folder in [(p, out) for p in lessons()] + [(p, out / "solutions") for p in solutions()]:
        try:
            html, seconds = render(path, folder)
        except CellExecutionError as err:
            print(f"FAILED {path.relative_to(ROOT)}:\n{err}", file=sys.stderr)
            return 1
        total += seconds
        print(f"{seconds:6.1f} s  {path.relative_to(ROOT)} -> {html}")
    print(f"{total:6.1f} s  in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
