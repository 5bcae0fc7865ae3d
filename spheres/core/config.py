"""The one config system: frozen dataclasses built from TOML tables and validated on load.

Every config in the project (a training run's ``[task]``/``[model]``/``[train]``, a measurement's
budgets, each experiment's section of a reproduction config) is a frozen dataclass whose
``__post_init__`` validates its own fields. :func:`load_section` builds one from a parsed TOML
table, recursing into fields that hold another config dataclass, so sections are reused by
composition (``[tradeoff.train]`` is a :class:`~spheres.nets.config.TrainConfig`). Every error is
an :class:`~spheres.core.errors.InputError` whose field is the FULL path
(``tradeoff.train.steps: must be an integer >= 1, got -3``).

Conventions:

* TOML arrays become tuples; a TOML table given for a field that is not a config dataclass
  becomes a sorted tuple of ``(key, value)`` pairs (hashable, frozen); the dataclass validates it.
* A class may declare ``RENAMED: ClassVar[dict[str, str]]`` (old key -> advice); an old key then
  fails with that advice instead of "unknown key" (old config files say what to rename).
* Derived values are properties, never written back.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Inner:
...     steps: int = 1
...     def __post_init__(self):
...         check_int("steps", self.steps, 1)
>>> @dataclass(frozen=True)
... class Outer:
...     inner: Inner = Inner()
>>> load_section(Outer, {"inner": {"steps": 5}}, "exp").inner.steps
5
>>> try:
...     load_section(Outer, {"inner": {"steps": 0}}, "exp")
... except Exception as err:
...     print(err)
exp.inner.steps: must be an integer >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from spheres.core.constants import MIN_DIM
from spheres.core.errors import InputError


def check_int(field_name: str, value: Any, lo: int, hi: int | None = None, hint: str = "") -> None:
    """Raise :class:`InputError` naming ``field_name`` unless ``value`` is an integer in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(field_name, f"must be an integer >= {lo}{hint}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise InputError(field_name, f"must be an integer {rng}{hint}, got {value}")


def check_float(field_name: str, value: Any, lo: float, lo_open: bool = False, hi: float | None = None,
                hi_open: bool = False) -> None:
    """Raise :class:`InputError` naming ``field_name`` unless ``value`` is a finite number in the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(field_name, f"must be a number, got {value!r}")
    low_bad = value < lo or (lo_open and value == lo)
    high_bad = hi is not None and (value > hi or (hi_open and value == hi))
    if not math.isfinite(value) or low_bad or high_bad:
        rng = f"{'>' if lo_open else '>='} {lo}"
        if hi is not None:
            rng = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise InputError(field_name, f"must be a finite number {rng}, got {value}")


def check_dim(field_name: str, value: Any) -> None:
    """The one dimension check of the project: an integer d >= 2."""
    check_int(field_name, value, MIN_DIM)


def _section_type(f: dataclasses.Field) -> type | None:
    """The config dataclass a field holds, read off its default (every nested section has one)."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    return type(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else None


def _field_name(err_field: str) -> str:
    """A class's own error field as a TOML key: ``--mc-samples`` -> ``mc_samples``."""
    return err_field.lstrip("-").replace("-", "_")


def _rebase(err: InputError, section: str) -> InputError:
    """Re-raise a class's own validation error under the full TOML path ``section.key``.

    Classes name their fields either bare (``steps``), with their usual table (``train.steps``), or
    as a command-line flag (``--mc-samples``); all three map to ``section.steps`` etc."""
    field = err.field
    if not section or field.startswith(section + ".") or field == section:
        return err
    last = section.rsplit(".", 1)[-1]
    for prefix in (last + ".", section.split(".", 1)[0] + "."):
        if field.startswith(prefix):
            field = field[len(prefix):]
            break
    head = _field_name(field.split(".", 1)[0])
    rest = field.split(".", 1)[1] if "." in field else ""
    return InputError(f"{section}.{head}" + (f".{rest}" if rest else ""), err.detail)


def load_section(cls: type, table: Any, section: str = "") -> Any:
    """Build the frozen config dataclass ``cls`` from a parsed TOML table, recursively.

    Args:
      cls: a frozen dataclass; fields whose default is another config dataclass are built from
        sub-tables of that type (missing sub-tables take the field's default).
      table: the parsed TOML table (a dict).
      section: the table's full path (``"tradeoff"``, ``"tradeoff.train"``; ``""`` for the document).
    Raises:
      InputError: naming the full path of the offending key.
    """
    where = (lambda key: f"{section}.{key}" if section else key)
    if not isinstance(table, dict):
        raise InputError(section or "config", f"must be a table, got {type(table).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    renamed = getattr(cls, "RENAMED", {})
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            if key in renamed:
                raise InputError(where(key), renamed[key])
            raise InputError(where(key), f"unknown key; allowed keys: {', '.join(sorted(fields))}")
        tp = _section_type(fields[key])
        if tp is not None:
            kwargs[key] = load_section(tp, value, where(key))
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        elif isinstance(value, dict):
            try:
                kwargs[key] = tuple(sorted((str(k), v) for k, v in value.items()))
            except TypeError:
                raise InputError(where(key), "must be a table of scalars") from None
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except InputError as err:
        raise _rebase(err, section) from None


def read_toml(path: str | Path, field: str = "--config") -> dict[str, Any]:
    """Parse a TOML file; unreadable or malformed files are an :class:`InputError` naming ``field``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(field, f"cannot read {str(path)!r}: {getattr(err, 'strerror', None) or err}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(field, f"malformed TOML in {str(path)!r}: {err}") from None


def to_table(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a TOML-ready dict (tuples -> lists, pairs -> tables); inverse of :func:`load_section`."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init}
        if isinstance(v, tuple) and v and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                              for p in v):
            return {k: conv(x) for k, x in v}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return conv(cfg)
