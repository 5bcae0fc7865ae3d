"""The quadratic network, solved exactly (docs/science.md section 5).

The network ``f(x) = w * sum_j (W x)_j^2 + b`` (``W`` of shape ``(h, d)``, scalars ``w, b``;
"outer" iff ``f > 0``) is, after the rotation ``z = V^T x`` from the SVD ``W = U S V^T``, an
*ellipsoid classifier*: ``f = w sum_i s_i^2 z_i^2 + b``. Everything about it is a function of
the numbers ``alpha_i`` (one per direction, zeros for the ``d - h`` directions ``W`` does not
see) and of an :class:`Orientation` saying which side of the ellipsoid is called "outer":

==================  =====================================  ===========================
orientation         rule ("outer iff ...")                  sign case of ``(w, b)``
==================  =====================================  ===========================
outer_if_greater    ``sum_i alpha_i z_i^2 > 1``              ``w > 0 > b``
outer_if_less       ``sum_i alpha_i z_i^2 < 1``              ``w < 0 < b``
outer_if_nonzero    ``sum_i alpha_i z_i^2 > 0``              ``w > 0 = b``
always_outer        everywhere                               ``w >= 0, b > 0``
always_inner        nowhere                                  ``w <= 0, b <= 0``
==================  =====================================  ===========================

with ``alpha_i = |w| s_i^2 / |b|`` (``b != 0``) or ``w s_i^2`` (``b = 0``; only which alphas are
non-zero matters then). ``always_outer`` gets the whole inner sphere wrong (inner error 1,
outer error 0); ``always_inner`` the whole outer sphere. ``outer_if_nonzero`` calls every
point outside the null space of ``W`` "outer": inner error 1, outer error 0 as measures, but
an outer point still has a nearest error (in the null space) when ``rank W < d``.

On the sphere of radius ``r`` every rule becomes "outer iff ``sum_i k_i z_i^2 > 0``" with
``k = alpha - 1/r^2`` (greater), ``1/r^2 - alpha`` (less), ``alpha`` (nonzero), ``+1`` (always
outer) or ``-1`` (always inner): :func:`sphere_coefficients`. From there:

* **Error rates** (:func:`error_rates`): the sphere is scale-free, so with ``g ~ N(0, I_d)``
  the inner error is ``P(sum_i k_i(1) g_i^2 > 0)`` and the outer error
  ``P(sum_i k_i(R) g_i^2 <= 0)``: tails of a weighted sum of chi-square(1) variables with
  weights of both signs. They are computed by integrating the inversion formula along the
  vertical line through the saddlepoint (saddlepoint *integration*, Helstrom 1978; not the
  saddlepoint *approximation*), in log space: numerically exact (relative error ~1e-10)
  from probabilities near 1 down to far below 1e-300, where the value is reported as 0 and
  its log10 stays finite. The paper's normal (CLT) estimate, its Eq. 3, is
  :func:`clt_error_rates`, labelled as the paper's estimate.
* **Nearest errors** (:func:`nearest_error`): the nearest point of the sphere on the wrong side
  of the boundary solves a secular equation (derivation in :func:`nearest_error`);
  :func:`mean_nearest_error_distance` averages it over uniform points: the exact ``d(E)``.

All numerics are numpy/scipy float64.

>>> import math, numpy as np
>>> alphas = np.array([2.0, 0.5, 0.5])
>>> count_outside(alphas, 1.3)           # 2.0 > 1 and 0.5 < 1/1.69
3
>>> d, y = nearest_error(alphas, np.array([0.0, 1.0, 0.0]), 1.0)
>>> round(float(d), 6), round(float(np.sum(alphas * y**2)), 12)   # y lies on the boundary
(0.605811, 1.0)
>>> round(2 * math.sin(math.asin(math.sqrt(1 / 3)) / 2), 6)   # by hand: 2 sin^2 + cos^2 / 2 = 1
0.605811
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import jax
import numpy as np
from scipy import integrate, optimize, special

from spheres.core.constants import OUTER_RADIUS
from spheres.maths.geometry import sample_sphere

__all__ = [
    "Orientation", "QuadraticDecomposition", "ExactRates", "ExactDistance",
    "alphas_from_weights", "count_outside", "sphere_coefficients",
    "prob_positive", "log_prob_positive", "error_rates", "clt_error_rates",
    "nearest_error", "nearest_errors", "mean_nearest_error_distance", "wrong_region_empty",
]


class Orientation(str, enum.Enum):
    """Which side of the ellipsoid ``sum_i alpha_i z_i^2 = 1`` is called "outer" (module table)."""

    OUTER_IF_GREATER = "outer_if_greater"
    OUTER_IF_LESS = "outer_if_less"
    OUTER_IF_NONZERO = "outer_if_nonzero"
    ALWAYS_OUTER = "always_outer"
    ALWAYS_INNER = "always_inner"


GREATER = Orientation.OUTER_IF_GREATER


class QuadraticDecomposition(NamedTuple):
    """A quadratic network in its principal axes.

    Fields:
      alphas: float64 ``(d,)``; ``alpha_i`` for direction ``V[:, i]`` (zeros where ``W`` is blind).
      rotation: float64 ``(d, d)`` orthogonal ``V``; the rotated coordinates are ``z = V^T x``.
      orientation: :class:`Orientation` from the signs of ``w`` and ``b``.
    """

    alphas: np.ndarray
    rotation: np.ndarray
    orientation: Orientation


class ExactRates(NamedTuple):
    """Exact inner- and outer-sphere error rates (float64 scalars) and their base-10 logs.

    The exact counterpart of a measured :class:`spheres.maths.stats.SphereRates`: the same
    ``inner``/``outer`` names, plain numbers with no sampling error.

    ``log10_*`` is finite whenever the rate is positive, even when the rate itself underflows
    to 0.0 (below ~1e-308); it is ``-inf`` only for a rate that is exactly zero.
    """

    inner: float
    outer: float
    log10_inner: float
    log10_outer: float


class ExactDistance(NamedTuple):
    """Mean EXACT nearest-error distance over sampled points (the only uncertainty is the sampling of
    points; compare :class:`spheres.maths.stats.DistanceEstimate` of an attack).

    Fields:
      mean: mean distance over the ``n`` points (``inf`` if some point has no error on its sphere).
      se: standard error of the mean (sample std / sqrt(n); ``nan`` for ``n < 2`` or infinite mean).
      n: number of points.
      n_unreachable: points whose sphere holds no error at all (distance ``inf``).
      n_misclassified: points already misclassified (distance 0).
    """

    mean: float
    se: float
    n: int
    n_unreachable: int
    n_misclassified: int


# ----------------------------------------------------------------------------------------------
# From weights to alphas


def alphas_from_weights(W, w: float, b: float, dim: int | None = None) -> QuadraticDecomposition:
    """Principal axes of ``f(x) = w * sum_j (W x)_j^2 + b`` (docs/science.md section 5).

    ``W = U S V^T`` (full SVD), ``z = V^T x``: ``f = w sum_i s_i^2 z_i^2 + b``. The sign case of
    ``(w, b)`` gives the orientation (module table); ``alpha_i = |w| s_i^2 / |b|`` for ``b != 0``
    and ``|w| s_i^2`` for ``b = 0``, with ``s_i = 0`` for the ``d - h`` directions beyond the rank
    of a wide ``W`` (``h < d``).

    Args:
      W: hidden weights, shape ``(h, d)``.
      w: output weight (scalar).
      b: output bias (scalar).
      dim: ``d``, checked against ``W.shape[1]`` when given.
    Returns:
      :class:`QuadraticDecomposition` with ``alphas`` ``(d,)`` and ``rotation`` ``(d, d)``.

    >>> dec = alphas_from_weights(np.array([[2.0, 0.0, 0.0]]), 1.0, -2.0, dim=3)
    >>> dec.alphas.tolist(), dec.orientation.value
    ([2.0, 0.0, 0.0], 'outer_if_greater')
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (h, d), got {W.shape}")
    h, d = W.shape
    if dim is not None and dim != d:
        raise ValueError(f"W has {d} columns but dim={dim}")
    w, b = float(w), float(b)
    if not (np.all(np.isfinite(W)) and math.isfinite(w) and math.isfinite(b)):
        raise ValueError("W, w and b must be finite")
    _, s, vt = np.linalg.svd(W, full_matrices=True)
    s2 = np.zeros(d)
    s2[: s.size] = s * s
    scale = abs(w) / abs(b) if b != 0 else abs(w)
    alphas = scale * s2
    if w > 0 and b < 0:
        orientation = Orientation.OUTER_IF_GREATER
    elif w < 0 and b > 0:
        orientation = Orientation.OUTER_IF_LESS
    elif w > 0 and b == 0:
        orientation = Orientation.OUTER_IF_NONZERO
    elif b > 0:  # w >= 0: f >= b > 0 everywhere
        orientation = Orientation.ALWAYS_OUTER
    else:  # w <= 0 and b <= 0 (including w = 0, b = 0): f <= 0 everywhere
        orientation = Orientation.ALWAYS_INNER
    return QuadraticDecomposition(alphas=alphas, rotation=vt.T.copy(), orientation=orientation)


def count_outside(alphas, radius: float = OUTER_RADIUS) -> int:
    """Number of ``alpha_i`` outside ``[1/R^2, 1]`` (the ellipsoid is perfect iff this is 0).

    For "outer iff sum alpha_i z_i^2 > 1" the classifier is right on both spheres iff every
    ``alpha_i`` lies in ``[1/R^2, 1]`` (docs/science.md section 5).
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    return int(np.count_nonzero((alphas < 1.0 / radius**2) | (alphas > 1.0)))


def sphere_coefficients(alphas, radius: float, orientation: Orientation | str = GREATER) -> np.ndarray:
    """Coefficients ``k`` with "outer iff ``sum_i k_i z_i^2 > 0``" on the sphere ``||z|| = radius``.

    Uses ``sum_i z_i^2 = r^2``: ``sum alpha z^2 > 1  <=>  sum (alpha - 1/r^2) z^2 > 0``.

    Args:
      alphas: shape ``(d,)``.
      radius: sphere radius ``r > 0``.
      orientation: see :class:`Orientation`.
    Returns:
      float64 ``(d,)``.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    orientation = Orientation(orientation)
    inv = 1.0 / float(radius) ** 2
    if orientation is Orientation.OUTER_IF_GREATER:
        return alphas - inv
    if orientation is Orientation.OUTER_IF_LESS:
        return inv - alphas
    if orientation is Orientation.OUTER_IF_NONZERO:
        return alphas.copy()
    if orientation is Orientation.ALWAYS_OUTER:
        return np.ones_like(alphas)
    return -np.ones_like(alphas)


def _wrong_coefficients(alphas, radius, orientation, label) -> np.ndarray:
    """``c`` such that the closure of the wrong region on the sphere is ``{sum_i c_i y_i^2 >= 0}``.

    Label 0 (inner point): wrong = predicted outer = ``{k y^2 > 0}``, ``c = k``.
    Label 1 (outer point): wrong = predicted inner = ``{k y^2 <= 0}``, ``c = -k``.
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 (inner) or 1 (outer), got {label}")
    k = sphere_coefficients(alphas, radius, orientation)
    return k if label == 0 else -k


# ----------------------------------------------------------------------------------------------
# Exact error rates: tails of weighted chi-square sums

_LN10 = math.log(10.0)


def _saddle_log_tail(lam: np.ndarray) -> float:
    """``log P(sum_i lam_i g_i^2 > 0)`` for non-zero ``lam`` of both signs, by saddlepoint integration.

    Inversion (Gil-Pelaez/Levy) with the contour moved to the vertical line ``Re s = c`` through
    the minimum of ``M(s)/s`` on ``(0, 1/(2 lam_max))``, ``M(s) = prod_i (1 - 2 lam_i s)^(-1/2)``:

        P(Q > 0) = (1/pi) int_0^inf Re[ M(c + it) / (c + it) ] dt.

    On this line ``|M(c + it)/(c + it)|`` is largest at ``t = 0`` and falls monotonically, and its
    phase is stationary there, so the integral has no cancellation and keeps its *relative*
    accuracy however small ``P`` is (Helstrom 1978, "Approximate evaluation of detection
    probabilities in radar and optical communications"). ``M(c)/c`` is factored out in log
    space. The integrand after factoring, with ``D_i = 1 - 2 lam_i c``, ``tau_i = 2 lam_i / D_i``:

        exp(-1/4 sum log1p(tau^2 t^2) - 1/2 log1p(t^2/c^2)) * cos(1/2 sum atan(tau t) - atan(t/c)).
    """
    lam = lam / (2.0 * np.max(lam))  # P is scale-free; now lam_max = 1/2, the pole is at s = 1, c < 1
    if not np.all(np.isfinite(lam)):
        raise ValueError("weights spanning more than ~300 orders of magnitude are not supported")
    lmax = 0.5
    rho = lam / lmax
    one_minus_rho = 1.0 - rho  # exactly 0 for the top weight
    # Parametrise by y = 1 - 2 lmax s in (0, 1) (distance to the pole): then D_i = (1 - rho_i) + rho_i y
    # keeps its relative accuracy when the saddle sits close to the pole (deep tails).

    def dlog_integrand(log_y: float) -> float:  # d/ds [K(s) - log s], decreasing in y
        y = math.exp(log_y)
        s = (1.0 - y) / (2.0 * lmax)
        return float(np.sum(lam / (one_minus_rho + rho * y))) - 1.0 / s

    hi = math.log1p(-1e-15)
    lo = -50.0
    while dlog_integrand(lo) <= 0.0:
        lo *= 2.0
        if lo < -1e4:  # pragma: no cover - beyond any float64 spectrum
            raise FloatingPointError("saddlepoint not bracketed")
    log_y = optimize.brentq(dlog_integrand, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    y = math.exp(log_y)
    c = (1.0 - y) / (2.0 * lmax)
    D = one_minus_rho + rho * y
    tau = 2.0 * lam / D
    log_prefactor = -0.5 * float(np.sum(np.log(D))) - math.log(c)
    sigma = 1.0 / math.sqrt(0.5 * float(np.sum(tau * tau)) + 1.0 / c**2)
    ts, tc = tau * sigma, sigma / c

    def integrand(u: float) -> float:
        re = -0.25 * float(np.sum(np.log1p((ts * u) ** 2))) - 0.5 * math.log1p((tc * u) ** 2)
        im = 0.5 * float(np.sum(np.arctan(ts * u))) - math.atan(tc * u)
        return math.exp(re) * math.cos(im)

    # Most of the mass is within a few units of u = 0 (a Gaussian of unit width there). Beyond,
    # the integrand is algebraic, bending at every scale u = 1/ts_i (a weight 1e-12 times the
    # largest only starts to damp it at u ~ 1e12): integrate the tail in x = log u, where those
    # bends are smooth steps, with the scales as break points, out to where the envelope
    # u |f(u)| (decaying at least like 1/u past every scale) is negligible.
    head, _ = integrate.quad(integrand, 0.0, 8.0, epsabs=0.0, epsrel=1e-12, limit=200)

    def envelope(log_u: float) -> float:
        u = math.exp(log_u)
        return u * math.exp(-0.25 * float(np.sum(np.log1p((ts * u) ** 2))) - 0.5 * math.log1p((tc * u) ** 2))

    x_lo = math.log(8.0)
    x_hi = x_lo + 10.0
    while envelope(x_hi) > 1e-18 * abs(head) and x_hi < 300.0:  # u <= e^300: (ts u)^2 stays finite
        x_hi += 10.0
    scales = -np.log(np.abs(ts))
    breaks = np.unique(np.quantile(scales, np.linspace(0.0, 1.0, 9)))
    breaks = breaks[(breaks > x_lo) & (breaks < x_hi)]
    tail, _ = integrate.quad(lambda x: math.exp(x) * integrand(math.exp(x)), x_lo, x_hi,
                             points=breaks if breaks.size else None, epsabs=1e-15 * abs(head), epsrel=1e-10,
                             limit=500)
    total = head + tail
    if not total > 0.0:  # pragma: no cover - would mean a quadrature failure
        raise FloatingPointError(f"saddlepoint integral is {total} (not positive)")
    return log_prefactor + math.log(sigma / math.pi) + math.log(total)


def log_prob_positive(lam) -> float:
    """Natural log of ``P(sum_i lam_i g_i^2 > 0)``, ``g ~ N(0, I_d)``, exactly (see module docstring).

    Args:
      lam: weights, shape ``(d,)``, any signs (zeros are ignored).
    Returns:
      ``log P``: ``-inf`` when no weight is positive (``P = 0``), ``0`` when none is negative and
      one is positive (``P = 1``); otherwise finite, even where ``P`` underflows float64.

    >>> round(math.exp(log_prob_positive([1.0, -1.0])), 12)   # symmetric: 1/2
    0.5
    """
    lam = np.asarray(lam, dtype=np.float64)
    if not np.all(np.isfinite(lam)):
        raise ValueError("weights must be finite")
    lam = lam[lam != 0.0]
    if not np.any(lam > 0):
        return -math.inf
    if not np.any(lam < 0):
        return 0.0
    return min(0.0, _saddle_log_tail(lam))


def prob_positive(lam) -> float:
    """``P(sum_i lam_i g_i^2 > 0)`` (float64; 0.0 below the smallest subnormal). See :func:`log_prob_positive`."""
    return math.exp(log_prob_positive(lam))


def _log_prob_nonpositive(lam) -> float:
    """``log P(sum_i lam_i g_i^2 <= 0)``: the mirror image, plus the atom at 0 when every weight is 0."""
    lam = np.asarray(lam, dtype=np.float64)
    if np.all(lam == 0.0):
        return 0.0
    return log_prob_positive(-lam)


def error_rates(alphas, radius: float = OUTER_RADIUS, orientation: Orientation | str = GREATER) -> ExactRates:
    """Exact inner- and outer-sphere error rates of the ellipsoid classifier.

    Inner: ``P(sum_i k_i(1) g_i^2 > 0)`` (called outer); outer: ``P(sum_i k_i(R) g_i^2 <= 0)``
    (called inner), ``k`` from :func:`sphere_coefficients`. For "outer iff sum alpha z^2 > 1"
    these are ``P(sum (alpha_i - 1) g_i^2 > 0)`` and ``P(sum (R^2 alpha_i - 1) g_i^2 < 0)``
    (docs/science.md section 5).

    Args:
      alphas: shape ``(d,)``.
      radius: outer radius ``R > 1``.
      orientation: see :class:`Orientation`.
    Returns:
      :class:`ExactRates`.
    """
    log_in = log_prob_positive(sphere_coefficients(alphas, 1.0, orientation))
    log_out = _log_prob_nonpositive(sphere_coefficients(alphas, radius, orientation))
    return ExactRates(math.exp(log_in), math.exp(log_out), log_in / _LN10, log_out / _LN10)


def clt_error_rates(alphas, radius: float = OUTER_RADIUS, orientation: Orientation | str = GREATER) -> ExactRates:
    """The PAPER'S ESTIMATE (its Eq. 3, a normal/CLT approximation), not the exact rates.

    ``P(sum_i l_i g_i^2 > 0) ~ Phi(sum_i l_i / sqrt(2 sum_i l_i^2))`` (mean over standard
    deviation of the sum): inner ``Phi(sum(alpha_i - 1) / sqrt(2 sum(alpha_i - 1)^2))``, outer
    ``Phi(-sum(R^2 alpha_i - 1) / sqrt(2 sum(R^2 alpha_i - 1)^2))`` (docs/science.md section 5). The same
    formula is applied to the sphere coefficients of ``outer_if_less``; for the classifiers that
    are constant on the spheres (``always_*``, and ``outer_if_nonzero`` up to a null set), whose
    rates are exactly 0 or 1, the exact values are returned.
    Its error has no fixed sign: it depends on the skew of the spectrum of ``l_i``. A sum of
    weighted chi-square(1) terms is right-skewed where the large weights are positive, so a
    normal tail is too LIGHT there (the estimate too low) and too heavy on the other side; which
    side the error set lies on, and how few large weights dominate, decide the sign and the size.
    Measured against :func:`error_rates` on trained nets of this project: 2.6 times too low on the
    inner sphere for the quadratic experiment's net (3.5e-4 against 8.9e-4), 2.8 times too high
    for an online ``quad-w200`` at d = 100 (1.1e-3 against 4.1e-4), and 10-200 times too high on the
    outer sphere in the far tails. Report it as the paper's estimate, never as the rate.
    """
    orientation = Orientation(orientation)
    if orientation in (Orientation.ALWAYS_OUTER, Orientation.ALWAYS_INNER, Orientation.OUTER_IF_NONZERO):
        return error_rates(alphas, radius, orientation)

    def log_phi_ratio(lam: np.ndarray, sign: float) -> float:
        norm = math.sqrt(2.0 * float(np.sum(lam * lam)))
        if norm == 0.0:
            return 0.0 if sign < 0 else -math.inf  # sum is identically 0: "<= 0" holds, "> 0" not
        return float(special.log_ndtr(sign * float(np.sum(lam)) / norm))

    log_in = log_phi_ratio(sphere_coefficients(alphas, 1.0, orientation), 1.0)
    log_out = log_phi_ratio(sphere_coefficients(alphas, radius, orientation), -1.0)
    return ExactRates(math.exp(log_in), math.exp(log_out), log_in / _LN10, log_out / _LN10)


# ----------------------------------------------------------------------------------------------
# Nearest error on the sphere


def wrong_region_empty(alphas, radius: float, orientation: Orientation | str = GREATER, label: int = 0) -> bool:
    """True when no point of the sphere of ``radius`` is misclassified for points labelled ``label``.

    E.g. "outer iff sum alpha z^2 > 1" on the inner sphere: empty iff ``max_i alpha_i r^2 <= 1``.
    """
    c = _wrong_coefficients(alphas, radius, orientation, label)
    cmax = float(np.max(c))
    # label 0: the wrong region {k y^2 > 0} is open: empty iff max k <= 0.
    # label 1: the wrong region {c y^2 >= 0} is closed: empty iff max c < 0.
    return cmax <= 0.0 if label == 0 else cmax < 0.0


def _nearest_unit(c: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, bool]:
    """Nearest point ``u`` of ``{||u|| = 1, sum c u^2 >= 0}`` to the unit vector ``v``.

    Assumes ``sum c v^2 < 0`` and ``max c >= 0``. Returns ``(u, found)``; ``found`` is False when
    the set is empty. See :func:`nearest_error` for the derivation.
    """
    cmax = float(np.max(c))
    if cmax < 0:
        return v, False
    a = np.abs(v)
    sign = np.where(v < 0, -1.0, 1.0)
    top = c == cmax
    if cmax == 0.0:
        # The set is the unit sphere of the coordinates with c_i = 0: project and normalise.
        p = np.where(top, a, 0.0)
        n = math.sqrt(float(np.sum(p * p)))
        if n > 0:
            return sign * p / n, True
        u = np.zeros_like(v)
        u[np.argmax(top)] = 1.0
        return u, True
    c = c / cmax  # now max c = 1; ratios are all that matter
    delta = 1.0 - c  # >= 0, exactly 0 on the top eigen-directions
    a2 = a * a
    a_top = float(np.sum(np.where(top, a2, 0.0)))
    nontop = ~top
    safe_delta = np.where(nontop, delta, 1.0)
    g0 = float(np.sum(np.where(nontop, c * a2 / safe_delta**2, 0.0)))
    if a_top == 0.0 and g0 <= 0.0:
        # Hard case: the secular function has no root at e > 0; the multiplier sits at the top
        # eigenvalue and the missing mass goes into a top direction where v has no component.
        q = np.where(nontop, a / safe_delta, 0.0)
        s = float(np.sum(q * q))
        kappa = 1.0 / math.sqrt(s - g0)  # g0 <= 0 and s > 0 (v is a unit vector off the top)
        u = sign * kappa * q
        u[np.argmax(top)] = math.sqrt(max(0.0, -g0)) * kappa
        return u, True

    def secular(log_e: float) -> float:
        e = math.exp(log_e)
        return float(np.sum(c * (a / (e + delta)) ** 2))

    # Brackets (derived from bounds on each term of g(e) = sum c a^2 / (e + delta)^2):
    # below: g(e) >= a_top / e^2 - N with N the negative terms at e = 0, so e_lo = sqrt(a_top / 2N)
    # gives g > 0; above: with P = sum_{c>0} c a^2 < Nn = sum_{c<0} |c| a^2 and delta <= 2,
    # g(e) <= P / e^2 - Nn / (e + 2)^2 < 0 once e > 2 sqrt(P) / (sqrt(Nn) - sqrt(P)).
    neg = c < 0
    n_neg = float(np.sum(np.where(neg, -c * a2 / np.where(neg, delta, 1.0) ** 2, 0.0)))
    if a_top > 0.0:
        e_lo = math.sqrt(a_top / (2.0 * n_neg))
    else:
        e_lo = 1e-300
    p_pos = float(np.sum(np.where(c > 0, c * a2, 0.0)))
    n_abs = float(np.sum(np.where(neg, -c * a2, 0.0)))
    gap = math.sqrt(n_abs) - math.sqrt(p_pos)
    e_hi = 4.0 * math.sqrt(p_pos) / gap + 1e-300 if gap > 0 else 1e300
    lo, hi = math.log(max(e_lo, 1e-300)), math.log(min(max(e_hi, 2 * e_lo), 1e300))
    while secular(lo) <= 0.0 and lo > -690.0:  # guard against rounding in the bound
        lo -= 10.0
    while secular(hi) >= 0.0 and hi < 690.0:
        hi += 10.0
    log_e = optimize.brentq(secular, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    q = a / (math.exp(log_e) + delta)
    return sign * q / math.sqrt(float(np.sum(q * q))), True


def nearest_error(alphas, z, radius: float = 1.0, orientation: Orientation | str = GREATER,
                  label: int = 0) -> tuple[float, np.ndarray]:
    """Exact nearest misclassified point on the sphere through ``z`` (rotated basis).

    Minimise ``||y - z||`` over ``||y|| = r``, ``y`` misclassified for label ``label``. On the
    sphere the wrong region is ``{sum_i c_i y_i^2 > 0}`` (or ``>= 0``) with ``c`` from
    :func:`sphere_coefficients` (``c = k`` for inner points, ``-k`` for outer points). With
    ``u = y/r``, ``v = z/r`` and ``||u|| = ||v|| = 1``, minimising the chord is maximising ``u . v``.
    Writing ``w_i = u_i^2`` (the signs of ``u`` follow ``v``) this is the *concave* problem
    ``max sum_i |v_i| sqrt(w_i)`` over ``sum w = 1``, ``sum c w >= 0``, ``w >= 0``, so the KKT
    conditions identify the global optimum. They give ``u_i ∝ |v_i| / (e + c_max - c_i)`` with
    ``e >= 0`` the root of the secular equation ``g(e) = sum_i c_i v_i^2 / (e + c_max - c_i)^2 = 0``
    (unique: the optimum is unique). ``g`` falls from ``+inf`` (or ``g(0)``) to ``0-``; it is
    solved by Brent's method in ``log e``. *Hard case*: when ``v`` has no component on the top
    directions (``c_i = c_max``) and ``g(0) <= 0``, then ``e = 0`` and the constraint is met by
    putting mass ``sqrt(-g(0)/c_max)`` (times the normalisation) on one top direction where
    ``v_i = 0``; the minimiser is then not unique (any top direction will do), the distance is.

    Args:
      alphas: shape ``(d,)``.
      z: point in the rotated basis, shape ``(d,)``, with ``||z|| = radius`` (it is rescaled
        onto the sphere, so float32 input is fine; a norm off by more than 1e-4 relative raises).
      radius: sphere radius ``r > 0`` (1 for the inner sphere).
      orientation: see :class:`Orientation`.
      label: true class of ``z``: 0 inner, 1 outer.
    Returns:
      ``(distance, point)``: chord distance (float; 0 if ``z`` is already misclassified or on the
      boundary; ``inf`` if the sphere holds no misclassified point) and the nearest point of the
      closure of the wrong region, shape ``(d,)`` (``z`` itself when the distance is 0 or ``inf``).
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if z.shape != alphas.shape or z.ndim != 1:
        raise ValueError(f"z has shape {z.shape}, alphas {alphas.shape}: both must be (d,)")
    radius = float(radius)
    norm = float(np.linalg.norm(z))
    if not radius > 0 or abs(norm - radius) > 1e-4 * radius:
        raise ValueError(f"||z|| = {norm} is not the radius {radius}")
    v = z / norm
    c = _wrong_coefficients(alphas, radius, orientation, label)
    if float(np.sum(c * v * v)) >= 0.0:
        return 0.0, z
    if wrong_region_empty(alphas, radius, orientation, label):
        return math.inf, z
    u, found = _nearest_unit(c, v)
    if not found:  # pragma: no cover - excluded by wrong_region_empty
        return math.inf, z
    return radius * float(np.linalg.norm(u - v)), radius * u


def nearest_errors(alphas, points, radius: float = 1.0, orientation: Orientation | str = GREATER,
                   label: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_error` for each row of ``points`` (shape ``(n, d)``).

    Returns:
      ``(distances, nearest_points)`` of shapes ``(n,)`` and ``(n, d)``.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must have shape (n, d), got {points.shape}")
    out = [nearest_error(alphas, p, radius, orientation, label) for p in points]
    dist = np.array([o[0] for o in out], dtype=np.float64)
    near = np.stack([o[1] for o in out]) if out else np.zeros_like(points)
    return dist, near


def _uniform_points(key, n_points: int, dim: int, radius: float) -> np.ndarray:
    """``n_points`` uniform points on the sphere of ``radius`` (float64, exactly on the sphere)."""
    keys = jax.random.split(key, n_points)
    x = np.asarray(jax.jit(jax.vmap(lambda k: sample_sphere(k, dim)))(keys), dtype=np.float64)
    return radius * x / np.linalg.norm(x, axis=1, keepdims=True)


def mean_nearest_error_distance(alphas, key_or_points, radius: float = 1.0, n_points: int | None = None,
                                orientation: Orientation | str = GREATER, label: int = 0) -> ExactDistance:
    """Exact ``d(E)`` estimated over points: mean nearest-error distance with its standard error.

    ``d(E)`` is the mean over ``x`` uniform on the sphere of the distance to the nearest error
    (0 for misclassified points), docs/science.md section 2. Uniform on the sphere is rotation-invariant,
    so the points are drawn directly in the rotated basis. Each point's distance is exact; the
    only uncertainty is the sampling of points (standard error = sample std / sqrt(n)).

    Args:
      alphas: shape ``(d,)``.
      key_or_points: a ``jax.random.key`` (then ``n_points`` points are drawn uniformly on the
        sphere of ``radius``) or an array of points of shape ``(n, d)`` on that sphere.
      radius: sphere radius (1: the inner sphere).
      n_points: number of points to draw (with a key).
      orientation: see :class:`Orientation`.
      label: true class of the points (0 inner, 1 outer).
    Returns:
      :class:`ExactDistance`.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    if isinstance(key_or_points, np.ndarray) or (hasattr(key_or_points, "shape") and len(key_or_points.shape) == 2):
        points = np.asarray(key_or_points, dtype=np.float64)
    else:
        if n_points is None or n_points < 1:
            raise ValueError("n_points must be >= 1 when a key is given")
        points = _uniform_points(key_or_points, int(n_points), alphas.size, float(radius))
    dist, _ = nearest_errors(alphas, points, radius, orientation, label)
    n = int(dist.size)
    n_inf = int(np.count_nonzero(np.isinf(dist)))
    n_zero = int(np.count_nonzero(dist == 0.0))
    if n_inf:
        return ExactDistance(math.inf, math.nan, n, n_inf, n_zero)
    mean = float(np.mean(dist))
    se = float(np.std(dist, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return ExactDistance(mean, se, n, n_inf, n_zero)
