"""``tf``: float operations as the TensorFlow profiler counts them (``flops_tf`` of
``kbench.counting.profiling``): 2 per multiply-add of conv/matmul ops plus the profiler's own rules for
BiasAdd, BN arithmetic, pooling, softmax and element-wise ops. A part drops the head layers'
per-layer rows of the profile. Within ``kbench profile`` it is read off the profile being made
(``from_profile``: the model is traced once)."""

from __future__ import annotations

from kbench.counting.conventions._base import convention
from kbench.counting.parts import Counted, excluded_layers


def from_profile(model, layer_flops, uncounted_ops, part: str = "whole") -> Counted:
    """The count of ``part`` from a profile's FLOPs per layer (``profiling.count_graph``)."""
    from kbench.counting.layer_walk import flat_layers

    excluded = excluded_layers(model, part)
    dropped = {name for name, layer in flat_layers(model) if id(layer) in excluded}
    per_layer = {name: int(flops) for name, flops in layer_flops.items() if flops and name not in dropped}
    return Counted(total=int(sum(per_layer.values())), per_layer=per_layer,
                   uncovered=tuple(f"{op} x{n}" for op, n in uncounted_ops.items()))


def count(model, input_shape, part: str = "whole", *, calls=None) -> Counted:
    from kbench.counting.profiling import profile_model

    record = profile_model(model, input_shape, per_layer=True)
    layer_flops = {row["name"]: row["flops_tf"] for row in record["per_layer"]}
    return from_profile(model, layer_flops, record["uncounted_ops"], part)


CONVENTION = convention("tf", count, from_profile=from_profile)
