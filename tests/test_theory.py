"""Exact cap theory (spheres.maths.theory): against Monte Carlo, closed forms, mpmath, limits and invariants.

Monte Carlo tolerances are derived from the sample: a binomial standard error for measures and the
sample standard error for means, with z = 5 (a false alarm about once in 3.5 million; the keys are
fixed, so the test is deterministic).
"""

import functools
import math

import jax
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import special

from spheres.maths import geometry as geo
from spheres.maths import theory as T
from spheres.core.errors import InputError

Z = 5.0
N_MC = 20_000


@functools.lru_cache(maxsize=None)
def _uniform(dim: int) -> np.ndarray:
    """``N_MC`` uniform points on the unit sphere in R^dim (float64 copy), from a fixed key per dim.

    Shared by the tests below (each test's claim holds for any fixed i.i.d. sample).
    """
    keys = jax.random.split(jax.random.fold_in(jax.random.key(2018), dim), N_MC)
    x = np.asarray(jax.vmap(lambda k: geo.sample_sphere(k, dim))(keys), np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # float32 samples: exactly unit in float64
    x.flags.writeable = False
    return x


def _nearest_in_cap(x: np.ndarray, t: float) -> np.ndarray:
    """Nearest point of the cap {y_1 >= t} to each row of x, by vector geometry (not latitudes).

    A point already in the cap is its own nearest point; otherwise the nearest point is on the
    boundary circle, in the plane of e_1 and x: ``t e_1 + sqrt(1 - t^2) x_perp/||x_perp||``.
    """
    perp = x.copy()
    perp[:, 0] = 0.0
    perp /= np.linalg.norm(perp, axis=1, keepdims=True)
    y = math.sqrt(1 - t * t) * perp
    y[:, 0] = t
    return np.where((x[:, 0] >= t)[:, None], x, y)


# ----------------------------------------------------------------------------- Monte Carlo

@pytest.mark.parametrize("dim", [3, 50, 500])
def test_cap_measure_matches_monte_carlo(dim):
    x1 = _uniform(dim)[:, 0]
    for mu in (0.3, 0.05, 0.01, 1e-3):
        t = float(T.cap_threshold(mu, dim))
        hits = int(np.sum(x1 >= t))
        se = math.sqrt(mu * (1 - mu) / N_MC)
        assert abs(hits / N_MC - mu) <= Z * se + 1 / N_MC, (hits, N_MC, mu)
        np.testing.assert_allclose(T.cap_measure(t, dim), mu, rtol=1e-12)


@pytest.mark.parametrize("dim", [3, 50, 500])
@pytest.mark.parametrize("mu", [0.3, 0.01])
def test_mean_distance_matches_monte_carlo(dim, mu):
    x = _uniform(dim)
    t = float(T.cap_threshold(mu, dim))
    y = _nearest_in_cap(x, t)
    chord = np.linalg.norm(x - y, axis=1)
    geodesic = 2 * np.arctan2(chord, np.linalg.norm(x + y, axis=1))
    for sample, metric in ((chord, "chord"), (geodesic, "geodesic")):
        se = sample.std(ddof=1) / math.sqrt(sample.size)
        exact = float(T.mean_distance_to_cap(mu, dim, metric))
        assert abs(sample.mean() - exact) <= Z * se, (metric, sample.mean(), exact, se)


def test_nearest_cap_point_is_nearest():
    """The Monte Carlo reference's nearest point beats every other sampled point of the cap."""
    dim, t = 3, 0.4
    x, pool = _uniform(dim)[:64], _uniform(dim)[64:]
    pool = pool[pool[:, 0] >= t]
    y = _nearest_in_cap(x, t)
    best = np.min(np.linalg.norm(x[:, None, :] - pool[None, :, :], axis=2), axis=1)
    assert np.all(np.linalg.norm(x - y, axis=1) <= best + 1e-12)
    assert np.all(y[:, 0] >= t - 1e-12)


def test_expanded_measure_matches_monte_carlo():
    dim, mu, eps = 50, 0.01, 0.2
    x = _uniform(dim)
    t = float(T.cap_threshold(mu, dim))
    within = np.linalg.norm(x - _nearest_in_cap(x, t), axis=1) <= eps
    exact = float(T.expanded_measure(mu, eps, dim))
    se = math.sqrt(exact * (1 - exact) / N_MC)
    assert abs(within.mean() - exact) <= Z * se, (within.mean(), exact)


def test_bayes_error_k_coordinates_matches_monte_carlo():
    dim, k, n = 50, 10, N_MC
    x, y = geo.sample_batch(jax.random.key(6), n, dim)
    x, y = np.asarray(x, np.float64), np.asarray(y)
    e = T.bayes_error_k_coordinates(k, dim)
    q = np.sum(x[:, :k] ** 2, axis=1)
    pred = (q > e.threshold).astype(int)
    for label, exact in ((0, e.inner), (1, e.outer)):
        sel = y == label
        rate = np.mean(pred[sel] != label)
        se = math.sqrt(exact * (1 - exact) / sel.sum())
        assert abs(rate - exact) <= Z * se + 1 / sel.sum(), (label, rate, exact)


# ----------------------------------------------------------------------------- closed forms

def test_paper_sample_values_at_d500():
    """docs/science.md section 3: d = 500, chord."""
    got = T.mean_distance_to_cap([0.5, 0.1, 1e-2], 500)
    np.testing.assert_allclose(np.round(got, 5), [0.01786, 0.05948, 0.10418])
    assert round(float(T.cap_threshold(1e-2, 500)), 5) == 0.10391


@given(st.floats(1e-6, 1 - 1e-6))
def test_circle_and_archimedes_closed_forms(mu):
    """d = 2: mu = arccos(t)/pi, cap = arc of half-angle pi mu; d = 3: mu = (1 - t)/2."""
    np.testing.assert_allclose(T.cap_threshold(mu, 2), np.cos(np.pi * mu), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(T.cap_threshold(mu, 3), 1 - 2 * mu, rtol=1e-12, atol=1e-15)
    rest = np.pi - np.pi * mu  # angular room outside the arc
    np.testing.assert_allclose(T.mean_distance_to_cap(mu, 2, "geodesic"), rest**2 / (2 * np.pi), rtol=1e-12)
    np.testing.assert_allclose(T.mean_distance_to_cap(mu, 2, "chord"), 4 / np.pi * (1 - np.cos(rest / 2)),
                               rtol=1e-12)


def test_max_mean_distance_closed_forms():
    """Mean chord distance to one point: 4/pi on the circle, 4/3 on S^2, -> sqrt(2) as d grows."""
    np.testing.assert_allclose(T.max_mean_distance([2, 3]), [4 / np.pi, 4 / 3], rtol=1e-13)
    big = T.max_mean_distance([10, 100, 10**4, 10**6])
    assert np.all(np.diff(big) > 0) and np.all(big < np.sqrt(2))
    np.testing.assert_allclose(big[-1], np.sqrt(2), rtol=1e-6)


def test_bayes_threshold_is_optimal_and_extremes():
    dim, k, R = 40, 7, 1.3
    e = T.bayes_error_k_coordinates(k, dim, R)
    a, b = k / 2, (dim - k) / 2

    def err(q):
        return 0.5 * (special.betaincc(a, b, q) + special.betainc(a, b, q / R**2))

    np.testing.assert_allclose(err(e.threshold), e.overall, rtol=1e-12)
    for dq in (1e-3, 1e-2, 0.1):
        assert err(e.threshold + dq) > e.overall and err(e.threshold - dq) > e.overall
    ks = np.arange(1, dim + 1)
    overall = T.bayes_error_k_coordinates(ks, dim, R).overall
    assert np.all(np.diff(overall) <= 1e-15), "seeing more coordinates never hurts"
    assert overall[-1] == 0.0 and 0 < overall[0] < 0.5
    # k >= d - 2: only ||x_k|| > 1 proves "outer"; the outer error is P(q <= 1/R^2)
    e2 = T.bayes_error_k_coordinates(dim - 2, dim, R)
    assert e2.inner == 0.0 and e2.threshold == 1.0
    np.testing.assert_allclose(e2.outer, special.betainc((dim - 2) / 2, 1.0, 1 / R**2), rtol=1e-12)


# ----------------------------------------------------------------------------- mpmath

def _mp_reference(mu: float, dim: int, alpha0: float):
    """Threshold and chord/geodesic d(cap) in 25-digit arithmetic, independent of the float64 code.

    The cap latitude solves mpmath's regularised incomplete beta = mu (Newton from a float start;
    the converged root does not depend on it); d(cap) is tanh-sinh quadrature of the defining
    integral, split around the density's bulk (width 1/sqrt(d)) and the cap edge.
    """
    with mp.workdps(25):
        d = mp.mpf(dim)
        norm = mp.beta((d - 1) / 2, mp.mpf(1) / 2)

        def dens(b):
            return mp.cos(b) ** (d - 2) / norm

        def cap(a):
            tail = mp.betainc((d - 1) / 2, mp.mpf(1) / 2, 0, mp.cos(a) ** 2, regularized=True) / 2
            return tail if a >= 0 else 1 - tail

        a = mp.mpf(alpha0)
        for _ in range(3):
            a += (cap(a) - mu) / dens(a)
        sig = 1 / mp.sqrt(d)
        pts = {-mp.pi / 2, a}
        for c in (mp.mpf(0), a):
            for j in (0, 1, 3, 9, 27):
                for p in (c - j * sig, c + j * sig):
                    if -mp.pi / 2 < p < a:
                        pts.add(p)
        pts = sorted(pts)
        chord = mp.quad(lambda b: 2 * mp.sin((a - b) / 2) * dens(b), pts)
        geod = mp.quad(lambda b: (a - b) * dens(b), pts)
        return float(mp.sin(a)), float(chord), float(geod)


@pytest.mark.parametrize("dim, mu", [(2, 0.3), (3, 1e-12), (7, 0.5), (50, 1e-300), (500, 1e-2),
                                     (10**4, 1e-100), (10**6, 1e-300), (10**6, 0.5)])
def test_matches_mpmath(dim, mu):
    t = float(T.cap_threshold(mu, dim))
    ref_t, ref_chord, ref_geod = _mp_reference(mu, dim, math.asin(t))
    np.testing.assert_allclose(t, ref_t, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(T.mean_distance_to_cap(mu, dim, "chord"), ref_chord, rtol=1e-9)
    np.testing.assert_allclose(T.mean_distance_to_cap(mu, dim, "geodesic"), ref_geod, rtol=1e-9)


@pytest.mark.parametrize("dim, t", [(10**6, 0.5), (500, 0.9), (50, 0.999)])
def test_log_cap_measure_far_below_float64_matches_mpmath(dim, t):
    with mp.workdps(25):
        ref = mp.log(mp.betainc(mp.mpf(dim - 1) / 2, mp.mpf(1) / 2, 0, 1 - mp.mpf(t) ** 2, regularized=True) / 2)
    got = T.log_cap_measure(t, dim)
    np.testing.assert_allclose(got, float(ref), rtol=1e-12)
    back = T.cap_threshold(dim=dim, log_mu=got)
    np.testing.assert_allclose(back, t, rtol=1e-12)


# ----------------------------------------------------------------------------- invariants

log_rates = st.floats(-300, math.log10(0.5))
any_dims = st.sampled_from([2, 3, 7, 50, 500, 10**6])


@given(log_rates, any_dims)
def test_threshold_inverts_cap_measure(log10_mu, dim):
    if dim < 50:
        log10_mu = max(log10_mu, -12.0)
    mu = 10.0**log10_mu
    t = float(T.cap_threshold(mu, dim))
    # Rounding t to float64 moves log mu by up to |d log mu/dt| ulp(t) <= (d-1)/(1-t) ulp(t): near
    # the pole (small d, tiny mu) t = 1 - tiny cannot carry mu, so skip where that is not small.
    cond = (dim - 1) / (1 - t) * np.spacing(abs(t)) if t < 1 else np.inf
    if cond < 1e-6:
        np.testing.assert_allclose(T.log_cap_measure(t, dim), math.log(mu), rtol=1e-12, atol=4 * cond + 1e-13)
    np.testing.assert_allclose(T.cap_threshold(dim=dim, log_mu=math.log(mu)), t, rtol=1e-13, atol=1e-16)
    # the complementary cap: mu -> 1 - mu flips the threshold
    if mu > 1e-3:
        np.testing.assert_allclose(T.cap_threshold(1 - mu, dim), -t, rtol=1e-10, atol=1e-15)


@given(st.floats(-60, -0.35), st.sampled_from([3, 50, 500, 10**5]), st.sampled_from(T.METRICS))
def test_inverse_problem_inverts_forward(log10_mu, dim, metric):
    # In small d a tiny cap's d(cap) is flat in mu (it is nearly the distance to a point), so
    # the inverse is ill-conditioned there: test d = 3 only down to mu = 1e-6.
    mu = 10.0 ** (max(log10_mu, -6.0) if dim < 50 else log10_mu)
    dist = T.mean_distance_to_cap(mu, dim, metric)
    np.testing.assert_allclose(T.log_max_error_rate_for_distance(dist, dim, metric), math.log(mu), rtol=1e-9)


def test_inverse_problem_edges():
    assert T.max_error_rate_for_distance(0.0, 500) == 1.0
    assert T.max_error_rate_for_distance(T.max_mean_distance(500), 500) == 0.0
    assert T.log_max_error_rate_for_distance(1.3, 500) < -900  # far below float64, still finite


def test_monotone_in_mu_and_dim():
    mu = np.logspace(-300, math.log10(0.499), 60)
    dims = np.array([2, 3, 5, 10, 50, 100, 500, 5000, 10**5, 10**6])[:, None]
    for metric in T.METRICS:
        dist = T.mean_distance_to_cap(mu, dims, metric)
        assert np.all(np.diff(dist, axis=1) <= 4 * np.spacing(dist[:, 1:])), "d(cap) falls as the cap grows"
        resolved = mu[1:] >= 1e-12  # below this, small d cannot resolve the cap in float64
        assert np.all(np.diff(dist, axis=1)[:, resolved] < 0)
        assert np.all(dist <= T.max_mean_distance(dims, metric)), "never beyond the distance to a point"
    t = T.cap_threshold(mu, dims)
    assert np.all(np.diff(t, axis=1) <= 0) and np.all(np.diff(t[1:], axis=0) <= 0)
    # In d the optimal distance falls once d is past a small dimension; for tiny mu the cap
    # first approaches a point, whose mean distance rises from 4/pi (d = 2) toward sqrt(2).
    d_grid = np.unique(np.round(np.logspace(2, 6, 40))).astype(int)[:, None]
    dist = T.mean_distance_to_cap(mu, d_grid)
    assert np.all(np.diff(dist, axis=0) < 0)
    moderate = mu[mu >= 1e-12]
    dist = T.mean_distance_to_cap(moderate, np.arange(8, 200)[:, None])
    assert np.all(np.diff(dist, axis=0) < 0)


def test_expanded_measure_limits_and_monotone():
    eps = np.linspace(0, 2, 41)
    for dim, mu in ((3, 0.2), (500, 1e-4), (10**5, 1e-30)):
        m = T.expanded_measure(mu, eps, dim)
        assert np.all(np.diff(m) >= 0)
        np.testing.assert_allclose(m[0], mu, rtol=1e-12)
        assert m[-1] == 1.0
    # d = 3: the eps-expansion of the cap of half-angle theta is the cap of half-angle theta + delta
    mu, e = 0.1, 0.3
    theta = np.arccos(1 - 2 * mu) + 2 * np.arcsin(e / 2)
    np.testing.assert_allclose(T.expanded_measure(mu, e, 3), (1 - np.cos(theta)) / 2, rtol=1e-12)


def test_asymptotic_forms_approach_exact_as_d_grows():
    dims = np.array([10**3, 10**4, 10**5, 10**6])[:, None]
    mu = np.array([0.3, 1e-2, 1e-8, 1e-100])[None, :]
    exact = T.mean_distance_to_cap(mu, dims)
    rel = np.abs(T.asymptotic_distance_refined(mu, dims) / exact - 1)
    ratio = rel[1:] / rel[:-1]
    assert np.all((ratio > 0.05) & (ratio < 0.2)), "refined form converges like 1/d"
    assert np.all(rel[-1] < 1e-4)
    # the paper's plain form converges to the refined one's limit c/(c Phi(c) + phi(c)) (-> 1 as mu -> 0)
    c = -special.ndtri(mu)
    limit = c / (c * special.ndtr(c) + np.exp(-c * c / 2) / np.sqrt(2 * np.pi))
    plain = T.asymptotic_distance(mu, dims[-1]) / exact[-1]
    assert np.all(np.abs(plain / limit[0] - 1) <= 2 * rel[-1])  # the rest is the refined form's O(1/d)
    # expansions: Phi(Phi^-1(mu) + eps sqrt(d)) with eps sqrt(d) fixed
    d = np.array([10**3, 10**5])
    approx = T.asymptotic_expanded_measure(1e-4, 2.0 / np.sqrt(d), d)
    exact_e = T.expanded_measure(1e-4, 2.0 / np.sqrt(d), d)
    err = np.abs(approx / exact_e - 1)
    assert err[1] < err[0] / 10


def test_extreme_inputs_are_finite():
    dims = np.array([2, 3, 4, 10, 50, 500, 10**4, 10**6])[:, None]
    mu = np.array([1e-300, 1e-100, 1e-12, 1e-3, 0.5, 0.9, 1 - 1e-12, 1 - 1e-16])[None, :]
    for metric in T.METRICS:
        dist = T.mean_distance_to_cap(mu, dims, metric)
        assert np.all(np.isfinite(dist)) and np.all(dist >= 0)
    for f in (T.cap_threshold, T.asymptotic_distance, T.asymptotic_distance_refined):
        assert np.all(np.isfinite(f(mu, dims)))
    assert np.all(np.isfinite(T.expanded_measure(mu, 0.1, dims)))
    assert np.all(np.isfinite(T.log_cap_measure(np.array([-1.0, -0.5, 0, 0.5, 0.999999]), dims[:, :1])))
    assert np.isfinite(T.cap_threshold(dim=10**6, log_mu=-1e5))
    assert np.isfinite(T.mean_distance_to_cap(dim=500, log_mu=-1e4))


@pytest.mark.parametrize("call, field", [
    (lambda: T.mean_distance_to_cap(0.0, 500), "mu"),
    (lambda: T.mean_distance_to_cap(1.0, 500), "mu"),
    (lambda: T.mean_distance_to_cap(float("nan"), 500), "mu"),
    (lambda: T.mean_distance_to_cap(0.1, 1), "dim"),
    (lambda: T.mean_distance_to_cap(0.1, 2.5), "dim"),
    (lambda: T.mean_distance_to_cap(0.1, 500, "manhattan"), "metric"),
    (lambda: T.cap_measure(1.5, 5), "t"),
    (lambda: T.expanded_measure(0.1, -1.0, 5), "eps"),
    (lambda: T.max_error_rate_for_distance(-0.1, 5), "distance"),
    (lambda: T.bayes_error_k_coordinates(6, 5), "k"),
    (lambda: T.bayes_error_k_coordinates(2, 5, outer_radius=0.9), "outer_radius"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(InputError) as info:
        call()
    assert info.value.field == field


def test_bound_check_flags_only_points_beyond_their_uncertainty():
    """The project's one bound verdict: the most generous bound in mu's interval, minus 2 SE."""
    dim = 500
    mu = [1e-2, 1e-2, 1e-2, 1e-4, 1e-4]
    lower = [m / 2 for m in mu]
    lower[3] = 0.0  # an interval reaching 0: the bound can be as large as a point's (max_mean_distance)
    cap_lo = [float(T.mean_distance_to_cap(lo, dim)) if lo > 0 else float(T.max_mean_distance(dim)) for lo in lower]
    dist = [cap_lo[0] * 0.99, cap_lo[1] * 1.1, cap_lo[2] * 1.1, cap_lo[3] * 1.1, cap_lo[4] * 1.1]
    se = [0.0, 0.0, 0.06 * cap_lo[2], 0.01 * cap_lo[3], None]
    checks = [T.bound_check(m, lo, d, s, dim) for m, lo, d, s in zip(mu, lower, dist, se)]
    assert [c.consistent for c in checks] == [True, False, True, False, False]
    for m, d, c in zip(mu, dist, checks):
        assert c.optimal_distance == pytest.approx(float(T.mean_distance_to_cap(m, dim)), rel=1e-12)
        assert c.ratio == pytest.approx(d / c.optimal_distance, rel=1e-12)
    assert T.bound_check(0.0, 0.0, 0.1, 0.0, dim) == T.BoundCheck(None, None, None)  # nothing to check at mu = 0
    assert T.bound_check(1e-2, 1e-2, None, None, dim).consistent is None
    # on the outer sphere distances scale by R
    assert T.bound_check(1e-2, 1e-2, 0.1, 0.0, dim, radius=1.3).optimal_distance == pytest.approx(
        1.3 * float(T.mean_distance_to_cap(1e-2, dim)), rel=1e-12)
