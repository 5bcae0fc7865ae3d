"""Attacks graded against exact nearest errors: ellipsoid classifiers (spheres.maths.quadratic) and caps.

Tolerance for "no attack distance below the exact one" (float32 attack vs float64 exact). A
reported point y is misclassified according to the float32 logit; the true (float64) boundary
may lie on the other side of y by the rounding error of that logit, at most about
``log2(d) eps32 (sum_i |alpha_i| y_i^2 + 1)`` for the pairwise-summed ellipsoid logit. Along the
sphere the score changes at rate ``||T grad s||``, so the attack's distance can fall below the
exact one by at most that rounding error divided by ``||T grad s||`` at the exact nearest point,
plus the float32 rounding of the coordinates and of the chord (a few ``eps32 r``). The test
uses 4 times this bound, computed per point.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spheres.measure import attacks
from spheres.maths import quadratic
from spheres.maths.classifiers import cap_logit, ellipsoid_logit, misclassified
from spheres.core.errors import InputError
from spheres.maths.geometry import sample_sphere

EPS32 = float(np.finfo(np.float32).eps)
N_POINTS = 32


def points(key, n, dim, radius=1.0):
    return jax.vmap(lambda k: sample_sphere(k, dim, radius))(jax.random.split(key, n))


def spectrum(name: str, dim: int, seed: int) -> np.ndarray:
    """Alpha spectra of different shapes (all with a non-empty inner error region)."""
    rng = np.random.default_rng(seed)
    k = max(dim // 10, 1)
    if name == "few_above":  # a few alphas above 1, the rest inside [1/R^2, 1]
        a = rng.uniform(0.6, 0.95, dim)
        a[:3] = [1.5, 1.3, 1.2]
    elif name == "broad":  # a broad spread across 1
        a = rng.uniform(0.3, 1.4, dim)
    elif name == "lognormal":
        a = np.exp(rng.normal(-0.2, 0.4, dim))
    elif name == "near_degenerate":  # almost all equal, one just above 1
        a = np.full(dim, 0.9) + 1e-3 * rng.normal(size=dim)
        a[0] = 1.05
    elif name == "slightly_above":  # a handful barely above 1: far, thin error regions
        a = rng.uniform(0.55, 1.02, dim)
    elif name == "one_tiny_above":  # one alpha of 1.001: a tiny cap the gradient path spirals into
        a = rng.uniform(0.55, 0.999, dim)
        a[0] = 1.001
    elif name == "needle":  # one huge alpha: a thin, strongly curved error region
        a = rng.uniform(0.2, 0.99, dim)
        a[0] = 50.0
    elif name == "paper_like":  # many alphas outside [1/R^2, 1] on both sides, and blind directions
        a = rng.uniform(0.3, 1.0, dim)
        a[:k] = rng.uniform(1.0, 1.6, k)
        a[k:2 * k] = 0.0
    else:
        raise ValueError(name)
    return a


def lower_tolerance(alphas, nearest, radius):
    """Per-point allowance for attack < exact (see module docstring), from the exact nearest point."""
    y = np.asarray(nearest, np.float64)
    d = alphas.size
    grad = 2.0 * alphas[None, :] * y
    u = y / np.linalg.norm(y, axis=1, keepdims=True)
    tangent = grad - np.sum(grad * u, axis=1, keepdims=True) * u
    logit_err = np.log2(d) * EPS32 * (np.sum(np.abs(alphas)[None, :] * y * y, axis=1) + 1.0)
    return 4.0 * (logit_err / np.linalg.norm(tangent, axis=1) + 8 * EPS32 * radius)


GRADE_CASES = [
    ("few_above", 50), ("broad", 50), ("near_degenerate", 50), ("needle", 50), ("lognormal", 50),
    ("few_above", 500), ("broad", 500), ("near_degenerate", 500), ("slightly_above", 500),
    ("paper_like", 500), ("lognormal", 500), ("needle", 500), ("one_tiny_above", 500),
    pytest.param("slightly_above", 200, marks=pytest.mark.slow),
    pytest.param("paper_like", 200, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,dim", GRADE_CASES)
def test_on_manifold_attack_matches_exact_nearest_error(name, dim):
    """The graded test: mean attack distance within 2% of the exact d(E); no point below exact."""
    alphas = spectrum(name, dim, seed=dim)
    xs = points(jax.random.key(dim + len(name)), N_POINTS, dim)
    res = attacks.attack(ellipsoid_logit, {"alphas": jnp.asarray(alphas, jnp.float32)}, xs, 0)
    exact, nearest = quadratic.nearest_errors(alphas, np.asarray(xs, np.float64), 1.0)
    assert np.all(np.isfinite(exact))
    found = np.asarray(res.found)
    assert found.all(), f"{np.sum(~found)} points without an error"
    dist = np.asarray(res.distance, np.float64)
    tol = lower_tolerance(alphas, nearest, 1.0)
    assert np.all(dist >= exact - tol), np.min(dist - exact + tol)
    np.testing.assert_allclose(dist.mean(), exact.mean(), rtol=0.02)
    # already-wrong points are exactly the exact solver's zeros
    np.testing.assert_array_equal(np.asarray(res.initially_wrong), exact == 0.0)
    assert np.all(dist[exact == 0.0] == 0.0)
    _check_points(ellipsoid_logit, {"alphas": alphas}, xs, res, label=0, on_manifold=True)


def _check_points(logit_fn, params, xs, res, label, on_manifold):
    """Every found point is misclassified by the model and (on-manifold) on the sphere of its start."""
    pts = np.asarray(res.point)
    found = np.asarray(res.found)
    p32 = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), params)
    logits = jax.vmap(logit_fn, in_axes=(None, 0))(p32, jnp.asarray(pts))
    assert np.all(np.asarray(misclassified(logits, label))[found])
    if on_manifold:
        r0 = np.linalg.norm(np.asarray(xs, np.float64), axis=1)
        r1 = np.linalg.norm(pts.astype(np.float64), axis=1)
        assert np.all(np.abs(r1 - r0)[found] <= 1e-6 * r0[found])
    np.testing.assert_allclose(np.asarray(res.distance)[found],
                               np.linalg.norm(pts - np.asarray(xs), axis=1)[found], rtol=1e-5, atol=1e-7)


def test_outer_sphere_attack_matches_exact():
    """Outer points (label 1, radius R = 1.3): errors are the points called inner."""
    dim, radius = 500, 1.3
    rng = np.random.default_rng(7)
    alphas = rng.uniform(0.6, 1.0, dim)
    alphas[:5] = rng.uniform(0.3, 0.5, 5)  # below 1/R^2: outer errors exist
    xs = points(jax.random.key(70), N_POINTS, dim, radius)
    res = attacks.attack(ellipsoid_logit, {"alphas": jnp.asarray(alphas, jnp.float32)}, xs, 1)
    exact, nearest = quadratic.nearest_errors(alphas, np.asarray(xs, np.float64), radius, label=1)
    dist = np.asarray(res.distance, np.float64)
    assert np.asarray(res.found).all()
    assert np.all(dist >= exact - lower_tolerance(alphas, nearest, radius))
    np.testing.assert_allclose(dist.mean(), exact.mean(), rtol=0.02)
    _check_points(ellipsoid_logit, {"alphas": alphas}, xs, res, label=1, on_manifold=True)


def cap_case(dim, t, seed):
    u = np.asarray(jax.random.normal(jax.random.key(seed), (dim,)), np.float64)
    u /= np.linalg.norm(u)
    return {"u": jnp.asarray(u, jnp.float32), "t": jnp.asarray(t, jnp.float32)}, u


@pytest.mark.parametrize("dim,t,radius", [
    (500, 0.1, 1.0), (500, 0.05, 1.3), (500, -0.02, 1.0),
    pytest.param(50, 0.5, 1.0, marks=pytest.mark.slow),
])
def test_on_manifold_attack_on_cap_is_closed_form(dim, t, radius):
    """Chord distance to the cap {u.x/|x| >= t} on the sphere of radius r: 2 r sin((acos(u.x^) - acos t)/2)."""
    params, u = cap_case(dim, t, seed=dim)
    xs = points(jax.random.key(dim + 1), N_POINTS, dim, radius)
    x64 = np.asarray(xs, np.float64)
    cos = np.clip(x64 @ u / np.linalg.norm(x64, axis=1), -1, 1)
    exact = np.where(cos >= t, 0.0, 2 * radius * np.sin(np.maximum(np.arccos(cos) - np.arccos(t), 0) / 2))
    res = attacks.attack(cap_logit, params, xs, 0)
    dist = np.asarray(res.distance, np.float64)
    assert np.asarray(res.found).all()
    # d/dangle of u.x^ is sin(angle) ~ 1 here: the float32 logit error ~ eps32 maps to ~ eps32 r
    tol = 64 * EPS32 * radius
    assert np.all(dist >= exact - tol)
    # per point: the attack aims for the score value margin r, i.e. margin r / ||T grad s|| inside
    # the cap; here ||T grad s|| = sin(angle to u) / r >= sin(acos 0.1) / r ~ 1 / r
    margin = attacks.AttackSchedule().margin
    np.testing.assert_allclose(dist, exact, rtol=1e-3, atol=tol + 2 * margin * radius**2)
    np.testing.assert_allclose(dist.mean(), exact.mean(), rtol=0.02)
    _check_points(cap_logit, params, xs, res, label=0, on_manifold=True)


def test_off_manifold_attack_on_cap_cone():
    """Off-manifold, cap_logit's error set is the cone {angle(y, u) < acos t}; distance r sin(angle gap)."""
    dim, t = 500, 0.05
    params, u = cap_case(dim, t, seed=3)
    xs = points(jax.random.key(5), N_POINTS, dim)
    x64 = np.asarray(xs, np.float64)
    gap = np.arccos(np.clip(x64 @ u, -1, 1)) - np.arccos(t)
    exact = np.where(gap <= 0, 0.0, np.where(gap < np.pi / 2, np.sin(np.maximum(gap, 0)), 1.0))
    res = attacks.attack(cap_logit, params, xs, 0, on_manifold=False)
    dist = np.asarray(res.distance, np.float64)
    assert np.asarray(res.found).all()
    tol = 64 * EPS32
    assert np.all(dist >= exact - tol)
    np.testing.assert_allclose(dist.mean(), exact.mean(), rtol=0.02)
    _check_points(cap_logit, params, xs, res, label=0, on_manifold=False)
    # leaving the sphere can only help: off-manifold distance <= on-manifold chord distance
    on = attacks.attack(cap_logit, params, xs, 0)
    assert np.all(dist <= np.asarray(on.distance) + tol)


def test_misclassified_points_give_zero_and_failures_are_flagged():
    dim = 50
    xs = points(jax.random.key(1), N_POINTS, dim)
    xs = xs.at[0].set(jnp.zeros(dim).at[0].set(1.0))  # alpha_0 = 1.5 > 1: misclassified
    res = attacks.attack(ellipsoid_logit, {"alphas": jnp.asarray(spectrum("few_above", dim, 0), jnp.float32)}, xs, 0)
    assert bool(res.initially_wrong[0]) and bool(res.found[0]) and float(res.distance[0]) == 0.0
    np.testing.assert_array_equal(np.asarray(res.point[0]), np.asarray(xs[0]))
    assert np.sum(np.asarray(res.initially_wrong)) == 1
    # a model with no error on the inner sphere (every alpha < 1): every point is a failure,
    # reported as such after the whole ascent budget, never as a number
    perfect = {"alphas": jnp.full((dim,), 0.9, jnp.float32)}
    res = attacks.attack(ellipsoid_logit, perfect, xs, 0)
    assert not np.asarray(res.found).any()
    assert np.all(np.isnan(np.asarray(res.distance)))
    np.testing.assert_array_equal(np.asarray(res.ascent_steps), attacks.AttackSchedule().ascent_steps)
    summary = attacks.summarize(res)
    assert summary.points == N_POINTS and summary.failures == N_POINTS and np.isnan(summary.value)
    assert summary.status == "no error found"


def test_summary_excludes_failures():
    res = attacks.AttackResult(distance=jnp.asarray([0.1, jnp.nan, 0.3, 0.0]), point=jnp.zeros((4, 2)),
                               found=jnp.asarray([True, False, True, True]),
                               initially_wrong=jnp.asarray([False, False, False, True]),
                               ascent_steps=jnp.zeros(4, jnp.int32))
    s = attacks.summarize(res)
    assert s.points == 4 and s.failures == 1 and s.status == "ok" and s.method == "attack"
    np.testing.assert_allclose(s.value, 0.4 / 3)
    se = np.std([0.1, 0.3, 0.0], ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(s.se, se)
    # the normal interval at 95%: value -+ 1.959964 se
    np.testing.assert_allclose([s.lower, s.upper], [0.4 / 3 - 1.959964 * se, 0.4 / 3 + 1.959964 * se], rtol=1e-6)


def test_measure_matches_exact_mean_and_se():
    """measure(key, logit_fn, params, cfg): d(E) of the points drawn from the key, graded against the
    exact nearest errors of those points (spheres.maths.quadratic)."""
    dim = 50
    alphas = spectrum("broad", dim, 1)
    cfg = attacks.AttackConfig(dim=dim, points=N_POINTS)
    key = jax.random.key(9)
    s = attacks.measure(key, ellipsoid_logit, {"alphas": jnp.asarray(alphas, jnp.float32)}, cfg)
    xs = attacks.start_points(key, cfg)
    assert xs.shape == (N_POINTS, dim)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(xs), axis=1), 1.0, rtol=1e-6)
    exact = quadratic.mean_nearest_error_distance(alphas, np.asarray(xs, np.float64), 1.0)
    assert s.points == exact.n == N_POINTS and s.failures == 0 and s.status == "ok"
    np.testing.assert_allclose(s.value, exact.mean, rtol=0.02)
    np.testing.assert_allclose(s.se, exact.se, rtol=0.05)
    assert s.lower < exact.mean < s.upper


def test_measure_on_the_outer_sphere():
    """sphere="outer": the points lie on the sphere of radius R and are attacked as class 1."""
    dim, radius = 50, 1.3
    rng = np.random.default_rng(7)
    alphas = rng.uniform(0.6, 1.0, dim)
    alphas[:5] = rng.uniform(0.3, 0.5, 5)  # below 1/R^2: outer errors exist
    cfg = attacks.AttackConfig(dim=dim, points=16, sphere="outer", outer_radius=radius)
    key = jax.random.key(3)
    xs = attacks.start_points(key, cfg)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(xs), axis=1), radius, rtol=1e-6)
    s = attacks.measure(key, ellipsoid_logit, {"alphas": jnp.asarray(alphas, jnp.float32)}, cfg)
    exact = quadratic.mean_nearest_error_distance(alphas, np.asarray(xs, np.float64), radius, label=1)
    assert s.failures == 0
    np.testing.assert_allclose(s.value, exact.mean, rtol=0.02)


def test_ensemble_member_equals_single_run_and_no_recompile():
    """The pipeline's ensemble: ``vmap`` of the per-model program over params, the same points for all.
    Verdicts agree exactly; distances to float32 rounding (a vmapped model batches its matmuls
    differently, so not bit for bit)."""
    dim = 50
    alphas = np.stack([spectrum(n, dim, 2) for n in ("few_above", "broad", "lognormal")])
    xs = points(jax.random.key(4), N_POINTS, dim)
    search = attacks.make_attack(ellipsoid_logit)
    models = jax.jit(jax.vmap(search.program, in_axes=(0, None, None)))
    ens = models({"alphas": jnp.asarray(alphas, jnp.float32)}, *attacks.check_points(xs, 0))
    assert ens.distance.shape == (3, N_POINTS) and ens.point.shape == (3, N_POINTS, dim)
    for i in range(3):
        single = search({"alphas": jnp.asarray(alphas[i], jnp.float32)}, xs, 0)
        np.testing.assert_array_equal(np.asarray(single.found), np.asarray(ens.found[i]))
        np.testing.assert_allclose(np.asarray(single.distance), np.asarray(ens.distance[i]), rtol=1e-5, atol=1e-6)
    assert search.compiled._cache_size() == 1  # three single-model calls, one compilation
    summary = attacks.summarize(ens)
    assert summary.value.shape == (3,) and np.all(summary.points == N_POINTS) and summary.method == "attack"
    for i in range(3):
        one = attacks.summarize(jax.tree.map(lambda v: v[i], ens))
        assert one.value == summary.value[i] and one.failures == summary.failures[i]
        assert one.se == summary.se[i] and one.status == summary.status[i]


@pytest.mark.slow
def test_attack_on_network_models():
    """The per-example logit of a Flax model (batch norm in eval mode): both spheres, on and off."""
    from spheres.nets.config import parse_model_name
    from spheres.nets.models import init_variables, make_logit_fn

    dim, n = 20, 8
    cfg = parse_model_name("relu-w32-d2-bn")
    logit_fn = make_logit_fn(cfg, dim)
    variables = init_variables(jax.random.key(0), cfg, dim)
    xs = jnp.concatenate([points(jax.random.key(0), n, dim), points(jax.random.key(1), n, dim, 1.3)])
    labels = jnp.asarray([0] * n + [1] * n)
    for on_manifold in (True, False):
        res = attacks.attack(logit_fn, variables, xs, labels, on_manifold=on_manifold)
        assert np.asarray(res.found).all()
        logits = jax.vmap(logit_fn, in_axes=(None, 0))(variables, res.point)
        assert np.all(np.asarray(misclassified(logits, labels)))
        if on_manifold:
            r0 = np.linalg.norm(np.asarray(xs, np.float64), axis=1)
            assert np.all(np.abs(np.linalg.norm(np.asarray(res.point, np.float64), axis=1) - r0) <= 1e-6 * r0)
            on_distance = np.asarray(res.distance)
        else:  # leaving the sphere can only help the nearest-error search (up to the margin)
            assert np.mean(np.asarray(res.distance)) <= np.mean(on_distance) * (1 + 1e-3)


def test_bad_input():
    """Schedules and configs are validated on construction, naming the field."""
    for make, field in [(lambda: attacks.AttackSchedule(refine_rate=0.0), "refine_rate"),
                        (lambda: attacks.AttackSchedule(ascent_steps=0), "ascent_steps"),
                        (lambda: attacks.AttackConfig(dim=1), "dim"),
                        (lambda: attacks.AttackConfig(dim=5, points=0), "points"),
                        (lambda: attacks.AttackConfig(dim=5, sphere="middle"), "sphere"),
                        (lambda: attacks.AttackConfig(dim=5, sphere="outer", outer_radius=0.0), "outer_radius")]:
        with pytest.raises(InputError) as info:
            make()
        assert info.value.field == field
    with pytest.raises(InputError, match="points"):
        attacks.attack(ellipsoid_logit, {"alphas": jnp.ones(3)}, jnp.ones(3), 0)


# ----------------------------------------------------------------------------- restarts and the strict bound

def test_restart_points_stay_on_the_sphere_at_the_requested_chord():
    xs = jax.vmap(lambda k: sample_sphere(k, 12, 1.3))(jax.random.split(jax.random.key(3), 20))
    starts = attacks.restart_points(jax.random.key(4), xs, 0.2)
    np.testing.assert_allclose(np.linalg.norm(starts, axis=1), 1.3, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(starts - xs, axis=1), 0.2 * 1.3, rtol=1e-4)


def test_a_start_at_x_changes_nothing():
    params = {"u": jnp.ones(10), "t": jnp.float32(0.6)}
    x = sample_sphere(jax.random.key(5), 10)
    a = attacks.nearest_error(cap_logit, params, x, 0)
    b = attacks.nearest_error(cap_logit, params, x, 0, start=x)
    for f in a._fields:
        np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))


def test_a_restart_finds_what_a_starved_ascent_missed_and_measures_from_x():
    """A cap far from x: one ascent step cannot reach it from x, but can from a start next to it; the
    distance is still measured from x and lands on the closed form (chord to the cap's edge)."""
    d, t = 10, 0.8
    u = jnp.zeros(d).at[0].set(1.0)
    params = {"u": u, "t": jnp.float32(t)}
    x = jnp.zeros(d).at[1].set(1.0)  # 90 degrees from the cap's centre
    starved = attacks.AttackSchedule(ascent_steps=1)  # one step of at most 0.05: the cap is 0.9 away
    assert not bool(attacks.nearest_error(cap_logit, params, x, 0, starved).found)
    start = jnp.zeros(d).at[0].set(0.85).at[1].set(float(np.sqrt(1 - 0.85**2)))  # just inside the cap
    res = attacks.nearest_error(cap_logit, params, x, 0, starved, start=start)
    exact = 2 * np.sin((np.pi / 2 - np.arccos(t)) / 2)
    assert bool(res.found) and float(res.distance) == pytest.approx(exact, rel=2e-3)


def test_strict_upper_bound_counts_failures_at_the_diameter():
    res = attacks.AttackResult(distance=jnp.array([[0.1, jnp.nan, 0.3, 0.2], [jnp.nan] * 4]),
                               point=jnp.zeros((2, 4, 3)), found=jnp.array([[True, False, True, True], [False] * 4]),
                               initially_wrong=jnp.zeros((2, 4), bool), ascent_steps=jnp.zeros((2, 4), jnp.int32))
    upper = attacks.strict_upper_bound(res, 1.3)
    assert upper[0] == pytest.approx((0.1 + 2.6 + 0.3 + 0.2) / 4) and np.isnan(upper[1])
