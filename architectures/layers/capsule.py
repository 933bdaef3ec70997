"""Capsule layers (Sabour, Frosst & Hinton, 2017, "Dynamic Routing Between Capsules").

* :class:`Squash` - the capsule non-linearity ``v = |s|^2 / (1 + |s|^2) * s / |s|`` (Eq. 1).
* :class:`CapsuleRouting` - a fully connected capsule layer with routing-by-agreement
  (Procedure 1): prediction vectors ``u_hat_{j|i} = W_ij u_i``, then ``routings`` iterations of
  ``c_i = softmax_j(b_i)``, ``s_j = sum_i c_ij u_hat_{j|i}``, ``v_j = squash(s_j)``,
  ``b_ij += u_hat_{j|i} . v_j``.
* :class:`CapsuleLength` - capsule lengths (class scores in [0, 1)).
* :class:`CapsuleMask` - keeps one capsule (the longest, or the one of a given one-hot label)
  and flattens, as the input of the reconstruction decoder.

Every product is a ``keras.ops.matmul`` (a BatchMatMul on TensorFlow), never an einsum, so the
TF profiler and kbench's analytic counter (``kbench/layer_rules/capsule.py``) count the same
multiply-accumulates. Backend-agnostic: ``keras.ops`` only.
"""

from __future__ import annotations

import keras
from keras import ops

_EPSILON = 1e-7


def squash(s, axis=-1):
    squared_norm = ops.sum(ops.square(s), axis=axis, keepdims=True)
    scale = squared_norm / (1.0 + squared_norm) / ops.sqrt(squared_norm + _EPSILON)
    return scale * s


@keras.saving.register_keras_serializable(package="architectures")
class Squash(keras.layers.Layer):
    """Squash capsule vectors along ``axis`` (their length goes to [0, 1), direction kept). No weights."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return squash(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="architectures")
class CapsuleRouting(keras.layers.Layer):
    """Fully connected capsules with dynamic routing: ``(B, N, d_in) -> (B, num_capsules, capsule_dim)``.

    One transformation matrix ``W_ij`` (``capsule_dim x d_in``) per input/output capsule pair,
    no bias (as in the paper): ``N * num_capsules * capsule_dim * d_in`` weights. The weight is
    stored as ``(N, d_in, num_capsules * capsule_dim)`` so the predictions are one batched matmul.
    The routing logits start at zero for every example (they are not weights).
    """

    def __init__(self, num_capsules: int, capsule_dim: int, routings: int = 3, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if routings < 1:
            raise ValueError(f"routings must be >= 1, got {routings}")
        self.num_capsules, self.capsule_dim, self.routings = int(num_capsules), int(capsule_dim), int(routings)
        # None: Glorot-uniform with the fans of one W_ij (d_in, capsule_dim); Keras' own fan rule
        # would treat the N stacked matrices as a receptive field and shrink them sqrt(N)-fold.
        self.kernel_initializer = None if kernel_initializer is None else keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        _, num_inputs, input_dim = input_shape
        self.num_inputs, self.input_dim = int(num_inputs), int(input_dim)
        initializer = self.kernel_initializer
        if initializer is None:
            limit = (6.0 / (self.input_dim + self.capsule_dim)) ** 0.5
            initializer = keras.initializers.RandomUniform(-limit, limit)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_inputs, self.input_dim, self.num_capsules * self.capsule_dim),
            initializer=initializer,
        )

    def predictions(self, inputs):
        """``u_hat``: ``(B, num_capsules, N, capsule_dim)``."""
        u = ops.transpose(inputs, (1, 0, 2))                      # (N, B, d_in)
        u_hat = ops.matmul(u, self.kernel)                         # (N, B, J * D)
        u_hat = ops.reshape(u_hat, (self.num_inputs, -1, self.num_capsules, self.capsule_dim))
        return ops.transpose(u_hat, (1, 2, 0, 3))                  # (B, J, N, D)

    def call(self, inputs):
        u_hat = self.predictions(inputs)
        logits = ops.zeros_like(u_hat[..., 0])                     # b_ij: (B, J, N)
        outputs = None
        for r in range(self.routings):
            coupling = ops.softmax(logits, axis=1)                 # c_ij, softmax over the J parents
            s = ops.matmul(ops.expand_dims(coupling, 2), u_hat)    # (B, J, 1, D) = sum_i c_ij u_hat_j|i
            outputs = squash(ops.squeeze(s, 2))                    # v_j: (B, J, D)
            if r < self.routings - 1:
                agreement = ops.matmul(u_hat, ops.expand_dims(outputs, -1))  # (B, J, N, 1)
                logits = logits + ops.squeeze(agreement, -1)
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_capsules, self.capsule_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "num_capsules": self.num_capsules,
            "capsule_dim": self.capsule_dim,
            "routings": self.routings,
            "kernel_initializer": None if self.kernel_initializer is None
            else keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="architectures")
class CapsuleLength(keras.layers.Layer):
    """Euclidean length of each capsule: ``(B, J, D) -> (B, J)``. No weights."""

    def call(self, inputs):
        return ops.sqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1), _EPSILON))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])


@keras.saving.register_keras_serializable(package="architectures")
class CapsuleMask(keras.layers.Layer):
    """Zero every capsule but one and flatten: ``(B, J, D) -> (B, J * D)``.

    Called on the capsules alone it keeps the longest one (inference); called on
    ``[capsules, one_hot_labels]`` it keeps the labelled one (training, as in the paper).
    """

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            capsules, mask = inputs
        else:
            capsules = inputs
            lengths = ops.sum(ops.square(capsules), axis=-1)
            mask = ops.one_hot(ops.argmax(lengths, axis=-1), capsules.shape[1], dtype=capsules.dtype)
        masked = capsules * ops.expand_dims(ops.cast(mask, capsules.dtype), -1)
        return ops.reshape(masked, (-1, capsules.shape[1] * capsules.shape[2]))

    def compute_output_shape(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)) \
            else input_shape
        return (shape[0], shape[1] * shape[2])
