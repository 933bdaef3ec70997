"""Memory sizes of one forward/backward pass per image, as torchinfo's ``summary`` estimates them
(torchinfo 1.8, ``torchinfo/model_statistics.py`` and ``layer_info.py``):

* ``input_bytes``: the input tensor;
* ``params_bytes``: the parameters (``count_params``' ``params``: BN moving statistics, buffers in
  PyTorch, left out) at their variables' dtype;
* ``forward_backward_bytes``: 2 x the outputs of every layer call that has weights (the forward
  output and its gradient), at the compute dtype;
* ``estimated_total_bytes``: their sum.

Bytes, per image (batch 1); tables show them in MB of 10^6 bytes, as torchinfo prints them. A
layer with weights is counted once per call, as a whole (a custom layer's own sublayers are not
counted apart, where torchinfo counts the leaf modules).
"""

from __future__ import annotations

from kbench.counting.layer_walk import batch_norm_statistics, prod

_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1, "uint8": 1, "int32": 4, "int64": 8}
SIZE_KEYS = ("input_bytes", "params_bytes", "forward_backward_bytes", "estimated_total_bytes")


def itemsize(dtype) -> int:
    name = getattr(dtype, "name", None) or str(dtype)
    if name not in _ITEMSIZE:
        raise ValueError(f"no size known for dtype {name!r}")
    return _ITEMSIZE[name]


def estimate_sizes(model, input_shape, calls) -> dict[str, int]:
    """torchinfo's sizes of ``model`` (see the module docstring); ``calls``: its ``layer_calls``."""
    compute = itemsize(model.dtype_policy.compute_dtype)
    variable = itemsize(model.dtype_policy.variable_dtype)
    input_bytes = prod(input_shape) * compute
    # BN moving statistics share the variable dtype: left out as torchinfo leaves out buffers.
    params_bytes = sum(prod(w.shape) * itemsize(w.dtype) for w in model.weights) \
        - batch_norm_statistics(model) * variable
    outputs = sum(sum(prod(shape) for shape in call.output_shapes) for call in _weighted_leaves(calls))
    forward_backward = 2 * outputs * compute
    return {"input_bytes": input_bytes, "params_bytes": params_bytes, "forward_backward_bytes": forward_backward,
            "estimated_total_bytes": input_bytes + params_bytes + forward_backward}


def _weighted_leaves(calls):
    """The calls of layers with weights, recorded (subclassed) models walked into."""
    for call in calls:
        if call.children:
            import keras

            if isinstance(call.layer, keras.Model):
                yield from _weighted_leaves(call.children)
                continue
        if call.layer.weights:
            yield call
