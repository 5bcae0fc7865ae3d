"""The training driver: train an ensemble chunk by chunk into a run directory, resume after a crash.

The on-disk format (file names, msgpack serialisation, metrics CSV, :class:`Run` and
:func:`load_run`) lives in :mod:`spheres.nets.rundir`; this module drives the engine of
:mod:`spheres.nets.train` and writes that format. ``Run``, ``load_run``, ``check_run_dir`` and
``describe`` are re-exported here for the callers that train and then read.

Chunks. Training advances at most ``chunk_steps`` steps per compiled call and stops at every step
of the engine's checkpoint schedule, ``cfg.train.checkpoint_steps`` (the same steps
``Trainer.train`` scans over), so the chunk boundaries are
``{checkpoint steps} | {k * chunk_steps}`` (:func:`chunk_boundaries`). They depend only on the
config, never on where a run was interrupted, and the state saved at a boundary is bit-for-bit the
in-memory state; so a resumed run replays exactly the calls an uninterrupted run makes and ends
with identical bits.

Order of writes after a chunk ending at a checkpoint step: checkpoint file, metrics.csv, state
file, state JSON. The state file is the commit point: whatever was written after the last
committed state is recomputed (deterministically, so identically) on resume.

Plans. :func:`plan_training` says what a run will do before it starts: models, steps, dimension,
how far a previous attempt got, and an estimated time from a short timed warm-up (the compiled
programs are the ones training then uses, so the warm-up's compilation is not wasted).

Progress: a tqdm bar on a terminal; otherwise (and always at DEBUG level) ``logging`` lines on the
``spheres.nets.runs`` logger at most every ``log_every`` seconds.

Several hosts (``jax.distributed``): every process runs :func:`run_training` with the same
arguments on a run directory in a shared file system; only process 0 writes files and holds the
directory lock. (Not tested here: one host only.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from spheres.nets import rundir
from spheres.nets import train as engine
from spheres.nets.config import ExperimentConfig, TrainConfig, dump_config
from spheres.nets.rundir import Run, check_run_dir, describe, load_run  # re-exported (module docstring)
from spheres.core.io import write_bytes_atomic, write_text_atomic

__all__ = ["ChunkCallback", "TrainingPlan", "chunk_boundaries", "plan_training", "run_training", "format_seconds",
           "Run", "check_run_dir", "describe", "load_run"]

log = logging.getLogger(__name__)

#: chunk callback: called with the step just saved (tests use it to interrupt a run; the command
#: line uses it to stop cleanly on Ctrl-C)
ChunkCallback = Callable[[int], None]

#: the warm-up of :func:`plan_training` times at least this long a stretch of steps (seconds)
WARMUP_SECONDS = 0.3


def chunk_boundaries(train: TrainConfig) -> tuple[int, ...]:
    """Steps at which training stops to save: multiples of ``chunk_steps`` and every step of the
    engine's checkpoint schedule ``train.checkpoint_steps``.

    Sorted, distinct, ending at ``train.steps``. Consecutive differences are at most ``chunk_steps``.

    >>> chunk_boundaries(TrainConfig(steps=25, chunk_steps=10, checkpoints=3))
    (1, 5, 10, 20, 25)
    """
    regular = range(train.chunk_steps, train.steps, train.chunk_steps)
    return tuple(sorted(set(regular) | set(train.checkpoint_steps)))


def _leading(tree: Any, n: int) -> Any:
    """The first ``n`` entries of every leaf's leading (member) axis, as numpy arrays."""
    return jax.tree.map(lambda x: rundir.to_host(x)[:n], tree)


@functools.lru_cache(maxsize=4)
def _trainer(cfg: ExperimentConfig):
    """One trainer (so one set of compiled programs) per config and process: a run resumed or
    planned in the same process does not compile again."""
    return engine.make_trainer(cfg)


def format_seconds(seconds: float) -> str:
    """A duration for people: ``"4 s"``, ``"3.2 min"``, ``"31 h"``, ``"2.5 days"``.

    >>> format_seconds(3.7), format_seconds(190), format_seconds(31 * 3600), format_seconds(2.5 * 86400)
    ('4 s', '3.2 min', '31 h', '2.5 days')
    """
    if not math.isfinite(seconds):
        return "unknown"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size if unit == "days" else seconds >= size:
            value = seconds / size
            return f"{value:.2g} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{seconds:.0f} s"


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What :func:`run_training` will do (from :func:`plan_training`).

    Attributes:
      model: the model's canonical name.
      members: ensemble size (models trained as one program).
      steps: steps per model.
      dim: dimension d of the task.
      done: steps already saved in the run directory (0: a new run; ``steps``: nothing to do).
      seconds_per_step: measured wall time of one ensemble step (all members), or None if not timed.
      compile_seconds: wall time of the warm-up's first call (compilation plus a few steps), or None.
      devices: devices the ensemble is sharded over.
      seconds_per_chunk: measured cost a chunk adds besides its steps (serialising the state, an
        evaluation), or None.
      chunks: chunks left to run.
    """

    model: str
    members: int
    steps: int
    dim: int
    done: int
    seconds_per_step: float | None
    compile_seconds: float | None
    devices: int
    seconds_per_chunk: float | None = None
    chunks: int = 0

    @property
    def remaining_seconds(self) -> float | None:
        """Estimated training time left: steps not yet saved x seconds per step, plus chunks left x
        seconds per chunk."""
        if self.seconds_per_step is None:
            return None
        return (self.steps - self.done) * self.seconds_per_step + self.chunks * (self.seconds_per_chunk or 0.0)

    def line(self) -> str:
        """One line for the terminal, e.g. ``8 nets relu-w64-d2-bn x 2,000 steps at d = 20: about 4 s on
        this machine (1 device); resumable``."""
        head = f"{self.members} net{'s' if self.members != 1 else ''} {self.model} x {self.steps:,} steps at d = {self.dim}"
        if self.done >= self.steps:
            return f"{head}: already complete, nothing to do"
        left = self.remaining_seconds
        est = "time not estimated" if left is None else \
            f"about {format_seconds(left)} on this machine ({self.devices} device{'s' if self.devices != 1 else ''})"
        resumed = f"; resuming at step {self.done:,}" if self.done else ""
        return f"{head}: {est}{resumed}; resumable (re-run the same command after an interruption)"


def plan_training(cfg: ExperimentConfig, out_dir: str | os.PathLike, warmup: bool = True) -> TrainingPlan:
    """The plan of ``run_training(cfg, out_dir)``: what it will do and about how long it will take.

    The estimate comes from a timed warm-up on the fresh initial state (nothing is written and the
    run's own state is untouched: the engine's functions are pure): one short call that compiles
    the chunk and evaluation programs, then chunk calls timed over at least
    :data:`WARMUP_SECONDS` (never more steps than the run has), then one state serialisation and
    evaluation (the cost every chunk adds). The compiled programs are cached per config
    (:func:`_trainer`), so training does not compile them again.

    Args:
      cfg: the experiment.
      out_dir: the run directory (checked like :func:`run_training` does; nothing is written).
      warmup: time a warm-up (False: no estimate, no compilation).
    Raises:
      InputError: as :func:`spheres.nets.rundir.check_run_dir`.
    """
    done = check_run_dir(cfg, out_dir)
    steps = cfg.train.steps
    n = cfg.train.ensemble_size
    devices = engine.ensemble_mesh(n).devices.size
    per_step = first = per_chunk = None
    if warmup and done < steps:
        trainer = _trainer(cfg)
        hypers = engine.member_hypers(cfg)
        states = trainer.ensemble_init(engine.member_keys(cfg), hypers)
        k = min(cfg.train.chunk_steps, steps, 10)
        t0 = time.perf_counter()
        jax.block_until_ready(trainer.ensemble_advance(states, hypers, np.int32(k)))
        jax.block_until_ready(trainer.ensemble_evaluate(states, hypers))  # compiled here, not in training
        first = time.perf_counter() - t0
        elapsed, count = 0.0, 0
        while elapsed < WARMUP_SECONDS and count < steps:  # never longer than the run itself
            t0 = time.perf_counter()
            jax.block_until_ready(trainer.ensemble_advance(states, hypers, np.int32(k)))
            dt = time.perf_counter() - t0
            elapsed, count = elapsed + dt, count + k
            if dt < WARMUP_SECONDS / 4:
                k = min(cfg.train.chunk_steps, 2 * k)
        per_step = elapsed / count
        # what every chunk adds: serialising the state (and at checkpoints the variables and an evaluation)
        t0 = time.perf_counter()
        rundir.tree_to_bytes({"step": 0, "state": states})
        rundir.tree_to_bytes(_leading(trainer.ensemble_evaluate(states, hypers), n))
        per_chunk = time.perf_counter() - t0
    chunks = [b for b in chunk_boundaries(cfg.train) if b > done]
    return TrainingPlan(model=cfg.model.name, members=n, steps=steps, dim=cfg.task.dim, done=done,
                        seconds_per_step=per_step, compile_seconds=first, devices=devices,
                        seconds_per_chunk=per_chunk, chunks=len(chunks))


def run_training(cfg: ExperimentConfig, out_dir: str | os.PathLike, progress: bool = True, *,
                 on_chunk: ChunkCallback | None = None, log_every: float = 60.0) -> Path:
    """Train the ensemble of ``cfg`` into ``out_dir``, resuming from its last saved chunk.

    The ensemble (``cfg.train.members``) is one vmapped, sharded program
    (``spheres.nets.train.make_trainer``). Training runs chunk by chunk (:func:`chunk_boundaries`);
    after every chunk the full state is saved, and at every checkpoint step the members'
    variables (``checkpoints/``) and training-distribution loss/accuracy (``metrics.csv``) too.

    Args:
      cfg: the experiment.
      out_dir: run directory (created if missing). If it holds a run of the same config, that
        run resumes; a finished run is left untouched.
      progress: show progress: a tqdm bar on stderr when it is a terminal, otherwise an INFO log
        line at most every ``log_every`` seconds. False: no bar, log lines at DEBUG level only.
      on_chunk: called with the step after each chunk has been saved (e.g. to interrupt).
      log_every: seconds between progress log lines.
    Returns:
      ``out_dir`` as a Path.
    Raises:
      InputError (before anything is written) if ``out_dir`` holds something else or a run of
      a different config; InputError if its saved state is corrupt.
    """
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
    with rundir.DirLock(out) if writer else contextlib.nullcontext():
        check_run_dir(cfg, out)  # again, under the lock
        rundir.remove_stale_temporaries(out)
        state_path = out / rundir.STATE_DIR / rundir.STATE_FILE
        step, rows = 0, []
        if state_path.exists():
            states, step = rundir.load_state(state_path, states, steps)
            metrics_path = out / rundir.METRICS_FILE
            rows = [r for r in rundir.read_metrics(metrics_path) if r["step"] <= step] if metrics_path.exists() else []
        elif writer:
            write_text_atomic(out / rundir.CONFIG_FILE, dump_config(cfg))
        checkpoints = set(cfg.train.checkpoint_steps)
        members = cfg.train.members
        on_terminal = progress and sys.stderr.isatty()
        bar = tqdm(total=steps, initial=step, unit="step", desc=f"{cfg.model.name} x{n_members}",
                   disable=not on_terminal, dynamic_ncols=True)
        start, start_step, last_log = time.monotonic(), step, time.monotonic()
        summary = ""
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
                        write_bytes_atomic(rundir.checkpoint_path(out, boundary), rundir.tree_to_bytes(variables))
                        write_text_atomic(out / rundir.METRICS_FILE, rundir.metrics_csv(rows))
                    summary = f"mean loss {np.mean(metrics['loss']):.4g}, mean accuracy {np.mean(metrics['accuracy']):.4f}"
                    bar.set_postfix(loss=f"{np.mean(metrics['loss']):.4g}",
                                    acc=f"{np.mean(metrics['accuracy']):.4f}", refresh=False)
                rundir.save_state(out, states, boundary, steps, writer)
                bar.update(boundary - step)
                step = boundary
                now = time.monotonic()
                level = logging.INFO if progress and not on_terminal and now - last_log >= log_every else logging.DEBUG
                if log.isEnabledFor(level):
                    rate = (step - start_step) / max(now - start, 1e-9)
                    eta = format_seconds((steps - step) / rate) if rate > 0 else "unknown"
                    log.log(level, "step %d/%d (%.0f%%), %s; %s elapsed, about %s left", step, steps,
                            100 * step / steps, summary or "no checkpoint yet", format_seconds(now - start), eta)
                    last_log = now
                if on_chunk is not None:
                    on_chunk(step)
        finally:
            bar.close()
    return out
