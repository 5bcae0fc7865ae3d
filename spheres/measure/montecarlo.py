"""Monte Carlo error rates of any classifier on the inner and outer spheres.

The inner-sphere error rate ``mu(E)`` (PAPER.md section 2) is the probability that a point ``x``
uniform on the sphere of radius 1 is called "outer" (``logit > 0``); the outer-sphere rate is the
probability that a point uniform on the sphere of radius ``R`` is called "inner" (``logit <= 0``).
Both are estimated from fresh uniform samples (``x = r g / ||g||``, ``g ~ N(0, I_d)``) and reported
as :class:`spheres.maths.stats.RateEstimate` with exact Clopper-Pearson intervals.

Design (one compiled program, bounded memory, integer counts):

* A *round* is one compiled call: a ``lax.fori_loop`` over up to ``chunks_per_call`` chunks of
  ``chunk_size`` samples per sphere; each chunk draws its samples, evaluates the classifier
  (``vmap`` over the chunk) and adds its error count to an int32 accumulator. Memory is one chunk,
  whatever the sample count. A round counts at most ``chunk_size * chunks_per_call < 2^31`` samples,
  so int32 never overflows inside a round; rounds are summed on the host as Python/int64 integers,
  so 10^9 (or 10^12) samples are fine. No floating-point counting anywhere.
* The sample stream is keyed: chunk ``j`` of round ``c`` draws its directions ``g / ||g||`` from
  ``fold_in(fold_in(key, c), j)``. The same key and sample count give the same counts, and the
  first ``n`` samples of a longer run are the samples of the run of length ``n``.
* Common random numbers: the same uniform directions ``u_k`` are used on both spheres
  (``x = u_k`` and ``x = R u_k``). Each sphere's count is still exactly Binomial(n, rate) from n
  independent uniform points, so each interval is exact; only the inner and outer counts are
  correlated with each other (which no reported quantity assumes away). Drawing the normals costs
  about as much as the quad net's matmul on a CPU, so sharing them is ~25% more throughput there.
* Ensembles: ``params`` with a leading model axis and one key per model; the round is ``vmap``-ped
  over ``(params, key)``. Member ``i`` of the ensemble gives exactly the counts of the single run with
  ``params[i]`` and ``keys[i]`` (also in the adaptive mode below, where each model and sphere is frozen
  at the round where it reached its target).
* Adaptive mode: instead of a sample count, ask for a target relative precision (Clopper-Pearson
  half-width over the estimate, see :func:`spheres.maths.stats.relative_precision`); rounds continue until
  every (model, sphere) reached it or the sample budget is spent. A progress callback runs between
  rounds.

Compiled rounds are cached per ``(logit_fn, dim, chunk_size, chunks_per_call, dtype, ensemble)``;
``params``, keys, radii and the round index are traced, so a second call never recompiles.

>>> import jax, jax.numpy as jnp
>>> from spheres.maths.classifiers import cap_logit
>>> p = {"u": jnp.ones(20), "t": jnp.asarray(0.2)}
>>> r = error_rates(cap_logit, p, jax.random.key(0), 20, samples=4000, chunk_size=1000)
>>> int(r.inner.n), r.inner.method
(4000, 'monte_carlo')
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spheres.maths import stats
from spheres.maths.classifiers import LogitFn, misclassified
from spheres.core.errors import InputError
from spheres.maths.geometry import INNER_RADIUS, OUTER_RADIUS, project_to_sphere

DEFAULT_CHUNK_SIZE = 4096
DEFAULT_CHUNKS_PER_CALL = 64
DEFAULT_MAX_SAMPLES = 10**9
_INT32_MAX = 2**31 - 1
#: matmul precision of every compiled measurement (see ``jax.default_matmul_precision``)
MATMUL_PRECISION = "float32"

ProgressFn = Callable[[int, int], None]


class ErrorRates(NamedTuple):
    """Inner- and outer-sphere error rates. For ensembles every field of each estimate has shape ``(M,)``.

    Attributes:
      inner: :class:`~spheres.maths.stats.RateEstimate` for the sphere of radius 1 (``mu(E)``).
      outer: :class:`~spheres.maths.stats.RateEstimate` for the sphere of radius ``R``.
    """

    inner: stats.RateEstimate
    outer: stats.RateEstimate


def count_round(logit_fn: LogitFn, params: Any, key: jax.Array, round_index: jax.Array,
                n_valid: jax.Array, dim: int, chunk_size: int, chunks_per_call: int,
                inner_radius: jax.Array, outer_radius: jax.Array, dtype=jnp.float32) -> jax.Array:
    """Errors among the first ``n_valid`` samples of one round, on each sphere, for ONE model.

    Args:
      logit_fn: the classifier, ``logit_fn(params, x)`` with ``x`` of shape ``(dim,)``.
      params: the model's parameters (no model axis).
      key: the run's ``jax.random.key``.
      round_index: int32 scalar ``c``; the round's samples come from ``fold_in(key, c)``.
      n_valid: int32 scalar in ``[0, chunk_size * chunks_per_call]``: samples counted per sphere.
      dim: dimension ``d`` (static).
      chunk_size, chunks_per_call: static chunking.
      inner_radius, outer_radius: scalar radii (traced).
    Returns:
      int32 array of shape ``(2,)``: ``[inner errors, outer errors]``.
    """
    round_key = jax.random.fold_in(key, round_index)
    n_chunks = (n_valid + chunk_size - 1) // chunk_size
    offsets = jnp.arange(chunk_size, dtype=jnp.int32)
    project = jax.vmap(project_to_sphere, in_axes=(0, None))
    logits = jax.vmap(logit_fn, in_axes=(None, 0))

    def chunk(j, counts):
        valid = j * chunk_size + offsets < n_valid
        # one set of uniform directions serves both spheres (common random numbers, see module doc)
        u = project(jax.random.normal(jax.random.fold_in(round_key, j), (chunk_size, dim), dtype), 1.0)
        x_in = u * inner_radius.astype(dtype)
        x_out = u * outer_radius.astype(dtype)
        # both spheres in one batch: one (2 chunk, d) matmul per layer instead of two halves
        z = logits(params, jnp.concatenate([x_in, x_out]))
        err_in = misclassified(z[:chunk_size], 0) & valid
        err_out = misclassified(z[chunk_size:], 1) & valid
        return counts + jnp.stack([jnp.sum(err_in, dtype=jnp.int32), jnp.sum(err_out, dtype=jnp.int32)])

    return jax.lax.fori_loop(0, n_chunks, chunk, jnp.zeros((2,), jnp.int32))


@functools.lru_cache(maxsize=64)
def _compiled_round(logit_fn: LogitFn, dim: int, chunk_size: int, chunks_per_call: int, dtype,
                    ensemble: bool):
    def one(params, key, round_index, n_valid, inner_radius, outer_radius):
        # full float32 matmuls (no TF32/bf16 passes on accelerators): an error count is decided by
        # the sign of the logit, which reduced-precision products would bias near the boundary
        with jax.default_matmul_precision(MATMUL_PRECISION):
                return count_round(logit_fn, params, key, round_index, n_valid, dim, chunk_size, chunks_per_call,
                               inner_radius, outer_radius, dtype)

    if ensemble:
        one = jax.vmap(one, in_axes=(0, 0, None, None, None, None))
    return jax.jit(one)


def _validate(dim, samples, target_relative_precision, max_samples, chunk_size, chunks_per_call,
              outer_radius, confidence):
    if not (isinstance(dim, int) and dim >= 2):
        raise InputError("dim", f"dimension must be an integer >= 2, got {dim!r}")
    if (samples is None) == (target_relative_precision is None):
        raise InputError("samples", "give exactly one of samples and target_relative_precision")
    if samples is not None and not (isinstance(samples, (int, np.integer)) and samples >= 1):
        raise InputError("samples", f"must be an integer >= 1, got {samples!r}")
    if target_relative_precision is not None and not target_relative_precision > 0:
        raise InputError("target_relative_precision", f"must be > 0, got {target_relative_precision!r}")
    if not (isinstance(max_samples, (int, np.integer)) and max_samples >= 1):
        raise InputError("max_samples", f"must be an integer >= 1, got {max_samples!r}")
    for name, v in (("chunk_size", chunk_size), ("chunks_per_call", chunks_per_call)):
        if not (isinstance(v, int) and v >= 1):
            raise InputError(name, f"must be an integer >= 1, got {v!r}")
    if chunk_size * chunks_per_call > _INT32_MAX:
        raise InputError("chunk_size", "chunk_size * chunks_per_call must be < 2^31 (int32 round counts)")
    if not outer_radius > 0:
        raise InputError("outer_radius", f"must be > 0, got {outer_radius!r}")
    if not 0 < confidence < 1:
        raise InputError("confidence", f"must lie in (0, 1), got {confidence!r}")


def error_rates(logit_fn: LogitFn, params: Any, key: jax.Array, dim: int, *,
                samples: int | None = None,
                target_relative_precision: float | None = None,
                max_samples: int = DEFAULT_MAX_SAMPLES,
                ensemble: bool = False,
                outer_radius: float = OUTER_RADIUS,
                chunk_size: int = DEFAULT_CHUNK_SIZE,
                chunks_per_call: int = DEFAULT_CHUNKS_PER_CALL,
                confidence: float = stats.DEFAULT_CONFIDENCE,
                dtype=jnp.float32,
                progress: ProgressFn | None = None) -> ErrorRates:
    """Monte Carlo inner- and outer-sphere error rates of a classifier (or an ensemble).

    Args:
      logit_fn: per-example classifier ``logit_fn(params, x) -> scalar``, ``x`` of shape ``(dim,)``;
        "outer" iff ``logit > 0``. Must be a stable object (module-level function or a kept
        closure) for the compiled round to be reused between calls.
      params: parameters; with ``ensemble=True`` every leaf has a leading model axis ``M``.
      key: a ``jax.random.key``; with ``ensemble=True`` either keys of shape ``(M,)`` (member ``i``
        uses ``key[i]``) or one key, split into ``M``.
      dim: dimension ``d``.
      samples: samples per sphere (exactly this many; any integer >= 1). Or:
      target_relative_precision: stop once, for every model and sphere, the Clopper-Pearson
        half-width divided by the estimate is ``<=`` this (e.g. 0.1), or at ``max_samples``.
        Checked after each round of ``chunk_size * chunks_per_call`` samples.
      max_samples: per-sphere sample budget in adaptive mode.
      outer_radius: ``R``.
      chunk_size, chunks_per_call: samples evaluated at once (memory ~ ``chunk_size * dim``) and
        chunks per compiled call.
      confidence: interval coverage.
      dtype: sampling/evaluation dtype.
      progress: called as ``progress(samples_done, samples_planned)`` after every round.
    Returns:
      :class:`ErrorRates` with ``method = "monte_carlo"``; per-model arrays ``(M,)`` for ensembles,
      scalars (0-d arrays) otherwise.
    """
    _validate(dim, samples, target_relative_precision, max_samples, chunk_size, chunks_per_call,
              outer_radius, confidence)
    if ensemble:
        m = jax.tree.leaves(params)[0].shape[0]
        keys = jnp.asarray(key)
        if keys.ndim == 0:
            keys = jax.random.split(key, m)
        if keys.shape != (m,):
            raise InputError("key", f"an ensemble of {m} models needs {m} keys, got shape {keys.shape}")
        key = keys
    shape = (m,) if ensemble else ()
    run = _compiled_round(logit_fn, dim, chunk_size, chunks_per_call, jnp.dtype(dtype), ensemble)
    per_round = chunk_size * chunks_per_call
    budget = int(samples) if samples is not None else int(max_samples)
    r_in = jnp.asarray(INNER_RADIUS, jnp.float32)
    r_out = jnp.asarray(outer_radius, jnp.float32)

    counts = np.zeros(shape + (2,), np.int64)
    n_done = np.zeros(shape + (2,), np.int64)
    active = np.ones(shape + (2,), bool)
    done, c = 0, 0
    while done < budget and active.any():
        n_valid = min(per_round, budget - done)
        new = np.asarray(run(params, key, jnp.int32(c), jnp.int32(n_valid), r_in, r_out), np.int64)
        counts = np.where(active, counts + new, counts)
        n_done = np.where(active, n_done + n_valid, n_done)
        done += n_valid
        c += 1
        if target_relative_precision is not None:
            active &= stats.relative_precision(counts, n_done, confidence) > target_relative_precision
        if progress is not None:
            progress(done, budget)

    inner = stats.rate_estimate(counts[..., 0], n_done[..., 0], confidence, "monte_carlo")
    outer = stats.rate_estimate(counts[..., 1], n_done[..., 1], confidence, "monte_carlo")
    return ErrorRates(inner=inner, outer=outer)


def rounds_needed(samples: int, chunk_size: int = DEFAULT_CHUNK_SIZE,
                  chunks_per_call: int = DEFAULT_CHUNKS_PER_CALL) -> int:
    """Number of compiled calls for ``samples`` per sphere (for progress bars)."""
    return math.ceil(samples / (chunk_size * chunks_per_call))
