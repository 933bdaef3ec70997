"""Pooling that Keras lacks: PyTorch/Caffe ``ceil_mode=True`` max pooling at any static size."""

from __future__ import annotations

import math

from keras import layers

from architectures.errors import InputShapeError


def ceil_max_pool(x, pool_size: int = 3, strides: int = 2, *, name: str, partial_windows: bool = False):
    """MaxPooling2D whose output size is PyTorch's ``ceil_mode=True`` size for this input.

    Keras has no ceil mode; for each pool we pick "valid" or "same" padding from the static input
    size so that the output size is ceil((n - k) / s) + 1 (with TF's "same", the padded positions
    are at the end and ignored by the max, which is exactly ceil mode), or zero-pad the end first
    when height and width need different choices.

    ``partial_windows=False`` refuses a map smaller than the window; ``True`` follows PyTorch and
    Caffe there too: a 2x2 map under a 3x3/2 pool gives one output, the max of what the window covers.
    """
    outputs = []
    for n in x.shape[1:3]:
        size = math.ceil((n - pool_size) / strides) + 1
        if n < pool_size and not (partial_windows and size >= 1):
            raise InputShapeError(f"{name}: a {pool_size}x{pool_size} max pool needs a map of at least "
                                  f"{pool_size if not partial_windows else pool_size - strides + 1} px, got {n}")
        outputs.append(size)
    valid = [(n - pool_size) // strides + 1 for n in x.shape[1:3]]
    same = [math.ceil(n / strides) for n in x.shape[1:3]]
    if valid == outputs:
        padding = "valid"
    elif same == outputs:
        padding = "same"
    else:  # mixed parities along h and w: pad the short side(s) at the end, then "valid"
        pads = [(o - 1) * strides + pool_size - n for o, n in zip(outputs, x.shape[1:3])]
        # Post-ReLU maps are >= 0 and every window keeps at least one real value: zero padding
        # gives the same maxima as ceil mode.
        x = layers.ZeroPadding2D(((0, pads[0]), (0, pads[1])), name=f"{name}_pad")(x)
        padding = "valid"
    return layers.MaxPooling2D(pool_size, strides=strides, padding=padding, name=name)(x)
