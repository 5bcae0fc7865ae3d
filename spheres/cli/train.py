"""``spheres train``: train the ensemble of a TOML config into a run directory (resumable).

Before training it prints one plan line (models, steps, dimension, an estimated time from a short
timed warm-up, "resumable"); ``--dry-run`` prints it and exits without writing. Progress is a bar
on a terminal and a log line every ``--log-every`` seconds otherwise. Ctrl-C stops after the chunk
in progress is saved (exit 130); the same command resumes bit for bit.
"""

from __future__ import annotations

import argparse
import sys

from spheres.cli import _common, _signals

HELP = "train an ensemble from a TOML config into a run directory; re-run the same command to resume"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE.toml",
                        help="experiment config (e.g. experiments/configs/quick.toml)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run directory: created if missing, resumed if it holds the same run")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is also off when stderr is not a terminal)")
    parser.add_argument("--log-every", type=float, default=60.0, metavar="SECONDS",
                        help="seconds between progress log lines when stderr is not a terminal (default 60)")
    _common.add_run_flags(parser)


def run(args: argparse.Namespace) -> int:
    from spheres.core.errors import InputError

    if not args.log_every > 0:
        raise InputError("--log-every", f"must be a number of seconds > 0, got {args.log_every}")
    log = _common.setup_logging("train", args)
    from spheres.nets import runs
    from spheres.nets.config import load_config
    from spheres.nets.train import initialize_distributed

    # several processes/hosts: join the cluster named by JAX_COORDINATOR_ADDRESS etc. (README) before
    # any other JAX call; a no-op for one process
    initialize_distributed()

    cfg = load_config(args.config)
    saved = runs.check_run_dir(cfg, args.out)
    steps = cfg.train.steps
    if saved >= steps:
        print(f"nothing to do: the run in {args.out} is already complete ({steps} steps)")
        print(runs.describe(runs.load_run(args.out)))
        return 0
    if not args.dry_run:
        _common.check_output_dir(args.out, "--out")
    log.debug("config %s loaded; compiling and timing a warm-up", args.config)
    plan = runs.plan_training(cfg, args.out, warmup=True)
    if not args.quiet or args.dry_run:
        print(f"spheres train: plan: {plan.line()}", file=sys.stderr if not args.dry_run else sys.stdout)
    if plan.compile_seconds is not None:
        log.debug("warm-up: first call (compilation) %.2f s, %.3g s per ensemble step",
                  plan.compile_seconds, plan.seconds_per_step)
    if args.dry_run:
        return 0
    if saved > 0:
        log.info("resuming the run in %s from step %d of %d", args.out, saved, steps)
    with _signals.deferred():
        runs.run_training(cfg, args.out, progress=not (args.no_progress or args.quiet), on_chunk=_signals.check,
                          log_every=args.log_every)
    print(runs.describe(runs.load_run(args.out)))
    return 0
