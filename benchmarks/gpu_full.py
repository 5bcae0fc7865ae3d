"""Time a preset's training and measurement on this machine's accelerator (or CPU) and write a JSON record.

Two modes:

- **sample** (default): for every training ensemble of the preset (its models, dimensions, batch
  sizes, ensemble sizes and defences, as the experiments build them: ``train_throughput.preset_ensembles``)
  a short training run of ``--steps`` steps (one compiled chunk after a one-step warm-up, so the
  compile is not timed) gives the model-steps/s; from it the training time of the preset's steps
  (``E x steps / rate``). Where the experiment measures its runs (a ``measure`` section), one
  checkpoint of that short run is measured with the preset's Monte Carlo and attack budgets
  (``method = "monte_carlo"``) and timed (two checkpoints are measured, the first one compiles; the
  second is timed alone), and the measurement time is that times the preset's checkpoints.
  Splitting (used where Monte Carlo sees fewer than ``min_errors`` errors), the defences'
  certification and the attributions are NOT in these numbers: they depend on how low the trained
  nets get; ``--run`` times them for real.
- **run** (``--run``): ``spheres reproduce`` of the preset (resumable, into ``--workdir``), timed per
  experiment from its ``summary.json``: the real wall time, everything included.

``--smoke`` shrinks the sample mode to run on a CPU in about a minute (the quick preset, the first
ensemble of the tradeoff and dimension sweep, 3 steps, 2,000 samples, 4 attacked points): a check
that the script works, not a timing (``--quick``, which ``make bench`` passes, is the same).

The record (``--out``, default ``results/gpu_full.json``, with ``--smoke`` ``results/gpu_full_smoke.json``;
written atomically): ``mode``, ``preset``,
``device`` (backend, device kind and count, jax version, host CPU count), per ensemble ``run``,
``model``, ``dim``, ``batch``, ``ensemble``, ``steps_timed``, ``train_wall_s``,
``model_steps_per_s``, ``preset_steps``, ``train_estimate_s``, and where measured
``measure_checkpoint_s``, ``measure_checkpoints``, ``measure_estimate_s``; totals; or, with
``--run``, ``experiment_seconds`` and ``total_seconds``.

Usage: ``benchmarks/gpu_full.sh [--smoke] [--run] [--preset full] [--steps 200] [--runs TEXT ...] [--out FILE]``
(``--runs tradeoff/``: only the ensembles whose name contains one of the words).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import preset_ensembles  # noqa: E402

from spheres.core.io import write_json_atomic  # noqa: E402
from spheres.measure.pipeline import measure_run  # noqa: E402
from spheres.nets.runs import run_training  # noqa: E402


def device_info() -> dict:
    devices = jax.devices()
    return dict(backend=jax.default_backend(), device_kind=devices[0].device_kind, device_count=len(devices),
                jax=jax.__version__, host=platform.node(), host_cpus=os.cpu_count(), machine=platform.machine())


def sample_ensemble(label: str, cfg, mcfg, steps: int, workdir: Path, smoke: bool) -> dict:
    """Train ``cfg``'s ensemble for 1 + ``steps`` steps (the first chunk compiles), time the second
    chunk; measure its last checkpoint with ``mcfg``'s Monte Carlo and attack budgets."""
    size, preset_steps, checkpoints = cfg.train.ensemble_size, cfg.train.steps, len(cfg.train.checkpoint_steps)
    short = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=1 + steps, checkpoints=1,
                                                               extra_checkpoints=(),
                                                               chunk_steps=steps, warmup_steps=0,
                                                               schedule="constant", final_lr_fraction=0.0))
    run_dir = workdir / label.replace("/", "_")
    chunks: list[float] = []
    run_training(short, run_dir, progress=False, on_chunk=lambda *a, **k: chunks.append(time.perf_counter()))
    # chunk boundaries: [1, 1 + steps]; the second chunk (steps steps, compiled) is the timed one
    train_wall = chunks[-1] - chunks[-2] if len(chunks) >= 2 else float("nan")
    rate = size * steps / train_wall
    row = dict(run=label, model=cfg.model.name, dim=cfg.task.dim, batch=cfg.train.batch_size, ensemble=size,
               steps_timed=steps, train_wall_s=train_wall, model_steps_per_s=rate, preset_steps=preset_steps,
               train_estimate_s=size * preset_steps / rate)
    if mcfg is not None:
        budget = dataclasses.replace(mcfg, method="monte_carlo")
        if smoke:
            budget = dataclasses.replace(budget, mc_samples=2000, attack_points=4, attack_restarts=0)
        # A measurement compiles its programs once per run, at its first checkpoint: measure two
        # (steps 1 and the last) and time the second alone, from the callback after each is saved.
        t0 = time.perf_counter()
        saved: list[float] = []
        measure_run(run_dir, dataclasses.replace(budget, steps=(1, short.train.steps)), progress=False,
                    on_step=lambda step: saved.append(time.perf_counter()))
        per = saved[-1] - saved[-2]
        one = saved[-2] - t0
        row.update(measure_checkpoint_s=per, measure_compile_s=max(one - per, 0.0),
                   measure_mc_samples=budget.mc_samples,
                   measure_attack_points=budget.attack_points, measure_checkpoints=checkpoints,
                   measure_estimate_s=per * checkpoints)
    return row


def sample(preset: str, steps: int, smoke: bool, only: list[str] | None = None) -> dict:
    ensembles = [e for e in preset_ensembles(preset) if not only or any(o in e[0] for o in only)]
    if smoke:
        firsts: dict[str, tuple] = {}
        for e in ensembles:
            exp = e[0].split("/")[0]
            if exp in ("tradeoff", "dimsweep") and exp not in firsts:
                firsts[exp] = e
        ensembles = list(firsts.values())
    rows = []
    with tempfile.TemporaryDirectory(prefix="spheres-gpu-full-") as tmp:
        for label, cfg, mcfg in ensembles:
            row = sample_ensemble(label, cfg, mcfg, steps, Path(tmp), smoke)
            print(json.dumps(row), flush=True)
            rows.append(row)
    train_s = sum(r["train_estimate_s"] for r in rows)
    measure_s = sum(r.get("measure_estimate_s", 0.0) for r in rows)
    return dict(ensembles=rows, train_estimate_s=train_s, measure_estimate_s_without_splitting=measure_s,
                total_estimate_s_without_splitting=train_s + measure_s,
                not_timed="splitting (where Monte Carlo sees < min_errors errors), certification (defences), "
                          "attributions: run with --run for the real total")


def run_preset(preset: str, workdir: Path) -> dict:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "spheres.cli", "reproduce", f"--{preset}", "--out", str(workdir), "--no-progress"]
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    summary = json.loads((workdir / "summary.json").read_text())
    return dict(command=" ".join(cmd[2:]), experiment_seconds={k: v["seconds"] for k, v in summary.items()},
                total_seconds=wall, note="a resumed run counts only what it recomputed")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=["quick", "standard", "full"])
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per ensemble (sample mode)")
    parser.add_argument("--smoke", "--quick", action="store_true",
                        help="tiny sizes, for a CPU check of the script (--quick: what `make bench` passes)")
    parser.add_argument("--run", action="store_true", help="run the whole preset (spheres reproduce) and time it")
    parser.add_argument("--workdir", default="results/gpu_full_run", help="results directory of --run (resumable)")
    parser.add_argument("--runs", nargs="+", default=None, metavar="TEXT",
                        help="sample mode: only the ensembles whose name (experiment/run) contains TEXT")
    parser.add_argument("--out", default=None,
                        help="the JSON record (default results/gpu_full.json; --smoke: results/gpu_full_smoke.json)")
    args = parser.parse_args(argv)
    if args.smoke and args.run:
        parser.error("--smoke times a sample, not a run")
    preset = "quick" if args.smoke else args.preset
    steps = 3 if args.smoke else args.steps
    t0 = time.perf_counter()
    record = dict(benchmark="gpu_full", mode="run" if args.run else ("smoke" if args.smoke else "sample"),
                  preset=preset, device=device_info(), load_average=os.getloadavg()[0],
                  started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    record.update(run_preset(preset, Path(args.workdir)) if args.run else sample(preset, steps, args.smoke, args.runs))
    record["wall_s"] = time.perf_counter() - t0
    out = Path(args.out or ("results/gpu_full_smoke.json" if args.smoke else "results/gpu_full.json"))
    write_json_atomic(out, record)
    print(json.dumps({k: v for k, v in record.items() if k != "ensembles"}), flush=True)
    print(f"record: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
