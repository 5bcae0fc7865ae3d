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
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from spheres.core.errors import InputError
from spheres.core.io import write_json_atomic

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
