"""Defences: PGD on the sphere, the quad net's exact worst case, the gradient penalty, feature
squeezing, random masks, ReLU stability; config fields; defended ensembles train, learn, and keep
the ensemble contract."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from spheres.core.errors import InputError
from spheres.maths import geometry
from spheres.maths.stats import clopper_pearson
from spheres.nets import defences, models, relu_stability, train
from spheres.nets.config import ModelConfig, config_from_dict, dump_config, parse_model_name
import tomllib

FRESH = 20_000


def _member(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def _leaves(tree):
    raw = (lambda a: jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a)
    return [np.asarray(raw(a)) for a in jax.tree.leaves(tree)]


def _random_quad(key, d, h, w=1.0):
    """A quad net's kernel (d, h) = W^T and its form M = W^T W."""
    kernel = jax.random.normal(key, (d, h)) / math.sqrt(d)
    return kernel, w


def _quad_losses(kernel, w, b, labels):
    def f(y):
        z = y @ kernel
        return w * jnp.sum(z * z) + b

    return lambda ys: optax.sigmoid_binary_cross_entropy(jax.vmap(f)(ys), labels.astype(jnp.float32))


# ---------------------------------------------------------------------------- PGD on the sphere


@pytest.mark.parametrize("eps", [0.02, 0.3, 1.0, 3.0])
def test_pgd_iterates_stay_on_the_sphere_and_in_the_ball(eps):
    d, n = 12, 64
    k1, k2, k3 = jax.random.split(jax.random.key(eps.__hash__() % 1000), 3)
    kernel, w = _random_quad(k1, d, 8)
    x0, labels = geometry.sample_batch(k2, n, d, 1.3)
    losses = _quad_losses(kernel, w, -0.8, labels)
    res = jax.jit(lambda x: defences.pgd_attack(losses, x, eps, 20, return_path=True))(x0)
    assert res.path.shape == (21, n, d)
    r = np.linalg.norm(np.asarray(x0), axis=1)
    path = np.asarray(res.path, np.float64)
    np.testing.assert_allclose(np.linalg.norm(path, axis=2), np.broadcast_to(r, (21, n)), rtol=2e-6)
    assert np.max(np.linalg.norm(path - np.asarray(x0)[None], axis=2)) <= eps * (1 + 1e-5) + 1e-6
    np.testing.assert_array_equal(path[0], np.asarray(x0))
    # the iterates actually move: with a budget below 2r some reach the rim
    dist = np.linalg.norm(path[-1] - np.asarray(x0), axis=1)
    if eps < 2:
        assert np.mean(dist > 0.9 * eps) > 0.5


def test_pgd_loss_is_at_least_clean_and_at_most_the_exact_worst_case():
    """Graded against the exact maximiser of the quad net's loss on the cap: PGD's loss lies
    between the clean loss and the exact worst-case loss, and gets most of the way."""
    d, n, eps = 10, 200, 0.3
    k1, k2 = jax.random.split(jax.random.key(3))
    kernel, w = _random_quad(k1, d, 10, 1.0)
    x0, labels = geometry.sample_batch(k2, n, d, 1.3)
    losses = _quad_losses(kernel, w, -1.0, labels)
    pgd = jax.jit(lambda x: defences.pgd_attack(losses, x, eps, 30))(x0)
    lam, V = defences.quad_eigen(kernel)
    exact = jax.jit(jax.vmap(defences.quad_worst_case, (None, None, None, 0, 0, None)))(lam, V, w, x0, labels, eps)
    exact_loss = np.asarray(losses(exact))
    clean, adv = np.asarray(pgd.loss_clean), np.asarray(pgd.loss_adv)
    np.testing.assert_allclose(clean, np.asarray(losses(x0)), rtol=1e-6)
    np.testing.assert_allclose(adv, np.asarray(losses(pgd.x_adv)), rtol=1e-6)
    assert np.all(adv >= clean)
    assert np.all(adv <= exact_loss * (1 + 1e-4) + 1e-6)
    gain = (adv - clean) / (exact_loss - clean)
    assert np.all(exact_loss - clean > 1e-3)
    assert np.median(gain) > 0.95 and np.mean(gain) > 0.9


# ---------------------------------------------------------------------------- exact worst case


def _cap_grid(x, eps, n_theta, n_phi):
    """Points of the cap C(x, eps) on a polar grid around x (float64), shape (m, d), d in (2, 3)."""
    x = np.asarray(x, np.float64)
    r = np.linalg.norm(x)
    u = x / r
    theta_max = 2 * np.arcsin(min(eps / (2 * r), 1.0))
    theta = np.linspace(0, theta_max, n_theta)
    basis = np.linalg.svd(u[None, :])[2][1:]  # orthonormal complement of u, (d - 1, d)
    if x.size == 2:
        dirs = np.stack([basis[0], -basis[0]])
    else:
        phi = np.linspace(0, 2 * np.pi, n_phi, endpoint=False)
        dirs = np.cos(phi)[:, None] * basis[0] + np.sin(phi)[:, None] * basis[1]
    pts = np.cos(theta)[:, None, None] * x + r * np.sin(theta)[:, None, None] * dirs[None]
    return pts.reshape(-1, x.size)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("eps", [0.1, 0.6, 1.5, 2.7])
def test_quad_worst_case_matches_a_brute_force_search(d, eps):
    rng = np.random.default_rng(10 * d + int(10 * eps))
    worst = jax.jit(defences.quad_worst_case)
    for trial in range(6):
        kernel = rng.normal(size=(d, d + 1)) / math.sqrt(d)
        w = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0))
        label = trial % 2
        radius = 1.0 if label == 0 else 1.3
        x = rng.normal(size=d)
        x *= radius / np.linalg.norm(x)
        lam, V = defences.quad_eigen(jnp.asarray(kernel, jnp.float32))
        y = np.asarray(worst(lam, V, w, jnp.asarray(x, jnp.float32), label, eps), np.float64)
        s = 1 - 2 * label
        A = kernel @ kernel.T
        q = (lambda p: s * w * np.einsum("...i,ij,...j->...", p, A, p))
        grid = _cap_grid(x, eps, 2001 if d == 2 else 400, 1 if d == 2 else 800)
        values = q(grid)
        spread = values.max() - values.min() + 1e-12
        assert abs(np.linalg.norm(y) - radius) < 1e-5 * radius
        assert np.linalg.norm(y - x) <= eps * (1 + 1e-5) + 1e-6
        assert q(y) >= values.max() - 2e-4 * spread, (trial, q(y), values.max())  # no grid point is better
        assert q(y) <= values.max() + 2e-3 * spread  # and it is not off the cap


def test_quad_worst_case_beats_random_points_of_the_cap():
    d, eps = 20, 0.4
    key = jax.random.key(11)
    k1, k2, k3 = jax.random.split(key, 3)
    kernel, w = _random_quad(k1, d, 12, 1.0)
    lam, V = defences.quad_eigen(kernel)
    x = geometry.sample_sphere(k2, d, 1.0)
    y = defences.quad_worst_case(lam, V, w, x, 0, eps)
    f = (lambda p: w * jnp.sum((p @ kernel) ** 2))
    # 20000 random cap points: random tangent directions, random angles up to theta_max
    theta_max = 2 * math.asin(eps / 2)
    g = jax.random.normal(k3, (20_000, d))
    ang = theta_max * jax.random.uniform(jax.random.fold_in(k3, 1), (20_000,))
    pts = jax.vmap(geometry.rotate_toward, (None, 0, 0))(x, g, ang)
    assert float(f(y)) > float(jnp.max(jax.vmap(f)(pts))) + 1e-6
    # the whole sphere (eps >= 2r): the top eigenvector, value r^2 w lam_max
    y_all = defences.quad_worst_case(lam, V, w, x, 0, 2.5)
    assert float(f(y_all)) == pytest.approx(float(w * lam[-1]), rel=1e-5)
    # label 1 minimises f: on the whole sphere the smallest eigenvalue (0: W is blind to d - h directions)
    assert float(f(defences.quad_worst_case(lam, V, w, x, 1, 2.5))) == pytest.approx(0.0, abs=1e-6)
    # eps = 0: the point itself
    np.testing.assert_allclose(defences.quad_worst_case(lam, V, w, x, 0, 0.0), x, atol=1e-7)


# ---------------------------------------------------------------------------- gradient penalty


def test_gradient_penalty_gradient_matches_finite_differences():
    """d penalty / d params by autodiff (double backprop) against central differences, float64,
    for the quad net and a ReLU MLP (through the models module's training forward pass)."""
    with jax.enable_x64(True):
        key = jax.random.key(5)
        x, y = geometry.sample_batch(key, 16, 6, 1.3, dtype=jnp.float64)
        cfg = ModelConfig("relu", 12, 2, False)
        apply = models.make_apply_train(cfg, 6)
        relu_vars = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), models.init_variables(key, cfg, 6))

        def relu_penalty(params):
            losses = (lambda xb: optax.sigmoid_binary_cross_entropy(apply({"params": params, "batch_stats": {}}, xb)[0],
                                                                     y.astype(jnp.float64)))
            return defences.input_gradient_penalty(losses, x)

        kernel = jax.random.normal(jax.random.fold_in(key, 1), (6, 5), jnp.float64)

        def quad_penalty(params):
            return defences.input_gradient_penalty(_quad_losses(params["k"], params["w"], params["b"], y), x)

        quad_params = {"k": kernel, "w": jnp.float64(0.7), "b": jnp.float64(-0.5)}
        for fn, params in ((quad_penalty, quad_params), (relu_penalty, relu_vars["params"])):
            fn = jax.jit(fn)
            grad = jax.jit(jax.grad(fn))(params)
            v = jax.tree.map(lambda a: jax.random.normal(jax.random.fold_in(key, a.size), a.shape, jnp.float64),
                             params)
            h = 1e-6
            plus = fn(jax.tree.map(lambda p, t: p + h * t, params, v))
            minus = fn(jax.tree.map(lambda p, t: p - h * t, params, v))
            fd = (plus - minus) / (2 * h)
            auto = sum(jnp.vdot(g, t) for g, t in zip(jax.tree.leaves(grad), jax.tree.leaves(v)))
            assert float(fn(params)) > 0
            assert float(auto) == pytest.approx(float(fd), rel=1e-6)


def test_gradient_penalty_is_the_tangent_part_only():
    """A purely radial classifier (f = ||x||^2 - 1.15^2) has a zero tangent input gradient."""
    x, y = geometry.sample_batch(jax.random.key(0), 32, 8, 1.3)
    losses = (lambda xb: optax.sigmoid_binary_cross_entropy(jnp.sum(xb * xb, axis=1) - 1.15**2, y.astype(jnp.float32)))
    assert float(defences.input_gradient_penalty(losses, x)) < 1e-10
    lin = (lambda xb: optax.sigmoid_binary_cross_entropy(xb[:, 0], y.astype(jnp.float32)))
    assert float(defences.input_gradient_penalty(lin, x)) > 1e-3


# ---------------------------------------------------------------------------- feature squeezing


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_squeezing_hits_exactly_two_to_the_b_levels_and_stays_on_the_sphere(bits):
    d = 20
    xs, _ = geometry.sample_batch(jax.random.key(bits), 3000, d, 1.3)
    sq = jax.jit(jax.vmap(lambda x: defences.squeeze(x, bits, 3.0)))(xs)
    idx = np.asarray(jax.jit(jax.vmap(lambda x: defences.squeeze_index(x, bits, 3.0)))(xs))
    np.testing.assert_array_equal(np.unique(idx), np.arange(2**bits))  # every level used, no other
    np.testing.assert_allclose(np.linalg.norm(sq, axis=1), np.linalg.norm(xs, axis=1), rtol=1e-6)
    levels = defences.squeeze_levels(bits, 3.0)
    q = levels[idx]
    np.testing.assert_allclose(np.asarray(sq), np.linalg.norm(xs, axis=1, keepdims=True) * q
                               / np.linalg.norm(q, axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    # each coordinate rounds to its nearest level (after clipping to the range)
    v = np.clip(np.sqrt(d) * np.asarray(xs) / np.linalg.norm(xs, axis=1, keepdims=True), -3, 3)
    assert np.max(np.abs(v - q)) <= 3.0 / (2**bits - 1) * (1 + 1e-5)


def test_squeezing_front_end_has_a_straight_through_gradient():
    x = geometry.sample_sphere(jax.random.key(0), 16)
    v = jax.random.normal(jax.random.key(1), (16,))
    g = jax.grad(lambda z: jnp.vdot(defences.squeeze_ste(z, 3), v))(x)
    np.testing.assert_array_equal(g, v)
    np.testing.assert_array_equal(defences.squeeze_ste(x, 3), defences.squeeze(x, 3))
    # the model front end: a squeezed model is the plain one evaluated at the squeezed point
    plain, squeezed = ModelConfig("relu", 8, 2, False), ModelConfig("relu", 8, 2, False, squeeze_bits=3)
    variables = models.init_variables(jax.random.key(2), plain, 16)
    assert float(models.make_logit_fn(squeezed)(variables, x)) == pytest.approx(
        float(models.make_logit_fn(plain)(variables, defences.squeeze(x, 3))), rel=1e-6)
    with pytest.raises(InputError, match="bits"):
        defences.squeeze(x, 0)


def test_squeezing_detector_counts_and_intervals():
    """Cap classifier 'outer iff x_0 > 0.5' at d = 16 with a steep logit; 1-bit squeezing puts
    every coordinate at +-1/4 < 0.5, so it sends every point to the inner side: every attack output
    (a misclassified inner point) is detected, and the false alarms on clean points are exactly
    the clean points the classifier calls outer with a margin (counted here in float64)."""
    d = 16
    logit_fn = (lambda params, x: params * (x[0] - 0.5))
    key = jax.random.key(4)
    clean = jax.vmap(lambda k: geometry.sample_sphere(k, d))(jax.random.split(key, 4000))
    # attack outputs: inner points just past the boundary
    adv = jax.vmap(lambda x: geometry.project_to_sphere(x.at[0].set(0.0), math.sqrt(1 - 0.52**2)).at[0].set(0.52))(
        clean[:300])
    score = jax.jit(jax.vmap(lambda x: defences.squeeze_score(logit_fn, 200.0, x, 1)))
    rep = defences.detection_report(score(adv), score(clean), threshold=1.0)
    assert rep.detection.count == 300 and rep.detection.samples == 300
    x0 = np.asarray(clean, np.float64)[:, 0]
    sig = (lambda t: 1 / (1 + np.exp(-t)))
    expected = int(np.sum(2 * np.abs(sig(200 * (x0 - 0.5)) - sig(200 * (np.sign(x0) / 4 - 0.5))) > 1.0))
    assert rep.false_alarm.count == expected and rep.false_alarm.samples == 4000
    lo, hi = clopper_pearson(expected, 4000)
    assert rep.false_alarm.lower == pytest.approx(lo) and rep.false_alarm.upper == pytest.approx(hi)
    assert 20 < expected < 200  # about 2% of the sphere lies at x_0 > 0.5 in d = 16
    t = defences.calibrate_threshold(np.arange(100.0), 0.05)
    assert np.mean(np.arange(100.0) > t) == 0.05


# ---------------------------------------------------------------------------- random masks


MASKED = config_from_dict({"task": {"dim": 10}, "model": {"name": "relu", "width": 1000, "depth": 2,
                                                          "random_masks": True},
                           "train": {"steps": 10, "batch_size": 8, "seeds": [0, 1, 2, 3], "mask_keep_rates": [0.3]}})


def test_masks_have_the_keep_rate_and_are_reproducible_from_the_key():
    trainer = train.make_trainer(MASKED, eval_size=8)
    keys, hypers = train.member_keys(MASKED), train.member_hypers(MASKED)
    states = trainer.ensemble_init(keys, hypers)
    masks = np.stack([np.asarray(states.variables["masks"][f"mask{l}"]) for l in range(2)])  # (2, 4, 1000)
    assert set(np.unique(masks)) == {0.0, 1.0}
    kept = int(masks.sum())
    lo, hi = clopper_pearson(kept, masks.size, 0.999)
    assert lo < 0.3 < hi and hi - lo < 0.04  # a 10% error in the rate would be outside
    again = trainer.ensemble_init(keys, hypers)
    for a, b in zip(_leaves(states.variables["masks"]), _leaves(again.variables["masks"])):
        np.testing.assert_array_equal(a, b)
    assert np.mean(masks[:, 0] != masks[:, 1]) > 0.3  # different seeds, different masks
    # the masks do not disturb the other keys: weights equal the unmasked model's
    table = _table(MASKED)
    table["train"].pop("mask_keep_rates")
    plain = train.make_trainer(config_from_dict({**table, "model": {"name": "relu", "width": 1000, "depth": 2}}),
                               eval_size=8)
    p0 = jax.jit(plain.init)(keys[0], _member(hypers, 0))
    np.testing.assert_array_equal(p0.variables["params"]["dense0"]["kernel"],
                                  states.variables["params"]["dense0"]["kernel"][0])


def _table(cfg):
    return tomllib.loads(dump_config(cfg))


def test_masks_are_fixed_through_training_and_applied_in_the_forward_pass():
    cfg = config_from_dict({"task": {"dim": 6}, "model": {"name": "relu", "width": 16, "depth": 2,
                                                          "random_masks": True},
                            "train": {"steps": 10, "batch_size": 8, "mask_keep_rates": [0.5], "learning_rates": [0.05]}})
    trainer = train.make_trainer(cfg, eval_size=8)
    hyper = _member(train.member_hypers(cfg), 0)
    state = jax.jit(trainer.init)(train.member_keys(cfg)[0], hyper)
    later = jax.jit(trainer.advance)(state, hyper, 10)
    for a, b in zip(_leaves(state.variables["masks"]), _leaves(later.variables["masks"])):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(later.variables["params"]["head"]["kernel"], state.variables["params"]["head"]["kernel"])
    v = later.variables
    x = geometry.sample_sphere(jax.random.key(9), 6)
    p = v["params"]
    h = jax.nn.relu(x @ p["dense0"]["kernel"] + p["dense0"]["bias"]) * v["masks"]["mask0"]
    h = jax.nn.relu(h @ p["dense1"]["kernel"] + p["dense1"]["bias"]) * v["masks"]["mask1"]
    manual = (h @ p["head"]["kernel"] + p["head"]["bias"])[0]
    assert float(trainer.logit_fn(v, x)) == pytest.approx(float(manual), rel=1e-5, abs=1e-6)
    # a masked unit's outgoing weights get no gradient
    dead = np.flatnonzero(np.asarray(v["masks"]["mask0"]) == 0)
    assert dead.size > 0
    np.testing.assert_array_equal(np.asarray(later.variables["params"]["dense1"]["kernel"])[dead],
                                  np.asarray(state.variables["params"]["dense1"]["kernel"])[dead])


# ---------------------------------------------------------------------------- ReLU stability


def _relu_vars(key, cfg, dim, batch_norm_noise=False):
    variables = models.init_variables(key, cfg, dim)
    if batch_norm_noise:  # running averages and BN parameters away from their initial values
        k = jax.random.split(key, 8)
        for l in range(cfg.depth):
            variables["batch_stats"][f"norm{l}"]["mean"] = 0.3 * jax.random.normal(k[l], (cfg.width,))
            variables["batch_stats"][f"norm{l}"]["var"] = jnp.exp(jax.random.normal(k[l + 2], (cfg.width,)))
            variables["params"][f"norm{l}"]["scale"] = 1 + 0.3 * jax.random.normal(k[l + 4], (cfg.width,))
            variables["params"][f"norm{l}"]["bias"] = 0.3 * jax.random.normal(k[l + 6], (cfg.width,))
    return variables


def _head(variables, cfg, lower):
    h = jax.nn.relu(lower[-1])
    p = variables["params"]["head"]
    return (h @ p["kernel"] + p["bias"])[0]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_interval_bounds_are_exact_at_zero_radius_and_contain_the_ball(batch_norm):
    d = 8
    cfg = ModelConfig("relu", 24, 3, batch_norm)
    variables = _relu_vars(jax.random.key(1), cfg, d, batch_norm_noise=batch_norm)
    logit_fn = models.make_logit_fn(cfg, d)
    affines = relu_stability.batch_norm_affines(variables, cfg)
    xs, _ = geometry.sample_batch(jax.random.key(2), 20, d, 1.3)
    centre = jax.jit(jax.vmap(lambda x, aff: relu_stability.preactivation_bounds(variables, cfg, aff, x, 0.0),
                              (0, None)))
    b0 = centre(xs, affines)
    assert all(np.array_equal(lo, hi) for lo, hi in b0)
    heads = jax.vmap(lambda *lows: _head(variables, cfg, lows))(*[lo for lo, _ in b0])
    np.testing.assert_allclose(heads, jax.vmap(logit_fn, (None, 0))(variables, xs), rtol=1e-4, atol=1e-5)
    # training mode: the batch's statistics reproduce the training forward pass
    b_train = centre(xs, relu_stability.batch_norm_affines(variables, cfg, xs))
    logits, _ = models.make_apply_train(cfg, d)(variables, xs)
    mine = jax.vmap(lambda *lows: _head(variables, cfg, lows))(*[lo for lo, _ in b_train])
    np.testing.assert_allclose(np.asarray(mine), np.asarray(logits), rtol=1e-4, atol=1e-5)
    # soundness: sampled points of the ball have pre-activations inside the bounds
    bounds = jax.jit(lambda x, e, n: relu_stability.preactivation_bounds(variables, cfg, affines, x, e, n),
                     static_argnums=2)
    for norm, eps in (("l2", 0.2), ("linf", 0.05)):
        x = xs[0]
        lo_hi = bounds(x, eps, norm)
        k = jax.random.key(3)
        g = jax.random.normal(k, (500, d))
        if norm == "l2":
            pts = x[None] + eps * g / jnp.linalg.norm(g, axis=1, keepdims=True) * jax.random.uniform(k, (500, 1)) ** (1 / d)
        else:
            pts = x[None] + eps * jax.random.uniform(k, (500, d), minval=-1, maxval=1)
        exact = jax.vmap(lambda p: bounds(p, 0.0, norm))(pts)  # per layer ((500, h), (500, h))
        for (lo, hi), (e, _) in zip(lo_hi, exact):
            e = np.asarray(e)
            assert np.all(e >= np.asarray(lo)[None] - 1e-5) and np.all(e <= np.asarray(hi)[None] + 1e-5)
            assert np.any(np.asarray(hi) - np.asarray(lo) > 1e-3)  # not trivially: the bounds have width


def test_rs_loss_is_zero_iff_every_relu_is_stable():
    d = 6
    cfg = ModelConfig("relu", 8, 2, False)
    variables = models.init_variables(jax.random.key(0), cfg, d)
    x = geometry.sample_sphere(jax.random.key(1), d)
    aff = relu_stability.batch_norm_affines(variables, cfg)
    # a net whose pre-activations are +-2 +- tiny: every unit stable on the ball
    stable = jax.tree.map(lambda a: a, variables)
    signs = jnp.where(jnp.arange(8) % 2 == 0, 2.0, -2.0)
    for l in range(2):
        stable["params"][f"dense{l}"]["kernel"] = 0.01 * variables["params"][f"dense{l}"]["kernel"]
        stable["params"][f"dense{l}"]["bias"] = signs
    for norm in ("l2", "linf"):
        assert float(relu_stability.rs_loss(stable, cfg, aff, x, 0.3, norm)) == 0.0
        assert relu_stability.stable_fraction(stable, cfg, x[None], 0.3, norm).overall.mean == 1.0
    # the initialised net at growing radii: loss positive and growing, stable fraction falling
    losses = [float(relu_stability.rs_loss(variables, cfg, aff, x, e)) for e in (0.01, 0.1, 0.5, 2.0)]
    fracs = [relu_stability.stable_fraction(variables, cfg, x[None], e).overall.mean for e in (0.01, 0.1, 0.5, 2.0)]
    assert losses[0] >= 0 and losses[-1] > 0.1
    assert all(a <= b for a, b in zip(losses, losses[1:])) and all(a >= b for a, b in zip(fracs, fracs[1:]))
    assert fracs[-1] < 0.5
    assert float(relu_stability.rs_unit_loss(-1.0, 2.0)) == pytest.approx(math.tanh(1) - math.tanh(-1))
    assert float(relu_stability.rs_unit_loss(0.5, 2.0)) == 0.0 and float(relu_stability.rs_unit_loss(-2.0, -0.1)) == 0.0


# ---------------------------------------------------------------------------- config fields


@pytest.mark.parametrize("data, field", [
    ({"model": {"name": "relu", "width": 8, "depth": 2}, "train": {"adversarial": "exact"}}, "train.adversarial"),
    ({"train": {"adversarial": "fgsm"}}, "train.adversarial"),
    ({"model": {"name": "quad-w8"}, "train": {"rs_weights": [0.1]}}, "train.rs_weights"),
    ({"train": {"mask_keep_rates": [0.5]}}, "train.mask_keep_rates"),
    ({"train": {"adv_epsilons": [0.1]}}, "train.adv_epsilons"),
    ({"train": {"adversarial": "pgd", "adv_weights": [1.5]}}, "train.adv_weights"),
    ({"train": {"adversarial": "pgd", "adv_steps": 0}}, "train.adv_steps"),
    ({"train": {"grad_penalties": [-1.0]}}, "train.grad_penalties"),
    ({"train": {"rs_weights": [0.1], "rs_epsilons": [0.0]}}, "train.rs_epsilons"),
    ({"train": {"rs_norm": "l1"}}, "train.rs_norm"),
    ({"train": {"l1_weights": []}}, "train.l1_weights"),
    ({"model": {"name": "relu-w8-d2", "squeeze_bits": 17}}, "model.squeeze_bits"),
    ({"model": {"name": "relu-w8-d2", "squeeze_bits": 2, "squeeze_range": 0}}, "model.squeeze_range"),
    ({"model": {"name": "quad-w8", "random_masks": True}}, "model.random_masks"),
])
def test_bad_defence_fields_name_the_field(data, field):
    with pytest.raises(InputError) as info:
        config_from_dict(data)
    assert info.value.field == field


def test_defended_configs_round_trip_and_members_list_only_active_defences():
    cfg = config_from_dict({"model": {"name": "relu-w1000-d2", "squeeze_bits": 4, "random_masks": True},
                            "train": {"adversarial": "pgd", "adv_epsilons": [0.05, 0.1], "mask_keep_rates": [0.5, 0.9],
                                      "seeds": [0, 1]}})
    assert cfg.model.name == "relu-w1000-d2-sq4-masked"
    assert parse_model_name(cfg.model.name) == cfg.model
    assert config_from_dict(tomllib.loads(dump_config(cfg))) == cfg
    assert cfg.train.ensemble_size == 8
    assert set(cfg.train.members[0]) == {"member", "seed", "learning_rate", "train_size", "adv_eps", "adv_weight",
                                         "mask_keep"}
    hypers = train.member_hypers(cfg)
    assert hypers.adv_eps.tolist() == pytest.approx([0.05, 0.05, 0.1, 0.1] * 2)
    assert set(config_from_dict({}).train.members[0]) == {"member", "seed", "learning_rate", "train_size"}


# ---------------------------------------------------------------------------- defended ensembles

D = 10

#: every defence of a relu net at once; two members that differ in the RS weight
DEFENDED = config_from_dict({
    "task": {"dim": D},
    "model": {"name": "relu", "width": 32, "depth": 2, "batch_norm": True, "squeeze_bits": 6, "random_masks": True},
    "train": {"steps": 300, "batch_size": 50, "learning_rates": [1e-2], "checkpoints": 2, "schedule": "cosine",
              "warmup_steps": 20, "final_lr_fraction": 0.1, "adversarial": "pgd", "adv_steps": 4,
              "adv_epsilons": [0.05], "adv_weights": [0.5], "grad_penalties": [0.01], "rs_weights": [0.0, 2.0],
              "rs_epsilons": [0.05], "l1_weights": [1e-5], "mask_keep_rates": [0.8]}})


@pytest.mark.slow  # default-suite budget; the contract is also checked by a cheaper test
def test_member_is_bitwise_the_single_run_with_every_new_field():
    """Fast version of the ensemble contract: every defence and a schedule on, members differing in
    every swept value, 3 steps; ensemble (map) member i == the single run with key i, bit for bit."""
    table = _table(DEFENDED)
    table["model"]["width"] = 8
    table["train"].update(adv_steps=2, seeds=[0], adv_epsilons=[0.05, 0.1], rs_weights=[0.0, 0.5],
                          mask_keep_rates=[0.7], grad_penalties=[0.01])
    cfg = config_from_dict(table)
    assert cfg.train.ensemble_size == 4
    trainer = train.make_trainer(cfg, eval_size=8, ensemble_loop="map")
    keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
    states = trainer.ensemble_advance(trainer.ensemble_init(keys, hypers), hypers, 3)
    init, advance = jax.jit(trainer.init), jax.jit(trainer.advance)
    for i in (1, 2):
        hyper = _member(hypers, i)
        alone = advance(init(keys[i], hyper), hyper, 3)
        for a, b in zip(_leaves(alone), _leaves(_member(states, i))):
            np.testing.assert_array_equal(a, b)
    k0 = np.asarray(states.variables["params"]["dense0"]["kernel"])
    assert not np.array_equal(k0[0], k0[1])  # the swept values do change the run


def _fresh_error(logit_fn, variables, key):
    x, y = geometry.sample_batch(key, FRESH, D, 1.3)
    logits = jax.jit(jax.vmap(logit_fn, (None, 0)))(variables, x)
    return int(jnp.sum((logits > 0) != (y == 1)))


@pytest.fixture(scope="module")
def defended_run():
    trainer = train.make_trainer(DEFENDED, eval_size=200, ensemble_loop="map")
    keys, hypers = train.member_keys(DEFENDED), train.member_hypers(DEFENDED)
    final, metrics, _ = trainer.ensemble_train(keys, hypers)
    return trainer, keys, hypers, final, metrics


@pytest.mark.slow
def test_defended_ensemble_member_is_bitwise_the_single_run(defended_run):
    trainer, keys, hypers, final, metrics = defended_run
    s_final, s_metrics, _ = jax.jit(trainer.train)(keys[1], _member(hypers, 1))
    for a, b in zip(_leaves(s_final), _leaves(_member(final, 1))):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s_metrics["loss"], metrics["loss"][1])


@pytest.mark.slow
def test_defended_ensemble_learns_and_rs_raises_the_stable_fraction(defended_run):
    trainer, _, hypers, final, _ = defended_run
    xs, _ = geometry.sample_batch(jax.random.key(77), 500, D, 1.3)
    fractions = []
    for i in range(2):
        v = _member(final.variables, i)
        errors = _fresh_error(trainer.logit_fn, v, jax.random.key(100 + i))
        assert clopper_pearson(errors, FRESH, 0.999)[1] < 0.05, (i, errors)
        fractions.append(relu_stability.stable_fraction(v, DEFENDED.model, xs, 0.05))
    plain, rs = fractions
    assert float(hypers.rs_weight[1]) > 0 == float(hypers.rs_weight[0])
    # measured 0.78 -> 0.84 (se 0.002 each): require 0.03 and 5 standard errors
    assert rs.overall.mean > plain.overall.mean + max(0.03, 5 * math.hypot(rs.overall.se, plain.overall.se))
    assert rs.overall.n == 500 and rs.units == 500 * 2 * 32


QUAD_EXACT = config_from_dict({
    "task": {"dim": D}, "model": {"name": "quad", "width": 16},
    "train": {"steps": 300, "batch_size": 50, "learning_rates": [1e-2], "checkpoints": 2, "adversarial": "exact",
              "adv_epsilons": [0.02, 0.1], "adv_weights": [1.0]}})


def test_the_trainer_s_exact_adversarial_points_are_worst_cases():
    """The quad trainer's adversarial batch: on the sphere, within eps, and no better point of the
    cap than the exact one (loss at least the clean loss and at least a PGD point's)."""
    trainer = train.make_trainer(QUAD_EXACT, eval_size=50)
    hyper = _member(train.member_hypers(QUAD_EXACT), 1)
    state = jax.jit(trainer.init)(train.member_keys(QUAD_EXACT)[1], hyper)
    x, y = jax.jit(trainer.draw_batch)(jax.random.key(1), state.data_key, jnp.int32(0))
    x_adv = jax.jit(trainer.adversarial_points)(state.variables, x, y, hyper)
    logit = jax.vmap(trainer.logit_fn, (None, 0))
    ce = (lambda p: optax.sigmoid_binary_cross_entropy(logit(state.variables, p), y.astype(jnp.float32)))
    np.testing.assert_allclose(np.linalg.norm(x_adv, axis=1), np.linalg.norm(x, axis=1), rtol=1e-5)
    assert np.max(np.linalg.norm(np.asarray(x_adv - x), axis=1)) <= 0.1 * (1 + 1e-4)
    pgd = jax.jit(lambda p: defences.pgd_attack(ce, p, 0.1, 20))(x)
    assert np.all(np.asarray(ce(x_adv)) >= np.asarray(pgd.loss_adv) - 1e-5)
    assert np.mean(np.asarray(ce(x_adv)) > np.asarray(ce(x)) + 1e-4) > 0.9


@pytest.mark.slow
def test_exact_worst_case_training_of_the_quad_net_learns():
    trainer = train.make_trainer(QUAD_EXACT, eval_size=200, ensemble_loop="map")
    keys, hypers = train.member_keys(QUAD_EXACT), train.member_hypers(QUAD_EXACT)
    final, metrics, _ = trainer.ensemble_train(keys, hypers)
    for i in range(2):
        errors = _fresh_error(trainer.logit_fn, _member(final.variables, i), jax.random.key(200 + i))
        assert clopper_pearson(errors, FRESH, 0.999)[1] < 0.05, (i, errors)
    s_final, _, _ = jax.jit(trainer.train)(keys[0], _member(hypers, 0))
    for a, b in zip(_leaves(s_final), _leaves(_member(final, 0))):
        np.testing.assert_array_equal(a, b)
