"""Statistics: the Clopper-Pearson interval's defining equations, coverage, monotonicity, edge cases."""

import numpy as np
import pytest
from scipy import stats as sps

from spheres.maths import stats
from spheres.core.errors import InputError


@pytest.mark.parametrize("n", [1, 2, 7, 50, 1000])
def test_cp_solves_its_defining_tail_equations(n):
    """Every k in 0..n (so every n, n = 1 included, checks something):

    * 0 < k < n: lower solves P(Bin(n, lower) >= k) = a/2, upper solves P(Bin(n, upper) <= k) = a/2;
    * k = 0: lower = 0 and (1 - upper)^n = a/2, i.e. upper = 1 - (a/2)^(1/n);
    * k = n: upper = 1 and lower^n = a/2, i.e. lower = (a/2)^(1/n).

    At n = 1 the interior is empty and the closed forms are the whole answer: [0, 0.975] for
    k = 0 and [0.025, 1] for k = 1 (n = 0 has no interval: ``test_bad_counts_raise``).
    """
    k = np.arange(n + 1)
    lo, hi = stats.clopper_pearson(k, n, 0.95)
    assert lo.shape == hi.shape == (n + 1,)
    inner = slice(1, n)
    np.testing.assert_allclose(sps.binom.sf(k[inner] - 1, n, lo[inner]), 0.025, rtol=1e-8)
    np.testing.assert_allclose(sps.binom.cdf(k[inner], n, hi[inner]), 0.025, rtol=1e-8)
    assert lo[0] == 0.0 and hi[n] == 1.0
    np.testing.assert_allclose(hi[0], 1 - 0.025 ** (1 / n), rtol=1e-12)
    np.testing.assert_allclose(lo[n], 0.025 ** (1 / n), rtol=1e-12)
    if n == 1:
        np.testing.assert_allclose([lo[0], hi[0], lo[1], hi[1]], [0.0, 0.975, 0.025, 1.0], rtol=1e-12)


def test_cp_edge_cases():
    n = 1000
    lo, hi = stats.clopper_pearson(0, n, 0.95)
    assert lo == 0.0
    # k = 0: upper solves (1 - p)^n = a/2
    np.testing.assert_allclose(hi, 1 - 0.025 ** (1 / n), rtol=1e-12)
    lo, hi = stats.clopper_pearson(n, n, 0.95)
    assert hi == 1.0
    np.testing.assert_allclose(lo, 0.025 ** (1 / n), rtol=1e-12)
    lo, hi = stats.clopper_pearson(1, 1, 0.9)
    assert hi == 1.0 and np.isclose(lo, 0.05)


def test_cp_brackets_estimate_and_is_monotone():
    n = 200
    k = np.arange(n + 1)
    lo, hi = stats.clopper_pearson(k, n)
    assert np.all(lo <= k / n) and np.all(k / n <= hi)
    assert np.all(np.diff(lo) > 0) and np.all(np.diff(hi) > 0)  # strictly increasing in k
    # fixed k / n, more samples -> narrower interval
    widths = [np.subtract(*stats.clopper_pearson(n_ // 10, n_)[::-1]) for n_ in (100, 1000, 10_000)]
    assert widths[0] > widths[1] > widths[2]
    # higher confidence -> wider interval (nested)
    lo90, hi90 = stats.clopper_pearson(k, n, 0.90)
    lo99, hi99 = stats.clopper_pearson(k, n, 0.99)
    assert np.all(lo99 <= lo90) and np.all(hi90 <= hi99)
    assert np.all(lo99[1:] < lo90[1:]) and np.all(hi90[:-1] < hi99[:-1])


@pytest.mark.parametrize("n,p", [(20, 0.05), (100, 0.3), (1000, 0.002), (5000, 0.5)])
def test_cp_exact_coverage_is_at_least_nominal(n, p):
    """Coverage sum_k P(k) 1[p in CP(k)] computed exactly: the interval is conservative."""
    k = np.arange(n + 1)
    lo, hi = stats.clopper_pearson(k, n, 0.95)
    coverage = sps.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum()
    assert coverage >= 0.95 - 1e-12


@pytest.mark.parametrize("seed,n,p", [(0, 50, 0.1), (1, 400, 0.01), (2, 10_000, 0.0005)])
def test_cp_simulated_coverage(seed, n, p):
    """Simulated coverage over M binomial draws agrees with the exact coverage within 5 SE."""
    rng = np.random.default_rng(seed)
    m = 20_000
    k_sim = rng.binomial(n, p, size=m)
    lo, hi = stats.clopper_pearson(k_sim, n, 0.95)
    covered = np.mean((lo <= p) & (p <= hi))
    k = np.arange(n + 1)
    klo, khi = stats.clopper_pearson(k, n, 0.95)
    exact = sps.binom.pmf(k, n, p)[(klo <= p) & (p <= khi)].sum()
    se = np.sqrt(exact * (1 - exact) / m)
    assert abs(covered - exact) <= 5 * se + 1e-12
    assert covered >= 0.95 - 5 * np.sqrt(0.95 * 0.05 / m)


def test_rate_estimate_fields_and_arrays():
    est = stats.rate_estimate(np.array([0, 3, 10]), 10, method="exact")
    assert est.method == "exact" and est.confidence == 0.95
    np.testing.assert_array_equal(est.count, [0, 3, 10])
    np.testing.assert_array_equal(est.samples, [10, 10, 10])
    np.testing.assert_allclose(est.value, [0.0, 0.3, 1.0])
    assert est.count.dtype == np.int64 and est.status == "ok"


def test_relative_precision():
    assert np.isinf(stats.relative_precision(0, 100))
    # many events: approaches z / sqrt(k) (normal limit, 1 - p ~ 1)
    k = 40_000
    rel = stats.relative_precision(k, 10**9)
    np.testing.assert_allclose(rel, 1.959964 / np.sqrt(k), rtol=1e-2)
    # decreasing in k at fixed rate
    r = [stats.relative_precision(10 * m, 1000 * m) for m in (1, 10, 100)]
    assert r[0] > r[1] > r[2]
    n = stats.samples_for_relative_precision(1e-3, 0.1)
    rel_n = stats.relative_precision(round(n * 1e-3), n)
    assert 0.09 < rel_n < 0.11


def test_counts_beyond_int32():
    """Counts are integers of any size (10^10 samples), never float32."""
    lo, hi = stats.clopper_pearson(np.int64(12), np.int64(10**10))
    assert 0 < lo < 1.2e-9 < hi


def test_mean_and_se():
    rng = np.random.default_rng(3)
    v = rng.normal(2.0, 0.5, size=400)
    m = stats.mean_and_se(v)
    assert m.n == 400
    np.testing.assert_allclose(m.mean, v.mean())
    np.testing.assert_allclose(m.se, v.std(ddof=1) / 20)
    one = stats.mean_and_se([1.5])
    assert one.mean == 1.5 and np.isnan(one.se)
    assert stats.mean_and_se([]).n == 0


@pytest.mark.parametrize("k,n", [(-1, 10), (11, 10), (0, 0), (1.5, 10)])
def test_bad_counts_raise(k, n):
    with pytest.raises(InputError):
        stats.clopper_pearson(k, n)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="confidence"):
        stats.clopper_pearson(1, 10, 1.0)
    with pytest.raises(InputError, match="values"):
        stats.mean_and_se([1.0, np.nan])
