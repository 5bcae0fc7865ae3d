"""Atomic file writes: a crash never leaves a half-written result.

Every writer puts the bytes in a temporary file in the target's directory, flushes and
fsyncs it, then renames it over the target (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent directories. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float made strict-JSON: ``inf`` -> ``"inf"`` (``"-inf"``), as in
    the CSV tables; ``nan`` -> ``None``. Dicts, lists and tuples are walked."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_restore(obj: Any) -> Any:
    """The inverse of :func:`json_safe` on what it wrote: ``"inf"`` / ``"-inf"`` back to floats
    (``nan`` stays ``None``). Dicts and lists are walked."""
    if isinstance(obj, str) and obj in ("inf", "-inf"):
        return float(obj)
    if isinstance(obj, dict):
        return {k: json_restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_restore(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (non-finite floats are rejected) atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows of scalars as CSV text (header first). Floats use ``repr`` so they round-trip exactly;
    ``None`` becomes an empty field. Columns default to the union of keys in first-seen order."""
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else (repr(v) if isinstance(v := row.get(c), float) else v)
                         for c in columns])
    return buf.getvalue()


def write_csv_atomic(path: str | os.PathLike, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    """Write ``rows`` as CSV (see :func:`csv_text`) atomically."""
    return write_text_atomic(path, csv_text(rows, columns))


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv_atomic`: ints, floats and strings are restored
    (an empty field becomes ``None``). Never evaluates anything read."""
    def parse(text: str) -> Any:
        if text == "":
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]
