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
# # Solutions to tutorial 4: train, attack, measure
#
# We retrain the tutorial's network (the same config and key give the same weights).

# %%
import os

import jax
import numpy as np

from spheres.maths import geometry, quadratic, theory
from spheres.measure import attacks
from spheres.nets import models
from spheres.nets import train as training
from spheres.nets.config import ExperimentConfig, ModelConfig, TaskConfig, TrainConfig

SMALL = os.environ.get("SPHERES_TUTORIAL_SIZE", "full") == "small"
D = 100
N_POINTS = 24 if SMALL else 200
cfg = ExperimentConfig(task=TaskConfig(dim=D, outer_radius=1.3), model=ModelConfig("quad", width=D, depth=1),
                       train=TrainConfig(steps=1500, batch_size=50, learning_rates=(1e-2,), train_sizes=(0,),
                                         seeds=(0,), checkpoints=8, chunk_steps=1500))
trainer = training.make_trainer(cfg)
state, metrics, checkpoints = jax.jit(trainer.train)(training.member_keys(cfg)[0], training.make_hyper(1e-2, 0))

# %% [markdown]
# ## 1. The training path
#
# Early checkpoints err on more than half the inner sphere (no bound applies above $\mu = 1/2$); from
# there on, every checkpoint stays under the bound, moving along it toward small $\mu$ and large (E)$.

# %%
points = np.asarray(jax.vmap(lambda k: geometry.sample_sphere(k, D))(jax.random.split(jax.random.key(12), N_POINTS)),
                    np.float64)
path = []
for c, step in enumerate(np.asarray(metrics["step"])):
    W, w, b = models.quadratic_weights(jax.tree.map(lambda v: v[c], checkpoints))
    dec = quadratic.alphas_from_weights(W, w, b, dim=D)
    mu = quadratic.error_rates(dec.alphas, 1.3, dec.orientation).inner
    z = points @ dec.rotation
    de = quadratic.mean_nearest_error_distance(dec.alphas, z / np.linalg.norm(z, axis=1, keepdims=True), 1.0,
                                               orientation=dec.orientation)
    cap = theory.mean_distance_to_cap(mu, D) if 0 < mu < 1 else np.nan
    path.append((int(step), mu, de.mean, de.se, cap))
    print(f"step {int(step):5d}: mu = {mu:.3e}, exact d(E) = {de.mean:.4f} +- {de.se:.4f}, bound {cap:.4f}")
for step, mu, dist, se, cap in path:
    if 0 < mu < 1:
        assert dist - 3 * se <= cap, step
assert path[-1][1] < 1e-2 < path[0][1] and path[-1][2] > path[0][2]

# %% [markdown]
# ## 2. The outer sphere
#
# On the outer sphere (radius 1.3, label 1) the attack is graded the same way: never below the exact
# distance, and within 3% of it on average.

# %%
W, w, b = models.quadratic_weights(state.variables)
dec = quadratic.alphas_from_weights(W, w, b, dim=D)
xs = 1.3 * points
res = attacks.attack(trainer.logit_fn, state.variables, xs, 1)
z = xs @ dec.rotation
exact, _ = quadratic.nearest_errors(dec.alphas, 1.3 * z / np.linalg.norm(z, axis=1, keepdims=True), 1.3,
                                    dec.orientation, label=1)
got = np.asarray(res.distance, np.float64)
print(f"outer sphere: attack {np.nanmean(got):.4f}, exact {exact.mean():.4f}, failures {int(np.sum(~np.asarray(res.found)))}")
assert np.all(np.asarray(res.found))
assert np.all(got >= exact - 1e-4) and abs(got.mean() / exact.mean() - 1) < 0.03

# %% [markdown]
# ## 3. Another learning rate, no recompilation
#
# The jitted training function has one compiled program after both calls; the slower net has a larger
# error rate, and it too sits under the bound.

# %%
train_fn = jax.jit(trainer.train)
first, _, _ = train_fn(training.member_keys(cfg)[0], training.make_hyper(1e-2, 0))
slow, slow_metrics, _ = train_fn(training.member_keys(cfg)[0], training.make_hyper(3e-3, 0))
print("compiled programs:", train_fn._cache_size())
assert train_fn._cache_size() == 1
W, w, b = models.quadratic_weights(slow.variables)
dec_slow = quadratic.alphas_from_weights(W, w, b, dim=D)
mu_slow = quadratic.error_rates(dec_slow.alphas, 1.3, dec_slow.orientation).inner
mu_fast = quadratic.error_rates(dec.alphas, 1.3, dec.orientation).inner
z = points @ dec_slow.rotation
de = quadratic.mean_nearest_error_distance(dec_slow.alphas, z / np.linalg.norm(z, axis=1, keepdims=True), 1.0,
                                           orientation=dec_slow.orientation)
cap = theory.mean_distance_to_cap(mu_slow, D)
print(f"lr 3e-3: mu = {mu_slow:.3e} (lr 1e-2: {mu_fast:.3e}); exact d(E) = {de.mean:.4f} +- {de.se:.4f}, bound {cap:.4f}")
assert mu_slow > mu_fast and de.mean - 3 * de.se <= cap
