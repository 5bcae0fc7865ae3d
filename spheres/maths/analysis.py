"""Fits and summaries drawn from measured results (float64 numpy; JAX only for keyed resampling).

The 1/sqrt(d) law (docs/science.md section 3): for a cap of measure mu in dimension d,
``d(cap) ~ (c Phi(c) + phi(c)) / sqrt(d)`` with ``c = Phi^{-1}(1 - mu)``. If trained
networks follow the law, ``d(E) sqrt(d) / (c Phi(c) + phi(c))`` does not depend on d, and
the exponent ``beta`` in ``d(E) = A (c Phi(c) + phi(c)) d^beta`` is -1/2.
:func:`dimension_exponent` fits ``beta`` at matched error rate by weighted least squares
on ``log d(E) - log(c Phi(c) + phi(c))`` against ``log d``. That large-d form is not exact at
small d (fitted the same way, the exact cap bound itself gives an exponent away from -1/2), so the
law is tested exactly by :func:`law_slope`: the slope of ``log(d(E) / d_cap(mu(E), d))`` against
``log d``, which is 0 for nets that follow the exact bound's shape, with mu's uncertainty carried
into the fit; and at matched error rates by :func:`interpolate_at_rate`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from spheres.maths import theory


class LinearFit(NamedTuple):
    """``y = intercept + slope * x`` fitted by (weighted) least squares.

    Attributes:
      slope, slope_se: the slope and its standard error.
      intercept, intercept_se: likewise.
      n: number of points used.
      dof: residual degrees of freedom.
    """

    slope: float
    slope_se: float
    intercept: float
    intercept_se: float
    n: int
    dof: int


def linear_fit(x: ArrayLike, y: ArrayLike, sigma: ArrayLike | None = None) -> LinearFit:
    """Weighted least squares with standard errors.

    With ``sigma`` (per-point standard deviations of ``y``) the weights are ``1/sigma^2`` and the
    covariance is scaled by the reduced chi-square when it exceeds 1 (so under-stated point errors
    cannot make the fit look more certain than its scatter). Without it, ordinary least squares.

    Args:
      x, y: shape ``(n,)``, ``n >= 3``, finite.
      sigma: optional shape ``(n,)``, positive.
    Returns:
      :class:`LinearFit`.

    >>> f = linear_fit([0, 1, 2, 3], [1, 3, 5, 7])
    >>> round(f.slope, 12), round(f.intercept, 12)
    (2.0, 1.0)
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"need matching 1-D x and y with at least 3 points, got {x.shape} and {y.shape}")
    w = np.ones_like(x) if sigma is None else 1.0 / np.square(np.asarray(sigma, np.float64))
    design = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    coef = cov @ design.T @ (w * y)
    resid = y - design @ coef
    dof = x.size - 2
    chi2 = float(np.sum(w * resid**2)) / max(dof, 1)
    scale = chi2 if sigma is None else max(chi2, 1.0)
    cov = cov * scale
    return LinearFit(float(coef[1]), float(np.sqrt(cov[1, 1])), float(coef[0]), float(np.sqrt(cov[0, 0])),
                     int(x.size), int(dof))


def cap_profile(mu: ArrayLike) -> np.ndarray:
    """``c Phi(c) + phi(c)`` with ``c = Phi^{-1}(1 - mu)``: the mu-dependence of the large-d cap distance.

    Positive for every mu in (0, 1); about ``c`` for small mu.
    """
    c = stats.norm.isf(np.asarray(mu, np.float64))
    return c * stats.norm.cdf(c) + stats.norm.pdf(c)


def dimension_exponent(dims: ArrayLike, error_rates: ArrayLike, distances: ArrayLike,
                       distance_se: ArrayLike | None = None) -> LinearFit:
    """Fit ``beta`` in ``d(E) = A (c Phi(c) + phi(c)) d^beta`` (matched error rate; -1/2 for caps).

    Args:
      dims: ``(n,)`` dimensions.
      error_rates: ``(n,)`` measured mu(E) in (0, 1).
      distances: ``(n,)`` measured d(E) > 0.
      distance_se: optional ``(n,)`` standard errors of ``distances`` (propagated to the log).
    Returns:
      :class:`LinearFit` whose ``slope`` is ``beta``.
    """
    dims = np.asarray(dims, np.float64)
    dist = np.asarray(distances, np.float64)
    y = np.log(dist) - np.log(cap_profile(error_rates))
    sigma = None if distance_se is None else np.asarray(distance_se, np.float64) / dist
    return linear_fit(np.log(dims), y, sigma)


# ----------------------------------------------------------------------------- the 1/sqrt(d) law, exactly

class LawFit(NamedTuple):
    """The slope of ``log(d(E) / d_cap(mu(E), d))`` against ``log d``: 0 when nets follow the exact law.

    Attributes:
      slope: the weighted least-squares slope.
      slope_se: its standard error: the fit's own (scaled by the scatter when that exceeds the
        points' errors) and, in quadrature, the spread from resampling each mu within its interval.
      fit_se, mu_se: the two parts of ``slope_se``.
      z: ``slope / slope_se``, the test of the law (|z| < 2: consistent at about 95%).
      n: points used; dims: the distinct dimensions among them.
    """

    slope: float
    slope_se: float
    fit_se: float
    mu_se: float
    z: float
    n: int
    dims: tuple[int, ...]


def _log_ratio(dims, mu, dist):
    return np.log(dist) - np.log(theory.mean_distance_to_cap(mu, dims))


def law_slope(key, dims: ArrayLike, mu: ArrayLike, mu_lower: ArrayLike, mu_upper: ArrayLike,
              distances: ArrayLike, distance_se: ArrayLike, n_resamples: int = 200) -> LawFit | None:
    """Test the exact law ``d(E) ~ d_cap(mu(E), d)`` across dimensions (docs/science.md, the 1/sqrt(d) law).

    Unlike a fit of ``d(E)`` against ``d^beta``, this needs no matched error rates and no large-d
    approximation: each point is divided by the exact bound at its OWN error rate and dimension, so
    the slope is 0 whatever the mix of error rates if the nets' distances follow the bound's shape.
    The uncertainty of mu is carried in by refitting with each mu drawn log-normally within its
    95% interval (``sigma = log(upper / lower) / 3.92``; exact rates have ``lower == upper``).

    Args:
      key: a ``jax.random.key`` for the resampling.
      dims, mu, mu_lower, mu_upper, distances, distance_se: ``(n,)``; ``0 < mu < 1``, ``distances > 0``.
      n_resamples: draws of mu.
    Returns:
      :class:`LawFit`, or ``None`` with fewer than 3 points or 2 dimensions.
    """
    dims, mu, lo, hi, dist, se = (np.asarray(a, np.float64) for a in
                                  (dims, mu, mu_lower, mu_upper, distances, distance_se))
    if dims.size < 3 or np.unique(dims).size < 2:
        return None
    sigma_d = np.where(se > 0, se / dist, np.nan)
    sigma_d = np.where(np.isfinite(sigma_d), sigma_d, np.nanmax(sigma_d) if np.any(np.isfinite(sigma_d)) else 1.0)
    x = np.log(dims)
    fit = linear_fit(x, _log_ratio(dims, mu, dist), sigma_d)
    with np.errstate(divide="ignore"):
        s_mu = np.where((lo > 0) & (hi > lo), np.log(hi / np.where(lo > 0, lo, 1.0)) / 3.92, 0.0)
    if np.any(s_mu > 0):
        z = np.asarray(jax.random.normal(key, (n_resamples, mu.size)), np.float64)
        draws = np.clip(mu * np.exp(s_mu * z), 1e-300, 0.999999)
        y = _log_ratio(dims[None, :], draws, dist[None, :])
        slopes = np.array([linear_fit(x, yy, sigma_d).slope for yy in y])
        mu_se = float(np.std(slopes, ddof=1))
    else:
        mu_se = 0.0
    total = float(np.hypot(fit.slope_se, mu_se))
    return LawFit(fit.slope, total, fit.slope_se, mu_se, fit.slope / total if total > 0 else float("inf"), fit.n,
                  tuple(int(d) for d in np.unique(dims)))


class MatchedPoint(NamedTuple):
    """One run's d(E) interpolated to a target error rate (log d(E) linear in log mu between checkpoints)."""

    distance: float
    distance_se: float
    steps: tuple[int, int]


def interpolate_at_rate(target: float, steps: ArrayLike, mu: ArrayLike, distances: ArrayLike,
                        distance_se: ArrayLike) -> MatchedPoint | None:
    """d(E) of one run at the error rate ``target``, from the two checkpoints that bracket it.

    Checkpoints are taken in step order; the LAST consecutive pair whose error rates bracket
    ``target`` is used (training can cross a rate more than once). No extrapolation: ``None`` when
    no pair brackets it. The standard error is the interpolation weights applied to the two SEs
    (independent points).

    >>> p = interpolate_at_rate(1e-2, [10, 20], [1e-1, 1e-3], [0.1, 0.2], [0.0, 0.0])
    >>> round(p.distance, 6), p.steps
    (0.141421, (10, 20))
    """
    order = np.argsort(np.asarray(steps))
    s = np.asarray(steps)[order]
    m, d, e = (np.asarray(a, np.float64)[order] for a in (mu, distances, distance_se))
    for k in range(len(s) - 2, -1, -1):
        a, b = m[k], m[k + 1]
        if not (a > 0 and b > 0 and d[k] > 0 and d[k + 1] > 0) or a == b or not min(a, b) <= target <= max(a, b):
            continue
        w = (np.log(target) - np.log(a)) / (np.log(b) - np.log(a))
        logd = (1 - w) * np.log(d[k]) + w * np.log(d[k + 1])
        dist = float(np.exp(logd))
        rel = np.hypot((1 - w) * e[k] / d[k], w * e[k + 1] / d[k + 1])
        return MatchedPoint(dist, float(dist * rel), (int(s[k]), int(s[k + 1])))
    return None


class MedianInterval(NamedTuple):
    """A median with its distribution-free confidence interval (order statistics), over ``n`` values."""

    median: float
    lower: float
    upper: float
    n: int


def median_interval(values: ArrayLike, confidence: float = 0.95) -> MedianInterval | None:
    """The median of ``values`` and a distribution-free interval for the population median.

    The interval is ``[x_(j), x_(n+1-j)]`` (order statistics, 1-based) with the largest ``j`` such that
    ``P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2``; it covers the median of any continuous
    distribution with probability at least ``confidence``. With too few values for that (n <= 5 at
    95%) it is the whole range. ``None`` for no values.

    >>> m = median_interval(np.arange(1.0, 21.0))
    >>> m.median, m.lower, m.upper, m.n
    (10.5, 6.0, 15.0, 20)
    """
    x = np.sort(np.asarray(values, np.float64).ravel())
    n = x.size
    if n == 0:
        return None
    alpha = (1 - confidence) / 2
    j = int(stats.binom.ppf(alpha, n, 0.5))  # P(B <= j - 1) <= alpha  <=>  j = largest with cdf(j - 1) <= alpha
    while j > 0 and stats.binom.cdf(j - 1, n, 0.5) > alpha:
        j -= 1
    lo, hi = (x[0], x[-1]) if j < 1 else (x[j - 1], x[n - j])
    return MedianInterval(float(np.median(x)), float(lo), float(hi), int(n))
