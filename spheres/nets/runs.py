"""Runs on disk: drive an ensemble's training chunk by chunk, save everything, resume after a crash.

A *run directory* holds one ensemble (``cfg.train.members``, in vmapped-axis order) trained by
the engine of :mod:`spheres.nets.train`::

    DIR/config.toml                       resolved config (written first; identifies the run)
    DIR/metrics.csv                       one row per member x checkpoint:
                                          member, seed, learning_rate, train_size, step, loss, accuracy
    DIR/checkpoints/step_00001000.msgpack the ensemble's model variables at that step
                                          (every leaf has a leading member axis)
    DIR/state/latest.msgpack              the full ensemble train state after the last saved chunk
    DIR/state/latest.json                 {"step": ..., "steps": ..., "complete": ...} (human-readable)

Chunks. Training advances ``chunk_steps`` steps per compiled call, cut at every checkpoint step,
so the chunk boundaries are ``{checkpoint steps} | {k * chunk_steps}`` (:func:`chunk_boundaries`).
The boundaries depend only on the config, never on where a run was interrupted, and the state
saved at a boundary is bit-for-bit the in-memory state; so a resumed run replays exactly the
calls an uninterrupted run makes and ends with identical bits.

Crash safety. Every file is written atomically (temporary file + fsync + rename,
:mod:`spheres.core.io`). After a chunk ending at a checkpoint step the order is: checkpoint file,
metrics.csv, state file, state JSON. The state file is the commit point: whatever was written
after the last committed state is recomputed (deterministically, so identically) on resume.

Format. Arrays are stored with ``flax.serialization`` msgpack: shape, dtype name and raw bytes,
read back with ``np.frombuffer``. Nothing read from disk is unpickled or evaluated. Typed PRNG
keys (in the train state) are stored as their raw ``jax.random.key_data`` and rewrapped with
``jax.random.wrap_key_data`` and the implementation of the freshly initialised state.

Several hosts (``jax.distributed``): every process runs :func:`run_training` with the same
arguments on a run directory in a shared file system; arrays that are not fully addressable are
gathered with ``multihost_utils.process_allgather`` (on every process: it is collective) and only
process 0 writes files and holds the directory lock. (Not tested here: one host only.)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import functools
import io
import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from spheres.nets.config import ExperimentConfig, TrainConfig, config_from_dict, dump_config
from spheres.core.errors import InputError
from spheres.core.io import write_bytes_atomic, write_json_atomic, write_text_atomic

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
STATE_DIR = "state"
STATE_FILE = "latest.msgpack"
STATE_JSON = "latest.json"
LOCK_FILE = ".lock"

#: columns of metrics.csv, in order
METRIC_COLUMNS = ("member", "seed", "learning_rate", "train_size", "step", "loss", "accuracy")
_INT_COLUMNS = ("member", "seed", "train_size", "step")
_FLOAT_COLUMNS = ("learning_rate", "loss", "accuracy")

#: chunk callback: called with the step just saved (tests use it to interrupt a run)
ChunkCallback = Callable[[int], None]


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``run_dir/checkpoints/step_XXXXXXXX.msgpack`` (step zero-padded to 8 digits)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.msgpack"


def chunk_boundaries(train: TrainConfig) -> tuple[int, ...]:
    """Steps at which training stops to save: multiples of ``chunk_steps`` and every checkpoint step.

    Sorted, distinct, ending at ``train.steps``. Consecutive differences are at most ``chunk_steps``.

    >>> chunk_boundaries(TrainConfig(steps=25, chunk_steps=10, checkpoints=3))
    (1, 5, 10, 20, 25)
    """
    regular = range(train.chunk_steps, train.steps, train.chunk_steps)
    return tuple(sorted(set(regular) | set(train.checkpoint_steps)))


# ---------------------------------------------------------------------------- serialization


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_host(x: Any) -> Any:
    """An array leaf as a numpy array (typed keys as their raw uint32 key data)."""
    if _is_key(x):
        x = jax.random.key_data(x)
    if isinstance(x, jax.Array):
        if not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            x = multihost_utils.process_allgather(x, tiled=True)
        return np.asarray(x)
    return x


def tree_to_bytes(tree: Any) -> bytes:
    """Serialise a pytree of arrays (dicts, lists, NamedTuples; typed PRNG keys allowed) to msgpack bytes."""
    host = jax.tree.map(_to_host, tree)
    return serialization.msgpack_serialize(serialization.to_state_dict(host))


def _restore_bytes(data: bytes, path: Path) -> Any:
    try:
        return serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several unrelated types on garbage
        raise InputError(str(path), f"corrupt msgpack file ({type(err).__name__}: {err}); delete the run "
                         "directory or choose another") from None


def _spec(x: Any) -> tuple:
    """(shape, dtype) of an array leaf; (type name,) of a Python scalar."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return tuple(x.shape), np.dtype(x.dtype)
    return (type(x).__name__,)


def tree_from_bytes(target: Any, data: bytes, path: str | os.PathLike = "<bytes>") -> Any:
    """Inverse of :func:`tree_to_bytes`, structured like ``target`` (a pytree of the same kind).

    Every restored leaf must have the shape and dtype of the corresponding ``target`` leaf;
    typed keys are rewrapped with the target key's implementation; leaves that are
    ``jax.Array`` in ``target`` are placed with the target's sharding.

    Raises:
      InputError naming ``path`` if the bytes are not msgpack or do not match ``target``.
    """
    path = Path(path)
    raw_target = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, target)
    state_dict = _restore_bytes(data, path)
    try:
        raw = serialization.from_state_dict(raw_target, state_dict)
        want, treedef = jax.tree.flatten(raw_target)
        got = treedef.flatten_up_to(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(str(path), f"does not match this run's state layout: {err}") from None
    for i, (w, g) in enumerate(zip(want, got)):
        if _spec(g) != _spec(w):
            raise InputError(str(path), f"does not match this run's state layout: leaf {i} is {_spec(g)}, "
                             f"expected {_spec(w)}")
    restored = []
    for leaf, t in zip(got, jax.tree.leaves(target)):
        if _is_key(t):
            leaf = jax.random.wrap_key_data(np.asarray(leaf), impl=jax.random.key_impl(t))
            restored.append(jax.device_put(leaf, t.sharding))
        elif isinstance(t, jax.Array):
            restored.append(jax.device_put(np.asarray(leaf), t.sharding))
        elif isinstance(t, (np.ndarray, np.generic)):
            restored.append(np.asarray(leaf, dtype=t.dtype))
        else:
            restored.append(leaf)  # a Python scalar
    return treedef.unflatten(restored)


# ---------------------------------------------------------------------------- metrics table


def _format(col: str, value: Any) -> str:
    if col in _INT_COLUMNS:
        return str(int(value))
    if col == "learning_rate":
        return repr(float(value))
    return str(np.float32(value))  # shortest string that round-trips the float32 value


def _parse(col: str, text: str) -> int | float:
    if col in _INT_COLUMNS:
        return int(text)
    if col == "learning_rate":
        return float(text)
    return float(np.float32(text))  # the float32 value exactly, as written by _format


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """The tidy metrics table as CSV text (header :data:`METRIC_COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in rows:
        writer.writerow([_format(c, row[c]) for c in METRIC_COLUMNS])
    return buf.getvalue()


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Parse metrics.csv into typed rows: ints for member/seed/train_size/step, floats otherwise
    (loss and accuracy are float32 values, restored exactly).

    Raises:
      InputError naming the path if it is unreadable or not a metrics table.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(str(path), f"cannot read metrics table: {getattr(err, 'strerror', None) or err}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != METRIC_COLUMNS:
        raise InputError(str(path), f"not a metrics table: header must be {','.join(METRIC_COLUMNS)}")
    rows = []
    for lineno, record in enumerate(reader, start=2):
        try:
            if len(record) != len(METRIC_COLUMNS):
                raise ValueError(f"{len(record)} fields")
            row = {c: _parse(c, v) for c, v in zip(METRIC_COLUMNS, record)}
        except ValueError as err:
            raise InputError(str(path), f"corrupt metrics table at line {lineno}: {err}") from None
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- run directory checks


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_difference(saved: ExperimentConfig, cfg: ExperimentConfig) -> tuple[str, Any, Any] | None:
    """First field (``"train.steps"``) where two configs differ, with (saved value, new value); None if equal."""
    if saved == cfg:
        return None
    a, b = _flat(saved.to_dict()), _flat(cfg.to_dict())
    for name in [*(k for k in a if k != "model.name"), "model.name"]:
        if a.get(name) != b.get(name):
            return name, a.get(name), b.get(name)
    return "config", saved, cfg  # pragma: no cover - dataclass equality implies equal dicts


def _read_config(run_dir: Path) -> ExperimentConfig:
    path = run_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
        return config_from_dict(tomllib.loads(text))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(str(path), f"corrupt run config ({getattr(err, 'strerror', None) or err})") from None
    except InputError as err:
        raise InputError(str(path), f"corrupt run config ({err})") from None


def _read_state_json(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / STATE_DIR / STATE_JSON
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(str(path), f"corrupt state summary ({err})") from None
    if not isinstance(info, dict) or not isinstance(info.get("step"), int):
        raise InputError(str(path), "corrupt state summary (no integer 'step')")
    return info


def check_run_dir(cfg: ExperimentConfig, out_dir: str | os.PathLike) -> int:
    """Check that ``out_dir`` can hold (or already holds) the run of ``cfg``; write nothing.

    Returns:
      the step recorded by the last saved chunk (0 for a new or never-saved run;
      ``cfg.train.steps`` for a finished run).
    Raises:
      InputError: ``out_dir`` is a file, a non-empty directory that is not a run, a run with a
        corrupt config, or a run of a different config (the error names the first differing field).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "exists and is not a directory; choose a new --out")
    if not out.exists():
        return 0
    if not (out / CONFIG_FILE).exists():
        if any(p.name != LOCK_FILE for p in out.iterdir()):
            raise InputError(str(out), f"is not empty and holds no run ({CONFIG_FILE} missing); choose a new --out")
        return 0
    saved = _read_config(out)
    diff = config_difference(saved, cfg)
    if diff is not None:
        name, old, new = diff
        raise InputError(name, f"the run in {str(out)!r} has {old!r}, this config has {new!r}; resume with the "
                         "same config or choose a new --out")
    info = _read_state_json(out)
    return 0 if info is None else min(info["step"], cfg.train.steps)


class _DirLock:
    """An exclusive ``flock`` on ``run_dir/.lock``: two processes never train into one directory."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise InputError(str(self.path.parent), "another process is training into this directory") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Delete temporary files left by a process killed in the middle of an atomic write."""
    for sub in (run_dir, run_dir / CHECKPOINT_DIR, run_dir / STATE_DIR):
        if sub.is_dir():
            for p in sub.glob(".*.tmp"):
                p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- training driver


def _leading(tree: Any, n: int) -> Any:
    """The first ``n`` entries of every leaf's leading (member) axis, as numpy arrays."""
    return jax.tree.map(lambda x: _to_host(x)[:n], tree)


@functools.lru_cache(maxsize=4)
def _trainer(cfg: ExperimentConfig):
    """One trainer (so one set of compiled programs) per config and process: a run resumed in
    the same process does not compile again."""
    from spheres.nets import train as engine

    return engine.make_trainer(cfg)


def run_training(cfg: ExperimentConfig, out_dir: str | os.PathLike, progress: bool = True, *,
                 on_chunk: ChunkCallback | None = None) -> Path:
    """Train the ensemble of ``cfg`` into ``out_dir``, resuming from its last saved chunk.

    The ensemble (``cfg.train.members``) is one vmapped, sharded program
    (``spheres.nets.train.make_trainer``). Training runs chunk by chunk (:func:`chunk_boundaries`);
    after every chunk the full state is saved, and at every checkpoint step the members'
    variables (``checkpoints/``) and training-distribution loss/accuracy (``metrics.csv``) too.

    Args:
      cfg: the experiment.
      out_dir: run directory (created if missing). If it holds a run of the same config, that
        run resumes; a finished run is left untouched.
      progress: show a tqdm bar on stderr between chunks (only when stderr is a terminal).
      on_chunk: called with the step after each chunk has been saved (e.g. to interrupt).
    Returns:
      ``out_dir`` as a Path.
    Raises:
      InputError (before anything is written) if ``out_dir`` holds something else or a run of
      a different config; InputError if its saved state is corrupt.
    """
    from tqdm.auto import tqdm

    from spheres.nets import train as engine

    out = Path(out_dir)
    saved_step = check_run_dir(cfg, out)
    steps = cfg.train.steps
    if saved_step >= steps:
        return out
    writer = jax.process_index() == 0
    trainer = _trainer(cfg)
    keys, hypers = engine.member_keys(cfg), engine.member_hypers(cfg)
    n_members = cfg.train.ensemble_size
    states = trainer.ensemble_init(keys, hypers)
    with _DirLock(out) if writer else contextlib.nullcontext():
        check_run_dir(cfg, out)  # again, under the lock
        _remove_stale_temporaries(out)
        state_path = out / STATE_DIR / STATE_FILE
        step, rows = 0, []
        if state_path.exists():
            states, step = _load_state(state_path, states, steps)
            rows = [r for r in read_metrics(out / METRICS_FILE) if r["step"] <= step] \
                if (out / METRICS_FILE).exists() else []
        elif writer:
            write_text_atomic(out / CONFIG_FILE, dump_config(cfg))
        checkpoints = set(cfg.train.checkpoint_steps)
        members = cfg.train.members
        bar = tqdm(total=steps, initial=step, unit="step", desc=f"{cfg.model.name} x{n_members}",
                   disable=None if progress else True, dynamic_ncols=True)
        try:
            for boundary in chunk_boundaries(cfg.train):
                if boundary <= step:
                    continue
                states = trainer.ensemble_advance(states, hypers, np.int32(boundary - step))
                if boundary in checkpoints:
                    metrics = _leading(trainer.ensemble_evaluate(states, hypers), n_members)
                    rows += [dict(m, step=boundary, loss=float(metrics["loss"][i]),
                                  accuracy=float(metrics["accuracy"][i])) for i, m in enumerate(members)]
                    variables = _leading(states.variables, n_members)
                    if writer:
                        write_bytes_atomic(checkpoint_path(out, boundary), tree_to_bytes(variables))
                        write_text_atomic(out / METRICS_FILE, metrics_csv(rows))
                    bar.set_postfix(loss=f"{np.mean(metrics['loss']):.4g}",
                                    acc=f"{np.mean(metrics['accuracy']):.4f}", refresh=False)
                _save_state(out, states, boundary, steps, writer)
                bar.update(boundary - step)
                step = boundary
                if on_chunk is not None:
                    on_chunk(step)
        finally:
            bar.close()
    return out


def _save_state(out: Path, states: Any, step: int, steps: int, writer: bool) -> None:
    data = tree_to_bytes({"step": step, "state": states})  # on every process: gathering is collective
    if not writer:
        return
    write_bytes_atomic(out / STATE_DIR / STATE_FILE, data)
    write_json_atomic(out / STATE_DIR / STATE_JSON, {"step": step, "steps": steps, "complete": step == steps})


def _load_state(path: Path, target: Any, steps: int) -> tuple[Any, int]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(str(path), f"cannot read saved state: {err.strerror}") from None
    restored = tree_from_bytes({"step": 0, "state": target}, data, path)
    step = int(restored["step"])
    member_steps = np.asarray(_to_host(restored["state"].step))
    if not 0 < step <= steps or np.any(member_steps != step):
        raise InputError(str(path), f"corrupt saved state: step {step}, members at steps "
                         f"{sorted(set(member_steps.tolist()))}, run length {steps}")
    return restored["state"], step


# ---------------------------------------------------------------------------- reading runs


@dataclasses.dataclass(frozen=True)
class Run:
    """A run directory, read back (see the module docstring for the layout).

    Attributes:
      path: the run directory.
      config: its resolved config.
      members: ``config.train.members``: one dict per ensemble member (member, seed,
        learning_rate, train_size), in the order of the leading axis of the variables.
      checkpoint_steps: steps whose checkpoint is saved (sorted).
      metrics: rows of metrics.csv (typed dicts, keys :data:`METRIC_COLUMNS`) at saved steps.
      step: the step of the last saved chunk.
    """

    path: Path
    config: ExperimentConfig
    members: list[dict[str, Any]]
    checkpoint_steps: tuple[int, ...]
    metrics: list[dict[str, Any]]
    step: int

    @property
    def complete(self) -> bool:
        """Whether training ran to ``config.train.steps``."""
        return self.step == self.config.train.steps

    def load_variables(self, step: int) -> dict[str, Any]:
        """The ensemble's model variables at checkpoint ``step``.

        Returns:
          ``{"params": {...}, "batch_stats": {...}}``, every leaf a numpy array with leading
          member axis of length ``len(self.members)``.
        Raises:
          InputError: no checkpoint at ``step``, or the file is corrupt.
        """
        if step not in self.checkpoint_steps:
            raise InputError("step", f"no checkpoint at step {step} in {str(self.path)!r}; saved steps: "
                             f"{', '.join(map(str, self.checkpoint_steps)) or 'none'}")
        path = checkpoint_path(self.path, step)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(str(path), f"cannot read checkpoint: {err.strerror}") from None
        variables = _restore_bytes(data, path)
        leaves = jax.tree.leaves(variables)
        if not isinstance(variables, dict) or "params" not in variables or not leaves:
            raise InputError(str(path), "corrupt checkpoint: no 'params' arrays")
        for leaf in leaves:
            if not isinstance(leaf, np.ndarray) or leaf.ndim == 0 or leaf.shape[0] != len(self.members):
                raise InputError(str(path), f"corrupt checkpoint: a leaf of shape {np.shape(leaf)} has no "
                                 f"leading member axis of length {len(self.members)}")
        variables.setdefault("batch_stats", {})
        return variables


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory written by :func:`run_training` (finished or not).

    Only checkpoints up to the last saved chunk count (anything later may be from a chunk
    whose state was never committed). Arrays are loaded lazily by :meth:`Run.load_variables`.

    Raises:
      InputError naming the path: not a directory, no or corrupt config.toml, corrupt
      metrics.csv or state summary.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(str(path), "no such run directory")
    if not (path / CONFIG_FILE).is_file():
        raise InputError(str(path), f"not a run directory ({CONFIG_FILE} missing)")
    cfg = _read_config(path)
    info = _read_state_json(path)
    step = 0 if info is None else info["step"]
    if not 0 <= step <= cfg.train.steps:
        raise InputError(str(path / STATE_DIR / STATE_JSON), f"corrupt state summary: step {step} is outside "
                         f"[0, {cfg.train.steps}]")
    saved = tuple(s for s in cfg.train.checkpoint_steps if s <= step and checkpoint_path(path, s).is_file())
    metrics = read_metrics(path / METRICS_FILE) if (path / METRICS_FILE).exists() else []
    metrics = [r for r in metrics if r["step"] <= step]
    n_rows = len(cfg.train.members) * len(saved)
    if len(metrics) != n_rows:
        raise InputError(str(path / METRICS_FILE), f"corrupt metrics table: {len(metrics)} rows up to step "
                         f"{step}, expected {n_rows} ({len(saved)} checkpoints x {len(cfg.train.members)} members)")
    return Run(path=path, config=cfg, members=cfg.train.members, checkpoint_steps=saved, metrics=metrics,
               step=step)


def describe(run: Run) -> str:
    """One line for the terminal: where the results of ``run`` are."""
    state = "complete" if run.complete else f"at step {run.step} of {run.config.train.steps}"
    return (f"run {state}: {run.path}/ ({CONFIG_FILE}, {METRICS_FILE}: {len(run.metrics)} rows, "
            f"{CHECKPOINT_DIR}/: {len(run.checkpoint_steps)} checkpoints x {len(run.members)} members)")

