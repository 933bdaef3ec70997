"""Local response normalisation (AlexNet 2012, VGG A-LRN), which Keras 3 does not ship."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="architectures")
class LocalResponseNormalization(keras.layers.Layer):
    """Across-channel LRN: ``b_c = a_c / (k + alpha * sum_{c' in window(c)} a_c'^2) ** beta``.

    ``alpha`` multiplies the plain sum, as in the AlexNet paper's equation (k=2, n=5,
    alpha=1e-4, beta=0.75). Caffe and PyTorch divide alpha by ``size``; pass
    ``alpha=1e-4 / 5`` to reproduce them. Channels-last. No weights.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if size < 1:
            raise ValueError(f"LRN size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)

    def call(self, inputs):
        squared = ops.square(inputs)
        before = self.size // 2
        after = self.size - 1 - before
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[before + 1, after]]
        # Window sums over channels from a cumulative sum: backend-agnostic and O(C).
        cumulative = ops.cumsum(ops.pad(squared, pad), axis=-1)
        window_sum = cumulative[..., self.size:] - cumulative[..., : -self.size]
        return inputs / ops.power(self.k + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
