"""Channel shuffle (ShuffleNet, Zhang et al. 2017), channel split (ShuffleNet V2) and channel gather
(CondenseNet's index layer).

The paper's operation on a channels-last tensor with ``C = g * n`` channels: view the channel
axis as a ``[g, n]`` matrix (row ``i`` = the ``n`` outputs of group ``i``), transpose it to
``[n, g]`` and flatten it back. Output channel ``a * g + b`` is input channel ``b * n + a``,
so with 9 channels and 3 groups ``0..8`` becomes ``0 3 6 1 4 7 2 5 8``. Shuffling with ``g``
groups and then with ``C / g`` groups is the identity (the transpose of the transpose).

Two implementations of the same permutation, selected by ``method``:

* ``"reshape"`` (default): reshape -> transpose -> reshape, as the paper and the slides write it;
* ``"gather"``: one gather along the channel axis with the permutation precomputed at build
  time.

Both are pure data movement (Reshape/Transpose/GatherV2): no FLOPs, no MACs, no weights.
``ChannelGather`` picks a fixed list of channels (repeats allowed): CondenseNet's ``index_select``
before each condensed 1x1 group convolution and before its classifier, also data movement only.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

SHUFFLE_METHODS = ("reshape", "gather")


def shuffle_permutation(channels: int, groups: int) -> np.ndarray:
    """Index array ``perm`` with ``output[..., i] = input[..., perm[i]]`` (the paper's shuffle)."""
    channels, groups = int(channels), int(groups)
    if groups < 1:
        raise ValueError(f"channel shuffle needs groups >= 1, got {groups}")
    if channels % groups:
        raise ValueError(
            f"channel shuffle: {channels} channels are not divisible by groups={groups} "
            f"(the channel axis is viewed as a [groups, channels/groups] matrix)")
    return np.arange(channels, dtype="int32").reshape(groups, channels // groups).T.reshape(-1)


@keras.saving.register_keras_serializable(package="architectures")
class ChannelShuffle(keras.layers.Layer):
    """Shuffle the last (channel) axis across ``groups`` groups; see the module docstring.

    Works on any rank >= 2, channels last, any backend. ``method`` is ``"reshape"`` or
    ``"gather"``; they give identical outputs.
    """

    def __init__(self, groups: int, method: str = "reshape", **kwargs):
        super().__init__(**kwargs)
        if method not in SHUFFLE_METHODS:
            raise ValueError(f"unknown channel shuffle method {method!r}; allowed: {', '.join(SHUFFLE_METHODS)}")
        if int(groups) < 1:
            raise ValueError(f"channel shuffle needs groups >= 1, got {groups}")
        self.groups = int(groups)
        self.method = method
        self._perm = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("channel shuffle needs a known number of channels (last axis)")
        # Validates divisibility with a clear message, and caches the gather indices.
        self._perm = shuffle_permutation(channels, self.groups)
        self.built = True

    def call(self, inputs):
        channels = inputs.shape[-1]
        if self.groups == 1:
            return inputs
        if self.method == "gather":
            return ops.take(inputs, self._perm, axis=-1)
        shape = ops.shape(inputs)
        leading = tuple(shape[:-1])
        x = ops.reshape(inputs, (*leading, self.groups, channels // self.groups))
        rank = len(inputs.shape)
        axes = (*range(rank - 1), rank, rank - 1)
        x = ops.transpose(x, axes)
        return ops.reshape(x, (*leading, channels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "method": self.method}


@keras.saving.register_keras_serializable(package="architectures")
class ChannelSplit(keras.layers.Layer):
    """Split the channel axis into ``num_splits`` equal parts (ShuffleNet V2's channel split).

    Returns a list of ``num_splits`` tensors. Data movement only.
    """

    def __init__(self, num_splits: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(num_splits) < 1:
            raise ValueError(f"channel split needs num_splits >= 1, got {num_splits}")
        self.num_splits = int(num_splits)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_splits:
            raise ValueError(f"channel split: {channels} channels are not divisible into {self.num_splits} parts")
        self.built = True

    def call(self, inputs):
        return ops.split(inputs, self.num_splits, axis=-1)

    def compute_output_shape(self, input_shape):
        part = (*input_shape[:-1], input_shape[-1] // self.num_splits)
        return [tuple(part) for _ in range(self.num_splits)]

    def get_config(self):
        return {**super().get_config(), "num_splits": self.num_splits}


@keras.saving.register_keras_serializable(package="architectures")
class ChannelGather(keras.layers.Layer):
    """``output[..., i] = input[..., index[i]]``: a fixed gather along the channel (last) axis.

    CondenseNet's index layer (``torch.index_select(x, 1, index)`` in the authors' converted
    network): after training, each group of a learned group convolution keeps its own subset of
    the input channels, and the condensed network gathers them, in group order, in front of a
    standard group convolution. ``index`` is data, part of the layer's config (a trained model's
    index travels with its ``.keras`` file); it is not a weight, so it is no parameter either.
    Channels may repeat (two groups may keep the same input channel) or be left out.
    """

    def __init__(self, index, **kwargs):
        super().__init__(**kwargs)
        index = [int(i) for i in np.asarray(index).ravel()]
        if not index or min(index) < 0:
            raise ValueError(f"channel gather needs a non-empty list of channel indices >= 0, got {index[:8]}")
        self.index = index
        self._index = np.asarray(index, dtype="int32")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or max(self.index) >= channels:
            raise ValueError(f"channel gather: index {max(self.index)} is out of range for {channels} channels")
        self.built = True

    def call(self, inputs):
        return ops.take(inputs, self._index, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.index))

    def get_config(self):
        return {**super().get_config(), "index": list(self.index)}


def channel_shuffle(x, groups: int, *, method: str = "reshape", name: str | None = None):
    """Functional helper: apply a ``ChannelShuffle`` layer to ``x``."""
    return ChannelShuffle(groups, method=method, name=name)(x)
