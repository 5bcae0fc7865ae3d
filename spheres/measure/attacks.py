"""Nearest-error search (attacks) for any classifier, on the sphere or in the ambient space.

For a correctly classified point ``x`` (label 0 on the inner sphere, 1 on the outer one) the
attack looks for a misclassified point ``y`` as close to ``x`` as it can (docs/science.md section 6):

* **on-manifold**: ``y`` on the sphere of radius ``r = ||x||`` (the distance that defines
  ``d(E)``, docs/science.md section 2), reported as the CHORD distance ``||y - x||``;
* **off-manifold**: ``y`` anywhere in ``R^d``.

Every reported point is a misclassified point, re-checked at the end (and, on-manifold, on the
sphere to 1e-6 relative), so the reported distance is an UPPER bound on the true nearest-error
distance; the quality of the attack is how close that bound is (graded in the tests against
the exact answer of :mod:`spheres.maths.quadratic` and the closed form for caps).

Algorithm, written once for a *manifold* (sphere or flat space) given by a tangent projection
``T_y``, a retraction ``y <- R_y(v)`` (sphere: move by angle ``||v|| / r`` along the great circle
in direction ``v``, :func:`spheres.maths.geometry.rotate_toward`, then renormalise; flat: ``y + v``)
and a midpoint (sphere: normalised chord midpoint = arc midpoint; flat: ``(a + b)/2``). With
``s(y)`` the error score (:func:`spheres.maths.classifiers.error_score`, positive iff misclassified)
and ``n(y) = T_y grad s / ||T_y grad s||``:

1. **Ascent to the first flip** (``ascent_steps`` at most): ``y <- R_y(h n(y))`` with the
   Newton-like length ``h = clip(f * (-s) / ||T_y grad s||, min_step r, max_step r)``: a linear
   score is crossed in one step, a curved one in a few. The factor ``f`` starts at ``overshoot``
   and grows by ``ascent_growth`` per step while the direction keeps its sense (plateaus of the
   score, where the Newton length underestimates), and falls back when the direction reverses
   (a ridge was stepped over). Stop at the first misclassified iterate.
2. **Bisection** (``bisections`` halvings) on the arc (segment) between the last correct and
   the first wrong iterate, keeping the wrong end, then one Newton step to the score value
   ``s = margin r`` (so that the verdict survives re-evaluation with other rounding).
3. **Boundary refinement** (``refine_steps``). The greedy path is not the shortest one: it
   follows the score's gradient field, which curves (for the ellipsoid classifier it is the
   power-iteration flow ``y_i ~ x_i exp(c_i t)``, while the nearest error has
   ``y_i ~ x_i / (e + c_max - c_i)``, :func:`spheres.maths.quadratic.nearest_error`). So the crossing is
   improved by projected gradient descent of ``||y - x||`` along the boundary ``{s = 0}`` (within
   the sphere) with backtracking: from the current point ``y``, step ``eta P_n T_y (x - y)``
   (``P_n`` removes the component along ``n``), then ``newton_steps`` Newton steps along ``n``
   back to the score value ``s = margin r`` (the retraction onto the boundary). The trial is accepted
   iff it is misclassified and closer to ``x``; then ``eta <- min(grow eta, 1)``, else
   ``eta <- shrink eta``. Distances therefore decrease monotonically from step 2's point and
   every accepted point is a verified error. A fixed point satisfies the KKT condition of the
   nearest-error problem (``T_y (x - y)`` parallel to ``T_y grad s``).

Default schedule and why (tuned on ellipsoid classifiers with d = 50..500 and alpha spectra
"a few alphas above 1", broad and log-normal spreads, nearly degenerate, a handful barely above
1, one huge alpha (a thin curved error set), "paper-like" with blind directions; and on caps.
With these defaults the attack's mean distance is within 1e-4 relative of the exact ``d(E)`` on
all of them, far inside the 2% grade of tests/test_attacks.py):

* ``max_step = 0.05``: at most 5% of the radius per ascent step (chord distances to errors in
  the paper's regime are 0.02..1 r), ``min_step = 1e-3``.
* ``overshoot = 1.25``, ``ascent_growth = 1.2``: most points flip after 1-20 steps; the growth
  rescues plateaus. ``ascent_steps = 1000``: when the error set is a tiny cap around one axis
  that the start point barely touches (one alpha of 1.001, the start's coordinate ~1e-3), the
  gradient path spirals in like a power iteration with a small gap: at d = 500 some points needed
  ~600 steps (200 steps left 2 of 64 unfound). Under ``vmap`` the loop runs until the slowest
  point of the batch flips, so the budget costs time only when such points exist.
* ``bisections = 24``: ``0.05 / 2^24 ~ 3e-9 r``, below float32 resolution.
* ``refine_steps = 100``, ``refine_rate = 0.5``, ``grow = 1.5``, ``shrink = 0.5``,
  ``newton_steps = 1``: without backtracking a fixed rate either crawls (0.05) or, on strongly
  curved boundaries far from ``x`` (distances ~1), stalls off the boundary (0.2 and 0.5 left
  errors of 4-9%); with backtracking 60 steps already gave < 0.1% and 100 give ~1e-4.
* ``margin = 2e-6``: Newton steps aim for the score value ``2e-6 r`` (about 10x the float32
  rounding of an O(1) score), i.e. ``2e-6 r / ||T grad s||`` inside the error set: the only bias,
  upward, of the reported distances (~1e-5 relative in the graded cases).

Everything acts on ONE point (:func:`nearest_error`) and is batched over points with ``vmap``;
loops are ``lax.while_loop``/``fori_loop`` with static budgets inside one jitted program. Points
already misclassified get distance 0 and are their own error point. Points where no flip is found
within the budget get ``found = False`` and distance NaN: they are reported as failures, never
averaged in.

Two levels of API:

* ``make_attack(logit_fn, schedule, on_manifold)`` returns an :class:`Attack`, the compiled
  search over given points, ``attack(params, xs, labels) -> AttackResult`` (per point; the
  graded answer in tests, the points of the slices figure). Keep it and call it for every model:
  nothing is cached behind the caller's back.
* The measurement of ONE model, with the shape of every measurement in :mod:`spheres.measure`::

      measure(key, logit_fn, params, AttackConfig(dim=d, points=n, sphere="inner"))
          -> DistanceEstimate

  draws ``points`` uniform points of the sphere from ``key`` (:func:`start_points`), attacks them
  and summarises (:func:`summarize`): a :class:`spheres.maths.stats.DistanceEstimate`, ``d(E)``
  with its standard error and the failures counted.

An ensemble is the caller's ``jax.vmap`` of the per-model :attr:`Attack.program` over ``params``
(``in_axes=(0, None, None)``: the same points for every model); its members agree with single
calls to float32 rounding (``rtol ~ 1e-6``: a vmapped model batches its matmuls differently),
with the same ``found`` verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spheres.maths import stats
from spheres.core.errors import InputError
from spheres.maths.classifiers import LogitFn, error_score, misclassified
from spheres.maths.geometry import (OUTER_RADIUS, normalize, project_to_sphere, rotate_toward, safe_norm,
                                    sample_sphere, tangent_project)
from spheres.measure.config import check_sphere, sphere_label, sphere_radius

SPHERE_RTOL = 1e-6
MATMUL_PRECISION = "float32"


@dataclass(frozen=True)
class AttackSchedule:
    """Static attack schedule (see the module docstring for the defaults and why); validated on construction.

    Attributes:
      ascent_steps: maximum ascent steps before giving up on a point (int).
      max_step: largest ascent step, as a fraction of the radius ``r = ||x||``.
      min_step: smallest ascent step, fraction of ``r``.
      overshoot: initial factor on the Newton length ``-s / ||T grad s||`` of an ascent step.
      ascent_growth: growth of that factor per ascent step in an unchanged direction.
      bisections: halvings of the crossing bracket.
      refine_steps: boundary-descent steps after the crossing (0 disables refinement).
      refine_rate: initial fraction ``eta`` of the tangential step toward ``x`` (refinement).
      newton_steps: Newton steps back to the boundary per refinement trial.
      grow, shrink: factors on ``eta`` after an accepted / rejected trial.
      margin: score value ``s = margin r`` that Newton steps aim for (inside the error set).
    """

    ascent_steps: int = 1000
    max_step: float = 0.05
    min_step: float = 1e-3
    overshoot: float = 1.25
    ascent_growth: float = 1.2
    bisections: int = 24
    refine_steps: int = 100
    refine_rate: float = 0.5
    newton_steps: int = 1
    grow: float = 1.5
    shrink: float = 0.5
    margin: float = 2e-6

    def __post_init__(self):
        for name in ("ascent_steps", "bisections", "refine_steps"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 0):
                raise InputError(name, f"must be an integer >= 0, got {v!r}")
        if self.ascent_steps < 1:
            raise InputError("ascent_steps", "must be >= 1")
        if not 0 < self.min_step <= self.max_step:
            raise InputError("min_step", f"need 0 < min_step <= max_step, got {self.min_step}, {self.max_step}")
        if not self.overshoot >= 1:
            raise InputError("overshoot", f"must be >= 1, got {self.overshoot}")
        if not 0 < self.refine_rate <= 1:
            raise InputError("refine_rate", f"must lie in (0, 1], got {self.refine_rate}")
        if not (isinstance(self.newton_steps, (int, np.integer)) and self.newton_steps >= 1):
            raise InputError("newton_steps", f"must be an integer >= 1, got {self.newton_steps!r}")
        if not (self.grow >= 1 and self.ascent_growth >= 1):
            raise InputError("grow", f"grow and ascent_growth must be >= 1, got {self.grow}, {self.ascent_growth}")
        if not 0 < self.shrink < 1:
            raise InputError("shrink", f"must lie in (0, 1), got {self.shrink}")
        if not 0 <= self.margin < 1e-2:
            raise InputError("margin", f"must lie in [0, 0.01), got {self.margin}")


@dataclass(frozen=True)
class AttackConfig:
    """What one attack measurement estimates (validated on construction; errors name the field).

    Attributes:
      dim: dimension ``d >= 2``.
      points: uniform points of the sphere attacked (the ``d(E)`` sample size, >= 1).
      sphere: "inner" (radius 1, label 0) or "outer" (radius ``outer_radius``, label 1).
      outer_radius: ``R``, the task's outer radius.
      on_manifold: search on the sphere (the distance that defines ``d(E)``) or in ``R^d``.
      schedule: the :class:`AttackSchedule`.
      confidence: coverage of the reported normal interval on the mean.
    """

    dim: int
    points: int = 100
    sphere: str = "inner"
    outer_radius: float = OUTER_RADIUS
    on_manifold: bool = True
    schedule: AttackSchedule = AttackSchedule()
    confidence: float = stats.DEFAULT_CONFIDENCE

    def __post_init__(self):
        for name, lo in (("dim", 2), ("points", 1)):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= lo):
                raise InputError(name, f"must be an integer >= {lo}, got {v!r}")
        check_sphere(self.sphere, self.outer_radius)
        if not isinstance(self.schedule, AttackSchedule):
            raise InputError("schedule", f"must be an AttackSchedule, got {type(self.schedule).__name__}")
        if not 0 < self.confidence < 1:
            raise InputError("confidence", f"must lie in (0, 1), got {self.confidence!r}")

    @property
    def radius(self) -> float:
        """Radius of the sphere whose points are attacked."""
        return sphere_radius(self.sphere, self.outer_radius)

    @property
    def label(self) -> int:
        """True class of the sphere's points (0 inner, 1 outer)."""
        return sphere_label(self.sphere)


class AttackResult(NamedTuple):
    """Per-point attack outcome. Shapes for ``n`` points (``(M, n, ...)`` for ``M`` models).

    Attributes:
      distance: float ``(n,)``: ``||point - x||`` (chord on-manifold); 0 for points already
        misclassified; NaN where ``found`` is False.
      point: float ``(n, d)``: the misclassified point found (``x`` itself if already wrong;
        the last ascent iterate where nothing was found).
      found: bool ``(n,)``: a verified error point was found (or ``x`` was already wrong).
      initially_wrong: bool ``(n,)``: ``x`` itself is misclassified (distance 0).
      ascent_steps: int32 ``(n,)``: ascent steps used before the first flip.
    """

    distance: jax.Array
    point: jax.Array
    found: jax.Array
    initially_wrong: jax.Array
    ascent_steps: jax.Array


class _Manifold(NamedTuple):
    tangent: Any  # (y, v) -> v projected on the tangent space at y
    retract: Any  # (y, v, r) -> point reached from y by the tangent displacement v
    midpoint: Any  # (a, b, r) -> midpoint of the arc / segment between a and b


def _sphere_retract(y, v, r):
    return project_to_sphere(rotate_toward(y, v, safe_norm(v) / r), r)


SPHERE = _Manifold(tangent=tangent_project, retract=_sphere_retract,
                   midpoint=lambda a, b, r: project_to_sphere(a + b, r))
FLAT = _Manifold(tangent=lambda y, v: v, retract=lambda y, v, r: y + v,
                 midpoint=lambda a, b, r: 0.5 * (a + b))


def nearest_error(logit_fn: LogitFn, params: Any, x: ArrayLike, label: ArrayLike,
                  config: AttackSchedule = AttackSchedule(), on_manifold: bool = True,
                  start: ArrayLike | None = None) -> AttackResult:
    """Attack ONE point ``x`` (shape ``(d,)``) of class ``label`` (0 inner, 1 outer); see module docstring.

    Args:
      logit_fn: per-example classifier ``logit_fn(params, x) -> scalar``.
      params: one model's parameters.
      x: the point, shape ``(d,)``; on-manifold the search stays on the sphere of radius ``||x||``.
      label: int scalar, the true class of ``x``.
      config: the static :class:`AttackSchedule`.
      on_manifold: sphere-constrained (True) or free (False) search.
      start: where the ascent starts (a restart; on the sphere of ``x`` on-manifold); the refinement
        still descends toward ``x`` and the distance is from ``x``, so the result is an upper bound
        on ``x``'s nearest-error distance as always. ``None``: start at ``x``.
    Returns:
      :class:`AttackResult` with scalar fields (``point`` of shape ``(d,)``).
    """
    man = SPHERE if on_manifold else FLAT
    x = jnp.asarray(x)
    dtype = x.dtype
    r = safe_norm(x)
    label = jnp.asarray(label, jnp.int32)

    def score_and_tangent_grad(y):
        logit, g = jax.value_and_grad(lambda z: logit_fn(params, z))(y)
        s = error_score(logit, label)
        gs = jnp.where(label == 1, -g, g)
        return logit, s, man.tangent(y, gs)

    # 1. ascent to the first flip
    y0 = x if start is None else jnp.asarray(start, dtype)
    logit0, s0, g0 = score_and_tangent_grad(y0)
    wrong0 = misclassified(logit0 if start is None else logit_fn(params, x), label)

    def ascent_cond(c):
        logit, k = c[2], c[5]
        return (~misclassified(logit, label)) & (k < config.ascent_steps)

    def ascent_body(c):
        _, y, _, s, gt, k, factor, n_prev = c
        gn = safe_norm(gt)
        n = normalize(gt)
        # The overshoot factor grows geometrically while the path goes on in the same direction
        # (plateaus of the score) and falls back when the direction reverses (the path stepped
        # over a ridge of the score without flipping): steps stay capped at max_step r.
        factor = jnp.where(jnp.dot(n, n_prev) >= 0, factor * config.ascent_growth,
                           jnp.maximum(factor * config.shrink, config.overshoot))
        newton = factor * (-s) / jnp.where(gn > 0, gn, 1.0)
        h = jnp.clip(jnp.where(gn > 0, newton, config.max_step * r), config.min_step * r, config.max_step * r)
        y_new = man.retract(y, h * n, r)
        logit, s_new, gt_new = score_and_tangent_grad(y_new)
        return (y, y_new, logit, s_new, gt_new, k + 1, factor, n)

    factor0 = jnp.asarray(config.overshoot / config.ascent_growth, dtype)
    # the last correct iterate starts at x: a restart whose start is already wrong bisects the arc
    # from x to it (no ascent step runs), so the crossing lies between them
    init = (x, y0, logit0, s0, g0, jnp.int32(0), factor0, normalize(g0))
    y_prev, y_wrong, logit_last, _, _, steps, _, _ = jax.lax.while_loop(ascent_cond, ascent_body, init)
    flipped = misclassified(logit_last, label)

    # 2. bisection on the arc/segment between the last correct and the first wrong iterate
    def bisect(_, ab):
        a, b = ab
        m = man.midpoint(a, b, r)
        m_wrong = misclassified(logit_fn(params, m), label)
        return (jnp.where(m_wrong, a, m), jnp.where(m_wrong, m, b))

    _, y_cross = jax.lax.fori_loop(0, config.bisections, bisect, (y_prev, y_wrong))

    # 3. refinement: projected descent of ||y - x|| along the boundary with backtracking
    def newton(y):
        """One Newton step along n(y) toward the score value s = margin r (clipped to max_step r).

        The target is in score units on purpose: it must beat the float32 rounding of the score,
        which lives in score units; where the score is flat (small ||T grad s||) the point then
        sits deeper inside, where a target in distance units would drown in rounding and stall
        the backtracking (measured: 3-5% too far on nearly flat spectra)."""
        _, s, gt = score_and_tangent_grad(y)
        gn = safe_norm(gt)
        h = jnp.clip((config.margin * r - s) / jnp.where(gn > 0, gn, 1.0), -config.max_step * r,
                     config.max_step * r)
        return man.retract(y, h * normalize(gt), r)

    def refine(_, c):
        y, d, eta = c
        _, _, gt = score_and_tangent_grad(y)
        n = normalize(gt)
        w = man.tangent(y, x - y)
        w_perp = w - jnp.dot(w, n) * n
        trial = newton(man.retract(y, eta * w_perp, r))
        for _ in range(config.newton_steps - 1):
            trial = newton(trial)
        d_trial = safe_norm(trial - x)
        accept = misclassified(logit_fn(params, trial), label) & (d_trial < d)
        eta = jnp.where(accept, jnp.minimum(eta * config.grow, 1.0), eta * config.shrink)
        return (jnp.where(accept, trial, y), jnp.where(accept, d_trial, d), eta)

    # the bisection's wrong end sits within rounding of the boundary: one Newton step puts it
    # score margin r, so that the verdict "misclassified" survives any re-evaluation
    pushed = newton(y_cross)
    y_start = jnp.where(misclassified(logit_fn(params, pushed), label), pushed, y_cross)
    eta0 = jnp.asarray(config.refine_rate, dtype)
    best, _, _ = jax.lax.fori_loop(0, config.refine_steps, refine, (y_start, safe_norm(y_start - x), eta0))

    # verification: the reported point is misclassified (and on the sphere)
    ok = misclassified(logit_fn(params, best), label)
    if on_manifold:
        ok &= jnp.abs(safe_norm(best) - r) <= SPHERE_RTOL * r
    found_new = flipped & ok
    point = jnp.where(wrong0, x, jnp.where(found_new, best, y_wrong))
    found = wrong0 | found_new
    distance = jnp.where(wrong0, jnp.zeros((), dtype),
                         jnp.where(found_new, safe_norm(best - x), jnp.full((), jnp.nan, dtype)))
    return AttackResult(distance=distance, point=point, found=found, initially_wrong=wrong0,
                        ascent_steps=jnp.where(wrong0, 0, steps))


@dataclass(frozen=True)
class Attack:
    """The compiled nearest-error search of one classifier family, built by :func:`make_attack`.

    Attributes:
      logit_fn: the classifier ``logit_fn(params, x) -> scalar``.
      schedule: the :class:`AttackSchedule`.
      on_manifold: sphere-constrained (True) or free (False) search.
      program: the pure per-model search over points ``(params, xs (n, d), labels (n,)) ->``
        :class:`AttackResult` of arrays ``(n,)`` / ``(n, d)`` (:func:`nearest_error` vmapped over
        points, full float32 matmuls); batch it over models with ``jax.vmap(program, (0, None, None))``.
      compiled: ``jax.jit(program)``, what a single-model call runs.
      restart_program: like ``program`` with the ascent's starts given separately:
        ``(params, xs (n, d), starts (n, d), labels (n,))`` (see :func:`restart_points`).
    """

    logit_fn: LogitFn
    schedule: AttackSchedule
    on_manifold: bool
    program: Callable
    compiled: Callable
    restart_program: Callable | None = None

    def __call__(self, params: Any, xs: ArrayLike, labels: ArrayLike | int = 0) -> AttackResult:
        """Attack the points ``xs`` (shape ``(n, d)``) of class ``labels`` (int or shape ``(n,)``) of ONE model."""
        xs, labels = check_points(xs, labels)
        return self.compiled(params, xs, labels)


def check_points(xs: ArrayLike, labels: ArrayLike | int = 0) -> tuple[jax.Array, jax.Array]:
    """``xs`` as a batch ``(n, d)`` and ``labels`` broadcast to int32 ``(n,)``.

    Raises:
      InputError: ``xs`` is not a non-empty batch of points.
    """
    xs = jnp.asarray(xs)
    if xs.ndim != 2 or xs.shape[0] < 1:
        raise InputError("points", f"need a batch of points of shape (n, d), got {xs.shape}")
    return xs, jnp.broadcast_to(jnp.asarray(labels, jnp.int32), xs.shape[:1])


def make_attack(logit_fn: LogitFn, schedule: AttackSchedule = AttackSchedule(), on_manifold: bool = True) -> Attack:
    """Build (and jit, lazily) the batched attack of ``logit_fn``; keep it to attack many models and
    points (a new ``make_attack`` compiles again)."""
    if not isinstance(schedule, AttackSchedule):
        raise InputError("schedule", f"must be an AttackSchedule, got {type(schedule).__name__}")
    on_manifold = bool(on_manifold)

    def one(params, x, label):
        # full float32 matmuls on accelerators too: the attack's verdicts are signs of logits
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return nearest_error(logit_fn, params, x, label, schedule, on_manifold)

    def one_from(params, x, start, label):
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return nearest_error(logit_fn, params, x, label, schedule, on_manifold, start=start)

    program = jax.vmap(one, in_axes=(None, 0, 0))
    return Attack(logit_fn=logit_fn, schedule=schedule, on_manifold=on_manifold, program=program,
                  compiled=jax.jit(program), restart_program=jax.vmap(one_from, in_axes=(None, 0, 0, 0)))


def restart_points(key: jax.Array, xs: ArrayLike, jitter: float) -> jax.Array:
    """New starts for points whose attack failed: each ``x`` moved along a random tangent direction by
    a chord of ``jitter * ||x||`` (a great-circle move; still on the sphere of ``x``).

    Args:
      key: a ``jax.random.key``.
      xs: ``(n, d)`` points.
      jitter: the move as a fraction of the radius, in ``(0, 2)``.
    Returns:
      ``(n, d)`` starts.
    """
    xs = jnp.asarray(xs)
    g = jax.random.normal(key, xs.shape, xs.dtype)
    angle = 2.0 * jnp.arcsin(jnp.asarray(jitter, xs.dtype) / 2.0)  # chord c = 2 r sin(theta / 2)
    return jax.vmap(lambda x, v: rotate_toward(x, v, angle))(xs, g)


def strict_upper_bound(result: AttackResult, radius: float) -> Any:
    """The mean nearest-error distance with every failure counted at ``2 radius``, the largest chord on
    the sphere: a strict upper bound on the points' mean distance to the error set whatever the
    failures hide (``nan`` where no point found an error: then no error set may exist at all).

    ``(n,)`` distances give a Python float; ``(M, n)`` give ``(M,)``.
    """
    d = np.asarray(result.distance, np.float64)
    found = np.asarray(result.found, bool)
    filled = np.where(found, d, 2.0 * radius)
    out = np.where(found.any(axis=-1), filled.mean(axis=-1), np.nan)
    return float(out) if out.ndim == 0 else out


def attack(logit_fn: LogitFn, params: Any, xs: ArrayLike, labels: ArrayLike | int = 0, *,
           schedule: AttackSchedule = AttackSchedule(), on_manifold: bool = True) -> AttackResult:
    """Attack a batch of points ``xs`` (shape ``(n, d)``) of class ``labels`` of ONE model, once.

    ``make_attack(logit_fn, schedule, on_manifold)(params, xs, labels)``: compiles on every call.
    Returns an :class:`AttackResult` of arrays ``(n,)`` / ``(n, d)``.
    """
    return make_attack(logit_fn, schedule, on_manifold)(params, xs, labels)


def start_points(key: jax.Array, config: AttackConfig) -> jax.Array:
    """The ``config.points`` uniform points of ``config.sphere`` that :func:`measure` attacks.

    Point ``k`` is ``sample_sphere(split(key, points)[k], dim, radius)``; shape ``(points, dim)``, float32.
    """
    radius = config.radius
    return jax.vmap(lambda k: sample_sphere(k, config.dim, radius))(jax.random.split(key, config.points))


def measure(key: jax.Array, logit_fn: LogitFn, params: Any, config: AttackConfig) -> stats.DistanceEstimate:
    """``d(E)`` of ONE model by attack: mean nearest-error distance from ``config.points`` uniform points.

    Args:
      key: a ``jax.random.key``; it draws the points (:func:`start_points`).
      logit_fn: per-example classifier ``logit_fn(params, x) -> scalar``.
      params: one model's parameters.
      config: an :class:`AttackConfig`.
    Returns:
      a :class:`~spheres.maths.stats.DistanceEstimate` (an upper bound on the exact ``d(E)`` of those
      points, up to the margin; failures counted, never averaged in). Compiles on every call; build
      the :class:`Attack` once with :func:`make_attack` to measure many models.
    """
    search = make_attack(logit_fn, config.schedule, config.on_manifold)
    return summarize(search(params, start_points(key, config), config.label), config.confidence)


def summarize(result: AttackResult, confidence: float = stats.DEFAULT_CONFIDENCE) -> stats.DistanceEstimate:
    """``d(E)`` from an attack: mean and SE over the found points, with the failure count.

    For one model (``distance`` of shape ``(n,)``) the fields are Python numbers; for an ensemble
    (``(M, n)``) they are numpy arrays of shape ``(M,)``, one estimate per model.
    """
    distance = np.asarray(result.distance, np.float64)
    found = np.asarray(result.found, bool)
    if distance.ndim == 2:
        rows = [stats.distance_estimate(distance[i], found[i], confidence) for i in range(distance.shape[0])]
        cols = {f: np.asarray([getattr(r, f) for r in rows]) for f in stats.DistanceEstimate._fields}
        return stats.DistanceEstimate(**{**cols, "confidence": rows[0].confidence, "method": rows[0].method})
    if distance.ndim != 1:
        raise InputError("result", f"distances must have shape (n,) or (M, n), got {distance.shape}")
    return stats.distance_estimate(distance, found, confidence)
