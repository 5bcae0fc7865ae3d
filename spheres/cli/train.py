"""``spheres train``: train the ensemble of a TOML config into a run directory (resumable)."""

from __future__ import annotations

import argparse
import sys

HELP = "train an ensemble from a TOML config into a run directory; re-run the same command to resume"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE.toml",
                        help="experiment config (e.g. experiments/configs/quick.toml)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run directory: created if missing, resumed if it holds the same run")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is also off when stderr is not a terminal)")


def run(args: argparse.Namespace) -> int:
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
    else:
        if saved > 0:
            print(f"resuming the run in {args.out} from step {saved} of {steps}", file=sys.stderr)
        runs.run_training(cfg, args.out, progress=not args.no_progress)
    print(runs.describe(runs.load_run(args.out)))
    return 0
