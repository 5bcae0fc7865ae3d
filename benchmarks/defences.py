"""The cost of adversarial training: model-steps/s of defended training against plain training.

For a model at d = 500, batch 50 (default ``relu-w1000-d2``; ``quad-w1000`` for the exact worst
case) this prints one JSON row per recipe:

- ``plain``: the paper's recipe (the baseline, timed side by side in the same repeats);
- ``pgd``: on-sphere PGD with ``K`` steps (``--pgd-steps``, default 10), adversarial weight 0.5;
- ``exact`` (quad nets only): the exact worst case from one ``eigh`` of ``W^T W`` per step;
- ``gradpen``: the tangent input-gradient penalty (double backprop);
- ``rs``: the ReLU-stability loss (relu nets only).

Each row has ``model_steps_per_s`` (best of ``repeats`` timed ``ensemble_advance`` calls, with
the spread), ``cost_multiplier`` = plain rate / this rate (paired per repeat, median and
spread), ``gflops`` from a matmul FLOP count of the step, and ``fraction_of_peak`` against the
best ``2048^3`` float32 matmul timed in the same run (``benchmarks/_peak.py``).

FLOP counts (``F`` = one forward pass of the batch, ``T = 3F - 2Bdh`` a training step,
:func:`spheres.nets.models.count_matmul_flops`): PGD adds ``K`` forward + input-gradient passes
(``2F`` each: the input gradient needs every layer's backward product, the first one included),
the losses at the clean point and the last iterate (``F`` each) and the training pass on the
adversarial batch (``T``): ``2T + (2K + 2) F``. The exact worst case adds one ``d^3``-ish
``eigh`` (not counted) and the adversarial training pass: ``2T``. The gradient penalty counts
``3T`` (a backward pass through a backward pass costs about twice the forward-backward). RS adds
the interval pass (centre and radius, ``F`` and ``F - 2Bdh``) forward and backward (x3) and, with
batch norm, one forward pass for the batch statistics: ``T + 3(2F - 2Bdh) [+ F]``. Elementwise
work and ``eigh`` are not counted, so those fractions are lower bounds.

Usage: ``python benchmarks/defences.py [--quick] [--model NAME] [--pgd-steps K] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peak import measure_matmul_peak  # noqa: E402

from spheres.nets import config, models, train  # noqa: E402

DIM, BATCH = 500, 50


def _recipes(model: config.ModelConfig, pgd_steps: int) -> dict[str, dict]:
    recipes = {"plain": {}, "pgd": dict(adversarial="pgd", adv_steps=pgd_steps, adv_epsilons=(0.05,)),
               "gradpen": dict(grad_penalties=(0.01,))}
    if model.arch == "quad":
        recipes["exact"] = dict(adversarial="exact", adv_epsilons=(0.05,))
    else:
        recipes["rs"] = dict(rs_weights=(0.1,), rs_epsilons=(0.05,))
    return recipes


def _flops(name: str, model: config.ModelConfig, pgd_steps: int) -> int:
    F = models.count_matmul_flops(model, DIM, BATCH)
    T = models.count_matmul_flops(model, DIM, BATCH, train=True)
    first = 2 * BATCH * DIM * model.width
    rs = T + 3 * (2 * F - first) + (F if model.batch_norm else 0)
    return {"plain": T, "pgd": 2 * T + (2 * pgd_steps + 2) * F, "exact": 2 * T, "gradpen": 3 * T, "rs": rs}[name]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (about a minute)")
    parser.add_argument("--model", default="relu-w1000-d2")
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--recipes", nargs="+", default=None)
    args = parser.parse_args(argv)
    model = config.parse_model_name(args.model)
    repeats = args.repeats or (2 if args.quick else 5)
    n_steps = 8 if args.quick else 32
    recipes = _recipes(model, args.pgd_steps)
    names = args.recipes or list(recipes)
    if "plain" not in names:
        names = ["plain", *names]

    states = {}
    for name in names:
        tcfg = dataclasses.replace(config.TrainConfig(steps=1_000_000, batch_size=BATCH, learning_rates=(1e-4,)),
                                   **recipes[name])
        cfg = config.ExperimentConfig(task=config.TaskConfig(dim=DIM), model=model, train=tcfg)
        trainer = train.make_trainer(cfg)
        hypers = train.member_hypers(cfg)
        s = trainer.ensemble_init(train.member_keys(cfg), hypers)
        t0 = time.perf_counter()
        s = jax.block_until_ready(trainer.ensemble_advance(s, hypers, 1))
        states[name] = [trainer, hypers, s, time.perf_counter() - t0]

    times = {name: [] for name in names}
    peaks = []
    for _ in range(repeats):  # interleaved, so every recipe and the peak see the same machine
        peaks.append(measure_matmul_peak(n=2048, repeats=1)["gflops"])
        for name in names:
            trainer, hypers, s, _ = states[name]
            t0 = time.perf_counter()
            s = jax.block_until_ready(trainer.ensemble_advance(s, hypers, n_steps))
            times[name].append(time.perf_counter() - t0)
            states[name][2] = s
    peak = max(peaks)
    for name in names:
        rates = sorted(n_steps / t for t in times[name])
        ratios = sorted(tn / tp for tn, tp in zip(times[name], times["plain"]))
        flops = _flops(name, model, args.pgd_steps)
        best = rates[-1]
        print(json.dumps(dict(
            benchmark="defences", recipe=name, model=model.name, dim=DIM, batch=BATCH, ensemble=1,
            pgd_steps=args.pgd_steps if name == "pgd" else None, steps_per_call=n_steps, repeats=repeats,
            model_steps_per_s=best, model_steps_per_s_spread=dict(min=rates[0], median=rates[len(rates) // 2],
                                                                  max=best),
            baseline_model_steps_per_s=max(n_steps / t for t in times["plain"]),
            cost_multiplier=ratios[len(ratios) // 2], cost_multiplier_spread=dict(min=ratios[0], max=ratios[-1]),
            flops_per_model_step=flops, gflops=best * flops / 1e9, peak_gflops=peak,
            fraction_of_peak=best * flops / 1e9 / peak, compile_s=states[name][3],
            load_average=os.getloadavg()[0], backend=jax.default_backend())), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
