"""Monte Carlo error rates: exact cap measure, interval coverage, determinism, ensemble contract."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats as sps

from spheres.measure import montecarlo as mc
from spheres.maths import quadratic
from spheres.maths import stats
from spheres.maths.classifiers import cap_logit, ellipsoid_logit
from spheres.core.errors import InputError


def cap_measure(dim: int, t: float) -> float:
    """P(x_1 > t) for x uniform on the sphere in R^dim: (x_1 + 1)/2 ~ Beta((d-1)/2, (d-1)/2)."""
    a = (dim - 1) / 2
    return float(special.betainc(a, a, 1.0 - (t + 1.0) / 2.0))  # = sf at (t+1)/2 by symmetry


DIM = 20
T = 0.35  # mu ~ 0.06 at d = 20
MU = cap_measure(DIM, T)


def cap_params(t=T, dim=DIM, models=None):
    u = jnp.arange(1.0, dim + 1.0)
    p = {"u": u, "t": jnp.asarray(t, jnp.float32)}
    if models is not None:
        p = jax.tree.map(lambda v: jnp.broadcast_to(v, (models,) + v.shape), p)
    return p


def rates(logit_fn, params, key, dim, **kw):
    """One model: ``measure(key, logit_fn, params, MonteCarloConfig(dim, **kw))``."""
    return mc.measure(key, logit_fn, params, mc.MonteCarloConfig(dim=dim, **kw))


def ensemble_rates(logit_fn, params, keys, dim, **kw):
    """M models in one call, as the pipeline batches them: ``vmap`` of the per-model round over
    ``(params, key)``; one key is split into M."""
    m = jax.tree.leaves(params)[0].shape[0]
    keys = jnp.asarray(keys)
    if keys.ndim == 0:
        keys = jax.random.split(keys, m)
    counter = mc.make_monte_carlo(logit_fn, mc.MonteCarloConfig(dim=dim, **kw))
    return counter.count(jax.jit(jax.vmap(counter.program, in_axes=counter.model_axes)), keys, params)


def test_cap_measure_reference():
    assert 0.03 < MU < 0.08
    # the beta formula against direct numerical integration of the density (1 - s^2)^((d-3)/2)
    s = np.linspace(-1, 1, 200_001)
    dens = (1 - s * s) ** ((DIM - 3) / 2)
    mu_num = np.trapezoid(np.where(s > T, dens, 0.0), s) / np.trapezoid(dens, s)
    np.testing.assert_allclose(MU, mu_num, rtol=1e-4)


def _check_coverage(est, p, m, n):
    covered = np.mean((est.lower <= p) & (p <= est.upper))
    k = np.arange(n + 1)
    lo, hi = stats.clopper_pearson(k, n)
    exact_cov = sps.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum()
    assert exact_cov >= 0.95
    assert abs(covered - exact_cov) <= 4 * np.sqrt(exact_cov * (1 - exact_cov) / m) + 1e-12
    assert abs(est.count.sum() - m * n * p) <= 5 * np.sqrt(m * n * p * (1 - p))


def test_intervals_cover_exact_cap_measure_at_nominal_rate():
    """M independent runs (one vmapped call): CP 95% intervals cover the exact mu at their exact rate.

    The inner-sphere error set of cap_logit is the cap {x_1 > t}; the outer one is its complement.
    Coverage of CP at (n, mu) is computed exactly from the binomial pmf; the observed fraction of the
    M runs that cover must agree within 4 binomial SE of M. The pooled count must agree with
    Binomial(M n, mu) within 5 SE.
    """
    m, n = 256, 2000
    res = ensemble_rates(cap_logit, cap_params(models=m), jax.random.key(11), DIM, samples=n,
                         chunk_size=500, chunks_per_call=4)
    for est, p in ((res.inner, MU), (res.outer, 1.0 - MU)):
        assert est.count.shape == (m,) and np.all(est.samples == n)
        _check_coverage(est, p, m, n)
        # runs are independent: the spread of counts matches the binomial variance (chi-square, 99.9%)
        chi2 = np.sum((est.count - n * p) ** 2) / (n * p * (1 - p))
        assert sps.chi2.ppf(0.0005, m) < chi2 < sps.chi2.ppf(0.9995, m)


def test_intervals_cover_exact_quadratic_error_rates():
    """Ellipsoid classifier: M runs with independent keys cover the exact rates (spheres.maths.quadratic)."""
    dim, m, n = 20, 128, 2000
    rng = np.random.default_rng(4)
    alphas = np.concatenate([rng.uniform(0.15, 0.3, dim // 2), rng.uniform(1.3, 1.5, dim - dim // 2)])
    exact = quadratic.error_rates(alphas, 1.3)
    assert 0.05 < exact.inner < 0.5 and 0.05 < exact.outer < 0.5  # both well visible to n = 2000 runs
    params = {"alphas": jnp.broadcast_to(jnp.asarray(alphas, jnp.float32), (m, dim))}
    res = ensemble_rates(ellipsoid_logit, params, jax.random.key(21), dim, samples=n,
                         chunk_size=500, chunks_per_call=4)
    _check_coverage(res.inner, exact.inner, m, n)
    _check_coverage(res.outer, exact.outer, m, n)


def test_ellipsoid_inner_rate_single_positive_alpha_is_beta_tail():
    """alphas = (a, 0, ..., 0): inner error iff a x_1^2 > 1, x_1^2 ~ Beta(1/2, (d-1)/2) (docs/science.md s.3)."""
    dim, a = 10, 9.0
    exact = float(special.betainc(0.5, (dim - 1) / 2, 1.0) - special.betainc(0.5, (dim - 1) / 2, 1.0 / a))
    p = {"alphas": jnp.zeros(dim).at[0].set(a)}
    n = 50_000
    res = rates(ellipsoid_logit, p, jax.random.key(5), dim, samples=n, chunk_size=5000,
                chunks_per_call=4, outer_radius=1.0)
    # CP at 99.99% must contain it (fixed key: deterministic check, failure odds ~1e-4 by design)
    lo, hi = stats.clopper_pearson(res.inner.count, n, 0.9999)
    assert lo <= exact <= hi
    # with outer radius 1 both spheres see the same points (common random numbers): the outer
    # errors (called inner) are exactly the complement of the inner errors (called outer)
    assert int(res.outer.count) == n - int(res.inner.count)


def test_exact_counts_and_chunk_masking():
    """A classifier that calls everything outer: inner count == n, outer count == 0 for any n."""
    def always_outer(params, x):
        return params["b"] + 0.0 * x[0]

    params = {"b": jnp.float32(1.0)}
    counter = mc.make_monte_carlo(always_outer, mc.MonteCarloConfig(dim=3, samples=1, chunk_size=1000,
                                                                    chunks_per_call=3))
    for n in (1, 999, 1000, 12_345):
        res = counter.with_config(dataclasses.replace(counter.config, samples=n))(jax.random.key(0), params)
        assert int(res.inner.count) == n and int(res.outer.count) == 0 and int(res.inner.samples) == n
        assert res.inner.value == 1.0 and res.inner.status == "ok" and res.inner.method == "monte_carlo"
        assert res.inner.lower > 0 and res.inner.upper == 1.0


def test_deterministic_and_prefix_consistent():
    p = cap_params()
    counter = mc.make_monte_carlo(cap_logit, mc.MonteCarloConfig(dim=DIM, samples=1, chunk_size=256,
                                                                 chunks_per_call=2))
    run = lambda key, n: counter.with_config(dataclasses.replace(counter.config, samples=n))(key, p)  # noqa: E731
    a, b = run(jax.random.key(3), 3000), run(jax.random.key(3), 3000)
    assert int(a.inner.count) == int(b.inner.count) and int(a.outer.count) == int(b.outer.count)
    c = run(jax.random.key(4), 3000)
    assert (int(a.inner.count), int(a.outer.count)) != (int(c.inner.count), int(c.outer.count))
    # the run of length n is the first n samples of the documented stream: chunk j of round c draws
    # its directions from fold_in(fold_in(key, c), j). Rebuild the per-sample verdicts independently
    # (float64 on the host) and compare the counts at lengths across chunk and round boundaries:
    # an independent draw per length, a shifted stream or a dropped/doubled chunk fails here.
    chunk, per_round = 256, 512
    key = jax.random.key(3)
    g = np.concatenate([np.asarray(jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, c), j),
                                                     (chunk, DIM), jnp.float32), np.float64)
                        for c in range(3000 // per_round + 1) for j in range(per_round // chunk)])
    u = np.arange(1.0, DIM + 1.0) / np.linalg.norm(np.arange(1.0, DIM + 1.0))
    margin = g @ u / np.linalg.norm(g, axis=1) - float(np.float32(T))
    assert np.min(np.abs(margin[:3000])) > 1e-5  # no verdict that float32 rounding could flip
    inner_errors = np.cumsum(margin > 0)
    for n in (1, 255, 256, 257, 512, 513, 1700, 3000):
        r = a if n == 3000 else run(key, n)
        assert int(r.inner.samples) == n
        assert int(r.inner.count) == int(inner_errors[n - 1]), n
        # the cap classifier normalises x: on the outer sphere the errors are the complement
        assert int(r.outer.count) == n - int(inner_errors[n - 1]), n


def test_ensemble_member_equals_single_run():
    ts = jnp.asarray([0.1, 0.3, 0.5], jnp.float32)
    u = jnp.arange(1.0, DIM + 1.0)
    params = {"u": jnp.broadcast_to(u, (3, DIM)), "t": ts}
    keys = jax.random.split(jax.random.key(8), 3)
    kw = dict(samples=2500, chunk_size=512, chunks_per_call=2)
    ens = ensemble_rates(cap_logit, params, keys, DIM, **kw)
    for i in range(3):
        single = rates(cap_logit, {"u": u, "t": ts[i]}, keys[i], DIM, **kw)
        assert int(single.inner.count) == int(ens.inner.count[i])
        assert int(single.outer.count) == int(ens.outer.count[i])
    assert np.all(np.diff(ens.inner.count) < 0)  # larger t, smaller cap


def test_adaptive_precision_stops_at_target_and_matches_fixed_run():
    p = cap_params()
    seen = []
    kw = dict(chunk_size=500, chunks_per_call=2)
    counter = mc.make_monte_carlo(cap_logit, mc.MonteCarloConfig(dim=DIM, target_relative_precision=0.2,
                                                                 max_samples=10**6, **kw))
    res = counter(jax.random.key(2), p, progress=lambda done, total: seen.append(done))
    rel = stats.relative_precision(res.inner.count, res.inner.samples)
    assert rel <= 0.2
    # it stopped at the first round where the target held: one round fewer would not reach it
    n_in = int(res.inner.samples)
    assert n_in % 1000 == 0 and n_in < 10**6
    fixed_size = lambda n: counter.with_config(  # noqa: E731  (same compiled round)
        dataclasses.replace(counter.config, samples=n, target_relative_precision=None))
    prev = fixed_size(n_in - 1000)(jax.random.key(2), p)
    assert stats.relative_precision(prev.inner.count, prev.inner.samples) > 0.2
    # the adaptive count equals the fixed-size run of the same length (same stream)
    fixed = fixed_size(n_in)(jax.random.key(2), p)
    assert int(fixed.inner.count) == int(res.inner.count)
    assert seen == sorted(seen) and seen[-1] >= n_in


def test_adaptive_ensemble_member_equals_single_adaptive_run():
    """Each (model, sphere) is frozen at its own stopping round: the ensemble contract holds."""
    ts = jnp.asarray([0.2, 0.35, 0.45], jnp.float32)
    u = jnp.arange(1.0, DIM + 1.0)
    keys = jax.random.split(jax.random.key(6), 3)
    kw = dict(target_relative_precision=0.25, max_samples=200_000, chunk_size=500, chunks_per_call=2)
    ens = ensemble_rates(cap_logit, {"u": jnp.broadcast_to(u, (3, DIM)), "t": ts}, keys, DIM, **kw)
    assert len(set(np.asarray(ens.inner.samples).tolist())) > 1  # rarer caps needed more samples
    counter = mc.make_monte_carlo(cap_logit, mc.MonteCarloConfig(dim=DIM, **kw))
    for i in range(3):
        single = counter(keys[i], {"u": u, "t": ts[i]})
        for a, b in ((single.inner, ens.inner), (single.outer, ens.outer)):
            assert int(a.count) == int(b.count[i]) and int(a.samples) == int(b.samples[i])


def test_adaptive_budget_reached_when_no_errors():
    """A perfect classifier never reaches a relative precision: the budget stops the run."""
    p = {"alphas": jnp.full((5,), 0.8)}
    res = rates(ellipsoid_logit, p, jax.random.key(0), 5, target_relative_precision=0.1,
                max_samples=5000, chunk_size=1000, chunks_per_call=2)
    assert int(res.inner.samples) == 5000 and int(res.inner.count) == 0
    np.testing.assert_allclose(res.inner.upper, 1 - 0.025 ** (1 / 5000))


def test_second_call_does_not_recompile():
    """The compiled round is the object's: other params, keys, radii and budgets reuse it."""
    traces = []

    def logit(params, x):
        traces.append(1)
        return cap_logit(params, x)

    counter = mc.make_monte_carlo(logit, mc.MonteCarloConfig(dim=DIM, samples=1000, chunk_size=250,
                                                             chunks_per_call=2))
    counter(jax.random.key(0), cap_params())
    n = len(traces)
    assert n > 0
    counter.with_config(dataclasses.replace(counter.config, outer_radius=1.5))(jax.random.key(1), cap_params(t=0.1))
    counter.with_config(dataclasses.replace(counter.config, samples=3333))(jax.random.key(2), cap_params())
    assert len(traces) == n
    assert counter.compiled._cache_size() == 1
    with pytest.raises(InputError, match="chunk_size"):  # a shape change needs a new object
        counter.with_config(dataclasses.replace(counter.config, chunk_size=500))


@pytest.mark.parametrize("kw,field", [
    (dict(samples=0), "samples"),
    (dict(samples=10, target_relative_precision=0.1), "samples"),
    (dict(), "samples"),
    (dict(target_relative_precision=-1.0), "target_relative_precision"),
    (dict(samples=10, chunk_size=2**16, chunks_per_call=2**16), "chunk_size"),
    (dict(samples=10, outer_radius=0.0), "outer_radius"),
    (dict(samples=10, dim=1), "dim"),
    (dict(samples=10, dtype="int32"), "dtype"),
])
def test_bad_input(kw, field):
    """The config is validated on construction, naming the field."""
    kw = {"dim": DIM, **kw}
    with pytest.raises(InputError) as info:
        mc.MonteCarloConfig(**kw)
    assert info.value.field == field


@pytest.mark.slow
def test_billion_samples_bounded_memory():
    """10^9 samples per sphere in bounded memory; counts exceed int32 when summed over both spheres."""
    def always_outer(params, x):
        return params["b"] + 0.0 * x[0]

    n = 10**9
    res = rates(always_outer, {"b": jnp.float32(1.0)}, jax.random.key(0), 2, samples=n,
                chunk_size=2**20, chunks_per_call=256)
    assert int(res.inner.count) == n and int(res.outer.count) == 0
