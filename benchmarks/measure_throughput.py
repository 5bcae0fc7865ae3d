"""Throughput of the measurements: Monte Carlo error rates, exact quadratic answers, attacks.

Prints JSON rows (one object per line), each with ``"bench"`` naming what was timed:

* ``matmul_peak``: this machine's float32 matmul throughput (a large jitted ``A @ B``), measured
  in the same run (and again right before each Monte Carlo timing; the largest value so far is
  the reference ``peak_gflops`` for ``fraction_of_peak``, so a busy machine cannot inflate it).
* ``monte_carlo``: samples/s (both spheres counted) of :func:`spheres.measure.montecarlo.make_monte_carlo` for
  each paper architecture at d = 500 (initial weights with the output bias centred so that the
  boundary crosses the spheres: throughput does not depend on the values otherwise),
  with the achieved matmul GFLOP/s (:func:`spheres.nets.models.count_matmul_flops`) and its fraction of
  the measured peak; beside it a naive baseline (a Python loop drawing and classifying one
  sample per jitted call with a host sync and a float count, the pattern of simple
  reimplementations) and the speed-up ratio. The ellipsoid classifier (no matmul) is timed too.
* ``exact_quad``: time of the exact inner/outer error rates and of the exact ``d(E)`` (points/s)
  from :mod:`spheres.maths.quadratic`, for a quad net's alphas at d = 500.
* ``attack``: on-manifold attack points/s for each architecture (each point attacked from its
  predicted class, so every search is real) and for the ellipsoid classifier (with the
  un-batched baseline: the same jitted attack called one point at a time).

Usage: ``python benchmarks/measure_throughput.py [--quick]`` (``--quick``: under 2 minutes on a
2-core CPU). Compile time is excluded (every timed call is warmed up first with the same shapes).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peak import measure_matmul_peak  # noqa: E402  (the shared peak yardstick beside this script)

from spheres.measure import attacks
from spheres.measure import montecarlo
from spheres.maths import quadratic
from spheres.maths.classifiers import ellipsoid_logit
from spheres.nets.config import PAPER_MODELS
from spheres.maths.geometry import sample_sphere
from spheres.nets.models import count_matmul_flops, init_variables, make_logit_fn

DIM = 500


def emit(row: dict) -> None:
    row = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(), **row}
    print(json.dumps(row), flush=True)


def timed(fn, *args, repeats: int = 1) -> float:
    """Best wall time of ``fn(*args)`` over ``repeats`` runs, results blocked on."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def matmul_peak(n: int, repeats: int) -> float:
    """float32 GFLOP/s of a jitted (n, n) @ (n, n) product, best of ``repeats``: the project's shared
    yardstick (``benchmarks/_peak.py``, full float32 precision like the measurements)."""
    return measure_matmul_peak(n, repeats)["gflops"]


def centered(variables, logit_fn):
    """Shift the output bias so the median logit on the sphere of radius 1.15 is 0.

    Untrained weights call (almost) everything one class; the untrained quad net even calls every
    point outer. With the shift the decision boundary crosses both spheres, as for a trained
    model, so attacks time a real search (throughput does not depend on the weights otherwise).
    """
    xs = jax.vmap(lambda k: sample_sphere(k, DIM, 1.15))(jax.random.split(jax.random.key(9), 256))
    shift = jnp.median(jax.vmap(logit_fn, in_axes=(None, 0))(variables, xs))
    params = dict(variables["params"])
    if "head" in params:
        params["head"] = {**params["head"], "bias": params["head"]["bias"] - shift}
    else:
        params["b"] = params["b"] - shift
    return {**variables, "params": params}


def naive_baseline(logit_fn, params, n: int, batch: int) -> float:
    """Samples/s (both spheres) of a Python loop: per batch, sample, evaluate, sync a float count."""
    @jax.jit
    def step(key):
        k1, k2 = jax.random.split(key)
        xi = jax.vmap(lambda k: sample_sphere(k, DIM, 1.0))(jax.random.split(k1, batch))
        xo = jax.vmap(lambda k: sample_sphere(k, DIM, 1.3))(jax.random.split(k2, batch))
        li = jax.vmap(logit_fn, in_axes=(None, 0))(params, xi)
        lo = jax.vmap(logit_fn, in_axes=(None, 0))(params, xo)
        return jnp.mean(li > 0), jnp.mean(lo <= 0)

    key = jax.random.key(0)
    jax.block_until_ready(step(key))
    t = time.perf_counter()
    inner = outer = 0.0
    for i in range(n // batch):
        a, b = step(jax.random.fold_in(key, i))
        inner += float(a) * batch
        outer += float(b) * batch
    return 2 * (n // batch) * batch / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: under 2 minutes on a laptop CPU")
    args = ap.parse_args(argv)
    gpu = jax.default_backend() != "cpu"
    quick = args.quick

    peak_n = 4096 if gpu else 2048
    peak = matmul_peak(peak_n, repeats=5 if quick else 10)
    emit({"bench": "matmul_peak", "n": peak_n, "gflops": round(peak, 1), "python": platform.python_version(),
          "jax": jax.__version__})

    # Monte Carlo, each paper architecture at d = 500
    chunk = 8192 if gpu else 2048
    # samples per sphere per timed call, per architecture (CPU: ~1-3 s each in --quick)
    budget = {"quad-w1000": 1 << 14, "relu-w1000-d2": 1 << 13, "relu-w2000-d8": 1 << 10}
    scale = (64 if gpu else 1) * (1 if quick else 4)
    attack_points = 16 if quick else 64
    xs = jax.vmap(lambda k: sample_sphere(k, DIM))(jax.random.split(jax.random.key(5), attack_points))
    for i, (name, cfg) in enumerate(PAPER_MODELS.items()):
        logit_fn = make_logit_fn(cfg, DIM)
        variables = centered(init_variables(jax.random.key(i), cfg, DIM), logit_fn)
        n = budget[name] * scale
        size = min(chunk, n)  # a chunk larger than the sample count would compute masked samples
        chunks = max(1, min(64, n // size))

        counter = montecarlo.make_monte_carlo(logit_fn, montecarlo.MonteCarloConfig(
            dim=DIM, samples=n, chunk_size=size, chunks_per_call=chunks))

        def run(key, counter=counter, variables=variables):
            return counter(key, variables).inner.count

        run(jax.random.key(0))
        # the peak again right before (shared machines vary): the larger peak is the reference
        peak = max(peak, matmul_peak(peak_n, repeats=3))
        t = timed(run, jax.random.key(1), repeats=1 if quick else 3)
        rate = 2 * n / t
        flops = count_matmul_flops(cfg, DIM, 2 * n) / t / 1e9
        base = naive_baseline(logit_fn, variables, max(n // 16, 64), batch=1)
        emit({"bench": "monte_carlo", "model": name, "dim": DIM, "samples_per_sphere": n, "seconds": round(t, 3),
              "samples_per_s": round(rate, 1), "matmul_gflops": round(flops, 1),
              "fraction_of_peak": round(flops / peak, 3), "peak_gflops": round(peak, 1), "baseline": "python loop, one sample per jitted call, host sync",
              "baseline_samples_per_s": round(base, 1), "speedup": round(rate / base, 2)})

        if quick and not gpu and cfg.width * cfg.depth > 10_000:
            emit({"bench": "attack", "model": name, "skipped": "--quick on CPU: ~10 s per point for the deep net"})
            continue
        att = attacks.make_attack(logit_fn)
        k = attack_points if gpu or cfg.width * cfg.depth < 10_000 else 4  # the deep net is slow on CPU
        # untrained weights call whole spheres one class: attack each point from its PREDICTED
        # class, so every point starts correct and the search for the boundary is what is timed
        labels = (jax.vmap(logit_fn, in_axes=(None, 0))(variables, xs[:k]) > 0).astype(jnp.int32)
        jax.block_until_ready(att(variables, xs[:k], labels))
        ta = timed(att, variables, xs[:k], labels)
        res = att(variables, xs[:k], labels)
        emit({"bench": "attack", "model": name, "dim": DIM, "points": k, "seconds": round(ta, 3),
              "points_per_s": round(k / ta, 2), "found": int(np.sum(np.asarray(res.found))),
              "max_ascent_steps": int(np.max(np.asarray(res.ascent_steps)))})

    # the ellipsoid classifier (a trained quad net's rotated form) and the exact answers
    rng = np.random.default_rng(0)
    alphas = rng.uniform(0.3, 1.0, DIM)
    alphas[:50] = rng.uniform(1.0, 1.6, 50)
    p = {"alphas": jnp.asarray(alphas, jnp.float32)}
    n = (1 << 16) * scale
    counter = montecarlo.make_monte_carlo(ellipsoid_logit, montecarlo.MonteCarloConfig(
        dim=DIM, samples=n, chunk_size=chunk, chunks_per_call=max(1, min(64, n // chunk))))
    run = lambda key: counter(key, p).inner.count  # noqa: E731
    run(jax.random.key(0))
    t = timed(run, jax.random.key(1))
    base = naive_baseline(ellipsoid_logit, p, n // 64, batch=1)
    emit({"bench": "monte_carlo", "model": "ellipsoid", "dim": DIM, "samples_per_sphere": n, "seconds": round(t, 3),
          "samples_per_s": round(2 * n / t, 1), "baseline": "python loop, one sample per jitted call, host sync",
          "baseline_samples_per_s": round(base, 1), "speedup": round(2 * n / t / base, 2)})

    t = time.perf_counter()
    rates = quadratic.error_rates(alphas, 1.3)
    t_rates = time.perf_counter() - t
    n_exact = 64 if quick else 512
    t = time.perf_counter()
    de = quadratic.mean_nearest_error_distance(alphas, jax.random.key(3), 1.0, n_exact)
    t_de = time.perf_counter() - t
    emit({"bench": "exact_quad", "dim": DIM, "error_rate_seconds": round(t_rates, 4),
          "error_rate_inner": rates.inner, "error_rate_outer": rates.outer,
          "distance_points": n_exact, "distance_seconds": round(t_de, 3), "distance_points_per_s": round(n_exact / t_de, 1),
          "mean_distance": de.mean, "mean_distance_se": de.se})

    att = attacks.make_attack(ellipsoid_logit)
    labels = jnp.zeros(attack_points, jnp.int32)
    jax.block_until_ready(att(p, xs, labels))
    ta = timed(att, p, xs, labels)
    res = att(p, xs, labels)
    one = lambda: [att(p, xs[i:i + 1], labels[i:i + 1]).distance for i in range(attack_points)]
    jax.block_until_ready(one())
    t1 = timed(one)
    exact, _ = quadratic.nearest_errors(alphas, np.asarray(xs, np.float64), 1.0)
    emit({"bench": "attack", "model": "ellipsoid", "dim": DIM, "points": attack_points, "seconds": round(ta, 3),
          "points_per_s": round(attack_points / ta, 2), "baseline": "same attack, one point per call",
          "baseline_points_per_s": round(attack_points / t1, 2), "speedup": round(t1 / ta, 2),
          "attack_mean_distance": float(np.mean(np.asarray(res.distance))), "exact_mean_distance": float(exact.mean())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
