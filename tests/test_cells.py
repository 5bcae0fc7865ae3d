"""Cell store: finished cells are loaded, never recomputed; writes are atomic."""

import pytest

from spheres.core.cells import CellStore, check_settings
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


def test_step_cells_resume_and_publish_the_table_only_when_complete(tmp_path):
    from spheres.core.cells import run_step_cells
    from spheres.core.io import read_csv

    store, table, partial = CellStore(tmp_path / "m"), tmp_path / "t.csv", tmp_path / "t.partial.csv"
    calls = []

    def work(step):
        calls.append(step)
        return [{"step": step, "member": i, "value": step * 10 + i} for i in range(2)]

    class Stop(Exception):
        pass

    def stop_after_first(step):
        raise Stop

    with pytest.raises(Stop):
        run_step_cells(store, [1, 5, 9], work, table, partial, progress=False, on_step=stop_after_first)
    assert not table.exists() and [r["step"] for r in read_csv(partial)] == [1, 1]   # partial under its own name
    rows = run_step_cells(store, [1, 5, 9], work, table, partial, progress=False)
    assert calls == [1, 5, 9]   # step 1 was loaded from its cell, not recomputed
    assert not partial.exists() and read_csv(table) == rows and [r["value"] for r in rows] == [10, 11, 50, 51, 90, 91]
    assert store.done("step=00000005")
    # without a partial name the table is rewritten under its final name after every step
    with pytest.raises(Stop):
        run_step_cells(CellStore(tmp_path / "n"), [1, 5], work, tmp_path / "u.csv", progress=False,
                       on_step=stop_after_first)
    assert len(read_csv(tmp_path / "u.csv")) == 2


def test_settings_are_checked_both_ways_with_defaults_for_later_fields(tmp_path):
    import json

    from spheres.measure.config import MeasureConfig

    def check(path, cfg):
        check_settings(path, cfg.settings(), cfg.LATER_FIELDS, cfg.FLAGS)

    # saved before split_exact existed: the default resumes, a non-default value is refused
    old = tmp_path / "old.json"
    legacy = MeasureConfig().settings()
    old.write_text(json.dumps(legacy))
    check(old, MeasureConfig())
    with pytest.raises(InputError) as info:
        check(old, MeasureConfig(split_exact=False))
    assert info.value.field == "--no-split-exact" and "split_exact = True, not False" in str(info.value)
    # saved with a non-default value: leaving the field out (the default) is refused, not ignored
    new = tmp_path / "new.json"
    check(new, MeasureConfig(split_exact=False, max_other_error=0.1))
    check(new, MeasureConfig(split_exact=False, max_other_error=0.1))
    for cfg, field in ((MeasureConfig(max_other_error=0.1), "--no-split-exact"),
                       (MeasureConfig(split_exact=False), "--max-other-error")):
        with pytest.raises(InputError) as info:
            check(new, cfg)
        assert info.value.field == field
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(InputError, match="corrupt settings"):
        check(tmp_path / "bad.json", MeasureConfig())
