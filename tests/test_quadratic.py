"""The quadratic network solved exactly: alphas, exact error rates, exact nearest errors.

Every exact answer is checked against an independent route: a generic constrained optimiser
(nearest errors), closed-form Beta/F tails and mpmath integration (error rates), and Monte
Carlo with tolerances derived from the binomial standard error.
"""

import math

import numpy as np
import pytest
from scipy import optimize

from spheres import quadratic as quad
from spheres.quadratic import Orientation

ORIENTATIONS = list(Orientation)


# ----------------------------------------------------------------------------------------------
# Nearest error


def _reference_nearest(alphas, z, radius, orientation, label, rng, starts=25):
    """Nearest point of {||y|| = r, sum c y^2 = 0} by SLSQP from many random starts (c as in the module)."""
    c = quad._wrong_coefficients(alphas, radius, orientation, label)
    best = math.inf
    for _ in range(starts):
        y0 = rng.normal(size=z.size)
        y0 *= radius / np.linalg.norm(y0)
        res = optimize.minimize(
            lambda y: np.sum((y - z) ** 2), y0, jac=lambda y: 2 * (y - z), method="SLSQP",
            constraints=[{"type": "eq", "fun": lambda y: np.sum(y * y) - radius**2, "jac": lambda y: 2 * y},
                         {"type": "eq", "fun": lambda y: np.sum(c * y * y), "jac": lambda y: 2 * c * y}],
            options={"ftol": 1e-14, "maxiter": 500})
        if res.success and abs(np.sum(res.x**2) - radius**2) < 1e-8 and abs(np.sum(c * res.x**2)) < 1e-8:
            best = min(best, math.sqrt(res.fun))
    return best


def _random_case(rng, dim, degenerate):
    alphas = rng.uniform(0.2, 1.7, size=dim)
    if degenerate:  # repeated eigenvalues, including the top one, and exact zeros (h < d)
        alphas[1] = alphas[0] = alphas.max()
        alphas[-1] = 0.0
    z = rng.normal(size=dim)
    return alphas, z


@pytest.mark.parametrize("dim", [3, 5, 8])
@pytest.mark.parametrize("degenerate", [False, True])
@pytest.mark.parametrize("label", [0, 1])
def test_nearest_error_matches_generic_optimiser(dim, degenerate, label):
    rng = np.random.default_rng(100 * dim + 10 * degenerate + label)
    radius = 1.0 if label == 0 else 1.3
    checked = 0
    for _ in range(6):
        alphas, z = _random_case(rng, dim, degenerate)
        if label == 1:
            alphas = alphas * 0.8  # push some below 1/R^2 so outer points have errors
        z *= radius / np.linalg.norm(z)
        dist, y = quad.nearest_error(alphas, z, radius, label=label)
        if dist == 0.0 or math.isinf(dist):
            continue
        ref = _reference_nearest(alphas, z, radius, Orientation.OUTER_IF_GREATER, label, rng)
        # the exact answer is never worse than the optimiser, and the optimiser finds it
        assert dist <= ref + 1e-9
        assert dist == pytest.approx(ref, rel=1e-6, abs=1e-9)
        assert np.linalg.norm(y) == pytest.approx(radius, abs=1e-9)
        assert np.sum(alphas * y * y) == pytest.approx(1.0, abs=1e-9)
        assert np.linalg.norm(y - z) == pytest.approx(dist, abs=1e-12)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("dim", [3, 4, 6])
def test_hard_case_puts_mass_where_the_point_has_none(dim):
    """z has no component along the top alpha and the secular equation has no root: the
    minimiser moves mass into that direction. Compared with the optimiser."""
    rng = np.random.default_rng(dim)
    alphas = np.linspace(0.3, 0.9, dim)
    alphas[0] = 1.6  # the only direction that can reach outside the unit sphere's ellipsoid
    z = rng.normal(size=dim)
    z[0] = 0.0
    z /= np.linalg.norm(z)
    dist, y = quad.nearest_error(alphas, z, 1.0)
    assert y[0] != 0.0  # mass moved onto the direction z lacks
    ref = _reference_nearest(alphas, z, 1.0, Orientation.OUTER_IF_GREATER, 0, rng)
    assert dist == pytest.approx(ref, rel=1e-6)
    assert np.sum(alphas * y * y) == pytest.approx(1.0, abs=1e-12)
    assert np.linalg.norm(y) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("orientation", [Orientation.OUTER_IF_LESS, Orientation.OUTER_IF_NONZERO])
@pytest.mark.parametrize("label", [0, 1])
def test_other_orientations_match_optimiser(orientation, label):
    rng = np.random.default_rng(7 + label)
    radius = 1.0 if label == 0 else 1.3
    checked = 0
    for _ in range(8):
        alphas = rng.uniform(0.3, 1.5, size=5)
        if orientation is Orientation.OUTER_IF_NONZERO:
            alphas[-2:] = 0.0  # a null space for outer points to fall into
        z = rng.normal(size=5)
        z *= radius / np.linalg.norm(z)
        dist, y = quad.nearest_error(alphas, z, radius, orientation, label)
        if orientation is Orientation.OUTER_IF_NONZERO and label == 0:
            assert dist == 0.0  # every inner point off the null space is called outer
            checked += 1
            continue
        if dist == 0.0 or math.isinf(dist):
            continue
        ref = _reference_nearest(alphas, z, radius, orientation, label, rng)
        assert dist == pytest.approx(ref, rel=1e-6, abs=1e-9)
        k = quad.sphere_coefficients(alphas, radius, orientation)
        assert np.sum(k * y * y) == pytest.approx(0.0, abs=1e-9)
        checked += 1
    assert checked >= 2


def test_misclassified_points_are_at_distance_zero():
    rng = np.random.default_rng(3)
    alphas = rng.uniform(0.0, 2.0, size=10)
    for _ in range(20):
        z = rng.normal(size=10)
        z /= np.linalg.norm(z)
        dist, y = quad.nearest_error(alphas, z, 1.0)
        called_outer = np.sum(alphas * z * z) > 1.0
        assert (dist == 0.0) == called_outer
        if called_outer:
            np.testing.assert_array_equal(y, z)


def test_unreachable_sphere_gives_infinite_distance():
    alphas = np.array([0.9, 0.7, 0.6])  # inside [1/R^2, 1]: perfect on both spheres
    z = np.array([0.6, 0.8, 0.0])
    assert quad.nearest_error(alphas, z, 1.0)[0] == math.inf
    assert quad.nearest_error(alphas, 1.3 * z, 1.3, label=1)[0] == math.inf
    # touching from inside is not an error for the strict ">" rule: alpha_max = 1 exactly
    assert quad.nearest_error(np.array([1.0, 0.5, 0.5]), z, 1.0)[0] == math.inf


def test_constant_classifiers():
    z = np.array([0.6, 0.0, 0.8])
    alphas = np.array([0.5, 0.5, 0.5])
    assert quad.nearest_error(alphas, z, 1.0, Orientation.ALWAYS_OUTER, 0)[0] == 0.0
    assert quad.nearest_error(alphas, 1.3 * z, 1.3, Orientation.ALWAYS_OUTER, 1)[0] == math.inf
    assert quad.nearest_error(alphas, z, 1.0, Orientation.ALWAYS_INNER, 0)[0] == math.inf
    assert quad.nearest_error(alphas, 1.3 * z, 1.3, Orientation.ALWAYS_INNER, 1)[0] == 0.0
    # outer_if_nonzero with a null space: the nearest outer-point error is the projection on it
    alphas = np.array([1.0, 0.0, 0.0])
    dist, y = quad.nearest_error(alphas, 1.3 * z, 1.3, Orientation.OUTER_IF_NONZERO, 1)
    np.testing.assert_allclose(y, [0.0, 0.0, 1.3], atol=1e-15)
    assert dist == pytest.approx(1.3 * math.sqrt(0.6**2 + 0.2**2))


def test_two_dimensional_closed_form():
    """d = 2, alphas (a, 0): boundary at y_1 = +-1/sqrt(a); from angle phi the nearest error is
    at angle arcsin(1/sqrt(a)), chord 2 sin(|Delta angle| / 2)."""
    a = 1.7
    for phi in np.linspace(0.0, 0.6, 7):
        z = np.array([math.sin(phi), math.cos(phi)])
        dist, _ = quad.nearest_error(np.array([a, 0.0]), z, 1.0)
        target = math.asin(1 / math.sqrt(a))
        assert dist == pytest.approx(2 * math.sin((target - phi) / 2), rel=1e-12)


def test_mean_distance_matches_per_point_and_is_rotation_free():
    import jax

    alphas = np.concatenate([np.full(5, 1.3), np.full(45, 0.8)])
    est = quad.mean_nearest_error_distance(alphas, jax.random.key(0), radius=1.0, n_points=64)
    assert est.n == 64 and est.n_unreachable == 0
    assert est.se > 0 and math.isfinite(est.mean)
    pts = quad._uniform_points(jax.random.key(0), 64, 50, 1.0)
    dist, _ = quad.nearest_errors(alphas, pts)
    assert est.mean == pytest.approx(float(np.mean(dist)), rel=1e-12)
    assert est.n_misclassified == int(np.count_nonzero(dist == 0))


# ----------------------------------------------------------------------------------------------
# Alphas from weights


def test_alphas_from_weights_reproduce_the_network():
    rng = np.random.default_rng(0)
    h, d = 3, 6  # h < d: three directions the network cannot see
    W = rng.normal(size=(h, d))
    for w, b in [(0.7, -2.0), (-0.7, 2.0), (0.7, 0.0), (0.7, 2.0), (-0.7, -2.0), (0.0, 1.0), (0.0, 0.0),
                 (-0.7, 0.0)]:
        dec = quad.alphas_from_weights(W, w, b, dim=d)
        assert dec.alphas.shape == (d,)
        assert np.count_nonzero(dec.alphas) <= h
        np.testing.assert_allclose(dec.rotation.T @ dec.rotation, np.eye(d), atol=1e-12)
        for _ in range(50):
            x = rng.normal(size=d)
            x *= rng.uniform(0.5, 2.0) / np.linalg.norm(x)
            logit = w * np.sum((W @ x) ** 2) + b
            z = dec.rotation.T @ x
            k = quad.sphere_coefficients(dec.alphas, np.linalg.norm(x), dec.orientation)
            assert (np.sum(k * z * z) > 0) == (logit > 0)
