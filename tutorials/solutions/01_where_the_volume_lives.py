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
# # Solutions to tutorial 1: where the volume of a high-dimensional sphere lives
#
# Each answer is checked against the exact value; `SPHERES_TUTORIAL_SIZE=small` uses fewer samples.

# %%
import os

import jax
import numpy as np
from scipy import stats

from spheres.maths import geometry, theory

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
N = 4_000 if SMALL else 40_000


def sample(key, n, dim):
    keys = jax.random.split(key, n)
    return np.asarray(jax.vmap(lambda k: geometry.sample_sphere(k, dim))(keys), np.float64)

# %% [markdown]
# ## 1. Orthogonality
#
# The angle between $ and $ is more than 5 degrees from 90 iff $|\cos\angle| = |x\cdot y| > \sin 5^\circ$,
# and  \cdot y$ has the law of $: the exact probability is \,P(x_1 > \sin 5^\circ)$. At
#  = 100$ that is about 38%: "almost orthogonal" means within a few times /\sqrt d$ radians.

# %%
d = 100
x, y = sample(jax.random.key(1), N, d), sample(jax.random.key(2), N, d)
angles = np.degrees(np.asarray(jax.vmap(geometry.angle_between)(x, y)))
got = np.mean(np.abs(angles - 90) > 5)
exact = 2 * theory.cap_measure(np.sin(np.radians(5)), d)
se = np.sqrt(exact * (1 - exact) / N)
print(f"sampled {got:.4f} +- {se:.4f}, exact {exact:.4f}")
assert abs(got - exact) < 4 * se and 0.37 < exact < 0.39

# %% [markdown]
# ## 2. Any equator
#
# The law of  \cdot x$ is the same for every unit vector $, so the band around the equator of a
# random $ holds the same mass  - 2P(x_1 \ge 0.1) = 0.9748$ at  = 500$.

# %%
d = 500
pts = sample(jax.random.key(3), N, d)
u = np.asarray(geometry.sample_sphere(jax.random.key(4), d), np.float64)
got = np.mean(np.abs(pts @ u) <= 0.1)
exact = 1 - 2 * theory.cap_measure(0.1, d)
se = np.sqrt(exact * (1 - exact) / N)
print(f"band around a random equator: sampled {got:.4f} +- {se:.4f}, exact {exact:.4f}")
assert abs(got - exact) < 4 * se

# %% [markdown]
# ## 3. The rule for the band
#
# Half the sphere lies within $ of the equator when (x_1 \ge w_d) = 1/4$; with
#  \approx N(0, 1/d)$, \sqrt d \to \Phi^{-1}(3/4) = 0.6745$.

# %%
dims = np.array([10, 100, 1000, 10000])
w = theory.cap_threshold(0.25, dims)
print("w_d sqrt(d):", (w * np.sqrt(dims)).round(5))
assert abs(w[-1] * np.sqrt(dims[-1]) - stats.norm.ppf(0.75)) < 1e-4
assert np.all(np.abs(np.diff(w * np.sqrt(dims))) > 0)
assert np.all(np.abs(w * np.sqrt(dims) - stats.norm.ppf(0.75)) < 0.05)
