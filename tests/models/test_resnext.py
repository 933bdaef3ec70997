"""ResNeXt: the ResNet builder with grouped 3x3 convs (the figures: tests/models/test_reported.py)."""

import pytest

import kbench
from kbench.counting.layer_walk import count_params


def test_resnext_is_the_resnet_builder():
    from architectures.resnet import resnet

    spec = kbench.get_spec("resnext50_32x4d")
    assert spec.builder is resnet and spec.preset == {"depth": 50, "groups": 32, "width_per_group": 4}
    assert kbench.get_spec("resnext101_32x8d").preset == {"depth": 101, "groups": 32, "width_per_group": 8}


# Keras' total params (BN moving statistics included): not published, recomputed here. The
# counts do not depend on the input size (global pooling), so a small input is enough.
@pytest.mark.parametrize("name, total", [
    ("resnext50_32x4d", 25_097_128),
    pytest.param("resnext101_32x8d", 88_994_216, marks=pytest.mark.slow),
])
def test_total_params_with_bn_statistics(name, total):
    assert count_params(kbench.build(name, input_shape=(32, 32)))["params_keras_total"] == total
