"""Runs on disk: layout, exact serialisation, resume == uninterrupted (bitwise), load_run errors."""

import os
import pickle
import shutil
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spheres.nets import rundir, runs
from spheres.nets import train as engine
from spheres.nets.config import TrainConfig, config_from_dict
from spheres.core.errors import InputError

#: a tiny run: 4 members (2 seeds x 2 sizes, one online), 7 chunk boundaries, 4 checkpoints
TINY = {"task": {"dim": 3}, "model": {"arch": "relu", "width": 4, "depth": 1, "batch_norm": True},
        "train": {"steps": 40, "batch_size": 8, "learning_rates": [0.01], "train_sizes": [0, 16],
                  "seeds": [0, 1], "checkpoints": 4, "chunk_steps": 9}}


def tiny(**train):
    data = {k: dict(v) for k, v in TINY.items()}
    data["train"].update(train)
    return config_from_dict(data)


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory (except the lock) by relative path -> bytes."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != rundir.LOCK_FILE}


def results(run_dir: Path) -> dict[str, bytes]:
    """The files that must be identical between an interrupted+resumed and an uninterrupted run."""
    return snapshot(run_dir)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny run, uninterrupted."""
    out = tmp_path_factory.mktemp("ref") / "run"
    runs.run_training(tiny(), out, progress=False)
    return out


# ---------------------------------------------------------------------------- chunking


@given(steps=st.integers(1, 500), chunk=st.integers(1, 60), checkpoints=st.integers(1, 12))
def test_chunk_boundaries_cover_checkpoints_and_bound_chunk_length(steps, chunk, checkpoints):
    train = TrainConfig(steps=steps, chunk_steps=chunk, checkpoints=checkpoints)
    b = runs.chunk_boundaries(train)
    assert b[-1] == steps and b[0] >= 1
    assert list(b) == sorted(set(b))
    assert set(train.checkpoint_steps) <= set(b)
    assert np.all(np.diff(np.concatenate([[0], b])) <= chunk)
    # every boundary is either a checkpoint or a multiple of chunk_steps: nothing depends on resume
    assert all(s in train.checkpoint_steps or s % chunk == 0 for s in b)


# ---------------------------------------------------------------------------- serialisation


class _State(NamedTuple):
    variables: dict
    opt_state: object
    step: jax.Array
    key: jax.Array


def _example_state(seed: int) -> _State:
    k = jax.random.key(seed)
    params = {"dense0": {"kernel": jax.random.normal(k, (3, 4)), "bias": jnp.arange(4.0)}, "w": jnp.float32(0.5)}
    return _State({"params": params, "batch_stats": {}}, optax.adam(1e-3).init(params), jnp.int32(seed),
                  jax.random.split(jax.random.key(seed + 1), 2))


def test_tree_round_trip_is_exact_and_keys_stay_keys():
    state = _example_state(3)
    data = rundir.tree_to_bytes(state)
    back = rundir.tree_from_bytes(_example_state(0), data)
    assert jax.tree.structure(back) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back)):
        if rundir._is_key(a):
            assert rundir._is_key(b) and jax.random.key_impl(a) == jax.random.key_impl(b)
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # a restored key draws the same numbers as the original
    np.testing.assert_array_equal(jax.random.normal(back.key[1], (5,)), jax.random.normal(state.key[1], (5,)))


def test_restore_never_unpickles(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling is forbidden")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(np, "load", refuse)
    state = _example_state(1)
    back = rundir.tree_from_bytes(_example_state(0), rundir.tree_to_bytes(state))
    np.testing.assert_array_equal(back.variables["params"]["dense0"]["kernel"],
                                  state.variables["params"]["dense0"]["kernel"])


def test_restore_keeps_the_target_sharding():
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("ensemble",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("ensemble"))
    n = len(jax.devices())
    target = {"a": jax.device_put(jnp.zeros((n, 3)), sharding),
              "k": jax.device_put(jax.random.split(jax.random.key(0), n), sharding)}
    source = {"a": jnp.arange(3.0 * n).reshape(n, 3), "k": jax.random.split(jax.random.key(5), n)}
    back = rundir.tree_from_bytes(target, rundir.tree_to_bytes(source))
    assert back["a"].sharding == sharding and back["k"].sharding == sharding
    np.testing.assert_array_equal(back["a"], source["a"])


@pytest.mark.parametrize("bad", [
    b"not msgpack at all \xc1\xc1",
    rundir.tree_to_bytes({"other": np.zeros(3)}),
    rundir.tree_to_bytes({"a": np.zeros(4, np.float32), "k": np.zeros((2,), np.uint32)}),  # wrong shape
    rundir.tree_to_bytes({"a": np.zeros(3, np.float64), "k": np.zeros((2,), np.uint32)}),  # wrong dtype
])
def test_restore_rejects_mismatched_bytes(bad):
    target = {"a": jnp.zeros(3, jnp.float32), "k": jax.random.key(0)}
    with pytest.raises(InputError) as info:
        rundir.tree_from_bytes(target, bad, "some/state.msgpack")
    assert info.value.field == "some/state.msgpack"


@given(values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=6),
       lr=st.floats(1e-8, 1.0))
def test_metrics_csv_round_trips_float32_exactly(tmp_path_factory, values, lr):
    rows = [dict(member=i, seed=7, learning_rate=lr, train_size=10**i, step=i + 1, loss=v, accuracy=-v)
            for i, v in enumerate(values)]
    path = tmp_path_factory.mktemp("csv") / "metrics.csv"
    path.write_text(rundir.metrics_csv(rows))
    back = rundir.read_metrics(path)
    assert back == rows
    assert all(np.float32(r["loss"]) == r["loss"] for r in back)


def test_config_difference_names_the_first_differing_field():
    assert rundir.config_difference(tiny(), tiny()) is None
    assert rundir.config_difference(tiny(), tiny(steps=41)) == ("train.steps", 40, 41)
    assert rundir.config_difference(tiny(), tiny(seeds=[0, 2])) == ("train.seeds", [0, 1], [0, 2])
    other = config_from_dict({**TINY, "model": {"arch": "relu", "width": 5, "depth": 1, "batch_norm": True}})
    assert rundir.config_difference(tiny(), other)[0] == "model.width"


# ---------------------------------------------------------------------------- a whole run


def test_layout_and_contents_match_the_engine(reference):
    cfg = tiny()
    files = set(snapshot(reference))
    ckpts = {f"checkpoints/step_{s:08d}.msgpack" for s in cfg.train.checkpoint_steps}
    assert files == {"config.toml", "metrics.csv", "state/latest.msgpack", "state/latest.json"} | ckpts
    run = runs.load_run(reference)
    assert run.config == cfg and run.complete and run.checkpoint_steps == cfg.train.checkpoint_steps
    assert run.members == cfg.train.members
    # tidy table: one row per member x checkpoint, carrying the member's grid values
    assert len(run.metrics) == len(cfg.train.checkpoint_steps) * cfg.train.ensemble_size
    for row in run.metrics:
        m = cfg.train.members[row["member"]]
        assert (row["seed"], row["learning_rate"], row["train_size"]) == (m["seed"], m["learning_rate"],
                                                                          m["train_size"])
        assert 0.0 <= row["accuracy"] <= 1.0 and row["loss"] >= 0.0
    # the saved chunks compute what one engine call per checkpoint segment computes (other cut
    # points, same steps: bitwise equal), and the rows are the engine's evaluation
    trainer, hypers = runs._trainer(cfg), engine.member_hypers(cfg)
    states, done = trainer.ensemble_init(engine.member_keys(cfg), hypers), 0
    for step in cfg.train.checkpoint_steps:
        states, done = trainer.ensemble_advance(states, hypers, np.int32(step - done)), step
        saved, expect = run.load_variables(step), jax.tree.map(rundir.to_host, states.variables)
        assert jax.tree.structure(saved) == jax.tree.structure(expect)
        for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(expect)):
            np.testing.assert_array_equal(a, b)
        metrics = jax.tree.map(rundir.to_host, trainer.ensemble_evaluate(states, hypers))
        rows = sorted((r for r in run.metrics if r["step"] == step), key=lambda r: r["member"])
        np.testing.assert_array_equal(np.asarray([r["loss"] for r in rows], np.float32), metrics["loss"])
        np.testing.assert_array_equal(np.asarray([r["accuracy"] for r in rows], np.float32), metrics["accuracy"])


@pytest.mark.parametrize("stop_after", [1, 2, 5])  # 1, 2: checkpoint boundaries; 5: a plain chunk
def test_interrupted_in_process_then_resumed_is_bitwise_identical(reference, tmp_path, stop_after):
    out = tmp_path / "run"
    seen = []

    def interrupt(step):
        seen.append(step)
        if len(seen) == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.run_training(tiny(), out, progress=False, on_chunk=interrupt)
    partial = runs.load_run(out)
    assert partial.step == seen[-1] < tiny().train.steps and not partial.complete
    assert partial.checkpoint_steps == tuple(s for s in tiny().train.checkpoint_steps if s <= seen[-1])
    resumed = []
    runs.run_training(tiny(), out, progress=False, on_chunk=resumed.append)
    assert resumed[0] == runs.chunk_boundaries(tiny().train)[stop_after]  # resumed, not restarted
    assert results(out) == results(reference)


def test_uncommitted_files_after_a_crash_are_ignored_then_rewritten(reference, tmp_path):
    """Killed after writing a checkpoint and metrics but before the state: load_run ignores
    them, a resume recomputes them identically; stray temporaries are removed."""
    out = tmp_path / "run"
    stop = [2]

    def interrupt(step):
        stop[0] -= 1
        if stop[0] == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.run_training(tiny(), out, progress=False, on_chunk=interrupt)
    committed = runs.load_run(out).step
    later = [s for s in tiny().train.checkpoint_steps if s > committed][0]
    shutil.copy(rundir.checkpoint_path(reference, later), rundir.checkpoint_path(out, later))
    shutil.copy(reference / rundir.METRICS_FILE, out / rundir.METRICS_FILE)  # rows for every step
    stray = out / rundir.STATE_DIR / ".latest.msgpack.abc123.tmp"
    stray.write_bytes(b"half a file")
    run = runs.load_run(out)
    assert later not in run.checkpoint_steps and all(r["step"] <= committed for r in run.metrics)
    with pytest.raises(InputError, match="no checkpoint at step"):
        run.load_variables(later)
    runs.run_training(tiny(), out, progress=False)
    assert not stray.exists()
    assert results(out) == results(reference)


def test_finished_run_is_a_no_op(reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = {p: os.stat(out / p).st_mtime_ns for p in snapshot(out)}
    monkeypatch.setattr(runs, "_trainer", lambda cfg: pytest.fail("a finished run must not train"))
    assert runs.run_training(tiny(), out, progress=False) == out
    assert {p: os.stat(out / p).st_mtime_ns for p in snapshot(out)} == before


def test_resume_with_another_config_names_the_field_and_writes_nothing(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = snapshot(out)
    names = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(InputError) as info:
        runs.run_training(tiny(learning_rates=[0.02]), out, progress=False)
    assert info.value.field == "train.learning_rates" and "[0.01]" in str(info.value)
    assert snapshot(out) == before and sorted(p.name for p in out.rglob("*")) == names


def test_out_dir_must_be_a_run_or_empty(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        runs.check_run_dir(tiny(), tmp_path / "file")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no run"):
        runs.check_run_dir(tiny(), tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert runs.check_run_dir(tiny(), tmp_path / "empty") == 0
    assert runs.check_run_dir(tiny(), tmp_path / "missing") == 0
    assert not (tmp_path / "missing").exists()


def test_two_processes_never_train_into_one_directory(tmp_path):
    out = tmp_path / "run"
    with rundir.DirLock(out):
        with pytest.raises(InputError, match="another process"):
            runs.run_training(tiny(), out, progress=False)
    assert not (out / rundir.CONFIG_FILE).exists()


# ---------------------------------------------------------------------------- load_run errors


def test_load_run_errors_name_the_path(reference, tmp_path):
    with pytest.raises(InputError) as info:
        runs.load_run(tmp_path / "missing")
    assert info.value.field == str(tmp_path / "missing")
    with pytest.raises(InputError, match="config.toml missing"):
        runs.load_run(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(reference, bad)
    run = runs.load_run(bad)
    assert 2 not in run.checkpoint_steps
    with pytest.raises(InputError, match="no checkpoint at step 2"):
        run.load_variables(2)
    step = run.checkpoint_steps[-1]
    rundir.checkpoint_path(bad, step).write_bytes(b"\x00garbage")
    with pytest.raises(InputError) as info:
        run.load_variables(step)
    assert info.value.field == str(rundir.checkpoint_path(bad, step))
    rundir.checkpoint_path(bad, step).write_bytes(rundir.tree_to_bytes({"params": {"w": np.zeros(3)}}))
    with pytest.raises(InputError, match="leading member axis"):
        run.load_variables(step)
    (bad / rundir.METRICS_FILE).write_text("member,seed\n1,2\n")
    with pytest.raises(InputError, match="not a metrics table"):
        runs.load_run(bad)
    lines = (reference / rundir.METRICS_FILE).read_text().splitlines()
    (bad / rundir.METRICS_FILE).write_text("\n".join(lines[:-1]) + "\n")  # a row lost
    with pytest.raises(InputError, match="expected 16"):
        runs.load_run(bad)
    (bad / rundir.CONFIG_FILE).write_text("[task\n")
    with pytest.raises(InputError) as info:
        runs.load_run(bad)
    assert info.value.field == str(bad / rundir.CONFIG_FILE)


def test_corrupt_saved_state_is_an_input_error(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    # pretend the run stopped earlier, then break its state file
    (out / rundir.STATE_DIR / rundir.STATE_JSON).write_text('{"step": 9, "steps": 40, "complete": false}')
    (out / rundir.STATE_DIR / rundir.STATE_FILE).write_bytes(rundir.tree_to_bytes({"step": 9, "state": {}}))
    with pytest.raises(InputError) as info:
        runs.run_training(tiny(), out, progress=False)
    assert info.value.field == str(out / rundir.STATE_DIR / rundir.STATE_FILE)


# ---------------------------------------------------------------------------- shipped configs

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"


@pytest.mark.parametrize("name, model", [("paper_quad", "quad-w1000"), ("paper_relu2", "relu-w1000-d2"),
                                         ("paper_relu8", "relu-w2000-d8")])
def test_paper_configs_are_the_paper_recipe(name, model):
    from spheres.nets.config import PAPER_MODELS, load_config

    cfg = load_config(CONFIGS / f"{name}.toml")
    assert cfg.model == PAPER_MODELS[model]
    assert (cfg.task.dim, cfg.task.outer_radius) == (500, 1.3)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.learning_rates) == (1_000_000, 50, (1e-4,))
    sizes = sorted(n for n in cfg.train.train_sizes if n > 0)
    assert 0 in cfg.train.train_sizes and len(sizes) == 5  # online + 5 training-set sizes
    ratios = np.diff(np.log10(sizes))
    np.testing.assert_allclose(ratios, ratios[0], atol=1e-3)  # log-spaced (rounded to integers)
    assert cfg.train.steps % cfg.train.chunk_steps == 0


def test_quick_config_is_small_and_covers_the_grid():
    from spheres.nets.config import load_config

    cfg = load_config(CONFIGS / "quick.toml")
    assert 10 <= cfg.task.dim <= 50 and cfg.train.steps <= 5000
    assert 0 in cfg.train.train_sizes and any(n > 0 for n in cfg.train.train_sizes)
    assert len(cfg.train.seeds) >= 2 and len(cfg.train.learning_rates) >= 2
