"""Every tutorial and every solution runs top to bottom, and every claim it asserts holds.

The tutorials (``tutorials/0N_*.py``, jupytext percent format) check themselves: each
quantitative claim in the prose is asserted in the next cell against the exact value, with a
tolerance derived from the sample size. This test converts each file to a notebook (jupytext),
executes it in a fresh kernel (nbclient) and fails on any error or failed assertion. It runs them
with ``SPHERES_TUTORIAL_SIZE=small``: the same code with smaller samples and shorter training, so
the ten files together fit the default suite's budget. The execution itself is
``tutorials/render.py``'s, the one ``make tutorials`` uses. Figures go to a temporary folder
(``SPHERES_TUTORIAL_OUT``), never over the committed thumbnails.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_render", TUTORIALS / "render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)
LESSONS = render.lessons()
SOLUTIONS = render.solutions()


def _kernel_env(monkeypatch: pytest.MonkeyPatch, out: Path) -> None:
    monkeypatch.setenv("SPHERES_TUTORIAL_SIZE", "small")
    monkeypatch.setenv("SPHERES_TUTORIAL_OUT", str(out))
    # this checkout's package in the kernel
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    # the kernel is a separate process: it gets one CPU device and the inline backend, as a reader would
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")


def test_five_tutorials_each_with_executed_solutions():
    assert [p.name[:3] for p in LESSONS] == ["01_", "02_", "03_", "04_", "05_"]
    assert [p.name for p in SOLUTIONS] == [p.name for p in LESSONS]
    for path in LESSONS:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ---\n# jupyter:\n"), f"{path.name}: not a jupytext percent file"
        assert "## Exercises" in text, f"{path.name}: no exercises"
        assert text.count("\nassert ") + text.count("    assert ") >= 5, f"{path.name}: too few checked claims"


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=lambda p: p.relative_to(TUTORIALS).as_posix())
def test_tutorial_executes_and_its_claims_hold(path, tmp_path, monkeypatch):
    _kernel_env(monkeypatch, tmp_path)
    nb = render.execute(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.parent == TUTORIALS:  # each lesson saves the thumbnail of its key figure
        assert (tmp_path / f"{path.stem}.png").stat().st_size > 10_000
