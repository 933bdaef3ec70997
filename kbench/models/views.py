"""Views of a Keras model that every layer above needs in one kind: Functional, with static inputs."""

from __future__ import annotations


def is_functional(model) -> bool:
    """A Functional model (its layer graph is visible: ``_nodes_by_depth``); Sequential and
    subclassed models are not."""
    import keras

    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def functional_view(model, input_shape):
    """``model`` as a Functional model at ``input_shape``: a Functional model is itself
    (re-called on a static input if its input has open dimensions); a Sequential one is rebuilt
    from its layers (the same objects, weights shared); a subclassed one is called as a single
    layer. Timing and profiling then see one kind of model, with ``inputs`` and ``outputs``."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name=f"{model.name}_input")
    if is_functional(model):
        if all(d is not None for d in model.inputs[0].shape[1:]):
            return model
        # Open dimensions (None, None, 3): the same layers re-called on a static input, so that
        # the layer walk sees every shape.
        return keras.models.clone_model(model, input_tensors=inputs, clone_function=lambda layer: layer)
    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    return keras.Model(inputs, model(inputs), name=model.name)
