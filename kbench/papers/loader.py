"""Papers' tables as data: one TOML file per printed table (``kbench/tables/`` ships 26; a user's own
file reproduces the same way: ``kbench reproduce PATH.toml``).

Each file transcribes one table or worked figure exactly as printed (typos included: a correction
goes into a ``check``, never into the number) so that ``kbench reproduce`` can put every printed
number beside kbench's measurement, one output row per printed number. The schema (every file
follows it; ``parse_table`` checks it and raises ``UsageError`` naming the file and the field)::

    id = "mobilenet_v1_table6"             # the file name without .toml
    title = "MobileNet Width Multiplier"   # the table title as printed
    printed_numbers = 12                   # optional: how many numbers the printed table holds (coverage)
    convention = "macs"                    # optional: default convention of the values below
    baseline = "1.0 MobileNet-224"         # optional: the row that speed ratios refer to
    notes = "..."                          # optional: what the table is, how it was transcribed
    columns = { label = "Width Multiplier", macs = "Million Mult-Adds" }  # optional: printed headers
    layout = "rows"                        # optional: rows / at / lines, how paper-ready output is arranged
    layers = { "conv2_x" = "conv2_block*_out" }  # optional: 'at' text -> layer globs in the kbench model
                                           # (or -> { blocks = "...", default = "..." } per quantity)

    [citation]                             # the primary source of the printed numbers
    authors = "A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam"
    title = "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"
    year = 2017                            # optional where the source prints none
    arxiv = "1704.04861"                   # one of arxiv, venue, repository, url (more are fine)
    table = "Table 6"                      # where in the source: a table or figure number, a section
    transcription = "..."                  # optional: where this file was transcribed from, if not the source itself

    [[rows]]
    label = "1.0 MobileNet-224"            # the row as printed
    model = "mobilenet_v1"                 # a registered kbench model ... or, instead:
    # missing_model = "why kbench has no model for this row"
    input_size = [224, 224]                # (height, width[, channels]) the numbers were counted at
    num_classes = 1001                     # optional: classifier outputs, when not the model's (TF checkpoints' 1001)
    set = { alpha = 0.5 }                  # optional preset overrides (as ``--set``)
    cells = { "Pretrained weights" = "FcaNet50" }  # optional: the row's printed text cells (not numbers)
    setting = "trained on a 3090"          # optional: what else tells two rows of one model apart
    group = "~40 MFLOPs"                   # optional: a block of rows compared among themselves
    layers = "block*_add,head_pool"        # optional: layer globs for this row's values that give none
    build = { layer = "Conv2D", ... }      # optional: the single layer to build when no model exists
    values = [
      { quantity = "top1", text = "70.6%", unit = "percent", convention = "none" },
      { quantity = "macs", text = "569", unit = "macs", column_scale = 1000000 },
      { quantity = "params", text = "30.121M", unit = "params", convention = "torchvision",
        check = { says = "...", expression = "measured + head", measure = { head = { quantity = "params", layers = "fc" } } } },
    ]

    [[formulas]]                           # optional: printed rules to check on real layers
    name = "conv_params"
    text = '$$k^2 * C_{in} * C_{out}$$'    # as printed
    expression = "k**2 * c_in * c_out"     # the same rule in plain arithmetic
    quantity = "params"
    unit = "params"
    layer = "Conv2D"
    rounding = "floor"                     # optional, for size formulas (floor / ceil)

A value's number is derived from its ``text``, never stored twice: "4.109G" -> 4109000000,
"1,234" -> 1234, "71.7%" -> 71.7, "64.89*" -> 64.89 (footnote marks dropped), "$1.8 \\times 10^9$"
-> 1.8e9, "16 × 133 + 133" -> 2261; with unit "shape", "28 × 28 × 6" -> (28, 28, 6); a text with
letters ("612234*h*w", "613314 + 1080 · b") is a formula evaluated at the row's input size and the
value's ``symbols``. The printed precision (``decimals``, ``scale``, ``resolution``) comes from
the same text. ``column_scale`` applies a column header's scale ("Million Mult-Adds": 1000000).
``unreadable`` (why) marks a cell the source garbled or cut: its verdict is ``unreadable``, and
``value`` may give the number where it is known; where both exist they must agree. Other value
fields: ``at`` (where in the row: a layer, a stage, a device, as printed), ``layers`` (where that is
in the kbench model: comma-separated globs over its qualified layer names, e.g. "conv2_block*_out";
"head_fc:output" reads an input shape at that layer's output: the input of a softmax the model
leaves to its loss), ``part`` (whole model or backbone only: mmpretrain counts FLOPs without the
head), ``expression`` (the printed arithmetic leading to the number), ``tolerance`` (relative, for
a paper's rounding of an approximate count), ``check`` (an explanation kbench computes: see
``kbench.papers.checks``; a row is ``explained`` only when its check reproduces the printed figure)
and ``note`` (evidence in words, with public references, that explains nothing by itself).
"""

from __future__ import annotations

import dataclasses
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from kbench.errors import UsageError
from kbench.papers.checks import Check, parse_check
from kbench.papers.vocabulary import (CONVENTIONS, PARTS, QUANTITIES, UNITS, ParsedText, _evaluate,  # noqa: F401
                                     _normalise_formula, parse_printed)

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
    import tomli as tomllib

TABLES_DIR = Path(__file__).resolve().parent / "tables"

REQUIRED_TABLE_KEYS = ("id", "title", "citation", "rows")
TABLE_KEYS = set(REQUIRED_TABLE_KEYS) | {"convention", "notes", "baseline", "formulas", "layers", "printed_numbers",
                                         "columns", "layout"}
# How paper-ready output arranges a table (kbench.papers.render): one line per row with a column per
# quantity and place ("rows"); one line per place and quantity with a column per row ("at": the
# ResNet and VGG tables, where the models are the columns); one line per row and place ("lines").
LAYOUTS = ("rows", "at", "lines")
REQUIRED_CITATION_KEYS = ("authors", "title", "table")
LOCATOR_KEYS = ("arxiv", "venue", "repository", "url")
CITATION_KEYS = set(REQUIRED_CITATION_KEYS) | set(LOCATOR_KEYS) | {"year", "transcription", "note"}
FORMULA_KEYS = {"name", "text", "expression", "quantity", "unit", "convention", "layer", "at", "rounding", "notes"}
# The layers a printed formula can be checked on (kbench reproduce builds one and compares).
FORMULA_LAYERS = {"Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense", "AveragePooling2D", "MaxPooling2D"}
ROUNDINGS = {"none", "floor", "ceil"}
ROW_KEYS = {"label", "model", "missing_model", "input_size", "set", "setting", "group", "build", "values", "notes",
            "layers", "num_classes", "cells"}
VALUE_KEYS = {"quantity", "text", "unit", "column_scale", "convention", "part", "check", "note", "value", "at", "layers",
              "expression", "unreadable", "tolerance", "symbols"}
@dataclasses.dataclass(frozen=True)
class PrintedValue:
    quantity: str
    text: str
    unit: str
    convention: str
    value: float | int | tuple[int, ...] | None
    decimals: int | None = None
    scale: int = 1
    part: str = "whole"
    at: str = ""
    layers: str = ""       # where the value is in the kbench model: comma-separated globs over layer names
    expression: str = ""
    expression_value: float | int | None = None   # what the printed arithmetic evaluates to
    check: Check | None = None   # an explanation kbench computes (kbench.papers.checks)
    note: str = ""         # evidence in words (public references) that explains nothing by itself
    column_scale: int = 1
    unreadable: str = ""
    tolerance: float | None = None
    symbols: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def kind(self) -> str:
        """count, speed or accuracy (see QUANTITIES)."""
        return QUANTITIES[self.quantity]

    @property
    def resolution(self) -> float | None:
        return ParsedText(self.value, self.decimals, self.scale).resolution

    def evaluate(self, input_size: tuple[int, int] | None = None, **symbols: float) -> float | int | tuple[int, ...] | None:
        """The number; a symbolic text ("612234*h*w") is evaluated with h, w = ``input_size`` and the
        value's own ``symbols`` (b, n, k), which ``symbols`` override. None when unreadable."""
        if self.value is not None:
            return self.value
        if self.unreadable:
            return None
        names = dict(self.symbols)
        if input_size is not None:
            names.update(h=input_size[0], w=input_size[1])
        names.update(symbols)
        return _evaluate(_normalise_formula(self.text), names, where=self.text)


@dataclasses.dataclass(frozen=True)
class TableRow:
    label: str
    model: str | None
    missing_model: str
    input_size: tuple[int, ...] | None     # (height, width) or (height, width, channels)
    set: Mapping[str, Any]
    build: Mapping[str, Any]
    values: tuple[PrintedValue, ...]
    setting: str = ""      # what else tells this row from another with the same model (training setup)
    group: str = ""        # a block of rows compared among themselves (a complexity level)
    notes: str = ""
    layers: str = ""       # layer globs for the row's values that give none (its model's layer names differ)
    num_classes: int | None = None  # classifier outputs when not the model's default
    cells: Mapping[str, str] = dataclasses.field(default_factory=dict)  # printed text cells (column -> text)

    @property
    def name(self) -> str:
        """The row as a reader finds it in the printed table: its label and its text cells."""
        shown = [text for text in self.cells.values() if text]
        return f"{self.label} ({', '.join(shown)})" if shown else self.label

    @property
    def build_key(self) -> tuple:
        """What the row's built model depends on: rows with one key share one build."""
        return (self.model, tuple(self.input_size or ()), self.num_classes,
                tuple(sorted((k, repr(v)) for k, v in self.set.items())))


@dataclasses.dataclass(frozen=True)
class PrintedFormula:
    """A formula the source prints (a parameter, FLOP or size rule), to be checked on a real layer.

    ``text`` is as printed; ``expression`` is the same rule in plain Python arithmetic over named
    layer quantities (k, c_in, c_out, h_in, h_out, w_out, p, s, n_in, n_out ...); ``rounding``
    says how a size formula rounds a fraction (floor for convolution, ceil for pooling).
    """

    name: str
    text: str
    expression: str
    quantity: str
    unit: str
    convention: str
    layer: str
    at: str = ""
    rounding: str = "none"
    notes: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(sorted(set(re.findall(r"[A-Za-z_]\w*", self.expression))))

    def evaluate(self, **variables: float):
        """The formula's value for the given layer quantities, rounded as the source says."""
        value = _evaluate(self.expression, variables, where=self.expression)
        if self.rounding == "floor":
            return math.floor(value)
        if self.rounding == "ceil":
            return math.ceil(value)
        return value


@dataclasses.dataclass(frozen=True)
class Citation:
    """The primary source of a table's printed numbers (and where the file was transcribed from)."""

    authors: str
    title: str
    table: str
    year: int | None = None        # None: the source prints none
    arxiv: str = ""
    venue: str = ""
    repository: str = ""
    url: str = ""
    transcription: str = ""
    note: str = ""

    @property
    def first_author(self) -> str:
        authors = [re.sub(r"\s*\(.*?\)", "", a).strip() for a in re.split(r",| and ", self.authors)]
        authors = [a for a in authors if a]
        if not authors:
            return self.authors

        def surname(name):  # "A. G. Howard" -> "Howard"; a group or a handle stays whole
            return name.split()[-1] if re.match(r"^(?:[A-Z][a-z]?\.[- ]?)+\s*\S", name) else name

        return surname(authors[0]) + (" et al." if len(authors) > 2 else
                                      f" and {surname(authors[1])}" if len(authors) == 2 else "")

    @property
    def where(self) -> str:
        """Where to find it: arXiv id, venue, repository or address."""
        parts = [self.venue] if self.venue else []
        if self.arxiv:
            parts.append(f"arXiv:{self.arxiv}")
        if self.repository:
            parts.append(self.repository)
        if self.url and not (self.arxiv or self.repository):
            parts.append(self.url)
        return ", ".join(parts)

    @property
    def short(self) -> str:
        """One line for a report: 'Howard et al. 2017, MobileNets: ..., arXiv:1704.04861, Table 6'."""
        return f"{self.first_author} {self.year or 'n.d.'}, {self.title}, {self.where}, {self.table}"


@dataclasses.dataclass(frozen=True)
class PaperTable:
    id: str
    title: str
    citation: Citation
    rows: tuple[TableRow, ...]
    convention: str = ""
    baseline: str = ""
    notes: str = ""
    formulas: tuple[PrintedFormula, ...] = ()
    path: Path | None = None
    printed_numbers: int | None = None
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    layout: str = "rows"

    @property
    def source(self) -> str:
        """The primary source in one line (``Citation.short``)."""
        return self.citation.short

    @property
    def coverage(self) -> str:
        """Printed numbers against rows: '12 printed, 12 rows' (or only the rows where not counted)."""
        rows = len(self.printed_values())
        if self.printed_numbers is None:
            return f"{rows} rows (printed numbers not counted)"
        return f"{self.printed_numbers} printed, {rows} rows"

    def printed_values(self):
        """(row, value) for every printed number of the table, in reading order."""
        return [(row, value) for row in self.rows for value in row.values]


# ---------------------------------------------------------------- loading and validation

def _fail(path: Path, field: str, message: str):
    raise UsageError(f"{path.name}: {field}: {message}")


def _check_keys(path: Path, where: str, data: Mapping, allowed: set[str]):
    unknown = sorted(set(data) - allowed)
    if unknown:
        _fail(path, f"{where}.{unknown[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _text_field(path: Path, where: str, data: Mapping, key: str, *, required: bool = True) -> str:
    if key not in data:
        if required:
            _fail(path, f"{where}.{key}" if where else key, "missing")
        return ""
    value = data[key]
    if not isinstance(value, str) or (required and not value.strip()):
        _fail(path, f"{where}.{key}" if where else key, f"must be a non-empty string, got {value!r}")
    return value


def _parse_value(path: Path, where: str, data: Any, default_convention: str) -> PrintedValue:
    if not isinstance(data, Mapping):
        _fail(path, where, f"must be a table {{quantity = ..., text = ...}}, got {data!r}")
    _check_keys(path, where, data, VALUE_KEYS)
    quantity = _text_field(path, where, data, "quantity")
    if quantity not in QUANTITIES:
        _fail(path, f"{where}.quantity", f"unknown quantity {quantity!r}; known: {', '.join(sorted(QUANTITIES))}")
    text = _text_field(path, where, data, "text")
    unit = _text_field(path, where, data, "unit")
    if unit not in UNITS:
        _fail(path, f"{where}.unit", f"unknown unit {unit!r}; known: {', '.join(sorted(UNITS))}")
    convention = data.get("convention", default_convention)
    if not convention:
        _fail(path, f"{where}.convention", "missing (and the table sets no default convention)")
    if convention not in CONVENTIONS:
        _fail(path, f"{where}.convention", f"unknown convention {convention!r}; known: {', '.join(sorted(CONVENTIONS))}")
    unreadable = _text_field(path, where, data, "unreadable", required=False)
    part = data.get("part", "whole")
    if part not in PARTS:
        _fail(path, f"{where}.part", f"unknown part {part!r}; known: {', '.join(sorted(PARTS))}")
    symbols = data.get("symbols", {})
    if not isinstance(symbols, Mapping) or not all(isinstance(v, (int, float)) for v in symbols.values()):
        _fail(path, f"{where}.symbols", f"must map letters to numbers, got {symbols!r}")
    column_scale = data.get("column_scale", 1)
    if "column_scale" in data and (not isinstance(column_scale, int) or column_scale <= 0 or unit == "shape"):
        _fail(path, f"{where}.column_scale", f"must be a positive integer (the header's 'Million' = 1000000), not for shapes; got {column_scale!r}")
    tolerance = data.get("tolerance")
    if tolerance is not None and (not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1):
        _fail(path, f"{where}.tolerance", f"must be a relative tolerance in (0, 1), got {tolerance!r}")
    try:
        parsed = parse_printed(text, shape=unit == "shape")
    except ValueError as exc:
        if not unreadable:
            _fail(path, f"{where}.text", f"{exc}; give 'unreadable' (why) and, if known, 'value'")
        parsed = None
    stored = data.get("value")
    if parsed is not None and not unreadable:
        value, decimals, scale = parsed.value, parsed.decimals, parsed.scale
        if column_scale != 1 and value is not None:  # "569" under "Million Mult-Adds"
            scaled = Decimal(str(value)) * column_scale
            value = int(scaled) if scaled == scaled.to_integral_value() else float(scaled)
            scale *= column_scale
        if stored is not None and not _same(stored, value):
            _fail(path, f"{where}.value", f"{stored!r} differs from the printed text {text!r} (= {value!r})")
    else:
        if stored is not None and not isinstance(stored, (int, float)):
            _fail(path, f"{where}.value", f"must be a number, got {stored!r}")
        value, decimals, scale = stored, None, 1
    expression = _text_field(path, where, data, "expression", required=False)
    expression_value = None
    if expression:
        try:
            expression_value = parse_printed(expression).value
        except ValueError as exc:
            _fail(path, f"{where}.expression", str(exc))
    check = None
    if "check" in data:
        check = parse_check(data["check"], fail=lambda field, message: _fail(path, field, message), where=f"{where}.check")
    return PrintedValue(quantity=quantity, text=text, unit=unit, convention=convention, value=value,
                        decimals=decimals, scale=scale, part=part, at=_text_field(path, where, data, "at", required=False),
                        layers=_text_field(path, where, data, "layers", required=False),
                        expression=expression, expression_value=expression_value, check=check,
                        note=_text_field(path, where, data, "note", required=False),
                        unreadable=unreadable, tolerance=tolerance, symbols=dict(symbols), column_scale=column_scale)


def _same(stored, parsed) -> bool:
    if isinstance(parsed, tuple):
        return tuple(stored) == parsed if isinstance(stored, (list, tuple)) else False
    return isinstance(stored, (int, float)) and math.isclose(stored, parsed, rel_tol=1e-12, abs_tol=0)


def _parse_row(path: Path, index: int, data: Any, default_convention: str) -> TableRow:
    where = f"rows[{index}]"
    if not isinstance(data, Mapping):
        _fail(path, where, "must be a table")
    _check_keys(path, where, data, ROW_KEYS)
    label = _text_field(path, where, data, "label")
    model = data.get("model")
    missing = data.get("missing_model", "")
    if (model is None) == (not missing):
        _fail(path, where, "needs exactly one of 'model' (a registered name) and 'missing_model' (the reason)")
    if model is not None and (not isinstance(model, str) or not model):
        _fail(path, f"{where}.model", f"must be a model name, got {model!r}")
    if missing and not isinstance(missing, str):
        _fail(path, f"{where}.missing_model", f"must be a reason (string), got {missing!r}")
    size = data.get("input_size")
    if size is not None:
        if not (isinstance(size, list) and len(size) in (2, 3) and all(isinstance(d, int) and d > 0 for d in size)):
            _fail(path, f"{where}.input_size", f"must be [height, width] or [height, width, channels] positive integers, got {size!r}")
        size = tuple(size)
    classes = data.get("num_classes")
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes <= 0):
        _fail(path, f"{where}.num_classes", f"must be a positive integer, got {classes!r}")
    for key in ("set", "build"):
        if not isinstance(data.get(key, {}), Mapping):
            _fail(path, f"{where}.{key}", f"must be a table, got {data[key]!r}")
    values = data.get("values")
    if not isinstance(values, list) or not values:
        _fail(path, f"{where}.values", "must be a non-empty list of printed values")
    parsed = tuple(_parse_value(path, f"{where}.values[{i}]", v, default_convention) for i, v in enumerate(values))
    seen: set[tuple[str, str]] = set()
    for i, value in enumerate(parsed):
        key = (value.quantity, value.at)
        if key in seen:
            _fail(path, f"{where}.values[{i}]", f"a second {value.quantity!r}{' at ' + value.at if value.at else ''} in row {label!r}")
        seen.add(key)
    cells = data.get("cells", {})
    if not isinstance(cells, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in cells.items()):
        _fail(path, f"{where}.cells", f"must map printed column headers to the row's text in them, got {cells!r}")
    if model is None and any(value.check for value in parsed):
        _fail(path, f"{where}.values", "a check measures the row's model; this row has none")
    return TableRow(label=label, model=model, missing_model=missing, input_size=size, cells=dict(cells),
                    set=dict(data.get("set", {})), build=dict(data.get("build", {})), values=parsed,
                    setting=_text_field(path, where, data, "setting", required=False),
                    group=_text_field(path, where, data, "group", required=False),
                    notes=_text_field(path, where, data, "notes", required=False),
                    layers=_text_field(path, where, data, "layers", required=False), num_classes=classes)


def _parse_formula(path: Path, index: int, data: Any, default_convention: str) -> PrintedFormula:
    where = f"formulas[{index}]"
    if not isinstance(data, Mapping):
        _fail(path, where, "must be a table")
    _check_keys(path, where, data, FORMULA_KEYS)
    fields = {key: _text_field(path, where, data, key) for key in ("name", "text", "expression", "quantity", "unit", "layer")}
    if fields["quantity"] not in QUANTITIES:
        _fail(path, f"{where}.quantity", f"unknown quantity {fields['quantity']!r}; known: {', '.join(sorted(QUANTITIES))}")
    if fields["unit"] not in UNITS:
        _fail(path, f"{where}.unit", f"unknown unit {fields['unit']!r}; known: {', '.join(sorted(UNITS))}")
    if fields["layer"] not in FORMULA_LAYERS:
        _fail(path, f"{where}.layer", f"unknown layer {fields['layer']!r}; known: {', '.join(sorted(FORMULA_LAYERS))}")
    convention = data.get("convention", default_convention)
    if convention not in CONVENTIONS:
        _fail(path, f"{where}.convention", f"unknown convention {convention!r}; known: {', '.join(sorted(CONVENTIONS))}")
    rounding = data.get("rounding", "none")
    if rounding not in ROUNDINGS:
        _fail(path, f"{where}.rounding", f"unknown rounding {rounding!r}; known: {', '.join(sorted(ROUNDINGS))}")
    formula = PrintedFormula(**fields, convention=convention, rounding=rounding,
                             at=_text_field(path, where, data, "at", required=False),
                             notes=_text_field(path, where, data, "notes", required=False))
    try:  # the expression must be arithmetic in its variables
        formula.evaluate(**{name: 7 for name in formula.variables})
    except (ValueError, ZeroDivisionError) as exc:
        _fail(path, f"{where}.expression", str(exc))
    return formula


def _locate(path: Path, rows, layers: Any):
    """Give each value its layer globs: its own ``layers``, else its row's, else the table's
    ``layers`` map (``at`` text -> layer globs, or -> {quantity = globs, default = globs})."""
    if not isinstance(layers, Mapping):
        _fail(path, "layers", "must map an 'at' text to layer globs")
    ats = {value.at for row in rows for value in row.values}
    for at, where in layers.items():
        if at not in ats:
            _fail(path, f"layers.{at}", "names no value's 'at'")
        if not (isinstance(where, str) or (isinstance(where, Mapping) and all(isinstance(v, str) for v in where.values())
                                           and set(where) <= set(QUANTITIES) | {"default"})):
            _fail(path, f"layers.{at}", "must be globs or a table {quantity = globs, default = globs}")

    def globs(row, value):
        if value.layers or row.layers:
            return value.layers or row.layers
        where = layers.get(value.at, "")
        return where if isinstance(where, str) else where.get(value.quantity, where.get("default", ""))

    return tuple(dataclasses.replace(row, values=tuple(dataclasses.replace(value, layers=globs(row, value))
                                                       for value in row.values)) for row in rows)


def _row_key(row: TableRow) -> tuple:
    return (row.model or row.label, *row.build_key[1:], row.setting, tuple(sorted(row.cells.items())))


def _parse_citation(path: Path, data: Any) -> Citation:
    if not isinstance(data, Mapping):
        _fail(path, "citation", "must be a table [citation] with authors, title, year, table and where to find it")
    _check_keys(path, "citation", data, CITATION_KEYS)
    for key in REQUIRED_CITATION_KEYS:
        if key not in data:
            _fail(path, f"citation.{key}", "missing")
    year = data.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2100):
        _fail(path, "citation.year", f"must be a year such as 2017, got {year!r}")
    fields = {key: _text_field(path, "citation", data, key, required=key in REQUIRED_CITATION_KEYS)
              for key in CITATION_KEYS - {"year"}}
    if not any(fields[key] for key in LOCATOR_KEYS):
        _fail(path, "citation", f"needs one of {', '.join(LOCATOR_KEYS)}: where a reader finds the source")
    if fields["arxiv"] and not re.fullmatch(r"\d{4}\.\d{4,5}(v\d+)?", fields["arxiv"]):
        _fail(path, "citation.arxiv", f"must be an arXiv id such as 1704.04861, got {fields['arxiv']!r}")
    return Citation(year=year, **fields)


def parse_table(path: Path) -> PaperTable:
    """Read and validate one table file; UsageError (one line: file and field) when malformed."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path.name}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path.name}: not valid TOML: {' '.join(str(exc).split())}") from exc
    _check_keys(path, "table", data, TABLE_KEYS)
    for key in REQUIRED_TABLE_KEYS:
        if key not in data:
            _fail(path, key, "missing")
    table_id = _text_field(path, "", data, "id")
    if table_id != path.stem:
        _fail(path, "id", f"{table_id!r} must equal the file name {path.stem!r}")
    citation = _parse_citation(path, data["citation"])
    printed = data.get("printed_numbers")
    if printed is not None and (isinstance(printed, bool) or not isinstance(printed, int) or printed <= 0):
        _fail(path, "printed_numbers", f"must be a positive integer (the numbers the printed table holds), got {printed!r}")
    columns = data.get("columns", {})
    if not (isinstance(columns, Mapping) and all(isinstance(c, str) and c for c in columns.values())):
        _fail(path, "columns", f"must map 'label' or a quantity to its printed column header, got {columns!r}")
    for key in columns:
        if key != "label" and key.split(" [")[0] not in QUANTITIES:
            _fail(path, f"columns.{key}", f"must be 'label', a quantity or 'quantity [at]'; known quantities: "
                  f"{', '.join(sorted(QUANTITIES))}")
    layout = data.get("layout", "rows")
    if layout not in LAYOUTS:
        _fail(path, "layout", f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    convention = data.get("convention", "")
    if convention and convention not in CONVENTIONS:
        _fail(path, "convention", f"unknown convention {convention!r}; known: {', '.join(sorted(CONVENTIONS))}")
    if not isinstance(data["rows"], list) or not data["rows"]:
        _fail(path, "rows", "must be a non-empty list of [[rows]]")
    rows = tuple(_parse_row(path, i, row, convention) for i, row in enumerate(data["rows"]))
    rows = _locate(path, rows, data.get("layers", {}))
    seen: dict[tuple, str] = {}
    for i, row in enumerate(rows):
        for value in row.values:
            key = (*_row_key(row), value.quantity, value.at)
            if key in seen:
                _fail(path, f"rows[{i}]", f"row {row.name!r} repeats {value.quantity!r} of row {seen[key]!r} "
                      "(same model, input size and set); give one of them an 'at' or a different 'set'")
            seen[key] = row.name
    names: dict[tuple, str] = {}
    for i, row in enumerate(rows):
        key = (row.name, row.setting, row.input_size, tuple(sorted((k, repr(v)) for k, v in row.set.items())))
        if key in names:
            _fail(path, f"rows[{i}]", f"repeats the row {row.name!r}: transcribe the printed text cells that tell "
                  "the two apart ('cells') or say what differs ('setting')")
        names[key] = row.name
    formulas = data.get("formulas", [])
    if not isinstance(formulas, list):
        _fail(path, "formulas", "must be a list of [[formulas]]")
    parsed_formulas = tuple(_parse_formula(path, i, f, convention) for i, f in enumerate(formulas))
    names = [f.name for f in parsed_formulas]
    if len(set(names)) != len(names):
        _fail(path, "formulas", f"repeated formula name {next(n for n in names if names.count(n) > 1)!r}")
    baseline = _text_field(path, "", data, "baseline", required=False)
    if baseline and baseline not in {row.label for row in rows}:
        _fail(path, "baseline", f"{baseline!r} is not the label of a row")
    return PaperTable(id=table_id, title=_text_field(path, "", data, "title"), citation=citation, rows=rows,
                      convention=convention, baseline=baseline, formulas=parsed_formulas,
                      notes=_text_field(path, "", data, "notes", required=False), path=path,
                      printed_numbers=printed, columns=dict(columns), layout=layout)


def table_ids(directory: Path = TABLES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def load_table(table_id: str, directory: Path = TABLES_DIR) -> PaperTable:
    path = Path(directory) / f"{table_id}.toml"
    if not path.is_file():
        raise UsageError(f"unknown table {table_id!r}; known tables: {', '.join(table_ids(directory))}")
    return parse_table(path)


def load_tables(directory: Path = TABLES_DIR) -> list[PaperTable]:
    """Every table file, sorted by id."""
    return [parse_table(Path(directory) / f"{table_id}.toml") for table_id in table_ids(directory)]


# ---------------------------------------------------------------- the rows of a reproduction report

# One output row of ``kbench reproduce`` per printed number, in this column order.
REPORT_COLUMNS = ("table", "source", "row", "setting", "model", "input_size", "quantity", "reported", "reported_text",
                  "measured", "measured_text", "unit", "convention", "ratio", "verdict", "check", "check_measured",
                  "note", "transcribed_from")
# Verdicts that compare a printed number with a measurement.
COMPARED = ("exact", "rounding", "tolerance", "explained", "unexplained")
VERDICTS = COMPARED + ("unreadable", "speed", "accuracy", "not_measurable", "missing_model")
SPEED_NOTE = "a speed on the paper's hardware: only ratios within the table compare (kbench reproduce --speed)"
ACCURACY_NOTE = "accuracy on the paper's data set, which kbench does not have"


def verdict_without_measuring(row: TableRow, value: PrintedValue) -> str | None:
    """The verdict a printed value gets before anything is measured, or None if it needs a measurement.

    A cell the source garbled or cut is ``unreadable``; speeds and accuracies are counted as such
    (a speed compares only as a ratio, with ``--speed``; accuracy needs the paper's data); a row
    without a kbench model (and no single layer to ``build``) is ``missing_model``.
    """
    if value.unreadable:
        return "unreadable"
    if value.kind in ("accuracy", "speed"):
        return value.kind
    if row.model is None and not row.build:
        return "missing_model"
    return None


def model_text(row: TableRow) -> str:
    """What a row is measured on, as one cell: 'resnet50 [stride_in_1x1=true]', 'single Conv2D layer'."""
    from kbench.common.humanize import model_label

    if row.model:
        return model_label(row.model, dict(row.set), row.num_classes)
    if row.build:
        return f"single {row.build.get('layer', 'layer')} layer"
    return ""


def report_entry(table: PaperTable, row: TableRow, value: PrintedValue) -> dict[str, Any]:
    """One report row before measuring: the printed side filled, the verdicts that need no
    measurement given (``verdict_without_measuring``) with their note."""
    reported = value.evaluate(row.input_size)
    fixed = verdict_without_measuring(row, value)
    note = value.note
    if fixed == "unreadable":
        note = value.unreadable + (f"; {value.note}" if value.note else "")
    elif fixed == "speed":
        note = value.note or SPEED_NOTE
    elif fixed == "accuracy":
        note = value.note or ACCURACY_NOTE
    elif fixed == "missing_model":
        note = row.missing_model
    return {
        "table": table.id,
        "source": table.source,
        "row": f"{row.name} [{value.at}]" if value.at else row.name,
        "setting": row.setting,
        "model": model_text(row),
        "input_size": "x".join(map(str, row.input_size)) if row.input_size else "",
        "quantity": value.quantity,
        "reported": reported,
        "reported_text": value.text,
        "measured": None,
        "measured_text": "",
        "unit": value.unit,
        "convention": value.convention + ("" if value.part == "whole" else f" ({value.part})"),
        "ratio": None,
        "verdict": fixed,
        "check": "",
        "check_measured": None,
        "note": note,
        "transcribed_from": table.citation.transcription,
    }


def report_skeleton(tables=None) -> list[dict[str, Any]]:
    """Every printed number as a report row, with ``measured``/``ratio`` empty and the verdicts that
    need no measurement filled in (see ``verdict_without_measuring``)."""
    rows = []
    for table in load_tables() if tables is None else tables:
        for row, value in table.printed_values():
            entry = report_entry(table, row, value)
            if isinstance(entry["reported"], tuple):
                entry["reported"] = "x".join(map(str, entry["reported"]))
            rows.append(entry)
    return rows
