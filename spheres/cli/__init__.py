"""The ``spheres`` command line.

A thin dispatcher: each subcommand lives in ``spheres.cli.<name>`` and provides
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported lazily so that ``spheres bound`` does not pay for importing the training stack.

Bad input raises :class:`spheres.core.errors.InputError` (or argparse's own error); either way
the user sees one line naming the flag and the allowed range, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def _available() -> dict[str, object]:
    mods = {}
    for name, mod in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(f"spheres.cli.{mod}")
        except ModuleNotFoundError as err:
            if err.name != f"spheres.cli.{mod}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spheres", description="spheres: the geometry of adversarial examples on two concentric "
                     "spheres (Gilmer et al. 2018). Each command validates its input; bad input exits 2.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, mod in _available().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except InputError as err:
        print(f"spheres {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spheres {args.command}: interrupted; finished work is saved, re-run the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
