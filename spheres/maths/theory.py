"""Exact isoperimetric theory on the sphere: cap measures and the optimal nearest-error distance.

Everything here is deterministic float64 numpy/scipy (no Monte Carlo), vectorised over
broadcastable arrays of the dimension ``dim`` and the error rate ``mu``. Scalars in give numpy
scalars out.

The maths (docs/science.md section 3; the distance formulas are *derived* for this project):

* For ``x`` uniform on the unit sphere of R^d, the first coordinate ``x_1 = sin(beta)`` has
  density ``(1 - s^2)^((d-3)/2) / B((d-1)/2, 1/2)`` on ``[-1, 1]``; the *latitude*
  ``beta`` in ``[-pi/2, pi/2]`` has density ``g(beta) = cos(beta)^(d-2) / B((d-1)/2, 1/2)``.
* The cap ``C_t = {x_1 >= t}`` (latitude ``alpha = arcsin t``) has measure
  ``mu(t) = P(x_1 >= t) = 1/2 I_{1-t^2}((d-1)/2, 1/2)`` for ``t >= 0`` (regularised incomplete
  beta), and ``1 - mu(-t)`` for ``t < 0``.
* A point of latitude ``beta < alpha`` is at geodesic distance ``alpha - beta`` and chord
  distance ``2 sin((alpha - beta)/2)`` from the cap. By Levy's isoperimetric inequality a cap
  maximises the mean distance ``d(E)`` among error sets ``E`` of the same measure, so the
  optimal curve is ``d(cap) = integral_{beta < alpha} dist(alpha - beta) g(beta) dbeta``.
* Large d: ``d(cap) ~ (c Phi(c) + phi(c)) / sqrt(d) ~ Phi^{-1}(1 - mu)/sqrt(d)``,
  ``c = Phi^{-1}(1 - mu)`` (Gilmer et al. 2018, Theorem 5.1, stated there as an O(.) bound).

Numerics. Caps are carried by their latitude together with an accurate pair
``(sin alpha, cos alpha)``, so caps near a pole (small d, tiny mu) keep full relative accuracy.
Every integral here has a log-concave integrand (log of the density, of ``v``, of
``sin(v/2)`` and of ``cos(v/2)`` are all concave), so :func:`_logconcave_integral` finds the
mode and the points where the integrand has fallen by ``e^-50`` by bisection, then applies
composite Gauss-Legendre there, in log scale. That is accurate (about 1e-13 relative) from
d = 2 to d = 10^6 and for mu down to 1e-300 and below, and never underflows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from spheres.core.constants import MIN_DIM, OUTER_RADIUS
from spheres.core.errors import InputError

__all__ = [
    "cap_measure",
    "log_cap_measure",
    "cap_threshold",
    "mean_distance_to_cap",
    "mean_distance_at_threshold",
    "max_mean_distance",
    "expanded_measure",
    "asymptotic_distance",
    "asymptotic_distance_refined",
    "asymptotic_expanded_measure",
    "max_error_rate_for_distance",
    "log_max_error_rate_for_distance",
    "bayes_error_k_coordinates",
    "KCoordinateError",
    "BoundCheck",
    "bound_check",
    "METRICS",
]

METRICS = ("chord", "geodesic")

_HALF_PI = np.pi / 2
_LEVEL = 50.0  # integration window: where the integrand is within e^-50 of its maximum
_BISECT = 64  # bisection steps for mode and window ends (interval <= pi: 2^-64 pi ~ 2e-19)
_PANELS = 12
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_DIRECT_MIN = 1e-290  # below this a probability from scipy is recomputed in log space
_LOG_TINY = float(np.log(1e-300))


# ----------------------------------------------------------------------------- validation

def _as_dim(dim: ArrayLike, field: str = "dim") -> np.ndarray:
    arr = np.asarray(dim)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(field, f"must be an integer >= {MIN_DIM}")
    f = arr.astype(np.float64)
    if not np.all(np.isfinite(f)) or np.any(f != np.round(f)) or np.any(f < MIN_DIM):
        raise InputError(field, f"must be an integer >= {MIN_DIM}")
    return f


def _as_float(x: ArrayLike, field: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(field, "must be a real number") from None
    if not np.all(np.isfinite(arr)):
        raise InputError(field, "must be finite")
    return arr


def _as_rate(mu: ArrayLike, field: str = "mu") -> np.ndarray:
    arr = _as_float(mu, field)
    if np.any(arr <= 0) or np.any(arr >= 1):
        raise InputError(field, "must lie in the open interval (0, 1)")
    return arr


def _as_log_rate(log_mu: ArrayLike, field: str = "log_mu") -> np.ndarray:
    arr = _as_float(log_mu, field)
    if np.any(arr >= 0):
        raise InputError(field, "must be < 0 (the log of a rate in (0, 1))")
    return arr


def _as_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InputError("metric", f"must be one of {', '.join(METRICS)}; got {metric!r}")
    return metric


def _out(x: np.ndarray):
    """0-d arrays become numpy scalars."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def _rate_args(mu, log_mu, dim):
    """Validate ``(mu | log_mu, dim)``; return broadcast ``(log_mu, mu_or_nan, dim)`` float arrays."""
    if (mu is None) == (log_mu is None):
        raise InputError("mu", "give exactly one of mu and log_mu")
    d = _as_dim(dim)
    if mu is not None:
        m = _as_rate(mu)
        with np.errstate(divide="ignore"):
            lm = np.log(m)
    else:
        lm = _as_log_rate(log_mu)
        m = np.exp(lm)
    lm, m, d = np.broadcast_arrays(lm, m, d)
    return lm.astype(np.float64), m.astype(np.float64), d.astype(np.float64)


# ----------------------------------------------------------------------------- integrals

def _stirling_tail(z: np.ndarray) -> np.ndarray:
    """``log Gamma(z) - [(z - 1/2) log z - z + log(2 pi)/2]`` for ``z >= 25`` (error < 1e-17)."""
    w = 1.0 / (z * z)
    return (1 / 12 + w * (-1 / 360 + w * (1 / 1260 + w * (-1 / 1680 + w / 1188)))) / z


def _log_norm(d: np.ndarray) -> np.ndarray:
    """``log B((d-1)/2, 1/2)``: the normaliser of the latitude density.

    ``scipy.special.betaln`` loses up to 1e-10 (absolute) at ``a = (d-1)/2 ~ 10^5`` through
    cancelling log-gammas; for ``a >= 25`` use ``log Gamma(a + 1/2) - log Gamma(a) =
    a log1p(1/(2a)) + log(a)/2 - 1/2 + S(a + 1/2) - S(a)`` (Stirling, S the tail series).
    """
    a = (d - 1) / 2
    big = a >= 25
    ab = np.where(big, a, 25.0)
    delta = ab * np.log1p(0.5 / ab) + 0.5 * np.log(ab) - 0.5 + _stirling_tail(ab + 0.5) - _stirling_tail(ab)
    return np.where(big, 0.5 * np.log(np.pi) - delta, special.betaln(a, 0.5))


def _log_cos(beta: np.ndarray) -> np.ndarray:
    """``log cos(beta)`` for ``beta`` in ``[-pi/2, pi/2]``, accurate near 0 (log1p form)."""
    s = np.sin(beta / 2)
    near0 = np.abs(beta) < np.pi / 4
    c = np.maximum(np.cos(beta), 1e-300)  # beta may round just past -pi/2
    return np.where(near0, np.log1p(-2 * s * s), np.log(c))


def _log_density(beta: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``log g(beta)``, the log density of the latitude; ``g`` is constant for d = 2."""
    return np.where(d == 2, 0.0, (d - 2) * _log_cos(beta)) - _log_norm(d)


def _bisect(a: np.ndarray, b: np.ndarray, root_is_right_of) -> tuple[np.ndarray, np.ndarray]:
    """``_BISECT`` vectorised halvings of the brackets ``[a, b]``; ``root_is_right_of(mid)`` (bool array)
    says on which side of each midpoint the sought point lies."""
    a, b = a.copy(), b.copy()
    for _ in range(_BISECT):
        mid = 0.5 * (a + b)
        right = root_is_right_of(mid)
        a, b = np.where(right, mid, a), np.where(right, b, mid)
    return a, b


def _logconcave_integral(logf, dlogf, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``log integral_lo^hi exp(logf(v)) dv`` for an integrand that is log-concave in ``v``.

    ``logf`` and ``dlogf`` (its derivative) map an array of points of the broadcast shape of
    ``lo``/``hi`` to values; they are only evaluated strictly inside ``(lo, hi)``. The mode is
    found by bisection on the sign of ``dlogf``, the window where ``logf >= max - 50`` by
    bisection on each side (concavity makes both monotone), and the window is integrated by
    composite Gauss-Legendre (12 panels x 24 nodes) relative to the maximum. Concavity bounds the
    neglected tails by ``e^-50`` of the total.
    """
    a, b = _bisect(lo, hi, lambda mid: dlogf(mid) > 0)
    mode = 0.5 * (a + b)
    top = logf(mode)
    level = top - _LEVEL
    left, _ = _bisect(lo, mode, lambda mid: logf(mid) < level)  # logf increasing on [lo, mode]
    _, right = _bisect(mode, hi, lambda mid: logf(mid) >= level)  # logf decreasing on [mode, hi]

    width = (right - left) / _PANELS
    k = np.arange(_PANELS, dtype=np.float64)
    # nodes: shape (..., panels, nodes)
    centres = left[..., None] + (k + 0.5) * width[..., None]
    nodes = centres[..., None] + 0.5 * width[..., None, None] * _GL_X
    vals = np.exp(logf(nodes, trailing=2) - top[..., None, None])
    total = 0.5 * width * np.sum(vals * _GL_W, axis=(-2, -1))
    with np.errstate(divide="ignore"):
        return top + np.log(total)


def _expand(x: np.ndarray, trailing: int) -> np.ndarray:
    return x.reshape(x.shape + (1,) * trailing)


def _log_sin(theta: np.ndarray) -> np.ndarray:
    """``log sin(theta)`` for ``theta`` in ``(0, pi/2]``, accurate at both ends."""
    return np.where(theta < np.pi / 4, np.log(np.maximum(np.sin(theta), 1e-320)), _log_cos(_HALF_PI - theta))


def _log_upper_tail(colat: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``log P(beta >= pi/2 - colat)`` for a cap of angular radius ``colat`` in ``(0, pi/2]``.

    Log-concave quadrature in the colatitude ``theta`` (density ``sin(theta)^(d-2)/B``), so caps
    near the pole keep full relative accuracy.
    """

    def logf(theta, trailing=0):
        dd = _expand(d, trailing)
        return np.where(dd == 2, 0.0, (dd - 2) * _log_sin(theta)) - _log_norm(dd)

    def dlogf(theta):
        return np.where(d == 2, 0.0, (d - 2) / np.tan(np.maximum(theta, 1e-300)))

    return _logconcave_integral(logf, dlogf, np.zeros_like(colat), colat)


def _log_dist(v: np.ndarray, metric: str) -> np.ndarray:
    if metric == "chord":
        return np.log(2 * np.sin(v / 2))
    if metric == "geodesic":
        return np.log(v)
    if metric == "chord_slope":  # d/dalpha of the chord distance: cos(v/2)
        return np.log(np.maximum(np.cos(v / 2), 1e-300))
    raise AssertionError(metric)


def _dlog_dist(v: np.ndarray, metric: str) -> np.ndarray:
    if metric == "chord":
        return 0.5 / np.tan(v / 2)
    if metric == "geodesic":
        return 1.0 / v
    if metric == "chord_slope":
        return -0.5 * np.tan(v / 2)
    raise AssertionError(metric)


def _log_mean_distance_lat(alpha: np.ndarray, d: np.ndarray, metric: str) -> np.ndarray:
    """``log integral_0^{alpha+pi/2} dist(v) g(alpha - v) dv``: log of d(cap) at latitude ``alpha``."""

    def logf(v, trailing=0):
        a, dd = _expand(alpha, trailing), _expand(d, trailing)
        return _log_dist(v, metric) + _log_density(a - v, dd)

    def dlogf(v):
        return _dlog_dist(v, metric) + np.where(d == 2, 0.0, (d - 2) * np.tan(alpha - v))

    return _logconcave_integral(logf, dlogf, np.zeros_like(alpha), alpha + _HALF_PI)


# ----------------------------------------------------------------------------- cap measure

def _log_cap_measure_sc(s: np.ndarray, c: np.ndarray, alpha: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``log mu`` of the cap of latitude ``alpha`` with ``s = sin alpha``, ``c = cos alpha >= 0``."""
    a = (d - 1) / 2
    s_abs = np.abs(s)
    # P(beta >= |alpha|): regularised incomplete beta in whichever argument is accurate
    small = s_abs * s_abs <= 0.5
    tail = 0.5 * np.where(small, special.betaincc(0.5, a, s_abs * s_abs), special.betainc(a, 0.5, c * c))
    pos = s >= 0
    with np.errstate(divide="ignore"):
        direct = np.where(pos, np.log(tail), np.log1p(-tail))
    deep = pos & (tail < _DIRECT_MIN)
    if np.any(deep):
        direct = direct.copy()
        direct[deep] = _log_upper_tail(np.arctan2(c[deep], s[deep]), d[deep])
    return direct


def _sc_from_t(t: np.ndarray):
    s = t
    c = np.sqrt(np.maximum((1 - t) * (1 + t), 0.0))
    return s, c, np.arctan2(s, c)


def log_cap_measure(t: ArrayLike, dim: ArrayLike) -> np.ndarray:
    """``log mu(C_t)``, ``mu(C_t) = P(x_1 >= t)`` for ``x`` uniform on the unit sphere in R^dim.

    Accurate in relative terms far below float64's smallest number (e.g. d = 10^6, t = 0.5
    gives about -1.4e5). ``t = 1`` gives ``-inf``; ``t = -1`` gives 0.

    Args:
      t: threshold(s) in ``[-1, 1]``, any shape.
      dim: dimension(s) ``d >= 2`` (integers), broadcastable with ``t``.
    Returns:
      float64 array (or scalar) of the broadcast shape.

    >>> float(np.exp(log_cap_measure(0.0, 7)))
    0.5
    """
    t = _as_float(t, "t")
    if np.any(np.abs(t) > 1):
        raise InputError("t", "must lie in [-1, 1]")
    d = _as_dim(dim)
    t, d = np.broadcast_arrays(t, d)
    t, d = t.astype(np.float64), d.astype(np.float64)
    out = np.zeros(t.shape)
    inner = t < 1
    s, c, alpha = _sc_from_t(t[inner])
    out[inner] = _log_cap_measure_sc(s, c, alpha, d[inner])
    out[~inner] = -np.inf
    return _out(out)


def cap_measure(t: ArrayLike, dim: ArrayLike) -> np.ndarray:
    """``mu(C_t) = P(x_1 >= t)``: normalised surface measure of the cap ``{x_1 >= t}``.

    ``= 1/2 I_{1-t^2}((d-1)/2, 1/2)`` for ``t >= 0`` and ``1 - mu(C_{-t})`` for ``t < 0``.
    Values below float64 underflow are 0; use :func:`log_cap_measure` there.

    Args:
      t: threshold(s) in ``[-1, 1]``.
      dim: dimension(s) ``d >= 2``, broadcastable with ``t``.
    Returns:
      float64, broadcast shape.

    >>> round(float(cap_measure(0.5, 3)), 12)   # d = 3: Archimedes, mu = (1 - t)/2
    0.25
    """
    return _out(np.exp(log_cap_measure(t, dim)))


# ----------------------------------------------------------------------------- inverse

def _latitude(log_mu: np.ndarray, mu: np.ndarray, d: np.ndarray):
    """Cap latitude for measure ``mu``: returns ``(sin alpha, cos alpha, alpha)``.

    ``mu`` may be 0 where only ``log_mu`` is meaningful. Works with ``q = min(mu, 1 - mu)`` and
    the cap's angular radius (colatitude) ``theta`` in ``(0, pi/2]``, so caps near the pole keep
    relative accuracy. scipy's inverse incomplete beta in the accurate argument (``t^2`` near the
    equator, ``1 - t^2`` near the pole) gives a start; Newton on ``log mu(theta)`` (increasing,
    concave; derivative ``g/mu``), safeguarded by bisection, polishes it and handles ``mu`` below
    float64's range (started from the root for 1e-300, a larger cap).
    """
    a = (d - 1) / 2
    upper = log_mu > np.log(0.5)
    with np.errstate(divide="ignore"):
        log_q = np.where(upper, np.log(-np.expm1(log_mu)), log_mu)
    deep = log_q < _LOG_TINY
    q = np.where(deep, 1e-300, np.exp(log_q))
    x = np.where(q >= 0.25, special.betaincinv(0.5, a, np.clip(1 - 2 * q, 0, 1)),
                 special.betainccinv(0.5, a, 2 * q))  # cos^2 theta = t^2
    y = special.betaincinv(a, 0.5, 2 * q)  # sin^2 theta = 1 - t^2
    use_x = x <= 0.5
    cos_t = np.where(use_x, np.sqrt(x), np.sqrt(np.maximum(1 - y, 0)))
    sin_t = np.where(use_x, np.sqrt(np.maximum(1 - x, 0)), np.sqrt(y))
    theta = np.arctan2(sin_t, cos_t)

    # Newton in u = log(theta): log mu is nearly linear in u for small caps.
    u = np.log(np.maximum(theta, 1e-300))
    lo = np.full(u.shape, -700.0)
    hi = np.where(deep, u, np.log(_HALF_PI))
    tol = 1e-14 * np.maximum(1.0, np.abs(log_q))  # the noise level of log mu
    for _ in range(100):
        theta = np.exp(u)
        lm = _log_cap_measure_sc(np.cos(theta), np.sin(theta), _HALF_PI - theta, d)
        f = lm - log_q
        lo = np.where(f < 0, u, lo)
        hi = np.where(f > 0, u, hi)
        lg = np.where(d == 2, 0.0, (d - 2) * _log_sin(theta)) - _log_norm(d)
        with np.errstate(over="ignore", invalid="ignore"):
            new = u - f * np.exp(lm - lg - u)
        bad = ~np.isfinite(new) | (new < lo) | (new > hi)
        conv = np.abs(f) <= tol
        new = np.where(conv, u, np.where(bad, 0.5 * (lo + hi), new))
        done = conv | (np.abs(new - u) <= 1e-16) | (hi - lo <= 1e-15)
        u = new
        if np.all(done):
            break
    theta = np.exp(u)
    sign = np.where(upper, -1.0, 1.0)
    lat = _HALF_PI - theta
    t = np.where(theta < np.pi / 4, np.cos(theta), np.sin(lat))  # exactly 0 at mu = 1/2
    return sign * t, np.sin(theta), sign * lat


def cap_threshold(mu: ArrayLike | None = None, dim: ArrayLike = None, *, log_mu: ArrayLike | None = None) -> np.ndarray:
    """The threshold ``t`` with ``P(x_1 >= t) = mu``: inverse of :func:`cap_measure`.

    Args:
      mu: measure(s) in (0, 1); or give ``log_mu`` (< 0) instead, for measures below float64
        range (e.g. ``log_mu=-1e4``).
      dim: dimension(s) ``d >= 2``, broadcastable.
    Returns:
      ``t`` in ``(-1, 1)`` (float64; 1.0 when the cap is narrower than float64 resolves).

    >>> round(float(cap_threshold(1e-2, 500)), 5)   # docs/science.md s.3
    0.10391
    """
    lm, m, d = _rate_args(mu, log_mu, dim)
    s, _, _ = _latitude(lm, m, d)
    return _out(s)


# ----------------------------------------------------------------------------- distances

def _mean_distance_alpha(alpha: np.ndarray, d: np.ndarray, metric: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(_log_mean_distance_lat(alpha, d, metric))


def mean_distance_to_cap(mu: ArrayLike | None = None, dim: ArrayLike = None, metric: str = "chord", *,
                         log_mu: ArrayLike | None = None) -> np.ndarray:
    """Exact optimal ``d(E)``: mean distance from a uniform point of the unit sphere to a cap of measure ``mu``.

    ``d(cap) = integral_{beta < alpha} dist(alpha - beta) cos(beta)^(d-2) / B((d-1)/2, 1/2) dbeta``
    with ``sin(alpha) = t(mu)`` and ``dist(v) = 2 sin(v/2)`` (chord) or ``v`` (geodesic)
    (docs/science.md section 3). By Levy's isoperimetric inequality no error set of measure ``mu`` has a
    larger mean distance. Scale by the sphere radius for other spheres.

    Args:
      mu: error rate(s) in (0, 1); or ``log_mu`` (< 0) for rates below float64 range.
      dim: dimension(s) ``d >= 2``, broadcastable with ``mu``.
      metric: ``"chord"`` (Euclidean, the paper's) or ``"geodesic"``.
    Returns:
      float64, broadcast shape.

    >>> round(float(mean_distance_to_cap(1e-2, 500)), 5)   # docs/science.md s.3
    0.10418
    """
    metric = _as_metric(metric)
    lm, m, d = _rate_args(mu, log_mu, dim)
    _, _, alpha = _latitude(lm, m, d)
    return _out(_mean_distance_alpha(alpha, d, metric))


def mean_distance_at_threshold(t: ArrayLike, dim: ArrayLike, metric: str = "chord") -> np.ndarray:
    """Mean distance from a uniform point of the unit sphere to the cap ``{x_1 >= t}`` (``t`` in [-1, 1]).

    The same integral as :func:`mean_distance_to_cap`, parametrised by the threshold (e.g. to grade
    the reference classifier ``spheres.maths.classifiers.cap_logit``).
    """
    metric = _as_metric(metric)
    t = _as_float(t, "t")
    if np.any(np.abs(t) > 1):
        raise InputError("t", "must lie in [-1, 1]")
    t, d = np.broadcast_arrays(t, _as_dim(dim))
    _, _, alpha = _sc_from_t(t.astype(np.float64))
    return _out(_mean_distance_alpha(alpha, d.astype(np.float64), metric))


def max_mean_distance(dim: ArrayLike, metric: str = "chord") -> np.ndarray:
    """The limit of ``d(cap)`` as ``mu -> 0``: mean distance from a uniform point to one point.

    No error set of positive measure reaches it.
    """
    metric = _as_metric(metric)
    d = _as_dim(dim)
    return _out(_mean_distance_alpha(np.full(d.shape, _HALF_PI), d, metric))


def expanded_measure(mu: ArrayLike | None, eps: ArrayLike, dim: ArrayLike, *,
                     log_mu: ArrayLike | None = None) -> np.ndarray:
    """Measure of the chord-``eps`` expansion of a cap of measure ``mu`` (exact).

    The expansion ``{x : chord distance to the cap <= eps}`` is the cap of latitude
    ``alpha - 2 arcsin(eps/2)`` (all of the sphere once that passes ``-pi/2``):
    ``P(x_1 >= cos(arccos t + 2 arcsin(eps/2)))`` (docs/science.md s.3). By Levy's inequality EVERY set of
    measure ``mu`` has an eps-expansion at least this large.

    Args:
      mu: cap measure(s) in (0, 1) (or ``mu=None`` and ``log_mu`` < 0).
      eps: chord radius(s) ``>= 0`` (``eps >= 2`` covers the sphere).
      dim: dimension(s) ``d >= 2``. All three broadcast together.
    Returns:
      float64 in ``[mu, 1]``, broadcast shape.

    >>> round(float(expanded_measure(0.5, 2.0, 9)), 12)
    1.0
    """
    e = _as_float(eps, "eps")
    if np.any(e < 0):
        raise InputError("eps", "must be >= 0")
    lm, m, d = _rate_args(mu, log_mu, dim)
    lm, m, e, d = (np.asarray(z, np.float64) for z in np.broadcast_arrays(lm, m, e, d))
    _, _, alpha = _latitude(lm, m, d)
    new = alpha - 2 * np.arcsin(np.minimum(e, 2.0) / 2)
    out = np.ones(m.shape)
    inside = new > -_HALF_PI
    if np.any(inside):
        a = new[inside]
        out[inside] = np.exp(_log_cap_measure_sc(np.sin(a), np.cos(a), a, d[inside]))
    return _out(np.maximum(out, m))


def asymptotic_expanded_measure(mu: ArrayLike, eps: ArrayLike, dim: ArrayLike) -> np.ndarray:
    """Large-d form of :func:`expanded_measure`: ``Phi(Phi^{-1}(mu) + eps sqrt(d))``."""
    m = _as_rate(mu, "mu")
    e = _as_float(eps, "eps")
    if np.any(e < 0):
        raise InputError("eps", "must be >= 0")
    d = _as_dim(dim)
    return _out(special.ndtr(special.ndtri(m) + e * np.sqrt(d)))


def _gauss_c(mu, log_mu, dim):
    """``c = Phi^{-1}(1 - mu) = -Phi^{-1}(mu)`` (from ``log_mu`` when given) and ``d``, broadcast."""
    lm, m, d = _rate_args(mu, log_mu, dim)
    c = -special.ndtri(m) if log_mu is None else -special.ndtri_exp(lm)
    return c, m, d


def asymptotic_distance(mu: ArrayLike | None = None, dim: ArrayLike = None, *,
                        log_mu: ArrayLike | None = None) -> np.ndarray:
    """The paper's large-d form of the optimal ``d(E)``: ``Phi^{-1}(1 - mu) / sqrt(d)``.

    Negative for ``mu > 1/2`` (where it is not meaningful). Computed as ``-Phi^{-1}(mu)`` (or
    from ``log_mu`` with ``ndtri_exp``) so tiny ``mu`` keep full accuracy.

    >>> round(float(asymptotic_distance(1e-2, 500)), 5)   # exact: 0.10418
    0.10404
    """
    c, _, d = _gauss_c(mu, log_mu, dim)
    return _out(c / np.sqrt(d))


def asymptotic_distance_refined(mu: ArrayLike | None = None, dim: ArrayLike = None, *,
                                log_mu: ArrayLike | None = None) -> np.ndarray:
    """Refined large-d form ``(c Phi(c) + phi(c)) / sqrt(d)``, ``c = Phi^{-1}(1 - mu)``.

    It is ``E[(c - Z)_+] / sqrt(d)`` for a standard normal ``Z``: the exact formula with the
    latitude replaced by its Gaussian limit ``beta ~ N(0, 1/d)``. Always positive.

    >>> round(float(asymptotic_distance_refined(1e-2, 500)), 5)   # exact: 0.10418
    0.10419
    """
    c, _, d = _gauss_c(mu, log_mu, dim)
    phi = np.exp(-0.5 * c * c) / np.sqrt(2 * np.pi)
    # E[(c - Z)_+] = c Phi(c) + phi(c); for c << 0 use Phi(c) = phi(c) sqrt(pi/2) erfcx(-c/sqrt2)
    with np.errstate(over="ignore", invalid="ignore"):
        mills = special.erfcx(-c / np.sqrt(2)) * np.sqrt(np.pi / 2)
        low = phi * (1 + c * mills)
    val = np.where(c > -5, c * special.ndtr(c) + phi, np.maximum(low, 0.0))
    return _out(val / np.sqrt(d))


# ----------------------------------------------------------------------------- inverse problem

def log_max_error_rate_for_distance(distance: ArrayLike, dim: ArrayLike, metric: str = "chord") -> np.ndarray:
    """``log`` of the largest error rate whose optimal ``d(E)`` is ``distance``: the inverse problem.

    ``d(cap)`` decreases strictly in ``mu`` from :func:`max_mean_distance` (``mu -> 0``) to 0
    (``mu -> 1``), so any error set with ``d(E) >= distance`` has ``mu(E) <= mu*`` where
    ``d(cap(mu*)) = distance``. Solved for the cap latitude by Newton safeguarded by bisection
    (``d(cap)`` increases in the latitude ``alpha``; its derivative is ``1 - mu`` for the geodesic
    metric and ``E[cos((alpha - beta)/2); beta < alpha]`` for the chord), to the quadrature's noise
    (about 1e-15 relative in the distance).

    Conditioning: in small d a tiny cap's ``d(cap)`` is nearly the distance to a point and hardly
    depends on ``mu``, so ``mu*`` is ill-determined there (d = 3: a relative error in ``mu*`` of
    about 1e-7 at ``mu* = 1e-17``); for d >= 50 the round trip is exact to about 1e-13.

    Args:
      distance: target mean distance(s) ``>= 0`` on the unit sphere.
      dim: dimension(s) ``d >= 2``, broadcastable.
      metric: ``"chord"`` or ``"geodesic"``.
    Returns:
      ``log mu*`` (float64): 0 for distance 0, ``-inf`` when ``distance >= max_mean_distance(dim)``
      (no error set of positive measure is that far away on average).
    """
    metric = _as_metric(metric)
    x = _as_float(distance, "distance")
    if np.any(x < 0):
        raise InputError("distance", "must be >= 0")
    x, d = np.broadcast_arrays(x, _as_dim(dim))
    x, d = x.astype(np.float64), d.astype(np.float64)
    out = np.zeros(x.shape)
    dmax = _mean_distance_alpha(np.full(d.shape, _HALF_PI), d, metric)
    far = x >= dmax
    out[far] = -np.inf
    live = (x > 0) & ~far
    if np.any(live):
        out[live] = _solve_inverse(x[live], d[live], metric)
    return _out(out)


def _solve_inverse(x: np.ndarray, d: np.ndarray, metric: str) -> np.ndarray:
    lo = np.full(x.shape, -_HALF_PI)
    hi = np.full(x.shape, _HALF_PI)
    # start from the Gaussian picture: alpha ~ distance for small caps
    alpha = np.clip(x - 0.5 / np.sqrt(d), -1.0, 1.0)
    slope_metric = "chord_slope" if metric == "chord" else None
    for _ in range(60):
        f = _mean_distance_alpha(alpha, d, metric) - x
        lo = np.where(f < 0, alpha, lo)
        hi = np.where(f >= 0, alpha, hi)
        if slope_metric is None:
            s, c = np.sin(alpha), np.cos(alpha)
            slope = -np.expm1(_log_cap_measure_sc(s, c, alpha, d))
        else:
            slope = _mean_distance_alpha(alpha, d, slope_metric)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = alpha - f / slope
        bad = ~np.isfinite(new) | (new <= lo) | (new >= hi)
        new = np.where(bad, 0.5 * (lo + hi), new)
        # stop at the quadrature's noise level (about 1e-15 relative) or a vanishing step
        done = (np.abs(f) <= 2e-15 * x) | (np.abs(new - alpha) <= 1e-16 * np.maximum(np.abs(alpha), 1e-3))
        alpha = np.where(np.abs(f) <= 2e-15 * x, alpha, new)
        if np.all(done):
            break
    return _log_cap_measure_sc(np.sin(alpha), np.cos(alpha), alpha, d)


def max_error_rate_for_distance(distance: ArrayLike, dim: ArrayLike, metric: str = "chord") -> np.ndarray:
    """The largest error rate ``mu*`` compatible with a mean nearest-error distance ``distance``.

    ``exp`` of :func:`log_max_error_rate_for_distance` (underflows to 0 for very large targets;
    use the log version there).

    >>> round(float(max_error_rate_for_distance(0.10418, 500)), 4)
    0.01
    """
    return _out(np.exp(log_max_error_rate_for_distance(distance, dim, metric)))


# ----------------------------------------------------------------------------- k coordinates

class KCoordinateError(NamedTuple):
    """Bayes error of the best classifier that sees ``k`` of the ``d`` coordinates.

    Fields (float64, broadcast shape of ``k`` and ``dim``):
      overall: ``(inner + outer) / 2`` (equal priors).
      inner: error rate on the inner sphere (radius 1).
      outer: error rate on the outer sphere (radius ``outer_radius``).
      threshold: the optimal rule says "outer" iff ``||x_k||^2 > threshold`` (``threshold`` in ``(0, 1]``).
    """

    overall: np.ndarray
    inner: np.ndarray
    outer: np.ndarray
    threshold: np.ndarray


def bayes_error_k_coordinates(k: ArrayLike, dim: ArrayLike, outer_radius: float = OUTER_RADIUS) -> KCoordinateError:
    """Bayes error of the best classifier that sees only ``k`` of the ``d`` coordinates (both spheres).

    On the sphere of radius ``r``, ``q = ||x_k||^2 / r^2 ~ Beta(k/2, (d-k)/2)``. With equal priors
    the Bayes rule thresholds the likelihood ratio of ``Q = ||x_k||^2`` (radius 1 vs ``R``):
    ``LR(Q) = R^-k ((1 - Q/R^2)/(1 - Q))^m``, ``m = (d-k)/2 - 1``. For ``m > 0`` it increases, so the
    rule is ``Q > Q*`` with ``LR(Q*) = 1``: ``rho = R^(k/m)``, ``Q* = (rho - 1)/(rho - 1/R^2)``. For
    ``m <= 0`` (``k >= d - 2``) the ratio stays below 1 on ``[0, 1]``, so ``Q* = 1`` (only
    ``Q > 1`` proves "outer"); for ``k = d`` both errors are 0 (*derived*).

    Args:
      k: number of coordinates seen, integers in ``[1, dim]``.
      dim: dimension(s) ``d >= 2``, broadcastable with ``k``.
      outer_radius: ``R > 1``.
    Returns:
      :class:`KCoordinateError` ``(overall, inner, outer, threshold)``.

    >>> e = bayes_error_k_coordinates(500, 500)
    >>> float(e.overall)
    0.0
    """
    d = _as_dim(dim)
    kk = _as_float(k, "k")
    if np.any(kk != np.round(kk)) or np.any(kk < 1):
        raise InputError("k", "must be an integer >= 1")
    R = float(_as_float(outer_radius, "outer_radius"))
    if not R > 1:
        raise InputError("outer_radius", "must be > 1")
    kk, d = np.broadcast_arrays(kk, d)
    kk, d = kk.astype(np.float64), d.astype(np.float64)
    if np.any(kk > d):
        raise InputError("k", "must be <= dim")
    m = (d - kk) / 2 - 1
    pos = m > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        expo = np.where(pos, kk * np.log(R) / np.where(pos, m, 1.0), 0.0)
        rho_m1 = np.expm1(expo)
        q = np.where(pos, rho_m1 / (rho_m1 + (1 - 1 / R**2)), 1.0)
    a = kk / 2
    b = np.maximum((d - kk) / 2, 1e-300)  # b = 0 only when k = d (handled below)
    full = kk == d
    inner = np.where(pos, special.betaincc(a, b, q), 0.0)
    outer = np.where(full, 0.0, special.betainc(a, b, q / R**2))
    overall = 0.5 * (inner + outer)
    return KCoordinateError(_out(overall), _out(inner), _out(outer), _out(q))


class BoundCheck(NamedTuple):
    """A measured ``(mu(E), d(E))`` point against the cap bound (the project's one bound verdict).

    Fields (Python floats, ``None`` where undefined):
      optimal_distance: ``d_cap(mu, d)``, the largest mean distance any error set of measure ``mu`` can
        have (``None`` unless ``0 < mu < 1``).
      ratio: ``distance / optimal_distance``.
      consistent: ``True`` when ``distance - k SE <= d_cap(mu_lower, d)``, the most generous bound
        within the error rate's interval (``d_cap`` decreases in ``mu``; a lower end of 0, or none, gives
        :func:`max_mean_distance`); ``None`` when there is nothing to check.
    """

    optimal_distance: float | None
    ratio: float | None
    consistent: bool | None


def bound_check(mu: float | None, mu_lower: float | None, distance: float | None, distance_se: float | None,
                dim: int, n_se: float = 2.0, radius: float = 1.0) -> BoundCheck:
    """Compare one measured point with the exact cap bound on the sphere of radius ``radius``.

    Distances on a sphere of radius ``r`` scale by ``r``: the bound there is ``r d_cap(mu, d)``.

    >>> c = bound_check(0.01, 0.01, 0.05, 0.001, 500)
    >>> round(c.optimal_distance, 5), c.consistent
    (0.10418, True)
    >>> bound_check(0.01, 0.01, 0.2, 0.01, 500).consistent   # above the theorem: a bug somewhere
    False
    """
    if mu is None or not 0 < mu < 1:
        return BoundCheck(None, None, None)
    opt = radius * float(mean_distance_to_cap(mu, dim))
    if distance is None:
        return BoundCheck(opt, None, None)
    no_lower = mu_lower is None or mu_lower <= 0
    generous = radius * float(max_mean_distance(dim) if no_lower else mean_distance_to_cap(mu_lower, dim))
    return BoundCheck(opt, distance / opt, bool(distance - n_se * (distance_se or 0.0) <= generous))
