"""kbench.counting.layer_walk: the one walk under the analytic counters, on tiny hand-computed models."""

import keras
import pytest

from kbench.counting.fit import seed_convention_ops
from kbench.counting.layer_walk import RuleTable, analyze, count_params, flat_layers, layer_calls
from kbench.counting.macs import MAC_RULES, count_macs
from kbench.counting.memory_cost import memory_access_cost


def _chain():
    """8x8x3 -> conv 3x3 (4 filters, same) -> BN -> ReLU -> flatten -> dense 10."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="fc")(x))


CONV_MACS = 8 * 8 * 4 * 3 * 3 * 3  # outputs x k*k x Cin = 6912
FC_MACS = 8 * 8 * 4 * 10           # 2560


def _nested():
    """A backbone (conv 3x3 3->4, grouped conv 3x3 4->4 in 2 groups) called twice, then Add and a
    1x1 head conv 4->2, all on 8x8 maps."""
    backbone_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(backbone_in)
    x = keras.layers.Conv2D(4, 3, padding="same", groups=2, name="conv2")(x)
    backbone = keras.Model(backbone_in, x, name="backbone")
    inputs = keras.Input((8, 8, 3))
    y = keras.layers.Add(name="add")([backbone(inputs), backbone(inputs)])
    return keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(y))


def test_chain_macs_per_layer_by_hand():
    counted = count_macs(_chain())
    # BN has a 0 rule (listed); ReLU and Flatten have no rule and no weights (not listed).
    assert counted["per_layer"] == {"conv": CONV_MACS, "bn": 0, "fc": FC_MACS}
    assert counted["macs"] == CONV_MACS + FC_MACS == 9472
    assert counted["unknown_layers"] == []


def test_nested_model_is_walked_into_with_qualified_names():
    model = _nested()
    conv1 = 8 * 8 * 4 * 3 * 3 * 3       # 6912 per call
    conv2 = 8 * 8 * 4 * 3 * 3 * (4 // 2)  # 4608 per call (groups=2)
    head = 8 * 8 * 2 * 4                 # 512
    counted = count_macs(model)
    assert counted["per_layer"] == {"backbone/conv1": 2 * conv1, "backbone/conv2": 2 * conv2, "head": head}
    assert counted["macs"] == 2 * (conv1 + conv2) + head == 23_552
    # Memory access: every call reads its input, writes its output and reads its kernel.
    memory = memory_access_cost(model)["per_layer"]
    assert memory["backbone/conv1"] == 2 * (8 * 8 * 3 + 8 * 8 * 4 + 3 * 3 * 3 * 4)
    assert memory["add"] == 3 * 8 * 8 * 4
    # The seed convention charges the Add one op per output per extra operand.
    assert seed_convention_ops(model) == {"total": 256.0, "by_kind": {"element-wise": 256}, "per_layer": {"add": 256}}


def test_flat_layers_lists_nested_layers_without_their_inputs():
    model = _nested()
    layers = list(flat_layers(model))
    assert layers[0] == (model.layers[0].name, model.layers[0])  # the outer input layer stays
    assert [name for name, _ in layers[1:]] == ["backbone/conv1", "backbone/conv2", "add", "head"]


def test_rule_kinds_default_and_skip_zero():
    rules = RuleTable()

    @rules.register(keras.layers.Conv2D)
    def _conv(layer, input_shapes, output_shapes):
        return 1, "conv"

    @rules.register(keras.layers.Dense)
    def _dense(layer, input_shapes, output_shapes):
        return 0, "dense"

    def _default(layer, input_shapes, output_shapes):
        return 2, "other"

    counted = analyze(_chain(), rules, default=_default)
    assert counted.per_layer == {"conv": 1, "bn": 2, "relu": 2, "flat": 2, "fc": 0}
    assert counted.by_kind == {"conv": 1, "other": 6, "dense": 0}
    assert counted.total == 7 and counted.uncovered == []
    assert analyze(_chain(), rules, default=_default, skip_zero=True).per_layer == {"conv": 1, "bn": 2, "relu": 2, "flat": 2}


def test_layers_without_a_rule_are_uncovered_only_when_weighted():
    rules = RuleTable()
    rules.register(keras.layers.Conv2D)(lambda layer, i, o: 5)
    counted = analyze(_chain(), rules)
    assert counted.per_layer == {"conv": 5}
    assert counted.uncovered == ["bn (BatchNormalization)", "fc (Dense)"]


def test_rules_follow_the_class_hierarchy():
    class WideConv(keras.layers.Conv2D):
        pass

    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, WideConv(3, 3, name="wide")(inputs))
    assert MAC_RULES.lookup(model.get_layer("wide")) is MAC_RULES[keras.layers.Conv2D]
    assert count_macs(model)["per_layer"] == {"wide": 4 * 4 * 3 * 3 * 3 * 2}


def test_count_params_splits_trainable_and_statistics():
    counts = count_params(_chain())
    conv, bn_affine, bn_statistics, fc = 3 * 3 * 3 * 4 + 4, 2 * 4, 2 * 4, 256 * 10 + 10
    assert counts == {"params": conv + bn_affine + fc, "params_trainable": conv + bn_affine + fc,
                      "params_non_trainable": bn_statistics, "params_keras_total": conv + bn_affine + bn_statistics + fc}


def test_params_count_frozen_weights_as_torchvision_does():
    """A frozen layer's weights are still parameters (torchvision counts every nn.Parameter,
    requires_grad or not); only BN's moving statistics (buffers in PyTorch) are left out."""
    model = _chain()
    model.get_layer("conv").trainable = False
    model.get_layer("bn").trainable = False
    counts = count_params(model)
    conv, bn_affine, bn_statistics, fc = 3 * 3 * 3 * 4 + 4, 2 * 4, 2 * 4, 256 * 10 + 10
    assert counts["params"] == conv + bn_affine + fc
    assert counts["params_trainable"] == fc
    assert counts["params_non_trainable"] == conv + bn_affine + bn_statistics


class ConvBnBlock(keras.layers.Layer):
    """A custom layer with no rule of its own: conv 3x3 (same) then BN, as sublayers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, padding="same")
        self.bn = keras.layers.BatchNormalization()

    def call(self, x):
        return self.bn(self.conv(x))


class SubclassedNet(keras.Model):
    """8x8x3 -> ConvBnBlock -> ReLU -> global average pool -> dense 10, as a subclassed model."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.block = ConvBnBlock()
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.fc = keras.layers.Dense(10)

    def call(self, x):
        return self.fc(self.pool(keras.ops.relu(self.block(x))))


def test_subclassed_model_is_walked_through_its_recorded_calls():
    from kbench.counting.activations import count_activations
    from kbench.models.views import functional_view

    model = functional_view(SubclassedNet(name="net"), (8, 8, 3))
    calls = layer_calls(model)
    assert [call.name for call in calls] == ["net"]
    assert [type(c.layer).__name__ for c in calls[0].children] == ["ConvBnBlock", "GlobalAveragePooling2D", "Dense"]
    # Every count lands on the subclassed model's own row; the custom block (no rule) is walked into.
    assert count_macs(model) == {"macs": CONV_MACS + 4 * 10, "per_layer": {"net": CONV_MACS + 4 * 10},
                                 "unknown_layers": []}
    assert count_activations(model, calls=calls).per_layer == {"net": 8 * 8 * 4 + 10}
    # Memory: the block has no memory rule of its own, so the default one counts it whole (input +
    # output + its conv kernel), as in a Functional model; then the pool and the dense layer.
    block = 8 * 8 * 3 + 8 * 8 * 4 + 3 * 3 * 3 * 4
    pool, fc = 8 * 8 * 4 + 4, 4 + 10 + 4 * 10
    assert memory_access_cost(model, calls=calls) == {"total": block + pool + fc, "per_layer": {"net": block + pool + fc}}


def test_recording_leaves_the_model_as_it_was():
    from kbench.models.views import functional_view

    inner = SubclassedNet(name="net")
    model = functional_view(inner, (8, 8, 3))
    nodes_before, call_before = len(inner._inbound_nodes), keras.layers.Layer.__call__
    layer_calls(model)
    assert len(inner._inbound_nodes) == nodes_before  # no Keras node added to the user's model
    assert keras.layers.Layer.__call__ is call_before  # the recording is undone


@pytest.mark.parametrize("builder", [_chain, _nested])
def test_memory_access_cost_total_is_the_sum_of_its_layers(builder):
    cost = memory_access_cost(builder())
    assert cost["total"] == sum(cost["per_layer"].values()) > 0
