"""Micro-benchmark: the paper's reshape-transpose-reshape shuffle vs a precomputed-permutation gather.

Run with ``python -m pytest benchmarks/ --benchmark-only`` (compare the two rows of a group).
Both run as compiled ``tf.function``s on the TensorFlow backend, on ShuffleNet-sized maps.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from architectures.layers import ChannelShuffle  # noqa: E402

# (batch, h, w, channels, groups): ShuffleNet V1 g=3 stage 2 and g=8 stage 3, V2 1x stage 2.
SHAPES = {
    "v1_g3_28x28x240": (8, 28, 28, 240, 3),
    "v1_g8_14x14x768": (8, 14, 14, 768, 8),
    "v2_28x28x116": (8, 28, 28, 116, 2),
}


def _compiled(layer):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(layer, jit_compile=False)
    return layer


@pytest.mark.parametrize("method", ["reshape", "gather"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_channel_shuffle_speed(benchmark, shape_name, method):
    batch, h, w, c, g = SHAPES[shape_name]
    benchmark.group = f"channel_shuffle[{shape_name}]"
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(batch, h, w, c)).astype("float32"))
    fn = _compiled(ChannelShuffle(g, method=method))
    reference = keras.ops.convert_to_numpy(ChannelShuffle(g, method="reshape")(x))

    def run():
        return keras.ops.convert_to_numpy(fn(x))

    out = benchmark(run)
    np.testing.assert_array_equal(out, reference)
