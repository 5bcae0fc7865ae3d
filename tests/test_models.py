"""Models: the variables layout, evaluation-mode batch norm, and the quad net's exact weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spheres.maths import geometry
from spheres.nets import models
from spheres.nets.config import PAPER_MODELS, ModelConfig

RELU_BN = ModelConfig("relu", 16, 2, True)
QUAD = ModelConfig("quad", 12, 1, False)


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def test_paper_models_have_the_documented_variables():
    """The layout of the models module docstring, for the three paper models at d = 500 (abstract: no compute)."""
    d = 500
    quad = jax.eval_shape(lambda: models.init_variables(jax.random.key(0), PAPER_MODELS["quad-w1000"], d))
    assert _shapes(quad) == {"params": {"hidden": {"kernel": (d, 1000)}, "w": (), "b": ()}, "batch_stats": {}}

    bn = jax.eval_shape(lambda: models.init_variables(jax.random.key(0), PAPER_MODELS["relu-w1000-d2"], d))
    assert _shapes(bn) == {
        "params": {"dense0": {"kernel": (d, 1000)}, "norm0": {"scale": (1000,), "bias": (1000,)},
                   "dense1": {"kernel": (1000, 1000)}, "norm1": {"scale": (1000,), "bias": (1000,)},
                   "head": {"kernel": (1000, 1), "bias": (1,)}},
        "batch_stats": {"norm0": {"mean": (1000,), "var": (1000,)}, "norm1": {"mean": (1000,), "var": (1000,)}}}

    deep = jax.eval_shape(lambda: models.init_variables(jax.random.key(0), PAPER_MODELS["relu-w2000-d8"], d))
    assert deep["batch_stats"] == {}
    assert sorted(deep["params"]) == sorted([f"dense{i}" for i in range(8)] + ["head"])
    assert deep["params"]["dense0"]["kernel"].shape == (d, 2000)
    assert deep["params"]["dense7"]["bias"].shape == (2000,)
    n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(deep))
    assert n_params == d * 2000 + 2000 + 7 * (2000 * 2000 + 2000) + 2000 + 1


def test_init_is_a_function_of_the_key():
    init = jax.jit(lambda k: models.init_variables(k, RELU_BN, 5))
    a, b, c = init(jax.random.key(1)), init(jax.random.key(1)), init(jax.random.key(2))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not np.array_equal(a["params"]["dense0"]["kernel"], c["params"]["dense0"]["kernel"])
    # LeCun normal: kernel entries have variance 1 / fan_in (16 * 5 = 80 draws; loose 5-sigma band)
    k = np.asarray(c["params"]["dense1"]["kernel"], np.float64)
    assert abs(k.var() * 16 - 1.0) < 5 * np.sqrt(2 / k.size)


def _moved_stats(variables, key, dim):
    """Variables whose running averages are far from the initial (0, 1), so evaluation mode is visible."""
    apply = jax.jit(models.make_apply_train(RELU_BN, dim))
    x = 3.0 + jax.random.normal(key, (64, dim))
    for _ in range(5):
        _, stats = apply(variables, x)
        variables = {"params": variables["params"], "batch_stats": stats}
    return variables


def test_batch_norm_evaluation_uses_running_averages():
    """Evaluation output for one point is the same whatever batch it sits in; training output is not."""
    dim = 5
    variables = _moved_stats(models.init_variables(jax.random.key(0), RELU_BN, dim), jax.random.key(1), dim)
    logit_fn = jax.jit(models.make_logit_fn(RELU_BN, dim))
    xs = jax.random.normal(jax.random.key(2), (8, dim))
    others = jax.random.normal(jax.random.key(3), (8, dim)) * 5.0
    batched = jax.jit(jax.vmap(logit_fn, (None, 0)))
    alone = jnp.stack([logit_fn(variables, x) for x in xs])
    in_batch = batched(variables, xs)
    mixed = batched(variables, jnp.concatenate([xs[:4], others[4:]]))
    np.testing.assert_allclose(in_batch, alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed[:4], alone[:4], rtol=1e-5, atol=1e-6)

    # Evaluation mode equals the module run by hand with the running averages.
    p, s = jax.tree.map(lambda a: np.asarray(a, np.float64), (variables["params"], variables["batch_stats"]))
    h = np.asarray(xs, np.float64)
    for layer in range(2):
        z = h @ p[f"dense{layer}"]["kernel"]
        st, nm = s[f"norm{layer}"], p[f"norm{layer}"]
        h = np.maximum((z - st["mean"]) / np.sqrt(st["var"] + 1e-5) * nm["scale"] + nm["bias"], 0.0)
    by_hand = (h @ p["head"]["kernel"] + p["head"]["bias"])[:, 0]
    np.testing.assert_allclose(in_batch, by_hand, rtol=1e-4, atol=1e-5)

    # Training mode normalises with the batch: changing the other points changes a point's logit.
    apply = jax.jit(models.make_apply_train(RELU_BN, dim))
    train_a, _ = apply(variables, xs)
    train_b, _ = apply(variables, jnp.concatenate([xs[:4], others[4:]]))
    assert np.max(np.abs(np.asarray(train_a[:4] - train_b[:4]))) > 1e-3


def test_batch_norm_running_averages_follow_the_batch_statistics():
    """new = 0.99 old + 0.01 batch (flax default momentum), with the biased batch variance."""
    dim = 5
    variables = models.init_variables(jax.random.key(0), RELU_BN, dim)
    x = 2.0 + jax.random.normal(jax.random.key(4), (32, dim))
    _, stats = models.make_apply_train(RELU_BN, dim)(variables, x)
    z = np.asarray(x, np.float64) @ np.asarray(variables["params"]["dense0"]["kernel"], np.float64)
    np.testing.assert_allclose(stats["norm0"]["mean"], 0.01 * z.mean(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(stats["norm0"]["var"], 0.99 + 0.01 * z.var(0), rtol=1e-4, atol=1e-7)
    assert np.max(np.abs(stats["norm0"]["mean"])) > 1e-3  # they moved


@pytest.mark.parametrize("dim", [3, 20])
def test_quadratic_weights_round_trip(dim):
    """logit(x) = w ||W x||^2 + b in float64 from the exported (W, w, b) equals the model's logit."""
    variables = models.init_variables(jax.random.key(dim), QUAD, dim)
    variables["params"]["b"] = jnp.asarray(-0.37, jnp.float32)
    W, w, b = models.quadratic_weights(variables)
    assert W.shape == (12, dim) and W.dtype == np.float64
    assert w == pytest.approx(1 / 12, rel=1e-7)
    x, _ = jax.jit(geometry.sample_batch, static_argnums=(1, 2))(jax.random.key(7), 50, dim, 1.3)
    exact = w * np.sum((np.asarray(x, np.float64) @ W.T) ** 2, axis=1) + b
    logits = jax.jit(jax.vmap(models.make_logit_fn(QUAD, dim), (None, 0)))(variables, x)
    np.testing.assert_allclose(logits, exact, rtol=1e-5, atol=1e-6)


def test_quadratic_weights_rejects_other_models():
    with pytest.raises(ValueError, match="not quadratic"):
        models.quadratic_weights(models.init_variables(jax.random.key(0), RELU_BN, 4))


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_matmul_flop_count_matches_the_compiled_forward_pass(name):
    """Our forward matmul count is XLA's own FLOP count minus the elementwise work (<= 2% of it)."""
    cfg, dim, batch = PAPER_MODELS[name], 500, 50
    if cfg.depth == 8:
        cfg = ModelConfig("relu", 200, 8, False)  # same structure, cheaper to compile
    variables = jax.eval_shape(lambda: models.init_variables(jax.random.key(0), cfg, dim))
    logit_fn = jax.vmap(models.make_logit_fn(cfg, dim), (None, 0))
    cost = jax.jit(logit_fn).lower(variables, jax.ShapeDtypeStruct((batch, dim), jnp.float32)).compile()
    xla_flops = cost.cost_analysis()["flops"]
    ours = models.count_matmul_flops(cfg, dim, batch)
    assert ours <= xla_flops <= 1.02 * ours
