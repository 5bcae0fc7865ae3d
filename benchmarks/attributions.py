"""Throughput of the attribution measurements (:mod:`spheres.measure.attributions`).

Prints JSON rows (one object per line), each with ``"bench"`` naming what was timed:

* ``matmul_peak``: this machine's float32 matmul throughput (``benchmarks/_peak.py``), measured in the
  same run and again right before each timing; the largest value is the reference ``peak_gflops``.
* ``alignment``: points/s of the gradient alignment and the on- and off-sphere boundary normals
  (two attacks per point, :func:`~spheres.measure.attributions.boundary_normal`);
* ``bsm_big``: points/s of :func:`~spheres.measure.attributions.point_attributions` (the above plus
  IG from the origin, BSM and BIG, ``ig_steps`` nodes each);
* ``shapley``: worth evaluations/s (one evaluation = one hybrid point classified) of
  :func:`~spheres.measure.attributions.make_shapley_worths` with ``2^M`` coalitions per pair.

for a quad net and a batch-norm ReLU net of the paper's widths at d = 500 (initial weights with the
output bias centred so that the boundary crosses the spheres, as in ``measure_throughput.py``).
Each row has the batched throughput, its matmul GFLOP/s and fraction of the measured peak, and
beside it a baseline run in the same process: the same jitted per-example function called on ONE
point (pair) per call from a Python loop, and the speed-up.

FLOPs are matmul FLOPs (:func:`spheres.nets.models.count_matmul_flops`). The number of logit
evaluations per point of ``alignment`` and ``bsm_big`` (the attack's loops are data-dependent) is
COUNTED in a separate untimed run on the same points, by a wrapper that increments a host counter
(``jax.debug.callback``) at every evaluation; each is charged one forward pass, although an input
gradient costs about two, so their fraction of peak is a lower bound on the matmul work done.
Under ``vmap`` the attack's ascent loop runs until the slowest point of the batch flips, and every
lane computes meanwhile: that work is counted, as it is done.

Usage: ``python benchmarks/attributions.py [--quick]`` (``--quick``: a few minutes on a 2-core CPU).
Compile time is excluded (every timed call is warmed up first with the same shapes).
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

from spheres.maths.geometry import sample_batch, sample_sphere
from spheres.measure import attributions as attr
from spheres.measure.attacks import AttackSchedule
from spheres.nets.config import PAPER_MODELS
from spheres.nets.models import count_matmul_flops, init_variables, make_logit_fn

DIM = 500
BANDS = 4
IG_STEPS = 32


def emit(row: dict) -> None:
    row = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(), **row}
    print(json.dumps(row), flush=True)


def timed(fn, *args, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def centered(variables, logit_fn):
    """Shift the output bias so the median logit on the sphere of radius 1.15 is 0 (boundary between the spheres)."""
    xs = jax.vmap(lambda k: sample_sphere(k, DIM, 1.15))(jax.random.split(jax.random.key(9), 256))
    shift = jnp.median(jax.vmap(logit_fn, in_axes=(None, 0))(variables, xs))
    params = dict(variables["params"])
    if "head" in params:
        params["head"] = {**params["head"], "bias": params["head"]["bias"] - shift}
    else:
        params["b"] = params["b"] - shift
    return {**variables, "params": params}


def logit_calls_per_point(fn, logit_fn, params, xs, ys) -> float:
    """Logit evaluations per point of ``fn(logit_fn, params, x, y)`` under ``vmap``, counted on the host."""
    count = [0]

    def add(x):  # under vmap the callback sees the whole batch: count its points
        count[0] += int(np.prod(np.shape(x)[:-1], dtype=np.int64))

    def counting(p, x):
        jax.debug.callback(add, x)
        return logit_fn(p, x)

    jax.block_until_ready(jax.jit(jax.vmap(lambda x, y: fn(counting, params, x, y)))(xs, ys))
    jax.effects_barrier()
    return count[0] / xs.shape[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few points: a few minutes on a 2-core CPU")
    args = ap.parse_args(argv)
    gpu = jax.default_backend() != "cpu"
    peak_n = 4096 if gpu else 2048
    peak = measure_matmul_peak(peak_n, repeats=3 if args.quick else 10)["gflops"]
    emit({"bench": "matmul_peak", "n": peak_n, "gflops": round(peak, 1), "python": platform.python_version(),
          "jax": jax.__version__})
    config = AttackSchedule()
    points = (64 if not args.quick else 16) * (8 if gpu else 1)
    pairs = (1024 if not args.quick else 256) * (16 if gpu else 1)
    base_points, base_pairs = (4, 32) if args.quick else (8, 128)
    xs, ys = sample_batch(jax.random.key(1), points, DIM)

    for i, name in enumerate(("quad-w1000", "relu-w1000-d2")):
        cfg = PAPER_MODELS[name]
        logit_fn = make_logit_fn(cfg, DIM)
        params = centered(init_variables(jax.random.key(i), cfg, DIM), logit_fn)
        fwd = count_matmul_flops(cfg, DIM, 1)

        def normals(f, p, x, y):
            g = attr._grad(f, p, x)[1]
            return (attr.cosine(g, x), attr.boundary_normal(f, p, x, y, config, True, g),
                    attr.boundary_normal(f, p, x, y, config, False, g))

        def full(f, p, x, y):
            return attr.point_attributions(f, p, x, y, config, IG_STEPS)

        for bench, fn in (("alignment", normals), ("bsm_big", full)):
            fwd_eq = logit_calls_per_point(fn, logit_fn, params, xs, ys)
            batched = jax.jit(jax.vmap(lambda p, x, y, fn=fn: fn(logit_fn, p, x, y), in_axes=(None, 0, 0)))
            single = jax.jit(lambda p, x, y, fn=fn: fn(logit_fn, p, x, y))
            jax.block_until_ready(batched(params, xs, ys))
            peak = max(peak, measure_matmul_peak(peak_n, repeats=3)["gflops"])
            t = timed(batched, params, xs, ys, repeats=3)
            jax.block_until_ready(single(params, xs[0], ys[0]))
            tb = timed(lambda: [single(params, xs[k], ys[k]) for k in range(base_points)])
            rate, base = points / t, base_points / tb
            gflops = rate * fwd_eq * fwd / 1e9
            emit({"bench": bench, "model": name, "dim": DIM, "points": points, "seconds": round(t, 3),
                  "points_per_s": round(rate, 2), "logit_calls_per_point": fwd_eq, "matmul_gflops_lower_bound": round(gflops, 2),
                  "fraction_of_peak_lower_bound": round(gflops / peak, 4), "peak_gflops": round(peak, 1),
                  "baseline": "same jitted function, one point per call", "baseline_points": base_points,
                  "baseline_points_per_s": round(base, 2), "speedup": round(rate / base, 2)})

        if cfg.arch == "quad":
            bands = attr.eigen_bands(np.linspace(2.0, 0.5, DIM), np.eye(DIM), BANDS)
        else:
            bands = attr.coordinate_bands(DIM, BANDS)
        masks = attr.coalition_masks(bands.band_of, BANDS)
        keys = jax.random.split(jax.random.key(2), pairs)
        worths = attr.make_shapley_worths(logit_fn, DIM, 1.3, ("same_sphere",))
        run = lambda k: worths.worths(params, k, bands.basis, masks)["same_sphere"][0]  # noqa: E731
        run(keys)
        peak = max(peak, measure_matmul_peak(peak_n, repeats=3)["gflops"])
        t = timed(run, keys, repeats=3)
        prog = worths.pairs
        basis, m = jnp.asarray(bands.basis, jnp.float32), jnp.asarray(masks)
        jax.block_until_ready(prog(params, keys[:1], basis, m))
        tb = timed(lambda: [prog(params, keys[k:k + 1], basis, m) for k in range(base_pairs)])
        evals = pairs * 2**BANDS
        rate, base = evals / t, base_pairs * 2**BANDS / tb
        per_pair = 2**BANDS * (fwd + 2 * DIM * DIM) + 4 * DIM * DIM  # forwards, hybrids, two rotations
        gflops = pairs * per_pair / t / 1e9
        emit({"bench": "shapley", "model": name, "dim": DIM, "bands": BANDS, "pairs": pairs,
              "seconds": round(t, 3), "worth_evaluations_per_s": round(rate, 1), "matmul_gflops": round(gflops, 2),
              "fraction_of_peak": round(gflops / peak, 4), "peak_gflops": round(peak, 1),
              "baseline": "same jitted program, one pair per call", "baseline_pairs": base_pairs,
              "baseline_worth_evaluations_per_s": round(base, 1), "speedup": round(rate / base, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
