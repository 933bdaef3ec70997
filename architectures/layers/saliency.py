"""Layers used by the saliency-detection networks (``architectures/saliency.py``)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="architectures")
class ZeroState(keras.layers.Layer):
    """The initial state of a recurrent feedback path: zeros at ``1/stride`` of the input size.

    Given an ``(B, H, W, C)`` tensor it returns zeros of shape ``(B, ceil(H/stride), ceil(W/stride),
    channels)``, the shape of the feature that step ``t - 1`` feeds back to step ``t``. It has no
    weights and does no arithmetic (PAGRN's first recurrent step).
    """

    def __init__(self, channels: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.stride = int(stride)

    def _spatial(self, size):
        return None if size is None else -(-int(size) // self.stride)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._spatial(input_shape[1]), self._spatial(input_shape[2]), self.channels)

    def call(self, x):
        batch = ops.shape(x)[0]
        h, w = self._spatial(x.shape[1]), self._spatial(x.shape[2])
        return ops.zeros((batch, h, w, self.channels), dtype=x.dtype)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "stride": self.stride}


@keras.saving.register_keras_serializable(package="architectures")
class ChannelSlice(keras.layers.Layer):
    """Channels ``[start, stop)`` of an NHWC tensor (MDF: one of the stacked patches)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = int(stop)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def call(self, x):
        return x[..., self.start:self.stop]

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}
