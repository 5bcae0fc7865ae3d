"""Statistics for measured quantities: binomial rates with exact intervals, means with standard errors.

Every number the project reports carries its uncertainty and its sample size. The result types
of every measurement (:mod:`spheres.measure`) live here and share one vocabulary: ``value`` (the
point estimate), ``lower``/``upper`` (an interval of nominal coverage ``confidence``), the sample
size under the name of what was counted (``samples``: independent uniform points; ``evaluations``:
model evaluations; ``points``: points attacked), ``method`` (how the value was obtained) and
``status`` (``"ok"``, or the reason there is no value). Quantities of the two spheres come in a
:class:`SphereRates` pair, ``inner`` (radius 1) and ``outer`` (radius ``R``). For an ensemble
measured in one batched call every array field gains a leading model axis ``(M,)``.

* :class:`RateEstimate`: a rate (an error rate ``mu``) from ``count`` errors among ``samples``
  independent points, with the exact Clopper-Pearson interval (Monte Carlo);
* :class:`LogRateEstimate`: a rate estimated as the mean of independent unbiased runs, with an
  interval on the log scale and its ``log10`` values kept finite far below 1e-300 (splitting);
* :class:`DistanceEstimate`: a mean distance (``d(E)`` from an attack) with its standard error
  ``s / sqrt(n)`` and the points where nothing was found counted, never averaged in;
* :class:`MeanEstimate`: a plain sample mean with its standard error.

(Exact values of the quadratic network, with no sampling error, are the ``Exact*`` types of
:mod:`spheres.maths.quadratic`.)

Clopper-Pearson (Clopper & Pearson 1934; Brown, Cai & DasGupta 2001, eq. 4): for ``k`` successes in
``n`` trials and confidence ``1 - a``,

    lower = Beta^{-1}(a/2; k, n - k + 1)      (0 when k = 0)
    upper = Beta^{-1}(1 - a/2; k + 1, n - k)  (1 when k = n)

The interval is conservative: its coverage is at least ``1 - a`` for every true rate. It is the
right interval for rare errors (``k = 0`` gives ``upper = 1 - (a/2)^(1/n)``, about ``3.7 / n`` at
95%, the "rule of three" made two-sided).

All arithmetic is float64 numpy/scipy; inputs may be Python ints, numpy scalars or arrays (broadcast).

>>> lo, hi = clopper_pearson(0, 1000)
>>> float(lo), round(float(hi), 6)
(0.0, 0.003682)
>>> est = rate_estimate(5, 100)
>>> round(float(est.value), 3), int(est.samples), est.method, est.status
(0.05, 100, 'monte_carlo', 'ok')
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from spheres.core.errors import InputError

DEFAULT_CONFIDENCE = 0.95
#: ``status`` of an estimate that has a value
OK = "ok"


def _check_counts(k: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(k)
    n = np.asarray(n)
    if not (np.issubdtype(k.dtype, np.integer) and np.issubdtype(n.dtype, np.integer)):
        raise InputError("count", f"counts must be integers, got dtypes {k.dtype} and {n.dtype}")
    k = k.astype(np.int64)
    n = n.astype(np.int64)
    if np.any(n < 1):
        raise InputError("n", "sample count must be >= 1")
    if np.any(k < 0) or np.any(k > n):
        raise InputError("count", "count must lie in [0, n]")
    return k, n


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise InputError("confidence", f"must lie in (0, 1), got {confidence}")
    return confidence


def clopper_pearson(k: ArrayLike, n: ArrayLike,
                    confidence: float = DEFAULT_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided interval for a binomial proportion.

    Args:
      k: number of successes (errors), integer, shape ``S`` (any, broadcast with ``n``), ``0 <= k <= n``.
      n: number of trials, integer ``>= 1``, shape broadcastable with ``k``.
      confidence: coverage ``1 - a`` in ``(0, 1)``.
    Returns:
      ``(lower, upper)``: float64 arrays of the broadcast shape, ``0 <= lower <= k/n <= upper <= 1``;
      ``lower = 0`` exactly when ``k = 0`` and ``upper = 1`` exactly when ``k = n``.
    """
    k, n = _check_counts(k, n)
    a = 1.0 - _check_confidence(confidence)
    k, n = np.broadcast_arrays(k, n)
    kf = k.astype(np.float64)
    nf = n.astype(np.float64)
    # betaincinv is undefined at a zero shape parameter: substitute 1 there and overwrite after.
    lower = special.betaincinv(np.where(k > 0, kf, 1.0), nf - kf + 1.0, a / 2)
    upper = special.betaincinv(kf + 1.0, np.where(k < n, nf - kf, 1.0), 1.0 - a / 2)
    lower = np.where(k > 0, lower, 0.0)
    upper = np.where(k < n, upper, 1.0)
    return lower, upper


class RateEstimate(NamedTuple):
    """A rate measured from independent samples, with its exact interval. Fields are numpy values of
    one common shape ``S`` (scalars for one model, ``(M,)`` for an ensemble of ``M`` models).

    Attributes:
      value: float64, ``count / samples``.
      lower: float64, lower end of the Clopper-Pearson interval.
      upper: float64, upper end.
      confidence: float, the interval's nominal coverage (e.g. 0.95).
      count: int64, number of events (errors) observed.
      samples: int64, number of independent samples.
      method: str, how the rate was obtained (``"monte_carlo"``, ``"exact"``, ...).
      status: str, always ``"ok"`` (a count is always a value; zero events give ``upper`` alone meaning).
    """

    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    confidence: float
    count: np.ndarray
    samples: np.ndarray
    method: str
    status: str = OK


def rate_estimate(count: ArrayLike, samples: ArrayLike, confidence: float = DEFAULT_CONFIDENCE,
                  method: str = "monte_carlo") -> RateEstimate:
    """Build a :class:`RateEstimate` from integer counts among ``samples`` trials (shapes broadcast)."""
    k, n = _check_counts(count, samples)
    k, n = np.broadcast_arrays(k, n)
    lower, upper = clopper_pearson(k, n, confidence)
    return RateEstimate(value=k / n, lower=lower, upper=upper, confidence=float(confidence), count=k,
                        samples=n, method=method)


class SphereRates(NamedTuple):
    """One estimate per sphere: ``inner`` on the sphere of radius 1 (``mu(E)``, points called outer),
    ``outer`` on the sphere of radius ``R`` (points called inner). Both of the same type, e.g.
    :class:`RateEstimate` for Monte Carlo.
    """

    inner: Any
    outer: Any


class LogRateEstimate(NamedTuple):
    """A rate estimated as the mean of ``runs`` independent unbiased runs (adaptive multilevel
    splitting), with an interval on the log scale. Float64 numpy; shape ``()`` (Python scalars) for
    one model or ``(M,)`` per field for an ensemble.

    Attributes:
      value: the mean of the runs' estimates (NaN unless ``status == "ok"``).
      lower, upper: two-sided interval at ``confidence`` (``value * exp(-+ t rel_std)``).
      log10_value, log10_lower, log10_upper: the same in log10, finite even below 1e-300.
      confidence: the interval's nominal coverage.
      rel_std: relative standard error of ``value`` (the runs' spread, floored at ``rel_std_ideal``).
      rel_std_ideal: the ideal-sampler relative standard error (diagnostic).
      evaluations: int, model evaluations over all runs (the cost; not independent samples).
      runs: int, number of independent runs.
      particles: int, particles per run.
      levels: int, mean number of levels per run (rounded).
      log10_level_probability: estimated ``log10 P(score > last level passed)``, largest over the
        runs: how far a run that did not reach the error region got (an estimated upper bound).
      acceptance: mean kernel acceptance rate over the runs.
      method: ``"splitting"``.
      status: str (or array of str): ``"ok"`` iff every run reached the error region, else the
        first failure (``"stalled"``, ``"max_levels"``).
    """

    value: Any
    lower: Any
    upper: Any
    log10_value: Any
    log10_lower: Any
    log10_upper: Any
    confidence: float
    rel_std: Any
    rel_std_ideal: Any
    evaluations: Any
    runs: int
    particles: int
    levels: Any
    log10_level_probability: Any
    acceptance: Any
    method: str
    status: Any


class DistanceEstimate(NamedTuple):
    """A measured mean distance (``d(E)`` from an attack over ``points`` points) with its uncertainty.

    Python numbers for one model; numpy arrays of shape ``(M,)`` for an ensemble.

    Attributes:
      value: mean distance over the points where an error was found (zeros of already
        misclassified points included); NaN when none was found.
      se: standard error ``s / sqrt(n)`` over those points (NaN for fewer than 2).
      lower, upper: normal interval ``value -+ z se`` at ``confidence`` (NaN without an ``se``).
      confidence: the interval's nominal coverage.
      points: points searched.
      failures: points where no error was found within the budget (excluded from ``value``).
      method: how the distances were obtained (``"attack"``: upper bounds on the nearest-error distance).
      status: ``"ok"``, or ``"no error found"`` when ``failures == points``.
    """

    value: Any
    se: Any
    lower: Any
    upper: Any
    confidence: float
    points: Any
    failures: Any
    method: str
    status: Any


def distance_estimate(distances: ArrayLike, found: ArrayLike, confidence: float = DEFAULT_CONFIDENCE,
                      method: str = "attack") -> DistanceEstimate:
    """Build a :class:`DistanceEstimate` from per-point ``distances`` (shape ``(n,)``) and the mask
    ``found`` of points where an error was found (distances elsewhere are ignored, e.g. NaN)."""
    distances = np.asarray(distances, np.float64)
    found = np.asarray(found, bool)
    if distances.ndim != 1 or found.shape != distances.shape:
        raise InputError("distances", f"need distances and found of one shape (n,), got {distances.shape} "
                                      f"and {found.shape}")
    m = mean_and_se(distances[found])
    z = float(special.ndtri(0.5 + _check_confidence(confidence) / 2))
    failures = int(np.sum(~found))
    return DistanceEstimate(value=m.mean, se=m.se, lower=m.mean - z * m.se, upper=m.mean + z * m.se,
                            confidence=float(confidence), points=int(distances.size), failures=failures,
                            method=method, status=OK if failures < distances.size else "no error found")


def relative_precision(count: ArrayLike, n: ArrayLike, confidence: float = DEFAULT_CONFIDENCE) -> np.ndarray:
    """Relative precision of a binomial estimate: Clopper-Pearson half-width divided by ``k / n``.

    ``(upper - lower) / 2 / (k / n)``; ``inf`` when ``k = 0`` (no event seen: no relative precision).
    For ``k >> 1`` this is about ``z_{1-a/2} / sqrt(k)`` (1.96 / sqrt(k) at 95%): the relative
    precision of a rare-event estimate is set by the number of events, not of samples.

    Args:
      count: integer counts, shape ``S``.
      n: integer sample sizes, broadcastable.
    Returns:
      float64 array of the broadcast shape.
    """
    k, n = _check_counts(count, n)
    lower, upper = clopper_pearson(k, n, confidence)
    k, n = np.broadcast_arrays(k, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 0.5 * (upper - lower) / (k / n)
    return np.where(k > 0, rel, np.inf)


def samples_for_relative_precision(rate: float, target: float,
                                   confidence: float = DEFAULT_CONFIDENCE) -> int:
    """Approximate number of samples for a binomial rate ``rate`` to reach relative precision ``target``.

    Uses the normal approximation ``z sqrt((1 - p) / (n p)) = target``, i.e.
    ``n = z^2 (1 - p) / (p target^2)``; a planning aid (e.g. for budgets), not a guarantee.
    """
    if not 0.0 < rate < 1.0:
        raise InputError("rate", f"must lie in (0, 1), got {rate}")
    if not target > 0.0:
        raise InputError("target", f"relative precision must be > 0, got {target}")
    z = special.ndtri(0.5 + _check_confidence(confidence) / 2)
    return int(np.ceil(z * z * (1.0 - rate) / (rate * target * target)))


class MeanEstimate(NamedTuple):
    """A sample mean with its standard error.

    Attributes:
      mean: float64, mean of the values (NaN when ``n = 0``).
      se: float64, standard error ``s / sqrt(n)`` with ``s`` the sample standard deviation
        (``ddof = 1``); NaN when ``n < 2``.
      n: int, number of values averaged.
    """

    mean: float
    se: float
    n: int


def mean_and_se(values: ArrayLike) -> MeanEstimate:
    """Mean and standard error of a 1-d sample ``values`` (shape ``(n,)``, finite floats)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise InputError("values", "all values must be finite (filter failures out first)")
    n = v.size
    if n == 0:
        return MeanEstimate(mean=float("nan"), se=float("nan"), n=0)
    mean = float(v.mean())
    se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return MeanEstimate(mean=mean, se=se, n=n)
