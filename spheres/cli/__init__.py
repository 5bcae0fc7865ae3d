"""The ``spheres`` command line.

A thin dispatcher: each subcommand lives in ``spheres.cli.<name>`` and provides ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``. Command modules import only the standard
library at module level (JAX, SciPy and matplotlib are imported inside ``run`` or, where a
default comes from the library, inside ``add_arguments``), and only the chosen command's
``add_arguments`` is called, so ``spheres --help`` and ``spheres bound --help`` never import JAX.

Exit statuses:
  0    success.
  2    bad input: :class:`spheres.core.errors.InputError` (or argparse's own error); one line
       naming the flag or path and the allowed range, nothing written.
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM. Finished work is saved (every file is
       written atomically) and the same command resumes. See :mod:`spheres.cli._signals`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spheres import __version__
from spheres.cli import _common, _signals
from spheres.core.errors import InputError

#: subcommand name -> module under spheres.cli
COMMANDS = {
    "bound": "bound",
    "demo": "demo",
    "train": "train",
    "measure": "measure",
    "quadratic": "quadratic",
    "reproduce": "reproduce",
    "attribute": "attribute",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2 (no usage dump)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _chosen(argv: list[str] | None) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is a command name), if any."""
    for arg in argv or ():
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser. With ``argv``, only the subcommand it names gets its arguments (the others
    get their one-line help): the rest are never imported beyond their ``HELP``."""
    parser = _Parser(prog="spheres", description="spheres: the geometry of adversarial examples on two concentric "
                     "spheres (Gilmer et al. 2018). Each command validates its input; bad input exits 2, "
                     "Ctrl-C exits 130 with finished work saved.")
    parser.add_argument("--version", action="version", version=f"spheres {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    chosen = _chosen(argv) if argv is not None else None
    for name, mod_name in COMMANDS.items():
        mod = importlib.import_module(f"spheres.cli.{mod_name}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        if argv is None or name == chosen:
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status.

    ``main()`` with no argument is the program (the ``spheres`` script, ``python -m spheres.cli``):
    it reads ``sys.argv``, handles SIGINT/SIGTERM (:mod:`spheres.cli._signals`) and, when
    interrupted, ends the process with ``os._exit`` after flushing its output, so no background
    thread (XLA's compiler and thread pools) can crash the interpreter's teardown. ``main(argv)``
    (tests, other programs) installs no handler and returns the status.
    """
    program = argv is None
    if program:
        argv = sys.argv[1:]
        _signals.install()
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if program:
        _signals.set_command(args.command)
    status = 0
    try:
        status = int(args._run(args) or 0)
    except InputError as err:
        print(f"spheres {args.command}: error: {err}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print(f"spheres {args.command}: {_signals.MESSAGE}", file=sys.stderr)
        status = _signals.status()
    finally:
        _common.reset_logging()
    if program and status in (_signals.SIGINT_STATUS, _signals.SIGTERM_STATUS):
        _signals.exit_now(status)
    return status
