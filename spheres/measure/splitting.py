"""Adaptive multilevel splitting (AMS): error rates far below what Monte Carlo can see.

The quantity is ``p = P(s(x) > 0)`` for ``x`` uniform on a sphere of radius ``r`` in R^d and the
error score ``s(x) = error_score(logit_fn(params, x), label)`` of :mod:`spheres.maths.classifiers`
(positive exactly when ``x`` is misclassified; label 0 on the inner sphere, 1 on the outer).
Plain Monte Carlo needs about ``1 / (p rel^2)`` model evaluations for a relative error ``rel``
(``10^11`` for ``p = 1e-9``, ``rel = 0.2``); AMS needs ``O(log(1/p)^2 / rel^2)``.

Algorithm (one *run*; Cerou & Guyader 2007, "Adaptive multilevel splitting for rare event
analysis"; the static, MCMC-moved form of Cerou, Del Moral, Furon & Guyader 2012, used for neural
networks by Webb et al. 2019 and Tit, Furon & Rousset 2021):

1. Draw ``N`` particles i.i.d. uniform on the sphere; score them.
2. Level ``j``: let ``L_j`` be the ``K``-th smallest score (``K = round(kill_fraction N)``). If
   ``L_j >= 0`` stop. Otherwise kill every particle with ``s <= L_j`` (``K_j >= K`` of them: ties
   are killed together, the rule that keeps the estimator unbiased, Brehier et al. 2016) and
   replace each by a copy of a survivor drawn uniformly at random.
3. Move every particle with ``n_steps`` steps of a Markov kernel that leaves the uniform measure
   on the sphere, restricted to ``{s > L_j}``, invariant (below), so the cloud is again a sample
   of that conditional law.
4. The estimate is ``p_hat = prod_j (1 - K_j / N) * (#{s > 0} / N)`` at the stop (the fixed-K
   estimator of Brehier, Gazeau, Goudenege, Lelievre & Rousset 2016, "Unbiasedness of some
   generalized adaptive multilevel splitting algorithms"; unbiased for an exact conditional
   sampler, the level count is about ``log(p) / log(1 - K/N)``).

Why kill half (``kill_fraction = 0.5``): for an ideal sampler the relative variance of one run is
``~ (n_levels (1 - q) / q + (1 - r) / r) / N`` with ``q = 1 - K/N`` (Cerou & Guyader 2007); the
cost is ``n_levels * n_steps * N``, so the cost at fixed error scales as
``(1 - q) / (q log(q)^2)``, flat between ``q = 0.15`` and ``0.5`` (within 35% of its minimum).
``q = 0.5`` gives every survivor about one clone, which the kernel decorrelates fastest, and moves
the whole cloud with one vmapped kernel per level (good on accelerators), where the last-particle
variant (``K = 1``) would need ``N log(1/p)`` sequential levels.

Kernel: ``x' = rotate_toward(x, g, theta)`` with ``g ~ N(0, I_d)``: ``x'`` is uniform on the
circle of points at angle ``theta`` from ``x``. Its density ``k(x, x')`` depends only on
``x . x'``, so it is symmetric and reversible with respect to the uniform measure; accepting
``x'`` only if ``s(x') > L_j`` (Metropolis for the restricted measure) keeps the restricted
uniform measure invariant. ``theta`` is fixed within a level and adapted between levels toward an
acceptance rate of ``target_acceptance`` (``log theta += gain (accept - target)``), so every level's
kernel is a fixed invariant kernel.

Uncertainty: ``n_repeats`` independent runs of ``N`` particles (vmapped). The point estimate is
their mean (unbiased when each run is). The interval is a Student-t interval on the log scale,
``mean * exp(+-t_{M-1} s_log / sqrt(M))``, ``s_log`` the sample standard deviation of the runs'
``log p_hat``: the delta method for the mean, with the spread MEASURED between independent runs
rather than taken from the ideal-sampler formula, which ignores the correlation the MCMC moves
leave between clones and so understates the variance. The ideal formula (reported as
``rel_std_ideal``) serves as a floor on ``s_log / sqrt(M)``, since imperfect mixing can only add
variance, and as the whole interval when ``n_repeats = 1``.

Failure is reported, never hidden: a run that cannot pass level 0 returns ``status`` STALLED (all
particles tied or none movable) or MAX_LEVELS (``max_levels`` levels were not enough: the rate is
below about ``(1 - K/N)^max_levels``, or the classifier has no error region); its estimate is NaN,
and ``log10_level_probability`` (estimated ``log10 P(s > last level)``) says how far it got.

The measurement of ONE model has the shape of every measurement in :mod:`spheres.measure`::

    measure(key, logit_fn, params, SplittingConfig(dim=d, sphere="inner")) -> LogRateEstimate

returning a :class:`spheres.maths.stats.LogRateEstimate` (value, interval, log10 values, model
evaluations, status). Build the compiled program once with :func:`make_splitting` and keep the
returned :class:`Splitting` to measure many models; :meth:`Splitting.with_config` changes the
sphere, radius, level cap or the other traced settings without recompiling.

Everything per run is one ``lax.while_loop`` over levels, vmapped over particles and repeats,
inside one ``jax.jit``; the same key gives the same answer. An ensemble is the caller's
``jax.lax.map`` of the per-model :attr:`Splitting.program` over ``(key, params)``, deliberately
not a ``vmap``: (1) a vmapped ``while_loop`` runs every member until the slowest is done, and the
rates in an ensemble span decades (10 levels for one model, 200 for another); (2) a vmapped model
rounds its reductions differently with the batch shape, and a one-ulp change in a score flips a
kill decision, after which the runs diverge: the member would equal the single run only in
distribution. Mapped, member ``i`` equals the single run with key ``i`` bit for bit. Each model's
runs already hold ``M N`` particles, enough to fill an accelerator. The summary (means,
intervals) is float64 numpy on the host (:meth:`Splitting.summarize`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from scipy import special, stats

from spheres.core.errors import InputError
from spheres.maths import stats as estimates
from spheres.maths.classifiers import LogitFn, ellipsoid_logit, error_score
from spheres.maths.geometry import OUTER_RADIUS, project_to_sphere, rotate_toward, safe_norm
from spheres.measure.config import check_sphere, same_static, sphere_label, sphere_radius

#: run status codes
RUNNING, REACHED, STALLED, MAX_LEVELS = -1, 0, 1, 2
#: the estimate's ``status`` for each code ("ok": every run reached the error region)
STATUS_NAMES = {REACHED: estimates.OK, STALLED: "stalled", MAX_LEVELS: "max_levels"}

_THETA_MIN = 1e-6
_THETA_MAX = 0.5 * math.pi


@dataclass(frozen=True)
class SplittingConfig:
    """What one splitting measurement estimates and the sampler's settings (validated on
    construction; errors name the field). ``dim``, ``n_particles``, ``n_repeats`` and ``n_steps`` set
    shapes (one compile each, :attr:`STATIC`); the others are traced or used on the host.

    Attributes:
      dim: dimension ``d >= 2``.
      sphere: "inner" (radius 1, label 0) or "outer" (radius ``outer_radius``, label 1).
      outer_radius: ``R``, the task's outer radius.
      n_particles: ``N``, particles per run.
      n_repeats: ``M``, independent runs per estimate (the interval comes from their spread).
      n_steps: kernel steps per level (each costs ``N`` model evaluations).
      kill_fraction: ``K / N``, the fraction killed per level.
      max_levels: cap on the number of levels; rates below ``(1 - K/N)^max_levels`` are out of reach.
      theta0: initial rotation angle of the kernel (radians).
      target_acceptance: acceptance rate the angle is adapted toward between levels.
      gain: adaptation gain (``log theta += gain (accept - target)`` after each level).
      confidence: nominal coverage of the interval.
    """

    dim: int
    sphere: str = "inner"
    outer_radius: float = OUTER_RADIUS
    n_particles: int = 500
    n_repeats: int = 8
    n_steps: int = 10
    kill_fraction: float = 0.5
    max_levels: int = 200
    theta0: float = 1.0
    target_acceptance: float = 0.3
    gain: float = 3.0
    confidence: float = 0.95

    #: the fields that set the compiled program's shapes
    STATIC: ClassVar[tuple[str, ...]] = ("dim", "n_particles", "n_repeats", "n_steps")

    def __post_init__(self):
        if not (isinstance(self.dim, (int, np.integer)) and self.dim >= 2):
            raise InputError("dim", f"must be an integer >= 2, got {self.dim!r}")
        check_sphere(self.sphere, self.outer_radius)
        for name, lo in (("n_particles", 2), ("n_repeats", 1), ("n_steps", 1), ("max_levels", 1)):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= lo):
                raise InputError(name, f"must be an integer >= {lo}, got {v!r}")
        if not 0 < self.kill_fraction < 1:
            raise InputError("kill_fraction", f"must lie in (0, 1), got {self.kill_fraction}")
        if not 0 < self.target_acceptance < 1:
            raise InputError("target_acceptance", f"must lie in (0, 1), got {self.target_acceptance}")
        if not 0 < self.theta0 <= _THETA_MAX:
            raise InputError("theta0", f"must lie in (0, pi/2], got {self.theta0}")
        if not 0 < self.confidence < 1:
            raise InputError("confidence", f"must lie in (0, 1), got {self.confidence}")

    @property
    def n_kill(self) -> int:
        return max(1, min(self.n_particles - 1, round(self.kill_fraction * self.n_particles)))

    @property
    def radius(self) -> float:
        """Radius of the sphere measured."""
        return sphere_radius(self.sphere, self.outer_radius)

    @property
    def label(self) -> int:
        """True class of the sphere's points (0 inner, 1 outer)."""
        return sphere_label(self.sphere)


class SplittingRuns(NamedTuple):
    """Raw per-run output (jax arrays). Shapes ``batch + (M,)``: ``M`` repeats, ``batch`` models.

    Fields:
      log_estimate: float32, natural log of each run's ``p_hat`` (NaN unless REACHED).
      log_level_probability: float32, log of the estimated ``P(s > level)`` at the last level passed
        (``log p_hat`` when REACHED; how far a failed run got otherwise).
      level: float32, last level passed (score units).
      n_levels: int32, levels passed.
      n_evaluations: int32, model evaluations (``N`` initial + ``N n_steps`` per level).
      status: int32, REACHED / STALLED / MAX_LEVELS.
      rel_var_ideal: float32, ideal-sampler relative variance ``sum_j (1-q_j)/(q_j N) + (1-r)/(r N)``.
      acceptance: float32, overall kernel acceptance rate.
      theta: float32, final kernel angle.
    """

    log_estimate: jax.Array
    log_level_probability: jax.Array
    level: jax.Array
    n_levels: jax.Array
    n_evaluations: jax.Array
    status: jax.Array
    rel_var_ideal: jax.Array
    acceptance: jax.Array
    theta: jax.Array


class _State(NamedTuple):
    key: jax.Array
    x: jax.Array          # (N, d) particles
    s: jax.Array          # (N,) scores
    log_prob: jax.Array   # () log prod_j (1 - K_j/N)
    level: jax.Array      # () last level passed
    n_levels: jax.Array   # () int32
    n_evals: jax.Array    # () int32
    n_accept: jax.Array   # () int32 accepted proposals
    theta: jax.Array      # () kernel angle
    rel_var: jax.Array    # () ideal relative variance so far
    status: jax.Array     # () int32
    log_final: jax.Array  # () log of the final fraction (0 until reached)


def restricted_rotation_step(x: jax.Array, score_x: jax.Array, direction: jax.Array, level: ArrayLike,
                             theta: ArrayLike, *, score_fn) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One step of the AMS kernel for ONE particle: rotate by ``theta`` toward ``direction`` (drawn by
    the caller from ``N(0, I_d)``), keep the move only if the score stays above ``level``.

    The proposal ``x' = rotate_toward(x, g, theta)``, ``g ~ N(0, I_d)``, is uniform on the points
    at angle ``theta`` from ``x``; its density depends on ``x . x'`` alone, so it is reversible for
    the uniform measure on the sphere, and the accept-if-``s(x') > level`` rule (Metropolis for the
    restricted target) makes the step reversible for the uniform measure restricted to
    ``{s > level}``. The result is re-projected on the sphere of ``||x||`` (rounding only).

    Args:
      x: particle, shape ``(d,)``, with ``score_x = score_fn(x) > level``.
      score_x: its score, scalar.
      direction: shape ``(d,)``, an isotropic Gaussian draw.
      level: current level, scalar.
      theta: rotation angle (radians), scalar.
      score_fn: per-example score ``(d,) -> scalar``.
    Returns:
      ``(x_new, score_new, accepted)``: shape ``(d,)``, scalar, bool scalar.

    >>> score = lambda y: y[0] - 0.5                     # error region: the cap {y_1 > 0.5}
    >>> x, g = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.3, 2.0, 0.0])
    >>> y, s, ok = restricted_rotation_step(x, score(x), g, 0.0, 0.5, score_fn=score)
    >>> bool(ok), round(float(y[0]), 4), round(float(y[1]), 4)   # cos 0.5 > 0.5: accepted
    (True, 0.8776, 0.4794)
    >>> bool(restricted_rotation_step(x, score(x), g, 0.0, 1.2, score_fn=score)[2])   # cos 1.2 < 0.5
    False
    """
    prop = project_to_sphere(rotate_toward(x, direction, theta), safe_norm(x))
    s_prop = score_fn(prop)
    ok = s_prop > level
    return jnp.where(ok, prop, x), jnp.where(ok, s_prop, score_x), ok


class _Tuning(NamedTuple):
    """Traced (non-shape) settings: changing them does not recompile."""

    n_kill: jax.Array             # int32 ()
    max_levels: jax.Array         # int32 ()
    theta0: jax.Array             # float32 ()
    target_acceptance: jax.Array  # float32 ()
    gain: jax.Array               # float32 ()


def _tuning(config: SplittingConfig) -> _Tuning:
    return _Tuning(jnp.int32(config.n_kill), jnp.int32(config.max_levels), jnp.float32(config.theta0),
                   jnp.float32(config.target_acceptance), jnp.float32(config.gain))


def _run(key: jax.Array, params: Any, radius: jax.Array, label: jax.Array, tuning: _Tuning, *,
         logit_fn: LogitFn, dim: int, n_particles: int, n_steps: int) -> SplittingRuns:
    """One AMS run of ``n_particles`` particles (see the module docstring). Scalar outputs."""
    n, t = n_particles, n_steps
    radius = jnp.asarray(radius, jnp.float32)

    def score(x):
        return error_score(logit_fn(params, x), label).astype(jnp.float32)

    scores = jax.vmap(score)
    kernel = jax.vmap(partial(restricted_rotation_step, score_fn=score), (0, 0, 0, None, None))

    def move(key, x, s, level, theta):
        """``t`` kernel steps at fixed ``level`` and ``theta``; returns ``x, s, accepted``."""

        def step(carry, key):
            x, s, acc = carry
            x, s, ok = kernel(x, s, jax.random.normal(key, x.shape, x.dtype), level, theta)
            return (x, s, acc + jnp.sum(ok, dtype=jnp.int32)), None

        (x, s, acc), _ = jax.lax.scan(step, (x, s, jnp.int32(0)), jax.random.split(key, t))
        return x, s, acc

    def advance(st: _State, level, n_kill):
        key, k_pick, k_move = jax.random.split(st.key, 3)
        order = jnp.argsort(st.s)
        # killed particles (score <= level) take a survivor drawn uniformly among the top N - n_kill
        # (modulo bias of 32-bit draws: below N / 2^32)
        n_survive = jnp.maximum(n - n_kill, 1).astype(jnp.uint32)
        offset = (jax.random.bits(k_pick, (n,), jnp.uint32) % n_survive).astype(jnp.int32)
        parent = jnp.where(st.s <= level, order[n_kill + offset], jnp.arange(n))
        x, s = st.x[parent], st.s[parent]
        x, s, acc = move(k_move, x, s, level, st.theta)
        rate = acc.astype(jnp.float32) / (n * t)
        theta = jnp.clip(st.theta * jnp.exp(tuning.gain * (rate - tuning.target_acceptance)),
                         _THETA_MIN, _THETA_MAX)
        frac_killed = n_kill.astype(jnp.float32) / n
        return st._replace(
            key=key, x=x, s=s,
            log_prob=st.log_prob + jnp.log1p(-frac_killed),
            level=level, n_levels=st.n_levels + 1, n_evals=st.n_evals + n * t,
            n_accept=st.n_accept + acc, theta=theta,
            rel_var=st.rel_var + frac_killed / ((1.0 - frac_killed) * n),
            status=jnp.where((acc == 0) & (st.theta <= _THETA_MIN), STALLED, RUNNING).astype(jnp.int32))

    def body(st: _State) -> _State:
        level = jnp.sort(st.s)[tuning.n_kill - 1]
        n_kill = jnp.sum(st.s <= level, dtype=jnp.int32)
        n_err = jnp.sum(st.s > 0, dtype=jnp.int32)
        reached = level >= 0
        status = jnp.where(
            reached, jnp.where(n_err > 0, REACHED, STALLED),
            jnp.where(n_kill >= n, STALLED, jnp.where(st.n_levels >= tuning.max_levels, MAX_LEVELS, RUNNING)))
        r = jnp.maximum(n_err, 1).astype(jnp.float32) / n
        final = reached & (n_err > 0)
        done = st._replace(status=status.astype(jnp.int32), log_final=jnp.where(final, jnp.log(r), 0.0),
                           rel_var=st.rel_var + jnp.where(final, (1.0 - r) / (r * n), 0.0))
        return jax.lax.cond(status == RUNNING, lambda: advance(st, level, n_kill), lambda: done)

    k_init, k_loop = jax.random.split(key)
    x0 = jax.vmap(project_to_sphere, (0, None))(jax.random.normal(k_init, (n, dim), jnp.float32), radius)
    st = _State(key=k_loop, x=x0, s=scores(x0), log_prob=jnp.float32(0.0), level=jnp.float32(-jnp.inf),
                n_levels=jnp.int32(0), n_evals=jnp.int32(n), n_accept=jnp.int32(0),
                theta=tuning.theta0, rel_var=jnp.float32(0.0), status=jnp.int32(RUNNING),
                log_final=jnp.float32(0.0))
    st = jax.lax.while_loop(lambda st: st.status == RUNNING, body, st)
    reached = st.status == REACHED
    log_level_prob = st.log_prob + st.log_final
    proposals = jnp.maximum(st.n_levels * n * t, 1).astype(jnp.float32)
    return SplittingRuns(
        log_estimate=jnp.where(reached, log_level_prob, jnp.nan),
        log_level_probability=log_level_prob, level=st.level, n_levels=st.n_levels,
        n_evaluations=st.n_evals, status=st.status, rel_var_ideal=st.rel_var,
        acceptance=st.n_accept.astype(jnp.float32) / proposals, theta=st.theta)


def _repeats(key, params, radius, label, tuning, *, logit_fn, dim, n_particles, n_repeats, n_steps):
    """``n_repeats`` independent runs: fields of shape ``(M,)``."""
    run = partial(_run, logit_fn=logit_fn, dim=dim, n_particles=n_particles, n_steps=n_steps)
    return jax.vmap(run, (0, None, None, None, None))(jax.random.split(key, n_repeats), params, radius, label,
                                                      tuning)


@dataclass(frozen=True)
class Splitting:
    """The compiled splitting measurement of one classifier family, built by :func:`make_splitting`.

    Attributes:
      logit_fn: the classifier ``logit_fn(params, x) -> scalar``, ``x`` of shape ``(dim,)``.
      config: the :class:`SplittingConfig` measured.
      program: the pure per-model program ``(key, params, radius, label, tuning) ->`` :class:`SplittingRuns`
        (fields of shape ``(n_repeats,)``); ``radius``, ``label`` and ``tuning`` are traced, the
        same for every model (:meth:`traced`). Map it over models with ``jax.lax.map`` (module docstring).
      compiled: ``jax.jit(program)``, what a single-model call runs.
    """

    logit_fn: LogitFn
    config: SplittingConfig
    program: Callable
    compiled: Callable

    def with_config(self, config: SplittingConfig) -> "Splitting":
        """The same compiled program for another sphere, radius or traced setting (no recompilation).

        Raises:
          InputError: ``config`` changes a shape-setting field (:attr:`SplittingConfig.STATIC`).
        """
        return dataclasses.replace(self, config=same_static(self.config, config))

    def traced(self) -> tuple[jax.Array, jax.Array, _Tuning]:
        """The traced arguments ``(radius, label, tuning)`` of :attr:`program` for :attr:`config`."""
        return jnp.float32(self.config.radius), jnp.int32(self.config.label), _tuning(self.config)

    def run(self, runs: Callable, key: jax.Array, params: Any) -> estimates.LogRateEstimate:
        """Call ``runs(key, params, *traced())`` (:attr:`compiled` or a mapped version of :attr:`program`)
        and summarise; the estimate's fields gain the leading axes ``runs`` adds."""
        return self.summarize(runs(key, params, *self.traced()))

    def summarize(self, runs: SplittingRuns) -> estimates.LogRateEstimate:
        """:func:`summarize` with this measurement's config."""
        return summarize(runs, self.config)

    def __call__(self, key: jax.Array, params: Any) -> estimates.LogRateEstimate:
        """The error rate of ONE model on :attr:`config`'s sphere (scalar fields)."""
        return self.run(self.compiled, key, params)


def make_splitting(logit_fn: LogitFn, config: SplittingConfig) -> Splitting:
    """Build (and jit, lazily) the splitting measurement of ``logit_fn`` with ``config``.

    Keep the result to measure many models: its compiled program is reused (a new
    ``make_splitting`` compiles again).
    """
    program = partial(_repeats, logit_fn=logit_fn, dim=int(config.dim), n_particles=int(config.n_particles),
                      n_repeats=int(config.n_repeats), n_steps=int(config.n_steps))
    return Splitting(logit_fn=logit_fn, config=config, program=program, compiled=jax.jit(program))


def summarize(runs: SplittingRuns, config: SplittingConfig) -> estimates.LogRateEstimate:
    """Combine the ``M`` runs on the last axis into an estimate with an interval (float64, host side).

    Point estimate: ``mean_m p_hat_m`` (computed as a log-sum-exp). Interval:
    ``mean * exp(+-t rel)``, ``t`` the Student quantile with ``M - 1`` degrees of freedom and
    ``rel = max(s_log / sqrt(M), rel_ideal)``, ``s_log`` the sample standard deviation of
    ``log p_hat_m`` and ``rel_ideal = sqrt(mean_m rel_var_ideal_m / M)`` the ideal-sampler value
    (a floor: imperfect mixing only adds variance). With ``M = 1``, ``rel = rel_ideal`` and a
    normal quantile; ``confidence`` is ``config.confidence``.
    """
    confidence = config.confidence
    log_p = np.asarray(runs.log_estimate, np.float64)
    status = np.asarray(runs.status)
    m = log_p.shape[-1]
    ok = np.all(status == REACHED, axis=-1)
    with np.errstate(invalid="ignore"):
        log_mean = np.where(ok, special.logsumexp(np.where(ok[..., None], log_p, 0.0), axis=-1) - math.log(m),
                            np.nan)
        rel_ideal = np.sqrt(np.mean(np.asarray(runs.rel_var_ideal, np.float64), axis=-1) / m)
        if m >= 2:
            # floored at the ideal-sampler value: MCMC correlation can only add variance, so a
            # smaller spread between M runs is luck, not precision
            rel = np.maximum(np.std(log_p, axis=-1, ddof=1) / math.sqrt(m), rel_ideal)
            quantile = stats.t.ppf(0.5 + confidence / 2, m - 1)
        else:
            rel = rel_ideal
            quantile = stats.norm.ppf(0.5 + confidence / 2)
        rel = np.where(ok, rel, np.nan)
    first_fail = np.where(ok, REACHED, np.max(np.where(status == REACHED, -1, status), axis=-1))
    names = np.vectorize(STATUS_NAMES.get, otypes=[object])(first_fail)
    ln10 = math.log(10.0)
    log10 = log_mean / ln10
    half = quantile * rel / ln10
    to_scalar = (lambda a: a.item()) if log10.ndim == 0 else (lambda a: a)
    return estimates.LogRateEstimate(
        value=to_scalar(np.exp(log_mean)),
        lower=to_scalar(10.0 ** (log10 - half)), upper=to_scalar(10.0 ** (log10 + half)),
        log10_value=to_scalar(log10), log10_lower=to_scalar(log10 - half), log10_upper=to_scalar(log10 + half),
        confidence=confidence, rel_std=to_scalar(rel), rel_std_ideal=to_scalar(rel_ideal),
        evaluations=to_scalar(np.sum(np.asarray(runs.n_evaluations, np.int64), axis=-1)),
        runs=m, particles=config.n_particles,
        levels=to_scalar(np.rint(np.mean(np.asarray(runs.n_levels), axis=-1)).astype(np.int64)),
        log10_level_probability=to_scalar(np.max(np.asarray(runs.log_level_probability, np.float64), axis=-1)
                                          / ln10),
        acceptance=to_scalar(np.mean(np.asarray(runs.acceptance, np.float64), axis=-1)),
        method="splitting", status=to_scalar(names))


def measure(key: jax.Array, logit_fn: LogitFn, params: Any, config: SplittingConfig) -> estimates.LogRateEstimate:
    """Estimate ``P(model misclassifies x)``, ``x`` uniform on ``config.sphere``, by AMS, for ONE model.

    ``make_splitting(logit_fn, config)(key, params)``: compiles on every call; build the
    :class:`Splitting` once with :func:`make_splitting` to measure many models.

    Args:
      key: a ``jax.random.key``.
      logit_fn: per-example classifier ``logit_fn(params, x) -> scalar`` (x of shape ``(dim,)``).
      params: the classifier's pytree (no model axis).
      config: a :class:`SplittingConfig` (sphere, outer radius, sampler settings).
    Returns:
      a :class:`~spheres.maths.stats.LogRateEstimate` with scalar fields.
    """
    return make_splitting(logit_fn, config)(key, params)


def ellipsoid_params(alphas: ArrayLike, config: SplittingConfig) -> dict[str, jax.Array]:
    """Parameters of the ellipsoid classifier "outer iff sum_i alpha_i x_i^2 > 1" (docs/science.md s.5) for
    :func:`spheres.maths.classifiers.ellipsoid_logit`, checked against ``config.dim``.

    Args:
      alphas: shape ``(d,)``, the classifier's coefficients (any finite real values), ``d = config.dim``.
    """
    alphas = np.asarray(alphas, np.float64)
    if alphas.ndim != 1 or alphas.size < 2 or not np.all(np.isfinite(alphas)):
        raise InputError("alphas", f"must be a finite vector of length >= 2, got shape {alphas.shape}")
    if alphas.size != config.dim:
        raise InputError("alphas", f"{alphas.size} alphas for a measurement in dimension {config.dim}")
    return {"alphas": jnp.asarray(alphas, jnp.float32)}


def measure_ellipsoid(key: jax.Array, alphas: ArrayLike, config: SplittingConfig) -> estimates.LogRateEstimate:
    """:func:`measure` of the ellipsoid classifier with coefficients ``alphas`` (shape ``(config.dim,)``)."""
    return measure(key, ellipsoid_logit, ellipsoid_params(alphas, config), config)


class Agreement(NamedTuple):
    """Result of :func:`check_agreement` (float64 host values).

    Fields:
      q: Cochran's ``Q = sum_k w_k (y_k - ybar)^2``, ``y_k`` the natural-log estimates,
        ``w_k = 1 / se_k^2``, ``ybar = sum w_k y_k / sum w_k``.
      dof: ``K - 1`` degrees of freedom.
      p_value: ``P(chi2_{K-1} >= Q)``.
      flagged: ``p_value < alpha``: the estimates disagree beyond their stated spread.
      n_estimates: ``K``.
    """

    q: float
    dof: int
    p_value: float
    flagged: bool
    n_estimates: int


def check_agreement(estimates_: list[estimates.LogRateEstimate], alpha: float = 0.01) -> Agreement:
    """Flag independent splitting estimates of ONE rate that disagree beyond their intervals.

    An error pocket that no particle of a run reaches (poor mixing between disconnected parts of the
    error set) biases that run's estimate without widening its interval; independent estimates from
    independent keys then scatter more than their standard errors allow. With ``y_k = log p_hat_k``
    and ``se_k`` the log standard error recovered from each interval
    (``(log upper - log lower) / (2 z)``, ``z`` the normal quantile of the estimate's confidence),
    Cochran's ``Q = sum_k (y_k - ybar)^2 / se_k^2`` is approximately ``chi2_{K-1}`` when all estimate
    the same value without bias (Cochran 1954, "The combination of estimates from different
    experiments"). The flag ``P(chi2_{K-1} >= Q) < alpha`` has false-alarm rate about ``alpha``
    (more when ``se_k`` is itself noisy: a Student-t interval from few runs; ``alpha`` is then a
    nominal rate). It detects only pockets that SOME runs reach and others miss; a pocket no run
    ever reaches is invisible to every splitting-only check.

    Args:
      estimates_: ``K >= 2`` scalar :class:`~spheres.maths.stats.LogRateEstimate` with status "ok".
      alpha: false-alarm level in ``(0, 1)``.
    Returns:
      an :class:`Agreement`.
    """
    if not 0 < alpha < 1:
        raise InputError("alpha", f"must lie in (0, 1), got {alpha}")
    if len(estimates_) < 2:
        raise InputError("estimates", f"need at least 2 estimates, got {len(estimates_)}")
    ln10 = math.log(10.0)
    y, se = [], []
    for k, est in enumerate(estimates_):
        if est.status != estimates.OK or not np.isfinite(est.log10_value):
            raise InputError("estimates", f"estimate {k} has status {est.status!r}; only 'ok' estimates compare")
        z = stats.norm.ppf(0.5 + est.confidence / 2)
        s = (est.log10_upper - est.log10_lower) * ln10 / (2 * z)
        if not s > 0:
            raise InputError("estimates", f"estimate {k} has a zero-width interval")
        y.append(est.log10_value * ln10)
        se.append(s)
    y, w = np.asarray(y), 1.0 / np.square(se)
    ybar = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - ybar) ** 2))
    dof = len(y) - 1
    p = float(stats.chi2.sf(q, dof))
    return Agreement(q=q, dof=dof, p_value=p, flagged=p < alpha, n_estimates=len(y))
