"""The vocabulary of the table files: what a printed value may be (quantities, units), which
counting convention produced it (a ``kbench.counting.conventions`` object, or a label for what is
not a count), which part of the model it covers, and how a printed text is read as a number, a
shape or arithmetic (precision included: "4.109G" is 4109000000 to the nearest 500000)."""

from __future__ import annotations

import ast
import dataclasses
import re
from decimal import Decimal, InvalidOperation
from typing import Mapping

from kbench.counting import conventions
from kbench.counting.parts import PARTS  # noqa: F401 - a table's part is one of the counting parts

# Quantity -> kind. "count": kbench measures it from the built model (params, MACs, shapes ...);
# "speed": a throughput or latency on the paper's hardware (only ratios within a table compare);
# "accuracy": accuracy on a data set kbench does not have.
QUANTITIES: dict[str, str] = {
    "params": "count",              # parameters (which ones: see the convention)
    "weights": "count",             # kernel weights only: parameters without biases or BN
    "macs": "count",                # multiply-accumulates ("Mult-Adds", "MAdds", "FLOPs" of papers that define them as MACs)
    "flops": "count",               # floating-point operations, 2 per multiply-add
    "activations": "count",         # output elements of conv/matmul layers (fvcore, timm "macts")
    "weight_layers": "count",       # "11 weight layers" (VGG)
    "channels": "count",            # output channels of a layer or stage
    "max_channels": "count",        # largest channel count at a resolution (MobileNet V2 memory table)
    "memory": "count",              # activation memory to materialise at a resolution (MobileNet V2 memory table)
    "peak_memory": "count",         # the largest of those ("max" row)
    "blocks": "count",              # repeats of a block in a stage ("× 6", "Repeat 3")
    "stride": "count",              # stride printed in an architecture table
    "padding": "count",             # padding printed beside a layer
    "expansion": "count",           # MobileNet V2 t
    "output_size": "count",         # a printed spatial output size (e.g. 56 in "56 × 56")
    "output_shape": "count",        # a printed feature-map shape, e.g. 28 × 28 × 6
    "input_shape": "count",         # a printed input shape of a layer
    "filter_shape": "count",        # a printed kernel shape, e.g. 3 × 3 × 32 × 64
    "kernel_size": "count",         # a printed square kernel's side (the 3 of "conv3-64" or "3×3, 64")
    "output_value": "count",        # one element of a worked example's output
    "model_size_mb": "count",       # model size on disk in MB (float32 weights)
    "top1": "accuracy",       # ImageNet top-1 accuracy, %
    "top5": "accuracy",       # ImageNet top-5 accuracy, %
    "top1_err": "accuracy",   # ImageNet top-1 error, %
    "ap": "accuracy",         # COCO box AP
    "ap50": "accuracy",       # COCO AP at IoU 0.5
    "mdice": "accuracy",      # Synapse mean Dice
    "miou": "accuracy",       # mean IoU
    "train_fps": "speed",           # training images/s on the authors' GPUs
    "gpu_speed": "speed",           # batches/s on the paper's GPU
    "cpu_speed": "speed",           # images/s on the paper's CPU
    "arm_speed": "speed",           # images/s on the paper's ARM phone
    "cpu_ms": "speed",              # latency in ms on the paper's phone CPU
    "device_fps": "speed",          # frames/s on a named phone/tablet
}

UNITS: dict[str, str] = {
    "params": "parameters",
    "macs": "multiply-accumulates",
    "flops": "floating-point operations (2 per multiply-add)",
    "elements": "tensor elements",
    "count": "a plain count (layers, blocks, channels, sizes)",
    "shape": "a tuple of sizes",
    "value": "a tensor element's value",
    "mb": "megabytes",
    "kb": "kilobytes",
    "bytes": "bytes (a printed K suffix scales them)",
    "percent": "per cent",
    "images_per_s": "images per second",
    "batches_per_s": "batches per second",
    "ms": "milliseconds",
    "fps": "frames per second",
}

# A table's convention name is a counting convention (``kbench.counting.conventions``: operation
# counts and parameter counts), or one of these labels for what is not a count of kbench's.
LABELS: dict[str, str] = {
    "paper": "the paper's own count, as it defines it (see the table notes)",
    "shape": "an architecture fact (a size, a channel or layer count), not a count of operations",
    "none": "not a count: accuracy or speed on the authors' data and hardware",
    "unknown": "nobody here knows which convention produced the number",
}


@dataclasses.dataclass(frozen=True)
class Label:
    """A table's convention name that is not a count kbench makes (``LABELS``)."""

    name: str
    summary: str
    count = None
    count_params = None


CONVENTIONS = {**conventions.ALL, **{name: Label(name, summary) for name, summary in LABELS.items()}}

# Suffix printed after a number -> its multiplier (B: billion).
_SUFFIX_SCALE = {"": 1, "K": 10**3, "k": 10**3, "M": 10**6, "G": 10**9, "B": 10**9, "T": 10**12}
_NUMBER = re.compile(r"^(?P<sign>-?)(?P<digits>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)\s*(?P<suffix>[KkMGBT]?)(?P<tail>\s*(?:%|MB|Kb|ms|×)?)(?P<footnote>\**)$")
_POWER = re.compile(r"^(?P<mantissa>\d+(?:\.\d+)?)\s*[×x*]\s*10\s*\^\s*\{?(?P<exp>\d+)\}?$")
_LABELLED_SHAPE = re.compile(r"^(?:[A-Za-z]+\s+)?(?P<shape>\d[^A-Za-z]*?)(?:\s+[A-Za-z]+)?$")
_TIMES = re.compile(r"\s*(?:×|\\times|\\cdot|·|\*)\s*")


@dataclasses.dataclass(frozen=True)
class ParsedText:
    """What a printed text says: a number (with its precision), a shape, or a symbolic formula."""

    value: float | int | tuple[int, ...] | None
    decimals: int | None = None        # digits after the point as printed (before the suffix)
    scale: int = 1                     # the suffix multiplier (1000 for K ...)
    symbols: tuple[str, ...] = ()      # letters left in a symbolic text

    @property
    def resolution(self) -> float | None:
        """Half of the last printed digit's place, in the value's unit: the rounding bound."""
        if self.decimals is None:
            return None
        return 0.5 * self.scale * 10.0 ** (-self.decimals)


# ---------------------------------------------------------------- parsing printed texts

def _normalise_formula(text: str) -> str:
    """LaTeX-ish printed arithmetic -> Python arithmetic: × \\times \\cdot · -> *, ^ -> **; the
    annotations and layout of a LaTeX formula ("(\\text{偏置})", aligned, &, line breaks) dropped."""
    formula = re.sub(r"\(?\s*\\text\{[^}]*\}\s*\)?", "", text)
    formula = re.sub(r"\\(?:begin|end)\{aligned\}|&|\\\\", " ", formula)
    formula = _TIMES.sub("*", formula.replace("−", "-"))
    return formula.replace("$", "").replace("^", "**").replace("{", "(").replace("}", ")").strip()


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
                  ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub)


def _evaluate(formula: str, names: Mapping[str, float], *, where: str):
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"cannot read {where!r} as arithmetic") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"{where!r} holds {type(node).__name__}, not plain arithmetic")
        if isinstance(node, ast.Name) and node.id not in names:
            raise ValueError(f"{where!r} needs a value for {node.id!r}")
    result = eval(compile(tree, "<printed text>", "eval"), {"__builtins__": {}}, dict(names))  # nodes checked above
    return int(result) if float(result).is_integer() else result


def parse_printed(text: str, *, shape: bool = False) -> ParsedText:
    """Read a printed text as a number, a formula or (``shape=True``) a shape such as "28 × 28 × 6";
    ValueError when it is none of them. A product of integers is a shape only when asked for one."""
    stripped = text.strip().replace("\u2009", "").replace("\xa0", " ")
    if shape:
        plain = stripped.replace("\\times", "×").replace("$", "").strip()
        plain = re.sub(r"(?<=\d)\s*x\s*(?=\d)", " × ", plain)  # "7x7"
        if re.fullmatch(r"\(\s*\d+(?:\s*,\s*\d+)+\s*\)", plain):  # "(3, 224, 224)": a tuple as a framework prints it
            return ParsedText(tuple(int(part) for part in plain.strip("() ").split(",")))
        labelled = _LABELLED_SHAPE.match(plain)
        if labelled and labelled["shape"] != plain:  # "3 × 3 × 32 dw", "Pool 7 × 7": a shape beside a word
            return parse_printed(labelled["shape"], shape=True)
        # "112^2 × 32" is 112 × 112 × 32
        factors = re.sub(r"(\d+)\*\*2\b", r"\1*\1", _normalise_formula(plain)).replace("(", "").replace(")", "")
        if not re.fullmatch(r"\d+(?:\s*\*\s*\d+)+", factors):
            raise ValueError(f"{text!r} is not a shape such as 28 × 28 × 6")
        return ParsedText(tuple(int(part) for part in factors.split("*")))
    match = _NUMBER.match(stripped)
    if match:
        digits = match["digits"].replace(",", "")
        scale = _SUFFIX_SCALE[match["suffix"]]
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        number = Decimal(match["sign"] + digits) * scale
        value = int(number) if number == number.to_integral_value() else float(number)
        return ParsedText(value, decimals, scale)
    formula = _normalise_formula(stripped)
    match = _POWER.match(formula.replace("**", "^"))
    if match:  # "1.8 × 10^9"
        mantissa = match["mantissa"]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        scale = 10 ** int(match["exp"])
        number = Decimal(mantissa) * scale
        return ParsedText(int(number) if number == number.to_integral_value() else float(number), decimals, scale)
    names = sorted(set(re.findall(r"[A-Za-z_]\w*", formula)))
    if not names:
        try:
            value = _evaluate(formula, {}, where=text)
        except (ValueError, ZeroDivisionError, InvalidOperation) as exc:
            raise ValueError(f"{text!r} is not a number, a shape or arithmetic") from exc
        return ParsedText(value, 0 if isinstance(value, int) else None)
    try:  # a symbolic text: check that it is arithmetic in its letters
        _evaluate(formula, {name: 1 for name in names}, where=text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{text!r} is not a number, a shape or arithmetic") from exc
    return ParsedText(None, symbols=tuple(names))
