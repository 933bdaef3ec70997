"""Numbers for people: 25.6M parameters, 4.09G MACs, 1.3 GB."""

from __future__ import annotations

import math
from typing import Any

_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _three_digits(value: float) -> str:
    text = f"{value:.3g}"
    if "e" in text:  # .3g switches to exponent notation from 1e3 on, e.g. 999.6 -> '1e+03'
        text = f"{value:.0f}"
    return text


def human_number(value) -> str:
    """Three significant digits with a k/M/G/T suffix: 25557032 -> '25.6M', 4.089e9 -> '4.09G',
    183.49 -> '183', 0.4521 -> '0.452'. '' for None, NaN or non-numbers."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(value):
        return ""
    magnitude = abs(value)
    for scale, suffix in _SUFFIXES:
        # 999_950 rounds to '1e+03k': promote it to the next suffix instead.
        if magnitude >= scale * 0.9995:
            return _three_digits(value / scale) + suffix
    return _three_digits(value)


def human_megabytes(value) -> str:
    """Memory given in MB: 734.6 -> '735 MB', 1293 -> '1.26 GB' (1 GB = 1024 MB)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(value):
        return ""
    if abs(value) >= 999.5:
        return f"{_three_digits(value / 1024)} GB"
    return f"{_three_digits(value)} MB"


PERCENT_COLUMNS = ("change",)


def display_value(column: str, value: Any) -> str:
    """A cell for people: changes as +3.2%, throughputs and spreads readable, blanks for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in PERCENT_COLUMNS or column.endswith(("_spread", "_other_cpu")) or column == "noise":
        return f"{value:+.1%}" if column in PERCENT_COLUMNS else f"{value:.1%}"
    if column == "p_value":
        return f"{value:.2g}"
    if column.endswith("samples_per_s") or column in ("before", "after"):
        return human_number(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
