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
# # 4. Train, attack, measure
#
# The whole loop of the project on one small network: train it, measure its error rate with an
# interval, find its nearest errors with the on-sphere attack, and place the result under the
# isoperimetric bound. We train the quadratic network on purpose: for it every measurement has an
# exact answer (tutorial 3), so each step below is graded, not just shown. A 2-D slice through the
# decision boundary closes the loop (`docs/science.md`, sections 2, 6 and 8).
#
# Every claim is checked in the next cell; `SPHERES_TUTORIAL_SIZE=small` runs the same code with
# shorter training and fewer samples.

# %%
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from spheres.maths import geometry, quadratic, theory
from spheres.measure import attacks, montecarlo, slices
from spheres.nets import models
from spheres.nets import train as training
from spheres.nets.config import ExperimentConfig, ModelConfig, TaskConfig, TrainConfig
from spheres.plotting._common import OKABE_ITO, save_png, slide_style
from spheres.plotting.slices import draw_slices

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
OUT = Path(os.environ.get("SPHERES_TUTORIAL_OUT", "thumbnails"))
OUT.mkdir(parents=True, exist_ok=True)
D = 100
STEPS = 1500
N_MC = 50_000 if SMALL else 1_000_000
N_ATTACK = 48 if SMALL else 300
RESOLUTION = 81 if SMALL else 241

# %% [markdown]
# ## Train
#
# A configuration is data: a frozen `ExperimentConfig` with the task ($d = 100$, $R = 1.3$), the model
# (`quad`, 100 hidden units) and the recipe (Adam, batch 50, online data: a fresh batch every step).
# `make_trainer(cfg)` returns pure functions; `train(key, hyper)` is the whole run, one compiled program,
# with evaluations at log-spaced checkpoints.

# %%
cfg = ExperimentConfig(task=TaskConfig(dim=D, outer_radius=1.3), model=ModelConfig("quad", width=D, depth=1),
                       train=TrainConfig(steps=STEPS, batch_size=50, learning_rates=(1e-2,), train_sizes=(0,),
                                         seeds=(0,), checkpoints=8, chunk_steps=STEPS))
trainer = training.make_trainer(cfg)
start = time.perf_counter()
state, metrics, checkpoints = jax.jit(trainer.train)(training.member_keys(cfg)[0], training.make_hyper(1e-2, 0))
jax.block_until_ready(state)
seconds = time.perf_counter() - start
for step, loss, acc in zip(metrics["step"], metrics["loss"], metrics["accuracy"]):
    print(f"step {int(step):5d}: loss {float(loss):.4f}, accuracy {float(acc):.3f}")
print(f"trained {STEPS} steps in {seconds:.1f} s (compilation included)")
variables = state.variables

# %% [markdown]
# Claims: training takes well under a minute here, the loss falls, and the final accuracy on 1000 fresh
# points exceeds 95%.

# %%
assert seconds < 60
assert float(metrics["loss"][-1]) < 0.5 * float(metrics["loss"][0])
assert float(metrics["accuracy"][-1]) > 0.95

# %% [markdown]
# ## Its error rate, with an interval
#
# `montecarlo.measure` draws uniform points on both spheres in compiled chunks, counts errors as
# integers and reports each rate with its exact Clopper-Pearson interval and sample count. Because the
# net is quadratic, we also know the exact rates (`quadratic.error_rates` on its alphas): the exact
# inner rate must lie inside the 99.9% interval.

# %%
W, w, b = models.quadratic_weights(variables)
dec = quadratic.alphas_from_weights(W, w, b, dim=D)
exact = quadratic.error_rates(dec.alphas, 1.3, dec.orientation)
mc = montecarlo.measure(jax.random.key(11), trainer.logit_fn, variables,
                        montecarlo.MonteCarloConfig(dim=D, samples=N_MC, confidence=0.999))
mu, mu_lo, mu_hi = float(mc.inner.value), float(mc.inner.lower), float(mc.inner.upper)
print(f"orientation {dec.orientation.value}; {quadratic.count_outside(dec.alphas)} of {D} alphas outside the band")
print(f"inner: Monte Carlo {mu:.4g} in [{mu_lo:.4g}, {mu_hi:.4g}] ({int(mc.inner.count)} errors / {int(mc.inner.samples)}); "
      f"exact {exact.inner:.4g}")
print(f"outer: Monte Carlo {float(mc.outer.value):.4g} in [{float(mc.outer.lower):.4g}, {float(mc.outer.upper):.4g}]; "
      f"exact {exact.outer:.4g}")

# %%
assert dec.orientation is quadratic.Orientation.OUTER_IF_GREATER
assert mu_lo <= exact.inner <= mu_hi
assert float(mc.outer.lower) <= exact.outer <= float(mc.outer.upper)
assert int(mc.inner.count) >= 20  # enough errors for a meaningful interval

# %% [markdown]
# ## Its nearest errors, by the on-sphere attack
#
# From each of `N_ATTACK` uniform points of the inner sphere, `attacks.attack` climbs the error score
# along the sphere (projected gradient ascent with Newton-sized steps) to the first misclassified point,
# bisects the arc to the crossing, then slides along the boundary toward the start point. Every
# reported point is re-checked to be misclassified and on the sphere, so each distance is an UPPER bound
# on the true nearest-error distance. Here we can grade it: the exact nearest error of each point comes
# from the secular equation (`quadratic.nearest_errors`, in the rotated basis $z = V^\top x$).

# %%
xs = jax.vmap(lambda k: geometry.sample_sphere(k, D))(jax.random.split(jax.random.key(12), N_ATTACK))
result = attacks.attack(trainer.logit_fn, variables, xs, 0)
summary = attacks.summarize(result)
z = np.asarray(xs, np.float64) @ dec.rotation
exact_dist, _ = quadratic.nearest_errors(dec.alphas, z / np.linalg.norm(z, axis=1, keepdims=True), 1.0,
                                         dec.orientation)
found = np.asarray(result.found)
attack_dist = np.asarray(result.distance, np.float64)
print(f"attack: d(E) = {summary.value:.4f} +- {summary.se:.4f} over {summary.points} points, {summary.failures} failures")
print(f"exact:  d(E) = {exact_dist.mean():.4f}; attack / exact per point: median "
      f"{np.median(attack_dist[exact_dist > 0] / exact_dist[exact_dist > 0]):.4f}, "
      f"worst {np.max(attack_dist[exact_dist > 0] / exact_dist[exact_dist > 0]):.4f}")

# %% [markdown]
# Claims: the attack found an error from every point; no distance is below the exact one (beyond
# float32 rounding: the attack works in float32, the exact answer in float64); and the attack's mean is
# within 3% of the exact $d(E)$.

# %%
assert summary.failures == 0 and np.all(found)
assert np.all(attack_dist >= exact_dist - 1e-4)
assert abs(summary.value / exact_dist.mean() - 1) < 0.03

# %% [markdown]
# ## The point, placed under the bound
#
# The net has error rate $\mu$ (interval $[\mu_-, \mu_+]$) and $d(E)$ (mean $\pm$ SE). The bound says
# $d(E) \le d_{\text{cap}}(\mu)$ for every error set; `plotting.tradeoff.above_bound` flags a measured
# point only if it lies above the bound by more than 2 SE even at the most generous end of its
# interval. Our point must not be flagged, and we also report which fraction of the largest possible
# distance the net reaches.

# %%
d_cap = float(theory.mean_distance_to_cap(mu, D))
flag = not theory.bound_check(mu, mu_lo, summary.value, summary.se, D).consistent
print(f"d(E) = {summary.value:.4f}; bound at mu: {d_cap:.4f}; fraction of the optimum {summary.value / d_cap:.3f}; "
      f"above the bound: {flag}")
assert not flag
assert summary.value - 2 * summary.se <= float(theory.mean_distance_to_cap(mu_lo, D))

# %%
mu_grid = np.logspace(-7, np.log10(0.5), 200)
with slide_style():
    fig, ax = plt.subplots(figsize=(9, 5.2), layout="constrained")
    ax.plot(mu_grid, theory.mean_distance_to_cap(mu_grid, D), color="black", lw=2.2,
            label=f"exact cap bound, d = {D}")
    ax.plot(mu_grid, theory.asymptotic_distance(mu_grid, D), color="0.4", lw=1.2, ls="--",
            label=r"$\Phi^{-1}(1-\mu)/\sqrt{d}$")
    ax.errorbar([mu], [summary.value], xerr=[[mu - mu_lo], [mu_hi - mu]], yerr=[[2 * summary.se], [2 * summary.se]],
                fmt="o", ms=12, color=OKABE_ITO[1], mfc="none", mew=2, capsize=3,
                label="trained quad net: Monte Carlo $\\mu$ (99.9%), attack $d(E)$ ($\\pm$2 SE)")
    ax.plot([exact.inner], [exact_dist.mean()], marker="x", ms=10, mew=2, ls="none", color=OKABE_ITO[0], zorder=5,
            label="same net, exact $\\mu$ and exact $d(E)$")
    ax.set(xscale="log", xlabel=r"inner-sphere error rate $\mu(E)$", ylabel=r"mean distance to the nearest error $d(E)$",
           title=f"A trained net sits under the isoperimetric bound ({summary.value / d_cap:.0%} of the optimum)",
           ylim=(0, 1.05 * float(theory.mean_distance_to_cap(1e-7, D))))
    ax.legend(loc="upper right")
    save_png(fig, OUT / "04_train_attack_measure.png")
    plt.show()

# %% [markdown]
# ## A 2-D slice through the decision boundary
#
# The plane through the origin spanned by an inner-sphere point $x$ and the direction to its nearest
# error: `slices.decision_slice` evaluates the logit on a grid, `plotting.slices.draw_slices` draws it
# with the two spheres' circles. We take a start point whose nearest error is at the median distance.
# In the adversarial plane the boundary crosses the unit circle a short arc away from the start point;
# in a random plane through the same point it mostly stays between the two circles, because the errors
# fill only a small fraction of the sphere.

# %%
i = int(np.argsort(attack_dist)[len(attack_dist) // 2])  # a start point with a typical (median) distance
x0, y0 = xs[i], result.point[i]
random_dir = geometry.sample_sphere(jax.random.key(13), D)
panels = {"adversarial plane": (x0, y0 - x0), "random plane": (x0, random_dir)}
data = {"radius": np.asarray(1.3)}
# one compiled slice function for both planes
slice_fn = jax.jit(lambda params, a, bvec: slices.decision_slice(trainer.logit_fn, params, a, bvec, extent=1.6,
                                                                 resolution=RESOLUTION))
for k, (title, (a, bvec)) in enumerate(panels.items()):
    sl = slice_fn(variables, a, bvec)
    basis = np.asarray(sl.basis, np.float64)
    pts = np.stack([np.asarray(x0) @ basis.T] + ([np.asarray(y0) @ basis.T] if k == 0 else []))
    data.update({f"coords_{k}": np.asarray(sl.coords), f"logits_{k}": np.asarray(sl.logits),
                 f"title_{k}": np.asarray(title), f"points_{k}": pts})
    # the start point lies on the unit circle of its plane; the error found lies on it too
    assert abs(np.linalg.norm(pts[0]) - 1) < 1e-5
    if k == 0:
        assert abs(np.linalg.norm(pts[1]) - 1) < 1e-4
        assert abs(np.linalg.norm(pts[1] - pts[0]) - attack_dist[i]) < 1e-4
with tempfile.TemporaryDirectory() as tmp:
    np.savez(Path(tmp) / "slices.npz", **data)
    png = draw_slices(Path(tmp) / "slices.npz", Path(tmp) / "slices.png")[0]
    display(Image(png.read_bytes()))

# %% [markdown]
# The in-plane points are exact: the start point and the error found are both at radius 1 in the
# adversarial plane, at the attack's distance from each other (checked above).
#
# ## Exercises
#
# 1. **The training path.** `checkpoints` holds the weights at every checkpoint. For each, compute the
#    exact inner error rate and the exact $d(E)$ on the same points, and draw the path of training in the
#    $(\mu, d(E))$ plane under the bound. Is every checkpoint under it?
# 2. **The outer sphere.** Attack points of the outer sphere (radius 1.3, label 1) and grade the attack
#    against `quadratic.nearest_errors(..., radius=1.3, label=1)`.
# 3. **Another learning rate, no recompilation.** The learning rate is a traced argument of `train`
#    (`Hyper`), not part of the compiled program's shape. Train the same network with learning rate
#    $3 \times 10^{-3}$ through the same jitted function, check that it was not compiled again, and
#    place the new net under the bound. (A ReLU net, `ModelConfig("relu", width=64, depth=2)`, trains the
#    same way; for it, only the exact checks of this tutorial are lost.)
#
# Solutions: `solutions/04_train_attack_measure.py`.
