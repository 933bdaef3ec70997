"""ShuffleNet V2's G3 fragment blocks: equal-FLOPs widths by hand, structure, options."""

import keras
import pytest

import kbench
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs

NAMES = ["g3_fragment_1", "g3_fragment_2_series", "g3_fragment_4_series", "g3_fragment_2_parallel",
         "g3_fragment_4_parallel"]


def _weights_per_block(name, c):
    """1x1 weights of one block (= its MACs per position), from the block diagrams by hand."""
    inner = {64: 23, 128: 47, 256: 94, 512: 187}[c]  # 4 in series: the w nearest to 2cw + 2w^2 = c^2
    return {"g3_fragment_1": c * c,
            "g3_fragment_2_series": c * (c // 2) + (c // 2) * c,
            "g3_fragment_4_series": c * inner + 2 * inner * inner + inner * c,
            "g3_fragment_2_parallel": 2 * c * (c // 2),
            "g3_fragment_4_parallel": 4 * c * (c // 4)}[name]


def test_the_registered_blocks_are_the_seed_table_rows():
    assert kbench.list_models("fragments") == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [64, 128, 256, 512])
def test_ten_blocks_have_the_hand_counted_weights_and_macs(name, c):
    model = kbench.build(name, input_shape=(56, 56, c), include_top=False)
    weights = 10 * _weights_per_block(name, c)
    assert count_params(model)["params_trainable"] == weights
    assert count_macs(model)["macs"] == 56 * 56 * weights
    assert model.output.shape[1:] == (56, 56, c)  # blocks map c channels to c: they stack


@pytest.mark.parametrize("c", [64, 128, 256, 512])
def test_fragmented_blocks_keep_the_one_fragment_flops(c):
    one = _weights_per_block("g3_fragment_1", c)
    for name in NAMES:
        assert _weights_per_block(name, c) == pytest.approx(one, rel=0.025), name
        if name != "g3_fragment_4_series":
            assert _weights_per_block(name, c) == one, name


@pytest.mark.parametrize("name, convs, concats", [
    ("g3_fragment_1", 1, 0), ("g3_fragment_2_series", 2, 0), ("g3_fragment_4_series", 4, 0),
    ("g3_fragment_2_parallel", 2, 1), ("g3_fragment_4_parallel", 4, 1)])
def test_block_structure(name, convs, concats):
    model = kbench.build(name, input_shape=(8, 8, 64), include_top=False)
    block = [layer for layer in model.layers if layer.name.startswith("block1_")]
    conv_layers = [layer for layer in block if isinstance(layer, keras.layers.Conv2D)]
    assert len(conv_layers) == convs
    assert all(layer.kernel_size == (1, 1) and not layer.use_bias for layer in conv_layers)
    assert sum(isinstance(layer, keras.layers.Concatenate) for layer in block) == concats
    if concats:  # parallel: every branch reads the block input
        assert all(layer.input is model.input for layer in conv_layers)


def test_reported_figure_is_the_block_stack_without_the_head():
    spec = kbench.get_spec("g3_fragment_2_series")
    figure = spec.primary_reported
    assert dict(figure.variant) == {"include_top": False} and figure.input_size == (56, 56)
    assert spec.default_input_shape == (56, 56, 128)
    assert figure.macs == 513_802_240 == 10 * 56 * 56 * 128 * 128


@pytest.mark.parametrize("options, message", [
    (dict(fragments=3), "fragments=3 is not allowed for g3_fragment_1: allowed fragments 1, 2, 4"),
    (dict(arrangement="grid"), "arrangement='grid' is not allowed|arrangement=grid is not allowed"),
    (dict(blocks=0), "blocks=0 is not allowed"),
])
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(kbench.UsageError, match=message):
        kbench.build("g3_fragment_1", input_shape=(8, 8), **options)


def test_parallel_fragments_need_divisible_channels():
    with pytest.raises(kbench.UsageError, match="4 parallel fragments need input channels divisible by 4, got 66"):
        kbench.build("g3_fragment_4_parallel", input_shape=(8, 8, 66))
