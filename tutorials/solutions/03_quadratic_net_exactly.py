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
# # Solutions to tutorial 3: the quadratic network, solved exactly

# %%
import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import jax
import numpy as np
from scipy import stats

from spheres.cli import main as spheres_cli
from spheres.maths import quadratic, theory

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
N_POINTS = 20 if SMALL else 100
D, R = 500, 1.3
shape = np.exp(0.8 * stats.norm.ppf((np.arange(D) + 0.5) / D))

# %% [markdown]
# ## 1. When is the CLT right?
#
# Near error rates of order 1/4 the normal approximation is good (within 10%); at 0^{-3}$ it is
# 6 times too low. The CLT describes the bulk of a sum, not its tail.

# %%
ratios = {}
for m in (0.6, 0.63, 0.66, 0.7):
    e, c = quadratic.error_rates(m * shape, R), quadratic.clt_error_rates(m * shape, R)
    ratios[m] = c.inner / e.inner
    print(f"m = {m:.2f}: exact inner {e.inner:.3e}, CLT {c.inner:.3e}, CLT / exact {ratios[m]:.3f}")
assert abs(ratios[0.7] - 1) < 0.1 and ratios[0.6] < 0.2
assert abs(np.log(ratios[0.7])) < abs(np.log(ratios[0.66])) < abs(np.log(ratios[0.63])) < abs(np.log(ratios[0.6]))

# %% [markdown]
# ## 2. Inside out
#
# "Outer iff $\sum\alpha_i z_i^2 < 1$" is the complement of the original rule off the ellipsoid itself (a
# set of measure 0). So its inner error rate is  - 1.28\times10^{-3}$ and its outer error rate
#  - 9.2\times10^{-11}$: it gets almost everything wrong. Orientation is not a detail.

# %%
def spheres_quadratic(alpha_values, *flags):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "axes.txt"
        np.savetxt(path, alpha_values)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            status = spheres_cli(["quadratic", "--alphas", str(path), "--json", *flags])
    assert status in (0, None), status
    return json.loads(buf.getvalue())


alphas = 0.6 * shape
greater = quadratic.error_rates(alphas, R)
less = spheres_quadratic(alphas, "--orientation", "outer_if_less", "--points", "2")
print(f"outer_if_less: inner {less['error_rate_inner']:.10f}, outer {less['error_rate_outer']:.12f}")
assert abs(less["error_rate_inner"] - (1 - greater.inner)) < 1e-9
assert abs(less["error_rate_outer"] - (1 - greater.outer)) < 1e-9

# %% [markdown]
# ## 3. Distance against rate
#
# Wider spectra err more often and have closer errors; all four sit under the cap bound, at 70-85% of
# the largest distance their error rate allows.

# %%
for s in (0.6, 0.7, 0.8, 0.9):
    a = 0.6 * np.exp(s * stats.norm.ppf((np.arange(D) + 0.5) / D))
    mu = quadratic.error_rates(a, R).inner
    de = quadratic.mean_nearest_error_distance(a, jax.random.key(0), 1.0, n_points=N_POINTS)
    cap = theory.mean_distance_to_cap(mu, D)
    print(f"s = {s}: mu = {mu:.3e}, d(E) = {de.mean:.4f} +- {de.se:.4f}, bound {cap:.4f}, ratio {de.mean / cap:.3f}")
    assert de.mean - 3 * de.se < cap
    assert 0.6 < de.mean / cap < 0.95
