"""SqueezeNet 1.0 / 1.1 and the bypass variants (figures: tests/models/test_reported.py)."""

import math

import pytest

import kbench
from architectures.squeezenet import squeezenet


def test_profiler_agrees_at_224_on_squeezenet():
    record = kbench.profile("squeezenet1_0", input_shape=(224, 224, 3))
    reference = kbench.get_spec("squeezenet1_0").primary_reported
    assert (record["macs"], record["params_trainable"]) == (reference.macs, reference.params)


def test_complex_bypass_conflict_with_the_paper_is_recorded():
    """The exact count misses the paper's 7.7 MB (float32) by >10%: the notes must say why."""
    spec = kbench.get_spec("squeezenet1_0_complex_bypass")
    paper = next(r.params for r in spec.reported if r.exactness == "derived")
    assert paper == 7.7e6 / 4
    assert abs(spec.primary_reported.params / paper - 1) > 0.1
    assert any("Conflict" in note for note in spec.notes)


def test_squeezenet_map_sizes_follow_ceil_mode_pools():
    for version, sizes in (("1_0", [109, 54, 27, 13]), ("1_1", [111, 55, 27, 13])):
        model = squeezenet(version=version)
        got = [model.get_layer("conv1_conv").output.shape[1]]
        got += [layer.output.shape[1] for layer in model.layers if layer.name.startswith("pool")]
        assert got == sizes
    # Non-square input with mixed parities: ceil((n - 3) / 2) + 1 along each axis.
    model = squeezenet(input_shape=(64, 71, 3), version="1_1")
    h, w = 31, 35  # conv 3x3/2 valid
    for layer in (model.get_layer(n) for n in ("pool1", "pool3", "pool5")):
        h, w = math.ceil((h - 3) / 2) + 1, math.ceil((w - 3) / 2) + 1
        assert tuple(layer.output.shape[1:3]) == (h, w)


def test_squeezenet_fire_metaparameters():
    model = squeezenet(input_shape=(64, 64, 3), squeeze_ratio=0.75, pct_3x3=0.25)
    # fire2: e = 128 -> s1 = 96, e3 = 32, e1 = 96
    assert model.get_layer("fire2_squeeze_conv").filters == 96
    assert model.get_layer("fire2_expand3x3_conv").filters == 32
    assert model.get_layer("fire2_expand1x1_conv").filters == 96
    assert model.get_layer("fire9_squeeze_conv").filters == 384  # e = 512


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_squeezenet_builds_at_its_minimum_input(name):
    spec = kbench.get_spec(name)
    model = kbench.build(name, input_shape=spec.min_input_size, num_classes=10)
    assert model.output.shape[-1] == 10
    # The registered minimum is tight: one pixel less and the builder itself refuses (a pool has
    # nothing left to pool).
    below = (spec.min_input_size[0] - 1, spec.min_input_size[1] - 1, 3)
    with pytest.raises(ValueError, match="max pool needs a map"):
        spec.builder(input_shape=below, **spec.preset)
