"""Cell store: finished cells are loaded, never recomputed; writes are atomic."""

import pytest

from spheres.core.cells import CellStore
from spheres.core.errors import InputError


def test_finished_cell_is_not_recomputed(tmp_path):
    store = CellStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 3.5, "n": 10}

    assert store.run("quad-w1000/N=1000", compute) == {"value": 3.5, "n": 10}
    assert store.run("quad-w1000/N=1000", compute) == {"value": 3.5, "n": 10}
    assert len(calls) == 1
    assert store.done("quad-w1000/N=1000") and not store.done("quad-w1000/N=10")


def test_crash_inside_a_cell_leaves_nothing(tmp_path):
    store = CellStore(tmp_path)

    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.run("x", boom)
    assert not store.done("x")
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_cell_is_reported(tmp_path):
    store = CellStore(tmp_path)
    store.path("y").parent.mkdir(parents=True)
    store.path("y").write_text("{not json")
    with pytest.raises(InputError, match="delete it to recompute"):
        store.load("y")


def test_ids_with_odd_characters_map_to_distinct_files(tmp_path):
    store = CellStore(tmp_path)
    assert store.path("a/b c") != store.path("a/b d")
    assert store.path("a/b").parent == tmp_path / "cells"
