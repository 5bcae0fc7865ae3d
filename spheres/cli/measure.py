"""``spheres measure RUN_DIR``: mu(E) and d(E) for every model and checkpoint of a trained run.

Thin entry point over :func:`spheres.measure.pipeline.measure_run`: parses the budgets, prints one
plan line, measures (resumably), writes ``RUN_DIR/measurements.csv`` (named
``measurements.partial.csv`` until every checkpoint is done) and prints a summary of the last
checkpoint (or, with ``--json``, every row as one JSON array).

    spheres measure runs/quick --mc-samples 20000 --attack-points 20 --splitting-particles 100 --splitting-repeats 2
    spheres measure runs/quick --mc-samples 1000000 --method splitting --json

Budgets are flags of this command, not a table of the training config: a training config
describes a run (and identifies it: ``spheres train`` refuses to resume a run under another
config), while the budgets describe one measurement of it, chosen after training and recorded in
``RUN_DIR/measure/settings.json``. The defaults are the budgets behind the project's tables; the
first example above (the README's) measures the quick run in seconds.

Before measuring it prints one plan line (models, checkpoints, dimension, budgets, how many
checkpoints an earlier attempt finished, "resumable"); the time estimate is logged after the
first checkpoint, which is the warm-up (it is kept, not thrown away). ``--dry-run`` measures one
checkpoint in memory to time it, prints the plan with the estimate and exits, writing nothing.

Ctrl-C ends the process at once (exit 130): every finished checkpoint is saved as a cell and the
same command resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from spheres.cli import _common

HELP = "measure error rates mu(E) (Monte Carlo / splitting / exact) and d(E) (attack / exact) of a trained run"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


#: ``spheres.measure.pipeline.METHODS`` and the defaults of its ``MeasureConfig``, spelled out so that
#: ``spheres measure --help`` does not import JAX (tests/test_cli_plans.py checks that they agree)
METHODS = ("auto", "monte_carlo", "splitting")
DEFAULTS = dict(mc_samples=100_000, attack_points=100, method="auto", min_errors=10, splitting_particles=500,
                splitting_repeats=8, splitting_max_levels=200, attack_restarts=2, restart_budget=4,
                restart_jitter=0.1, max_other_error=1.0, split_exact=True, seed=0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = argparse.Namespace(**DEFAULTS)
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
    parser.add_argument("--attack-restarts", type=int, default=d.attack_restarts,
                        help=f"restart rounds for points whose attack found no error (>= 0, default "
                             f"{d.attack_restarts})")
    parser.add_argument("--restart-budget", type=_positive_int, default=d.restart_budget,
                        help=f"factor on the ascent budget of a restart (default {d.restart_budget})")
    parser.add_argument("--restart-jitter", type=float, default=d.restart_jitter,
                        help=f"first restart's move, fraction of the radius, in (0, 1] (default {d.restart_jitter})")
    parser.add_argument("--max-other-error", type=float, default=d.max_other_error,
                        help="auto splitting and attack restarts on a sphere only for models whose Monte Carlo "
                             f"error rate on the other sphere is at most this, in (0, 1] (default {d.max_other_error:g}: always)")
    parser.add_argument("--no-split-exact", dest="split_exact", action="store_false", default=d.split_exact,
                        help="auto: no splitting for nets whose rates are exact (the quad net; default: split "
                             "there too, as a check)")
    parser.add_argument("--seed", type=int, default=d.seed, help="measurement seed (default 0)")
    parser.add_argument("--step", type=_positive_int, action="append", default=[],
                        help="measure only this checkpoint step (repeatable; default: every saved checkpoint)")
    parser.add_argument("--json", action="store_true", help="print every row as one JSON array")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--log-every", type=float, default=60.0, metavar="SECONDS",
                        help="seconds between progress log lines when stderr is not a terminal (default 60)")
    _common.add_run_flags(parser)


def _fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _plan_line(run, steps: list[int], done: int, mcfg, seconds_per_checkpoint: float | None) -> str:
    from spheres.nets.runs import format_seconds

    n = len(run.members)
    head = (f"{n} model{'s' if n != 1 else ''} {run.config.model.name} x {len(steps)} checkpoint"
            f"{'s' if len(steps) != 1 else ''} at d = {run.config.task.dim}: Monte Carlo {mcfg.mc_samples:,} "
            f"samples per sphere, {mcfg.attack_points} attack points, method {mcfg.method}")
    if done >= len(steps):
        return f"{head}: already measured, nothing to compute"
    est = ("time estimated after the first checkpoint" if seconds_per_checkpoint is None else
           f"about {format_seconds(seconds_per_checkpoint * (len(steps) - done))} on this machine")
    resumed = f"; {done} of {len(steps)} checkpoints already measured" if done else ""
    return f"{head}: {est}{resumed}; resumable (re-run the same command after an interruption)"


def run(args: argparse.Namespace) -> int:
    from spheres.core.errors import InputError

    if not args.log_every > 0:
        raise InputError("--log-every", f"must be a number of seconds > 0, got {args.log_every}")
    log = _common.setup_logging("measure", args)
    from spheres.core.cells import CellStore, check_settings
    from spheres.measure import pipeline
    from spheres.nets.runs import format_seconds, load_run

    mcfg = pipeline.MeasureConfig(mc_samples=args.mc_samples, attack_points=args.attack_points, method=args.method,
                                  min_errors=args.min_errors, splitting_particles=args.splitting_particles,
                                  splitting_repeats=args.splitting_repeats,
                                  splitting_max_levels=args.splitting_max_levels,
                                  attack_restarts=args.attack_restarts, restart_budget=args.restart_budget,
                                  restart_jitter=args.restart_jitter,
                                  max_other_error=args.max_other_error, split_exact=args.split_exact,
                                  seed=args.seed,
                                  steps=tuple(args.step))
    run = load_run(args.run_dir)  # fail fast, before anything is written
    steps = list(mcfg.steps or run.checkpoint_steps)
    for s in steps:
        if s not in run.checkpoint_steps:
            raise InputError("--step", f"no checkpoint at step {s}; saved steps: "
                             f"{', '.join(map(str, run.checkpoint_steps)) or 'none (train the run first)'}")
    if (run.path / pipeline.MEASURE_DIR / pipeline.SETTINGS_FILE).is_file():
        # settings of an earlier attempt: refuse other settings before the plan (read-only when the file exists)
        check_settings(run.path / pipeline.MEASURE_DIR / pipeline.SETTINGS_FILE, mcfg.settings(), mcfg.LATER_FIELDS,
                       mcfg.FLAGS)
    if not args.dry_run:
        _common.check_output_dir(run.path / pipeline.MEASURE_DIR, "RUN_DIR")
    store = CellStore(run.path / pipeline.MEASURE_DIR)
    pending = [s for s in steps if not store.done(f"step={s:08d}")]
    done = len(steps) - len(pending)
    per_checkpoint = None
    if args.dry_run and pending:  # the warm-up: measure one checkpoint in memory (nothing is saved)
        t0 = time.perf_counter()
        pipeline.measure_step(run, pending[0], mcfg)
        per_checkpoint = time.perf_counter() - t0
    if not args.quiet or args.dry_run:
        print(f"spheres measure: plan: {_plan_line(run, steps, done, mcfg, per_checkpoint)}",
              file=sys.stdout if args.dry_run else sys.stderr)
    if args.dry_run:
        return 0

    start = last_log = time.monotonic()
    finished = []

    def on_step(step: int) -> None:
        nonlocal last_log
        finished.append(step)
        now = time.monotonic()
        computed = [s for s in finished if s in pending]
        left = len(steps) - len(finished)
        eta = format_seconds((now - start) / len(computed) * left) if computed else "unknown"
        first = len(computed) == 1 and step in pending and left > 0
        periodic = not sys.stderr.isatty() and now - last_log >= args.log_every
        level = 20 if (first or periodic) and not args.no_progress else 10  # INFO, DEBUG
        log.log(level, "checkpoint %d/%d (step %d) measured; %s elapsed, about %s left", len(finished), len(steps),
                step, format_seconds(now - start), eta)
        if level == 20:
            last_log = now

    rows = pipeline.measure_run(args.run_dir, mcfg, progress=not (args.no_progress or args.json or args.quiet),
                                on_step=on_step)
    from spheres.measure.results import ResultRow

    table = [ResultRow.from_measurement(r) for r in rows]
    if args.json:  # the typed rows: the experiments' column names, the cap bound beside every measurement
        print(json.dumps([t.as_json() for t in table], allow_nan=False))
        return 0
    last = max(t.step for t in table)
    print(summary_table([t for t in table if t.step == last]))
    print(f"step {last}; {len(rows)} rows (members x checkpoints) in {args.run_dir}/{pipeline.RESULTS_FILE} "
          f"(typed, with the bound) and {pipeline.TABLE_FILE} (every measured column)")
    return 0


def summary_table(rows) -> str:
    """One line per member and sphere: mu with its interval, d(E), the cap bound at mu (over mu's interval),
    the ratio and the verdict."""
    head = (f"{'member':>6} {'N':>7} {'sphere':>6}  {'mu [95% interval] (method)':<44} {'d(E) +- SE (fail)':<22} "
            f"{'optimal d(E) [over mu interval]':<30} {'ratio':>6}  bound")
    lines = [head]
    for i, t in enumerate(rows):
        for sphere in ("inner", "outer"):
            o = "" if sphere == "inner" else "_outer"
            mu, lo, hi = getattr(t, f"mu{o}"), getattr(t, f"mu{o}_lower"), getattr(t, f"mu{o}_upper")
            method = getattr(t, f"mu{o}_method")
            d, se, fail = getattr(t, f"distance{o}"), getattr(t, f"distance{o}_se"), getattr(t, f"distance{o}_failures")
            opt, olo, ohi = (getattr(t, f"optimal_distance{o}"), getattr(t, f"optimal_distance{o}_low"),
                             getattr(t, f"optimal_distance{o}_high"))
            ok = t.consistent_with_bound if sphere == "inner" else t.consistent_outer
            error_set = t.error_set if sphere == "inner" else t.error_set_outer
            rate = f"{_fmt(mu)} [{_fmt(lo)}, {_fmt(hi)}] ({method})"
            dist = error_set if error_set != "errors" else f"{_fmt(d, '.4f')} +- {_fmt(se, '.1g')} ({fail})"
            verdict = {None: "not checked", 1: "consistent", 0: "ABOVE (a bug)"}[ok]
            lines.append(f"{t.member if hasattr(t, 'member') else i:>6} {t.train_size or 'online':>7} {sphere:>6}  "
                         f"{rate:<44} {dist:<22} {_fmt(opt, '.4f') + ' [' + _fmt(olo, '.4f') + ', ' + _fmt(ohi, '.4f') + ']':<30} "
                         f"{_fmt(getattr(t, f'ratio{o}'), '.3f'):>6}  {verdict}")
    return "\n".join(lines)
