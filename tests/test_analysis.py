"""Fits: recover known slopes; standard errors are calibrated."""

import numpy as np
import pytest
from scipy import stats

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
