"""``ptflops``: what ptflops' ``get_model_complexity_info`` (PyTorch backend, module hooks) prints as
"Computational complexity ... MMac", mapped onto Keras layers:

* conv (any kind): multiply-accumulates + 1 per output element when the layer has a bias
  (a separable conv is a depthwise conv then a pointwise conv);
* linear (Dense): in x out multiply-accumulates + out for the bias;
* batch norm: 1 per element, 2 with its affine scale/shift (Keras: ``center`` or ``scale``);
* ReLU-family activations (a ReLU/Activation layer, or a layer's fused ``activation``): 1 per
  output element;
* pooling (max, average, global): 1 per *input* element; upsampling: 1 per output element;
* the residual ``+`` and concatenation: 0 (a Python operator, no module).
"""

from __future__ import annotations

from kbench.common.quiet import quiet_import

keras = quiet_import("keras")

from kbench.counting.conventions._base import rule_table_convention
from kbench.counting.parts import copy_rules, input_elements, output_elements, rule_for_class

_RELU_NAMES = {"relu", "relu6", "elu", "leaky_relu", "prelu"}


def _activation_name(activation) -> str:
    return getattr(activation, "__name__", str(activation)).lower()


def _fused_activation(layer, output_shapes) -> int:
    activation = getattr(layer, "activation", None)
    return output_elements(output_shapes) if activation is not None and _activation_name(activation) in _RELU_NAMES else 0


def _rules():
    from kbench.counting.macs import MAC_RULES

    L = keras.layers
    rules = copy_rules(MAC_RULES)

    def with_bias_and_activation(base):
        def rule(layer, input_shapes, output_shapes):
            bias = output_elements(output_shapes) if getattr(layer, "use_bias", False) else 0
            return base(layer, input_shapes, output_shapes) + bias + _fused_activation(layer, output_shapes)
        return rule

    for cls in (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.SeparableConv1D,
                L.SeparableConv2D, L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose, L.Dense):
        rules[cls] = with_bias_and_activation(rule_for_class(MAC_RULES, cls))

    @rules.register(L.BatchNormalization)
    def _batch_norm(layer, input_shapes, output_shapes):
        return (2 if (layer.center or layer.scale) else 1) * output_elements(output_shapes)

    @rules.register(L.ReLU, L.ELU, L.LeakyReLU, L.PReLU)
    def _relu(layer, input_shapes, output_shapes):
        return output_elements(output_shapes)

    @rules.register(L.Activation)
    def _activation(layer, input_shapes, output_shapes):
        return _fused_activation(layer, output_shapes)

    @rules.register(L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D,
                    L.AveragePooling3D, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
                    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)
    def _pooling(layer, input_shapes, output_shapes):
        return input_elements(input_shapes)

    @rules.register(L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
    def _upsampling(layer, input_shapes, output_shapes):
        return output_elements(output_shapes)

    return rules


PTFLOPS_RULES = _rules()


CONVENTION = rule_table_convention("ptflops", PTFLOPS_RULES)
