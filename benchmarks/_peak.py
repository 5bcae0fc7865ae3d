"""This machine's float32 matmul peak, measured: the yardstick for every benchmark's efficiency.

``measure_matmul_peak(n, repeats)`` times a jitted ``(n x n) @ (n x n)`` float32 matmul (``2 n^3``
FLOPs) ``repeats`` times after one warm-up call and reports the BEST time, as GFLOP/s. Taking the
best of several calls measures what the hardware and XLA's dot emitter can do when nothing else
interferes; benchmarks then report their own throughput as a fraction of this number, measured in
the same process so both see the same load.

Run as a script it prints one JSON row: ``python benchmarks/_peak.py [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp


@functools.lru_cache(maxsize=4)
def _operands(n: int):
    """Compiled matmul and its operands, built once per size (so repeated calls time only the matmul)."""
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (n, n), jnp.float32)
    b = jax.random.normal(k2, (n, n), jnp.float32)
    matmul = jax.jit(lambda a, b: jnp.dot(a, b, precision=jax.lax.Precision.HIGHEST))
    matmul(a, b).block_until_ready()
    return matmul, a, b


def measure_matmul_peak(n: int = 2048, repeats: int = 10) -> dict:
    """Best-of-``repeats`` float32 GFLOP/s of a jitted ``(n, n) @ (n, n)`` matmul.

    Args:
      n: matrix side; the product costs ``2 n^3`` FLOPs.
      repeats: timed calls (after one compile-and-warm-up call, done once per ``n`` per process).
    Returns:
      ``dict(gflops=best GFLOP/s, seconds=best time per matmul, median_seconds=..., n=, repeats=, flops=)``.
    """
    matmul, a, b = _operands(n)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    times.sort()
    flops = 2.0 * n**3
    best = times[0]
    return dict(gflops=flops / best / 1e9, seconds=best, median_seconds=times[len(times) // 2],
                n=n, repeats=repeats, flops=flops)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--n", type=int, default=2048)
    args = parser.parse_args(argv)
    row = measure_matmul_peak(n=args.n, repeats=5 if args.quick else 20)
    print(json.dumps(dict(benchmark="matmul_peak", backend=jax.default_backend(), **row)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
