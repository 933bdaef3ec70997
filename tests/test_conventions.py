"""Counting conventions (kbench.counting.conventions) on tiny hand-computed models, parts, activations, and
the mmpretrain ResNet-50 figure (4,109,364,224 under mmengine, backbone only)."""

from __future__ import annotations

import keras
import pytest

from kbench.counting import conventions
from kbench.counting.conventions import CONVENTIONS, PARTS, count, count_activations


def _chain():
    """8x8x3 -> conv 3x3 (4, bias, same) -> BN -> ReLU -> 2x2 max-pool -> upsample x2 (bilinear)
    -> add with the BN output -> global average pool -> dense 10 (bias)."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    bn = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(bn)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up")(x)
    x = keras.layers.Add(name="add")([x, bn])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="fc")(x))


CONV = 8 * 8 * 4 * 3 * 3 * 3   # 6912 MACs
FC = 4 * 10                    # 40 MACs
MAP = 8 * 8 * 4                # 256 elements of every 8x8x4 map
POOLED = 4 * 4 * 4             # 64 elements after the max-pool


@pytest.fixture(scope="module")
def chain():
    return _chain()


def test_every_convention_is_listed_with_a_summary():
    assert set(CONVENTIONS) == {"macs", "tf", "mmengine", "notes", "ptflops"}
    for name, convention in CONVENTIONS.items():
        assert convention.name == name and convention.summary and convention.unit in {"macs", "flops"}


def test_macs_counts_conv_and_dense_only(chain):
    counted = count("macs", chain, (8, 8, 3))
    assert counted.per_layer == {"conv": CONV, "fc": FC}
    assert counted.total == CONV + FC


def test_mmengine_adds_bn_upsampling_and_adaptive_pooling(chain):
    counted = count("mmengine", chain, (8, 8, 3))
    # BN 2/element, bilinear 4 per output, global average pool 1 per input; ReLU, max-pool, add 0.
    assert counted.per_layer == {"conv": CONV, "bn": 2 * MAP, "up": 4 * MAP, "gap": MAP, "fc": FC}
    assert counted.total == CONV + FC + 7 * MAP


def test_mmengine_nearest_upsampling_is_one_per_output():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.UpSampling2D(3, name="up")(inputs))
    assert count("mmengine", model).per_layer == {"up": 12 * 12 * 2}


@pytest.mark.parametrize("side, pooled", [(56, False), (14, True)])
def test_mmengine_charges_fcanets_pooling_to_its_dct_grid_only_when_sizes_differ(side, pooled):
    """FcaNet's reference adaptive-pools a map that is not its DCT grid (256 channels: 56x56)
    before the DCT weighting; mmengine counts that pooling at 1 per input element."""
    from architectures.layers.attention import MultiSpectralChannelAttention

    inputs = keras.Input((side, side, 256))
    model = keras.Model(inputs, MultiSpectralChannelAttention(reduction=16)(inputs))
    fcs = 2 * 256 * 16  # C -> C/16 -> C, no bias
    assert count("macs", model).total == fcs
    assert count("mmengine", model).total == fcs + (side * side * 256 if pooled else 0)


def test_ptflops_adds_bias_relu_pooling_inputs(chain):
    counted = count("ptflops", chain, (8, 8, 3))
    assert counted.per_layer == {"conv": CONV + MAP, "bn": 2 * MAP, "relu": MAP, "pool": MAP, "up": MAP,
                                 "gap": MAP, "fc": FC + 10}
    assert "add" not in counted.per_layer


def test_notes_adds_pooling_elementwise_and_bn(chain):
    counted = count("notes", chain, (8, 8, 3))
    # BN 2*(b+1) per element at b=1; 2x2 max-pool 4 per output; bilinear 8 per output; the add 1 per
    # output; the global pool 1 per input.
    assert counted.per_layer == {"conv": CONV, "bn": 4 * MAP, "pool": 4 * POOLED, "up": 8 * MAP, "add": MAP,
                                 "gap": MAP, "fc": FC}


def test_tf_is_the_profilers_float_ops(chain):
    from kbench.counting.profiling import profile_model

    counted = count("tf", chain, (8, 8, 3))
    assert counted.total == profile_model(chain, (8, 8, 3))["flops_tf"]
    assert counted.per_layer["conv"] >= 2 * CONV


def test_parts_leave_out_the_head(chain):
    # features: no dense head; backbone: no global pooling either.
    assert count("mmengine", chain, None, "features").total == CONV + 7 * MAP
    assert count("mmengine", chain, None, "backbone").total == CONV + 6 * MAP
    assert count("macs", chain, None, "backbone").per_layer == {"conv": CONV}
    assert set(PARTS) == {"whole", "features", "backbone"}


def test_activations_are_conv_and_dense_outputs(chain):
    assert count_activations(chain).per_layer == {"conv": MAP, "fc": 10}
    assert count_activations(chain, "backbone").total == MAP


def test_separable_conv_activations_are_both_outputs():
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, name="sep")(inputs))
    assert count_activations(model).total == 4 * 4 * 3 * 2 + 4 * 4 * 5


def test_nested_model_head_is_left_out_whole():
    head_in = keras.Input((4,))
    head = keras.Model(head_in, keras.layers.Dense(3, name="fc")(head_in), name="head")
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D(name="gap")(x)))
    assert count("macs", model).per_layer == {"conv": 4 * 4 * 4 * 2, "head/fc": 12}
    assert count("macs", model, None, "features").per_layer == {"conv": 4 * 4 * 4 * 2}


def test_resnet50_mmengine_backbone_is_mmpretrains_figure():
    """mmpretrain resnet50_8xb32_in1k: Flops 4.109G (extract_feat, no head), Activation 11.114M."""
    from kbench.models import registry

    model = registry.build("resnet50", (224, 224, 3))
    assert count("mmengine", model, None, "backbone").total == 4_109_364_224
    assert count("mmengine", model, None, "features").total == 4_109_364_224 + 7 * 7 * 2048
    assert count_activations(model, "backbone").total == 11_113_984
    assert count_activations(model).total == 11_113_984 + 1000  # the fc's outputs: "11.115M"


def test_profile_adds_activations_and_the_convention(tmp_path, capsys):
    import json

    from kbench.cli import main

    assert main(["profile", "lenet5", "--convention", "mmengine", "--part", "backbone", "--per-layer",
                 "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["models"]
    # LeNet-5 at 32x32: conv outputs 28*28*6 + 10*10*16 + 120, dense outputs 84 + 10.
    assert record["activations"] == 4704 + 1600 + 120 + 84 + 10
    assert (record["convention"], record["part"]) == ("mmengine", "backbone")
    assert record["convention_flops"] == 117_600 + 240_000 + 48_000  # the convs; no dense head, no BN
    rows = {row["name"]: row for row in record["per_layer"]}
    assert rows["c1_conv"]["activations"] == 4704 and rows["f6"]["convention_flops"] == 0
    assert sum(row["convention_flops"] for row in record["per_layer"]) == record["convention_flops"]
    assert sum(row["activations"] for row in record["per_layer"]) == record["activations"]


def test_conventions_command_lists_every_convention_one_line_each(capsys):
    from kbench.cli import main

    assert main(["conventions", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "convention,unit,counts"
    assert [line.split(",")[0] for line in lines[1:]] == list(CONVENTIONS)
