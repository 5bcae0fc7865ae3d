"""Slices: the grid really lies in the plane, and a known boundary shows up where it should."""

import jax
import jax.numpy as jnp
import numpy as np

from spheres.maths.classifiers import ellipsoid_logit
from spheres.measure.slices import decision_slice, orthonormal_pair


def test_orthonormal_pair():
    k1, k2 = jax.random.split(jax.random.key(0))
    basis = orthonormal_pair(jax.random.normal(k1, (9,)), jax.random.normal(k2, (9,)))
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-6)


def test_sphere_classifier_slice_is_a_disc():
    """alphas = 1/1.15^2 everywhere: the max-margin sphere; its slice is the disc of radius 1.15."""
    d = 12
    params = {"alphas": jnp.full((d,), 1 / 1.15**2)}
    k1, k2 = jax.random.split(jax.random.key(1))
    sl = decision_slice(ellipsoid_logit, params, jax.random.normal(k1, (d,)), jax.random.normal(k2, (d,)),
                        extent=1.5, resolution=61)
    s, t = np.meshgrid(np.asarray(sl.coords), np.asarray(sl.coords))
    r = np.hypot(s, t)
    inside = np.asarray(sl.logits) < 0
    far = np.abs(r - 1.15) > 2 * 3.0 / 60  # away from the boundary by two grid cells
    np.testing.assert_array_equal(inside[far], (r < 1.15)[far])
