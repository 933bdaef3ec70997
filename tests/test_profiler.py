"""The TF-profiler counts and the analytic counter: grouped convolutions, unresolved calls, unknown
dimensions, uncounted ops, dilation padding, per-layer rows (nested models included)."""

import json

import keras
import pytest

import kbench
from kbench.cli import main
from kbench.counting.macs import count_macs
from kbench.counting.profiling import profile_model


def _grouped_model(groups):
    inputs = keras.Input((14, 14, 32))
    x = keras.layers.Conv2D(64, 3, padding="same", groups=groups, use_bias=False, name="gconv")(inputs)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("groups", [1, 2, 4, 32])
def test_grouped_convolution_is_counted_exactly(groups):
    record = profile_model(_grouped_model(groups), (14, 14, 32))
    expected_macs = 14 * 14 * 64 * 3 * 3 * 32 // groups
    assert record["macs"] == expected_macs
    assert record["flops_by_op"]["Conv2D"] == 2 * expected_macs
    assert "StatefulPartitionedCall" not in record["uncounted_ops"]


def test_unresolved_function_call_is_reported(monkeypatch):
    from kbench.counting import profiling as profile_module

    monkeypatch.setattr(profile_module._GraphCounter, "_resolve", lambda self, fname, node: None)
    record = profile_model(_grouped_model(4), (14, 14, 32))
    assert record["uncounted_ops"].get("StatefulPartitionedCall") == 1
    assert record["macs"] == 0


def test_unknown_dimension_is_an_error_not_zero():
    with pytest.raises(RuntimeError, match="could not count"):
        profile_model(_grouped_model(1), (None, None, 32))


def test_activations_without_a_rule_are_listed():
    record = kbench.profile("lenet5")
    assert record["uncounted_ops"] == {"Tanh": 4}


class _Sample(keras.layers.Layer):
    """Gathers rows of its input at positions it computes (a stand-in for RoIAlign's sampling)."""

    def call(self, x):
        positions = keras.ops.cast(keras.ops.argmax(x[0, :, 0:3], axis=0), "int32")
        return keras.ops.take(x, positions, axis=1)


class _Permute(keras.layers.Layer):
    """Gathers channels in a fixed order (a channel shuffle): data movement."""

    def call(self, x):
        return keras.ops.take(x, keras.ops.convert_to_tensor([1, 0, 3, 2]), axis=-1)


def test_gathers_at_computed_positions_are_listed_constant_ones_are_not():
    inputs = keras.Input((6, 4))
    sampled = profile_model(keras.Model(inputs, _Sample()(inputs)), (6, 4))
    permuted = profile_model(keras.Model(inputs, _Permute()(inputs)), (6, 4))
    assert sampled["uncounted_ops"].get("GatherV2[computed indices]") == 1
    assert not any(op.startswith("Gather") for op in permuted["uncounted_ops"])


def test_analytic_counter_flags_unknown_weighted_layers():
    class Mystery(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 4))

        def call(self, x):
            return keras.ops.matmul(x, self.w)

    inputs = keras.Input((8,))
    model = keras.Model(inputs, Mystery(name="mystery")(inputs))
    assert count_macs(model)["unknown_layers"] == ["mystery (Mystery)"]


def test_dilated_convolution_padding_is_not_counted_as_macs():
    # Rate 3 does not divide 8: TF pads the map through SpaceToBatchND and convolves the padding.
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same", dilation_rate=3, use_bias=False, name="atrous")(inputs)
    record = profile_model(keras.Model(inputs, x), (8, 8, 4))
    assert record["macs"] == 8 * 8 * 6 * 3 * 3 * 4
    assert record["flops_tf"] > 2 * record["macs"]  # the profiler's count includes the padding
    # ... and the padding's share is reported apart: 2 x (padded outputs - real outputs) x k*k*Cin*Cout.
    padded_outputs = 9 * 3 * 3  # SpaceToBatchND: 3x3 = 9 phases, each producing a 3x3 (= ceil(8/3)) output
    assert record["flops_tf_dilation_padding"] == 2 * (padded_outputs - 8 * 8) * 6 * 3 * 3 * 4


def test_per_layer_table_sums_to_totals(capsys):
    assert main(["profile", "resnet18", "--input-size", "64", "--per-layer", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)["models"][0]
    assert sum(r["macs"] for r in record["per_layer"]) == record["macs"]
    assert sum(r["flops_tf"] for r in record["per_layer"]) == record["flops_tf"]
    assert sum(r["params"] for r in record["per_layer"]) == record["params"]


def _assert_rows_match_totals_and_analytic_counts(model, record):
    rows = record["per_layer"]
    for column, total in (("macs", "macs"), ("flops_tf", "flops_tf"), ("params", "params"),
                          ("mem_access", "mem_access")):
        assert sum(r[column] for r in rows) == record[total], column
    by_layer = {r["name"]: r["macs"] for r in rows}
    for layer_name, macs in count_macs(model)["per_layer"].items():
        assert by_layer[layer_name] == macs, layer_name


def test_nested_model_rows_are_its_layers():
    # A backbone (conv 3x3 3->4, grouped conv 3x3 4->4 in 2 groups) called twice, Add, 1x1 head 4->2.
    backbone_in = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(backbone_in)
    x = keras.layers.Conv2D(4, 3, padding="same", groups=2, name="conv2")(x)
    backbone = keras.Model(backbone_in, x, name="backbone")
    inputs = keras.Input((8, 8, 3))
    y = keras.layers.Add(name="add")([backbone(inputs), backbone(inputs)])
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(y))

    record = profile_model(model, (8, 8, 3), per_layer=True)
    rows = {r["name"]: r for r in record["per_layer"]}
    assert list(rows)[1:] == ["backbone/conv1", "backbone/conv2", "add", "head"]
    assert rows["backbone/conv1"]["macs"] == 2 * 8 * 8 * 4 * 3 * 3 * 3  # two calls
    assert rows["backbone/conv2"]["macs"] == 2 * 8 * 8 * 4 * 3 * 3 * 2  # grouped: Cin/groups = 2
    assert rows["backbone/conv1"]["params"] == 3 * 3 * 3 * 4 + 4
    assert record["macs"] == 23_552
    _assert_rows_match_totals_and_analytic_counts(model, record)


def test_registered_model_with_a_nested_extractor_lists_its_layers():
    # MDF applies one extractor network (a nested Functional model) to three regions.
    model = kbench.build("mdf", input_shape=(64, 64))
    record = profile_model(model, (64, 64, 9), per_layer=True)
    names = [r["name"] for r in record["per_layer"]]
    assert "mdf_extractor" not in names
    extractor_rows = [n for n in names if n.startswith("mdf_extractor/")]
    assert len(extractor_rows) == len(model.get_layer("mdf_extractor").layers) - 1  # its input layer left out
    assert all(r["macs"] for r in record["per_layer"] if r["type"] == "Conv2D")
    _assert_rows_match_totals_and_analytic_counts(model, record)


# ---- per-layer grouping and sizes --------------------------------------------------------------
def test_layer_groups_follow_the_name_hierarchy():
    """Nested models' paths first, then the layer name's '_'-separated parts (the zoo's and Keras
    Applications' names): fvcore's max_depth / torchinfo's depth over Keras names."""
    from kbench.counting.profiling import layer_group

    assert [layer_group("conv2_block1_1_conv", d) for d in (1, 2, 3)] == ["conv2", "conv2_block1", "conv2_block1_1"]
    assert [layer_group("backbone/conv1_conv", d) for d in (1, 2, 3)] == ["backbone", "backbone/conv1",
                                                                          "backbone/conv1_conv"]
    assert layer_group("(outside any layer)", 1) == "(outside any layer)"


def test_grouped_rows_sum_their_members_by_depth_or_regex():
    import re

    from kbench.counting.profiling import group_per_layer

    def row(name, macs, ops=None):
        return {"name": name, "type": "Conv2D", "input_shape": (8,), "output_shape": (macs,), "params": 1,
                "macs": macs, "flops_tf": 2 * macs, "mem_access": 3, "activations": 4, "uncounted_ops": ops or {}}

    rows = [row("stem_conv", 10, {"Relu": 1}), row("stage1_a", 20, {"Relu": 1}), row("stage1_b", 30), row("fc", 5)]
    by_depth = group_per_layer(rows, 1)
    assert [(g["name"], g["type"], g["macs"], g["params"], g["output_shape"]) for g in by_depth] == [
        ("stem", "Conv2D", 10, 1, (10,)), ("stage1", "2 layers", 50, 2, (30,)), ("fc", "Conv2D", 5, 1, (5,))]
    assert by_depth[1]["uncounted_ops"] == {"Relu": 1} and by_depth[1]["input_shape"] == (8,)
    by_regex = group_per_layer(rows, pattern=re.compile(r"^(stage\d)"))
    assert [(g["name"], g["macs"]) for g in by_regex] == [("(other)", 15), ("stage1", 50)]
    assert sum(g["flops_tf"] for g in by_regex) == sum(r["flops_tf"] for r in rows)
    assert rows[1]["macs"] == 20  # the rows themselves are left as they were


def test_resnet50_per_layer_depth_one_is_its_stages(capsys):
    assert main(["profile", "resnet50", "--input-size", "64", "--per-layer", "--depth", "1", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)["models"][0]
    rows = record["per_layer"]
    assert [r["name"] for r in rows if r["macs"]] == ["conv1", "conv2", "conv3", "conv4", "conv5", "head"]
    assert len(rows) <= 10
    for column, total in (("macs", "macs"), ("params", "params"), ("flops_tf", "flops_tf")):
        assert sum(r[column] for r in rows) == record[total], column
    assert sum(r["macs_pct"] for r in rows) == pytest.approx(100, abs=0.05)


def test_sizes_are_torchinfos_estimate_by_hand():
    """Input 8x8x3, conv 6x6x4, BN, global pool, dense 2 (float32): torchinfo counts the input, the
    parameters (no BN moving statistics) and twice the outputs of the layers with weights."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(keras.layers.GlobalAveragePooling2D()(x)))
    record = profile_model(model, (8, 8, 3))
    params = 3 * 3 * 3 * 4 + 4 + 2 * 4 + 4 * 2 + 2
    assert record["params"] == params
    assert record["input_bytes"] == 8 * 8 * 3 * 4
    assert record["params_bytes"] == params * 4
    assert record["forward_backward_bytes"] == 2 * (6 * 6 * 4 + 6 * 6 * 4 + 2) * 4
    assert record["estimated_total_bytes"] == record["input_bytes"] + record["params_bytes"] + \
        record["forward_backward_bytes"]
