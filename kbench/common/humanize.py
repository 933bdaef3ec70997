"""Numbers for people: 25.6M parameters, 4.09G MACs, 1.3 GB."""

from __future__ import annotations

import math
import re
from typing import Any

_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _three_digits(value: float) -> str:
    text = f"{value:.3g}"
    if "e" in text:  # .3g switches to exponent notation from 1e3 on, e.g. 999.6 -> '1e+03'
        text = f"{value:.0f}"
    return text


def _finite(value) -> float | None:
    """``value`` as a finite float, or None (None, NaN, infinities and non-numbers)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def human_number(value) -> str:
    """Three significant digits with a k/M/G/T suffix: 25557032 -> '25.6M', 4.089e9 -> '4.09G',
    183.49 -> '183', 0.4521 -> '0.452'. '' for None, NaN or non-numbers."""
    value = _finite(value)
    if value is None:
        return ""
    magnitude = abs(value)
    for scale, suffix in _SUFFIXES:
        # 999_950 rounds to '1e+03k': promote it to the next suffix instead.
        if magnitude >= scale * 0.9995:
            return _three_digits(value / scale) + suffix
    return _three_digits(value)


def human_megabytes(value) -> str:
    """Memory given in MB: 734.6 -> '735 MB', 1293 -> '1.26 GB' (1 GB = 1024 MB)."""
    value = _finite(value)
    if value is None:
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


# ---------------------------------------------------------------------------------- tables
# One renderer for every table kbench prints (list, profile, sweep, compare, history): rich for the
# terminal, pandas (tabulate) for Markdown and pandas (jinja2) for LaTeX. CSV and JSON are never
# rendered here: they carry the raw integers.
TABLE_FORMATS = ("table", "markdown", "latex")

# Counts shown as 25.56M / 4.09G: the unit (parameters, MACs, FLOPs, elements) is named in the header.
COUNT_HEADERS = {
    "params": "params", "params_trainable": "params (trainable)", "params_non_trainable": "params (non-trainable)",
    "params_keras_total": "params (Keras total)", "reported_params": "reported params",
    "macs": "MACs", "reported_macs": "reported MACs", "flops_tf": "FLOPs (TF profiler)",
    "flops_tf_dilation_padding": "FLOPs on dilation padding", "mem_access": "memory access (elements)",
    "activations": "activations (elements)", "convention_flops": "FLOPs (the named convention)",
    "samples/s": "samples/s",
}
MEGABYTE_HEADERS = {"peak_mem_mb": "peak memory", "model_mem_mb": "model memory"}
# Sizes given in bytes, shown in MB of 10^6 bytes (as torchinfo prints them).
BYTE_HEADERS = {"input_bytes": "input size (MB)", "params_bytes": "params size (MB)",
                "forward_backward_bytes": "forward/backward size (MB)",
                "estimated_total_bytes": "estimated total size (MB)"}
PERCENT_SHARE_COLUMNS = {"params_pct": "params %", "macs_pct": "MACs %", "flops_tf_pct": "FLOPs %"}


def human_count(value) -> str:
    """Two decimals with a k/M/G/T suffix, as papers print them: 25557032 -> '25.56M',
    4089184256 -> '4.09G', 61706 -> '61.71k', 120 -> '120'. '' for None, NaN or non-numbers."""
    value = _finite(value)
    if value is None:
        return ""
    for scale, suffix in _SUFFIXES:
        if abs(value) >= scale * 0.999995:  # 999_999.999 is '1.00M', never '1000.00k'
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def fvcore_size(value) -> str:
    """A count as fvcore and mmengine print it (``_format_size(x, sig_figs=3)`` in
    fvcore/nn/print_model_statistics.py and mmengine/analysis/print_helper.py): 3 decimals with
    trailing zeros dropped, K/M/G/T/P from just above 100/1e5/1e8/1e11/1e14: 4109364224 ->
    '4.109G', 25557032 -> '25.557M', 11113984 -> '11.114M'. '' for None or NaN."""
    value = _finite(value)
    if value is None:
        return ""
    for threshold, scale, suffix in ((1e14, 1e15, "P"), (1e11, 1e12, "T"), (1e8, 1e9, "G"), (1e5, 1e6, "M"),
                                     (1e2, 1e3, "K")):
        if abs(value) > threshold:
            return f"{value / scale:.3f}".rstrip("0").rstrip(".") + suffix
    return f"{value:g}"


def ptflops_macs(value) -> str:
    """MACs as ptflops prints them (``flops_to_string(flops, units=None, precision=2)`` in
    ptflops/utils.py): Python's ``round`` to 2 decimals and a GMac/MMac/KMac/Mac unit:
    4122089472 -> '4.12 GMac', 1500000 -> '1.5 MMac'."""
    value = _finite(value)
    if value is None:
        return ""
    for scale, unit in ((1e9, "GMac"), (1e6, "MMac"), (1e3, "KMac")):
        if value // scale > 0:
            return f"{round(value / scale, 2)} {unit}"
    return f"{value:g} Mac"


def scaled_count(value, scale: float, decimals: int = 2) -> str:
    """A count in a column whose header names the unit: 25557032 at 1e6 -> '25.56'."""
    value = _finite(value)
    return "" if value is None else f"{value / scale:.{decimals}f}"


# The scales of a column of counts in a paper's table, the largest first: a column takes the largest
# that its biggest value reaches and that still shows its smallest non-zero value to ``decimals``
# (CNNs' parameters and MACs come out in M or G; a small model's in K; counts under 1000 unscaled).
PAPER_SCALES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def paper_scale(values, decimals: int = 2) -> tuple[float, str]:
    """The (scale, suffix) of a column of counts (``PAPER_SCALES``); ``(1, "")`` for counts under
    1000 (or none)."""
    nonzero = [abs(v) for v in values if v]
    for scale, suffix in PAPER_SCALES:
        if nonzero and max(nonzero) >= scale and min(nonzero) / scale >= 10 ** -decimals:
            return scale, suffix
    return 1.0, ""


def table_header(column: str) -> str:
    return (COUNT_HEADERS.get(column) or MEGABYTE_HEADERS.get(column) or BYTE_HEADERS.get(column)
            or PERCENT_SHARE_COLUMNS.get(column) or column)


def table_cell(column: str, value: Any) -> str:
    """A cell for people. Raw numbers (ints, floats, numeric CSV text) of count columns become
    25.56M; memory in MB becomes '735 MB'; anything already formatted passes through."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in COUNT_HEADERS and _is_number(value):
        return human_count(value)
    if column in MEGABYTE_HEADERS and _is_number(value):
        return human_megabytes(value)
    if column in BYTE_HEADERS and _is_number(value):
        return f"{float(value) / 1e6:.2f}"
    if column in PERCENT_SHARE_COLUMNS and _is_number(value):
        return f"{float(value):.1f}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value).replace(",", ""))
        return bool(str(value).strip())
    except ValueError:
        return False


def _numeric_column(cells) -> bool:
    """Right-align a column whose every non-empty cell is a number, plain or humanised."""
    shown = [c for c in cells if c]
    return bool(shown) and all(_is_number(re.sub(r" ?([kKMGTP]?Mac|[kKMGTP%]| MB| GB)$", "", c)) for c in shown)


def natural_key(text: str):
    """Sort key that orders digits by value: resnet18 before resnet101, vgg11 before vgg16."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def model_label(name: str, variant: Any = None, num_classes: Any = None) -> str:
    """'resnet50', 'resnet50 [groups=32]', 'lenet5 [num_classes=10]': a row names what was built."""
    import json as _json

    if isinstance(variant, str):
        variant = _json.loads(variant) if variant.strip() else {}
    options = [f"{k}={_json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted((variant or {}).items())]
    if num_classes not in (None, ""):
        options.append(f"num_classes={num_classes}")
    return f"{name} [{', '.join(options)}]" if options else name


def render_table(columns, rows, fmt: str = "table", *, totals=None, headers=None, formats=None, scaled=False,
                 decimals=None, caption=None, label=None) -> str:
    """``rows`` (mappings, raw or preformatted values) as a table in ``fmt`` (TABLE_FORMATS).

    ``columns``: column keys (headers from ``table_header``, or ``headers[column]``). ``totals``: an
    optional last row, set apart by a rule. ``formats``: column -> function formatting its raw
    values. ``scaled`` (a paper's table): each count column in one unit, K, M, G or T
    (``paper_scale``), named in the header ("params (M)"), with 2 decimals or ``decimals[column]``.
    ``caption``/``label``: LaTeX's (a booktabs ``table`` float; the rules are booktabs' in every
    LaTeX table)."""
    columns = list(columns)
    headers = [(headers or {}).get(c) or table_header(c) for c in columns]
    cells = {c: (formats or {}).get(c) for c in columns}
    if scaled:
        everything = list(rows) + ([totals] if totals is not None else [])
        for index, column in enumerate(columns):
            values = [abs(float(row.get(column))) for row in everything if _is_number(row.get(column))]
            if column not in COUNT_HEADERS or not values:
                continue
            digits = (decimals or {}).get(column, 2)
            scale, suffix = paper_scale(values, digits)
            if not suffix:  # counts under 1000: as they are
                cells[column] = lambda value: f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
                continue
            cells[column] = lambda value, scale=scale, digits=digits: scaled_count(value, scale, digits)
            headers[index] = f"{headers[index]} ({suffix})"

    def cell(column, value):
        formatter = cells[column]
        if formatter is not None and _is_number(value):
            return formatter(float(str(value).replace(",", "")) if isinstance(value, str) else value)
        return table_cell(column, value)

    body = [[cell(c, row.get(c)) for c in columns] for row in rows]
    if totals is not None:
        body.append([cell(c, totals.get(c)) for c in columns])
    numeric = [_numeric_column([r[i] for r in body]) for i in range(len(columns))]
    if fmt in ("markdown", "latex"):
        import pandas as pd

        if fmt == "markdown":  # a '|' inside a cell would end it
            body = [[cell.replace("|", "\\|") for cell in cells] for cells in body]
        frame = pd.DataFrame(body, columns=headers)
        if fmt == "markdown":
            return frame.to_markdown(index=False, colalign=["right" if n else "left" for n in numeric]) + "\n"
        return frame.to_latex(index=False, escape=True, column_format="".join("r" if n else "l" for n in numeric),
                              caption=caption, label=label, position="t" if caption or label else None)
    if fmt != "table":
        raise ValueError(f"unknown table format {fmt!r}; allowed: {', '.join(TABLE_FORMATS)}")
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    footer = body.pop() if totals is not None else None
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, show_footer=footer is not None)
    for index, (header, is_number) in enumerate(zip(headers, numeric)):
        table.add_column(header, justify="right" if is_number else "left", no_wrap=True,
                         footer=footer[index] if footer else "")
    for cells in body:
        table.add_row(*cells)
    console = Console(file=io.StringIO(), width=100_000, color_system=None, force_terminal=False,
                      highlight=False, emoji=False, markup=False)
    console.print(table)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    return "\n".join(line for line in lines if line) + "\n"
