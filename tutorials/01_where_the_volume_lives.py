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
# # 1. Where the volume of a high-dimensional sphere lives
#
# Everything in this project happens on spheres in $\mathbb{R}^d$ with $d$ in the hundreds. Our intuition
# comes from $d = 2$ and $d = 3$, and it is wrong there in a precise, measurable way: almost all of the
# sphere sits in a thin band around *every* equator, and two random points are almost always at the same
# distance $\sqrt 2$ from each other. This notebook measures both, by sampling, against the exact laws
# (`docs/science.md`, sections 1 and 3).
#
# Every number stated in the text is checked in the cell after it: against the exact value, with a
# tolerance derived from the sample size (a few standard errors). Set the environment variable
# `SPHERES_TUTORIAL_SIZE=small` to run the same code on smaller samples (the test suite does).

# %%
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from spheres.maths import geometry, theory
from spheres.plotting._common import OKABE_ITO, save_png, slide_style

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
OUT = Path(os.environ.get("SPHERES_TUTORIAL_OUT", "thumbnails"))
OUT.mkdir(parents=True, exist_ok=True)
N = 4_000 if SMALL else 40_000  # points per dimension
DIMS = (3, 10, 50, 500)
print(f"{N} points per dimension, d in {DIMS}")

# %% [markdown]
# ## Sampling the sphere uniformly
#
# The library draws a uniform point as $x = r\,g/\lVert g\rVert$ with $g \sim N(0, I_d)$: the Gaussian is
# rotation invariant, so its direction is uniform. `sample_sphere` draws ONE point; we batch it with
# `jax.vmap`, one key per point.

# %%
def sample(key, n, dim):
    """n uniform points on the unit sphere of R^dim, shape (n, dim), float64."""
    keys = jax.random.split(key, n)
    return np.asarray(jax.vmap(lambda k: geometry.sample_sphere(k, dim))(keys), np.float64)


points = {d: sample(jax.random.fold_in(jax.random.key(1), d), N, d) for d in DIMS}
norms = np.concatenate([np.linalg.norm(p, axis=1) for p in points.values()])
print(f"norms in [{norms.min():.7f}, {norms.max():.7f}]")

# %% [markdown]
# Every point lies on the unit sphere, up to float32 rounding (a few $10^{-7}$):

# %%
assert np.all(np.abs(norms - 1.0) < 1e-6)

# %% [markdown]
# ## The law of one coordinate
#
# Take the first coordinate $x_1$ (by symmetry, any coordinate, or $u \cdot x$ for any unit vector $u$).
# Its density on $[-1, 1]$ is proportional to $(1 - s^2)^{(d-3)/2}$; equivalently
# $(x_1 + 1)/2 \sim \mathrm{Beta}\big(\tfrac{d-1}{2}, \tfrac{d-1}{2}\big)$. For $d = 3$ it is flat
# (Archimedes: equal-height bands of the globe have equal area); as $d$ grows it piles up at 0, with
# standard deviation exactly $1/\sqrt d$ (since $\sum_i x_i^2 = 1$ gives $E[x_1^2] = 1/d$).
#
# The library's `theory.cap_measure(t, d)` is $P(x_1 \ge t)$, the exact tail of this law; we use it to
# get the exact probability of every histogram bin.

# %%
def density_x1(s, d):
    """Exact density of x_1: the Beta((d-1)/2, (d-1)/2) law moved from [0, 1] to [-1, 1]."""
    a = (d - 1) / 2
    return 0.5 * stats.beta.pdf((s + 1) / 2, a, a)


edges = np.linspace(-1, 1, 41)
checks = {}
for d in DIMS:
    x1 = points[d][:, 0]
    counts, _ = np.histogram(x1, edges)
    p_bin = -np.diff(theory.cap_measure(edges, d))  # P(edge_k <= x_1 < edge_k+1), exact
    z = (counts - N * p_bin) / np.sqrt(np.maximum(N * p_bin * (1 - p_bin), 1e-12))
    se = np.std(x1**2) / np.sqrt(N)
    checks[d] = dict(worst_z=float(np.max(np.abs(z[p_bin > 0]))), second_moment=float(np.mean(x1**2)),
                     se=float(se), ks_p=float(stats.kstest(x1, lambda s: 1 - theory.cap_measure(np.clip(s, -1, 1), d)).pvalue))
    print(f"d = {d:4d}: E[x1^2] = {checks[d]['second_moment']:.5f} +- {se:.5f} (exact 1/d = {1/d:.5f}); "
          f"worst bin {checks[d]['worst_z']:.2f} SE from exact; KS p = {checks[d]['ks_p']:.2f}")

# %% [markdown]
# Claims: for every $d$ the sampled second moment is $1/d$ within 4 standard errors; every one of the 40
# histogram bins holds the exact expected count within 4.5 binomial standard errors (4.5 leaves room for
# taking the worst of 160 bins); a Kolmogorov-Smirnov test against the exact law does not reject
# ($p > 0.001$). A sampler that drew, say, $x_1$ with variance 10% too large fails the first check at
# $d = 500$ already with $N = 4000$ points.

# %%
for d, c in checks.items():
    assert abs(c["second_moment"] - 1 / d) < 4 * c["se"], d
    assert c["worst_z"] < 4.5, d
    assert c["ks_p"] > 1e-3, d
# the library's tail and scipy's Beta law are the same law
s = np.linspace(-0.9, 0.9, 7)
assert np.allclose(theory.cap_measure(s, 50), stats.beta.sf((s + 1) / 2, 24.5, 24.5), rtol=1e-10, atol=1e-15)

# %%
colors = dict(zip(DIMS, OKABE_ITO))
with slide_style():
    fig, axes = plt.subplots(1, len(DIMS), figsize=(13, 4), layout="constrained", sharex=True)
    grid = np.linspace(-1, 1, 801)
    for ax, d in zip(axes, DIMS):
        ax.hist(points[d][:, 0], bins=edges if d < 100 else np.linspace(-1, 1, 161), density=True,
                color=colors[d], alpha=0.45, label="sampled")
        ax.plot(grid, density_x1(grid, d), color="black", lw=1.6, label="exact (Beta)")
        ax.set(title=f"d = {d}", xlabel="$x_1$", xlim=(-1, 1), ylim=(0, None))
    axes[0].set_ylabel("density")
    axes[0].legend(loc="lower center")
    fig.suptitle(f"The first coordinate of a uniform point concentrates like $1/\\sqrt{{d}}$ ({N} points per panel)")
    save_png(fig, OUT / "01_where_the_volume_lives.png")
    plt.show()

# %% [markdown]
# ## Most of the sphere is near the equator
#
# The band $\{|x_1| \le w\}$ around the equator $x_1 = 0$ has measure $1 - 2\,P(x_1 \ge w)$. For
# $w = 0.1$ that is 10% of the sphere at $d = 3$, 51.5% at $d = 50$ and 97.5% at $d = 500$. Since the
# direction $e_1$ was arbitrary, this holds for every equator at once.

# %%
w = 0.1
band = {d: 1 - 2 * theory.cap_measure(w, d) for d in DIMS}
sampled = {d: float(np.mean(np.abs(points[d][:, 0]) <= w)) for d in DIMS}
for d in DIMS:
    se = np.sqrt(band[d] * (1 - band[d]) / N)
    print(f"d = {d:4d}: exact band mass {band[d]:.4f}, sampled {sampled[d]:.4f} +- {se:.4f}")

# %% [markdown]
# Checks: the exact values are the ones quoted above, and each sampled fraction agrees with its exact
# value within 4 binomial standard errors.

# %%
assert abs(band[3] - 0.100) < 5e-4 and abs(band[50] - 0.515) < 5e-4 and abs(band[500] - 0.975) < 5e-4
for d in DIMS:
    assert abs(sampled[d] - band[d]) < 4 * np.sqrt(band[d] * (1 - band[d]) / N), d

# %% [markdown]
# How wide must the band be to hold 99% of the sphere? Solve $P(x_1 \ge w) = 0.005$ with
# `theory.cap_threshold`. For large $d$, $x_1 \approx N(0, 1/d)$, so $w \sqrt d \to \Phi^{-1}(0.995) = 2.576$:
# the band shrinks like $1/\sqrt d$.

# %%
dims = np.array([3, 10, 50, 500, 5000, 50000])
w99 = theory.cap_threshold(0.005, dims)
for d, wd in zip(dims, w99):
    print(f"d = {d:6d}: w = {wd:.4f}, w sqrt(d) = {wd * np.sqrt(d):.4f}")
assert abs(w99[-1] * np.sqrt(dims[-1]) - stats.norm.isf(0.005)) < 1e-3
assert np.all(np.diff(w99 * np.sqrt(dims)) > 0)  # approached from below

# %% [markdown]
# ## Two random points are at distance about $\sqrt 2$
#
# For independent uniform $x, y$: $\lVert x - y\rVert^2 = 2 - 2\,x\cdot y$, and $x \cdot y$ has exactly the
# law of $x_1$ (fix $y$, rotate it to $e_1$). So $E\lVert x-y\rVert^2 = 2$ in every dimension, and the
# distance concentrates at $\sqrt 2 \approx 1.414$ with spread about $1/\sqrt{d}$: two random points are
# almost orthogonal. The exact probability that the distance is within $\delta$ of $\sqrt 2$ follows from
# the law of $x_1$: $\lvert\sqrt{2 - 2s} - \sqrt 2\rvert \le \delta$ iff $s$ lies between
# $1 - (\sqrt2 + \delta)^2/2$ and $1 - (\sqrt2 - \delta)^2/2$.

# %%
delta = 0.1
dist = {}
near = {}
for d in DIMS:
    x, y = points[d][: N // 2], points[d][N // 2:]
    dist[d] = np.linalg.norm(x - y, axis=1)
    lo, hi = 1 - (np.sqrt(2) + delta) ** 2 / 2, 1 - (np.sqrt(2) - delta) ** 2 / 2
    exact = float(theory.cap_measure(max(lo, -1.0), d) - theory.cap_measure(hi, d))
    near[d] = (exact, float(np.mean(np.abs(dist[d] - np.sqrt(2)) <= delta)))
    print(f"d = {d:4d}: mean squared distance {np.mean(dist[d]**2):.4f}; "
          f"P(| |x-y| - sqrt2 | <= {delta}) exact {exact:.4f}, sampled {near[d][1]:.4f}")

# %% [markdown]
# Checks: the mean squared distance is 2 within 4 standard errors in every dimension; the fraction of
# pairs within 0.1 of $\sqrt 2$ matches its exact value within 4 binomial standard errors, and at
# $d = 500$ that exact value exceeds 99.7%.

# %%
n_pairs = N // 2
for d in DIMS:
    sq = dist[d] ** 2
    assert abs(np.mean(sq) - 2) < 4 * np.std(sq) / np.sqrt(n_pairs), d
    exact, got = near[d]
    assert abs(got - exact) < 4 * np.sqrt(exact * (1 - exact) / n_pairs) + 1e-12, d
assert near[500][0] > 0.997

# %%
with slide_style():
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    for d in DIMS:
        ax.hist(dist[d], bins=np.linspace(0, 2, 121), density=True, color=colors[d], alpha=0.5, label=f"d = {d}")
    ax.axvline(np.sqrt(2), color="black", lw=1.5, ls="--", label=r"$\sqrt{2}$")
    ax.set(xlabel=r"distance $\|x - y\|$ between two independent uniform points", ylabel="density",
           title="Random points are almost orthogonal in high dimension", xlim=(0, 2))
    ax.legend(loc="upper left")
    plt.show()

# %% [markdown]
# ## What this means for classifiers
#
# An error set that covers a thin cap $\{x_1 \ge t\}$ of measure 1% at $d = 500$ has $t \approx 0.104$:
# the cap's edge is only about $0.1$ away from the equator, and, as above, most of the sphere is within
# about 0.1 of the equator. Tutorial 2 makes this precise: a tiny error rate does not keep errors far away.
#
# ## Exercises
#
# 1. **Orthogonality.** Using `geometry.angle_between`, estimate by sampling the probability that two
#    random points of the unit sphere in $d = 100$ are more than 5 degrees from orthogonal. Compare with
#    the exact value from `theory.cap_measure` (the cosine of the angle has the law of $x_1$).
# 2. **Any equator.** The band argument used the first coordinate. Check, by sampling at $d = 500$, that
#    the band $\{|u \cdot x| \le 0.1\}$ around the equator of a random unit vector $u$ holds the same
#    exact mass as for $u = e_1$.
# 3. **The rule for the band.** Find the half-width $w_d$ of the band holding 50% of the sphere for
#    $d = 10, 100, 1000, 10000$, and show that $w_d \sqrt d$ approaches $\Phi^{-1}(0.75) = 0.674$.
#
# Solutions: `solutions/01_where_the_volume_lives.py`.
