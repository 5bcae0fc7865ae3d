"""Training-side defences on the sphere: adversarial points, an input-gradient penalty, feature squeezing.

Every function acts on ONE example ``x`` of shape ``(d,)`` on its sphere ``||x|| = r`` unless it
says otherwise; batch with ``jax.vmap``. The trainer (:mod:`spheres.nets.train`) combines them
with the loss; measurements see a defended model only through its ``logit_fn``.

**The threat set.** The budget is a CHORD distance ``eps`` on the point's own sphere:
``C(x, eps) = {y : ||y|| = r, ||y - x|| <= eps}``, a spherical cap of angular radius
``theta_max = 2 asin(eps / (2 r))`` (the whole sphere once ``eps >= 2 r``). It is the set the
paper's d(E) is measured in.

**PGD on the sphere** (:func:`pgd_attack`; Madry et al. 2018 moved to the sphere's tangent
geometry). From ``y_0 = x``, ``K`` steps of

    g_k = T_{y_k} grad_y L(y_k)                   (tangent part of the loss gradient)
    y'  = cos(a / r) y_k + sin(a / r) r g_k / ||g_k||   (a geodesic step of arc length a)
    y_{k+1} = Proj_C(y')                          (back into the cap, along the great circle to x)

with ``a = step_factor * eps / K`` (Madry's 2.5 eps / K rule). Every iterate lies on the
starting sphere and in ``C``. The returned point is the best iterate (largest loss, ``y_0``
included), so the adversarial loss is never below the clean one.

**Exact worst case of the quadratic net** (:func:`maximize_quadratic_on_cap`,
:func:`quad_worst_case`). For ``f(y) = w ||W y||^2 + b`` the cross-entropy is monotone in
``f`` (increasing for label 0, decreasing for label 1), so the worst point of ``C(x, eps)``
maximises ``q(y) = y^T M y`` with ``M = s w W^T W``, ``s = +1`` (label 0) or ``-1`` (label 1).
Derivation, in the eigenbasis ``M = V diag(m) V^T`` (the right singular directions of ``W``,
``m_i = s w sigma_i^2``, zeros for directions ``W`` cannot see), ``z = V^T x``,
``m_1 = max_i m_i``:

1. A quadratic form on the sphere has no local maxima except its global ones (the top
   eigenspace ``E_1``). So either the cap meets ``E_1`` and the answer is the point of
   ``E_1 ∩ sphere`` closest to ``x``, ``r P_1 z / ||P_1 z||`` (value ``r^2 m_1``), or the maximum
   lies on the cap's rim ``||y - x|| = eps``.
2. For ``mu > m_1`` put ``y(mu) = r u / ||u||`` with ``u_i = z_i / (mu - m_i)``. It satisfies
   ``(mu I - M) y = (nu / 2) x`` with ``nu = 2 r / ||u|| > 0``: the stationarity condition of
   the Lagrangian ``q(y) - mu (||y||^2 - r^2) + nu (x.y - c)`` (``c = r^2 - eps^2 / 2``, so
   ``x.y >= c`` is the cap). Because ``mu I - M`` is positive definite, the Lagrangian is
   concave in ``y`` and ``y(mu)`` is its GLOBAL maximiser over all of ``R^d``; if moreover
   ``||y(mu) - x|| = eps`` (complementary slackness), then for every feasible ``y``
   ``q(y) <= L(y) <= L(y(mu)) = q(y(mu))``: ``y(mu)`` is the exact worst case (weak duality
   closes, no gap).
3. ``D(mu) = ||y(mu) - x||`` runs continuously from ``D(m_1+) = ||r P_1 z/||P_1 z|| - x||`` (the
   point of step 1) down to ``0`` as ``mu -> inf`` (``y(mu) -> x``). If ``D(m_1+) <= eps`` the
   cap meets ``E_1`` (step 1); otherwise ``D(mu) = eps`` has a root, found by bisection on
   ``log(mu - m_1)`` over ``[1e-7, 1e7] x`` the spread of ``m``, always keeping the feasible
   end (``D <= eps``). One ``eigh`` of ``W^T W`` per step serves the whole batch; each example
   costs a few dozen ``O(d)`` evaluations. (When ``z`` has no component on ``E_1`` at all, the
   "hard case" of trust-region problems, the answer is approached to within the bracket's
   resolution; it has probability zero for continuous data.)

   This is the nearest-error secular equation of :func:`spheres.maths.quadratic.nearest_error`
   turned around: there the boundary is fixed and the distance minimised, here the distance
   is fixed and the form maximised.

**Input-gradient penalty** (:func:`input_gradient_penalty`; Ross & Doshi-Velez 2018, Drucker &
LeCun 1992): ``mean_i ||T_{x_i} grad_{x_i} L||^2``, the TANGENT part of the input gradient,
because only movement along the sphere is an attack here; the radial part is the signal that
separates the spheres, and penalising it would fight the task itself.

**Feature squeezing** (Xu, Evans & Qi, NDSS 2018), for vectors (:func:`squeeze`): the direction
``v = sqrt(d) x / ||x||`` (coordinates of scale 1 for a uniform point) is clipped to
``[-R, R]`` and rounded to the ``L = 2^b`` levels ``-R + k 2R / (L - 1)``, ``k = 0..L-1``; the
result ``q`` goes back onto the input's sphere, ``||x|| q / ||q||``. ``L`` is even, so 0 is not a
level and ``||q|| >= sqrt(d) R / (L - 1) > 0``. As a model front end it trains with the
straight-through gradient (:func:`squeeze_ste`: identity Jacobian; Bengio et al. 2013). As a
detector (:func:`squeeze_score`, :func:`detection_report`): the L1 distance between the class
probabilities of ``x`` and of its squeezed version, ``2 |sigmoid f(x) - sigmoid f(squeeze x)|``,
flags ``x`` when above a threshold set on clean points (:func:`calibrate_threshold`).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spheres.core.errors import InputError
from spheres.maths import geometry
from spheres.maths.stats import DEFAULT_CONFIDENCE, RateEstimate, rate_estimate

# ---------------------------------------------------------------------------- the cap and PGD


def project_to_cap(x0: ArrayLike, y: ArrayLike, eps: ArrayLike) -> jax.Array:
    """Nearest point of the cap ``C(x0, eps) = {||y|| = ||x0||, ||y - x0|| <= eps}`` to ``y``.

    ``y`` must lie on the sphere of ``x0``. Inside the cap it is returned unchanged; outside it is
    moved along the great circle through ``x0`` and ``y`` to the rim, angle
    ``theta_max = 2 asin(eps / (2 r))`` from ``x0``: ``cos(theta_max) x0 + sin(theta_max) r u``
    with ``u`` the unit tangent at ``x0`` toward ``y``.

    Args:
      x0: centre of the cap, shape ``(d,)``, non-zero.
      y: point on the sphere ``||y|| = ||x0||``, shape ``(d,)``.
      eps: chord radius ``>= 0`` (scalar, may be traced).
    Returns:
      shape ``(d,)``.

    >>> x0 = jnp.array([1.0, 0.0]); y = jnp.array([0.0, 1.0])
    >>> p = project_to_cap(x0, y, 0.5)
    >>> round(float(jnp.linalg.norm(p - x0)), 6), round(float(jnp.linalg.norm(p)), 6)
    (0.5, 1.0)
    """
    x0, y = jnp.asarray(x0), jnp.asarray(y)
    r = geometry.safe_norm(x0)
    half = jnp.clip(jnp.asarray(eps, x0.dtype) / (2.0 * jnp.where(r > 0, r, 1.0)), 0.0, 1.0)
    theta_max = 2.0 * jnp.arcsin(half)
    theta = geometry.angle_between(x0, y)
    u = geometry.normalize(geometry.tangent_project(x0, y))
    rim = jnp.cos(theta_max) * x0 + jnp.sin(theta_max) * r * u
    return jnp.where(theta > theta_max, rim, y)


def pgd_step(x0: ArrayLike, y: ArrayLike, grad: ArrayLike, eps: ArrayLike, step: ArrayLike) -> jax.Array:
    """One projected ascent step on the sphere of ``x0`` (module docstring).

    Args:
      x0: the clean point (centre of the cap), ``(d,)``.
      y: the current iterate, on the sphere of ``x0``, ``(d,)``.
      grad: the loss gradient at ``y``, ``(d,)`` (only its tangent part is used).
      eps: chord budget (scalar).
      step: arc length of the step (scalar); a zero tangent gradient means no move.
    Returns:
      the next iterate, ``(d,)``, on the sphere of ``x0`` and in ``C(x0, eps)``.
    """
    x0, y = jnp.asarray(x0), jnp.asarray(y)
    r = geometry.safe_norm(x0)
    g = geometry.tangent_project(y, grad)
    moving = geometry.safe_norm(g) > 0
    theta = jnp.where(moving, jnp.asarray(step, y.dtype) / jnp.where(r > 0, r, 1.0), 0.0)
    y = geometry.project_to_sphere(geometry.rotate_toward(y, g, theta), r)
    return project_to_cap(x0, y, eps)


class PGDResult(NamedTuple):
    """Outcome of :func:`pgd_attack` on a batch of ``B`` points in R^d.

    Fields:
      x_adv: float ``(B, d)``, the best iterate of each point (largest loss).
      loss_adv: float ``(B,)``, its loss.
      loss_clean: float ``(B,)``, the loss at the clean point (iterate 0).
      path: float ``(K + 1, B, d)`` every iterate (``return_path=True``), else None.
    """

    x_adv: jax.Array
    loss_adv: jax.Array
    loss_clean: jax.Array
    path: jax.Array | None


def pgd_attack(losses: Callable[[jax.Array], jax.Array], x0: ArrayLike, eps: ArrayLike, steps: int,
               step_factor: float = 2.5, return_path: bool = False) -> PGDResult:
    """Projected gradient ascent of per-example losses on the sphere, within chord distance ``eps``.

    Args:
      losses: ``(B, d) -> (B,)`` per-example losses of a batch (the model in training mode; for
        models without batch norm row ``i`` depends on point ``i`` only).
      x0: clean points, ``(B, d)``, each on its own sphere.
      eps: chord budget ``>= 0`` (scalar, may be traced).
      steps: number of ascent steps ``K >= 1`` (static).
      step_factor: arc step ``step_factor * eps / K``.
      return_path: also return every iterate.
    Returns:
      :class:`PGDResult`; the iterates are not differentiated through (callers stop gradients).
    """
    x0 = jnp.asarray(x0)
    alpha = step_factor * jnp.asarray(eps, x0.dtype) / steps
    step_all = jax.vmap(pgd_step, in_axes=(0, 0, 0, None, None))

    def body(carry, _):
        y, best, best_loss = carry
        loss, vjp = jax.vjp(losses, y)
        (g,) = vjp(jnp.ones_like(loss))
        better = loss > best_loss
        best = jnp.where(better[:, None], y, best)
        best_loss = jnp.where(better, loss, best_loss)
        return (step_all(x0, y, g, eps, alpha), best, best_loss), (y if return_path else None)

    clean = losses(x0)
    (y, best, best_loss), path = jax.lax.scan(body, (x0, x0, clean), None, length=steps)
    last = losses(y)
    better = last > best_loss
    best = jnp.where(better[:, None], y, best)
    best_loss = jnp.where(better, last, best_loss)
    if return_path:
        path = jnp.concatenate([path, y[None]], axis=0)
    return PGDResult(x_adv=best, loss_adv=best_loss, loss_clean=clean, path=path)


# ---------------------------------------------------------------------------- the quad net's exact worst case


def quad_eigen(kernel: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Eigen-decomposition of ``W^T W`` from the quad net's stored kernel ``W^T`` (shape ``(d, h)``).

    Returns:
      ``(lam, V)``: eigenvalues ``(d,)`` (``sigma_i^2`` and zeros for the blind directions,
      ascending) and orthonormal eigenvectors as the columns of ``V`` ``(d, d)``.
    """
    kernel = jnp.asarray(kernel)
    return jnp.linalg.eigh(kernel @ kernel.T)


#: bisection steps on log(mu - m_1) over 14 decades: resolution 14 ln10 / 2^60, far below float32
_SECULAR_STEPS = 60


def maximize_quadratic_on_cap(m: ArrayLike, V: ArrayLike, x: ArrayLike, eps: ArrayLike) -> jax.Array:
    """The maximiser of ``y^T M y`` over the cap ``C(x, eps)``, ``M = V diag(m) V^T`` (module docstring).

    Args:
      m: eigenvalues of ``M``, shape ``(d,)`` (any order, any signs).
      V: orthonormal eigenvectors (columns), ``(d, d)``.
      x: centre of the cap, ``(d,)``, non-zero.
      eps: chord budget ``>= 0`` (scalar, may be traced).
    Returns:
      ``y`` of shape ``(d,)`` on the sphere of ``x`` with ``||y - x|| <= eps`` (to rounding); ``x``
      itself when the budget is below the bisection's resolution (``~1e-7 r``).
    """
    m, V, x = jnp.asarray(m), jnp.asarray(V), jnp.asarray(x)
    eps = jnp.asarray(eps, x.dtype)
    z = V.T @ x
    r = geometry.safe_norm(x)
    gap = jnp.max(m) - m  # >= 0
    scale = jnp.maximum(jnp.max(gap), jnp.finfo(x.dtype).tiny)

    def point(log_t):
        u = z / (jnp.exp(log_t) + gap)
        return r * geometry.normalize(u)

    def dist(log_t):
        return geometry.safe_norm(point(log_t) - z)

    lo0 = jnp.log(scale) + math.log(1e-7)
    hi0 = jnp.log(scale) + math.log(1e7)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        inside = dist(mid) <= eps
        return jnp.where(inside, lo, mid), jnp.where(inside, mid, hi)

    # If even the smallest mu is feasible the cap meets the top eigenspace: take that end.
    lo, hi = jax.lax.fori_loop(0, _SECULAR_STEPS, bisect, (lo0, hi0))
    best = jnp.where(dist(lo0) <= eps, lo0, hi)
    y = point(best)
    return jnp.where(geometry.safe_norm(y - z) <= eps, V @ y, x)


def quad_worst_case(lam: ArrayLike, V: ArrayLike, w: ArrayLike, x: ArrayLike, label: ArrayLike,
                    eps: ArrayLike) -> jax.Array:
    """The point of ``C(x, eps)`` where the quad net's cross-entropy on ``(x, label)`` is largest.

    The net is ``f(y) = w y^T (W^T W) y + b``; the loss is increasing in ``f`` for label 0 and
    decreasing for label 1, so this is :func:`maximize_quadratic_on_cap` with
    ``m = s w lam``, ``s = 1 - 2 label`` (``b`` does not move the maximiser).

    Args:
      lam, V: :func:`quad_eigen` of the kernel (shared by a batch).
      w: the net's output weight (scalar).
      x: the clean point ``(d,)``; label: 0 or 1 (int scalar); eps: chord budget (scalar).
    Returns:
      ``(d,)``.
    """
    s = 1.0 - 2.0 * jnp.asarray(label, jnp.asarray(x).dtype)
    return maximize_quadratic_on_cap(s * jnp.asarray(w) * jnp.asarray(lam), V, x, eps)


# ---------------------------------------------------------------------------- input-gradient penalty


def input_gradient_penalty(losses: Callable[[jax.Array], jax.Array], x: ArrayLike) -> jax.Array:
    """``mean_i ||T_{x_i} g_i||^2`` with ``g = grad_X sum_j losses(X)_j`` (module docstring).

    Args:
      losses: ``(B, d) -> (B,)`` per-example losses (differentiable twice: the penalty is trained).
      x: the batch, ``(B, d)``.
    Returns:
      scalar.
    """
    x = jnp.asarray(x)
    g = jax.grad(lambda xb: jnp.sum(losses(xb)))(x)
    gt = jax.vmap(geometry.tangent_project)(x, g)
    return jnp.mean(jnp.sum(gt * gt, axis=-1))


# ---------------------------------------------------------------------------- feature squeezing


def _check_squeezer(bits: int, half_range: float) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise InputError("bits", f"must be an integer in [1, 16], got {bits!r}")
    if not (isinstance(half_range, (int, float, np.floating)) and math.isfinite(half_range) and half_range > 0):
        raise InputError("half_range", f"must be a finite number > 0, got {half_range!r}")


def squeeze_levels(bits: int, half_range: float) -> np.ndarray:
    """The ``2^bits`` quantisation levels ``-R + k 2R / (2^b - 1)`` (float64 ``(2^b,)``).

    >>> squeeze_levels(2, 3.0).tolist()
    [-3.0, -1.0, 1.0, 3.0]
    """
    _check_squeezer(bits, half_range)
    return np.linspace(-half_range, half_range, 2**bits)


def squeeze_index(x: ArrayLike, bits: int, half_range: float) -> jax.Array:
    """Level index ``k in [0, 2^b)`` of each coordinate of ``x`` (``(d,)`` -> int32 ``(d,)``)."""
    _check_squeezer(bits, half_range)
    x = jnp.asarray(x)
    v = geometry.normalize(x) * math.sqrt(x.shape[-1])
    top = 2**bits - 1
    t = (jnp.clip(v, -half_range, half_range) + half_range) * (top / (2.0 * half_range))
    return jnp.clip(jnp.round(t), 0, top).astype(jnp.int32)


def squeeze(x: ArrayLike, bits: int, half_range: float = 3.0) -> jax.Array:
    """Feature squeezing of one point: quantise its direction to ``2^bits`` levels per coordinate
    over ``[-R, R]`` (in units of ``||x|| / sqrt(d)``) and put it back on the sphere of ``x``.

    Args:
      x: point, shape ``(d,)``.
      bits: ``b`` in [1, 16] (static).
      half_range: ``R > 0`` (static).
    Returns:
      shape ``(d,)``, ``||result|| = ||x||``; its coordinates are the levels times ``||x|| / ||q||``.

    >>> x = jnp.array([0.3, -0.2, 0.9, 0.1])
    >>> y = squeeze(x, 1)          # 1 bit: the sign pattern, rescaled onto the sphere
    >>> bool(jnp.allclose(jnp.linalg.norm(y), jnp.linalg.norm(x))), [float(v > 0) for v in y]
    (True, [1.0, 0.0, 1.0, 1.0])
    """
    x = jnp.asarray(x)
    k = squeeze_index(x, bits, half_range)
    q = -half_range + k.astype(x.dtype) * (2.0 * half_range / (2**bits - 1))
    return geometry.safe_norm(x) * geometry.normalize(q)


def squeeze_ste(x: ArrayLike, bits: int, half_range: float = 3.0) -> jax.Array:
    """:func:`squeeze` forward, identity backward (straight-through): ``x + stop_grad(squeeze(x) - x)``."""
    x = jnp.asarray(x)
    return x + jax.lax.stop_gradient(squeeze(x, bits, half_range) - x)


def squeeze_score(logit_fn: Callable, variables, x: ArrayLike, bits: int, half_range: float = 3.0) -> jax.Array:
    """Detector score of one point: ``2 |sigmoid f(x) - sigmoid f(squeeze x)|`` in [0, 2]
    (the L1 distance of the two class-probability vectors, Xu et al. 2018)."""
    p = jax.nn.sigmoid(logit_fn(variables, x))
    q = jax.nn.sigmoid(logit_fn(variables, squeeze(x, bits, half_range)))
    return 2.0 * jnp.abs(p - q)


def squeeze_flip(logit_fn: Callable, variables, x: ArrayLike, bits: int, half_range: float = 3.0) -> jax.Array:
    """The threshold-free detector of one point: True iff the predictions on ``x`` and on
    ``squeeze(x)`` differ (``(logit > 0)`` at each; the "prediction change" of Xu et al. 2018)."""
    a = logit_fn(variables, x) > 0
    b = logit_fn(variables, squeeze(x, bits, half_range)) > 0
    return a != b


def calibrate_threshold(clean_scores: ArrayLike, false_alarm: float = 0.05) -> float:
    """The threshold that flags a fraction ``<= false_alarm`` of ``clean_scores`` (``(n,)``): the
    ``ceil((1 - false_alarm) n)``-th smallest score (flag iff score > threshold). Calibrate on
    clean points other than those :func:`detection_report` counts false alarms on."""
    s = np.sort(np.asarray(clean_scores, np.float64).reshape(-1))
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise InputError("clean_scores", "need at least one finite score")
    if not 0.0 <= false_alarm < 1.0:
        raise InputError("false_alarm", f"must be in [0, 1), got {false_alarm}")
    return float(s[max(int(math.ceil((1.0 - false_alarm) * s.size)) - 1, 0)])


class DetectionReport(NamedTuple):
    """The squeezing detector on attack outputs and clean points (Clopper-Pearson intervals).

    Fields:
      threshold: the score threshold (flag iff score > threshold).
      detection: :class:`~spheres.maths.stats.RateEstimate` of flagged attack outputs (count, n,
        rate, interval).
      false_alarm: :class:`~spheres.maths.stats.RateEstimate` of flagged clean points.
    """

    threshold: float
    detection: RateEstimate
    false_alarm: RateEstimate


def detection_report(adv_scores: ArrayLike, clean_scores: ArrayLike, threshold: float,
                     confidence: float = DEFAULT_CONFIDENCE) -> DetectionReport:
    """Detection rate on attack outputs and false-alarm rate on clean points at ``threshold``.

    Args:
      adv_scores: :func:`squeeze_score` of the attack's outputs (the misclassified points it
        found; failed attacks left out), shape ``(n_adv,)``, ``n_adv >= 1``.
      clean_scores: scores of clean points, ``(n_clean,)``, ``n_clean >= 1``.
      threshold: flag iff score > threshold.
      confidence: the intervals' coverage.
    """
    adv = np.asarray(adv_scores, np.float64).reshape(-1)
    clean = np.asarray(clean_scores, np.float64).reshape(-1)
    for name, v in (("adv_scores", adv), ("clean_scores", clean)):
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise InputError(name, "need at least one finite score")
    return DetectionReport(threshold=float(threshold),
                           detection=rate_estimate(int(np.sum(adv > threshold)), adv.size, confidence),
                           false_alarm=rate_estimate(int(np.sum(clean > threshold)), clean.size, confidence))
