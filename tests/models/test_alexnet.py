"""AlexNet (paper layout, torchvision's one-weird-trick layout) and ZFNet.

Their published parameter and MAC figures are checked by tests/models/test_reported.py; here:
the map sizes the papers state, the adaptive pool, and one full-size profiler count.
"""

import keras
import numpy as np

import kbench
from kbench.counting.profiling import profile_model


def _spatial(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape[1:3])


def test_alexnet_profiler_macs_at_227():
    """Full-size TF-profiler count (grouped convs resolved) equals the paper-layout recomputation."""
    record = profile_model(kbench.build("alexnet"), (227, 227, 3))
    assert record["macs"] == kbench.get_spec("alexnet").primary_reported.macs
    assert 1.0 <= record["flops_tf"] / (2 * record["macs"]) <= 1.06


def test_alexnet_and_zfnet_map_sizes():
    alexnet = kbench.build("alexnet")
    assert [_spatial(alexnet, n) for n in ("conv1_relu", "pool1", "pool2", "pool3")] == [(55, 55), (27, 27), (13, 13), (6, 6)]
    assert alexnet.get_layer("conv2_conv").groups == 2 and alexnet.get_layer("conv3_conv").groups == 1
    zfnet = kbench.build("zfnet")
    sizes = [_spatial(zfnet, n) for n in ("conv1_relu", "pool1", "conv2_relu", "pool2", "pool3")]
    assert sizes == [(110, 110), (55, 55), (26, 26), (13, 13), (6, 6)]


def test_alexnet_owt_adaptive_pool():
    model = kbench.build("alexnet_owt")
    assert _spatial(model, "pool3") == (6, 6) and _spatial(model, "avgpool") == (6, 6)
    # At the minimum size the last map is 1x1 and the adaptive pool replicates it (PyTorch semantics).
    small = kbench.build("alexnet_owt", input_shape=(63, 63))
    probe = keras.Model(small.input, [small.get_layer("pool3").output, small.get_layer("avgpool").output])
    before, after = (keras.ops.convert_to_numpy(t) for t in probe(np.random.default_rng(1).random((1, 63, 63, 3))))
    assert before.shape[1:3] == (1, 1)
    np.testing.assert_allclose(after, np.broadcast_to(before, after.shape), rtol=1e-6)
