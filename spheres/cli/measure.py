"""``spheres measure RUN_DIR``: mu(E) and d(E) for every model and checkpoint of a trained run.

Thin entry point over :func:`spheres.measure.pipeline.measure_run`: parses the budgets, measures
(resumably), writes ``RUN_DIR/measurements.csv`` and prints a summary of the last checkpoint
(or, with ``--json``, every row as one JSON array).

    spheres measure runs/quick
    spheres measure runs/quick --mc-samples 1000000 --method splitting --json
"""

from __future__ import annotations

import argparse
import json
import math

HELP = "measure error rates mu(E) (Monte Carlo / splitting / exact) and d(E) (attack / exact) of a trained run"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from spheres.measure.pipeline import METHODS, MeasureConfig

    d = MeasureConfig()
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `spheres train`")
    parser.add_argument("--mc-samples", type=_positive_int, default=d.mc_samples,
                        help=f"Monte Carlo samples per sphere and model (default {d.mc_samples})")
    parser.add_argument("--attack-points", type=_positive_int, default=d.attack_points,
                        help=f"inner-sphere points attacked per model for d(E) (>= 2, default {d.attack_points})")
    parser.add_argument("--method", choices=METHODS, default=d.method,
                        help="error-rate method: auto = Monte Carlo, splitting where it sees fewer than "
                             "--min-errors errors (default auto)")
    parser.add_argument("--min-errors", type=_positive_int, default=d.min_errors,
                        help=f"auto: switch to splitting below this many Monte Carlo errors (default {d.min_errors})")
    parser.add_argument("--splitting-particles", type=_positive_int, default=d.splitting_particles,
                        help=f"particles per splitting run (>= 10, default {d.splitting_particles})")
    parser.add_argument("--splitting-repeats", type=_positive_int, default=d.splitting_repeats,
                        help=f"independent splitting runs per estimate (default {d.splitting_repeats})")
    parser.add_argument("--splitting-max-levels", type=_positive_int, default=d.splitting_max_levels,
                        help=f"splitting level cap; rates below ~2^-levels are reported out of reach "
                             f"(default {d.splitting_max_levels})")
    parser.add_argument("--seed", type=int, default=d.seed, help="measurement seed (default 0)")
    parser.add_argument("--step", type=_positive_int, action="append", default=[],
                        help="measure only this checkpoint step (repeatable; default: every saved checkpoint)")
    parser.add_argument("--json", action="store_true", help="print every row as one JSON array")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def run(args: argparse.Namespace) -> int:
    from spheres.measure.pipeline import TABLE_FILE, MeasureConfig, measure_run
    from spheres.nets.runs import load_run

    mcfg = MeasureConfig(mc_samples=args.mc_samples, attack_points=args.attack_points, method=args.method,
                         min_errors=args.min_errors, splitting_particles=args.splitting_particles,
                         splitting_repeats=args.splitting_repeats, splitting_max_levels=args.splitting_max_levels,
                         seed=args.seed, steps=tuple(args.step))
    load_run(args.run_dir)  # fail fast, before anything is written
    rows = measure_run(args.run_dir, mcfg, progress=not args.no_progress and not args.json)
    if args.json:
        print(json.dumps(rows, allow_nan=False))
        return 0
    last = max(r["step"] for r in rows)
    print(f"{'member':>6} {'seed':>5} {'lr':>8} {'N':>8}  {'mu inner [95% interval]':>34} {'method':>11}  "
          f"{'mu outer':>9}  {'d(E) attack':>15} {'fail':>5}" + ("  exact mu inner  exact d(E)" if "exact_mu_inner"
                                                                     in rows[0] else ""))
    for r in (r for r in rows if r["step"] == last):
        line = (f"{r['member']:>6} {r['seed']:>5} {r['learning_rate']:>8.2g} {r['train_size'] or 'online':>8}  "
                f"{_fmt(r['mu_inner']):>9} [{_fmt(r['mu_inner_lower'])}, {_fmt(r['mu_inner_upper'])}]".ljust(70)
                + f" {r['mu_inner_method']:>11}  {_fmt(r['mu_outer']):>9}  "
                f"{_fmt(r['attack_mean_distance'], '.4f')}+-{_fmt(r['attack_mean_distance_se'], '.1g'):<6}"
                f" {r['attack_failures']:>4}")
        if "exact_mu_inner" in r:
            line += f"  {_fmt(r['exact_mu_inner']):>14}  {_fmt(r['exact_mean_distance'], '.4f')}"
        print(line)
    print(f"step {last}; {len(rows)} rows (members x checkpoints) in {args.run_dir}/{TABLE_FILE}")
    return 0
