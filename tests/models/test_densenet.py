"""DenseNet-BC: keras.applications as an independent reference for the registered counts."""

import keras
import pytest

import kbench
from kbench.counting.layer_walk import count_params


def _figure(name, *, total):
    return next(r.params for r in kbench.get_spec(name).reported
                if r.params is not None and r.params_total == total and r.exactness == "exact")


@pytest.mark.parametrize("app, name", [
    ("DenseNet121", "densenet121"),
    pytest.param("DenseNet169", "densenet169", marks=pytest.mark.slow),
    pytest.param("DenseNet201", "densenet201", marks=pytest.mark.slow),
])
def test_keras_applications_have_the_registered_counts(app, name):
    """Our models are pinned to their Reported figures; keras.applications must give the same ones."""
    counts = count_params(getattr(keras.applications, app)(weights=None))
    assert counts["params_keras_total"] == _figure(name, total=True)
    assert counts["params_trainable"] == kbench.get_spec(name).primary_reported.params


@pytest.mark.slow
def test_densenet264_total_params():
    """No keras.applications DenseNet-264: Keras' total recomputed here (the input size does not matter)."""
    assert count_params(kbench.build("densenet264", input_shape=(32, 32)))["params_keras_total"] == 33_736_232
