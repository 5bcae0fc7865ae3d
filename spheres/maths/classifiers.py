"""The classifier contract shared by measurement, attacks and rare-event estimation.

A *classifier* is a pure function ``logit_fn(params, x) -> scalar`` acting on ONE point
``x`` of shape ``(d,)``; ``params`` is any pytree (for ensembles, every leaf carries a
leading model axis and callers ``vmap`` over it). The prediction is "outer" (label 1) iff
``logit > 0``.

For any labelled point the *error score* ``s = logit`` (label 0) or ``-logit`` (label 1)
is positive exactly when the point is misclassified (up to the measure-zero set
``logit = 0`` on the outer sphere); attacks push ``s`` up and the rare-event sampler uses
``s`` as its level function.

Two reference classifiers with exact answers, used to grade every method:

* :func:`cap_logit` -- "outer iff u . x / ||x|| >= t": its inner-sphere error set is the
  spherical cap ``{x_1 >= t}`` (after a rotation), whose measure and mean distance are known
  exactly (``spheres.maths.theory``).
* :func:`ellipsoid_logit` -- "outer iff sum_i alpha_i x_i^2 > 1": the quadratic network in
  its rotated basis (docs/science.md section 5; exact error rates and nearest errors in
  ``spheres.maths.quadratic``).

>>> import jax.numpy as jnp
>>> p = {"alphas": jnp.array([2.0, 0.5])}
>>> float(ellipsoid_logit(p, jnp.array([1.0, 0.0])))   # 2 * 1 - 1 > 0: called outer
1.0
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from spheres.maths.geometry import normalize

LogitFn = Callable[[Any, jax.Array], jax.Array]


def predict(logit: ArrayLike) -> jax.Array:
    """Predicted label (int32): 1 (outer) iff ``logit > 0``."""
    return (jnp.asarray(logit) > 0).astype(jnp.int32)


def misclassified(logit: ArrayLike, label: ArrayLike) -> jax.Array:
    """True where the prediction from ``logit`` differs from ``label`` (0 inner, 1 outer)."""
    return predict(logit) != jnp.asarray(label)


def error_score(logit: ArrayLike, label: ArrayLike) -> jax.Array:
    """Signed score that is positive when the point is misclassified: ``logit`` for label 0,
    ``-logit`` for label 1."""
    logit = jnp.asarray(logit)
    return jnp.where(jnp.asarray(label) == 1, -logit, logit)


def cap_logit(params: dict, x: ArrayLike) -> jax.Array:
    """Cap classifier: ``logit = u . x/||x|| - t`` with ``params = {"u": (d,), "t": scalar}``.

    ``u`` is normalised inside, so any non-zero direction works. On either sphere the
    points called "outer" form the cap ``{u . x/||x|| > t}`` of measure ``P(x_1 > t)``.
    """
    u = normalize(params["u"])
    return jnp.dot(u, normalize(x)) - params["t"]


def ellipsoid_logit(params: dict, x: ArrayLike) -> jax.Array:
    """Quadratic (ellipsoid) classifier ``logit = sum_i alpha_i x_i^2 - 1``, ``params = {"alphas": (d,)}``.

    This is the quadratic network ``w sum_j (W x)_j^2 + b`` (``w > 0 > b``) after the rotation
    ``z = V^T x`` and division by ``-b`` (docs/science.md section 5).
    """
    x = jnp.asarray(x)
    return jnp.sum(params["alphas"] * x * x) - 1.0
