"""Geometry: invariants of sampling, projections and distances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from spheres.maths import geometry as geo
from conftest import DIMS

seeds = st.integers(0, 2**31 - 1)
dims = st.sampled_from(DIMS)
radii = st.floats(0.1, 5.0)


@given(seeds, dims, radii)
def test_sample_sphere_norm_is_radius(seed, dim, radius):
    x = geo.sample_sphere(jax.random.key(seed), dim, radius)
    assert x.shape == (dim,)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(x, np.float64)), radius, rtol=1e-5)


@pytest.mark.parametrize("dim", [3, 10, 500])
def test_first_coordinate_follows_beta_law(dim):
    """(x_1 + 1)/2 ~ Beta((d-1)/2, (d-1)/2) for x uniform on the unit sphere (docs/science.md s.3)."""
    keys = jax.random.split(jax.random.key(1), 20_000)
    x1 = np.asarray(jax.vmap(lambda k: geo.sample_sphere(k, dim))(keys)[:, 0], np.float64)
    a = (dim - 1) / 2
    res = stats.kstest((x1 + 1) / 2, stats.beta(a, a).cdf)
    assert res.pvalue > 1e-3, res


def test_moments_are_rotation_invariant():
    """E[x x^T] = I/d; a random rotation of the sample has the same second moments."""
    dim, n = 6, 40_000
    keys = jax.random.split(jax.random.key(2), n)
    x = np.asarray(jax.vmap(lambda k: geo.sample_sphere(k, dim))(keys), np.float64)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(dim, dim)))
    for sample in (x, x @ q.T):
        cov = sample.T @ sample / n
        # each entry of x_i x_j has variance <= 1/d^2 ... use a 6-sigma bound from the sample size
        np.testing.assert_allclose(cov, np.eye(dim) / dim, atol=6 * np.sqrt(1.0 / (dim * dim * n)) * 2)
        np.testing.assert_allclose(sample.mean(0), 0.0, atol=6 / np.sqrt(dim * n))


def test_labeled_batch_radii_and_balance():
    x, y = geo.sample_batch(jax.random.key(3), 4000, 20, 1.3)
    r = np.linalg.norm(np.asarray(x, np.float64), axis=1)
    y = np.asarray(y)
    np.testing.assert_allclose(r[y == 0], 1.0, rtol=1e-5)
    np.testing.assert_allclose(r[y == 1], 1.3, rtol=1e-5)
    # Binomial(4000, 1/2): 5 sigma = 5 * sqrt(1000) ~ 158
    assert abs(int(y.sum()) - 2000) < 160


def test_finite_set_is_reproducible_from_key():
    key = jax.random.key(4)
    x, y = geo.dataset(key, 100, 8)
    x2, y2 = geo.dataset(key, 100, 8)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # point i regenerated alone equals row i
    xi, yi = geo.dataset_point(key, 37, 8)
    np.testing.assert_array_equal(xi, x[37])
    assert int(yi) == int(y[37])
    # a different key gives a different set
    x3, _ = geo.dataset(jax.random.key(5), 100, 8)
    assert not np.allclose(x, x3)


@given(seeds, dims, radii)
def test_projection_is_idempotent_and_on_sphere(seed, dim, radius):
    v = 3.0 * jax.random.normal(jax.random.key(seed), (dim,))
    p = geo.project_to_sphere(v, radius)
    np.testing.assert_allclose(float(jnp.linalg.norm(p)), radius, rtol=1e-5)
    np.testing.assert_allclose(geo.project_to_sphere(p, radius), p, rtol=1e-5, atol=1e-6)


def test_gradients_finite_at_zero():
    z = jnp.zeros(5)
    for fn in (lambda x: jnp.sum(geo.project_to_sphere(x, 1.3)), geo.safe_norm,
               lambda x: geo.chord_distance(x, z), lambda x: jnp.sum(geo.normalize(x))):
        value, grad = jax.value_and_grad(fn)(z)
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(geo.project_to_sphere(z, 2.0), jnp.array([2.0, 0, 0, 0, 0]))


@given(seeds, dims)
def test_tangent_projection(seed, dim):
    k1, k2 = jax.random.split(jax.random.key(seed))
    x = geo.sample_sphere(k1, dim, 1.3)
    v = jax.random.normal(k2, (dim,))
    t = geo.tangent_project(x, v)
    assert abs(float(jnp.dot(t, x))) < 1e-5
    np.testing.assert_allclose(geo.tangent_project(x, t), t, atol=1e-5)


@given(seeds, dims, st.floats(0.0, 3.1))
def test_rotate_toward_stays_on_sphere_and_moves_by_theta(seed, dim, theta):
    k1, k2 = jax.random.split(jax.random.key(seed))
    x = geo.sample_sphere(k1, dim, 1.3)
    y = geo.rotate_toward(x, jax.random.normal(k2, (dim,)), theta)
    np.testing.assert_allclose(float(jnp.linalg.norm(y)), 1.3, rtol=1e-5)
    np.testing.assert_allclose(float(geo.angle_between(x, y)), theta, atol=2e-3)
    # chord = 2 r sin(theta/2), geodesic = r theta
    np.testing.assert_allclose(float(geo.chord_distance(x, y)), 2 * 1.3 * np.sin(theta / 2), atol=2e-3)
    np.testing.assert_allclose(float(geo.geodesic_distance(x, y, 1.3)), 1.3 * theta, atol=3e-3)


def test_geodesic_exceeds_chord_by_under_one_percent_at_small_angle():
    x = jnp.array([1.0, 0.0, 0.0])
    y = jnp.array([np.cos(0.2), np.sin(0.2), 0.0])
    ratio = float(geo.geodesic_distance(x, y)) / float(geo.chord_distance(x, y))
    assert 1.0 < ratio < 1.01
