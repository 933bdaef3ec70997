"""An explanation is a check that runs: the ``check`` of a printed value, parsed and compared.

A printed number that kbench's measurement does not reproduce may carry a ``check``: another
computation, on the row's own model, that does reproduce it. ``kbench reproduce`` runs it and the
row is ``explained`` only when the check's result equals the printed figure at its printed
precision (or at the check's stated precision); otherwise the row is ``unexplained`` and says that
the check no longer holds. A check never names another model: it varies what is measured on the
row's model (a convention, a part, a preset or layout via ``set``, an input size, a class count, a
layer locator, another quantity) and may combine measurements with arithmetic::

    check = { says = "kbench's count plus a second, unused copy of its classifier (mmpretrain ...)",
              expression = "measured + head", measure = { head = { quantity = "params", layers = "fc" } } }

Fields (all optional but ``says``):

* ``says``: what is computed, in words a reader understands, with its public evidence;
* ``convention``, ``part``, ``quantity``, ``layers``, ``unit``: how ``measured`` is measured
  (default: as the value itself);
* ``set``, ``input_size``, ``num_classes``: the model variant ``measured`` (and ``measure``) are
  measured on (default: the row's);
* ``measure``: names for further measurements on that variant, each a quantity name or a table
  ``{quantity, convention, part, layers, unit}``;
* ``expression``: arithmetic over ``measured``, the ``measure`` names and ``h``, ``w`` (the input
  size); its value is ``check_measured`` (default: ``measured``);
* ``axes``: a measured shape in another axis order (``[2, 0, 1]``: PyTorch's C, H, W for kbench's
  H, W, C);
* ``reads_as``: the printed text as it must be read (a typo: "188.97G" for the printed "188.97T");
* ``rounding = "truncate"``: the figure was truncated, not rounded, to its printed digits;
* ``decimals``: compare at this many decimals of the printed scale (fewer than printed);
* ``significant_digits``: compare at this many significant digits ("600K" at 1 digit);
* ``tolerance``: compare within this relative difference;
* ``same_ratio``: a group name: every value of the table in this group must have the same
  ``check_measured``/printed ratio within ``tolerance`` (default 0.2%), for a cause kbench cannot
  compute (mmdet averaging FLOPs over real images). ``check_measured`` is then the value divided
  by the group's median ratio; a group needs at least three values.

Without ``decimals``, ``significant_digits``, ``rounding`` or ``tolerance`` the check must hit the
printed precision (half of the last printed digit), or the value's own ``tolerance``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Mapping

from kbench.papers.vocabulary import CONVENTIONS, PARTS, QUANTITIES, UNITS, _evaluate, parse_printed

CHECK_KEYS = {"says", "convention", "part", "quantity", "layers", "unit", "set", "input_size", "num_classes",
              "measure", "expression", "axes", "reads_as", "rounding", "decimals", "significant_digits", "tolerance",
              "same_ratio"}
MEASURE_KEYS = {"quantity", "convention", "part", "layers", "unit"}
ROUNDINGS = {"truncate"}
SAME_RATIO_TOLERANCE = 0.002
SAME_RATIO_MINIMUM = 3
BUILT_IN_NAMES = {"measured", "h", "w"}


@dataclasses.dataclass(frozen=True)
class Measure:
    """One measurement a check names: a quantity under a convention and part, at some layers."""

    quantity: str
    convention: str = ""
    part: str = ""
    layers: str = ""
    unit: str = ""


@dataclasses.dataclass(frozen=True)
class Check:
    says: str
    convention: str = ""
    part: str = ""
    quantity: str = ""
    layers: str = ""
    unit: str = ""
    set: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    input_size: tuple[int, ...] | None = None
    num_classes: int | None = None
    measure: Mapping[str, Measure] = dataclasses.field(default_factory=dict)
    expression: str = ""
    axes: tuple[int, ...] = ()
    reads_as: str = ""
    rounding: str = ""
    decimals: int | None = None
    significant_digits: int | None = None
    tolerance: float | None = None
    same_ratio: str = ""

    @property
    def varies_model(self) -> bool:
        """Whether the check measures another variant of the row's model (a build of its own)."""
        return bool(self.set) or self.input_size is not None or self.num_classes is not None

    def model_request(self, row) -> tuple[str, tuple[int, ...] | None, int | None, dict[str, Any]]:
        """(model, input size, classes, set) of the variant the check measures on."""
        return (row.model, self.input_size or row.input_size,
                self.num_classes if self.num_classes is not None else row.num_classes,
                {**dict(row.set), **dict(self.set)})

    def build_key(self, row) -> tuple:
        model, size, classes, variant = self.model_request(row)
        return (model, tuple(size or ()), classes, tuple(sorted((k, repr(v)) for k, v in variant.items())))


def parse_check(data: Any, *, fail, where: str) -> Check:
    """A value's ``check`` table as a ``Check``; ``fail(field, message)`` raises the usage error."""
    if not isinstance(data, Mapping):
        fail(where, f"must be a table {{says = ..., ...}}, got {data!r}")
    unknown = sorted(set(data) - CHECK_KEYS)
    if unknown:
        fail(f"{where}.{unknown[0]}", f"unknown field; allowed: {', '.join(sorted(CHECK_KEYS))}")
    says = data.get("says")
    if not isinstance(says, str) or not says.strip():
        fail(f"{where}.says", "missing: say what the check computes, in words a reader understands")
    fields: dict[str, Any] = {"says": says}
    for key in ("convention", "part", "quantity", "layers", "unit", "expression", "reads_as", "rounding", "same_ratio"):
        if key in data:
            if not isinstance(data[key], str) or not data[key].strip():
                fail(f"{where}.{key}", f"must be a non-empty string, got {data[key]!r}")
            fields[key] = data[key]
    _known(fields.get("convention"), CONVENTIONS, fail, f"{where}.convention", "convention")
    _known(fields.get("part"), PARTS, fail, f"{where}.part", "part")
    _known(fields.get("quantity"), QUANTITIES, fail, f"{where}.quantity", "quantity")
    _known(fields.get("unit"), UNITS, fail, f"{where}.unit", "unit")
    _known(fields.get("rounding"), ROUNDINGS, fail, f"{where}.rounding", "rounding")
    if "set" in data:
        if not isinstance(data["set"], Mapping) or not data["set"]:
            fail(f"{where}.set", f"must be a non-empty table of preset overrides, got {data['set']!r}")
        fields["set"] = dict(data["set"])
    if "input_size" in data:
        size = data["input_size"]
        if not (isinstance(size, list) and len(size) in (2, 3) and all(isinstance(d, int) and d > 0 for d in size)):
            fail(f"{where}.input_size", f"must be [height, width] or [height, width, channels], got {size!r}")
        fields["input_size"] = tuple(size)
    for key in ("num_classes", "decimals", "significant_digits"):
        if key in data:
            number = data[key]
            minimum = 1 if key != "decimals" else 0
            if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
                fail(f"{where}.{key}", f"must be an integer >= {minimum}, got {number!r}")
            fields[key] = number
    if "tolerance" in data:
        tolerance = data["tolerance"]
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
            fail(f"{where}.tolerance", f"must be a relative tolerance in (0, 1), got {tolerance!r}")
        fields["tolerance"] = float(tolerance)
    measures = {}
    raw = data.get("measure", {})
    if not isinstance(raw, Mapping):
        fail(f"{where}.measure", "must map names to quantities or {quantity, convention, part, layers}")
    for name, spec in raw.items():
        if not name.isidentifier() or name in BUILT_IN_NAMES:
            fail(f"{where}.measure.{name}", f"must be a plain name other than {', '.join(sorted(BUILT_IN_NAMES))}")
        if isinstance(spec, str):
            spec = {"quantity": spec}
        if not isinstance(spec, Mapping) or "quantity" not in spec or set(spec) - MEASURE_KEYS \
                or not all(isinstance(v, str) and v for v in spec.values()):
            fail(f"{where}.measure.{name}", f"must be a quantity or a table with 'quantity' and any of "
                 f"{', '.join(sorted(MEASURE_KEYS - {'quantity'}))}, got {spec!r}")
        _known(spec["quantity"], QUANTITIES, fail, f"{where}.measure.{name}.quantity", "quantity")
        _known(spec.get("convention"), CONVENTIONS, fail, f"{where}.measure.{name}.convention", "convention")
        _known(spec.get("part"), PARTS, fail, f"{where}.measure.{name}.part", "part")
        _known(spec.get("unit"), UNITS, fail, f"{where}.measure.{name}.unit", "unit")
        measures[name] = Measure(**spec)
    fields["measure"] = measures
    if "axes" in data:
        axes = data["axes"]
        if not (isinstance(axes, list) and sorted(axes) == list(range(len(axes))) and len(axes) > 1):
            fail(f"{where}.axes", f"must be a permutation such as [2, 0, 1], got {axes!r}")
        if fields.get("expression") or "expression" in data:
            fail(f"{where}.axes", "reorders a measured shape; it cannot be combined with an expression")
        fields["axes"] = tuple(axes)
    if fields.get("expression"):
        names = {name: 7 for name in (*BUILT_IN_NAMES, *measures)}
        try:
            _evaluate(fields["expression"], names, where=fields["expression"])
        except (ValueError, ZeroDivisionError) as exc:
            fail(f"{where}.expression", f"{exc} (names: {', '.join(sorted(names))})")
    elif measures:
        fail(f"{where}.measure", "names measurements but no 'expression' uses them")
    if fields.get("reads_as"):
        try:
            parse_printed(fields["reads_as"])
        except ValueError as exc:
            fail(f"{where}.reads_as", str(exc))
    precision = [key for key in ("rounding", "decimals", "significant_digits") if key in fields]
    if len(precision) > 1:
        fail(f"{where}.{precision[1]}", f"give one of rounding, decimals, significant_digits, not {' and '.join(precision)}")
    return Check(**fields)


def _known(name, known, fail, where, what):
    if name is not None and name not in known:
        fail(where, f"unknown {what} {name!r}; known: {', '.join(sorted(known))}")


# ---------------------------------------------------------------- comparing a check's result

def _digits(decimals: int) -> str:
    return "integer" if decimals == 0 else f"{decimals} decimal{'s' if decimals > 1 else ''}"


def reproduces(check: Check, result, target, *, decimals: int | None, scale: int,
               value_tolerance: float | None) -> tuple[bool, str]:
    """Whether the check's ``result`` reproduces the printed ``target`` and at what precision (words)."""
    if isinstance(target, tuple) or isinstance(result, tuple):
        return tuple(result) == tuple(target), "as printed"
    if result is None or target is None:
        return False, "nothing to compare"
    if check.rounding == "truncate":
        if decimals is None:
            return False, "the printed text has no digits to truncate to"
        unit = scale * 10.0 ** (-decimals)
        truncated = math.floor(result / unit * (1 + 1e-12)) * unit
        return math.isclose(truncated, target, rel_tol=1e-9, abs_tol=1e-9), \
            f"truncated (not rounded) to the printed {_digits(decimals)}"
    if check.decimals is not None:
        bound = 0.5 * scale * 10.0 ** (-check.decimals)
        return abs(result - target) <= bound * (1 + 1e-9), f"at {_digits(check.decimals)} of the printed scale"
    if check.significant_digits is not None:
        if not target:
            return result == target, "exactly"
        place = math.floor(math.log10(abs(target))) - check.significant_digits + 1
        bound = 0.5 * 10.0 ** place
        digits = check.significant_digits
        return abs(result - target) <= bound * (1 + 1e-9), f"at {digits} significant digit{'s' if digits > 1 else ''}"
    if check.tolerance is not None:
        return bool(target) and abs(result / target - 1) <= check.tolerance, f"within {check.tolerance:.2%}"
    if result == target:
        return True, "exactly"
    if decimals is not None and abs(result - target) <= 0.5 * scale * 10.0 ** (-decimals) * (1 + 1e-9):
        return True, "at the printed precision"
    if value_tolerance is not None and target and abs(result / target - 1) <= value_tolerance:
        return True, f"within the value's tolerance of {value_tolerance:.2%}"
    return False, "at the printed precision"


def common_ratios(members: list[tuple[Any, float, float]]) -> dict[Any, float]:
    """For ``(key, result, target)`` members of one ``same_ratio`` group: key -> the group's median
    result/target ratio (empty when the group is too small to say anything)."""
    ratios = [result / target for _, result, target in members if target and result is not None]
    if len(ratios) < SAME_RATIO_MINIMUM:
        return {}
    median = statistics.median(ratios)
    return {key: median for key, _, _ in members}
