"""Every tutorial and every solution runs top to bottom, and every claim it asserts holds.

The tutorials (``tutorials/0N_*.py``, jupytext percent format) check themselves: each
quantitative claim in the prose is asserted in the next cell against the exact value, with a
tolerance derived from the sample size. This test converts each file to a notebook (jupytext),
executes it in a fresh kernel (nbclient) and fails on any error or failed assertion. It runs them
with ``SPHERES_TUTORIAL_SIZE=small``: the same code with smaller samples and shorter training, so
the ten files together fit the default suite's budget. The execution itself is
``tutorials/render.py``'s, the one ``make tutorials`` uses; two kernels run at a time. Figures go
to a temporary folder (``SPHERES_TUTORIAL_OUT``), never over the committed thumbnails.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_render", TUTORIALS / "render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)
LESSONS = render.lessons()
SOLUTIONS = render.solutions()
WORKERS = max(1, min(2, os.cpu_count() or 1))
HEAVY_FIRST = ("05_", "04_", "03_")  # started first, so the two kernels finish together


def _kernel_env(monkeypatch: pytest.MonkeyPatch, out: Path) -> None:
    """The environment the kernels inherit."""
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


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory):
    """Execute the selected tutorials, two kernels at a time; map each path to its error (or None).

    Each kernel is a separate process and mostly single-threaded (compilation, scipy), so two at a time
    keep both cores of a 2-core machine busy: the ten files take about half their serial time.
    """
    selected = [item.callspec.params["path"] for item in request.session.items
                if getattr(item, "module", None) is request.module and "path" in getattr(getattr(item, "callspec", None), "params", {})]
    selected.sort(key=lambda p: (p.name[:3] not in HEAVY_FIRST, p.parent.name == "solutions"))
    out = tmp_path_factory.mktemp("tutorials")
    mp = pytest.MonkeyPatch()
    _kernel_env(mp, out)

    def run(path: Path):
        try:
            asyncio.run(render.execute_async(path))  # a fresh event loop per notebook, closed after
        except Exception as err:  # reported by the test of that path
            return err
        return None

    class Results(dict):
        def __missing__(self, path):  # a path not run in advance (under pytest-xdist): run it now
            with pytest.MonkeyPatch.context() as late:
                _kernel_env(late, out)
                self[path] = run(path)
            return self[path]

    results = Results()
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # xdist spreads the tests over workers itself
        try:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                results.update(zip(selected, pool.map(run, selected)))
        finally:
            mp.undo()
    else:
        mp.undo()
    return out, results


# the solutions run with `make test-all` (slow): the lessons' own claims stay in the default suite
@pytest.mark.parametrize("path", LESSONS + [pytest.param(p, marks=pytest.mark.slow) for p in SOLUTIONS],
                         ids=lambda p: p.relative_to(TUTORIALS).as_posix())
def test_tutorial_executes_and_its_claims_hold(path, executed):
    out, results = executed
    err = results[path]
    assert err is None, f"{path.relative_to(ROOT)} failed:\n{err}"
    if path.parent == TUTORIALS:  # each lesson saves the thumbnail of its key figure
        assert (out / f"{path.stem}.png").stat().st_size > 10_000
