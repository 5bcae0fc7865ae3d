"""Attributions graded against exact answers: the radial ideal (alignment 1), the quad net's exact boundary
normal, the cap's tangential normal, closed-form integrated gradients, and the Shapley axioms, the
Bayes error of k coordinates and a direct float64 computation of the band worths."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spheres.core.errors import InputError
from spheres.maths import quadratic, theory
from spheres.maths.classifiers import cap_logit, ellipsoid_logit
from spheres.maths.geometry import sample_batch
from spheres.measure import attributions as A

DIM = 8
C = 1.15  # the Bayes-optimal radius (1 + 1.3) / 2


def radial_logit(params, x):
    return jnp.sqrt(jnp.sum(x * x)) - params["c"]


def quad_logit(params, x):
    z = params["W"] @ x
    return params["w"] * jnp.sum(z * z) + params["b"]


@pytest.fixture(scope="module")
def points():
    return jax.jit(sample_batch, static_argnums=(1, 2))(jax.random.key(3), 12, DIM)


def _points_fn(logit_fn):
    """Every attribution of a batch of points, one compiled program per classifier."""
    return jax.jit(jax.vmap(lambda p, x, y: A.point_attributions(logit_fn, p, x, y), in_axes=(None, 0, 0)))


def _normals_fn(logit_fn, on_manifold=True):
    return jax.jit(jax.vmap(lambda p, x, y: A.boundary_normal(logit_fn, p, x, y, on_manifold=on_manifold),
                            in_axes=(None, 0, 0)))


def test_radial_ideal_aligns_exactly(points):
    xs, ys = points
    pa = _points_fn(radial_logit)({"c": C}, xs, ys)
    ones = np.ones(xs.shape[0])
    for name in ("grad_radial", "ig_ideal", "bsm_ideal", "bsm_grad", "bsm_radial_x", "big_ideal",
                 "big_ig"):
        np.testing.assert_allclose(np.asarray(getattr(pa, name)), ones, atol=2e-5, err_msg=name)
    np.testing.assert_allclose(np.asarray(pa.off.radial), ones, atol=2e-5)
    np.testing.assert_allclose(np.asarray(pa.off.grad_alignment), ones, atol=2e-5)
    assert np.all(np.asarray(pa.off.radial_angle) < 1e-2)
    # the off-sphere nearest error of the radial ideal is the radial point at radius C
    r = np.linalg.norm(np.asarray(xs), axis=1)
    np.testing.assert_allclose(np.asarray(pa.off.distance), np.abs(r - C), atol=1e-4)
    # and the spheres hold no error of it at all: no on-sphere boundary point, reported as such
    assert not np.any(np.asarray(pa.on.found))
    assert np.all(np.isnan(np.asarray(pa.on.grad_alignment)))
    np.testing.assert_allclose(np.asarray(pa.ig_gap), 0.0, atol=1e-5)


@pytest.mark.slow
def test_ellipsoid_reference_with_a_spherical_boundary_is_radial(points):
    # sum alpha x^2 - 1 with every alpha = 1/C^2: the ideal boundary with another logit
    xs, ys = points
    params = {"alphas": jnp.full((DIM,), 1 / C**2)}
    np.testing.assert_allclose(np.asarray(jax.vmap(lambda x: A.gradient_alignment(ellipsoid_logit, params, x))(xs)),
                               1.0, atol=2e-5)
    bn = _normals_fn(ellipsoid_logit, on_manifold=False)(params, xs, ys)
    assert np.all(np.asarray(bn.valid))
    np.testing.assert_allclose(np.asarray(bn.radial), 1.0, atol=2e-5)
    np.testing.assert_allclose(np.asarray(bn.grad_alignment), 1.0, atol=2e-5)


def test_radial_ideal_boundary_is_a_sphere_spread_ratio_one(points):
    xs, ys = points
    keys = jax.random.split(jax.random.key(0), xs.shape[0])
    sp = jax.jit(jax.vmap(lambda k, x, y: A.boundary_spread(k, radial_logit, {"c": C}, x, y, n_starts=4,
                                                             start_angle=0.1)))(keys, xs, ys)
    assert np.all(np.asarray(sp.n_found) == 4)
    np.testing.assert_allclose(np.asarray(sp.ratio), 1.0, atol=2e-3)
    np.testing.assert_allclose(np.asarray(sp.radial), 1.0, atol=2e-5)
    # the starts are 0.1 rad from x, so the gradient at x meets their normals at cos(0.1)
    np.testing.assert_allclose(np.asarray(sp.grad_alignment), math.cos(0.1), atol=1e-4)
    # four directions 0.1 rad from x: spread 1 - |mean| is of order 0.1^2 / 2 (not 0, not 1)
    assert np.all((np.asarray(sp.position_spread) > 1e-4) & (np.asarray(sp.position_spread) < 5e-3))


@pytest.fixture(scope="module")
def quad_net():
    """A quad net with a random rotation and alphas spread across 1 (errors on both spheres)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    alphas = np.linspace(0.45, 1.6, DIM)
    W = np.sqrt(alphas)[:, None] * q.T * 2.0  # f = 0.25 ||W x||^2 - 1 = sum alpha (q^T x)^2 - 1
    return {"W": jnp.asarray(W, jnp.float32), "w": jnp.float32(0.25), "b": jnp.float32(-1.0)}, W, alphas, q


def test_quad_net_boundary_normal_matches_exact_normal(quad_net):
    params, W, alphas, q = quad_net
    xs, ys = sample_batch(jax.random.key(5), 24, DIM)
    on = _normals_fn(quad_logit)(params, xs, ys)
    exact = A.quadratic_exact_boundary(W, 0.25, -1.0, np.asarray(xs), np.asarray(ys))
    ok = np.asarray(on.valid) & exact.reachable
    assert ok.sum() >= 6
    # the attack finds the exact nearest error ...
    np.testing.assert_allclose(np.asarray(on.distance)[ok], exact.distance[ok], rtol=2e-3, atol=1e-4)
    # ... and the model's normal there is the exact normal A x' of the ellipsoid
    cos_exact = np.sum(np.asarray(on.normal)[ok] * exact.normal[ok], axis=1)
    np.testing.assert_allclose(cos_exact, 1.0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(on.radial)[ok], exact.radial[ok], atol=2e-3)
    np.testing.assert_allclose(np.asarray(on.grad_alignment)[ok], exact.grad_alignment[ok], atol=2e-3)
    # the exact normal is far from radial here, so a radial stand-in would fail the grade above
    assert np.mean(exact.radial[ok]) < 0.97
    # and the exact normal is V A V^T y*: check it from the alphas directly
    z = exact.point[ok] @ q
    np.testing.assert_allclose(exact.normal[ok], A._unit_rows((z * alphas) @ q.T), atol=1e-12)


@pytest.mark.slow
def test_cap_normal_is_tangent_to_the_sphere():
    xs, ys = sample_batch(jax.random.key(8), 24, DIM)
    u = jnp.zeros(DIM).at[0].set(1.0)
    params = {"u": u, "t": jnp.float32(0.3)}
    on = _normals_fn(cap_logit)(params, xs, ys)
    ok = np.asarray(on.valid)
    assert ok.sum() >= 6
    np.testing.assert_allclose(np.asarray(on.radial)[ok], 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(jax.vmap(lambda x: A.gradient_alignment(cap_logit, params, x))(xs)), 0.0,
                               atol=1e-5)
    # exact on-sphere distance to the cap's edge {x_1 = 0.3 r} along the meridian: chord of the latitude gap
    x = np.asarray(xs)[ok]
    r = np.linalg.norm(x, axis=1)
    lat = np.arcsin(np.clip(x[:, 0] / r, -1, 1))
    exact = 2 * r * np.sin(np.abs(np.arcsin(0.3) - lat) / 2)  # inner points climb to the cap, outer ones leave it
    np.testing.assert_allclose(np.asarray(on.distance)[ok], exact, rtol=1e-3, atol=1e-4)


def test_integrated_gradients_closed_form():
    # f = sum alpha x^2 - 1: IG_i from b to x is alpha_i (x_i^2 - b_i^2) exactly (linear gradient, midpoint rule)
    alphas = jnp.array([0.3, 1.7, 0.9, 2.2])
    x = jnp.array([0.5, -0.2, 0.7, 0.1])
    b = jnp.array([-0.1, 0.3, 0.2, 0.4])
    ig = A.integrated_gradients(ellipsoid_logit, {"alphas": alphas}, x, b, steps=3)
    np.testing.assert_allclose(np.asarray(ig.attribution), np.asarray(alphas * (x**2 - b**2)), rtol=1e-5, atol=1e-7)
    assert abs(float(ig.completeness_gap)) < 1e-6
    assert float(ig.sign) == (1.0 if float(jnp.sum(alphas * (x**2 - b**2))) >= 0 else -1.0)


# ------------------------------------------------------------------------------------------------ Shapley


def _brute_shapley(v: np.ndarray, m: int) -> np.ndarray:
    """Shapley values from the definition: mean marginal contribution over all m! orders."""
    phi = np.zeros(m)
    orders = list(itertools.permutations(range(m)))
    for order in orders:
        s = 0
        for j in order:
            phi[j] += v[s | (1 << j)] - v[s]
            s |= 1 << j
    return phi / len(orders)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_shapley_matrix_equals_the_permutation_definition(m):
    rng = np.random.default_rng(m)
    v = rng.normal(size=2**m)
    np.testing.assert_allclose(v @ A.shapley_matrix(m), _brute_shapley(v, m), atol=1e-12)
    c = A.shapley_matrix(m)
    efficiency = np.zeros(2**m)
    efficiency[-1], efficiency[0] = 1.0, -1.0
    np.testing.assert_allclose(c.sum(axis=1), efficiency, atol=1e-12)


def test_shapley_of_an_additive_game_and_its_standard_error():
    # v_i(S) = sum_{j in S} a_ij per pair: phi = mean a, SE = std(a)/sqrt(n), exactly
    rng = np.random.default_rng(1)
    m, n = 3, 50
    a = rng.normal(size=(n, m)) + np.array([1.0, -2.0, 0.5])
    s = np.arange(2**m)
    v = np.stack([(((s[:, None] >> np.arange(m)) & 1) * a[i]).sum(1) for i in range(n)])
    res = A.shapley_from_worths(v)
    np.testing.assert_allclose(res.values, a.mean(0), atol=1e-12)
    np.testing.assert_allclose(res.se, a.std(0, ddof=1) / math.sqrt(n), atol=1e-12)
    lo, hi = res.interval()
    assert np.all((lo < res.values) & (res.values < hi)) and res.n == n


def _quad_direct_worths(key, samples, W, w, b, bands, replacement="same_sphere"):
    """The same pairs, worths computed directly in float64 numpy in the net's eigenbasis."""
    dec = quadratic.alphas_from_weights(W, w, b)
    keys = jax.random.split(key, samples)
    x, y, xr = jax.vmap(lambda k: A.sample_pair(k, DIM, 1.3, replacement))(keys)
    x, y, xr = (np.asarray(a, np.float64) for a in (x, y, xr))
    V = dec.rotation
    z, zr = x @ V, xr @ V
    m = A.coalition_masks(bands.band_of, bands.n_bands).astype(np.float64)
    hz = m[None] * z[:, None, :] + (1 - m[None]) * zr[:, None, :]
    if replacement == "same_sphere":
        hz *= (np.linalg.norm(x, axis=1)[:, None, None] / np.linalg.norm(hz, axis=2, keepdims=True))
    logits = w * np.sum(np.asarray(dec.alphas * abs(b) / abs(w)) * hz**2, axis=2) + b
    signed = np.where(y[:, None] == 1, logits, -logits)
    return -np.logaddexp(0.0, -signed)


@pytest.mark.parametrize("replacement", [pytest.param("same_sphere", marks=pytest.mark.slow), "independent"])
def test_quad_net_band_shapley_against_direct_computation(quad_net, replacement):
    params, W, _, _ = quad_net
    dec = quadratic.alphas_from_weights(W, 0.25, -1.0)
    bands = A.eigen_bands(dec.alphas, dec.rotation, 3)
    key = jax.random.key(11)
    res = A.band_shapley(key, quad_logit, params, bands, samples=400, replacement=replacement)
    direct = A.shapley_from_worths(_quad_direct_worths(key, 400, W, 0.25, -1.0, bands, replacement))
    np.testing.assert_allclose(res.worth, direct.worth, atol=2e-4)
    np.testing.assert_allclose(res.values, direct.values, atol=2e-4)
    # efficiency holds exactly (per pair, hence for the means)
    assert abs(res.values.sum() - (res.worth[-1] - res.worth[0])) < 1e-9
    assert res.band_sizes.tolist() == [3, 3, 2]
    if replacement == "independent":
        # the values are not noise: the bands' importances are resolved by their SEs
        assert np.max(np.abs(res.values) / res.se) > 4
    else:
        # renormalised onto the same sphere the hybrid keeps the label (the norm) and is nearly uniform
        # on the sphere: every coalition is worth about the same, and every value is small
        assert np.max(np.abs(res.values)) < 0.05 * abs(res.worth[-1])


def _independent_quad_shapley(alphas, sizes, replacement, n, seed):
    """Band Shapley values of ``f = sum_i alpha_i z_i^2 - 1`` from an independent large sample.

    Works in the eigen-coordinates ``z`` directly (a uniform point on a sphere is uniform in any
    rotated basis, so no rotation, mask or network is involved), with its own numpy generator, the
    worth of every coalition from its definition and the Shapley value from the permutation
    definition (the average over all M! orders of the band's marginal worth). Returns
    ``(values (M,), se (M,), worths (2^M,), worth_se (2^M,))``.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(-np.asarray(alphas))
    a = np.asarray(alphas, np.float64)[order]
    d, m = a.size, len(sizes)
    band_of = np.repeat(np.arange(m), sizes)

    def on_sphere(radius):
        g = rng.normal(size=(n, d))
        return g / np.linalg.norm(g, axis=1, keepdims=True) * np.asarray(radius)[:, None]

    y = rng.integers(0, 2, n)
    z = on_sphere(np.where(y == 1, 1.3, 1.0))
    zr = on_sphere(np.linalg.norm(z, axis=1)) if replacement == "same_sphere" else \
        on_sphere(np.where(rng.integers(0, 2, n) == 1, 1.3, 1.0))
    worths = np.empty((n, 2**m))
    for s in range(2**m):
        keep = ((s >> band_of) & 1).astype(bool)
        h = np.where(keep, z, zr)
        if replacement == "same_sphere":
            h *= np.linalg.norm(z, axis=1, keepdims=True) / np.linalg.norm(h, axis=1, keepdims=True)
        f = h**2 @ a - 1.0
        worths[:, s] = -np.logaddexp(0.0, -np.where(y == 1, f, -f))
    phi = np.zeros((n, m))
    perms = list(itertools.permutations(range(m)))
    for perm in perms:
        before = 0
        for j in perm:
            phi[:, j] += worths[:, before | (1 << j)] - worths[:, before]
            before |= 1 << j
    phi /= len(perms)
    sq = math.sqrt(n)
    return phi.mean(0), phi.std(0, ddof=1) / sq, worths.mean(0), worths.std(0, ddof=1) / sq


@pytest.mark.parametrize("replacement", ["independent", pytest.param("same_sphere", marks=pytest.mark.slow)])
def test_quad_net_band_shapley_against_an_independent_large_sample(quad_net, replacement):
    # the quad net's eigen-bands (3, 3, 2 directions by decreasing alpha): the pipeline's Shapley values
    # (JAX, float32, the net's weights, rotation and masks) against a float64 numpy estimate that uses
    # only the alphas, on independent samples of 10^5 and 4 10^5 pairs
    params, W, alphas, _ = quad_net
    dec = quadratic.alphas_from_weights(W, 0.25, -1.0)
    bands = A.eigen_bands(dec.alphas, dec.rotation, 3)
    n = 100_000
    sw = A.make_shapley_worths(quad_logit, DIM, 1.3, (replacement,), chunk=n // 4)
    worth, _ = sw.worths(params, jax.random.split(jax.random.key(21), n), bands.basis,
                         A.coalition_masks(bands.band_of, 3))[replacement]
    res = A.shapley_from_worths(worth)
    values, se, v_ref, v_se = _independent_quad_shapley(alphas, [3, 3, 2], replacement, 400_000, seed=7)
    tol_v = 4 * np.hypot(res.worth_se, v_se)
    np.testing.assert_array_less(np.abs(res.worth - v_ref), tol_v)
    assert np.all(tol_v < 0.02 * np.abs(v_ref))  # a 2% bias in any worth would fail
    tol = 4 * np.hypot(res.se, se)
    np.testing.assert_array_less(np.abs(res.values - values), tol)
    if replacement == "independent":
        # every band matters and its value is resolved: a 10% bias in any band's value would fail
        assert np.all(tol < 0.1 * np.abs(values)), (values, tol)
        assert values[0] > values[1] > values[2] > 0  # more predictive power in the bands of larger alphas
    else:
        # renormalised onto the sphere: every band's value is within a few 1e-3 nats of 0, in both
        assert np.all(np.abs(values) < 5e-3) and np.all(tol < 2e-3)


def test_shapley_symmetry_for_identical_bands_and_null_band():
    # bands {0,1}, {2,3}, {4,5}: bands 0 and 1 carry the same alphas, so they are symmetric players
    bands = A.coordinate_bands(6, 3)
    params = {"alphas": jnp.array([0.6, 1.4, 0.6, 1.4, 0.9, 0.9])}
    key = jax.random.key(2)
    res = A.band_shapley(key, ellipsoid_logit, params, bands, samples=2000, replacement="independent")
    worths, _ = A.make_shapley_worths(ellipsoid_logit, 6, replacements=("independent",)).worths(
        params, jax.random.split(key, 2000), np.eye(6), A.coalition_masks(bands.band_of, 3))["independent"]
    per_pair = np.asarray(worths, np.float64) @ A.shapley_matrix(3)
    diff = per_pair[:, 0] - per_pair[:, 1]
    assert abs(diff.mean()) < 3.5 * diff.std(ddof=1) / math.sqrt(diff.size)
    assert abs(res.values[0]) > 5 * res.se[0]  # and they are not both null
    # a model that never looks at band 2 (the Bayes rule of the first 4 coordinates): band 2 is a null
    # player, exactly for every pair, while bands 0 and 1 carry all its predictive power
    q = float(theory.bayes_error_k_coordinates(4, 6, 1.3).threshold)
    mask = jnp.array([1.0, 1, 1, 1, 0, 0])

    def blind(p, x):
        return 10.0 * (jnp.sum((mask * x) ** 2) - p["q"])

    res = A.band_shapley(key, blind, {"q": jnp.float32(q)}, bands, samples=2000, replacement="independent")
    lo, hi = res.interval()
    assert lo[2] <= 0.0 <= hi[2] and abs(res.values[2]) < 1e-6
    assert np.all(res.values[:2] > 5 * res.se[:2])


@pytest.mark.slow
def test_null_band_under_same_sphere_replacement():
    # renormalised onto the sphere a band can still be null: a scale-invariant model blind to band 2
    bands = A.coordinate_bands(6, 3)
    key = jax.random.key(2)
    mask = jnp.array([1.0, 1, 1, 1, 0, 0])
    u = jnp.array([1.0, -0.5, 0.3, 0.8, 0.0, 0.0])
    res = A.band_shapley(key, lambda p, x: cap_logit(p, mask * x), {"u": u, "t": jnp.float32(0.1)}, bands,
                         samples=500, replacement="same_sphere")
    lo, hi = res.interval()
    assert lo[2] <= 0.0 <= hi[2] and abs(res.values[2]) < 1e-5 and np.all(res.se[:2] > 1e-3)


def test_band_worth_meets_the_bayes_error_of_k_coordinates():
    # independent replacement: the Bayes classifier of the first k = 4 coordinates errs at exactly the
    # k-coordinate Bayes rate on every coalition that keeps its band, and at 1/2 on every other one
    d, k = 10, 4
    bayes = theory.bayes_error_k_coordinates(k, d, 1.3)
    q_star = float(bayes.threshold)
    bands = A.Bands(np.eye(d), np.array([0] * k + [1] * (d - k), np.int32), 2, ("first 4", "last 6"))

    def k_bayes(p, x):
        return jnp.sum(x[:k] ** 2) - p["q"]

    n = 6000
    res = A.band_shapley(jax.random.key(4), k_bayes, {"q": jnp.float32(q_star)}, bands, samples=n,
                         replacement="independent")
    for s, rate in ((0, 0.5), (1, float(bayes.overall)), (2, 0.5), (3, float(bayes.overall))):
        sd = math.sqrt(rate * (1 - rate) / n)
        assert abs(res.errors[s] / n - rate) < 4 * sd, (s, res.errors[s] / n, rate)
    assert 0.05 < float(bayes.overall) < 0.4  # a real test: neither trivial nor chance


def test_inputs_are_validated():
    with pytest.raises(InputError, match="bands"):
        A.coordinate_bands(20, 11)
    with pytest.raises(InputError, match="replacement"):
        A.band_shapley(jax.random.key(0), ellipsoid_logit, {"alphas": jnp.ones(4)}, A.coordinate_bands(4, 2),
                       replacement="zeros")
    with pytest.raises(InputError, match="worths"):
        A.shapley_from_worths(np.zeros((5, 3)))
