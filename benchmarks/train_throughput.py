"""Training throughput of the paper's architectures, against this machine's matmul peak and a naive loop.

For each paper model at d = 500, batch 50, and each ensemble size E (1, 8, 32; fewer where the
memory estimate says no) this prints one JSON row with

- ``model_steps_per_s``: optimisation steps per second summed over the E members, best of
  ``repeats`` timed calls of ``trainer.ensemble_advance`` (one compiled program, the whole chunk
  on device; at least 16 steps per call, 8 with ``--quick``, and about the target time per member
  (up to 8 members' worth per call), so that a call's fixed costs are amortised alike for every E,
  as in real runs of thousands of steps per call), with the spread (min / median / max) of the repeats;
- ``examples_per_s`` = B x model-steps/s;
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

- ``cpu_s_per_model_step``: process CPU time (all threads) per model-step over the timed calls,
  and ``model_steps_per_s_all_cores`` = cores / that: the rate when every core's time goes to this
  program. On a loaded machine the wall rate falls with the share of the cores the process gets;
  the CPU time per step much less, so this is the number to convert to a quiet machine.

Further rows (each says what it is in ``benchmark``):

- ``--batches 50 500``: the rows above at other batch sizes (the weight-gradient matmuls have inner
  dimension B: larger batches use the matmul units better);
- ``--ensemble-loss``: what an ensemble loses per model against E = 1, for ``lax.map`` (the default
  for the paper's models: each member runs the single-model program) and ``vmap`` (batched
  matmuls), at 32+ steps per call, in CPU time per model-step (``benchmark = "ensemble_loss"``);
- ``--standard``: the training ensembles of the ``standard`` preset (its models, dimensions, batch
  sizes, ensemble sizes and defences, as the experiments build them), each with the preset's
  training steps and the implied training time (``benchmark = "standard_ensemble"``); ``--runs
  tradeoff/ d2048`` keeps the ensembles whose name contains one of the words;
- ``--recipes-table recipes_steps.csv``: the wall time on this machine to reach error rate 1e-6 on
  both spheres with the recipe study's fastest recipe, from its (measured or fitted) steps and the
  measured seconds per step of that recipe (``benchmark = "recipe_time"``);
- ``--schedule-law tradeoff_schedule_law.json``: the same for the standard tradeoff's end-of-schedule
  law (the length of ONE schedule of the recipe whose end reaches 1e-6 on both spheres, fitted over
  schedules of several lengths), timed at that recipe's batch size (``benchmark = "schedule_time"``).

Usage: ``python benchmarks/train_throughput.py [--quick] [--models NAME ...] [--ensembles 1 8 32]
[--batches 50 ...] [--ensemble-loss] [--standard] [--recipes-table FILE] [--schedule-law FILE]``.
``--quick`` (under 2 minutes) does E in (1, 8) and skips E = 8 for the 29M-parameter
``relu-w2000-d8``. Timings on a shared machine are noisy: the row records the load average, and
every number is the best of several repeats with the spread beside it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
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


def _experiment(name: str, size: int, batch: int = BATCH, dim: int = DIM) -> config.ExperimentConfig:
    return config.ExperimentConfig(
        task=config.TaskConfig(dim=dim, outer_radius=1.3), model=config.parse_model_name(name),
        train=config.TrainConfig(steps=1_000_000, batch_size=batch, learning_rates=(1e-4,),
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


def time_ensemble(cfg: config.ExperimentConfig, repeats: int, target_s: float, min_steps: int,
                  loop: str = "auto", baseline: bool = True) -> dict:
    """Time ``trainer.ensemble_advance`` of ``cfg``'s whole ensemble, interleaved with the matmul peak
    (and, with ``baseline``, the per-model Python loop). Returns the row's measured fields."""
    size = cfg.train.ensemble_size
    trainer = train.make_trainer(cfg, ensemble_loop=loop)
    keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
    states = trainer.ensemble_init(keys, hypers)

    t0 = time.perf_counter()
    states = jax.block_until_ready(trainer.ensemble_advance(states, hypers, 1))  # compile + 1 step
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    states = jax.block_until_ready(trainer.ensemble_advance(states, hypers, 2))
    per_step = (time.perf_counter() - t0) / 2
    # Real runs advance thousands of steps per call; a call's fixed costs (copying the ensemble
    # state in and out, allocating it) must be amortised here too, hence min_steps, and each MEMBER
    # gets about target_s of steps (up to 8 members' worth per call): sizing the call by the whole
    # ensemble's step gave E = 8 an eighth of E = 1's steps per member, so E = 8 paid its fixed
    # costs over 8 steps where E = 1 paid them over ~90, which read as an ensemble loss.
    n_steps = max(min_steps, int(round(target_s * min(size, 8) / max(per_step, 1e-6))))

    if baseline:  # Naive baseline: the single-model jitted step, called per model per step from Python.
        step = jax.jit(lambda s, h: trainer.step(s, h)[0])
        singles = [jax.tree.map(lambda a, i=i: a[i], states) for i in range(size)]
        single_hypers = [jax.tree.map(lambda a, i=i: a[i], hypers) for i in range(size)]
        jax.block_until_ready(step(singles[0], single_hypers[0]))  # compile
    base_steps = max(1, n_steps // 2)

    # Interleave peak matmul, ensemble and baseline, so all three see the same (shared) machine.
    times, cpu, base_times, peaks = [], [], [], []
    for _ in range(repeats):
        peaks.append(measure_matmul_peak(n=2048, repeats=1)["gflops"])
        t0, c0 = time.perf_counter(), time.process_time()
        states = jax.block_until_ready(trainer.ensemble_advance(states, hypers, n_steps))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if baseline:
            t0 = time.perf_counter()
            for _ in range(base_steps):
                for i in range(size):
                    singles[i] = step(singles[i], single_hypers[i])
            jax.block_until_ready(singles)
            base_times.append(time.perf_counter() - t0)
    assert trainer.traces["advance"] == 1, "ensemble_advance recompiled"
    batch = cfg.train.batch_size
    flops = models.count_matmul_flops(cfg.model, cfg.task.dim, batch, train=True)
    rates = sorted(size * n_steps / t for t in times)
    paired = sorted(size * n_steps * flops / t / 1e9 / p for t, p in zip(times, peaks))
    cpu_per = min(cpu) / (size * n_steps)
    best, peak = rates[-1], max(peaks)
    row = dict(
        dim=cfg.task.dim, batch=batch, ensemble=size, ensemble_loop=trainer.ensemble_loop,
        devices=int(train.ensemble_mesh(size).devices.size),
        steps_per_call=n_steps, repeats=repeats,
        model_steps_per_s=best, model_steps_per_s_spread=dict(min=rates[0], median=rates[len(rates) // 2], max=best),
        examples_per_s=best * batch, flops_per_model_step=flops, gflops=best * flops / 1e9,
        peak_gflops=peak, fraction_of_peak=best * flops / 1e9 / peak,
        fraction_of_peak_paired=dict(min=paired[0], median=paired[len(paired) // 2], max=paired[-1]),
        cpu_s_per_model_step=cpu_per, model_steps_per_s_all_cores=(os.cpu_count() or 1) / cpu_per,
        compile_s=compile_s, load_average=os.getloadavg()[0], backend=jax.default_backend())
    if baseline:
        base_rates = sorted(size * base_steps / t for t in base_times)
        paired_speedup = sorted((n_steps / t) / (base_steps / tb) for t, tb in zip(times, base_times))
        row.update(baseline_model_steps_per_s=base_rates[-1], baseline_steps_per_model=base_steps,
                   speedup_vs_baseline=best / base_rates[-1],
                   speedup_vs_baseline_paired=dict(min=paired_speedup[0],
                                                   median=paired_speedup[len(paired_speedup) // 2],
                                                   max=paired_speedup[-1]))
    return row


def bench_row(name: str, size: int, repeats: int, target_s: float, min_steps: int, batch: int = BATCH) -> dict:
    return dict(benchmark="train_throughput", model=name,
                **time_ensemble(_experiment(name, size, batch), repeats, target_s, min_steps))


def ensemble_loss_rows(names: list[str], size: int, repeats: int, target_s: float) -> list[dict]:
    """E = 1 against E = ``size`` with ``lax.map`` and with ``vmap``, per model, in CPU time per model-step."""
    rows = []
    for name in names:
        single = time_ensemble(_experiment(name, 1), repeats, target_s, 32, loop="map", baseline=False)
        for loop in ("map", "vmap"):
            r = time_ensemble(_experiment(name, size), repeats, target_s, 32, loop=loop, baseline=False)
            rows.append(dict(benchmark="ensemble_loss", model=name, **r,
                             single_cpu_s_per_model_step=single["cpu_s_per_model_step"],
                             single_model_steps_per_s=single["model_steps_per_s"],
                             single_fraction_of_peak=single["fraction_of_peak"],
                             cpu_cost_vs_single=r["cpu_s_per_model_step"] / single["cpu_s_per_model_step"],
                             wall_cost_vs_single=single["model_steps_per_s"] / r["model_steps_per_s"]))
    return rows


def preset_ensembles(preset: str = "standard") -> list[tuple[str, config.ExperimentConfig, object]]:
    """Every training ensemble of a bundled preset as ``(experiment/run, config, measure budgets or
    None)``, built as the experiments build them (their config sections; the tradeoff's per-model and
    the defences' and attributions' train overrides)."""
    from spheres.experiments import common, defences
    from spheres.experiments.reproduce import load_reproduce_config, preset_path

    rc = load_reproduce_config(preset_path(preset))
    out = []
    for name in rc.experiments:
        sec = rc.section(name)
        if name == "quadratic":
            out.append((f"{name}/run", common.run_config(sec.task, f"quad-w{sec.width}", sec.train), None))
        elif name == "tradeoff":
            for m in sec.models:
                run = common.run_config(sec.task, m, sec.train_of(m), sec.model_learning_rates)
                out.append((f"{name}/{m}", run, sec.measure))
            for label, m, train in sec.extra_run_trains():
                out.append((f"{name}/{label}", common.run_config(sec.task, m, train), sec.measure))
        elif name == "recipes":
            for m in sec.models:
                for rname, recipe in sec.recipes.items():
                    out.append((f"{name}/{m}/{rname}", config.ExperimentConfig(
                        task=sec.task, model=config.parse_model_name(m), train=recipe.train(sec.train)), sec.measure))
        elif name == "dimsweep":
            for d in sec.dims:
                task = config.TaskConfig(dim=d, outer_radius=sec.outer_radius)
                for t in sec.models:
                    out.append((f"{name}/d{d}-{t.format(dim=d)}", common.run_config(
                        task, t.format(dim=d), sec.train, sec.model_learning_rates, rate_key=t), sec.measure))
        elif name == "defences":
            for spec in defences.specs(sec):
                out.append((f"{name}/{spec.run}", config.ExperimentConfig(
                    task=sec.task, model=config.parse_model_name(spec.model),
                    train=defences.spec_train(sec, spec)), sec.measure))
        elif name == "attributions":
            for d in sec.all_dims:
                task = dataclasses.replace(sec.task, dim=d)
                for m in sec.models:
                    out.append((f"{name}/{m.format(dim=d)}-d{d}", common.run_config(
                        task, m.format(dim=d), sec.train, sec.model_learning_rates, rate_key=m), None))
    return out


def standard_rows(repeats: int, target_s: float, only: list[str] | None = None) -> list[dict]:
    """One row per training ensemble of the standard preset (those whose name contains one of
    ``only``, when given): its measured rate and training time."""
    rows = []
    for label, cfg, _ in preset_ensembles("standard"):
        if only and not any(o in label for o in only):
            continue
        r = time_ensemble(cfg, repeats, target_s, 4, baseline=False)
        size, steps = cfg.train.ensemble_size, cfg.train.steps
        rows.append(dict(benchmark="standard_ensemble", run=label, model=cfg.model.name, **r, train_steps=steps,
                         train_seconds=size * steps / r["model_steps_per_s"],
                         train_seconds_all_cores=size * steps / r["model_steps_per_s_all_cores"]))
    return rows


def recipe_time_row(table: Path, model: str, level: float, repeats: int, target_s: float) -> dict:
    """Wall time to reach ``level`` on both spheres with the recipe study's fastest curve of ``model``.

    Reads the recipe study's steps table (``recipes_steps.csv``: per curve and level, the steps on
    both spheres, measured or extrapolated with the stated fit, and their 95% interval), takes the
    curve with the fewest steps (measured before extrapolated), and times that curve's recipe (batch
    size, one member) here: time = steps x seconds per step, with the interval carried over.
    """
    with open(table, newline="") as f:
        cands = [r for r in csv.DictReader(f) if r["model"] == model and float(r["level"]) == level
                 and r["steps_both"] not in ("", None)]
    if not cands:
        return dict(benchmark="recipe_time", model=model, level=level, table=str(table),
                    skipped="no curve of the table reaches the level or has a falling fit")
    best = min(cands, key=lambda r: (int(r["extrapolated_both"]), float(r["steps_both"])))
    dim = DIM  # the study's dimension, from its results table beside the steps table when there is one
    results = table.with_name("recipes_results.csv")
    if results.exists():
        with open(results, newline="") as f:
            dim = next((int(r["dim"]) for r in csv.DictReader(f) if r["model"] == model), DIM)
    cfg = _experiment(model, 1, int(best["batch_size"]), dim)
    r = time_ensemble(cfg, repeats, target_s, 8, baseline=False)
    steps = float(best["steps_both"])
    lo = float(best["steps_both_lower"]) if best["steps_both_lower"] else steps
    hi = float(best["steps_both_upper"]) if best["steps_both_upper"] else steps
    per, per_cores = 1.0 / r["model_steps_per_s"], 1.0 / r["model_steps_per_s_all_cores"]
    return dict(benchmark="recipe_time", model=model, dim=dim, level=level, table=str(table), recipe=best["recipe"],
                learning_rate=float(best["learning_rate"]), batch_size=int(best["batch_size"]),
                fitted_last_step=int(float(best["last_step"])), extrapolated=bool(int(best["extrapolated_both"])),
                slope_inner=best["slope_inner"], slope_outer=best["slope_outer"],
                steps=steps, steps_95=[lo, hi], seconds=steps * per, seconds_95=[lo * per, hi * per],
                hours_all_cores=steps * per_cores / 3600,
                hours_all_cores_95=[lo * per_cores / 3600, hi * per_cores / 3600],
                **{f"timing_{k}": v for k, v in r.items() if k in ("model_steps_per_s", "model_steps_per_s_all_cores",
                                                                    "fraction_of_peak", "peak_gflops", "load_average")})


def schedule_time_row(path: Path, repeats: int, target_s: float) -> list[dict]:
    """Wall time here of the schedule the tradeoff's end-of-schedule law puts at 1e-6 on both spheres
    (``tradeoff_schedule_law.json``, one entry per net and group): steps x seconds per step of that
    model at that batch size (one member), with the law's 95% interval carried over."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for e in entries:
        if e.get("steps") in (None, "inf"):
            out.append(dict(benchmark="schedule_time", group=e.get("group"), skipped="the law gives no length"))
            continue
        cfg = _experiment(e["model"], 1, int(e["batch_size"]), int(e["dim"]))
        r = time_ensemble(cfg, repeats, target_s, 8, baseline=False)
        steps = float(e["steps"])
        lo, hi = (float(e[k]) if e.get(k) not in (None, "inf") else math.inf for k in ("steps_lower", "steps_upper"))
        per, per_cores = 1.0 / r["model_steps_per_s"], 1.0 / r["model_steps_per_s_all_cores"]
        out.append(dict(benchmark="schedule_time", table=str(path), group=e["group"], model=e["model"], dim=e["dim"],
                        batch_size=e["batch_size"], level=e["level"], lengths=e["lengths"],
                        slope_inner=e["slope_inner"], slope_outer=e["slope_outer"], limiting_sphere=e["limiting_sphere"],
                        steps=steps, steps_95=[lo, hi], seconds=steps * per, seconds_95=[lo * per, hi * per],
                        hours_all_cores=steps * per_cores / 3600,
                        hours_all_cores_95=[lo * per_cores / 3600, hi * per_cores / 3600],
                        **{f"timing_{k}": v for k, v in r.items()
                           if k in ("model_steps_per_s", "model_steps_per_s_all_cores", "fraction_of_peak",
                                    "peak_gflops", "load_average")}))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 2 minutes)")
    parser.add_argument("--models", nargs="+", default=list(config.PAPER_MODELS), choices=list(config.PAPER_MODELS))
    parser.add_argument("--ensembles", nargs="+", type=int, default=None, help="ensemble sizes (default 1 8 32)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batches", nargs="+", type=int, default=[BATCH], help="batch sizes (default 50)")
    parser.add_argument("--ensemble-loss", action="store_true",
                        help="what E = 8 loses per model against E = 1, lax.map and vmap (relu-w1000-d2, quad-w1000)")
    parser.add_argument("--standard", action="store_true", help="the standard preset's training ensembles")
    parser.add_argument("--runs", nargs="+", default=None, metavar="TEXT",
                        help="with --standard: only the ensembles whose name (experiment/run) contains TEXT")
    parser.add_argument("--recipes-table", metavar="recipes_steps.csv", default=None,
                        help="the recipe study's steps table: wall time to 1e-6 with its fastest recipe")
    parser.add_argument("--schedule-law", metavar="tradeoff_schedule_law.json", default=None,
                        help="time the schedule the tradeoff's end-of-schedule law puts at 1e-6 on both spheres")
    parser.add_argument("--recipes-model", default="relu-w1000-d2", help="the model of --recipes-table")
    parser.add_argument("--recipes-level", type=float, default=1e-6, help="the error rate of --recipes-table")
    parser.add_argument("--only-extra", action="store_true",
                        help="skip the default rows (run only --ensemble-loss, --standard, --recipes-table, "
                             "--schedule-law)")
    args = parser.parse_args(argv)
    sizes = args.ensembles or ([1, 8] if args.quick else [1, 8, 32])
    repeats = args.repeats or (3 if args.quick else 5)
    target_s = 0.5 if args.quick else 1.5
    budget = min(12 << 30, _available_memory() // 2)
    extra_repeats = 2 if args.quick else 3
    if args.ensemble_loss:
        for row in ensemble_loss_rows(["quad-w1000", "relu-w1000-d2"], 8, extra_repeats, target_s):
            print(json.dumps(row), flush=True)
    if args.standard:
        for row in standard_rows(extra_repeats, target_s, args.runs):
            print(json.dumps(row), flush=True)
    if args.schedule_law:
        for row in schedule_time_row(Path(args.schedule_law), extra_repeats, target_s):
            print(json.dumps(row), flush=True)
    if args.recipes_table:
        print(json.dumps(recipe_time_row(Path(args.recipes_table), args.recipes_model, args.recipes_level,
                                         extra_repeats, target_s)), flush=True)
    if args.only_extra:
        return 0
    for name, size, batch in ((n, e, b) for n in args.models for e in sizes for b in args.batches):
        too_big = _memory_estimate(name, size) > budget
        too_slow = args.quick and name == "relu-w2000-d8" and size > 1
        if too_big or too_slow:
            why = "memory" if too_big else "--quick time budget"
            print(json.dumps(dict(benchmark="train_throughput", model=name, ensemble=size, skipped=why,
                                  memory_estimate_bytes=_memory_estimate(name, size), memory_budget_bytes=budget)))
            continue
        row = bench_row(name, size, repeats if size * _param_count(name) < 10**8 else max(2, repeats // 2),
                        target_s, min_steps=8 if args.quick else 16, batch=batch)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
