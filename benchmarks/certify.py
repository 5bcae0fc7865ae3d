"""Throughput and tightness of certified radii (:mod:`spheres.measure.certify`).

Prints JSON rows (one object per line), each with ``"bench"`` naming what was timed:

* ``matmul_peak``: this machine's float32 matmul GFLOP/s (``benchmarks/_peak.py``), measured in the
  same run (again before each model; the largest value is the reference for ``fraction_of_peak``).
* ``certify``: for each net and method (``lipschitz``, ``ibp``, ``crown``): certified points/s of the
  batched program (points vmapped in chunks, one compiled call, compilation excluded, best of 3
  calls except the CPU's slow CROWN on the big net; the per-model Lipschitz constant, one SVD per
  layer, is included and dominates that method's time for few points), its matmul
  GFLOP/s (:func:`spheres.measure.certify.bound_flops` per bound times the ``bisections + 1``
  bounds of a bisection; the closed-form Lipschitz radius costs one forward pass) and the fraction
  of the peak; the mean certified radius with its SE; beside it the baseline, the same jitted
  per-point function called point by point from a Python loop with a host sync per point
  (``baseline_points_per_s``, ``speedup``; the per-model Lipschitz constant is computed once in both).
* ``bracket``: per net, the off- and on-manifold attack's mean distance (upper bounds) and the ratio
  of each method's mean certified radius to them (``crown_over_attack_off`` is the tightness of the
  bracket ``[certified, attack]`` in ``R^d``; 1 would be a closed bracket).

Nets: ``relu-w1000-d2`` (the paper's, batch norm folded) at d = 500 and a small ``relu-w64-d2`` at
d = 20, at their initial weights with the output bias centred so that the boundary crosses the
spheres (throughput does not depend on the values; tightness does: trained nets differ). Each point
is certified for its PREDICTED class, so every point is a real certification problem.

Usage: ``python -m benchmarks.certify [--quick]`` from the repository root (``--quick``: 8 points of the big net on a CPU).
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

from spheres.maths import stats  # noqa: E402
from spheres.maths.geometry import sample_sphere  # noqa: E402
from spheres.measure import attacks, certify  # noqa: E402
from spheres.nets.config import PAPER_MODELS, ModelConfig  # noqa: E402
from spheres.nets.models import init_variables, make_logit_fn  # noqa: E402


def emit(row: dict) -> None:
    row = {"device": jax.devices()[0].device_kind, "backend": jax.default_backend(), **row}
    print(json.dumps(row), flush=True)


def centred(variables, logit_fn, dim):
    """Shift the output bias so that the median logit on the sphere of radius 1.15 is 0."""
    xs = jax.vmap(lambda k: sample_sphere(k, dim, 1.15))(jax.random.split(jax.random.key(9), 256))
    shift = jnp.median(jax.vmap(logit_fn, in_axes=(None, 0))(variables, xs))
    params = dict(variables["params"])
    params["head"] = {**params["head"], "bias": params["head"]["bias"] - shift}
    return {**variables, "params": params}


def points(dim: int, n: int):
    k1, k2 = jax.random.split(jax.random.key(5))
    half = n // 2
    xi = jax.vmap(lambda k: sample_sphere(k, dim, 1.0))(jax.random.split(k1, n - half))
    xo = jax.vmap(lambda k: sample_sphere(k, dim, 1.3))(jax.random.split(k2, half))
    return jnp.concatenate([xi, xo])


def baseline(variables, xs, labels, cfg) -> float:
    """Points/s of a Python loop over points calling the jitted per-point certifier, syncing each."""
    layers = certify.fold_layers(variables)
    with jax.default_matmul_precision(certify.MATMUL_PRECISION):
        lip = jax.jit(certify.lipschitz_constant)(layers)  # per model, as in the batched program

    @jax.jit
    def one(x, y):
        with jax.default_matmul_precision(certify.MATMUL_PRECISION):
            return certify.certified_radius_point(layers, x, y, cfg, lipschitz=lip).radius

    lip_fn = jax.jit(certify.lipschitz_constant)
    float(one(xs[0], labels[0]))  # compile
    with jax.default_matmul_precision(certify.MATMUL_PRECISION):  # compile in the context it runs in
        jax.block_until_ready(lip_fn(layers))
    t = time.perf_counter()
    if cfg.method == "lipschitz":  # the per-model constant, counted once as in the batched program
        with jax.default_matmul_precision(certify.MATMUL_PRECISION):
            jax.block_until_ready(lip_fn(layers))
    for x, y in zip(xs, labels):
        float(one(x, y))
    return xs.shape[0] / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few points: a few minutes on a 2-core CPU")
    args = ap.parse_args(argv)
    gpu = jax.default_backend() != "cpu"
    peak_n = 4096 if gpu else 2048
    peak = measure_matmul_peak(peak_n, 5 if args.quick else 10)["gflops"]
    emit({"bench": "matmul_peak", "n": peak_n, "gflops": round(peak, 1), "python": platform.python_version(),
          "jax": jax.__version__})

    # (name, model, d, points, chunk): on a CPU one point of the big net already fills the cores
    # (CROWN's products are (2000 x 1000) @ (1000 x 500)), so its chunk is 1 there
    scale = 1 if args.quick else 4
    nets = [("relu-w1000-d2", PAPER_MODELS["relu-w1000-d2"], 500, (256 if gpu else 8) * scale, 64 if gpu else 1),
            ("relu-w64-d2", ModelConfig("relu", 64, 2, False), 20, (4096 if gpu else 256) * scale, 256 if gpu else 32)]
    for i, (name, model, dim, n, chunk) in enumerate(nets):
        logit_fn = make_logit_fn(model, dim)
        variables = centred(init_variables(jax.random.key(i), model, dim), logit_fn, dim)
        xs = points(dim, n)
        labels = (jax.vmap(logit_fn, in_axes=(None, 0))(variables, xs) > 0).astype(jnp.int32)
        shapes = [tuple(w.shape) for w, _ in certify.fold_layers(variables)]
        peak = max(peak, measure_matmul_peak(peak_n, 3)["gflops"])
        means = {}
        for method in certify.METHODS:
            cfg = certify.CertifyConfig(method=method, chunk_size=chunk)
            certifier = certify.make_certifier(cfg)
            out, _ = certifier.radii(variables, xs, labels)  # compiles (kept by the certifier), warms up
            repeats = 1 if method == "crown" and name == "relu-w1000-d2" and not gpu else 3
            seconds = min(certifier.radii(variables, xs, labels)[1] for _ in range(repeats))
            radii = np.asarray(out.radius, np.float64)
            m = stats.mean_and_se(radii)
            means[method] = m.mean
            evals = 1 if method == "lipschitz" else cfg.bisections + 1
            gflops = certify.bound_flops(shapes, method) * evals * n / seconds / 1e9
            n_base = min(n, 8 if name == "relu-w1000-d2" and not gpu else 64)
            base = baseline(variables, xs[:n_base], labels[:n_base], cfg)
            emit({"bench": "certify", "model": name, "dim": dim, "method": method, "points": n,
                  "bisections": cfg.bisections, "seconds": round(seconds, 4), "points_per_s": round(n / seconds, 2),
                  "gflops": round(gflops, 2), "fraction_of_peak": round(gflops / peak, 4),
                  "peak_gflops": round(peak, 1), "mean_radius": m.mean, "se": m.se,
                  "baseline_points_per_s": round(base, 2), "speedup": round(n / seconds / base, 2)})
        n_att = min(n, 8 if not gpu else 256)
        row = {"bench": "bracket", "model": name, "dim": dim, "points": n_att}
        for mode, on in (("off", False), ("on", True)):
            res = attacks.attack(logit_fn, variables, xs[:n_att], labels[:n_att], on_manifold=on)
            s = attacks.summarize(res)
            row[f"attack_{mode}_mean"], row[f"attack_{mode}_se"], row[f"attack_{mode}_failures"] = s.mean, s.se, s.failures
            for method in certify.METHODS:
                r, _ = certify.make_certifier(certify.CertifyConfig(method=method)).radii(variables, xs[:n_att],
                                                                                          labels[:n_att])
                found = np.asarray(res.found)
                ratio = float(np.mean(np.asarray(r.radius)[found]) / s.mean) if s.mean > 0 else float("nan")
                row[f"{method}_over_attack_{mode}"] = round(ratio, 4)
        emit(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
