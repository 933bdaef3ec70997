"""Micro-benchmarks of building blocks: conv-bn-relu and a ResNet bottleneck, forward and train.

One pytest-benchmark round = one compiled, synchronised step at batch 8 (see conftest.py).
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_conv_bn_relu(block_bench, bench_step, mode):
    from architectures.layers import conv_bn_act

    run, info = block_bench(lambda x: conv_bn_act(x, 64, 3, name="cbr"), (32, 32, 64),
                            name="conv_bn_relu_3x3_64", mode=mode)
    bench_step(run, info)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_resnet_bottleneck(block_bench, bench_step, mode):
    from architectures.resnet import bottleneck_block

    run, info = block_bench(lambda x: bottleneck_block(x, 64, 1, stage=0, name="b1"), (16, 16, 256),
                            name="resnet_bottleneck_64_256", mode=mode)
    bench_step(run, info)
