"""What the saliency networks share: conv helper, VGG-16 probe, the notes' reference figures.

The reference figures (the notes' stated and the audit's corrected parameter counts and MAC
coefficients) live in ``reference.json`` next to this module; every spec's ``reported`` is
read from there, so the figures are typed once.
"""

from __future__ import annotations

import ast
import json
import operator
from functools import lru_cache
from pathlib import Path

from keras import models

from architectures._registry import Reported
from architectures.errors import InputShapeError
from architectures.layers import conv_bn_act
from architectures.vgg import vgg_features

SEED = "the saliency FLOPs notes (kbench/tables/saliency_notes.toml), re-evaluated line by line in reference.json"
REFERENCE_FILE = Path(__file__).with_name("reference.json")

COMMON_NOTE = ("Params in the notes are weights only (no conv biases); kbench's params_trainable "
               "also counts biases. kbench 'macs' count conv/dense/transposed-conv only; the notes "
               "also charge pooling (k*k per output), element-wise ops, bilinear upsampling (8/output), "
               "BN and transposed convs at output resolution with the full kernel "
               "(see kbench.counting.fit.seed_convention_ops).")

SEED_CONVENTION = ("seed convention: params are weights only (no biases); MACs include pooling, "
                   "element-wise, upsampling and BN terms and full-kernel transposed convs")


def check_input_multiple(input_shape, multiple: int, name: str) -> None:
    """The builder's own guard for direct calls (the registry checks ``ModelSpec.input_multiple`` first)."""
    h, w = int(input_shape[0]), int(input_shape[1])
    if h % multiple or w % multiple:
        raise InputShapeError(
            f"{name} needs input height and width that are multiples of {multiple} "
            f"(its decoder re-aligns stride-{multiple} features); got {h}x{w}")


def conv(x, filters, kernel, name, *, activation="relu", dilation=1, padding="same", norm=False, strides=1):
    """Conv (+bias) [+BN] + activation with systematic names (``<name>_conv``...)."""
    return conv_bn_act(x, filters, kernel, strides=strides, padding=padding, dilation=dilation, use_bias=True,
                       norm=norm, activation=activation, name=name)


def vgg16(inputs, *, batch_norm=False, name="block"):
    """VGG-16 (config D) features: pre-pool block outputs and the pooled output of each block."""
    pre_pool, pooled5 = vgg_features(inputs, "D", batch_norm=batch_norm, name=name)
    probe = models.Model(inputs, pooled5)  # only to look up the intermediate pool outputs
    pooled = [probe.get_layer(f"{name}{b}_pool").output for b in range(1, 6)]
    return pre_pool, pooled


# ---- the notes' reference figures -------------------------------------------------------------
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression, symbols) -> float | int:
    """A reference entry (a number or an arithmetic string such as ``"k*(49846*n + 24924)"``)."""
    if isinstance(expression, (int, float)):
        return expression

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in symbols:
            return symbols[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"unsupported term {ast.dump(node)} in reference expression {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


@lru_cache(maxsize=None)
def reference_entries() -> dict[str, dict]:
    """``reference.json`` by its ``model`` key (e.g. ``"PAGRN-v1"``)."""
    return {entry["model"]: entry for entry in json.loads(REFERENCE_FILE.read_text())}


def reference_reported(key: str, *, lines: str, size: int = 224, **symbols) -> tuple[Reported, Reported]:
    """The audit-corrected (primary) and the stated figures of ``key`` at ``size`` x ``size``.

    ``symbols`` are the notes' free symbols (``b`` batch size in the BN cost, MDF's ``n``, ``k``);
    ``h`` and ``w`` are the size. Both figures are in the notes' convention (see
    ``SEED_CONVENTION``), not kbench's, hence ``derived``: tests/models/test_saliency.py checks
    them through ``kbench.counting.fit.seed_convention_ops``.
    """
    entry = reference_entries()[key]
    values = dict(symbols, h=size, w=size)

    def figure(prefix):
        params = evaluate(entry[f"{prefix}_params"], values)
        per_hw, const = (evaluate(entry[f"{prefix}_{term}"], values) for term in ("macs_per_hw", "const"))
        return params, per_hw * size * size + const

    corrected_params, corrected_macs = figure("corrected")
    seed_params, seed_macs = figure("seed")
    return (
        Reported(exactness="derived", primary=True, params=corrected_params, macs=corrected_macs,
                 input_size=(size, size), convention=SEED_CONVENTION,
                 source=f"architectures/saliency/reference.json [{key}] (corrected "
                        f"values of {SEED}, lines {lines})"),
        Reported(exactness="derived", params=seed_params, macs=seed_macs, input_size=(size, size),
                 convention=SEED_CONVENTION,
                 source=f"{SEED}, lines {lines} (as stated; MACs = stated formula, b=1)"),
    )
