"""Cost of rare error rates: adaptive multilevel splitting against plain Monte Carlo at equal error.

Prints JSON rows (one object per line), each with ``"bench"`` naming what was measured:

* ``matmul_peak``: this machine's float32 matmul GFLOP/s (``benchmarks/_peak.py``), measured in
  the same run, and again after each model's timings; the largest value so far (``peak_gflops`` in
  each row) is the yardstick for ``fraction_of_peak``, so a busy moment cannot inflate it.
* ``splitting``: one row per classifier at d = 500, both with error rates far below what Monte
  Carlo sees, evaluated on the inner sphere:

  - ``quad-w1000``: the paper's quadratic network (``spheres.nets.models``, ``h = 1000``) with weights
    set so that its ellipsoid has a chosen random alpha spectrum whose EXACT inner error rate
    (``spheres.maths.quadratic``) is 1e-9; the row reports the estimate, its interval, the ratio to the
    exact value and whether the interval covers it.
  - ``relu-w1000-d2``: the paper's two-layer ReLU net (``spheres.nets.models``) at its random
    initialisation, with the head bias shifted so that the inner error rate is about 1e-9 (the
    shift is ``mean + 6 sd`` of the logit over 65,536 uniform points; the true rate is unknown, so
    the row reports the estimate and its interval only).

  For each: model evaluations and wall time of the splitting estimate (compile excluded: a
  warm-up call with another key comes first), its relative standard error ``rel``, the Monte
  Carlo cost at the same relative error, ``(1 - p) / (p rel^2)`` samples, converted to seconds
  by timing a jitted Monte Carlo chunk (draw, classify, count) of the same model, and the ratios.
  ``evaluations_for_rel_0.2`` rescales the splitting cost to a 20% relative error (variance is
  inversely proportional to the particle count). Achieved matmul GFLOP/s counts the networks'
  matmul FLOPs (``spheres.nets.models.count_matmul_flops``) per model evaluation.

Usage: ``python benchmarks/rare_event.py [--quick]``; ``--quick`` uses fewer particles (a larger
relative error) and finishes in under 2 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _peak import measure_matmul_peak  # noqa: E402

from spheres.maths import quadratic
from spheres.measure import splitting  # noqa: E402
from spheres.maths.classifiers import misclassified  # noqa: E402
from spheres.nets.config import parse_model_name  # noqa: E402
from spheres.maths.geometry import project_to_sphere  # noqa: E402
from spheres.nets.models import count_matmul_flops, init_variables, make_logit_fn  # noqa: E402

DIM = 500
TARGET_LOG10 = -9.0
MC_CHUNK = 16384


def emit(row: dict) -> None:
    row = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(), **row}
    print(json.dumps(row), flush=True)


def quad_spectrum(seed: int, log10_target: float) -> tuple[np.ndarray, float]:
    """Alphas ``0.8 exp(c z)`` (``z`` a seeded standard normal vector; positive, as a quad net's are)
    with exact inner rate near the target (bisection on ``c``)."""
    z = np.random.default_rng(seed).normal(size=DIM)

    def log10_rate(c):
        return quadratic.error_rates((0.8 * np.exp(c * z)).astype(np.float32), 1.3).log10_inner

    lo, hi = 1e-3, 10.0
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if log10_rate(mid) < log10_target else (lo, mid)
    alphas = (0.8 * np.exp(hi * z)).astype(np.float32)
    return alphas, log10_rate(hi)


def quad_variables(key, alphas: np.ndarray) -> dict:
    """Quad-net variables (``spheres.nets.models`` layout) with ``logit = sum_i alpha_i (V^T x)_i^2 - 1``.

    ``W = [diag(sqrt(alpha)) V^T; 0]`` (``h = 1000`` rows, the last ``h - d`` zero), ``V`` a random
    rotation, ``w = 1``, ``b = -1``: an ellipsoid classifier in a random basis, exact rate from alphas.
    """
    variables = init_variables(key, parse_model_name("quad-w1000"), DIM)
    h = variables["params"]["hidden"]["kernel"].shape[1]
    v, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(DIM, DIM)))
    w = np.zeros((h, DIM))
    w[:DIM] = np.sqrt(alphas.astype(np.float64))[:, None] * v.T
    params = dict(variables["params"], hidden={"kernel": jnp.asarray(w.T, jnp.float32)},
                  w=jnp.float32(1.0), b=jnp.float32(-1.0))
    return {"params": params, "batch_stats": variables["batch_stats"]}


def make_mc_chunk(logit_fn, radius: float):
    """Jitted Monte Carlo chunk: draw ``MC_CHUNK`` uniform points, classify them, count inner errors."""

    @jax.jit
    def chunk(key, params):
        x = jax.vmap(project_to_sphere, (0, None))(jax.random.normal(key, (MC_CHUNK, DIM)), radius)
        logits = jax.vmap(logit_fn, (None, 0))(params, x)
        return jnp.sum(misclassified(logits, 0), dtype=jnp.int32)

    return chunk


def best_time(fn, *args, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def bench(name: str, logit_fn, params, flops_per_eval: int, config: splitting.SplittingConfig,
          peak_gflops: float, exact_log10: float | None, note: str) -> dict:
    splitter = splitting.make_splitting(logit_fn, config)
    t = time.perf_counter()   # compile (max_levels is traced: a one-level warm-up compiles the same program)
    splitter.with_config(dataclasses.replace(config, max_levels=1))(jax.random.key(100), params)
    first_call = time.perf_counter() - t
    t = time.perf_counter()
    est = splitter(jax.random.key(0), params)
    seconds = time.perf_counter() - t

    chunk = make_mc_chunk(logit_fn, 1.0)
    chunk(jax.random.key(1), params).block_until_ready()
    chunk_seconds = best_time(chunk, jax.random.key(2), params)
    p, rel = est.value, est.rel_std
    row = dict(bench="splitting", model=name, dim=DIM, sphere=config.sphere, note=note, status=est.status,
               estimate=p, log10_estimate=est.log10_value, log10_ci=[est.log10_lower, est.log10_upper],
               confidence=est.confidence, rel_std=rel, rel_std_ideal=est.rel_std_ideal,
               n_particles=config.n_particles, n_repeats=config.n_repeats, n_steps=config.n_steps,
               n_levels=int(est.levels), evaluations=int(est.evaluations), seconds=seconds,
               compile_seconds=first_call,
               evaluations_per_second=est.evaluations / seconds)
    if exact_log10 is not None:
        row.update(exact_log10=exact_log10, ratio_to_exact=10 ** (est.log10_value - exact_log10),
                   covered=bool(est.log10_lower <= exact_log10 <= est.log10_upper))
    if est.status == "ok" and rel > 0:
        mc_samples = (1 - p) / (p * rel**2)
        mc_seconds = mc_samples * chunk_seconds / MC_CHUNK
        row.update(**{"evaluations_for_rel_0.2": int(est.evaluations * (rel / 0.2) ** 2)},
                   mc_samples_equal_error=mc_samples, mc_chunk=MC_CHUNK, mc_chunk_seconds=chunk_seconds,
                   mc_seconds_equal_error=mc_seconds, evaluation_ratio=mc_samples / est.evaluations,
                   time_ratio=mc_seconds / seconds)
    # the machine may be shared: re-measure the peak after the timings and keep the largest value seen
    peak_gflops = max(peak_gflops, measure_matmul_peak(n=1024, repeats=5)["gflops"])
    gflops = est.evaluations * flops_per_eval / seconds / 1e9
    mc_gflops = MC_CHUNK * flops_per_eval / chunk_seconds / 1e9
    row.update(flops_per_evaluation=flops_per_eval, matmul_gflops=gflops, fraction_of_peak=gflops / peak_gflops,
               mc_matmul_gflops=mc_gflops, mc_fraction_of_peak=mc_gflops / peak_gflops, peak_gflops=peak_gflops)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer particles; under 2 minutes on 2 CPU cores")
    args = parser.parse_args(argv)
    config = (splitting.SplittingConfig(dim=DIM, n_particles=100, n_repeats=4) if args.quick
              else splitting.SplittingConfig(dim=DIM))

    peak = measure_matmul_peak(n=1024 if args.quick else 2048, repeats=5 if args.quick else 10)
    emit(dict(bench="matmul_peak", **peak))

    alphas, exact = quad_spectrum(0, TARGET_LOG10)
    quad_cfg = parse_model_name("quad-w1000")
    quad_params = quad_variables(jax.random.key(0), alphas)
    row = bench("quad-w1000", make_logit_fn(quad_cfg, DIM), quad_params, count_matmul_flops(quad_cfg, DIM, 1),
                config, peak["gflops"], exact,
                "weights set to an ellipsoid with a random alpha spectrum of exact inner rate ~1e-9")
    emit(row)
    best_peak = row["peak_gflops"]

    relu_cfg = parse_model_name("relu-w1000-d2")
    relu_fn = make_logit_fn(relu_cfg, DIM)
    variables = init_variables(jax.random.key(1), relu_cfg, DIM)
    x = jax.vmap(project_to_sphere, (0, None))(jax.random.normal(jax.random.key(2), (65536, DIM)), 1.0)
    logits = np.asarray(jax.jit(jax.vmap(relu_fn, (None, 0)))(variables, x), np.float64)
    shift = logits.mean() + 6.0 * logits.std()
    head = dict(variables["params"]["head"])
    head["bias"] = head["bias"] - jnp.float32(shift)
    relu_params = {"params": dict(variables["params"], head=head), "batch_stats": variables["batch_stats"]}
    row = bench("relu-w1000-d2", relu_fn, relu_params, count_matmul_flops(relu_cfg, DIM, 1), config,
                best_peak, None,
                "random initialisation (spheres.nets.models), head bias shifted by mean + 6 sd of the logit")
    emit(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
