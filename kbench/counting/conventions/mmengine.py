"""``mmengine``: what mmpretrain/mmdet/mmseg ``get_flops`` print (mmengine
``get_model_complexity_info``, fvcore-style jit handles: mmengine/analysis/complexity_analysis.py
and mmengine/analysis/jit_handles.py, mmengine 0.x). Its "FLOPs" are MACs plus a few terms:

* conv, depthwise, transposed conv and linear (Dense): multiply-accumulates, bias ignored
  (the ``macs`` rules, attention matmuls included);
* batch norm (eval mode): 2 per element; layer norm and group norm: 5 per element;
* nearest upsampling: 1 per output element; bilinear: 4 per output element;
* adaptive (global) average pooling: 1 per input element (also FcaNet's pooling of a map to its
  DCT grid, when the sizes differ);
* ReLU and other activations, add, max-pool, softmax, element-wise products: 0.

mmpretrain counts ``extract_feat`` (no classifier): use ``part="backbone"`` for those figures
(ResNet-50 at 224: 4,109,364,224, printed "4.109G").
"""

from __future__ import annotations

from kbench.common.quiet import quiet_import

keras = quiet_import("keras")

from kbench.counting.conventions._base import rule_table_convention
from kbench.counting.parts import copy_rules, input_elements, output_elements


def _rules():
    from kbench.counting.macs import MAC_RULES

    L = keras.layers
    rules = copy_rules(MAC_RULES)

    @rules.register(L.BatchNormalization)
    def _batch_norm(layer, input_shapes, output_shapes):
        return 2 * output_elements(output_shapes)

    @rules.register(L.LayerNormalization, L.GroupNormalization)
    def _norm(layer, input_shapes, output_shapes):
        return 5 * output_elements(output_shapes)

    @rules.register(L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
    def _upsampling(layer, input_shapes, output_shapes):
        per = 4 if getattr(layer, "interpolation", "nearest") == "bilinear" else 1
        return per * output_elements(output_shapes)

    @rules.register(L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
    def _adaptive_average_pool(layer, input_shapes, output_shapes):
        return input_elements(input_shapes)

    from architectures.layers.attention import MultiSpectralChannelAttention

    mac_rule = rules[MultiSpectralChannelAttention]

    @rules.register(MultiSpectralChannelAttention)
    def _multi_spectral_attention(layer, input_shapes, output_shapes):
        # FcaNet's reference pools a map that is not the DCT grid with adaptive_avg_pool2d (1 per
        # input element here; kbench folds that pooling into the filter) before the DCT weighting
        # (an element-wise product and a sum: 0) and the two FCs (MACs).
        h, w = (int(d) for d in input_shapes[0][:2])
        pooled = input_elements(input_shapes) if (h, w) != tuple(layer.dct_grid) else 0
        return mac_rule(layer, input_shapes, output_shapes) + pooled

    return rules


MMENGINE_RULES = _rules()


CONVENTION = rule_table_convention("mmengine", MMENGINE_RULES)
