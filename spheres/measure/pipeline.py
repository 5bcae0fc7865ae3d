"""Measure a trained run: mu(E) and d(E) for every model and checkpoint (PAPER.md sections 2, 5, 6).

For every checkpoint step of a run directory (``spheres.nets.runs``) and every ensemble member:

* **error rates** on both spheres. Monte Carlo (:mod:`spheres.measure.montecarlo`, integer counts,
  Clopper-Pearson interval) always runs; where it sees fewer than ``min_errors`` errors
  (``method = "auto"``), or on request (``method = "splitting"``), the rate comes from adaptive
  multilevel splitting (:mod:`spheres.measure.splitting`) instead. The ``*_method`` column says which
  method produced each number; a splitting run that cannot reach the error region leaves the
  Monte Carlo numbers (with their upper bound) in place and says so in ``*_status``.
* **d(E)** on the inner sphere: the on-manifold attack (:mod:`spheres.measure.attacks`) from
  ``attack_points`` uniform points, mean with standard error; points where no error was found are
  counted in ``attack_failures`` and never averaged in.
* **the quadratic network, exactly** (:mod:`spheres.maths.quadratic`): exact inner and outer error rates,
  the paper's CLT estimate beside them, the number of alphas outside [1/R^2, 1], and the exact d(E)
  on the SAME points the attack used (a paired comparison).

Randomness: the measurement key of step ``s`` is ``fold_in(key(seed), s)``; member ``i`` uses
``fold_in(., i)`` for its Monte Carlo and splitting streams, so a member's numbers do not depend on
the ensemble size. All members share the attack points of a step.

Results are written per checkpoint as resumable cells (``RUN/measure/cells/``), and the joined
table (one row per member x checkpoint) is rewritten atomically after each one as
``RUN/measurements.partial.csv``; only when every requested checkpoint is measured is it renamed to
``RUN/measurements.csv``. So a table under the final name is always complete, and an interrupted
measurement resumes without recomputing finished checkpoints.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from spheres.measure import attacks
from spheres.measure import montecarlo
from spheres.maths import quadratic
from spheres.measure import splitting
from spheres.core.cells import CellStore
from spheres.nets.config import ModelConfig, check_int
from spheres.core.errors import InputError
from spheres.maths.geometry import sample_sphere
from spheres.core.io import write_csv_atomic, write_json_atomic
from spheres.nets.models import make_logit_fn, quadratic_weights
from spheres.nets.runs import Run, load_run

METHODS = ("auto", "monte_carlo", "splitting")
MEASURE_DIR = "measure"
SETTINGS_FILE = "settings.json"
TABLE_FILE = "measurements.csv"
#: the table while checkpoints are still being measured (renamed to TABLE_FILE when done)
PARTIAL_TABLE_FILE = "measurements.partial.csv"


@dataclass(frozen=True)
class MeasureConfig:
    """Budgets of a measurement (validated; errors name the command-line flag).

    Attributes:
      mc_samples: Monte Carlo samples per sphere per model.
      attack_points: inner-sphere points attacked per model (d(E) sample size).
      method: "auto" (Monte Carlo, splitting where it sees < ``min_errors`` errors),
        "monte_carlo" or "splitting" (always, on both spheres).
      min_errors: the "auto" switch-over count.
      splitting_particles: particles per splitting run.
      splitting_repeats: independent splitting runs per estimate (the interval comes from their spread).
      splitting_max_levels: level cap (half the particles die per level, so rates below about
        2^-max_levels are reported as out of reach, never as a number).
      seed: measurement seed.
      steps: checkpoint steps to measure (empty: all saved checkpoints).
    """

    mc_samples: int = 100_000
    attack_points: int = 100
    method: str = "auto"
    min_errors: int = 10
    splitting_particles: int = 500
    splitting_repeats: int = 8
    splitting_max_levels: int = 200
    seed: int = 0
    steps: tuple[int, ...] = ()

    def __post_init__(self):
        for name, lo in (("mc_samples", 1), ("attack_points", 2), ("min_errors", 1), ("splitting_particles", 10),
                         ("splitting_repeats", 1), ("splitting_max_levels", 1), ("seed", 0)):
            check_int("--" + name.replace("_", "-"), getattr(self, name), lo)
        if self.method not in METHODS:
            raise InputError("--method", f"unknown method {self.method!r}; allowed: {', '.join(METHODS)}")

    def settings(self) -> dict[str, Any]:
        """The settings that determine the numbers (``steps`` only selects which checkpoints)."""
        d = dataclasses.asdict(self)
        d.pop("steps")
        return d


@functools.lru_cache(maxsize=None)
def _logit_fn(model_cfg: ModelConfig, dim: int) -> Callable:
    """One stable logit function per architecture, so compiled programs are reused across steps."""
    return make_logit_fn(model_cfg, dim)


def _member_keys(key: jax.Array, n: int) -> jax.Array:
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))


def _take(tree: Any, idx: np.ndarray) -> Any:
    return jax.tree.map(lambda x: x[idx], tree)


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _rate_columns(prefix: str, mc: Any, i: int) -> dict[str, Any]:
    count, n = int(mc.count[i]), int(mc.n[i])
    est = float(mc.estimate[i])
    return {
        f"{prefix}": est, f"{prefix}_lower": float(mc.lower[i]), f"{prefix}_upper": float(mc.upper[i]),
        f"{prefix}_log10": math.log10(est) if est > 0 else None,
        f"{prefix}_method": "monte_carlo", f"{prefix}_status": "ok",
        f"{prefix}_errors": count, f"{prefix}_samples": n,
        f"{prefix}_mc_errors": count, f"{prefix}_mc_samples": n,
    }


def _splitting_columns(prefix: str, est: Any, i: int) -> dict[str, Any]:
    status = str(np.asarray(est.status).reshape(-1)[i]) if np.ndim(est.status) else str(est.status)
    pick = (lambda a: np.asarray(a, np.float64).reshape(-1)[i])
    evals = int(np.asarray(est.n_evaluations).reshape(-1)[i])
    if status != "reached":
        return {f"{prefix}_status": f"splitting {status}: Monte Carlo values kept (log10 of last level "
                                    f"probability {_finite(pick(est.log10_level_probability))})",
                f"{prefix}_splitting_evaluations": evals}
    return {
        f"{prefix}": _finite(pick(est.estimate)), f"{prefix}_lower": _finite(pick(est.ci_low)),
        f"{prefix}_upper": _finite(pick(est.ci_high)), f"{prefix}_log10": _finite(pick(est.log10_estimate)),
        f"{prefix}_method": "splitting", f"{prefix}_status": "ok", f"{prefix}_errors": None,
        f"{prefix}_samples": evals, f"{prefix}_splitting_evaluations": evals,
    }


def measure_step(run: Run, step: int, mcfg: MeasureConfig) -> list[dict[str, Any]]:
    """All measurements of one checkpoint: one row (dict of scalars) per ensemble member."""
    cfg = run.config
    dim, radius = cfg.task.dim, cfg.task.outer_radius
    n_members = len(run.members)
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    logit_fn = _logit_fn(cfg.model, dim)
    key = jax.random.fold_in(jax.random.key(mcfg.seed), step)
    k_mc, k_attack, k_split = jax.random.split(key, 3)

    mc = montecarlo.error_rates(logit_fn, variables, _member_keys(k_mc, n_members), dim, samples=mcfg.mc_samples,
                                ensemble=True, outer_radius=radius)
    rows = []
    for i, member in enumerate(run.members):
        metric = next((r for r in run.metrics if r["member"] == i and r["step"] == step), {})
        rows.append({**member, "model": cfg.model.name, "dim": dim, "step": step,
                     "loss": metric.get("loss"), "accuracy": metric.get("accuracy"),
                     **_rate_columns("mu_inner", mc.inner, i), **_rate_columns("mu_outer", mc.outer, i)})

    for sphere, rates in (("inner", mc.inner), ("outer", mc.outer)):
        if mcfg.method == "monte_carlo":
            continue
        need = np.arange(n_members) if mcfg.method == "splitting" else np.flatnonzero(rates.count < mcfg.min_errors)
        if need.size == 0:
            continue
        keys = _member_keys(jax.random.fold_in(k_split, sphere == "outer"), n_members)[need]
        est = splitting.estimate_error_rate_ensemble(
            keys, logit_fn, _take(variables, need), dim, sphere=sphere,
            radius=1.0 if sphere == "inner" else radius,
            n_particles=mcfg.splitting_particles, n_repeats=mcfg.splitting_repeats,
            max_levels=mcfg.splitting_max_levels)
        for j, i in enumerate(need):
            rows[i].update(_splitting_columns(f"mu_{sphere}", est, j))

    xs = jax.vmap(lambda k: sample_sphere(k, dim))(jax.random.split(k_attack, mcfg.attack_points))
    result = attacks.attack(logit_fn, variables, xs, 0, ensemble=True)
    for i in range(n_members):
        s = attacks.summarize(jax.tree.map(lambda a: a[i], result))
        rows[i].update(attack_mean_distance=_finite(s.mean), attack_mean_distance_se=_finite(s.se),
                       attack_points=s.points, attack_failures=s.failures)

    if cfg.model.arch == "quad":
        xs64 = np.asarray(xs, np.float64)
        xs64 /= np.linalg.norm(xs64, axis=1, keepdims=True)
        for i in range(n_members):
            rows[i].update(_quadratic_columns(jax.tree.map(lambda a: np.asarray(a[i]), variables), xs64, radius))
    return rows


def _quadratic_columns(variables: Any, xs: np.ndarray, radius: float) -> dict[str, Any]:
    """Exact values for one quad net on the attack's points ``xs`` (float64, ``(n, d)`` on the unit sphere)."""
    dec = quadratic.alphas_from_weights(*quadratic_weights(variables))
    exact = quadratic.error_rates(dec.alphas, radius, dec.orientation)
    clt = quadratic.clt_error_rates(dec.alphas, radius, dec.orientation)
    dist = quadratic.mean_nearest_error_distance(dec.alphas, xs @ dec.rotation, 1.0, orientation=dec.orientation)
    return {
        "orientation": dec.orientation.value,
        "exact_mu_inner": exact.inner, "exact_mu_outer": exact.outer,
        "exact_mu_inner_log10": _finite(exact.log10_inner), "exact_mu_outer_log10": _finite(exact.log10_outer),
        "clt_mu_inner": _finite(clt.inner), "clt_mu_outer": _finite(clt.outer),
        "alphas_outside": quadratic.count_outside(dec.alphas, radius),
        "exact_mean_distance": _finite(dist.mean), "exact_mean_distance_se": _finite(dist.se),
        "exact_unreachable": dist.n_unreachable,
    }


def _check_settings(root: Path, mcfg: MeasureConfig) -> None:
    path = root / SETTINGS_FILE
    settings = mcfg.settings()
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise InputError(str(path), "corrupt measurement settings; delete the measure/ directory") from None
        for k, v in settings.items():
            if saved.get(k) != v:
                raise InputError("--" + k.replace("_", "-"), f"this run was measured with {k} = {saved.get(k)!r}, "
                                 f"not {v!r}; use the same settings to resume, or delete {root} to start over")
    else:
        write_json_atomic(path, settings)


def measure_run(run_dir: str | Path, mcfg: MeasureConfig = MeasureConfig(), progress: bool = True,
                on_step: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Measure every (selected) checkpoint of a run; resumable. Returns all rows, also written to
    ``RUN/measurements.csv`` (``RUN/measurements.partial.csv`` until every checkpoint is done).

    Args:
      run_dir: a run directory written by ``spheres train``.
      mcfg: budgets and method.
      progress: a progress bar over checkpoints (only on a terminal).
      on_step: called with each step after it is saved (tests use it to interrupt).
    Raises:
      InputError: missing or corrupt run, unknown checkpoint step, settings that differ from an
        earlier partial measurement.
    """
    from tqdm.auto import tqdm

    run = load_run(run_dir)
    if not run.checkpoint_steps:
        raise InputError(str(run_dir), "the run has no saved checkpoint yet; train it first")
    steps = mcfg.steps or run.checkpoint_steps
    for s in steps:
        if s not in run.checkpoint_steps:
            raise InputError("--step", f"no checkpoint at step {s}; saved steps: "
                             f"{', '.join(map(str, run.checkpoint_steps))}")
    root = run.path / MEASURE_DIR
    _check_settings(root, mcfg)
    store = CellStore(root)
    rows: list[dict[str, Any]] = []
    bar = tqdm(steps, unit="checkpoint", desc=f"measure {run.config.model.name}", disable=None if progress else True,
               dynamic_ncols=True)
    for step in bar:
        cell = store.run(f"step={step:08d}", lambda: {"rows": measure_step(run, step, mcfg)})
        rows.extend(cell["rows"])
        write_csv_atomic(run.path / PARTIAL_TABLE_FILE, rows)
        if on_step is not None:
            on_step(step)
    bar.close()
    os.replace(run.path / PARTIAL_TABLE_FILE, run.path / TABLE_FILE)  # atomic: the table is complete
    return rows
