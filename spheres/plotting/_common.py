"""Shared plumbing for the result figures: reading saved tables, palette, fonts, saving PNGs.

Every figure of the reproduction is drawn from files the experiment runner saved (CSV, JSON, NPZ),
never from live training state. This module turns those files into numpy columns, failing with an
:class:`~spheres.core.errors.InputError` that names the file and the column or key when something is
missing, and saves figures as PNG bytes that depend only on the input (no timestamp, no
software tag), atomically.

Palette: Okabe & Ito (2008), "Color Universal Design", distinguishable under the common forms of
colour blindness; sequential data use viridis (perceptually uniform, colour-blind safe).
"""

from __future__ import annotations

import io
import re
import textwrap
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.colors import Colormap, LogNorm
from matplotlib.figure import Figure

from spheres.core.errors import InputError
from spheres.core.io import read_csv, write_bytes_atomic

#: Okabe-Ito colours (black left out: it is kept for theory curves)
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
#: marker shapes, one per model (assigned in sorted model order)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
#: readable on a projected slide
RC = {
    "font.size": 11,
    "axes.titlesize": 12.5,
    "axes.labelsize": 12,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10,
    "figure.titlesize": 13.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
DPI = 150


@contextmanager
def slide_style() -> Iterator[None]:
    """Fonts and spines for every figure, without touching the global rcParams."""
    with rc_context(RC):
        yield


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` to PNG (deterministic bytes: no software/time metadata) and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return write_bytes_atomic(Path(path), buf.getvalue())


def _exists(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), f"{what} not found (expected a file written by the experiment runner)")
    return path


def load_table(path: str | os.PathLike, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a CSV results table, checked to hold at least one row and every column in ``columns``.

    Raises:
      InputError: naming the file (missing, unreadable, empty) or the file and the missing column.
    """
    path = _exists(path, "results table")
    try:
        rows = read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(str(path), f"cannot read as CSV ({err})") from None
    if not rows:
        raise InputError(str(path), "the table has no rows")
    have = set(rows[0])
    for col in columns:
        if col not in have:
            raise InputError(f"{path}: column '{col}'", f"missing; the table has columns {sorted(have)}")
    return rows


def numeric(rows: list[dict[str, Any]], col: str, path: str | os.PathLike) -> np.ndarray:
    """Column ``col`` as float64, ``None`` (empty field) -> nan; anything non-numeric is an InputError."""
    out = np.empty(len(rows), np.float64)
    for i, row in enumerate(rows):
        v = row.get(col)
        if v is None:
            out[i] = np.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = float(v)
        else:
            raise InputError(f"{path}: column '{col}'", f"row {i + 1} holds {v!r}; a number or empty is allowed")
    return out


def text(rows: list[dict[str, Any]], col: str) -> list[str]:
    """Column ``col`` as strings (a model named ``1000`` would be read back as an int)."""
    return ["" if row.get(col) is None else str(row[col]) for row in rows]


def read_json(path: str | os.PathLike, what: str = "JSON summary") -> Any:
    """A saved JSON file (``what`` names it in the error when it is missing or unreadable)."""
    path = _exists(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(str(path), f"cannot read as JSON ({err})") from None


def load_json(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object checked to hold every key in ``keys``."""
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise InputError(str(path), "expected a JSON object at the top level")
    for key in keys:
        if key not in obj:
            raise InputError(f"{path}: key '{key}'", f"missing; the file has keys {sorted(obj)}")
    return obj


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (no pickles)."""
    path = _exists(path, "array file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise InputError(str(path), f"cannot read as .npz ({err})") from None


def log_norm(values: np.ndarray) -> LogNorm:
    """Log colour scale over the positive ``values`` (a lone value gets a one-decade window)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    if lo == hi:
        lo, hi = lo / np.sqrt(10), hi * np.sqrt(10)
    return LogNorm(lo, hi)


def sequential() -> Colormap:
    """viridis without its pale yellow end, which vanishes on white."""
    return colormaps["viridis"].resampled(256)


def seq_color(norm: LogNorm, value: float) -> tuple[float, ...]:
    """Colour of ``value`` on the sequential scale, mapped into viridis [0, 0.82]."""
    return sequential()(0.82 * float(np.clip(norm(value), 0.0, 1.0)))


def _mantissa_exponent(x: float, digits: int) -> tuple[float, int]:
    """``x = mant * 10^exp`` with ``1 <= |mant| < 10`` after rounding to ``digits`` significant digits."""
    exp = int(np.floor(np.log10(abs(x))))
    mant = x / 10.0**exp
    if round(mant, digits - 1) >= 10:
        mant, exp = mant / 10, exp + 1
    return mant, exp


def sci(x: float | None, digits: int = 2) -> str:
    """``x`` in mathtext scientific notation, e.g. ``1.2 \\times 10^{-5}``; ``None`` -> ``n/a``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mant, exp = _mantissa_exponent(x, digits)
    if -2 <= exp <= 2:
        return f"{x:.{max(digits - 1 - exp, 0)}f}" if exp < digits else f"{x:.0f}"
    return rf"${mant:.{digits - 1}f} \times 10^{{{exp}}}$"


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def sci_plain(x: float | None, digits: int = 2) -> str:
    """``x`` as plain text with Unicode superscripts (``3.1 × 10⁻⁵``), for monospace tables; values that
    :func:`sci` writes without a power of ten come out as there."""
    if x is None or not np.isfinite(x) or x == 0 or -2 <= _mantissa_exponent(x, digits)[1] <= 2:
        return sci(x, digits)
    mant, exp = _mantissa_exponent(x, digits)
    return f"{mant:.{digits - 1}f} \u00d7 10" + str(exp).translate(_SUPERSCRIPT)


def wrap(text: str, width: int = 110) -> str:
    """``textwrap.fill`` that never breaks inside a ``$...$`` mathtext span (a split span would not parse)."""
    protected = re.sub(r"\$[^$]*\$", lambda m: m.group(0).replace(" ", "\x00"), text)
    return textwrap.fill(protected, width).replace("\x00", " ")
