"""Two-dimensional slices through a classifier's decision boundary (docs/science.md section 8).

A slice is the plane through the origin spanned by two directions ``a`` and ``b``
(orthonormalised by Gram-Schmidt). The classifier's logit is evaluated on a square grid of
points ``s * e_1 + t * e_2`` of that plane; the two spheres meet the plane in circles of
radius 1 and R, and the max-margin boundary in the circle of radius (1 + R)/2.

The three planes of the paper: two random directions; a random point and an adversarial
direction (the nearest error found from that point); two adversarial directions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from spheres.maths.classifiers import LogitFn
from spheres.maths.geometry import normalize


class Slice(NamedTuple):
    """Logits on a grid in the plane spanned by ``basis``.

    Attributes:
      coords: float32 ``(n,)`` grid coordinates along each in-plane axis.
      logits: float32 ``(n, n)``; ``logits[i, j]`` at ``coords[j] * basis[0] + coords[i] * basis[1]``.
      basis: float32 ``(2, d)`` orthonormal in-plane axes.
    """

    coords: jax.Array
    logits: jax.Array
    basis: jax.Array


def orthonormal_pair(a: ArrayLike, b: ArrayLike) -> jax.Array:
    """Gram-Schmidt: unit ``e1 = a/|a|`` and unit ``e2`` along ``b - (b.e1) e1``; shape ``(2, d)``."""
    e1 = normalize(a)
    b = jnp.asarray(b)
    e2 = normalize(b - jnp.dot(b, e1) * e1)
    return jnp.stack([e1, e2])


def decision_slice(logit_fn: LogitFn, params: Any, a: ArrayLike, b: ArrayLike, extent: float = 1.6,
                   resolution: int = 201) -> Slice:
    """Evaluate ``logit_fn(params, .)`` on the ``resolution x resolution`` grid ``[-extent, extent]^2``
    of the plane spanned by ``a`` and ``b`` (shapes ``(d,)``)."""
    basis = orthonormal_pair(a, b)
    coords = jnp.linspace(-extent, extent, resolution, dtype=basis.dtype)
    s, t = jnp.meshgrid(coords, coords)  # s varies along columns (axis 1)
    plane = jnp.stack([s.ravel(), t.ravel()], axis=1)  # (n*n, 2) in-plane coordinates
    flat = plane @ basis  # (n*n, d)
    logits = jax.lax.map(lambda x: logit_fn(params, x), flat, batch_size=4096)
    return Slice(coords, logits.reshape(resolution, resolution), basis)
