"""What ``kbench compare``, ``history``, ``report`` and ``nightly`` share: the verdict flags and the
rendering of their rows (the output flags themselves: ``kbench.commands._common``)."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

from kbench.commands._common import format_table
from kbench.common.csvio import to_csv_text
from kbench.errors import UsageError
from kbench.common.humanize import display_value
from kbench.results.frame import check_tag, printable


def add_tag_argument(parser):
    """``--tag``: the nightly CSVs' file name prefix (history, report, nightly), a plain name."""
    parser.add_argument("--tag", default="sweep", type=_tag,
                        help="file name prefix of the nightly CSVs: lower-case letters, digits and '-' "
                             "(default: %(default)s; run_all.sh --full writes sweep-full)")


def _tag(text: str) -> str:
    return check_tag(text)


def _cell(column: str, value) -> str:
    """A table cell for people, terminal-safe (``printable``)."""
    if column == "min_effect" and isinstance(value, float):
        return printable(f"{value:.1%}")
    return printable(display_value(column, value))

def parse_fraction(text: str, what: str) -> float:
    """``"5%"`` or ``"0.05"`` -> 0.05; a bare number >= 1 is refused as ambiguous."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"{what} {text!r} must be a percentage like 5% or a fraction like 0.05") from None
    if not raw.endswith("%") and value >= 1:
        raise UsageError(f"{what} {text!r} is ambiguous: write {raw}% or {value / 100:g}")
    if not 0 < value < 1:
        raise UsageError(f"{what} {text!r} must be between 0% and 100% (exclusive)")
    return value


def add_verdict_arguments(parser):
    """``--threshold`` and ``--alpha``: how compare judges a pair (compare, nightly, report)."""
    from kbench.results import stats

    parser.add_argument("--threshold", default=f"{stats.DEFAULT_THRESHOLD:.0%}",
                        help="smallest change of the median samples/s that counts (default: %(default)s)")
    parser.add_argument("--alpha", default=str(stats.DEFAULT_ALPHA),
                        help="significance level of the Mann-Whitney U test on the rounds (default: %(default)s)")


def parse_verdict_arguments(args) -> tuple[float, float]:
    """(threshold, alpha) of ``add_verdict_arguments``, validated."""
    return parse_fraction(args.threshold, "--threshold"), parse_fraction(args.alpha, "--alpha")


def render(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], fmt: str, summary: str = "",
           extra_json: Mapping[str, Any] | None = None) -> str:
    """Rows in one of FORMATS; table and markdown end with the summary line."""
    if fmt == "json":
        document = dict(extra_json or {})
        document["summary"] = summary
        document["rows"] = [{c: _json_value(row.get(c)) for c in columns} for row in rows]
        return json.dumps(document, indent=2) + "\n"
    if fmt == "csv":
        return to_csv_text(columns, [{c: _csv_value(row.get(c)) for c in columns} for row in rows])
    shown = [{c: _cell(c, row.get(c)) for c in columns} for row in rows]
    return format_table(columns, shown, fmt) + (f"\n{printable(summary)}\n" if summary else "")


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv_value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
