"""Xception: keras.applications as an independent reference for the registered counts."""

import keras

import kbench
from kbench.counting.layer_walk import count_params


def test_keras_applications_has_the_registered_counts():
    spec = kbench.get_spec("xception")
    counts = count_params(keras.applications.Xception(weights=None))
    total = next(r.params for r in spec.reported if r.params_total)
    assert counts["params_keras_total"] == total
    assert counts["params_trainable"] == spec.primary_reported.params
