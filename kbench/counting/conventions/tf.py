"""``tf``: float operations as the TensorFlow profiler counts them (``flops_tf`` of
``kbench.counting.profiling``): 2 per multiply-add of conv/matmul ops plus the profiler's own rules for
BiasAdd, BN arithmetic, pooling, softmax and element-wise ops. A part drops the head layers'
per-layer rows of the profile."""

from __future__ import annotations

from kbench.counting.conventions._base import Convention
from kbench.counting.parts import Counted, excluded_layers


def count(model, input_shape, part: str = "whole") -> Counted:
    from kbench.counting.layer_walk import flat_layers
    from kbench.counting.profiling import profile_model

    record = profile_model(model, input_shape, per_layer=True)
    excluded = excluded_layers(model, part)
    dropped = {name for name, layer in flat_layers(model) if id(layer) in excluded}
    per_layer = {row["name"]: row["flops_tf"] for row in record["per_layer"]
                 if row["flops_tf"] and row["name"] not in dropped}
    return Counted(total=int(sum(per_layer.values())), per_layer=per_layer,
                   uncovered=tuple(f"{op} x{n}" for op, n in record["uncounted_ops"].items()))


CONVENTION = Convention(
    name="tf", unit="flops", count=count,
    summary="the TF profiler's float ops (flops_tf): 2 per multiply-add plus bias, BN, pooling, softmax and element-wise ops")
