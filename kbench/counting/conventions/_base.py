"""What every counting convention shares: the catalog (name, unit, what it counts, how its tool
prints a count: listable without Keras), the ``Convention`` record and the convention that is one
rule table over the layer walk (counts over a part: ``kbench.counting.parts``)."""

from __future__ import annotations

import dataclasses
from typing import Callable

from kbench.common.humanize import fvcore_size, human_count, ptflops_macs
from kbench.counting.parts import Counted, count_with_rules


@dataclasses.dataclass(frozen=True)
class ConventionInfo:
    name: str
    unit: str                         # "macs" or "flops": how a paper would label the number
    summary: str                      # one line: what it counts (``kbench conventions``)
    # The count as the convention's own tool prints it (mmengine: '4.109G'), and the decimals a
    # table scaled to M or G keeps: enough to tell apart what that tool tells apart.
    display: Callable[[int], str] = human_count
    decimals: int = 2


# Every convention, in the order ``kbench conventions`` lists them; each module counts its own.
CATALOG: dict[str, ConventionInfo] = {info.name: info for info in (
    ConventionInfo("macs", "macs", "multiply-accumulates of conv/depthwise/separable/transposed conv/dense/matmul "
                   "layers; nothing else", display=fvcore_size, decimals=3),
    ConventionInfo("tf", "flops", "the TF profiler's float ops (flops_tf): 2 per multiply-add plus bias, BN, pooling, "
                   "softmax and element-wise ops"),
    ConventionInfo("mmengine", "macs", "mmengine get_model_complexity_info (mmpretrain/mmdet/mmseg get_flops): "
                   "conv/linear MACs without bias, BN 2/element, LN/GN 5/element, nearest upsampling 1 and bilinear 4 "
                   "per output, global average pool 1 per input", display=fvcore_size, decimals=3),
    ConventionInfo("notes", "flops", "the saliency notes' count: MACs + k*k per pooled output, element-wise ops, "
                   "BN 2(b+1)/element, bilinear 8 per output, transposed convs at output resolution"),
    ConventionInfo("ptflops", "macs", "ptflops (PyTorch module hooks): MACs + bias adds, BN 2/element, ReLU 1/element, "
                   "pooling 1 per input, upsampling 1 per output; residual adds not counted", display=ptflops_macs),
)}


@dataclasses.dataclass(frozen=True)
class Convention:
    """A named way to count: operations (``count``), parameters (``count_params``), or both (the
    saliency notes' convention counts both its own way)."""

    name: str
    summary: str                      # one line: what it counts (``kbench conventions``)
    unit: str                         # "macs", "flops" or "params": how a paper would label the number
    count: Callable[..., Counted] | None = None      # count(model, input_shape, part, *, calls=None) -> Counted
    count_params: Callable[..., int] | None = None   # count_params(model) -> int
    # A convention read off a TF profile: from_profile(model, layer_flops, uncounted_ops, part) ->
    # Counted, with the per-layer FLOPs of the profile being made (no second trace).
    from_profile: Callable[..., Counted] | None = None
    display: Callable[[int], str] = human_count
    decimals: int = 2


def convention(name: str, count: Callable[..., Counted], **extra) -> Convention:
    """The ``Convention`` of catalog entry ``name`` (an operation count) counted by ``count``."""
    info = CATALOG[name]
    return Convention(name=name, summary=info.summary, unit=info.unit, count=count, display=info.display,
                      decimals=info.decimals, **extra)


def rule_table_convention(name: str, rules) -> Convention:
    """A convention that is one rule table over the layer walk (the input shape is the model's;
    ``calls``: the model's ``layer_walk.layer_calls``, if walked already)."""

    def count(model, input_shape=None, part: str = "whole", *, calls=None) -> Counted:
        return count_with_rules(model, rules, part, calls=calls)

    return convention(name, count)
