"""Measure a trained run: mu(E) and d(E) for every model and checkpoint (docs/science.md sections 2, 5 and 6).

For every checkpoint step of a run directory (``spheres.nets.runs``) and every ensemble member:

* **error rates** on both spheres. Monte Carlo (:mod:`spheres.measure.montecarlo`, integer counts,
  Clopper-Pearson interval) always runs; where it sees fewer than ``min_errors`` errors
  (``method = "auto"``), or on request (``method = "splitting"``), the rate comes from adaptive
  multilevel splitting (:mod:`spheres.measure.splitting`) instead. The ``*_method`` column says which
  method produced each number; a splitting run that cannot reach the error region leaves the
  Monte Carlo numbers (with their upper bound) in place and says so in ``*_status``. A splitting
  estimate whose two halves of independent repeats disagree beyond their intervals (Cochran's Q,
  :func:`repeat_agreement`) keeps its value with ``*_status`` "disagree: ..." (a sign of error
  pockets that some runs reach and others miss), its p-value in ``*_agreement_p``.
* **d(E)** on the inner sphere: the on-manifold attack (:mod:`spheres.measure.attacks`) from
  ``attack_points`` uniform points, mean with standard error; points where no error was found are
  counted in ``attack_failures`` and never averaged in.
* **the quadratic network, exactly** (:mod:`spheres.maths.quadratic`): exact inner and outer error rates,
  the paper's CLT estimate beside them, the number of alphas outside [1/R^2, 1], and the exact d(E)
  on the SAME points the attack used (a paired comparison).

Every measurement is the single-model one of its module (``measure(key, logit_fn, params, cfg)``),
and the models of a run are ONE batched call per measurement, written here and nowhere else
(:func:`make_run_measurement`): Monte Carlo rounds and attacks are ``jax.vmap``-ped over models,
splitting is ``jax.lax.map``-ped (see :mod:`spheres.measure.splitting`). Member ``i``'s Monte Carlo
counts and splitting estimates are bit for bit those of the single-model call with its keys; its
attack verdicts are the same and its distances agree to float32 rounding (a vmapped model batches
its matmuls differently). The compiled programs are built once per run and held in a
:class:`RunMeasurement` for all its checkpoints.

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
import math
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spheres.core.cells import CellStore, check_settings, run_step_cells
from spheres.core.errors import InputError
from spheres.maths import quadratic
from spheres.measure import attacks, montecarlo, splitting
from spheres.measure.results import ResultRow, write_rows
from spheres.measure.config import METHODS, SPHERES, MeasureConfig, sphere_label
from spheres.nets.config import ExperimentConfig
from spheres.nets.models import make_logit_fn, quadratic_weights
from spheres.nets.runs import Run, load_run
from spheres.nets.train import EVAL_SIZE

__all__ = ["METHODS", "MEASURE_DIR", "SETTINGS_FILE", "TABLE_FILE", "MeasureConfig", "RunMeasurement",
           "make_run_measurement", "measure_step", "measure_run", "repeat_agreement"]

MEASURE_DIR = "measure"
SETTINGS_FILE = "settings.json"
TABLE_FILE = "measurements.csv"
#: the same rows as typed result rows (:mod:`spheres.measure.results`): the columns of the experiments'
#: tables, with the cap bound at the measured error rates
RESULTS_FILE = "results.csv"
#: the table while checkpoints are still being measured (renamed to TABLE_FILE when done)
PARTIAL_TABLE_FILE = "measurements.partial.csv"


class RunMeasurement(NamedTuple):
    """The compiled measurements of the models of one run, built once by :func:`make_run_measurement`.

    Each ``*_models`` program is the single-model program of its measurement batched over a leading
    model axis of ``params`` (and of the keys, where each model has its own stream).

    Attributes:
      logit_fn: the run's ``logit_fn(variables, x)`` (:func:`spheres.nets.models.make_logit_fn`).
      monte_carlo: the :class:`~spheres.measure.montecarlo.MonteCarlo` of ``mc_samples`` per sphere.
      monte_carlo_models: ``jit(vmap(monte_carlo.program))`` over ``(params, key)``.
      splitting: the :class:`~spheres.measure.splitting.Splitting` (inner sphere; the outer one is
        ``with_config``, the same program).
      splitting_models: ``jit`` of ``lax.map(splitting.program)`` over ``(key, params)``.
      attack: the :class:`~spheres.measure.attacks.AttackConfig` of the d(E) measurement.
      attack_models: ``jit(vmap(Attack.program))`` over ``params``, the same points for every model.
      attack_outer: the same measurement on the outer sphere (radius R, label 1).
      restart_models: ``jit(vmap(Attack.restart_program))`` of the restart schedule (a larger ascent
        budget) over ``params``: points whose attack failed are searched again from moved starts.
    """

    logit_fn: Callable
    monte_carlo: montecarlo.MonteCarlo
    monte_carlo_models: Callable
    splitting: splitting.Splitting
    splitting_models: Callable
    attack: attacks.AttackConfig
    attack_models: Callable
    attack_outer: attacks.AttackConfig
    restart_models: Callable


def make_run_measurement(cfg: ExperimentConfig, mcfg: MeasureConfig) -> RunMeasurement:
    """Build the measurements of every model of a run with config ``cfg`` and budgets ``mcfg`` (compiled lazily)."""
    dim, radius = cfg.task.dim, cfg.task.outer_radius
    logit_fn = make_logit_fn(cfg.model, dim)
    mc = montecarlo.make_monte_carlo(logit_fn, montecarlo.MonteCarloConfig(
        dim=dim, samples=mcfg.mc_samples, outer_radius=radius))
    split = splitting.make_splitting(logit_fn, splitting.SplittingConfig(
        dim=dim, sphere="inner", outer_radius=radius, n_particles=mcfg.splitting_particles,
        n_repeats=mcfg.splitting_repeats, max_levels=mcfg.splitting_max_levels))
    attack_cfg = attacks.AttackConfig(dim=dim, points=mcfg.attack_points, sphere="inner", outer_radius=radius)
    search = attacks.make_attack(logit_fn, attack_cfg.schedule, attack_cfg.on_manifold)
    longer = dataclasses.replace(attack_cfg.schedule,
                                 ascent_steps=attack_cfg.schedule.ascent_steps * mcfg.restart_budget)
    restart = attacks.make_attack(logit_fn, longer, attack_cfg.on_manifold)

    def split_models(keys, params, *traced):
        return jax.lax.map(lambda kp: split.program(kp[0], kp[1], *traced), (keys, params))

    return RunMeasurement(
        logit_fn=logit_fn,
        monte_carlo=mc, monte_carlo_models=jax.jit(jax.vmap(mc.program, in_axes=mc.model_axes)),
        splitting=split, splitting_models=jax.jit(split_models),
        attack=attack_cfg, attack_models=jax.jit(jax.vmap(search.program, in_axes=(0, None, None))),
        attack_outer=dataclasses.replace(attack_cfg, sphere="outer"),
        restart_models=jax.jit(jax.vmap(restart.restart_program, in_axes=(0, None, None, None))))


def _check_measurement(m: RunMeasurement, cfg: ExperimentConfig, mcfg: MeasureConfig) -> RunMeasurement:
    """``m`` if it was built by :func:`make_run_measurement` for ``cfg``'s task and ``mcfg``'s budgets.

    Raises:
      InputError: naming the first setting in which ``m`` differs.
    """
    got = {"dim": m.monte_carlo.config.dim, "outer_radius": m.monte_carlo.config.outer_radius,
           "mc_samples": m.monte_carlo.config.samples, "splitting_particles": m.splitting.config.n_particles,
           "splitting_repeats": m.splitting.config.n_repeats, "splitting_max_levels": m.splitting.config.max_levels,
           "attack_points": m.attack.points}
    want = {"dim": cfg.task.dim, "outer_radius": cfg.task.outer_radius, "mc_samples": mcfg.mc_samples,
            "splitting_particles": mcfg.splitting_particles, "splitting_repeats": mcfg.splitting_repeats,
            "splitting_max_levels": mcfg.splitting_max_levels, "attack_points": mcfg.attack_points}
    for name, value in want.items():
        if got[name] != value:
            raise InputError("measurement", f"built for {name} = {got[name]!r}, this measurement needs {value!r}; "
                                            "build it with make_run_measurement(run.config, mcfg)")
    return m


def _member_keys(key: jax.Array, n: int) -> jax.Array:
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))


def _take(tree: Any, idx: np.ndarray) -> Any:
    return jax.tree.map(lambda x: x[idx], tree)


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _rate_columns(prefix: str, mc: Any, i: int) -> dict[str, Any]:
    count, n = int(mc.count[i]), int(mc.samples[i])
    est = float(mc.value[i])
    return {
        f"{prefix}": est, f"{prefix}_lower": float(mc.lower[i]), f"{prefix}_upper": float(mc.upper[i]),
        f"{prefix}_log10": math.log10(est) if est > 0 else None,
        f"{prefix}_method": "monte_carlo", f"{prefix}_status": "ok",
        f"{prefix}_errors": count, f"{prefix}_samples": n,
        f"{prefix}_mc_errors": count, f"{prefix}_mc_samples": n,
    }


#: false-alarm level of the agreement check between the two halves of a splitting estimate's repeats
AGREEMENT_ALPHA = 0.01
#: the check needs a spread in each half: at least this many repeats in all
AGREEMENT_MIN_REPEATS = 4


def repeat_agreement(split: splitting.Splitting, runs: splitting.SplittingRuns,
                     alpha: float = AGREEMENT_ALPHA) -> list[splitting.Agreement | None]:
    """The unreached-pocket diagnostic of every model of a splitting call: do the two halves of its
    independent repeats agree within their intervals?

    The ``M`` repeats of one estimate are independent runs from independent uniform starts. Split
    into the first and the second ``M // 2``, each half is summarised on its own (its interval from
    its own spread, :func:`spheres.measure.splitting.summarize`) and the two half-estimates are
    compared with Cochran's Q (:func:`spheres.measure.splitting.check_agreement`). An error pocket
    that the runs of one half reach and those of the other miss makes them disagree beyond their
    spread. The intervals are Student-t ones from few runs, read by ``check_agreement`` as normal
    ones, so the check is conservative (its false-alarm rate is below ``alpha``).

    Args:
      split: the splitting measurement that made ``runs``.
      runs: :class:`~spheres.measure.splitting.SplittingRuns` with fields of shape ``(models, M)``.
      alpha: false-alarm level.
    Returns:
      per model, the :class:`~spheres.measure.splitting.Agreement`, or ``None`` where there is
      nothing to check (``M < AGREEMENT_MIN_REPEATS``, or a half whose runs did not all reach the
      error region).
    """
    m = np.asarray(runs.log_estimate).shape[-1]
    n_models = np.asarray(runs.log_estimate).shape[0]
    if m < AGREEMENT_MIN_REPEATS:
        return [None] * n_models
    half = m // 2
    parts = [split.summarize(jax.tree.map(lambda a, sl=sl: np.asarray(a)[:, sl], runs))
             for sl in (slice(0, half), slice(half, 2 * half))]
    out: list[splitting.Agreement | None] = []
    for i in range(n_models):
        pair = [jax.tree.map(lambda a: a[i] if isinstance(a, np.ndarray) else a, p) for p in parts]
        pair = [p._replace(status=str(p.status)) for p in pair]
        ok = all(p.status == "ok" and np.isfinite(p.log10_value) for p in pair)
        out.append(splitting.check_agreement(pair, alpha) if ok else None)
    return out


def _agreement_columns(prefix: str, agreement: splitting.Agreement | None) -> dict[str, Any]:
    """``*_agreement_p`` (the p-value, empty without a check) and, when flagged, status "disagree"."""
    cols: dict[str, Any] = {f"{prefix}_agreement_p": None if agreement is None else agreement.p_value}
    if agreement is not None and agreement.flagged:
        cols[f"{prefix}_status"] = (f"disagree: the two halves of the splitting repeats differ beyond their "
                                    f"intervals (Cochran's Q = {agreement.q:.3g}, p = {agreement.p_value:.2g})")
    return cols


def _splitting_columns(prefix: str, est: Any, i: int) -> dict[str, Any]:
    status = str(np.asarray(est.status).reshape(-1)[i]) if np.ndim(est.status) else str(est.status)
    pick = (lambda a: np.asarray(a, np.float64).reshape(-1)[i])
    evals = int(np.asarray(est.evaluations).reshape(-1)[i])
    if status != "ok":
        return {f"{prefix}_status": f"splitting {status}: Monte Carlo values kept (log10 of last level "
                                    f"probability {_finite(pick(est.log10_level_probability))})",
                f"{prefix}_splitting_evaluations": evals}
    return {
        f"{prefix}": _finite(pick(est.value)), f"{prefix}_lower": _finite(pick(est.lower)),
        f"{prefix}_upper": _finite(pick(est.upper)), f"{prefix}_log10": _finite(pick(est.log10_value)),
        f"{prefix}_method": "splitting", f"{prefix}_status": "ok", f"{prefix}_errors": None,
        f"{prefix}_samples": evals, f"{prefix}_splitting_evaluations": evals,
    }


def measure_step(run: Run, step: int, mcfg: MeasureConfig,
                 measurement: RunMeasurement | None = None) -> list[dict[str, Any]]:
    """All measurements of one checkpoint: one row (dict of scalars) per ensemble member.

    Args:
      run: the run.
      step: a saved checkpoint step.
      mcfg: budgets and method.
      measurement: the run's compiled measurements (built here when not given; pass the one from
        :func:`make_run_measurement` to reuse it over checkpoints).
    """
    cfg = run.config
    dim, radius = cfg.task.dim, cfg.task.outer_radius
    m = make_run_measurement(cfg, mcfg) if measurement is None else _check_measurement(measurement, cfg, mcfg)
    n_members = len(run.members)
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    key = jax.random.fold_in(jax.random.key(mcfg.seed), step)
    k_mc, k_attack, k_split = jax.random.split(key, 3)

    mc = m.monte_carlo.count(m.monte_carlo_models, _member_keys(k_mc, n_members), variables)
    rows = []
    for i, member in enumerate(run.members):
        metric = next((r for r in run.metrics if r["member"] == i and r["step"] == step), {})
        n = member["train_size"]
        rows.append({**member, "model": cfg.model.name, "dim": dim, "outer_radius": radius, "step": step,
                     "loss": metric.get("loss"), "accuracy": metric.get("accuracy"),
                     "accuracy_samples": min(n, EVAL_SIZE) if n else EVAL_SIZE,
                     **_rate_columns("mu_inner", mc.inner, i), **_rate_columns("mu_outer", mc.outer, i)})

    exact = cfg.model.arch == "quad"  # its rates are computed exactly below
    for sphere, rates in zip(SPHERES, mc):
        if mcfg.method == "monte_carlo":
            continue
        if mcfg.method == "auto" and exact and not mcfg.split_exact:
            for row in rows:
                if row[f"mu_{sphere}_mc_errors"] < mcfg.min_errors:
                    row[f"mu_{sphere}_status"] = "splitting not run: the rate is exact (split_exact = false)"
            continue
        if mcfg.method == "splitting":
            need = np.arange(n_members)
        else:
            other = mc.outer if sphere == "inner" else mc.inner
            few = np.asarray(rates.count) < mcfg.min_errors
            worth = np.asarray(other.value) <= mcfg.max_other_error
            for i in np.flatnonzero(few & ~worth):
                rows[i][f"mu_{sphere}_status"] = (
                    f"splitting skipped: Monte Carlo error rate {float(other.value[i]):.3g} on the other sphere "
                    f"exceeds max_other_error = {mcfg.max_other_error:g}; Monte Carlo values kept")
            need = np.flatnonzero(few & worth)
        if need.size == 0:
            continue
        keys = _member_keys(jax.random.fold_in(k_split, sphere_label(sphere)), n_members)[need]
        split = m.splitting.with_config(dataclasses.replace(m.splitting.config, sphere=sphere))
        runs = m.splitting_models(keys, _take(variables, need), *split.traced())
        est = split.summarize(runs)
        agreement = repeat_agreement(split, runs)
        for j, i in enumerate(need):
            rows[i].update(_splitting_columns(f"mu_{sphere}", est, j))
            if rows[i][f"mu_{sphere}_method"] == "splitting":
                rows[i].update(_agreement_columns(f"mu_{sphere}", agreement[j]))

    points = {}
    for sphere, acfg, prefix in (("inner", m.attack, "attack"), ("outer", m.attack_outer, "attack_outer")):
        k = k_attack if sphere == "inner" else jax.random.fold_in(k_attack, 1)
        xs, labels = attacks.check_points(attacks.start_points(k, acfg), acfg.label)
        first = m.attack_models(variables, xs, labels)
        other = mc.outer if sphere == "inner" else mc.inner
        worth = np.asarray(other.value) <= mcfg.max_other_error  # restarts are spent on these models only
        result, restarted = _restart(m, variables, xs, labels, first, jax.random.fold_in(k, 2), mcfg, worth)
        upper = attacks.strict_upper_bound(result, acfg.radius)
        for i in range(n_members):
            s = attacks.summarize(jax.tree.map(lambda a: a[i], result), acfg.confidence)
            rows[i].update({f"{prefix}_mean_distance": _finite(s.value), f"{prefix}_mean_distance_se": _finite(s.se),
                            f"{prefix}_points": s.points, f"{prefix}_failures": s.failures,
                            f"{prefix}_upper_bound": _finite(upper[i]), f"{prefix}_restarted": int(restarted[i])})
        xs64 = np.asarray(xs, np.float64)
        points[sphere] = xs64 / np.linalg.norm(xs64, axis=1, keepdims=True) * acfg.radius

    if cfg.model.arch == "quad":
        for i in range(n_members):
            rows[i].update(_quadratic_columns(jax.tree.map(lambda a: np.asarray(a[i]), variables), points, radius))
    return rows


def _restart(m: RunMeasurement, variables: Any, xs: jax.Array, labels: jax.Array, result: attacks.AttackResult,
             key: jax.Array, mcfg: MeasureConfig, worth: np.ndarray) -> tuple[attacks.AttackResult, np.ndarray]:
    """Search again, from moved starts with a larger budget, every point whose attack found no error,
    of the models marked in ``worth`` (``(n_models,)`` bool: those within ``max_other_error`` on the
    other sphere; the others keep their failures, counted as such).

    Round ``r`` moves each point by a chord of ``min(restart_jitter (r + 1), 1)`` of its radius. A
    point keeps its first result unless it failed there and a restart found an error. Returns the
    merged result and, per model, how many points a restart rescued.
    """
    result = jax.tree.map(np.asarray, result)
    first_failed = ~result.found
    for r in range(mcfg.attack_restarts):
        failed = ~result.found & np.asarray(worth, bool)[:, None]
        if not failed.any():
            break
        starts = attacks.restart_points(jax.random.fold_in(key, r), xs, min(mcfg.restart_jitter * (r + 1), 1.0))
        new = jax.tree.map(np.asarray, m.restart_models(variables, xs, starts, labels))
        take = failed & new.found
        result = jax.tree.map(lambda a, b: np.where(take.reshape(take.shape + (1,) * (a.ndim - 2)), b, a),
                              result, new)
    return result, np.sum(first_failed & result.found, axis=1)


def _quadratic_columns(variables: Any, points: dict[str, np.ndarray], radius: float) -> dict[str, Any]:
    """Exact values for one quad net on the attack's points (float64 ``(n, d)`` on each sphere)."""
    dec = quadratic.alphas_from_weights(*quadratic_weights(variables))
    exact = quadratic.error_rates(dec.alphas, radius, dec.orientation)
    clt = quadratic.clt_error_rates(dec.alphas, radius, dec.orientation)
    dist = quadratic.mean_nearest_error_distance(dec.alphas, points["inner"] @ dec.rotation, 1.0,
                                                 orientation=dec.orientation)
    dist_out = quadratic.mean_nearest_error_distance(dec.alphas, points["outer"] @ dec.rotation, radius,
                                                     orientation=dec.orientation, label=1)
    return {
        "exact_mean_distance_outer": _finite(dist_out.mean), "exact_mean_distance_outer_se": _finite(dist_out.se),
        "exact_unreachable_outer": dist_out.n_unreachable,
        "orientation": dec.orientation.value,
        "exact_mu_inner": exact.inner, "exact_mu_outer": exact.outer,
        "exact_mu_inner_log10": _finite(exact.log10_inner), "exact_mu_outer_log10": _finite(exact.log10_outer),
        "clt_mu_inner": _finite(clt.inner), "clt_mu_outer": _finite(clt.outer),
        "alphas_outside": quadratic.count_outside(dec.alphas, radius),
        "exact_mean_distance": _finite(dist.mean), "exact_mean_distance_se": _finite(dist.se),
        "exact_unreachable": dist.n_unreachable,
    }


def measure_run(run_dir: str | Path, mcfg: MeasureConfig = MeasureConfig(), progress: bool = True,
                on_step: Callable[[int], None] | None = None,
                measurement: RunMeasurement | None = None) -> list[dict[str, Any]]:
    """Measure every (selected) checkpoint of a run; resumable. Returns all rows, also written to
    ``RUN/measurements.csv`` (``RUN/measurements.partial.csv`` until every checkpoint is done).

    Args:
      run_dir: a run directory written by ``spheres train``.
      mcfg: budgets and method.
      progress: a progress bar over checkpoints (only on a terminal).
      on_step: called with each step after it is saved (tests use it to interrupt).
      measurement: the compiled measurements of :func:`make_run_measurement` for this run's config
        and ``mcfg``'s budgets (built here when not given; pass one to reuse its compiled programs).
    Raises:
      InputError: missing or corrupt run, unknown checkpoint step, settings that differ from an
        earlier partial measurement.
    """
    run = load_run(run_dir)
    steps = run.select_steps(mcfg.steps)
    root = run.path / MEASURE_DIR
    check_settings(root / SETTINGS_FILE, mcfg.settings(), mcfg.LATER_FIELDS, mcfg.FLAGS)
    store = CellStore(root)
    measurement = (make_run_measurement(run.config, mcfg) if measurement is None
                   else _check_measurement(measurement, run.config, mcfg))
    rows = run_step_cells(store, steps, lambda step: measure_step(run, step, mcfg, measurement),
                          run.path / TABLE_FILE, run.path / PARTIAL_TABLE_FILE, progress=progress,
                          desc=f"measure {run.config.model.name}", on_step=on_step)
    write_rows(run.path / RESULTS_FILE, [ResultRow.from_measurement(r) for r in rows])
    return rows
