"""Run directories: the on-disk format of a trained ensemble and its reader.

A *run directory* holds one ensemble (``cfg.train.members``, in vmapped-axis order) trained by
:func:`spheres.nets.runs.run_training`::

    DIR/config.toml                       resolved config (written first; identifies the run)
    DIR/metrics.csv                       one row per member x checkpoint:
                                          member, seed, learning_rate, train_size, step, loss, accuracy
    DIR/checkpoints/step_00001000.msgpack the ensemble's model variables at that step
                                          (every leaf has a leading member axis)
    DIR/state/latest.msgpack              the full ensemble train state after the last saved chunk
    DIR/state/latest.json                 {"step": ..., "steps": ..., "complete": ...} (human-readable)
    DIR/.lock                             held (``flock``) by the one process training into DIR

Crash safety. Every file is written atomically (temporary file + fsync + rename,
:mod:`spheres.core.io`). The state file is the commit point: a reader (:func:`load_run`) counts
only checkpoints and metrics rows up to the step of the last committed state.

Format. Arrays are stored with ``flax.serialization`` msgpack: shape, dtype name and raw bytes,
read back with ``np.frombuffer``. Nothing read from disk is unpickled or evaluated. Typed PRNG
keys (in the train state) are stored as their raw ``jax.random.key_data`` and rewrapped with
``jax.random.wrap_key_data`` and the implementation of the freshly initialised state. Metrics are
CSV: integers as integers, the learning rate as ``repr(float)``, loss and accuracy as the shortest
text that round-trips their float32 value.

Several hosts (``jax.distributed``): arrays that are not fully addressable are gathered with
``multihost_utils.process_allgather`` by :func:`to_host` (a collective: call it on every process);
only process 0 writes.

This module is the format; the training driver that writes it is :mod:`spheres.nets.runs`.
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np
from flax import serialization

from spheres.core.errors import InputError
from spheres.core.io import write_bytes_atomic, write_json_atomic
from spheres.nets.config import ExperimentConfig, config_from_dict

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

def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``run_dir/checkpoints/step_XXXXXXXX.msgpack`` (step zero-padded to 8 digits)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.msgpack"




# ---------------------------------------------------------------------------- serialization


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_host(x: Any) -> Any:
    """An array leaf as a numpy array (typed keys as their raw uint32 key data); other leaves unchanged.

    Multi-host arrays are gathered (a collective: call it on every process). Map it over a pytree
    with ``jax.tree.map(to_host, tree)``.
    """
    if _is_key(x):
        x = jax.random.key_data(x)
    if isinstance(x, jax.Array):
        if not x.is_fully_addressable:
            x = multihost_utils.process_allgather(x, tiled=True)
        return np.asarray(x)
    return x


def tree_to_bytes(tree: Any) -> bytes:
    """Serialise a pytree of arrays (dicts, lists, NamedTuples; typed PRNG keys allowed) to msgpack bytes."""
    host = jax.tree.map(to_host, tree)
    return serialization.msgpack_serialize(serialization.to_state_dict(host))


def _restore_bytes(data: bytes, path: Path, advice: str) -> Any:
    try:
        return serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several unrelated types on garbage
        raise InputError(str(path), f"corrupt or truncated msgpack file ({type(err).__name__}: {err}); "
                         f"{advice}") from None


def _checkpoint_advice(path: Path) -> str:
    """What to do about a damaged checkpoint: training is deterministic, so it re-creates the file."""
    run_dir = path.parent.parent
    return (f"training re-creates it bit for bit: `spheres train --config {run_dir / CONFIG_FILE} --out NEW_DIR`, "
            f"then copy NEW_DIR/{CHECKPOINT_DIR}/{path.name} over it (the rest of the run is intact)")


#: what to do about a damaged train state (checked on resume)
_STATE_ADVICE = (f"delete the {STATE_DIR}/ folder and re-run the same `spheres train` command: training restarts "
                 "from step 0 and re-creates every file identically")


def _spec(x: Any) -> tuple:
    """(shape, dtype) of an array leaf; (type name,) of a Python scalar."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return tuple(x.shape), np.dtype(x.dtype)
    return (type(x).__name__,)


def tree_from_bytes(target: Any, data: bytes, path: str | os.PathLike = "<bytes>",
                    advice: str = _STATE_ADVICE) -> Any:
    """Inverse of :func:`tree_to_bytes`, structured like ``target`` (a pytree of the same kind).

    Every restored leaf must have the shape and dtype of the corresponding ``target`` leaf;
    typed keys are rewrapped with the target key's implementation; leaves that are
    ``jax.Array`` in ``target`` are placed with the target's sharding.

    Raises:
      InputError naming ``path`` if the bytes are not msgpack or do not match ``target`` (the
      message ends with ``advice``: what the user can do).
    """
    path = Path(path)
    raw_target = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, target)
    state_dict = _restore_bytes(data, path, advice)
    try:
        raw = serialization.from_state_dict(raw_target, state_dict)
        want, treedef = jax.tree.flatten(raw_target)
        got = treedef.flatten_up_to(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(str(path), f"does not match this run's state layout: {err}; {advice}") from None
    for i, (w, g) in enumerate(zip(want, got)):
        if _spec(g) != _spec(w):
            raise InputError(str(path), f"does not match this run's state layout: leaf {i} is {_spec(g)}, "
                             f"expected {_spec(w)}; {advice}")
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


class DirLock:
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


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete temporary files left by a process killed in the middle of an atomic write."""
    for sub in (run_dir, run_dir / CHECKPOINT_DIR, run_dir / STATE_DIR):
        if sub.is_dir():
            for p in sub.glob(".*.tmp"):
                p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- train state


def save_state(out: Path, states: Any, step: int, steps: int, writer: bool) -> None:
    """Commit the ensemble's train state after the chunk ending at ``step``: ``state/latest.msgpack``
    (``{"step", "state"}``), then ``state/latest.json``. Every process calls it (gathering is
    collective); only the ``writer`` (process 0) writes."""
    data = tree_to_bytes({"step": step, "state": states})  # on every process: gathering is collective
    if not writer:
        return
    write_bytes_atomic(out / STATE_DIR / STATE_FILE, data)
    write_json_atomic(out / STATE_DIR / STATE_JSON, {"step": step, "steps": steps, "complete": step == steps})


def load_state(path: Path, target: Any, steps: int) -> tuple[Any, int]:
    """The committed train state at ``path``, structured and placed like ``target`` (a fresh
    ensemble state), and its step in ``(0, steps]``; every member must be at that step.

    Raises:
      InputError naming ``path`` (unreadable, corrupt, another layout) with what to do about it.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(str(path), f"cannot read saved state: {err.strerror}") from None
    restored = tree_from_bytes({"step": 0, "state": target}, data, path)
    step = int(restored["step"])
    member_steps = np.asarray(to_host(restored["state"].step))
    if not 0 < step <= steps or np.any(member_steps != step):
        raise InputError(str(path), f"corrupt saved state: step {step}, members at steps "
                         f"{sorted(set(member_steps.tolist()))}, run length {steps}; {_STATE_ADVICE}")
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

    def select_steps(self, steps: tuple[int, ...] = ()) -> tuple[int, ...]:
        """The checkpoint steps a measurement of this run covers: ``steps``, or every saved one if empty.

        Raises:
          InputError: the run has no checkpoint yet, or a step has no saved checkpoint (``--step``).
        """
        if not self.checkpoint_steps:
            raise InputError(str(self.path), "the run has no saved checkpoint yet; train it first")
        for s in steps:
            if s not in self.checkpoint_steps:
                raise InputError("--step", f"no checkpoint at step {s}; saved steps: "
                                 f"{', '.join(map(str, self.checkpoint_steps))}")
        return tuple(steps) or self.checkpoint_steps

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
        variables = _restore_bytes(data, path, _checkpoint_advice(path))
        leaves = jax.tree.leaves(variables)
        if not isinstance(variables, dict) or "params" not in variables or not leaves:
            raise InputError(str(path), f"corrupt checkpoint: no 'params' arrays; {_checkpoint_advice(path)}")
        for leaf in leaves:
            if not isinstance(leaf, np.ndarray) or leaf.ndim == 0 or leaf.shape[0] != len(self.members):
                raise InputError(str(path), f"corrupt checkpoint: a leaf of shape {np.shape(leaf)} has no "
                                 f"leading member axis of length {len(self.members)}; {_checkpoint_advice(path)}")
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

