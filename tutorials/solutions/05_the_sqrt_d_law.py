# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions to tutorial 5: the 1/sqrt(d) law in practice

# %%
import os

import jax
import numpy as np
from scipy import optimize, stats

from spheres.maths import quadratic, theory
from spheres.maths.analysis import cap_profile, dimension_exponent

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
N_POINTS = 30 if SMALL else 200

# %% [markdown]
# ## 1. The law for caps, at matched error rate
#
# {\text{cap}}\sqrt d$ approaches \Phi(c) + \varphi(c)$ with a relative gap falling like /d$
# (the gap times $ settles to a constant).

# %%
for mu in (1e-2, 1e-6):
    limit = float(cap_profile(mu))
    dims = np.array([20, 200, 2000, 20000])
    scaled = theory.mean_distance_to_cap(mu, dims) * np.sqrt(dims)
    gap = np.abs(scaled / limit - 1)
    print(f"mu = {mu:.0e}: limit {limit:.4f}; d_cap sqrt(d) = {scaled.round(4)}; gap x d = {(gap * dims).round(3)}")
    assert np.all(np.diff(gap) < 0) and gap[-1] < 1e-3
    assert abs((gap * dims)[-1] / (gap * dims)[-2] - 1) < 0.05

# %% [markdown]
# ## 2. An ellipsoid family without training
#
# With the error rate held at 0^{-2}$, the exact (E)$ of this family falls like ^{-1/2}$ too: the
# fitted exponent is within 3 standard errors (and within 0.15) of hmB1/2$, and every point is under
# the bound.

# %%
rows = []
for d in (50, 100, 200, 400):
    q = stats.norm.ppf((np.arange(d) + 0.5) / d)
    log_m = optimize.brentq(lambda lm: quadratic.error_rates(np.exp(lm + 0.8 * q)).log10_inner + 2.0,
                            np.log(0.05), np.log(2.0), xtol=1e-8)
    a = np.exp(log_m + 0.8 * q)
    mu = quadratic.error_rates(a).inner
    de = quadratic.mean_nearest_error_distance(a, jax.random.key(d), 1.0, n_points=N_POINTS)
    cap = theory.mean_distance_to_cap(mu, d)
    rows.append((d, mu, de.mean, de.se))
    print(f"d = {d:3d}: m = {np.exp(log_m):.4f}, mu = {mu:.4e}, d(E) = {de.mean:.4f} +- {de.se:.4f}, bound {cap:.4f}")
    assert abs(mu / 1e-2 - 1) < 1e-5 and de.mean - 3 * de.se < cap
r = np.array(rows)
fit = dimension_exponent(r[:, 0], r[:, 1], r[:, 2], r[:, 3])
print(f"beta = {fit.slope:.3f} +- {fit.slope_se:.3f}")
assert abs(fit.slope + 0.5) < max(3 * fit.slope_se, 0.05) and abs(fit.slope + 0.5) < 0.15
