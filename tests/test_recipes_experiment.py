"""The recipe study: power-law fit and extrapolation graded on synthetic curves, and a tiny end-to-end run."""

import math
import tomllib

import numpy as np
import pytest

from spheres.core.errors import InputError
from spheres.core.io import read_csv
from spheres.experiments import recipes
from spheres.experiments.reproduce import config_from_table, reproduce


def _exact_steps(a, b, level):
    return 10 ** ((math.log10(level) - a) / b)


@pytest.mark.parametrize("a,b", [(0.5, -1.0), (-1.0, -2.0), (1.3, -0.6)])
def test_noiseless_power_law_extrapolates_exactly(a, b):
    t = np.geomspace(100, 5000, 9)
    fit = recipes.fit_power_law(t, 10 ** (a + b * np.log10(t)), np.full(t.size, 0.05))
    assert fit.n == 5  # only the last decade, t >= 500: 707 .. 5000
    r = recipes.extrapolate(fit, 1e-8)
    assert r.extrapolated
    np.testing.assert_allclose(r.steps, _exact_steps(a, b, 1e-8), rtol=1e-8)


def test_window_is_the_last_decade_and_zero_rates_are_left_out():
    t = np.array([1., 10., 100., 200., 400., 800., 1000.])
    mu = np.where(t < 50, 0.3, 2.0 * t ** -1.0)  # a different law before the window
    mu[-1] = 0.0  # no logarithm; the window is then [80, 800]
    fit = recipes.fit_power_law(t, mu, np.full(t.size, 0.05))
    assert fit.n == 4 and fit.t_max == 800.0
    np.testing.assert_allclose([fit.slope, fit.intercept], [-1.0, math.log10(2.0)], atol=1e-10)
    assert recipes.fit_power_law(t[:3], mu[:3], np.full(3, 0.05)) is None


def test_noisy_extrapolation_is_unbiased_and_its_interval_covers():
    """Over 400 noisy curves (log10 noise 0.1) the median log10 error of t(1e-8) is far below the
    0.04 that a 10% bias would give, and the 95% interval covers the truth 90-99% of the time."""
    rng = np.random.default_rng(0)
    a, b, sd = 0.0, -1.5, 0.1
    t = np.geomspace(1000, 10000, 8)
    truth = math.log10(_exact_steps(a, b, 1e-8))
    errs, cover = [], 0
    for _ in range(400):
        mu = 10 ** (a + b * np.log10(t) + sd * rng.standard_normal(t.size))
        r = recipes.extrapolate(recipes.fit_power_law(t, mu, np.full(t.size, sd)), 1e-8)
        errs.append(math.log10(r.steps) - truth)
        cover += r.lower <= 10**truth <= r.upper
    assert abs(np.median(errs)) < 0.015
    assert 0.90 <= cover / 400 <= 0.99
    # a 10-20% bias in the steps would fail the median check
    assert all(abs(np.median(errs) + math.log10(f)) > 0.015 for f in (1.1, 1.2, 1 / 1.1))


def test_delta_method_se_matches_a_resampled_fit():
    rng = np.random.default_rng(1)
    t = np.geomspace(1000, 10000, 10)
    sd = 0.05  # small enough for the linearisation of 1/slope to hold
    fit = recipes.fit_power_law(t, 10 ** (-1.0 * np.log10(t)), np.full(t.size, sd))
    se = recipes.extrapolate(fit, 1e-6).log10_se
    # covariance floor: the noiseless fit has chi2 = 0 < 1, so the SE is that of sigma = sd exactly
    draws = [math.log10(recipes.extrapolate(recipes.fit_power_law(
        t, 10 ** (-np.log10(t) + sd * rng.standard_normal(t.size)), np.full(t.size, sd)), 1e-6).steps)
        for _ in range(2000)]
    np.testing.assert_allclose(np.std(draws), se, rtol=0.1)


def test_measured_where_reached_else_extrapolated():
    steps, mu = [100, 200, 400, 1000], [1e-4, 2.5e-5, 6.25e-6, 1e-6]  # mu = t^-2
    up = [2e-4, 5e-5, 1.2e-5, 0.9e-6]
    fit = recipes.fit_power_law(steps, mu, [0.05] * 4)
    r = recipes.steps_to_reach(steps, mu, up, fit, 1e-4)
    assert not r.extrapolated and r.steps == 200  # 100 reaches 1e-4 only in its point estimate
    r = recipes.steps_to_reach(steps, mu, up, fit, 1e-8)
    assert r.extrapolated
    np.testing.assert_allclose(r.steps, 1e4, rtol=1e-8)
    # a dip below the level that does not last is not a reach: the last checkpoint is above it
    dip_mu, dip_up = [1e-3, 1e-5, 1e-3, 1e-5, 1e-5], [2e-3, 2e-5, 2e-3, 2e-5, 2e-5]
    r = recipes.steps_to_reach([10, 20, 40, 80, 160], dip_mu, dip_up, None, 1e-4)
    assert not r.extrapolated and r.steps == 80
    assert recipes.steps_to_reach([10, 20, 40], dip_mu[:3], dip_up[:3], None, 1e-4).steps is None
    rising = recipes.fit_power_law(steps, mu[::-1], [0.05] * 4)
    assert recipes.steps_to_reach(steps, mu[::-1], mu[::-1], rising, 1e-8).steps is None


def test_log10_sigma():
    assert recipes.log10_sigma(1e-5, 1e-5, 1e-5) == recipes.LOG10_FLOOR
    np.testing.assert_allclose(recipes.log10_sigma(1e-3, 1e-4, 1e-2), 2 / (2 * recipes.Z95))


SMOKE = """
experiments = ["recipes"]
[recipes]
models = ["quad-w16"]
levels = [0.3, 0.01, 1e-8]
[recipes.task]
dim = 8
[recipes.train]
steps = 240
seeds = [0]
checkpoints = 6
chunk_steps = 240
[recipes.recipe.paper]
learning_rates = [0.01]
[recipes.recipe.cosine]
learning_rates = [0.03, 0.01]
batch_size = 100
schedule = "cosine"
warmup_steps = 20
[recipes.measure]
mc_samples = 2000
attack_points = 2
method = "monte_carlo"
"""


def test_bad_recipe_names_its_field():
    bad = SMOKE.replace('schedule = "cosine"', 'schedule = "cubic"')
    with pytest.raises(InputError, match="recipes.recipe.cosine"):
        config_from_table(tomllib.loads(bad))
    with pytest.raises(InputError, match="train_sizes"):
        config_from_table(tomllib.loads(SMOKE.replace("seeds = [0]", "seeds = [0]\ntrain_sizes = [100]")))


@pytest.mark.slow  # default-suite budget; its logic is also checked by cheaper tests in this file
def test_recipes_smoke(tmp_path):
    cfg = config_from_table(tomllib.loads(SMOKE))
    reproduce(cfg, tmp_path / "results", progress=False, figures_dir=tmp_path / "figures")
    out = tmp_path / "results" / "recipes"
    rows = read_csv(out / recipes.RESULTS)
    assert {r["recipe"] for r in rows} == {"paper", "cosine"}
    assert {r["batch_size"] for r in rows if r["recipe"] == "cosine"} == {100}
    assert all(r["mu_method"] == "exact" and r["mu_outer_method"] == "exact" for r in rows)
    reach = read_csv(out / recipes.STEPS)
    assert len(reach) == 3 * 3  # 3 curves (paper: 1 lr, cosine: 2 lrs) x 3 levels
    for z in reach:
        curve = sorted((r for r in rows if (r["recipe"], r["learning_rate"]) == (z["recipe"], z["learning_rate"])),
                       key=lambda r: r["step"])
        for s, col in (("inner", "mu"), ("outer", "mu_outer")):
            below = [r[col] <= z["level"] for r in curve]
            stays = [i for i in range(len(curve)) if all(below[i:])]
            if stays:  # measured: the first checkpoint from which every one is at or below the level (exact)
                assert z[f"extrapolated_{s}"] == 0 and z[f"steps_{s}"] == curve[stays[0]]["step"]
            else:
                assert z[f"extrapolated_{s}"] == 1
            # exact rates: the fit is ordinary least squares over the last decade with mu > 0
            pts = [(r["step"], r[col]) for r in curve if r["step"] >= curve[-1]["step"] / 10 and r[col] > 0]
            if len(pts) >= 3:
                slope, icpt = np.polyfit(np.log10([p[0] for p in pts]), np.log10([p[1] for p in pts]), 1)
                np.testing.assert_allclose([z[f"slope_{s}"], z[f"intercept_{s}"]], [slope, icpt], atol=1e-9)
        if z["steps_both"] is not None:
            assert z["steps_both"] == max(z["steps_inner"], z["steps_outer"])
            assert z["samples_both"] == pytest.approx(z["steps_both"] * z["batch_size"])
    assert (tmp_path / "figures" / "recipes.png").is_file()
    assert (tmp_path / "figures" / "recipes_results.csv").is_file()
