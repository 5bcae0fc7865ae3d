"""The quadratic network solved exactly: alphas, exact error rates, exact nearest errors.

Every exact answer is checked against an independent route: a generic constrained optimiser
(nearest errors), closed-form Beta/F tails and mpmath integration (error rates), and Monte
Carlo with tolerances derived from the binomial standard error.
"""

import math

import numpy as np
import pytest
from scipy import optimize

from spheres.maths import quadratic as quad
from spheres.maths.quadratic import Orientation

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
    starts_rng = np.random.default_rng(70 + label)
    radius = 1.0 if label == 0 else 1.3
    checked = 0
    for _ in range(12):
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
        ref = _reference_nearest(alphas, z, radius, orientation, label, starts_rng, starts=10)
        assert dist == pytest.approx(ref, rel=1e-6, abs=1e-9)
        k = quad.sphere_coefficients(alphas, radius, orientation)
        assert np.sum(k * y * y) == pytest.approx(0.0, abs=1e-9)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("dim", [10, 500])
@pytest.mark.parametrize("spectrum", ["uniform", "levels", "near_degenerate_top", "lognormal"])
def test_nearest_error_satisfies_kkt_in_high_dimension(dim, spectrum):
    """Where no generic optimiser is reliable: the point is on the sphere and the boundary, and
    z is a combination lam*y - mu*(k o y) with mu >= 0 (stationarity of the Lagrangian with the
    multiplier sign of an active ">= 0" constraint). With the concavity argument in
    ``nearest_error`` this certifies the global optimum."""
    rng = np.random.default_rng(dim)
    checked = 0
    for trial in range(8):
        if spectrum == "uniform":
            alphas = rng.uniform(0.0, 2.0, dim)
        elif spectrum == "levels":
            alphas = rng.choice([0.0, 0.5, 0.8, 1.3], size=dim)
        elif spectrum == "near_degenerate_top":
            alphas = np.concatenate([[1.0 + 1e-9, 1.0 + 2e-9], rng.uniform(0.0, 1.0, dim - 2)])
        else:
            alphas = np.exp(rng.normal(0.0, 2.0, dim))
        label = trial % 2
        radius = 1.0 + 0.3 * label
        z = rng.normal(size=dim)
        if trial % 4 == 0:
            z[np.argmax(alphas)] = 0.0  # invite the hard case
        z *= radius / np.linalg.norm(z)
        dist, y = quad.nearest_error(alphas, z, radius, label=label)
        if dist == 0.0 or math.isinf(dist):
            continue
        k = quad.sphere_coefficients(alphas, radius)
        assert abs(np.sum(k * y * y)) <= 1e-12 * np.sum(np.abs(k) * y * y)
        assert np.linalg.norm(y) == pytest.approx(radius, rel=1e-13)
        basis = np.stack([y, k * y], axis=1)
        coef, *_ = np.linalg.lstsq(basis, z, rcond=None)
        assert np.linalg.norm(basis @ coef - z) <= 1e-10 * radius
        mu = -coef[1] if label == 0 else coef[1]  # label 1 minimises over {-k y^2 >= 0}
        assert mu >= -1e-10
        checked += 1
    assert checked >= 3


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


# ----------------------------------------------------------------------------------------------
# Exact error rates


def _one_positive(dim, a):
    alphas = np.zeros(dim)
    alphas[0] = a
    return alphas


@pytest.mark.parametrize("dim,a", [(3, 1.5), (10, 1.1), (10, 30.0), (50, 1.3), (500, 3.0), (500, 1.5),
                                   (500, 1.1), (500, 1.01), (2000, 1.1)])
def test_one_positive_weight_is_a_beta_tail(dim, a):
    """alphas = (a, 0, ..., 0): inner error = P(x_1^2 > 1/a) with x_1^2 ~ Beta(1/2, (d-1)/2)
    (docs/science.md s.3), i.e. I_{1 - 1/a}((d-1)/2, 1/2). Reference in mpmath at 30 digits, so the
    check reaches 1e-50 ... 1e-1000, far past float64's 1e-308."""
    import mpmath

    with mpmath.workdps(30):
        ref = mpmath.betainc((dim - 1) / 2, 0.5, 0, 1 - 1 / mpmath.mpf(a), regularized=True)
        ref_log10 = float(mpmath.log10(ref))
    rates = quad.error_rates(_one_positive(dim, a), 1.3)
    # 1% relative in the probability is 0.0043 in log10; we hold 1e-8 relative
    assert rates.log10_inner == pytest.approx(ref_log10, abs=1e-8 / math.log(10), rel=0)
    if ref_log10 > -300:
        assert rates.inner == pytest.approx(float(ref), rel=1e-8)
    # outer: called inner iff R^2 a x_1^2 <= 1, the band P(x_1^2 < 1/(R^2 a)) around the equator
    with mpmath.workdps(30):
        ref_out = float(mpmath.betainc(0.5, (dim - 1) / 2, 0, 1 / (mpmath.mpf(1.69) * a), regularized=True))
    assert rates.outer == pytest.approx(ref_out, rel=1e-8)


@pytest.mark.parametrize("k,hi,lo", [(150, 1.4, 0.7), (20, 1.05, 0.6), (250, 2.0, 0.3), (5, 1.2, 0.1)])
def test_two_level_spectrum_is_an_f_tail(k, hi, lo):
    """k alphas at ``hi`` and d - k at ``lo``: the error rates are F-distribution tails,
    P((hi - 1) chi2_k > (1 - lo) chi2_{d-k}) = P(F_{k, d-k} > (1 - lo)(d - k) / ((hi - 1) k))."""
    from scipy import stats

    dim, R = 500, 1.3
    alphas = np.concatenate([np.full(k, hi), np.full(dim - k, lo)])
    rates = quad.error_rates(alphas, R)
    f_in = (1 - lo) * (dim - k) / ((hi - 1) * k)
    ref_in = stats.f.logsf(f_in, k, dim - k) / math.log(10)
    assert rates.log10_inner == pytest.approx(ref_in, abs=1e-9)
    # outer error: P((R^2 hi - 1) chi2_k < (1 - R^2 lo) chi2_{d-k}); zero if R^2 lo >= 1
    if R**2 * lo < 1:
        f_out = (1 - R**2 * lo) * (dim - k) / ((R**2 * hi - 1) * k)
        ref_out = stats.f.logcdf(f_out, k, dim - k) / math.log(10)
        assert rates.log10_outer == pytest.approx(ref_out, abs=1e-9)
    else:
        assert rates.outer == 0.0 and rates.log10_outer == -math.inf


def _imhof_mpmath(lam):
    """P(sum lam_i g_i^2 > 0) by Imhof's integral in mpmath (independent of the saddlepoint route)."""
    import mpmath

    with mpmath.workdps(30):
        lam = [mpmath.mpf(float(x)) for x in lam]

        def integrand(u):
            theta = sum(mpmath.atan(x * u) for x in lam) / 2
            rho = mpmath.fprod([(1 + x * x * u * u) ** 0.25 for x in lam])
            return mpmath.sin(theta) / (u * rho)

        return float(mpmath.mpf(0.5) + mpmath.quad(integrand, [0, 1, 10, 100, mpmath.inf]) / mpmath.pi)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_spectra_match_imhof_in_mpmath(seed):
    rng = np.random.default_rng(seed)
    lam = rng.normal(size=3 + 2 * seed) + [0.0] * (3 + 2 * seed)
    lam[0] -= 2.0  # vary the probability away from 1/2
    assert quad.prob_positive(lam) == pytest.approx(_imhof_mpmath(lam), rel=1e-9)


@pytest.mark.parametrize("log10_ratio", [-280, -100, -24, -12, -3, 0, 3, 12, 24, 100, 280])
def test_two_weights_closed_form_over_any_scale(log10_ratio):
    """P(a g_1^2 > b g_2^2) = (2/pi) atan(sqrt(a/b)) (|g_1/g_2| is standard Cauchy), for weight
    ratios from 1e-280 (a probability ~1e-140) to 1e280 (one minus that)."""
    a, b = 1.0, 10.0 ** (-log10_ratio)
    x = 10.0 ** (log10_ratio / 2)  # sqrt(a / b)
    p = quad.prob_positive([a, -b])
    q = quad.prob_positive([-a, b])
    p_ref, q_ref = 2 / math.pi * math.atan(x), 2 / math.pi * math.atan(1 / x)
    assert p == pytest.approx(p_ref, rel=1e-10)
    assert q == pytest.approx(q_ref, rel=1e-10)


def test_tiny_weights_beside_large_ones_keep_the_complement_exact():
    """A weight 1e-12 times the others only acts far out on the inversion contour; the
    probability near 1 must still equal one minus its small mirror image."""
    for dim in (3, 1000):
        lam = np.concatenate([[1.0], -1e-12 * np.ones(dim - 1)])
        # the quadrature is asked for 1e-10 relative accuracy (1e-12 in the Gaussian head)
        assert quad.prob_positive(lam) + quad.prob_positive(-lam) == pytest.approx(1.0, abs=1e-10)


def test_mirror_probabilities_sum_to_one():
    rng = np.random.default_rng(5)
    for dim in (2, 7, 300):
        lam = rng.normal(size=dim) + rng.normal()
        assert quad.prob_positive(lam) + quad.prob_positive(-lam) == pytest.approx(1.0, abs=1e-12)


def test_error_rates_match_monte_carlo_on_the_spheres():
    """Sample the spheres themselves (float32, the house sampler) and classify with the
    ellipsoid logit; the binomial SE sets the tolerance (5 SE: a false alarm ~ 1e-6)."""
    import jax
    import jax.numpy as jnp

    from spheres.maths.classifiers import ellipsoid_logit
    from spheres.maths.geometry import sample_sphere

    dim, n, R = 20, 200_000, 1.3
    alphas = np.linspace(0.3, 1.4, dim)
    exact = quad.error_rates(alphas, R)
    params = {"alphas": jnp.asarray(alphas, jnp.float32)}
    counts = []
    for radius, key in ((1.0, jax.random.key(11)), (R, jax.random.key(12))):
        x = jax.vmap(lambda k: sample_sphere(k, dim, radius))(jax.random.split(key, n))
        logit = jax.vmap(lambda xi: ellipsoid_logit(params, xi))(x)
        counts.append(int(jnp.sum(logit > 0) if radius == 1.0 else jnp.sum(logit <= 0)))
    for count, p in zip(counts, (exact.inner, exact.outer)):
        assert 1e-3 < p < 0.5  # visible to Monte Carlo at this n
        assert abs(count / n - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_monotone_in_each_alpha():
    """Raising an alpha can only add inner errors and remove outer errors."""
    rng = np.random.default_rng(9)
    alphas = rng.uniform(0.4, 1.2, size=40)
    base = quad.error_rates(alphas, 1.3)
    for i in range(0, 40, 7):
        up = alphas.copy()
        up[i] += 0.1
        r = quad.error_rates(up, 1.3)
        assert r.log10_inner > base.log10_inner
        assert r.log10_outer < base.log10_outer


def test_orientation_cases_of_error_rates():
    alphas = np.linspace(0.4, 1.3, 30)
    g = quad.error_rates(alphas, 1.3, Orientation.OUTER_IF_GREATER)
    less = quad.error_rates(alphas, 1.3, Orientation.OUTER_IF_LESS)
    # flipping the inequality swaps right and wrong on each sphere
    assert less.inner == pytest.approx(1 - g.inner, abs=1e-12)
    assert less.outer == pytest.approx(1 - g.outer, abs=1e-12)
    assert quad.error_rates(alphas, 1.3, Orientation.ALWAYS_OUTER)[:2] == (1.0, 0.0)
    assert quad.error_rates(alphas, 1.3, Orientation.ALWAYS_INNER)[:2] == (0.0, 1.0)
    assert quad.error_rates(alphas, 1.3, Orientation.OUTER_IF_NONZERO)[:2] == (1.0, 0.0)
    for constant in (Orientation.ALWAYS_OUTER, Orientation.ALWAYS_INNER, Orientation.OUTER_IF_NONZERO):
        assert quad.clt_error_rates(alphas, 1.3, constant) == quad.error_rates(alphas, 1.3, constant)
    # all-zero alphas: f = b < 0 everywhere for w > 0 > b: the whole outer sphere is wrong
    assert quad.error_rates(np.zeros(5), 1.3)[:2] == (0.0, 1.0)
    # a perfect ellipsoid: every alpha in [1/R^2, 1]
    perfect = np.linspace(1 / 1.69, 1.0, 30)
    assert quad.count_outside(perfect, 1.3) == 0
    r = quad.error_rates(perfect, 1.3)
    assert (r.inner, r.outer, r.log10_inner) == (0.0, 0.0, -math.inf)


def test_alphas_from_weights_error_rates_match_monte_carlo_on_the_network():
    """End to end for a sign case the paper does not use (w < 0 < b): the network's own logit
    on sampled points agrees with the exact rates of its alphas and orientation."""
    rng = np.random.default_rng(4)
    h, dim, n = 8, 12, 100_000
    W = rng.normal(size=(h, dim)) / math.sqrt(dim)
    w, b = -1.0, 0.9
    dec = quad.alphas_from_weights(W, w, b)
    assert dec.orientation is Orientation.OUTER_IF_LESS
    exact = quad.error_rates(dec.alphas, 1.3, dec.orientation)
    for radius, p, sign in ((1.0, exact.inner, 1), (1.3, exact.outer, -1)):
        x = rng.normal(size=(n, dim))
        x *= radius / np.linalg.norm(x, axis=1, keepdims=True)
        logit = w * np.sum((x @ W.T) ** 2, axis=1) + b
        wrong = np.count_nonzero(logit > 0) if sign == 1 else np.count_nonzero(logit <= 0)
        assert 1e-3 < p < 0.999
        assert abs(wrong / n - p) < 5 * math.sqrt(p * (1 - p) / n)


# ----------------------------------------------------------------------------------------------
# The paper's CLT estimate


def test_clt_is_accurate_for_many_comparable_weights():
    """Symmetric spread of many small weights (zero skewness) at moderate probability: the
    normal approximation's error is O(1/d) there."""
    dim = 2000
    alphas = 1.0 + np.linspace(-0.5, 0.5, dim) - 0.01
    exact, clt = quad.error_rates(alphas, 1.3), quad.clt_error_rates(alphas, 1.3)
    assert 0.05 < exact.inner < 0.5
    assert clt.inner == pytest.approx(exact.inner, rel=0.01)


def test_clt_misses_in_the_tails():
    """Where the CLT is off (docs/science.md s.5): a positively skewed inner sum (few large alphas above
    1) makes it too low; a negatively skewed outer sum makes it far too high. Exact values are
    F tails (test above)."""
    alphas = np.concatenate([np.full(150, 1.4), np.full(350, 0.7)])
    exact, clt = quad.error_rates(alphas, 1.3), quad.clt_error_rates(alphas, 1.3)
    assert 1e-6 < exact.inner < 1e-4
    assert clt.inner < 0.8 * exact.inner
    alphas = np.concatenate([np.full(150, 1.4), np.full(200, 0.3), np.full(150, 0.7)])
    exact, clt = quad.error_rates(alphas, 1.3), quad.clt_error_rates(alphas, 1.3)
    assert 1e-10 < exact.outer < 1e-7
    assert clt.outer > 10 * exact.outer


def test_alphas_of_the_trained_model_class():
    """The real QuadNet (spheres.nets.models), its exported weights and the analysis agree on every
    sampled point's predicted class, for each sign case of (w, b)."""
    import jax
    import jax.numpy as jnp

    from spheres.nets import models
    from spheres.nets.config import ModelConfig

    dim, n, cfg = 12, 400, ModelConfig(arch="quad", width=8, depth=1)
    variables = models.init_variables(jax.random.key(0), cfg, dim)
    logit_fn = models.make_logit_fn(cfg, dim)
    batch_logits = jax.jit(lambda v, xs: jax.vmap(lambda xi: logit_fn(v, xi))(xs))
    x = np.asarray(jax.random.normal(jax.random.key(1), (n, dim)), np.float64)
    radii = np.where(np.arange(n) % 2 == 0, 1.0, 1.3)
    x *= radii[:, None] / np.linalg.norm(x, axis=1, keepdims=True)
    for w, b in [(0.5, -0.3), (-0.5, 0.3), (0.5, 0.0), (0.5, 0.3), (-0.5, -0.3)]:
        variables["params"]["w"] = jnp.asarray(w, jnp.float32)
        variables["params"]["b"] = jnp.asarray(b, jnp.float32)
        logits = np.asarray(batch_logits(variables, jnp.asarray(x, jnp.float32)), np.float64)
        dec = quad.alphas_from_weights(*models.quadratic_weights(variables), dim=dim)
        z = x @ dec.rotation
        for zi, r, logit in zip(z, radii, logits):
            k = quad.sphere_coefficients(dec.alphas, r, dec.orientation)
            if abs(logit) > 1e-5:  # away from float32 rounding at the boundary
                assert (np.sum(k * zi * zi) > 0) == (logit > 0)
