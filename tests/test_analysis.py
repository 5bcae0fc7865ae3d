"""Fits: recover known slopes; standard errors are calibrated."""

import numpy as np
import pytest
from scipy import stats

import jax

from spheres.maths import analysis, theory
from spheres.maths.analysis import cap_profile, dimension_exponent, linear_fit


def test_standard_error_is_calibrated():
    """Over many synthetic data sets the 95% interval slope +- 1.96 SE covers the truth ~95% of the time
    (t-quantile for 8 dof used for the unweighted fit)."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 5, 10)
    hits_ols = hits_wls = 0
    trials = 2000
    for _ in range(trials):
        sigma = rng.uniform(0.1, 0.5, x.size)
        y = 1.0 - 0.5 * x + sigma * rng.normal(size=x.size)
        f = linear_fit(x, y)
        hits_ols += abs(f.slope + 0.5) < stats.t.ppf(0.975, f.dof) * f.slope_se
        g = linear_fit(x, y, sigma)
        hits_wls += abs(g.slope + 0.5) < 1.96 * g.slope_se
    # binomial(2000, 0.95) sd ~ 0.005; the max(chi2, 1) rule makes WLS slightly conservative
    assert 0.93 < hits_ols / trials < 0.97
    assert 0.94 < hits_wls / trials < 0.99


def test_cap_profile_is_positive_and_tends_to_c():
    mu = np.array([0.9, 0.5, 1e-2, 1e-8, 1e-100])
    p = cap_profile(mu)
    assert np.all(p > 0)
    assert p[2] > p[1] > p[0]
    c = stats.norm.isf(mu[-1])
    assert abs(p[-1] / c - 1) < 1e-3


def test_dimension_exponent_recovers_minus_half():
    dims = np.array([16, 32, 64, 128, 256, 512, 1024, 2048])
    mu = np.geomspace(1e-2, 1e-6, dims.size)
    dist = 0.9 * cap_profile(mu) / np.sqrt(dims)
    f = dimension_exponent(dims, mu, dist)
    assert f.slope == pytest.approx(-0.5, abs=1e-10)


def test_bad_shapes():
    with pytest.raises(ValueError):
        linear_fit([1, 2], [1, 2])


# ----------------------------------------------------------------------------- the exact law

_DIMS = np.array([16, 16, 32, 32, 64, 64, 128, 128, 256, 256], np.float64)
_MU = np.array([1e-2, 1e-3] * 5)


def test_law_slope_is_zero_for_distances_proportional_to_the_exact_bound():
    dist = 0.8 * theory.mean_distance_to_cap(_MU, _DIMS)  # any mix of error rates, any constant fraction
    fit = analysis.law_slope(jax.random.key(0), _DIMS, _MU, _MU / 2, _MU * 2, dist, 0.02 * dist)
    assert abs(fit.slope) < 1e-10 and fit.dims == (16, 32, 64, 128, 256) and fit.n == 10
    assert fit.mu_se > 0 and fit.slope_se == pytest.approx(np.hypot(fit.fit_se, fit.mu_se))


def test_law_slope_detects_a_departure_the_old_exponent_fit_would_hide():
    """A 10% drift of d(E)/d_cap per doubling of d is found at many SE; exact rates carry no mu spread."""
    dist = 0.8 * theory.mean_distance_to_cap(_MU, _DIMS) * (_DIMS / 16) ** 0.14
    fit = analysis.law_slope(jax.random.key(1), _DIMS, _MU, _MU, _MU, dist, 0.02 * dist)
    assert fit.slope == pytest.approx(0.14, abs=1e-9) and fit.mu_se == 0.0 and fit.z > 10


def test_law_slope_z_is_honest_under_noise():
    """Distances scattered by their SE around the bound: |z| stays below 3 for most independent draws."""
    rng = np.random.default_rng(0)
    zs = []
    for k in range(30):
        dist0 = 0.7 * theory.mean_distance_to_cap(_MU, _DIMS)
        se = 0.05 * dist0
        dist = dist0 + se * rng.standard_normal(dist0.size)
        zs.append(analysis.law_slope(jax.random.key(k), _DIMS, _MU, _MU / 1.5, _MU * 1.5, dist, se).z)
    assert np.mean(np.abs(zs) < 2) > 0.8 and np.max(np.abs(zs)) < 4


def test_law_slope_needs_two_dimensions():
    d = np.array([16.0, 16.0, 16.0])
    assert analysis.law_slope(jax.random.key(0), d, [0.1] * 3, [0.1] * 3, [0.1] * 3, [0.1] * 3, [0.01] * 3) is None


def test_interpolation_at_a_rate_is_exact_for_power_laws_and_never_extrapolates():
    steps, mu = [1, 10, 100, 1000], np.array([0.3, 3e-2, 3e-3, 3e-4])
    dist = 0.05 * mu ** -0.2  # log d linear in log mu: interpolation is exact
    p = analysis.interpolate_at_rate(1e-3, steps, mu, dist, 0.01 * dist)
    assert p.distance == pytest.approx(0.05 * 1e-3 ** -0.2, rel=1e-12) and p.steps == (100, 1000)
    assert 0 < p.distance_se < 0.01 * p.distance  # weighted, so below either end's 1%
    assert analysis.interpolate_at_rate(1e-5, steps, mu, dist, 0.01 * dist) is None
    # a rate crossed twice: the later crossing counts
    again = analysis.interpolate_at_rate(1e-2, [1, 2, 3, 4], [3e-2, 3e-3, 3e-2, 3e-3], [1.0, 2.0, 3.0, 4.0], [0.0] * 4)
    assert again.steps == (3, 4)
