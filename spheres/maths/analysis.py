"""Fits and summaries drawn from measured results (float64 numpy; no JAX).

The 1/sqrt(d) law (PAPER.md section 3): for a cap of measure mu in dimension d,
``d(cap) ~ (c Phi(c) + phi(c)) / sqrt(d)`` with ``c = Phi^{-1}(1 - mu)``. If trained
networks follow the law, ``d(E) sqrt(d) / (c Phi(c) + phi(c))`` does not depend on d, and
the exponent ``beta`` in ``d(E) = A (c Phi(c) + phi(c)) d^beta`` is -1/2.
:func:`dimension_exponent` fits ``beta`` at matched error rate by weighted least squares
on ``log d(E) - log(c Phi(c) + phi(c))`` against ``log d``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


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
