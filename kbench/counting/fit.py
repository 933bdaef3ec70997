"""MACs as a function of the input size: ``MACs(h, w) = a*h*w + b*(h + w) + c``.

A CNN's conv/dense cost is a quadratic form in the input sides: every layer at a fixed stride
costs a constant times ``h*w``; "valid" convolutions shave a border (the ``h + w`` term) and
layers on pooled vectors cost a constant. ``fit_macs`` recovers ``a, b, c`` by exact least
squares from MACs measured at a few sizes; ``fit_model`` profiles a registered model at those
sizes and, for the saliency networks of the FLOPs notes, sets the fit next to the notes' stated
and the audit's corrected coefficients (``architectures/saliency/reference.json``, which the
saliency zoo also reads its reported figures from).

The notes count more than MACs: pooling, element-wise ops, bilinear upsampling and BN, and
transposed convs at output resolution with the full kernel. ``seed_convention_ops`` counts
exactly those terms from the Keras graph, so ``kbench MACs + seed terms`` is comparable with the
notes (a fit of it gives the coefficient "in the seed's convention").
"""

from __future__ import annotations

import ast
import json
import operator
import re
from pathlib import Path
from typing import Any, Iterable

from kbench.errors import UsageError
from kbench.counting.conventions import notes
from kbench.counting.conventions.notes import seed_convention_ops  # noqa: F401  (moved there; re-exported)
from kbench.models.session import forget_models, shapes_only

# Registered name -> (entry of architectures/saliency/reference.json, symbol values, convention options).
# b = batch size in the notes' BN cost (1: one image); MDF: n superpixels, k segmentations (the
# registered mdf is one region evaluation: k = n = 1 up to the k*h*w fusion term).
SALIENCY_MODELS: dict[str, dict[str, Any]] = {
    "pagrn": dict(key="PAGRN-v1", symbols=dict(b=1), bn=True),
    "pagrn_v2": dict(key="PAGRN-v2", symbols={}, bn=False),
    "ucf": dict(key="UCF", symbols={}, bn=False),
    "ucf_bn": dict(key="UCF-BN", symbols=dict(b=1), bn=True),
    "mdf": dict(key="MDF", symbols=dict(k=1, n=1), bn=False),
    "rfcn": dict(key="RFCN", symbols={}, bn=False),
    "ds": dict(key="DS", symbols={}, bn=False),
    "dcl": dict(key="DCL", symbols={}, bn=False),
    "nldf": dict(key="NLDF", symbols={}, bn=False),
    "dss": dict(key="DSS", symbols={}, bn=False),
    "mobilenet_v2_deeplabv3": dict(key="MobileNetV2+DeepLabv3", symbols={}, bn=False),
}


# --------------------------------------------------------------------------------------------
# The least-squares fit
# --------------------------------------------------------------------------------------------
def fit_macs(sizes_and_macs: Iterable) -> tuple[float, float, float]:
    """Fit ``MACs = a*h*w + b*(h + w) + c`` exactly (least squares) to ``((h, w), macs)`` pairs.

    Sizes may be non-square. At least three sizes that pin down the three terms are needed
    (e.g. three distinct squares); otherwise ``UsageError``.
    """
    import numpy as np

    rows, values = [], []
    for size, macs in sizes_and_macs:
        h, w = (size, size) if isinstance(size, (int, float)) else size
        rows.append((float(h) * float(w), float(h) + float(w), 1.0))
        values.append(float(macs))
    design = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    if len(rows) < 3 or np.linalg.matrix_rank(design) < 3:
        distinct = sorted({(int(r[0]), int(r[1])) for r in rows})
        raise UsageError(
            f"fitting a*h*w + b*(h+w) + c needs at least 3 distinct input sizes; got {len(distinct)} "
            f"distinct (h*w, h+w) pair(s)")
    target = np.asarray(values, dtype=np.float64)
    # Scale the columns so lstsq is well conditioned at large sizes (h*w ~ 1e5, macs ~ 1e11).
    scale = np.abs(design).max(axis=0)
    solution, *_ = np.linalg.lstsq(design / scale, target, rcond=None)
    a, b, c = (solution / scale).tolist()
    return float(a) + 0.0, float(b) + 0.0, float(c) + 0.0  # + 0.0: no negative zeros in the output


def parse_sizes(text: str, min_size: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """``"224,256,288"`` or ``"224x256,320"`` -> ``[(224, 224), (224, 256), ...]``."""
    sizes = []
    for token in str(text).split(","):
        token = token.strip()
        match = re.fullmatch(r"(\d+)(?:[xX](\d+))?", token)
        if not match:
            raise UsageError(f"cannot parse input size {token!r} in --sizes {text!r}; "
                             "allowed: comma-separated N or HxW with positive integers, e.g. 224,256x320")
        h = int(match.group(1))
        w = int(match.group(2)) if match.group(2) else h
        if h <= 0 or w <= 0:
            raise UsageError(f"input size {token!r} must be positive")
        if min_size is not None and (h < min_size[0] or w < min_size[1]):
            raise UsageError(f"input size {h}x{w} is too small: it needs at least {min_size[0]}x{min_size[1]}")
        sizes.append((h, w))
    distinct = sorted(set(sizes))
    rank_rows = {(h * w, h + w) for h, w in distinct}
    if len(rank_rows) < 3:
        raise UsageError(f"--sizes {text!r} gives {len(distinct)} distinct size(s); the fit of "
                         "a*h*w + b*(h+w) + c needs at least 3 distinct sizes (e.g. 224,256,288)")
    return distinct


# --------------------------------------------------------------------------------------------
# Reference values of the notes and the audit
# --------------------------------------------------------------------------------------------
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.USub: operator.neg, ast.UAdd: operator.pos}


def evaluate(expression, **symbols) -> float:
    """Evaluate a reference value (a number or an arithmetic string in b, k, n, h, w)."""
    if isinstance(expression, (int, float)):
        return float(expression)

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in symbols:
                raise ValueError(f"reference expression {expression!r} needs a value for {node.id!r}")
            return float(symbols[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"unsupported reference expression {expression!r}")

    return walk(ast.parse(str(expression), mode="eval"))


def reference_file() -> Path:
    """The notes' and the audit's figures: ``reference.json`` of the ``architectures.saliency``
    package (located through the package, wherever it is installed)."""
    from architectures.saliency import REFERENCE_FILE

    return Path(REFERENCE_FILE)


def load_reference() -> dict[str, dict[str, Any]]:
    with open(reference_file(), encoding="utf-8") as fh:
        return {entry["model"]: entry for entry in json.load(fh)}


def reference_for(name: str, h: int | None = None, w: int | None = None) -> dict[str, Any] | None:
    """The notes' stated and the audit's corrected (a, c, params) for a saliency model, or None.

    The notes write MACs as ``coefficient*h*w + constant`` (no h+w term: b = 0).
    """
    info = SALIENCY_MODELS.get(name)
    if info is None:
        return None
    entry = load_reference()[info["key"]]
    symbols = dict(info["symbols"])
    if h is not None:
        symbols.update(h=h, w=w if w is not None else h)
    out = {"key": info["key"], "symbols": dict(info["symbols"]), "notes": entry.get("notes", "")}
    for which in ("seed", "corrected"):
        out[which] = {
            "a": evaluate(entry[f"{which}_macs_per_hw"], **symbols),
            "b": 0.0,
            "c": evaluate(entry[f"{which}_const"], **symbols),
        }
        try:
            out[which]["params"] = evaluate(entry[f"{which}_params"], **symbols)
        except ValueError:  # params that depend on h*w (MDF) without a size given
            out[which]["params"] = entry[f"{which}_params"]
    return out


# --------------------------------------------------------------------------------------------
# Fitting a registered model
# --------------------------------------------------------------------------------------------
COUNTERS = ("profile", "analytic")


def resolve_sizes(name: str, sizes, num_classes: int | None = None, variant=None, *, imports=()) -> list:
    """One ``registry.ModelRequest`` per input size: ``sizes`` is ``"224,256x320,288"`` or a list
    of N / (h, w); bad names, sizes, classes or options raise ``UsageError`` before anything is
    built."""
    from kbench.models import registry

    spec = registry.known_spec(name)
    if not isinstance(sizes, str):
        sizes = ",".join(f"{s}x{s}" if isinstance(s, int) else f"{s[0]}x{s[1]}" for s in sizes)
    return [registry.resolve(name, (h, w), num_classes, variant, imports=imports)
            for h, w in parse_sizes(sizes, spec.min_input_size)]


def measure(requests, *, counter: str = "profile", seed_terms: bool | None = None) -> list[dict[str, Any]]:
    """MACs of each resolved request (one model at one size): kbench's MACs and, for saliency
    models, the seed terms.

    ``counter="profile"`` uses the TF profiler (``kbench.counting.profiling.profile_model``),
    ``"analytic"`` the independent counter ``kbench.counting.macs.count_macs`` (no tracing; faster).
    """
    from kbench.counting.layer_walk import count_params
    from kbench.counting.macs import count_macs
    from kbench.counting.profiling import profile_model

    rows = []
    for request in requests:
        info = SALIENCY_MODELS.get(request.name)
        with_seed_terms = info is not None if seed_terms is None else seed_terms
        h, w, _ = request.input_shape
        if counter == "profile":  # a trace: the weights must hold values
            model = request.build()
            macs = profile_model(model, request.input_shape)["macs"]
        else:
            with shapes_only():
                model = request.build()
            macs = count_macs(model)["macs"]
        row = {"h": int(h), "w": int(w), "macs": int(macs), "params_trainable": count_params(model)["params_trainable"]}
        if with_seed_terms:
            bn = info["bn"] if info else True
            extra = seed_convention_ops(model, bn=bn)
            row["seed_terms"] = extra["total"]
            row["seed_terms_by_kind"] = extra["by_kind"]
            row["seed_params"] = notes.count_params(model, bn=bn)
        rows.append(row)
        forget_models()
    return rows


def fit_model(name: str, sizes, *, counter: str = "profile", num_classes: int | None = None,
              **variant) -> dict[str, Any]:
    """Profile ``name`` at ``sizes`` and fit ``a*h*w + b*(h+w) + c`` (the Python API: resolves
    its arguments once with ``resolve_sizes``, then ``fit_requests``)."""
    return fit_requests(resolve_sizes(name, sizes, num_classes, variant), counter=counter)


def fit_requests(requests, *, counter: str = "profile") -> dict[str, Any]:
    """Measure one model at several sizes (resolved requests) and fit ``a*h*w + b*(h+w) + c``.

    Returns the per-size measurements, the fit of kbench's MACs (``fit``) and, for the
    saliency models, the fit in the notes' convention (``fit_seed_convention``: MACs + the
    terms of ``seed_convention_ops``, also split by kind in ``seed_terms_fit``) next to the
    notes' stated and the audit's corrected coefficients (``reference``).
    """
    if counter not in COUNTERS:
        raise UsageError(f"unknown counter {counter!r}; allowed: {', '.join(COUNTERS)}")
    name = requests[0].name
    rows = measure(requests, counter=counter)
    a, b, c = fit_macs(((r["h"], r["w"]), r["macs"]) for r in rows)
    result: dict[str, Any] = {
        "model": name, "counter": counter, "sizes": [[r["h"], r["w"]] for r in rows], "measurements": rows,
        "fit": {"a": a, "b": b, "c": c},
        "max_residual": max(abs(r["macs"] - (a * r["h"] * r["w"] + b * (r["h"] + r["w"]) + c)) for r in rows),
    }
    if "seed_terms" in rows[0]:
        sa, sb, sc = fit_macs(((r["h"], r["w"]), r["macs"] + r["seed_terms"]) for r in rows)
        result["fit_seed_convention"] = {"a": sa, "b": sb, "c": sc}
        kinds = sorted({k for r in rows for k in r["seed_terms_by_kind"]})
        result["seed_terms_fit"] = {
            kind: dict(zip("abc", fit_macs(((r["h"], r["w"]), r["seed_terms_by_kind"].get(kind, 0)) for r in rows)))
            for kind in kinds
        }
    reference = reference_for(name, rows[0]["h"], rows[0]["w"])
    if reference is not None:
        result["reference"] = reference
        corrected_a = reference["corrected"]["a"]
        fitted = result.get("fit_seed_convention", result["fit"])["a"]
        result["relative_difference_a"] = (fitted - corrected_a) / corrected_a
    return result


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of a ``fit_model`` result (the ``kbench fit-flops`` output)."""
    lines = [f"{result['model']}: MACs(h, w) = a*h*w + b*(h+w) + c  (counter: {result['counter']})", ""]
    has_seed = "fit_seed_convention" in result
    header = f"{'size':>11}  {'kbench MACs':>16}"
    if has_seed:
        header += f"  {'seed-convention':>18}"
    lines.append(header)
    for r in result["measurements"]:
        line = f"{r['h']:>5}x{r['w']:<5}  {r['macs']:>16,}"
        if has_seed:
            line += f"  {r['macs'] + r['seed_terms']:>18,.2f}"
        lines.append(line)
    lines.append("")
    ref = result.get("reference")
    lines.append(f"{'':<28}{'a (per h*w)':>18}{'b (per h+w)':>16}{'c':>18}")

    def row(label, coefs):
        if coefs is None:
            return f"{label:<28}{'':>18}{'':>16}{'':>18}"
        a, b, c = (0.0 if abs(coefs[k]) < 5e-5 else coefs[k] for k in "abc")  # no "-0.00" for round-off
        return f"{label:<28}{a:>18,.4f}{b:>16,.4f}{c:>18,.2f}"

    lines.append(row("fit (kbench MACs)", result["fit"]))
    if has_seed:
        lines.append(row("fit (seed convention)", result["fit_seed_convention"]))
    lines.append(row("seed, as stated", ref["seed"] if ref else None))
    lines.append(row("audit, corrected", ref["corrected"] if ref else None))
    if has_seed:
        lines.append("")
        lines.append("terms kbench does not count (seed convention), fitted a per h*w:")
        for kind, coefs in result["seed_terms_fit"].items():
            lines.append(f"  {kind:<40}{coefs['a']:>14,.4f}")
    if ref:
        lines.append("")
        lines.append(f"a vs corrected: {100 * result['relative_difference_a']:+.4f}%   "
                     f"(reference entry {ref['key']!r}, symbols {ref['symbols'] or '-'})")
    lines.append(f"max fit residual: {result['max_residual']:.3g} MACs")
    return "\n".join(lines)
