"""Training throughput of the paper's architectures, against this machine's matmul peak and a naive loop.

For each paper model at d = 500, batch 50, and each ensemble size E (1, 8, 32; fewer where the
memory estimate says no) this prints one JSON row with

- ``model_steps_per_s``: optimisation steps per second summed over the E members, best of
  ``repeats`` timed calls of ``trainer.ensemble_advance`` (one compiled program, the whole chunk
  on device; at least 16 steps per call, 8 with ``--quick``, so that a call's fixed costs are
  amortised as in real runs of thousands of steps per call), with the spread (min / median /
  max) of the repeats;
- ``examples_per_s`` = 50 x model-steps/s;
- ``gflops``: achieved matmul GFLOP/s, counting exactly the matmuls of the forward and backward
  pass (``models.count_matmul_flops(..., train=True)``: ``2 m k n`` per product; the first
  layer has no input gradient);
- ``peak_gflops`` / ``fraction_of_peak``: the best of ``2048^3`` float32 matmuls timed in the
  same process, interleaved with the timed runs (``benchmarks/_peak.py``), and best achieved /
  best peak; ``fraction_of_peak_paired`` is the spread of achieved / peak over the (peak, run)
  pairs, the more robust number on a machine whose load changes between seconds;
- ``baseline_model_steps_per_s`` / ``speedup_vs_baseline``: the naive way, the same single-model
  jitted step called per model and per step from a Python loop, timed in the same repeats
  (``speedup_vs_baseline_paired``: the spread over repeats of ensemble rate / baseline rate).

Usage: ``python benchmarks/train_throughput.py [--quick] [--models NAME ...] [--ensembles 1 8 32]``.
``--quick`` (under 2 minutes) does E in (1, 8) and skips E = 8 for the 29M-parameter
``relu-w2000-d8``. Timings on a shared machine are noisy: the row records the load average, and
every number is the best of several repeats with the spread beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peak import measure_matmul_peak  # noqa: E402

from spheres.nets import config
from spheres.nets import models
from spheres.nets import train  # noqa: E402

DIM, BATCH = 500, 50


def _experiment(name: str, size: int) -> config.ExperimentConfig:
    return config.ExperimentConfig(
        task=config.TaskConfig(dim=DIM, outer_radius=1.3), model=config.PAPER_MODELS[name],
        train=config.TrainConfig(steps=1_000_000, batch_size=BATCH, learning_rates=(1e-4,),
                                 seeds=tuple(range(size))))


def _param_count(name: str) -> int:
    shapes = jax.eval_shape(lambda: models.init_variables(jax.random.key(0), config.PAPER_MODELS[name], DIM))
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))


def _memory_estimate(name: str, size: int) -> int:
    """Bytes: parameters, Adam moments, gradients, the update's temporaries (~8 copies) per member."""
    return 8 * 4 * _param_count(name) * size


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info["MemAvailable"]
    except (OSError, KeyError, ValueError):
        return 8 << 30


def bench_row(name: str, size: int, repeats: int, target_s: float, min_steps: int) -> dict:
    cfg = _experiment(name, size)
    trainer = train.make_trainer(cfg)
    keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
    states = trainer.ensemble_init(keys, hypers)

    t0 = time.perf_counter()
    states = jax.block_until_ready(trainer.ensemble_advance(states, hypers, 1))  # compile + 1 step
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    states = jax.block_until_ready(trainer.ensemble_advance(states, hypers, 2))
    per_step = (time.perf_counter() - t0) / 2
    # Real runs advance thousands of steps per call; a call's fixed costs (copying the ensemble
    # state in and out, allocating it) must be amortised here too, hence min_steps.
    n_steps = max(min_steps, int(round(target_s / max(per_step, 1e-6))))

    # Naive baseline: the single-model jitted step, called per model per step from Python.
    step = jax.jit(lambda s, h: trainer.step(s, h)[0])
    singles = [jax.tree.map(lambda a, i=i: a[i], states) for i in range(size)]
    single_hypers = [jax.tree.map(lambda a, i=i: a[i], hypers) for i in range(size)]
    jax.block_until_ready(step(singles[0], single_hypers[0]))  # compile
    base_steps = max(1, n_steps // 2)

    # Interleave peak matmul, ensemble and baseline, so all three see the same (shared) machine.
    times, base_times, peaks = [], [], []
    for _ in range(repeats):
        peaks.append(measure_matmul_peak(n=2048, repeats=1)["gflops"])
        t0 = time.perf_counter()
        states = jax.block_until_ready(trainer.ensemble_advance(states, hypers, n_steps))
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(base_steps):
            for i in range(size):
                singles[i] = step(singles[i], single_hypers[i])
        jax.block_until_ready(singles)
        base_times.append(time.perf_counter() - t0)
    assert trainer.traces["advance"] == 1, "ensemble_advance recompiled"
    flops = models.count_matmul_flops(config.PAPER_MODELS[name], DIM, BATCH, train=True)
    rates = sorted(size * n_steps / t for t in times)
    base_rates = sorted(size * base_steps / t for t in base_times)
    paired = sorted(size * n_steps * flops / t / 1e9 / p for t, p in zip(times, peaks))
    paired_speedup = sorted((n_steps / t) / (base_steps / tb) for t, tb in zip(times, base_times))

    best = rates[-1]
    peak = max(peaks)
    return dict(
        benchmark="train_throughput", model=name, dim=DIM, batch=BATCH, ensemble=size,
        devices=int(train.ensemble_mesh(size).devices.size),
        steps_per_call=n_steps, repeats=repeats,
        model_steps_per_s=best, model_steps_per_s_spread=dict(min=rates[0], median=rates[len(rates) // 2], max=best),
        examples_per_s=best * BATCH, flops_per_model_step=flops, gflops=best * flops / 1e9,
        peak_gflops=peak, fraction_of_peak=best * flops / 1e9 / peak,
        fraction_of_peak_paired=dict(min=paired[0], median=paired[len(paired) // 2], max=paired[-1]),
        baseline_model_steps_per_s=base_rates[-1], baseline_steps_per_model=base_steps,
        speedup_vs_baseline=best / base_rates[-1],
        speedup_vs_baseline_paired=dict(min=paired_speedup[0], median=paired_speedup[len(paired_speedup) // 2],
                                        max=paired_speedup[-1]),
        compile_s=compile_s, load_average=os.getloadavg()[0], backend=jax.default_backend())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 2 minutes)")
    parser.add_argument("--models", nargs="+", default=list(config.PAPER_MODELS), choices=list(config.PAPER_MODELS))
    parser.add_argument("--ensembles", nargs="+", type=int, default=None, help="ensemble sizes (default 1 8 32)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    sizes = args.ensembles or ([1, 8] if args.quick else [1, 8, 32])
    repeats = args.repeats or (3 if args.quick else 5)
    target_s = 0.5 if args.quick else 1.5
    budget = min(12 << 30, _available_memory() // 2)
    for name in args.models:
        for size in sizes:
            too_big = _memory_estimate(name, size) > budget
            too_slow = args.quick and name == "relu-w2000-d8" and size > 1
            if too_big or too_slow:
                why = "memory" if too_big else "--quick time budget"
                print(json.dumps(dict(benchmark="train_throughput", model=name, ensemble=size, skipped=why,
                                      memory_estimate_bytes=_memory_estimate(name, size), memory_budget_bytes=budget)))
                continue
            row = bench_row(name, size, repeats if size * _param_count(name) < 10**8 else max(2, repeats // 2),
                            target_s, min_steps=8 if args.quick else 16)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
