"""``notes``: the saliency notes' own cost convention (the study notes of kbench/tables/saliency_notes.toml).

The notes count more than MACs: k*k ops per pooled output, 1 per input of a global pool, 8 per
output of bilinear and 1 per output of nearest upsampling, 1 per output per extra operand of an
element-wise layer, BN 2*(b+1) per element (b = batch; ``bn=False``: BN folded, 0), and transposed
convs charged with the full kernel at the output resolution. ``seed_convention_ops`` counts those
terms on top of kbench's MACs (``kbench.counting.fit`` fits coefficients of MACs + these terms); the
``notes`` convention is their sum.
"""

from __future__ import annotations

from typing import Any

from kbench.counting.conventions._base import convention
from kbench.counting.parts import Counted, excluded_layers
from kbench.counting.layer_walk import prod as _prod


def _seed_rules(*, bn: bool, batch: int):
    """The notes' per-layer terms on top of kbench's MACs, as a rule table for ``analyze``.

    Each rule returns ``(ops, kind)``; layers without a rule cost 0 in this convention. Built per
    call because the BN term depends on ``bn`` and ``batch``.
    """
    import keras

    from kbench.counting.layer_walk import RuleTable

    L = keras.layers
    rules = RuleTable()

    def output_elements(output_shapes):
        return _prod(output_shapes[0]) if output_shapes else 0

    @rules.register(L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
    def _transposed_conv(layer, in_shapes, out_shapes):
        # Full kernel at output resolution (zero insertion + conv) instead of 1/stride^2 of it.
        full = output_elements(out_shapes) * _prod(layer.kernel_size) * in_shapes[0][-1]
        return full - full // _prod(layer.strides), "transposed conv at output resolution"

    @rules.register(L.MaxPooling2D, L.AveragePooling2D, L.MaxPooling1D, L.AveragePooling1D)
    def _pooling(layer, in_shapes, out_shapes):
        return output_elements(out_shapes) * _prod(layer.pool_size), "pooling (k*k per output)"

    @rules.register(L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)
    def _global_pooling(layer, in_shapes, out_shapes):
        return _prod(in_shapes[0]), "global pooling (1 per input)"

    @rules.register(L.UpSampling2D)
    def _upsampling(layer, in_shapes, out_shapes):
        per = 8 if layer.interpolation == "bilinear" else 1
        return per * output_elements(out_shapes), f"{layer.interpolation} upsampling ({per} per output)"

    @rules.register(L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
    def _element_wise(layer, in_shapes, out_shapes):
        return (len(in_shapes) - 1) * output_elements(out_shapes), "element-wise"

    @rules.register(L.BatchNormalization)
    def _batch_norm(layer, in_shapes, out_shapes):
        # mean and variance over the batch (b*h*w*d each), normalise and scale/shift (h*w*d each).
        return (2 * (batch + 1) * output_elements(out_shapes) if bn else 0), "batch norm"

    return rules


def _no_seed_ops(layer, in_shapes, out_shapes):
    return 0, ""


def seed_convention_ops(model, *, bn: bool = True, batch: int = 1) -> dict[str, Any]:
    """Ops of ``model`` that the notes count but kbench's MACs do not, by kind and by layer.

    Rules (the notes' own conventions, as their cost lines apply them): k*k ops per pooled output;
    1 per input of a global pool; 8 per output of bilinear and 1 per output of nearest
    upsampling; 1 per output per extra operand of an element-wise layer; BN 2*(b+1) per element
    (``bn=False``: BN folded, 0); transposed convs charged with the full kernel at the output
    resolution (the difference to kbench's 1/stride^2 count). Activations, concatenation and
    reshapes cost 0. ``per_layer`` lists only the layers charged something, nested models'
    layers as ``nested/layer`` (see ``kbench.counting.layer_walk``).
    """
    from kbench.counting.layer_walk import analyze

    counted = analyze(model, _seed_rules(bn=bn, batch=batch), default=_no_seed_ops, as_number=lambda ops: ops,
                      skip_zero=True)
    return {"total": float(counted.total), "by_kind": counted.by_kind, "per_layer": counted.per_layer}


def count(model, input_shape=None, part: str = "whole", *, bn: bool = True, batch: int = 1, calls=None) -> Counted:
    """MACs + the notes' extra terms (``seed_convention_ops``) over ``part`` of ``model``."""
    from kbench.counting.parts import PartRules
    from kbench.counting.layer_walk import analyze, layer_calls
    from kbench.counting.macs import MAC_RULES

    excluded = excluded_layers(model, part)
    calls = layer_calls(model) if calls is None else calls
    macs = analyze(model, PartRules(MAC_RULES, excluded), skip_zero=True, calls=calls)
    extra = analyze(model, PartRules(_seed_rules(bn=bn, batch=batch), excluded), default=_no_seed_ops,
                    as_number=lambda ops: ops, skip_zero=True, calls=calls)
    per_layer = dict(macs.per_layer)
    for name, ops in extra.per_layer.items():
        per_layer[name] = per_layer.get(name, 0) + int(ops)
    return Counted(total=int(macs.total + extra.total), per_layer=per_layer, uncovered=tuple(macs.uncovered))


def count_params(model, *, bn: bool = True) -> int:
    """Parameters as the notes count them: conv/dense kernels (no biases), plus BN gamma/beta when
    the notes count BN (``bn``); BN moving statistics never."""
    from kbench.counting.conventions.params import KERNELS

    counted = KERNELS + (("gamma", "beta") if bn else ())
    return sum(_prod(v.shape) for v in model.trainable_weights if v.path.rsplit("/", 1)[-1] in counted)


CONVENTION = convention("notes", count, count_params=count_params)
