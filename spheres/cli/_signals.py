"""Ctrl-C and SIGTERM for the ``spheres`` program: always the documented exit status, never a crash.

Why not Python's default (``KeyboardInterrupt`` wherever the main thread happens to be)? The
exception can land inside JAX's Python internals (a compile-cache callback, a ``__del__``, where it
is swallowed or leaves state half-updated), and the interpreter's teardown then runs while XLA's
compiler and thread pools are still busy: the process printed "interrupted" and then died with
SIGSEGV (exit 139) in about half the tries. Instead:

* :func:`install` replaces the SIGINT and SIGTERM handlers. By default the handler ends the
  process at once: it prints one line, flushes stdout and stderr and calls ``os._exit`` with 130
  (SIGINT) or 143 (SIGTERM), skipping the teardown. That is safe at any moment because every file
  the library writes is written atomically (:mod:`spheres.core.io`: a temporary file renamed over
  the target) and every resumable unit is committed by one such rename; at worst the unit in
  progress is redone.
* Inside :func:`deferred` (the training loop) the first signal only sets a flag: the chunk being
  computed finishes and is saved, then :func:`check` (called between chunks) raises
  ``KeyboardInterrupt``, which the dispatcher turns into the same line and status. So no finished
  training step is lost, and the delay is at most one chunk. A second signal ends the process at once.

Python signal handlers run in the main thread between bytecodes, so while the main thread waits
on one long XLA call the handler runs when that call returns (within one chunk's time).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

SIGINT_STATUS = 128 + signal.SIGINT  # 130
SIGTERM_STATUS = 128 + signal.SIGTERM  # 143
MESSAGE = "interrupted; finished work is saved, re-run the same command to resume"

_state = {"signal": None, "deferred": 0, "command": None, "installed": False}


def status() -> int:
    """The exit status for the signal received (130 if none was recorded: a KeyboardInterrupt)."""
    return SIGTERM_STATUS if _state["signal"] == signal.SIGTERM else SIGINT_STATUS


def exit_now(code: int) -> None:
    """Flush stdout and stderr and end the process with ``code`` without the interpreter's teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _handler(signum, frame) -> None:
    first = _state["signal"] is None
    if first:
        _state["signal"] = signum
    if first and _state["deferred"]:
        return  # the work in progress finishes and is saved; check() stops after it
    name = f"spheres {_state['command']}" if _state["command"] else "spheres"
    with contextlib.suppress(Exception):
        sys.stderr.write(f"\n{name}: {MESSAGE}\n")
    exit_now(status())


def install(command: str | None = None) -> None:
    """Handle SIGINT and SIGTERM as described in the module docstring (main thread only)."""
    _state["command"] = command
    _state["installed"] = True
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def set_command(command: str) -> None:
    """Name the running command in the interrupt message."""
    _state["command"] = command


def requested() -> bool:
    """Whether a signal arrived (only while :func:`deferred`; otherwise the process has ended)."""
    return _state["signal"] is not None


def check(*_: object) -> None:
    """Raise ``KeyboardInterrupt`` if a signal arrived; use as a between-chunks callback."""
    if requested():
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """Within this block the first signal only sets the flag that :func:`check` raises on."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
