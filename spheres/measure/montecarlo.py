"""Monte Carlo error rates of any classifier on the inner and outer spheres.

The inner-sphere error rate ``mu(E)`` (docs/science.md section 2) is the probability that a point ``x``
uniform on the sphere of radius 1 is called "outer" (``logit > 0``); the outer-sphere rate is the
probability that a point uniform on the sphere of radius ``R`` is called "inner" (``logit <= 0``).
Both are estimated from fresh uniform samples (``x = r g / ||g||``, ``g ~ N(0, I_d)``) and reported
as a :class:`spheres.maths.stats.SphereRates` pair of :class:`spheres.maths.stats.RateEstimate`
(integer counts, exact Clopper-Pearson intervals).

The measurement of ONE model has the shape of every measurement in :mod:`spheres.measure`::

    measure(key, logit_fn, params, MonteCarloConfig(dim=d, samples=n)) -> SphereRates

For repeated calls, build the compiled program once with :func:`make_monte_carlo` (the returned
:class:`MonteCarlo` is called as ``mc(key, params)``) and keep it: nothing is cached behind the
caller's back. An ensemble is the caller's ``jax.vmap`` of the per-model program
:attr:`MonteCarlo.program` over ``(params, key)`` (``in_axes = MonteCarlo.model_axes``), driven by
:meth:`MonteCarlo.count`; member ``i`` gives exactly the counts of the single run with
``params[i]`` and ``keys[i]`` (also in the adaptive mode below, where each model and sphere is
frozen at the round where it reached its target).

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
* Adaptive mode: instead of a sample count, ask for a target relative precision (Clopper-Pearson
  half-width over the estimate, see :func:`spheres.maths.stats.relative_precision`); rounds continue until
  every (model, sphere) reached it or the sample budget is spent. A progress callback runs between
  rounds. Caution: stopping when the interval looks narrow enough makes the sample size depend on
  the data, so the fixed-n Clopper-Pearson interval reported at the stop no longer has its exact
  coverage (an optional-stopping effect; the stop checks the interval once per round of
  ``chunk_size * chunks_per_call`` samples, which keeps the loss small but not zero). Use a fixed
  ``samples`` where exact coverage is the point; the project's tables do.

The compiled round depends only on ``(logit_fn, dim, chunk_size, chunks_per_call, dtype)``;
``params``, keys, radii and the round index are traced, so :meth:`MonteCarlo.with_config` changes
the sample budget, the outer radius or the confidence without recompiling.

>>> import jax, jax.numpy as jnp
>>> from spheres.maths.classifiers import cap_logit
>>> p = {"u": jnp.ones(20), "t": jnp.asarray(0.2)}
>>> cfg = MonteCarloConfig(dim=20, samples=4000, chunk_size=1000)
>>> r = measure(jax.random.key(0), cap_logit, p, cfg)
>>> int(r.inner.samples), r.inner.method
(4000, 'monte_carlo')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from spheres.core.errors import InputError
from spheres.maths import stats
from spheres.maths.classifiers import LogitFn, misclassified
from spheres.maths.geometry import INNER_RADIUS, OUTER_RADIUS, project_to_sphere
from spheres.measure.config import same_static

DEFAULT_CHUNK_SIZE = 4096
DEFAULT_CHUNKS_PER_CALL = 64
DEFAULT_MAX_SAMPLES = 10**9
_INT32_MAX = 2**31 - 1
#: matmul precision of every compiled measurement (see ``jax.default_matmul_precision``)
MATMUL_PRECISION = "float32"

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class MonteCarloConfig:
    """What a Monte Carlo measurement counts (validated on construction; errors name the field).

    Attributes:
      dim: dimension ``d >= 2`` (shape-setting).
      samples: samples per sphere (exactly this many; any integer >= 1). Or:
      target_relative_precision: stop once, for every model and sphere, the Clopper-Pearson
        half-width divided by the estimate is ``<=`` this (e.g. 0.1), or at ``max_samples``.
        Checked after each round of ``chunk_size * chunks_per_call`` samples.
      max_samples: per-sphere sample budget in adaptive mode.
      outer_radius: ``R``, the radius of the outer sphere (the inner one has radius 1).
      chunk_size, chunks_per_call: samples evaluated at once (memory ~ ``chunk_size * dim``) and
        chunks per compiled call (shape-setting).
      confidence: interval coverage.
      dtype: sampling/evaluation dtype name (shape-setting).
    """

    dim: int
    samples: int | None = None
    target_relative_precision: float | None = None
    max_samples: int = DEFAULT_MAX_SAMPLES
    outer_radius: float = OUTER_RADIUS
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunks_per_call: int = DEFAULT_CHUNKS_PER_CALL
    confidence: float = stats.DEFAULT_CONFIDENCE
    dtype: str = "float32"

    #: the fields that set the compiled program's shapes
    STATIC: ClassVar[tuple[str, ...]] = ("dim", "chunk_size", "chunks_per_call", "dtype")

    def __post_init__(self):
        dim, samples, target = self.dim, self.samples, self.target_relative_precision
        if not (isinstance(dim, (int, np.integer)) and dim >= 2):
            raise InputError("dim", f"dimension must be an integer >= 2, got {dim!r}")
        if (samples is None) == (target is None):
            raise InputError("samples", "give exactly one of samples and target_relative_precision")
        if samples is not None and not (isinstance(samples, (int, np.integer)) and samples >= 1):
            raise InputError("samples", f"must be an integer >= 1, got {samples!r}")
        if target is not None and not target > 0:
            raise InputError("target_relative_precision", f"must be > 0, got {target!r}")
        if not (isinstance(self.max_samples, (int, np.integer)) and self.max_samples >= 1):
            raise InputError("max_samples", f"must be an integer >= 1, got {self.max_samples!r}")
        for name in ("chunk_size", "chunks_per_call"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise InputError(name, f"must be an integer >= 1, got {v!r}")
        if self.chunk_size * self.chunks_per_call > _INT32_MAX:
            raise InputError("chunk_size", "chunk_size * chunks_per_call must be < 2^31 (int32 round counts)")
        if not self.outer_radius > 0:
            raise InputError("outer_radius", f"must be > 0, got {self.outer_radius!r}")
        if not 0 < self.confidence < 1:
            raise InputError("confidence", f"must lie in (0, 1), got {self.confidence!r}")
        try:
            dt = jnp.dtype(self.dtype)
        except TypeError:
            raise InputError("dtype", f"not a dtype: {self.dtype!r}") from None
        if not jnp.issubdtype(dt, jnp.floating):
            raise InputError("dtype", f"must be a floating dtype, got {self.dtype!r}")

    @property
    def budget(self) -> int:
        """Samples per sphere planned (fixed mode) or allowed (adaptive mode)."""
        return int(self.samples) if self.samples is not None else int(self.max_samples)

    @property
    def per_round(self) -> int:
        """Samples per sphere counted by one compiled call."""
        return self.chunk_size * self.chunks_per_call


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


@dataclass(frozen=True)
class MonteCarlo:
    """The compiled Monte Carlo measurement of one classifier family, built by :func:`make_monte_carlo`.

    Attributes:
      logit_fn: the classifier ``logit_fn(params, x) -> scalar``, ``x`` of shape ``(dim,)``.
      config: the :class:`MonteCarloConfig` measured.
      program: the pure per-model round ``(params, key, round_index, n_valid, inner_radius,
        outer_radius) -> int32 (2,)`` (:func:`count_round` at full float32 matmul precision); batch
        it over models with ``jax.vmap(program, in_axes=model_axes)``.
      compiled: ``jax.jit(program)``, what a single-model call runs.
    """

    logit_fn: LogitFn
    config: MonteCarloConfig
    program: Callable
    compiled: Callable

    #: ``in_axes`` of :attr:`program` for an ensemble: params and key per model, the rest shared
    model_axes: ClassVar[tuple] = (0, 0, None, None, None, None)

    def with_config(self, config: MonteCarloConfig) -> "MonteCarlo":
        """The same compiled program with another budget, radius or confidence (no recompilation).

        Raises:
          InputError: ``config`` changes a shape-setting field (:attr:`MonteCarloConfig.STATIC`).
        """
        return dataclasses.replace(self, config=same_static(self.config, config))

    def count(self, rounds: Callable, key: jax.Array, params: Any,
              progress: ProgressFn | None = None) -> stats.SphereRates:
        """Run the rounds of ``rounds`` (:attr:`compiled`, or a batched version of :attr:`program`) on the host.

        Args:
          rounds: called as ``rounds(params, key, round_index, n_valid, inner_radius, outer_radius)``;
            returns int32 counts of shape ``batch + (2,)``.
          key: a ``jax.random.key`` (keys of shape ``batch`` for a batched ``rounds``).
          params: the parameters (leaves with a leading ``batch`` axis for a batched ``rounds``).
          progress: called as ``progress(samples_done, samples_planned)`` after every round.
        Returns:
          :class:`~spheres.maths.stats.SphereRates` of :class:`~spheres.maths.stats.RateEstimate`
          (``method = "monte_carlo"``), each field of shape ``batch``.
        """
        cfg = self.config
        budget, per_round = cfg.budget, cfg.per_round
        r_in = jnp.asarray(INNER_RADIUS, jnp.float32)
        r_out = jnp.asarray(cfg.outer_radius, jnp.float32)
        counts = n_done = active = None
        done, c = 0, 0
        while done < budget and (active is None or active.any()):
            n_valid = min(per_round, budget - done)
            new = np.asarray(rounds(params, key, jnp.int32(c), jnp.int32(n_valid), r_in, r_out), np.int64)
            if counts is None:
                counts = np.zeros(new.shape, np.int64)
                n_done = np.zeros(new.shape, np.int64)
                active = np.ones(new.shape, bool)
            counts = np.where(active, counts + new, counts)
            n_done = np.where(active, n_done + n_valid, n_done)
            done += n_valid
            c += 1
            if cfg.target_relative_precision is not None:
                active &= stats.relative_precision(counts, n_done, cfg.confidence) > cfg.target_relative_precision
            if progress is not None:
                progress(done, budget)
        inner = stats.rate_estimate(counts[..., 0], n_done[..., 0], cfg.confidence, "monte_carlo")
        outer = stats.rate_estimate(counts[..., 1], n_done[..., 1], cfg.confidence, "monte_carlo")
        return stats.SphereRates(inner=inner, outer=outer)

    def __call__(self, key: jax.Array, params: Any, progress: ProgressFn | None = None) -> stats.SphereRates:
        """Inner- and outer-sphere error rates of ONE model (fields of shape ``()``)."""
        return self.count(self.compiled, key, params, progress)


def make_monte_carlo(logit_fn: LogitFn, config: MonteCarloConfig) -> MonteCarlo:
    """Build (and jit, lazily) the Monte Carlo measurement of ``logit_fn`` with ``config``.

    Keep the result and call it for every model and key: its compiled round is reused (a new
    ``make_monte_carlo`` compiles again). ``logit_fn`` is any per-example classifier
    ``logit_fn(params, x) -> scalar`` ("outer" iff ``logit > 0``).
    """
    dim, chunk_size, chunks_per_call = int(config.dim), int(config.chunk_size), int(config.chunks_per_call)
    dtype = jnp.dtype(config.dtype)

    def program(params, key, round_index, n_valid, inner_radius, outer_radius):
        # full float32 matmuls (no TF32/bf16 passes on accelerators): an error count is decided by
        # the sign of the logit, which reduced-precision products would bias near the boundary
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return count_round(logit_fn, params, key, round_index, n_valid, dim, chunk_size, chunks_per_call,
                               inner_radius, outer_radius, dtype)

    return MonteCarlo(logit_fn=logit_fn, config=config, program=program, compiled=jax.jit(program))


def measure(key: jax.Array, logit_fn: LogitFn, params: Any, config: MonteCarloConfig,
            progress: ProgressFn | None = None) -> stats.SphereRates:
    """Monte Carlo inner- and outer-sphere error rates of ONE classifier.

    ``make_monte_carlo(logit_fn, config)(key, params, progress)``: compiles on every call; build
    the :class:`MonteCarlo` once with :func:`make_monte_carlo` to measure many models.

    Args:
      key: a ``jax.random.key``.
      logit_fn: per-example classifier ``logit_fn(params, x) -> scalar``, ``x`` of shape ``(dim,)``;
        "outer" iff ``logit > 0``.
      params: the model's parameters (no model axis).
      config: a :class:`MonteCarloConfig`.
      progress: called as ``progress(samples_done, samples_planned)`` after every round.
    Returns:
      :class:`~spheres.maths.stats.SphereRates` of scalar :class:`~spheres.maths.stats.RateEstimate`.
    """
    return make_monte_carlo(logit_fn, config)(key, params, progress)

