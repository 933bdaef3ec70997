"""The paper's channel shuffle as a Keras layer (GitHub issue 5, part 1)."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from architectures.layers import ChannelShuffle, ChannelSplit, channel_shuffle, shuffle_permutation
from kbench.macs import count_macs

METHODS = ("reshape", "gather")


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("method", METHODS)
def test_slides_example_nine_channels_three_groups(method):
    x = np.arange(9, dtype="float32").reshape(1, 1, 1, 9)
    out = _np(ChannelShuffle(3, method=method)(x)).ravel()
    np.testing.assert_array_equal(out, [0, 3, 6, 1, 4, 7, 2, 5, 8])


def test_permutation_is_reshape_transpose_flatten():
    # The paper's recipe written with numpy: [g, n] -> transpose -> flatten.
    for channels, groups in ((9, 3), (12, 4), (240, 3), (384, 8), (48, 2)):
        expected = np.arange(channels).reshape(groups, channels // groups).T.ravel()
        np.testing.assert_array_equal(shuffle_permutation(channels, groups), expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("channels,groups", [(9, 3), (12, 3), (12, 4), (24, 8), (10, 2), (7, 7), (6, 1)])
def test_shuffle_g_then_c_over_g_is_identity(method, channels, groups):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, channels)).astype("float32")
    y = ChannelShuffle(groups, method=method)(x)
    z = ChannelShuffle(channels // groups, method=method)(y)
    np.testing.assert_array_equal(_np(z), x)
    if 1 < groups < channels:
        assert not np.array_equal(_np(y), x)


@pytest.mark.parametrize("shape", [(2, 12), (2, 5, 12), (2, 3, 5, 12), (1, 2, 3, 4, 12)])
def test_methods_agree_on_any_rank(shape):
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    a = ChannelShuffle(4, method="reshape")(x)
    b = ChannelShuffle(4, method="gather")(x)
    np.testing.assert_array_equal(_np(a), _np(b))
    assert tuple(a.shape) == shape


@pytest.mark.parametrize("method", METHODS)
def test_channels_not_divisible_by_groups_is_a_clear_error(method):
    x = np.zeros((1, 4, 4, 10), "float32")
    with pytest.raises(ValueError, match=r"10 channels are not divisible by groups=4"):
        ChannelShuffle(4, method=method)(x)
    with pytest.raises(ValueError, match="not divisible"):
        keras.Model(*(lambda i: (i, channel_shuffle(i, 3)))(keras.Input((4, 4, 10))))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown channel shuffle method"):
        ChannelShuffle(2, method="einsum")
    with pytest.raises(ValueError, match="groups >= 1"):
        ChannelShuffle(0)


def test_channel_split_halves():
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)
    a, b = ChannelSplit(2)(x)
    np.testing.assert_array_equal(_np(a).ravel(), [0, 1, 2, 3])
    np.testing.assert_array_equal(_np(b).ravel(), [4, 5, 6, 7])
    with pytest.raises(ValueError, match="not divisible"):
        ChannelSplit(2)(np.zeros((1, 7), "float32"))


def test_config_round_trip():
    layer = ChannelShuffle(3, method="gather", name="s")
    clone = ChannelShuffle.from_config(layer.get_config())
    assert (clone.groups, clone.method, clone.name) == (3, "gather", "s")
    split = ChannelSplit.from_config(ChannelSplit(4).get_config())
    assert split.num_splits == 4


@pytest.mark.parametrize("method", METHODS)
def test_saves_and_loads_in_a_keras_file(tmp_path, method):
    inputs = keras.Input((5, 5, 12))
    x = keras.layers.Conv2D(12, 1, groups=3, name="gconv")(inputs)
    x = ChannelShuffle(3, method=method, name="shuffle")(x)
    left, right = ChannelSplit(2, name="split")(x)
    model = keras.Model(inputs, keras.layers.Concatenate()([right, left]))
    data = np.random.default_rng(2).normal(size=(2, 5, 5, 12)).astype("float32")
    path = tmp_path / "shuffle.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("shuffle"), ChannelShuffle)
    assert loaded.get_layer("shuffle").method == method
    np.testing.assert_array_equal(_np(loaded(data)), _np(model(data)))


def test_no_macs_and_not_unknown():
    inputs = keras.Input((4, 4, 6))
    model = keras.Model(inputs, ChannelSplit(2)(ChannelShuffle(3)(inputs))[0])
    result = count_macs(model)
    assert result["macs"] == 0 and not result["unknown_layers"]


def test_backend_agnostic_numpy_backend():
    """The layer uses keras.ops only: it runs unchanged on another backend (numpy)."""
    code = textwrap.dedent("""
        import numpy as np, keras
        assert keras.backend.backend() == "numpy"
        from architectures.layers.shuffle import ChannelShuffle
        x = np.arange(9, dtype="float32").reshape(1, 1, 1, 9)
        for m in ("reshape", "gather"):
            out = keras.ops.convert_to_numpy(ChannelShuffle(3, method=m)(x)).ravel().astype(int).tolist()
            assert out == [0, 3, 6, 1, 4, 7, 2, 5, 8], out
        print("ok")
    """)
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
