"""Attributions with a ground truth: input gradients, boundary normals, boundary attributions, band Shapley values.

On the two-sphere task the right answer is known. The Bayes-optimal boundary is the sphere of
radius ``(1 + R)/2`` and its normal at every point is radial, ``x/||x||``; the quadratic network's
boundary is an ellipsoid ``{sum_i alpha_i z_i^2 = 1}`` (rotated coordinates ``z = V^T x``) whose
normal at ``x`` is ``V A z`` with ``A = diag(alpha)`` (:mod:`spheres.maths.quadratic`). So the
claims attribution methods make on image models can be graded here exactly.

Every measurement acts on ONE labelled point ``x`` (shape ``(d,)``) of ONE model given as
``logit_fn(params, x)`` (the contract of :mod:`spheres.maths.classifiers`); batch with ``vmap``.
The measurements, with ``f`` the logit and ``u(v) = v / ||v||``:

* **gradient alignment** ``cos(grad f(x), x/||x||)``: 1 for the radial ideal.
* **boundary normal** (:func:`boundary_normal`): the nearest error ``x'`` found by the attack
  :func:`spheres.measure.attacks.nearest_error` on the sphere through ``x`` (``on``) or in ``R^d``
  (``off``), and the model's unit normal there ``n = u(grad f(x'))``; its cosine and angle to the
  radial direction ``x'/||x'||``; and ``cos(grad f(x), n)``, the alignment of the plain gradient
  with the boundary normal, which Wang, Fredrikson & Datta (2021, "Robust models are more
  interpretable because attributions look normal", ICLR 2022) say is high when the boundary is
  smooth. For the quadratic network the exact nearest error ``y*`` and exact normal ``V A V^T y*``
  are in :func:`quadratic_exact_boundary`.
* **boundary smoothness** (:func:`boundary_spread`): off-sphere nearest errors from ``K`` starts
  ``x_k`` rotated by a small angle away from ``x``; the spread of their normals
  ``1 - ||mean_k n_k||`` beside the spread of their radial directions ``1 - ||mean_k u(x'_k)||``.
  For any boundary that is a sphere about the origin the two spreads are equal (ratio 1); a
  curved or rough boundary has a larger normal spread than position spread.
* **boundary attributions** (Wang et al. 2021): BSM, the gradient at the off-sphere nearest error
  ``grad f(x')``; BIG, integrated gradients from the baseline ``x'`` to ``x``. Integrated gradients
  (Sundararajan, Taly & Yan 2017) along the straight path from a baseline ``b``:
  ``IG_i = (x_i - b_i) int_0^1 d_i f(b + t (x - b)) dt``, by the midpoint rule with ``steps`` nodes;
  its completeness gap ``sum_i IG_i - (f(x) - f(b))`` measures the quadrature error. Each is graded
  against the same method applied to the radial ideal ``f*(x) = ||x||`` on the same path
  (``grad f* = x/||x||``; ``IG*_i = (x_i - b_i) int u(b + t (x - b))_i dt``, the same quadrature), and
  compared with the plain gradient and plain IG from ``b = 0`` (or a stated baseline).
* **band Shapley values** (:func:`coalition_worths`, :func:`shapley_from_worths`): the input
  directions (columns of an orthogonal ``basis``) are split into ``M <= 10`` bands; the worth of a
  coalition ``S`` of bands is the mean log-likelihood ``E log p(y | h_S)`` of the true label when
  the bands outside ``S`` are taken from an independent point ``x~`` (after Luo et al. 2024,
  I-ASIDE, where the bands are spectral). Two replacements:
  ``same_sphere`` (default): ``x~`` uniform on the sphere of ``x`` and the hybrid renormalised onto
  that sphere, so the norm (which carries the label) is kept and the worth measures how the model
  depends on the *directions*; ``independent``: ``x~`` an independent example of the task and no
  renormalisation, so the hybrid carries label information only through the coalition's
  coordinates and any classifier's error on it is at least the Bayes error of a classifier that
  sees only those ``k`` coordinates (:func:`spheres.maths.theory.bayes_error_k_coordinates`).
  Measured (tests/test_attributions.py, and a trained quad net at d = 10): under ``same_sphere``
  every coalition is worth nearly the same and every band's value is within a few SE of 0 (a few
  1e-4 nats), because the renormalised hybrid keeps the norm, which is all the label depends on,
  and is nearly uniform on the sphere; ``independent`` resolves the bands (0.14-0.33 nats each, SE
  0.02-0.03, band of largest alphas first).
  All ``2^M`` worths are estimated on the same ``n`` pairs (common random numbers). The Shapley
  value ``phi_j = sum_{S not containing j} |S|! (M - |S| - 1)! / M! (v(S + j) - v(S))`` is linear in
  the worths, so each pair has its own Shapley vector, efficiency
  ``sum_j phi_j = v(all) - v(none)`` holds per pair to rounding, and the standard error of the
  mean Shapley value is the per-pair standard deviation over ``sqrt(n)``.

Points where the attack finds no error within its budget are reported as failures and never
averaged in; points already misclassified have no nearby boundary point of their own and are
counted apart (``initially_wrong``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spheres.core.errors import InputError
from spheres.maths import quadratic, stats
from spheres.maths.classifiers import LogitFn
from spheres.maths.geometry import (angle_between, normalize, project_to_sphere, rotate_toward, safe_norm,
                                    sample_labeled, sample_sphere)
from spheres.measure.attacks import AttackSchedule, nearest_error

REPLACEMENTS = ("same_sphere", "independent")
MAX_BANDS = 10
_TINY = 1e-30


def cosine(a: ArrayLike, b: ArrayLike) -> jax.Array:
    """``a . b / (||a|| ||b||)`` for vectors of shape ``(d,)``; 0 if either is the zero vector.

    >>> float(cosine(jnp.array([1.0, 0.0]), jnp.array([2.0, 2.0])))  # doctest: +ELLIPSIS
    0.7071...
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    den = safe_norm(a) * safe_norm(b)
    return jnp.where(den > _TINY, jnp.dot(a, b) / jnp.where(den > _TINY, den, 1.0), 0.0)


def _grad(logit_fn: LogitFn, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jax.value_and_grad(lambda z: logit_fn(params, z))(x)


def gradient_alignment(logit_fn: LogitFn, params: Any, x: ArrayLike) -> jax.Array:
    """``cos(grad f(x), x/||x||)`` for one point ``x`` (shape ``(d,)``): 1 for any radial classifier
    whose logit grows outward."""
    x = jnp.asarray(x)
    return cosine(_grad(logit_fn, params, x)[1], x)


# ---------------------------------------------------------------------------------------- boundary normals


class BoundaryNormal(NamedTuple):
    """The model's boundary at the nearest error of one point (under ``vmap`` every field gains ``(n,)``).

    Attributes:
      found: bool ``()``: a verified error was found (or ``x`` was already wrong).
      initially_wrong: bool ``()``: ``x`` itself is misclassified (no boundary point of its own).
      valid: bool ``()``: ``found and not initially_wrong``; the fields below are NaN otherwise.
      distance: float ``()``: ``||x' - x||`` (chord distance on-sphere).
      point: float ``(d,)``: the nearest error ``x'`` (the attack's last iterate if not found).
      normal: float ``(d,)``: unit normal ``grad f(x') / ||grad f(x')||``.
      radial: float ``()``: ``cos(n, x'/||x'||)``.
      radial_angle: float ``()``: the angle in radians between ``n`` and ``x'/||x'||``.
      grad_alignment: float ``()``: ``cos(grad f(x), n)`` (Wang et al.'s alignment).
    """

    found: jax.Array
    initially_wrong: jax.Array
    valid: jax.Array
    distance: jax.Array
    point: jax.Array
    normal: jax.Array
    radial: jax.Array
    radial_angle: jax.Array
    grad_alignment: jax.Array


def boundary_normal(logit_fn: LogitFn, params: Any, x: ArrayLike, label: ArrayLike,
                    config: AttackSchedule = AttackSchedule(), on_manifold: bool = True,
                    grad_x: ArrayLike | None = None) -> BoundaryNormal:
    """The boundary normal at the nearest error of ONE point ``x`` (shape ``(d,)``) of class ``label``.

    Args:
      logit_fn, params: one classifier.
      x: the point, shape ``(d,)``.
      label: int scalar, 0 (inner) or 1 (outer).
      config: attack schedule (:class:`spheres.measure.attacks.AttackSchedule`).
      on_manifold: nearest error on the sphere through ``x`` (True) or anywhere (False).
      grad_x: ``grad f(x)`` if already computed (shape ``(d,)``).
    Returns:
      :class:`BoundaryNormal`.
    """
    x = jnp.asarray(x)
    if grad_x is None:
        grad_x = _grad(logit_fn, params, x)[1]
    res = nearest_error(logit_fn, params, x, label, config, on_manifold)
    valid = res.found & ~res.initially_wrong
    g = _grad(logit_fn, params, res.point)[1]
    n = normalize(g)
    nan = jnp.full((), jnp.nan, x.dtype)
    keep = (lambda v: jnp.where(valid, v, nan))
    return BoundaryNormal(found=res.found, initially_wrong=res.initially_wrong, valid=valid,
                          distance=keep(res.distance), point=res.point, normal=n,
                          radial=keep(cosine(n, res.point)), radial_angle=keep(angle_between(n, res.point)),
                          grad_alignment=keep(cosine(grad_x, n)))


class BoundarySpread(NamedTuple):
    """Spread of the boundary normals near one point, from ``K`` attack starts (fields ``()`` per point).

    Attributes:
      n_found: int32: starts whose nearest error was found (and not already wrong).
      normal_spread: ``1 - ||mean_k n_k||`` over the found starts (0: all normals equal).
      position_spread: ``1 - ||mean_k x'_k/||x'_k||||``: the spread of the radial directions at the
        same boundary points (what the normals' spread would be on a sphere about the origin).
      ratio: ``normal_spread / position_spread``: 1 for a spherical boundary, larger when rougher.
      grad_alignment: mean over found starts of ``cos(grad f(x), n_k)``.
      radial: mean over found starts of ``cos(n_k, x'_k/||x'_k||)``.
    All but ``n_found`` are NaN unless every start was found.
    """

    n_found: jax.Array
    normal_spread: jax.Array
    position_spread: jax.Array
    ratio: jax.Array
    grad_alignment: jax.Array
    radial: jax.Array


def boundary_spread(key: jax.Array, logit_fn: LogitFn, params: Any, x: ArrayLike, label: ArrayLike,
                    n_starts: int = 4, start_angle: float = 0.05, config: AttackSchedule = AttackSchedule(),
                    on_manifold: bool = False) -> BoundarySpread:
    """Smoothness of the boundary near ONE point: normals at the nearest errors of ``n_starts`` starts.

    Start ``k`` is ``x`` rotated by ``start_angle`` (radians) toward an independent isotropic direction
    (:func:`spheres.maths.geometry.rotate_toward`, so it stays on the sphere of ``x``); each is
    attacked (off-sphere by default) and the model's unit normal ``n_k`` taken at its nearest error.

    Args:
      key: a ``jax.random.key`` (the start directions).
      logit_fn, params: one classifier.
      x: shape ``(d,)``; label: its class.
      n_starts: ``K >= 2`` (static).
      start_angle: angle between ``x`` and each start.
      config: attack schedule; on_manifold: attack on the sphere or in ``R^d``.
    Returns:
      :class:`BoundarySpread`.
    """
    x = jnp.asarray(x)
    grad_x = _grad(logit_fn, params, x)[1]
    dirs = jax.random.normal(key, (n_starts, x.shape[0]), x.dtype)
    starts = jax.vmap(lambda v: rotate_toward(x, v, start_angle))(dirs)
    bn = jax.vmap(lambda s: boundary_normal(logit_fn, params, s, label, config, on_manifold, grad_x))(starts)
    ok = bn.valid
    n_found = jnp.sum(ok.astype(jnp.int32))
    w = ok.astype(x.dtype)[:, None] / jnp.maximum(n_found, 1).astype(x.dtype)
    mean_n = jnp.sum(w * bn.normal, axis=0)
    mean_p = jnp.sum(w * jax.vmap(normalize)(bn.point), axis=0)
    normal_spread = 1.0 - safe_norm(mean_n)
    position_spread = 1.0 - safe_norm(mean_p)
    all_ok = n_found == n_starts
    nan = jnp.full((), jnp.nan, x.dtype)
    keep = (lambda v: jnp.where(all_ok, v, nan))
    ratio = normal_spread / jnp.where(position_spread > 0, position_spread, jnp.nan)
    return BoundarySpread(n_found=n_found, normal_spread=keep(normal_spread), position_spread=keep(position_spread),
                          ratio=keep(ratio), grad_alignment=keep(jnp.mean(jnp.where(ok, bn.grad_alignment, 0.0))),
                          radial=keep(jnp.mean(jnp.where(ok, bn.radial, 0.0))))


# ---------------------------------------------------------------------------------------- attributions


class IntegratedGradients(NamedTuple):
    """Integrated gradients of one point along the straight path from ``baseline`` to ``x``.

    Attributes:
      attribution: ``(d,)``: ``(x - b) * mean_t grad f(b + t (x - b))`` (midpoint rule).
      ideal: ``(d,)``: the same for the radial ideal ``f*(x) = ||x||`` on the same path.
      completeness_gap: ``()``: ``sum(attribution) - (f(x) - f(b))`` (quadrature error; 0 exactly in the limit).
      sign: ``()``: ``sign(f(x) - f(b))`` (+1 at 0), the sign of the change the attribution explains.
    """

    attribution: jax.Array
    ideal: jax.Array
    completeness_gap: jax.Array
    sign: jax.Array


def integrated_gradients(logit_fn: LogitFn, params: Any, x: ArrayLike, baseline: ArrayLike,
                         steps: int = 32) -> IntegratedGradients:
    """Integrated gradients (Sundararajan et al. 2017) of ONE point ``x`` (shape ``(d,)``) from ``baseline``.

    ``IG_i = (x_i - b_i) int_0^1 d_i f(b + t (x - b)) dt`` by the midpoint rule at
    ``t_k = (k + 1/2)/steps`` (the nodes avoid ``t = 0``, so the origin is a safe baseline).
    """
    x = jnp.asarray(x)
    b = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
    t = (jnp.arange(steps, dtype=x.dtype) + 0.5) / steps
    path = b[None, :] + t[:, None] * (x - b)[None, :]
    grads = jax.vmap(lambda p: _grad(logit_fn, params, p)[1])(path)
    attr = (x - b) * jnp.mean(grads, axis=0)
    ideal = (x - b) * jnp.mean(jax.vmap(normalize)(path), axis=0)
    change = logit_fn(params, x) - logit_fn(params, b)
    gap = jnp.sum(attr) - change
    return IntegratedGradients(attribution=attr, ideal=ideal, completeness_gap=gap,
                               sign=jnp.where(change < 0, -1.0, 1.0).astype(x.dtype))


class PointAttributions(NamedTuple):
    """Every attribution measurement of one point (under ``vmap`` each field gains ``(n,)``).

    Attributes:
      grad: ``(d,)``: ``grad f(x)``.
      grad_radial: ``()``: ``cos(grad f(x), x/||x||)``.
      on, off: :class:`BoundaryNormal` at the on-sphere and off-sphere nearest errors.
      ig: ``(d,)``: IG from ``baseline``; ig_ideal: ``cos(IG, IG*)``; ig_gap: completeness gap.
      ig_grad: ``cos(s_IG IG, grad f(x))``.
      bsm: ``(d,)``: ``grad f(x'_off)``; bsm_ideal: ``cos(BSM, x'/||x'||)`` (the radial ideal's BSM);
      bsm_grad: ``cos(BSM, grad f(x))``; bsm_radial_x: ``cos(BSM, x/||x||)``.
      big: ``(d,)``: IG from ``x'_off`` to ``x``; big_ideal: ``cos(BIG, BIG*)``;
      big_ig: ``cos(s_BIG BIG, s_IG IG)``; big_grad: ``cos(s_BIG BIG, grad f(x))``; big_gap: completeness gap.
    ``s_IG = sign(f(x) - f(b))``, ``s_BIG = sign(f(x) - f(x'))``: IG-type attributions sum to the change
    of ``f`` along their path, which for BIG of an inner point is negative (the path runs from the
    boundary inward) and for IG from the origin positive; comparing the attributions of the change
    toward the decision at ``x`` makes both +1 for the radial ideal. ``*_ideal`` compare like with like
    (the ideal on the same path has the same sign) and need no sign.
    Every BSM/BIG scalar is NaN where ``off.valid`` is False.
    """

    grad: jax.Array
    grad_radial: jax.Array
    on: BoundaryNormal
    off: BoundaryNormal
    ig: jax.Array
    ig_ideal: jax.Array
    ig_grad: jax.Array
    ig_gap: jax.Array
    bsm: jax.Array
    bsm_ideal: jax.Array
    bsm_grad: jax.Array
    bsm_radial_x: jax.Array
    big: jax.Array
    big_ideal: jax.Array
    big_ig: jax.Array
    big_grad: jax.Array
    big_gap: jax.Array


def point_attributions(logit_fn: LogitFn, params: Any, x: ArrayLike, label: ArrayLike,
                       config: AttackSchedule = AttackSchedule(), ig_steps: int = 32,
                       baseline: ArrayLike = 0.0) -> PointAttributions:
    """Gradient alignment, boundary normals (on and off the sphere), IG, BSM and BIG of ONE point.

    Args:
      logit_fn, params: one classifier.
      x: shape ``(d,)``; label: int scalar, 0 inner, 1 outer.
      config: attack schedule.
      ig_steps: quadrature nodes for IG and BIG (static, ``>= 1``).
      baseline: IG's baseline, shape ``(d,)`` or a scalar (default the origin).
    Returns:
      :class:`PointAttributions`.
    """
    x = jnp.asarray(x)
    _, g = _grad(logit_fn, params, x)
    on = boundary_normal(logit_fn, params, x, label, config, True, g)
    off = boundary_normal(logit_fn, params, x, label, config, False, g)
    ig = integrated_gradients(logit_fn, params, x, baseline, ig_steps)
    bsm = _grad(logit_fn, params, off.point)[1]
    big = integrated_gradients(logit_fn, params, x, off.point, ig_steps)
    nan = jnp.full((), jnp.nan, x.dtype)
    keep = (lambda v: jnp.where(off.valid, v, nan))
    return PointAttributions(
        grad=g, grad_radial=cosine(g, x), on=on, off=off,
        ig=ig.attribution, ig_ideal=cosine(ig.attribution, ig.ideal), ig_grad=cosine(ig.sign * ig.attribution, g),
        ig_gap=ig.completeness_gap,
        bsm=bsm, bsm_ideal=keep(cosine(bsm, off.point)), bsm_grad=keep(cosine(bsm, g)),
        bsm_radial_x=keep(cosine(bsm, x)),
        big=big.attribution, big_ideal=keep(cosine(big.attribution, big.ideal)),
        big_ig=keep(cosine(big.sign * big.attribution, ig.sign * ig.attribution)),
        big_grad=keep(cosine(big.sign * big.attribution, g)),
        big_gap=keep(big.completeness_gap))


# ---------------------------------------------------------------------------------------- the quad net, exactly


class ExactBoundary(NamedTuple):
    """Exact nearest errors and normals of a quadratic network (float64 numpy, ``n`` points).

    Attributes:
      distance: ``(n,)``: exact chord distance to the nearest error on the sphere through each point
        (``inf`` if the sphere holds none, 0 if the point is already wrong).
      point: ``(n, d)``: the exact nearest error ``y*`` (original coordinates).
      normal: ``(n, d)``: the unit normal of the logit at ``y*``, ``u(w W^T W y*)`` (``u(V A V^T y*)``
        up to the sign of ``w``).
      radial: ``(n,)``: ``cos(normal, y*/||y*||)``.
      grad_alignment: ``(n,)``: ``cos(grad f(x), normal)`` with the exact gradient ``2 w W^T W x``.
      reachable: bool ``(n,)``: a boundary point exists and ``x`` is correctly classified.
    """

    distance: np.ndarray
    point: np.ndarray
    normal: np.ndarray
    radial: np.ndarray
    grad_alignment: np.ndarray
    reachable: np.ndarray


def _unit_rows(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def quadratic_exact_boundary(W: ArrayLike, w: float, b: float, xs: ArrayLike, labels: ArrayLike) -> ExactBoundary:
    """Exact on-sphere nearest errors and boundary normals of ``f(x) = w ||W x||^2 + b``.

    The nearest error comes from :func:`spheres.maths.quadratic.nearest_error` in the rotated basis
    ``z = V^T x`` (on the sphere of radius ``||x||``); the normal is the exact gradient there.

    Args:
      W: ``(h, d)``; w, b: scalars (:func:`spheres.nets.models.quadratic_weights` gives them).
      xs: points, shape ``(n, d)``; labels: ``(n,)`` ints (0 inner, 1 outer).
    Returns:
      :class:`ExactBoundary`.
    """
    W = np.asarray(W, np.float64)
    xs = np.asarray(xs, np.float64)
    labels = np.broadcast_to(np.asarray(labels), xs.shape[:1])
    if xs.ndim != 2 or xs.shape[1] != W.shape[1]:
        raise InputError("points", f"need shape (n, {W.shape[1]}), got {xs.shape}")
    dec = quadratic.alphas_from_weights(W, w, b)
    V = dec.rotation
    radii = np.linalg.norm(xs, axis=1)
    dist = np.empty(xs.shape[0])
    pts = np.empty_like(xs)
    for i, (x, r, lab) in enumerate(zip(xs, radii, labels)):
        z = V.T @ x
        d_i, y = quadratic.nearest_error(dec.alphas, r * z / np.linalg.norm(z), r, dec.orientation, int(lab))
        dist[i], pts[i] = d_i, V @ y
    gram = W.T @ W
    normal = _unit_rows(float(w) * pts @ gram)
    grad_x = 2.0 * float(w) * xs @ gram
    radial = np.sum(normal * _unit_rows(pts), axis=1)
    align = np.sum(normal * _unit_rows(grad_x), axis=1)
    reachable = np.isfinite(dist) & (dist > 0)
    return ExactBoundary(distance=dist, point=pts, normal=normal, radial=radial, grad_alignment=align,
                         reachable=reachable)


# ---------------------------------------------------------------------------------------- band Shapley values


class Bands(NamedTuple):
    """A split of the input directions into bands.

    Attributes:
      basis: float ``(d, d)`` orthogonal; column ``i`` is direction ``i``.
      band_of: int ``(d,)``: the band (``0..M-1``) of each direction.
      n_bands: ``M`` (1 to 10).
      names: one label per band (e.g. its alpha range).
    """

    basis: np.ndarray
    band_of: np.ndarray
    n_bands: int
    names: tuple[str, ...]


def _check_bands(n_bands: int, dim: int) -> None:
    if not (isinstance(n_bands, (int, np.integer)) and 1 <= n_bands <= min(MAX_BANDS, dim)):
        raise InputError("bands", f"must be an integer in [1, min({MAX_BANDS}, dim = {dim})], got {n_bands!r}")


def coordinate_bands(dim: int, n_bands: int) -> Bands:
    """``n_bands`` contiguous blocks of coordinates of nearly equal size (coordinate ``i`` in band
    ``floor(i M / d)``), identity basis.

    >>> coordinate_bands(5, 2).band_of.tolist()
    [0, 0, 0, 1, 1]
    """
    _check_bands(n_bands, dim)
    band_of = (np.arange(dim) * n_bands) // dim
    names = tuple(f"coords {int(np.min(np.flatnonzero(band_of == j)))}-{int(np.max(np.flatnonzero(band_of == j)))}"
                  for j in range(n_bands))
    return Bands(np.eye(dim), band_of.astype(np.int32), int(n_bands), names)


def eigen_bands(alphas: ArrayLike, rotation: ArrayLike, n_bands: int) -> Bands:
    """The quadratic network's eigen-directions grouped by ``alpha``: the basis holds the directions
    in order of decreasing ``alpha`` (ties keep ``rotation``'s order) and band ``j`` the ``j``-th block
    of ``~d/M`` of them (band 0: the largest alphas), so ``band_of`` is that of :func:`coordinate_bands`
    and nets with different eigen-directions share their coalition masks.

    Args:
      alphas: ``(d,)``; rotation: ``(d, d)`` (from :func:`spheres.maths.quadratic.alphas_from_weights`).
      n_bands: ``M``.
    """
    alphas = np.asarray(alphas, np.float64)
    dim = alphas.size
    _check_bands(n_bands, dim)
    order = np.argsort(-alphas, kind="stable")
    band_of = ((np.arange(dim) * n_bands) // dim).astype(np.int32)
    sorted_alphas = alphas[order]
    names = tuple(f"alpha {sorted_alphas[band_of == j].min():.3g}-{sorted_alphas[band_of == j].max():.3g}"
                  for j in range(n_bands))
    return Bands(np.asarray(rotation, np.float64)[:, order], band_of, int(n_bands), names)


def coalition_masks(band_of: ArrayLike, n_bands: int) -> np.ndarray:
    """``(2^M, d)`` float32 masks: row ``S`` is 1 on the directions whose band ``j`` has bit ``j`` of ``S`` set."""
    band_of = np.asarray(band_of)
    s = np.arange(2**n_bands)[:, None]
    return ((s >> band_of[None, :]) & 1).astype(np.float32)


def shapley_matrix(n_bands: int) -> np.ndarray:
    """The ``(2^M, M)`` float64 matrix ``C`` with ``phi = v @ C`` for a worth vector ``v`` of shape ``(2^M,)``.

    ``C[S, j] = w(|S| - 1)`` if ``j`` is in ``S`` and ``-w(|S|)`` otherwise, ``w(s) = s! (M - s - 1)! / M!``;
    each column sums to 0 and each row ``S`` sums to ``[S = all] - [S = none]`` (efficiency).

    >>> shapley_matrix(2).tolist()   # phi_0 = (v(1) - v(0) + v(3) - v(2)) / 2
    [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]]
    """
    m = int(n_bands)
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])
    c = np.zeros((2**m, m))
    for s in range(2**m):
        size = bin(s).count("1")
        for j in range(m):
            c[s, j] = weight[size - 1] if (s >> j) & 1 else -weight[size] if size < m else 0.0
    return c


def coalition_worths(logit_fn: LogitFn, params: Any, x: ArrayLike, label: ArrayLike, x_rep: ArrayLike,
                     basis: ArrayLike, masks: ArrayLike, renormalize: bool = True) -> tuple[jax.Array, jax.Array]:
    """Per-pair worths of all coalitions for ONE point ``x`` and its replacement ``x_rep``.

    ``h_S = B (m_S * B^T x + (1 - m_S) * B^T x_rep)`` (``B = basis``, ``m_S`` the mask of ``S``), then
    ``h_S <- ||x|| h_S / ||h_S||`` if ``renormalize``; the worth is ``log p(label | h_S)`` with
    ``p(1 | h) = sigmoid(f(h))``.

    Args:
      logit_fn, params: one classifier.
      x, x_rep: shape ``(d,)``; label: int scalar.
      basis: ``(d, d)`` orthogonal.
      masks: ``(C, d)`` from :func:`coalition_masks` (``C = 2^M``).
      renormalize: static.
    Returns:
      ``(loglik, wrong)``: shapes ``(C,)``: the log-likelihood of the label and whether ``h_S`` is
      misclassified.
    """
    x = jnp.asarray(x)
    basis = jnp.asarray(basis, x.dtype)
    masks = jnp.asarray(masks, x.dtype)
    z, zr = basis.T @ x, basis.T @ jnp.asarray(x_rep, x.dtype)
    hz = masks * z[None, :] + (1.0 - masks) * zr[None, :]
    h = hz @ basis.T
    if renormalize:
        r = safe_norm(x)
        h = jax.vmap(lambda v: project_to_sphere(v, r))(h)
    logits = jax.vmap(lambda p: logit_fn(params, p))(h)
    label = jnp.asarray(label, jnp.int32)
    signed = jnp.where(label == 1, logits, -logits)
    return jax.nn.log_sigmoid(signed), signed <= 0


def _replacement_point(key: jax.Array, x: jax.Array, dim: int, outer_radius: float, replacement: str) -> jax.Array:
    """The replacement point of ``x`` (shape ``(d,)``) drawn from ``key`` (see :func:`sample_pair`)."""
    if replacement == "same_sphere":
        return sample_sphere(key, dim, safe_norm(x), x.dtype)
    if replacement == "independent":
        return sample_labeled(key, dim, outer_radius, x.dtype)[0]
    raise InputError("replacement", f"unknown replacement {replacement!r}; allowed: {', '.join(REPLACEMENTS)}")


def sample_pair(key: jax.Array, dim: int, outer_radius: float = 1.3, replacement: str = "same_sphere",
                dtype=jnp.float32) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One labelled point of the task and its replacement point: ``(x (d,), label (), x_rep (d,))``.

    ``same_sphere``: ``x_rep`` uniform on the sphere of ``x``; ``independent``: an independent example.
    The first half of ``key`` draws ``x`` and its label, the second ``x_rep``, so the same key gives
    the same ``x`` under either replacement.
    """
    k1, k2 = jax.random.split(key)
    x, y = sample_labeled(k1, dim, outer_radius, dtype)
    return x, y, _replacement_point(k2, x, dim, outer_radius, replacement)


class ShapleyResult(NamedTuple):
    """Band Shapley values of one model, with their uncertainty.

    Attributes:
      values: float64 ``(M,)``: mean over pairs of the per-pair Shapley values (nats).
      se: float64 ``(M,)``: their standard errors (per-pair standard deviation / sqrt(n)).
      n: number of pairs.
      worth: float64 ``(2^M,)``: mean worth of each coalition (index ``S``: band ``j`` in ``S`` iff bit ``j``).
      worth_se: float64 ``(2^M,)``.
      errors: int64 ``(2^M,)``: pairs whose hybrid ``h_S`` is misclassified (out of ``n``).
      band_sizes: int ``(M,)``: directions per band.
      replacement: "same_sphere" or "independent".
    """

    values: np.ndarray
    se: np.ndarray
    n: int
    worth: np.ndarray
    worth_se: np.ndarray
    errors: np.ndarray
    band_sizes: np.ndarray
    replacement: str

    def interval(self, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
        """Normal confidence interval ``values -+ z se`` (default 95%)."""
        return self.values - z * self.se, self.values + z * self.se


def shapley_from_worths(worths: ArrayLike, errors: ArrayLike | None = None, band_sizes: ArrayLike | None = None,
                        replacement: str = "same_sphere") -> ShapleyResult:
    """Exact Shapley values of the mean worth, with standard errors from the per-pair values.

    Args:
      worths: ``(n, 2^M)`` per-pair worths (``n >= 2``).
      errors: ``(n, 2^M)`` bools (misclassified hybrids), optional.
      band_sizes: ``(M,)``, optional.
    Returns:
      :class:`ShapleyResult`.
    """
    v = np.asarray(worths, np.float64)
    if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] < 2 or v.shape[1] & (v.shape[1] - 1):
        raise InputError("worths", f"need shape (n >= 2, 2^M), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InputError("worths", "all worths must be finite")
    n, c = v.shape
    m = c.bit_length() - 1
    phi = v @ shapley_matrix(m)
    sqn = math.sqrt(n)
    err = np.zeros(c, np.int64) if errors is None else np.sum(np.asarray(errors, bool), axis=0).astype(np.int64)
    sizes = np.zeros(m, np.int64) if band_sizes is None else np.asarray(band_sizes, np.int64)
    return ShapleyResult(values=phi.mean(0), se=phi.std(0, ddof=1) / sqn, n=n, worth=v.mean(0),
                         worth_se=v.std(0, ddof=1) / sqn, errors=err, band_sizes=sizes, replacement=replacement)


def band_shapley(key: jax.Array, logit_fn: LogitFn, params: Any, bands: Bands, samples: int = 512,
                 outer_radius: float = 1.3, replacement: str = "same_sphere") -> ShapleyResult:
    """Shapley importance of direction bands for ONE model (see the module docstring).

    Builds a :class:`ShapleyWorths` for this one call; to measure many models or checkpoints, build it
    once with :func:`make_shapley_worths` and call :meth:`ShapleyWorths.worths` (or ``worths_models``).

    Args:
      key: a ``jax.random.key`` (the points and their replacements).
      logit_fn, params: one classifier.
      bands: :class:`Bands` (``M <= 10``).
      samples: pairs ``n >= 2``.
      outer_radius: ``R`` of the task.
      replacement: "same_sphere" (renormalised) or "independent".
    Returns:
      :class:`ShapleyResult`.
    """
    _check_replacements((replacement,))
    if not (isinstance(samples, (int, np.integer)) and samples >= 2):
        raise InputError("samples", f"must be an integer >= 2, got {samples!r}")
    dim = int(bands.band_of.size)
    _check_bands(bands.n_bands, dim)
    masks = coalition_masks(bands.band_of, bands.n_bands)
    sw = make_shapley_worths(logit_fn, dim, outer_radius, (replacement,))
    worth, wrong = sw.worths(params, jax.random.split(key, samples), bands.basis, masks)[replacement]
    return shapley_from_worths(worth, wrong, np.bincount(bands.band_of, minlength=bands.n_bands), replacement)


#: pairs per call of a compiled Shapley program (any number of pairs reuses one compilation)
SHAPLEY_CHUNK = 256


def _check_replacements(replacements: tuple[str, ...]) -> None:
    for rep in replacements:
        if rep not in REPLACEMENTS:
            raise InputError("replacement", f"unknown replacement {rep!r}; allowed: {', '.join(REPLACEMENTS)}")
    if not replacements or len(set(replacements)) != len(replacements):
        raise InputError("replacement", f"need distinct replacements from {', '.join(REPLACEMENTS)}, "
                         f"got {replacements!r}")


class ShapleyWorths(NamedTuple):
    """The compiled coalition worths of one classifier, built by :func:`make_shapley_worths`.

    Pair ``i`` is drawn from ``keys[i]`` as by :func:`sample_pair`: the point ``x`` and its label come
    from the first half of the key and do not depend on the replacement, so every replacement of
    ``replacements`` is evaluated on the same points in ONE program (common random numbers across
    replacements too).

    Attributes:
      replacements: the replacements evaluated (static).
      chunk: pairs per call (the last chunk is padded with repeats of the last key and trimmed).
      pairs: ``jit`` of ``(params, keys (c,), basis (d, d), masks (C, d)) -> {rep: (worths (c, C), wrong (c, C))}``.
      models: the same ``jit(vmap)``-ped over a leading model axis of ``params`` and ``basis``:
        ``{rep: (worths (M, c, C), wrong (M, c, C))}``; the keys are shared by the models.
    """

    replacements: tuple[str, ...]
    chunk: int
    pairs: Callable
    models: Callable

    def worths(self, params: Any, keys: ArrayLike, basis: ArrayLike,
               masks: ArrayLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-pair worths of one model: ``{rep: (worths (n, C) float32, wrong (n, C) bool)}`` (numpy)."""
        return self._chunked(self.pairs, 0, params, keys, basis, masks)

    def worths_models(self, params: Any, keys: ArrayLike, bases: ArrayLike,
                      masks: ArrayLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-pair worths of ``M`` models (leading axis of every leaf of ``params`` and of ``bases``
        ``(M, d, d)``), on the same pairs: ``{rep: (worths (M, n, C), wrong (M, n, C))}``."""
        return self._chunked(self.models, 1, params, keys, bases, masks)

    def _chunked(self, program: Callable, axis: int, params: Any, keys: ArrayLike, basis: ArrayLike,
                 masks: ArrayLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        keys = jnp.asarray(keys)
        n = keys.shape[0]
        pad = (-n) % self.chunk
        keys = jnp.concatenate([keys, jnp.broadcast_to(keys[-1:], (pad,) + keys.shape[1:])]) if pad else keys
        basis, masks = jnp.asarray(basis, jnp.float32), jnp.asarray(masks, jnp.float32)
        outs = [program(params, keys[i:i + self.chunk], basis, masks) for i in range(0, n + pad, self.chunk)]
        trim = (lambda a: a[:, :n] if axis else a[:n])
        return {rep: tuple(trim(np.concatenate([np.asarray(o[rep][k]) for o in outs], axis=axis)) for k in (0, 1))
                for rep in self.replacements}


def make_shapley_worths(logit_fn: LogitFn, dim: int, outer_radius: float = 1.3,
                        replacements: tuple[str, ...] = REPLACEMENTS, chunk: int = SHAPLEY_CHUNK) -> ShapleyWorths:
    """Compile the per-pair worths of every coalition of ``logit_fn`` (see :class:`ShapleyWorths`).

    Args:
      logit_fn: one classifier's ``logit_fn(params, x)``.
      dim: the input dimension ``d``; outer_radius: ``R`` of the task.
      replacements: which replacements to evaluate (each of :data:`REPLACEMENTS` at most once).
      chunk: pairs per compiled call (``>= 1``).
    Returns:
      :class:`ShapleyWorths` (compiled on first call).
    """
    replacements = tuple(replacements)
    _check_replacements(replacements)
    if not (isinstance(chunk, (int, np.integer)) and chunk >= 1):
        raise InputError("chunk", f"must be an integer >= 1, got {chunk!r}")
    dim, outer_radius = int(dim), float(outer_radius)

    def one(params, key, basis, masks):
        k_x, k_rep = jax.random.split(key)
        x, y = sample_labeled(k_x, dim, outer_radius, jnp.float32)
        return {rep: coalition_worths(logit_fn, params, x, y, _replacement_point(k_rep, x, dim, outer_radius, rep),
                                      basis, masks, rep == "same_sphere") for rep in replacements}

    pairs = jax.vmap(one, in_axes=(None, 0, None, None))
    return ShapleyWorths(replacements=replacements, chunk=int(chunk), pairs=jax.jit(pairs),
                         models=jax.jit(jax.vmap(pairs, in_axes=(0, None, 0, None))))


def summarize(values: ArrayLike, valid: ArrayLike | None = None) -> stats.MeanEstimate:
    """Mean, SE and count of the ``valid`` entries of ``values`` (shape ``(n,)``); NaNs are never averaged."""
    v = np.asarray(values, np.float64).reshape(-1)
    ok = np.isfinite(v) if valid is None else (np.asarray(valid, bool).reshape(-1) & np.isfinite(v))
    return stats.mean_and_se(v[ok])
