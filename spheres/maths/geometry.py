"""Geometry on spheres: sampling, projections and distances.

Every function acts on ONE example (a vector of shape ``(d,)``); batch with ``jax.vmap`` at
the call site. Every norm that can be zero is guarded so that values AND gradients stay
finite there (the "double where" trick, as in jax-md's ``space``).

Uniform sampling follows docs/science.md section 1: ``g ~ N(0, I_d)``, ``x = r g / ||g||``.

The two-sphere task: inner sphere radius 1 (label 0), outer sphere radius ``R`` (label 1,
default 1.3), each with probability 1/2. A finite training set of N points is never stored:
point ``i`` is regenerated from ``(key, i)`` by :func:`dataset_point`, so N = 10^6 at
d = 500 costs no memory.

>>> import jax, jax.numpy as jnp
>>> x = sample_sphere(jax.random.key(0), 5, radius=2.0)
>>> bool(jnp.allclose(jnp.linalg.norm(x), 2.0))
True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from spheres.core.constants import INNER_RADIUS, OUTER_RADIUS  # noqa: F401 (re-exported)

_TINY = 1e-30


def safe_norm(x: ArrayLike) -> jax.Array:
    """Euclidean norm of ``x`` (shape ``(d,)``) with a finite gradient (zero) at ``x = 0``."""
    x = jnp.asarray(x)
    sq = jnp.sum(x * x)
    nonzero = sq > _TINY
    safe_sq = jnp.where(nonzero, sq, 1.0)
    return jnp.where(nonzero, jnp.sqrt(safe_sq), 0.0)


def normalize(x: ArrayLike) -> jax.Array:
    """``x / ||x||``; at ``x = 0`` returns the first basis vector (finite value and gradient)."""
    x = jnp.asarray(x)
    n = safe_norm(x)
    nonzero = n > 0
    e1 = jnp.zeros_like(x).at[0].set(1.0)
    return jnp.where(nonzero, x / jnp.where(nonzero, n, 1.0), e1)


def project_to_sphere(x: ArrayLike, radius: ArrayLike = 1.0) -> jax.Array:
    """Nearest point of the sphere ``{||y|| = radius}`` to ``x``: ``radius * x / ||x||``.

    Idempotent. At the origin (where every point is nearest) it returns ``radius * e_1``,
    with a finite gradient.

    Args:
      x: point, shape ``(d,)``.
      radius: scalar radius ``> 0``.
    Returns:
      shape ``(d,)``.
    """
    return jnp.asarray(radius, dtype=jnp.result_type(x)) * normalize(x)


def tangent_project(x: ArrayLike, v: ArrayLike) -> jax.Array:
    """Project ``v`` onto the tangent space of the sphere through ``x``: ``v - (v . u) u``, ``u = x/||x||``.

    Args:
      x: base point, shape ``(d,)`` (any non-zero radius).
      v: vector, shape ``(d,)``.
    Returns:
      tangent component of ``v``, shape ``(d,)``, orthogonal to ``x``.
    """
    u = normalize(x)
    return v - jnp.dot(v, u) * u


def chord_distance(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """Euclidean (chord) distance ``||x - y||``, finite gradient at ``x = y``."""
    return safe_norm(jnp.asarray(x) - jnp.asarray(y))


def angle_between(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """Angle in ``[0, pi]`` between non-zero vectors ``x`` and ``y``.

    Uses ``2 atan2(||u - v||, ||u + v||)`` with ``u, v`` the unit vectors, which is accurate
    near 0 and pi (unlike ``arccos`` of the dot product) and has finite gradients.
    """
    u, v = normalize(x), normalize(y)
    return 2.0 * jnp.arctan2(safe_norm(u - v), safe_norm(u + v))


def geodesic_distance(x: ArrayLike, y: ArrayLike, radius: ArrayLike = 1.0) -> jax.Array:
    """Great-circle distance ``radius * angle(x, y)`` between two points of the sphere of ``radius``."""
    return jnp.asarray(radius) * angle_between(x, y)


def rotate_toward(x: ArrayLike, direction: ArrayLike, theta: ArrayLike) -> jax.Array:
    """Move ``x`` by angle ``theta`` along the great circle toward ``direction``.

    ``direction`` is projected on the tangent space at ``x`` and normalised to ``u``; the result
    is ``cos(theta) x + sin(theta) ||x|| u``, on the same sphere as ``x``. If ``x`` is drawn
    uniformly and ``direction`` is an independent isotropic vector, the result is uniform again
    for every fixed ``theta`` (the kernel used by the rare-event sampler).

    Args:
      x: point, shape ``(d,)``.
      direction: shape ``(d,)``.
      theta: scalar angle in radians.
    Returns:
      shape ``(d,)``, with ``||result|| = ||x||``.
    """
    x = jnp.asarray(x)
    u = normalize(tangent_project(x, direction))
    return jnp.cos(theta) * x + jnp.sin(theta) * safe_norm(x) * u


def sample_sphere(key: jax.Array, dim: int, radius: ArrayLike = 1.0, dtype=jnp.float32) -> jax.Array:
    """One point uniform on the sphere of ``radius`` in R^``dim``: ``radius * g / ||g||``, ``g ~ N(0, I)``.

    Args:
      key: a ``jax.random.key``.
      dim: ambient dimension ``d >= 2`` (static).
      radius: scalar radius (may be traced).
      dtype: floating dtype of the result.
    Returns:
      shape ``(dim,)``.
    """
    g = jax.random.normal(key, (dim,), dtype=dtype)
    return project_to_sphere(g, radius)


def sample_labeled(key: jax.Array, dim: int, outer_radius: ArrayLike = OUTER_RADIUS,
                   dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """One example of the two-sphere task.

    Returns:
      ``(x, y)``: ``x`` of shape ``(dim,)`` uniform on the sphere of radius 1 if ``y = 0`` or
      ``outer_radius`` if ``y = 1``; ``y`` an int32 scalar, 0 or 1 with probability 1/2.
    """
    k_label, k_point = jax.random.split(key)
    y = jax.random.bernoulli(k_label, 0.5).astype(jnp.int32)
    radius = jnp.where(y == 1, jnp.asarray(outer_radius, dtype), jnp.asarray(INNER_RADIUS, dtype))
    return sample_sphere(k_point, dim, radius, dtype), y


def sample_batch(key: jax.Array, batch: int, dim: int, outer_radius: ArrayLike = OUTER_RADIUS,
                 dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """A fresh (online) batch of the two-sphere task: ``x`` shape ``(batch, dim)``, ``y`` shape ``(batch,)``."""
    keys = jax.random.split(key, batch)
    return jax.vmap(lambda k: sample_labeled(k, dim, outer_radius, dtype))(keys)


def dataset_point(key: jax.Array, index: ArrayLike, dim: int, outer_radius: ArrayLike = OUTER_RADIUS,
                  dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Point ``index`` of the finite training set identified by ``key``, regenerated on demand.

    The set ``{dataset_point(key, i) : 0 <= i < N}`` is a fixed i.i.d. sample of the task;
    the same ``(key, i)`` always gives the same point, so the set never needs storing.
    """
    return sample_labeled(jax.random.fold_in(key, index), dim, outer_radius, dtype)


def dataset(key: jax.Array, size: int, dim: int, outer_radius: ArrayLike = OUTER_RADIUS,
            dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """The first ``size`` points of the finite set ``key``, materialised: shapes ``(size, dim)``, ``(size,)``."""
    idx = jnp.arange(size)
    return jax.vmap(lambda i: dataset_point(key, i, dim, outer_radius, dtype))(idx)
