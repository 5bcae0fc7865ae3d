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
# # 3. The quadratic network, solved exactly
#
# The paper's quadratic network $f(x) = w \sum_j (Wx)_j^2 + b$ is an ellipsoid in disguise. Rotate to the
# principal axes of $W$ and it says "outer iff $\sum_i \alpha_i z_i^2 > 1$". Everything about it, its
# error rates on both spheres and the nearest error to every point, is then a computation with the
# numbers $\alpha_i$, not a measurement (`docs/science.md`, section 5). That makes it the yardstick for
# every sampler and attack in the project.
#
# Every claim is checked in the next cell; `SPHERES_TUTORIAL_SIZE=small` runs the same code on fewer samples.

# %%
import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from spheres.cli import main as spheres_cli
from spheres.maths import geometry, quadratic, theory
from spheres.maths.classifiers import ellipsoid_logit
from spheres.measure import montecarlo
from spheres.plotting._common import OKABE_ITO, save_png, sci, slide_style

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
OUT = Path(os.environ.get("SPHERES_TUTORIAL_OUT", "thumbnails"))
OUT.mkdir(parents=True, exist_ok=True)
N_MC = 100_000 if SMALL else 1_000_000  # Monte Carlo samples per sphere
N_POINTS = 40 if SMALL else 200  # points for the exact d(E)
D, R = 500, 1.3

# %% [markdown]
# ## From weights to alphas
#
# Take the SVD $W = U S V^\top$ and rotate, $z = V^\top x$. Then $f = w \sum_i s_i^2 z_i^2 + b$. For
# $w > 0 > b$, divide by $-b$: "outer iff $\sum_i \alpha_i z_i^2 > 1$" with $\alpha_i = w s_i^2 / (-b)$.
# We build a network whose axes we choose, a spectrum of log-normal quantiles
# $\alpha_i = 0.6\, e^{0.8\, \Phi^{-1}((i - 1/2)/d)}$, hide it behind a random rotation, and let
# `quadratic.alphas_from_weights` find it again.

# %%
alphas = 0.6 * np.exp(0.8 * stats.norm.ppf((np.arange(D) + 0.5) / D))
V, _ = np.linalg.qr(np.asarray(jax.random.normal(jax.random.key(0), (D, D)), np.float64))
w, b = 2.0, -3.0
W = np.sqrt(alphas * -b / w)[:, None] * V.T  # rows: sqrt(alpha_i |b| / w) v_i
dec = quadratic.alphas_from_weights(W, w, b, dim=D)
print(dec.orientation.value, "recovered alphas match:", np.allclose(np.sort(dec.alphas), np.sort(alphas), rtol=1e-10))

# and the network's logit is |b| (sum alpha z^2 - 1) at any point, with z = V^T x
x = np.asarray(jax.vmap(lambda k: geometry.sample_sphere(k, D))(jax.random.split(jax.random.key(1), 8)), np.float64)
f = w * np.sum((x @ W.T) ** 2, axis=1) + b
z = x @ dec.rotation
assert dec.orientation is quadratic.Orientation.OUTER_IF_GREATER
assert np.allclose(np.sort(dec.alphas), np.sort(alphas), rtol=1e-10)
assert np.allclose(f, -b * (np.sum(dec.alphas * z**2, axis=1) - 1), rtol=1e-9, atol=1e-9)

# %% [markdown]
# The other sign cases are different classifiers, not the same one: $w < 0 < b$ says "outer iff
# $\sum \alpha_i z_i^2 < 1$" (inside the ellipsoid); $w > 0 = b$ calls everything outside the null
# space of $W$ outer; $w \ge 0 < b$ calls everything outer; $w \le 0, b \le 0$ nothing.

# %%
cases = {(1.0, -1.0): "outer_if_greater", (-1.0, 1.0): "outer_if_less", (1.0, 0.0): "outer_if_nonzero",
         (0.0, 1.0): "always_outer", (-1.0, -1.0): "always_inner"}
W_small = np.asarray(jax.random.normal(jax.random.key(2), (4, 6)), np.float64)  # h = 4 rows, d = 6
x_small = np.asarray(jax.random.normal(jax.random.key(3), (2000, 6)), np.float64)
x_small /= np.linalg.norm(x_small, axis=1, keepdims=True)
for (ww, bb), name in cases.items():
    dec_case = quadratic.alphas_from_weights(W_small, ww, bb)
    print(f"w = {ww:+.0f}, b = {bb:+.0f}: {dec_case.orientation.value}")
    assert dec_case.orientation.value == name
    # on each sphere the rule is "outer iff sum k_i z_i^2 > 0", k from sphere_coefficients
    for r in (1.0, R):
        f_case = ww * np.sum((r * x_small @ W_small.T) ** 2, axis=1) + bb
        k = quadratic.sphere_coefficients(dec_case.alphas, r, dec_case.orientation)
        assert np.array_equal(f_case > 0, np.sum(k * (r * x_small @ dec_case.rotation) ** 2, axis=1) > 0)

# %% [markdown]
# ## When is the network perfect?
#
# On the inner sphere ($\sum z_i^2 = 1$) the rule is $\sum (\alpha_i - 1) z_i^2 > 0$: it can only err if
# some $\alpha_i > 1$. On the outer sphere ($\sum z_i^2 = R^2$) it errs only if some $\alpha_i < 1/R^2$.
# So the net is perfect on both spheres iff every $\alpha_i$ lies in $[1/R^2, 1] = [0.592, 1]$. Our
# spectrum has 378 of its 500 alphas outside that band (247 below, 131 above), about as many as the
# paper's trained net (394). A spectrum inside the band has error rates exactly 0:

# %%
band = np.linspace(1 / R**2, 1.0, D)
print("outside the band:", quadratic.count_outside(alphas, R), "; a band spectrum:", quadratic.error_rates(band, R))
assert quadratic.count_outside(alphas, R) == 378
assert np.sum(alphas < 1 / R**2) == 247 and np.sum(alphas > 1) == 131
assert quadratic.count_outside(band, R) == 0 and quadratic.error_rates(band, R)[:2] == (0.0, 0.0)

# %% [markdown]
# ## Exact error rates, the paper's estimate, and Monte Carlo
#
# With 378 alphas outside the band, how often does the net err? On the sphere, uniform $z$ is a
# normalised Gaussian and the rule is scale free, so the inner error rate is
# $P\big(\sum_i (\alpha_i - 1) g_i^2 > 0\big)$, $g \sim N(0, I_d)$: the tail of a weighted sum of
# chi-square variables with weights of both signs. `quadratic.error_rates` computes it exactly (to
# about $10^{-10}$ relative, at any depth). The paper approximates the sum by a normal law (its Eq. 3,
# `quadratic.clt_error_rates`).
#
# The result: inner error $1.28 \times 10^{-3}$, outer $9.2 \times 10^{-11}$. The paper's estimate is
# 6 times too low on the inner sphere ($2.05 \times 10^{-4}$) and 20,000 times too high on the outer
# one ($2.0 \times 10^{-6}$): a sum of 500 terms is far from normal in its tails.

# %%
exact = quadratic.error_rates(alphas, R)
clt = quadratic.clt_error_rates(alphas, R)
print(f"exact: inner {exact.inner:.4g}, outer {exact.outer:.4g}")
print(f"CLT:   inner {clt.inner:.4g} ({clt.inner / exact.inner:.3f} x exact), outer {clt.outer:.4g} "
      f"({clt.outer / exact.outer:.3g} x exact)")
assert abs(exact.inner / 1.28e-3 - 1) < 5e-3 and abs(exact.outer / 9.16e-11 - 1) < 5e-3
assert 5.5 < exact.inner / clt.inner < 6.5 and 1.5e4 < clt.outer / exact.outer < 2.5e4

# %% [markdown]
# Monte Carlo on the ellipsoid classifier (`classifiers.ellipsoid_logit`, the net in its rotated basis)
# agrees with the exact inner rate and rules out the paper's estimate: the exact value lies inside the
# 99.9% Clopper-Pearson interval, the CLT value far below it. On the outer sphere Monte Carlo sees
# nothing, as it must: $10^{-10}$ is out of its reach (rates that small need the rare-event estimator,
# `docs/science.md` section 7.2), and its interval's upper end is all it can say.

# %%
mc = montecarlo.measure(jax.random.key(7), ellipsoid_logit, {"alphas": jnp.asarray(alphas, jnp.float32)},
                        montecarlo.MonteCarloConfig(dim=D, samples=N_MC, confidence=0.999))
print(f"Monte Carlo, {N_MC} samples per sphere: inner {int(mc.inner.count)} errors, "
      f"[{float(mc.inner.lower):.3g}, {float(mc.inner.upper):.3g}]; outer {int(mc.outer.count)} errors, "
      f"upper end {float(mc.outer.upper):.2g}")
assert mc.inner.lower <= exact.inner <= mc.inner.upper
assert clt.inner < mc.inner.lower
assert exact.outer <= mc.outer.upper and int(mc.outer.count) == 0

# %% [markdown]
# ## The exact nearest error
#
# For a point $z$ of the inner sphere, the nearest misclassified point $y$ on that sphere solves a small
# constrained problem whose solution is $y_i \propto z_i / (e + c_{\max} - c_i)$, $c_i = \alpha_i - 1$,
# with the multiplier $e$ the root of a one-dimensional *secular equation* (`quadratic.nearest_error`).
# The returned point is on the sphere and on the boundary $\sum \alpha_i y_i^2 = 1$:

# %%
z0 = np.asarray(geometry.sample_sphere(jax.random.key(3), D), np.float64)
dist0, y0 = quadratic.nearest_error(alphas, z0, 1.0)
print(f"distance {dist0:.5f}; |y| = {np.linalg.norm(y0):.12f}; sum alpha y^2 = {np.sum(alphas * y0**2):.12f}")
assert abs(np.linalg.norm(y0) - 1) < 1e-12 and abs(np.sum(alphas * y0**2) - 1) < 1e-9
# no point found by random search near the straight path does better (a sanity check, not a proof)
trial = y0 + 0.02 * np.asarray(jax.random.normal(jax.random.key(4), (500, D)), np.float64) / np.sqrt(D)
trial /= np.linalg.norm(trial, axis=1, keepdims=True)
wrong = np.sum(alphas * trial**2, axis=1) > 1
assert np.all(np.linalg.norm(trial[wrong] - z0, axis=1) >= dist0 - 1e-12)

# %% [markdown]
# Averaged over uniform points, this gives the exact $d(E)$ (with a standard error from the choice of
# points only). Here $d(E) \approx 0.097$, about 72% of the largest value the bound allows at this error
# rate ($d_{\text{cap}} = 0.1348$): the net is not far from optimal.

# %%
de = quadratic.mean_nearest_error_distance(alphas, jax.random.key(5), 1.0, n_points=N_POINTS)
d_cap = theory.mean_distance_to_cap(exact.inner, D)
print(f"exact d(E) = {de.mean:.4f} +- {de.se:.4f} over {de.n} points; cap bound {d_cap:.4f}; ratio {de.mean / d_cap:.3f}")
assert de.mean + 4 * de.se > 0 and de.mean - 4 * de.se < d_cap  # under the bound
assert abs(de.mean - 0.097) < 4 * de.se + 2e-3 and abs(d_cap - 0.1348) < 5e-4

# %%
with slide_style():
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    bins = np.logspace(np.log10(alphas.min()) - 0.02, np.log10(alphas.max()) + 0.02, 50)
    inside = (alphas >= 1 / R**2) & (alphas <= 1)
    ax.hist([alphas[inside], alphas[~inside]], bins=bins, stacked=True, color=[OKABE_ITO[2], OKABE_ITO[1]],
            label=[f"in $[1/R^2, 1]$: {inside.sum()}", f"outside: {(~inside).sum()}"])
    ax.axvspan(1 / R**2, 1, color=OKABE_ITO[2], alpha=0.12, lw=0)
    for v in (1 / R**2, 1):
        ax.axvline(v, color="black", lw=1.2, ls="--")
    ax.set(xscale="log", xlabel=r"$\alpha_i$", ylabel="count",
           title=f"An ellipsoid with {(~inside).sum()} of {D} axes outside the perfect band")
    ax.text(0.99, 0.97, f"exact inner error {sci(exact.inner)}\npaper's CLT estimate {sci(clt.inner)}\n"
            f"exact outer error {sci(exact.outer)}\npaper's CLT estimate {sci(clt.outer)}",
            transform=ax.transAxes, ha="right", va="top", bbox=dict(fc="white", ec="0.7"))
    ax.legend(loc="upper left")
    save_png(fig, OUT / "03_quadratic_net_exactly.png")
    plt.show()

# %% [markdown]
# ## What if the axes were ...?
#
# The command `spheres quadratic --alphas FILE` does all of the above for any spectrum you give it; in a
# terminal, `spheres quadratic --alphas axes.txt --json`. Here we call the same entry point from Python
# and read its JSON: it reports exactly the rates we computed.

# %%
def spheres_quadratic(alpha_values, *flags):
    """Run `spheres quadratic --alphas FILE --json FLAGS...` in-process; return its JSON as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "axes.txt"
        np.savetxt(path, alpha_values)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            status = spheres_cli(["quadratic", "--alphas", str(path), "--json", *flags])
    assert status in (0, None), status
    return json.loads(buf.getvalue())


report = spheres_quadratic(alphas, "--points", str(N_POINTS // 2))
print({k: report[k] for k in ("error_rate_inner", "error_rate_outer", "clt_error_rate_inner", "alphas_outside",
                              "mean_distance", "mean_distance_se")})
assert abs(report["error_rate_inner"] / exact.inner - 1) < 1e-6 and report["alphas_outside"] == 378
assert abs(report["clt_error_rate_inner"] / clt.inner - 1) < 1e-6

# %% [markdown]
# Three experiments with the same tools:
#
# * **One bad axis.** All axes at 0.8 (inside the band) except one at 1.5. Only one direction can err,
#   and it needs $z_1^2 > 0.2 / 0.7$, a rare event: the inner error is $2.3 \times 10^{-38}$. The CLT
#   estimate is $2.7 \times 10^{-55}$, wrong by 17 orders of magnitude: one heavy term is as far from
#   a normal sum as a sum can be.
# * **Half the spread.** The same log-normal shape with $0.4$ instead of $0.8$: still 293 axes outside
#   the band, but the inner error falls to $1.8 \times 10^{-30}$, while the outer error rises to
#   $1.2 \times 10^{-4}$ (the spectrum's centre 0.6 sits near the band's lower edge).
# * **A narrow network.** Keep only 100 of the axes (a $W$ with 100 rows, blind to 400 directions):
#   outer points live mostly in the blind directions, and the outer error becomes 1.

# %%
one = np.full(D, 0.8)
one[0] = 1.5
half = 0.6 * np.exp(0.4 * stats.norm.ppf((np.arange(D) + 0.5) / D))
narrow = np.where(np.arange(D) < 100, alphas, 0.0)
for name, a in (("one bad axis", one), ("half the spread", half), ("narrow", narrow)):
    e, c = quadratic.error_rates(a, R), quadratic.clt_error_rates(a, R)
    print(f"{name:16s}: outside {quadratic.count_outside(a, R):3d}; inner {e.inner:.3g} (CLT {c.inner:.3g}); "
          f"outer {e.outer:.3g} (CLT {c.outer:.3g})")
e1, c1 = quadratic.error_rates(one, R), quadratic.clt_error_rates(one, R)
assert abs(e1.inner / 2.31e-38 - 1) < 5e-3 and 16 < np.log10(e1.inner / c1.inner) < 18
# the one-axis case has a closed form: P(0.5 g_1^2 > 0.2 chi^2_499) = P(F(1, 499) > 0.4 * 499)
assert abs(e1.inner / stats.f.sf(0.2 / 0.5 * 499, 1, 499) - 1) < 1e-6
eh = quadratic.error_rates(half, R)
assert quadratic.count_outside(half, R) == 293 and abs(eh.inner / 1.82e-30 - 1) < 5e-3
assert abs(eh.outer / 1.17e-4 - 1) < 5e-3
assert quadratic.error_rates(narrow, R).outer > 1 - 1e-12

# %% [markdown]
# ## Exercises
#
# 1. **When is the CLT right?** Scale the log-normal spectrum, $\alpha_i = m\, e^{0.8\,\Phi^{-1}(\cdot)}$, with
#    $m = 0.6, 0.63, 0.66, 0.7$. Compare the exact inner error rate with the paper's estimate. Where is
#    the estimate good, and where is it off by a large factor?
# 2. **Inside out.** Run `spheres quadratic` on the same alphas with `--orientation outer_if_less` (the
#    network with $w < 0 < b$: "outer iff $\sum \alpha_i z_i^2 < 1$"). What are its two error rates, and
#    how do they follow from the ones above?
# 3. **Distance against rate.** For the log-normal family $0.6\,e^{s\,\Phi^{-1}(\cdot)}$ with
#    $s = 0.6, 0.7, 0.8, 0.9$, compute the exact inner error rate and exact $d(E)$, and place each on the
#    cap bound's curve: how close to optimal is each ellipsoid?
#
# Solutions: `solutions/03_quadratic_net_exactly.py`.
