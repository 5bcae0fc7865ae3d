"""Resumable experiment cells: finished work is never recomputed or lost.

An experiment is a list of *cells*, each identified by a short string id (for example
``"quad-w1000/N=1000"``). A cell's result is a JSON-serialisable dict, written atomically to
``<root>/cells/<safe id>.json`` the moment the cell finishes. Re-running skips every cell
whose file exists, so an experiment killed at any moment and run again continues where it
stopped; at worst the cell that was running is redone.

>>> import tempfile
>>> store = CellStore(tempfile.mkdtemp())
>>> store.run("a/b", lambda: {"x": 1})
{'x': 1}
>>> store.run("a/b", lambda: {"x": 2})   # finished: loaded, not recomputed
{'x': 1}

:func:`run_step_cells` is the loop every per-checkpoint measurement of a run shares: one cell per
checkpoint step, the joined table rewritten atomically after each.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from spheres.core.errors import InputError
from spheres.core.io import write_csv_atomic, write_json_atomic

_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def _filename(cell_id: str) -> str:
    return _SAFE.sub("__", cell_id).strip("_") + ".json"


class CellStore:
    """A directory of finished cells (JSON files, written atomically)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.dir = self.root / "cells"

    def path(self, cell_id: str) -> Path:
        return self.dir / _filename(cell_id)

    def done(self, cell_id: str) -> bool:
        return self.path(cell_id).is_file()

    def load(self, cell_id: str) -> dict[str, Any]:
        path = self.path(cell_id)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(str(path), f"unreadable cell result ({err}); delete it to recompute") from None

    def save(self, cell_id: str, result: dict[str, Any]) -> None:
        write_json_atomic(self.path(cell_id), {"cell": cell_id, **result} if "cell" not in result else result)

    def run(self, cell_id: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Return the saved result of ``cell_id``, computing and saving it first if needed."""
        if self.done(cell_id):
            result = self.load(cell_id)
        else:
            result = compute()
            self.save(cell_id, result)
        result = dict(result)
        result.pop("cell", None)
        return result


def step_cell_id(step: int) -> str:
    """The cell id of checkpoint ``step``: ``"step=00001000"`` (zero-padded, so files sort by step)."""
    return f"step={int(step):08d}"


def run_step_cells(store: CellStore, steps: Iterable[int], work: Callable[[int], list[dict[str, Any]]],
                   table: str | Path, partial: str | Path | None = None, *, progress: bool = True, desc: str = "",
                   on_step: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """One resumable cell per checkpoint step, the rows of all joined into one CSV table.

    For each step in order, ``work(step)`` (a list of row dicts, one per model) runs unless the cell
    :func:`step_cell_id` of ``store`` is finished; then the rows of every step so far are written
    atomically to ``partial`` (or to ``table`` when ``partial`` is None) and ``on_step(step)`` is
    called (tests use it to interrupt). With ``partial`` given, the file is renamed to ``table`` (an
    atomic replace) only after the last step, so a table under that name is always complete.

    Args:
      store: the run's cells.
      steps: checkpoint steps, in order.
      work: ``step -> rows`` (JSON-serialisable dicts).
      table: the table's final path; partial: its path while steps remain, or None.
      progress: a progress bar over steps (only on a terminal); desc: its label.
      on_step: called with each step after its rows are saved.
    Returns:
      every row, step by step.
    """
    rows: list[dict[str, Any]] = []
    bar = tqdm(list(steps), unit="checkpoint", desc=desc, disable=None if progress else True, dynamic_ncols=True)
    try:
        for step in bar:
            rows.extend(store.run(step_cell_id(step), lambda: {"rows": work(step)})["rows"])
            write_csv_atomic(partial if partial is not None else table, rows)
            if on_step is not None:
                on_step(step)
    finally:
        bar.close()
    if partial is not None:
        os.replace(partial, table)  # atomic: the table is complete
    return rows


def check_settings(path: Path, settings: dict[str, Any], defaults: dict[str, Any] | None = None,
                   flags: dict[str, str] | None = None) -> None:
    """Resume only with the settings a partial result was made with: write ``settings`` to ``path``
    (JSON) the first time; afterwards raise :class:`InputError`, naming the first setting (as its
    command-line flag) whose value differs from the saved one.

    Both ways: a key on either side only counts as its value in ``defaults`` (settings that leave
    out a field at its default still resume what was saved before the field existed, and a saved
    non-default value is never matched by leaving the field out). ``flags`` names a setting's flag
    where it is not ``--`` + the name (``split_exact`` -> ``--no-split-exact``).
    """
    if not path.is_file():
        write_json_atomic(path, settings)
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise InputError(str(path), f"corrupt settings; delete the {path.parent.name}/ directory") from None
    if not isinstance(saved, dict):
        raise InputError(str(path), f"corrupt settings; delete the {path.parent.name}/ directory")
    defaults, flags = defaults or {}, flags or {}
    for k in [*settings, *(k for k in saved if k not in settings)]:
        old, new = saved.get(k, defaults.get(k)), settings.get(k, defaults.get(k))
        if old != new:
            raise InputError(flags.get(k, "--" + k.replace("_", "-")),
                             f"this run was measured with {k} = {old!r}, not {new!r}; use the same settings to "
                             f"resume, or delete {path.parent} to start over")
