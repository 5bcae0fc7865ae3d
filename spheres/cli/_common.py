"""What several commands share: output-path checks, the --quiet/--verbose/--dry-run flags, logging.

Standard library only (the dispatcher imports every command module to build ``--help``).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import tempfile
from pathlib import Path

from spheres.core.errors import InputError


def _reason(err: OSError) -> str:
    if err.errno in (errno.EROFS,):
        return "read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (read-only or immutable folder)"
    if err.errno == errno.ENOENT:  # e.g. /proc: the folder exists but accepts no new entries
        return "this file system does not allow creating files or folders here"
    return err.strerror or str(err)


def check_output_dir(path: str | os.PathLike, field: str) -> Path:
    """Check, writing nothing that stays, that ``path`` is or can become a writable directory.

    The nearest existing ancestor must be a directory in which a file can be created: the check
    creates and removes a temporary directory there (permission bits alone are not enough: root
    ignores them, and read-only or immutable file systems and ``/proc`` refuse writes they allow).

    Raises:
      InputError(field, ...) naming the path and the reason (a file in the way, permission
      denied, read-only file system, ...).
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.is_symlink():  # a dangling link
            raise InputError(field, f"cannot write to {str(path)!r}: {str(probe)!r} is a broken symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file, not a directory" if probe == path else f"{str(probe)!r} is a file, not a directory"
        raise InputError(field, f"cannot write to {str(path)!r}: {what}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".spheres-write-check-", dir=probe))
    except OSError as err:
        where = "" if probe == path else f" (in {str(probe)!r})"
        raise InputError(field, f"cannot write to {str(path)!r}{where}: {_reason(err)}") from None
    return path


def add_run_flags(parser: argparse.ArgumentParser, dry_run: bool = True) -> None:
    """``--quiet``, ``--verbose`` and (optionally) ``--dry-run`` for a long-running command."""
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true",
                       help="print only the result and errors (no plan line, no progress)")
    noise.add_argument("--verbose", "-v", action="store_true",
                       help="log every chunk and checkpoint (and what is loaded, compiled and written)")
    if dry_run:
        parser.add_argument("--dry-run", action="store_true",
                            help="print the plan (with its time estimate from a short warm-up) and exit; "
                                 "writes nothing")


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at the time (tests replace it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record):
        self.setStream(sys.stderr)
        super().emit(record)


def reset_logging() -> None:
    """Undo :func:`setup_logging` (``spheres.cli.main`` calls it after every command)."""
    root = logging.getLogger("spheres")
    for h in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(h)
    root.setLevel(logging.NOTSET)
    root.propagate = True


def setup_logging(command: str, args: argparse.Namespace) -> logging.Logger:
    """Route the ``spheres`` loggers to stderr: INFO (progress lines when stderr is not a terminal),
    DEBUG with ``--verbose``, WARNING with ``--quiet``. Returns the command's logger."""
    reset_logging()
    root = logging.getLogger("spheres")
    handler = _StderrHandler()
    stamp = "" if sys.stderr.isatty() else "%(asctime)s "
    handler.setFormatter(logging.Formatter(f"{stamp}spheres {command}: %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING if getattr(args, "quiet", False) else
                  logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    root.propagate = False
    return logging.getLogger(f"spheres.cli.{command}")
